"""Exactly-once orders across crashes: `polysnipe run` SIGKILLed at random instants, restarted each time.

The engine trades the CLOB simulator's paced replay through real processes on a real journal. After
every kill the next run takes over (adapters/restart.py). In the end no order id reached the venue
twice (its signing salt derives from the order id, so two requests the venue received with one salt
would be one order sent twice), every order the venue received was claimed in the outbox first, no
outbox entry is left unresolved, and every opportunity has exactly one outcome in the journal.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from conftest import DSN
from kit import market_files
from polysnipe.adapters.sim.clob import ClobSimConfig
from polysnipe.runners.sim_clob import start_in_thread
from polysnipe.tools.datagen import generate

# a public anvil test key: nothing here is a secret
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TRIALS = int(os.environ.get("POLYSNIPE_CRASH_TRIALS", "10"))
REDIS_URL = os.environ.get("POLYSNIPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _feed(base: str, stop: threading.Event) -> None:
    """Keep the simulator's replay moving, as a live market would."""
    with httpx.Client(base_url=base, timeout=5.0) as client:
        while not stop.is_set():
            if not client.post("/_sim/advance", json={"count": 100}).json()["pending"]:
                return
            stop.wait(0.05)


def _orders_journaled(conn: psycopg.Connection, schema: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {schema}.outbox").fetchone()
    return int(row[0]) if row else 0


def _holds_lease(conn: psycopg.Connection, schema: str, pid: int) -> bool:
    """Does the engine process `pid` hold the wallet's lease (its incarnation is host:pid:start)?"""
    rows = conn.execute(f"SELECT holder FROM {schema}.wallet_leases").fetchall()
    return any(holder.split(":")[-2] == str(pid) for (holder,) in rows)


def acked(client: redis.Redis | redis.RedisCluster, prefix: str) -> bool:
    """Every entry of every market-data stream under `prefix` delivered to every group and acked."""
    keys = [k for k in client.scan_iter(match=prefix + "{md.*}", count=1000) if not k.endswith(b".dead")]
    for key in keys:
        last = client.xinfo_stream(key)["last-generated-id"]
        for group in client.xinfo_groups(key):
            if group["pending"] or group["last-delivered-id"] != last:
                return False
    return bool(keys)


@pytest.mark.parametrize(("feed", "trials"), [("bus", TRIALS), ("ws", 3)])
def test_sigkilled_engines_never_place_an_order_twice(
    journal_env: str, tmp_path: Path, feed: str, trials: int
) -> None:
    """`bus`: `ingest --replay --retime` feeds Redis Streams while `run --bus` engines are killed; in
    the end every entry was processed or dead-lettered and acknowledged. `ws`: the engines read the
    simulator's market channel."""
    schema = journal_env
    data = tmp_path / "data"
    generate(data, seed=11, duration_s=3600, markets=3, malformed=0)
    config = ClobSimConfig(paced_replay=True, default_usdc_micro=5_000_000_000)
    base, stop_sim = start_in_thread(market_files(data), data / "events.jsonl", config=config)
    ws = base.replace("http://", "ws://") + "/ws"
    env = {**os.environ, "POLYSNIPE_CLOB_PRIVATE_KEY": KEY, "POLYSNIPE_DATABASE_URL": DSN,
           "POLYSNIPE_DATABASE_SCHEMA": schema, "POLYSNIPE_WALLET_LEASE_MS": "1000",
           "POLYSNIPE_REDIS_URL": REDIS_URL, "POLYSNIPE_REDIS_PREFIX": f"test:{uuid.uuid4().hex[:12]}:",
           "POLYSNIPE_REDIS_SHARDS": "2"}  # fmt: skip
    prefix = env["POLYSNIPE_REDIS_PREFIX"]
    client = redis.Redis.from_url(REDIS_URL)
    bus = ["--bus"] if feed == "bus" else []
    ingest: subprocess.Popen[bytes] | None = None
    markets = [arg for path in market_files(data) for arg in ("--markets", str(path))]
    stop_feed = threading.Event()
    feeder = threading.Thread(target=_feed, args=(base, stop_feed), daemon=True)
    rng = random.Random(3)
    codes: list[int] = []

    def engine(i: int, duration_s: float) -> subprocess.Popen[bytes]:
        out = str(tmp_path / f"run{i}")
        cmd = [sys.executable, "-m", "polysnipe.runners.cli", "run", *bus, *markets, "--clob-url", base,
               "--ws-url", ws, "--duration-s", str(duration_s), "--out", out]  # fmt: skip
        # stderr to a file: a pipe nobody reads fills up and blocks the engine
        with (tmp_path / f"run{i}.err").open("wb") as err:
            return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)

    try:
        feeder.start()
        if bus:
            with (tmp_path / "ingest.err").open("wb") as err:
                ingest = subprocess.Popen(
                    [sys.executable, "-m", "polysnipe.runners.cli", "ingest", "--replay",
                     str(data / "events.jsonl"), "--retime", "--speed", "20"],
                    env=env, stdout=subprocess.DEVNULL, stderr=err,
                )  # fmt: skip
        with psycopg.connect(DSN, autocommit=True) as conn:
            for i in range(trials):
                proc = engine(i, 60.0)
                before = _orders_journaled(conn, schema)
                # kill at a random instant around the engine's orders: just before one is claimed,
                # between its claim and its POST, while the answer is on its way, or later
                deadline = time.monotonic() + 12.0
                while time.monotonic() < deadline and proc.poll() is None:
                    if _orders_journaled(conn, schema) > before:
                        break
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.0, 0.4))
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                codes.append(proc.returncode)
            if ingest is not None:
                ingest.terminate()  # what it published so far must all be consumed
                ingest.wait(30)
            last = engine(trials, 120.0 if bus else 4.0)
            if bus:
                deadline = time.monotonic() + 90
                while not acked(client, prefix) and time.monotonic() < deadline:
                    assert last.poll() is None, (tmp_path / f"run{trials}.err").read_text()[-2000:]
                    time.sleep(0.2)
                assert acked(client, prefix), "entries were left unprocessed or unacknowledged"
                # the entries may all have been acked by the killed engines: the last one may still be
                # starting. Holding the lease, it handles SIGTERM (its handler comes first).
                while not _holds_lease(conn, schema, last.pid) and time.monotonic() < deadline:
                    assert last.poll() is None, (tmp_path / f"run{trials}.err").read_text()[-2000:]
                    time.sleep(0.05)
                last.send_signal(signal.SIGTERM)
            last.wait(120)
            assert 0 == last.returncode, (tmp_path / f"run{trials}.err").read_text()[-2000:]
            outbox = conn.execute(f"SELECT order_id, order_hash, state FROM {schema}.outbox").fetchall()
            unended = conn.execute(
                f"SELECT count(*) FROM {schema}.opportunities WHERE outcome IS NULL"
            ).fetchone()
            opportunities = conn.execute(f"SELECT count(*) FROM {schema}.opportunities").fetchone()
        sim_orders = httpx.get(base + "/_sim/orders", timeout=10).json()
    finally:
        stop_feed.set()
        feeder.join(10)
        stop_sim()
        if ingest is not None and ingest.poll() is None:
            ingest.kill()
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
        client.close()
    # a run may have ended on its own (it is never meant to before its kill): none may have failed
    assert all(c in (-signal.SIGKILL, 0) for c in codes), codes
    # every order the venue looked at (its hash computed), whatever it answered: a FAK order that
    # found nothing is rejected, and under load most decisions meet a book that has moved on
    received = [o for o in sim_orders if o["order_hash"] and o["endpoint"] in ("/order", "/orders")]
    outcomes = Counter((o["endpoint"], o["outcome"]) for o in sim_orders)
    assert received, f"the engines sent no order: the test proves nothing ({dict(outcomes)})"
    # no order id sent twice: one request per salt, one outbox row per order id
    assert [] == [salt for salt, n in Counter(o["salt"] for o in received).items() if n > 1]
    claimed = {order_hash for _, order_hash, _ in outbox}
    assert {o["order_hash"] for o in received} <= claimed
    assert [] == [(oid, state) for oid, _, state in outbox if state in ("sending", "unknown")]
    assert opportunities is not None and opportunities[0] > 0
    assert (0,) == unended


