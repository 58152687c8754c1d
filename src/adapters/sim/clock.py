"""A clock driven by event time: backtests advance it, nothing reads the wall clock."""

from __future__ import annotations

__all__ = ["EventClock"]


class EventClock:
    __slots__ = ("_now_ms",)

    def __init__(self, start_ms: int = 0) -> None:
        self._now_ms = start_ms

    def advance(self, now_ms: int) -> None:
        if now_ms > self._now_ms:
            self._now_ms = now_ms

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic_ns(self) -> int:
        return self._now_ms * 1_000_000
