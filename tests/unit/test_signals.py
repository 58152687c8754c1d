"""Signal modules on hand-built books: when they fire, when they stay silent, and what they emit."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polysnipe.core.book import BookState
from polysnipe.core.events import (
    BookDelta,
    BookSnapshot,
    Event,
    ExternalSignal,
    LastTrade,
    Level,
    PriceChange,
    Side,
    TickSizeChange,
)
from polysnipe.core.market import Market, MarketRegistry
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.signals import (
    REGISTRY,
    LiquidityVacuum,
    LiquidityVacuumParams,
    Momentum,
    MomentumParams,
    SignalModule,
    SpreadHunter,
    SpreadHunterParams,
    build_signals,
)
from polysnipe.core.signals.liquidity_vacuum import zone_depth
from polysnipe.core.units import ONE, parse_micro

SHARE = 1_000_000
TICK = 10_000


def px(text: str) -> int:
    return parse_micro(text)


class Ctx:
    """The SignalContext the pipeline provides, with the pipeline's way of applying events."""

    def __init__(self, markets: Iterable[Market]) -> None:
        self.markets = MarketRegistry.of(markets)
        self.books: dict[str, BookState] = {}
        self.trades: dict[str, LastTrade] = {}

    def book(self, token_id: str) -> BookState | None:
        return self.books.get(token_id)

    def last_trade(self, token_id: str) -> LastTrade | None:
        return self.trades.get(token_id)

    def _book_for(self, token_id: str) -> BookState:
        if token_id not in self.books:
            self.books[token_id] = BookState(token_id, self.markets.by_token(token_id).tick_size)
        return self.books[token_id]

    def apply(self, ev: Event) -> None:
        if isinstance(ev, BookSnapshot):
            self._book_for(ev.token_id).apply_snapshot(ev)
        elif isinstance(ev, PriceChange):
            for d in ev.changes:
                self._book_for(d.token_id).apply_level(d.side, d.price, d.size, ev.ts_ms)
        elif isinstance(ev, LastTrade):
            self.trades[ev.token_id] = ev
        elif isinstance(ev, TickSizeChange):
            self._book_for(ev.token_id).set_tick_size(ev.new_tick)


def run(module: SignalModule, ctx: Ctx, events: Iterable[Event]) -> list[Opportunity]:
    out: list[Opportunity] = []
    for ev in events:
        ctx.apply(ev)
        out += module.on_event(ev, ctx, ev.ts_ms)
    return out


def binary(cid: str = "m", *, fee_rate: int = 0, min_size: int = 5 * SHARE) -> Market:
    return Market(
        condition_id=cid,
        token_ids=(f"{cid}-yes", f"{cid}-no"),
        outcomes=("Yes", "No"),
        tick_size=TICK,
        min_order_size=min_size,
        neg_risk=False,
        fee_rate=fee_rate,
    )


Quote = Sequence[tuple[str, float]]  # (price, shares)


def levels(quotes: Quote, *, mirror: bool = False) -> tuple[Level, ...]:
    return tuple(Level(ONE - px(p) if mirror else px(p), round(size * SHARE)) for p, size in quotes)


def snap(ts: int, m: Market, bids: Quote, asks: Quote, *, pair: bool = True) -> list[BookSnapshot]:
    """Snapshots of YES and (mirrored) NO: a NO bid is a YES ask seen from the other side."""
    yes = BookSnapshot(ts, m.token_ids[0], m.condition_id, levels(bids), levels(asks))
    if not pair:
        return [yes]
    no = BookSnapshot(
        ts, m.token_ids[1], m.condition_id, levels(asks, mirror=True), levels(bids, mirror=True)
    )
    return [yes, no]


def change(
    ts: int, m: Market, entries: Sequence[tuple[Side, str, float]], *, pair: bool = True
) -> PriceChange:
    """YES level changes, followed by their mirror on the NO book (BUY YES at p = SELL NO at 1 - p)."""
    yes, no = m.token_ids
    deltas = [BookDelta(yes, side, px(p), round(size * SHARE)) for side, p, size in entries]
    if pair:
        deltas += [
            BookDelta(no, side.opposite, ONE - px(p), round(size * SHARE)) for side, p, size in entries
        ]
    return PriceChange(ts, m.condition_id, tuple(deltas))


BUY, SELL = Side.BUY, Side.SELL


