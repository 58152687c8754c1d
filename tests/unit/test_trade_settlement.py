"""A fill is provisional until its trade settles: FAILED undoes it (cash, shares, the opportunity's
outcome) with a critical alert, CONFIRMED makes it final, every status is journaled."""

from __future__ import annotations

import attrs
import pytest

from kit import T0, WALLET, YES, engine, fill, of, opportunity, snapshot, trade
from polysnipe.core.messages import (
    OutcomeKind,
    PlaceOrder,
    RaiseAlert,
    RecordOutcome,
    TradeSettlement,
)
from polysnipe.core.pipeline import step
from polysnipe.core.state import EngineState
from polysnipe.core.units import MICRO

BALANCE = 1_000 * MICRO


def filled_engine(size: int = 20 * MICRO) -> tuple[EngineState, PlaceOrder]:
    """An engine whose one aggressive opportunity was placed and filled whole."""
    state = engine({T0 + 1: [opportunity("o1", size=size)]}, balance=BALANCE)
    step(state, snapshot(T0), T0)
    [place] = of(step(state, trade(T0 + 1), T0 + 1), PlaceOrder)
    [outcome] = of(step(state, fill(place.order, T0 + 2, fee_usdc=70_000), T0 + 2), RecordOutcome)
    assert (OutcomeKind.FILLED, 0) == (outcome.kind, outcome.revision)
    return state, place


def settle(state: EngineState, place: PlaceOrder, status: str, ts: int) -> list[object]:
    return list(step(state, TradeSettlement(ts, "t1", place.order.order_id, status), ts))


def test_a_failed_trade_undoes_its_fill_and_revises_the_outcome() -> None:
    state, place = filled_engine()
    wallet = state.portfolio.wallets[WALLET]
    assert BALANCE > wallet.balance_usdc_micro
    assert 0 < wallet.positions[YES]
    cmds = settle(state, place, "MINED", T0 + 3)
    assert [TradeSettlement(T0 + 3, "t1", place.order.order_id, "MINED")] == of(cmds, TradeSettlement)
    assert [] == of(cmds, RecordOutcome)

    cmds = settle(state, place, "FAILED", T0 + 4)
    # the trade never happened: every micro-unit of cash back, no shares, no cost
    assert BALANCE == wallet.balance_usdc_micro
    assert 0 == wallet.positions.get(YES, 0)
    assert 0 == wallet.cost.get(YES, 0)
    assert 1 == len(of(cmds, TradeSettlement))
    [alert] = of(cmds, RaiseAlert)
    assert ("critical", "trade_failed", place.order.correlation_id) == (
        alert.severity,
        alert.code,
        alert.correlation_id,
    )
    [revised] = of(cmds, RecordOutcome)
    assert (OutcomeKind.ORDERED, 0, 1, "trade_failed") == (
        revised.kind,
        revised.filled_size,
        revised.revision,
        revised.reasons[-1],
    )
    # a second FAILED for the same trade changes nothing more
    again = settle(state, place, "FAILED", T0 + 5)
    assert BALANCE == wallet.balance_usdc_micro
    assert ["trade_failed_unknown"] == [a.code for a in of(again, RaiseAlert)]


def test_a_confirmed_trade_is_final() -> None:
    state, place = filled_engine()
    wallet = state.portfolio.wallets[WALLET]
    balance = wallet.balance_usdc_micro
    assert (("t1", place.order.order_id)) in state.unsettled
    assert 1 == len(of(settle(state, place, "CONFIRMED", T0 + 3), TradeSettlement))
    assert {} == state.unsettled
    # a FAILED after CONFIRMED cannot undo a settled trade: an alert, the books untouched
    cmds = settle(state, place, "FAILED", T0 + 4)
    assert balance == wallet.balance_usdc_micro
    assert ["trade_failed_unknown"] == [a.code for a in of(cmds, RaiseAlert)]
    assert [] == of(cmds, RecordOutcome)


def test_a_failed_sell_gives_the_shares_back_and_takes_the_proceeds() -> None:
    state, place = filled_engine()
    wallet = state.portfolio.wallets[WALLET]
    settle(state, place, "CONFIRMED", T0 + 3)
    held, balance, cost = wallet.positions[YES], wallet.balance_usdc_micro, wallet.cost[YES]
    realized = dict(state.portfolio.realized_by_strategy)
    sell = attrs.evolve(place.order, order_id="sell-0", side=place.order.side.opposite, size=held)
    taken = state.portfolio.apply_fill(WALLET, fill(sell, T0 + 4, trade_id="t2"), "scripted")
    assert 0 == wallet.positions.get(YES, 0)
    state.portfolio.reverse_fill(WALLET, fill(sell, T0 + 4, trade_id="t2"), "scripted", taken)
    assert (held, balance, cost) == (wallet.positions[YES], wallet.balance_usdc_micro, wallet.cost[YES])
    assert {**realized, "scripted": 0} == state.portfolio.realized_by_strategy


def test_an_unknown_status_is_refused_at_the_boundary() -> None:
    with pytest.raises(ValueError, match="unknown trade status"):
        TradeSettlement(T0, "t1", "o1-0", "SETTLED")
