"""Typed errors of the Redis Streams adapter."""

from __future__ import annotations

__all__ = ["BusUnavailable", "InvalidStreamsConfig"]


class BusUnavailable(RuntimeError):
    """Redis did not answer at the configured address (the runner turns this into one line, exit 2)."""


class InvalidStreamsConfig(ValueError):
    """A streams setting that cannot work (a prefix that would break hash tags, no shard, ...)."""
