"""In-memory journal: the Postgres journal's tables as lists of rows, for backtests and tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MemoryJournal"]


class MemoryJournal:
    __slots__ = ("tables",)

    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {}

    def append(self, table: str, row: Mapping[str, Any]) -> None:
        self.tables.setdefault(table, []).append(dict(row))

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.tables.get(table, [])
