"""Spread Hunter: an ask left below fair value by a seller, and the neg-risk complement arbitrage.

Theory of operation
-------------------
A binary market's two books mirror each other (BUY YES at p is SELL NO at 1 - p), so the module keeps
one view per market, in YES terms: each price change is read on the first of its tokens with a trusted
book (a NO book read mirrored), and both tokens are judged from it, NO's ask being 1 - the YES bid.

The view feeds a fair-value estimator with the microprice (size-weighted mid) each time the top of
book changes, and (for "ewma", when `trade_weight` > 0) with last-trade prices. A quote is judged
against the fair value *before* the quote is folded in: the microprice always lies between bid and ask,
so a fair value that already contains the quote being judged could never sit above its ask. The "ewma"
estimator is a time-decayed weighted mean (sum and weight both halve every `half_life_ms` of event
time), so a burst of events and a quiet minute weigh what they should and nothing depends on a clock.
It also keeps decayed squared residuals and squared weights, which give the standard error of the mean,
and the decayed mean spread.

What a professional requires before lifting an ask below that fair value:

- The edge pays the taker fee plus the larger of `min_edge_ticks` and `noise_z` standard errors of the
  fair value: an edge inside the estimator's own noise is no edge.
- The dislocation was made by a taker, not by the makers (`require_sweep`). When makers requote a book
  lower without trading they are telling us the fair value moved (news, a vacuum, the drift) and the
  estimator merely lags: buying there is catching a falling knife. A cheap ask is worth lifting when a
  seller has just sold that token through its bids at least one tick above the ask, within
  `sweep_window_ms`: a marketable order that swept the bids and rested its remainder below fair value
  is one venue event. A taker buying NO at q sold YES at 1 - q, so prints count for both tokens.

Passive snipe: after such a sweep, when the ask is *not* cheap (the makers' ask still sits at or above
fair value) but the spread is `passive_spread_mult` times its usual width and posting one tick above
the best bid still leaves `passive_margin_micro` beyond the minimum edge, the module asks for a
post-only bid with urgency "passive", limit fair - minimum edge (makers pay no fee), valid
`passive_ttl_ms`: the next seller fills it inside the hole the sweep left. One per token per TTL.

Changes behind the cached touch (most deltas land deeper in the book) cost one comparison. An untrusted
view resets the market's estimator: after a gap the old fair value says nothing about the new book. A
crossed book is a data glitch and is skipped.

Neg-risk arbitrage: each complete neg-risk event (the market metadata says its outcomes are all there:
not augmented, no "Other" placeholder, every market open and loaded) is a basket of YES legs of which
exactly one pays 1. The running sum of leg asks is updated in O(1) per touched leg; only when it clears
`1 - arb_min_edge` are the books re-read and the basket judged exactly: one common size for every leg
(the thinnest leg's ask size), and the profit it locks if the outcome netting the fewest shares after
its fee (taken in shares) wins, which must beat `arb_min_edge` per share (core/baskets.py). Then one
BUY per leg with a shared group id; each leg's edge is that locked profit per share, so min-edge
filters downstream judge the basket, not an arbitrary share of it.

YES ask + NO ask < 1 inside one binary market cannot be traded (the venue merge-matches it, and the
books mirror each other), so it is recorded in `data_quality_flags` and suppresses trading that market.

Compiled kernel (issue 15): where the compiled book serves (`book_implementation() == "compiled"` when
the module is built) and the extension polysnipe.core.signals._hunter is built, the per-market and
per-token state and the common path of `on_event` run in C (src/core/signals/_hunter.c, its header
says how), with the same answers to the last bit. This Python stays the reference, and the rare paths
are shared: the kernel hands its candidates to `_cheap_ask`, `_passive_bid`, `_emit_basket` and
`_flag_pair` below, so every Opportunity and flag is made by the same code either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

import attrs

from polysnipe.core.baskets import worst_case_profit
from polysnipe.core.book import Book, book_implementation
from polysnipe.core.events import BookSnapshot, Event, LastTrade, PriceChange, Side
from polysnipe.core.market import Market
from polysnipe.core.opportunity import Opportunity, opportunity_id
from polysnipe.core.signals.base import (
    SignalContext,
    buy_opportunity,
    complement_bounds,
    floor_size,
    params_from,
    taker_fee_per_share,
    tradable_price,
)
from polysnipe.core.units import ONE, format_micro

try:
    from polysnipe.core.signals._hunter import Basket, Kernel, MarketState, Token

    _COMPILED = True
except ImportError:  # the extension is not built: the reference serves alone
    _COMPILED = False

__all__ = ["NAME", "DataQualityFlag", "SpreadHunter", "SpreadHunterParams"]

NAME = "spread_hunter"
FAIR_SOURCES = ("ewma", "microprice")
_UNSEEN = -1  # top-of-book cache value no book can report, so the first look always counts as a change
#: the kernel's ints are exact up to here (int64 sums, exact doubles)
_KERNEL_INT_MAX = 2**53


#: bounds on the float settings (weights and multipliers, z-scores), far past any use: a value near
#: float's range turns the fair value or the edge threshold into infinity, which no price can be
#: rounded from. Below 2**26, an int setting's products with the kernel's ints stay exact as doubles.
_MAX_FACTOR = 1e6
_MAX_Z = 1e3


@attrs.frozen(slots=True)
class SpreadHunterParams:
    #: "ewma" (time-decayed mean of microprices and trades) or "microprice" (the previous microprice)
    fair_source: str = attrs.field(default="ewma", validator=attrs.validators.in_(FAIR_SOURCES))
    half_life_ms: int = attrs.field(default=5_000, validator=attrs.validators.gt(0))
    #: weight of one last-trade price relative to one microprice observation ("ewma" only). Off by
    #: default: prints are one-sided (a sell prints at the bid) and a sweep's prints would drag the fair
    #: value toward the very dislocation being judged.
    trade_weight: float = attrs.field(
        default=0.0, validator=[attrs.validators.ge(0.0), attrs.validators.le(_MAX_FACTOR)]
    )
    #: observations a market needs before its fair value is trusted
    min_observations: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    #: edge required beyond the taker fee, in ticks of the token's book
    min_edge_ticks: int = attrs.field(default=1, validator=attrs.validators.ge(0))
    #: ... and at least this many standard errors of the fair value ("ewma" only; "microprice" has none)
    noise_z: float = attrs.field(
        default=2.0, validator=[attrs.validators.ge(0.0), attrs.validators.le(_MAX_Z)]
    )
    #: only an ask a seller just swept down to is a snipe; False trusts any ask below fair value
    require_sweep: bool = True
    #: how recent the sweep must be: its prints and the ask it left are one venue event
    sweep_window_ms: int = attrs.field(default=100, validator=attrs.validators.ge(0))
    max_size_micro: int = attrs.field(default=100_000_000, validator=attrs.validators.gt(0))
    ttl_ms: int = attrs.field(default=2_000, validator=attrs.validators.gt(0))
    #: post a bid into the hole a sweep left when the ask is not cheap ("ewma" and `require_sweep` only)
    passive_enabled: bool = True
    #: the spread must be at least this many times its usual (decayed mean) width
    passive_spread_mult: float = attrs.field(
        default=2.0, validator=[attrs.validators.ge(1.0), attrs.validators.le(_MAX_FACTOR)]
    )
    #: the post (best bid + 1 tick) must sit this far below fair - minimum edge: what resting and then
    #: holding inventory must earn, so a price distance rather than ticks
    passive_margin_micro: int = attrs.field(default=10_000, validator=attrs.validators.ge(0))
    passive_ttl_ms: int = attrs.field(default=15_000, validator=attrs.validators.gt(0))
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


class _HasMarket(Protocol):
    @property
    def market(self) -> Market: ...


class _Seller(Protocol):
    """What `_cheap_ask` and `_passive_bid` read and write of a token: a _TokenState or the kernel's Token."""

    fired_ask: int
    sell_px: int
    sell_ts: int
    passive_until: int

    @property
    def token(self) -> str: ...
    @property
    def mkt(self) -> _HasMarket: ...


