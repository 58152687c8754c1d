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

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import require_compiled_book
from polysnipe.adapters.sim import (
    ConstantLatency,
    PolymarketFeeModel,
    PowerProbQueueModel,
    QueueModel,
    RiskAverseQueueModel,
    SimVenue,
)
from polysnipe.adapters.sim import venue as venue_module
from polysnipe.adapters.sim.execution import SimExecution
from polysnipe.adapters.sim.models import FeedLatency
from polysnipe.core.book import BookState, use_pure_python
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


def _pair(latency_ms: int, seed: int, queue: QueueModel | None = None) -> tuple[SimExecution, SimExecution]:
    def make() -> SimExecution:
        market = Market(
            COND, (YES, NO), ("Yes", "No"), tick_size=10_000, min_order_size=5 * S, neg_risk=False
        )
        registry = MarketRegistry.of([market])
        latency = ConstantLatency(latency_ms, latency_ms)
        venue = SimVenue(
            registry, latency, queue or PowerProbQueueModel(), PolymarketFeeModel(), random.Random(seed)
        )
        return SimExecution(venue, registry)

    compiled, python = make(), make()
    engine = python.venue._engine
    engine._apply_plain = venue_module._apply_plain
    engine._compiled = False  # arriving orders matched by the Python walk (_plan_levels) too
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
    queues = [(o.pos.ahead, o.pos.traded) for o in engine._orders.values()]
    return toks, venue.open_orders(), queues, money, venue.wake_ms, execution.winners


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


class _Subclassed(RiskAverseQueueModel):
    """A model the C path does not know (it may move queues its own way): the Python venue's."""


_QUEUES: list[QueueModel] = [
    RiskAverseQueueModel(),
    PowerProbQueueModel(1),
    PowerProbQueueModel(2),
    PowerProbQueueModel(3),
    _Subclassed(),
]
_resting_op = st.one_of(
    st.tuples(st.just("rest"), st.sampled_from(["w1", "w2"]), _token, _side, _near, st.integers(5, 40)),
    st.tuples(st.just("delta"), _token, _side, _near, st.integers(0, 60)),
    st.tuples(st.just("big"), _token, _side, _near, st.sampled_from([1 << 40, (1 << 40) - 1, 3 << 39])),
    st.tuples(st.just("print"), _token, _near, st.integers(1, 60), _side),
    st.tuples(st.just("fak"), _token, _side, _near, st.integers(5, 40)),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
)


def _order(
    oid: str, wallet: str, token: str, side: Side, price: int, size: int, kind: OrderType
) -> OrderRequest:
    return OrderRequest(
        order_id=oid, opportunity_id="opp", correlation_id="corr", strategy="test", routing="test",
        wallet=wallet, market=COND, token_id=token, side=side, price=price, size=size, order_type=kind,
        tick_size=10_000, neg_risk=False,
    )  # fmt: skip


def _open_books(execution: SimExecution, books: int) -> None:
    """The market's books to start from: 0 neither trusted (the NO token seen in a delta), 1 YES's
    snapshot (NO read mirrored), 2 both, mirroring each other."""
    bids = tuple(Level(p * 10_000, 20 * S) for p in (49, 48, 47))
    asks = tuple(Level(p * 10_000, 20 * S) for p in (51, 52, 53))
    if books:
        execution.on_market_event(BookSnapshot(0, YES, COND, bids, asks))
    else:
        execution.on_market_event(PriceChange(0, COND, (BookDelta(NO, Side.BUY, 500_000, S),)))
    if books == 2:
        mirror = [tuple(Level(ONE - lv.price, lv.size) for lv in side) for side in (asks, bids)]
        execution.on_market_event(BookSnapshot(0, NO, COND, mirror[0], mirror[1]))


def _resting_step(execution: SimExecution, op: tuple[Any, ...], ts: int) -> None:
    """One _resting_op at `ts`."""
    kind = op[0]
    if kind in ("rest", "fak"):
        wallet, (token, side, price, shares) = ("w1", op[1:]) if kind == "fak" else (op[1], op[2:])
        order_type = OrderType.FAK if kind == "fak" else OrderType.GTC
        execution.venue.submit(_order(f"o{ts}", wallet, token, side, price, shares * S, order_type), ts)
        execution.due(ts)
    elif kind == "cancel":
        resting = execution.venue.open_orders()
        if resting:
            execution.venue.cancel(resting[op[1] % len(resting)].order.order_id, ts)
            execution.due(ts)
    elif kind in ("delta", "big"):
        _, token, side, price, size = op
        size = size * S if kind == "delta" else size
        execution.on_market_event(PriceChange(ts, COND, (BookDelta(token, side, price, size),)))
    else:
        _, token, price, shares, taker = op
        execution.on_market_event(LastTrade(ts, token, COND, price, shares * S, taker))