# -- spread hunter -----------------------------------------------------------------------------------
def warm_up(m: Market, n_changes: int = 4) -> list[Event]:
    """A 0.49/0.51 book and `n_changes` top-of-book size changes: 1 + n_changes observations."""
    events: list[Event] = list(snap(1_000, m, [("0.49", 100), ("0.48", 100)], [("0.51", 100), ("0.52", 100)]))
    events += [change(1_000 + 100 * i, m, [(BUY, "0.49", 100 + i)]) for i in range(1, n_changes + 1)]
    return events


#: both sides reprice down at once: the book reads 0.40 / 0.45 while the fair value remembers 0.50
SHIFT_DOWN = [
    (BUY, "0.49", 0),
    (BUY, "0.48", 0),
    (BUY, "0.40", 100),
    (SELL, "0.51", 0),
    (SELL, "0.52", 0),
    (SELL, "0.45", 60),
]


def shift_down(ts: int, m: Market) -> PriceChange:
    return change(ts, m, SHIFT_DOWN)


def test_spread_hunter_buys_ask_below_fair() -> None:
    m = binary()
    ctx = Ctx([m])
    opps = run(SpreadHunter(), ctx, [*warm_up(m), shift_down(2_000, m)])
    assert 1 == len(opps)
    opp = opps[0]
    assert (m.token_ids[0], Side.BUY, px("0.45"), 60 * SHARE) == (
        opp.token_id,
        opp.side,
        opp.limit_price,
        opp.size,
    )
    assert 499_000 < opp.fair_value < 501_000
    assert opp.fair_value - opp.limit_price == opp.edge
    assert 0.0 < opp.confidence <= 1.0
    assert (2_000, 2_000 + SpreadHunterParams().ttl_ms) == (opp.created_ms, opp.expires_ms)
    assert "c-" + opp.id == opp.correlation_id
    assert ("aggressive", "", "spread_hunter", m.condition_id) == (
        opp.urgency,
        opp.group_id,
        opp.strategy,
        opp.market,
    )


def test_spread_hunter_size_capped_by_params() -> None:
    m = binary()
    opps = run(
        SpreadHunter(SpreadHunterParams(max_size_micro=12_345_678)),
        Ctx([m]),
        [*warm_up(m), shift_down(2_000, m)],
    )
    assert [12_340_000] == [o.size for o in opps]  # capped, then cut to the 0.01-share step


def test_spread_hunter_microprice_source() -> None:
    m = binary()
    hunter = SpreadHunter(SpreadHunterParams(fair_source="microprice", min_observations=1))
    opps = run(hunter, Ctx([m]), [*snap(1_000, m, [("0.49", 100)], [("0.51", 100)]), shift_down(2_000, m)])
    assert [(px("0.45"), px("0.50"))] == [(o.limit_price, o.fair_value) for o in opps]


def test_spread_hunter_silent_during_warm_up() -> None:
    m = binary()
    assert [] == run(SpreadHunter(), Ctx([m]), [*warm_up(m, n_changes=2), shift_down(2_000, m)])


def test_spread_hunter_untrusted_book_resets_fair_value() -> None:
    m = binary()
    ctx = Ctx([m])
    hunter = SpreadHunter()
    assert [] == run(hunter, ctx, warm_up(m))
    for book in ctx.books.values():
        book.invalidate()
    assert [] == run(hunter, ctx, [shift_down(2_000, m)])  # deltas on an untrusted book
    # the resync snapshot shows the moved book, but the old fair value was forgotten
    resync = snap(2_100, m, [("0.40", 100)], [("0.45", 60)])
    assert [] == run(hunter, ctx, resync)


def test_spread_hunter_skips_crossed_book() -> None:
    m = binary()
    crossed = change(2_000, m, [(SELL, "0.45", 60)])  # ask 0.45 under the 0.49 bid: a glitch
    assert [] == run(SpreadHunter(), Ctx([m]), [*warm_up(m), crossed])


@pytest.mark.parametrize(("fee_rate", "fires"), [(0, True), (40_000, True), (250_000, False)])
def test_spread_hunter_requires_edge_after_fees(fee_rate: int, fires: bool) -> None:
    # edge ~0.05; fee at 0.45 is 0.0099 at rate 0.04 and 0.0619 at rate 0.25; min edge 1 tick
    m = binary(fee_rate=fee_rate)
    opps = run(SpreadHunter(), Ctx([m]), [*warm_up(m), shift_down(2_000, m)])
    assert fires == bool(opps)


