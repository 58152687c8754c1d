"""Signal modules on hand-built books: when they fire, when they stay silent, and what they emit."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from polysnipe.core.baskets import worst_case_profit
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
from polysnipe.core.market import Market, MarketRegistry, NegRiskEvent
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
from polysnipe.core.signals.base import complement_bounds
from polysnipe.core.signals.liquidity_vacuum import zone_depth
from polysnipe.core.units import ONE, parse_micro

SHARE = 1_000_000
TICK = 10_000


def px(text: str) -> int:
    return parse_micro(text)


class Ctx:
    """The SignalContext the pipeline provides, with the pipeline's way of applying events.

    Unless told otherwise, each neg-risk group comes with event metadata that describes it as it is
    (augmented or not, all members open), as the market-metadata loader provides it.
    """

    def __init__(self, markets: Iterable[Market], *, event_metadata: bool = True) -> None:
        self.markets = MarketRegistry.of(markets)
        if event_metadata:
            groups: dict[str, list[Market]] = {}
            for m in self.markets:
                if m.neg_risk_market_id:
                    groups.setdefault(m.neg_risk_market_id, []).append(m)
            for event_id, group in groups.items():
                augmented = any(m.augmented for m in group)
                cids = tuple(m.condition_id for m in group)
                self.markets.add_event(NegRiskEvent(event_id, cids, augmented, False, True))
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


def sold(
    ts: int, m: Market, prices: Sequence[str], *, on_no: bool = False, shares: float = 100
) -> list[LastTrade]:
    """A taker selling YES through `prices`, printed on YES or as its mirror on NO (a taker buying NO)."""
    if on_no:
        return [
            LastTrade(ts, m.token_ids[1], m.condition_id, ONE - px(p), round(shares * SHARE), BUY)
            for p in prices
        ]
    return [LastTrade(ts, m.token_ids[0], m.condition_id, px(p), round(shares * SHARE), SELL) for p in prices]


#: a seller swept the YES bids 0.49 and 0.48 and rested the rest of its order at 0.45: the makers'
#: asks above are still where they were, the book reads 0.40 / 0.45 while the fair value is 0.50
SWEPT = [(BUY, "0.49", 0), (BUY, "0.48", 0), (BUY, "0.40", 100), (SELL, "0.45", 60)]

#: no trade at all: both sides requoted down at once, the makers' own repricing (news, a vacuum)
REQUOTED = [
    (BUY, "0.49", 0),
    (BUY, "0.48", 0),
    (BUY, "0.40", 100),
    (SELL, "0.51", 0),
    (SELL, "0.52", 0),
    (SELL, "0.45", 60),
]


def sweep(ts: int, m: Market, *, on_no: bool = False) -> list[Event]:
    return [*sold(ts, m, ["0.49", "0.48"], on_no=on_no), change(ts, m, SWEPT)]


def test_spread_hunter_buys_the_ask_a_seller_left_below_fair() -> None:
    m = binary()
    opps = run(SpreadHunter(), Ctx([m]), [*warm_up(m), *sweep(2_000, m)])
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
    assert "swept from 0.49" in opp.reason
    assert ("aggressive", "", "spread_hunter", m.condition_id) == (
        opp.urgency,
        opp.group_id,
        opp.strategy,
        opp.market,
    )


def test_spread_hunter_counts_prints_on_either_token() -> None:
    m = binary()
    opps = run(SpreadHunter(), Ctx([m]), [*warm_up(m), *sweep(2_000, m, on_no=True)])
    assert [(m.token_ids[0], px("0.45"))] == [(o.token_id, o.limit_price) for o in opps]


def test_spread_hunter_buys_no_when_a_buyer_left_a_yes_bid_above_fair() -> None:
    # a buyer swept the YES asks 0.51 and 0.52 and rested a YES bid at 0.55: NO is offered at 0.45
    m = binary()
    bought = [
        LastTrade(2_000, m.token_ids[0], m.condition_id, px(p), 100 * SHARE, BUY) for p in ("0.51", "0.52")
    ]
    lifted = change(2_000, m, [(SELL, "0.51", 0), (SELL, "0.52", 0), (SELL, "0.60", 100), (BUY, "0.55", 60)])
    opps = run(SpreadHunter(), Ctx([m]), [*warm_up(m), *bought, lifted])
    assert [(m.token_ids[1], px("0.45"), 60 * SHARE)] == [(o.token_id, o.limit_price, o.size) for o in opps]
    assert 499_000 < opps[0].fair_value < 501_000


def test_spread_hunter_does_not_catch_a_falling_knife() -> None:
    # the same cheap ask, but the makers requoted the whole book without a trade: the price moved
    m = binary()
    assert [] == run(SpreadHunter(), Ctx([m]), [*warm_up(m), change(2_000, m, REQUOTED)])
    opps = run(
        SpreadHunter(SpreadHunterParams(require_sweep=False)),
        Ctx([m]),
        [*warm_up(m), change(2_000, m, REQUOTED)],
    )
    assert [px("0.45")] == [o.limit_price for o in opps]


@pytest.mark.parametrize(
    "trades",
    [
        pytest.param(lambda m: sold(1_800, m, ["0.49", "0.48"]), id="stale-sweep"),
        pytest.param(lambda m: sold(2_000, m, ["0.45"]), id="not-above-the-ask"),
        pytest.param(
            lambda m: [LastTrade(2_000, m.token_ids[0], m.condition_id, px("0.49"), 100 * SHARE, BUY)],
            id="a-buyer",
        ),
    ],
)
def test_spread_hunter_needs_a_fresh_sweep_through_the_ask(trades: Callable[[Market], list[Event]]) -> None:
    m = binary()
    assert [] == run(SpreadHunter(), Ctx([m]), [*warm_up(m), *trades(m), change(2_000, m, SWEPT)])


def test_spread_hunter_edge_must_clear_the_noise_of_its_fair_value() -> None:
    # the fair value was estimated from a book jumping between 0.38/0.40 and 0.60/0.62
    m = binary()
    events: list[Event] = list(snap(1_000, m, [("0.49", 100)], [("0.51", 100)]))
    for i in range(1, 9):
        low, high = ("0.38", "0.40") if i % 2 else ("0.60", "0.62")
        events += snap(1_000 + 100 * i, m, [(low, 100), ("0.30", 100)], [(high, 100), ("0.70", 100)])
    events += snap(2_000, m, [("0.49", 100), ("0.48", 100)], [("0.51", 100), ("0.52", 100)])
    cheap: list[Event] = [
        *sold(2_100, m, ["0.49", "0.48"]),
        change(2_100, m, [*SWEPT[:3], (SELL, "0.47", 60)]),
    ]
    assert [] == run(SpreadHunter(), Ctx([m]), [*events, *cheap])
    opps = run(SpreadHunter(SpreadHunterParams(noise_z=0.0)), Ctx([m]), [*events, *cheap])
    assert [px("0.47")] == [o.limit_price for o in opps]


def test_spread_hunter_size_capped_by_params() -> None:
    m = binary()
    opps = run(
        SpreadHunter(SpreadHunterParams(max_size_micro=12_345_678)),
        Ctx([m]),
        [*warm_up(m), *sweep(2_000, m)],
    )
    assert [12_340_000] == [o.size for o in opps]  # capped, then cut to the 0.01-share step


def test_spread_hunter_microprice_source() -> None:
    m = binary()
    hunter = SpreadHunter(SpreadHunterParams(fair_source="microprice", min_observations=1))
    book = snap(1_000, m, [("0.49", 100), ("0.48", 100)], [("0.51", 100), ("0.52", 100)])
    opps = run(hunter, Ctx([m]), [*book, *sweep(2_000, m)])
    assert [(px("0.45"), px("0.50"))] == [(o.limit_price, o.fair_value) for o in opps]


def test_spread_hunter_silent_during_warm_up() -> None:
    m = binary()
    assert [] == run(SpreadHunter(), Ctx([m]), [*warm_up(m, n_changes=2), *sweep(2_000, m)])


def test_spread_hunter_untrusted_book_resets_fair_value() -> None:
    m = binary()
    ctx = Ctx([m])
    hunter = SpreadHunter()
    assert [] == run(hunter, ctx, warm_up(m))
    for book in ctx.books.values():
        book.invalidate()
    assert [] == run(hunter, ctx, sweep(2_000, m))  # deltas on an untrusted book
    # the resync snapshot shows the swept book, but the old fair value was forgotten
    resync = snap(2_000, m, [("0.40", 100)], [("0.45", 60), ("0.51", 100)])
    assert [] == run(hunter, ctx, resync)


def test_spread_hunter_skips_crossed_book() -> None:
    m = binary()
    # ask under the 0.49 bid
    crossed: list[Event] = [*sold(2_000, m, ["0.49"]), change(2_000, m, [(SELL, "0.45", 60)])]
    assert [] == run(SpreadHunter(), Ctx([m]), [*warm_up(m), *crossed])


@pytest.mark.parametrize(("fee_rate", "fires"), [(0, True), (40_000, True), (250_000, False)])
def test_spread_hunter_requires_edge_after_fees(fee_rate: int, fires: bool) -> None:
    # edge ~0.05; fee at 0.45 is 0.0099 at rate 0.04 and 0.0619 at rate 0.25; min edge 1 tick
    m = binary(fee_rate=fee_rate)
    opps = run(SpreadHunter(), Ctx([m]), [*warm_up(m), *sweep(2_000, m)])
    assert fires == bool(opps)


def test_spread_hunter_fires_once_per_ask() -> None:
    m = binary()
    ctx = Ctx([m])
    hunter = SpreadHunter()
    assert 1 == len(run(hunter, ctx, [*warm_up(m), *sweep(2_000, m)]))
    assert [] == run(
        hunter, ctx, [*sold(2_050, m, ["0.40"]), change(2_050, m, [(BUY, "0.40", 0), (BUY, "0.39", 10)])]
    )


def test_spread_hunter_needs_min_order_size() -> None:
    m = binary(min_size=100 * SHARE)
    assert [] == run(SpreadHunter(), Ctx([m]), [*warm_up(m), *sweep(2_000, m)])


def test_spread_hunter_survives_a_long_quiet_spell() -> None:
    # ten hours without a quote: the decayed sums must not underflow into a division by zero
    m = binary()
    ten_hours = 10 * 3_600_000
    opps = run(
        SpreadHunter(),
        Ctx([m]),
        [*warm_up(m), *sweep(ten_hours, m), change(ten_hours + 1, m, [(BUY, "0.40", 7)])],
    )
    assert [px("0.45")] == [o.limit_price for o in opps]


#: (ms since the previous event, event maker) for one binary market quoted around 0.50
_SweepStep = tuple[int, Callable[[int, Market], list[Event]]]


def _level_step(is_bid: bool, tick: int, shares: int) -> Callable[[int, Market], list[Event]]:
    return lambda ts, m: [change(ts, m, [(BUY if is_bid else SELL, f"0.{tick:02d}", shares)])]


def _print_step(on_yes: bool, taker_buys: bool, tick: int) -> Callable[[int, Market], list[Event]]:
    token = 0 if on_yes else 1
    side = BUY if taker_buys else SELL
    return lambda ts, m: [LastTrade(ts, m.token_ids[token], m.condition_id, tick * TICK, 50 * SHARE, side)]


def _sweep_step(seller: bool, top: int, levels: int) -> Callable[[int, Market], list[Event]]:
    """A taker sweeps `levels` YES levels from `top` (bids for a seller) and rests its remainder."""
    ticks = [top - i for i in range(levels)] if seller else [top + i for i in range(levels)]
    rest = ticks[-1] - 1 if seller else ticks[-1] + 1

    def make(ts: int, m: Market) -> list[Event]:
        side = SELL if seller else BUY
        prints: list[Event] = [
            LastTrade(ts, m.token_ids[0], m.condition_id, t * TICK, 50 * SHARE, side) for t in ticks
        ]
        taken = [(BUY if seller else SELL, f"0.{t:02d}", 0) for t in ticks]
        return [*prints, change(ts, m, [*taken, (SELL if seller else BUY, f"0.{rest:02d}", 40)])]

    return make


sweep_steps = st.tuples(
    st.integers(0, 150),
    st.one_of(
        st.builds(_level_step, st.booleans(), st.integers(35, 65), st.sampled_from([0, 0, 20, 150])),
        st.builds(_print_step, st.booleans(), st.booleans(), st.integers(35, 65)),
        st.builds(_sweep_step, st.booleans(), st.integers(40, 60), st.integers(1, 6)),
    ),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(sweep_steps, min_size=1, max_size=60))
def test_spread_hunter_snipes_only_what_a_seller_left_and_posts_only_inside_the_spread(
    steps: list[_SweepStep],
) -> None:
    m = binary()
    ctx = Ctx([m])
    p = SpreadHunterParams(min_observations=1)
    hunter = SpreadHunter(p)
    ts = 1_000
    run(hunter, ctx, snap(ts, m, [("0.49", 100), ("0.45", 100)], [("0.51", 100), ("0.55", 100)]))
    sells: list[tuple[int, str, int]] = []  # (ts, token, price) of every taker sale, either print
    for gap, make in steps:
        ts += gap
        for ev in make(ts, m):
            if isinstance(ev, LastTrade):
                other = m.complement(ev.token_id)
                sells.append((ts, ev.token_id, ev.price) if ev.side is SELL else (ts, other, ONE - ev.price))
            ctx.apply(ev)
            for opp in hunter.on_event(ev, ctx, ts):
                # a NO opportunity may come from the YES book's mirror: the tick is the market's either way
                mirrored = [t for t in ctx.markets.by_token(opp.token_id).token_ids if t in ctx.books]
                book = ctx.books.get(opp.token_id) or ctx.books[mirrored[0]]
                bid, ask = book.best_bid(), book.best_ask()
                assert bid is not None and ask is not None and bid < ask
                assert 0 == opp.limit_price % TICK and opp.edge == opp.fair_value - opp.limit_price > 0
                swept = [s for t, tok, s in sells if tok == opp.token_id and ts - t <= p.sweep_window_ms]
                if opp.urgency == "aggressive":
                    assert ask == opp.limit_price and opp.edge > TICK
                    assert max(swept) >= ask + TICK
                else:
                    assert "passive" == opp.urgency
                    # the router posts at bid + 1 tick: inside the spread, at least the margin below the limit
                    assert bid + TICK < ask and bid + TICK <= opp.limit_price - p.passive_margin_micro
                    assert ask >= opp.fair_value and max(swept) > bid


# -- spread hunter: passive ----------------------------------------------------------------------
#: a seller swept the bids down to 0.40 but rested nothing: the spread is 0.40 / 0.51 around 0.50
HOLE = [(BUY, "0.49", 0), (BUY, "0.48", 0), (BUY, "0.40", 100)]


def hole(ts: int, m: Market) -> list[Event]:
    return [*sold(ts, m, ["0.49", "0.48"]), change(ts, m, HOLE)]


def test_spread_hunter_posts_a_passive_bid_into_the_hole_a_sweep_left() -> None:
    m = binary()
    opps = run(SpreadHunter(), Ctx([m]), [*warm_up(m), *hole(2_000, m)])
    assert 1 == len(opps)
    opp = opps[0]
    # the router posts at the best bid + 1 tick (0.41); the limit is fair - min edge
    assert ("passive", m.token_ids[0], px("0.49"), 100 * SHARE) == (
        opp.urgency,
        opp.token_id,
        opp.limit_price,
        opp.size,
    )
    assert 499_000 < opp.fair_value < 501_000 and opp.edge == opp.fair_value - opp.limit_price
    assert SpreadHunterParams().passive_ttl_ms == opp.expires_ms - opp.created_ms
    assert 0.0 < opp.confidence < 1.0


def test_spread_hunter_passive_once_per_ttl() -> None:
    m = binary()
    ctx = Ctx([m])
    hunter = SpreadHunter()
    assert 1 == len(run(hunter, ctx, [*warm_up(m), *hole(2_000, m)]))
    refill = change(2_100, m, [(BUY, "0.49", 100), (BUY, "0.48", 100)])
    assert [] == run(hunter, ctx, [refill, *hole(2_200, m)])
    later = 2_000 + SpreadHunterParams().passive_ttl_ms
    assert 1 == len(run(hunter, ctx, [change(later - 100, m, [(BUY, "0.49", 100)]), *hole(later, m)]))


@pytest.mark.parametrize(
    ("events", "params"),
    [
        pytest.param(lambda m: [change(2_000, m, HOLE)], SpreadHunterParams(), id="pulled-not-swept"),
        pytest.param(lambda m: hole(2_000, m), SpreadHunterParams(passive_enabled=False), id="disabled"),
        pytest.param(lambda m: hole(2_000, m), SpreadHunterParams(passive_margin_micro=90_000), id="margin"),
        pytest.param(
            lambda m: hole(2_000, m), SpreadHunterParams(passive_spread_mult=6.0), id="not-wide-enough"
        ),
        pytest.param(
            # fair is 0.5001: an ask at 0.50 is no snipe, and a seller may be right about the price
            lambda m: [*sold(2_000, m, ["0.49", "0.48"]), change(2_000, m, [*HOLE, (SELL, "0.50", 5)])],
            SpreadHunterParams(),
            id="ask-below-fair",
        ),
    ],
)
def test_spread_hunter_passive_silent(
    events: Callable[[Market], list[Event]], params: SpreadHunterParams
) -> None:
    m = binary()
    assert [] == run(SpreadHunter(params), Ctx([m]), [*warm_up(m), *events(m)])


def test_binary_pair_below_one_is_a_data_quality_flag_not_a_trade() -> None:
    m = binary()
    ctx = Ctx([m])
    hunter = SpreadHunter()
    # YES alone moves down: YES ask 0.45 + NO ask 0.51 < 1, which mirrored books cannot show. The
    # YES book alone would be a snipe (see test_spread_hunter_buys_the_ask_a_seller_left_below_fair).
    opps = run(
        hunter, ctx, [*warm_up(m), *sold(2_000, m, ["0.49", "0.48"]), change(2_000, m, REQUOTED, pair=False)]
    )
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
        run(hunter, ctx, [change(ts, m, REQUOTED, pair=False), change(ts + 50, m, back, pair=False)])
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
    assert {px("0.08")} == {o.edge for o in opps}  # each leg carries the basket's locked profit per share
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


@pytest.mark.parametrize(
    "event",
    [
        None,  # no metadata: the set may be incomplete
        NegRiskEvent("E", ("e0", "e1", "e2", "e3"), False, False, True),  # a member is not loaded
        NegRiskEvent("E", ("e0", "e1", "e2"), False, True, True),  # a placeholder "Other" market
        NegRiskEvent("E", ("e0", "e1", "e2"), False, False, False),  # a member is closed
        NegRiskEvent("E", ("e0", "e1", "e2"), True, False, True),  # augmented: outcomes may be added
    ],
    ids=["no-metadata", "member-missing", "other", "closed", "augmented"],
)
def test_neg_risk_arb_only_on_a_complete_event(event: NegRiskEvent | None) -> None:
    ms = neg_risk_event()
    ctx = Ctx(ms, event_metadata=False)
    if event is not None:
        ctx.markets.add_event(event)
    assert [] == run(SpreadHunter(), ctx, arb_books(ms, CHEAP))


def test_neg_risk_arb_judges_the_fee_taken_in_shares_of_the_winning_leg() -> None:
    # asks 0.05 + 0.45 + 0.45 = 0.95: 0.05 per share left before fees. At a 0.07 rate the cheap leg's
    # fee is 0.07 * 0.95 = 0.0665 shares per share: if that outcome wins the basket loses, although the
    # fees summed in USDC (0.0033 + 2 * 0.0173 = 0.038) look smaller than the 0.05.
    ms = neg_risk_event(fee_rate=70_000)
    asks = [("0.05", 100), ("0.45", 100), ("0.45", 100)]
    assert [] == run(SpreadHunter(), Ctx(ms), arb_books(ms, asks))
    legs = [(m, px(a)) for m, (a, _) in zip(ms, asks, strict=True)]
    assert worst_case_profit(legs, 100 * SHARE) < 0


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
        return run(SpreadHunter(), Ctx([m, *ms]), [*warm_up(m), *sweep(2_000, m), *arb_books(ms, CHEAP)])

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
#: 750 shares in the zone of the 0.51 ask (0.51 to 0.54 with 3 ticks), then 100 at 0.60
VACUUM_ASKS = [("0.51", 300), ("0.52", 200), ("0.53", 150), ("0.54", 100), ("0.60", 100)]


def vacuum_books(m: Market, ts: int = 1_000) -> list[BookSnapshot]:
    return snap(ts, m, [("0.49", 300), ("0.48", 200)], VACUUM_ASKS)


def asks_vanish(ts: int, m: Market, gap_ms: int = 200) -> list[Event]:
    """Makers pull the whole zone in two updates `gap_ms` apart: the ask retreats 0.51 -> 0.52 -> 0.60."""
    return [
        change(ts, m, [(SELL, "0.51", 0), (SELL, "0.53", 0)]),
        change(ts + gap_ms, m, [(SELL, "0.52", 0), (SELL, "0.54", 0)]),
    ]


def asks_return(ts: int, m: Market) -> PriceChange:
    return change(ts, m, [(SELL, p, size) for p, size in VACUUM_ASKS[:4]])


@pytest.mark.parametrize("cooldown_ms", [0, 10_000])
def test_vacuum_asks_vanish_buys_token_once(cooldown_ms: int) -> None:
    m = binary()
    lv = LiquidityVacuum(LiquidityVacuumParams(cooldown_ms=cooldown_ms))
    opps = run(lv, Ctx([m]), [*vacuum_books(m), *asks_vanish(1_500, m)])
    # YES asks and the mirrored NO bids both vanished: one vacuum, one opportunity
    assert 1 == len(opps)
    opp = opps[0]
    # bought at the ask left behind; the expected repricing is max(2 ticks, 0.02) beyond it
    assert (m.token_ids[0], px("0.60"), 100 * SHARE, px("0.62")) == (
        opp.token_id,
        opp.limit_price,
        opp.size,
        opp.fair_value,
    )
    assert 1.0 == opp.confidence  # all 750 shares went, none traded
    assert (1_700, 1_700 + LiquidityVacuumParams().ttl_ms) == (opp.created_ms, opp.expires_ms)
    assert "in 2 updates over 200 ms: 750 -> 0 shares (0 traded), opposite touch held at 0.49" in opp.reason


def test_vacuum_bids_vanish_buys_complement() -> None:
    m = binary()
    books = snap(
        1_000, m, [("0.49", 300), ("0.48", 200), ("0.47", 150), ("0.46", 100), ("0.40", 100)], VACUUM_ASKS
    )
    pulls = [
        change(1_500, m, [(BUY, "0.49", 0), (BUY, "0.47", 0)]),
        change(1_700, m, [(BUY, "0.48", 0), (BUY, "0.46", 0)]),
    ]
    opps = run(LiquidityVacuum(), Ctx([m]), [*books, *pulls])
    # NO is offered at 1 - the best YES bid, 0.60
    assert [(m.token_ids[1], px("0.60"), 100 * SHARE)] == [(o.token_id, o.limit_price, o.size) for o in opps]


def test_vacuum_read_on_the_no_book_when_it_comes_first() -> None:
    # the NO entries lead: the NO bids vanish on the NO view, so YES (whose asks they mirror) is bought
    m = binary()
    no_first = [
        PriceChange(ev.ts_ms, ev.market, ev.changes[2:] + ev.changes[:2])
        for ev in asks_vanish(1_500, m)
        if isinstance(ev, PriceChange)
    ]
    opps = run(LiquidityVacuum(), Ctx([m]), [*vacuum_books(m), *no_first])
    assert [(m.token_ids[0], px("0.60"))] == [(o.token_id, o.limit_price) for o in opps]
    assert f"bids of {m.token_ids[1]}" in opps[0].reason


def test_vacuum_is_a_cascade_not_one_cancel() -> None:
    m = binary()
    at_once = change(1_500, m, [(SELL, p, 0) for p, _ in VACUUM_ASKS[:4]])
    assert [] == run(LiquidityVacuum(), Ctx([m]), [*vacuum_books(m), at_once])
    assert 1 == len(
        run(LiquidityVacuum(LiquidityVacuumParams(min_pulls=1)), Ctx([m]), [*vacuum_books(m), at_once])
    )


def test_vacuum_explained_by_trades_is_silent() -> None:
    m = binary()
    trade = LastTrade(1_400, m.token_ids[0], m.condition_id, px("0.51"), 700 * SHARE, Side.BUY)
    assert [] == run(LiquidityVacuum(), Ctx([m]), [*vacuum_books(m), trade, *asks_vanish(1_500, m)])


def test_vacuum_trades_before_the_zone_was_measured_explain_nothing() -> None:
    m = binary()
    trade = LastTrade(1_200, m.token_ids[0], m.condition_id, px("0.51"), 100 * SHARE, Side.BUY)
    after = change(1_200, m, [(SELL, "0.51", 200)])  # the print took 100 of 300; 650 stand in the zone
    opps = run(LiquidityVacuum(), Ctx([m]), [*vacuum_books(m), trade, after, *asks_vanish(1_500, m)])
    assert [px("0.60")] == [o.limit_price for o in opps]


def test_vacuum_requote_is_not_a_vacuum() -> None:
    # the makers moved the whole book up: the bids followed the asks, the price is already there
    m = binary()
    pulls = asks_vanish(1_500, m)
    requote = [pulls[0], change(1_700, m, [(SELL, "0.52", 0), (SELL, "0.54", 0), (BUY, "0.58", 100)])]
    assert [] == run(LiquidityVacuum(), Ctx([m]), [*vacuum_books(m), *requote])


def test_vacuum_ignores_snapshots() -> None:
    m = binary()
    thin = snap(1_500, m, [("0.49", 300), ("0.48", 200)], [("0.60", 100)])
    assert [] == run(LiquidityVacuum(), Ctx([m]), [*vacuum_books(m), *thin])


def test_vacuum_cooldown() -> None:
    m = binary()
    ctx = Ctx([m])
    lv = LiquidityVacuum()
    assert 1 == len(run(lv, ctx, [*vacuum_books(m), *asks_vanish(1_500, m)]))
    assert [] == run(lv, ctx, [asks_return(2_000, m), *asks_vanish(2_500, m)])
    assert 1 == len(run(lv, ctx, [asks_return(13_000, m), *asks_vanish(13_500, m)]))


@pytest.mark.parametrize(
    ("pulls", "why"),
    [
        ([(SELL, "0.51", 0)], "slow"),
        ([(SELL, "0.51", 0), (SELL, "0.52", 0)], "touch still in the zone"),
    ],
)
def test_vacuum_silent(pulls: list[tuple[Side, str, float]], why: str) -> None:
    m = binary()
    if why == "slow":
        events = [change(1_500, m, pulls), change(2_600, m, [(SELL, p, 0) for p, _ in VACUUM_ASKS[1:4]])]
    else:
        events = [change(1_500, m, pulls[:1]), change(1_600, m, pulls[1:])]
    assert [] == run(LiquidityVacuum(), Ctx([m]), [*vacuum_books(m), *events])


def test_vacuum_thin_zone_is_silent() -> None:
    m = binary()
    assert [] == run(
        LiquidityVacuum(LiquidityVacuumParams(min_depth_micro=800 * SHARE)),
        Ctx([m]),
        [*vacuum_books(m), *asks_vanish(1_500, m)],
    )


def test_vacuum_silent_on_untrusted_book() -> None:
    m = binary()
    ctx = Ctx([m])
    lv = LiquidityVacuum()
    run(lv, ctx, vacuum_books(m))
    for book in ctx.books.values():
        book.invalidate()
    assert [] == run(lv, ctx, asks_vanish(1_500, m))


def test_vacuum_tick_size_change_restarts_history() -> None:
    m = binary()
    ticks = [TickSizeChange(1_600, t, m.condition_id, TICK, 1_000) for t in m.token_ids]
    pulls = asks_vanish(1_500, m)
    assert [] == run(LiquidityVacuum(), Ctx([m]), [*vacuum_books(m), pulls[0], *ticks, pulls[1]])


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
def _recorded_burst(shared_data: Path) -> list[Event]:
    """The real price-change burst (shared/data, see its README), parsed with the stdlib alone.

    Only the YES token (...071111) has a snapshot in the recording; the NO book is its mirror, so the
    first snapshot is mirrored to give the NO token a trusted book as a live feed would.
    """
    path = shared_data / "polymarket" / "ws" / "nautilus_rs_ws_market_price_change_crossing_burst.json"
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


def test_recorded_burst_never_trades_a_crossed_book(shared_data: Path) -> None:
    events = _recorded_burst(shared_data)
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
        # thresholds down to nothing, so that the burst makes the modules speak at all
        hunter = SpreadHunter(
            SpreadHunterParams(min_observations=1, min_edge_ticks=0, noise_z=0.0, require_sweep=False)
        )
        vacuum = LiquidityVacuum(LiquidityVacuumParams(min_depth_micro=1, min_pulls=1, drop_fraction=0.1))
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
# found by the property: a sweep's passive bid posted at a fair value on tick with no edge required
@example([_snapshot("b-yes", 6, 1, [], []), _snapshot("b-yes", 6, 1, [1], [1]), _trade("b-yes", True, 1, 0),
          _snapshot("b-yes", 6, 2, [1], [1])])  # fmt: skip
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
                # a NO opportunity may come from the YES book's mirror: the tick is the market's either way
                mirrored = [t for t in ctx.markets.by_token(opp.token_id).token_ids if t in ctx.books]
                book = ctx.books.get(opp.token_id) or ctx.books[mirrored[0]]
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
    size = min(SpreadHunterParams().arb_max_size_micro, *(s for _, s in legs)) // 10_000 * 10_000
    # an independent statement of the rule: every outcome, if it wins, must pay back the whole cost
    # plus the minimum edge, after its own fee in shares (rate * (p(1-p))^1 / p per share, exactly)
    cost = sum(-(-a * size // ONE) for a in asks)
    worst_fee = max(Fraction(fee_rate * size, ONE) * (ONE - a) / ONE for a in asks)
    margin = size - worst_fee - cost - Fraction(SpreadHunterParams().arb_min_edge_micro * size, ONE)
    fires = bool(opps)
    if fires:
        assert [m.token_ids[0] for m in ms] == [o.token_id for o in opps]
        assert asks == [o.limit_price for o in opps]
        assert {size} == {o.size for o in opps}
        assert 1 == len({o.group_id for o in opps})
        # whatever wins, the basket returns more than it cost: the venue's fee rounding is included
        legs_at = [(m, a) for m, a in zip(ms, asks, strict=True)]
        assert worst_case_profit(legs_at, size) > 0
    # the venue rounds each fee to 0.0001 USDC, so only a basket within rounding of the line may disagree
    if size >= 5 * SHARE and abs(margin) > 2_000:
        assert (margin > 0) == fires
    if size < 5 * SHARE:
        assert not fires


# -- the per-delta skip windows ------------------------------------------------------------------
_BOUND = st.one_of(st.integers(-2, ONE + 2), st.sampled_from([-math.inf, math.inf]))


@settings(max_examples=300, deadline=None)
@given(_BOUND, _BOUND, st.integers(0, ONE))
def test_complement_bounds_are_the_mirror_of_the_window(bid_from: float, ask_to: float, q: int) -> None:
    comp_bid_from, comp_ask_to = complement_bounds(bid_from, ask_to)
    # a complement bid at q is this token's ask at 1 - q, a complement ask at q its bid at 1 - q
    assert (ONE - q <= ask_to) == (q >= comp_bid_from)
    assert (ONE - q >= bid_from) == (q <= comp_ask_to)


_TOUCH = st.one_of(st.none(), st.just(-1), st.integers(0, ONE))


@settings(max_examples=300, deadline=None)
@given(_TOUCH, _TOUCH, st.booleans(), st.sampled_from([BUY, SELL]), st.integers(0, ONE))
def test_spread_hunter_skip_window_is_the_cached_touch(
    bid: int | None, ask: int | None, is_yes: bool, side: Side, price: int
) -> None:
    # the window set_touch derives per token must skip exactly the changes behind the cached touch
    # (YES terms; None: that side is empty, -1: nothing seen yet)
    from polysnipe.core.signals.spread_hunter import _MarketState

    def behind_touch() -> bool:  # the rule written out in YES terms: a NO bid at q is a YES ask at 1 - q
        if is_yes:
            if side is BUY:
                return bid is not None and price < bid
            return ask is not None and price > ask
        if side is BUY:
            return ask is not None and ONE - price > ask
        return bid is not None and ONE - price < bid

    ms = _MarketState(binary())
    ms.set_touch(bid, ask, 0, 0)
    tst = ms.yes if is_yes else ms.no
    assert behind_touch() == (price < tst.bid_from if side is BUY else price > tst.ask_to)
