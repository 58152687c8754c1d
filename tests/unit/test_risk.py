from __future__ import annotations

from typing import Any, TypedDict, Unpack

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit import fill, market, order_request, risk_policy, snapshot
from polysnipe.core.book import BookState
from polysnipe.core.events import LastTrade, Side
from polysnipe.core.messages import OrderFilled, OrderRequest
from polysnipe.core.portfolio import DAY_MS, Portfolio, WalletState
from polysnipe.core.risk import (
    RiskDecision,
    RiskGatekeeper,
    RiskPolicy,
    RiskState,
    TreasuryPolicy,
    max_size_within,
)
from polysnipe.core.units import MICRO, notional

YES, NO = "111", "222"
W = "0xw1"
NOW = 1_700_000_000_000
MARKET = market("0xc")
#: tighter than the kit's limits, so that a few orders reach each of them
LIMITS: dict[str, Any] = {
    "max_order_notional_usdc_micro": 100 * MICRO,
    "max_market_exposure_usdc_micro": 300 * MICRO,
    "max_outcome_exposure_usdc_micro": 200 * MICRO,
    "max_open_orders": 10,
    "max_orders_per_window": 5,
    "rate_window_ms": 1_000,
    "daily_loss_limit_usdc_micro": 50 * MICRO,
    "max_book_age_ms": 5_000,
}


def _policy(**overrides: Any) -> RiskPolicy:
    return risk_policy(**{**LIMITS, **overrides})


def _book(token: str = YES, ts_ms: int = NOW) -> BookState:
    book = BookState(token, 10_000)
    book.apply_snapshot(snapshot(ts_ms, token, condition_id="0xc"))
    return book


def _state(balance: int = 1_000 * MICRO, **wallet: Any) -> RiskState:
    return RiskState(Portfolio({W: WalletState(balance_usdc_micro=balance, **wallet)}))


class _Marks:
    """A market view holding only last trades: the marking rule then marks at the last trade."""

    def __init__(self) -> None:
        self.trades: dict[str, LastTrade] = {}

    def set(self, token: str, price: int) -> None:
        self.trades[token] = LastTrade(NOW, token, "0xc", price, MICRO, Side.BUY)

    def book(self, token_id: str) -> BookState | None:
        return None

    def last_trade(self, token_id: str) -> LastTrade | None:
        return self.trades.get(token_id)


_seq = iter(range(10**9))


def _order(
    size: int = 10 * MICRO,
    price: int = 500_000,
    side: Side = Side.BUY,
    token: str = YES,
    wallet: str = W,
    strategy: str = "spread",
) -> OrderRequest:
    n = next(_seq)
    return order_request(f"o{n}", opportunity_id=f"opp{n}", strategy=strategy, wallet=wallet, market="0xc",
                         token_id=token, side=side, price=price, size=size)  # fmt: skip


class _Fees(TypedDict, total=False):
    fee_usdc: int
    fee_shares: int


def _fill(
    order: OrderRequest, size: int, price: int | None = None, trade: str = "", **fees: Unpack[_Fees]
) -> OrderFilled:
    return fill(order, NOW, size, trade or f"t{next(_seq)}", price=price, **fees)


def _check(
    order: OrderRequest,
    state: RiskState,
    policy: RiskPolicy | None = None,
    book: BookState | None = None,
    now_ms: int = NOW,
) -> RiskDecision:
    gk = RiskGatekeeper(policy or _policy())
    return gk.check(order, state, MARKET, _book(order.token_id) if book is None else book, now_ms)


# -- single checks -------------------------------------------------------------------------------
def test_approves_an_order_inside_every_limit() -> None:
    assert RiskDecision("approve", 10 * MICRO, ()) == _check(_order(), _state())


@pytest.mark.parametrize("scope", ["global", "strategy:spread", "market:0xc", "wallet:0xw1"])
def test_kill_switch_blocks_the_orders_it_covers(scope: str) -> None:
    state = _state()
    state.engage(scope)
    decision = _check(_order(), state)
    assert "reject" == decision.outcome
    assert (f"kill_switch:{scope}",) == decision.reasons
    state.release(scope)
    assert "approve" == _check(_order(), state).outcome


