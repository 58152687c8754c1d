"""The Spread Hunter's compiled kernel (core/signals/_hunter.c) against its Python reference.

Random event streams go through two SpreadHunters reading the same books, one running the reference
(`_kernel` None) and one the kernel: price changes at and around the touch on both tokens of binary
markets, sweeps with trade prints inside and outside the window, snapshots (crossed, one-sided, empty),
untrusted books, tick changes, neg-risk events whose metadata arrives late, sizes beyond 2**53 (the
microprice's exact division), both fair sources and trade-weighted fair values. After every event the
opportunities (every field, floats to the bit) and the data-quality flags must be equal, on DenseBooks,
on BookStates and on a mix of both.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import require_compiled_book
from polysnipe.core.book import Book, BookState
from polysnipe.core.events import (
    BookDelta,
    BookSnapshot,
    Event,
    LastTrade,
    Level,
    PriceChange,
    Side,
    TickSizeChange,
)
from polysnipe.core.market import Market, MarketRegistry, NegRiskEvent
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.signals import SpreadHunter, SpreadHunterParams
from polysnipe.core.units import ONE

SHARE = 1_000_000
TICK = 10_000
BUY, SELL = Side.BUY, Side.SELL


def _binary(cid: str, fee_rate: int = 0) -> Market:
    return Market(
        condition_id=cid, token_ids=(f"{cid}-yes", f"{cid}-no"), outcomes=("Yes", "No"), tick_size=TICK,
        min_order_size=5 * SHARE, neg_risk=False, fee_rate=fee_rate,
    )  # fmt: skip


def _leg(i: int, fee_rate: int) -> Market:
    return Market(
        condition_id=f"e{i}", token_ids=(f"e{i}-yes", f"e{i}-no"), outcomes=("Yes", "No"), tick_size=TICK,
        min_order_size=5 * SHARE, neg_risk=True, neg_risk_market_id="E", fee_rate=fee_rate,
    )  # fmt: skip


MARKETS = [_binary("a"), _binary("b", fee_rate=20_000), _leg(0, 0), _leg(1, 20_000), _leg(2, 0)]
#: joins the registry mid-stream (the "late" step), so the baskets are rebuilt with tokens already seen
LATE = _binary("c")
TOKENS = [t for m in [*MARKETS, LATE] for t in m.token_ids]
EVENT = NegRiskEvent("E", ("e0", "e1", "e2"), False, False, True)


class Ctx:
    """The pipeline's SignalContext: books made by `make_book`, events applied as the pipeline does."""

    def __init__(self, make_book: Callable[[str, int], Book], *, event_first: bool) -> None:
        self.markets = MarketRegistry.of(MARKETS)
        if event_first:
            self.markets.add_event(EVENT)
        self.books: dict[str, Book] = {}
        self.trades: dict[str, LastTrade] = {}
        self._make_book = make_book

    def book(self, token_id: str) -> Book | None:
        return self.books.get(token_id)

    def last_trade(self, token_id: str) -> LastTrade | None:
        return self.trades.get(token_id)

    def _book_for(self, token_id: str) -> Book | None:
        book = self.books.get(token_id)
        if book is None:
            market = self.markets.get_by_token(token_id)
            if market is None:
                return None
            book = self.books[token_id] = self._make_book(token_id, market.tick_size)
        return book

    def apply(self, ev: Event) -> None:
        if isinstance(ev, BookSnapshot):
            book = self._book_for(ev.token_id)
            if book is not None:
                book.apply_snapshot(ev)
        elif isinstance(ev, PriceChange):
            for d in ev.changes:
                book = self._book_for(d.token_id)
                if book is not None:
                    book.apply_level(d.side, d.price, d.size, ev.ts_ms)
        elif isinstance(ev, LastTrade):
            self.trades[ev.token_id] = ev
        elif isinstance(ev, TickSizeChange):
            book = self._book_for(ev.token_id)
            if book is not None:
                book.set_tick_size(ev.new_tick)


def _dense() -> Callable[[str, int], Book]:
    from polysnipe.core._book import DenseBook

    return DenseBook


