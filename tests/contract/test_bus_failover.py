"""Two engines on a Redis Cluster bus, one killed: the standby takes the wallet and its shards over.

Engine A trades the wallet; engine B is its standby (`run --standby`), waiting on the wallet's lease.
`ingest --replay --retime` feeds the cluster while A runs; A is SIGKILLed after its first orders. B
takes the lease once it runs out, takes over from A (adapters/restart.py) and reads A's unacknowledged
entries again (one consumer per wallet). In the end every entry of every shard is acknowledged, no
order id reached the venue twice, and every opportunity has exactly one outcome.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import redis
from test_crash_recovery import KEY, _feed, _orders_journaled, acked

from conftest import DSN
from kit import market_files
from polysnipe.adapters.sim.clob import ClobSimConfig
from polysnipe.runners.sim_clob import start_in_thread
from polysnipe.tools.datagen import generate


def _leased(conn: psycopg.Connection[tuple[int]], schema: str) -> bool:
    row = conn.execute(f"SELECT count(*) FROM {schema}.wallet_leases").fetchone()
    return row is not None and row[0] > 0


def test_a_standby_engine_takes_over_a_killed_engines_wallet_and_shards(
    journal_env: str, redis_cluster: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    generate(data, seed=5, duration_s=300, markets=3, malformed=0)
    prefix = f"test:{os.getpid()}:{uuid.uuid4().hex[:8]}:"
    env = {**os.environ, "POLYSNIPE_CLOB_PRIVATE_KEY": KEY, "POLYSNIPE_REDIS_URL": redis_cluster,
           "POLYSNIPE_REDIS_CLUSTER": "true", "POLYSNIPE_REDIS_PREFIX": prefix, "POLYSNIPE_REDIS_SHARDS": "4",
           "POLYSNIPE_WALLET_LEASE_MS": "1500"}  # fmt: skip
    config = ClobSimConfig(paced_replay=True, default_usdc_micro=5_000_000_000)
    base, stop_sim = start_in_thread(market_files(data), data / "events.jsonl", config=config)
    markets = [arg for path in market_files(data) for arg in ("--markets", str(path))]
    ws = base.replace("http://", "ws://") + "/ws"
    stop_feed = threading.Event()
    feeder = threading.Thread(target=_feed, args=(base, stop_feed), daemon=True)
    client = redis.RedisCluster.from_url(redis_cluster)

    def engine(name: str, *more: str) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "polysnipe.runners.cli", "run", "--bus", *markets, "--clob-url", base,
               "--ws-url", ws, "--duration-s", "120", "--out", str(tmp_path / name), *more]  # fmt: skip
        with (tmp_path / f"{name}.err").open("wb") as err:
            return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)

    try:
        feeder.start()
        active = engine("a")
        with psycopg.connect(DSN, autocommit=True) as conn:
            deadline = time.monotonic() + 30
            while not _leased(conn, journal_env):  # A holds the wallet before its standby asks for it
                assert active.poll() is None, (tmp_path / "a.err").read_text()[-3000:]
                assert time.monotonic() < deadline, "engine A never took the wallet's lease"
                time.sleep(0.05)
            standby = engine("b", "--standby")
            with (tmp_path / "ingest.err").open("wb") as err:
                ingest = subprocess.Popen(
                    [sys.executable, "-m", "polysnipe.runners.cli", "ingest", "--replay",
                     str(data / "events.jsonl"), "--retime", "--speed", "20"],
                    env=env, stdout=subprocess.DEVNULL, stderr=err,
                )  # fmt: skip
            deadline = time.monotonic() + 60
            while not _orders_journaled(conn, journal_env) and time.monotonic() < deadline:
                time.sleep(0.05)
            active.send_signal(signal.SIGKILL)
            active.wait(10)
            assert 0 == ingest.wait(120), (tmp_path / "ingest.err").read_text()[-2000:]
            deadline = time.monotonic() + 90
            while not acked(client, prefix) and time.monotonic() < deadline:
                assert standby.poll() is None, (tmp_path / "b.err").read_text()[-3000:]
                time.sleep(0.2)
            assert acked(client, prefix), "the standby never finished the killed engine's entries"
            standby.send_signal(signal.SIGTERM)
            assert 0 == standby.wait(120), (tmp_path / "b.err").read_text()[-3000:]
            unended = conn.execute(f"SELECT count(*) FROM {journal_env}.opportunities WHERE outcome IS NULL")
            open_left = unended.fetchone()
            outbox = conn.execute(f"SELECT state FROM {journal_env}.outbox").fetchall()
        sim_orders = httpx.get(base + "/_sim/orders", timeout=10).json()
    finally:
        stop_feed.set()
        feeder.join(10)
        stop_sim()
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
        client.close()
    assert -signal.SIGKILL == active.returncode
    accepted = [
        o for o in sim_orders if o["endpoint"] in ("/order", "/orders") and o["outcome"] == "accepted"
    ]
    assert [] == [salt for salt, n in Counter(o["salt"] for o in accepted).items() if n > 1]
    assert (0,) == open_left
    assert outbox and [] == [s for (s,) in outbox if s in ("sending", "unknown")]
    # B took over from A: it found A's journaled work and went on trading
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["inputs"]["takeover"]["ids_remembered"] >= 1
    assert report["events"]["events"] > 0