def _one_engine(
    journal_env: str, tmp_path: Path
) -> tuple[str, Callable[[], None], dict[str, str], list[str]]:
    """A paced CLOB simulator over a generated 600 s set and what one `run` against it needs:
    (base url, stop the simulator, environment, --markets arguments)."""
    data = tmp_path / "data"
    generate(data, seed=11, duration_s=600, markets=3, malformed=0)
    config = ClobSimConfig(paced_replay=True, default_usdc_micro=5_000_000_000)
    base, stop_sim = start_in_thread(market_files(data), data / "events.jsonl", config=config)
    env = {**os.environ, "POLYSNIPE_CLOB_PRIVATE_KEY": KEY, "POLYSNIPE_DATABASE_URL": DSN,
           "POLYSNIPE_DATABASE_SCHEMA": journal_env}  # fmt: skip
    markets = [arg for path in market_files(data) for arg in ("--markets", str(path))]
    return base, stop_sim, env, markets


def test_sigterm_finishes_in_flight_work_and_exits_0(journal_env: str, tmp_path: Path) -> None:
    base, stop_sim, env, markets = _one_engine(journal_env, tmp_path)
    stop_feed = threading.Event()
    feeder = threading.Thread(target=_feed, args=(base, stop_feed), daemon=True)
    out = tmp_path / "out"
    ws = base.replace("http://", "ws://") + "/ws"
    cmd = [sys.executable, "-m", "polysnipe.runners.cli", "run", *markets, "--clob-url", base,
           "--ws-url", ws, "--duration-s", "600", "--out", str(out)]  # fmt: skip
    try:
        feeder.start()
        with (tmp_path / "err").open("wb") as err_file:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err_file)
        with psycopg.connect(DSN, autocommit=True) as conn:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not _orders_journaled(conn, journal_env):
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
            unended = conn.execute(
                f"SELECT count(*) FROM {journal_env}.opportunities WHERE outcome IS NULL"
            ).fetchone()
            lease = conn.execute(f"SELECT count(*) FROM {journal_env}.wallet_leases").fetchone()
    finally:
        stop_feed.set()
        feeder.join(10)
        stop_sim()
    assert 0 == proc.returncode, (tmp_path / "err").read_text()[-2000:]
    assert (out / "report.json").is_file()
    # everything it began ended, and the wallet is free for the next engine at once
    assert ((0,), (0,)) == (unended, lease)


