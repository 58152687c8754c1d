from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit import opportunity
from polysnipe.core.book import BookState
from polysnipe.core.events import BookSnapshot, Level, Side
from polysnipe.core.messages import OrderType
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.routing import (
    ChildOrder,
    Iceberg,
    ImmediateAggressive,
    PassivePosting,
    Router,
    build_router,
)
from polysnipe.core.units import MICRO, ONE

NOW = 1_700_000_000_000
TICKS = [100_000, 10_000, 5_000, 2_500, 1_000, 100]


def _opp(
    side: Side = Side.BUY,
    limit: int = 550_000,
    strategy: str = "spread",
    urgency: str = "aggressive",
    expires_ms: int = NOW + 60_000,
) -> Opportunity:
    return opportunity("opp", strategy=strategy, market="0xc", side=side, size=10 * MICRO, limit_price=limit,
                       fair_value=600_000, confidence=0.8, created_ms=NOW, expires_ms=expires_ms,
                       correlation_id="c", urgency=urgency)  # fmt: skip


def _book(bids: list[int], asks: list[int], tick: int = 10_000) -> BookState:
    book = BookState("111", tick)
    book.apply_snapshot(
        BookSnapshot(
            NOW, "111", "0xc", tuple(Level(p, MICRO) for p in bids), tuple(Level(p, MICRO) for p in asks)
        )
    )
    return book


# -- aggressive ----------------------------------------------------------------------------------
def test_aggressive_buy_crosses_up_to_the_slippage_ceiling() -> None:
    book = _book([480_000], [500_000])
    child = ImmediateAggressive().child(_opp(limit=600_000), 10 * MICRO, book, NOW)
    assert ChildOrder(10 * MICRO, 520_000, OrderType.FAK, False, 0) == child


def test_aggressive_never_prices_beyond_the_limit() -> None:
    book = _book([480_000], [500_000])
    child = ImmediateAggressive(slippage_ticks=5, order_type=OrderType.FOK).child(
        _opp(limit=510_000), MICRO, book, NOW
    )
    assert child is not None
    assert (510_000, OrderType.FOK) == (child.price, child.order_type)


def test_aggressive_sell_mirrors() -> None:
    book = _book([480_000], [500_000])
    child = ImmediateAggressive().child(_opp(Side.SELL, limit=300_000), MICRO, book, NOW)
    assert child is not None
    assert 460_000 == child.price
    child = ImmediateAggressive().child(_opp(Side.SELL, limit=470_000), MICRO, book, NOW)
    assert child is not None
    assert 470_000 == child.price


def test_aggressive_returns_none_without_reachable_liquidity() -> None:
    policy = ImmediateAggressive()
    assert policy.child(_opp(), MICRO, _book([480_000], []), NOW) is None
    assert policy.child(_opp(Side.SELL, limit=400_000), MICRO, _book([], [500_000]), NOW) is None
    # the ask is above the limit: a FAK there would only be killed
    assert policy.child(_opp(limit=490_000), MICRO, _book([480_000], [500_000]), NOW) is None
    assert policy.child(_opp(Side.SELL, limit=490_000), MICRO, _book([480_000], [500_000]), NOW) is None


def test_aggressive_rejects_resting_order_types() -> None:
    with pytest.raises(ValueError):
        ImmediateAggressive(order_type=OrderType.GTC)
    with pytest.raises(ValueError):
        ImmediateAggressive(slippage_ticks=-1)


def test_aggressive_uses_the_live_tick_and_rounds_the_limit_conservatively() -> None:
    # the tick moved to 0.1 after the opportunity priced its limit at 0.55
    book = _book([400_000], [500_000], tick=100_000)
    child = ImmediateAggressive().child(_opp(limit=550_000), MICRO, book, NOW)
    assert child is not None
    assert 500_000 == child.price


# -- passive -------------------------------------------------------------------------------------
def test_passive_buy_improves_the_bid_without_crossing() -> None:
    child = PassivePosting().child(_opp(), MICRO, _book([480_000], [500_000]), NOW)
    assert ChildOrder(MICRO, 490_000, OrderType.GTD, True, NOW + 30_000) == child
    # a one-tick spread leaves only the bid itself
    child = PassivePosting().child(_opp(), MICRO, _book([490_000], [500_000]), NOW)
    assert child is not None
    assert 490_000 == child.price


def test_passive_sell_improves_the_ask_without_crossing() -> None:
    child = PassivePosting(improve_ticks=2).child(
        _opp(Side.SELL, limit=300_000), MICRO, _book([480_000], [520_000]), NOW
    )
    assert child is not None
    assert 500_000 == child.price


def test_passive_respects_the_limit_and_the_opportunity_expiry() -> None:
    child = PassivePosting(ttl_ms=120_000).child(_opp(limit=450_000), MICRO, _book([480_000], [500_000]), NOW)
    assert child is not None
    assert (450_000, NOW + 60_000) == (child.price, child.expiration_ms)
    assert PassivePosting().child(_opp(expires_ms=NOW), MICRO, _book([480_000], [500_000]), NOW) is None