@settings(max_examples=400, deadline=None)
@given(st.lists(_resting_op, min_size=1, max_size=40), st.sampled_from(_QUEUES), st.sampled_from([0, 1, 2]))
def test_queues_of_resting_orders_move_alike_on_both_paths(
    stream: list[tuple[Any, ...]], queue: QueueModel, books: int
) -> None:
    # orders rest on both views, at levels the deltas and prints move, rise to cross, or trade through;
    # the C path moves the queues of the models it knows when nothing fills, and hands everything else
    # (fills, unknown models, sizes past the exact range) to the Python venue, the reference
    require_compiled_book()
    compiled, python = _pair(0, 0, queue)
    for execution in (compiled, python):
        _open_books(execution, books)
    for ts, op in enumerate(stream, start=1):
        for execution in (compiled, python):
            _resting_step(execution, op, ts)
        assert _state(compiled) == _state(python)


@pytest.mark.parametrize("queue", _QUEUES, ids=lambda q: f"{type(q).__name__}{getattr(q, 'power', '')}")
def test_long_random_streams_move_queues_alike_on_both_paths(queue: QueueModel) -> None:
    # hypothesis' streams are short; these are long enough for orders to rest through many level
    # changes and prints (what the C path does most), with fills, cancels and sizes near its limits
    require_compiled_book()
    rng = random.Random(7)
    near = [p * 10_000 for p in range(47, 54)]
    bids = tuple(Level(p * 10_000, 20 * S) for p in (49, 48, 47))
    asks = tuple(Level(p * 10_000, 20 * S) for p in (51, 52, 53))
    for _ in range(60):
        compiled, python = _pair(0, 0, queue)
        books = rng.randrange(3)
        for execution in (compiled, python):
            if books:
                execution.on_market_event(BookSnapshot(0, YES, COND, bids, asks))
            if books == 2:
                mirror = [tuple(Level(ONE - lv.price, lv.size) for lv in side) for side in (asks, bids)]
                execution.on_market_event(BookSnapshot(0, NO, COND, mirror[0], mirror[1]))
        for ts in range(1, 80):
            kind = rng.choice(["rest", "rest", "delta", "delta", "delta", "print", "print", "fak", "cancel"])
            token, side, price = rng.choice([YES, NO]), rng.choice([Side.BUY, Side.SELL]), rng.choice(near)
            shares = rng.randint(0, 50)
            size = rng.choice([shares * S, 1 << 40, (1 << 40) - 1]) if kind == "delta" else shares * S
            pick = rng.randrange(8)
            for execution in (compiled, python):
                if kind in ("rest", "fak"):
                    order_type = OrderType.FAK if kind == "fak" else OrderType.GTC
                    req = _order(f"o{ts}", f"w{pick % 2}", token, side, price, max(size, 5 * S), order_type)
                    execution.venue.submit(req, ts)
                    execution.due(ts)
                elif kind == "cancel":
                    resting = execution.venue.open_orders()
                    if resting:
                        execution.venue.cancel(resting[pick % len(resting)].order.order_id, ts)
                        execution.due(ts)
                elif kind == "delta":
                    execution.on_market_event(PriceChange(ts, COND, (BookDelta(token, side, price, size),)))
                else:
                    execution.on_market_event(LastTrade(ts, token, COND, price, max(size, S), side))
            assert _state(compiled) == _state(python)


def _counting_sink(execution: SimExecution) -> tuple[list[MarketEvent], Any]:
    seen: list[MarketEvent] = []

    def slow(event: MarketEvent, start: int = 0) -> None:
        seen.append(event)
        execution.venue.apply_event(event, start)

    return seen, execution.venue.market_sink(slow)


