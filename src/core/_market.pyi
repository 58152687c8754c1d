"""Types of market_handlers.on_price_change's compiled part (src/core/_market.c); market_handlers.py is its
reference."""

from collections.abc import Callable, Mapping, Sequence

from polysnipe.core.book import Book
from polysnipe.core.events import BookDelta, PriceChange
from polysnipe.core.exit_rules import LotKey
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.portfolio import Lot, WalletState
from polysnipe.core.signals.base import SignalContext

Handler = Callable[[PriceChange, SignalContext, int], Sequence[Opportunity]]

def price_change(
    books: Mapping[str, Book],
    changes: Sequence[BookDelta],
    ts_ms: int,
    handlers: tuple[Handler, ...],
    event: PriceChange,
    ctx: SignalContext,
    now_ms: int,
    watched: set[str],
    wallets: Mapping[str, WalletState],
    /,
) -> tuple[int, int, int, list[Opportunity] | None, list[tuple[LotKey, Lot]] | None] | None: ...
