"""Types of the Liquidity Vacuum kernel (src/core/signals/_vacuum.c); liquidity_vacuum.py is its reference."""

from collections.abc import Callable

from polysnipe.core.book import Book
from polysnipe.core.events import Event, Side
from polysnipe.core.market import Market
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.signals.base import SignalContext

#: LiquidityVacuum._opportunity: (market, complement, token, book, side, anchor_px, anchor_depth,
#: anchor_opp, pulls, start_ts, traded, now_depth, ts, ctx, now_ms) -> the opportunity or None
Fire = Callable[
    [Market, str, str, Book, Side, int, int, int, int, int, int, int, int, SignalContext, int],
    Opportunity | None,
]

#: a side's px, depth, opp, last_px, last_depth, last_opp, start_ts, pulls, traded
SideNumbers = tuple[int, int, int, int, int, int, int, int, int]

class VacuumKernel:
    def __init__(
        self,
        n_ticks: int,
        window_ms: int,
        drop_fraction: float,
        min_depth_micro: int,
        min_pulls: int,
        fire: Fire,
    ) -> None: ...
    def on_event(self, event: Event, ctx: SignalContext, now_ms: int, /) -> list[Opportunity]: ...
    def state(self, token_id: str, /) -> tuple[str, int, SideNumbers, SideNumbers] | None: ...
