"""`polysnipe paper` against the CLOB simulator: live WebSocket data in, simulated fills out.

The simulator replays generated market data at our pace (POST /_sim/advance) and publishes it on its
market channel; the paper runner must build trusted books from it and trade through the same engine
and simulated venue as the backtest.
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
from polysnipe.adapters.metadata import load_market_files
from polysnipe.adapters.postgres.database import DatabaseConfig
from polysnipe.adapters.sim.clob import ClobSimConfig
from polysnipe.runners.config import load_config
from polysnipe.runners.paper import run_paper
from polysnipe.runners.sim_clob import start_in_thread
from polysnipe.tools.datagen import generate


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("paperdata")
    generate(d, seed=5, duration_s=120, markets=3, malformed=0)
    return d


@pytest.mark.parametrize("journaled", [False, True], ids=["memory", "postgres"])
def test_paper_trades_live_simulator_data(
    data: Path, tmp_path: Path, journaled: bool, request: pytest.FixtureRequest
) -> None:
    schema = request.getfixturevalue("journal_env") if journaled else ""
    database = DatabaseConfig(url=DSN, schema=schema) if journaled else None
    base, stop = start_in_thread(market_files(data), data / "events.jsonl",
                                 config=ClobSimConfig(paced_replay=True))  # fmt: skip
    try:
        registry = load_market_files(market_files(data)).registry()
        ws = base.replace("http://", "ws://") + "/ws/market"

        async def feed_the_simulator() -> None:
            await until_subscribed(base, registry.token_ids())  # the runner has its first books
            async with httpx.AsyncClient(base_url=base) as client:
                while True:
                    r = await client.post("/_sim/advance", json={"count": 400})
                    if r.json()["pending"] == 0:
                        return
                    await asyncio.sleep(0.02)

        async def both() -> dict[str, Any]:
            feeder = asyncio.create_task(feed_the_simulator())
            result = await run_paper(registry=registry, config=load_config(None), clob_url=base,
                                     market_ws_url=ws, duration_s=6.0, out_dir=tmp_path,
                                     database=database)  # fmt: skip
            await feeder
            return result.report

        report = asyncio.run(both())
    finally:
        stop()
    assert report["events"]["by_type"].get("book", 0) >= 2 * len(registry)
    assert report["events"]["by_type"].get("price_change", 0) > 100
    assert report["opportunities"]["total"] > 0
    assert report["fills"]["count"] > 0
    assert 0 == report["risk_audit"]["breaches"]
    assert json.loads((tmp_path / "report.json").read_text())["inputs"]["mode"] == "paper"
    if journaled:
        # the same decisions are in Postgres: every opportunity, each with its one outcome
        with psycopg.connect(DSN) as conn:
            rows = conn.execute(f"SELECT count(*), count(outcome) FROM {schema}.opportunities").fetchone()
        assert (report["opportunities"]["total"],) * 2 == rows
