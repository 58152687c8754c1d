"""Text that came from outside, made safe to store and to show."""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, every non-printable one written as its escape: what a
    venue or a caller sent may carry NUL (which Postgres text refuses) or control characters (which
    would forge log lines or drive a terminal)."""
    if len(text) <= limit and text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[:limit])[:limit]
