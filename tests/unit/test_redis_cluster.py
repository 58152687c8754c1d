"""The bus unchanged on a three-master Redis Cluster started here on loopback ports (DESIGN.md 5).

Skipped when redis-server or redis-cli is not installed; the servers are always killed.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

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


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        # a cluster node also listens on port + 10000: keep both free
        ports = [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()
    if any(p + 10_000 > 65_535 for p in ports):
        return _free_ports(n)
    return ports


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[str]:
    ports = _free_ports(3)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            node = tmp_path / str(port)
            node.mkdir()
            procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--cluster-enabled", "yes", "--cluster-config-file",
                 "nodes.conf", "--dir", str(node), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
        for port in ports:
            _wait_ping(port)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while (
            b"cluster_state:ok"
            not in subprocess.run(
                ["redis-cli", "-p", str(ports[0]), "cluster", "info"], capture_output=True, timeout=5
            ).stdout
        ):
            assert time.monotonic() < deadline, "the cluster never reached cluster_state:ok"
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait(timeout=10)


def _wait_ping(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            assert time.monotonic() < deadline, f"redis-server on {port} did not start"
            time.sleep(0.05)


def test_publish_and_consume_across_the_slots_of_a_cluster(cluster: str) -> None:
    lines = sample_lines(300)

    async def body() -> None:
        client = redis_client(cluster, cluster=True)
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