def test_queue_upkeep_at_a_resting_order_stays_in_c_and_a_fill_goes_to_python() -> None:
    # the point of the resting path: a level change at a resting bid, a rise elsewhere, and a print
    # that trades less than the size ahead never reach the Python venue; a rise that crosses the bid
    # and a print past the size ahead fill it, so the Python venue gets them
    require_compiled_book()
    compiled, _ = _pair(0, 0, PowerProbQueueModel(2))
    compiled.on_market_event(BookSnapshot(0, YES, COND, (Level(490_000, 20 * S),), (Level(510_000, 20 * S),)))
    compiled.on_market_event(BookSnapshot(0, NO, COND, (Level(490_000, 20 * S),), (Level(510_000, 20 * S),)))
    compiled.venue.submit(_order("bid", "w1", YES, Side.BUY, 490_000, 10 * S, OrderType.GTC), 0)
    compiled.due(0)
    seen, sink = _counting_sink(compiled)
    sink(
        PriceChange(
            1, COND, (BookDelta(YES, Side.BUY, 490_000, 15 * S), BookDelta(YES, Side.SELL, 520_000, S))
        )
    )
    sink(LastTrade(2, YES, COND, 490_000, 4 * S, Side.SELL))
    assert [] == seen
    # joined behind 20; the fall to 15 came from the front (nothing behind it), the print took 4 more
    position = compiled.venue._engine._orders["bid"].pos
    assert (11 * S, 4 * S) == (position.ahead, position.traded)
    sink(PriceChange(3, COND, (BookDelta(YES, Side.SELL, 480_000, 5 * S),)))  # crosses the bid
    assert 1 == len(seen)
    sink(LastTrade(4, YES, COND, 490_000, 40 * S, Side.SELL))  # past the size ahead
    assert 2 == len(seen)


@st.composite
def _level_and_queue(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """(prev, new, ahead, traded) of one level, at a scale from a few units to past the 2**40 edge."""
    scale = draw(st.sampled_from([100, 100, 10 * S, (1 << 40) - 1, 1 << 40, 1 << 44]))
    prev = draw(st.integers(1, scale))
    return (
        prev,
        draw(st.integers(0, scale)),
        draw(st.integers(0, prev)),
        draw(st.one_of(st.just(0), st.integers(0, prev))),
    )


@settings(max_examples=600, deadline=None)
@example(PowerProbQueueModel(1), (100, 40, 50, 0), "level", 0)  # a floor the split's divisor moves
@example(PowerProbQueueModel(2), (1 << 50, 1 << 48, 1 << 49, 0), "level", 0)  # past 128 bits: Python's
@example(PowerProbQueueModel(2), (1 << 40, 1, 1 << 39, 0), "level", 0)  # the edge itself
@given(
    st.sampled_from(_QUEUES),
    _level_and_queue(),
    st.sampled_from(["level", "level", "cross", "print"]),
    st.integers(-2, 2),
)
def test_one_queue_move_at_the_edges_is_the_python_ones(
    queue: QueueModel, level: tuple[int, int, int, int], what: str, nudge: int
) -> None:
    # exact integers (sizes around the 2**40 edge of the 128-bit split, a rise of one micro-unit that
    # crosses, a print of the size ahead give or take one) against the Python model
    require_compiled_book()
    prev, new, ahead, traded = level
    out = []
    for execution in _pair(0, 0, queue):
        execution.on_market_event(
            BookSnapshot(0, YES, COND, (Level(490_000, prev),), (Level(520_000, 20 * S),))
        )
        # the complement known too, as a print's C path needs (it reads both books' claims)
        execution.on_market_event(BookSnapshot(0, NO, COND, (), ()))
        execution.venue.submit(_order("bid", "w1", YES, Side.BUY, 490_000, 10 * S, OrderType.GTC), 0)
        execution.venue.submit(_order("ask", "w2", YES, Side.SELL, 500_000, 10 * S, OrderType.GTC), 0)
        execution.due(0)
        position = execution.venue._engine._orders["bid"].pos
        position.ahead, position.traded = ahead, traded
        if what == "level":
            event: MarketEvent = PriceChange(1, COND, (BookDelta(YES, Side.BUY, 490_000, new),))
        elif what == "cross":
            event = PriceChange(1, COND, (BookDelta(YES, Side.BUY, 500_000 + 10_000 * min(nudge, 0), 1),))
        else:
            event = LastTrade(1, YES, COND, 490_000, max(ahead + nudge, 1), Side.SELL)
        execution.on_market_event(event)
        out.append(_state(execution))
    assert out[0] == out[1]


# -- matching of arriving orders (_venue.match) -------------------------------------------------


def _plans(engine: Any, token: str, side: Side, limit: int, qty: int, owner: str, replayed_only: bool) -> Any:
    """The compiled walk's plan and the Python one's, on the same engine state and objects."""
    view, _ = engine._view(engine._toks[token])
    idx = view.bids if side is Side.BUY else view.asks
    other = venue_module._NO_LEVELS if replayed_only else engine._mirrored_levels(view, side)
    args = (view.book, side, limit, qty, owner, idx, other, replayed_only)
    assert venue_module._compiled_match is not None
    return venue_module._compiled_match(*args), venue_module._plan_levels(*args)


#: (token, side taken, limit, shares, owner, replayed_only) of one plan asked
_taker = st.tuples(
    _token, _side, _near, st.integers(1, 200), st.sampled_from(["w1", "w2", "w3"]), st.booleans()
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_resting_op, min_size=1, max_size=30),
    st.sampled_from([0, 1, 2]),
    st.lists(_taker, min_size=1, max_size=8),
)
def test_the_compiled_match_walks_the_levels_and_queues_as_the_python_one(
    stream: list[tuple[Any, ...]], books: int, takers: list[tuple[Any, ...]]
) -> None:
    # resting orders of two wallets on both views (mirrored into the other's walk by time order), at
    # levels the feed moved, emptied (a price where only orders rest) or printed through; every plan
    # asked of that state is the Python walk's, step for step and order for order
    require_compiled_book()
    compiled, _ = _pair(0, 0)
    _open_books(compiled, books)
    engine = compiled.venue._engine
    for ts, op in enumerate(stream, start=1):
        _resting_step(compiled, op, ts)
        for token in (YES, NO):
            engine._tok(token)  # the view exists, as a taker's _view makes it
        for token, side, limit, shares, owner, replayed_only in takers:
            c, py = _plans(engine, token, side, limit, shares * S, owner, replayed_only)
            assert py == c
            assert all(cs[2] is ps[2] for cs, ps in zip(c, py, strict=True))


