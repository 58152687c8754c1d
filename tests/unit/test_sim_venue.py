from __future__ import annotations

import random
from collections.abc import Sequence
from typing import NamedTuple

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import require_compiled_book
from polysnipe.adapters.sim import (
    VENUE_ERRORS,
    BookView,
    ConstantLatency,
    JitteredLatency,
    Ledger,
    MatchingEngine,
    PolymarketFeeModel,
    PowerProbQueueModel,
    QueueModel,
    QueuePosition,
    RiskAverseQueueModel,
    SimVenue,
    SimVenueConfig,
    Trade,
    TradeSide,
)
from polysnipe.adapters.sim.execution import SimExecution
from polysnipe.adapters.sim.models import FeedLatency
from polysnipe.adapters.sim.venue import _Claim
from polysnipe.core.book import Book, BookState
from polysnipe.core.events import (
    BookDelta,
    BookSnapshot,
    LastTrade,
    Level,
    MarketEvent,
    PriceChange,
    Side,
    TickSizeChange,
)
from polysnipe.core.fees import fee_value_usdc, taker_fee
from polysnipe.core.market import Market, MarketRegistry
from polysnipe.core.messages import (
    ExecutionReport,
    Liquidity,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderType,
)
from polysnipe.core.ports import ExecutionPort
from polysnipe.core.units import MICRO, ONE

S = MICRO  # one share
YES, NO, COND = "tok-yes", "tok-no", "cond-1"
BUY, SELL = Side.BUY, Side.SELL


def market(fee_rate: int = 0, fee_rebate_rate: int = 0) -> Market:
    return Market(
        condition_id=COND,
        token_ids=(YES, NO),
        outcomes=("Yes", "No"),
        tick_size=10_000,
        min_order_size=5 * S,
        neg_risk=False,
        fee_rate=fee_rate,
        fee_rebate_rate=fee_rebate_rate,
    )


def make_venue(
    *,
    latency: ConstantLatency | JitteredLatency | None = None,
    queue: QueueModel | None = None,
    fee_rate: int = 0,
    fee_rebate_rate: int = 0,
    balances: dict[str, int] | None = None,
    positions: dict[str, dict[str, int]] | None = None,
    seed: int = 7,
    config: SimVenueConfig | None = None,
) -> SimVenue:
    return SimVenue(
        MarketRegistry.of([market(fee_rate, fee_rebate_rate)]),
        latency or ConstantLatency(),
        queue or RiskAverseQueueModel(),
        PolymarketFeeModel(),
        random.Random(seed),
        balances,
        positions,
        config=config,
    )


def snap(
    token: str, bids: Sequence[tuple[int, int]], asks: Sequence[tuple[int, int]], ts: int = 0
) -> BookSnapshot:
    return BookSnapshot(
        ts_ms=ts,
        token_id=token,
        market=COND,
        bids=tuple(Level(p, n * S) for p, n in bids),
        asks=tuple(Level(p, n * S) for p, n in asks),
    )


def change(ts: int, *deltas: tuple[str, Side, int, int]) -> PriceChange:
    return PriceChange(ts, COND, tuple(BookDelta(t, side, p, n * S) for t, side, p, n in deltas))


def trade(ts: int, price: int, shares: int, taker: Side, token: str = YES) -> LastTrade:
    return LastTrade(ts, token, COND, price, shares * S, taker)


_ids = iter(range(10**9))


def order(
    side: Side,
    price: int,
    shares: float,
    order_type: OrderType = OrderType.GTC,
    *,
    token: str = YES,
    post_only: bool = False,
    expiration_ms: int = 0,
    wallet: str = "w1",
    order_id: str | None = None,
) -> OrderRequest:
    return OrderRequest(
        order_id=order_id or f"o{next(_ids)}",
        opportunity_id="opp",
        correlation_id="corr",
        strategy="test",
        routing="test",
        wallet=wallet,
        market=COND,
        token_id=token,
        side=side,
        price=price,
        size=int(shares * S),
        order_type=order_type,
        tick_size=10_000,
        neg_risk=False,
        post_only=post_only,
        expiration_ms=expiration_ms,
    )


def run(venue: SimVenue, req: OrderRequest, now: int = 0) -> list[ExecutionReport]:
    venue.submit(req, now)
    return venue.poll(now)


