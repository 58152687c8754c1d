"""`polysnipe run` against the CLOB simulator: the live engine loop, signed orders over real HTTP.

The simulator replays generated market data at our pace; the live runner derives its API
credentials with L1 auth, reads its balance from the venue, trades through the same engine loop as
the backtest, and cancels what still rests when it stops.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from conftest import DSN
from kit import market_files, until_subscribed
from polysnipe.adapters.clob.config import ClobConfig
from polysnipe.adapters.metadata import load_market_files
from polysnipe.adapters.postgres.database import DatabaseConfig
from polysnipe.adapters.postgres.journal import set_schema
from polysnipe.adapters.sim.clob import ClobSimConfig
from polysnipe.core.market import MarketRegistry
from polysnipe.runners.config import load_config
from polysnipe.runners.live import LiveStartError, run_live
from polysnipe.runners.sim_clob import start_in_thread
from polysnipe.tools.datagen import generate

# a public anvil test key: nothing here is a secret
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("livedata")
    generate(d, seed=5, duration_s=120, markets=3, malformed=0)
    return d


async def _feed(base: str, ready: asyncio.Event) -> None:
    await ready.wait()
    async with httpx.AsyncClient(base_url=base) as client:
        while (await client.post("/_sim/advance", json={"count": 400})).json()["pending"]:
            await asyncio.sleep(0.02)


@pytest.fixture
def journal(journal_schema: str) -> DatabaseConfig:
    return DatabaseConfig(url=DSN, schema=journal_schema)


def test_live_engine_trades_the_simulator_through_the_engine_loop(
    data: Path, tmp_path: Path, journal: DatabaseConfig, db: tuple[psycopg.Connection, str]
) -> None:
    config = ClobSimConfig(paced_replay=True, default_usdc_micro=5_000_000_000)
    base, stop = start_in_thread(market_files(data), data / "events.jsonl", config=config)
    try:
        registry = load_market_files(market_files(data)).registry()
        ws = base.replace("http://", "ws://") + "/ws"

        async def both() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            ready = asyncio.Event()
            feeder = asyncio.create_task(_feed(base, ready))
            run = asyncio.create_task(
                run_live(
                    registry=registry,
                    config=load_config(None),
                    clob=ClobConfig(host=base),
                    market_ws_url=ws + "/market",
                    user_ws_url=ws + "/user",
                    out_dir=tmp_path,
                    duration_s=8.0,
                    env={"POLYSNIPE_CLOB_PRIVATE_KEY": KEY},
                    database=journal,
                )
            )
            # the runner derives its key and subscribes to both channels first
            await until_subscribed(base, registry.token_ids(), user=True, started=run)
            ready.set()
            result = await run
            await feeder
            async with httpx.AsyncClient(base_url=base) as client:
                orders = (await client.get("/_sim/orders")).json()
            return result.report, orders

        report, sim_orders = asyncio.run(both())
    finally:
        stop()
    assert ADDRESS == report["inputs"]["wallet"]
    assert "live" == report["inputs"]["mode"]
    assert report["orders"]["total"] > 0
    # the orders reached the simulator (signed and authenticated by our derived key), none twice
    hashes = [
        o["order_hash"] for o in sim_orders if o["endpoint"] in ("/order", "/orders") and o["order_hash"]
    ]
    assert hashes
    assert len(hashes) == len(set(hashes))
    assert len(hashes) <= report["orders"]["total"]
    assert 0 == report["risk_audit"]["breaches"]
    assert json.loads((tmp_path / "report.json").read_text())["inputs"]["mode"] == "live"
    # every order the venue saw is in the journal and its outbox, under the hash it was sent with
    conn, schema = db
    set_schema(conn, schema)
    rows = conn.execute("SELECT order_hash, state FROM outbox").fetchall()
    assert set(hashes) <= {h for h, _ in rows}
    assert {"sending"}.isdisjoint({state for _, state in rows})
    journaled = conn.execute("SELECT count(*) FROM orders").fetchone()
    assert (report["orders"]["total"],) == journaled
    # every opportunity ended exactly once
    assert (0,) == conn.execute("SELECT count(*) FROM opportunities WHERE outcome IS NULL").fetchone()


def test_live_engine_without_a_key_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(LiveStartError, match="POLYSNIPE_CLOB_PRIVATE_KEY"):
        asyncio.run(
            run_live(
                registry=MarketRegistry(),
                config=load_config(None),
                clob=ClobConfig(host="http://127.0.0.1:9"),
                market_ws_url="ws://127.0.0.1:9",
                user_ws_url="ws://127.0.0.1:9",
                out_dir=tmp_path,
                env={},
                database=DatabaseConfig(url="postgresql://127.0.0.1:9/none"),
            )
        )


def test_live_engine_without_a_venue_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(LiveStartError, match="cannot start on the CLOB"):
        asyncio.run(
            run_live(
                registry=MarketRegistry(),
                config=load_config(None),
                clob=ClobConfig(host="http://127.0.0.1:9"),
                market_ws_url="ws://127.0.0.1:9",
                user_ws_url="ws://127.0.0.1:9",
                out_dir=tmp_path,
                env={"POLYSNIPE_CLOB_PRIVATE_KEY": KEY},
                database=DatabaseConfig(url="postgresql://127.0.0.1:9/none"),
            )
        )


def test_live_engine_on_an_unmigrated_journal_fails_at_start(
    data: Path, tmp_path: Path, db: tuple[psycopg.Connection, str]
) -> None:
    _, schema = db
    base, stop = start_in_thread(market_files(data), data / "events.jsonl", config=ClobSimConfig())
    try:
        with pytest.raises(LiveStartError, match=f"polysnipe migrate --schema {schema}"):
            asyncio.run(
                run_live(
                    registry=load_market_files(market_files(data)).registry(),
                    config=load_config(None),
                    clob=ClobConfig(host=base),
                    market_ws_url="ws://127.0.0.1:9",
                    user_ws_url="ws://127.0.0.1:9",
                    out_dir=tmp_path,
                    env={"POLYSNIPE_CLOB_PRIVATE_KEY": KEY},
                    database=DatabaseConfig(url=DSN, schema=schema),
                )
            )
    finally:
        stop()
