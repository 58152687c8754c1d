"""The CLOB adapter against a venue that answers badly: unreadable or endless answers, cursors that
never end, acceptances that contradict themselves, failed and repeated trades. Whatever the venue
does, an order's outcome is known, unknown (and reconciled), or refused by the venue in so many
words; nothing escapes to the engine loop and no fill is counted twice or lost."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from test_clob_execution import MARKET, TOKEN, Harness, kinds, order, venue_order_hash

from kit import run
from polysnipe.adapters.clob.account import collateral_balance
from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.config import ClobConfig
from polysnipe.adapters.clob.errors import MalformedMessage, TransportFailure
from polysnipe.adapters.clob.execution import OrderIndex
from polysnipe.adapters.clob.user_channel import UserChannel
from polysnipe.core.messages import (
    ExecutionReport,
    OrderAccepted,
    OrderFilled,
    OrderStatusUnknown,
    OrderType,
    TradeSettlement,
)

Answer = Callable[[httpx.Request], httpx.Response | None]


def answering(h: Harness, answer: Answer) -> None:
    """The harness's venue, except for the requests `answer` answers itself."""

    def handle(request: httpx.Request) -> httpx.Response:
        return answer(request) or h.venue.handle(request)

    h.client._http._transport = httpx.MockTransport(handle)


def reply(obj: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(obj).encode())


@asynccontextmanager
async def raw_venue(serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]) -> AsyncIterator[str]:
    """A socket server on loopback speaking whatever `serve` writes: its base URL."""
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    await reader.readexactly(length)


def test_an_answer_that_cannot_be_decoded_is_an_unknown_outcome_not_an_escape() -> None:
    """A 200 whose gzip body is not gzip raised httpx.DecodingError out of submit: the engine loop
    died and the posted order was never reconciled."""
    body = b"this is not gzip"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await _read_request(reader)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            )
            await writer.drain()

    async def body_() -> None:
        async with raw_venue(serve) as url:
            h = Harness()
            h.execution._client = ClobHttpClient(ClobConfig(host=url), h.clock, h.local)
            reports = await h.execution.submit(order(1))
            assert ["OrderStatusUnknown"] == kinds(reports)
            assert ["opp-1:0"] == h.execution.unknown_orders
            with pytest.raises(TransportFailure, match="DecodingError"):
                await h.execution.trades(MARKET)

    run(body_())


