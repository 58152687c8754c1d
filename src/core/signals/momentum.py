"""Momentum/Event: enter on an external signal (news, social) before the book has caught up.

A signal says a token became more (+1) or less (-1) likely. The module buys the token that should rise:
the signal's token for +1, its complement for -1 (buying NO at its ask is selling YES). It trades only
while the book has not already moved: the target (the source's fair price, or a fixed move from the
current mid) must still sit at least `min_edge_ticks` plus the taker fee above the ask. The limit may
cross a few levels (`slippage_ticks`) but never so far that the edge left at the limit falls below the
minimum. Size grows with the signal's confidence; large orders are marked for iceberg routing so they
do not announce themselves in one print.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from polysnipe.core.events import Event, ExternalSignal, Side
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.signals.base import (
    SignalContext,
    buy_opportunity,
    floor_size,
    params_from,
    taker_fee_per_share,
    tradable_price,
)
from polysnipe.core.units import ONE, format_micro

__all__ = ["NAME", "Momentum", "MomentumParams"]

NAME = "momentum"


@attrs.frozen(slots=True)
class MomentumParams:
    #: edge required at the limit beyond the taker fee, in ticks
    min_edge_ticks: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    min_confidence: float = attrs.field(
        default=0.5, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )
    #: expected move from the current mid when the signal carries no fair price
    default_move_ticks: int = attrs.field(default=3, validator=attrs.validators.gt(0))
    #: ticks above the best ask the limit may reach
    slippage_ticks: int = attrs.field(default=1, validator=attrs.validators.ge(0))
    max_ttl_ms: int = attrs.field(default=5_000, validator=attrs.validators.gt(0))
    #: size at confidence 1; scaled down linearly with confidence
    max_size_micro: int = attrs.field(default=200_000_000, validator=attrs.validators.gt(0))
    #: sizes at or above this go out as iceberg, smaller ones aggressively
    iceberg_min_size_micro: int = attrs.field(default=100_000_000, validator=attrs.validators.gt(0))


class Momentum:
    __slots__ = ("name", "params")
    #: what on_event reacts to: the pipeline calls it for nothing else
    event_types: ClassVar[tuple[type, ...]] = (ExternalSignal,)

    def __init__(self, params: MomentumParams | None = None) -> None:
        self.name = NAME
        self.params = params or MomentumParams()

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Momentum:
        return cls(params_from(MomentumParams, params))

    def on_event(self, event: Event, ctx: SignalContext, now_ms: int) -> list[Opportunity]:
        if type(event) is not ExternalSignal:
            return []
        opp = self._on_signal(event, ctx, now_ms)
        return [opp] if opp is not None else []

    def _on_signal(self, sig: ExternalSignal, ctx: SignalContext, now_ms: int) -> Opportunity | None:
        p = self.params
        # `not >=` also rejects a NaN confidence from a misbehaving source
        if sig.direction not in (1, -1) or not sig.confidence >= p.min_confidence:
            return None
        ttl = min(p.max_ttl_ms, sig.ttl_ms, sig.ts_ms + sig.ttl_ms - now_ms)
        if ttl <= 0:
            return None
        market = ctx.markets.get_by_token(sig.token_id)
        if market is None:
            return None
        token = sig.token_id if sig.direction == 1 else market.complement(sig.token_id)
        book = ctx.book(token)
        if book is None or not book.trusted or book.is_crossed():
            return None
        ask = book.best_ask()
        tick = book.tick_size
        if ask is None or not tradable_price(ask, tick):
            return None
        if sig.fair_price is not None:
            target = sig.fair_price if sig.direction == 1 else ONE - sig.fair_price
        else:
            mid = book.mid()
            if mid is None:
                return None
            target = mid + p.default_move_ticks * tick
        target = min(target, ONE)
        fee = taker_fee_per_share(ask, market)
        min_edge = p.min_edge_ticks * tick
        # the edge left at the limit covers the fee and the minimum, and is never zero
        cap = target - max(min_edge + fee, 1)
        if cap < ask:  # the book has already moved (or the edge never covered the fee)
            return None
        limit = min(ask + p.slippage_ticks * tick, cap - cap % tick, ONE - tick)
        confidence = min(sig.confidence, 1.0)
        wanted = int(p.max_size_micro * confidence)  # signal math -> size: truncation rounds down
        size = floor_size(min(wanted, book.depth(Side.SELL, (limit - ask) // tick)))
        if size < market.min_order_size:
            return None
        return buy_opportunity(
            strategy=NAME,
            market=market,
            token_id=token,
            size=size,
            limit_price=limit,
            fair_value=target,
            confidence=confidence,
            now_ms=now_ms,
            ttl_ms=ttl,
            reason=(
                f"{sig.source} signal {sig.direction:+d} ({confidence:.2f}):"
                f" target {format_micro(target)} vs ask {format_micro(ask)}"
            ),
            trigger=(sig.source, sig.ref, sig.ts_ms, sig.token_id, sig.direction),
            urgency="iceberg" if size >= p.iceberg_min_size_micro else "aggressive",
        )