class _BasketView(Protocol):
    """What `_emit_basket` reads and writes of a basket: a _Basket or the kernel's Basket."""

    fired: tuple[int, ...]

    @property
    def event_id(self) -> str: ...
    @property
    def markets(self) -> tuple[Market, ...]: ...
    @property
    def tokens(self) -> tuple[str, ...]: ...


class _TokenState:
    """What is per token: its sweep, what it last asked for, and its neg-risk basket leg."""

    __slots__ = (
        "ask_to",
        "basket",
        "bid_from",
        "fired_ask",
        "is_yes",
        "leg",
        "mkt",
        "passive_until",
        "sell_px",
        "sell_ts",
        "token",
    )

    def __init__(self, mkt: _MarketState, token: str, is_yes: bool) -> None:
        self.mkt = mkt
        self.token = token
        self.is_yes = is_yes
        self.basket: _Basket | None = None
        self.leg = 0
        #: the ask an opportunity was last emitted at; 0 once the edge is gone, so a re-opening fires
        self.fired_ask = 0
        #: highest price a taker sold this token at in the run of prints that ended at `sell_ts`
        self.sell_px = 0
        self.sell_ts = 0
        #: event time before which no new passive bid is asked for (one may still be resting)
        self.passive_until = 0
        #: the market's cached touch in this token's own prices: a bid change at or above `bid_from`
        #: or an ask change at or below `ask_to` may move it; others sit behind it (set_touch)
        self.bid_from: float = -math.inf
        self.ask_to: float = math.inf


