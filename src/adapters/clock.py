"""Clocks for the engine loop: event time for backtests, the wall clock for paper and live runs.

The core never reads a clock; the loop asks its clock for `observe(ts_ms)`, the engine's time for an
input stamped `ts_ms`: event time in a replay (so a backtest is deterministic and as fast as the CPU
allows), the wall clock otherwise. Either never runs backwards: a late message does not move time back.
"""

from __future__ import annotations

import time

__all__ = ["EventClock", "WallClock"]


class EventClock:
    """Time is the latest event time seen; nothing reads the wall clock."""

    __slots__ = ("_now_ms",)

    def __init__(self, start_ms: int = 0) -> None:
        self._now_ms = start_ms

    def observe(self, ts_ms: int) -> int:
        if ts_ms > self._now_ms:
            self._now_ms = ts_ms
        return self._now_ms

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic_ns(self) -> int:
        return self._now_ms * 1_000_000


class WallClock:
    """The live runners' clock, clamped so that engine time never runs backwards."""

    __slots__ = ("_last_ms",)

    def __init__(self) -> None:
        self._last_ms = 0

    def observe(self, ts_ms: int) -> int:
        return self.now_ms()

    def now_ms(self) -> int:
        now = time.time_ns() // 1_000_000
        if now > self._last_ms:
            self._last_ms = now
        return self._last_ms

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()
