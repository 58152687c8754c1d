"""Types of the compiled venue path (src/adapters/sim/_venue.c); venue._apply_plain and
SimVenue.apply_event are its reference."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from polysnipe.core.events import BookDelta, MarketEvent, Side

def apply_plain(
    toks: Mapping[str, object], changes: Sequence[BookDelta], ts_ms: int, start: int, /
) -> int: ...
def sink(
    venue: object, engine: object, toks: Mapping[str, object], slow: Callable[[MarketEvent, int], None], /
) -> Callable[[MarketEvent], None]: ...
def draws(getrandbits: Callable[[int], int], base: int, span: int, /) -> Callable[[], int]: ...
def match(
    book: object,
    side: Side,
    limit: int,
    qty: int,
    owner: str,
    idx: Mapping[int, Sequence[object]],
    other: Mapping[int, Sequence[object]],
    replayed_only: bool,
    /,
) -> list[tuple[int, int, Any]] | None: ...
