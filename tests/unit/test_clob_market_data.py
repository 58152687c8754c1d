"""The market channel: book hashes, gap detection and resync, sockets with injected faults (dropped
connections, silence, out-of-order messages, hostile frames, a failing sink), and both channels
against the CLOB simulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs
from websockets.asyncio.server import ServerConnection, serve

from kit import run, until
from polysnipe.adapters.clob.auth import ApiCreds
from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.market_data import (
    BookKeeper,
    MarketDataConfig,
    MarketDataFeed,
    market_subscription,
)
from polysnipe.adapters.clob.parsing import RestBook, book_hash, parse_market_line, parse_rest_book
from polysnipe.adapters.clob.user_channel import UserChannel, UserReport, UserStream
from polysnipe.adapters.clob.websocket import PONG, WsConnection, ws_connect
from polysnipe.adapters.clock import WallClock
from polysnipe.core.events import BookSnapshot, Event, Level, PriceChange, Side
from polysnipe.core.messages import (
    OrderAccepted,
    OrderFilled,
    RaiseAlert,
)
from polysnipe.runners.bench_ws import format_table, run_bench_ws

#: recorded market-channel messages, as decoded JSON
Msgs = list[dict[str, Any]]
A = "76670567130917723816490572615540605537878462672464291990940067659127658071111"
B = "54179564009642723353355316176091991063553046330768303687769988635499280029688"


def frame(msg: Any) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode()


@pytest.fixture(scope="module")
def ws_dir(shared_data: Path) -> Path:
    return shared_data / "polymarket" / "ws"


@pytest.fixture(scope="module")
def rest_dir(shared_data: Path) -> Path:
    return shared_data / "polymarket" / "rest"


@pytest.fixture(scope="module")
def burst(ws_dir: Path) -> Msgs:
    """The recorded crossing burst: a book, then price changes on both tokens (shared/data/README.md)."""
    doc: Msgs = json.loads((ws_dir / "nautilus_rs_ws_market_price_change_crossing_burst.json").read_text())
    return doc


def burst_frames(burst: Msgs) -> list[bytes]:
    return [frame(m) for m in burst]


def keeper(**config: Any) -> BookKeeper:
    k = BookKeeper(MarketDataConfig(**config))
    k.track([A], 0)
    k.set_market_meta(A, min_order_size="5", neg_risk=False)
    return k


def levels(book: Any, side: Side) -> list[tuple[int, int]]:
    return [(lv.price, lv.size) for lv in book.levels(side)]


def book_levels(msg: dict[str, Any], side: str) -> list[tuple[int, int]]:
    (snap,) = parse_market_line(frame(msg))
    assert isinstance(snap, BookSnapshot)
    rows = [(lv.price, lv.size) for lv in (snap.bids if side == "bids" else snap.asks)]
    return sorted(rows, reverse=side == "bids")


# -- the venue's book hash -----------------------------------------------------------------------
def test_book_hash_reproduces_recorded_rest_and_ws_books(ws_dir: Path, rest_dir: Path) -> None:
    rest = parse_rest_book((rest_dir / "nautilus_rs_clob_book_response_empty_ask.json").read_bytes())
    assert rest.hash_verified
    captured = json.loads((ws_dir / "nautilus_rs_ws_book_snapshot_captured.json").read_text())
    # a market-channel book omits min_order_size and neg_risk; with them the hash is the venue's
    assert captured["hash"] == book_hash(
        captured["market"],
        captured["asset_id"],
        captured["timestamp"],
        [(lv["price"], lv["size"]) for lv in captured["bids"]],
        [(lv["price"], lv["size"]) for lv in captured["asks"]],
        min_order_size="5",
        tick_size=captured["tick_size"],
        neg_risk=False,
        last_trade_price=captured["last_trade_price"],
    )


def test_rest_book_without_the_covered_fields_is_not_claimed_verified(rest_dir: Path) -> None:
    rest = parse_rest_book((rest_dir / "nautilus_py_book.json").read_bytes())
    assert not rest.hash_verified
    assert 7 == len(rest.snapshot.asks)


# -- the keeper: a real recorded burst -----------------------------------------------------------
def test_burst_replays_to_the_recorded_final_book_with_hash_checks_passing(burst: Msgs) -> None:
    k = keeper(hash_check_every=1)
    forwarded: list[Event] = []
    for f in burst_frames(burst)[:-1]:
        forwarded += k.on_frame(f, 0)
    assert [] == k.take_gaps()
    assert k.checks >= 40  # every settle point of token A was checked against the venue's hash
    book = k.book(A)
    assert book is not None and book.trusted
    last = burst[-1]
    assert book_levels(last, "bids") == levels(book, Side.BUY)
    assert book_levels(last, "asks") == levels(book, Side.SELL)
    # only token A is tracked: B's deltas are not forwarded, A's are
    deltas = [d for e in forwarded if isinstance(e, PriceChange) for d in e.changes]
    assert {A} == {d.token_id for d in deltas}
    assert 49 == len(deltas)


def test_out_of_order_message_untrusts_the_book_and_a_snapshot_resyncs_it(burst: Msgs) -> None:
    frames = burst_frames(burst)
    k = keeper()
    gaps: list[tuple[str, str]] = []
    for f in frames[:11]:
        k.on_frame(f, 0)
    assert [] == k.on_frame(frames[5], 0)  # a replayed older message: nothing forwarded
    gaps += k.take_gaps()
    assert [(A, "timestamp_backwards")] == gaps
    book = k.book(A)
    assert book is not None and not book.trusted
    # messages keep coming while the REST snapshot is fetched: buffered, not forwarded
    for f in frames[11:30]:
        assert [] == k.on_frame(f, 0)
    # the venue's book as of message 20 (what GET /book would return a little later)
    truth = keeper()
    for f in frames[:21]:
        truth.on_frame(f, 0)
    truth_book = truth.book(A)
    assert truth_book is not None
    snap = BookSnapshot(
        int(burst[20]["timestamp"]),
        A,
        burst[0]["market"],
        tuple(truth_book.levels(Side.BUY)),
        tuple(truth_book.levels(Side.SELL)),
        "",
        1_000,
    )
    events = k.on_rest_book(RestBook(snap, "5", "0.001", False, "0.255", True), 0)
    assert isinstance(events[0], BookSnapshot)
    assert all(isinstance(e, PriceChange) for e in events[1:])  # buffered deltas newer than the snapshot
    for f in frames[30:-1]:
        k.on_frame(f, 0)
    book = k.book(A)
    assert book is not None and book.trusted
    assert book_levels(burst[-1], "bids") == levels(book, Side.BUY)
    assert book_levels(burst[-1], "asks") == levels(book, Side.SELL)


def test_a_delta_that_disagrees_with_the_venue_hash_is_a_gap(burst: Msgs) -> None:
    tampered = json.loads(json.dumps(burst))
    for entry in tampered[10]["price_changes"]:
        if entry["asset_id"] == A:
            entry["size"] = str(float(entry["size"]) + 1)  # our book now differs from the venue's
    k = keeper(hash_check_every=1)
    for msg in tampered[:20]:
        k.on_frame(frame(msg), 0)
    assert [(A, "hash_mismatch")] == k.take_gaps()


def test_hash_checks_are_sampled(burst: Msgs) -> None:
    k = keeper(hash_check_every=10)
    for f in burst_frames(burst)[:-1]:
        k.on_frame(f, 0)
    assert 1 <= k.checks <= 5


def test_a_book_message_failing_its_own_hash_is_refused(ws_dir: Path) -> None:
    captured = json.loads((ws_dir / "nautilus_rs_ws_book_snapshot_captured.json").read_text())
    k = BookKeeper()
    k.track([captured["asset_id"]], 0)
    k.set_market_meta(captured["asset_id"], min_order_size="5", neg_risk=False)
    assert [BookSnapshot] == [type(e) for e in k.on_frame(frame(captured), 0)]
    captured["bids"][0]["size"] = "1"
    captured["timestamp"] = str(int(captured["timestamp"]) + 1)
    assert [] == k.on_frame(frame(captured), 0)
    assert [(captured["asset_id"], "hash_mismatch")] == k.take_gaps()


def test_quiet_books_go_stale_and_untracked_tokens_are_ignored(burst: Msgs) -> None:
    k = keeper()
    k.on_frame(burst_frames(burst)[0], 1_000)
    assert [] == k.quiet_tokens(60_000, 60_000)
    assert [A] == k.quiet_tokens(61_001, 60_000)
    assert [(A, "stale")] == k.take_gaps()
    book = k.book(A)
    assert book is not None and not book.trusted


def test_overflowing_buffer_is_not_trusted_after_the_snapshot(burst: Msgs) -> None:
    frames = burst_frames(burst)
    k = keeper(max_buffered_deltas=2)
    k.on_frame(frames[0], 0)
    k.invalidate([A], "reconnect")
    for f in frames[1:30]:
        k.on_frame(f, 0)
    first = BookSnapshot(int(burst[0]["timestamp"]), A, burst[0]["market"], (Level(1_000, 1),), (), "", 1_000)
    k.take_gaps()
    k.on_rest_book(RestBook(first, None, None, None, None, False), 0)
    assert [(A, "buffer_overflow")] == k.take_gaps()


def test_malformed_frame_raises_typed_error() -> None:
    with pytest.raises(MalformedMessage):
        keeper().on_frame(
            b'{"event_type":"price_change","market":"m","timestamp":"1","price_changes":[{}]}', 0
        )


def test_subscription_frame() -> None:
    assert {"type": "market", "assets_ids": [A], "custom_feature_enabled": False} == json.loads(
        market_subscription([A])
    )


# -- sockets: a real local WebSocket server with faults ------------------------------------------
def fast_config(port: int, **changes: Any) -> MarketDataConfig:
    fields: dict[str, Any] = {
        "market_url": f"ws://127.0.0.1:{port}",
        "user_url": f"ws://127.0.0.1:{port}",
        "ping_interval_s": 0.05,
        "stale_after_s": 1.0,
        "reconnect_base_s": 0.01,
        "reconnect_cap_s": 0.05,
        "snapshot_timeout_s": 2.0,
        "book_quiet_s": None,
    }
    fields.update(changes)
    return MarketDataConfig(**fields)


def rest_book_of(msg: dict[str, Any]) -> RestBook:
    (snap,) = parse_market_line(frame(msg))
    assert isinstance(snap, BookSnapshot)
    return RestBook(snap, "5", "0.001", False, "0.255", False)


def test_dropped_connection_untrusts_books_reconnects_and_pings(burst: Msgs) -> None:
    frames = burst_frames(burst)

    async def scenario() -> None:
        subscriptions: list[dict[str, Any]] = []
        pings = 0

        async def handler(ws: ServerConnection) -> None:
            nonlocal pings
            subscriptions.append(json.loads(await ws.recv()))
            assets = subscriptions[-1]["assets_ids"]
            if A in assets:
                await ws.send(frames[0].decode())
                await ws.send(frames[1].decode())
            if len(subscriptions) == 1:
                await ws.close()  # the venue drops us
                return
            async for message in ws:
                if message == "PING":
                    pings += 1
                    await ws.send("PONG")

        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            events: list[Event] = []
            gaps: list[tuple[str, str]] = []

            async def no_rest(token_id: str) -> RestBook:
                raise AssertionError("the re-subscription's book dump should be enough")

            feed = MarketDataFeed(
                fast_config(port),
                snapshots=no_rest,
                sink=events.extend,
                clock=WallClock(),
                rng=random.Random(1),
                on_gap=lambda token, reason: gaps.append((token, reason)),
            )
            await feed.subscribe([A])
            await until(lambda: len(subscriptions) >= 2 and pings >= 2)
            book = feed.keeper.book(A)
            assert book is not None and book.trusted
            assert gaps and gaps[0][0] == A and gaps[0][1].startswith("disconnected")
            assert 2 == sum(isinstance(e, BookSnapshot) for e in events)
            # new tokens: a new connection (the venue cannot add assets to a subscription)
            await feed.subscribe([B, A])
            await until(lambda: len(subscriptions) >= 3)
            assert [B] == subscriptions[2]["assets_ids"]
            await feed.unsubscribe([A])
            assert None is feed.keeper.book(A)
            assert [B] == feed.keeper.tokens()
            await feed.close()

    run(scenario())


def test_silent_connection_is_stale_and_rest_resyncs_books_the_dump_did_not_bring(burst: Msgs) -> None:
    async def scenario() -> None:
        connections = 0

        async def handler(ws: ServerConnection) -> None:
            nonlocal connections
            connections += 1
            await ws.recv()
            await ws.wait_closed()  # says nothing, not even PONG

        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            fetched: list[str] = []
            gaps: list[tuple[str, str]] = []

            async def snapshots(token_id: str) -> RestBook:
                fetched.append(token_id)
                return rest_book_of(burst[0])

            feed = MarketDataFeed(
                fast_config(port, stale_after_s=0.2, snapshot_timeout_s=0.05),
                snapshots=snapshots,
                sink=lambda events: None,
                clock=WallClock(),
                rng=random.Random(2),
                on_gap=lambda token, reason: gaps.append((token, reason)),
            )
            await feed.subscribe([A])
            await until(lambda: bool(fetched))
            await until(lambda: connections >= 2 and (A, "stale") in gaps)
            await feed.close()

    run(scenario())


def test_out_of_order_message_on_the_wire_triggers_a_rest_resync(burst: Msgs) -> None:
    frames = burst_frames(burst)

    async def scenario() -> None:
        async def handler(ws: ServerConnection) -> None:
            await ws.recv()
            for f in (frames[0], frames[1], frames[2], frames[1]):  # the last one arrives late
                await ws.send(f.decode())
            await ws.wait_closed()

        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            events: list[Event] = []
            gaps: list[tuple[str, str]] = []

            async def snapshots(token_id: str) -> RestBook:
                return rest_book_of(dict(burst[0], timestamp=burst[2]["timestamp"]))

            feed = MarketDataFeed(
                fast_config(port),
                snapshots=snapshots,
                sink=events.extend,
                clock=WallClock(),
                rng=random.Random(3),
                on_gap=lambda token, reason: gaps.append((token, reason)),
            )
            await feed.subscribe([A])
            await until(
                lambda: (
                    (A, "timestamp_backwards") in gaps
                    and sum(isinstance(e, BookSnapshot) for e in events) == 2
                )
            )
            book = feed.keeper.book(A)
            assert book is not None and book.trusted
            await feed.close()

    run(scenario())


def test_malformed_frame_goes_whole_to_the_dead_letters_and_distrusts_the_books(burst: Msgs) -> None:
    frames = burst_frames(burst)
    bad = '{"event_type": "price_change", "market": "0x1", "timestamp": "oops", "price_changes": []}'

    async def scenario() -> None:
        async def handler(ws: ServerConnection) -> None:
            await ws.recv()
            for f in (frames[0].decode(), bad, frames[1].decode()):
                await ws.send(f)
            await ws.wait_closed()

        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            dead: list[tuple[str | bytes, str]] = []
            gaps: list[tuple[str, str]] = []

            async def snapshots(token_id: str) -> RestBook:
                return rest_book_of(burst[0])

            feed = MarketDataFeed(
                fast_config(port),
                snapshots=snapshots,
                sink=lambda events: None,
                clock=WallClock(),
                rng=random.Random(4),
                on_gap=lambda token, reason: gaps.append((token, reason)),
                on_malformed=lambda frame, reason: dead.append((frame, reason)),
            )
            await feed.subscribe([A])
            await until(lambda: bool(dead) and (A, "malformed_frame") in gaps)
            assert bad == dead[0][0]
            assert dead[0][1]
            assert 1 == feed.keeper.malformed
            await feed.close()

    run(scenario())


#: a price_change whose extra field nests 5,000 levels deep: msgspec raised RecursionError on such a
#: frame, which ended the socket task for good (no reconnect, no alert)
DEEP_FRAME = '{"event_type":"price_change","market":"0x1","x":' + "[" * 5_000 + "]" * 5_000 + "}"


def test_a_hostile_frame_is_dead_lettered_and_the_frames_after_it_are_applied(burst: Msgs) -> None:
    frames = burst_frames(burst)
    truth = keeper()
    for f in frames[:12]:
        truth.on_frame(f, 0)
    truth_book = truth.book(A)
    assert truth_book is not None

    async def scenario() -> tuple[list[tuple[str | bytes, str]], list[RaiseAlert], int]:
        connections = 0

        async def handler(ws: ServerConnection) -> None:
            nonlocal connections
            connections += 1
            await ws.recv()
            for f in (frames[0].decode(), DEEP_FRAME, *(f.decode() for f in frames[1:12])):
                await ws.send(f)
            await ws.wait_closed()

        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            dead: list[tuple[str | bytes, str]] = []
            alerts: list[RaiseAlert] = []

            async def snapshots(token_id: str) -> RestBook:
                return rest_book_of(burst[0])

            feed = MarketDataFeed(
                fast_config(port),
                snapshots=snapshots,
                sink=lambda events: None,
                clock=WallClock(),
                rng=random.Random(5),
                on_malformed=lambda frame, reason: dead.append((frame, reason)),
                on_alert=alerts.append,
            )
            await feed.subscribe([A])
            book = feed.keeper.book(A)
            assert book is not None
            # the frames after the hostile one reach the book (buffered while it resyncs, then replayed)
            # both sides: the frames still arriving change either until the last one is applied
            await until(lambda: book.trusted and all(levels(book, side) == levels(truth_book, side)
                                                     for side in (Side.BUY, Side.SELL)))  # fmt: skip
            await feed.close()
            return dead, alerts, connections

    with capture_logs() as logs:
        dead, alerts, connections = run(scenario())
    assert [DEEP_FRAME] == [frame for frame, _ in dead]
    assert dead[0][1].startswith("invalid JSON: nested deeper than")
    assert [("warning", "market_frame_malformed")] == [(a.severity, a.code) for a in alerts]
    assert 1 == connections  # the same socket read on: no reconnect was needed
    assert ["warning"] == [e["log_level"] for e in logs if e["event"] == "market_frame_malformed"]


def test_a_sink_that_raises_does_not_stop_the_feed(burst: Msgs) -> None:
    frames = burst_frames(burst)[:8]
    k = keeper()
    # what each frame forwards to the sink (the book, then A's deltas; B-only frames forward nothing)
    deliveries = [events for events in (k.on_frame(f, 0) for f in frames) if events]
    assert len(deliveries) >= 3

    async def scenario() -> tuple[list[list[Event]], list[RaiseAlert]]:
        async def handler(ws: ServerConnection) -> None:
            await ws.recv()
            for f in frames:
                await ws.send(f.decode())
            await ws.wait_closed()

        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            received: list[list[Event]] = []
            alerts: list[RaiseAlert] = []
            calls = 0

            def sink(events: list[Event]) -> None:
                nonlocal calls
                calls += 1
                if calls == 2:
                    raise RuntimeError("downstream is down")
                received.append(events)

            async def no_rest(token_id: str) -> RestBook:
                raise AssertionError("a failing sink is no reason to resync")

            feed = MarketDataFeed(
                fast_config(port),
                snapshots=no_rest,
                sink=sink,
                clock=WallClock(),
                rng=random.Random(6),
                on_alert=alerts.append,
            )
            await feed.subscribe([A])
            await until(lambda: calls == len(deliveries))
            await feed.close()
            return received, alerts

    with capture_logs() as logs:
        received, alerts = run(scenario())
    # every delivery but the one that raised: the loop read and applied the frames after it
    assert [deliveries[0], *deliveries[2:]] == received
    assert [("critical", "market_sink_failed")] == [(a.severity, a.code) for a in alerts]
    assert ["error"] == [e["log_level"] for e in logs if e["event"] == "market_sink_failed"]


# -- bench ---------------------------------------------------------------------------------------
def test_bench_ws_measures_a_recorded_stream(tmp_path: Path, ws_dir: Path) -> None:
    burst = json.loads((ws_dir / "nautilus_rs_ws_market_price_change_crossing_burst.json").read_bytes())
    stream = tmp_path / "burst.jsonl"
    stream.write_text("".join(json.dumps(m) + "\n" for m in burst))
    result = run_bench_ws(stream, 2, tmp_path / "bench.json")
    part = result["price_change_only"]
    assert 98 == part["deltas_per_pass"]
    # every delta applied, on both tokens: the complement's book is seeded as the mirror
    assert 98 == part["keeper"]["deltas_applied"] == part["bare"]["deltas_applied"]
    assert result["all_messages"]["keeper"]["messages_per_s"] > 0
    assert 2 == json.loads((tmp_path / "bench.json").read_text())["repeat"]
    assert result["decoder"] in ("compiled", "python")
    assert "deltas/s" in format_table(result)


# -- against the CLOB simulator served by uvicorn (real HTTP and WebSockets) ------------------------
SIM_TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
SIM_NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
SIM_MARKET = "0x" + "cd" * 32
KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
MICRO = 1_000_000


def _objects(data: bytes | str) -> list[dict[str, Any]]:
    doc = json.loads(data)
    return doc if isinstance(doc, list) else [doc]


def serve_sim(state: Any) -> tuple[int, Callable[[], None]]:
    """The simulator's app on 127.0.0.1 in a thread (as runners/sim_clob.start_in_thread does)."""
    import socket
    import threading

    import uvicorn

    from polysnipe.adapters.sim.clob import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(state, tick_interval_s=0.01), log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "simulator did not start"
        time.sleep(0.005)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return port, stop