def test_passive_none_when_no_price_fits() -> None:
    assert PassivePosting().child(_opp(), MICRO, _book([], [10_000]), NOW) is None
    assert PassivePosting().child(_opp(Side.SELL, limit=200_000), MICRO, _book([990_000], []), NOW) is None


def test_passive_empty_book_posts_at_the_limit() -> None:
    child = PassivePosting().child(_opp(limit=300_000), MICRO, _book([], []), NOW)
    assert child is not None
    assert 300_000 == child.price


# -- properties: price bounds --------------------------------------------------------------------
@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Opportunity, BookState]:
    tick = draw(st.sampled_from(TICKS))
    n = ONE // tick
    on_tick = st.integers(1, n - 1).map(lambda k: k * tick)
    bids = draw(st.lists(on_tick, max_size=4))
    asks = draw(st.lists(on_tick, max_size=4))
    if bids and asks and max(bids) >= min(asks):  # our view of the book is never crossed
        asks = [a for a in asks if a > max(bids)]
    # the limit may sit on a coarser or finer tick than the live one
    limit = draw(st.integers(1, 999).map(lambda k: k * 1_000))
    side = draw(st.sampled_from([Side.BUY, Side.SELL]))
    return _opp(side, limit=limit), _book(bids, asks, tick)


def _assert_valid_price(child: ChildOrder, opp: Opportunity, tick: int) -> None:
    assert 0 < child.price < ONE
    assert 0 == child.price % tick
    if opp.side is Side.BUY:
        assert child.price <= opp.limit_price
    else:
        assert child.price >= opp.limit_price


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.integers(0, 5), st.sampled_from([OrderType.FAK, OrderType.FOK]))
def test_aggressive_stays_within_limit_on_tick_and_inside_unit_interval(
    scenario: tuple[Opportunity, BookState], slippage: int, order_type: OrderType
) -> None:
    opp, book = scenario
    child = ImmediateAggressive(slippage, order_type).child(opp, MICRO, book, NOW)
    if child is None:
        return
    _assert_valid_price(child, opp, book.tick_size)
    assert order_type == child.order_type and not child.post_only
    if opp.side is Side.BUY:
        ask = book.best_ask()
        assert ask is not None and ask <= child.price <= ask + slippage * book.tick_size
    else:
        bid = book.best_bid()
        assert bid is not None and bid - slippage * book.tick_size <= child.price <= bid


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.integers(0, 5))
def test_passive_never_crosses(scenario: tuple[Opportunity, BookState], improve: int) -> None:
    opp, book = scenario
    child = PassivePosting(improve_ticks=improve).child(opp, MICRO, book, NOW)
    if child is None:
        return
    _assert_valid_price(child, opp, book.tick_size)
    assert child.post_only and OrderType.GTD == child.order_type
    assert NOW < child.expiration_ms <= NOW + 30_000
    ask, bid = book.best_ask(), book.best_bid()
    if opp.side is Side.BUY:
        assert ask is None or child.price < ask
    else:
        assert bid is None or child.price > bid


# -- iceberg -------------------------------------------------------------------------------------
def _iceberg(display: int = 10 * MICRO, jitter: int = 0, delay: int = 500, delay_jitter: int = 0) -> Iceberg:
    return Iceberg(
        display_size_micro=display,
        size_jitter_bps=jitter,
        delay_ms=delay,
        delay_jitter_ms=delay_jitter,
        child=PassivePosting(),
    )


def test_iceberg_slices_without_jitter() -> None:
    slices = _iceberg().slices(35 * MICRO, 5 * MICRO, 10_000, random.Random(1))
    assert [(10 * MICRO, 0), (10 * MICRO, 500), (10 * MICRO, 500), (5 * MICRO, 500)] == slices


def test_iceberg_merges_a_small_tail_when_it_fits_the_display() -> None:
    # 13 with display 10 and minimum 5: 10 + 3 would leave a 3-share tail; 8 + 5 is the cut
    sizes = [s for s, _ in _iceberg().slices(13 * MICRO, 5 * MICRO, 10_000, random.Random(1))]
    assert [8 * MICRO, 5 * MICRO] == sizes
    sizes = [s for s, _ in _iceberg().slices(12 * MICRO, 5 * MICRO, 10_000, random.Random(1))]
    assert [7 * MICRO, 5 * MICRO] == sizes
    sizes = [
        s for s, _ in _iceberg(display=12 * MICRO).slices(14 * MICRO, 10 * MICRO, 10_000, random.Random(1))
    ]
    assert [14 * MICRO] != sizes  # never merge past the display size
    assert 14 * MICRO == sum(sizes) and max(sizes) <= 12 * MICRO


def test_iceberg_small_parent_is_one_slice() -> None:
    assert [(3 * MICRO, 0)] == _iceberg().slices(3 * MICRO, 5 * MICRO, 10_000, random.Random(1))
    assert [] == _iceberg().slices(0, 5 * MICRO, 10_000, random.Random(1))


