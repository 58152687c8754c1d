"""Markets with a matching delay (`seconds_delay`): the simulated venue holds marketable orders."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from kit import T0, WALLET, market, order_request, snapshot
from polysnipe.adapters.metadata import load_documents
from polysnipe.adapters.sim import ConstantLatency, PolymarketFeeModel, RiskAverseQueueModel, SimVenue
from polysnipe.core.events import Side
from polysnipe.core.market import MarketRegistry
from polysnipe.core.messages import (
    ExecutionReport,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderType,
)
from polysnipe.core.units import MICRO

DELAY = 3_000
BALANCE = 1_000 * MICRO


def venue(delay_ms: int = DELAY) -> SimVenue:
    v = SimVenue(
        MarketRegistry.of([market(match_delay_ms=delay_ms)]),
        ConstantLatency(0, 0),
        RiskAverseQueueModel(),
        PolymarketFeeModel(),
        random.Random(1),
        {WALLET: BALANCE},
    )
    v.on_market_event(snapshot(T0, ask=500_000, size=50 * MICRO))
    return v


def kinds(reports: Sequence[ExecutionReport]) -> list[str]:
    return [type(r).__name__ for r in reports]


def test_a_marketable_order_is_accepted_at_once_and_matched_after_the_delay() -> None:
    v = venue()
    v.submit(order_request(size=10 * MICRO), T0)
    assert ["OrderAccepted"] == kinds(v.poll(T0))
    # held: its funds are promised, nothing matched yet
    assert BALANCE - 5 * MICRO == v.ledger.free_usdc(WALLET)
    assert [] == v.poll(T0 + DELAY - 1)
    [filled] = v.poll(T0 + DELAY)
    assert isinstance(filled, OrderFilled)
    assert (T0 + DELAY, 10 * MICRO) == (filled.ts_ms, filled.size)
    assert BALANCE - 5 * MICRO == v.ledger.usdc(WALLET)


def test_the_held_order_meets_the_book_as_it_is_when_the_delay_ends() -> None:
    v = venue()
    v.submit(order_request(size=10 * MICRO), T0)
    v.poll(T0)
    v.on_market_event(snapshot(T0 + 1_000, ask=520_000))  # the ask it aimed at is gone
    [cancelled] = v.poll(T0 + DELAY)
    # it was accepted, so what it cannot fill ends as a cancel, and its funds come back
    assert isinstance(cancelled, OrderCancelled)
    assert BALANCE == v.ledger.free_usdc(WALLET)


def test_a_cancel_during_the_delay_cancels_the_held_order() -> None:
    v = venue()
    v.submit(order_request(size=10 * MICRO), T0)
    v.poll(T0)
    v.cancel("o1-0", T0 + 10)
    assert ["OrderCancelled"] == kinds(v.poll(T0 + 10))
    assert [] == v.poll(T0 + DELAY)
    assert BALANCE == v.ledger.free_usdc(WALLET)


@pytest.mark.parametrize("post_only", [False, True])
def test_an_order_that_does_not_cross_rests_at_once(post_only: bool) -> None:
    v = venue()
    req = order_request(price=450_000, order_type=OrderType.GTC, post_only=post_only)
    v.submit(req, T0)
    assert [OrderAccepted("o1-0", T0, "o1-0")] == v.poll(T0)
    assert 1 == len(v.open_orders())


def test_a_market_without_a_delay_matches_on_arrival() -> None:
    v = venue(delay_ms=0)
    v.submit(order_request(size=10 * MICRO, side=Side.BUY), T0)
    assert ["OrderAccepted", "OrderFilled"] == kinds(v.poll(T0))


def test_the_delay_is_read_from_clob_and_gamma_metadata() -> None:
    cid = "0x" + "ab" * 32
    clob = (
        b'{"data": [{"condition_id": "' + cid.encode() + b'", "tokens": [{"token_id": "1", "outcome": "Yes"},'
        b' {"token_id": "2", "outcome": "No"}], "minimum_tick_size": 0.01, "minimum_order_size": 5,'
        b' "neg_risk": false, "seconds_delay": 3, "fd": {"r": 0, "e": 1}}], "next_cursor": "LTE="}'
    )
    [m] = load_documents({"markets.json": clob}).markets
    assert 3_000 == m.match_delay_ms
    # a delay beyond the bound refuses that market (never a delay taken as zero)
    catalog = load_documents({"markets.json": clob.replace(b'"seconds_delay": 3', b'"seconds_delay": 86400')})
    assert [] == catalog.markets
    [(refused, why)] = catalog.refused
    assert (cid, True) == (refused, "seconds_delay" in why)
