from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit import fill, order_request
from polysnipe.core.events import Side
from polysnipe.core.messages import (
    ExecutionReport,
    Liquidity,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderStatusUnknown,
    OrderType,
)
from polysnipe.core.orders import (
    TERMINAL,
    TRANSITIONS,
    ForeignFill,
    InvalidTransition,
    OrderEvent,
    OrderRecord,
    OrderStatus,
    OverFill,
    next_status,
)
from polysnipe.core.units import MICRO

S, E = OrderStatus, OrderEvent
SIZE = 10 * MICRO
REQUEST = order_request(
    "o1", opportunity_id="opp", strategy="spread", routing="passive", wallet="0xw", market="0xc", size=SIZE,
    order_type=OrderType.GTD,
)  # fmt: skip


def _record(status: OrderStatus = S.NEW) -> OrderRecord:
    return OrderRecord(REQUEST, status=status)


def _fill(size: int, trade_id: str = "t1", price: int = 500_000, **fees: int) -> OrderFilled:
    return fill(REQUEST, 1, size, trade_id, price=price, liquidity=Liquidity.MAKER, **fees)


# -- the table -----------------------------------------------------------------------------------
def test_table_only_names_known_states_and_events() -> None:
    for (state, event), target in TRANSITIONS.items():
        assert isinstance(state, OrderStatus) and isinstance(event, OrderEvent)
        assert isinstance(target, OrderStatus)


def test_terminal_states_never_leave() -> None:
    for (state, _), target in TRANSITIONS.items():
        if state in TERMINAL:
            assert state == target


def test_cancel_request_never_changes_state() -> None:
    for (state, event), target in TRANSITIONS.items():
        if event is E.CANCEL_REQUEST:
            assert state == target


def test_every_state_is_reachable_from_new() -> None:
    seen, frontier = {S.NEW}, [S.NEW]
    while frontier:
        state = frontier.pop()
        for (src, _), dst in TRANSITIONS.items():
            if src == state and dst not in seen:
                seen.add(dst)
                frontier.append(dst)
    assert set(OrderStatus) == seen


@pytest.mark.parametrize("state", list(OrderStatus))
@pytest.mark.parametrize("event", list(OrderEvent))
def test_every_pair_is_either_in_the_table_or_raises(state: OrderStatus, event: OrderEvent) -> None:
    if (state, event) in TRANSITIONS:
        assert TRANSITIONS[state, event] == next_status(state, event)
    else:
        with pytest.raises(InvalidTransition) as err:
            next_status(state, event)
        assert (state, event) == (err.value.status, err.value.event)


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.NEW, E.FILL),
        (S.NEW, E.TIMEOUT),
        (S.SIGNED, E.ACCEPT),
        (S.LIVE, E.REJECT),
        (S.LIVE, E.POST),
        (S.FILLED, E.CANCEL),
        (S.FILLED, E.FILL),
        (S.REJECTED, E.FILL),
        (S.CANCELLED, E.EXPIRE),
        (S.EXPIRED, E.CANCEL_REQUEST),
        (S.REJECTED, E.ACCEPT),
    ],
)
def test_contradictions_raise(state: OrderStatus, event: OrderEvent) -> None:
    with pytest.raises(InvalidTransition):
        next_status(state, event)


# -- the record ----------------------------------------------------------------------------------
def test_live_path_with_signing() -> None:
    rec = _record()
    rec.fire(E.SIGN)
    rec.fire(E.POST)
    assert rec.apply(OrderAccepted("o1", 1, venue_order_id="0xabc"))
    assert (S.LIVE, "0xabc") == (rec.status, rec.venue_order_id)
    assert rec.apply(_fill(4 * MICRO, "t1", price=480_000))
    assert S.PARTLY_FILLED == rec.status
    assert rec.apply(_fill(6 * MICRO, "t2", price=500_000, fee_shares=1_000))
    assert (S.FILLED, SIZE, 0) == (rec.status, rec.filled_size, rec.remaining)
    assert 1_920_000 + 3_000_000 == rec.filled_notional
    assert 492_000 == rec.avg_price
    assert 1_000 == rec.fee_shares
    assert rec.is_terminal


