"""Liquidity Vacuum's compiled kernel (core.signals._vacuum) against the Python reference.

The reference is LiquidityVacuum made while the Python book is selected; the kernel-backed module is
made while the compiled one is. Both read the same event stream on books of their own (the reference on
BookState, the kernel on DenseBook or on BookState, through a dict or another mapping), and after every
event they must have emitted the same opportunities, field for field, or raised the same error, and
hold the same state for every token.

Hypothesis drives the streams: snapshots near the middle of the grid (mirrored on the complement or
not), changes at and around the touch, off the tick grid and at the edges, cascades of pulls (mirrored,
in either order), refills, trades of any size, tick-size changes (zero included), invalidated books,
a token without a market, both tokens of several binary markets, and random parameters.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings, target
from hypothesis import strategies as st

from conftest import require_compiled_book
from polysnipe.core.book import Book, BookState, book_implementation, use_pure_python
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
from polysnipe.core.market import Market, MarketRegistry
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.signals.liquidity_vacuum import LiquidityVacuum, LiquidityVacuumParams
from polysnipe.core.units import ONE

SHARE = 1_000_000
#: a token the registry does not know: its events must be ignored by both
GHOST = "ghost"


@pytest.fixture(autouse=True)
def _compiled() -> None:
    require_compiled_book()


def _dense() -> Callable[[str, int], Book]:
    from polysnipe.core._book import DenseBook

    return DenseBook


def _markets(n: int) -> list[Market]:
    ticks = (10_000, 1_000, 10_000)
    return [
        Market(
            condition_id=f"m{i}",
            token_ids=(f"m{i}-yes", f"m{i}-no"),
            outcomes=("Yes", "No"),
            tick_size=ticks[i % 3],
            min_order_size=5 * SHARE,
            neg_risk=False,
            fee_rate=(0, 250, 1_000)[i % 3],
        )
        for i in range(n)
    ]


class Ctx:
    """The SignalContext the pipeline provides: the registry, books made by `make`, and the last trades."""

    def __init__(self, markets: list[Market], make: Callable[[str, int], Book], *, proxy: bool) -> None:
        self.markets = MarketRegistry.of(markets)
        self._make = make
        self._books: dict[str, Book] = {}
        self._view: Mapping[str, Book] = MappingProxyType(self._books) if proxy else self._books
        self.trades: dict[str, LastTrade] = {}

    @property
    def books(self) -> Mapping[str, Book]:
        return self._view

    def book(self, token_id: str) -> Book | None:
        return self._books.get(token_id)

    def last_trade(self, token_id: str) -> LastTrade | None:
        return self.trades.get(token_id)

    def book_for(self, token_id: str) -> Book:
        if token_id not in self._books:
            market = self.markets.get_by_token(token_id)
            self._books[token_id] = self._make(token_id, market.tick_size if market else 10_000)
        return self._books[token_id]

    def apply(self, ev: Event) -> None:
        if isinstance(ev, BookSnapshot):
            self.book_for(ev.token_id).apply_snapshot(ev)
        elif isinstance(ev, PriceChange):
            for d in ev.changes:
                self.book_for(d.token_id).apply_level(d.side, d.price, d.size, ev.ts_ms)
        elif isinstance(ev, LastTrade):
            self.trades[ev.token_id] = ev
        elif isinstance(ev, TickSizeChange):
            self.book_for(ev.token_id).set_tick_size(ev.new_tick)


def _made(params: LiquidityVacuumParams, *, compiled: bool) -> LiquidityVacuum:
    """LiquidityVacuum made while the compiled book is selected (the kernel) or the Python one."""
    before = book_implementation()
    use_pure_python(not compiled)
    try:
        module = LiquidityVacuum(params)
    finally:
        use_pure_python(before == "python")
    return module


def _numbers(module: LiquidityVacuum, token: str) -> object:
    """A token's state in the module, as the kernel's `state` gives it."""
    if module._kernel is not None:
        return module._kernel.state(token)
    track = module._tracks.get(token)
    if track is None:
        return None
    sides = [
        (s.px, s.depth, s.opp, s.last_px, s.last_depth, s.last_opp, s.start_ts, s.pulls, s.traded)
        for s in (track.bids, track.asks)
    ]
    return (track.complement, track.tick, *sides)


def _outcome(module: LiquidityVacuum, ev: Event, ctx: Ctx) -> list[Opportunity] | str:
    try:
        return module.on_event(ev, ctx, ev.ts_ms + 7)
    except Exception as exc:  # the same error on both sides counts as the same answer
        return type(exc).__name__


# -- streams -------------------------------------------------------------------------------------
# Ops are interpreted against the reference's books as they stand (a pull empties the touch that is
# there), then the event they make is applied to both contexts and read by both modules.
SIDE = st.sampled_from([Side.BUY, Side.SELL])
#: an index into the tokens (the ghost last): mostly one market's pair, so that cascades build up
TOKEN = st.one_of(st.sampled_from([0, 1]), st.sampled_from([0, 1]), st.integers(0, 6))
PRICE_NEAR = st.integers(min_value=40, max_value=60).map(lambda i: i * 10_000)
PRICE = st.one_of(
    PRICE_NEAR,
    PRICE_NEAR,
    st.integers(min_value=400, max_value=600).map(lambda i: i * 1_000),
    st.integers(min_value=0, max_value=ONE),  # off every grid
    st.sampled_from([0, ONE, 1, ONE - 1, -10_000, ONE + 10_000, 10**15, -(10**15)]),
)
#: a book's answers are int64 (the C API's contract), so prices beyond it only come as removals of levels
#: that are not there: the kernel must still compare them exactly with its zones
FAR = st.tuples(TOKEN, SIDE, st.sampled_from([2**64, -(2**64), 2**63, 2**200]), st.just(0))
SIZE = st.one_of(
    st.integers(min_value=1, max_value=2_000).map(lambda s: s * SHARE // 10),
    st.integers(min_value=1, max_value=2_000).map(lambda s: s * SHARE // 10),
    st.just(0),
    st.sampled_from([1, 10**18]),
)
TRADE_SIZE = st.one_of(SIZE, st.sampled_from([2**63, 2**80]))
TICK = st.sampled_from([10_000, 1_000, 100, 10_000, 2_500, 0])
#: a snapshot's or a refill's levels: mostly an uncrossed ladder each side of 0.50, where vacuums happen
BIDS = st.lists(st.tuples(st.integers(30, 50).map(lambda i: i * 10_000), SIZE), max_size=8)
ASKS = st.lists(st.tuples(st.integers(50, 70).map(lambda i: i * 10_000), SIZE), max_size=8)
LEVELS = st.lists(st.tuples(PRICE_NEAR, SIZE), max_size=8)
GAP = st.one_of(st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=3_000))

OP = st.one_of(
    st.tuples(st.just("snap"), TOKEN, BIDS, ASKS, st.booleans()),
    st.tuples(st.just("snap"), TOKEN, BIDS, ASKS, st.just(True)),
    st.tuples(st.just("snap"), TOKEN, LEVELS, LEVELS, st.booleans()),
    st.tuples(
        st.just("change"),
        st.lists(st.one_of(st.tuples(TOKEN, SIDE, PRICE, SIZE), FAR), min_size=1, max_size=6),
    ),
    st.tuples(st.just("pull"), TOKEN, SIDE, st.integers(1, 4), st.booleans()),
    st.tuples(st.just("pull"), TOKEN, SIDE, st.integers(1, 4), st.booleans()),
    st.tuples(st.just("refill"), TOKEN, st.just(Side.BUY), BIDS),
    st.tuples(st.just("refill"), TOKEN, st.just(Side.SELL), ASKS),
    st.tuples(st.just("trade"), TOKEN, SIDE, TRADE_SIZE),
    st.tuples(st.just("tick"), TOKEN, TICK),
    st.tuples(st.just("invalidate"), TOKEN),
)


def _cascade(
    i: int,
    top: int,
    bid_sizes: list[int],
    spread_ticks: int,
    ask_sizes: list[int],
    side: Side,
    pulls: list[tuple[int, bool]],
    gaps: list[int],
) -> list[tuple[tuple[Any, ...], int]]:
    """A mirrored ladder on the 0.01 grid, then pulls of one side: the shape a vacuum has."""
    bids = [((top - j) * 10_000, size) for j, size in enumerate(bid_sizes)]
    asks = [((top + spread_ticks + j) * 10_000, size) for j, size in enumerate(ask_sizes)]
    ops: list[tuple[tuple[Any, ...], int]] = [(("snap", i, bids, asks, True), gaps[0])]
    ops += [(("pull", i, side, k, flip), gap) for (k, flip), gap in zip(pulls, gaps[1:], strict=False)]
    return ops


CASCADE = st.builds(
    _cascade,
    TOKEN,
    st.integers(35, 55),
    st.lists(SIZE, min_size=2, max_size=10),
    st.integers(1, 3),
    st.lists(SIZE, min_size=2, max_size=10),
    SIDE,
    st.lists(st.tuples(st.integers(1, 3), st.booleans()), min_size=1, max_size=4),
    st.lists(st.one_of(st.integers(0, 300), GAP), min_size=5, max_size=5),
)
#: cascades among the other ops, and noise within them
STREAM = st.lists(st.one_of(st.lists(st.tuples(OP, GAP), max_size=3), CASCADE), max_size=25).map(
    lambda blocks: [op for block in blocks for op in block]
)


PARAMS = st.builds(
    LiquidityVacuumParams,
    n_ticks=st.integers(0, 4),
    window_ms=st.one_of(st.integers(1, 2_000), st.integers(1_000, 5_000)),
    drop_fraction=st.one_of(st.floats(0.05, 1.0), st.just(1.0)),
    min_depth_micro=st.one_of(st.integers(1, 200 * SHARE), st.integers(1, 10 * SHARE), st.just(1)),
    min_pulls=st.one_of(st.integers(1, 3), st.just(2)),
    cooldown_ms=st.integers(0, 3_000),
    jump_ticks=st.integers(1, 3),
    min_jump_micro=st.integers(0, 30_000),
    max_size_micro=st.one_of(st.just(100 * SHARE), st.integers(1, 500 * SHARE)),
    ttl_ms=st.integers(1, 2_000),
)


def _tokens(markets: list[Market]) -> list[str]:
    return [t for m in markets for t in m.token_ids] + [GHOST]


def _mirror(ctx: Ctx, token: str, side: Side, price: int, size: int) -> BookDelta:
    comp = ctx.markets.complement(token)
    return BookDelta(comp, Side.SELL if side is Side.BUY else Side.BUY, ONE - price, size)


def _events(op: tuple[Any, ...], ts: int, ctx: Ctx, markets: list[Market]) -> Iterator[Event]:
    tokens = _tokens(markets)
    kind = op[0]
    if kind == "snap":
        _, i, bids, asks, mirrored = op
        token = tokens[i % (len(tokens) - 1)]
        snap = BookSnapshot(
            ts, token, "m", tuple(Level(p, s) for p, s in bids), tuple(Level(p, s) for p, s in asks)
        )
        yield snap
        if mirrored:
            comp = ctx.markets.complement(token)
            yield BookSnapshot(
                ts,
                comp,
                "m",
                tuple(Level(ONE - p, s) for p, s in asks),
                tuple(Level(ONE - p, s) for p, s in bids),
            )
    elif kind == "change":
        yield PriceChange(ts, "m", tuple(BookDelta(tokens[i], side, p, s) for i, side, p, s in op[1]))
    elif kind in ("pull", "refill"):
        token = tokens[op[1] % (len(tokens) - 1)]
        side = op[2]
        if kind == "pull":
            # the touch and the levels behind it (level_prices is best first)
            deltas = [BookDelta(token, side, p, 0) for p in ctx.book_for(token).level_prices(side)[: op[3]]]
        else:
            deltas = [BookDelta(token, side, p, s) for p, s in op[3]]
        mirrored = [_mirror(ctx, d.token_id, d.side, d.price, d.size) for d in deltas]
        both = [*mirrored, *deltas] if kind == "pull" and op[4] else [*deltas, *mirrored]
        if both:
            yield PriceChange(ts, "m", tuple(both))
    elif kind == "trade":
        _, i, side, size = op
        yield LastTrade(ts, tokens[i], "m", 500_000, size, side)
    elif kind == "tick":
        _, i, tick = op
        book = ctx.book_for(tokens[i])
        yield TickSizeChange(ts, tokens[i], "m", book.tick_size, tick)
    elif kind == "invalidate":
        ctx.book_for(tokens[op[1] % (len(tokens) - 1)]).invalidate()


def _compare(
    params: LiquidityVacuumParams,
    ops: list[tuple[tuple[Any, ...], int]],
    *,
    dense: bool,
    proxy: bool,
    n_markets: int = 3,
) -> int:
    """Run `ops` (each with the gap before it) through both; the opportunities emitted by both."""
    markets = _markets(n_markets)
    ref_ctx = Ctx(markets, BookState, proxy=False)
    ker_ctx = Ctx(markets, _dense() if dense else BookState, proxy=proxy)
    ref = _made(params, compiled=False)
    ker = _made(params, compiled=True)
    assert ref._kernel is None and ker._kernel is not None
    fired = 0
    ts = 0
    for op, gap in ops:
        ts += gap
        for ev in list(_events(op, ts, ref_ctx, markets)):
            ref_ctx.apply(ev)
            ker_ctx.apply(ev)
            expected = _outcome(ref, ev, ref_ctx)
            actual = _outcome(ker, ev, ker_ctx)
            assert expected == actual, (ev, expected, actual)
            # the state too, so that a divergence shows before it changes an opportunity
            for token in _tokens(markets):
                assert _numbers(ref, token) == _numbers(ker, token), (ev, token)
            if isinstance(expected, str):
                return fired  # an error ends the stream the same way on both
            fired += len(expected)
        if op[0] == "invalidate":
            ker_ctx.book_for(_tokens(markets)[op[1] % (2 * n_markets)]).invalidate()
    return fired


@settings(max_examples=400, deadline=None)
@given(PARAMS, STREAM, st.booleans(), st.booleans())
def test_the_kernel_emits_what_the_reference_emits(
    params: LiquidityVacuumParams, ops: list[tuple[tuple[Any, ...], int]], dense: bool, proxy: bool
) -> None:
    # steer the search toward streams that fire: the silent ones compare less of the kernel
    target(float(_compare(params, ops, dense=dense, proxy=proxy)))


def _cascades(rng: random.Random, n: int) -> list[tuple[tuple[Any, ...], int]]:
    """A stream that keeps making vacuums: mirrored books rebuilt, then pulled in a few steps."""
    ops: list[tuple[tuple[Any, ...], int]] = []
    for _ in range(n):
        i = rng.randrange(6)
        pulled = rng.choice([Side.BUY, Side.SELL])
        ladder = [(p * 10_000, rng.randrange(1, 400) * SHARE) for p in range(40, 50)]
        asks = [(ONE - p, s) for p, s in ladder]
        ops.append((("snap", i, ladder, asks, True), rng.randrange(0, 50)))
        for _ in range(rng.randrange(2, 8)):
            roll = rng.random()
            if roll < 0.6:
                side = pulled if rng.random() < 0.85 else pulled.opposite
                op: tuple[Any, ...] = (
                    "pull",
                    i,
                    side,
                    rng.randrange(1, 4),
                    rng.random() < 0.5,
                )
            elif roll < 0.8:
                op = ("trade", i, rng.choice([Side.BUY, Side.SELL]), rng.randrange(0, 300) * SHARE)
            else:
                side = rng.choice([Side.BUY, Side.SELL])
                op = ("refill", i, side, [(rng.randrange(40, 60) * 10_000, rng.randrange(0, 200) * SHARE)])
            ops.append((op, rng.randrange(0, 500)))
    return ops


@pytest.mark.parametrize(("dense", "proxy"), [(True, False), (False, False), (True, True)])
def test_the_kernel_fires_as_the_reference_on_cascades(dense: bool, proxy: bool) -> None:
    rng = random.Random(15)
    params = LiquidityVacuumParams(n_ticks=2, min_pulls=2, cooldown_ms=500, min_depth_micro=50 * SHARE)
    fired = _compare(params, _cascades(rng, 600), dense=dense, proxy=proxy)
    assert fired > 20, "the stream should make vacuums"


def test_parameters_beyond_int64_keep_the_reference() -> None:
    assert _made(LiquidityVacuumParams(window_ms=2**64), compiled=True)._kernel is None
    assert _made(LiquidityVacuumParams(), compiled=True)._kernel is not None


# -- the boundaries, one by one --------------------------------------------------------------------
# Random streams reach these edges only by luck: each case below sits a step on either side of one
# compare, so that a kernel off by one there (a tick, a micro, `>` for `>=`) parts from the reference.
# m0's YES token is 0, its NO token 1, on the 0.01 grid; the ladder leaves 0.46 and 0.45 empty, so a
# removal there changes no depth and only the zone compare decides whether a side is looked at.
EDGE = LiquidityVacuumParams(
    n_ticks=2, window_ms=100, drop_fraction=0.05, min_depth_micro=1, min_pulls=2, cooldown_ms=0
)
_C = 10_000
LADDER_BIDS = [(48 * _C, 100 * SHARE), (47 * _C, 100 * SHARE), (44 * _C, 100 * SHARE), (40 * _C, 100 * SHARE)]
LADDER_ASKS = [(52 * _C, 100 * SHARE), (53 * _C, 100 * SHARE), (56 * _C, 100 * SHARE), (60 * _C, 100 * SHARE)]


def _pulled(side: Side) -> list[tuple[tuple[Any, ...], int]]:
    """A fresh mirrored ladder, then YES's touch on `side` pulled: an episode of one pull begins."""
    return [(("snap", 0, LADDER_BIDS, LADDER_ASKS, True), 1_000), (("pull", 0, side, 1, False), 10)]