def test_iceberg_jitter_is_seeded() -> None:
    ice = _iceberg(jitter=3_000, delay_jitter=200)
    a = ice.slices(100 * MICRO, 5 * MICRO, 10_000, random.Random(42))
    b = ice.slices(100 * MICRO, 5 * MICRO, 10_000, random.Random(42))
    assert a == b
    assert len({s for s, _ in a}) > 1
    assert all(300 <= d <= 700 for _, d in a[1:])


def test_iceberg_rejects_impossible_requests() -> None:
    with pytest.raises(ValueError):
        _iceberg().slices(10_005_000, 5 * MICRO, 10_000, random.Random(1))
    with pytest.raises(ValueError):
        _iceberg(display=4 * MICRO).slices(10 * MICRO, 5 * MICRO, 10_000, random.Random(1))
    with pytest.raises(ValueError):
        _iceberg(jitter=10_000)


def test_iceberg_child_delegates_and_guards_the_display() -> None:
    ice = _iceberg()
    book = _book([480_000], [500_000])
    assert PassivePosting().child(_opp(), 10 * MICRO, book, NOW) == ice.child(_opp(), 10 * MICRO, book, NOW)
    with pytest.raises(ValueError):
        ice.child(_opp(), 10 * MICRO + 10_000, book, NOW)


@settings(max_examples=300, deadline=None)
@given(
    parent_steps=st.integers(0, 20_000),
    display_steps=st.integers(1, 5_000),
    min_steps=st.integers(0, 1_000),
    jitter=st.integers(0, 9_999),
    delay=st.integers(0, 2_000),
    delay_jitter=st.integers(0, 2_000),
    seed=st.integers(0, 2**32),
    step=st.sampled_from([10_000, 1_000_000]),
)
def test_iceberg_slices_sum_to_parent_and_respect_display_and_minimum(
    parent_steps: int,
    display_steps: int,
    min_steps: int,
    jitter: int,
    delay: int,
    delay_jitter: int,
    seed: int,
    step: int,
) -> None:
    display, min_size, parent = display_steps * step, min_steps * step, parent_steps * step
    ice = _iceberg(display, jitter, delay, delay_jitter)
    floor = max(min_size, step)
    # can_slice is what the lifecycle asks first: it refuses exactly what slices would raise for
    assert (display >= floor) == ice.can_slice(min_size, step)
    if display < floor and parent:
        with pytest.raises(ValueError):
            ice.slices(parent, min_size, step, random.Random(seed))
        return
    slices = ice.slices(parent, min_size, step, random.Random(seed))
    sizes = [s for s, _ in slices]
    assert parent == sum(sizes)
    assert all(0 < s <= display and 0 == s % step for s in sizes)
    assert all(d >= 0 for _, d in slices)
    if slices:
        assert 0 == slices[0][1]
    # the minimum holds for every slice whenever some cut of the parent allows it
    k = -(-parent // display)
    if parent and k * floor <= parent:
        assert all(s >= floor for s in sizes)


# -- router --------------------------------------------------------------------------------------
def test_router_selects_by_strategy_then_urgency_then_default() -> None:
    router = build_router(
        {
            "default": "aggressive",
            "by_strategy": {"momentum": "iceberg"},
            "by_urgency": {"passive": "passive"},
            "aggressive": {"slippage_ticks": 3, "order_type": "FOK"},
            "passive": {"ttl_ms": 10_000},
            "iceberg": {"display_size_micro": 20 * MICRO, "child": "aggressive"},
        }
    )
    assert "iceberg" == router.select(_opp(strategy="momentum", urgency="passive")).name
    assert "passive" == router.select(_opp(urgency="passive")).name
    assert "aggressive" == router.select(_opp(urgency="whatever")).name
    assert ImmediateAggressive(3, OrderType.FOK) == router.policies["aggressive"]
    assert PassivePosting(ttl_ms=10_000) == router.policies["passive"]
    iceberg = router.policies["iceberg"]
    assert isinstance(iceberg, Iceberg)
    assert (20 * MICRO, router.policies["aggressive"]) == (iceberg.display_size_micro, iceberg.child_policy)


def test_router_defaults() -> None:
    router = build_router({})
    assert {"aggressive", "passive", "iceberg"} == set(router.policies)
    assert router.policies["aggressive"] is router.select(_opp(urgency="passive"))


@pytest.mark.parametrize(
    "config",
    [
        {"default": "sniper"},
        {"by_strategy": {"momentum": "icebreg"}},
        {"routes": {}},
        {"passive": {"ttl": 5}},
        {"iceberg": {"child": "iceberg"}},
        {"aggressive": {"order_type": "GTC"}},
    ],
)
def test_router_config_errors_are_loud(config: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_router(config)


def test_router_rejects_unknown_policy_names_directly() -> None:
    with pytest.raises(ValueError):
        Router({"aggressive": ImmediateAggressive()}, "passive", {}, {})


def test_child_order_is_frozen() -> None:
    child = ChildOrder(MICRO, 500_000, OrderType.FAK, False, 0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        child.price = 1  # type: ignore[misc]
