"""`polysnipe run` with its orders signed by the signing server: the live engine against the CLOB
simulator (which verifies every order's signature), the server on uvicorn with its audit in Postgres,
and the engine holding no trading key at all. Fail closed: a server that refuses or cannot be reached
means no order leaves, a rejection with the server's reason, and an alert."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
from pathlib import Path
from typing import Any

import attrs
import httpx
import psycopg
import pytest

from conftest import DSN
from kit import market_files, order_request, until_subscribed
from polysnipe.adapters.clob.auth import ApiCreds, ApiKeySigner, clob_auth_digest
from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.config import ClobConfig
from polysnipe.adapters.clob.execution import ClobExecution
from polysnipe.adapters.clock import WallClock
from polysnipe.adapters.metadata import load_market_files
from polysnipe.adapters.postgres.database import DatabaseConfig
from polysnipe.adapters.signer_client.config import SignerClientConfig
from polysnipe.adapters.signer_client.factory import ENV_CREDENTIAL, build_remote_order_signer
from polysnipe.adapters.signer_server.keys import KeystoreProvider
from polysnipe.adapters.sim.clob import ClobSimConfig
from polysnipe.core.market import MarketRegistry
from polysnipe.core.messages import OrderRejected, RaiseAlert
from polysnipe.core.secret import Secret
from polysnipe.runners import signer
from polysnipe.runners.bench_signer import run_bench_signer
from polysnipe.runners.config import load_config
from polysnipe.runners.live import LiveStartError, run_live
from polysnipe.runners.signer_settings import SignerSettings
from polysnipe.runners.sim_clob import start_in_thread
from polysnipe.tools.datagen import generate
from signer_support import add_caller, keystore, migrate, policy_for, service


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("signerlive")
    generate(d, seed=5, duration_s=120, markets=3, malformed=0)
    return d


def _derive_creds(base: str, keys: KeystoreProvider, address: str) -> ApiCreds:
    """The operator's one-off step: L2 credentials of the managed key, by L1 auth with the key (here
    from the test's own keystore; in production on the host that holds it)."""
    ts = int(WallClock().now_ms() // 1000)
    key = keys.signer(address)
    assert key is not None
    signature = key.sign_order_digest(clob_auth_digest(address, 137, ts, 0))
    headers = {"POLY_ADDRESS": address, "POLY_SIGNATURE": "0x" + signature.hex(),
               "POLY_TIMESTAMP": str(ts), "POLY_NONCE": "0"}  # fmt: skip
    answer = httpx.get(base + "/auth/derive-api-key", headers=headers).json()
    return ApiCreds(answer["apiKey"], Secret(answer["secret"]), Secret(answer["passphrase"]))


def _env(creds: ApiCreds, credential: Any) -> dict[str, str]:
    return {
        "POLYSNIPE_CLOB_API_KEY": creds.api_key,
        "POLYSNIPE_CLOB_API_SECRET": creds.secret.reveal(),
        "POLYSNIPE_CLOB_API_PASSPHRASE": creds.passphrase.reveal(),
        ENV_CREDENTIAL: credential.token(),
    }


async def _feed(base: str, ready: asyncio.Event) -> None:
    await ready.wait()
    async with httpx.AsyncClient(base_url=base) as client:
        while (await client.post("/_sim/advance", json={"count": 400})).json()["pending"]:
            await asyncio.sleep(0.02)


def test_live_engine_orders_are_signed_by_the_signing_server(
    data: Path, tmp_path: Path, journal_schema: str, db: tuple[psycopg.Connection[Any], str]
) -> None:
    conn, _ = db
    migrate(conn, journal_schema)  # (already migrated: this sets the search path)
    credential = add_caller(conn, "engine")
    (tmp_path / "keys").mkdir()
    keys = keystore(tmp_path / "keys")
    address = keys.addresses()[0]
    signer_url, stop_signer = signer.start_in_thread(
        service(journal_schema, keys, WallClock()),
        SignerSettings(),
    )
    config = ClobSimConfig(paced_replay=True, default_usdc_micro=5_000_000_000)
    base, stop_sim = start_in_thread(market_files(data), data / "events.jsonl", config=config)
    try:
        env = _env(_derive_creds(base, keys, address), credential)
        registry = load_market_files(market_files(data)).registry()
        ws = base.replace("http://", "ws://") + "/ws"

        async def both() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            ready = asyncio.Event()
            feeder = asyncio.create_task(_feed(base, ready))
            live = asyncio.create_task(
                run_live(
                    registry=registry,
                    config=load_config(None),
                    clob=ClobConfig(host=base),
                    market_ws_url=ws + "/market",
                    user_ws_url=ws + "/user",
                    out_dir=tmp_path / "out",
                    duration_s=6.0,
                    env=env,
                    database=DatabaseConfig(url=DSN, schema=journal_schema),
                    signer=SignerClientConfig(url=signer_url, order_key=address),
                )
            )
            await until_subscribed(base, registry.token_ids(), user=True, started=live)
            ready.set()
            result = await live
            await feeder
            async with httpx.AsyncClient(base_url=base) as client:
                orders = (await client.get("/_sim/orders")).json()
            return result.report, orders

        report, sim_orders = asyncio.run(both())
    finally:
        stop_sim()
        stop_signer()
    assert address == report["inputs"]["wallet"]
    assert report["orders"]["total"] > 0
    posted = [o for o in sim_orders if o["endpoint"] in ("/order", "/orders") and o["order_hash"]]
    assert posted
    # the simulator verified each signature against the order's signer: none refused for it
    assert not [o for o in posted if "signature" in (o.get("error") or "").lower()]
    hashes = {o["order_hash"] for o in posted}
    rows = conn.execute(
        "SELECT digest, correlation_id, key_address, decision FROM signer_audit WHERE purpose = 'order'"
    ).fetchall()
    audited = {digest: (cid, key, decision) for digest, cid, key, decision in rows}
    assert len(rows) == len(audited), "one audit row per order"
    assert hashes <= set(audited)
    assert {("allowed", address)} == {(decision, key) for _, key, decision in audited.values()}
    # the audit row names the engine decision: the order's correlation id, as journaled
    journaled = dict(
        conn.execute("SELECT outbox.order_hash, correlation_id FROM outbox JOIN orders USING (order_id)")
    )
    assert len(journaled) == len(rows), "every order signed once, by the server"
    for order_hash, correlation_id in journaled.items():
        assert correlation_id and correlation_id == audited[order_hash][0]
    assert json.loads((tmp_path / "out" / "report.json").read_text())["inputs"]["mode"] == "live"


def test_refused_or_unreachable_signing_sends_no_order(
    tmp_path: Path, db: tuple[psycopg.Connection[Any], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    conn, schema = db
    migrate(conn, schema)
    credential = add_caller(conn, "engine")
    keys = keystore(tmp_path)
    address = keys.addresses()[0]
    nobody = attrs.evolve(policy_for(keys), makers=())
    clocked = service(schema, keys, WallClock(), policy=nobody)
    url, stop = signer.start_in_thread(clocked, SignerSettings())
    posts: list[str] = []

    def venue(request: httpx.Request) -> httpx.Response:
        posts.append(request.url.path)
        return httpx.Response(500)

    env = {ENV_CREDENTIAL: credential.token()}
    clob = ClobConfig(host="http://venue.invalid")
    creds = ApiCreds("k", Secret("c2VjcmV0"), Secret("p"))
    alerts: list[RaiseAlert] = []

    async def submit(server: str) -> list[Any]:
        orders = build_remote_order_signer(SignerClientConfig(url=server, order_key=address), clob, env)
        client = ClobHttpClient(clob, WallClock(), ApiKeySigner(address, creds),
                                transport=httpx.MockTransport(venue))  # fmt: skip
        execution = ClobExecution(client, orders, owner="k", clock=WallClock(), rng=random.Random(1),
                                  alert=alerts.append)  # fmt: skip
        try:
            return await execution.submit(order_request("o9-0", correlation_id="corr-refused"))
        finally:
            await orders.aclose()
            await client.aclose()

    try:
        for server, code in ((url, "signer_refused"), ("http://127.0.0.1:9", "signer_unavailable")):
            [rejected] = asyncio.run(submit(server))
            assert isinstance(rejected, OrderRejected)
            assert code == rejected.reason
            assert (code, "critical", "corr-refused") == (alerts[-1].code, alerts[-1].severity,
                                                          alerts[-1].correlation_id)  # fmt: skip
        assert "not allowed by the policy" in alerts[0].message
    finally:
        stop()
    assert not [p for p in posts if p.startswith("/order")], "no order may leave unsigned"
    row = conn.execute(
        "SELECT decision, status, correlation_id FROM signer_audit WHERE purpose = 'order'"
    ).fetchone()
    assert ("refused", 403, "corr-refused") == row


def test_a_configured_but_absent_server_stops_the_engine_at_start(tmp_path: Path) -> None:
    env = {
        "POLYSNIPE_CLOB_API_KEY": "k",
        "POLYSNIPE_CLOB_API_SECRET": "c2VjcmV0",
        "POLYSNIPE_CLOB_API_PASSPHRASE": "p",
        ENV_CREDENTIAL: "psk.0123456789abcdef." + "s" * 32,
    }
    with pytest.raises(LiveStartError, match=re.escape("signing server at http://127.0.0.1:9")):
        asyncio.run(
            run_live(
                registry=MarketRegistry(),
                config=load_config(None),
                clob=ClobConfig(host="http://127.0.0.1:9"),
                market_ws_url="ws://127.0.0.1:9",
                user_ws_url="ws://127.0.0.1:9",
                out_dir=tmp_path,
                env=env,
                database=DatabaseConfig(url="postgresql://127.0.0.1:9/none"),
                signer=SignerClientConfig(url="http://127.0.0.1:9", order_key="0x" + "11" * 20, retries=0),
            )
        )


def test_bench_signer_measures_both_sides_and_cleans_up() -> None:
    result = run_bench_signer(DSN, 5)
    assert result["same_signed_order"]
    assert 1 + 5 + 5 == result["audit_rows"]  # the check, the warm-up and the timed orders
    for side in ("in_process", "server_loopback"):
        assert result[side]["p50_us"] > 0 and result[side]["orders_per_s"] > 0
    assert result["server_over_in_process_p50"] > 1
    # only this process's schemas (bench_signer_<pid>_...): another test run may be benchmarking
    # against the same database at this moment
    with psycopg.connect(DSN) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s", (f"bench_signer_{os.getpid()}_%",)
        ).fetchone()
    assert (0,) == left