class _MarketState:
    """The market's view in YES terms: top-of-book cache and the fair-value estimator."""

    __slots__ = (
        "ask",
        "asz",
        "bid",
        "book",
        "bsz",
        "last_micro",
        "last_ts",
        "market",
        "n",
        "no",
        "s",
        "sp",
        "sw",
        "v",
        "w",
        "w2",
        "yes",
    )

    def __init__(self, market: Market) -> None:
        self.market = market
        self.yes = _TokenState(self, market.token_ids[0], True)
        self.no = _TokenState(self, market.token_ids[1], False)
        #: the book last read while trusted (None until then and after a reset) and its top, YES terms
        self.book: Book | None = None
        self.bid: int | None = _UNSEEN
        self.ask: int | None = _UNSEEN
        self.bsz = _UNSEEN
        self.asz = _UNSEEN
        self.set_touch(_UNSEEN, _UNSEEN, _UNSEEN, _UNSEEN)
        self.n = 0
        #: decayed sums: weighted values, weights, weighted squared residuals, squared weights; and
        #: spreads with their own weights (book observations only): sp / sw is the usual spread
        self.s = 0.0
        self.w = 0.0
        self.v = 0.0
        self.w2 = 0.0
        self.sp = 0.0
        self.sw = 0.0
        self.last_ts = 0
        self.last_micro = 0.0

    def set_touch(self, bid: int | None, ask: int | None, bsz: int, asz: int) -> None:
        """Cache the top of book (YES terms) and, per token, the window of changes that can move it:
        a YES bid below the bid or a YES ask above the ask is behind the touch, and so are their
        mirrors on NO (`complement_bounds`)."""
        self.bid, self.ask, self.bsz, self.asz = bid, ask, bsz, asz
        yes = self.yes
        yes.bid_from = -math.inf if bid is None else bid
        yes.ask_to = math.inf if ask is None else ask
        self.no.bid_from, self.no.ask_to = complement_bounds(yes.bid_from, yes.ask_to)

    def forget(self) -> None:
        self.book = None
        self.set_touch(_UNSEEN, _UNSEEN, _UNSEEN, _UNSEEN)
        self.n = 0
        self.s = self.w = self.v = self.w2 = self.sp = self.sw = 0.0
        self.last_micro = 0.0
        self.yes.fired_ask = self.no.fired_ask = 0

    def std_error(self) -> float:
        """Standard error of the decayed mean: residual spread times sqrt(sum w^2) / sum w."""
        if self.w <= 0.0:
            return 0.0
        return math.sqrt(self.v / self.w * self.w2) / self.w


class _Basket:
    """The YES legs of one complete neg-risk event with the running sum of their asks."""

    __slots__ = (
        "asks",
        "event_id",
        "fired",
        "markets",
        "n_valid",
        "tokens",
        "total_ask",
    )

    def __init__(self, event_id: str, markets: tuple[Market, ...]) -> None:
        self.event_id = event_id
        self.markets = markets
        self.tokens = tuple(m.token_ids[0] for m in markets)
        n = len(markets)
        self.asks = [0] * n  # 0: leg not tradable now
        self.n_valid = 0
        self.total_ask = 0
        self.fired: tuple[int, ...] = ()

    def set_leg(self, i: int, ask: int) -> None:
        old = self.asks[i]
        if old:
            self.n_valid -= 1
            self.total_ask -= old
        if ask:
            self.n_valid += 1
            self.total_ask += ask
        self.asks[i] = ask


