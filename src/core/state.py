"""The engine's state: everything the pure step owns, in one place.

Handlers (market_handlers, lifecycle) read and mutate it in place; `pipeline.step` dispatches each input
to them. Copy-on-write books would cost more than the whole per-event budget, and ownership keeps the
mutation safe: exactly one step function owns one EngineState.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import attrs

from polysnipe.core.book import Book
from polysnipe.core.evaluators import Evaluators
from polysnipe.core.events import Event, LastTrade
from polysnipe.core.exit_rules import ExitParams, ExitState
from polysnipe.core.market import MarketRegistry
from polysnipe.core.messages import OrderFilled
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.orders import OrderRecord
from polysnipe.core.portfolio import Portfolio
from polysnipe.core.ports import Rng
from polysnipe.core.risk import RiskGatekeeper, RiskState
from polysnipe.core.routing import Router
from polysnipe.core.signals.base import SignalContext, SignalModule

__all__ = [
    "MAX_UNSETTLED",
    "BasketTrack",
    "EngineState",
    "Flagging",
    "OpportunityTrack",
    "SignalRoute",
    "UnsettledFill",
    "build_state",
]


@runtime_checkable
class Flagging(Protocol):
    """A signal module that also reports data-quality flags (an append-only list)."""

    name: str
    data_quality_flags: Sequence[object]


#: for one event type: what to call for each module that reacts to it (its `on_event`, or the kernel method
#: that forwards to, signals.base.handler_of), and those of these modules
#: that keep data-quality flags (read right after they ran)
SignalRoute = tuple[
    tuple[Callable[[Event, SignalContext, int], Sequence[Opportunity]], ...], tuple[Flagging, ...]
]


@attrs.define(slots=True)
class OpportunityTrack:
    """What the engine knows about one opportunity until its outcome is recorded."""

    opp: Opportunity
    policy: str
    order_ids: list[str] = attrs.field(factory=list)
    open_orders: int = 0
    target_size: int = 0
    filled_size: int = 0
    filled_notional: int = 0
    #: iceberg slices not yet released: (size, delay_ms)
    pending_slices: list[tuple[int, int]] = attrs.field(factory=list)
    failures: list[str] = attrs.field(factory=list)
    expired_orders: int = 0
    done: bool = False
    #: the portfolio lot its fills book to ("" = the strategy's own); exits sell from the lot they name
    lot: str = ""
    #: the wallet its orders trade for ("" = the engine's wallet_for(opportunity))
    wallet: str = ""
    #: how often its recorded outcome was revised by fills that arrived after it
    revisions: int = 0


@attrs.define(slots=True)
class BasketTrack:
    """The legs of one basket placed together, until their fills are known and any imbalance repaired."""

    group_id: str
    opportunity_ids: tuple[str, ...]
    #: the common size every leg was placed at
    size: int
    settled: bool = False


@attrs.frozen(slots=True)
class UnsettledFill:
    """A fill whose trade is not CONFIRMED yet: what undoing it would take if the trade FAILED."""

    fill: OrderFilled
    wallet: str
    lot: str
    #: what a SELL took from the lots (Portfolio.apply_fill)
    taken: Mapping[str, tuple[int, int]]


#: fills awaiting their trade's confirmation that are remembered; older ones can no longer be undone
#: (a trade confirms within minutes; this is a bound on memory, not a rule of the venue)
MAX_UNSETTLED = 100_000


@attrs.define(slots=True)
class EngineState:
    markets: MarketRegistry
    signals: Sequence[SignalModule]
    evaluators: Evaluators
    gatekeeper: RiskGatekeeper
    risk: RiskState
    router: Router
    rng: Rng
    #: which wallet trades an opportunity (the platform runs one Safe per trader)
    wallet_for: Callable[[Opportunity], str]
    books: dict[str, Book] = attrs.field(factory=dict)
    last_trades: dict[str, LastTrade] = attrs.field(factory=dict)
    orders: dict[str, OrderRecord] = attrs.field(factory=dict)
    tracks: dict[str, OpportunityTrack] = attrs.field(factory=dict)
    baskets: dict[str, BasketTrack] = attrs.field(factory=dict)
    #: the position manager: exit rules, exits and settlements in flight
    exits: ExitState = attrs.field(factory=ExitState)
    #: (release_ms, seq, opportunity id): iceberg slices waiting for their time
    timers: list[tuple[int, int, str]] = attrs.field(factory=list)
    timer_seq: int = 0
    #: (trade id, order id) -> fills not yet CONFIRMED on chain, oldest first (lifecycle.py)
    unsettled: dict[tuple[str, str], UnsettledFill] = attrs.field(factory=dict)
    #: counters for the report; plain ints keep the hot path cheap
    counters: dict[str, int] = attrs.field(factory=dict)
    opportunities_by_strategy: dict[str, int] = attrs.field(factory=dict)
    dq_seen: dict[str, int] = attrs.field(factory=dict)
    #: event type -> the signal modules that react to it (market_handlers.route_for); rebuilt when
    #: `signals` is replaced (assign a new sequence rather than changing it in place)
    routes: dict[type, SignalRoute] = attrs.field(init=False, factory=dict, repr=False, eq=False)
    routes_of: object = attrs.field(init=False, default=None, repr=False, eq=False)

    # -- the SignalContext and MarkSource view ----------------------------------------------------
    def book(self, token_id: str) -> Book | None:
        return self.books.get(token_id)

    def last_trade(self, token_id: str) -> LastTrade | None:
        return self.last_trades.get(token_id)

    @property
    def portfolio(self) -> Portfolio:
        return self.risk.portfolio

    def bump(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n


def build_state(
    *,
    markets: MarketRegistry,
    signals: Sequence[SignalModule],
    evaluators: Evaluators,
    gatekeeper: RiskGatekeeper,
    risk: RiskState,
    router: Router,
    rng: Rng,
    wallet_for: Callable[[Opportunity], str],
    exits: ExitParams | None = None,
) -> EngineState:
    state = EngineState(
        markets=markets,
        signals=signals,
        evaluators=evaluators,
        gatekeeper=gatekeeper,
        risk=risk,
        router=router,
        rng=rng,
        wallet_for=wallet_for,
        exits=ExitState(exits or ExitParams()),
    )
    # the portfolio marks what it holds on the engine's own books and trades (portfolio.py)
    risk.portfolio.marks = state
    return state