def test_the_compiled_match_takes_the_venues_cases_and_leaves_the_rest_to_python() -> None:
    # an ordinary walk is C's (a list, not None); what it does not take (a size of none, a book that
    # is not a DenseBook, a level off the grid) it leaves to the Python walk, which answers
    require_compiled_book()
    compiled, _ = _pair(0, 0)
    bids = (Level(490_000, 20 * S), Level(480_000, 20 * S))
    compiled.on_market_event(BookSnapshot(0, YES, COND, bids, (Level(510_000, 20 * S),)))
    compiled.venue.submit(_order("a", "w1", YES, Side.BUY, 490_000, 10 * S, OrderType.GTC), 0)
    compiled.venue.submit(_order("b", "w2", YES, Side.BUY, 470_000, 10 * S, OrderType.GTC), 0)
    compiled.due(0)
    engine = compiled.venue._engine
    assert venue_module._compiled_match is not None
    a, b = engine._orders["a"], engine._orders["b"]
    c, py = _plans(engine, YES, Side.BUY, 470_000, 70 * S, "w3", False)
    # the level at 0.49 queues 20 ahead of order a; 0.47 shows nothing but order b
    expected = [(490_000, 20 * S, None), (490_000, 10 * S, a), (480_000, 20 * S, None), (470_000, 10 * S, b)]
    assert expected == c == py
    assert [(490_000, 20 * S, None), (480_000, 20 * S, None)] == _plans(
        engine, YES, Side.BUY, 470_000, 70 * S, "w3", True
    )[0]
    # order a is w1's own: passed over, it keeps its place
    own = [(490_000, 20 * S, None), (480_000, 20 * S, None), (470_000, 10 * S, b)]
    assert own == _plans(engine, YES, Side.BUY, 470_000, 70 * S, "w1", False)[0]
    # a second order at 0.49 behind the level it joined (30), which then rose to 50: the replayed
    # size between a and c is what c had ahead less what a had, and a level of one unit is a level
    compiled.on_market_event(PriceChange(1, COND, (BookDelta(YES, Side.BUY, 490_000, 30 * S),)))
    compiled.venue.submit(_order("c", "w2", YES, Side.BUY, 490_000, 10 * S, OrderType.GTC), 1)
    compiled.due(1)
    compiled.on_market_event(PriceChange(2, COND, (BookDelta(YES, Side.BUY, 490_000, 50 * S),)))
    # b joined where nothing showed: ahead of the unit that came after it
    compiled.on_market_event(PriceChange(2, COND, (BookDelta(YES, Side.BUY, 470_000, 1),)))
    cc = engine._orders["c"]
    c, py = _plans(engine, YES, Side.BUY, 460_000, 200 * S, "w3", False)
    expected = [
        (490_000, 20 * S, None), (490_000, 10 * S, a), (490_000, 10 * S, None), (490_000, 10 * S, cc),
        (490_000, 20 * S, None), (480_000, 20 * S, None), (470_000, 10 * S, b), (470_000, 1, None),
    ]  # fmt: skip
    assert expected == c == py
    view = engine._toks[YES]
    for qty in (0, -5):
        assert venue_module._compiled_match(view.book, Side.BUY, 0, qty, "w3", {}, {}, False) is None
    off_grid = BookState(YES, 10_000)
    off_grid.apply_snapshot(BookSnapshot(0, YES, COND, bids, ()))
    assert venue_module._compiled_match(off_grid, Side.BUY, 0, S, "w3", {}, {}, False) is None
    dense = view.book
    dense.apply_level(Side.BUY, 485_050, S, 1)  # a price off the 0.0001 grid: kept aside by the book
    assert venue_module._compiled_match(dense, Side.BUY, 0, S, "w3", {}, {}, False) is None
    assert venue_module._compiled_match(dense, Side.SELL, 0, S, "w3", {}, {}, True) is not None