def _book_maker(kind: str) -> Callable[[str, int], Book]:
    if kind == "dense":
        return _dense()
    if kind == "state":
        return BookState
    dense = _dense()

    def mixed(token: str, tick: int) -> Book:
        # the kernel reads each book through the C API or through its Python methods
        return (dense if token.endswith("-yes") != token.startswith("e") else BookState)(token, tick)

    return mixed


def _pair(params: SpreadHunterParams) -> tuple[SpreadHunter, SpreadHunter]:
    require_compiled_book()
    kernel = SpreadHunter(params)
    if kernel._kernel is None:
        pytest.skip("the Spread Hunter kernel polysnipe.core.signals._hunter is not built")
    reference = SpreadHunter(params)
    reference._kernel = None
    return reference, kernel


def _opp_fields(opps: list[Opportunity]) -> list[tuple[Any, ...]]:
    # attrs equality already compares every field; the tuples make a failure say which one differs,
    # and repr pins the floats to the bit
    return [tuple(repr(v) for v in (o.id, o.strategy, o.market, o.token_id, o.side, o.size, o.limit_price,
                                    o.fair_value, o.edge, o.confidence, o.created_ms, o.expires_ms, o.reason,
                                    o.correlation_id, o.urgency, o.group_id)) for o in opps]  # fmt: skip


class Run:
    """Both modules on one context: every step applies the event and compares what they say."""

    def __init__(self, params: SpreadHunterParams, kind: str, *, event_first: bool = True) -> None:
        self.reference, self.kernel = _pair(params)
        self.ctx = Ctx(_book_maker(kind), event_first=event_first)
        self.found: list[Opportunity] = []

    def step(self, ev: Event) -> None:
        self.ctx.apply(ev)
        want = self.reference.on_event(ev, self.ctx, ev.ts_ms + 7)
        got = self.kernel.on_event(ev, self.ctx, ev.ts_ms + 7)
        assert _opp_fields(want) == _opp_fields(got), ev
        assert want == got
        ref, ker = self.reference, self.kernel
        assert ref.data_quality_flags == ker.data_quality_flags, ev
        assert ref.data_quality_count == ker.data_quality_count
        assert ref._mispriced == ker._mispriced
        self.found += got
        self._same_state()

    def _same_state(self) -> None:
        """Every piece of per-market and per-token state, floats to the bit."""
        kernel = self.kernel._kernel
        assert kernel is not None
        assert set(self.reference._tokens) == set(kernel.tokens)
        for token, want in self.reference._tokens.items():
            got = kernel.tokens[token]
            w, g = want.mkt, got.mkt
            assert (w.bid, w.ask, w.bsz, w.asz) == g.touch, token
            assert w.book is g.book
            assert [w.n, w.last_ts] == [g.n, g.last_ts]
            want_floats = (w.s, w.w, w.v, w.w2, w.sp, w.sw, w.last_micro)
            got_floats = (g.s, g.w, g.v, g.w2, g.sp, g.sw, g.last_micro)
            assert [x.hex() for x in want_floats] == [x.hex() for x in got_floats], token
            assert (want.fired_ask, want.sell_px, want.sell_ts, want.passive_until, want.leg) == (
                got.fired_ask, got.sell_px, got.sell_ts, got.passive_until, got.leg)  # fmt: skip
            if want.basket is None or got.basket is None:
                # the reference's basket and the kernel's are different classes: only None is both
                want_basket: object = want.basket
                assert want_basket is got.basket is None
            else:
                wb, gb = want.basket, got.basket
                assert (wb.asks, wb.n_valid, wb.total_ask) == (gb.asks, gb.n_valid, gb.total_ask)
                assert wb.fired == gb.fired

    def invalidate(self, token: str) -> None:
        book = self.ctx.books.get(token)
        if book is not None:
            book.invalidate()

    def late(self) -> None:
        """A market and the neg-risk event's metadata arrive: the registry's revision moves."""
        if self.ctx.markets.get(LATE.condition_id) is None:
            self.ctx.markets.add(LATE)
        self.ctx.markets.add_event(EVENT)


def _cid(token: str) -> str:
    return token.split("-")[0]


def _complement(token: str) -> str:
    cid, outcome = token.split("-")
    return f"{cid}-{'no' if outcome == 'yes' else 'yes'}"