def test_backtest_posts_without_signing_and_fills_at_once() -> None:
    rec = _record()
    rec.mark_posted()
    assert rec.apply(_fill(SIZE))
    assert S.FILLED == rec.status


def test_repeated_trade_id_is_counted_once() -> None:
    rec = _record(S.LIVE)
    assert rec.apply(_fill(3 * MICRO, "t1"))
    assert not rec.apply(_fill(3 * MICRO, "t1"))  # MATCHED, then MINED, then CONFIRMED
    assert (3 * MICRO, {"t1"}) == (rec.filled_size, rec.trade_ids)


def test_over_fill_raises_and_changes_nothing() -> None:
    rec = _record(S.LIVE)
    rec.apply(_fill(8 * MICRO, "t1"))
    with pytest.raises(OverFill):
        rec.apply(_fill(3 * MICRO, "t2"))
    assert (S.PARTLY_FILLED, 8 * MICRO, {"t1"}) == (rec.status, rec.filled_size, rec.trade_ids)


@pytest.mark.parametrize(
    "foreign",
    [
        attrs.evolve(_fill(3 * MICRO, "t1"), token_id="999"),
        attrs.evolve(_fill(3 * MICRO, "t1"), side=Side.SELL if REQUEST.side is Side.BUY else Side.BUY),
    ],
    ids=["token", "side"],
)
def test_a_fill_on_another_token_or_side_raises_and_changes_nothing(foreign: OrderFilled) -> None:
    """Applied, it credited the portfolio with shares of a token (or a side) the order never asked for."""
    rec = _record(S.LIVE)
    with pytest.raises(ForeignFill):
        rec.apply(foreign)
    assert (S.LIVE, 0, set()) == (rec.status, rec.filled_size, rec.trade_ids)


def test_cancel_request_waits_for_the_venue() -> None:
    rec = _record(S.LIVE)
    rec.fire(E.CANCEL_REQUEST)
    assert (S.LIVE, True) == (rec.status, rec.cancel_requested)
    assert rec.apply(_fill(2 * MICRO))  # it can still fill until the venue confirms
    assert rec.apply(OrderCancelled("o1", 2, reason="user"))
    assert (S.CANCELLED, "user", 2 * MICRO) == (rec.status, rec.reason, rec.filled_size)


def test_late_fill_after_cancel_is_counted_but_stays_cancelled() -> None:
    rec = _record(S.LIVE)
    rec.apply(OrderCancelled("o1", 2))
    assert rec.apply(_fill(SIZE, "late"))
    assert (S.CANCELLED, SIZE) == (rec.status, rec.filled_size)


def test_timeout_goes_unknown_and_reconciliation_resolves_it() -> None:
    rec = _record(S.POSTED)
    assert rec.apply(OrderStatusUnknown("o1", 1, "timeout"))
    assert "unknown" == rec.status.value
    assert not rec.apply(OrderStatusUnknown("o1", 2))
    assert rec.apply(_fill(SIZE))
    assert S.FILLED == rec.status
    rec = _record(S.UNKNOWN)
    assert rec.apply(OrderRejected("o1", 3, reason="not_found", venue_message="order not found"))
    assert (S.REJECTED, "order not found") == (rec.status, rec.reason)


def test_late_ack_and_timeout_after_the_venue_spoke_change_nothing() -> None:
    rec = _record(S.POSTED)
    rec.apply(_fill(SIZE))
    assert not rec.apply(OrderAccepted("o1", 2))
    assert not rec.apply(OrderStatusUnknown("o1", 3))
    assert S.FILLED == rec.status


def test_accept_reports_a_new_venue_id_once() -> None:
    rec = _record(S.POSTED)
    assert rec.apply(OrderAccepted("o1", 1))
    assert rec.apply(OrderAccepted("o1", 2, venue_order_id="0xabc"))
    assert not rec.apply(OrderAccepted("o1", 3, venue_order_id="0xabc"))


def test_expire_and_local_withdrawal() -> None:
    rec = _record(S.LIVE)
    assert rec.apply(OrderExpired("o1", 9))
    assert not rec.apply(OrderExpired("o1", 9))
    assert S.EXPIRED == rec.status
    rec = _record(S.SIGNED)
    rec.fire(E.CANCEL, reason="kill_switch:global")
    assert (S.CANCELLED, "kill_switch:global") == (rec.status, rec.reason)


