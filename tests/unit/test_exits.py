"""The position manager: exit rules per strategy, merges of complete sets, redemption on resolution."""

from __future__ import annotations

from kit import MARKET, NO, T0, WALLET, YES, engine, fill, of, opportunity, snapshot, trade
from polysnipe.core.events import BookDelta, MarketResolved, PriceChange, Side
from polysnipe.core.exit_rules import ExitParams, ExitRule
from polysnipe.core.messages import (
    CancelOrder,
    Command,
    MergePositions,
    OrderRejected,
    PlaceOrder,
    PositionsMerged,
    PositionsRedeemed,
    RaiseAlert,
    RecordOpportunity,
    RecordOutcome,
    RedeemPositions,
    SettlementRefused,
    Tick,
)
from polysnipe.core.pipeline import next_timer_ms, step
from polysnipe.core.state import EngineState
from polysnipe.core.units import MICRO


def _holding(rule: ExitRule, *, fair: int = 550_000, group: str = "") -> tuple[EngineState, PlaceOrder]:
    """An engine holding 20 YES bought at 0.50 by the scripted strategy."""
    state = engine({T0 + 1: [opportunity("a", fair_value=fair, group_id=group)]})
    state.exits = type(state.exits)(ExitParams(rules={"scripted": rule}))
    step(state, snapshot(T0), T0)
    [place] = of(step(state, trade(T0 + 1), T0 + 1), PlaceOrder)
    step(state, fill(place.order, T0 + 2), T0 + 2)
    assert 20 * MICRO == state.portfolio.wallets[WALLET].positions[YES]
    return state, place


def _bid(state: EngineState, ts: int, bid: int) -> list[Command]:
    return step(state, snapshot(ts, bid=bid, ask=bid + 20_000), ts)


def test_take_profit_sells_at_the_fair_value_the_entry_claimed() -> None:
    state, _ = _holding(ExitRule(stop_loss_micro=0, max_hold_ms=0))
    assert [] == of(_bid(state, T0 + 3, 540_000), PlaceOrder)  # not there yet
    out = _bid(state, T0 + 4, 560_000)
    [exit_order] = of(out, PlaceOrder)
    assert (Side.SELL, 20 * MICRO, WALLET) == (
        exit_order.order.side,
        exit_order.order.size,
        exit_order.order.wallet,
    )
    assert 550_000 <= exit_order.order.price  # never below the fair value it takes profit at
    [record] = of(out, RecordOpportunity)
    assert record.opp.reason.startswith("exit:take_profit")
    step(state, fill(exit_order.order, T0 + 5, trade_id="t-exit"), T0 + 5)
    assert YES not in state.portfolio.wallets[WALLET].positions
    # bought 20 at 0.50, sold at >= 0.55: the strategy's realized PnL says so
    assert state.portfolio.realized_by_strategy["scripted"] >= 1 * MICRO


def test_stop_loss_sells_when_the_bid_falls_far_enough() -> None:
    state, _ = _holding(ExitRule(take_profit=False, stop_loss_micro=30_000))
    assert [] == of(_bid(state, T0 + 3, 480_000), PlaceOrder)
    [stop] = of(_bid(state, T0 + 4, 460_000), PlaceOrder)
    assert Side.SELL is stop.order.side
    assert 440_000 == stop.order.price  # down to two ticks under the bid
    # one exit in flight at a time: a lower bid sends no second one
    assert [] == of(_bid(state, T0 + 5, 450_000), PlaceOrder)


def test_an_exit_that_did_not_fill_waits_before_trying_again() -> None:
    state, _ = _holding(ExitRule(take_profit=False, stop_loss_micro=30_000))
    [stop] = of(_bid(state, T0 + 4, 460_000), PlaceOrder)
    step(state, OrderRejected(stop.order.order_id, T0 + 5, "fak_not_filled"), T0 + 5)
    # the failed exit is noticed at the next book change; the rule then waits retry_ms (5 s)
    assert [] == of(_bid(state, T0 + 6, 460_000), PlaceOrder)
    assert [] == of(_bid(state, T0 + 6 + 4_999, 460_000), PlaceOrder)
    assert 1 == len(of(_bid(state, T0 + 6 + 5_000, 460_000), PlaceOrder))


def test_time_stop_fires_on_time_without_any_market_input() -> None:
    state, _ = _holding(ExitRule(take_profit=False, max_hold_ms=60_000))
    _bid(state, T0 + 3, 500_000)
    assert T0 + 2 + 60_000 == next_timer_ms(state)
    assert [] == of(step(state, Tick(T0 + 30_000), T0 + 30_000), PlaceOrder)
    [stop] = of(step(state, Tick(T0 + 2 + 60_000), T0 + 2 + 60_000), PlaceOrder)
    assert Side.SELL is stop.order.side


def test_basket_legs_are_never_sold_on_price() -> None:
    state, _ = _holding(ExitRule(stop_loss_micro=30_000), group="g1")
    assert [] == of(_bid(state, T0 + 4, 400_000), PlaceOrder)
    assert {(YES, "scripted/basket")} == set(state.portfolio.wallets[WALLET].lots)


