"""`polysnipe bench signer`: an order signed through the signing server on loopback beside in-process
signing, so an operator can weigh latency against key isolation.

Both sides sign the same engine orders through the same port live execution uses
(OrderSigningPort.sign_order: amounts, salt, EIP-712 digest, signature), each timed per order with
perf_counter_ns after a warm-up. The server is the real one, `polysnipe signer serve` in a process
of its own as in production (a server thread in the client's process measured ~40 ms per request:
the two event loops' threads hand the GIL over badly), on 127.0.0.1 with keep-alive, caller HMAC,
nonce, policy, rate limits (raised out of the way), its JSON log line, and its audit row written to
Postgres before every answer, in a throwaway schema of the configured database (dropped after). The
key is a fresh keystore key in a temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
from psycopg import sql

from polysnipe.adapters.clob.config import ClobConfig, exchange_contracts
from polysnipe.adapters.clob.signing import OrderSigner, OrderSigningPort
from polysnipe.adapters.postgres.database import BUNDLED_MIGRATIONS
from polysnipe.adapters.postgres.migrations import apply_migrations
from polysnipe.adapters.signer_client.client import AsyncSignerClient
from polysnipe.adapters.signer_client.config import SignerClientConfig
from polysnipe.adapters.signer_client.orders import RemoteOrderSigner
from polysnipe.adapters.signer_server.callers import CallerStore
from polysnipe.adapters.signer_server.keys import KeystoreProvider
from polysnipe.core.events import Side
from polysnipe.core.messages import OrderRequest, OrderType
from polysnipe.core.secret import Secret
from polysnipe.runners.bench_orders import latency_stats
from polysnipe.runners.errors import UnreachableService
from polysnipe.runners.inputs import connect_database

__all__ = ["format_signer", "run_bench_signer"]

_CHAIN_ID = 137
_TOKEN_ID = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
_TS_MS = 1_764_061_200_000
_START_TIMEOUT_S = 15.0


def _orders(n: int) -> list[OrderRequest]:
    def order(i: int) -> OrderRequest:
        return OrderRequest(
            order_id=f"bench-{i}:0", opportunity_id=f"bench-{i}", correlation_id=f"bench-{i}",
            strategy="bench", routing="bench", wallet="bench", market="bench", token_id=_TOKEN_ID,
            side=Side.BUY, price=570_000, size=100_000_000, order_type=OrderType.GTC, tick_size=10_000,
            neg_risk=False,
        )  # fmt: skip

    return [order(i) for i in range(n)]


async def _time(port: OrderSigningPort, orders: list[OrderRequest], warmup: int) -> tuple[list[int], float]:
    """Per-order timings (ns) after `warmup` orders, and the wall time of the timed ones (s)."""
    for i in range(warmup):
        await port.sign_order(orders[i], _TS_MS + i)
    gc.collect()
    clock = time.perf_counter_ns
    samples: list[int] = []
    began = clock()
    for i in range(warmup, len(orders)):
        start = clock()
        await port.sign_order(orders[i], _TS_MS + i)
        samples.append(clock() - start)
    return samples, (clock() - began) / 1e9


def _schema_for_bench(conn: psycopg.Connection[Any]) -> str:
    schema = f"bench_signer_{os.getpid()}_{time.time_ns() % 10**9}"
    apply_migrations(conn, BUNDLED_MIGRATIONS, schema=schema)
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return schema


async def _both(url: str, credential: Any, local: OrderSigner, address: str, n: int, warmup: int) -> Any:
    orders = _orders(n + warmup)
    client = AsyncSignerClient(SignerClientConfig(url=url, retries=0), credential)
    remote = RemoteOrderSigner(client, ClobConfig(chain_id=_CHAIN_ID), address)
    try:
        first_local = await local.sign_order(orders[0], _TS_MS)
        first_remote = await remote.sign_order(orders[0], _TS_MS)
        timed_local = await _time(local, orders, warmup)
        timed_remote = await _time(remote, orders, warmup)
    finally:
        await remote.aclose()
    return first_local == first_remote, timed_local, timed_remote


def _settings_file(directory: Path, schema: str, address: str) -> Path:
    contracts = exchange_contracts(_CHAIN_ID)
    path = directory / "signer.toml"
    path.write_text(
        "[signer]\n"
        f"chain_ids = [{_CHAIN_ID}]\n"
        f'verifying_contracts = ["{contracts.exchange_v2}", "{contracts.neg_risk_exchange_v2}"]\n'
        f'makers = ["{address}"]\n'
        "caller_rate_per_s = 1e9\ncaller_burst = 1000000000\n"
        "key_rate_per_s = 1e9\nkey_burst = 1000000000\n"
        'daily_notional_cap_usdc = "1000000000000"\n'
        f'db_schema = "{schema}"\nkeystore_dir = "{directory / "keys"}"\n',
        encoding="utf-8",
    )
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_server(config: Path, env: dict[str, str], log: IO[bytes]) -> tuple[str, subprocess.Popen[bytes]]:
    """`polysnipe signer serve` on a free loopback port, its log lines into `log`."""
    port = _free_port()
    main = "import sys; from polysnipe.runners.cli import main; sys.exit(main())"
    command = [sys.executable, "-c", main, "signer", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--config", str(config)]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return url, process
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    process.wait()
    log.seek(0)
    said = log.read()[-300:].decode(errors="replace").strip()
    raise UnreachableService(f"bench signer: the signing server did not start: {said}")


def run_bench_signer(database_url: str, n: int) -> dict[str, Any]:
    """Sign n orders (plus a warm-up) in process and through a server on loopback; the figures."""
    if n < 1:
        raise ValueError("n must be at least 1")
    warmup = min(n, 500)
    conn = connect_database(database_url, hint="the server's audit needs it; check POLYSNIPE_DATABASE_URL")
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-signer-") as tmp, conn:
        schema = _schema_for_bench(conn)
        try:
            credential = CallerStore(conn).add("bench")
            password = secrets.token_urlsafe(16)
            (Path(tmp) / "keys").mkdir()
            keys = KeystoreProvider(Path(tmp) / "keys", Secret(password), scrypt_n=2)
            address = keys.create()
            key = keys.signer(address)
            assert key is not None, "the key was just created"
            env = {**os.environ, "POLYSNIPE_DATABASE_URL": database_url,
                   "POLYSNIPE_SIGNER_AUDIT_KEY": secrets.token_urlsafe(24),
                   "POLYSNIPE_SIGNER_KEYSTORE_PASSWORD": password}  # fmt: skip
            log = stack.enter_context(tempfile.TemporaryFile())
            url, process = _start_server(_settings_file(Path(tmp), schema, address), env, log)
            try:
                same, (local_ns, local_s), (remote_ns, remote_s) = asyncio.run(
                    _both(url, credential, OrderSigner(key, _CHAIN_ID), address, n, warmup)
                )
            finally:
                process.terminate()
                process.wait(timeout=_START_TIMEOUT_S)
            audited = conn.execute(
                "SELECT count(*) FROM signer_audit WHERE purpose = 'order' AND decision = 'allowed'"
            ).fetchone()
        finally:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    in_process = {**latency_stats(local_ns), "orders_per_s": len(local_ns) / local_s}
    server = {**latency_stats(remote_ns), "orders_per_s": len(remote_ns) / remote_s}
    return {
        "n": n,
        "warmup": warmup,
        "measures": "OrderSigningPort.sign_order: amounts + salt + EIP-712 digest + signature; through "
        "the server also HMAC auth, nonce, policy, limits, audit row in Postgres, HTTP/1.1 keep-alive",
        "in_process": in_process,
        "server_loopback": server,
        "server_over_in_process_p50": server["p50_us"] / in_process["p50_us"],
        "server_over_in_process_p99": server["p99_us"] / in_process["p99_us"],
        "same_signed_order": same,
        "audit_rows": audited[0] if audited else 0,
        "server": "polysnipe signer serve on 127.0.0.1, a process of its own",
        "python": platform.python_version(),
    }


def format_signer(result: dict[str, Any]) -> str:
    lines = [
        f"order signing, n={result['n']} sequential orders (after {result['warmup']} warm-up)",
        f"{'':22s}{'p50 us':>10s}{'p99 us':>10s}{'mean us':>10s}{'orders/s':>12s}",
    ]
    for name, key in (("in process", "in_process"), ("server (loopback)", "server_loopback")):
        row = result[key]
        lines.append(
            f"{name:22s}{row['p50_us']:10.1f}{row['p99_us']:10.1f}{row['mean_us']:10.1f}"
            f"{row['orders_per_s']:12,.0f}"
        )
    lines.append(
        f"server / in process: p50 {result['server_over_in_process_p50']:.1f}x, "
        f"p99 {result['server_over_in_process_p99']:.1f}x; audit rows {result['audit_rows']}"
    )
    if not result["same_signed_order"]:
        lines.append("WARNING: the server and in-process signing made different orders")
    return "\n".join(lines)
