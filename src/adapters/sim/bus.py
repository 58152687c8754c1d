"""In-process message bus with the shape of the Redis Streams adapter, so a backtest needs no server.

Streams are append-only deques with monotonically increasing ids; a consumer reads batches after its
last id. Same semantics as XADD / XREAD on one consumer: nothing is lost, order is kept.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

__all__ = ["InProcessBus"]

T = TypeVar("T")


class InProcessBus(Generic[T]):
    __slots__ = ("_next_id", "_streams", "published")

    def __init__(self) -> None:
        self._streams: dict[str, deque[tuple[int, T]]] = {}
        self._next_id = 0
        self.published = 0

    def publish(self, stream: str, message: T) -> int:
        self._next_id += 1
        self._streams.setdefault(stream, deque()).append((self._next_id, message))
        self.published += 1
        return self._next_id

    def publish_many(self, stream: str, messages: list[T]) -> None:
        q = self._streams.setdefault(stream, deque())
        for m in messages:
            self._next_id += 1
            q.append((self._next_id, m))
        self.published += len(messages)

    def read(self, stream: str, count: int = 1024) -> list[tuple[int, T]]:
        """Pop up to `count` messages in order (a single consumer acknowledges by reading)."""
        q = self._streams.get(stream)
        if not q:
            return []
        n = min(count, len(q))
        return [q.popleft() for _ in range(n)]

    def pending(self, stream: str) -> int:
        q = self._streams.get(stream)
        return len(q) if q else 0