def _probe(
    token: int, side: Side, price: int, *, after: int, lead: bool = False
) -> tuple[tuple[Any, ...], int]:
    """A removal where no level stands, after a harmless YES change when `lead` (the kernel reads a
    view's first change and those after it in two places); on the NO token always, so that it is read
    as the YES view's mirror."""
    changes = [(token, side, price, 0)]
    if lead or token == 1:
        changes.insert(0, (0, Side.BUY, 30 * _C, 0))
    return (("change", changes), after)


def _probes() -> list[tuple[Side, int, Side, int, bool]]:
    """(side pulled, token, side changed, price, lead) at, and a micro and a tick beyond, each zone's
    edge.

    After a bid pull the YES bids' zone starts at 0.48 - 2 ticks = 0.46 (the NO asks' at 0.54); after
    an ask pull the YES asks' zone ends at 0.52 + 2 ticks = 0.54 (the NO bids' at 0.46).
    """
    buy, sell = Side.BUY, Side.SELL
    out: list[tuple[Side, int, Side, int, bool]] = []
    for beyond in (0, 1, _C):
        for lead in (False, True):
            out += [(buy, 0, buy, 46 * _C - beyond, lead), (sell, 0, sell, 54 * _C + beyond, lead)]
        out += [(buy, 1, sell, 54 * _C + beyond, True), (sell, 1, buy, 46 * _C - beyond, True)]
    return out


