"""Spread Hunter: an ask priced below fair value, and the neg-risk complement arbitrage.

Theory of operation
-------------------
Per token the module keeps a fair-value estimator fed with the microprice (size-weighted mid) each time
the top of book changes, and (for "ewma") with last-trade prices. An ask is judged against the fair value
*before* the current observation is folded in: the microprice always lies between bid and ask, so a fair
value that already contains the quote being judged could never sit above that quote's ask. The "ewma"
estimator is a time-decayed weighted mean (sum and weight both halve every `half_life_ms` of event time),
so a burst of events and a quiet minute weigh what they should and nothing depends on a clock.

Events that leave the top of book unchanged (most deltas land deeper in the book) cost one comparison.
An untrusted book resets the token's estimator: after a gap the old fair value says nothing about the new
book. A crossed book is a data glitch and is skipped.

Neg-risk arbitrage: each neg-risk event (markets sharing `neg_risk_market_id`, none augmented) is a
basket of YES legs whose payout is exactly 1. The running sum of leg asks and fees is updated in O(1) per
touched leg; only when it clears `1 - arb_min_edge` are the books re-read to build one BUY per leg with a
shared group id. Each leg's fair value is 1 minus what the other legs cost, so every leg carries the
basket's edge and min-edge filters downstream judge the basket, not an arbitrary share of it.

YES ask + NO ask < 1 inside one binary market cannot be traded (the venue merge-matches it, and the
books mirror each other), so it is recorded in `data_quality_flags` and suppresses trading that market.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from polysnipe.core.book import BookState
from polysnipe.core.events import BookSnapshot, Event, LastTrade, PriceChange, Side
from polysnipe.core.market import Market
from polysnipe.core.opportunity import Opportunity, opportunity_id
from polysnipe.core.signals.base import (
    SignalContext,
    buy_opportunity,
    floor_size,
    params_from,
    taker_fee_per_share,
    tradable_price,
)
from polysnipe.core.units import ONE, format_micro

__all__ = ["NAME", "DataQualityFlag", "SpreadHunter", "SpreadHunterParams"]

NAME = "spread_hunter"
FAIR_SOURCES = ("ewma", "microprice")
_UNSEEN = -1  # top-of-book cache value no book can report, so the first look always counts as a change


@attrs.frozen(slots=True)
class SpreadHunterParams:
    #: "ewma" (time-decayed mean of microprices and trades) or "microprice" (the previous microprice)
    fair_source: str = attrs.field(default="ewma", validator=attrs.validators.in_(FAIR_SOURCES))
    half_life_ms: int = attrs.field(default=5_000, validator=attrs.validators.gt(0))
    #: weight of one last-trade price relative to one microprice observation ("ewma" only)
    trade_weight: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))
    #: observations a token needs before its fair value is trusted
    min_observations: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    #: edge required beyond the taker fee, in ticks of the token's book
    min_edge_ticks: int = attrs.field(default=1, validator=attrs.validators.ge(0))
    max_size_micro: int = attrs.field(default=100_000_000, validator=attrs.validators.gt(0))
    ttl_ms: int = attrs.field(default=2_000, validator=attrs.validators.gt(0))
    arb_enabled: bool = True
    #: basket edge required beyond the legs' taker fees, micro-USDC per share of each leg
    arb_min_edge_micro: int = attrs.field(default=10_000, validator=attrs.validators.ge(0))
    arb_max_size_micro: int = attrs.field(default=100_000_000, validator=attrs.validators.gt(0))
    arb_ttl_ms: int = attrs.field(default=1_000, validator=attrs.validators.gt(0))
    #: flags kept in `data_quality_flags`; later ones are only counted (the list is append-only)
    max_data_quality_flags: int = attrs.field(default=1_000, validator=attrs.validators.ge(0))


@attrs.frozen(slots=True)
class DataQualityFlag:
    ts_ms: int
    market: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} in market {self.market} at {self.ts_ms}: {self.detail}"


class _TokenState:
    """Fair-value estimator and top-of-book cache for one token."""

    __slots__ = (
        "ask",
        "asz",
        "basket",
        "bid",
        "bsz",
        "complement",
        "fired_ask",
        "last_micro",
        "last_ts",
        "leg",
        "market",
        "n",
        "s",
        "w",
    )

    def __init__(self, market: Market, complement: str) -> None:
        self.market = market
        self.complement = complement
        self.basket: _Basket | None = None
        self.leg = 0
        self.bid: int | None = _UNSEEN
        self.ask: int | None = _UNSEEN
        self.bsz = _UNSEEN
        self.asz = _UNSEEN
        self.n = 0
        self.s = 0.0
        self.w = 0.0
        self.last_ts = 0
        self.last_micro = 0.0
        #: the ask an opportunity was last emitted at; 0 once the edge is gone, so a re-opening fires
        self.fired_ask = 0

    def forget(self) -> None:
        self.bid = self.ask = _UNSEEN
        self.bsz = self.asz = _UNSEEN
        self.n = 0
        self.s = self.w = 0.0
        self.last_micro = 0.0
        self.fired_ask = 0


class _Basket:
    """The YES legs of one neg-risk event with running sums of their asks and fees."""

    __slots__ = (
        "asks",
        "event_id",
        "fees",
        "fired",
        "markets",
        "n_valid",
        "tokens",
        "total_ask",
        "total_fee",
    )

    def __init__(self, event_id: str, markets: tuple[Market, ...]) -> None:
        self.event_id = event_id
        self.markets = markets
        self.tokens = tuple(m.token_ids[0] for m in markets)
        n = len(markets)
        self.asks = [0] * n  # 0: leg not tradable now
        self.fees = [0] * n
        self.n_valid = 0
        self.total_ask = 0
        self.total_fee = 0
        self.fired: tuple[int, ...] = ()

    def set_leg(self, i: int, ask: int, fee: int) -> None:
        old = self.asks[i]
        if old:
            self.n_valid -= 1
            self.total_ask -= old
            self.total_fee -= self.fees[i]
        if ask:
            self.n_valid += 1
            self.total_ask += ask
            self.total_fee += fee
        self.asks[i] = ask
        self.fees[i] = fee


def _usable_ask(book: BookState | None) -> int:
    """The book's best ask if a leg could be bought there now, else 0."""
    if book is None or not book.trusted or book.is_crossed():
        return 0
    ask = book.best_ask()
    if ask is None or not tradable_price(ask, book.tick_size):
        return 0
    return ask