@pytest.mark.parametrize(("engaged", "market"), [("market:0xABC", "0xabc"), ("market:0xabc", "0xABC")])
def test_a_kill_switch_covers_a_market_whatever_the_case_of_its_id(engaged: str, market: str) -> None:
    """Matched as typed, a switch on a checksummed or capitalised id protected nothing."""
    state = _state()
    state.engage(engaged)
    order = attrs.evolve(_order(), market=market)
    assert ("kill_switch:market:0xabc",) == _check(order, state).reasons


def test_kill_switch_leaves_other_scopes_alone() -> None:
    state = _state()
    state.engage("strategy:momentum")
    state.engage("market:0xother")
    assert "approve" == _check(_order(strategy="spread"), state).outcome


@pytest.mark.parametrize("scope", ["", "globl", "strategy:", "token:111"])
def test_invalid_kill_switch_scope_raises(scope: str) -> None:
    with pytest.raises(ValueError):
        _state().engage(scope)


def test_book_missing_untrusted_or_stale() -> None:
    gk = RiskGatekeeper(_policy())
    order, state = _order(), _state()
    assert ("book_untrusted",) == gk.check(order, state, MARKET, None, NOW).reasons
    book = _book()
    book.invalidate()
    assert ("book_untrusted",) == gk.check(order, state, MARKET, book, NOW).reasons
    assert ("book_stale",) == gk.check(order, state, MARKET, _book(ts_ms=NOW - 5_001), NOW).reasons
    assert "approve" == gk.check(order, state, MARKET, _book(ts_ms=NOW - 5_000), NOW).outcome


def test_below_min_size_rejects_without_resize() -> None:
    decision = _check(_order(size=4_990_000), _state())
    assert RiskDecision("reject", 0, ("below_min_size",)) == decision


@pytest.mark.parametrize("price", [0, 1_000_000, 505_000])
def test_invalid_price_rejects(price: int) -> None:
    assert ("invalid_price",) == _check(_order(price=price), _state()).reasons


def test_order_notional_resizes_down_to_the_cap_on_the_size_step() -> None:
    # 100 USDC at 0.33 is 303.0303 shares; the step keeps 2 decimals
    decision = _check(_order(size=400 * MICRO, price=330_000), _state())
    assert RiskDecision("resize", 303_030_000, ("order_notional",)) == decision
    assert notional(330_000, decision.approved_size) <= 100 * MICRO


def test_resize_disabled_rejects() -> None:
    decision = _check(_order(size=400 * MICRO), _state(), _policy(allow_resize=False))
    assert RiskDecision("reject", 0, ("order_notional",)) == decision


def test_outcome_exposure_counts_held_cost_and_open_buys() -> None:
    state = _state(positions={YES: 300 * MICRO}, cost={YES: 150 * MICRO})
    state.on_submitted(_order(size=60 * MICRO), NOW)  # reserves 30 USDC on YES
    decision = _check(_order(size=100 * MICRO), state)  # 50 USDC; room 200 - 180 = 20
    assert RiskDecision("resize", 40 * MICRO, ("outcome_exposure",)) == decision


def test_market_exposure_sums_both_tokens() -> None:
    state = _state(positions={NO: 560 * MICRO}, cost={NO: 280 * MICRO})
    decision = _check(_order(size=100 * MICRO, token=YES), state)  # room 300 - 280 = 20 USDC
    assert RiskDecision("resize", 40 * MICRO, ("market_exposure",)) == decision


def _room_cases(room: int) -> list[tuple[str, RiskPolicy, RiskState]]:
    """A policy and state per cap that leave exactly `room` USDC for a BUY of YES."""
    return [
        ("order_notional", _policy(max_order_notional_usdc_micro=room), _state()),
        (
            "outcome_exposure",
            _policy(max_outcome_exposure_usdc_micro=5 * MICRO + room),
            _state(positions={YES: 10 * MICRO}, cost={YES: 5 * MICRO}),
        ),
        (
            "market_exposure",
            _policy(max_market_exposure_usdc_micro=5 * MICRO + room),
            _state(positions={NO: 10 * MICRO}, cost={NO: 5 * MICRO}),
        ),
        ("free_balance", _policy(), _state(balance=room)),
        (
            "free_balance",
            _policy(treasury=TreasuryPolicy(min_free_balance_usdc_micro=90 * MICRO)),
            _state(balance=90 * MICRO + room),
        ),
        (
            "free_balance",
            _policy(treasury=TreasuryPolicy(max_utilization_bps=5_000)),
            _state(balance=2 * room),
        ),
    ]