def fills(reports: Sequence[ExecutionReport]) -> list[tuple[int, int, Liquidity]]:
    return [(r.price, r.size // S, r.liquidity) for r in reports if isinstance(r, OrderFilled)]


def rejection(reports: Sequence[ExecutionReport]) -> str:
    (rej,) = [r for r in reports if isinstance(r, OrderRejected)]
    return rej.venue_message


def standard_book(venue: SimVenue) -> None:
    venue.on_market_event(
        snap(YES, bids=[(390_000, 10), (380_000, 10)], asks=[(400_000, 10), (410_000, 10), (430_000, 10)])
    )


# -- immediate orders ----------------------------------------------------------------------------
def test_fak_walks_levels_up_to_limit_and_cancels_the_rest() -> None:
    venue = make_venue()
    standard_book(venue)
    req = order(BUY, 410_000, 30, OrderType.FAK)
    reports = run(venue, req)
    assert isinstance(reports[0], OrderAccepted)
    assert [(400_000, 10, Liquidity.TAKER), (410_000, 10, Liquidity.TAKER)] == fills(reports)
    assert isinstance(reports[-1], OrderCancelled)
    assert all(r.order_id == req.order_id for r in reports)
    book = venue.book(YES)
    assert book is not None and 430_000 == book.best_ask()
    assert [] == venue.open_orders()


def test_fak_with_nothing_to_match_is_rejected_with_the_venue_text() -> None:
    venue = make_venue()
    standard_book(venue)
    reports = run(venue, order(BUY, 390_000, 10, OrderType.FAK))
    assert VENUE_ERRORS["fak_not_filled"] == rejection(reports)
    assert 1 == len(reports)


def test_fok_fills_fully_or_kills_without_touching_the_book() -> None:
    venue = make_venue()
    standard_book(venue)
    killed = run(venue, order(BUY, 410_000, 25, OrderType.FOK))
    assert "order couldn't be fully filled. FOK orders are fully filled or killed." == rejection(killed)
    assert [] == fills(killed)
    book = venue.book(YES)
    assert book is not None and 10 * S == book.best_ask_size()
    filled = run(venue, order(BUY, 410_000, 15, OrderType.FOK))
    assert [(400_000, 10, Liquidity.TAKER), (410_000, 5, Liquidity.TAKER)] == fills(filled)


def test_sell_walks_bids_down_to_limit() -> None:
    venue = make_venue()
    standard_book(venue)
    reports = run(venue, order(SELL, 380_000, 15, OrderType.FAK))
    assert [(390_000, 10, Liquidity.TAKER), (380_000, 5, Liquidity.TAKER)] == fills(reports)


def test_taken_liquidity_stays_claimed_when_the_feed_shows_the_level_again() -> None:
    venue = make_venue()
    standard_book(venue)
    assert [(400_000, 10, Liquidity.TAKER)] == fills(run(venue, order(BUY, 410_000, 10, OrderType.FAK)))
    # the same displayed size cannot be taken twice
    assert [(410_000, 10, Liquidity.TAKER)] == fills(run(venue, order(BUY, 410_000, 10, OrderType.FAK)))
    # the real market lost 2 of the 10 we took: the other 8 are still ours, not new liquidity
    venue.on_market_event(change(5, (YES, SELL, 400_000, 8)))
    reports = run(venue, order(BUY, 400_000, 10, OrderType.FAK), 5)
    assert VENUE_ERRORS["fak_not_filled"] == rejection(reports)


# -- liquidity we took: claims per level (module doc, Liquidity) ---------------------------------
def test_three_faks_never_fill_more_than_the_level_ever_showed() -> None:
    venue = make_venue()
    venue.on_market_event(snap(YES, bids=[(390_000, 50)], asks=[(400_000, 100)]))
    total = 0
    # the feed keeps touching the level with the real market's total, which never saw our orders
    for ts, shown in ((1, 100), (2, 105), (3, 103)):
        venue.on_market_event(change(ts, (YES, SELL, 400_000, shown)))
        reports = run(venue, order(BUY, 400_000, 100, OrderType.FAK), ts)
        total += sum(size for _, size, _ in fills(reports))
    # 100 shown, then 5 more arrived; the fall to 103 is 2 of ours the real market lost
    assert 105 == total


def test_a_fall_shrinks_the_claim_by_as_much_and_a_rise_is_new_liquidity() -> None:
    venue = make_venue()
    venue.on_market_event(snap(YES, bids=[(390_000, 50)], asks=[(400_000, 30)]))
    assert [(400_000, 10, Liquidity.TAKER)] == fills(run(venue, order(BUY, 400_000, 10, OrderType.FAK)))
    book = venue.book(YES)
    assert book is not None and 20 * S == book.best_ask_size()
    venue.on_market_event(change(1, (YES, SELL, 400_000, 25)))  # 5 of our 10 gone in the real market
    assert 20 * S == book.best_ask_size()
    venue.on_market_event(change(2, (YES, SELL, 400_000, 40)))  # 15 new orders
    assert 35 * S == book.best_ask_size()
    assert [(400_000, 35, Liquidity.TAKER)] == fills(run(venue, order(BUY, 400_000, 50, OrderType.FAK), 2))
    venue.on_market_event(change(3, (YES, SELL, 400_000, 0)))  # the level is gone: so is the claim
    venue.on_market_event(change(4, (YES, SELL, 400_000, 12)))
    assert [(400_000, 12, Liquidity.TAKER)] == fills(run(venue, order(BUY, 400_000, 50, OrderType.FAK), 4))


@pytest.mark.parametrize(
    ("token", "taker", "price"),
    [(YES, BUY, 400_000), (NO, SELL, 600_000)],
    ids=["print-on-yes", "print-on-no-mirrored"],
)
def test_a_print_and_the_fall_it_announces_explain_the_claim_once(
    token: str, taker: Side, price: int
) -> None:
    venue = make_venue()
    venue.on_market_event(snap(YES, bids=[(390_000, 50)], asks=[(400_000, 30)]))
    assert [(400_000, 30, Liquidity.TAKER)] == fills(run(venue, order(BUY, 400_000, 30, OrderType.FAK)))
    # the real market trades 10 at 0.40: the front of its queue, which is 10 of the 30 we took
    venue.on_market_event(trade(1, price, 10, taker, token=token))
    venue.on_market_event(change(1, (YES, SELL, 400_000, 20)))  # the fall that print announced
    # 20 of ours are still displayed: counting the print and its fall twice would free 10
    assert VENUE_ERRORS["fak_not_filled"] == rejection(run(venue, order(BUY, 400_000, 20, OrderType.FAK), 1))
    venue.on_market_event(change(2, (YES, SELL, 400_000, 5)))  # 15 more of ours lost
    venue.on_market_event(change(3, (YES, SELL, 400_000, 12)))  # 7 new
    assert [(400_000, 7, Liquidity.TAKER)] == fills(run(venue, order(BUY, 400_000, 20, OrderType.FAK), 3))


def test_a_print_reaches_resting_orders_only_past_the_size_we_took() -> None:
    venue = make_venue()
    venue.on_market_event(snap(YES, bids=[(390_000, 50)], asks=[(400_000, 30)]))
    run(venue, order(BUY, 400_000, 10, OrderType.FAK))  # claims the front 10 of the 30
    ask = order(SELL, 400_000, 10, wallet="w2")
    run(venue, ask)
    assert 20 * S == venue.open_orders()[0].queue_ahead
    # a real buyer of 10 traded the 10 we had already taken: nobody ahead of our ask moved
    venue.on_market_event(trade(1, 400_000, 10, BUY))
    venue.on_market_event(change(1, (YES, SELL, 400_000, 20)))
    assert [] == fills(venue.poll(1))
    assert 20 * S == venue.open_orders()[0].queue_ahead
    venue.on_market_event(trade(2, 400_000, 25, BUY))  # 20 ahead of us, then 5 of ours
    assert [(400_000, 5, Liquidity.MAKER)] == fills(venue.poll(2))


def test_a_print_through_the_level_explains_all_of_the_claim_there() -> None:
    venue = make_venue()
    venue.on_market_event(snap(YES, bids=[(390_000, 50)], asks=[(400_000, 30), (410_000, 30)]))
    run(venue, order(BUY, 400_000, 10, OrderType.FAK))  # claims the front 10 at 0.40
    run(venue, order(SELL, 400_000, 10, wallet="w2"))
    # a buyer printing at 0.41 swept 0.40: every order there traded, the 10 we took included
    venue.on_market_event(trade(1, 410_000, 4, BUY))
    assert [(400_000, 4, Liquidity.MAKER)] == fills(venue.poll(1))
    # so a print at 0.40 now is new orders trading: none of it is absorbed by our old claim
    venue.on_market_event(trade(2, 400_000, 6, BUY))
    assert [(400_000, 6, Liquidity.MAKER)] == fills(venue.poll(2))


def test_a_snapshot_keeps_what_it_can_still_explain_of_the_claim() -> None:
    venue = make_venue()
    venue.on_market_event(snap(YES, bids=[(390_000, 50)], asks=[(400_000, 30), (410_000, 10)]))
    assert [(400_000, 20, Liquidity.TAKER)] == fills(run(venue, order(BUY, 400_000, 20, OrderType.FAK)))
    # the snapshot shows 5 fewer at 0.40: 5 of our 20 gone, 15 still ours
    venue.on_market_event(snap(YES, bids=[(390_000, 50)], asks=[(400_000, 25), (410_000, 10)], ts=1))
    assert [(400_000, 10, Liquidity.TAKER), (410_000, 10, Liquidity.TAKER)] == fills(
        run(venue, order(BUY, 410_000, 40, OrderType.FAK), 1)
    )
    # 5 more of ours gone: the 20 shown are all ours
    venue.on_market_event(snap(YES, bids=[(390_000, 50)], asks=[(400_000, 20)], ts=2))
    book = venue.book(YES)
    assert book is not None and 0 == book.size_at(SELL, 400_000)
    # a snapshot without the level: the claim goes with it, and what shows there later is new
    venue.on_market_event(snap(YES, bids=[(390_000, 50)], asks=[(420_000, 5)], ts=3))
    venue.on_market_event(snap(YES, bids=[(390_000, 50)], asks=[(400_000, 30)], ts=4))
    assert [(400_000, 30, Liquidity.TAKER)] == fills(run(venue, order(BUY, 400_000, 40, OrderType.FAK), 4))


def test_a_claim_on_one_view_holds_when_the_other_view_is_read() -> None:
    venue = make_venue()
    # the two books show the same orders: YES asks 0.40 x10 are NO bids 0.60 x10
    venue.on_market_event(snap(YES, bids=[(300_000, 10)], asks=[(400_000, 10)]))
    venue.on_market_event(snap(NO, bids=[(600_000, 10)], asks=[(700_000, 10)]))
    assert [(400_000, 10, Liquidity.TAKER)] == fills(run(venue, order(BUY, 400_000, 10, OrderType.FAK)))
    # a NO seller reads the NO book: those bids are the asks we just took
    assert VENUE_ERRORS["fak_not_filled"] == rejection(
        run(venue, order(SELL, 600_000, 10, OrderType.FAK, token=NO))
    )
    # the venue publishes both tokens' entries for one change; each book's claim follows its own
    venue.on_market_event(change(1, (YES, SELL, 400_000, 4), (NO, BUY, 600_000, 4)))
    venue.on_market_event(change(2, (YES, SELL, 400_000, 9), (NO, BUY, 600_000, 9)))
    assert [(600_000, 5, Liquidity.TAKER)] == fills(
        run(venue, order(SELL, 600_000, 10, OrderType.FAK, token=NO), 2)
    )
    assert VENUE_ERRORS["fak_not_filled"] == rejection(run(venue, order(BUY, 400_000, 10, OrderType.FAK), 2))


def test_a_claim_taken_through_the_mirror_holds_when_the_own_book_arrives() -> None:
    venue = make_venue()
    venue.on_market_event(snap(YES, bids=[(400_000, 30)], asks=[(450_000, 30)]))
    # no NO book yet: a NO buyer reads the YES bids mirrored (NO asks 0.60 x30)
    assert [(600_000, 20, Liquidity.TAKER)] == fills(
        run(venue, order(BUY, 600_000, 20, OrderType.FAK, token=NO))
    )
    venue.on_market_event(snap(NO, bids=[(550_000, 30)], asks=[(600_000, 30)], ts=1))
    no_book = venue.book(NO)
    assert no_book is not None and 10 * S == no_book.size_at(SELL, 600_000)
    assert [(600_000, 10, Liquidity.TAKER)] == fills(
        run(venue, order(BUY, 600_000, 30, OrderType.FAK, token=NO), 1)
    )
    yes_book = venue.book(YES)
    assert yes_book is not None and 0 == yes_book.size_at(BUY, 400_000)


# -- resting orders ------------------------------------------------------------------------------
def test_gtc_partial_fill_rests_the_remainder_behind_the_visible_queue() -> None:
    venue = make_venue()
    standard_book(venue)
    venue.on_market_event(change(1, (YES, BUY, 400_000, 0)))
    req = order(BUY, 400_000, 15)
    reports = run(venue, req, 1)
    assert isinstance(reports[0], OrderAccepted)
    assert [(400_000, 10, Liquidity.TAKER)] == fills(reports)
    (open_,) = venue.open_orders()
    assert (req, 10 * S, 5 * S, 0, False) == (
        open_.order,
        open_.filled,
        open_.remaining,
        open_.queue_ahead,
        open_.mirrored,
    )


def test_cancel_resting_order_and_ignore_unknown_or_finished() -> None:
    venue = make_venue()
    standard_book(venue)
    req = order(BUY, 380_000, 5)
    run(venue, req)
    venue.cancel(req.order_id, 1)
    assert [OrderCancelled(req.order_id, 1, "cancelled")] == venue.poll(1)
    venue.cancel(req.order_id, 2)
    venue.cancel("never-seen", 2)
    assert [] == venue.poll(2)
    assert [] == venue.open_orders()


def test_gtd_rests_until_expiration_then_expires() -> None:
    venue = make_venue()
    standard_book(venue)
    req = order(BUY, 380_000, 5, OrderType.GTD, expiration_ms=1_000)
    assert [OrderAccepted(req.order_id, 0, req.order_id)] == run(venue, req)
    assert [] == venue.poll(999)
    assert [OrderExpired(req.order_id, 1_000)] == venue.poll(1_000)
    assert [] == venue.open_orders()


def test_gtd_expiry_happens_before_a_market_event_at_the_same_time() -> None:
    venue = make_venue()
    standard_book(venue)
    req = order(BUY, 380_000, 5, OrderType.GTD, expiration_ms=1_000)
    run(venue, req)
    venue.on_market_event(trade(1_000, 370_000, 50, SELL))  # would have filled it
    assert [OrderExpired(req.order_id, 1_000)] == venue.poll(1_000)


@pytest.mark.parametrize("expiration_ms", [0, 500, 1_000])
def test_gtd_already_expired_on_arrival_is_rejected(expiration_ms: int) -> None:
    venue = make_venue()
    standard_book(venue)
    reports = run(venue, order(BUY, 380_000, 5, OrderType.GTD, expiration_ms=expiration_ms), 1_000)
    assert "invalid expiration" == rejection(reports)


def test_gtd_minimum_lead_is_configurable() -> None:
    venue = make_venue(config=SimVenueConfig(min_gtd_lead_ms=60_000))
    standard_book(venue)
    assert "invalid expiration" == rejection(
        run(venue, order(BUY, 380_000, 5, OrderType.GTD, expiration_ms=59_000))
    )
    ok = run(venue, order(BUY, 380_000, 5, OrderType.GTD, expiration_ms=61_000))
    assert isinstance(ok[0], OrderAccepted)


# -- validation ----------------------------------------------------------------------------------
def test_post_only_that_would_cross_is_rejected_and_one_that_does_not_rests() -> None:
    venue = make_venue()
    standard_book(venue)
    crossing = run(venue, order(BUY, 400_000, 5, post_only=True))
    assert "invalid post-only order: order crosses book" == rejection(crossing)
    resting = run(venue, order(BUY, 390_000, 5, post_only=True))
    assert [OrderAccepted] == [type(r) for r in resting]
    assert 1 == len(venue.open_orders())


def test_post_only_is_only_for_gtc_and_gtd() -> None:
    venue = make_venue()
    standard_book(venue)
    reports = run(venue, order(BUY, 390_000, 5, OrderType.FAK, post_only=True))
    assert VENUE_ERRORS["post_only_order_type"] == rejection(reports)


@pytest.mark.parametrize("price", [405_000, 0, ONE, -10_000, 995_000])
def test_off_tick_or_out_of_range_price_is_rejected(price: int) -> None:
    venue = make_venue()
    standard_book(venue)
    reports = run(venue, order(BUY, price, 5))
    assert "order is invalid. Price breaks minimum tick size rules" == rejection(reports)


def test_size_below_market_minimum_is_rejected() -> None:
    venue = make_venue()
    standard_book(venue)
    reports = run(venue, order(BUY, 380_000, 4.99))
    assert "order is invalid. Size lower than the minimum" == rejection(reports)


def test_unknown_token_and_duplicate_order_are_rejected() -> None:
    venue = make_venue()
    standard_book(venue)
    assert VENUE_ERRORS["invalid_token"] == rejection(run(venue, order(BUY, 380_000, 5, token="other")))
    run(venue, order(BUY, 380_000, 5, order_id="dup"))
    assert VENUE_ERRORS["duplicated"] == rejection(run(venue, order(BUY, 380_000, 5, order_id="dup")))


def test_tick_change_applies_to_both_tokens_and_to_orders_already_in_flight() -> None:
    venue = make_venue(latency=ConstantLatency(order_ms=50))
    standard_book(venue)
    venue.on_market_event(TickSizeChange(10, YES, COND, 10_000, 1_000))
    venue.submit(order(BUY, 385_000, 5), 20)
    venue.submit(order(SELL, 615_000, 5, token=NO, post_only=True), 20)
    accepted = venue.poll(70)
    assert [OrderAccepted, OrderAccepted] == [type(r) for r in accepted]
    # submitted on the fine tick, but the tick coarsens before it arrives: checked at arrival
    venue.submit(order(BUY, 386_000, 5), 100)
    venue.on_market_event(TickSizeChange(120, YES, COND, 1_000, 10_000))
    assert "order is invalid. Price breaks minimum tick size rules" == rejection(venue.poll(150))


def test_insufficient_balance_counts_what_open_orders_reserve() -> None:
    venue = make_venue(balances={"w1": 10 * S}, positions={"w1": {YES: 20 * S}})
    standard_book(venue)
    insufficient = "not enough balance / allowance"
    assert insufficient == rejection(run(venue, order(BUY, 380_000, 30)))  # 11.40 > 10
    run(venue, order(BUY, 380_000, 20))  # rests, reserves 7.60
    assert insufficient == rejection(run(venue, order(BUY, 370_000, 7)))  # 7.60 + 2.59 > 10
    assert [OrderAccepted] == [type(r) for r in run(venue, order(BUY, 370_000, 6))]  # 7.60 + 2.22
    assert insufficient == rejection(run(venue, order(SELL, 500_000, 21)))
    run(venue, order(SELL, 500_000, 15))  # rests, reserves 15 shares
    assert insufficient == rejection(run(venue, order(SELL, 500_000, 6)))
    assert 20 * S == venue.ledger.shares("w1", YES)


def test_fills_update_balances_with_taker_fees() -> None:
    venue = make_venue(fee_rate=40_000, balances={"w1": 100 * S})
    standard_book(venue)
    reports = run(venue, order(BUY, 400_000, 10, OrderType.FAK))
    (fill,) = [r for r in reports if isinstance(r, OrderFilled)]
    fee = taker_fee(BUY, 10 * S, 400_000, 40_000)
    assert (0, fee.fee_shares) == (fill.fee_usdc, fill.fee_shares)
    assert fee.fee_shares > 0
    assert 96 * S == venue.ledger.usdc("w1")
    assert 10 * S - fee.fee_shares == venue.ledger.shares("w1", YES)
    sold = run(venue, order(SELL, 390_000, 5, OrderType.FAK))
    (sell_fill,) = [r for r in sold if isinstance(r, OrderFilled)]
    assert 0 == sell_fill.fee_shares
    assert 96 * S + 1_950_000 - sell_fill.fee_usdc == venue.ledger.usdc("w1")


def test_maker_fills_pay_no_fee() -> None:
    venue = make_venue(fee_rate=40_000)
    standard_book(venue)
    run(venue, order(SELL, 420_000, 5))
    venue.on_market_event(trade(5, 430_000, 10, BUY))  # through our price
    ((price, size, liq),) = fills(venue.poll(5))
    assert (420_000, 5, Liquidity.MAKER) == (price, size, liq)


@pytest.mark.parametrize("rebate_rate", [0, 250_000])
def test_maker_fills_earn_the_markets_share_of_the_taker_fee(rebate_rate: int) -> None:
    venue = make_venue(fee_rate=40_000, fee_rebate_rate=rebate_rate, positions={"w1": {YES: 5 * S}})
    standard_book(venue)
    run(venue, order(SELL, 420_000, 5))
    venue.on_market_event(trade(5, 430_000, 10, BUY))
    (fill,) = [r for r in venue.poll(5) if isinstance(r, OrderFilled)]
    # the taker fee of this match in USDC (PROTOCOL.md 11.1) times the rebate rate, rounded down
    expected = fee_value_usdc(5 * S, 420_000, 40_000) * rebate_rate // S
    assert (0, 0) == (fill.fee_usdc, fill.fee_shares)
    assert expected == fill.rebate_usdc
    assert (rebate_rate > 0) == (fill.rebate_usdc > 0)
    assert 2_100_000 + expected == venue.ledger.usdc("w1")


# -- queue position ------------------------------------------------------------------------------
def _rest_ask_behind(venue: SimVenue, visible: int) -> OrderRequest:
    venue.on_market_event(snap(YES, bids=[(390_000, 10)], asks=[(450_000, visible)]))
    req = order(SELL, 450_000, 10)
    run(venue, req)
    return req


def test_resting_order_fills_only_after_the_size_ahead_has_traded() -> None:
    venue = make_venue()
    _rest_ask_behind(venue, 100)
    assert 100 * S == venue.open_orders()[0].queue_ahead
    venue.on_market_event(trade(1, 450_000, 60, BUY))
    assert [] == venue.poll(1)
    assert 40 * S == venue.open_orders()[0].queue_ahead
    venue.on_market_event(trade(2, 450_000, 45, BUY))
    assert [(450_000, 5, Liquidity.MAKER)] == fills(venue.poll(2))
    venue.on_market_event(trade(3, 450_000, 20, BUY))
    assert [(450_000, 5, Liquidity.MAKER)] == fills(venue.poll(3))
    assert [] == venue.open_orders()


def test_trades_on_the_other_side_or_away_from_our_price_do_not_fill() -> None:
    venue = make_venue()
    _rest_ask_behind(venue, 0)
    venue.on_market_event(trade(1, 440_000, 50, BUY))  # below our ask
    venue.on_market_event(trade(2, 450_000, 50, SELL))  # a seller hit bids
    assert [] == venue.poll(2)


def test_risk_averse_queue_ignores_cancels_ahead() -> None:
    venue = make_venue(queue=RiskAverseQueueModel())
    _rest_ask_behind(venue, 100)
    venue.on_market_event(change(1, (YES, SELL, 450_000, 300)))
    venue.on_market_event(change(2, (YES, SELL, 450_000, 200)))
    assert 100 * S == venue.open_orders()[0].queue_ahead
    venue.on_market_event(change(3, (YES, SELL, 450_000, 30)))
    assert 30 * S == venue.open_orders()[0].queue_ahead  # a level never shows less than is ahead


def test_prob_queue_attributes_cancels_by_power_law() -> None:
    venue = make_venue(queue=PowerProbQueueModel(power=2))
    _rest_ask_behind(venue, 100)
    venue.on_market_event(change(1, (YES, SELL, 450_000, 400)))  # 300 joins behind us
    venue.on_market_event(change(2, (YES, SELL, 450_000, 300)))
    # front share = 100^2 / (100^2 + 300^2) = 1/10 of the 100 cancelled
    assert 90 * S == venue.open_orders()[0].queue_ahead
    venue.on_market_event(change(3, (YES, SELL, 450_000, 100)))
    # 200 cancelled, front 90 vs back 210: 200 * 8100 / (8100 + 44100) = 31.03...
    assert 90 * S - 200 * S * 8100 // 52_200 == venue.open_orders()[0].queue_ahead


def test_prob_queue_does_not_count_a_trade_twice() -> None:
    venue = make_venue(queue=PowerProbQueueModel(power=2))
    _rest_ask_behind(venue, 100)
    venue.on_market_event(trade(1, 450_000, 30, BUY))
    venue.on_market_event(change(1, (YES, SELL, 450_000, 70)))  # the feed reports the same trade
    assert 70 * S == venue.open_orders()[0].queue_ahead


def test_queue_position_model_units() -> None:
    pos = QueuePosition(50)
    model = PowerProbQueueModel(power=1)
    assert 0 == model.on_trade(pos, 20)
    assert 10 == model.on_trade(pos, 40)
    assert 0 == pos.ahead
    pos = model.join(100)
    model.on_depth_change(pos, 200, 100)  # proportional: half of 100 from the front
    assert 50 == pos.ahead
    pos = model.join(100)
    model.on_depth_change(pos, 110, 0)  # the back holds only 10: the rest came from the front
    assert 0 == pos.ahead
    with pytest.raises(ValueError):
        PowerProbQueueModel(power=0)


def test_snapshot_moves_the_queue_like_a_depth_update() -> None:
    venue = make_venue(queue=PowerProbQueueModel(power=1))
    _rest_ask_behind(venue, 100)
    venue.on_market_event(change(1, (YES, SELL, 450_000, 200)))
    venue.on_market_event(snap(YES, bids=[(390_000, 10)], asks=[(450_000, 100)], ts=2))
    assert 50 * S == venue.open_orders()[0].queue_ahead  # proportional: half the cancels were ahead


def test_trade_through_our_price_fills_regardless_of_queue() -> None:
    venue = make_venue()
    standard_book(venue)
    run(venue, order(BUY, 390_000, 10))
    assert 10 * S == venue.open_orders()[0].queue_ahead
    venue.on_market_event(trade(1, 380_000, 4, SELL))
    assert [(390_000, 4, Liquidity.MAKER)] == fills(venue.poll(1))


def test_replayed_liquidity_crossing_a_resting_order_fills_it() -> None:
    venue = make_venue()
    standard_book(venue)
    run(venue, order(BUY, 390_000, 10))
    venue.on_market_event(change(1, (YES, SELL, 385_000, 6)))
    assert [(390_000, 6, Liquidity.MAKER)] == fills(venue.poll(1))
    book = venue.book(YES)
    assert book is not None and 0 == book.size_at(SELL, 385_000)
    assert 4 * S == venue.open_orders()[0].remaining


# -- complement mirror ---------------------------------------------------------------------------
def _no_book_only(venue: SimVenue) -> None:
    # YES asks 0.40 x10, 0.42 x10 and YES bids 0.35 x10 seen through the NO book
    venue.on_market_event(snap(NO, bids=[(600_000, 10), (580_000, 10)], asks=[(650_000, 10)]))


def test_order_on_token_without_snapshot_matches_the_complement_mirrored() -> None:
    venue = make_venue()
    _no_book_only(venue)
    req = order(BUY, 410_000, 20, OrderType.FAK)
    reports = run(venue, req)
    (fill,) = [r for r in reports if isinstance(r, OrderFilled)]
    assert (YES, BUY, 400_000, 10 * S) == (fill.token_id, fill.side, fill.price, fill.size)
    no_book = venue.book(NO)
    assert no_book is not None and 580_000 == no_book.best_bid()
    sold = run(venue, order(SELL, 350_000, 5, OrderType.FAK))
    assert [(350_000, 5, Liquidity.TAKER)] == fills(sold)


def test_resting_order_in_mirrored_view_fills_from_complement_flow() -> None:
    venue = make_venue()
    _no_book_only(venue)
    req = order(BUY, 380_000, 10)
    run(venue, req)
    (open_,) = venue.open_orders()
    assert open_.mirrored and 0 == open_.queue_ahead
    venue.on_market_event(trade(1, 620_000, 4, BUY, token=NO))  # a NO buyer at 0.62 hits YES bids at 0.38
    (fill,) = [r for r in venue.poll(1) if isinstance(r, OrderFilled)]
    assert (YES, BUY, 380_000, 4 * S, Liquidity.MAKER) == (
        fill.token_id,
        fill.side,
        fill.price,
        fill.size,
        fill.liquidity,
    )


def test_own_book_is_preferred_once_trusted() -> None:
    venue = make_venue()
    _no_book_only(venue)
    venue.on_market_event(snap(YES, bids=[(300_000, 10)], asks=[(450_000, 10)]))
    assert [(450_000, 10, Liquidity.TAKER)] == fills(run(venue, order(BUY, 450_000, 10, OrderType.FAK)))


def test_no_book_at_all_has_nothing_to_match() -> None:
    venue = make_venue()
    assert VENUE_ERRORS["fak_not_filled"] == rejection(run(venue, order(BUY, 500_000, 5, OrderType.FAK)))


# -- latency and determinism ---------------------------------------------------------------------
def test_venue_is_an_execution_port() -> None:
    port: ExecutionPort = SimExecution(make_venue(), MarketRegistry.of([market()]))
    assert [] == port.due(0)


def test_order_is_matched_against_the_book_at_arrival_not_at_submit() -> None:
    venue = make_venue(latency=ConstantLatency(order_ms=100, ack_ms=20))
    standard_book(venue)
    req = order(BUY, 420_000, 10, OrderType.FAK)
    venue.submit(req, 0)
    venue.on_market_event(change(50, (YES, SELL, 400_000, 0)))  # the 0.40 ask leaves in flight
    venue.on_market_event(change(150, (YES, SELL, 410_000, 0)))  # after arrival: too late to matter
    assert [] == venue.poll(119)
    reports = venue.poll(120)
    assert [(410_000, 10, Liquidity.TAKER)] == fills(reports)
    assert all(100 == r.ts_ms for r in reports)


def test_cancel_in_flight_reaches_the_venue_after_the_order() -> None:
    venue = make_venue(latency=ConstantLatency(order_ms=10))
    standard_book(venue)
    req = order(BUY, 380_000, 5)
    venue.submit(req, 0)
    venue.cancel(req.order_id, 1)
    assert [OrderAccepted, OrderCancelled] == [type(r) for r in venue.poll(20)]


def _scenario(seed: int) -> list[ExecutionReport]:
    venue = make_venue(
        latency=JitteredLatency(order_ms=5, ack_ms=5, jitter_ms=30, spike_prob=0.1, spike_ms=200),
        queue=PowerProbQueueModel(),
        fee_rate=40_000,
        seed=seed,
    )
    rng = random.Random(1234)
    out: list[ExecutionReport] = []
    standard_book(venue)
    for i in range(300):
        now = i * 10
        price = 10_000 * rng.randint(35, 45)
        if rng.random() < 0.5:
            side = BUY if rng.random() < 0.5 else SELL
            venue.on_market_event(change(now, (YES, side, price, rng.randint(0, 30))))
        else:
            venue.on_market_event(trade(now, price, rng.randint(1, 20), BUY if rng.random() < 0.5 else SELL))
        if i % 7 == 0:
            kind = rng.choice([OrderType.GTC, OrderType.FAK, OrderType.FOK])
            venue.submit(
                order(rng.choice([BUY, SELL]), price, rng.randint(5, 20), kind, order_id=f"d{i}"), now
            )
        out.extend(venue.poll(now))
    out.extend(venue.poll(10**9))
    return out


def test_same_inputs_and_seed_give_identical_reports() -> None:
    first = _scenario(42)
    assert any(isinstance(r, OrderFilled) for r in first)
    assert first == _scenario(42)


def _polled(seed: int, *, skip_until_wake: bool) -> list[tuple[int, ExecutionReport]]:
    """A random session of market events, orders, cancels and GTD expiries; (poll time, report)."""
    venue = make_venue(latency=JitteredLatency(order_ms=5, ack_ms=5, jitter_ms=20), seed=seed)
    rng = random.Random(seed)
    out: list[tuple[int, ExecutionReport]] = []
    standard_book(venue)
    for i in range(200):
        now = i * 7 + rng.randint(0, 6)
        price = 10_000 * rng.randint(36, 44)
        if rng.random() < 0.6:
            venue.on_market_event(change(now, (YES, rng.choice([BUY, SELL]), price, rng.randint(0, 30))))
        if i % 5 == 0:
            kind = rng.choice([OrderType.GTC, OrderType.GTD, OrderType.FAK])
            side = rng.choice([BUY, SELL])
            if kind is OrderType.GTD:  # away from the book, so it rests until it expires
                price = 300_000 if side is BUY else 500_000
            expiry = now + rng.randint(30, 90) if kind is OrderType.GTD else 0
            venue.submit(order(side, price, 5, kind, expiration_ms=expiry, order_id=f"s{i}"), now)
        if i % 11 == 0 and venue.open_orders():
            venue.cancel(venue.open_orders()[0].order.order_id, now)
        if skip_until_wake and now < venue.wake_ms:
            continue
        out.extend((now, r) for r in venue.poll(now))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_polls_before_wake_time_can_be_skipped(seed: int) -> None:
    # the backtest loop only polls once `wake_ms` has come: that must change nothing
    every = _polled(seed, skip_until_wake=False)
    assert any(isinstance(r, OrderExpired) for _, r in every)
    assert every == _polled(seed, skip_until_wake=True)


def test_wake_time_follows_requests_expiries_and_deliveries() -> None:
    venue = make_venue(latency=ConstantLatency(order_ms=10, ack_ms=5))
    standard_book(venue)
    assert venue.wake_ms > 10**12  # nothing in flight
    venue.submit(order(BUY, 380_000, 5, OrderType.GTD, expiration_ms=100), 0)
    assert 10 == venue.wake_ms  # the order's arrival
    assert [] == venue.poll(9)
    assert [] == venue.poll(10)  # arrives and is accepted; the ack is delivered 5 ms later
    assert 15 == venue.wake_ms
    assert [OrderAccepted] == [type(r) for r in venue.poll(15)]
    assert 100 == venue.wake_ms  # the GTD deadline
    assert [] == venue.poll(100)
    assert [OrderExpired] == [type(r) for r in venue.poll(105)]


# -- several owners ------------------------------------------------------------------------------
def test_resting_orders_of_different_owners_match_each_other() -> None:
    venue = make_venue()
    standard_book(venue)
    maker = order(SELL, 400_000, 10, wallet="alice")
    run(venue, maker)  # rests behind the replayed 10 at 0.40
    venue.on_market_event(change(1, (YES, SELL, 400_000, 0)))  # the replayed 0.40 asks leave
    reports = run(venue, order(BUY, 400_000, 6, OrderType.FAK, wallet="bob"), 1)
    got = {
        (r.order_id == maker.order_id, r.price, r.size // S, r.liquidity)
        for r in reports
        if isinstance(r, OrderFilled)
    }
    assert {(False, 400_000, 6, Liquidity.TAKER), (True, 400_000, 6, Liquidity.MAKER)} == got
    # an owner never trades with itself
    assert VENUE_ERRORS["fak_not_filled"] == rejection(
        run(venue, order(BUY, 400_000, 5, OrderType.FAK, wallet="alice"), 1)
    )


# -- across outcomes: one economic book per market -----------------------------------------------
def _empty_books(venue: SimVenue) -> None:
    venue.on_market_event(snap(YES, bids=[], asks=[]))
    venue.on_market_event(snap(NO, bids=[], asks=[]))


def _fill_rows(reports: Sequence[ExecutionReport]) -> list[tuple[str, str, Side, int, int, Liquidity]]:
    return [
        (r.order_id, r.token_id, r.side, r.price, r.size // S, r.liquidity)
        for r in reports
        if isinstance(r, OrderFilled)
    ]


@pytest.mark.parametrize("no_price", [400_000, 450_000])
def test_mint_a_yes_buy_and_a_no_buy_each_at_the_resting_price(no_price: int) -> None:
    venue = make_venue(balances={"w1": 100 * S, "w2": 100 * S})
    _empty_books(venue)
    yes_buy = order(BUY, 600_000, 10, wallet="w1")
    assert [OrderAccepted] == [type(r) for r in run(venue, yes_buy)]
    no_buy = order(BUY, no_price, 10, token=NO, wallet="w2")
    reports = run(venue, no_buy)
    assert [
        (no_buy.order_id, NO, BUY, 400_000, 10, Liquidity.TAKER),
        (yes_buy.order_id, YES, BUY, 600_000, 10, Liquidity.MAKER),
    ] == _fill_rows(reports)
    assert [] == venue.open_orders()
    ledger = venue.ledger
    assert (94 * S, {YES: 10 * S}) == (ledger.usdc("w1"), ledger.positions("w1"))
    assert (96 * S, {NO: 10 * S}) == (ledger.usdc("w2"), ledger.positions("w2"))
    assert 94 * S == ledger.free_usdc("w1")


def test_mint_needs_the_prices_to_cover_a_pair() -> None:
    venue = make_venue()
    _empty_books(venue)
    run(venue, order(BUY, 600_000, 10, wallet="w1"))
    assert VENUE_ERRORS["fak_not_filled"] == rejection(
        run(venue, order(BUY, 390_000, 10, OrderType.FAK, token=NO, wallet="w2"))
    )


def test_merge_a_yes_sell_and_a_no_sell_each_at_its_own_price() -> None:
    venue = make_venue(balances={"w1": 0, "w2": 0}, positions={"w1": {YES: 10 * S}, "w2": {NO: 10 * S}})
    _empty_books(venue)
    yes_sell = order(SELL, 450_000, 10, wallet="w1")
    run(venue, yes_sell)
    assert 0 == venue.ledger.free_shares("w1", YES)
    no_sell = order(SELL, 500_000, 10, OrderType.FAK, token=NO, wallet="w2")
    reports = run(venue, no_sell)
    # the NO seller asked 0.50 and gets 0.55: the pair merges into 1.00, the maker keeps its 0.45
    assert [
        (no_sell.order_id, NO, SELL, 550_000, 10, Liquidity.TAKER),
        (yes_sell.order_id, YES, SELL, 450_000, 10, Liquidity.MAKER),
    ] == _fill_rows(reports)
    ledger = venue.ledger
    assert (4_500_000, {}) == (ledger.usdc("w1"), ledger.positions("w1"))
    assert (5_500_000, {}) == (ledger.usdc("w2"), ledger.positions("w2"))


def test_merge_needs_the_prices_within_a_pair() -> None:
    venue = make_venue()
    _empty_books(venue)
    run(venue, order(SELL, 450_000, 10, wallet="w1"))
    assert VENUE_ERRORS["fak_not_filled"] == rejection(
        run(venue, order(SELL, 560_000, 10, OrderType.FAK, token=NO, wallet="w2"))
    )


def test_complementary_match_between_orders_resting_in_different_views() -> None:
    venue = make_venue(balances={"w1": 0, "w2": 100 * S}, positions={"w1": {YES: 10 * S}})
    yes_sell = order(SELL, 600_000, 10, wallet="w1")
    run(venue, yes_sell)  # no book yet: rests in the YES view
    venue.on_market_event(snap(NO, bids=[(300_000, 10)], asks=[(800_000, 10)]))
    yes_buy = order(BUY, 650_000, 6, OrderType.FAK, wallet="w2")  # matched in the NO view, mirrored
    reports = run(venue, yes_buy)
    assert [
        (yes_buy.order_id, YES, BUY, 600_000, 6, Liquidity.TAKER),
        (yes_sell.order_id, YES, SELL, 600_000, 6, Liquidity.MAKER),
    ] == _fill_rows(reports)
    ledger = venue.ledger
    assert (3_600_000, 4 * S, 0) == (
        ledger.usdc("w1"),
        ledger.shares("w1", YES),
        ledger.free_shares("w1", YES),
    )
    assert (96_400_000, 6 * S) == (ledger.usdc("w2"), ledger.shares("w2", YES))


def test_a_cheaper_equivalent_no_bid_comes_before_a_same_token_ask() -> None:
    venue = make_venue()
    _empty_books(venue)
    yes_ask = order(SELL, 600_000, 10, wallet="alice")
    no_bid = order(BUY, 450_000, 10, token=NO, wallet="carol")  # a YES ask at 0.55
    run(venue, yes_ask)
    run(venue, no_bid)
    taker = order(BUY, 600_000, 15, OrderType.FAK, wallet="bob")
    reports = run(venue, taker)
    assert [
        (taker.order_id, YES, BUY, 550_000, 10, Liquidity.TAKER),
        (no_bid.order_id, NO, BUY, 450_000, 10, Liquidity.MAKER),
        (taker.order_id, YES, BUY, 600_000, 5, Liquidity.TAKER),
        (yes_ask.order_id, YES, SELL, 600_000, 5, Liquidity.MAKER),
    ] == _fill_rows(reports)


@pytest.mark.parametrize("no_first", [False, True])
def test_time_priority_at_one_level_spans_both_tokens(no_first: bool) -> None:
    venue = make_venue()
    _empty_books(venue)
    yes_ask = order(SELL, 600_000, 10, wallet="alice")
    no_bid = order(BUY, 400_000, 10, token=NO, wallet="carol")
    for req in (no_bid, yes_ask) if no_first else (yes_ask, no_bid):
        run(venue, req)
    reports = run(venue, order(BUY, 600_000, 15, OrderType.FAK, wallet="bob"))
    makers = [(oid, n) for oid, _, _, _, n, liq in _fill_rows(reports) if liq is Liquidity.MAKER]
    first, second = (no_bid, yes_ask) if no_first else (yes_ask, no_bid)
    assert [(first.order_id, 10), (second.order_id, 5)] == makers
    # both makers met at one level are one taker fill: the venue's one trade with two maker_orders
    takers = [(p, n) for _, _, _, p, n, liq in _fill_rows(reports) if liq is Liquidity.TAKER]
    assert [(600_000, 15)] == takers


def test_partial_mints_leave_the_rest_resting_and_release_reservations() -> None:
    venue = make_venue(balances={"w1": 10 * S, "w2": 10 * S, "w3": 10 * S})
    _empty_books(venue)
    yes_buy = order(BUY, 600_000, 10, wallet="w1")
    run(venue, yes_buy)
    assert 4 * S == venue.ledger.free_usdc("w1")
    run(venue, order(BUY, 400_000, 6, token=NO, wallet="w2"))
    (open_,) = venue.open_orders()
    assert (yes_buy, 6 * S, 4 * S) == (open_.order, open_.filled, open_.remaining)
    # paid 3.60 for 6; 4 x 0.60 stays reserved
    assert (6_400_000, 4 * S) == (venue.ledger.usdc("w1"), venue.ledger.free_usdc("w1"))
    rest = order(BUY, 420_000, 10, token=NO, wallet="w3")
    reports = run(venue, rest)
    assert [
        (rest.order_id, NO, BUY, 400_000, 4, Liquidity.TAKER),
        (yes_buy.order_id, YES, BUY, 600_000, 4, Liquidity.MAKER),
    ] == _fill_rows(reports)
    (open_,) = venue.open_orders()
    assert (rest, 4 * S, 6 * S) == (open_.order, open_.filled, open_.remaining)
    ledger = venue.ledger
    assert (4 * S, 4 * S, {YES: 10 * S}) == (
        ledger.usdc("w1"),
        ledger.free_usdc("w1"),
        ledger.positions("w1"),
    )
    assert (7_600_000, {NO: 6 * S}) == (ledger.usdc("w2"), ledger.positions("w2"))
    # w3 paid 1.60 for 4 and reserves 6 x 0.42 = 2.52 for the rest
    assert (8_400_000, 8_400_000 - 2_520_000) == (ledger.usdc("w3"), ledger.free_usdc("w3"))


def _mirrored_books_with_a_no_bid(venue: SimVenue) -> OrderRequest:
    # the two replayed books show the same orders: YES asks 0.60 x10 are the NO bids 0.40 x10
    venue.on_market_event(snap(YES, bids=[(400_000, 10)], asks=[(600_000, 10)]))
    venue.on_market_event(snap(NO, bids=[(400_000, 10)], asks=[(600_000, 10)]))
    no_bid = order(BUY, 450_000, 10, token=NO, wallet="carol")  # rests: a YES ask at 0.55
    assert [OrderAccepted] == [type(r) for r in run(venue, no_bid)]
    return no_bid


def test_fok_is_all_or_nothing_across_replayed_and_resting_liquidity_counted_once() -> None:
    venue = make_venue()
    no_bid = _mirrored_books_with_a_no_bid(venue)
    # 10 from carol's NO bid + 10 replayed; the NO book's mirror of those 10 is not more liquidity
    killed = run(venue, order(BUY, 600_000, 21, OrderType.FOK, wallet="bob"))
    assert VENUE_ERRORS["fok_not_filled"] == rejection(killed)
    yes_book, no_book = venue.book(YES), venue.book(NO)
    assert yes_book is not None and no_book is not None
    assert (10 * S, 1) == (yes_book.best_ask_size(), len(venue.open_orders()))
    taker = order(BUY, 600_000, 20, OrderType.FOK, wallet="bob")
    assert [
        (taker.order_id, YES, BUY, 550_000, 10, Liquidity.TAKER),
        (no_bid.order_id, NO, BUY, 450_000, 10, Liquidity.MAKER),
        (taker.order_id, YES, BUY, 600_000, 10, Liquidity.TAKER),
    ] == _fill_rows(run(venue, taker))
    # taken through the YES book, claimed in both: the NO bids at 0.40 are the same orders
    assert (None, None) == (yes_book.best_ask(), no_book.best_bid())


def test_fak_takes_both_sources_and_cancels_the_rest() -> None:
    venue = make_venue()
    _mirrored_books_with_a_no_bid(venue)
    reports = run(venue, order(BUY, 600_000, 30, OrderType.FAK, wallet="bob"))
    assert [(550_000, 10), (450_000, 10), (600_000, 10)] == [(p, n) for p, n, _ in fills(reports)]
    assert isinstance(reports[-1], OrderCancelled)


def test_post_only_crossing_through_the_complement_is_rejected() -> None:
    venue = make_venue()
    _empty_books(venue)
    run(venue, order(BUY, 600_000, 10, wallet="w1"))
    crossing = run(venue, order(BUY, 400_000, 10, token=NO, wallet="w2", post_only=True))
    assert VENUE_ERRORS["post_only_would_cross"] == rejection(crossing)
    resting = run(venue, order(BUY, 390_000, 10, token=NO, wallet="w2", post_only=True))
    assert [OrderAccepted] == [type(r) for r in resting]
    assert 2 == len(venue.open_orders())


def test_an_owner_never_mints_or_merges_with_itself() -> None:
    venue = make_venue(positions={"w1": {YES: 10 * S, NO: 10 * S}})
    _empty_books(venue)
    run(venue, order(BUY, 600_000, 10, wallet="w1"))
    run(venue, order(SELL, 400_000, 10, wallet="w1"))
    assert VENUE_ERRORS["fak_not_filled"] == rejection(
        run(venue, order(BUY, 400_000, 10, OrderType.FAK, token=NO, wallet="w1"))
    )
    assert VENUE_ERRORS["fak_not_filled"] == rejection(
        run(venue, order(SELL, 600_000, 10, OrderType.FAK, token=NO, wallet="w1"))
    )
    # another owner mints with it
    reports = run(venue, order(BUY, 400_000, 10, OrderType.FAK, token=NO, wallet="w2"))
    assert [(400_000, 10, Liquidity.TAKER), (600_000, 10, Liquidity.MAKER)] == fills(reports)


def test_a_consumed_replayed_level_moves_up_orders_queued_behind_its_mirror() -> None:
    venue = make_venue()
    venue.on_market_event(snap(YES, bids=[(400_000, 10)], asks=[(600_000, 10)]))
    venue.on_market_event(snap(NO, bids=[(400_000, 10)], asks=[(600_000, 10)]))
    run(venue, order(BUY, 400_000, 10, token=NO, wallet="carol"))  # behind the replayed NO bids
    assert 10 * S == venue.open_orders()[0].queue_ahead
    run(venue, order(BUY, 600_000, 10, OrderType.FAK, wallet="bob"))  # takes the YES asks = those bids
    assert 0 == venue.open_orders()[0].queue_ahead
    reports = run(venue, order(BUY, 600_000, 5, OrderType.FAK, wallet="bob"))
    assert [(600_000, 5, Liquidity.TAKER), (400_000, 5, Liquidity.MAKER)] == fills(reports)


# -- property ------------------------------------------------------------------------------------
_px = st.integers(min_value=1, max_value=99).map(lambda t: t * 10_000)
_levels = st.lists(st.tuples(_px, st.integers(min_value=1, max_value=50)), max_size=8)
_orders = st.lists(
    st.tuples(
        st.sampled_from([BUY, SELL]),
        _px,
        st.integers(min_value=5, max_value=80),
        st.sampled_from(list(OrderType)),
        st.sampled_from([YES, NO]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(_levels, _levels, _orders, st.sampled_from([YES, NO]), st.lists(_px, max_size=6))
def test_fills_never_exceed_size_and_respect_the_limit(
    bids: list[tuple[int, int]],
    asks: list[tuple[int, int]],
    orders: list[tuple[Side, int, int, OrderType, str]],
    snap_token: str,
    trade_prices: list[int],
) -> None:
    venue = make_venue(queue=PowerProbQueueModel())
    events: list[MarketEvent] = [snap(snap_token, bids, asks)]
    reqs: dict[str, OrderRequest] = {}
    for i, (side, price, shares, kind, token) in enumerate(orders):
        expiration = 500 if kind is OrderType.GTD else 0
        reqs[f"p{i}"] = order(
            side, price, shares, kind, token=token, expiration_ms=expiration, order_id=f"p{i}"
        )
    reports: list[ExecutionReport] = []
    for event in events:
        venue.on_market_event(event)
    for i, req in enumerate(reqs.values()):
        venue.submit(req, i)
        reports.extend(venue.poll(i))
    for j, price in enumerate(trade_prices):
        venue.on_market_event(trade(100 + j, price, 30, BUY if j % 2 else SELL, token=snap_token))
        reports.extend(venue.poll(100 + j))
    reports.extend(venue.poll(10_000))
    filled: dict[str, int] = {}
    for r in reports:
        if not isinstance(r, OrderFilled):
            continue
        req = reqs[r.order_id]
        filled[r.order_id] = filled.get(r.order_id, 0) + r.size
        assert (req.token_id, req.side) == (r.token_id, r.side)
        assert r.size > 0
        assert r.price <= req.price if req.side is BUY else r.price >= req.price
    for order_id, total in filled.items():
        assert total <= reqs[order_id].size
        if reqs[order_id].order_type is OrderType.FOK:
            assert total == reqs[order_id].size


@pytest.mark.parametrize("seed", range(8))
def test_free_balances_never_go_negative_and_reservations_are_released(seed: int) -> None:
    rng = random.Random(seed)
    venue = make_venue(
        latency=JitteredLatency(order_ms=1, ack_ms=1, jitter_ms=5),
        queue=PowerProbQueueModel(),
        fee_rate=40_000,
        balances={"w1": 300 * S, "w2": 300 * S},
        positions={"w1": {YES: 100 * S, NO: 100 * S}, "w2": {YES: 100 * S}},
        seed=seed,
    )
    venue.on_market_event(
        snap(
            rng.choice([YES, NO]),
            bids=[(10_000 * rng.randint(20, 49), rng.randint(1, 50)) for _ in range(5)],
            asks=[(10_000 * rng.randint(51, 80), rng.randint(1, 50)) for _ in range(5)],
        )
    )
    ledger = venue.ledger
    for i in range(150):
        now = i * 5
        price = 10_000 * rng.randint(1, 99)
        roll = rng.random()
        if roll < 0.3:
            side = rng.choice([BUY, SELL])
            venue.on_market_event(change(now, (rng.choice([YES, NO]), side, price, rng.randint(0, 40))))
        elif roll < 0.5:
            taker = rng.choice([BUY, SELL])
            venue.on_market_event(trade(now, price, rng.randint(1, 30), taker, token=rng.choice([YES, NO])))
        elif roll < 0.85:
            kind = rng.choice(list(OrderType))
            req = order(
                rng.choice([BUY, SELL]),
                price,
                rng.randint(5, 40),
                kind,
                token=rng.choice([YES, NO]),
                wallet=rng.choice(["w1", "w2"]),
                post_only=not kind.is_immediate and rng.random() < 0.3,
                expiration_ms=now + rng.randint(-10, 300),
            )
            venue.submit(req, now)
        elif open_ := venue.open_orders():
            venue.cancel(rng.choice(open_).order.order_id, now)
        venue.poll(now)
        for wallet in ("w1", "w2"):
            assert ledger.free_usdc(wallet) >= 0
            assert ledger.free_shares(wallet, YES) >= 0
            assert ledger.free_shares(wallet, NO) >= 0
    venue.poll(5_000)
    for o in venue.open_orders():
        venue.cancel(o.order.order_id, 5_000)
    venue.poll(10_000)
    assert [] == venue.open_orders()
    for wallet in ("w1", "w2"):
        assert ledger.usdc(wallet) == ledger.free_usdc(wallet)
        assert ledger.shares(wallet, YES) == ledger.free_shares(wallet, YES)
        assert ledger.shares(wallet, NO) == ledger.free_shares(wallet, NO)


# -- property: replayed liquidity is never taken twice ------------------------------------------
_ASK_PX = (400_000, 410_000)
_BID_PX = (380_000, 390_000)


class _Level(NamedTuple):
    """The feed's new total at a YES level (and at its NO mirror when both books are replayed)."""

    side: Side
    price: int
    shares: int


class _Print(NamedTuple):
    token: str
    taker: Side
    price: int
    shares: int


class _Snap(NamedTuple):
    """YES price -> shares; the NO snapshot is its mirror."""

    asks: dict[int, int]
    bids: dict[int, int]


class _Fak(NamedTuple):
    token: str
    side: Side
    price: int
    shares: int


def _on(token: str, yes_price: int) -> int:
    return yes_price if token == YES else ONE - yes_price


def _fak_at(token: str, yes_level: tuple[Side, int], shares: int) -> _Fak:
    """A FAK that takes the YES level (side, price) and any better one, through either token."""
    side, price = yes_level
    taker = side.opposite  # a YES buyer lifts YES asks
    return _Fak(token, taker if token == YES else taker.opposite, _on(token, price), shares)


_yes_levels = st.one_of(
    st.tuples(st.just(SELL), st.sampled_from(_ASK_PX)), st.tuples(st.just(BUY), st.sampled_from(_BID_PX))
)
_yes_asks = st.dictionaries(st.sampled_from(_ASK_PX), st.integers(1, 30), max_size=2)
_yes_bids = st.dictionaries(st.sampled_from(_BID_PX), st.integers(1, 30), max_size=2)
_first_asks = st.dictionaries(st.sampled_from(_ASK_PX), st.integers(1, 30), min_size=1, max_size=2)
_first_bids = st.dictionaries(st.sampled_from(_BID_PX), st.integers(1, 30), min_size=1, max_size=2)
_tokens = st.sampled_from([YES, NO])
_steps = st.lists(
    st.one_of(
        st.builds(lambda lv, n: _Level(lv[0], lv[1], n), _yes_levels, st.integers(0, 30)),
        st.builds(
            lambda t, lv, n: _Print(t, lv[0].opposite if t == YES else lv[0], _on(t, lv[1]), n),
            _tokens,
            _yes_levels,
            st.integers(1, 30),
        ),
        st.builds(_Snap, _yes_asks, _yes_bids),
        st.builds(_fak_at, _tokens, _yes_levels, st.integers(5, 40)),
        st.builds(_fak_at, _tokens, _yes_levels, st.integers(5, 40)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_first_asks, _first_bids, _steps, st.booleans())
# the case: the feed shows the real market's total again after each take
@example(
    {400_000: 10},
    {390_000: 10},
    [_fak_at(YES, (SELL, 400_000), 10), _Level(SELL, 400_000, 10), _fak_at(NO, (SELL, 400_000), 10)],
    True,
)
def test_fills_at_a_level_never_exceed_what_the_feed_ever_showed_arriving_there(
    asks: dict[int, int],
    bids: dict[int, int],
    steps: list[_Level | _Print | _Snap | _Fak],
    both_books: bool,
) -> None:
    """Replayed fills per YES-book level <= its first total plus every rise since (module doc).

    With `both_books` the NO book is replayed too, as its mirror (the venue publishes both tokens'
    entries), so orders read either view; without it NO orders read the YES book mirrored.
    """
    venue = make_venue(queue=PowerProbQueueModel())
    shown: dict[tuple[Side, int], int] = {}
    arrived: dict[tuple[Side, int], int] = {}
    taken: dict[tuple[Side, int], int] = {}

    def feed(side: Side, price: int, size: int) -> None:
        key = (side, price)
        arrived[key] = arrived.get(key, 0) + max(size - shown.get(key, 0), 0)
        shown[key] = size

    def replay_snap(ts: int, book: _Snap) -> None:
        for px in _ASK_PX:
            feed(SELL, px, book.asks.get(px, 0) * S)
        for px in _BID_PX:
            feed(BUY, px, book.bids.get(px, 0) * S)
        venue.on_market_event(snap(YES, list(book.bids.items()), list(book.asks.items()), ts))
        if both_books:
            no_bids = [(ONE - p, n) for p, n in book.asks.items()]
            venue.on_market_event(snap(NO, no_bids, [(ONE - p, n) for p, n in book.bids.items()], ts))

    replay_snap(0, _Snap(asks, bids))
    for ts, step in enumerate(steps, start=1):
        if isinstance(step, _Level):
            feed(step.side, step.price, step.shares * S)
            deltas = [(YES, step.side, step.price, step.shares)]
            if both_books:
                deltas.append((NO, step.side.opposite, ONE - step.price, step.shares))
            venue.on_market_event(change(ts, *deltas))
        elif isinstance(step, _Print):
            venue.on_market_event(trade(ts, step.price, step.shares, step.taker, token=step.token))
        elif isinstance(step, _Snap):
            replay_snap(ts, step)
        else:
            req = order(step.side, step.price, step.shares, OrderType.FAK, token=step.token)
            for r in run(venue, req, ts):
                if isinstance(r, OrderFilled):
                    # the YES level it took: a YES buy lifts YES asks, a NO buy hits YES bids at 1-q
                    hit = step.side.opposite if step.token == YES else step.side
                    key = (hit, _on(step.token, r.price))
                    taken[key] = taken.get(key, 0) + r.size
    for key, size in taken.items():
        assert size <= arrived.get(key, 0), key


# -- property: many owners, both tokens, no replayed liquidity -------------------------------------
OWNERS = ("w1", "w2", "w3")
_stream = st.lists(
    st.tuples(
        st.sampled_from(OWNERS),
        st.sampled_from([YES, NO]),
        st.sampled_from([BUY, SELL]),
        # near 0.50 on both tokens, so YES and NO orders often meet
        st.integers(min_value=40, max_value=60).map(lambda t: t * 10_000),
        st.integers(min_value=5, max_value=30),
        st.sampled_from(list(OrderType)),
        st.booleans(),  # post-only (kept only where the venue allows it)
        st.integers(min_value=0, max_value=9),  # 0: cancel a resting order instead of placing
    ),
    min_size=1,
    max_size=25,
)


def _yes_terms(req: OrderRequest) -> tuple[Side, int]:
    """Where an order sits in the market's one book: YES BUY p is a bid at p, NO BUY q an ask at 1-q."""
    if req.token_id == YES:
        return req.side, req.price
    return req.side.opposite, ONE - req.price


@settings(max_examples=80, deadline=None)
@given(_stream, st.sampled_from(["none", YES, NO, "both"]), st.sampled_from([0, 40_000]))
def test_multi_owner_streams_conserve_collateral_and_never_self_trade(
    stream: list[tuple[str, str, Side, int, int, OrderType, bool, int]], snapshots: str, fee_rate: int
) -> None:
    held = {YES: 40 * S, NO: 40 * S}
    venue = make_venue(
        fee_rate=fee_rate,
        balances=dict.fromkeys(OWNERS, 60 * S),
        positions=dict.fromkeys(OWNERS, held),
    )
    for token in (YES, NO):
        if snapshots in (token, "both"):
            venue.on_market_event(snap(token, bids=[], asks=[]))
    ledger = venue.ledger
    reqs: dict[str, OrderRequest] = {}
    filled: dict[str, int] = {}
    fee_usdc = fee_yes = fee_no = 0
    for i, (wallet, token, side, price, shares, kind, post_only, roll) in enumerate(stream):
        if roll == 0 and (open_ := venue.open_orders()):
            venue.cancel(open_[i % len(open_)].order.order_id, i)
        else:
            req = order(
                side,
                price,
                shares,
                kind,
                token=token,
                wallet=wallet,
                post_only=post_only and not kind.is_immediate,
                expiration_ms=10**6,
                order_id=f"s{i}",
            )
            reqs[req.order_id] = req
            venue.submit(req, i)
        taker_wallet, unmatched = "", 0
        for r in venue.poll(i):
            if not isinstance(r, OrderFilled):
                continue
            req = reqs[r.order_id]
            assert (req.token_id, req.side) == (r.token_id, r.side)
            assert r.size > 0
            assert r.price <= req.price if req.side is BUY else r.price >= req.price
            filled[r.order_id] = filled.get(r.order_id, 0) + r.size
            assert filled[r.order_id] <= req.size
            fee_usdc += r.fee_usdc
            if r.token_id == YES:
                fee_yes += r.fee_shares
            else:
                fee_no += r.fee_shares
            if r.liquidity is Liquidity.TAKER:
                # with no replayed liquidity every taker fill is met by makers of other owners
                assert 0 == unmatched
                taker_wallet, unmatched = req.wallet, r.size
            else:
                assert (r.price, 0) == (req.price, r.fee_usdc + r.fee_shares)
                assert taker_wallet != req.wallet
                assert r.size <= unmatched
                unmatched -= r.size
        assert 0 == unmatched
        # collateral is only split (mint) or merged, never created: YES and NO stay paired, and
        # USDC plus pairs (valued at 1) is constant, once fees are added back
        usdc = sum(ledger.usdc(w) for w in OWNERS) + fee_usdc
        yes = sum(ledger.shares(w, YES) for w in OWNERS) + fee_yes
        no = sum(ledger.shares(w, NO) for w in OWNERS) + fee_no
        assert (yes, 180 * S + 120 * S) == (no, usdc + yes)
        for w in OWNERS:
            assert ledger.free_usdc(w) >= 0
            assert min(ledger.free_shares(w, YES), ledger.free_shares(w, NO)) >= 0
        # what rests never crosses an order of another owner in the one book
        resting = [(o.order.wallet, *_yes_terms(o.order)) for o in venue.open_orders()]
        for bid_owner, bid_side, bid in resting:
            for ask_owner, ask_side, ask in resting:
                if bid_side is BUY and ask_side is SELL and bid_owner != ask_owner:
                    assert bid < ask
    for order_id, total in filled.items():
        if reqs[order_id].order_type is OrderType.FOK:
            assert total == reqs[order_id].size


# -- trade records: who traded with whom -----------------------------------------------------------
def make_engine(fee_rate: int = 0) -> MatchingEngine:
    return MatchingEngine(
        MarketRegistry.of([market(fee_rate)]),
        RiskAverseQueueModel(),
        PolymarketFeeModel(),
        Ledger(),
        record_trades=True,
    )


def place(
    engine: MatchingEngine, req: OrderRequest, now: int = 0
) -> tuple[list[ExecutionReport], list[Trade]]:
    engine.place(req, now)
    return engine.drain(), engine.drain_trades()


Row = tuple[str | None, str, str, Side, int, int]


def row(side: TradeSide) -> Row:
    return (side.order_id, side.wallet, side.token_id, side.side, side.price, side.size // S)


def rows(trades: Sequence[Trade]) -> list[tuple[Row, list[Row]]]:
    return [(row(t.taker), [row(m) for m in t.makers]) for t in trades]


def test_taking_displayed_liquidity_is_one_trade_per_level_with_a_replayed_maker() -> None:
    engine = make_engine()
    engine.apply(snap(YES, bids=[], asks=[(400_000, 10), (410_000, 10)]))
    req = order(BUY, 410_000, 15, OrderType.FAK, wallet="bob")
    reports, trades = place(engine, req)
    assert [
        ((req.order_id, "bob", YES, BUY, 400_000, 10), [(None, "", YES, SELL, 400_000, 10)]),
        ((req.order_id, "bob", YES, BUY, 410_000, 5), [(None, "", YES, SELL, 410_000, 5)]),
    ] == rows(trades)
    assert [t.trade_id for t in trades] == [r.trade_id for r in reports if isinstance(r, OrderFilled)]
    assert [YES, YES] == [t.token_id for t in trades]


def test_displayed_liquidity_of_the_complement_is_a_replayed_maker_on_the_other_token() -> None:
    engine = make_engine()
    _no_book_only_engine(engine)
    req = order(BUY, 400_000, 10, OrderType.FAK, wallet="bob")
    _, trades = place(engine, req)
    # the YES buyer took a NO bid at 0.60: a mint with an outside NO buyer
    assert [((req.order_id, "bob", YES, BUY, 400_000, 10), [(None, "", NO, BUY, 600_000, 10)])] == rows(
        trades
    )


def _no_book_only_engine(engine: MatchingEngine) -> None:
    engine.apply(snap(NO, bids=[(600_000, 10), (580_000, 10)], asks=[(650_000, 10)]))


@pytest.mark.parametrize(
    ("resting", "taking", "expected"),
    [
        # complementary: a buy and a sell of one token
        (
            (SELL, YES, 600_000),
            (BUY, YES, 600_000),
            ((BUY, YES, 600_000), (SELL, YES, 600_000)),
        ),
        # MINT: a YES buy and a NO buy, each at its own price
        ((BUY, YES, 600_000), (BUY, NO, 400_000), ((BUY, NO, 400_000), (BUY, YES, 600_000))),
        # MERGE: a YES sell and a NO sell; the NO seller asked 0.50 and gets the pair's other 0.55
        ((SELL, YES, 450_000), (SELL, NO, 500_000), ((SELL, NO, 550_000), (SELL, YES, 450_000))),
    ],
    ids=["complementary", "mint", "merge"],
)
def test_a_match_between_orders_names_the_taker_and_the_maker(
    resting: tuple[Side, str, int], taking: tuple[Side, str, int], expected: tuple[tuple[Side, str, int], ...]
) -> None:
    engine = make_engine()
    _empty_books_engine(engine)
    maker = order(resting[0], resting[2], 10, token=resting[1], wallet="alice")
    assert ([], []) == ([r for r in place(engine, maker)[0] if isinstance(r, OrderFilled)], [])
    taker = order(taking[0], taking[2], 10, OrderType.FAK, token=taking[1], wallet="bob")
    reports, trades = place(engine, taker)
    (taker_terms, maker_terms) = expected
    assert [
        (
            (taker.order_id, "bob", taker_terms[1], taker_terms[0], taker_terms[2], 10),
            [(maker.order_id, "alice", maker_terms[1], maker_terms[0], maker_terms[2], 10)],
        )
    ] == rows(trades)
    (trade,) = trades
    assert {trade.trade_id} == {r.trade_id for r in reports if isinstance(r, OrderFilled)}
    assert COND == trade.market


def _empty_books_engine(engine: MatchingEngine) -> None:
    engine.apply(snap(YES, bids=[], asks=[]))
    engine.apply(snap(NO, bids=[], asks=[]))


def test_one_taker_meeting_makers_on_both_outcomes_is_one_trade() -> None:
    engine = make_engine()
    _empty_books_engine(engine)
    sell_yes = order(SELL, 600_000, 5, wallet="alice")
    buy_no = order(BUY, 400_000, 6, token=NO, wallet="carol")  # also a YES ask at 0.60
    place(engine, sell_yes)
    place(engine, buy_no)
    taker = order(BUY, 600_000, 11, OrderType.FAK, wallet="bob")
    _, trades = place(engine, taker)
    assert [
        (
            (taker.order_id, "bob", YES, BUY, 600_000, 11),
            [
                (sell_yes.order_id, "alice", YES, SELL, 600_000, 5),
                (buy_no.order_id, "carol", NO, BUY, 400_000, 6),
            ],
        )
    ] == rows(trades)


def test_a_replayed_trade_reaching_two_resting_orders_is_one_trade_with_a_replayed_taker() -> None:
    engine = make_engine()
    engine.apply(snap(YES, bids=[(390_000, 10)], asks=[(400_000, 10)]))
    a = order(SELL, 400_000, 5, wallet="alice")
    c = order(SELL, 400_000, 6, wallet="carol")
    place(engine, a)
    place(engine, c)
    engine.apply(trade(1, 410_000, 20, BUY))  # a buyer trading through 0.40 reaches both
    fills_ = [r for r in engine.drain() if isinstance(r, OrderFilled)]
    trades = engine.drain_trades()
    assert [
        (
            (None, "", YES, BUY, 410_000, 11),
            [(a.order_id, "alice", YES, SELL, 400_000, 5), (c.order_id, "carol", YES, SELL, 400_000, 6)],
        )
    ] == rows(trades)
    assert {trades[0].trade_id} == {f.trade_id for f in fills_}


def test_replayed_liquidity_crossing_a_resting_order_is_a_replayed_taker_at_its_price() -> None:
    engine = make_engine()
    engine.apply(snap(YES, bids=[(380_000, 10)], asks=[(400_000, 10)]))
    bid = order(BUY, 390_000, 10, wallet="alice")
    place(engine, bid)
    engine.apply(change(1, (YES, SELL, 385_000, 6)))
    assert [((None, "", YES, SELL, 390_000, 6), [(bid.order_id, "alice", YES, BUY, 390_000, 6)])] == rows(
        engine.drain_trades()
    )


def test_a_backtest_engine_keeps_no_trade_records() -> None:
    engine = MatchingEngine(
        MarketRegistry.of([market()]), RiskAverseQueueModel(), PolymarketFeeModel(), Ledger()
    )
    engine.apply(snap(YES, bids=[], asks=[(400_000, 10)]))
    engine.place(order(BUY, 400_000, 5, OrderType.FAK), 0)
    assert [OrderAccepted, OrderFilled] == [type(r) for r in engine.drain()]
    assert [] == engine.drain_trades()


_ops = st.lists(
    st.tuples(
        st.sampled_from(["order", "order", "order", "book", "print", "cancel"]),
        st.sampled_from(OWNERS),
        st.sampled_from([YES, NO]),
        st.sampled_from([BUY, SELL]),
        st.integers(min_value=40, max_value=60).map(lambda t: t * 10_000),
        st.integers(min_value=5, max_value=30),
        st.sampled_from(list(OrderType)),
    ),
    min_size=1,
    max_size=30,
)


def _in_terms_of(token: str, side: TradeSide) -> tuple[Side, int]:
    """A side as seen from `token`'s book: the other token's BUY at q is a SELL at 1 - q."""
    if side.token_id == token:
        return side.side, side.price
    return side.side.opposite, ONE - side.price


@settings(max_examples=80, deadline=None)
@given(_ops, st.sampled_from([0, 40_000]))
def test_every_fill_is_one_side_of_exactly_one_trade_and_every_trade_crosses(
    ops: list[tuple[str, str, str, Side, int, int, OrderType]], fee_rate: int
) -> None:
    engine = make_engine(fee_rate)
    for i, (op, owner, token, side, price, shares, kind) in enumerate(ops):
        if op == "order":
            req = order(
                side, price, shares, kind, token=token, wallet=owner, expiration_ms=10**6, order_id=f"e{i}"
            )
            engine.place(req, i)
        elif op == "book":
            level = [(price, shares)]
            engine.apply(snap(token, level if side is BUY else [], level if side is SELL else [], ts=i))
        elif op == "print":
            engine.apply(trade(i, price, shares, side, token=token))
        elif open_ := engine.open_orders():
            engine.cancel(open_[i % len(open_)].order.order_id, i)
        fills_ = [r for r in engine.drain() if isinstance(r, OrderFilled)]
        trades = engine.drain_trades()
        order_sides = [
            (t.trade_id, s) for t in trades for s in (t.taker, *t.makers) if s.order_id is not None
        ]
        assert [
            (f.trade_id, f.order_id, f.token_id, f.side, f.price, f.size, f.fee_usdc, f.fee_shares)
            for f in fills_
        ] == [
            (tid, s.order_id, s.token_id, s.side, s.price, s.size, s.fee_usdc, s.fee_shares)
            for tid, s in order_sides
        ]
        for t in trades:
            taker = t.taker
            assert t.makers and taker.size == sum(m.size for m in t.makers)
            replayed = [s for s in (taker, *t.makers) if s.order_id is None]
            # replayed flow never trades with itself, and pays no fee
            assert len(replayed) <= 1 and all(
                (s.wallet, s.fee_usdc, s.fee_shares) == ("", 0, 0) for s in replayed
            )
            assert len(t.makers) == 1 or taker.order_id is not None or not replayed[1:]
            for m in t.makers:
                assert 0 == m.fee_usdc + m.fee_shares
                if m.order_id is not None and taker.order_id is not None:
                    assert m.wallet != taker.wallet
                m_side, m_price = _in_terms_of(taker.token_id, m)
                assert taker.side.opposite is m_side
                if taker.order_id is not None:
                    assert taker.price == m_price  # an arriving order trades at the maker's price
                else:
                    assert taker.price >= m_price if taker.side is BUY else taker.price <= m_price


def test_book_view_merges_the_replayed_view_and_resting_orders_of_both_outcomes() -> None:
    engine = make_engine()
    engine.apply(snap(NO, bids=[(600_000, 10)], asks=[(650_000, 7)]))  # YES has none: its view mirrors NO
    place(engine, order(SELL, 420_000, 5, wallet="alice"))
    place(engine, order(BUY, 500_000, 6, token=NO, wallet="bob"))
    assert BookView(YES, 10_000, {350_000: 7 * S}, {400_000: 10 * S, 420_000: 5 * S, 500_000: 6 * S}) == (
        engine.book_view(YES)
    )
    no_view = engine.book_view(NO)
    assert (
        BookView(NO, 10_000, {600_000: 10 * S, 580_000: 5 * S, 500_000: 6 * S}, {650_000: 7 * S}) == no_view
    )
    assert no_view is not None and (600_000, 650_000) == (no_view.best_bid(), no_view.best_ask())
    assert None is engine.book_view("unknown-token")


def test_timestamps_at_or_past_the_never_mark_cannot_make_the_venue_spin() -> None:
    # the venue uses 1 << 62 as "never": an event or an order at or past it used to loop forever
    far = 1 << 62
    venue = make_venue(latency=ConstantLatency(order_ms=5, ack_ms=5))
    venue.on_market_event(snap(YES, bids=[(390_000, 10)], asks=[(400_000, 10)], ts=far))
    assert [] == venue.poll(far)
    taker = order(BUY, 400_000, 5, OrderType.FAK)
    gtd = order(BUY, 300_000, 5, OrderType.GTD, expiration_ms=far + 1_000)
    venue.submit(taker, far)
    venue.submit(gtd, far)
    assert [] == venue.poll(far + 9)
    assert [OrderAccepted, OrderFilled, OrderAccepted] == [type(r) for r in venue.poll(far + 10)]
    venue.on_market_event(change(far + 1_000, (YES, BUY, 390_000, 0)))
    assert [OrderExpired] == [type(r) for r in venue.poll(1 << 70)]
    assert ([], 1 << 62) == (venue.open_orders(), venue.wake_ms)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 50), st.integers(0, 5_000), st.integers(0, 2**32))
def test_feed_latency_draws_are_the_delays_delay_ms_gives(base_ms: int, jitter_ms: int, seed: int) -> None:
    # the backtest's fast draw must not change a single delay (goldens), on this Python or the next
    model = FeedLatency(base_ms=base_ms, jitter_ms=jitter_ms)
    slow, fast = random.Random(seed), random.Random(seed)
    draw = model.draws(fast)
    assert [model.delay_ms(slow) for _ in range(200)] == [draw() for _ in range(200)]
    assert slow.random() == fast.random()


class _FakeTok:
    """What apply_plain reads of the venue's _Tok (its claims are the venue's own)."""

    __slots__ = ("book", "claims", "resting")

    def __init__(self, book: Book, resting: int, claims: tuple[dict[int, _Claim], dict[int, _Claim]]) -> None:
        self.book, self.resting, self.claims = book, resting, claims


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(("a", "b", "c")),
            st.sampled_from([Side.BUY, Side.SELL]),
            st.integers(4_990, 5_010).map(lambda i: i * 100),
            st.integers(0, 50),
        ),
        max_size=12,
    ),
    st.lists(
        st.tuples(
            st.sampled_from(("a", "b", "c")),
            st.booleans(),
            st.integers(0, 1),
            st.sets(st.integers(4_990, 5_010).map(lambda i: i * 100), max_size=3),
            st.sets(st.integers(4_990, 5_010).map(lambda i: i * 100), max_size=3),
        ),
        max_size=3,
        unique_by=lambda t: t[0],
    ),
    st.integers(-1, 13),
)
def test_the_compiled_plain_delta_loop_is_the_python_one(
    raw: list[tuple[str, Side, int, int]],
    toks: list[tuple[str, bool, int, set[int], set[int]]],
    start: int,
) -> None:
    # it stops at the same delta (unknown token, resting order, claim at that price) with the books the same
    require_compiled_book()
    from polysnipe.adapters.sim import _venue
    from polysnipe.adapters.sim.venue import _apply_plain
    from polysnipe.core._book import DenseBook

    changes = tuple(BookDelta(token, side, price, size) for token, side, price, size in raw)

    def make() -> dict[str, _FakeTok]:
        out = {}
        for token, dense, resting, bid_claims, ask_claims in toks:
            book: Book = DenseBook(token, 100) if dense else BookState(token, 100)
            book.apply_snapshot(BookSnapshot(0, token, "m", (Level(500_000, 5),), (Level(501_000, 5),), "h"))
            claims = ({p: _claim(p) for p in bid_claims}, {p: _claim(p) for p in ask_claims})
            out[token] = _FakeTok(book, resting, claims)
        return out

    def _claim(price: int) -> _Claim:
        # some of it traded already, some still ours: a fall or a rise moves both (_Claim.see)
        c = _Claim(20 + price % 7)
        c.held, c.printed = price % 5, price % 3
        return c

    compiled, python = make(), make()
    assert _apply_plain(python, changes, 7, start) == _venue.apply_plain(compiled, changes, 7, start)  # type: ignore[arg-type]
    for token, tok in compiled.items():
        other = python[token]
        assert (other.book.levels(Side.BUY), other.book.levels(Side.SELL)) == (
            tok.book.levels(Side.BUY),
            tok.book.levels(Side.SELL),
        )
        assert [{p: (c.shown, c.held, c.printed) for p, c in side.items()} for side in other.claims] == [
            {p: (c.shown, c.held, c.printed) for p, c in side.items()} for side in tok.claims
        ]