def test_the_compiled_match_refuses_or_leaves_to_python_what_is_not_the_venues_shape() -> None:
    # hostile arguments never crash the walk: a wrong call is a TypeError, and anything but the
    # venue's own objects and int ranges is left to the Python walk (None), nothing read past
    require_compiled_book()
    compiled, _ = _pair(0, 0)
    compiled.on_market_event(BookSnapshot(0, YES, COND, (Level(490_000, 20 * S),), (Level(510_000, 20 * S),)))
    compiled.venue.submit(_order("a", "w1", YES, Side.BUY, 490_000, 10 * S, OrderType.GTC), 0)
    compiled.due(0)
    engine = compiled.venue._engine
    book, order = engine._toks[YES].book, engine._orders["a"]
    match = venue_module._compiled_match
    assert match is not None
    with pytest.raises(TypeError):
        match(book, Side.BUY, 0, S, "w2", {}, {})
    odd_idx: list[Any] = [
        {490_000: "not a list"},
        {490_000: [object()]},
        {"0.49": [order]},
        {1 << 70: [order]},
        {490_000: (order,)},
    ]
    for idx in odd_idx:
        for replayed_only in (False, True):
            assert match(book, Side.BUY, 0, 30 * S, "w2", idx, {}, replayed_only) is None
            # the complement's levels, keyed by its own prices: 0.49 there is 0.51 here, not walked
            mirrored = match(book, Side.BUY, 0, 30 * S, "w2", {}, idx, replayed_only)
            assert mirrored is None or [(490_000, 20 * S, None)] == mirrored
    args: tuple[object, ...]
    for args in [
        (book, "BUY", 0, S, "w2", {}, {}, False),  # not a Side
        (book, Side.BUY, 0.5, S, "w2", {}, {}, False),  # a float limit
        (book, Side.BUY, 0, 1 << 64, "w2", {}, {}, False),  # a size past the checked range
        (book, Side.BUY, 0, S, b"w2", {}, {}, False),  # an owner not a str
        (book, Side.BUY, 0, S, "w2", [], {}, False),  # levels not a dict
        (object(), Side.BUY, 0, S, "w2", {}, {}, False),  # not a book
    ]:
        assert match(*args) is None
    # an order whose position was tampered with (a negative size ahead): the Python walk's case
    order.pos.ahead = -1
    assert match(book, Side.BUY, 0, 30 * S, "w2", engine._toks[YES].bids, {}, False) is None
    order.pos.ahead = 20 * S
    assert [(490_000, 20 * S, None), (490_000, 10 * S, order)] == match(
        book, Side.BUY, 0, 30 * S, "w2", engine._toks[YES].bids, {}, False
    )