def _both_sides() -> tuple[EngineState, list[Command]]:
    """An engine that bought 20 YES at 0.50, then 20 NO at 0.48: the commands of the NO fill."""
    state = engine({T0 + 1: [opportunity("y", limit_price=500_000)], T0 + 3: [opportunity("n", token_id=NO,
                   limit_price=480_000, created_ms=T0 + 3)]})  # fmt: skip
    state.exits = type(state.exits)(ExitParams(rules={"scripted": ExitRule(take_profit=False)}))
    step(state, snapshot(T0), T0)
    step(state, snapshot(T0, token=NO, bid=460_000, ask=480_000), T0)
    [yes] = of(step(state, trade(T0 + 1), T0 + 1), PlaceOrder)
    assert [] == of(step(state, fill(yes.order, T0 + 2, trade_id="t1"), T0 + 2), MergePositions)
    [no] = of(step(state, trade(T0 + 3, token=NO, price=480_000), T0 + 3), PlaceOrder)
    return state, step(state, fill(no.order, T0 + 4, trade_id="t2"), T0 + 4)


def test_complete_sets_are_merged_back_into_collateral() -> None:
    state, commands = _both_sides()
    [merge] = of(commands, MergePositions)
    assert (WALLET, MARKET.condition_id, 20 * MICRO) == (merge.wallet, merge.market, merge.size)
    balance = state.portfolio.wallets[WALLET].balance_usdc_micro
    merged = PositionsMerged(WALLET, MARKET.condition_id, 20 * MICRO, T0 + 5)
    assert [merged] == of(step(state, merged, T0 + 5), PositionsMerged)  # journaled as it came
    wallet = state.portfolio.wallets[WALLET]
    assert balance + 20 * MICRO == wallet.balance_usdc_micro
    assert {} == wallet.positions
    # 20 sets cost 10 + 9.6 and returned 20: 0.40 realized, split over the two lots
    assert 400_000 == state.portfolio.realized_total_usdc_micro


def test_a_refused_merge_alerts_changes_nothing_and_is_asked_again_later() -> None:
    state, commands = _both_sides()
    [merge] = of(commands, MergePositions)
    balance = state.portfolio.wallets[WALLET].balance_usdc_micro
    refused = SettlementRefused("merge", WALLET, MARKET.condition_id, "no route", T0 + 5)
    [alert] = of(step(state, refused, T0 + 5), RaiseAlert)
    assert ("warning", "merge_refused") == (alert.severity, alert.code)
    assert balance == state.portfolio.wallets[WALLET].balance_usdc_micro
    assert 20 * MICRO == state.portfolio.wallets[WALLET].positions[YES]
    # the next fill in the market inside the retry window asks nothing; after it, the merge again
    retry = state.exits.params.settlement_retry_ms

    def buy_more(ts: int, oid: str) -> list[Command]:
        state.signals[0].script[ts] = [opportunity(oid, created_ms=ts, expires_ms=ts + 60_000)]  # type: ignore[attr-defined]
        step(state, snapshot(ts - 1), ts - 1)
        [place] = of(step(state, trade(ts), ts), PlaceOrder)
        return step(state, fill(place.order, ts + 1, size=5 * MICRO, trade_id=f"t-{oid}"), ts + 1)

    assert [] == of(buy_more(T0 + 10, "soon"), MergePositions)
    [again] = of(buy_more(T0 + 5 + retry, "later"), MergePositions)
    assert merge.size == again.size


def test_resolution_marks_cancels_and_redeems() -> None:
    state, _ = _holding(ExitRule(take_profit=False))
    state.signals[0].script[T0 + 6] = [opportunity("p", urgency="passive", limit_price=450_000,  # type: ignore[attr-defined]
                                                   created_ms=T0 + 6)]  # fmt: skip
    [resting] = of(step(state, trade(T0 + 6), T0 + 6), PlaceOrder)
    out = step(state, MarketResolved(T0 + 7, MARKET.condition_id, NO), T0 + 7)
    assert [resting.order.order_id] == [c.order_id for c in of(out, CancelOrder)]
    [redeem] = of(out, RedeemPositions)
    assert (WALLET, MARKET.condition_id) == (redeem.wallet, redeem.market)
    # YES lost: its mark is 0 and the day's PnL sees the whole loss at once
    assert 0 == state.portfolio.mark(YES)
    assert -10 * MICRO == state.risk.daily_pnl(T0 + 7)
    # nothing trades a resolved market any more
    state.signals[0].script[T0 + 8] = [opportunity("late", created_ms=T0 + 8)]  # type: ignore[attr-defined]
    late = step(
        state, PriceChange(T0 + 8, MARKET.condition_id, (BookDelta(YES, Side.BUY, 10_000, MICRO),)), T0 + 8
    )
    [refused] = of(late, RecordOutcome)
    assert "market_resolved" in refused.reasons
    step(state, PositionsRedeemed(WALLET, MARKET.condition_id, NO, 0, 0, T0 + 9), T0 + 9)
    assert {} == state.portfolio.wallets[WALLET].positions
    assert -10 * MICRO == state.portfolio.realized_total_usdc_micro