def _episode(
    params: LiquidityVacuumParams, ops: list[tuple[tuple[Any, ...], int]], side: Side
) -> tuple[int, int]:
    """The reference's episode (start, pulls) on YES's `side` after `ops`: the cases check that they
    probe what they say (an episode there to end or to count in, or none)."""
    markets = _markets(3)
    ctx = Ctx(markets, BookState, proxy=False)
    ref = _made(params, compiled=False)
    ts = 0
    for op, gap in ops:
        ts += gap
        for ev in list(_events(op, ts, ctx, markets)):
            ctx.apply(ev)
            ref.on_event(ev, ctx, ts)
    track = ref._tracks["m0-yes"]
    state = track.bids if side is Side.BUY else track.asks
    return state.start_ts, state.pulls


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize(("pulled", "token", "side", "price", "lead"), _probes())
def test_a_change_at_the_zone_edge_wakes_an_expired_episode_and_one_beyond_does_not(
    dense: bool, pulled: Side, token: int, side: Side, price: int, lead: bool
) -> None:
    # past the window, a look at the side ends the episode (the anchor moves to the last view); a
    # change the zones leave out must leave the episode as it stands
    ops = [*_pulled(pulled), _probe(token, side, price, after=EDGE.window_ms + 1, lead=lead)]
    at_edge = price in (46 * _C, 54 * _C)
    assert (_episode(EDGE, ops, pulled)[0] == 0) is at_edge
    _compare(EDGE, ops, dense=dense, proxy=False)


