"""The Redis Streams bus on the real Redis (127.0.0.1:6379), a key prefix of its own per test.

The engine side parses `raw` with the backtest's parser, acks only on acknowledge(), reclaims a dead
consumer's entries, and dead-letters whatever it cannot use without ever raising.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import msgspec
import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from kit import SAMPLE
from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.parsing import parse_market_line
from polysnipe.adapters.clock import WallClock
from polysnipe.adapters.redis.config import StreamsConfig, md_stream, shard_of
from polysnipe.adapters.redis.factory import redis_client
from polysnipe.adapters.redis.parsing import route_frame
from polysnipe.adapters.redis.streams import StreamPublisher, StreamSource
from polysnipe.core.events import ExternalSignal
from polysnipe.core.messages import RaiseAlert, RecordError

REDIS_URL = os.environ.get("POLYSNIPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
T = TypeVar("T")


def unique_prefix() -> str:
    return f"test:{os.getpid()}:{uuid.uuid4().hex[:8]}:"


async def drop_keys(client: aioredis.Redis, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
    if keys:
        await client.delete(*keys)


def on_redis(body: Callable[[aioredis.Redis, StreamsConfig], Awaitable[T]], **config: Any) -> T:
    """Run `body` with a client and a config whose prefix no other test uses; keys dropped after."""

    async def run() -> T:
        client = redis_client(REDIS_URL)
        assert isinstance(client, aioredis.Redis)
        cfg = StreamsConfig(prefix=unique_prefix(), **config)
        try:
            return await body(client, cfg)
        finally:
            await drop_keys(client, cfg.prefix)
            await client.aclose()

    return asyncio.run(run())


def sample_lines(n: int) -> list[bytes]:
    """The first `n` good lines of the bundled sample (it plants malformed ones too)."""
    out = []
    with (SAMPLE / "events.jsonl").open("rb") as f:
        for line in f:
            try:
                parse_market_line(line)
            except MalformedMessage:
                continue
            out.append(line.rstrip(b"\n"))
            if len(out) == n:
                break
    return out


async def drain(source: StreamSource, *, idle_rounds: int = 2, timeout_s: float = 0.05) -> list[Any]:
    """Everything the source hands out until it is quiet for `idle_rounds` reads."""
    out: list[Any] = []
    quiet = 0
    while quiet < idle_rounds:
        batch = await source.next_batch(timeout_s)
        assert batch is not None
        if batch:
            out.extend(batch)
            quiet = 0
        else:
            quiet += 1
    return out


def source_of(client: aioredis.Redis, cfg: StreamsConfig, consumer: str = "e1", **kw: Any) -> StreamSource:
    return StreamSource(client, cfg, consumer=consumer, shards=range(cfg.shards), clock=WallClock(), **kw)


# -- routing ---------------------------------------------------------------------------------------
def test_shard_of_is_a_stable_hash_not_pythons() -> None:
    # CRC-32 of the text: the same value in every process (Python's str hash is salted)
    market = "0x3d9c172411e20b8f6b0d549b6f03675a1600a35a099950d836f675cc81e74ef5"
    assert 2 == shard_of(market, 8)
    assert 62 == shard_of(market, 100)


def test_a_frame_spanning_shards_is_split_keeping_each_message_byte_for_byte() -> None:
    cfg = StreamsConfig(shards=64)
    a = b'{"market":"0xaa","asset_id":"1","event_type":"book", "bids":[],"asks":[]}'
    b = b'{ "market" : "0xbb","asset_id":"2","event_type":"book","bids":[],"asks":[]}'
    assert shard_of("0xaa", 64) != shard_of("0xbb", 64)
    routed = dict(route_frame(b"[" + a + b", " + b + b", " + a + b"]", cfg))
    assert {md_stream(shard_of("0xaa", 64)): b"[" + a + b"," + a + b"]",
            md_stream(shard_of("0xbb", 64)): b"[" + b + b"]"} == routed  # fmt: skip


def test_one_shard_frames_signals_and_junk_are_routed_whole() -> None:
    cfg = StreamsConfig(shards=8)
    line = sample_lines(1)[0]
    market = msgspec.json.decode(line)[0]["market"]
    assert [(md_stream(shard_of(market, 8)), line)] == route_frame(line, cfg)
    signal = b'{"event_type":"external_signal","asset_id":"1"}'
    assert [("signals.external", signal)] == route_frame(signal, cfg)
    for junk in (b"\xff\xfe", b"[" * 5000, b'{"no_market":1}', b"[]", b'{"market":7}'):
        assert [("md.0", junk)] == route_frame(junk, cfg)


# -- round trip ------------------------------------------------------------------------------------
def test_published_frames_come_back_parsed_exactly_as_the_backtest_parses_them() -> None:
    with (SAMPLE / "events.jsonl").open("rb") as f:
        signals = [line.rstrip(b"\n") for line in f if b"external_signal" in line][:3]
    lines = sample_lines(400) + signals

    async def body(client: aioredis.Redis, cfg: StreamsConfig) -> None:
        recv = 1_767_225_600_123
        ids = await StreamPublisher(client, cfg).publish((line, recv) for line in lines)
        assert len(ids) >= len(lines)
        got = await drain(source_of(client, cfg))
        expected = [e for line in lines for e in parse_market_line(line, ts_recv_ms=recv)]
        assert Counter(expected) == Counter(got)
        assert any(type(e) is ExternalSignal for e in got)

    on_redis(body, shards=4)


def test_entries_are_acked_only_on_acknowledge() -> None:
    lines = sample_lines(50)

    async def body(client: aioredis.Redis, cfg: StreamsConfig) -> None:
        await StreamPublisher(client, cfg).publish((line, 1) for line in lines)
        source = source_of(client, cfg)
        assert await drain(source)

        async def pending() -> int:
            total = 0
            for key in source.keys:
                total += (await client.xpending(key, cfg.group))["pending"]
            return total

        handed = source.unacknowledged
        assert handed == await pending()
        await source.flush()  # nothing acknowledged yet: nothing acked
        assert handed == await pending()
        source.acknowledge()
        assert handed == await pending()  # queued: the XACKs go with the next read
        assert [] == await source.next_batch(0.01)
        assert 0 == await pending()
        assert handed == source.acked

    on_redis(body, shards=2)


def test_a_restarted_consumer_gets_its_own_unacked_entries_again() -> None:
    lines = sample_lines(30)

    async def body(client: aioredis.Redis, cfg: StreamsConfig) -> None:
        await StreamPublisher(client, cfg).publish((line, 1) for line in lines)
        first = await drain(source_of(client, cfg, "e1"))
        again = await drain(source_of(client, cfg, "e1"))  # same name, fresh process: no ack happened
        assert Counter(first) == Counter(again)

    on_redis(body, shards=2)


def test_a_dead_consumers_pending_entries_are_reclaimed_and_finished_by_the_other() -> None:
    lines = sample_lines(200)

    async def body(client: aioredis.Redis, cfg: StreamsConfig) -> None:
        await StreamPublisher(client, cfg).publish((line, 1) for line in lines)
        dying = source_of(client, cfg, "dying")
        survivor = source_of(client, cfg, "survivor")
        await survivor.start()
        held = await dying.next_batch(0.05)  # read, never acknowledged: it "dies" holding them
        assert held
        rest = await drain(survivor)
        await asyncio.sleep(cfg.claim_idle_ms / 1000 + 0.05)
        reclaimed = await drain(survivor)
        assert survivor.claimed >= dying.unacknowledged > 0
        expected = [e for line in lines for e in parse_market_line(line, ts_recv_ms=1)]
        assert Counter(expected) == Counter(rest + reclaimed)
        survivor.acknowledge()
        await survivor.flush()
        for key in survivor.keys:
            assert 0 == (await client.xpending(key, cfg.group))["pending"]

    on_redis(body, shards=2, claim_idle_ms=100, claim_every_ms=50, batch=64)


# -- hostile entries -------------------------------------------------------------------------------
HOSTILE: Sequence[tuple[dict[FieldT, EncodableT], str]] = (
    ({b"raw": b'{"event_type":"book",', b"recv_ms": b"1"}, "invalid JSON"),
    ({b"raw": bytes(range(256)), b"recv_ms": b"1"}, "invalid JSON"),
    ({b"raw": b"[" * 1000 + b"]" * 1000, b"recv_ms": b"1"}, "invalid message"),
    ({b"raw": b'{"event_type":"price_change","market":"0x1","timestamp":"1","price_changes":'
              b'[{"asset_id":"1","price":"0.5","size":"1' + b"9" * 400 + b'","side":"BUY"}]}',
      b"recv_ms": b"1"}, "too many digits"),
    ({b"raw": b'{"event_type":"book","market":"0x1","asset_id":"1","timestamp":"1' + b"0" * 30 + b'",'
              b'"bids":[],"asks":[]}', b"recv_ms": b"1"}, "timestamp"),
    ({b"recv_ms": b"1"}, "missing field raw"),
    ({b"raw": b"{}"}, "missing field recv_ms"),
    ({b"raw": b'{"event_type":"book"}', b"recv_ms": b"1", b"evil": b"x"}, "unknown field"),
    ({b"raw": b'{"event_type":"book"}', b"recv_ms": "١٢".encode()}, "recv_ms"),
    ({b"raw": b'{"event_type":"book","market":"0x1","asset_id":"1","timestamp":"1","bids":'
              b'[{"price":"-0.5","size":"1"}],"asks":[]}', b"recv_ms": b"1"}, "price outside [0, 1]"),
)  # fmt: skip


def test_hostile_entries_are_dead_lettered_with_their_reason_and_good_ones_go_through() -> None:
    good = sample_lines(20)

    async def body(client: aioredis.Redis, cfg: StreamsConfig) -> None:
        key = cfg.md_key(0)
        for i, line in enumerate(good):
            await client.xadd(key, {b"raw": line, b"recv_ms": b"1"})
            fields, _ = HOSTILE[i % len(HOSTILE)]
            await client.xadd(key, fields)
        # the signal stream takes external signals only: a book there is refused too
        await client.xadd(cfg.signals_key, {b"raw": good[0], b"recv_ms": b"1", b"provider": b"x"})
        source = StreamSource(client, cfg, consumer="e", shards=[0], clock=WallClock())
        got = await drain(source)
        errors = [e for e in got if type(e) is RecordError]
        events = [e for e in got if type(e) is not RecordError]
        expected = [e for line in good for e in parse_market_line(line, ts_recv_ms=1)]
        assert Counter(expected) == Counter(events)
        assert len(good) + 1 == len(errors) == source.dead
        for i, error in enumerate(errors[:-1]):
            assert HOSTILE[i % len(HOSTILE)][1] in error.reason
        assert "external signals only" in errors[-1].reason
        # redis-py types an entry for decode_responses=True and trimmed entries too: ours are bytes
        dead = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(cfg.dead_key("md.0")))
        assert [e.position for e in errors[:-1]] == [f[b"source_id"].decode() for _, f in dead]
        assert [e.reason for e in errors[:-1]] == [f[b"reason"].decode() for _, f in dead]
        assert HOSTILE[1][0][b"raw"] == dead[1][1][b"raw"]
        assert 1 == await client.xlen(cfg.dead_key("signals.external"))
        source.acknowledge()
        await source.flush()
        assert 0 == (await client.xpending(key, cfg.group))["pending"]  # dead letters are acked too

    on_redis(body, shards=1)


def test_a_lost_redis_is_an_alert_and_an_empty_batch_never_an_exception() -> None:
    async def body() -> None:
        client = redis_client("redis://127.0.0.1:1/0", timeout_s=0.2)
        source = StreamSource(client, StreamsConfig(prefix=unique_prefix()), consumer="e", shards=[0],
                              clock=WallClock())  # fmt: skip
        started = time.monotonic()
        first = await source.next_batch(0.05)
        second = await source.next_batch(0.05)
        assert first is not None and [type(a).__name__ for a in first] == ["RaiseAlert"]
        assert [] == second  # one alert per outage
        assert time.monotonic() - started < 5
        source.close()
        assert await source.next_batch(0.05) is None
        await client.aclose()

    asyncio.run(body())


# -- Redis refusing, groups and entries vanishing ---------------------------------------------------
def _alerts(items: Sequence[Any], code: str) -> list[RaiseAlert]:
    return [a for a in items if type(a) is RaiseAlert and a.code == code]


def test_a_refused_dead_letter_is_an_alert_the_entry_is_recorded_and_acked_and_the_rest_goes_on() -> None:
    """With the dead letters refused (here a key of another type; out of memory alike), the error
    escaped next_batch and stopped the engine, and the unacked entry stopped it again on restart."""
    good = sample_lines(5)

    async def body(client: aioredis.Redis, cfg: StreamsConfig) -> None:
        key = cfg.md_key(0)
        await client.set(cfg.dead_key("md.0"), b"not a stream")
        await client.xadd(key, {b"raw": b"junk", b"recv_ms": b"1"})
        for line in good:
            await client.xadd(key, {b"raw": line, b"recv_ms": b"1"})
        source = StreamSource(client, cfg, consumer="e", shards=[0], clock=WallClock(), signals=False)
        got = await drain(source)
        assert 1 == len(_alerts(got, "dead_letter_failed"))
        assert ["junk"] == [e.payload for e in got if type(e) is RecordError]
        assert Counter(e for line in good for e in parse_market_line(line, ts_recv_ms=1)) == Counter(
            e for e in got if type(e) not in (RecordError, RaiseAlert)
        )
        source.acknowledge()
        await source.flush()
        assert 0 == (await client.xpending(key, cfg.group))["pending"]

    on_redis(body, shards=1)


def test_a_redis_that_refuses_reads_is_one_alert_and_a_pause_not_a_flood() -> None:
    async def body(client: aioredis.Redis, cfg: StreamsConfig) -> None:
        await client.set(cfg.md_key(0), b"a string where the stream should be")
        source = StreamSource(client, cfg, consumer="e", shards=[0], clock=WallClock(), signals=False)
        started = time.monotonic()
        batches = [await source.next_batch(0.05) for _ in range(6)]
        items = [a for b in batches for a in b or ()]
        [alert] = _alerts(items, "bus_read_failed")
        assert [alert] == items
        assert "WRONGTYPE" in alert.message
        assert time.monotonic() - started >= 0.25  # a pause between tries

    on_redis(body, shards=1)


def test_a_group_deleted_under_the_engine_is_an_alert_and_comes_back_after_what_it_saw() -> None:
    """Recreated from the stream's first entry, it handed out again everything the stream kept (up
    to maxlen entries of old market data into a live engine)."""
    lines = sample_lines(30)

    async def body(client: aioredis.Redis, cfg: StreamsConfig) -> None:
        key = cfg.md_key(0)
        for line in lines[:10]:
            await client.xadd(key, {b"raw": line, b"recv_ms": b"1"})
        source = StreamSource(client, cfg, consumer="e", shards=[0], clock=WallClock(), signals=False)
        first = await drain(source)
        await client.xgroup_destroy(key, cfg.group)
        for line in lines[10:]:
            await client.xadd(key, {b"raw": line, b"recv_ms": b"1"})
        rest = await drain(source)
        assert 1 == len(_alerts(rest, "stream_group_missing"))
        events = [e for e in first + rest if type(e) is not RaiseAlert]
        assert Counter(e for line in lines for e in parse_market_line(line, ts_recv_ms=1)) == Counter(events)

    on_redis(body, shards=1)


def test_a_dead_consumers_trimmed_entries_are_one_alert() -> None:
    """XAUTOCLAIM reports a dead engine's pending entries that MAXLEN trimmed: they were only logged."""

    async def body(client: aioredis.Redis, cfg: StreamsConfig) -> None:
        key = cfg.md_key(0)
        for line in sample_lines(5):
            await client.xadd(key, {b"raw": line, b"recv_ms": b"1"})
        dying = StreamSource(client, cfg, consumer="dying", shards=[0], clock=WallClock(), signals=False)
        assert await dying.next_batch(0.05)
        await client.xtrim(key, maxlen=0)
        await asyncio.sleep(cfg.claim_idle_ms / 1000 + 0.05)
        survivor = StreamSource(
            client, cfg, consumer="survivor", shards=[0], clock=WallClock(), signals=False
        )
        got = await drain(survivor)
        [alert] = _alerts(got, "stream_entries_trimmed")
        assert alert.message.startswith("5 pending entries")
        assert 5 == survivor.trimmed

    on_redis(body, shards=1, claim_idle_ms=100, claim_every_ms=50)


def test_signals_on_a_market_data_stream_are_dead_lettered_and_a_misspelt_entry_keeps_its_content() -> None:
    """A signal put on md.<k> went around the authenticated /signals endpoint and was traded on; an
    entry whose `raw` was misspelt reached the dead letters empty."""
    signal = next(line for line in sample_lines(10**6) if type(parse_market_line(line)[0]) is ExternalSignal)

    async def body(client: aioredis.Redis, cfg: StreamsConfig) -> None:
        key = cfg.md_key(0)
        await client.xadd(key, {b"raw": signal, b"recv_ms": b"1"})
        await client.xadd(key, {b"data": b"the frame", b"recv_ms": b"1"})
        source = StreamSource(client, cfg, consumer="e", shards=[0], clock=WallClock(), signals=False)
        got = await drain(source)
        on_md, misspelt = [e for e in got if type(e) is RecordError]
        assert not [e for e in got if type(e) is ExternalSignal]
        assert "not external signals" in on_md.reason
        assert "data=the frame\nrecv_ms=1" == misspelt.payload
        dead = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(cfg.dead_key("md.0")))
        assert [signal, b"data=the frame\nrecv_ms=1"] == [f[b"raw"] for _, f in dead]

    on_redis(body, shards=1)