def test_spread_hunter_fires_once_per_ask() -> None:
    m = binary()
    ctx = Ctx([m])
    hunter = SpreadHunter()
    assert 1 == len(run(hunter, ctx, [*warm_up(m), shift_down(2_000, m)]))
    assert [] == run(hunter, ctx, [change(2_100, m, [(BUY, "0.40", 120)])])


def test_spread_hunter_needs_min_order_size() -> None:
    m = binary(min_size=100 * SHARE)
    assert [] == run(SpreadHunter(), Ctx([m]), [*warm_up(m), shift_down(2_000, m)])


def test_binary_pair_below_one_is_a_data_quality_flag_not_a_trade() -> None:
    m = binary()
    ctx = Ctx([m])
    hunter = SpreadHunter()
    # YES alone moves down: YES ask 0.45 + NO ask 0.51 < 1, which mirrored books cannot show. The
    # YES book alone would be a snipe (see test_spread_hunter_buys_ask_below_fair); here it is not.
    opps = run(hunter, ctx, [*warm_up(m), change(2_000, m, SHIFT_DOWN, pair=False)])
    assert [] == opps
    assert 1 == hunter.data_quality_count
    flag = hunter.data_quality_flags[0]
    assert (2_000, m.condition_id, "binary_pair_asks_below_one") == (flag.ts_ms, flag.market, flag.kind)
    assert m.condition_id in str(flag)
    # still inconsistent: no second flag; repaired and broken again: a second one
    run(hunter, ctx, [change(2_100, m, [(BUY, "0.40", 90)], pair=False)])
    assert 1 == hunter.data_quality_count
    run(hunter, ctx, [change(2_200, m, [(SELL, "0.45", 0), (SELL, "0.60", 10)], pair=False)])
    run(hunter, ctx, [change(2_300, m, [(SELL, "0.44", 10)], pair=False)])
    assert 2 == hunter.data_quality_count == len(hunter.data_quality_flags)


def test_data_quality_flags_are_append_only_and_bounded() -> None:
    m = binary()
    ctx = Ctx([m])
    hunter = SpreadHunter(SpreadHunterParams(max_data_quality_flags=1))
    run(hunter, ctx, snap(1_000, m, [("0.49", 100)], [("0.51", 100)]))
    back = [(BUY, "0.40", 0), (SELL, "0.45", 0), (BUY, "0.49", 100), (SELL, "0.51", 100)]
    for i in range(3):  # YES alone moves to 0.40 / 0.45 (YES ask + NO ask 0.51 < 1) and back
        ts = 2_000 + 100 * i
        run(hunter, ctx, [change(ts, m, SHIFT_DOWN, pair=False), change(ts + 50, m, back, pair=False)])
    assert (3, 1) == (hunter.data_quality_count, len(hunter.data_quality_flags))


# -- neg-risk complement arbitrage ------------------------------------------------------------------
def neg_risk_event(*, augmented: bool = False, min_size: int = 5 * SHARE, fee_rate: int = 0) -> list[Market]:
    return [
        Market(
            condition_id=f"e{i}",
            token_ids=(f"e{i}-yes", f"e{i}-no"),
            outcomes=("Yes", "No"),
            tick_size=TICK,
            min_order_size=min_size,
            neg_risk=True,
            neg_risk_market_id="E",
            augmented=augmented,
            fee_rate=fee_rate,
        )
        for i in range(3)
    ]


def arb_books(ms: list[Market], asks: Sequence[tuple[str, float]], ts: int = 1_000) -> list[Event]:
    events: list[Event] = []
    for m, ask in zip(ms, asks, strict=True):
        events += snap(ts, m, [("0.20", 100)], [ask])
    return events


CHEAP = [("0.30", 50), ("0.30", 80), ("0.32", 30.123)]  # sum 0.92


def test_neg_risk_arb_one_leg_per_outcome_equal_sizes_shared_group() -> None:
    ms = neg_risk_event()
    opps = run(SpreadHunter(), Ctx(ms), arb_books(ms, CHEAP))
    assert [m.token_ids[0] for m in ms] == [o.token_id for o in opps]
    assert {30_120_000} == {o.size for o in opps}  # smallest leg, on the 0.01-share step
    assert 1 == len({o.group_id for o in opps}) and opps[0].group_id
    assert 3 == len({o.id for o in opps})
    assert [px("0.30"), px("0.30"), px("0.32")] == [o.limit_price for o in opps]
    assert {px("0.08")} == {o.edge for o in opps}  # each leg carries the basket's edge
    assert all(o.side is Side.BUY and o.strategy == "spread_hunter" for o in opps)