@pytest.mark.parametrize("after", [EDGE.window_ms - 1, EDGE.window_ms, EDGE.window_ms + 1])
def test_the_window_ends_strictly_after_window_ms(after: int) -> None:
    ops = [*_pulled(Side.BUY), _probe(0, Side.BUY, 46 * _C, after=after)]
    assert (_episode(EDGE, ops, Side.BUY)[0] == 0) is (after > EDGE.window_ms)
    _compare(EDGE, ops, dense=True, proxy=False)


@pytest.mark.parametrize("pulled", [Side.BUY, Side.SELL])
def test_a_look_that_does_not_move_the_touch_is_no_pull(pulled: Side) -> None:
    # inside the zone and the window, the touch where the last view left it: the count holds
    inside = 46 * _C if pulled is Side.BUY else 54 * _C
    ops = [*_pulled(pulled), _probe(0, pulled, inside, after=5)]
    assert _episode(EDGE, ops, pulled) == (1_010, 1)
    _compare(EDGE, ops, dense=True, proxy=False)


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("pulled", [Side.BUY, Side.SELL])
def test_a_vacuum_fires_one_tick_beyond_the_zone_and_not_at_its_edge(dense: bool, pulled: Side) -> None:
    # one level at a time: the second pull leaves the touch two ticks back, at the zone's edge, the
    # third three ticks back, beyond it
    bids = [(48 * _C, 100 * SHARE), (47 * _C, 100 * SHARE), (46 * _C, 100 * SHARE), (45 * _C, 10 * SHARE)]
    asks = [(52 * _C, 100 * SHARE), (53 * _C, 100 * SHARE), (54 * _C, 100 * SHARE), (55 * _C, 10 * SHARE)]
    ops: list[tuple[tuple[Any, ...], int]] = [(("snap", 0, bids, asks, True), 1_000)]
    ops += [(("pull", 0, pulled, 1, False), 10) for _ in range(2)]
    assert _compare(EDGE, ops, dense=dense, proxy=False) == 0
    assert _compare(EDGE, [*ops, (("pull", 0, pulled, 1, False), 10)], dense=dense, proxy=False) == 1


