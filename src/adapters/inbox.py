"""The live engine loop's input source: producers (market feed, user channel, operators) push, the
loop takes batches in arrival order.

One asyncio queue of batches, so a burst of frames is handed over as it came, without a task switch per
message. Adapter notices (alerts, dead-lettered input) travel the same way, so the loop journals them
in order with the inputs around them.

`BusWithInbox` is the live engine's source when market data comes from the bus: each batch is what the
inbox holds (venue reports, alerts, conditions: never waited for) followed by what the bus has, read
with a short wait while the inbox is empty, so a report waits at most `report_wait_s` behind a quiet
bus. Acknowledgements go to the bus (the inbox keeps nothing to acknowledge).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from polysnipe.core.messages import SourceItem

__all__ = ["AckingSource", "BusWithInbox", "Inbox"]


class Inbox:
    """core.ports.InputSource over an asyncio queue; `close()` ends it after what is already queued."""

    __slots__ = ("_closed", "_queue")

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Sequence[SourceItem] | None] = asyncio.Queue()
        self._closed = False

    def push(self, items: Sequence[SourceItem]) -> None:
        """Queue items for the loop (from any coroutine or callback on the loop's thread)."""
        if items and not self._closed:
            self._queue.put_nowait(list(items))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)

    def take_nowait(self) -> Sequence[SourceItem] | None:
        """Everything queued now ([] when nothing is); None once closed and drained."""
        batch: list[SourceItem] = []
        while not self._queue.empty():
            more = self._queue.get_nowait()
            if more is None:
                self._queue.put_nowait(None)  # closed stays closed, for every later call
                return batch or None
            batch.extend(more)
        return batch

    async def next_batch(self, timeout_s: float | None) -> Sequence[SourceItem] | None:
        try:
            # asyncio.timeout keeps a cancel that lands as a batch arrives (3.11's wait_for loses it)
            async with asyncio.timeout(timeout_s):
                first = await self._queue.get()
        except TimeoutError:
            return []
        if first is None:
            self._queue.put_nowait(None)
            return None
        # whatever else is already waiting comes along: one batch per wake-up, not one per push
        rest = self.take_nowait()
        return [*first, *rest] if rest else first


class AckingSource(Protocol):
    """An input source whose entries must be acknowledged once the journal holds what they caused."""

    async def next_batch(self, timeout_s: float | None) -> Sequence[SourceItem] | None: ...

    def acknowledge(self) -> None: ...


class BusWithInbox:
    """The bus's market data and signals after the inbox's venue reports (module doc)."""

    __slots__ = ("bus", "inbox", "report_wait_s")

    def __init__(self, bus: AckingSource, inbox: Inbox, report_wait_s: float = 0.02) -> None:
        self.bus = bus
        self.inbox = inbox
        self.report_wait_s = report_wait_s

    async def next_batch(self, timeout_s: float | None) -> Sequence[SourceItem] | None:
        side = self.inbox.take_nowait()
        if side is None:
            # closed: the run is ending; what the bus holds stays unacknowledged for the next run
            return None
        wait = (
            0.0 if side else self.report_wait_s if timeout_s is None else min(timeout_s, self.report_wait_s)
        )
        main = await self.bus.next_batch(wait)
        if main is None:
            return side or None
        return [*side, *main] if side else main

    def acknowledge(self) -> None:
        self.bus.acknowledge()