# -- the hypothesis streams ----------------------------------------------------------------------------
#: prices crowd around the middle so changes land at, inside and behind the touch; some sit off the
#: tick, on the edges of the unit interval, or beyond it
PRICE = st.one_of(
    st.integers(40, 60).map(lambda t: t * TICK),
    st.integers(40, 60).map(lambda t: t * TICK + 5_000),
    st.sampled_from([0, TICK, ONE - TICK, ONE, ONE + TICK]),
)
SIZE = st.one_of(
    st.integers(1, 300).map(lambda s: s * SHARE),
    st.integers(1, 300 * SHARE),
    st.just(0),
    # the microprice's products pass 2**53 (a double division would round them first) and int64
    st.integers(10**10, 10**13),
    st.sampled_from([10**15, 10**18, 2**53 + 1]),
)
#: one binary market gets half the events, so its estimator warms up and its books go deep
TOKEN = st.one_of(st.sampled_from(["a-yes", "a-no"]), st.sampled_from(TOKENS))
DT = st.sampled_from([0, 0, 1, 30, 100, 101, 2_000, 400_000])
TRADE_PRICE = st.integers(30, 70).map(lambda t: t * TICK)

Op = tuple[Any, ...]
OPS: st.SearchStrategy[Op] = st.one_of(
    st.tuples(
        st.just("snap"),
        TOKEN,
        st.integers(42, 58),
        st.integers(-1, 3),
        st.lists(SIZE, max_size=3),
        st.lists(SIZE, max_size=3),
        st.booleans(),
    ),
    st.tuples(
        st.just("change"),
        st.lists(st.tuples(TOKEN, st.booleans(), PRICE, SIZE), min_size=1, max_size=4),
        st.booleans(),
    ),
    st.tuples(
        st.just("change"),
        st.lists(st.tuples(TOKEN, st.booleans(), PRICE, SIZE), min_size=1, max_size=4),
        st.booleans(),
    ),
    st.tuples(st.just("trade"), TOKEN, st.booleans(), TRADE_PRICE, SIZE),
    st.tuples(st.just("trade"), TOKEN, st.booleans(), TRADE_PRICE, SIZE),
    st.tuples(st.just("invalidate"), TOKEN),
    st.tuples(st.just("tick"), TOKEN, st.sampled_from([1_000, TICK])),
    st.tuples(st.just("late")),
)
PARAMS = st.builds(
    SpreadHunterParams,
    fair_source=st.sampled_from(["ewma", "ewma", "microprice"]),
    half_life_ms=st.sampled_from([1, 700, 5_000]),
    trade_weight=st.sampled_from([0.0, 0.5, 3.0]),
    min_observations=st.integers(1, 4),
    min_edge_ticks=st.integers(0, 1),
    noise_z=st.sampled_from([0.0, 0.5, 2.0]),
    require_sweep=st.booleans(),
    sweep_window_ms=st.sampled_from([0, 100, 5_000]),
    passive_enabled=st.booleans(),
    passive_spread_mult=st.sampled_from([1.0, 1.5, 2.0]),
    passive_margin_micro=st.sampled_from([0, 10_000]),
    passive_ttl_ms=st.sampled_from([1, 15_000]),
    arb_min_edge_micro=st.sampled_from([0, 10_000]),
    max_data_quality_flags=st.sampled_from([0, 1, 1_000]),
)


def _snapshot(ts: int, token: str, mid: int, half: int, bids: list[int], asks: list[int]) -> BookSnapshot:
    """Levels around `mid` ticks; a `half` below 1 makes the book locked or crossed."""
    bid_levels = tuple(Level((mid - half - i) * TICK, s) for i, s in enumerate(bids))
    ask_levels = tuple(Level((mid + half + i) * TICK, s) for i, s in enumerate(asks))
    return BookSnapshot(ts, token, _cid(token), bid_levels, ask_levels)


def _mirror(snap: BookSnapshot) -> BookSnapshot:
    """The complement's book: a bid at p on one token is an ask at 1 - p on the other."""
    bids = tuple(Level(ONE - lv.price, lv.size) for lv in snap.asks)
    asks = tuple(Level(ONE - lv.price, lv.size) for lv in snap.bids)
    return BookSnapshot(snap.ts_ms, _complement(snap.token_id), snap.market, bids, asks)