def test_sigterm_while_the_engine_starts_stops_it_cleanly(journal_env: str, tmp_path: Path) -> None:
    """A SIGTERM the moment the engine has the wallet, before it has traded or even taken over: it
    starts, stops at once and exits 0 with its report, the lease released."""
    base, stop_sim, env, markets = _one_engine(journal_env, tmp_path)
    out = tmp_path / "out"
    ws = base.replace("http://", "ws://") + "/ws"
    cmd = [sys.executable, "-m", "polysnipe.runners.cli", "run", *markets, "--clob-url", base,
           "--ws-url", ws, "--duration-s", "600", "--out", str(out)]  # fmt: skip
    try:
        with (tmp_path / "err").open("wb") as err_file:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err_file)
        with psycopg.connect(DSN, autocommit=True) as conn:
            deadline = time.monotonic() + 60
            while not _holds_lease(conn, journal_env, proc.pid):
                assert proc.poll() is None, (tmp_path / "err").read_text()[-2000:]
                assert time.monotonic() < deadline, "the engine never took the wallet's lease"
                time.sleep(0.005)
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
            lease = conn.execute(f"SELECT count(*) FROM {journal_env}.wallet_leases").fetchone()
    finally:
        stop_sim()
    assert 0 == proc.returncode, (tmp_path / "err").read_text()[-2000:]
    assert (out / "report.json").is_file()
    assert (0,) == lease
