"""Neg-risk baskets through the pipeline: one risk decision for all legs, one size, fee-safe, repaired
when the legs fill unevenly."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from kit import T0, WALLET, engine, event_legs, fill, of, opportunity, risk_policy
from polysnipe.core.baskets import worst_case_profit
from polysnipe.core.events import BookSnapshot, LastTrade, Level, Side
from polysnipe.core.market import Market, NegRiskEvent
from polysnipe.core.messages import (
    Command,
    OrderRejected,
    OutcomeKind,
    PlaceOrder,
    RaiseAlert,
    RecordOpportunity,
    RecordOutcome,
    RecordRiskDecision,
)
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.pipeline import step
from polysnipe.core.state import EngineState
from polysnipe.core.units import MICRO, notional

EVENT = "E"
LEGS = event_legs(EVENT)


def _with_event(state: EngineState, legs: Sequence[Market]) -> EngineState:
    """`state` knowing `legs` as one complete neg-risk event (no placeholder, all open)."""
    state.markets.add_event(NegRiskEvent(EVENT, tuple(m.condition_id for m in legs), False, False, True))
    return state


def _engine(
    script: dict[int, list[Opportunity]], *, balance: int = 10_000 * MICRO, **policy: int
) -> EngineState:
    return _with_event(engine(script, LEGS, balance=balance, policy=risk_policy(**policy)), LEGS)


def _books(state: EngineState, asks: Sequence[int], size: int = 500 * MICRO, ts: int = T0) -> None:
    for m, ask in zip(LEGS, asks, strict=True):
        snap = BookSnapshot(
            ts, m.token_ids[0], m.condition_id, (Level(ask - 20_000, size),), (Level(ask, size),)
        )
        step(state, snap, ts)


def _basket(asks: Sequence[int], size: int, ts: int = T0 + 1) -> list[Opportunity]:
    edge = 1_000_000 - sum(asks)
    return [
        opportunity(
            f"leg{i}",
            token_id=m.token_ids[0],
            market=m.condition_id,
            size=size,
            limit_price=ask,
            fair_value=ask + edge,
            edge=edge,
            created_ms=ts,
            expires_ms=ts + 1_000,
            group_id="g1",
            strategy="spread_hunter",
        )
        for i, (m, ask) in enumerate(zip(LEGS, asks, strict=True))
    ]


def _trigger(state: EngineState, ts: int = T0 + 1) -> list[Command]:
    return step(
        state, LastTrade(ts, LEGS[0].token_ids[0], LEGS[0].condition_id, 300_000, MICRO, Side.BUY), ts
    )


def test_legs_are_checked_as_one_unit_against_the_wallet() -> None:
    # 3 legs of 100 shares at 0.30 cost 90 USDC; the wallet may spend 50: one common size for all legs
    asks = [300_000, 300_000, 300_000]
    state = _engine({T0 + 1: _basket(asks, 100 * MICRO)}, balance=50 * MICRO)
    _books(state, asks)
    cmds = _trigger(state)
    places = of(cmds, PlaceOrder)
    assert 3 == len(places)
    sizes = {p.order.size for p in places}
    assert 1 == len(sizes)
    size = sizes.pop()
    assert sum(notional(p.order.price, size) for p in places) <= 50 * MICRO
    assert size == 55_550_000  # the largest 0.01-share step the three legs fit together
    decisions = of(cmds, RecordRiskDecision)
    assert 3 == len(decisions) and {d.approved_size for d in decisions} == {size}
    assert all("free_balance" in d.reasons for d in decisions)


def test_one_leg_refused_refuses_every_leg() -> None:
    asks = [300_000, 300_000, 300_000]
    state = _engine({T0 + 1: _basket(asks, 20 * MICRO)})
    _books(state, asks)
    state.books[LEGS[2].token_ids[0]].invalidate()
    cmds = _trigger(state)
    assert [] == of(cmds, PlaceOrder)
    assert {OutcomeKind.REJECTED} == {o.kind for o in of(cmds, RecordOutcome)}
    assert 3 == len(of(cmds, RecordOutcome))


def test_a_basket_that_can_lose_after_fees_is_never_placed() -> None:
    fee_legs = event_legs(EVENT, fee_rate=70_000)
    asks = [50_000, 450_000, 450_000]
    state = _with_event(engine({T0 + 1: _basket(asks, 100 * MICRO)}, fee_legs), fee_legs)
    _books(state, asks)
    cmds = _trigger(state)
    assert [] == of(cmds, PlaceOrder)
    assert {("basket_unprofitable_after_fees",)} == {o.reasons for o in of(cmds, RecordOutcome)}


def _placed_basket(asks: Sequence[int]) -> tuple[EngineState, list[PlaceOrder]]:
    state = _engine({T0 + 1: _basket(asks, 20 * MICRO)})
    _books(state, asks)
    return state, of(_trigger(state), PlaceOrder)


def test_an_unfilled_leg_is_completed_when_the_completed_basket_stays_within_the_budget() -> None:
    state, places = _placed_basket([300_000, 300_000, 300_000])
    out: list[Command] = []
    for p in places[:2]:
        out += step(state, fill(p.order, T0 + 5, trade_id=f"t-{p.order.order_id}"), T0 + 5)
    out += step(state, OrderRejected(places[2].order.order_id, T0 + 5, "fak_not_filled"), T0 + 5)
    assert ["basket_leg_risk"] == [a.code for a in of(out, RaiseAlert)]
    [repair] = of(out, PlaceOrder)
    assert (LEGS[2].token_ids[0], Side.BUY, 20 * MICRO) == (repair.order.token_id, repair.order.side,
                                                            repair.order.size)  # fmt: skip
    [opp] = [r.opp for r in of(out, RecordOpportunity)]
    assert "complete" in opp.reason


def test_legs_that_cannot_be_completed_are_unwound() -> None:
    state, places = _placed_basket([300_000, 300_000, 300_000])
    # the third leg's book loses its asks: nothing to complete it with
    third = LEGS[2]
    step(
        state,
        BookSnapshot(T0 + 4, third.token_ids[0], third.condition_id, (Level(280_000, MICRO),), ()),
        T0 + 4,
    )
    out: list[Command] = []
    for p in places[:2]:
        out += step(state, fill(p.order, T0 + 5, trade_id=f"t-{p.order.order_id}"), T0 + 5)
    out += step(state, OrderRejected(places[2].order.order_id, T0 + 5, "fak_not_filled"), T0 + 5)
    repairs = of(out, PlaceOrder)
    assert {(LEGS[0].token_ids[0], Side.SELL), (LEGS[1].token_ids[0], Side.SELL)} == {
        (p.order.token_id, p.order.side) for p in repairs
    }
    # the unwind may lose at most the repair budget: its SELL limits say so
    budget = risk_policy().max_basket_repair_loss_usdc_micro
    loss = sum(notional(300_000 - p.order.price, p.order.size) for p in repairs)
    assert loss <= budget


def test_a_basket_whose_legs_all_filled_needs_no_repair() -> None:
    state, places = _placed_basket([300_000, 300_000, 300_000])
    out: list[Command] = []
    for p in places:
        out += step(state, fill(p.order, T0 + 5, trade_id=f"t-{p.order.order_id}"), T0 + 5)
    assert [] == of(out, PlaceOrder)
    assert [] == of(out, RaiseAlert)
    positions = state.portfolio.wallets[WALLET].positions
    assert {20 * MICRO} == {positions[m.token_ids[0]] for m in LEGS}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(5, 40), min_size=3, max_size=3),  # asks in ticks of 0.01
    st.integers(5, 300),  # shares wanted
    st.integers(1, 200),  # wallet USDC
    st.integers(0, 3),  # fee rate in 0.01s
)
def test_placed_baskets_are_one_size_affordable_and_never_lose(
    ask_ticks: list[int], shares: int, balance_usdc: int, fee_pct: int
) -> None:
    legs = event_legs(EVENT, fee_rate=fee_pct * 10_000)
    asks = [t * 10_000 for t in ask_ticks]
    state = _with_event(
        engine({T0 + 1: _basket(asks, shares * MICRO)}, legs, balance=balance_usdc * MICRO), legs
    )
    for m, ask in zip(legs, asks, strict=True):
        step(state, BookSnapshot(T0, m.token_ids[0], m.condition_id, (Level(ask - 10_000, 10**9),),
                                 (Level(ask, 10**9),)), T0)  # fmt: skip
    cmds = _trigger(state)
    places = of(cmds, PlaceOrder)
    outcomes = of(cmds, RecordOutcome)
    # all or nothing, and every leg journaled once
    assert len(places) in (0, 3)
    assert 3 == len(of(cmds, RecordOpportunity))
    if not places:
        assert 3 == len(outcomes)
        return
    size = places[0].order.size
    assert {size} == {p.order.size for p in places}
    assert sum(notional(p.order.price, size) for p in places) <= balance_usdc * MICRO
    assert worst_case_profit([(m, p.order.price) for m, p in zip(legs, places, strict=True)], size) > 0
    assert {size} == {d.approved_size for d in of(cmds, RecordRiskDecision)}


def test_event_exposure_cap_covers_every_market_of_the_event() -> None:
    state = _engine({}, max_event_exposure_usdc_micro=30 * MICRO)
    asks = [300_000, 300_000, 300_000]
    _books(state, asks)
    state.tracks.clear()
    step_opps = _basket(asks, 100 * MICRO)
    state.signals[0].script[T0 + 1] = step_opps  # type: ignore[attr-defined]
    places = of(_trigger(state), PlaceOrder)
    assert {33_330_000} == {p.order.size for p in places}  # 3 x 0.30 x 33.33 <= 30


def test_per_wallet_open_order_cap() -> None:
    state = _engine({}, max_open_orders_per_wallet=2)
    asks = [300_000, 300_000, 300_000]
    _books(state, asks)
    state.signals[0].script[T0 + 1] = _basket(asks, 10 * MICRO)  # type: ignore[attr-defined]
    cmds = _trigger(state)
    assert [] == of(cmds, PlaceOrder)
    assert all("wallet_open_orders" in o.reasons for o in of(cmds, RecordOutcome))
