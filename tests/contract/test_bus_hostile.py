"""10,000 hostile entries on the bus interleaved with the bundled sample: the engine takes every good
entry to the same decisions as a clean replay of the sample, dead-letters every bad one with its
reason, and never stops. Deterministic: the engine runs on event time against the simulated venue,
the same composition as the backtest, only its input source is the bus."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from typing import cast

import redis.asyncio as aioredis
from dependency_injector import providers
from redis.typing import EncodableT, FieldT

from kit import SAMPLE, market_files
from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.parsing import parse_market_line
from polysnipe.adapters.files import load_events
from polysnipe.adapters.metadata import load_market_files
from polysnipe.adapters.redis.config import StreamsConfig
from polysnipe.adapters.redis.factory import redis_client
from polysnipe.adapters.redis.streams import StreamSource
from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.adapters.sim.replay import ReplaySource
from polysnipe.core.events import ExternalSignal
from polysnipe.core.messages import PlaceOrder, RecordError, RecordFill, RecordOutcome, RecordRiskDecision
from polysnipe.runners.bench_live import DrainedSource
from polysnipe.runners.config import as_sections, load_config
from polysnipe.runners.containers import Backtest

REDIS_URL = os.environ.get("POLYSNIPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
HOSTILE = 10_000
TOKEN = "110707180884773722588468403667025490446408826010690630201619860749579099633625"
MARKET = "0x3d9c172411e20b8f6b0d549b6f03675a1600a35a099950d836f675cc81e74ef5"


def hostile(rng: random.Random, ts: int) -> dict[FieldT, EncodableT]:
    """One entry the engine cannot use, of a random kind."""
    kind = rng.randrange(10)
    stamp = str(ts).encode()
    base = {"event_type": "price_change", "market": MARKET, "timestamp": str(ts)}
    raws = [
        b'{"event_type": "book", "bids": [',  # truncated JSON
        bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))),  # binary junk
        b"[" * 1000 + b"]" * 1000,  # nesting 1,000 deep
        repr({**base, "price_changes": [{"asset_id": TOKEN, "price": "9" * 400, "size": "1", "side": "BUY"}]})
        .replace("'", '"')
        .encode(),  # a number far out of range
        repr({**base, "price_changes": [{"asset_id": TOKEN, "price": "0.5", "size": "-5", "side": "BUY"}]})
        .replace("'", '"')
        .encode(),  # a negative size
        repr({**base, "price_changes": [{"asset_id": TOKEN, "price": "0.5", "size": "٣", "side": "BUY"}]})
        .replace("'", '"')
        .encode(),  # Unicode digits
        b'{"event_type": "book", "asset_id": 7, "market": [], "timestamp": {}}',  # wrong types
    ]
    if kind < len(raws):
        return {b"raw": raws[kind], b"recv_ms": stamp}
    if kind == 7:
        return {b"raw": b"{}"}  # no recv_ms
    if kind == 8:
        return {b"raw": b"{}", b"recv_ms": "١٢".encode()}  # not ASCII digits
    return {b"raw": b"{}", b"recv_ms": stamp, b"extra": b"?"}  # an unknown field


def good_lines() -> list[bytes]:
    return [line.rstrip(b"\n") for line in (SAMPLE / "events.jsonl").open("rb") if line.strip()]


def decisions(journal: MemoryJournal) -> tuple[list[object], ...]:
    return (
        [(r.opportunity_id, r.kind, r.filled_size, r.avg_price) for r in journal.of(RecordOutcome)],
        [(r.opportunity_id, r.approved, r.approved_size, r.reasons) for r in journal.of(RecordRiskDecision)],
        [p.order for p in journal.of(PlaceOrder)],
        [f.fill for f in journal.of(RecordFill)],
    )


def engine(source: object) -> tuple[Backtest, MemoryJournal]:
    registry = load_market_files(market_files(SAMPLE)).registry()
    container = Backtest(registry=providers.Object(registry), source=providers.Object(source))
    container.config.from_dict(as_sections(load_config(None)))
    return container, container.journal()


def test_hostile_entries_are_dead_lettered_and_the_good_ones_decide_as_a_clean_run() -> None:
    events, _ = load_events(SAMPLE / "events.jsonl")
    # the sample's external signals reach an engine only through signals.external: put on a
    # market-data stream (as below) they are dead-lettered, so the clean run goes without them
    clean, clean_journal = engine(ReplaySource([e for e in events if type(e) is not ExternalSignal]))
    asyncio.run(clean.loop().run())
    asyncio.run(clean.loop().drain("end_of_data"))

    rng = random.Random(13)
    lines = good_lines()
    config = StreamsConfig(prefix=f"test:{os.getpid()}:{uuid.uuid4().hex[:8]}:", shards=1)
    entries: list[dict[FieldT, EncodableT]] = [{b"raw": line, b"recv_ms": b"1767225600000"} for line in lines]
    for _ in range(HOSTILE):
        entries.insert(rng.randrange(len(entries) + 1), hostile(rng, 1767225600000 + rng.randrange(10**6)))

    async def on_bus() -> tuple[MemoryJournal, int, int, list[bytes]]:
        client = redis_client(REDIS_URL)
        assert isinstance(client, aioredis.Redis)
        try:
            pipe = client.pipeline(transaction=False)
            for fields in entries:
                pipe.xadd(config.md_key(0), fields)
            await pipe.execute()
            source = StreamSource(client, config, consumer="engine.test", shards=[0], clock=_Clock(),
                                  signals=False)  # fmt: skip
            container, journal = engine(DrainedSource(source, len(entries)))
            loop = container.loop()
            await loop.run()
            await loop.drain("end_of_data")
            await source.flush()
            # redis-py types an entry for decode_responses=True and trimmed entries too: ours are bytes
            dead = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(config.dead_key("md.0")))
            pending = await client.xpending(config.md_key(0), config.group)
            return journal, len(dead), int(pending["pending"]), [d[1][b"reason"] for d in dead]
        finally:
            keys = [k async for k in client.scan_iter(match=config.prefix + "*", count=1000)]
            if keys:
                await client.delete(*keys)
            await client.aclose()

    bus_journal, dead, pending, reasons = asyncio.run(on_bus())
    # the sample plants one malformed line of its own: it is dead-lettered beside the hostile ones
    planted = len(lines) - sum(1 for line in lines if _parses(line))
    signals = sum(1 for line in lines if _parses(line) and type(parse_market_line(line)[0]) is ExternalSignal)
    assert 4 == signals
    planted += signals
    assert HOSTILE + planted == dead
    assert signals == sum(1 for r in reasons if b"not external signals" in r)
    assert all(reasons)
    assert 0 == pending  # everything handed out was acknowledged
    assert HOSTILE + planted == len(bus_journal.of(RecordError))
    assert decisions(clean_journal) == decisions(bus_journal)
    assert decisions(clean_journal)[2], "the clean run placed no order: the comparison proves little"


class _Clock:
    def now_ms(self) -> int:
        return 1767225600000

    def monotonic_ns(self) -> int:
        return 0


def _parses(line: bytes) -> bool:
    try:
        parse_market_line(line)
    except MalformedMessage:
        return False
    return True