@pytest.mark.parametrize("case", range(6))
def test_caps_are_inclusive_to_the_micro_unit(case: int) -> None:
    # 20 shares at 0.5 cost exactly 10 USDC: approved with 10 USDC of room, cut a step with one micro less
    _, policy, state = _room_cases(10 * MICRO)[case]
    assert "approve" == _check(_order(size=20 * MICRO), state, policy).outcome
    reason, policy, state = _room_cases(10 * MICRO - 1)[case]
    assert RiskDecision("resize", 19_990_000, (reason,)) == _check(_order(size=20 * MICRO), state, policy)


def test_resize_below_min_size_rejects_with_every_reason() -> None:
    state = _state(balance=2 * MICRO)  # free 2 USDC -> 4 shares at 0.5, below the 5 minimum
    decision = _check(_order(size=400 * MICRO), state)
    assert RiskDecision("reject", 0, ("order_notional", "free_balance")) == decision


def test_open_orders_cap() -> None:
    state = _state()
    for _ in range(3):
        state.on_submitted(_order(), NOW - 10_000)
    assert ("open_orders",) == _check(_order(), state, _policy(max_open_orders=3)).reasons


def test_rate_limit_is_a_sliding_window() -> None:
    state = _state()
    for t in range(5):
        state.on_submitted(_order(), NOW - 900 + t)
    assert ("rate_limit",) == _check(_order(), state).reasons
    # 100 ms later the oldest two have left (now - window excludes its left edge)
    assert ("rate_limit",) == _check(_order(), state, now_ms=NOW + 99).reasons
    assert "approve" == _check(_order(), state, book=_book(ts_ms=NOW + 100), now_ms=NOW + 100).outcome


