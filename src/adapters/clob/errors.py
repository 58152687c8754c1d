"""Typed errors of the CLOB adapter."""

from __future__ import annotations

__all__ = ["MalformedMessage"]


class MalformedMessage(ValueError):
    """A venue (or external-signal) payload that cannot be mapped to a domain event or market.

    One error type for every way a payload can be wrong (bad JSON, a missing or mistyped field, a
    decimal with more than 6 places, an unknown side), so readers can count and skip bad lines with
    a single `except` and never leak a bare KeyError from deep inside the mapping.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
