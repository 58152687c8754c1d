"""`polysnipe bench bus`: the Redis Streams bus on the configured Redis (loopback, typically).

Three figures, each under a key prefix of its own that is deleted afterwards:

* publish: entries/s of pipelined XADDs (batches of 1,000 recorded frames);
* consume: entries/s of XREADGROUP + parse (the backtest's parser) + XACK through StreamSource;
* latency: from just before a frame's XADD to its event handed out by StreamSource, one frame at a
  time (a producer pacing frames, the consumer blocking on the stream), p50/p90/p99/max over the samples
  (the p99 only from 1,000 samples on).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.parsing import parse_market_line
from polysnipe.adapters.clock import WallClock
from polysnipe.adapters.redis.config import StreamsConfig
from polysnipe.adapters.redis.factory import ping, redis_client
from polysnipe.adapters.redis.streams import RedisClient, StreamPublisher, StreamSource
from polysnipe.core.events import PriceChange

__all__ = ["format_bus", "run_bench_bus"]


def _frames(events_path: Path, n: int) -> list[bytes]:
    """`n` good frames of the recording, cycled."""
    good = []
    with events_path.open("rb") as f:
        for line in f:
            try:
                if parse_market_line(line):
                    good.append(line.rstrip(b"\n"))
            except MalformedMessage:
                continue
            if len(good) >= 5_000:
                break
    if not good:
        raise ValueError(f"{events_path} holds no usable frame")
    return [good[i % len(good)] for i in range(n)]


async def _drop(client: RedisClient, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=1_000)]
    if keys:
        await client.delete(*keys)


async def _throughput(client: RedisClient, frames: list[bytes], shards: int) -> dict[str, Any]:
    cfg = StreamsConfig(prefix=f"bench:{os.getpid()}:{uuid.uuid4().hex[:8]}:", shards=shards, batch=4_096)
    publisher = StreamPublisher(client, cfg)
    try:
        t0 = time.perf_counter()
        for start in range(0, len(frames), 1_000):
            await publisher.publish((raw, 1) for raw in frames[start : start + 1_000])
        publish_s = time.perf_counter() - t0
        source = StreamSource(client, cfg, consumer="bench", shards=range(shards), clock=WallClock())
        await source.start()
        events = 0
        t0 = time.perf_counter()
        while source.acked < publisher.published:
            batch = await source.next_batch(0.2)
            if batch:
                events += len(batch)
            source.acknowledge()
            if not batch:
                await source.flush()
        consume_s = time.perf_counter() - t0
    finally:
        await _drop(client, cfg.prefix)
    return {
        "entries": publisher.published,
        "events": events,
        "shards": shards,
        "publish_entries_per_s": round(publisher.published / publish_s),
        "consume_entries_per_s": round(publisher.published / consume_s),
    }


async def _latency(client: RedisClient, frame: bytes, samples: int) -> dict[str, Any]:
    cfg = StreamsConfig(prefix=f"bench:{os.getpid()}:{uuid.uuid4().hex[:8]}:", shards=1, block_ms=100)
    publisher = StreamPublisher(client, cfg)
    source = StreamSource(client, cfg, consumer="bench", shards=[0], clock=WallClock(), signals=False)
    await source.start()
    sent: list[int] = []
    got: list[int] = []

    async def produce() -> None:
        for _ in range(samples):
            sent.append(time.perf_counter_ns())
            await publisher.publish(((frame, 1),))
            await asyncio.sleep(0.0005)

    try:
        producer = asyncio.create_task(produce())
        while len(got) < samples:
            batch = await source.next_batch(1.0)
            now = time.perf_counter_ns()
            got.extend(now for e in batch or () if type(e) is PriceChange)
            source.acknowledge()
        await producer
        await source.flush()
    finally:
        await _drop(client, cfg.prefix)
    from polysnipe.runners.bench import tail_stats

    return tail_stats([g - s for s, g in zip(sent, got, strict=True)])


async def run_bench_bus(
    redis_url: str, events_path: Path, n: int, samples: int, *, repeat: int = 1
) -> dict[str, Any]:
    """Each figure `repeat` times, the median reported (the runs kept beside it)."""
    from polysnipe.runners.bench import medians

    client = redis_client(redis_url)
    try:
        await ping(client, redis_url)
        frames = _frames(events_path, n)
        single = next(raw for raw in frames if b'"price_change"' in raw and raw.lstrip()[:1] == b"{")
        runs: dict[str, list[dict[str, Any]]] = {
            "one_shard": [],
            "eight_shards": [],
            "xadd_to_consumed_us": [],
        }
        for _ in range(repeat):
            runs["one_shard"].append(await _throughput(client, frames, 1))
            runs["eight_shards"].append(await _throughput(client, frames, 8))
            runs["xadd_to_consumed_us"].append(await _latency(client, single, samples))
        return {
            "bench": "bus",
            "redis_url": redis_url,
            "events_file": str(events_path),
            "repeat": repeat,
            **{name: medians(rs) for name, rs in runs.items()},
            "runs": runs,
        }
    finally:
        await client.aclose()


def format_bus(result: dict[str, Any]) -> str:
    lines = []
    for name in ("one_shard", "eight_shards"):
        r = result[name]
        lines.append(
            f"bus, {r['shards']} shard(s): XADD {r['publish_entries_per_s']:,} entries/s;"
            f" XREADGROUP+parse+XACK {r['consume_entries_per_s']:,} entries/s ({r['entries']:,} entries)"
        )
    lat = result["xadd_to_consumed_us"]
    lines.append(
        f"bus latency XADD to consumed ({lat['samples']} frames): p50 {lat['p50_us']} us,"
        f" p90 {lat['p90_us']} us, p99 {lat['p99_us']} us, max {lat['max_us']} us"
    )
    return "\n".join(lines)