def test_an_answer_trickled_a_byte_at_a_time_ends_within_the_request_timeout() -> None:
    """httpx's timeout bounds each read: a byte every 0.2 s held submit (and the reconciliation lock)
    for ever."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while True:
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.2)

    async def body_() -> tuple[list[str], float]:
        async with raw_venue(serve) as url:
            h = Harness()
            config = ClobConfig(host=url, request_timeout_s=0.5, connect_timeout_s=0.5)
            h.execution._client = ClobHttpClient(config, h.clock, h.local)
            started = time.monotonic()
            reports = await asyncio.wait_for(h.execution.submit(order(1)), 10)
            return kinds(reports), time.monotonic() - started

    got, _elapsed = run(body_())
    assert ["OrderStatusUnknown"] == got


@pytest.mark.parametrize("path", ["/data/trades", "/data/orders", "/markets"])
def test_a_cursor_the_venue_repeats_ends_the_read(path: str) -> None:
    """A venue echoing the cursor it was sent looped every paged read for ever."""
    h = Harness()
    calls: list[str] = []

    def echo(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET" and request.url.path == path:
            calls.append(request.url.params["next_cursor"])
            assert len(calls) < 50, "the read never ends"
            return reply({"data": [], "next_cursor": "Mg=="})
        return None

    answering(h, echo)
    reads: dict[str, Callable[[], Coroutine[Any, Any, object]]] = {
        "/data/trades": lambda: h.execution.trades(MARKET),
        "/data/orders": lambda: h.execution.open_orders(),
        "/markets": lambda: h.execution.metadata.markets(),
    }
    with pytest.raises(MalformedMessage, match="repeats an earlier page"):
        run(reads[path]())
    assert ["MA==", "Mg=="] == calls


#: stands for the posted order's own hash in an answer
OURS = object()


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"success": True, "errorMsg": "", "orderID": OURS, "status": "queued"}, "status 'queued'"),
        ({"success": True, "errorMsg": "", "status": "live"}, "without an orderID"),
        (
            {"success": True, "errorMsg": "", "orderID": "../../cancel-all", "status": "live"},
            "not an order hash",
        ),
        ({"success": True, "errorMsg": "", "orderID": "0x\x00", "status": "live"}, "not an order hash"),
    ],
    ids=["unknown-status", "no-order-id", "path-in-order-id", "nul-in-order-id"],
)
def test_an_acceptance_that_contradicts_itself_is_unknown_and_reconciled_by_hash(
    answer: dict[str, Any], why: str
) -> None:
    """Taken as a rejection, the order could rest unwatched (a later fill then broke the core's
    state machine); its orderID went into request URLs."""
    h, ours, report = _taken_then(
        lambda ours: reply({k: ours if v is OURS else v for k, v in answer.items()})
    )
    assert isinstance(report, OrderStatusUnknown) and why in report.detail
    _reconciled_by_hash(h, ours)


@pytest.mark.parametrize("status", [302, 307, 408])
def test_a_redirect_or_request_timeout_to_an_order_post_is_unknown_and_reconciled(status: int) -> None:
    """A proxy between us and the venue answers after forwarding the order: taken as a rejection,
    the order the venue holds rested unwatched."""
    h, ours, report = _taken_then(
        lambda _: httpx.Response(status, headers={"Location": "https://x.example/"})
    )
    assert isinstance(report, OrderStatusUnknown)
    _reconciled_by_hash(h, ours)


def _taken_then(answer: Callable[[str], httpx.Response]) -> tuple[Harness, str, ExecutionReport]:
    """A venue that takes the order and then answers its POST with `answer(the order's hash)`: the
    harness, that hash and the one report submit gave."""
    h = Harness()
    placed: list[str] = []

    def post(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == "/order":
            h.venue.handle(request)  # the venue did take it
            placed.append(venue_order_hash(json.loads(request.content)["order"]))
            return answer(placed[-1])
        return None

    answering(h, post)
    [report] = run(h.execution.submit(order(1)))
    return h, placed[0], report


def _reconciled_by_hash(h: Harness, ours: str) -> None:
    """Not counted as a reject, found by reconciliation, looked up by our hash only (never by what
    the venue said)."""
    assert 0 == h.execution.circuit.consecutive
    assert ["OrderAccepted"] == kinds(run(h.execution.reconcile(everything=True)))
    looked_up = {path for _, path in h.venue.requests if path.startswith("/data/order/")}
    assert {f"/data/order/{ours}"} == looked_up


def _trade(trade_id: str, taker: str, *, status: str = "MATCHED", size: str = "50") -> dict[str, Any]:
    return {"id": trade_id, "status": status, "asset_id": TOKEN, "side": "BUY", "size": size, "price": "0.5",
            "taker_order_id": taker, "market": MARKET, "trader_side": "TAKER", "maker_orders": [],
            "match_time": "1764061200"}  # fmt: skip


def _fak(trade_ids: list[str], status: str) -> tuple[list[str], list[OrderFilled]]:
    """A FAK matched in `trade_ids` (50 of its 100 shares in trade t1, of `status`): its reports."""
    h = Harness()
    hashes: list[str] = []

    def venue(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == "/order":
            hashes.append(venue_order_hash(json.loads(request.content)["order"]))
            return reply({"success": True, "errorMsg": "", "orderID": hashes[0], "status": "matched",
                          "makingAmount": "25", "takingAmount": "50", "tradeIDs": trade_ids})  # fmt: skip
        if request.method == "GET" and request.url.path == "/data/trades":
            return reply({"data": [_trade("t1", hashes[0], status=status)], "next_cursor": "LTE="})
        if request.method == "GET" and request.url.path.startswith("/data/order/"):
            return reply({"error": "not found"}, 404)
        return None

    answering(h, venue)
    reports = run(h.execution.submit(order(1, order_type=OrderType.FAK)))
    for _ in range(2):
        h.clock.ms += 20_000
        reports += run(h.execution.reconcile(everything=True))
    return kinds(reports), [r for r in reports if isinstance(r, OrderFilled)]


def test_a_trade_id_listed_twice_is_one_fill_and_the_rest_is_cancelled() -> None:
    got, fills = _fak(["t1", "t1"], "MATCHED")
    assert ["OrderAccepted", "OrderFilled", "OrderCancelled"] == got
    assert [50_000_000] == [f.size for f in fills]


def test_a_trade_the_rest_api_shows_failed_is_no_fill() -> None:
    got, fills = _fak(["t1"], "FAILED")
    assert ([], "OrderFilled" in got) == (fills, False)


def _user_trade(trade_id: str, status: str = "MATCHED", price: str = "0.5") -> dict[str, Any]:
    return {
        **_trade(trade_id, VENUE_ID, status=status),
        "event_type": "trade",
        "type": "TRADE",
        "price": price,
    }


VENUE_ID = "0x" + "ab" * 32


def _channel() -> tuple[OrderIndex, UserChannel]:
    index = OrderIndex()
    index.add("ours", VENUE_ID, 100_000_000)
    return index, UserChannel(index)


def test_a_stale_matched_after_a_failed_trade_is_no_fill() -> None:
    _, channel = _channel()
    failed = channel.on_frame(json.dumps(_user_trade("t4", "FAILED")), 1)
    stale = channel.on_frame(json.dumps(_user_trade("t4", "MATCHED")), 2)
    assert [("FAILED",), ("MATCHED",)] == [
        tuple(r.status for r in got if isinstance(r, TradeSettlement)) for got in (failed, stale)
    ]
    assert not any(isinstance(r, OrderFilled) for r in failed + stale)


def test_a_malformed_message_later_in_a_frame_leaves_the_earlier_fills_unclaimed() -> None:
    """The frame is dead-lettered; a fill of it claimed all the same was never reported, and its
    next sighting (the same trade MINED, a REST catch-up) was refused as a repeat: lost for good."""
    _, channel = _channel()
    with pytest.raises(MalformedMessage):
        channel.on_frame(json.dumps([_user_trade("t2"), _user_trade("t3", price="2")]), 1)
    again = channel.on_frame(json.dumps(_user_trade("t2", "MINED")), 2)
    assert ["OrderFilled", "TradeSettlement"] == kinds(again)


def test_a_batch_refused_as_a_duplicate_is_unknown_and_repeated_ids_are_not_trusted() -> None:
    h = Harness()

    def duplicate(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == "/orders":
            return reply({"error": "order is invalid. Duplicated. Same order has already been placed"}, 400)
        return None

    answering(h, duplicate)
    answers = run(h.execution.submit_many([order(0), order(1)]))
    assert [["OrderStatusUnknown"], ["OrderStatusUnknown"]] == [kinds(a) for a in answers]

    h = Harness()

    def repeated(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == "/orders":
            stored = [h.venue._store(b["order"], json.dumps(b).encode()) for b in json.loads(request.content)]
            return reply([stored[0], stored[0]])
        return None

    answering(h, repeated)
    first, second = run(h.execution.submit_many([order(0), order(1)]))
    assert (["OrderAccepted"], ["OrderStatusUnknown"]) == (kinds(first), kinds(second))
    accepted = first[0]
    assert isinstance(accepted, OrderAccepted) and "opp-0:0" == h.execution.index.order_id(
        accepted.venue_order_id
    )


def test_a_deeply_nested_balance_answer_is_malformed_not_a_recursion_error() -> None:
    """Decoded without the nesting check, 5,000 levels raised RecursionError (and past the raised
    recursion limit py_ecc sets, msgspec overflows the C stack)."""
    h = Harness()
    deep = b'{"balance": "1", "x": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    answering(h, lambda r: httpx.Response(200, content=deep) if r.url.path == "/balance-allowance" else None)
    with pytest.raises(MalformedMessage, match="balance"):
        run(collateral_balance(h.client, 0))