def test_neg_risk_arb_fires_once_until_prices_change() -> None:
    ms = neg_risk_event()
    ctx = Ctx(ms)
    hunter = SpreadHunter()
    first = run(hunter, ctx, arb_books(ms, CHEAP))
    assert [] == run(hunter, ctx, [change(1_100, ms[0], [(BUY, "0.20", 90)])])
    again = run(hunter, ctx, [change(1_200, ms[0], [(SELL, "0.30", 0), (SELL, "0.29", 20)])])
    assert 3 == len(again)
    assert ({20 * SHARE}, px("0.29")) == ({o.size for o in again}, again[0].limit_price)
    assert first[0].group_id != again[0].group_id


def test_neg_risk_arb_fires_again_after_the_edge_closed_and_reopened() -> None:
    ms = neg_risk_event()
    ctx = Ctx(ms)
    hunter = SpreadHunter()
    assert 3 == len(run(hunter, ctx, arb_books(ms, CHEAP)))
    assert [] == run(hunter, ctx, [change(1_100, ms[0], [(SELL, "0.30", 0), (SELL, "0.40", 50)])])
    assert 3 == len(run(hunter, ctx, [change(1_200, ms[0], [(SELL, "0.40", 0), (SELL, "0.30", 50)])]))


@pytest.mark.parametrize(
    ("ms", "asks"),
    [
        (neg_risk_event(augmented=True), CHEAP),  # "Other" can win: the YES legs may all lose
        (neg_risk_event(min_size=40 * SHARE), CHEAP),  # the 30-share basket is below a leg's minimum
        (neg_risk_event(fee_rate=250_000), CHEAP),  # fees eat the 0.08
        (neg_risk_event(), [("0.33", 50), ("0.33", 50), ("0.33", 50)]),  # 0.01 left: not above min edge
    ],
    ids=["augmented", "min-order-size", "fees", "min-edge"],
)
def test_neg_risk_arb_silent(ms: list[Market], asks: list[tuple[str, float]]) -> None:
    assert [] == run(SpreadHunter(), Ctx(ms), arb_books(ms, asks))


def test_neg_risk_arb_needs_every_leg_trusted() -> None:
    ms = neg_risk_event()
    ctx = Ctx(ms)
    hunter = SpreadHunter()
    assert [] == run(hunter, ctx, arb_books(ms[:2], CHEAP[:2]))
    ctx.books[ms[0].token_ids[0]].invalidate()
    assert [] == run(hunter, ctx, arb_books(ms[2:], CHEAP[2:]))


def test_spread_hunter_is_deterministic() -> None:
    def once() -> list[Opportunity]:
        m = binary()
        ms = neg_risk_event()
        return run(SpreadHunter(), Ctx([m, *ms]), [*warm_up(m), shift_down(2_000, m), *arb_books(ms, CHEAP)])

    first = once()
    assert 4 == len(first)
    assert first == once()


# -- momentum ---------------------------------------------------------------------------------------
def momentum_ctx(m: Market) -> Ctx:
    ctx = Ctx([m])
    for ev in snap(1_000, m, [("0.49", 100), ("0.48", 100)], [("0.51", 100), ("0.52", 100), ("0.53", 100)]):
        ctx.apply(ev)
    return ctx


def signal(
    m: Market,
    direction: int = 1,
    *,
    conf: float = 0.8,
    fair: str | None = "0.60",
    ts: int = 2_000,
    ttl: int = 10_000,
) -> ExternalSignal:
    return ExternalSignal(
        ts, m.token_ids[0], "newswire", direction, conf, ttl, None if fair is None else px(fair), ref="n-1"
    )


def test_momentum_buys_token_on_positive_signal() -> None:
    m = binary()
    [opp] = Momentum().on_event(signal(m), momentum_ctx(m), 2_000)
    # limit: ask 0.51 + 1 tick slippage, below target 0.60 - 2 ticks
    assert (m.token_ids[0], px("0.52"), px("0.60"), px("0.08")) == (
        opp.token_id,
        opp.limit_price,
        opp.fair_value,
        opp.edge,
    )
    assert 160 * SHARE == opp.size  # 200 shares scaled by confidence 0.8
    assert ("iceberg", 7_000) == (opp.urgency, opp.expires_ms)  # large size; ttl = min(10 s, 5 s)


