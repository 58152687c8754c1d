"""The live engine loop's input source: producers (market feed, user channel, operators) push, the
loop takes batches in arrival order.

One asyncio queue of batches, so a burst of frames is handed over as it came, without a task switch per
message. Adapter notices (alerts, dead-lettered input) travel the same way, so the loop journals them
in order with the inputs around them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from polysnipe.core.messages import Input, RaiseAlert, RecordError

__all__ = ["Inbox", "InboxItem"]

InboxItem = Input | RaiseAlert | RecordError


class Inbox:
    """core.ports.InputSource over an asyncio queue; `close()` ends it after what is already queued."""

    __slots__ = ("_closed", "_queue")

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Sequence[InboxItem] | None] = asyncio.Queue()
        self._closed = False

    def push(self, items: Sequence[InboxItem]) -> None:
        """Queue items for the loop (from any coroutine or callback on the loop's thread)."""
        if items and not self._closed:
            self._queue.put_nowait(list(items))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)

    async def next_batch(self, timeout_s: float | None) -> Sequence[InboxItem] | None:
        try:
            batch = await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return []
        if batch is None:
            return None
        # take whatever else is already waiting: one batch per wake-up, not one per push
        while not self._queue.empty():
            more = self._queue.get_nowait()
            if more is None:
                self._queue.put_nowait(None)
                break
            batch = [*batch, *more]
        return batch
