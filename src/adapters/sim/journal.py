"""In-memory journal for backtests, paper runs and tests: the typed records themselves, in order.

It keeps what the Postgres journal keeps (every JournalRecord), without columns to map: a report reads
the records back by type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from polysnipe.core.messages import JournalRecord

__all__ = ["MemoryJournal"]

R = TypeVar("R")


class MemoryJournal:
    __slots__ = ("records",)

    def __init__(self) -> None:
        self.records: list[JournalRecord] = []

    def record(self, records: Sequence[JournalRecord]) -> None:
        self.records.extend(records)

    def commit(self) -> None:
        """Nothing to flush: records are kept as they arrive."""

    def of(self, kind: type[R]) -> list[R]:
        """Every record of one type, in journal order."""
        return [r for r in self.records if isinstance(r, kind)]