def _kernel_serves(p: SpreadHunterParams) -> bool:
    """Whether the kernel computes exactly what the reference does with these parameters: ints within
    `_KERNEL_INT_MAX` and weights that are floats or ints (everything a config file gives; the
    validators keep them finite and small enough to be exact as doubles); others run the reference.
    """
    ints = (p.half_life_ms, p.min_observations, p.min_edge_ticks, p.sweep_window_ms, p.passive_ttl_ms,
            p.arb_min_edge_micro)  # fmt: skip
    weights = (p.trade_weight, p.noise_z, p.passive_spread_mult)
    return all(type(v) is int and 0 <= v <= _KERNEL_INT_MAX for v in ints) and all(
        type(v) is float or type(v) is int for v in weights
    )


def _usable_ask(book: Book | None) -> int:
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
        "_kernel",
        "_kernel_leg_of",
        "_leg_of",
        "_mispriced",
        "_registry_revision",
        "_tokens",
        "data_quality_count",
        "data_quality_flags",
        "name",
        "params",
    )
    #: what on_event reacts to: the pipeline calls it for nothing else
    event_types: ClassVar[tuple[type, ...]] = (PriceChange, BookSnapshot, LastTrade)

    def __init__(self, params: SpreadHunterParams | None = None) -> None:
        self.name = NAME
        self.params = params or SpreadHunterParams()
        self._ewma = self.params.fair_source == "ewma"
        self._tokens: dict[str, _TokenState] = {}
        self._leg_of: dict[str, tuple[_Basket, int]] = {}
        self._registry_revision = -1
        #: condition ids currently showing YES ask + NO ask < 1
        self._mispriced: set[str] = set()
        #: append-only (the pipeline reads new entries by index); bounded by max_data_quality_flags
        self.data_quality_flags: list[DataQualityFlag] = []
        self.data_quality_count = 0
        #: the compiled kernel, where it serves (module doc); None runs the reference below
        self._kernel: Kernel | None = None
        self._kernel_leg_of: dict[str, tuple[Basket, int]] = {}
        if _COMPILED and book_implementation() == "compiled" and _kernel_serves(self.params):
            p = self.params
            self._kernel = Kernel(
                self, {}, self._mispriced, ewma=self._ewma, half_life_ms=p.half_life_ms,
                trade_weight=p.trade_weight, min_observations=p.min_observations,
                min_edge_ticks=p.min_edge_ticks, noise_z=p.noise_z, require_sweep=p.require_sweep,
                sweep_window_ms=p.sweep_window_ms, passive_enabled=p.passive_enabled,
                passive_spread_mult=p.passive_spread_mult, arb_min_edge_micro=p.arb_min_edge_micro,
            )  # fmt: skip

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SpreadHunter:
        return cls(params_from(SpreadHunterParams, params))

    @property
    def event_handler(self) -> Callable[[Event, SignalContext, int], list[Opportunity]]:
        """What `on_event` forwards to, fixed at construction: the kernel's own `on_event` when compiled,
        so the pipeline calls it without this module's Python frame in between (base.handler_of)."""
        return self._kernel.on_event if self._kernel is not None else self.on_event

    def on_event(self, event: Event, ctx: SignalContext, now_ms: int) -> list[Opportunity]:
        kernel = self._kernel
        if kernel is not None:
            return kernel.on_event(event, ctx, now_ms)
        if type(event) is PriceChange:
            out: list[Opportunity] = []
            ts = event.ts_ms
            get = self._tokens.get
            bid_side = Side.BUY
            done: _MarketState | None = None
            for ch in event.changes:
                tst = get(ch.token_id) or self._token(ch.token_id, ctx)
                if tst is None:
                    continue
                ms = tst.mkt
                if ms is done:
                    continue  # the market was read after the whole batch: nothing left to see
                # A level behind the touch we last saw leaves the top of book as it was: the common
                # case, decided on the cached touch (in this token's prices, see set_touch) without
                # reading the book. A change that moves the touch is at or inside it.
                view = ms.book
                if view is not None and view.trusted:
                    if ch.side is bid_side:
                        if ch.price < tst.bid_from:
                            continue
                    elif ch.price > tst.ask_to:
                        continue
                self._on_market(ms, tst, ts, ctx, now_ms, out)
                done = ms
            return out
        if type(event) is BookSnapshot:
            out = []
            tst = self._tokens.get(event.token_id) or self._token(event.token_id, ctx)
            if tst is not None:
                self._on_market(tst.mkt, tst, event.ts_ms, ctx, now_ms, out)
            return out
        if type(event) is LastTrade:
            self._on_trade(event, ctx)
        return []

    # -- per market ----------------------------------------------------------------------------
    def _token(self, token_id: str, ctx: SignalContext) -> _TokenState | None:
        markets = ctx.markets
        market = markets.get_by_token(token_id)
        if market is None:
            return None
        ms = _MarketState(market)
        self._tokens[ms.yes.token] = ms.yes
        self._tokens[ms.no.token] = ms.no
        if self.params.arb_enabled and markets.revision != self._registry_revision:
            self._rebuild_baskets(ctx)
        else:
            link = self._leg_of.get(ms.yes.token)
            if link is not None:
                ms.yes.basket, ms.yes.leg = link
        return self._tokens[token_id]

    def _on_trade(self, trade: LastTrade, ctx: SignalContext) -> None:
        tst = self._tokens.get(trade.token_id) or self._token(trade.token_id, ctx)
        if tst is None:
            return
        ms = tst.mkt
        ts = trade.ts_ms
        if self._ewma and self.params.trade_weight > 0.0 and ms.n:
            price = trade.price if tst.is_yes else ONE - trade.price
            self._observe(ms, float(price), ts, self.params.trade_weight)  # signal math: fair value estimator
        # The seller's side of the print: a taker SELL sold this token at the price; a taker BUY sold
        # the complement at 1 - price (BUY YES at p is SELL NO at 1 - p).
        if trade.side is Side.SELL:
            seller, price = tst, trade.price
        else:
            seller, price = (ms.no if tst.is_yes else ms.yes), ONE - trade.price
        # a sweep prints one trade per level it takes, from the best bid down: keep its highest price
        if ts - seller.sell_ts > self.params.sweep_window_ms or price > seller.sell_px:
            seller.sell_px = price
        seller.sell_ts = ts

    def _observe(self, ms: _MarketState, value: float, ts: int, weight: float, spread: int = -1) -> None:
        """Fold one observation in; a book observation (`spread` >= 0) also feeds the usual spread."""
        if self._ewma:
            if ms.n:
                if ts > ms.last_ts:
                    # capped at 64 half-lives (a weight of 5e-20): after a long quiet spell the sums
                    # must stay normal floats, or the squared weights underflow and s / w divides by 0
                    decay = 0.5 ** min((ts - ms.last_ts) / self.params.half_life_ms, 64.0)
                    ms.s *= decay
                    ms.w *= decay
                    ms.v *= decay
                    ms.w2 *= decay * decay
                    ms.sp *= decay
                    ms.sw *= decay
                r = value - ms.s / ms.w
                ms.v += weight * r * r
            ms.s += weight * value
            ms.w += weight
            ms.w2 += weight * weight
            if spread >= 0:
                ms.sp += weight * spread
                ms.sw += weight
        else:
            ms.last_micro = value
        ms.n += 1
        if ts > ms.last_ts:
            ms.last_ts = ts

    def _on_market(
        self,
        ms: _MarketState,
        tst: _TokenState,
        ts: int,
        ctx: SignalContext,
        now_ms: int,
        out: list[Opportunity],
    ) -> None:
        books = ctx.books
        book = books.get(tst.token)
        if book is None or not book.trusted:
            # the mirror may still be trusted; it shows the same market
            tst = ms.no if tst.is_yes else ms.yes
            book = books.get(tst.token)
            if book is None or not book.trusted:
                if ms.yes.basket is not None:
                    ms.yes.basket.set_leg(ms.yes.leg, 0)
                if ms.n or ms.book is not None:
                    ms.forget()
                return
        bid: int | None
        ask: int | None
        if tst.is_yes:
            bid = book.top_bid
            ask = book.top_ask
            bsz = book.best_bid_size()
            asz = book.best_ask_size()
        else:
            no_bid = book.top_bid
            no_ask = book.top_ask
            bid = None if no_ask is None else ONE - no_ask
            ask = None if no_bid is None else ONE - no_bid
            bsz = book.best_ask_size()
            asz = book.best_bid_size()
        old_bid, old_ask = ms.bid, ms.ask
        if ask == old_ask and bid == old_bid and asz == ms.asz and bsz == ms.bsz:
            return
        ms.book = book
        ms.set_touch(bid, ask, bsz, asz)
        tick = book.tick_size
        if ask is None or (bid is not None and bid >= ask):
            if ms.yes.basket is not None:
                ms.yes.basket.set_leg(ms.yes.leg, 0)
            return
        if ask != old_ask or bid != old_bid:
            if ms.yes.basket is not None:
                self._update_leg(ms.yes, ask, tick, ts, ctx, now_ms, out)
            self._check_pair(ms, ts, ctx)
        if bid is None:
            return

        p = self.params
        ewma = self._ewma
        spread = ask - bid
        micro = (bid * asz + ask * bsz) / (bsz + asz)
        if ms.n < p.min_observations or (bid == old_bid and ask == old_ask):
            # only sizes at the touch changed: the microprice moves the fair value, but no quote is
            # new, so there is nothing new to judge (a sweep always moves a price)
            self._observe(ms, micro, ts, 1.0, spread)
            return
        # Everything is judged on the estimator as it stood before this quote (see the module doc).
        prior = ms.s / ms.w if ewma else ms.last_micro
        fair_yes = int(prior)  # floors (0 < prior < 1): never overstate an edge
        fair_no = int(ONE - prior)
        min_edge = p.min_edge_ticks * tick
        no_ask = ONE - bid
        cheap_yes = fair_yes - ask > min_edge
        cheap_no = fair_no - no_ask > min_edge
        # a bid is only worth posting while the makers' own ask still sits at or above fair value
        wide = (
            ewma
            and p.passive_enabled
            and p.require_sweep
            and ms.sw > 0.0
            and spread >= p.passive_spread_mult * ms.sp / ms.sw
        )
        post_yes = wide and not cheap_yes and ask >= fair_yes
        post_no = wide and not cheap_no and no_ask >= fair_no
        required = min_edge
        if ewma and (cheap_yes or cheap_no or post_yes or post_no):
            # signal math -> price: rounding the noise up only ever asks for more edge
            required = max(min_edge, math.ceil(p.noise_z * ms.std_error()))
        self._observe(ms, micro, ts, 1.0, spread)
        yes, no = ms.yes, ms.no
        if not (cheap_yes and self._cheap_ask(yes, ask, asz, fair_yes, required, tick, ts, now_ms, out)):
            yes.fired_ask = 0
            if post_yes:
                self._passive_bid(yes, bid, ask, fair_yes, required, tick, ts, now_ms, out)
        if not (cheap_no and self._cheap_ask(no, no_ask, bsz, fair_no, required, tick, ts, now_ms, out)):
            no.fired_ask = 0
            if post_no:
                self._passive_bid(no, ONE - ask, no_ask, fair_no, required, tick, ts, now_ms, out)

    def _update_leg(
        self,
        st: _TokenState,
        ask: int,
        tick: int,
        ts: int,
        ctx: SignalContext,
        now_ms: int,
        out: list[Opportunity],
    ) -> None:
        """Move this YES token's ask in its neg-risk basket; emit the basket when it pays."""
        basket = st.basket
        assert basket is not None
        ok = tradable_price(ask, tick)
        basket.set_leg(st.leg, ask if ok else 0)
        if (
            basket.n_valid == len(basket.asks)
            # fees only lower what a basket locks: the exact rule runs when the asks alone leave room
            and basket.total_ask + self.params.arb_min_edge_micro < ONE
        ):
            self._emit_basket(basket, ts, ctx, now_ms, out)
        else:
            basket.fired = ()  # the edge closed: the same prices may fire again later

    # -- per token -----------------------------------------------------------------------------
    def _swept_above(self, st: _Seller, price: int, ts: int) -> bool:
        """A taker sold this token above `price` within the sweep window."""
        return st.sell_px > price and ts - st.sell_ts <= self.params.sweep_window_ms

    def _cheap_ask(
        self,
        st: _Seller,
        ask: int,
        asz: int,
        fair: int,
        required: int,
        tick: int,
        ts: int,
        now_ms: int,
        out: list[Opportunity],
    ) -> bool:
        """Judge an ask below fair value by more than the minimum edge; False when the edge is gone."""
        p = self.params
        market = st.mkt.market
        edge = fair - ask
        fee = taker_fee_per_share(ask, market)
        if edge <= required + fee:
            return False
        if ask == st.fired_ask or market.condition_id in self._mispriced or not tradable_price(ask, tick):
            return True
        if p.require_sweep and not self._swept_above(st, ask + tick - 1, ts):
            return True
        size = floor_size(min(asz, p.max_size_micro))
        if size < market.min_order_size:
            return True
        st.fired_ask = ask
        swept = f"; swept from {format_micro(st.sell_px)}" if p.require_sweep else ""
        out.append(
            buy_opportunity(
                strategy=NAME,
                market=market,
                token_id=st.token,
                size=size,
                limit_price=ask,
                fair_value=fair,
                confidence=1.0 - (fee + required) / edge,
                now_ms=now_ms,
                ttl_ms=p.ttl_ms,
                reason=(
                    f"ask {format_micro(ask)} below {p.fair_source} fair {format_micro(fair)}"
                    f" by {format_micro(edge)} (fee {format_micro(fee)}, min {format_micro(required)}{swept})"
                ),
                trigger=("ask", ask, asz, ts),
            )
        )
        return True

    def _passive_bid(
        self,
        st: _Seller,
        bid: int,
        ask: int,
        fair: int,
        required: int,
        tick: int,
        ts: int,
        now_ms: int,
        out: list[Opportunity],
    ) -> None:
        """After a sweep with the ask not cheap: ask for a post-only bid inside the hole it left."""
        p = self.params
        market = st.mkt.market
        post = bid + tick
        limit = fair - required
        limit -= limit % tick
        if (
            post > limit - p.passive_margin_micro
            or limit >= fair  # no edge left to post for (a zero required edge, a fair value on tick)
            or post >= ask
            or ts < st.passive_until
            or market.condition_id in self._mispriced
            or not tradable_price(post, tick)
            or not self._swept_above(st, bid, ts)
        ):
            return
        size = floor_size(p.max_size_micro)
        if size < market.min_order_size:
            return
        st.passive_until = ts + p.passive_ttl_ms
        out.append(
            buy_opportunity(
                strategy=NAME,
                market=market,
                token_id=st.token,
                size=size,
                limit_price=limit,
                fair_value=fair,
                confidence=1.0 - required / (fair - post),
                now_ms=now_ms,
                ttl_ms=p.passive_ttl_ms,
                reason=(
                    f"sweep from {format_micro(st.sell_px)} left bid {format_micro(bid)} /"
                    f" ask {format_micro(ask)} around {p.fair_source} fair {format_micro(fair)}:"
                    f" post-only bid up to {format_micro(limit)}"
                ),
                trigger=("passive", bid, ask, ts),
                urgency="passive",
            )
        )

    # -- one binary market: data quality ----------------------------------------------------------
    def _check_pair(self, ms: _MarketState, ts: int, ctx: SignalContext) -> None:
        books = ctx.books
        yes_book = books.get(ms.yes.token)
        no_book = books.get(ms.no.token)
        if yes_book is None or no_book is None or not yes_book.trusted or not no_book.trusted:
            return
        yes_ask = yes_book.top_ask
        no_ask = no_book.top_ask
        cid = ms.market.condition_id
        if yes_ask is not None and no_ask is not None and yes_ask + no_ask < ONE:
            if cid not in self._mispriced:
                self._flag_pair(ms.market, ts, yes_ask, no_ask)
        else:
            self._mispriced.discard(cid)

    def _flag_pair(self, market: Market, ts: int, yes_ask: int, no_ask: int) -> None:
        """The market's pair of asks newly shows below 1: mark it mispriced and flag it."""
        cid = market.condition_id
        self._mispriced.add(cid)
        yes, no = market.token_ids
        self._flag(
            DataQualityFlag(
                ts,
                cid,
                "binary_pair_asks_below_one",
                f"asks {format_micro(yes_ask)} + {format_micro(no_ask)} < 1 (tokens {yes}, {no})",
            )
        )

    def _flag(self, flag: DataQualityFlag) -> None:
        self.data_quality_count += 1
        if len(self.data_quality_flags) < self.params.max_data_quality_flags:
            self.data_quality_flags.append(flag)

    # -- neg-risk events: complement arbitrage -------------------------------------------------------
    def _rebuild_baskets(self, ctx: SignalContext) -> None:
        """(Re)build the baskets when the registry changed; fills every leg from the current books.

        Only complete events are baskets (MarketRegistry.complete_baskets fails closed): on an
        augmented event a placeholder or "Other" outcome can win and every YES leg pays nothing.
        """
        markets = ctx.markets
        self._registry_revision = markets.revision
        self._leg_of = {}
        for event_id, group in markets.complete_baskets().items():
            basket = _Basket(event_id, group)
            for i, token in enumerate(basket.tokens):
                self._leg_of[token] = (basket, i)
                basket.set_leg(i, _usable_ask(ctx.book(token)))
        for token, st in self._tokens.items():
            link = self._leg_of.get(token) if st.is_yes else None
            st.basket, st.leg = link if link is not None else (None, 0)

    def _emit_basket(
        self, basket: _BasketView, ts: int, ctx: SignalContext, now_ms: int, out: list[Opportunity]
    ) -> None:
        p = self.params
        asks: list[int] = []
        size = p.arb_max_size_micro
        for token in basket.tokens:
            book = ctx.book(token)
            ask = _usable_ask(book)
            if not ask or book is None:
                return
            asks.append(ask)
            size = min(size, book.best_ask_size())
        key = tuple(asks)
        if key == basket.fired:
            return
        size = floor_size(size)
        # every leg must be placeable, or the basket is a naked directional bet
        if any(size < m.min_order_size for m in basket.markets):
            return
        # what the basket locks if the outcome that nets the fewest shares after fees wins (baskets.py)
        locked = worst_case_profit(tuple(zip(basket.markets, asks, strict=True)), size)
        required = p.arb_min_edge_micro * size // ONE
        if locked <= required:
            return
        basket.fired = key
        edge = locked * ONE // size  # per share of each leg
        group_id = "g-" + opportunity_id(NAME, basket.event_id, Side.BUY, "negrisk", *asks, ts)
        confidence = 1.0 - required / locked
        reason = (
            f"neg-risk {basket.event_id}: {len(asks)} YES asks sum {format_micro(sum(asks))};"
            f" worst case after fees locks {format_micro(edge)} per share"
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

    # -- the kernel's registry reads (its C code calls _kernel_token for a token it does not know) -----
    def _kernel_token(self, token_id: str, ctx: SignalContext) -> Token | None:
        """`_token` for the kernel: the same registry reads, making the kernel's state objects."""
        kernel = self._kernel
        assert kernel is not None
        markets = ctx.markets
        market = markets.get_by_token(token_id)
        if market is None:
            return None
        ms = MarketState(market)
        tokens = kernel.tokens
        tokens[ms.yes.token] = ms.yes
        tokens[ms.no.token] = ms.no
        if self.params.arb_enabled and markets.revision != self._registry_revision:
            self._kernel_rebuild_baskets(ctx, tokens)
        else:
            link = self._kernel_leg_of.get(ms.yes.token)
            if link is not None:
                ms.yes.basket, ms.yes.leg = link
        return tokens[token_id]

    def _kernel_rebuild_baskets(self, ctx: SignalContext, tokens: dict[str, Token]) -> None:
        """`_rebuild_baskets` for the kernel, whose Basket keeps the leg sums in C."""
        markets = ctx.markets
        self._registry_revision = markets.revision
        self._kernel_leg_of = leg_of = {}
        for event_id, group in markets.complete_baskets().items():
            basket = Basket(event_id, group)
            for i, token in enumerate(basket.tokens):
                leg_of[token] = (basket, i)
                basket.set_leg(i, _usable_ask(ctx.book(token)))
        for token, st in tokens.items():
            link = leg_of.get(token) if st.is_yes else None
            st.basket, st.leg = link if link is not None else (None, 0)
