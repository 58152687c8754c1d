"""Liquidity Vacuum: resting depth near the touch vanishes on one side; buy before the price jumps.

Theory of operation
-------------------
Per token and side the module tracks the depth within `n_ticks` of the touch (`zone_depth`). The
history is a monotonic deque of (ts, depth) with decreasing depths, so the largest depth of the last
`window_ms` is always at its front: pushing a point and reading the window's peak are amortised O(1).
A change deeper than the zone cannot alter the zone's depth and costs one comparison.

When depth has fallen from the window's peak by at least `drop_fraction` of that peak, and the fall is
not explained by trades printed since the peak (a taker eating the asks is not a vacuum), makers have
pulled their orders: with asks gone the remaining asks will be repriced up, so the token is bought at
its best ask now; with bids gone the complement is bought at its best ask (the mirror of the same move).
On a binary market both books show the same vacuum (a YES bid is a NO ask), so the cooldown is keyed by
the token bought, and firing restarts the history of both views: one vacuum, one opportunity.

Snapshots never trigger: the venue sends them after trades and on resync, and they restart the history
from the snapshot's depths. Untrusted books and tick-size changes clear it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import attrs

from polysnipe.core.book import BookState
from polysnipe.core.events import BookDelta, BookSnapshot, Event, LastTrade, PriceChange, Side, TickSizeChange
from polysnipe.core.market import Market
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

__all__ = ["NAME", "LiquidityVacuum", "LiquidityVacuumParams", "zone_depth"]

NAME = "liquidity_vacuum"


def _fraction(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{attribute.name} must be in (0, 1], got {value}")


@attrs.frozen(slots=True)
class LiquidityVacuumParams:
    #: the zone watched: levels within this many ticks of the best price (inclusive)
    n_ticks: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    window_ms: int = attrs.field(default=3_000, validator=attrs.validators.gt(0))
    #: share of the window's peak depth that must vanish (net of trades)
    drop_fraction: float = attrs.field(default=0.7, validator=_fraction)
    #: a thin zone emptying is noise: the peak must hold at least this many micro-shares
    min_depth_micro: int = attrs.field(default=200_000_000, validator=attrs.validators.gt(0))
    cooldown_ms: int = attrs.field(default=10_000, validator=attrs.validators.ge(0))
    #: expected repricing after the vacuum, in ticks: the fair value is the ask plus this
    jump_ticks: int = attrs.field(default=2, validator=attrs.validators.gt(0))
    max_size_micro: int = attrs.field(default=100_000_000, validator=attrs.validators.gt(0))
    ttl_ms: int = attrs.field(default=1_000, validator=attrs.validators.gt(0))
    #: points kept per token and side; bounds memory when a window holds a long falling staircase
    max_history: int = attrs.field(default=256, validator=attrs.validators.ge(2))


def zone_depth(book: BookState, side: Side, n_ticks: int) -> int:
    """`book.depth(side, n_ticks)` for a book whose levels sit on its tick grid, in n_ticks + 1 lookups.

    BookState.depth bisects and sums a slice through a generator (about 1 us); this is the per-change
    cost of the module, so it walks the few grid prices instead. A level left off the grid by a tick-size
    change is not counted: that can only hide depth, never invent a drop (the change also restarts the
    history).
    """
    if side is Side.BUY:
        levels, price, step = book.bids, book.best_bid(), -book.tick_size
    else:
        levels, price, step = book.asks, book.best_ask(), book.tick_size
    if price is None:
        return 0
    depth = 0
    for _ in range(n_ticks + 1):
        depth += levels.get(price, 0)
        price += step
    return depth


class _SideHistory:
    __slots__ = ("peaks", "trades")

    def __init__(self, max_history: int) -> None:
        #: (ts, depth) with strictly decreasing depth: the front is the window's peak
        self.peaks: deque[tuple[int, int]] = deque(maxlen=max_history)
        #: (ts, size) of trades whose taker consumed this side
        self.trades: deque[tuple[int, int]] = deque(maxlen=max_history)

    def restart(self, ts: int, depth: int) -> None:
        self.peaks.clear()
        self.trades.clear()
        self.peaks.append((ts, depth))


class _TokenTrack:
    __slots__ = ("asks", "bids", "complement", "market")

    def __init__(self, market: Market, complement: str, max_history: int) -> None:
        self.market = market
        self.complement = complement
        self.bids = _SideHistory(max_history)
        self.asks = _SideHistory(max_history)

    def clear(self) -> None:
        for h in (self.bids, self.asks):
            h.peaks.clear()
            h.trades.clear()


class LiquidityVacuum:
    __slots__ = ("_fired_ms", "_tracks", "name", "params")

    def __init__(self, params: LiquidityVacuumParams | None = None) -> None:
        self.name = NAME
        self.params = params or LiquidityVacuumParams()
        self._tracks: dict[str, _TokenTrack] = {}
        #: token bought -> event time of its last opportunity (the cooldown)
        self._fired_ms: dict[str, int] = {}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> LiquidityVacuum:
        return cls(params_from(LiquidityVacuumParams, params))

    def on_event(self, event: Event, ctx: SignalContext, now_ms: int) -> list[Opportunity]:
        if type(event) is PriceChange:
            out: list[Opportunity] = []
            n_ticks = self.params.n_ticks
            for ch in event.changes:
                book = ctx.book(ch.token_id)
                # a change deeper than the zone (after the batch was applied) cannot move the zone's
                # depth: the common case, decided before any module state is touched
                if book is not None and book.trusted:
                    if ch.side is Side.BUY:
                        best = book.best_bid()
                        if best is not None and ch.price < best - n_ticks * book.tick_size:
                            continue
                    else:
                        best = book.best_ask()
                        if best is not None and ch.price > best + n_ticks * book.tick_size:
                            continue
                self._on_change(ch, book, event.ts_ms, ctx, now_ms, out)
            return out
        if type(event) is BookSnapshot:
            self._on_snapshot(event, ctx)
        elif type(event) is LastTrade:
            self._on_trade(event, ctx)
        elif type(event) is TickSizeChange:
            # depth "within n ticks" changed meaning: history in the old tick is not comparable
            track = self._tracks.get(event.token_id)
            if track is not None:
                track.clear()
        return []

    def _track(self, token_id: str, ctx: SignalContext) -> _TokenTrack | None:
        track = self._tracks.get(token_id)
        if track is None:
            market = ctx.markets.get_by_token(token_id)
            if market is None:
                return None
            track = _TokenTrack(market, market.complement(token_id), self.params.max_history)
            self._tracks[token_id] = track
        return track

    def _on_snapshot(self, snap: BookSnapshot, ctx: SignalContext) -> None:
        track = self._track(snap.token_id, ctx)
        if track is None:
            return
        book = ctx.book(snap.token_id)
        if book is None or not book.trusted:
            track.clear()
            return
        n = self.params.n_ticks
        track.bids.restart(snap.ts_ms, zone_depth(book, Side.BUY, n))
        track.asks.restart(snap.ts_ms, zone_depth(book, Side.SELL, n))

    def _on_trade(self, trade: LastTrade, ctx: SignalContext) -> None:
        track = self._track(trade.token_id, ctx)
        if track is None:
            return
        # A taker BUY eats this token's asks, which mirror the complement's bids. Both books record the
        # size: if the venue also prints the complement's trade the drop is over-explained, which can
        # only suppress an opportunity, never invent one.
        mine = track.asks if trade.side is Side.BUY else track.bids
        self._record_trade(mine, trade)
        other = self._tracks.get(track.complement) or self._track(track.complement, ctx)
        if other is not None:
            self._record_trade(other.bids if trade.side is Side.BUY else other.asks, trade)

    def _record_trade(self, hist: _SideHistory, trade: LastTrade) -> None:
        trades = hist.trades
        horizon = trade.ts_ms - self.params.window_ms
        while trades and trades[0][0] < horizon:
            trades.popleft()
        trades.append((trade.ts_ms, trade.size))

    def _on_change(
        self,
        ch: BookDelta,
        book: BookState | None,
        ts: int,
        ctx: SignalContext,
        now_ms: int,
        out: list[Opportunity],
    ) -> None:
        token = ch.token_id
        track = self._tracks.get(token) or self._track(token, ctx)
        if track is None:
            return
        if book is None or not book.trusted:
            track.clear()
            return
        p = self.params
        side = ch.side
        hist = track.bids if side is Side.BUY else track.asks
        depth = zone_depth(book, side, p.n_ticks)
        peaks = hist.peaks
        while peaks and peaks[-1][1] <= depth:
            peaks.pop()
        peaks.append((ts, depth))
        horizon = ts - p.window_ms
        while peaks[0][0] < horizon:  # the point just pushed is inside the window, so this stops
            peaks.popleft()
        peak_ts, peak = peaks[0]
        if peak < p.min_depth_micro:
            return
        threshold = p.drop_fraction * peak
        drop = peak - depth
        if drop < threshold:
            return
        traded = sum(size for t, size in hist.trades if t >= peak_ts)
        if drop - traded < threshold:
            return
        self._fire(track, token, book, side, peak, depth, drop - traded, ts, ctx, now_ms, out)

    def _fire(
        self,
        track: _TokenTrack,
        token: str,
        book: BookState,
        side: Side,
        peak: int,
        depth: int,
        unexplained: int,
        ts: int,
        ctx: SignalContext,
        now_ms: int,
        out: list[Opportunity],
    ) -> None:
        p = self.params
        if side is Side.SELL:
            buy, buy_book = token, book
        else:
            buy = track.complement
            other = ctx.book(buy)
            if other is None or not other.trusted:
                return
            buy_book = other
        last = self._fired_ms.get(buy)
        if last is not None and ts - last < p.cooldown_ms:
            return
        if buy_book.is_crossed():
            return
        ask = buy_book.best_ask()
        tick = buy_book.tick_size
        if ask is None or not tradable_price(ask, tick):
            return
        market = track.market
        fair = min(ask + p.jump_ticks * tick, ONE)
        fee = taker_fee_per_share(ask, market)
        if fair - ask <= fee:
            return
        size = floor_size(min(buy_book.best_ask_size(), p.max_size_micro))
        if size < market.min_order_size:
            return
        self._fired_ms[buy] = ts
        (track.asks if side is Side.SELL else track.bids).restart(ts, depth)
        # the mirror book shows the same vacuum on its other side; restart it too, so the vacuum is
        # spent even when the cooldown is shorter than the window
        mirror = self._tracks.get(track.complement)
        mirror_book = ctx.book(track.complement)
        if mirror is not None and mirror_book is not None and mirror_book.trusted:
            mirror_side = side.opposite
            (mirror.bids if mirror_side is Side.BUY else mirror.asks).restart(
                ts, zone_depth(mirror_book, mirror_side, p.n_ticks)
            )
        what = "asks" if side is Side.SELL else "bids"
        out.append(
            buy_opportunity(
                strategy=NAME,
                market=market,
                token_id=buy,
                size=size,
                limit_price=ask,
                fair_value=fair,
                confidence=min(1.0, unexplained / peak),
                now_ms=now_ms,
                ttl_ms=p.ttl_ms,
                reason=(
                    f"{what} of {token} within {p.n_ticks} ticks fell {format_micro(peak)} ->"
                    f" {format_micro(depth)} shares ({format_micro(unexplained)} not traded)"
                ),
                trigger=(token, side.name, peak, depth, ts),
            )
        )
