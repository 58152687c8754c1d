"""Liquidity Vacuum: makers pull the depth at the touch of one side; buy before the price jumps.

Theory of operation
-------------------
A vacuum is makers withdrawing, not takers trading and not makers repricing. Per token and side the
module keeps an *anchor*: the touch price, the depth resting within `n_ticks` of it (at those fixed
prices) and the opposite touch, refreshed whenever the side holds or improves. When the touch
retreats, an episode starts; the module fires when, within `window_ms` of the first retreat:

- the touch has left the anchored zone (it retreated more than `n_ticks`), in at least `min_pulls`
  separate updates: a cascade of pulls, not one participant cancelling a couple of orders;
- the depth that stood in the zone fell by at least `drop_fraction` of itself and `min_depth_micro`,
  net of the size traded on that side since the anchor was measured. A retreat that trades explain
  (a taker eating the touch) re-anchors at once: the book it leaves is the new normal;
- the opposite touch has not moved. When makers requote (news, drift) both sides move together: that
  is a new price, already in the book, not a hole the price is about to fall into.

An episode slower than `window_ms` is not a vacuum: the view just before the update that ran out of
time becomes the anchor, so a slow drift followed by a sudden pull is still judged on the pull.

With asks gone the token is bought at its best ask now: the remaining offers are about to be repriced
up. With bids gone the complement is bought at its best ask (the mirror of the same move). The
expected repricing is `max(jump_ticks ticks, min_jump_micro)` beyond that ask; it must pay the taker fee.

A binary market's two books mirror each other (a YES bid is a NO ask), so one view suffices: each
price change is read on the first of its tokens whose book is trusted, and changes deeper than the
anchored zones are skipped after one comparison. The cooldown is keyed by the token bought.

Snapshots never trigger: the venue sends them after trades and on resync; they re-anchor both sides.
Untrusted books and tick-size changes clear the token's state.

Two implementations, one answer. The code below is the readable reference. Where the compiled book
runs (`core.book.book_implementation() == "compiled"` when the module is made) and the extension
`_vacuum` is built, a C kernel (src/core/signals/_vacuum.c) holds the same per-token state and runs the
same steps for every event; it calls back only when a side shows a vacuum, into `_opportunity`, the code
both paths share for the cooldown, the buy book's checks, the fee and the Opportunity's text
(tests/unit/test_vacuum_kernel.py holds the two paths to the same opportunities on random streams).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs

from polysnipe.core.book import Book, book_implementation
from polysnipe.core.events import BookSnapshot, Event, LastTrade, PriceChange, Side, TickSizeChange
from polysnipe.core.market import Market
from polysnipe.core.opportunity import Opportunity
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

__all__ = ["NAME", "LiquidityVacuum", "LiquidityVacuumParams", "zone_depth"]

NAME = "liquidity_vacuum"

_Kernel: type[VacuumKernel] | None
try:
    from polysnipe.core.signals._vacuum import VacuumKernel

    _Kernel = VacuumKernel
except ImportError:  # the extension (or the compiled book it reads through) is not built
    _Kernel = None

# Side.BUY is a read through the enum metaclass's __getattr__ hook (about 60 ns in 3.11); these are
# plain globals, read on every price change.
_BUY = Side.BUY
_SELL = Side.SELL


def _fraction(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{attribute.name} must be in (0, 1], got {value}")


@attrs.frozen(slots=True)
class LiquidityVacuumParams:
    #: the zone watched: the touch and the levels within this many ticks behind it; at most the
    #: 10,000 ticks of the finest grid (0.0001), which already span every price (a zone is read
    #: level by level, n_ticks + 1 lookups per read)
    n_ticks: int = attrs.field(default=3, validator=[attrs.validators.ge(0), attrs.validators.le(10_000)])
    #: the zone must empty this soon after the touch first retreats
    window_ms: int = attrs.field(default=1_000, validator=attrs.validators.gt(0))
    #: share of the zone's depth that must vanish (net of trades)
    drop_fraction: float = attrs.field(default=0.9, validator=_fraction)
    #: a thin zone emptying is noise: at least this many micro-shares must vanish (net of trades)
    min_depth_micro: int = attrs.field(default=100_000_000, validator=attrs.validators.gt(0))
    #: separate updates that each pulled the touch further back
    min_pulls: int = attrs.field(default=2, validator=attrs.validators.ge(1))
    cooldown_ms: int = attrs.field(default=10_000, validator=attrs.validators.ge(0))
    #: expected repricing beyond the ask after a vacuum: the larger of these two
    jump_ticks: int = attrs.field(default=2, validator=attrs.validators.gt(0))
    min_jump_micro: int = attrs.field(default=20_000, validator=attrs.validators.ge(0))
    max_size_micro: int = attrs.field(default=100_000_000, validator=attrs.validators.gt(0))
    ttl_ms: int = attrs.field(default=1_000, validator=attrs.validators.gt(0))


def zone_depth(book: Book, side: Side, n_ticks: int) -> int:
    """`book.depth(side, n_ticks)` for a book whose levels sit on its tick grid, in n_ticks + 1 lookups.

    The Python book's depth bisects and sums a slice through a generator (about 1 us); walking the few
    grid prices (`Book.grid_depth`) is cheaper. A level left off the grid by a tick-size change is not
    counted: that can only hide depth, never invent a drop (the change also clears the module's state).
    """
    price = book.top_bid if side is _BUY else book.top_ask
    return 0 if price is None else book.grid_depth(side, price, n_ticks)


class _SideState:
    """The anchor of one side of one book and the retreat episode measured against it."""

    __slots__ = (
        "depth",
        "last_depth",
        "last_opp",
        "last_px",
        "opp",
        "pulls",
        "px",
        "start_ts",
        "traded",
    )

    def __init__(self) -> None:
        #: anchor: touch price (0 = none), depth in its zone, opposite touch (0 = none)
        self.px = 0
        self.depth = 0
        self.opp = 0
        #: the previous view, which becomes the anchor when a slow retreat is followed by a fast one
        self.last_px = 0
        self.last_depth = 0
        self.last_opp = 0
        #: episode: event time of the first retreat (0 = none) and updates that pulled further back
        self.start_ts = 0
        self.pulls = 0
        #: size taken from this side by trades since the anchor was measured
        self.traded = 0

    def anchor(self, px: int, depth: int, opp: int) -> None:
        self.px = self.last_px = px
        self.depth = self.last_depth = depth
        self.opp = self.last_opp = opp
        self.start_ts = 0
        self.pulls = 0
        self.traded = 0


class _TokenTrack:
    __slots__ = ("asks", "bids", "complement", "market", "tick")

    def __init__(self, market: Market, complement: str) -> None:
        self.market = market
        self.complement = complement
        self.bids = _SideState()
        self.asks = _SideState()
        #: the book's tick when the anchors were last set (the zones are measured in it)
        self.tick = 0

    def clear(self) -> None:
        self.bids.px = self.asks.px = 0


def _kernel_for(module: LiquidityVacuum) -> VacuumKernel | None:
    """The compiled kernel for `module`, when the compiled book runs and the kernel takes its params."""
    if _Kernel is None or book_implementation() != "compiled":
        return None
    p = module.params
    try:
        return _Kernel(
            p.n_ticks, p.window_ms, p.drop_fraction, p.min_depth_micro, p.min_pulls, module._opportunity
        )
    except (TypeError, OverflowError):  # a parameter beyond int64 (or not an int): the reference copes
        return None


class LiquidityVacuum:
    __slots__ = ("_fired_ms", "_kernel", "_tracks", "name", "params")
    #: what on_event reacts to: the pipeline calls it for nothing else
    event_types: ClassVar[tuple[type, ...]] = (PriceChange, LastTrade, BookSnapshot, TickSizeChange)

    def __init__(self, params: LiquidityVacuumParams | None = None) -> None:
        self.name = NAME
        self.params = params or LiquidityVacuumParams()
        self._tracks: dict[str, _TokenTrack] = {}
        #: token bought -> event time of its last opportunity (the cooldown); both paths keep it here
        self._fired_ms: dict[str, int] = {}
        #: the compiled state and steps, or None: the code below runs
        self._kernel = _kernel_for(self)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> LiquidityVacuum:
        return cls(params_from(LiquidityVacuumParams, params))

    @property
    def event_handler(self) -> Callable[[Event, SignalContext, int], list[Opportunity]]:
        """What `on_event` forwards to, fixed at construction: the kernel's own `on_event` when compiled,
        so the pipeline calls it without this module's Python frame in between (base.handler_of)."""
        return self._kernel.on_event if self._kernel is not None else self.on_event

    def on_event(self, event: Event, ctx: SignalContext, now_ms: int) -> list[Opportunity]:
        if self._kernel is not None:
            return self._kernel.on_event(event, ctx, now_ms)
        if type(event) is not PriceChange:
            self._on_other(event, ctx)
            return []
        # Price changes, nearly every event: handled here rather than in a helper, one call less each.
        out: list[Opportunity] = []
        n_ticks = self.params.n_ticks
        tracks = self._tracks
        books = ctx.books
        view: _TokenTrack | None = None
        view_book: Book | None = None
        view_token = mirror = ""
        bid_dirty = ask_dirty = False
        # The view's zones, read once (they only move when the view is processed, after the loop), as
        # the prices at or beyond which a change lands in a zone: `bid_from` / `ask_to` for the view's
        # own token, `m_bid_from` / `m_ask_to` for its mirror (a NO bid at q is a YES ask at 1 - q).
        # A side with no anchor takes every change. A change behind the zones moves neither the zone
        # nor either touch: the common case, decided without reading the book.
        bid_from: float = 0
        ask_to: float = 0
        m_bid_from: float = 0
        m_ask_to: float = 0
        bid_side = _BUY
        for ch in event.changes:
            token = ch.token_id
            if token == view_token:
                if ch.side is bid_side:
                    if ch.price >= bid_from:
                        bid_dirty = True
                elif ch.price <= ask_to:
                    ask_dirty = True
                continue
            if token == mirror:
                if ch.side is bid_side:
                    if ch.price >= m_bid_from:
                        ask_dirty = True
                elif ch.price <= m_ask_to:
                    bid_dirty = True
                continue
            if view is not None and view_book is not None and (bid_dirty or ask_dirty):
                self._on_book(
                    view, view_token, view_book, bid_dirty, ask_dirty, event.ts_ms, ctx, now_ms, out
                )
            view = None
            view_token = mirror = ""
            track = tracks.get(token) or self._track(token, ctx)
            if track is None:
                continue
            book = books.get(token)
            if book is None or not book.trusted:
                track.clear()
                continue
            view, view_book, view_token, mirror = track, book, token, track.complement
            reach = n_ticks * track.tick
            bid_from = track.bids.px - reach if track.bids.px else -math.inf
            ask_to = track.asks.px + reach if track.asks.px else math.inf
            m_bid_from, m_ask_to = complement_bounds(bid_from, ask_to)
            if ch.side is bid_side:
                bid_dirty = ch.price >= bid_from
                ask_dirty = False
            else:
                bid_dirty = False
                ask_dirty = ch.price <= ask_to
        if view is not None and view_book is not None and (bid_dirty or ask_dirty):
            self._on_book(view, view_token, view_book, bid_dirty, ask_dirty, event.ts_ms, ctx, now_ms, out)
        return out

    def _on_other(self, event: Event, ctx: SignalContext) -> None:
        if type(event) is LastTrade:
            self._on_trade(event, ctx)
        elif type(event) is BookSnapshot:
            track = self._tracks.get(event.token_id) or self._track(event.token_id, ctx)
            if track is not None:
                self._reanchor(track, ctx.book(event.token_id))
        elif type(event) is TickSizeChange:
            # "within n ticks" changed meaning: the anchored zones are not comparable any more
            track = self._tracks.get(event.token_id)
            if track is not None:
                track.clear()

    def _track(self, token_id: str, ctx: SignalContext) -> _TokenTrack | None:
        track = self._tracks.get(token_id)
        if track is None:
            market = ctx.markets.get_by_token(token_id)
            if market is None:
                return None
            track = _TokenTrack(market, market.complement(token_id))
            self._tracks[token_id] = track
        return track

    def _reanchor(self, track: _TokenTrack, book: Book | None) -> None:
        if book is None or not book.trusted:
            track.clear()
            return
        n = self.params.n_ticks
        bid = book.top_bid or 0
        ask = book.top_ask or 0
        track.tick = book.tick_size
        track.bids.anchor(bid, book.grid_depth(_BUY, bid, n) if bid else 0, ask)
        track.asks.anchor(ask, book.grid_depth(_SELL, ask, n) if ask else 0, bid)

    def _on_trade(self, trade: LastTrade, ctx: SignalContext) -> None:
        track = self._tracks.get(trade.token_id) or self._track(trade.token_id, ctx)
        if track is None:
            return
        # A taker BUY eats this token's asks, which mirror the complement's bids. Both views record it:
        # if the venue also prints the complement's trade the drop is over-explained, which can only
        # suppress an opportunity, never invent one.
        (track.asks if trade.side is _BUY else track.bids).traded += trade.size
        other = self._tracks.get(track.complement) or self._track(track.complement, ctx)
        if other is not None:
            (other.bids if trade.side is _BUY else other.asks).traded += trade.size

    def _on_book(
        self,
        track: _TokenTrack,
        token: str,
        book: Book,
        bid_dirty: bool,
        ask_dirty: bool,
        ts: int,
        ctx: SignalContext,
        now_ms: int,
        out: list[Opportunity],
    ) -> None:
        bid = book.top_bid or 0
        ask = book.top_ask or 0
        tick = track.tick = book.tick_size
        bids, asks = track.bids, track.asks
        # a side none of whose levels changed only needs a look when the opposite touch moved
        if (bid_dirty or ask != bids.opp) and self._side(bids, book, _BUY, bid, ask, -tick, ts, bid_dirty):
            self._fire(track, token, book, _BUY, ts, ctx, now_ms, out)
        if (ask_dirty or bid != asks.opp) and self._side(asks, book, _SELL, ask, bid, tick, ts, ask_dirty):
            self._fire(track, token, book, _SELL, ts, ctx, now_ms, out)

    def _side(
        self,
        st: _SideState,
        book: Book,
        side: Side,
        touch: int,
        opp: int,
        step: int,
        ts: int,
        dirty: bool,
    ) -> bool:
        """Advance one side's anchor and episode; True when the side shows a vacuum now.

        `step` is one tick away from the spread (negative for bids), so a retreat is a positive count.
        """
        p = self.params
        n = p.n_ticks
        px = st.px
        if px and touch and st.start_ts and ts - st.start_ts > p.window_ms:
            # too slow to be a vacuum; what stood just before this update is the anchor now
            px = st.px = st.last_px
            st.depth, st.opp = st.last_depth, st.last_opp
            st.start_ts = st.traded = 0
        if not px or not touch or opp != st.opp or (touch - px) // step <= 0:
            # First look, holding or improving, or both sides moved (a requote): the new normal.
            # This is nearly every update, so the anchor and its zone depth are written out here.
            if not dirty and touch == px:
                depth = st.depth  # no level of this side changed
            elif touch:
                depth = book.grid_depth(side, touch, n)
            else:
                depth = 0
            st.px = st.last_px = touch
            st.depth = st.last_depth = depth
            st.opp = st.last_opp = opp
            st.start_ts = st.pulls = st.traded = 0
            return False
        gone = st.depth - book.grid_depth(side, px, n)
        if gone < 0:
            # depth was added to the zone while its touch retreated: measure from the most that stood
            st.depth -= gone
            gone = 0
        elif gone <= st.traded:
            # takers took what left: the book as it is now is the new normal
            st.anchor(touch, book.grid_depth(side, touch, n), opp)
            return False
        retreat = (touch - px) // step
        if not st.start_ts:
            st.start_ts = ts
            st.pulls = 1
        elif retreat > (st.last_px - px) // step:
            st.pulls += 1
        st.last_px, st.last_opp = touch, opp
        st.last_depth = book.grid_depth(side, touch, n)
        if retreat <= n or st.pulls < p.min_pulls:
            return False
        unexplained = gone - st.traded
        return unexplained >= p.min_depth_micro and unexplained >= p.drop_fraction * st.depth

    def _fire(
        self,
        track: _TokenTrack,
        token: str,
        book: Book,
        side: Side,
        ts: int,
        ctx: SignalContext,
        now_ms: int,
        out: list[Opportunity],
    ) -> None:
        st = track.bids if side is _BUY else track.asks
        now_depth = book.grid_depth(side, st.px, self.params.n_ticks)
        opp = self._opportunity(
            track.market, track.complement, token, book, side,
            st.px, st.depth, st.opp, st.pulls, st.start_ts, st.traded, now_depth, ts, ctx, now_ms,
        )  # fmt: skip
        if opp is None:
            return
        # the vacuum is spent: both views of the market start over from the book as it is now
        self._reanchor(track, book)
        mirror = self._tracks.get(track.complement)
        if mirror is not None:
            self._reanchor(mirror, ctx.book(track.complement))
        out.append(opp)

    def _opportunity(
        self,
        market: Market,
        complement: str,
        token: str,
        book: Book,
        side: Side,
        anchor_px: int,
        anchor_depth: int,
        anchor_opp: int,
        pulls: int,
        start_ts: int,
        traded: int,
        now_depth: int,
        ts: int,
        ctx: SignalContext,
        now_ms: int,
    ) -> Opportunity | None:
        """The opportunity a vacuum on `side` of `token`'s book makes, or None; starts its cooldown.

        Both paths call it with the side's anchor and episode (the compiled kernel from C), so what an
        opportunity says and when the cooldown, the buy book or the fee withhold it is one code.
        """
        p = self.params
        if side is _SELL:
            buy, buy_book = token, book
        else:
            buy = complement
            other = ctx.book(buy)
            if other is None or not other.trusted:
                return None
            buy_book = other
        last = self._fired_ms.get(buy)
        if last is not None and ts - last < p.cooldown_ms:
            return None
        if buy_book.is_crossed():
            return None
        ask = buy_book.best_ask()
        tick = buy_book.tick_size
        if ask is None or not tradable_price(ask, tick):
            return None
        fair = min(ask + max(p.jump_ticks * tick, p.min_jump_micro), ONE)
        fee = taker_fee_per_share(ask, market)
        if fair - ask <= fee:
            return None
        size = floor_size(min(buy_book.best_ask_size(), p.max_size_micro))
        if size < market.min_order_size:
            return None
        self._fired_ms[buy] = ts
        unexplained = anchor_depth - now_depth - traded
        what = "bids" if side is _BUY else "asks"
        reason = (
            f"{what} of {token} within {p.n_ticks} ticks of {format_micro(anchor_px)} pulled in"
            f" {pulls} updates over {ts - start_ts} ms: {format_micro(anchor_depth)} ->"
            f" {format_micro(now_depth)} shares ({format_micro(traded)} traded), opposite touch held at"
            f" {format_micro(anchor_opp)}"
        )
        return buy_opportunity(
            strategy=NAME,
            market=market,
            token_id=buy,
            size=size,
            limit_price=ask,
            fair_value=fair,
            confidence=min(1.0, unexplained / anchor_depth),
            now_ms=now_ms,
            ttl_ms=p.ttl_ms,
            reason=reason,
            trigger=(token, side.name, anchor_px, anchor_depth, ts),
        )
