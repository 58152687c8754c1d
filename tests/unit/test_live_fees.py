"""Live fills book the fee the venue charged: the trade's fee_rate_bps, else the market's schedule."""

from __future__ import annotations

import json

import msgspec
import pytest

from kit import MARKET, YES, market
from polysnipe.adapters.clob.factory import fee_lookup
from polysnipe.adapters.clob.parsing import fills_from_trade
from polysnipe.adapters.clob.schemas import WireTrade
from polysnipe.core.events import Side
from polysnipe.core.fees import taker_fee
from polysnipe.core.market import MarketRegistry
from polysnipe.core.units import MICRO


def _trade(bps: str | None) -> WireTrade:
    raw = {"id": "t1", "status": "MATCHED", "asset_id": YES, "side": "BUY", "size": "100", "price": "0.5",
           "taker_order_id": "0xours", "timestamp": "1700000000000"}  # fmt: skip
    if bps is not None:
        raw["fee_rate_bps"] = bps
    return msgspec.json.decode(json.dumps(raw), type=WireTrade)


@pytest.mark.parametrize(
    ("fees", "bps", "rate"),
    [
        (0, "700", 70_000),  # the venue says what it charged
        (40_000, None, 40_000),  # nothing said: the market's schedule
        (40_000, "0", 40_000),  # an empty "0" never understates a fee market's fee
        (0, "0", 0),
    ],
)
def test_taker_fills_book_the_rate_charged(fees: int, bps: str | None, rate: int) -> None:
    registry = MarketRegistry.of([market(fee_rate=fees)])
    [fill] = fills_from_trade(_trade(bps), lambda venue_id: "ours-0" if venue_id == "0xours" else None,
                              ts_recv_ms=0, fee_of=fee_lookup(registry))  # fmt: skip
    expected = taker_fee(Side.BUY, 100 * MICRO, 500_000, rate, 1)
    assert (expected.fee_usdc, expected.fee_shares) == (fill.fee_usdc, fill.fee_shares)
    assert MARKET.condition_id == registry.by_token(YES).condition_id