class SpreadHunter:
    __slots__ = (
        "_ewma",
        "_leg_of",
        "_mispriced",
        "_registry_size",
        "_states",
        "data_quality_count",
        "data_quality_flags",
        "name",
        "params",
    )

    def __init__(self, params: SpreadHunterParams | None = None) -> None:
        self.name = NAME
        self.params = params or SpreadHunterParams()
        self._ewma = self.params.fair_source == "ewma"
        self._states: dict[str, _TokenState] = {}
        self._leg_of: dict[str, tuple[_Basket, int]] = {}
        self._registry_size = -1
        #: condition ids currently showing YES ask + NO ask < 1
        self._mispriced: set[str] = set()
        #: append-only (the pipeline reads new entries by index); bounded by max_data_quality_flags
        self.data_quality_flags: list[DataQualityFlag] = []
        self.data_quality_count = 0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SpreadHunter:
        return cls(params_from(SpreadHunterParams, params))

    def on_event(self, event: Event, ctx: SignalContext, now_ms: int) -> list[Opportunity]:
        if type(event) is PriceChange:
            out: list[Opportunity] = []
            ts = event.ts_ms
            for ch in event.changes:
                book = ctx.book(ch.token_id)
                # A level behind the touch (after the batch was applied) leaves the top of book as it
                # was: the common case, decided without touching the module's state. Several changes at
                # the touch re-run the token, and the repeat returns at the unchanged-top check.
                if book is not None and book.trusted:
                    if ch.side is Side.BUY:
                        best = book.best_bid()
                        if best is not None and ch.price < best:
                            continue
                    else:
                        best = book.best_ask()
                        if best is not None and ch.price > best:
                            continue
                self._on_book(ch.token_id, book, ts, ctx, now_ms, out)
            return out
        if type(event) is BookSnapshot:
            out = []
            self._on_book(event.token_id, ctx.book(event.token_id), event.ts_ms, ctx, now_ms, out)
            return out
        if type(event) is LastTrade and self._ewma and self.params.trade_weight > 0.0:
            self._on_trade(event, ctx)
        return []

    # -- per token -----------------------------------------------------------------------------
    def _state(self, token_id: str, ctx: SignalContext) -> _TokenState | None:
        st = self._states.get(token_id)
        if st is not None:
            return st
        markets = ctx.markets
        market = markets.get_by_token(token_id)
        if market is None:
            return None
        st = _TokenState(market, market.complement(token_id))
        self._states[token_id] = st
        if self.params.arb_enabled and len(markets) != self._registry_size:
            self._rebuild_baskets(ctx)
        else:
            link = self._leg_of.get(token_id)
            if link is not None:
                st.basket, st.leg = link
        return st

    def _on_trade(self, trade: LastTrade, ctx: SignalContext) -> None:
        st = self._state(trade.token_id, ctx)
        if st is not None:
            self._observe(st, float(trade.price), trade.ts_ms, self.params.trade_weight)

    def _observe(self, st: _TokenState, value: float, ts: int, weight: float) -> None:
        if self._ewma:
            if st.n and ts > st.last_ts:
                decay = 0.5 ** ((ts - st.last_ts) / self.params.half_life_ms)
                st.s *= decay
                st.w *= decay
            st.s += weight * value
            st.w += weight
        else:
            st.last_micro = value
        st.n += 1
        if ts > st.last_ts:
            st.last_ts = ts

    def _on_book(
        self,
        token: str,
        book: BookState | None,
        ts: int,
        ctx: SignalContext,
        now_ms: int,
        out: list[Opportunity],
    ) -> None:
        st = self._states.get(token) or self._state(token, ctx)
        if st is None:
            return
        if book is None or not book.trusted:
            if st.basket is not None:
                st.basket.set_leg(st.leg, 0, 0)
            if st.n or st.ask != _UNSEEN:
                st.forget()
            return
        bid = book.best_bid()
        ask = book.best_ask()
        bsz = book.best_bid_size()
        asz = book.best_ask_size()
        if ask == st.ask and bid == st.bid and asz == st.asz and bsz == st.bsz:
            return
        st.bid, st.ask, st.bsz, st.asz = bid, ask, bsz, asz
        if ask is None or (bid is not None and bid >= ask):
            if st.basket is not None:
                st.basket.set_leg(st.leg, 0, 0)
            return
        tick = book.tick_size
        market = st.market
        if st.basket is not None:
            ok = tradable_price(ask, tick)
            st.basket.set_leg(st.leg, ask if ok else 0, taker_fee_per_share(ask, market) if ok else 0)
            basket = st.basket
            if (
                basket.n_valid == len(basket.asks)
                and basket.total_ask + basket.total_fee + self.params.arb_min_edge_micro < ONE
            ):
                self._emit_basket(basket, ts, ctx, now_ms, out)
            else:
                basket.fired = ()  # the edge closed: the same prices may fire again later
        self._check_pair(st, ask, ts, ctx)
        if bid is None:
            return

        p = self.params
        prior: float | None = None
        if st.n >= p.min_observations:
            prior = st.s / st.w if self._ewma else st.last_micro
        self._observe(st, (bid * asz + ask * bsz) / (bsz + asz), ts, 1.0)
        if prior is None:
            return
        min_edge = p.min_edge_ticks * tick
        fair = int(prior)  # floor (prior > 0): never overstate the edge
        edge = fair - ask
        if edge <= min_edge:
            st.fired_ask = 0
            return
        fee = taker_fee_per_share(ask, market)
        if edge <= min_edge + fee:
            st.fired_ask = 0
            return
        if ask == st.fired_ask or market.condition_id in self._mispriced or not tradable_price(ask, tick):
            return
        size = floor_size(min(asz, p.max_size_micro))
        if size < market.min_order_size:
            return
        st.fired_ask = ask
        out.append(
            buy_opportunity(
                strategy=NAME,
                market=market,
                token_id=token,
                size=size,
                limit_price=ask,
                fair_value=fair,
                confidence=1.0 - (fee + min_edge) / edge,
                now_ms=now_ms,
                ttl_ms=p.ttl_ms,
                reason=(
                    f"ask {format_micro(ask)} below {p.fair_source} fair {format_micro(fair)}"
                    f" by {format_micro(edge)} (fee {format_micro(fee)})"
                ),
                trigger=("ask", ask, asz, ts),
            )
        )

    # -- one binary market: data quality ----------------------------------------------------------
    def _check_pair(self, st: _TokenState, ask: int, ts: int, ctx: SignalContext) -> None:
        other = ctx.book(st.complement)
        if other is None or not other.trusted:
            return
        other_ask = other.best_ask()
        cid = st.market.condition_id
        if other_ask is not None and ask + other_ask < ONE:
            if cid not in self._mispriced:
                self._mispriced.add(cid)
                self._flag(
                    DataQualityFlag(
                        ts,
                        cid,
                        "binary_pair_asks_below_one",
                        f"asks {format_micro(ask)} + {format_micro(other_ask)} < 1"
                        f" (tokens {st.market.token_ids[0]}, {st.market.token_ids[1]})",
                    )
                )
        else:
            self._mispriced.discard(cid)

    def _flag(self, flag: DataQualityFlag) -> None:
        self.data_quality_count += 1
        if len(self.data_quality_flags) < self.params.max_data_quality_flags:
            self.data_quality_flags.append(flag)

    # -- neg-risk events: complement arbitrage -------------------------------------------------------
    def _rebuild_baskets(self, ctx: SignalContext) -> None:
        """(Re)build the baskets when the registry grew; fills every leg from the current books."""
        markets = ctx.markets
        self._registry_size = len(markets)
        self._leg_of = {}
        for event_id, group in markets.neg_risk_groups().items():
            # an augmented event's implicit "Other" outcome can win: the YES legs then pay nothing
            if len(group) < 2 or any(m.augmented for m in group):
                continue
            basket = _Basket(event_id, tuple(group))
            for i, (token, market) in enumerate(zip(basket.tokens, basket.markets, strict=True)):
                self._leg_of[token] = (basket, i)
                ask = _usable_ask(ctx.book(token))
                basket.set_leg(i, ask, taker_fee_per_share(ask, market) if ask else 0)
        for token, st in self._states.items():
            link = self._leg_of.get(token)
            st.basket, st.leg = link if link is not None else (None, 0)

    def _emit_basket(
        self, basket: _Basket, ts: int, ctx: SignalContext, now_ms: int, out: list[Opportunity]
    ) -> None:
        p = self.params
        asks: list[int] = []
        size = p.arb_max_size_micro
        fees = 0
        for token, market in zip(basket.tokens, basket.markets, strict=True):
            book = ctx.book(token)
            ask = _usable_ask(book)
            if not ask or book is None:
                return
            asks.append(ask)
            size = min(size, book.best_ask_size())
            fees += taker_fee_per_share(ask, market)
        edge = ONE - sum(asks)
        if edge <= fees + p.arb_min_edge_micro:
            return
        key = tuple(asks)
        if key == basket.fired:
            return
        size = floor_size(size)
        # every leg must be placeable, or the basket is a naked directional bet
        if any(size < m.min_order_size for m in basket.markets):
            return
        basket.fired = key
        group_id = "g-" + opportunity_id(NAME, basket.event_id, Side.BUY, "negrisk", *asks, ts)
        confidence = 1.0 - (fees + p.arb_min_edge_micro) / edge
        reason = (
            f"neg-risk {basket.event_id}: {len(asks)} YES asks sum {format_micro(ONE - edge)}"
            f" (fees {format_micro(fees)})"
        )
        for token, market, ask in zip(basket.tokens, basket.markets, asks, strict=True):
            out.append(
                buy_opportunity(
                    strategy=NAME,
                    market=market,
                    token_id=token,
                    size=size,
                    limit_price=ask,
                    fair_value=ask + edge,
                    confidence=confidence,
                    now_ms=now_ms,
                    ttl_ms=p.arb_ttl_ms,
                    reason=reason,
                    trigger=(group_id,),
                    group_id=group_id,
                )
            )
