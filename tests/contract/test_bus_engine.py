"""The live engine on the bus, end to end: `polysnipe ingest --replay` writes a recording to Redis
Streams, `polysnipe run --bus` trades it against the CLOB simulator, journals in Postgres, and
acknowledges every entry it consumed; `polysnipe status` shows what it did."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx
import psycopg
import redis

from conftest import DSN
from kit import market_files
from polysnipe.adapters.redis.config import StreamsConfig
from polysnipe.adapters.sim.clob import ClobSimConfig
from polysnipe.runners.sim_clob import start_in_thread
from polysnipe.tools.datagen import generate

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # a public anvil test key
REDIS_URL = os.environ.get("POLYSNIPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _cli(
    *args: str, env: dict[str, str], out: Path, timeout_s: float = 180
) -> subprocess.CompletedProcess[str]:
    with out.open("w") as err:
        done = subprocess.run([sys.executable, "-m", "polysnipe.runners.cli", *args], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=err, timeout=180, check=False)  # fmt: skip
    return done


def test_ingest_replay_and_run_on_the_bus_trade_end_to_end(journal_env: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, seed=5, duration_s=120, markets=3, malformed=0)
    prefix = f"test:{os.getpid()}:{uuid.uuid4().hex[:8]}:"
    env = {**os.environ, "POLYSNIPE_CLOB_PRIVATE_KEY": KEY, "POLYSNIPE_REDIS_URL": REDIS_URL,
           "POLYSNIPE_REDIS_PREFIX": prefix, "POLYSNIPE_REDIS_SHARDS": "2"}  # fmt: skip
    config = ClobSimConfig(paced_replay=True, default_usdc_micro=5_000_000_000)
    base, stop_sim = start_in_thread(market_files(data), data / "events.jsonl", config=config)
    markets = [arg for path in market_files(data) for arg in ("--markets", str(path))]
    stop_feed = threading.Event()

    def feed() -> None:
        with httpx.Client(base_url=base, timeout=5.0) as client:
            while (
                not stop_feed.is_set() and client.post("/_sim/advance", json={"count": 200}).json()["pending"]
            ):
                stop_feed.wait(0.02)

    feeder = threading.Thread(target=feed, daemon=True)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        feeder.start()
        ws = base.replace("http", "ws") + "/ws"
        # the engine first, then the recording, re-timed to now and paced: what a live feed looks like
        with (tmp_path / "run.err").open("w") as err:
            engine = subprocess.Popen(
                [sys.executable, "-m", "polysnipe.runners.cli", "run", "--bus", *markets, "--clob-url", base,
                 "--ws-url", ws, "--duration-s", "25", "--out", str(tmp_path / "out")],
                env=env, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        # a hostile frame carrying NUL (which Postgres text cannot hold) among them: dead-lettered and
        # in the errors table, and the engine goes on
        streams_config = StreamsConfig(prefix=prefix, shards=2)
        client.xadd(
            streams_config.md_key(0), {b"raw": b'{"event_type": "bo\x00ok"', b"recv_ms": b"1767225600000"}
        )
        ingest = _cli("ingest", "--replay", str(data / "events.jsonl"), "--retime", "--speed", "10", env=env,
                      out=tmp_path / "ingest.err")  # fmt: skip
        assert 0 == ingest.returncode, (tmp_path / "ingest.err").read_text()[-2000:]
        assert 0 == engine.wait(120), (tmp_path / "run.err").read_text()[-3000:]
        status = _cli("status", env=env, out=tmp_path / "status.err")
        sim_orders = httpx.get(base + "/_sim/orders", timeout=10).json()
        keys = [k for k in client.scan_iter(match=prefix + "{md.*}", count=1000) if not k.endswith(b".dead")]
        streams = {k: client.xinfo_stream(k) for k in keys}
        groups = {k: client.xinfo_groups(k) for k in keys}
    finally:
        stop_feed.set()
        feeder.join(10)
        stop_sim()
        for k in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(k)
    assert sum(info["length"] for info in streams.values()) > 100
    # every entry of every shard was delivered to the wallet's group and acknowledged
    for key, infos in groups.items():
        (group,) = infos
        last = streams[key]["last-generated-id"]
        assert (0, last) == (group["pending"], group["last-delivered-id"]), key
    assert [o for o in sim_orders if o["endpoint"] in ("/order", "/orders")], "no order reached the venue"
    with psycopg.connect(DSN) as conn:
        opened, ended = conn.execute(
            f"SELECT count(*), count(outcome) FROM {journal_env}.opportunities"
        ).fetchone() or (0, 0)
        errors = conn.execute(f"SELECT reason, payload FROM {journal_env}.errors").fetchall()
    assert opened > 0 and opened == ended
    assert [payload for _, payload in errors if "\\u0000" in (payload or "")], errors
    assert 0 == status.returncode
    assert "outbox:" in status.stdout
    # the bus table: the wallet's group on each shard, nothing pending
    bus = [line.split() for line in status.stdout.splitlines() if line.strip().startswith("{md.")]
    assert bus and all("engine.0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266" == row[2] for row in bus)
    assert all("0" == row[4] for row in bus), status.stdout