def test_momentum_negative_signal_buys_complement() -> None:
    m = binary()
    opps = Momentum(MomentumParams(max_size_micro=100 * SHARE)).on_event(
        signal(m, -1, conf=0.6, fair="0.40"), momentum_ctx(m), 2_000
    )
    assert [(m.token_ids[1], px("0.52"), px("0.60"), 60 * SHARE, "aggressive")] == [
        (o.token_id, o.limit_price, o.fair_value, o.size, o.urgency) for o in opps
    ]


def test_momentum_without_fair_price_moves_from_mid() -> None:
    m = binary()
    [opp] = Momentum().on_event(signal(m, fair=None), momentum_ctx(m), 2_000)
    # target = mid 0.50 + 3 ticks = 0.53; the limit may not exceed 0.53 - 2 ticks
    assert (px("0.51"), px("0.53")) == (opp.limit_price, opp.fair_value)


def test_momentum_size_capped_by_displayed_depth() -> None:
    m = binary()
    ctx = Ctx([m])
    for ev in snap(1_000, m, [("0.49", 100)], [("0.51", 20.5)]):
        ctx.apply(ev)
    [opp] = Momentum(MomentumParams(slippage_ticks=0)).on_event(signal(m), ctx, 2_000)
    assert (px("0.51"), 20_500_000) == (opp.limit_price, opp.size)


@pytest.mark.parametrize(
    "sig",
    [
        signal(binary(), fair="0.52"),  # book already moved: 0.01 left above the 0.51 ask
        signal(binary(), conf=0.4),  # below min confidence
        signal(binary(), conf=float("nan")),
        signal(binary(), ts=0, ttl=1_000),  # expired before it arrived
        signal(binary(), direction=0),
        ExternalSignal(2_000, "unknown-token", "x", 1, 0.9, 1_000, px("0.9")),
    ],
    ids=["moved", "low-confidence", "nan-confidence", "expired", "no-direction", "unknown-token"],
)
def test_momentum_silent(sig: ExternalSignal) -> None:
    m = binary()
    assert [] == Momentum().on_event(sig, momentum_ctx(m), 2_000)


def test_momentum_silent_on_untrusted_book_and_market_events() -> None:
    m = binary()
    ctx = momentum_ctx(m)
    mom = Momentum()
    assert [] == mom.on_event(change(2_000, m, [(BUY, "0.49", 10)]), ctx, 2_000)
    ctx.books[m.token_ids[0]].invalidate()
    assert [] == mom.on_event(signal(m), ctx, 2_000)


# -- liquidity vacuum --------------------------------------------------------------------------------
def vacuum_books(m: Market, ts: int = 1_000) -> list[BookSnapshot]:
    return snap(ts, m, [("0.49", 300), ("0.48", 200)], [("0.51", 300), ("0.52", 200), ("0.60", 100)])


def asks_vanish(ts: int, m: Market) -> PriceChange:
    return change(ts, m, [(SELL, "0.51", 0), (SELL, "0.52", 50)])


def asks_return(ts: int, m: Market) -> PriceChange:
    return change(ts, m, [(SELL, "0.51", 300), (SELL, "0.52", 200)])


@pytest.mark.parametrize("cooldown_ms", [0, 10_000])
def test_vacuum_asks_vanish_buys_token_once(cooldown_ms: int) -> None:
    m = binary()
    lv = LiquidityVacuum(LiquidityVacuumParams(cooldown_ms=cooldown_ms))
    opps = run(lv, Ctx([m]), [*vacuum_books(m), asks_vanish(1_500, m)])
    # YES asks and the mirrored NO bids both vanished: one vacuum, one opportunity
    assert 1 == len(opps)
    opp = opps[0]
    assert (m.token_ids[0], px("0.52"), 50 * SHARE, px("0.54")) == (
        opp.token_id,
        opp.limit_price,
        opp.size,
        opp.fair_value,
    )
    assert opp.confidence == pytest.approx(0.9)  # 450 of the 500-share peak vanished
    assert (1_500, 1_500 + LiquidityVacuumParams().ttl_ms) == (opp.created_ms, opp.expires_ms)


def test_vacuum_bids_vanish_buys_complement() -> None:
    m = binary()
    bids_vanish = change(1_500, m, [(BUY, "0.49", 0), (BUY, "0.48", 50)])
    opps = run(LiquidityVacuum(), Ctx([m]), [*vacuum_books(m), bids_vanish])
    assert [(m.token_ids[1], px("0.52"), 50 * SHARE)] == [(o.token_id, o.limit_price, o.size) for o in opps]