def test_daily_loss_from_realized_and_unrealized() -> None:
    gk = RiskGatekeeper(_policy())
    state = _state(positions={YES: 200 * MICRO}, cost={YES: 100 * MICRO})
    marks = _Marks()
    state.portfolio.marks = marks
    assert not gk.breaches_daily_loss(state, NOW)  # unmarked: valued at cost
    marks.set(YES, 260_000)  # worth 52: unrealized -48
    assert not gk.breaches_daily_loss(state, NOW)
    sell = _order(size=100 * MICRO, price=200_000, side=Side.SELL)
    state.on_submitted(sell, NOW)
    state.on_fill(sell.order_id, _fill(sell, 100 * MICRO))  # realized 20 - 50 = -30
    assert -30 * MICRO == state.portfolio.realized_today(NOW)
    assert -30 * MICRO + (26 - 50) * MICRO == state.daily_pnl(NOW)
    assert gk.breaches_daily_loss(state, NOW)
    assert ("daily_loss",) == gk.check(_order(), state, MARKET, _book(), NOW).reasons
    # exits stay possible: a SELL is not stopped by the daily loss (kill switches stop those)
    assert "approve" == gk.check(_order(size=50 * MICRO, side=Side.SELL), state, MARKET, _book(), NOW).outcome
    # the next day starts with no realized loss
    tomorrow = (NOW // DAY_MS + 1) * DAY_MS
    assert 0 == state.portfolio.realized_today(tomorrow)
    assert not gk.breaches_daily_loss(state, tomorrow)


def test_unrealized_floor_is_minus_the_cost_held_unless_a_position_is_short() -> None:
    state = _state(positions={YES: 200 * MICRO, NO: 10 * MICRO}, cost={YES: 100 * MICRO, NO: 3 * MICRO})
    marks = _Marks()
    state.portfolio.marks = marks
    marks.set(YES, 0)  # worth nothing: all its cost is lost, the floor itself
    assert -103 * MICRO == state.portfolio.unrealized_floor()
    assert -100 * MICRO == state.portfolio.unrealized()
    assert None is _state(positions={YES: -1}, cost={YES: 0}).portfolio.unrealized_floor()
    assert None is _state(positions={YES: 1}, cost={YES: -1}).portfolio.unrealized_floor()
    assert 0 == _state().portfolio.unrealized_floor()


def test_daily_loss_marks_positions_once_the_floor_could_breach() -> None:
    gk = RiskGatekeeper(_policy())  # limit 50
    state = _state(positions={YES: 200 * MICRO}, cost={YES: 60 * MICRO})
    marks = _Marks()
    state.portfolio.marks = marks
    marks.set(YES, 200_000)  # worth 40: unrealized -20, within the limit though the floor is not
    assert not gk.breaches_daily_loss(state, NOW)
    marks.set(YES, 40_000)  # worth 8: unrealized -52
    assert gk.breaches_daily_loss(state, NOW)


def test_free_balance_honours_the_treasury_floor_and_utilization() -> None:
    policy = _policy(
        treasury=TreasuryPolicy(min_free_balance_usdc_micro=95 * MICRO),
        treasury_by_wallet={"0xw2": TreasuryPolicy(max_utilization_bps=1_000)},
    )
    state = RiskState(Portfolio.of({W: 100 * MICRO, "0xw2": 100 * MICRO}))
    assert RiskDecision("resize", 10 * MICRO, ("free_balance",)) == _check(
        _order(size=40 * MICRO), state, policy
    )
    assert RiskDecision("resize", 20 * MICRO, ("free_balance",)) == _check(
        _order(size=40 * MICRO, wallet="0xw2"), state, policy
    )


def test_free_balance_subtracts_open_buy_reservations() -> None:
    state = _state(balance=20 * MICRO)
    state.on_submitted(_order(size=30 * MICRO), NOW)  # reserves 15
    assert RiskDecision("resize", 10 * MICRO, ("free_balance",)) == _check(_order(size=20 * MICRO), state)


def test_sell_needs_shares_not_already_promised() -> None:
    state = _state(positions={YES: 30 * MICRO}, cost={YES: 15 * MICRO})
    assert ("no_position",) == _check(_order(side=Side.SELL, token=NO), state).reasons
    state.on_submitted(_order(size=20 * MICRO, side=Side.SELL), NOW)
    decision = _check(_order(size=20 * MICRO, side=Side.SELL), state)
    assert RiskDecision("resize", 10 * MICRO, ("no_position",)) == decision


def test_unknown_wallet() -> None:
    assert ("unknown_wallet",) == _check(_order(wallet="0xnobody"), _state()).reasons


def test_off_step_size_is_cut_to_the_step() -> None:
    decision = _check(_order(size=10_005_000), _state())
    assert RiskDecision("resize", 10 * MICRO, ("size_step",)) == decision


def test_hard_reasons_come_with_the_cap_reasons() -> None:
    state = _state()
    state.engage("global")
    decision = _check(_order(size=400 * MICRO), state, book=_book(ts_ms=0))
    assert ("kill_switch:global", "book_stale", "order_notional") == decision.reasons


def test_max_size_within_matches_floor_notional() -> None:
    for budget in (0, 1, 99, 100 * MICRO):
        for price in (1, 333_333, 990_000):
            s = max_size_within(budget, price)
            assert notional(price, s) <= budget < notional(price, s + 1)
    assert 0 == max_size_within(-5, 500_000)


# -- state updates -------------------------------------------------------------------------------
def test_buy_fill_pays_usdc_and_receives_shares_net_of_fee() -> None:
    state = _state(balance=100 * MICRO)
    order = _order(size=20 * MICRO, price=500_000)
    state.on_submitted(order, NOW)
    wallet = state.portfolio.wallets[W]
    assert 10 * MICRO == state.reserved_usdc[W]
    state.on_fill(order.order_id, _fill(order, 8 * MICRO, price=490_000, fee_shares=100_000))
    assert 100 * MICRO - 3_920_000 == wallet.balance_usdc_micro
    assert 7_900_000 == wallet.positions[YES]
    assert 3_920_000 == wallet.cost[YES]
    assert 6 * MICRO == state.reserved_usdc[W]  # notional of the 12 shares left
    assert 6 * MICRO + 3_920_000 == state.exposure(YES)


def test_sell_fill_realizes_pnl_against_average_cost() -> None:
    state = _state(balance=0, positions={YES: 100 * MICRO}, cost={YES: 40 * MICRO})
    order = _order(size=50 * MICRO, price=600_000, side=Side.SELL)
    state.on_submitted(order, NOW)
    state.on_fill(order.order_id, _fill(order, 50 * MICRO, fee_usdc=300_000))
    wallet = state.portfolio.wallets[W]
    assert 30 * MICRO - 300_000 == wallet.balance_usdc_micro
    assert 50 * MICRO == wallet.positions[YES]
    assert 20 * MICRO == wallet.cost[YES]
    assert 10 * MICRO - 300_000 == state.portfolio.realized_today(NOW)
    assert {"spread": 10 * MICRO - 300_000} == state.portfolio.realized_by_strategy
    assert order.order_id not in state.open_orders  # a full fill closes it
    assert {} == state.reserved_shares


def test_selling_everything_clears_the_position() -> None:
    state = _state(positions={YES: 10 * MICRO}, cost={YES: 3 * MICRO})
    order = _order(size=10 * MICRO, side=Side.SELL)
    state.on_submitted(order, NOW)
    state.on_fill(order.order_id, _fill(order, 10 * MICRO))
    assert {} == state.portfolio.wallets[W].positions
    assert {} == state.portfolio.wallets[W].cost


def test_close_releases_the_rest_and_is_idempotent() -> None:
    state = _state()
    order = _order(size=20 * MICRO)
    state.on_submitted(order, NOW)
    state.on_submitted(order, NOW)  # a retried submission reserves once
    assert 10 * MICRO == state.reserved_usdc[W]
    assert 1 == len(state.order_times)
    state.on_fill(order.order_id, _fill(order, 5 * MICRO))
    state.on_order_closed(order.order_id)
    state.on_order_closed(order.order_id)
    state.on_order_closed("never-seen")
    assert {} == state.reserved_usdc
    assert {} == state.reserved_by_token
    assert {} == state.open_orders


def test_fill_racing_a_cancel_still_counts() -> None:
    state = _state(balance=100 * MICRO)
    order = _order(size=20 * MICRO)
    state.on_submitted(order, NOW)
    state.on_order_closed(order.order_id)
    state.on_fill(order.order_id, _fill(order, 4 * MICRO))
    assert 98 * MICRO == state.portfolio.wallets[W].balance_usdc_micro
    assert 4 * MICRO == state.portfolio.wallets[W].positions[YES]
    assert {} == state.reserved_usdc
    with pytest.raises(KeyError):
        state.on_fill("never-seen", _fill(order, 1))


def test_closed_memory_is_bounded() -> None:
    state = RiskState(Portfolio.of({W: MICRO}), closed_memory=2)
    orders = [_order(size=MICRO, price=10_000) for _ in range(3)]
    for o in orders:
        state.on_submitted(o, NOW)
        state.on_order_closed(o.order_id)
    assert [o.order_id for o in orders[1:]] == list(state.closed_orders)


def test_holds_and_size_step_helpers() -> None:
    state = _state(positions={YES: MICRO}, cost={YES: 1})
    assert (True, False) == (state.portfolio.holds(YES), state.portfolio.holds(NO))
    assert 10_000 == RiskGatekeeper(_policy()).size_step


def test_policy_treasury_lookup() -> None:
    special = TreasuryPolicy(min_free_balance_usdc_micro=7)
    policy = _policy(treasury_by_wallet={"0xa": special})
    assert special == policy.treasury_for("0xa")
    assert TreasuryPolicy() == policy.treasury_for("0xb")


# -- properties ----------------------------------------------------------------------------------
STEP = 10_000
prices = st.integers(1, 99).map(lambda k: k * 10_000)
# 5 .. 150 shares (below-minimum requests have their own test; here they only crowd out approvals)
sizes = st.integers(500, 15_000).map(lambda k: k * STEP)

policies = st.builds(
    _policy,
    max_order_notional_usdc_micro=st.integers(5 * MICRO, 100 * MICRO),
    max_market_exposure_usdc_micro=st.integers(20 * MICRO, 400 * MICRO),
    max_outcome_exposure_usdc_micro=st.integers(10 * MICRO, 300 * MICRO),
    max_open_orders=st.integers(1, 8),
    max_orders_per_window=st.integers(1, 6),
    rate_window_ms=st.integers(1, 2_000),
    daily_loss_limit_usdc_micro=st.integers(10 * MICRO, 200 * MICRO),
    treasury=st.builds(
        TreasuryPolicy,
        min_free_balance_usdc_micro=st.integers(0, 20 * MICRO),
        max_utilization_bps=st.integers(1_000, 10_000),
    ),
    allow_resize=st.booleans(),
)

_order_action = st.tuples(
    st.just("order"),
    st.sampled_from([W, "0xw2"]),
    st.sampled_from([YES, NO]),
    st.sampled_from([Side.BUY, Side.SELL]),
    prices,
    sizes,
    st.sampled_from(["spread", "momentum"]),
)
actions = st.lists(
    st.one_of(
        _order_action,
        _order_action,
        _order_action,
        st.tuples(st.just("fill"), st.integers(0, 50), st.integers(1, 100), st.integers(0, 5)),
        st.tuples(st.just("close"), st.integers(0, 50)),
        st.tuples(st.just("wait"), st.integers(0, 1_500)),
        st.tuples(st.just("mark"), st.sampled_from([YES, NO]), prices),
        st.tuples(
            st.just("kill"),
            st.sampled_from(["global", "strategy:momentum", "market:0xc", "wallet:0xw2"]),
            st.booleans(),
        ),
    ),
    min_size=10,
    max_size=40,
)

shares = st.integers(0, 200).map(lambda k: k * MICRO)
wallets = st.builds(
    lambda bal, yes, no: WalletState(
        bal,
        positions={t: n for t, n in ((YES, yes), (NO, no)) if n},
        cost={t: n // 3 for t, n in ((YES, yes), (NO, no)) if n},
    ),
    st.integers(5 * MICRO, 200 * MICRO),
    shares,
    shares,
)


def _covering(order: OrderRequest, switches: set[str]) -> list[str]:
    scopes = ["global", f"strategy:{order.strategy}", f"market:{order.market}", f"wallet:{order.wallet}"]
    return [s for s in scopes if s in switches]


@settings(max_examples=250, deadline=None)
@given(policies, wallets, wallets, actions)
def test_approved_orders_never_breach_a_limit(
    policy: RiskPolicy, w1: WalletState, w2: WalletState, steps: list[tuple[Any, ...]]
) -> None:
    gk = RiskGatekeeper(policy)
    state = RiskState(Portfolio({W: w1, "0xw2": w2}))
    marks = _Marks()
    state.portfolio.marks = marks
    submitted: list[OrderRequest] = []
    now = NOW
    for step in steps:
        kind = step[0]
        if kind == "order":
            _, wallet, token, side, price, size, strategy = step
            order = _order(size=size, price=price, side=side, token=token, wallet=wallet, strategy=strategy)
            decision = gk.check(order, state, MARKET, _book(token, now), now)
            covering = _covering(order, state.kill_switches)
            if covering:
                assert "reject" == decision.outcome
                assert {f"kill_switch:{s}" for s in covering} <= set(decision.reasons)
            if not decision.approved:
                assert 0 == decision.approved_size
                assert decision.reasons
                continue
            approved = decision.approved_size
            assert 0 == approved % policy.size_step_micro
            assert MARKET.min_order_size <= approved <= size
            if decision.outcome == "resize":
                assert policy.allow_resize and decision.reasons
            order = attrs.evolve(order, size=approved)
            exposure_before = {t: state.exposure(t) for t in (YES, NO)}
            state.on_submitted(order, now)
            submitted.append(order)
            acct = state.portfolio.wallets[wallet]
            treasury = policy.treasury_for(wallet)
            assert notional(price, approved) <= policy.max_order_notional_usdc_micro
            assert len(state.open_orders) <= policy.max_open_orders
            assert state.orders_in_window(now, policy.rate_window_ms) <= policy.max_orders_per_window
            if side is Side.BUY:
                assert state.exposure(token) <= policy.max_outcome_exposure_usdc_micro
                assert state.exposure(YES) + state.exposure(NO) <= policy.max_market_exposure_usdc_micro
                assert state.free_usdc(wallet, treasury) >= 0
                assert (
                    state.reserved_usdc.get(wallet, 0) * 10_000
                    <= acct.balance_usdc_micro * treasury.max_utilization_bps
                )
            else:
                assert exposure_before == {t: state.exposure(t) for t in (YES, NO)}
                assert state.available_shares(wallet, token) >= 0
        elif kind == "fill" and submitted:
            _, idx, pct, fee = step
            order = submitted[idx % len(submitted)]
            open_order = state.open_orders.get(order.order_id)
            if open_order is None:
                continue
            fill_size = max(open_order.remaining * pct // 100, 1)
            # the venue fills a BUY at or below its limit, a SELL at or above; fees come out of proceeds
            if order.side is Side.BUY:
                fill = _fill(order, fill_size, price=max(order.price - fee * 10_000, 10_000), fee_shares=fee)
            else:
                fill = _fill(order, fill_size, price=min(order.price + fee * 10_000, 990_000), fee_usdc=fee)
            treasury = policy.treasury_for(order.wallet)
            free_before = state.free_usdc(order.wallet, treasury)
            token_exposure_before = state.exposure(order.token_id)
            state.on_fill(order.order_id, fill)
            # a fill spends at most what it had reserved, so it never eats into the free balance
            assert state.free_usdc(order.wallet, treasury) >= free_before
            assert state.exposure(order.token_id) <= token_exposure_before
            assert state.available_shares(order.wallet, order.token_id) >= 0 or order.side is Side.BUY
        elif kind == "close" and submitted:
            state.on_order_closed(submitted[step[1] % len(submitted)].order_id)
        elif kind == "wait":
            now += step[1]
        elif kind == "mark":
            marks.set(step[1], step[2])
        elif kind == "kill":
            (state.engage if step[2] else state.release)(step[1])
        # reservations always equal what the open orders still hold
        for name in state.portfolio.wallets:
            mine = [o for o in state.open_orders.values() if o.wallet == name]
            assert len(mine) == state.open_orders_of(name)
            assert sum(o.reserved_usdc_micro for o in mine) == state.reserved_usdc.get(name, 0)
            for o in mine:
                assert o.reserved_usdc_micro == (notional(o.price, o.remaining) if o.side is Side.BUY else 0)
        assert all(v > 0 for v in state.reserved_by_token.values())
        # the daily loss shortcut (no marks read while losing all held cost stays within the limit)
        # answers as marking everything would
        floor = state.portfolio.unrealized_floor()
        assert floor is None or floor <= state.portfolio.unrealized()
        limit = policy.daily_loss_limit_usdc_micro
        assert (state.daily_pnl(now) < -limit) == gk.breaches_daily_loss(state, now)


@settings(max_examples=60, deadline=None)
@given(
    policies,
    st.sampled_from(["global", "strategy:spread", "market:0xc", "wallet:0xw1"]),
    st.sampled_from([Side.BUY, Side.SELL]),
    prices,
    sizes,
)
def test_a_tripped_kill_switch_blocks_every_order_it_covers(
    policy: RiskPolicy, scope: str, side: Side, price: int, size: int
) -> None:
    state = _state(positions={YES: 500 * MICRO}, cost={YES: 0})
    state.engage(scope)
    decision = RiskGatekeeper(policy).check(
        _order(size=size, price=price, side=side), state, MARKET, _book(), NOW
    )
    assert "reject" == decision.outcome
    assert f"kill_switch:{scope}" in decision.reasons
