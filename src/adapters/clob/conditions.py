"""The venue's conditions as the CLOB adapters observe them, told to the engine as VenueCondition inputs.

The engine's risk gatekeeper refuses what a condition forbids (core/messages.py VENUE_CONDITIONS), so a
condition must also clear, or nothing would ever be placed again. Each is cleared by the evidence that
ends it where there is such evidence (a successful POST after a restart, a heartbeat answered) and
otherwise after a hold that the adapter sets when it raises it (the post-only window's documented two
minutes; a short half-open hold for a restart or cancel-only mode, after which the next order probes the
venue and raises it again if it still holds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from polysnipe.core.messages import VenueCondition
from polysnipe.core.ports import Clock

__all__ = ["Later", "VenueConditions"]


class _Cancellable(Protocol):
    def cancel(self) -> None: ...


#: schedule a callback after a delay in seconds; returns a handle with cancel() (asyncio's call_later)
Later = Callable[[float, Callable[[], None]], _Cancellable]


def _call_later(delay_s: float, callback: Callable[[], None]) -> _Cancellable:
    return asyncio.get_running_loop().call_later(delay_s, callback)


class VenueConditions:
    """Which conditions hold; a change goes to `sink` once (a repeat is not news)."""

    __slots__ = ("_active", "_clock", "_later", "_sink", "_timers")

    def __init__(
        self, sink: Callable[[VenueCondition], None], clock: Clock, later: Later = _call_later
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._later = later
        self._active: set[str] = set()
        self._timers: dict[str, _Cancellable] = {}

    def holds(self, condition: str) -> bool:
        return condition in self._active

    def raise_(self, condition: str, detail: str, *, clear_after_s: float | None = None) -> None:
        """The condition holds; with `clear_after_s`, it clears by itself that much later (a later
        raise_ pushes that time out)."""
        timer = self._timers.pop(condition, None)
        if timer is not None:
            timer.cancel()
        if clear_after_s is not None:
            self._timers[condition] = self._later(
                clear_after_s, lambda: self.clear(condition, f"no longer seen after {clear_after_s:g} s")
            )
        if condition not in self._active:
            self._active.add(condition)
            self._sink(VenueCondition(self._clock.now_ms(), condition, True, detail))

    def clear(self, condition: str, detail: str) -> None:
        timer = self._timers.pop(condition, None)
        if timer is not None:
            timer.cancel()
        if condition in self._active:
            self._active.discard(condition)
            self._sink(VenueCondition(self._clock.now_ms(), condition, False, detail))