@pytest.mark.parametrize("traded", [99 * SHARE, 100 * SHARE, 101 * SHARE])
def test_a_pull_takers_explain_exactly_is_no_episode(traded: int) -> None:
    # a taker selling takes bids: the touch's 100 shares gone with exactly that traded re-anchors
    ops = [
        (("snap", 0, LADDER_BIDS, LADDER_ASKS, True), 1_000),
        (("trade", 0, Side.SELL, traded), 5),
        (("pull", 0, Side.BUY, 1, False), 5),
    ]
    assert (_episode(EDGE, ops, Side.BUY)[0] == 0) is (traded >= 100 * SHARE)
    _compare(EDGE, ops, dense=True, proxy=False)


@pytest.mark.parametrize("min_depth", [99 * SHARE, 100 * SHARE, 101 * SHARE])
def test_the_unexplained_depth_needs_min_depth_exactly(min_depth: int) -> None:
    params = LiquidityVacuumParams(
        n_ticks=1, window_ms=100, drop_fraction=0.05, min_depth_micro=min_depth, min_pulls=1, cooldown_ms=0
    )
    # the zone of 0.48 one tick deep holds 200 shares; 0.48 and 0.47 pulled at once leaves 0.44
    ops = [(("snap", 0, LADDER_BIDS, LADDER_ASKS, True), 1_000), (("trade", 0, Side.SELL, 100 * SHARE), 5)]
    ops.append((("pull", 0, Side.BUY, 2, False), 5))
    assert _compare(params, ops, dense=True, proxy=False) == (1 if min_depth <= 100 * SHARE else 0)
