"""Neg-risk conversions: the portfolio math, the position manager's decision, the simulated venue."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit import WALLET, engine, fill, market, of, opportunity, snapshot, trade
from polysnipe.adapters.clock import EventClock
from polysnipe.adapters.inbox import Inbox
from polysnipe.adapters.settlement import NoSettlement
from polysnipe.adapters.sim import ConstantLatency, PolymarketFeeModel, RiskAverseQueueModel, SimVenue
from polysnipe.adapters.sim.execution import SimExecution
from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.core.events import BookSnapshot, Level
from polysnipe.core.exit_rules import ExitParams, ExitRule
from polysnipe.core.market import MarketRegistry, NegRiskEvent
from polysnipe.core.messages import (
    Command,
    ConvertPositions,
    MergePositions,
    PlaceOrder,
    PositionsConverted,
    RaiseAlert,
    SettlementRefused,
    Tick,
)
from polysnipe.core.pipeline import next_timer_ms, step
from polysnipe.core.portfolio import Lot, Portfolio, WalletState
from polysnipe.core.state import EngineState
from polysnipe.core.units import MICRO
from polysnipe.runners.loop import EngineLoop, NullSink

W = "0xw"
T0 = 1_700_000_000_000


def _wallet(cash: int, lots: dict[tuple[str, str], tuple[int, int]]) -> Portfolio:
    """A portfolio of one wallet holding `lots`: (token, strategy) -> (shares, cost)."""
    wallet = WalletState(cash)
    for (token, strategy), (shares, cost) in lots.items():
        wallet.lots[token, strategy] = Lot(shares, cost, T0)
        wallet._set(token, wallet.positions.get(token, 0) + shares, wallet.cost.get(token, 0) + cost)
    return Portfolio({W: wallet})


def test_the_collateral_pays_back_the_cost_and_the_rest_moves_to_the_yes_shares() -> None:
    # an event of three outcomes a, b, c: 10 NO of a bought at 0.70 and 10 NO of b at 0.80
    p = _wallet(0, {("na", "s"): (10 * MICRO, 7 * MICRO), ("nb", "s"): (10 * MICRO, 8 * MICRO)})
    p.apply_conversion(W, ("na", "nb"), ("yc",), 10 * MICRO, 10 * MICRO, 10 * MICRO, T0 + 1)
    w = p.wallets[W]
    assert 10 * MICRO == w.balance_usdc_micro
    assert {"yc": 10 * MICRO} == w.positions
    # 15 paid, 10 back in cash: the YES of c carries the other 5, nothing is realized
    assert {"yc": 5 * MICRO} == w.cost
    assert 0 == p.realized_total_usdc_micro
    assert Lot(10 * MICRO, 5 * MICRO, T0) == w.lots["yc", "s"]


def test_a_cost_below_the_collateral_realizes_the_gain() -> None:
    p = _wallet(0, {("na", "s"): (10 * MICRO, 5 * MICRO), ("nb", "s"): (10 * MICRO, 4 * MICRO)})
    p.apply_conversion(W, ("na", "nb"), ("yc",), 10 * MICRO, 10 * MICRO, 10 * MICRO, T0 + 1)
    assert 1 * MICRO == p.realized_by_strategy["s"]
    assert {"yc": 0} == p.wallets[W].cost


def test_every_outcome_converts_into_collateral_alone() -> None:
    # NO of all three outcomes: exactly two of them pay, whatever wins, and they become 2 USDC each
    lots = {("na", "s"): (10 * MICRO, 7 * MICRO), ("nb", "s"): (10 * MICRO, 7 * MICRO),
            ("nc", "t"): (10 * MICRO, 8 * MICRO)}  # fmt: skip
    p = _wallet(0, lots)
    p.apply_conversion(W, ("na", "nb", "nc"), (), 10 * MICRO, 20 * MICRO, 0, T0 + 1)
    assert 20 * MICRO == p.wallets[W].balance_usdc_micro
    assert {} == p.wallets[W].positions
    assert -2 * MICRO == p.realized_total_usdc_micro
    # each strategy realizes against its own cost: s gave 20 shares (13.33 cash for 14), t 10
    assert {"s": 13_333_333 - 14 * MICRO, "t": 6_666_667 - 8 * MICRO} == p.realized_by_strategy


def test_only_the_converted_shares_leave_and_the_lots_keep_the_rest() -> None:
    p = _wallet(0, {("na", "s"): (15 * MICRO, 9 * MICRO), ("nb", "s"): (10 * MICRO, 8 * MICRO)})
    p.apply_conversion(W, ("na", "nb"), ("yc", "yd"), 10 * MICRO, 10 * MICRO, 10 * MICRO, T0 + 1)
    w = p.wallets[W]
    assert {"na": 5 * MICRO, "yc": 10 * MICRO, "yd": 10 * MICRO} == w.positions
    # 6 + 8 left the NO lots, 10 came back: 4 over the two YES tokens
    assert {"na": 3 * MICRO, "yc": 2 * MICRO, "yd": 2 * MICRO} == w.cost


@st.composite
def _events(draw: st.DrawFn) -> tuple[list[int], list[int], dict[tuple[str, str], tuple[int, int]], int]:
    """A complete event's YES marks (summing to 1), the outcomes converted, the lots held, a size."""
    n = draw(st.integers(2, 6))
    cuts = sorted(draw(st.lists(st.integers(0, MICRO), min_size=n - 1, max_size=n - 1)))
    marks = [b - a for a, b in zip([0, *cuts], [*cuts, MICRO], strict=True)]
    chosen = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=n, unique=True))
    lots: dict[tuple[str, str], tuple[int, int]] = {}
    for i in range(n):
        for strategy in draw(st.lists(st.sampled_from(["a", "b", "a/basket", ""]), max_size=3, unique=True)):
            for token in (f"y{i}", f"n{i}"):
                if draw(st.booleans()):
                    shares = draw(st.integers(1, 50 * MICRO))
                    lots[token, strategy] = (shares, draw(st.integers(0, shares)))
    for i in chosen:  # every converted NO is held, by some lot
        if not any(t == f"n{i}" for t, _ in lots):
            lots[f"n{i}", "a"] = (MICRO, MICRO // 2)
    held = min(sum(s for (t, _), (s, _) in lots.items() if t == f"n{i}") for i in chosen)
    return marks, sorted(chosen), lots, draw(st.integers(1, held))


def _value(p: Portfolio, marks: list[int]) -> int:
    """Cash plus every share at its mark, exactly (micro-USDC times MICRO): no rounding to hide in."""
    w = p.wallets[W]
    price = {f"y{i}": m for i, m in enumerate(marks)} | {f"n{i}": MICRO - m for i, m in enumerate(marks)}
    return w.balance_usdc_micro * MICRO + sum(price[t] * n for t, n in w.positions.items())


@settings(max_examples=300, deadline=None)
@given(_events(), st.integers(0, 1_000 * MICRO))
def test_a_conversion_conserves_value_at_any_marks_of_a_complete_event(
    event: tuple[list[int], list[int], dict[tuple[str, str], tuple[int, int]], int], cash: int
) -> None:
    marks, chosen, lots, size = event
    p = _wallet(cash, lots)
    before = _value(p, marks)
    book = p.wallets[W].balance_usdc_micro + sum(p.wallets[W].cost.values()) - p.realized_total_usdc_micro
    no = tuple(f"n{i}" for i in chosen)
    yes = tuple(f"y{i}" for i in range(len(marks)) if i not in chosen)
    shares_before = dict(p.wallets[W].positions)
    p.apply_conversion(W, no, yes, size, (len(no) - 1) * size, size, T0 + 1)
    w = p.wallets[W]
    assert before == _value(p, marks)
    # cash plus cost basis less realized PnL is what every fill, merge and conversion conserves
    assert book == w.balance_usdc_micro + sum(w.cost.values()) - p.realized_total_usdc_micro
    for t in no:
        assert shares_before[t] - size == w.positions.get(t, 0)
    for t in yes:
        assert shares_before.get(t, 0) + size == w.positions[t]
    # the lots still add up to the positions, and no cost basis goes negative
    for token, shares in w.positions.items():
        assert shares == sum(lot.shares for _, lot in w.lots_of(token))
        assert w.cost[token] == sum(lot.cost for _, lot in w.lots_of(token)) >= 0


# -- the position manager: when a conversion is asked for, and what its answer does ----------------
EV = "0xe0"
MARKETS = [
    market(f"0x{o}", (f"y{o}", f"n{o}"), neg_risk=True, neg_risk_market_id=EV) for o in ("a", "b", "c")
]


def _event(*, augmented: bool = False, exits: ExitParams | None = None) -> EngineState:
    state = engine(
        markets=MARKETS, exits=exits or ExitParams(rules={"scripted": ExitRule(take_profit=False)})
    )
    state.markets.add_event(NegRiskEvent(EV, tuple(m.condition_id for m in MARKETS), augmented, False, True))
    return state


def _buy(
    state: EngineState, ts: int, token: str, size: int = 20 * MICRO, price: int = 700_000
) -> list[Command]:
    """Buy `size` of `token` at `price` through the whole pipeline: the commands of the fill."""
    cond = state.markets.by_token(token).condition_id
    state.signals[0].script[ts] = [  # type: ignore[attr-defined]
        opportunity(f"buy-{token}-{ts}", market=cond, token_id=token, size=size, limit_price=price,
                    created_ms=ts, expires_ms=ts + 60_000)
    ]  # fmt: skip
    step(state, snapshot(ts - 1, token=token, bid=price - 20_000, ask=price, condition_id=cond), ts - 1)
    [place] = of(step(state, trade(ts, token=token, price=price, condition_id=cond), ts), PlaceOrder)
    return step(state, fill(place.order, ts + 1, trade_id=f"t-{token}-{ts}"), ts + 1)


def test_no_shares_of_two_outcomes_are_converted_and_the_answer_moves_the_balances() -> None:
    state = _event()
    assert [] == of(_buy(state, T0 + 10, "na"), ConvertPositions)  # one outcome frees nothing
    [convert] = of(_buy(state, T0 + 20, "nb", price=800_000), ConvertPositions)
    assert (WALLET, EV, ("0xa", "0xb"), 20 * MICRO) == (
        convert.wallet,
        convert.event,
        convert.markets,
        convert.size,
    )
    assert convert.correlation_id
    # while it is in flight, nothing asks for a second one
    assert [] == of(_buy(state, T0 + 30, "na", size=10 * MICRO), ConvertPositions)
    wallet = state.portfolio.wallets[WALLET]
    balance = wallet.balance_usdc_micro
    done = PositionsConverted(WALLET, EV, ("0xa", "0xb"), 20 * MICRO, 20 * MICRO, ("0xc",), 20 * MICRO,
                              T0 + 40, convert.correlation_id)  # fmt: skip
    out = step(state, done, T0 + 40)
    assert [done] == of(out, PositionsConverted)  # journaled as it came
    assert balance + 20 * MICRO == wallet.balance_usdc_micro
    assert {"na": 10 * MICRO, "yc": 20 * MICRO} == wallet.positions
    # 20 NO of a at 0.70 and 20 NO of b at 0.80 cost 30; 20 came back, the YES of c carries 10
    assert 10 * MICRO == wallet.cost["yc"]
    assert 1 == state.counters["conversions"]
    # the 10 NO of a left are one outcome: nothing more to convert
    assert [] == of(out, ConvertPositions)


def test_the_outcomes_that_free_the_most_are_converted() -> None:
    state = _event()
    _buy(state, T0 + 10, "na", size=30 * MICRO, price=600_000)
    [first] = of(_buy(state, T0 + 20, "nb", size=5 * MICRO, price=600_000), ConvertPositions)
    assert (("0xa", "0xb"), 5 * MICRO) == (first.markets, first.size)
    step(state, SettlementRefused("convert", WALLET, EV, "no route", T0 + 30), T0 + 30)
    _buy(state, T0 + 40, "nc", size=20 * MICRO, price=600_000)
    # retry at T0 + 30 + 60 s: a and c at 20 free 20, a, b and c at 5 free 10
    [again] = of(step(state, Tick(T0 + 30 + 60_000), T0 + 30 + 60_000), ConvertPositions)
    assert (("0xa", "0xc"), 20 * MICRO) == (again.markets, again.size)


def test_a_refused_conversion_alerts_changes_nothing_and_is_asked_again_on_time() -> None:
    state = _event()
    _buy(state, T0 + 10, "na")
    [convert] = of(_buy(state, T0 + 20, "nb"), ConvertPositions)
    wallet = state.portfolio.wallets[WALLET]
    before = (wallet.balance_usdc_micro, dict(wallet.positions))
    refused = SettlementRefused("convert", WALLET, EV, "no route", T0 + 30, convert.correlation_id)
    [alert] = of(step(state, refused, T0 + 30), RaiseAlert)
    assert ("warning", "convert_refused") == (alert.severity, alert.code)
    assert before == (wallet.balance_usdc_micro, wallet.positions)
    retry = state.exits.params.settlement_retry_ms
    assert T0 + 30 + retry == next_timer_ms(state)
    # a fill inside the retry window asks nothing; the timer asks again without any input
    assert [] == of(_buy(state, T0 + 40, "nb", size=5 * MICRO), ConvertPositions)
    assert [] == of(step(state, Tick(T0 + 30 + retry - 1), T0 + 30 + retry - 1), ConvertPositions)
    [again] = of(step(state, Tick(T0 + 30 + retry), T0 + 30 + retry), ConvertPositions)
    assert (("0xa", "0xb"), 20 * MICRO) == (again.markets, again.size)


def test_complete_sets_merge_before_a_conversion_takes_their_no() -> None:
    state = _event()
    _buy(state, T0 + 10, "ya", size=20 * MICRO, price=300_000)
    out = _buy(state, T0 + 20, "na", size=20 * MICRO)
    assert 1 == len(of(out, MergePositions))
    out = _buy(state, T0 + 30, "nb", size=20 * MICRO)
    # a's NO pairs with a's YES and the merge is in flight: no conversion takes it
    assert [] == of(out, ConvertPositions)


def test_no_conversion_on_an_event_that_is_not_known_complete() -> None:
    state = _event(augmented=True)
    _buy(state, T0 + 10, "na")
    assert [] == of(_buy(state, T0 + 20, "nb"), ConvertPositions)
    off = _event(exits=ExitParams(convert_neg_risk=False))
    _buy(off, T0 + 10, "na")
    assert [] == of(_buy(off, T0 + 20, "nb"), ConvertPositions)


def test_no_exit_sells_the_no_shares_a_conversion_in_flight_takes() -> None:
    state = _event(exits=ExitParams(rules={"scripted": ExitRule(take_profit=False, stop_loss_micro=30_000)}))
    _buy(state, T0 + 10, "na")
    [convert] = of(_buy(state, T0 + 20, "nb"), ConvertPositions)
    crash = BookSnapshot(T0 + 30, "na", "0xa", (Level(400_000, 100 * MICRO),), (Level(420_000, 100 * MICRO),))
    assert [] == of(step(state, crash, T0 + 30), PlaceOrder)
    done = PositionsConverted(
        WALLET, EV, convert.markets, 20 * MICRO, 20 * MICRO, ("0xc",), 20 * MICRO, T0 + 40
    )
    step(state, done, T0 + 40)
    assert "na" not in state.portfolio.wallets[WALLET].positions


# -- the simulated venue: the conversion on its ledger, and what it refuses ------------------------
def _venue(
    positions: dict[str, int], *, fee_bips: int = 0, event: bool = True, balance: int = 100 * MICRO
) -> SimExecution:
    registry = MarketRegistry.of([*MARKETS, market("0xbin", ("y1", "n1"))])
    if event:
        registry.add_event(NegRiskEvent(EV, tuple(m.condition_id for m in MARKETS), False, False, True))
    venue = SimVenue(registry, ConstantLatency(), RiskAverseQueueModel(), PolymarketFeeModel(),
                     random.Random(1), {WALLET: balance}, {WALLET: positions})  # fmt: skip
    return SimExecution(venue, registry, convert_fee_bips=fee_bips)


def _convert(markets: tuple[str, ...], size: int = 10 * MICRO, event: str = EV) -> ConvertPositions:
    return ConvertPositions(WALLET, event, markets, size, T0, "c-1")


def test_the_venue_converts_on_its_ledger() -> None:
    sim = _venue({"na": 10 * MICRO, "nb": 15 * MICRO, "yc": 1 * MICRO})
    [done] = asyncio.run(sim.convert(_convert(("0xa", "0xb"))))
    expected = PositionsConverted(WALLET, EV, ("0xa", "0xb"), 10 * MICRO, 10 * MICRO, ("0xc",), 10 * MICRO,
                                  T0, "c-1")  # fmt: skip
    assert expected == done
    ledger = sim.venue.ledger
    assert 110 * MICRO == ledger.usdc(WALLET)
    assert {"nb": 5 * MICRO, "yc": 11 * MICRO} == ledger.positions(WALLET)


def test_without_event_metadata_the_venue_knows_the_event_by_its_markets() -> None:
    # on chain the questions are the adapter's own; the venue finds them in the markets that name it
    sim = _venue({"na": 10 * MICRO, "nb": 10 * MICRO}, event=False)
    [done] = asyncio.run(sim.convert(_convert(("0xa", "0xb"))))
    assert isinstance(done, PositionsConverted)
    assert ("0xc",) == done.yes_markets


def test_the_adapter_fee_comes_out_of_the_collateral_and_the_yes_shares() -> None:
    sim = _venue({"na": 11 * MICRO, "nb": 11 * MICRO, "nc": 10 * MICRO}, fee_bips=100)
    [done] = asyncio.run(sim.convert(_convert(("0xa", "0xb"))))
    assert isinstance(done, PositionsConverted)
    # 1% of each unit out: 9.9 USDC and 9.9 YES of c
    assert (9_900_000, ("0xc",), 9_900_000) == (done.collateral, done.yes_markets, done.yes_size)
    [all_three] = asyncio.run(sim.convert(_convert(("0xa", "0xb", "0xc"), size=MICRO)))
    assert isinstance(all_three, PositionsConverted)
    assert (2 * 990_000, (), 990_000) == (all_three.collateral, all_three.yes_markets, all_three.yes_size)


@pytest.mark.parametrize(
    ("request_", "why"),
    [
        (_convert(("0xa", "0xb"), size=0), "amount 0"),
        (_convert(("0xa", "0xb"), size=11 * MICRO), "not enough NO shares of 0xb"),
        (_convert(()), "invalid index set"),
        (_convert(("0xa", "0xa")), "invalid index set"),
        (_convert(("0xa", "0xbin")), "invalid index set"),
        (_convert(("0x1", "0x2"), event="0xnot-an-event"), "not a neg-risk event"),
    ],
)
def test_the_venue_refuses_what_the_adapter_would_refuse(request_: ConvertPositions, why: str) -> None:
    sim = _venue({"na": 20 * MICRO, "nb": 10 * MICRO})
    [refused] = asyncio.run(sim.convert(request_))
    assert isinstance(refused, SettlementRefused)
    assert ("convert", WALLET, request_.event, "c-1") == (
        refused.kind, refused.wallet, refused.market, refused.correlation_id
    )  # fmt: skip
    assert refused.reason.startswith(why), refused.reason
    # nothing moved
    assert 100 * MICRO == sim.venue.ledger.usdc(WALLET)
    assert {"na": 20 * MICRO, "nb": 10 * MICRO} == sim.venue.ledger.positions(WALLET)


def test_no_settlement_route_refuses_a_conversion() -> None:
    [refused] = asyncio.run(NoSettlement().convert(_convert(("0xa", "0xb"))))
    assert isinstance(refused, SettlementRefused)
    assert ("convert", EV) == (refused.kind, refused.market)


def test_engine_and_venue_agree_after_a_conversion() -> None:
    """The whole path: the engine's holdings -> ConvertPositions -> the venue -> PositionsConverted ->
    the engine's balances, which match the venue's ledger."""
    state = _event()
    _buy(state, T0 + 10, "na", size=20 * MICRO, price=600_000)
    [convert] = of(_buy(state, T0 + 20, "nb", size=30 * MICRO, price=700_000), ConvertPositions)
    wallet = state.portfolio.wallets[WALLET]
    sim = _venue(dict(wallet.positions), balance=wallet.balance_usdc_micro)
    [done] = asyncio.run(sim.convert(convert))
    assert [] == of(step(state, done, T0 + 40), ConvertPositions)
    assert sim.venue.ledger.usdc(WALLET) == wallet.balance_usdc_micro
    assert sim.venue.ledger.positions(WALLET) == wallet.positions == {"nb": 10 * MICRO, "yc": 20 * MICRO}
    # 20 NO of a and of b cost 12 + 14 and returned 20: the YES of c carries 6, nothing is realized
    assert (6 * MICRO, 0) == (wallet.cost["yc"], state.portfolio.realized_total_usdc_micro)


def test_the_loop_journals_the_request_asks_the_venue_and_feeds_the_answer_back() -> None:
    state = _event()
    _buy(state, T0 + 10, "na")
    [convert] = of(_buy(state, T0 + 20, "nb"), ConvertPositions)
    wallet = state.portfolio.wallets[WALLET]
    sim = _venue(dict(wallet.positions), balance=wallet.balance_usdc_micro)
    journal = MemoryJournal()
    source = Inbox()
    loop = EngineLoop(state, source=source, execution=sim, sink=NullSink(), settlement=sim, journal=journal,
                      clock=EventClock())  # fmt: skip
    asyncio.run(loop.perform([convert], T0 + 30))
    assert [convert] == journal.of(ConvertPositions)
    [done] = journal.of(PositionsConverted)
    assert (convert.correlation_id, 20 * MICRO) == (done.correlation_id, done.collateral)
    assert sim.venue.ledger.positions(WALLET) == wallet.positions == {"yc": 20 * MICRO}
    assert sim.venue.ledger.usdc(WALLET) == wallet.balance_usdc_micro
