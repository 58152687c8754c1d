"""`polysnipe bench live`: recorded frames through Redis Streams into the engine, journaling to Postgres.

The engine is the backtest's composition (event time, the simulated venue, the three signals) with two
gateways swapped for the live ones: its input is the bus (StreamSource: XREADGROUP, the backtest's
parser, XACK after each journal commit) and its journal is Postgres (one transaction per batch), in a
schema of the bench's own, migrated first and dropped after. Reported: entries and events per second
through the whole path, wall and CPU time, and the latency the bus adds (bench bus's XADD-to-event
figure, in the same run). Numbers are the medians of `repeat` runs.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from dependency_injector import providers
from psycopg import sql

from polysnipe.adapters.clock import WallClock
from polysnipe.adapters.metadata import load_market_files
from polysnipe.adapters.postgres.database import BUNDLED_MIGRATIONS
from polysnipe.adapters.postgres.journal import PostgresJournal, set_schema
from polysnipe.adapters.postgres.migrations import apply_migrations
from polysnipe.adapters.redis.config import StreamsConfig
from polysnipe.adapters.redis.factory import ping, redis_client
from polysnipe.adapters.redis.streams import RedisClient, StreamPublisher, StreamSource
from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.core.messages import SourceItem
from polysnipe.runners.bench_bus import _drop, _frames, _latency
from polysnipe.runners.config import EngineConfig, as_sections
from polysnipe.runners.containers import Backtest
from polysnipe.runners.inputs import connect_database

__all__ = ["DrainedSource", "format_live", "run_bench_live"]


class DrainedSource:
    """The bus source, ended once every published entry was handed out (a live source never ends)."""

    def __init__(self, source: StreamSource, total: int) -> None:
        self.source = source
        self.total = total

    async def next_batch(self, timeout_s: float | None) -> Sequence[SourceItem] | None:
        if self.source.entries >= self.total:
            return None
        return await self.source.next_batch(0.05)

    def acknowledge(self) -> None:
        self.source.acknowledge()


async def _one_run(
    client: RedisClient, conn: psycopg.Connection[Any], frames: list[bytes], markets: Sequence[Path],
    config: EngineConfig,
) -> dict[str, Any]:  # fmt: skip
    cfg = StreamsConfig(prefix=f"bench:{os.getpid()}:{uuid.uuid4().hex[:8]}:", shards=1, batch=4_096)
    publisher = StreamPublisher(client, cfg)
    try:
        for start in range(0, len(frames), 1_000):
            await publisher.publish((raw, 1) for raw in frames[start : start + 1_000])
        source = StreamSource(client, cfg, consumer="bench", shards=[0], clock=WallClock())
        drained = DrainedSource(source, publisher.published)
        registry = load_market_files(markets).registry()
        container = Backtest(registry=providers.Object(registry), source=providers.Object(drained))
        container.config.from_dict(as_sections(config))
        journal = PostgresJournal(conn, also=MemoryJournal())
        container.journal.override(providers.Object(journal))
        loop = container.loop()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        await loop.run()
        await source.flush()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        events = sum(loop.counts.values())
    finally:
        await _drop(client, cfg.prefix)
    return {"entries": publisher.published, "events": events, "wall_s": wall, "cpu_s": cpu}


async def run_bench_live(
    *, redis_url: str, database_url: str, events_path: Path, markets: Sequence[Path], config: EngineConfig,
    n: int, repeat: int, samples: int,
) -> dict[str, Any]:  # fmt: skip
    client = redis_client(redis_url)
    try:
        await ping(client, redis_url)
        frames = _frames(events_path, n)
        runs = []
        with connect_database(database_url, hint="the live bench journals into it") as conn:
            for _ in range(repeat):
                # each run journals into a fresh schema, as a new deployment's engine would
                schema = f"bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
                apply_migrations(conn, BUNDLED_MIGRATIONS, schema=schema)
                set_schema(conn, schema)
                try:
                    runs.append(await _one_run(client, conn, frames, markets, config))
                finally:
                    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        single = next(raw for raw in frames if b'"price_change"' in raw and raw.lstrip()[:1] == b"{")
        latency = await _latency(client, single, samples)
    finally:
        await client.aclose()
    median = statistics.median
    return {
        "bench": "live",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "entries": runs[0]["entries"],
        "events": runs[0]["events"],
        "repeat": repeat,
        "entries_per_s": round(median(r["entries"] / r["wall_s"] for r in runs)),
        "events_per_s": round(median(r["events"] / r["wall_s"] for r in runs)),
        "wall_s": round(median(r["wall_s"] for r in runs), 3),
        "cpu_s": round(median(r["cpu_s"] for r in runs), 3),
        # tail_stats withholds a tail it has too few samples for
        "bus_latency_us": latency,
        "peer": "none: NautilusTrader has no bus in front of its engine to compare with",
    }


def format_live(result: dict[str, Any]) -> str:
    lat = result["bus_latency_us"]
    p99 = lat["p99_us"] if isinstance(lat["p99_us"], str) else f"{lat['p99_us']} us"
    return "\n".join([
        f"live path (Redis Streams -> engine -> Postgres journal), {result['entries']:,} entries,"
        f" {result['events']:,} events, median of {result['repeat']}:",
        f"  {result['entries_per_s']:,} entries/s, {result['events_per_s']:,} events/s;"
        f" wall {result['wall_s']} s, CPU {result['cpu_s']} s",
        f"  bus latency XADD to event ({lat['samples']} frames): p50 {lat['p50_us']} us, p99 {p99}",
    ])  # fmt: skip