def test_vacuum_explained_by_trades_is_silent() -> None:
    m = binary()
    trade = LastTrade(1_400, m.token_ids[0], m.condition_id, px("0.51"), 450 * SHARE, Side.BUY)
    assert [] == run(LiquidityVacuum(), Ctx([m]), [*vacuum_books(m), trade, asks_vanish(1_500, m)])


def test_vacuum_ignores_snapshots() -> None:
    m = binary()
    thin = snap(1_500, m, [("0.49", 300), ("0.48", 200)], [("0.52", 50), ("0.60", 100)])
    assert [] == run(LiquidityVacuum(), Ctx([m]), [*vacuum_books(m), *thin])


def test_vacuum_cooldown() -> None:
    m = binary()
    ctx = Ctx([m])
    lv = LiquidityVacuum()
    assert 1 == len(run(lv, ctx, [*vacuum_books(m), asks_vanish(1_500, m)]))
    assert [] == run(lv, ctx, [asks_return(2_000, m), asks_vanish(2_500, m)])
    assert 1 == len(run(lv, ctx, [asks_return(13_000, m), asks_vanish(13_500, m)]))


def test_vacuum_slow_decline_outside_window_is_silent() -> None:
    m = binary()
    steps = [
        change(2_000, m, [(SELL, "0.52", 150)]),
        change(4_500, m, [(SELL, "0.51", 0)]),
        change(5_500, m, [(SELL, "0.52", 50)]),
    ]
    assert [] == run(LiquidityVacuum(), Ctx([m]), [*vacuum_books(m), *steps])


def test_vacuum_silent_on_untrusted_book() -> None:
    m = binary()
    ctx = Ctx([m])
    lv = LiquidityVacuum()
    run(lv, ctx, vacuum_books(m))
    ctx.books[m.token_ids[0]].invalidate()
    assert [] == run(lv, ctx, [asks_vanish(1_500, m)])


def test_vacuum_tick_size_change_restarts_history() -> None:
    m = binary()
    tick = TickSizeChange(1_200, m.token_ids[0], m.condition_id, TICK, 1_000)
    yes_only = asks_vanish(1_500, m).changes[:2]
    opps = run(LiquidityVacuum(), Ctx([m]), [*vacuum_books(m), tick, PriceChange(1_500, "m", yes_only)])
    assert [] == opps


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(st.integers(1, 99), st.integers(1, 10**9), max_size=12),
    st.dictionaries(st.integers(1, 99), st.integers(1, 10**9), max_size=12),
    st.integers(0, 6),
    st.sampled_from([TICK, 1_000]),
)
def test_zone_depth_matches_book_depth_on_grid(
    bids: dict[int, int], asks: dict[int, int], n_ticks: int, tick: int
) -> None:
    book = BookState("t", tick)
    book.apply_snapshot(
        BookSnapshot(
            0,
            "t",
            "m",
            tuple(Level(p * tick, s) for p, s in bids.items()),
            tuple(Level(p * tick, s) for p, s in asks.items()),
        )
    )
    for side in (BUY, SELL):
        assert book.depth(side, n_ticks) == zone_depth(book, side, n_ticks)


# -- recorded data --------------------------------------------------------------------------------
def _recorded_burst() -> list[Event]:
    """The real price-change burst (shared/data, see its README), parsed with the stdlib alone.

    Only the YES token (...071111) has a snapshot in the recording; the NO book is its mirror, so the
    first snapshot is mirrored to give the NO token a trusted book as a live feed would.
    """
    root = os.environ.get("POLYSNIPE_SHARED_DATA") or str(Path(__file__).parents[3] / "shared" / "data")
    path = Path(root) / "polymarket" / "ws" / "nautilus_rs_ws_market_price_change_crossing_burst.json"
    if not path.is_file():
        pytest.skip(f"recorded data not found at {path}")
    events: list[Event] = []
    for msg in json.loads(path.read_text()):
        ts = int(msg["timestamp"])
        if msg["event_type"] == "book":
            bids = tuple(Level(px(lv["price"]), px(lv["size"])) for lv in msg["bids"])
            asks = tuple(Level(px(lv["price"]), px(lv["size"])) for lv in msg["asks"])
            events.append(BookSnapshot(ts, msg["asset_id"], msg["market"], bids, asks))
        else:
            deltas = tuple(
                BookDelta(c["asset_id"], BUY if c["side"] == "BUY" else SELL, px(c["price"]), px(c["size"]))
                for c in msg["price_changes"]
            )
            events.append(PriceChange(ts, msg["market"], deltas))
    first = events[0]
    assert isinstance(first, BookSnapshot)
    mirror = BookSnapshot(
        first.ts_ms,
        BURST_NO,
        first.market,
        tuple(Level(ONE - lv.price, lv.size) for lv in first.asks),
        tuple(Level(ONE - lv.price, lv.size) for lv in first.bids),
    )
    return [first, mirror, *events[1:]]


