"""A recording replayed as the engine loop's input source, through the in-process bus.

The ingest side publishes the loaded events onto the bus one batch at a time, as the engine side
consumes them, so the replay has the shape of the live path (ingest -> stream -> engine) without a
server, and memory holds one batch in flight beside the loaded recording.
"""

from __future__ import annotations

from collections.abc import Sequence

from polysnipe.adapters.sim.bus import InProcessBus
from polysnipe.core.events import Event

__all__ = ["MD_STREAM", "ReplaySource"]

MD_STREAM = "md.0"


class ReplaySource:
    """core.ports.InputSource over events in time order; ends (None) after the last batch."""

    __slots__ = ("_batch", "_bus", "_events", "_pos", "_stream")

    def __init__(
        self,
        events: Sequence[Event],
        *,
        batch: int = 4096,
        stream: str = MD_STREAM,
        bus: InProcessBus[Event] | None = None,
    ) -> None:
        self._events = events
        self._batch = batch
        self._stream = stream
        self._bus: InProcessBus[Event] = bus if bus is not None else InProcessBus()
        self._pos = 0

    @property
    def total(self) -> int:
        return len(self._events)

    @property
    def consumed(self) -> int:
        return self._pos - self._bus.pending(self._stream)

    async def next_batch(self, timeout_s: float | None) -> Sequence[Event] | None:
        if self._pos < len(self._events):
            self._bus.publish_many(self._stream, self._events[self._pos : self._pos + self._batch])
            self._pos = min(self._pos + self._batch, len(self._events))
        read = self._bus.read_batch(self._stream)
        return read[1] if read is not None else None