def test_mark_posted_only_before_the_venue_has_it() -> None:
    rec = _record(S.SIGNED)
    rec.mark_posted()
    assert S.POSTED == rec.status
    with pytest.raises(InvalidTransition):
        rec.mark_posted()


def test_fire_refuses_fills_and_apply_refuses_other_orders() -> None:
    with pytest.raises(ValueError):
        _record(S.LIVE).fire(E.FILL)
    with pytest.raises(ValueError):
        _record(S.LIVE).apply(OrderAccepted("o2", 1))


def test_invalid_report_leaves_the_record_unchanged() -> None:
    rec = _record(S.LIVE)
    with pytest.raises(InvalidTransition):
        rec.apply(OrderRejected("o1", 1, reason="late"))
    assert (S.LIVE, "") == (rec.status, rec.reason)


def test_avg_price_is_zero_before_any_fill() -> None:
    assert 0 == _record().avg_price


# -- property: random report sequences -----------------------------------------------------------
# sizes that add up to the 10-share order in several ways, plus ones that over-fill it
fills = st.builds(
    lambda shares, trade: _fill(shares * MICRO, f"t{trade}"),
    st.sampled_from([2, 3, 5, 10, 11]),
    st.integers(0, 6),
)
foreign_fills = st.builds(
    lambda shares, trade: attrs.evolve(_fill(shares * MICRO, f"t{trade}"), token_id="999"),
    st.sampled_from([2, 3]),
    st.integers(0, 6),
)
reports = st.one_of(
    st.builds(OrderAccepted, st.just("o1"), st.integers(0, 9), st.sampled_from(["", "0xabc"])),
    st.builds(OrderRejected, st.just("o1"), st.integers(0, 9), st.just("r")),
    st.builds(OrderCancelled, st.just("o1"), st.integers(0, 9)),
    st.builds(OrderExpired, st.just("o1"), st.integers(0, 9)),
    st.builds(OrderStatusUnknown, st.just("o1"), st.integers(0, 9)),
    fills,
    fills,
    fills,
    foreign_fills,
)
local_events = st.sampled_from([E.SIGN, E.POST, E.CANCEL_REQUEST, E.CANCEL])
# most sequences start with the order already sent, where the venue's reports drive it
starts = st.sampled_from([[], [E.SIGN], [E.POST], [E.SIGN, E.POST], [E.POST], [E.SIGN, E.POST]])


@settings(max_examples=400, deadline=None)
@given(starts, st.lists(st.one_of(reports, reports, reports, local_events), max_size=25))
def test_random_sequences_keep_every_invariant(
    start: list[OrderEvent], rest: list[ExecutionReport | OrderEvent]
) -> None:
    steps = [*start, *rest]
    rec = _record()
    counted: set[str] = set()
    for step in steps:
        before = (rec.status, rec.filled_size, set(rec.trade_ids), rec.fee_usdc, rec.filled_notional)
        try:
            if isinstance(step, OrderEvent):
                rec.fire(step)
                changed = True
            else:
                changed = rec.apply(step)
        except (InvalidTransition, OverFill, ForeignFill):
            # a refused report leaves no trace
            assert before == (rec.status, rec.filled_size, rec.trade_ids, rec.fee_usdc, rec.filled_notional)
            continue
        assert isinstance(rec.status, OrderStatus)
        assert 0 <= rec.filled_size <= SIZE
        if before[0] in TERMINAL:
            assert before[0] == rec.status
        if isinstance(step, OrderFilled):
            assert changed == (step.trade_id not in counted)
            counted.add(step.trade_id)
        if rec.status is S.FILLED:
            assert SIZE == rec.filled_size
        if rec.status is S.PARTLY_FILLED:
            assert 0 < rec.filled_size < SIZE
    assert counted == rec.trade_ids
    assert rec.filled_size // 2 == rec.filled_notional  # every fill is at 0.5
    if rec.filled_size:
        assert 500_000 == rec.avg_price
