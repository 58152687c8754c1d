"""The compiled step and price-change dispatch (core/_market.c) against pipeline.py's and
market_handlers.py's Python path.

Two engines, alike in every part (the compiled book and signal kernels, a scripted module emitting
opportunities, lots held in several tokens by two wallets, exit rules that fire), take the same random
stream in lockstep: one through core._market.price_change, the other with it turned off. Every step's
commands must be equal, and so must the books, the counters and the exit state after each step; the
venue's answers to the orders (fills, rejections) go to both, so exits in flight, retries and new lots
are reached too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from conftest import require_compiled_book
from kit import ScriptedSignal, fill, market, of, opportunity, risk_policy
from polysnipe.core import market_handlers
from polysnipe.core.book import BookState
from polysnipe.core.evaluators import Evaluators
from polysnipe.core.events import BookDelta, BookSnapshot, LastTrade, Level, PriceChange, Side
from polysnipe.core.exit_rules import BASKET_LOT, ExitParams, ExitRule
from polysnipe.core.market import Market, MarketRegistry
from polysnipe.core.messages import Command, Input, OrderRejected, PlaceOrder
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.pipeline import python_step, step
from polysnipe.core.portfolio import Lot, Portfolio
from polysnipe.core.risk import RiskGatekeeper, RiskState
from polysnipe.core.routing import build_router
from polysnipe.core.signals.liquidity_vacuum import LiquidityVacuum
from polysnipe.core.signals.spread_hunter import SpreadHunter
from polysnipe.core.state import EngineState, build_state
from polysnipe.core.units import MICRO

T0 = 1_700_000_000_000
WALLETS = ("0xa", "0xb")
MARKETS = tuple(market(f"0xc{i}", (f"y{i}", f"n{i}")) for i in range(4))
TOKENS = [t for m in MARKETS for t in m.token_ids]
#: named by changes but by no market: counted, never a book
UNKNOWN = "999"


@pytest.fixture(autouse=True)
def _compiled() -> None:
    require_compiled_book()
    if market_handlers._price_change is None:
        pytest.skip("polysnipe.core._market is not built")


@contextmanager
def _python_path() -> Iterator[None]:
    compiled = market_handlers._price_change
    market_handlers._price_change = None
    try:
        yield
    finally:
        market_handlers._price_change = compiled


def _script(rng: random.Random, n: int) -> dict[int, list[Opportunity]]:
    """Opportunities for the scripted module at some event times (buys, so lots open)."""
    script: dict[int, list[Opportunity]] = {}
    for k in range(n):
        ts = T0 + rng.randrange(1, 400) * 50 + rng.choice([0, 0, 1])  # +1: a last trade's time
        m = rng.choice(MARKETS)
        token = rng.choice(m.token_ids)
        script.setdefault(ts, []).append(
            opportunity(f"s{k}", market=m.condition_id, token_id=token,
                        limit_price=rng.randrange(30, 70) * 10_000, fair_value=rng.randrange(30, 80) * 10_000,
                        created_ms=ts, expires_ms=ts + 60_000)
        )  # fmt: skip
    return script


def _engine(seed: int) -> EngineState:
    rng = random.Random(seed)
    state = build_state(
        markets=MarketRegistry.of(MARKETS),
        signals=[SpreadHunter(), LiquidityVacuum(), ScriptedSignal(_script(rng, 12))],
        evaluators=Evaluators(),
        gatekeeper=RiskGatekeeper(risk_policy(max_book_age_ms=10**9)),
        risk=RiskState(Portfolio.of({w: 10_000 * MICRO for w in WALLETS})),
        router=build_router({"default": "aggressive"}),
        rng=random.Random(1),
        wallet_for=lambda opp: WALLETS[len(opp.id) % 2],
        exits=ExitParams(rules={"scripted": ExitRule(stop_loss_micro=rng.choice([0, 20_000, 50_000]))}),
    )
    # lots already held (some empty, one a basket leg), in tokens the exits watch, and one watched
    # token nothing is held in
    for w in WALLETS:
        wallet = state.portfolio.wallets[w]
        for token in rng.sample(TOKENS, 5):
            shares = rng.choice([0, 10 * MICRO, 30 * MICRO])
            label = rng.choice(["scripted", "scripted", "spread_hunter", "scripted/basket"])
            wallet.lots[token, label] = Lot(shares, shares // 2, T0, rng.choice([0, 600_000]))
            if shares:
                wallet.positions[token] = wallet.positions.get(token, 0) + shares
                wallet.cost[token] = wallet.cost.get(token, 0) + shares // 2
            state.exits.watched.add(token)
    state.exits.watched.add(TOKENS[0])
    return state


def _side_levels(rng: random.Random, lo: int, hi: int) -> tuple[Level, ...]:
    return tuple(
        Level(p * 10_000, rng.randrange(1, 200) * MICRO) for p in sorted(rng.sample(range(lo, hi), 3))
    )


def _stream(rng: random.Random, n: int) -> Iterator[Input]:
    ts = T0
    # a few books open with a snapshot; the others' first deltas make an untrusted book that drops them
    for m in MARKETS[:3]:
        yes, no = m.token_ids
        yield BookSnapshot(ts, yes, m.condition_id, _side_levels(rng, 30, 48), _side_levels(rng, 50, 70))
        yield BookSnapshot(ts, no, m.condition_id, _side_levels(rng, 30, 48), _side_levels(rng, 52, 70))
    for _ in range(n):
        ts += 50
        m = rng.choice(MARKETS)
        changes: list[BookDelta] = []
        for _ in range(rng.choice([1, 2, 2, 4, 6])):
            token = rng.choice([*m.token_ids, *m.token_ids, rng.choice(TOKENS), UNKNOWN])
            side = rng.choice([Side.BUY, Side.SELL])
            price = rng.randrange(1, 100) * 10_000
            changes.append(BookDelta(token, side, price, rng.choice([0, rng.randrange(1, 300) * MICRO])))
        yield PriceChange(ts, m.condition_id, tuple(changes))
        if rng.random() < 0.2:  # a print, sometimes of a token no market has
            token = rng.choice([*m.token_ids, UNKNOWN])
            side = rng.choice([Side.BUY, Side.SELL])
            price, size = rng.randrange(1, 100) * 10_000, rng.randrange(1, 50) * MICRO
            yield LastTrade(ts + 1, token, m.condition_id, price, size, side)


def _observed(state: EngineState) -> object:
    books = {t: (b.trusted, b.best_bid(), b.best_ask(), b.best_bid_size(), b.best_ask_size())
             for t, b in sorted(state.books.items())}  # fmt: skip
    exits = state.exits
    lots = {w: dict(wallet.lots) for w, wallet in state.portfolio.wallets.items()}
    return (books, dict(state.counters), dict(exits.exiting), dict(exits.retry_at), dict(exits.exits), lots,
            sorted(state.orders), dict(state.dq_seen), dict(state.last_trades))  # fmt: skip


def _answers(rng: random.Random, commands: list[Command], ts: int) -> list[Input]:
    """The venue's answers: each order filled (whole or part) or not filled at all."""
    out: list[Input] = []
    for place in of(commands, PlaceOrder):
        o = place.order
        if rng.random() < 0.4:
            out.append(OrderRejected(o.order_id, ts, "fak_not_filled"))
        else:
            part = o.size if rng.random() < 0.7 else max(o.size // 2 // 10_000 * 10_000, 10_000)
            out.append(fill(o, ts, part, trade_id=f"t-{o.order_id}"))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_the_dispatch_returns_the_commands_and_state_of_the_python_path(seed: int) -> None:
    compiled, python = _engine(seed), _engine(seed)
    rng = random.Random(1000 + seed)
    placed = 0
    pending: list[Input] = []
    for event in _stream(rng, 400):
        for item in [*pending, event]:
            now = item.ts_ms
            got = step(compiled, item, now)
            with _python_path():
                want = python_step(python, item, now)
            assert want == got, (seed, item)
            assert _observed(python) == _observed(compiled), (seed, item)
            placed += len(of(got, PlaceOrder))
        pending = _answers(rng, got, event.ts_ms + 1)
    assert placed, "the stream should place orders (entries and exits)"


def test_streams_reach_every_answer_of_the_dispatch() -> None:
    """The random streams above see each kind of answer price_change gives: None (nothing left), lots to
    judge, opportunities found, dropped deltas, and a change naming a token with no book."""
    seen: set[str] = set()
    compiled_call = market_handlers._price_change
    assert compiled_call is not None

    def watching(*args: object) -> market_handlers._Left | None:
        done = compiled_call(*args)
        if done is None:
            seen.add("none")
        else:
            stop, applied, dropped, opps, held = done
            changes = args[1]
            assert isinstance(changes, tuple)
            seen.update(
                name
                for name, hit in [("partial", stop != len(changes)), ("unapplied", not applied),
                                  ("dropped", dropped > 0), ("opps", bool(opps)), ("held", bool(held))]
                if hit
            )  # fmt: skip
        return done

    for seed in range(4):
        state = _engine(seed)
        rng = random.Random(1000 + seed)
        market_handlers._price_change = watching
        try:
            for event in _stream(rng, 400):
                step(state, event, event.ts_ms)
        finally:
            market_handlers._price_change = compiled_call
    assert {"none", "partial", "unapplied", "dropped", "opps", "held"} <= seen


def _call(**override: object) -> object:
    from polysnipe.core._market import price_change

    args: dict[str, object] = {
        "books": {"y0": BookState("y0", 10_000)},
        "changes": (BookDelta("y0", Side.BUY, 400_000, MICRO),),
        "ts": T0,
        "handlers": (),
        "event": None,
        "ctx": None,
        "now": T0,
        "watched": {"y0"},
        "wallets": {},
        "unruled": BASKET_LOT,
        "flagged": (),
        "dq_seen": {},
    }
    args.update(override)
    return price_change(*args.values())  # type: ignore[arg-type]


def test_hostile_arguments_raise_rather_than_crash() -> None:
    bads: list[dict[str, object]] = [{"books": []}, {"handlers": [print]}, {"watched": ["y0"]}]
    bads += [{"wallets": []}, {"unruled": None}, {"flagged": []}, {"dq_seen": []}]
    for bad in bads:
        with pytest.raises(TypeError):
            _call(**bad)
    with pytest.raises(TypeError):
        _call(changes=(("y0",),))  # not a BookDelta
    trusted = BookState("y0", 10_000)
    trusted.apply_snapshot(BookSnapshot(T0, "y0", "0xc0", (Level(300_000, MICRO),), (Level(600_000, MICRO),)))

    class Wallet:
        lots: object = [("y0", "s")]

    with pytest.raises(TypeError):
        _call(books={"y0": trusted}, wallets={"0xa": Wallet()})
    Wallet.lots = {"y0": Lot(MICRO, 1, T0)}  # a key that is no (token, strategy)
    with pytest.raises(TypeError):
        _call(books={"y0": trusted}, wallets={"0xa": Wallet()})

    def failing(*_: object) -> list[object]:
        raise ValueError("a module's own error")

    with pytest.raises(ValueError, match="own error"):
        _call(books={"y0": trusted}, handlers=(failing,))
    found = _call(books={"y0": trusted}, handlers=(lambda *_: (1, 2), lambda *_: [], lambda *_: [3]))
    assert (1, 1, 0, [1, 2, 3], None) == found
    assert None is _call(books={"y0": trusted}, watched=set())


@pytest.mark.parametrize("seed", range(30))
def test_the_lots_handed_back_are_those_on_book_change_would_judge(seed: int) -> None:
    """The (key, lot) pairs, in order, for random wallets (lots empty, short, in other tokens, basket
    legs no rule watches) and changes naming watched tokens more than once: what on_book_change picks,
    token by token, that judge_lots would judge."""
    from polysnipe.core.portfolio import WalletState

    rng = random.Random(seed)
    tokens = ["a", "b", "c", "d"]
    wallets = {}
    for w in rng.sample(["0x1", "0x2", "0x3"], rng.randrange(1, 4)):
        lots = {
            (rng.choice(tokens), rng.choice([f"s{k}", f"s{k}" + BASKET_LOT])): Lot(
                rng.choice([-MICRO, 0, 1, MICRO]), 0, T0
            )
            for k in range(6)
        }
        wallets[w] = WalletState(0, lots=lots)
    watched = set(rng.sample(tokens, rng.randrange(1, 4)))
    books = {t: BookState(t, 10_000) for t in tokens}
    for book in books.values():
        book.apply_snapshot(BookSnapshot(T0, book.token_id, "0xc0", (Level(300_000, MICRO),), ()))
    changes = tuple(
        BookDelta(rng.choice(tokens), Side.BUY, 200_000, MICRO) for _ in range(rng.randrange(1, 7))
    )
    want = [
        ((w, token, label), lot)
        for token in dict.fromkeys(d.token_id for d in changes if d.token_id in watched)
        for w, wallet in wallets.items()
        for (t, label), lot in wallet.lots.items()
        if t == token and lot.shares > 0 and ExitParams().rule_for(label) is not None
    ]
    got = _call(books=books, changes=changes, watched=watched, wallets=wallets)
    if not want:
        assert got is None
    else:
        assert (len(changes), len(changes), 0, None, want) == got
        assert isinstance(got, tuple)
        assert all(a[1] is b[1] for a, b in zip(want, got[4], strict=True))


def test_new_data_quality_flags_leave_work_for_python() -> None:
    """None only while every flagging module's flags are all counted in dq_seen (_collect_flags would
    raise no alert); a module whose flags cannot be read raises."""
    trusted = BookState("y0", 10_000)
    trusted.apply_snapshot(BookSnapshot(T0, "y0", "0xc0", (Level(300_000, MICRO),), (Level(600_000, MICRO),)))

    class Module:
        name = "m"
        data_quality_flags: object = ["pair below 1"]

    args = {"books": {"y0": trusted}, "watched": set(), "flagged": (Module(),)}
    assert (1, 1, 0, None, None) == _call(**args)
    assert (1, 1, 0, None, None) == _call(**args, dq_seen={"m": 0})
    assert None is _call(**args, dq_seen={"m": 1})
    Module.data_quality_flags = None
    with pytest.raises(TypeError):
        _call(**args, dq_seen={"m": 1})
    Module.data_quality_flags = []
    with pytest.raises(TypeError):
        _call(**args, dq_seen={"m": "1"})


def test_the_compiled_step_refuses_bad_calls() -> None:
    from polysnipe.core import _market

    with pytest.raises(TypeError):
        _market.step(None, None)  # type: ignore[call-arg, arg-type]  # a wrong call on purpose
    with pytest.raises(TypeError):
        _market.bind_step({}, None)  # type: ignore[call-arg, arg-type]  # a wrong call on purpose
    state = _engine(0)
    with pytest.raises(KeyError):
        step(state, object(), T0)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        step(object(), PriceChange(T0, "0xc0", ()), T0)  # type: ignore[arg-type]


def test_the_compiled_step_reads_attributes_as_python_does() -> None:
    """It reads the state's slots directly while their class is unchanged: an unset slot still raises,
    and a class changed after the first read (here a property in place of a slot) is read anew."""

    class Exits:
        __slots__ = ("convert_timers", "timers")
        convert_timers: list[object]
        timers: list[object]

    class State:
        __slots__ = ("exits", "timers")
        exits: Exits
        timers: list[object]

    state = State()
    state.timers = []
    state.exits = Exits()
    state.exits.timers = []
    state.exits.convert_timers = []
    for _ in range(2):
        with pytest.raises(KeyError):  # the slots were read; no handler takes an object()
            step(state, object(), T0)  # type: ignore[arg-type]
    del state.timers
    with pytest.raises(AttributeError):
        step(state, object(), T0)  # type: ignore[arg-type]
    state.timers = []

    def refuse(_: object) -> list[object]:
        raise ValueError("read through the property")

    State.timers = property(refuse)  # type: ignore[assignment, misc]  # a property over the slot, on purpose
    with pytest.raises(ValueError, match="through the property"):
        step(state, object(), T0)  # type: ignore[arg-type]


def _edge_engine(rng: random.Random) -> tuple[EngineState, tuple[Market, ...]]:
    """Lots whose exit rules sit near firing: random stops, hold times, market ends, fair values and
    retries, each lot in a token of its own, with no signal module to disturb them."""
    end = T0 + rng.randrange(0, 40) * 1_000
    markets = tuple(market(f"0xe{i}", (f"ey{i}", f"en{i}"), end_ms=rng.choice([0, end])) for i in range(6))
    rules = {
        f"s{k}": ExitRule(take_profit=rng.random() < 0.5, stop_loss_micro=rng.choice([0, 10_000, 30_000]),
                          max_hold_ms=rng.choice([0, 5_000, 20_000]),
                          exit_before_end_ms=rng.choice([0, 10_000, 30_000]))
        for k in range(4)
    }  # fmt: skip
    state = build_state(
        markets=MarketRegistry.of(markets),
        signals=[],
        evaluators=Evaluators(),
        gatekeeper=RiskGatekeeper(risk_policy(max_book_age_ms=10**9)),
        risk=RiskState(Portfolio.of({w: 10_000 * MICRO for w in WALLETS})),
        router=build_router({"default": "aggressive"}),
        rng=random.Random(1),
        wallet_for=lambda opp: WALLETS[0],
        exits=ExitParams(rules=rules),
    )
    for m in markets:
        for token in m.token_ids:
            w = rng.choice(WALLETS)
            shares = rng.randrange(5, 40) * MICRO
            label = rng.choice([*rules, "unruled"])  # "unruled": the default rule
            lot = Lot(shares, shares * rng.randrange(30, 70) // 100, T0 - rng.choice([0, 3_000, 15_000]),
                      rng.choice([0, rng.randrange(40, 70) * 10_000]))  # fmt: skip
            state.portfolio.wallets[w].lots[token, label] = lot
            state.portfolio.wallets[w].positions[token] = shares
            state.portfolio.wallets[w].cost[token] = lot.cost
            state.exits.watched.add(token)
            if rng.random() < 0.3:
                state.exits.retry_at[w, token, label] = T0 + rng.randrange(0, 20) * 1_000
    return state, markets


@pytest.mark.parametrize("seed", range(40))
def test_lots_at_the_edges_of_their_exit_rules_are_judged_as_python_does(seed: int) -> None:
    """The step's own test of quiet lots (core/_market.c quiet_lot) against exits._judge: bids wander
    across the stops and fair values while time passes the hold limits, the market ends and the
    retries; every step's commands and the exit state must be those of the Python path."""
    rng = random.Random(seed)
    compiled, markets = _edge_engine(random.Random(seed))
    python, _ = _edge_engine(random.Random(seed))
    events: list[Input] = []
    for m in markets:
        for token in m.token_ids:
            if rng.random() < 0.85:  # some books never come: no trusted bid
                bids = (Level(rng.randrange(20, 60) * 10_000, 50 * MICRO),)
                events.append(BookSnapshot(T0, token, m.condition_id, bids, (Level(900_000, 50 * MICRO),)))
    ts = T0
    for _ in range(300):
        ts += rng.choice([50, 500, 2_000])
        m = rng.choice(markets)
        token = rng.choice(m.token_ids)
        price = rng.randrange(20, 80) * 10_000
        events.append(
            PriceChange(ts, m.condition_id, (BookDelta(token, Side.BUY, price, rng.choice([0, MICRO])),))
        )
    placed = 0
    for event in events:
        got = step(compiled, event, event.ts_ms)
        with _python_path():
            want = python_step(python, event, event.ts_ms)
        assert want == got, (seed, event)
        assert _observed(python) == _observed(compiled), (seed, event)
        placed += len(of(got, PlaceOrder))
    assert placed or seed % 10, "most streams should fire some exit"