def _events(op: Op, ts: int) -> Iterator[Event]:
    kind = op[0]
    if kind == "snap":
        _, token, mid, half, bids, asks, pair = op
        snap = _snapshot(ts, token, mid, half, bids, asks)
        yield snap
        if pair:
            yield _mirror(snap)
    elif kind == "change":
        _, entries, mirrored = op
        deltas = [BookDelta(t, BUY if is_bid else SELL, p, s) for t, is_bid, p, s in entries]
        if mirrored:
            deltas += [
                BookDelta(_complement(d.token_id), d.side.opposite, ONE - d.price, d.size) for d in deltas
            ]
        yield PriceChange(ts, _cid(entries[0][0]), tuple(deltas))
    elif kind == "trade":
        _, token, taker_buys, price, size = op
        yield LastTrade(ts, token, _cid(token), price, size, BUY if taker_buys else SELL)
    elif kind == "tick":
        _, token, new_tick = op
        yield TickSizeChange(ts, token, _cid(token), TICK, new_tick)


@pytest.mark.parametrize("kind", ["dense", "state", "mixed"])
@settings(max_examples=150, deadline=None)
@given(PARAMS, st.lists(st.tuples(DT, OPS), min_size=1, max_size=80), st.booleans())
def test_the_kernel_answers_as_the_reference(
    kind: str, params: SpreadHunterParams, ops: list[tuple[int, Op]], event_first: bool
) -> None:
    run = Run(params, kind, event_first=event_first)
    ts = 1_000
    for dt, op in ops:
        ts += dt
        if op[0] == "invalidate":
            run.invalidate(op[1])
        elif op[0] == "late":
            run.late()
        for ev in _events(op, ts):
            run.step(ev)


