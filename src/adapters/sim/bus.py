"""In-process message bus with the shape of the Redis Streams adapter, so a backtest needs no server.

Streams are append-only with monotonically increasing ids; a single consumer reads in order after its
last id, as XADD / XREAD do. Messages are stored as batches (id of the first, list of messages) so a
backtest moving hundreds of thousands of events per second pays per batch, not per message.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Generic, TypeVar

__all__ = ["InProcessBus"]

T = TypeVar("T")


class InProcessBus(Generic[T]):
    __slots__ = ("_next_id", "_streams", "published")

    def __init__(self) -> None:
        self._streams: dict[str, deque[tuple[int, Sequence[T]]]] = {}
        self._next_id = 1
        self.published = 0

    def publish(self, stream: str, message: T) -> int:
        return self.publish_many(stream, (message,))

    def publish_many(self, stream: str, messages: Sequence[T]) -> int:
        """Append messages in order; returns the id of the first. Ids are consecutive."""
        first = self._next_id
        if messages:
            self._streams.setdefault(stream, deque()).append((first, messages))
            self._next_id += len(messages)
            self.published += len(messages)
        return first

    def read_batch(self, stream: str) -> tuple[int, Sequence[T]] | None:
        """Pop the oldest batch as (id of its first message, messages), or None when the stream is empty."""
        q = self._streams.get(stream)
        return q.popleft() if q else None

    def read(self, stream: str, count: int = 1024) -> list[tuple[int, T]]:
        """Pop up to `count` messages as (id, message), in order."""
        out: list[tuple[int, T]] = []
        q = self._streams.get(stream)
        while q and len(out) < count:
            first, batch = q.popleft()
            take = min(count - len(out), len(batch))
            out.extend((first + i, batch[i]) for i in range(take))
            if take < len(batch):
                q.appendleft((first + take, batch[take:]))
        return out

    def pending(self, stream: str) -> int:
        q = self._streams.get(stream)
        return sum(len(b) for _, b in q) if q else 0
