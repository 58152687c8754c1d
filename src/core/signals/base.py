"""The signal-module plug-in interface, its registry, and the helpers every module shares.

A signal module turns events into Opportunities. The pipeline applies each event to the books first and
then calls every module's `on_event` with a read-only view of the engine (`SignalContext`), so a module
sees the current book and keeps only its own incremental state (estimators, histories, cooldowns). All
of that state advances on event time, never on a clock, so a replay produces the same opportunities.

Modules only ever BUY: selling YES is expressed as buying NO at its ask, which is the same order on a
binary market's mirrored books (DESIGN.md section 3) and needs no inventory.

A module may declare `event_types`, the event classes its `on_event` reacts to; the pipeline then
never calls it for other events (`reacts_to`). Without it the module sees every event. A module may
also name, in an optional `event_handler`, the callable its `on_event` forwards to (a compiled kernel's
own method): the pipeline then calls that directly (`handler_of`), one Python call less per event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import attrs

from polysnipe.core.book import Book
from polysnipe.core.events import Event, LastTrade, Side
from polysnipe.core.fees import fee_value_usdc
from polysnipe.core.market import Market, MarketRegistry
from polysnipe.core.opportunity import Opportunity, opportunity_id
from polysnipe.core.units import ONE

__all__ = [
    "REGISTRY",
    "SIZE_STEP_MICRO",
    "SignalContext",
    "SignalFactory",
    "SignalModule",
    "build_signals",
    "buy_opportunity",
    "complement_bounds",
    "floor_size",
    "handler_of",
    "params_from",
    "reacts_to",
    "register",
    "taker_fee_per_share",
    "tradable_price",
]

#: Order sizes carry 2 decimals at every tick size (PROTOCOL.md 3.1), so 0.01 share is the size step.
SIZE_STEP_MICRO = 10_000


class SignalContext(Protocol):
    """What a module may read: market metadata, the current books and the last trade per token."""

    markets: MarketRegistry

    @property
    def books(self) -> Mapping[str, Book]:
        """Books by token, read-only: `books.get(t)` is `book(t)` without a Python call (hot loops)."""
        ...

    def book(self, token_id: str) -> Book | None: ...

    def last_trade(self, token_id: str) -> LastTrade | None: ...


class SignalModule(Protocol):
    name: str

    def on_event(self, event: Event, ctx: SignalContext, now_ms: int) -> list[Opportunity]: ...


SignalFactory = Callable[[Mapping[str, Any]], SignalModule]

#: name -> factory(params); filled by `polysnipe.core.signals` with the built-in modules.
REGISTRY: dict[str, SignalFactory] = {}


def reacts_to(module: SignalModule) -> tuple[type, ...] | None:
    """The event types `module` declares in its optional `event_types`; None means every type."""
    types = getattr(module, "event_types", None)
    return None if types is None else tuple(types)


def handler_of(module: SignalModule) -> Callable[[Event, SignalContext, int], list[Opportunity]]:
    """What the pipeline calls for `module`: its optional `event_handler`, else its `on_event`."""
    handler: Callable[[Event, SignalContext, int], list[Opportunity]] | None = getattr(
        module, "event_handler", None
    )
    return module.on_event if handler is None else handler


def register(name: str, factory: SignalFactory) -> None:
    if name in REGISTRY:
        raise ValueError(f"signal module {name!r} is already registered")
    REGISTRY[name] = factory


def build_signals(config: Mapping[str, Mapping[str, Any]]) -> list[SignalModule]:
    """Instantiate the configured modules in config order ({"spread_hunter": {...params}, ...})."""
    modules: list[SignalModule] = []
    for name, params in config.items():
        factory = REGISTRY.get(name)
        if factory is None:
            raise ValueError(f"unknown signal module {name!r}; known: {', '.join(sorted(REGISTRY))}")
        modules.append(factory(params))
    return modules


_P = TypeVar("_P")


def params_from(cls: type[_P], params: Mapping[str, Any]) -> _P:
    """Build a frozen Params class from config, naming the accepted keys when one is unknown.

    A misspelt key must fail loudly: silently falling back to a default would trade with a setting
    the operator did not choose.
    """
    known = {f.name for f in attrs.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} parameter(s) {unknown}; known: {sorted(known)}")
    try:
        return cls(**params)
    except TypeError as exc:  # attrs validators raise TypeError for wrong types
        raise ValueError(f"invalid {cls.__name__}: {exc}") from exc


def complement_bounds(bid_from: float, ask_to: float) -> tuple[float, float]:
    """The same watch window, seen from the complement token of a binary market.

    Both modules decide per delta, without reading the book, whether a change can matter: on a
    token, a bid change matters at or above `bid_from` and an ask change at or below `ask_to` (an
    infinite bound means every change matters). A complement bid at q is this token's ask at 1 - q,
    and a complement ask at q its bid at 1 - q, so on the complement the window is
    (1 - ask_to, 1 - bid_from) in the same sense.
    """
    return ONE - ask_to, ONE - bid_from


def floor_size(size: int) -> int:
    """Round a size down to what an order can carry (0.01 share)."""
    return size - size % SIZE_STEP_MICRO


def taker_fee_per_share(price: int, market: Market) -> int:
    """Expected taker fee, in micro-USDC, for one share bought at `price` (PROTOCOL.md 11.1).

    The venue collects a BUY's fee in shares worth about `price` each, so the USDC value of the fee is
    the right amount to subtract from a per-share edge.
    """
    if not market.fee_rate:
        return 0
    return fee_value_usdc(ONE, price, market.fee_rate, market.fee_exponent)


def tradable_price(price: int, tick: int) -> bool:
    """A limit the venue accepts: on the current tick and strictly inside (0, 1).

    Resting levels can sit off the tick after a tick-size change; such a level is not a price we may
    quote, so modules skip it rather than round it.
    """
    return 0 < price < ONE and price % tick == 0


def buy_opportunity(
    *,
    strategy: str,
    market: Market,
    token_id: str,
    size: int,
    limit_price: int,
    fair_value: int,
    confidence: float,
    now_ms: int,
    ttl_ms: int,
    reason: str,
    trigger: tuple[object, ...],
    urgency: str = "aggressive",
    group_id: str = "",
) -> Opportunity:
    """A BUY opportunity whose id derives from the strategy, token and the facts that triggered it."""
    oid = opportunity_id(strategy, token_id, Side.BUY, *trigger)
    return Opportunity(
        id=oid,
        strategy=strategy,
        market=market.condition_id,
        token_id=token_id,
        side=Side.BUY,
        size=size,
        limit_price=limit_price,
        fair_value=fair_value,
        edge=fair_value - limit_price,
        confidence=confidence,
        created_ms=now_ms,
        expires_ms=now_ms + ttl_ms,
        reason=reason,
        correlation_id="c-" + oid,
        urgency=urgency,
        group_id=group_id,
    )