class _Pongs:
    """A Connect (the production one underneath) that counts the PONGs the venue sends back.

    The venue reads a socket's frames in order and applies a subscription before it reads the
    next frame, so a PONG to a PING sent after the subscription says the subscription is in place.
    """

    def __init__(self) -> None:
        self.count = 0

    @contextlib.asynccontextmanager
    async def __call__(self, url: str) -> AsyncIterator[WsConnection]:
        async with ws_connect(url) as ws:
            yield self._Noting(ws, self)

    class _Noting:
        def __init__(self, ws: WsConnection, pongs: _Pongs) -> None:
            self._ws, self._pongs = ws, pongs

        async def send(self, message: str) -> None:
            await self._ws.send(message)

        async def recv(self) -> str | bytes:
            frame = await self._ws.recv()
            if frame == PONG:
                self._pongs.count += 1
            return frame


def test_sim_feeds_follow_our_orders_fills_and_a_dropped_socket() -> None:
    from polysnipe.adapters.clob.auth import LocalSigner
    from polysnipe.adapters.clob.client import ClobHttpClient
    from polysnipe.adapters.clob.config import ClobConfig
    from polysnipe.adapters.clob.execution import ClobExecution
    from polysnipe.adapters.clob.signing import OrderSigner
    from polysnipe.adapters.sim.clob import Balances, ClobSimConfig, ClobSimState
    from polysnipe.core.market import Market
    from polysnipe.core.messages import OrderRequest, OrderType

    addresses = [LocalSigner.from_private_key(k, 137).address.lower() for k in (KEY0, KEY1)]
    # The simulator's clock moves only when told: it stamps a price_change with one reading and
    # hashes its book with another, which a running wall clock can split by a millisecond.
    sim_ms = [time.time_ns() // 1_000_000]
    state = ClobSimState(
        [Market(SIM_MARKET, (SIM_TOKEN, SIM_NO), ("Yes", "No"), 10_000, 5 * MICRO, False)],
        ClobSimConfig(mined_after_ms=30, confirmed_after_ms=60),
        balances=Balances(
            usdc={a: 10_000 * MICRO for a in addresses},
            positions={a: {SIM_TOKEN: 1_000 * MICRO} for a in addresses},
        ),
        clock=lambda: sim_ms[0],
    )
    port, stop = serve_sim(state)
    clock = WallClock()

    clients: list[ClobHttpClient] = []
    alerts: list[RaiseAlert] = []

    def trader(key: str, address: str) -> tuple[ClobExecution, ApiCreds]:
        api = state.api_key_for(address, 0)
        creds = ApiCreds(api_key=api.key, secret=api.secret, passphrase=api.passphrase)
        client = ClobHttpClient(
            ClobConfig(host=f"http://127.0.0.1:{port}"), clock, LocalSigner.from_private_key(key, 137, creds)
        )
        clients.append(client)
        execution = ClobExecution(
            client,
            OrderSigner.from_key(key, 137),
            owner=creds.api_key,
            clock=clock,
            rng=random.Random(1),
            alert=alerts.append,
        )
        return execution, creds

    def request(n: int, side: Side, price: int, size: int) -> OrderRequest:
        return OrderRequest(
            f"o{n}",
            f"p{n}",
            "c",
            "s",
            "r",
            "w",
            SIM_MARKET,
            SIM_TOKEN,
            side,
            price,
            size,
            OrderType.GTC,
            10_000,
            False,
        )

    async def scenario() -> None:
        ours, creds = trader(KEY0, addresses[0])
        theirs, _ = trader(KEY1, addresses[1])
        events: list[Event] = []
        gaps: list[tuple[str, str]] = []
        reports: list[UserReport] = []
        config = MarketDataConfig(
            market_url=f"ws://127.0.0.1:{port}/ws/market",
            user_url=f"ws://127.0.0.1:{port}/ws/user",
            ping_interval_s=0.05,
            reconnect_base_s=0.02,
            reconnect_cap_s=0.05,
            hash_check_every=1,
            book_quiet_s=None,
        )
        feed = MarketDataFeed(
            config,
            snapshots=ours.book,
            sink=events.extend,
            clock=clock,
            rng=random.Random(2),
            on_gap=lambda token, reason: gaps.append((token, reason)),
        )
        statuses: list[str] = []
        user_pongs = _Pongs()

        class RecordingChannel(UserChannel):
            def on_frame(self, data: bytes | str, recv_ms: int) -> list[UserReport]:
                statuses.extend(m.get("status", "") for m in _objects(data) if m.get("event_type") == "trade")
                return super().on_frame(data, recv_ms)

        channel = RecordingChannel(ours.index)
        user = UserStream(
            config,
            creds=creds,
            markets=[SIM_MARKET],
            channel=channel,
            sink=reports.extend,
            clock=clock,
            rng=random.Random(3),
            connect=user_pongs,
        )
        user_task = asyncio.create_task(user.run())
        await feed.subscribe([SIM_TOKEN])
        feed.keeper.set_market_meta(SIM_TOKEN, min_order_size="5", neg_risk=False)
        book = feed.keeper.book(SIM_TOKEN)
        assert book is not None
        await until(lambda: book.trusted)
        await until(lambda: user_pongs.count > 0)  # the user channel is subscribed before the order goes in
        assert ["OrderAccepted"] == [
            type(r).__name__ for r in await ours.submit(request(1, Side.BUY, 400_000, 20 * MICRO))
        ]
        await until(lambda: book.best_bid() == 400_000)
        await ours.submit(request(2, Side.BUY, 410_000, 10 * MICRO))
        await until(lambda: book.best_bid() == 410_000)
        assert feed.keeper.checks >= 2 and [] == gaps  # the venue's hashes matched our book
        # another trader sells into our bids: fills arrive MATCHED, MINED, CONFIRMED, counted once
        await theirs.submit(request(9, Side.SELL, 410_000, 10 * MICRO))
        await until(lambda: any(isinstance(r, OrderFilled) for r in reports))
        sim_ms[0] += 100  # past MINED and CONFIRMED: those statuses arrive, none may count again
        await until(lambda: "CONFIRMED" in statuses)
        assert ["MATCHED", "MINED", "CONFIRMED"] == list(dict.fromkeys(statuses))
        fills = [r for r in reports if isinstance(r, OrderFilled)]
        assert [("o2", 410_000, 10 * MICRO)] == [(f.order_id, f.price, f.size) for f in fills]
        assert any(isinstance(r, OrderAccepted) and r.order_id == "o1" for r in reports)
        await until(lambda: book.best_bid() == 400_000)
        # the venue drops every socket: books are distrusted at once, then rebuilt after reconnect
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as admin:
            await admin.post("/_sim/faults", json={"drop_ws": True})
            await until(lambda: not book.trusted)
            await admin.post("/_sim/faults", json={})
        await until(lambda: book.trusted and book.best_bid() == 400_000)
        user_task.cancel()
        await feed.close()
        for client in clients:
            await client.aclose()
        assert [] == alerts

    try:
        run(scenario())
    finally:
        stop()