BURST_YES = "76670567130917723816490572615540605537878462672464291990940067659127658071111"
BURST_NO = "54179564009642723353355316176091991063553046330768303687769988635499280029688"


def test_recorded_burst_never_trades_a_crossed_book() -> None:
    events = _recorded_burst()
    assert isinstance(events[0], BookSnapshot)
    market = Market(
        condition_id=events[0].market,
        token_ids=(BURST_YES, BURST_NO),
        outcomes=("Yes", "No"),
        tick_size=1_000,
        min_order_size=5 * SHARE,
        neg_risk=False,
    )

    def replay() -> tuple[list[Opportunity], int]:
        ctx = Ctx([market])
        hunter = SpreadHunter(SpreadHunterParams(min_observations=1, min_edge_ticks=0))
        vacuum = LiquidityVacuum(LiquidityVacuumParams(min_depth_micro=1))
        modules: list[SignalModule] = [hunter, Momentum(), vacuum]
        found: list[Opportunity] = []
        crossed = 0
        for ev in events:
            ctx.apply(ev)
            is_crossed = any(book.is_crossed() for book in ctx.books.values())
            crossed += is_crossed
            for module in modules:
                opps = module.on_event(ev, ctx, ev.ts_ms)
                assert not (opps and is_crossed)
                found += opps
        # the mirrored books stay consistent, so the pair check has nothing to report
        assert [] == hunter.data_quality_flags
        return found, crossed

    found, crossed = replay()
    assert crossed > 0  # the recording does cross (message 47)
    assert found and all(0 == o.limit_price % 1_000 and 0 < o.limit_price < ONE for o in found)
    assert (found, crossed) == replay()


# -- registry ---------------------------------------------------------------------------------------
def test_build_signals_from_config() -> None:
    mods = build_signals({"momentum": {"min_edge_ticks": 1}, "spread_hunter": {}, "liquidity_vacuum": {}})
    assert ["momentum", "spread_hunter", "liquidity_vacuum"] == [mod.name for mod in mods]
    assert isinstance(mods[0], Momentum) and 1 == mods[0].params.min_edge_ticks
    assert {"spread_hunter", "momentum", "liquidity_vacuum"} == set(REGISTRY)


def test_build_signals_unknown_name_lists_known() -> None:
    with pytest.raises(ValueError, match="known: liquidity_vacuum, momentum, spread_hunter"):
        build_signals({"spred_hunter": {}})


