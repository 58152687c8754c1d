"""The compiled venue sink (adapters/sim/_venue.c, `sink`) against the Python venue it stands in for.

Two venues over the same compiled books take one random stream: one through the compiled sink, one
through SimVenue.apply_event and the Python per-delta loop (the reference). Streams mix what the sink
must hand back (resting orders, claims taken by FAKs, prints at and through them, snapshots of either
token, a book read mirrored, arrivals falling due, a tick change, the market resolving) with what it
applies itself, and after every step each book level, claim, resting order (with its queue position),
balance and report must be the same.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import require_compiled_book
from polysnipe.adapters.sim import ConstantLatency, PolymarketFeeModel, PowerProbQueueModel, SimVenue
from polysnipe.adapters.sim import venue as venue_module
from polysnipe.adapters.sim.execution import SimExecution
from polysnipe.adapters.sim.models import FeedLatency
from polysnipe.core.book import use_pure_python
from polysnipe.core.events import (
    BookDelta,
    BookSnapshot,
    LastTrade,
    Level,
    MarketEvent,
    MarketResolved,
    PriceChange,
    Side,
    TickSizeChange,
)
from polysnipe.core.market import Market, MarketRegistry
from polysnipe.core.messages import OrderFilled, OrderRequest, OrderType
from polysnipe.core.units import MICRO, ONE

S = MICRO
YES, NO, COND = "tok-yes", "tok-no", "cond-1"
#: a token no market has: the venue skips it
STRAY = "tok-stray"
_px = st.integers(40, 60).map(lambda t: t * 10_000)
_shares = st.integers(0, 30)
_side = st.sampled_from([Side.BUY, Side.SELL])
_token = st.sampled_from([YES, NO])
_delta_token = st.sampled_from([YES, NO, YES, NO, STRAY])
_levels = st.dictionaries(_px, st.integers(1, 30), max_size=4)

_op = st.one_of(
    st.tuples(
        st.just("delta"),
        st.lists(
            st.tuples(st.sampled_from([YES, NO, YES, NO, STRAY]), _side, _px, _shares), min_size=1, max_size=5
        ),
    ),
    st.tuples(st.just("print"), _token, _px, st.integers(1, 40), _side),
    st.tuples(st.just("snap"), _token, _levels, _levels),
    st.tuples(
        st.just("order"),
        st.sampled_from(["w1", "w2"]),
        _token,
        _side,
        _px,
        st.integers(5, 30),
        st.sampled_from([OrderType.GTC, OrderType.GTD, OrderType.FAK, OrderType.FOK]),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
    st.tuples(st.just("tick"), _token, st.sampled_from([1_000, 10_000])),
    st.tuples(st.just("resolve"), _token),
)
_stream = st.lists(st.tuples(_op, st.integers(0, 3)), min_size=1, max_size=40)


def _pair(latency_ms: int, seed: int) -> tuple[SimExecution, SimExecution]:
    def make() -> SimExecution:
        market = Market(
            COND, (YES, NO), ("Yes", "No"), tick_size=10_000, min_order_size=5 * S, neg_risk=False
        )
        registry = MarketRegistry.of([market])
        latency = ConstantLatency(latency_ms, latency_ms)
        venue = SimVenue(registry, latency, PowerProbQueueModel(), PolymarketFeeModel(), random.Random(seed))
        return SimExecution(venue, registry)

    compiled, python = make(), make()
    engine = python.venue._engine
    engine._apply_plain = venue_module._apply_plain
    python.venue.on_market_event = python.venue.apply_event
    python.on_market_event = python._on_market_event
    assert compiled.on_market_event != compiled._on_market_event, "the compiled sink is built"
    return compiled, python


def _state(execution: SimExecution) -> Any:
    venue = execution.venue
    engine = venue._engine
    toks = {
        token: (
            tok.book.trusted,
            tok.book.tick_size,
            tok.book.levels(Side.BUY),
            tok.book.levels(Side.SELL),
            tok.resting,
            [{px: (c.shown, c.held, c.printed) for px, c in side.items()} for side in tok.claims],
        )
        for token, tok in engine._toks.items()
    }
    ledger = venue.ledger
    money = (ledger._usdc, ledger._shares, ledger._reserved_usdc, ledger._reserved_shares)
    assert venue.wake_ms == execution.wake_ms
    return toks, venue.open_orders(), money, venue.wake_ms, execution.winners


def _events(op: tuple[Any, ...], ts: int) -> list[MarketEvent]:
    kind = op[0]
    if kind == "delta":
        return [PriceChange(ts, COND, tuple(BookDelta(t, s, p, n * S) for t, s, p, n in op[1]))]
    if kind == "print":
        _, token, price, shares, taker = op
        return [LastTrade(ts, token, COND, price, shares * S, taker)]
    if kind == "snap":
        _, token, bids, asks = op
        levels = [tuple(Level(p, n * S) for p, n in sorted(side.items())) for side in (bids, asks)]
        return [BookSnapshot(ts, token, COND, levels[0], levels[1])]
    if kind == "tick":
        return [TickSizeChange(ts, op[1], COND, 10_000, op[2])]
    if kind == "resolve":
        return [MarketResolved(ts, COND, op[1])]
    return []


@settings(max_examples=300, deadline=None)
@given(_stream, st.sampled_from([0, 1, 3]), st.integers(0, 3))
def test_the_compiled_sink_leaves_every_book_claim_order_and_report_as_the_python_venue(
    stream: list[tuple[tuple[Any, ...], int]], latency_ms: int, seed: int
) -> None:
    require_compiled_book()
    compiled, python = _pair(latency_ms, seed)
    ts = 0
    for i, (op, step) in enumerate(stream):
        ts += step
        for execution in (compiled, python):
            if op[0] == "order":
                _, wallet, token, side, price, shares, kind = op
                req = OrderRequest(
                    order_id=f"o{i}", opportunity_id="opp", correlation_id="corr", strategy="test",
                    routing="test", wallet=wallet, market=COND, token_id=token, side=side, price=price,
                    size=shares * S, order_type=kind, tick_size=10_000, neg_risk=False, expiration_ms=ts + 5,
                )  # fmt: skip
                execution.venue.submit(req, ts)
            elif op[0] == "cancel":
                resting = execution.venue.open_orders()
                if resting:
                    execution.venue.cancel(resting[op[1] % len(resting)].order.order_id, ts)
            for event in _events(op, ts):
                execution.on_market_event(event)
        assert compiled.due(ts) == python.due(ts)
        assert _state(compiled) == _state(python)
    assert compiled.due(ts + 100) == python.due(ts + 100)
    assert _state(compiled) == _state(python)


def test_a_plain_book_update_never_reaches_the_python_venue() -> None:
    # the point of the sink: with nothing resting, claimed or due, the handler is not called at all
    require_compiled_book()
    compiled, _ = _pair(0, 0)
    seen: list[tuple[MarketEvent, int]] = []
    sink = compiled.venue.market_sink(lambda event, start=0: seen.append((event, start)))
    book = BookSnapshot(1, YES, COND, (Level(400_000, 5 * S),), (Level(410_000, 5 * S),))
    compiled.on_market_event(book)
    update = PriceChange(
        2, COND, (BookDelta(YES, Side.BUY, 390_000, S), BookDelta(YES, Side.SELL, 420_000, S))
    )
    sink(update)
    sink(LastTrade(3, YES, COND, 410_000, S, Side.BUY))  # NO has no book yet: the venue must see it
    assert [3] == [event.ts_ms for event, _ in seen]
    assert ((400_000, 5 * S), (390_000, S)) == tuple(compiled.venue.book(YES).levels(Side.BUY))  # type: ignore[union-attr]
    # a delta of a token the venue never saw stops the C loop there: the handler goes on from it
    stray = PriceChange(4, COND, (BookDelta(YES, Side.BUY, 380_000, S), BookDelta(NO, Side.BUY, 500_000, S)))
    sink(stray)
    assert (stray, 1) == seen[-1]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 50), st.integers(1, 5_000), st.integers(0, 2**32))
def test_the_python_feed_draws_are_the_compiled_ones(base_ms: int, jitter_ms: int, seed: int) -> None:
    require_compiled_book()
    model = FeedLatency(base_ms=base_ms, jitter_ms=jitter_ms)
    compiled_rng, python_rng = random.Random(seed), random.Random(seed)
    compiled = model.draws(compiled_rng)
    use_pure_python(True)
    try:
        python = model.draws(python_rng)
    finally:
        use_pure_python(False)
    assert type(compiled) is not type(python)
    assert [python() for _ in range(100)] == [compiled() for _ in range(100)]
    assert python_rng.random() == compiled_rng.random()


def test_an_arrival_due_at_the_events_time_happens_before_it_on_both_paths() -> None:
    # "at or before": the sink must hand an event at exactly the next due time to the Python venue
    require_compiled_book()
    for execution in _pair(5, 0):
        venue = execution.venue
        execution.on_market_event(BookSnapshot(0, YES, COND, (), (Level(400_000, 10 * S),)))
        req = OrderRequest(
            order_id="fak", opportunity_id="opp", correlation_id="corr", strategy="test", routing="test",
            wallet="w1", market=COND, token_id=YES, side=Side.BUY, price=400_000, size=10 * S,
            order_type=OrderType.FAK, tick_size=10_000, neg_risk=False,
        )  # fmt: skip
        venue.submit(req, 0)
        execution.on_market_event(PriceChange(5, COND, (BookDelta(YES, Side.SELL, 400_000, 0),)))
        assert [10 * S] == [r.size for r in execution.due(10) if isinstance(r, OrderFilled)]


def _outcome(execution: SimExecution, event: Any) -> Any:
    try:
        execution.on_market_event(event)
    except Exception as exc:  # the same failure on both paths is the point here
        return type(exc)
    return _state(execution)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([0, 5, 2.5, -1, 1 << 70]),
    st.sampled_from([YES, 7, STRAY]),
    st.sampled_from([Side.BUY, 0, 1, "BUY"]),
    st.sampled_from([400_000, 400_000.0, 1 << 70]),
    st.booleans(),
)
def test_odd_events_fail_or_apply_alike_on_both_paths(
    ts: Any, token: Any, side: Any, price: Any, as_list: bool
) -> None:
    # what the decoders never produce must still not crash the C code, nor make it differ
    require_compiled_book()
    compiled, python = _pair(3, 0)
    for execution in (compiled, python):
        execution.on_market_event(BookSnapshot(0, YES, COND, (Level(390_000, S),), (Level(410_000, S),)))
        execution.on_market_event(BookSnapshot(0, NO, COND, (Level(590_000, S),), (Level(610_000, S),)))
    changes: Any = [BookDelta(token, side, price, 2 * S)]
    events = [
        PriceChange(ts, COND, changes if as_list else tuple(changes)),
        LastTrade(ts, token, COND, price, S, side),
    ]
    for event in events:
        assert _outcome(compiled, event) == _outcome(python, event)


def test_a_first_snapshot_takes_over_the_complements_claims_on_both_paths() -> None:
    # NO is known (a delta made it) but untrusted; a FAK on NO read YES mirrored and claimed there; NO's
    # snapshot must carry that claim over: not a plain snapshot, whatever NO itself holds
    require_compiled_book()
    compiled, python = _pair(0, 0)
    for execution in (compiled, python):
        execution.on_market_event(
            BookSnapshot(0, YES, COND, (Level(390_000, 10 * S),), (Level(410_000, 10 * S),))
        )
        execution.on_market_event(PriceChange(1, COND, (BookDelta(NO, Side.BUY, 590_000, 10 * S),)))
        req = OrderRequest(
            order_id="fak", opportunity_id="opp", correlation_id="corr", strategy="test", routing="test",
            wallet="w1", market=COND, token_id=NO, side=Side.BUY, price=610_000, size=6 * S,
            order_type=OrderType.FAK, tick_size=10_000, neg_risk=False,
        )  # fmt: skip
        execution.venue.submit(req, 1)
        execution.due(1)
        execution.on_market_event(
            BookSnapshot(2, NO, COND, (Level(590_000, 10 * S),), (Level(610_000, 10 * S),))
        )
    assert _state(compiled) == _state(python)
    no_claims = _state(python)[0][NO][5]
    assert [{}, {610_000: (10 * S, 6 * S, 0)}] == no_claims


_near = st.integers(47, 53).map(lambda t: t * 10_000)
_claims_op = st.one_of(
    st.tuples(st.just("fak"), _token, _side, _near, st.integers(5, 40)),
    st.tuples(st.just("delta"), _token, _side, _near, st.integers(0, 40)),
    st.tuples(st.just("print"), _token, _near, st.integers(1, 40), _side),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_claims_op, min_size=1, max_size=30), st.booleans())
def test_claims_follow_the_feed_and_the_prints_alike_on_both_paths(
    stream: list[tuple[Any, ...]], both_books: bool
) -> None:
    # nothing rests, so every claim update (a fall, a rise, a print at or through the level, of less or
    # more than the claim) is the compiled sink's to do; the Python venue is the reference
    require_compiled_book()
    compiled, python = _pair(0, 0)
    bids = tuple(Level(p * 10_000, 20 * S) for p in (49, 48, 47))
    asks = tuple(Level(p * 10_000, 20 * S) for p in (51, 52, 53))
    for execution in (compiled, python):
        execution.on_market_event(BookSnapshot(0, YES, COND, bids, asks))
        if both_books:
            mirror = [tuple(Level(ONE - lv.price, lv.size) for lv in side) for side in (asks, bids)]
            execution.on_market_event(BookSnapshot(0, NO, COND, mirror[0], mirror[1]))
    for ts, op in enumerate(stream, start=1):
        for execution in (compiled, python):
            if op[0] == "fak":
                _, token, side, price, shares = op
                req = OrderRequest(
                    order_id=f"f{ts}", opportunity_id="opp", correlation_id="corr", strategy="test",
                    routing="test", wallet="w1", market=COND, token_id=token, side=side, price=price,
                    size=shares * S, order_type=OrderType.FAK, tick_size=10_000, neg_risk=False,
                )  # fmt: skip
                execution.venue.submit(req, ts)
                execution.due(ts)
            elif op[0] == "delta":
                _, token, side, price, shares = op
                execution.on_market_event(PriceChange(ts, COND, (BookDelta(token, side, price, shares * S),)))
            else:
                _, token, price, shares, taker = op
                execution.on_market_event(LastTrade(ts, token, COND, price, shares * S, taker))
        assert _state(compiled) == _state(python)
