"""Types of the compiled venue loop (src/adapters/sim/_venue.c); venue._apply_plain is its reference."""

from collections.abc import Mapping, Sequence

from polysnipe.core.events import BookDelta

def apply_plain(
    toks: Mapping[str, object], changes: Sequence[BookDelta], ts_ms: int, start: int, /
) -> int: ...