# -- long streams that trade --------------------------------------------------------------------------
def _scenario(rng: random.Random, run: Run, n: int) -> None:
    """A random walk per market with the module's situations planted often: sweeps that leave a cheap
    ask or a hole for a passive bid, trades in and out of the window, baskets priced below 1, a YES
    book repriced alone (a mispriced pair), gaps."""
    mids = {m.condition_id: rng.randint(40, 60) for m in [*MARKETS, LATE]}
    ts = 1_000

    def pair(m: Market, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> None:
        yes = BookSnapshot(ts, m.token_ids[0], m.condition_id, tuple(Level(p * TICK, s) for p, s in bids),
                           tuple(Level(p * TICK, s) for p, s in asks))  # fmt: skip
        run.step(yes)
        run.step(_mirror(yes))

    def change(m: Market, entries: list[tuple[Side, int, int]]) -> None:
        yes, no = m.token_ids
        deltas = [BookDelta(yes, side, p, s) for side, p, s in entries]
        deltas += [BookDelta(no, side.opposite, ONE - p, s) for side, p, s in entries]
        if rng.random() < 0.3:
            deltas.reverse()  # the NO book read first
        run.step(PriceChange(ts, m.condition_id, tuple(deltas)))

    def size() -> int:
        big = rng.randint(10**10, 10**13)  # the microprice's products pass 2**53
        return rng.choice([rng.randint(1, 400) * SHARE, rng.randint(1, 400 * SHARE), big])

    for _ in range(n):
        ts += rng.choice([0, 5, 40, 90, 150, 700, 3_000])
        m = rng.choice([*MARKETS, LATE]) if run.ctx.markets.get("c") else rng.choice(MARKETS)
        cid = m.condition_id
        mid = mids[cid]
        roll = rng.random()
        if roll < 0.08 or run.ctx.book(m.token_ids[0]) is None:
            mid = mids[cid] = max(10, min(90, mid + rng.choice([-2, -1, 0, 1, 2])))
            pair(m, [(mid - 1, size()), (mid - 2, size())], [(mid + 1, size()), (mid + 2, size())])
        elif roll < 0.55:
            # requotes at and behind the touch
            side = rng.choice([BUY, SELL])
            off = rng.choice([0, 0, 1, 2, 3])
            price = (mid - 1 - off if side is BUY else mid + 1 + off) * TICK
            change(m, [(side, price, rng.choice([0, size(), size()]))])
        elif roll < 0.70:
            # a seller sweeps the bids and rests below fair (or leaves a hole), printed on either token
            depth = rng.choice([1, 2, 3])
            prints = [(mid - 1 - i) * TICK for i in range(depth)]
            later = rng.choice([0, 0, 50, 200])
            for p in prints:
                if rng.random() < 0.5:
                    run.step(LastTrade(ts, m.token_ids[0], cid, p, size(), SELL))
                else:
                    run.step(LastTrade(ts, m.token_ids[1], cid, ONE - p, size(), BUY))
            ts += later
            entries = [(BUY, p, 0) for p in prints]
            low = mid - 1 - depth - rng.choice([0, 2, 5])
            entries.append((BUY, low * TICK, size()))
            if rng.random() < 0.6:
                entries.append((SELL, (mid - depth + rng.choice([-2, -1, 0])) * TICK, size()))
            change(m, entries)
        elif roll < 0.78:
            run.step(LastTrade(ts, rng.choice(m.token_ids), cid, rng.randint(20, 80) * TICK, size(),
                               rng.choice([BUY, SELL])))  # fmt: skip
        elif roll < 0.85 and m.neg_risk:
            # the basket's legs repriced: their asks may sum below 1
            for leg in MARKETS[2:]:
                ask = rng.randint(25, 36)
                mids[leg.condition_id] = ask - 1
                pair(leg, [(ask - 2, size())], [(ask, size())])
        elif roll < 0.90:
            # the YES book alone moves down: the pair's asks may sum below 1
            yes = BookSnapshot(ts, m.token_ids[0], cid, (Level((mid - 4) * TICK, size()),),
                               (Level((mid - 3) * TICK, size()),))  # fmt: skip
            run.step(yes)
        elif roll < 0.93:
            run.invalidate(rng.choice(m.token_ids))
            if rng.random() < 0.5:
                run.invalidate(_complement(m.token_ids[0]))
        elif roll < 0.95:
            run.step(TickSizeChange(ts, m.token_ids[0], cid, TICK, rng.choice([1_000, TICK])))
        elif roll < 0.96:
            run.late()
        else:
            pair(m, [(mid + 1, size())], [(mid - rng.choice([0, 1]), size())])  # crossed or locked


@pytest.mark.parametrize("kind", ["dense", "state"])
@pytest.mark.parametrize(
    "params",
    [
        SpreadHunterParams(min_observations=3),
        SpreadHunterParams(min_observations=2, require_sweep=False, noise_z=0.0, min_edge_ticks=0),
        SpreadHunterParams(
            min_observations=2,
            trade_weight=0.7,
            half_life_ms=800,
            passive_spread_mult=1.0,
            passive_margin_micro=0,
            noise_z=0.5,
            sweep_window_ms=300,
        ),
        SpreadHunterParams(fair_source="microprice", min_observations=1, arb_min_edge_micro=0),
    ],
)
def test_long_streams_trade_alike(kind: str, params: SpreadHunterParams) -> None:
    run = Run(params, kind, event_first=False)
    _scenario(random.Random(1_234), run, 3_000)
    # the streams reach every path that emits: cheap asks, passive posts (where enabled), baskets, flags
    triggers = {o.urgency for o in run.found}
    assert "aggressive" in triggers
    assert any(o.group_id for o in run.found)
    assert run.kernel.data_quality_count > 0
    if params.fair_source == "ewma" and params.require_sweep and params.passive_enabled:
        assert "passive" in triggers


def test_the_kernel_serves_only_where_it_is_exact() -> None:
    require_compiled_book()
    from polysnipe.core.book import use_pure_python

    if SpreadHunter()._kernel is None:
        pytest.skip("the Spread Hunter kernel polysnipe.core.signals._hunter is not built")
    # beyond the ranges the kernel computes exactly, the reference runs
    assert SpreadHunter(SpreadHunterParams(half_life_ms=2**60))._kernel is None
    # a number type the kernel cannot compute alike (the reference keeps its exact fractions)
    assert SpreadHunter(SpreadHunterParams(noise_z=Fraction(5, 2)))._kernel is None  # type: ignore[arg-type]
    assert SpreadHunter(SpreadHunterParams(noise_z=2))._kernel is not None
    # weights the validators refuse: infinite, or large enough to overflow the reference too
    for weights in ({"trade_weight": float("inf")}, {"noise_z": 2**40}, {"passive_spread_mult": 1e308}):
        with pytest.raises(ValueError):
            SpreadHunterParams(**weights)
    # POLYSNIPE_PURE_PYTHON=1 (use_pure_python) turns the kernel off with the compiled book
    use_pure_python(True)
    try:
        assert SpreadHunter()._kernel is None
    finally:
        use_pure_python(False)


# -- an ask exactly at fair value ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dense", "state"])
@pytest.mark.parametrize("token", ["a-yes", "a-no"])
def test_an_ask_at_fair_value_is_not_cheap_with_no_edge_required(kind: str, token: str) -> None:
    # With no minimum edge, an ask at fair value has an edge of 0, which is not cheap: the side keeps
    # its passive bid (a cheap ask would rule it out). The EWMA stands at exactly 0.50 (observations at
    # 0.49 and 0.51, with no time between them to decay), the next quote puts `token`'s ask there and
    # a taker has just sold `token` above its bid.
    params = SpreadHunterParams(
        min_observations=2, min_edge_ticks=0, noise_z=0.5, passive_spread_mult=1.0, passive_margin_micro=0,
        trade_weight=0.0, sweep_window_ms=5_000,
    )  # fmt: skip
    run = Run(params, kind)

    def pair(bid: int, ask: int) -> None:
        yes = BookSnapshot(
            1_000, "a-yes", "a", (Level(bid * TICK, 100 * SHARE),), (Level(ask * TICK, 100 * SHARE),)
        )
        run.step(yes)
        run.step(_mirror(yes))

    pair(48, 50)
    pair(50, 52)
    run.step(LastTrade(1_000, token, "a", 49 * TICK, 10 * SHARE, SELL))
    pair(*((47, 50) if token == "a-yes" else (50, 53)))
    assert [(o.token_id, o.urgency, o.fair_value) for o in run.found] == [(token, "passive", 50 * TICK)]


def test_asks_at_and_around_fair_value_judge_alike() -> None:
    # The streams above rarely put an ask exactly at the (floored) fair value, where an edge of 0 must
    # not count as cheap when no edge is required. Here the EWMA stands exactly at `mid` ticks and the
    # judged quote puts `token`'s ask `off` ticks from it, the spread `width` ticks wide, after a sweep
    # printed `sweep` ticks from that ask (or none): every combination, on either book.
    grid = itertools.product(
        ["a-yes", "a-no"], [35, 64], [-1, 0, 1], [1, 2, 3], [0.0, 0.5, 2.0], [1.0, 1.5], [0, TICK],
        [None, -2, -1, 0, 1, 2],
    )  # fmt: skip
    passive: set[str] = set()
    for i, (token, mid, off, width, noise_z, mult, margin, sweep) in enumerate(grid):
        params = SpreadHunterParams(
            min_observations=2, min_edge_ticks=0, noise_z=noise_z, passive_spread_mult=mult,
            passive_margin_micro=margin, trade_weight=0.0, sweep_window_ms=5_000,
        )  # fmt: skip
        run = Run(params, ("dense", "state")[i % 2])

        def pair(bid: int, ask: int, run: Run = run) -> None:
            yes = BookSnapshot(
                1_000, "a-yes", "a", (Level(bid * TICK, 100 * SHARE),), (Level(ask * TICK, 100 * SHARE),)
            )
            run.step(yes)
            run.step(_mirror(yes))

        pair(mid - 2, mid)
        pair(mid, mid + 2)
        # the NO ask is 1 - the YES bid
        quote = (mid + off - width, mid + off) if token == "a-yes" else (mid - off, mid - off + width)
        if sweep is not None:
            ask = ONE - quote[0] * TICK if token == "a-no" else quote[1] * TICK
            run.step(LastTrade(1_000, token, "a", ask + sweep * TICK, 10 * SHARE, SELL))
        seen = len(run.found)
        pair(*quote)
        if off == 0 and any(o.urgency == "passive" and o.token_id == token for o in run.found[seen:]):
            passive.add(token)
    # the grid reaches the case that tells an edge of 0 from a cheap ask, on both tokens
    assert passive == {"a-yes", "a-no"}