@pytest.mark.parametrize(
    "params",
    [{"min_edge_tick": 1}, {"fair_source": "vwap"}, {"half_life_ms": 0}],
)
def test_build_signals_rejects_bad_params(params: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_signals({"spread_hunter": params})


# -- properties -------------------------------------------------------------------------------------
PROP_MARKETS = [binary("b"), *neg_risk_event()]
PROP_TOKENS = [t for m in PROP_MARKETS for t in m.token_ids]

price_ticks = st.integers(min_value=1, max_value=99)
#: whole shares plus a fraction, so sizes off the 0.01-share step show up often
sizes = st.builds(lambda shares, frac: shares * SHARE + frac, st.integers(0, 400), st.integers(0, SHARE - 1))
tokens = st.sampled_from(PROP_TOKENS)
MakeEvent = Callable[[int], Event]  # event time -> event


def _cid(token: str) -> str:
    return token.split("-")[0]


def _snapshot(token: str, mid: int, half: int, bids: list[int], asks: list[int]) -> MakeEvent:
    """An uncrossed book around `mid` (in ticks) with the given level sizes."""
    bid_levels = tuple(Level((mid - half - i) * TICK, s) for i, s in enumerate(bids))
    ask_levels = tuple(Level((mid + half + i) * TICK, s) for i, s in enumerate(asks))
    return lambda ts: BookSnapshot(ts, token, _cid(token), bid_levels, ask_levels)


def _level(token: str, is_bid: bool, price: int, size: int) -> MakeEvent:
    delta = BookDelta(token, BUY if is_bid else SELL, price * TICK, size)
    return lambda ts: PriceChange(ts, _cid(token), (delta,))


def _trade(token: str, taker_buys: bool, price: int, size: int) -> MakeEvent:
    return lambda ts: LastTrade(ts, token, _cid(token), price * TICK, size, BUY if taker_buys else SELL)


def _signal(token: str, direction: int, confidence: float, fair: int | None) -> MakeEvent:
    return lambda ts: ExternalSignal(ts, token, "prop", direction, confidence, 5_000, fair)


def _tick(token: str, new_tick: int) -> MakeEvent:
    return lambda ts: TickSizeChange(ts, token, _cid(token), TICK, new_tick)


event_makers = st.one_of(
    st.builds(
        _snapshot,
        tokens,
        st.integers(6, 94),
        st.integers(1, 3),
        st.lists(sizes, max_size=4),
        st.lists(sizes, max_size=4),
    ),
    st.builds(_level, tokens, st.booleans(), price_ticks, sizes),
    st.builds(_trade, tokens, st.booleans(), price_ticks, sizes),
    st.builds(
        _signal,
        tokens,
        st.sampled_from([1, -1]),
        st.floats(0.0, 1.0),
        st.one_of(st.none(), st.integers(1, 999_999)),
    ),
    st.builds(_tick, tokens, st.sampled_from([1_000, TICK])),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(event_makers, min_size=1, max_size=60))
def test_opportunities_always_on_tick_and_inside_unit_interval(makers: list[MakeEvent]) -> None:
    modules: list[SignalModule] = [
        SpreadHunter(SpreadHunterParams(min_observations=1, arb_min_edge_micro=0, min_edge_ticks=0)),
        Momentum(MomentumParams(min_confidence=0.0, min_edge_ticks=0, slippage_ticks=3)),
        LiquidityVacuum(LiquidityVacuumParams(min_depth_micro=1, drop_fraction=0.3, cooldown_ms=0)),
    ]
    ctx = Ctx(PROP_MARKETS)
    groups: dict[str, set[int]] = {}
    for i, make in enumerate(makers):
        ts = 1_000 + 100 * i
        ev = make(ts)
        ctx.apply(ev)
        for mod in modules:
            for opp in mod.on_event(ev, ctx, ts):
                book = ctx.books[opp.token_id]
                assert 0 < opp.limit_price < ONE
                assert 0 == opp.limit_price % book.tick_size
                assert opp.side is Side.BUY
                assert 0 < opp.size and 0 == opp.size % 10_000
                assert opp.size >= ctx.markets.by_token(opp.token_id).min_order_size
                assert opp.edge == opp.fair_value - opp.limit_price > 0
                assert 0.0 <= opp.confidence <= 1.0
                assert opp.expires_ms > opp.created_ms == ts
                if opp.group_id:
                    groups.setdefault(opp.group_id, set()).add(opp.size)
    assert all(1 == len(s) for s in groups.values())


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 60), sizes), min_size=3, max_size=3),
    st.sampled_from([0, 20_000, 70_000]),
)
def test_neg_risk_arb_fires_exactly_when_the_basket_pays(legs: list[tuple[int, int]], fee_rate: int) -> None:
    ms = neg_risk_event(fee_rate=fee_rate)
    events: list[Event] = [
        BookSnapshot(1_000, m.token_ids[0], m.condition_id, (), (Level(t * TICK, s),))
        for m, (t, s) in zip(ms, legs, strict=True)
    ]
    opps = run(SpreadHunter(), Ctx(ms), events)
    asks = [t * TICK for t, _ in legs]
    fees = sum(-(-fee_rate * a * (ONE - a) // ONE**2) for a in asks)  # at most 1 micro above the venue's
    size = min(SpreadHunterParams().arb_max_size_micro, *(s for _, s in legs)) // 10_000 * 10_000
    pays = ONE - sum(asks) - fees > SpreadHunterParams().arb_min_edge_micro and size >= 5 * SHARE
    fires = bool(opps)
    if fires:
        assert [m.token_ids[0] for m in ms] == [o.token_id for o in opps]
        assert asks == [o.limit_price for o in opps]
        assert {size} == {o.size for o in opps}
        assert 1 == len({o.group_id for o in opps})
    # the venue rounds each fee to 0.0001, so only a basket within rounding of the line may disagree
    if abs(ONE - sum(asks) - fees - SpreadHunterParams().arb_min_edge_micro) > 300:
        assert pays == fires
