"""The user channel: order and trade messages to execution reports (fills counted once per trade),
and its socket: catch-up after a reconnect, no frame or sink failure able to stop it."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest
from structlog.testing import capture_logs
from websockets.asyncio.server import ServerConnection, serve

from kit import run, until
from polysnipe.adapters.clob.auth import ApiCreds
from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.execution import OrderIndex
from polysnipe.adapters.clob.market_data import MarketDataConfig
from polysnipe.adapters.clob.parsing import epoch_ms
from polysnipe.adapters.clob.schemas import WireTrade
from polysnipe.adapters.clob.user_channel import UserChannel, UserReport, UserStream, user_subscription
from polysnipe.adapters.clock import WallClock
from polysnipe.core.events import Side
from polysnipe.core.messages import (
    Liquidity,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    RaiseAlert,
    TradeSettlement,
)

#: loads a recorded user-channel message by file name
Recorded = Callable[[str], dict[str, Any]]
#: (frame as received, reason) handed to on_malformed
DeadLetters = list[tuple[str | bytes, str]]
A = "76670567130917723816490572615540605537878462672464291990940067659127658071111"
CREDS = ApiCreds(
    api_key="00000000-0000-0000-0000-000000000001",
    secret="468NIDFB-ziroyChmdO3fiJUKy7zjxahDLpTEEPxE7I=",
    passphrase="pass",
)


def frame(msg: Any) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode()


def rest(*trades: dict[str, Any]) -> list[WireTrade]:
    """Trades as GET /data/trades lists them."""
    return msgspec.json.decode(frame(list(trades)), type=list[WireTrade])


def fast_config(port: int) -> MarketDataConfig:
    return MarketDataConfig(
        user_url=f"ws://127.0.0.1:{port}",
        ping_interval_s=0.05,
        stale_after_s=1.0,
        reconnect_base_s=0.01,
        reconnect_cap_s=0.05,
    )


ORDER_ID_RS = "0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef12"


@pytest.fixture(scope="module")
def recorded_user(shared_data: Path) -> Recorded:
    """A recorded user-channel message by file name (shared/data/polymarket/ws)."""

    def load(name: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((shared_data / "polymarket" / "ws" / name).read_text())
        return doc

    return load


def fills(reports: Sequence[UserReport]) -> list[OrderFilled]:
    return [r for r in reports if isinstance(r, OrderFilled)]


def kinds(reports: Sequence[UserReport]) -> list[str]:
    return [type(r).__name__ for r in reports]


def channel_with(*pairs: tuple[str, str, int]) -> UserChannel:
    index = OrderIndex()
    for order_id, venue_id, size in pairs:
        index.add(order_id, venue_id, size)
    return UserChannel(index)


def test_user_order_messages_map_to_reports(recorded_user: Recorded) -> None:
    channel = channel_with(("o1", ORDER_ID_RS, 100_000_000), ("fok", "0x78xx", 12_000_000))
    (placed,) = channel.on_frame(frame(recorded_user("nautilus_rs_ws_user_order_placement.json")), 5)
    assert isinstance(placed, OrderAccepted)
    assert ("o1", ORDER_ID_RS, 1_703_875_200_001) == (placed.order_id, placed.venue_order_id, placed.ts_ms)
    assert 1 == channel.index.resting_count
    assert [] == channel.on_frame(frame(recorded_user("nautilus_rs_ws_user_order_update.json")), 5)
    (cancelled,) = channel.on_frame(frame(recorded_user("nautilus_rs_ws_user_order_cancellation.json")), 5)
    assert isinstance(cancelled, OrderCancelled)
    assert 0 == channel.index.resting_count
    (killed,) = channel.on_frame(frame(recorded_user("nautilus_rs_ws_user_order_fok_killed.json")), 5)
    assert isinstance(killed, OrderCancelled)
    assert "order couldn't be fully filled. FOK orders are fully filled or killed." == killed.reason
    # someone else's order: nothing
    assert [] == channel.on_frame(frame(recorded_user("nautilus_py_order_placement.json")), 5)


def test_a_trade_is_counted_once_across_matched_mined_confirmed(
    recorded_user: Recorded,
) -> None:
    channel = channel_with(("o1", ORDER_ID_RS, 100_000_000))
    trade = recorded_user("nautilus_rs_ws_user_trade_msg.json")
    out: list[UserReport] = []
    for status in ("MATCHED", "MINED", "MATCHED", "CONFIRMED"):
        out += channel.on_frame(frame(dict(trade, status=status)), 9)
    (fill,) = fills(out)
    # every status goes on to the engine, which keeps the fill provisional until CONFIRMED
    assert [("trade-0xabcdef1234", "o1", s) for s in ("MATCHED", "MINED", "MATCHED", "CONFIRMED")] == [
        (r.trade_id, r.order_id, r.status) for r in out if isinstance(r, TradeSettlement)
    ]
    assert ("o1", "trade-0xabcdef1234", Side.BUY, 500_000, 25_000_000, Liquidity.TAKER) == (
        fill.order_id,
        fill.trade_id,
        fill.side,
        fill.price,
        fill.size,
        fill.liquidity,
    )
    assert epoch_ms("2024-01-01T00:00:00Z") == fill.ts_ms
    # REST catch-up after a reconnect brings the same trade again: neither counted nor journaled twice
    assert [] == channel.on_trades(rest(dict(trade, status="CONFIRMED")), 9)


def test_a_trade_that_failed_during_an_outage_is_undone_once_on_catch_up(recorded_user: Recorded) -> None:
    """The user channel counted a MATCHED, then missed the FAILED while it was down: the catch-up
    listed it FAILED and refused the fill silently, so the engine kept a fill that never happened."""
    channel = channel_with(("o1", ORDER_ID_RS, 100_000_000))
    trade = recorded_user("nautilus_rs_ws_user_trade_msg.json")
    matched = dict(trade, status="MATCHED")
    assert ["OrderFilled", "TradeSettlement"] == kinds(channel.on_frame(frame(matched), 9))
    failed = TradeSettlement(12, "trade-0xabcdef1234", "o1", "FAILED")
    assert [failed] == channel.on_trades(rest(dict(trade, status="FAILED")), 12)
    # told again, by the next catch-up or by the channel itself: the fill is undone only once
    assert [] == channel.on_trades(rest(dict(trade, status="FAILED")), 13)
    assert [] == channel.on_frame(frame(dict(trade, status="FAILED")), 14)
    # a stale MATCHED after that counts nothing
    assert [] == fills(channel.on_frame(frame(matched), 15))


def test_a_catch_up_with_a_malformed_trade_claims_nothing(recorded_user: Recorded) -> None:
    channel = channel_with(("o1", ORDER_ID_RS, 100_000_000))
    trade = recorded_user("nautilus_rs_ws_user_trade_msg.json")
    matched = dict(trade, status="MATCHED")
    with pytest.raises(MalformedMessage):
        channel.on_trades(rest(matched, dict(trade, id="t2", size="x")), 9)
    assert ["OrderFilled", "TradeSettlement"] == kinds(channel.on_trades(rest(matched), 10))


def test_a_failed_trade_is_a_settlement_never_a_fill(recorded_user: Recorded) -> None:
    channel = channel_with(("o1", ORDER_ID_RS, 100_000_000))
    trade = recorded_user("nautilus_rs_ws_user_trade_msg.json")
    channel.on_frame(frame(dict(trade, status="MATCHED")), 9)
    # the engine undoes the fill it counted (tests/unit/test_trade_settlement.py)
    assert [TradeSettlement(9, "trade-0xabcdef1234", "o1", "FAILED")] == channel.on_frame(
        frame(dict(trade, status="FAILED")), 9
    )
    # failed before it was ever seen matched: no fill at all
    fresh = channel_with(("o1", ORDER_ID_RS, 100_000_000))
    assert ["TradeSettlement"] == kinds(fresh.on_frame(frame(dict(trade, status="FAILED")), 9))
    prefixed = channel_with(("o1", ORDER_ID_RS, 100_000_000))
    assert 1 == len(fills(prefixed.on_frame(frame(dict(trade, status="TRADE_STATUS_CONFIRMED")), 9)))


def test_an_unknown_trade_status_keeps_the_fill_provisional_and_warns(recorded_user: Recorded) -> None:
    channel = channel_with(("o1", ORDER_ID_RS, 100_000_000))
    trade = recorded_user("nautilus_rs_ws_user_trade_msg.json")
    out = channel.on_frame(frame(dict(trade, status="SETTLING")), 9)
    assert ["RaiseAlert", "OrderFilled", "TradeSettlement"] == kinds(out)
    assert "MATCHED" == cast(TradeSettlement, out[2]).status


def test_maker_fills_take_the_maker_orders_side_price_and_size(
    recorded_user: Recorded,
) -> None:
    trade3 = recorded_user("nautilus_py_user_trade3.json")
    maker_id = trade3["maker_orders"][0]["order_id"]
    channel = channel_with(("m1", maker_id, 5_000_000))
    (fill,) = fills(channel.on_frame(frame(trade3), 0))
    # the taker bought No at 0.49; our maker order bought Yes at 0.513 (a mirror match)
    assert (Side.BUY, 513_000, 5_000_000, Liquidity.MAKER, 0, 0) == (
        fill.side,
        fill.price,
        fill.size,
        fill.liquidity,
        fill.fee_usdc,
        fill.fee_shares,
    )
    assert trade3["maker_orders"][0]["asset_id"] == fill.token_id
    assert 1_762_776_367_000 == fill.ts_ms  # match_time in seconds
    # older payloads omit the maker's side: same token as the taker means the opposite side
    trade2 = recorded_user("nautilus_py_user_trade2.json")
    maker2 = trade2["maker_orders"][0]["order_id"]
    (fill2,) = fills(channel_with(("m2", maker2, 5_000_000)).on_frame(frame(trade2), 0))
    assert Side.SELL == fill2.side


def test_user_frames_may_be_arrays(recorded_user: Recorded) -> None:
    channel = channel_with(("o1", ORDER_ID_RS, 100_000_000))
    both = [
        recorded_user("nautilus_rs_ws_user_order_msg.json"),
        recorded_user("nautilus_rs_ws_user_trade_msg.json"),
    ]
    assert ["OrderAccepted", "OrderFilled", "TradeSettlement"] == kinds(channel.on_frame(frame(both), 0))


def test_epoch_ms_reads_seconds_ms_and_iso() -> None:
    assert 1_725_841_741_000 == epoch_ms("1725841741")
    assert 1_725_841_743_272 == epoch_ms("1725841743272")
    assert 1_703_875_200_000 == epoch_ms(1_703_875_200)
    assert 1_704_067_200_000 == epoch_ms("2024-01-01T00:00:00Z")
    assert None is epoch_ms("")
    with pytest.raises(MalformedMessage):
        epoch_ms("yesterday")


def test_subscription_frame() -> None:
    sub = json.loads(user_subscription(CREDS, ["0xabc"]))
    assert ("user", ["0xabc"], CREDS.api_key) == (sub["type"], sub["markets"], sub["auth"]["apiKey"])


def test_user_stream_catches_up_over_rest_after_a_reconnect(
    recorded_user: Recorded,
) -> None:
    trade = recorded_user("nautilus_rs_ws_user_trade_msg.json")

    async def scenario() -> list[UserReport]:
        connections = 0

        async def handler(ws: ServerConnection) -> None:
            nonlocal connections
            connections += 1
            sub = json.loads(await ws.recv())
            assert CREDS.passphrase.reveal() == sub["auth"]["passphrase"]
            if connections == 1:
                await ws.send(json.dumps(dict(trade, status="MATCHED")))
                await ws.close()
                return
            await ws.wait_closed()

        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            out: list[UserReport] = []
            channel = channel_with(("o1", ORDER_ID_RS, 100_000_000))
            catch_ups = 0

            async def catch_up() -> list[WireTrade]:
                nonlocal catch_ups
                catch_ups += 1
                # the trade the channel sent, and one it missed
                return rest(dict(trade, status="MATCHED"), dict(trade, id="trade-missed", status="MATCHED"))

            stream = UserStream(
                fast_config(port),
                creds=CREDS,
                markets=["0xabc"],
                channel=channel,
                sink=out.extend,
                clock=WallClock(),
                rng=random.Random(4),
                catch_up=catch_up,
            )
            task = asyncio.create_task(stream.run())
            await until(lambda: catch_ups == 1 and len(fills(out)) == 2)
            task.cancel()
            return out

    out = run(scenario())
    assert ["trade-0xabcdef1234", "trade-missed"] == [r.trade_id for r in out if isinstance(r, OrderFilled)]


def test_a_hostile_frame_is_dead_lettered_and_a_failing_sink_does_not_stop_the_stream(
    recorded_user: Recorded,
) -> None:
    trade = recorded_user("nautilus_rs_ws_user_trade_msg.json")
    order = recorded_user("nautilus_rs_ws_user_order_msg.json")
    # 5,000 levels deep: msgspec raised RecursionError on it, which ended the user socket for good
    deep = '{"event_type":"trade","x":' + "[" * 5_000 + "]" * 5_000 + "}"

    async def scenario() -> tuple[list[UserReport], list[tuple[str | bytes, str]], list[str]]:
        async def handler(ws: ServerConnection) -> None:
            await ws.recv()
            for f in (json.dumps(order), deep, json.dumps(dict(trade, status="MATCHED"))):
                await ws.send(f)
            await ws.wait_closed()

        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            out: list[UserReport] = []
            dead: DeadLetters = []
            alerts: list[RaiseAlert] = []

            def sink(reports: Sequence[UserReport]) -> None:
                if any(isinstance(r, OrderAccepted) for r in reports):
                    raise RuntimeError("journal is down")
                out.extend(reports)

            stream = UserStream(
                fast_config(port),
                creds=CREDS,
                markets=["0xabc"],
                channel=channel_with(("o1", ORDER_ID_RS, 100_000_000)),
                sink=sink,
                clock=WallClock(),
                rng=random.Random(5),
                on_malformed=lambda frame, reason: dead.append((frame, reason)),
                on_alert=alerts.append,
            )
            task = asyncio.create_task(stream.run())
            await until(lambda: bool(out))
            task.cancel()
            return out, dead, [a.code for a in alerts]

    with capture_logs() as logs:
        out, dead, codes = run(scenario())
    # the order's report went to the sink that raised; the trade after the hostile frame still came
    assert ["trade-0xabcdef1234"] == [r.trade_id for r in out if isinstance(r, OrderFilled)]
    assert [deep] == [frame for frame, _ in dead]
    assert dead[0][1].startswith("user channel: invalid JSON: nested deeper than")
    assert ["user_sink_failed", "user_frame_malformed"] == codes
    levels = {e["event"]: e["log_level"] for e in logs}
    assert ("error", "warning") == (levels["user_sink_failed"], levels["user_frame_malformed"])
