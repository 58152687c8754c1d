"""`polysnipe ingest` end to end on the real Redis: a replay into the streams, the recorder's files
read back by the backtest's reader, and the HMAC-checked signal endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import httpx
from test_redis_streams import REDIS_URL, drain, drop_keys, unique_prefix
from websockets.asyncio.server import ServerConnection, serve

from kit import SAMPLE
from polysnipe.adapters.clob.parsing import parse_market_line
from polysnipe.adapters.clock import WallClock
from polysnipe.adapters.files import load_events
from polysnipe.adapters.redis.factory import redis_client
from polysnipe.adapters.redis.streams import StreamPublisher, StreamSource
from polysnipe.adapters.signals_http import (
    HEADER_PROVIDER,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    SignalEndpointConfig,
    sign,
    signal_app,
)
from polysnipe.core.events import ExternalSignal
from polysnipe.core.messages import RecordError
from polysnipe.runners.cli import main
from polysnipe.runners.config import EngineConfig, IngestConfig, RedisConfig
from polysnipe.runners.ingest import IngestJob, ingest_container, run_ingest

KEY = b"k" * 32
SIGNAL = {"event_type": "external_signal", "timestamp": "1767225647258", "asset_id": "784246954797809",
          "source": "newswire", "direction": "up", "confidence": 0.77, "ttl_ms": 30000}  # fmt: skip


def config_with(prefix: str, **ingest: Any) -> EngineConfig:
    base = EngineConfig()
    return attrs.evolve(
        base,
        redis=RedisConfig(prefix=prefix, shards=4),
        connections=attrs.evolve(base.connections, redis_url=REDIS_URL),
        ingest=IngestConfig(**ingest),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_replay_and_record_end_to_end_the_engine_side_reads_what_the_backtest_reads(tmp_path: Path) -> None:
    prefix = unique_prefix()
    config = config_with(prefix)
    events_file = SAMPLE / "events.jsonl"

    async def body() -> None:
        job = IngestJob(replay=events_file, speed=0.0, record_dir=tmp_path / "rec")
        result = await run_ingest(ingest_container(config), config, job, stop=asyncio.Event())
        lines = sum(1 for line in events_file.open("rb") if not line.isspace())
        assert lines == result.frames
        client = redis_client(REDIS_URL)
        try:
            source = StreamSource(client, config.redis.streams(), consumer="e", shards=range(4),
                                  clock=WallClock())  # fmt: skip
            got = await drain(source)
        finally:
            await drop_keys(client, prefix)  # type: ignore[arg-type]
            await client.aclose()
        expected, stats = load_events(events_file)
        assert Counter(expected) == Counter(e for e in got if type(e) is not RecordError)
        assert stats.malformed == sum(1 for e in got if type(e) is RecordError)
        # the recording is the backtest's format: the same events, the same malformed lines
        [recorded] = result.record_files
        again, again_stats = load_events(recorded)
        assert expected == again
        assert stats.malformed == again_stats.malformed

    asyncio.run(body())


def test_ingest_command_replays_a_file_into_the_streams(tmp_path: Path, capsys: Any) -> None:
    prefix = unique_prefix()
    lines = [line for line in (SAMPLE / "events.jsonl").open("rb")][:50]
    path = tmp_path / "few.jsonl"
    path.write_bytes(b"".join(lines))
    env = {"POLYSNIPE_REDIS_PREFIX": prefix, "POLYSNIPE_REDIS_URL": REDIS_URL, "POLYSNIPE_REDIS_SHARDS": "2"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert 0 == main(["ingest", "--replay", str(path), "--speed", "0", "--log-level", "error"])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    async def count() -> int:
        client = redis_client(REDIS_URL)
        try:
            n = 0
            for key in [f"{prefix}{{md.0}}", f"{prefix}{{md.1}}", f"{prefix}{{signals.external}}"]:
                n += await client.xlen(key)
            return n
        finally:
            await drop_keys(client, prefix)  # type: ignore[arg-type]
            await client.aclose()

    assert 50 <= asyncio.run(count())
    assert "50 frames" in capsys.readouterr().out


def test_ingest_mistakes_are_one_line_and_exit_2(tmp_path: Path, capsys: Any) -> None:
    assert 2 == main(["ingest"])
    assert 2 == main(["ingest", "--replay", str(tmp_path / "missing.jsonl")])
    assert 2 == main(["ingest", "--replay", str(SAMPLE / "events.jsonl"), "--speed", "fast"])
    assert 2 == main(["ingest", "--signals-listen", "nowhere"])
    err = capsys.readouterr().err.strip().splitlines()
    assert 4 == len(err) and all(line.startswith("polysnipe: error: ") for line in err)


# -- the signal endpoint ---------------------------------------------------------------------------
def signed(
    body: bytes, *, key: bytes = KEY, ts: int | None = None, provider: str = "newswire"
) -> dict[str, str]:
    stamp = str(WallClock().now_ms() if ts is None else ts)
    return {HEADER_PROVIDER: provider, HEADER_TIMESTAMP: stamp, HEADER_SIGNATURE: sign(key, stamp, body)}


def test_signal_endpoint_accepts_signed_signals_onto_the_stream_and_refuses_the_rest() -> None:
    prefix = unique_prefix()
    config = config_with(prefix)

    async def body() -> None:
        client = redis_client(REDIS_URL)
        streams = config.redis.streams()
        publisher = StreamPublisher(client, streams)

        async def accept(raw: bytes, recv_ms: int, provider: str) -> str:
            return (await publisher.publish_signal(raw, recv_ms, provider)).decode()

        app = signal_app(SignalEndpointConfig(keys={"newswire": KEY}, max_body_bytes=1024), accept=accept,
                         clock=WallClock())  # fmt: skip
        good = json.dumps(SIGNAL).encode()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:

                async def post(raw: bytes, **how: Any) -> httpx.Response:
                    return await http.post("/signals", content=raw, headers=signed(raw, **how))

                ok = await post(good)
                assert 202 == ok.status_code
                replayed = await http.post("/signals", content=good, headers=ok.request.headers)
                sideways = good.replace(b'"up"', b'"sideways"')
                cases = {
                    "replayed": (replayed, 409),
                    "bad signature": (await post(good, key=b"x"), 401),
                    "unknown provider": (await post(good, provider="evil"), 401),
                    "stale": (await post(good, ts=1_000), 401),
                    "schema": (await post(sideways), 422),
                    "not a signal": (await post(b"[1]"), 422),
                    "impersonation": (await post(good.replace(b"newswire", b"other")), 403),
                    "too large": (await post(b" " * 2000), 413),
                }
                for name, (answer, status) in cases.items():
                    assert (name, status) == (name, answer.status_code)
                    assert answer.json()["error"]
                assert "direction" in cases["schema"][0].json()["error"]
            source = StreamSource(client, streams, consumer="e", shards=[], clock=WallClock())
            got = await drain(source)
            assert [ExternalSignal] == [type(e) for e in got]
            entries = await client.xrange(streams.signals_key)
            assert entries is not None
            entry_id = entries[0][0]
            assert isinstance(entry_id, bytes)  # the client's replies stay bytes
            assert ok.json()["id"] == entry_id.decode()
        finally:
            await drop_keys(client, prefix)  # type: ignore[arg-type]
            await client.aclose()

    asyncio.run(body())


class _HandClock:
    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    def monotonic_ns(self) -> int:
        return self.now * 1_000_000


def _endpoint(clock: _HandClock, accepted: list[bytes], **config: Any) -> Any:
    async def accept(raw: bytes, recv_ms: int, provider: str) -> str:
        accepted.append(raw)
        return f"{recv_ms}-{len(accepted)}"

    return signal_app(SignalEndpointConfig(keys={"newswire": KEY}, **config), accept=accept, clock=clock)


def test_a_signal_stamped_ahead_of_the_clock_is_never_accepted_twice() -> None:
    """Remembered until its own stamp can no longer pass the skew check, not its arrival's: stamped
    at the edge of the future window, it is refused as a replay until it is refused as stale."""
    t0 = 1_767_225_647_258
    clock, accepted = _HandClock(t0), list[bytes]()
    app = _endpoint(clock, accepted, max_skew_ms=1_000)
    good = json.dumps(SIGNAL).encode()
    headers = signed(good, ts=t0 + 1_000)

    async def body() -> list[int]:
        statuses = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            for now in (t0, t0 + 1, t0 + 1_500, t0 + 2_000, t0 + 2_001):
                clock.now = now
                statuses.append((await http.post("/signals", content=good, headers=headers)).status_code)
        return statuses

    assert [202, 409, 409, 409, 401] == asyncio.run(body())
    assert [good] == accepted


def test_a_full_replay_window_refuses_new_requests_rather_than_forget_one(monkeypatch: Any) -> None:
    import polysnipe.adapters.signals_http as signals_http

    monkeypatch.setattr(signals_http, "_SEEN_MAX", 2)
    t0 = 1_767_225_647_258
    clock, accepted = _HandClock(t0), list[bytes]()
    app = _endpoint(clock, accepted, max_skew_ms=1_000)
    bodies = [json.dumps(SIGNAL | {"strength": str(n)}).encode() for n in range(3)]

    async def body() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            statuses = [
                (await http.post("/signals", content=b, headers=signed(b, ts=t0))).status_code for b in bodies
            ]
            again = await http.post("/signals", content=bodies[0], headers=signed(bodies[0], ts=t0))
            clock.now = t0 + 1_001  # both remembered ones have expired: room again
            later = await http.post("/signals", content=bodies[2], headers=signed(bodies[2], ts=t0 + 1_001))
        return [*statuses, again.status_code, later.status_code]

    assert [202, 202, 503, 409, 202] == asyncio.run(body())


def test_the_signal_endpoint_answers_every_refusal_as_json_and_never_redirects() -> None:
    app = _endpoint(_HandClock(1_767_225_647_258), [])

    async def body() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            return [
                await http.get("/nope"),
                await http.get("/signals"),
                await http.post("/healthz"),
                await http.post("/signals/", content=b"{}", headers={"host": "evil.example"}),
            ]

    answers = asyncio.run(body())
    assert [404, 405, 405, 404] == [a.status_code for a in answers]
    assert all(a.json()["error"] for a in answers)
    assert all("location" not in a.headers for a in answers)


def test_a_client_that_goes_away_mid_body_is_a_quiet_400() -> None:
    app = _endpoint(_HandClock(1_767_225_647_258), [])
    sent: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"event', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/signals", "raw_path": b"/signals", "query_string": b"",
             "root_path": "", "headers": [(b"content-length", b"100")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80)}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    assert [400] == [m["status"] for m in sent if m["type"] == "http.response.start"]


def test_signals_listen_serves_http_and_records_what_it_accepts(tmp_path: Path) -> None:
    prefix = unique_prefix()
    config = config_with(prefix, signal_providers="newswire")
    port = free_port()

    async def body() -> None:
        stop = asyncio.Event()
        job = IngestJob(listen=("127.0.0.1", port), record_dir=tmp_path)
        container = ingest_container(config)
        runner = asyncio.create_task(
            run_ingest(container, config, job, stop=stop, env={"POLYSNIPE_SIGNAL_KEY_NEWSWIRE": KEY.decode()})
        )
        good = json.dumps(SIGNAL).encode()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(100):
                try:
                    answer = await http.post("/signals", content=good, headers=signed(good))
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        assert 202 == answer.status_code
        stop.set()
        result = await runner
        assert 1 == result.signals
        events, _ = load_events(result.record_files[0])
        assert [ExternalSignal] == [type(e) for e in events]
        client = redis_client(REDIS_URL)
        assert 1 == await client.xlen(config.redis.streams().signals_key)
        await drop_keys(client, prefix)  # type: ignore[arg-type]
        await client.aclose()

    asyncio.run(body())


def test_live_feed_appends_frames_as_received_and_reopens_a_silent_connection(tmp_path: Path) -> None:
    prefix = unique_prefix()
    config = config_with(prefix, stale_data_s=1)
    [line] = [raw.rstrip(b"\n") for raw in (SAMPLE / "events.jsonl").open("rb")][:1]
    subscriptions: list[dict[str, Any]] = []

    async def body() -> None:
        async def venue(ws: ServerConnection) -> None:
            subscriptions.append(json.loads(await ws.recv()))
            await ws.send(line.decode())  # the book dump, then silence (PONGs only)
            async for message in ws:
                if message == "PING":
                    await ws.send("PONG")

        async with serve(venue, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            job = IngestJob(token_ids=["1", "2"], market_ws_url=f"ws://127.0.0.1:{port}", record_dir=tmp_path,
                            duration_s=2.5)  # fmt: skip
            result = await run_ingest(ingest_container(config), config, job, stop=asyncio.Event())
        client = redis_client(REDIS_URL)
        try:
            source = StreamSource(client, config.redis.streams(), consumer="e", shards=range(4),
                                  clock=WallClock())  # fmt: skip
            got = await drain(source)
        finally:
            await drop_keys(client, prefix)  # type: ignore[arg-type]
            await client.aclose()
        assert len(subscriptions) >= 2  # reopened after a second of no market data: resubscribed
        assert {"type": "market", "assets_ids": ["1", "2"], "custom_feature_enabled": True} == subscriptions[
            0
        ]
        assert len(subscriptions) == result.frames
        assert Counter(parse_market_line(line) * result.frames) == Counter(got)
        assert [line] * result.frames == (tmp_path / result.record_files[0].name).read_bytes().splitlines()

    asyncio.run(body())
