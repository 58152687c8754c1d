"""The bus unchanged on a three-master Redis Cluster started here on loopback ports (DESIGN.md 5).

Skipped when redis-server or redis-cli is not installed; the servers are always killed.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter

import pytest
import redis.asyncio as aioredis
from test_redis_streams import drain, sample_lines, unique_prefix

from polysnipe.adapters.clob.parsing import parse_market_line
from polysnipe.adapters.clock import WallClock
from polysnipe.adapters.redis.config import StreamsConfig
from polysnipe.adapters.redis.factory import redis_client
from polysnipe.adapters.redis.streams import StreamPublisher, StreamSource

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
    reason="redis-server / redis-cli not installed",
)


def test_publish_and_consume_across_the_slots_of_a_cluster(redis_cluster: str) -> None:
    lines = sample_lines(300)

    async def body() -> None:
        client = redis_client(redis_cluster, cluster=True)
        assert isinstance(client, aioredis.RedisCluster)
        cfg = StreamsConfig(prefix=unique_prefix(), shards=6, claim_idle_ms=100, claim_every_ms=50)
        try:
            await StreamPublisher(client, cfg).publish((line, 1) for line in lines)
            slots = {client.keyslot(cfg.md_key(s)) for s in range(cfg.shards)}
            assert len(slots) > 1  # the shards really are spread over the cluster
            assert client.keyslot(cfg.md_key(3)) == client.keyslot(cfg.dead_key("md.3"))
            dying = StreamSource(client, cfg, consumer="dying", shards=range(6), clock=WallClock())
            survivor = StreamSource(client, cfg, consumer="survivor", shards=range(6), clock=WallClock())
            await survivor.start()
            held = await dying.next_batch(0.05)
            assert held
            first = await drain(survivor)
            await asyncio.sleep(0.2)
            reclaimed = await drain(survivor)
            expected = [e for line in lines for e in parse_market_line(line, ts_recv_ms=1)]
            assert Counter(expected) == Counter(first + reclaimed)
            survivor.acknowledge()
            await survivor.flush()
            for key in survivor.keys:
                assert 0 == (await client.xpending(key, cfg.group))["pending"]
        finally:
            await client.aclose()

    asyncio.run(body())
