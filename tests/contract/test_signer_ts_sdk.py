"""The official TypeScript builder signing SDK (through Node, tools/node/builder_headers.mjs) in remote
mode, pointed at a running signing server, gets the headers it computes locally with the same
credentials and timestamp, byte for byte."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from polysnipe.adapters.signer_server.auth import Credential
from polysnipe.runners.signer import start_in_thread
from polysnipe.runners.signer_settings import SignerSettings
from signer_support import (
    BUILDER_KEY,
    BUILDER_PASSPHRASE,
    BUILDER_SECRET,
    HandClock,
    add_caller,
    keystore,
    migrate,
    service,
)

TOOLS = Path(__file__).parents[2] / "tools" / "node"
SCRIPT = TOOLS / "builder_headers.mjs"
SDK = TOOLS / "node_modules" / "@polymarket" / "builder-signing-sdk"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(
    NODE is None or not SDK.is_dir(), reason="node or tools/node/node_modules missing (`make install`)"
)

LOCAL_CREDS = {"key": BUILDER_KEY, "secret": BUILDER_SECRET, "passphrase": BUILDER_PASSPHRASE}
# what the TS relayer client signs for /submit: JSON.stringify of the request, non-ASCII kept as is
SUBMIT = json.dumps(
    {"from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "to": "0xaacFeEa03eb1561C4e67d661e40682Bd20E3541b",
     "proxyWallet": "0xEE1E501361D2A1E87c9fc4F802D7c904D163528c", "data": "0x", "nonce": "3",
     "signature": "0x" + "ab" * 65, "type": "SAFE", "metadata": "ünï cødé"},
    separators=(",", ":"), ensure_ascii=False,
)  # fmt: skip
WRONG_TOKEN = "psk.0123456789abcdef.wrong-secret-wrong-secret-wrong"


def sdk(job: dict[str, Any]) -> tuple[dict[str, str] | None, str]:
    """The headers the SDK returned (None for its `undefined`) and what it wrote on stderr."""
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(SCRIPT)], input=json.dumps(job), capture_output=True, text=True, timeout=15, check=True
    )
    headers: dict[str, str] | None = json.loads(done.stdout)["headers"]
    return headers, done.stderr


def request(method: str, path: str, body: str | None, ts: int | None) -> dict[str, Any]:
    return {"method": method, "path": path, "body": body, "timestamp": ts}


def local(*call: Any) -> dict[str, str] | None:
    return sdk({"mode": "local", "creds": LOCAL_CREDS, **request(*call)})[0]


def remote(url: str, token: str, *call: Any) -> tuple[dict[str, str] | None, str]:
    return sdk({"mode": "remote", "url": url, "token": token, **request(*call)})


Server = tuple[str, Credential, psycopg.Connection[Any]]


def audit(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT endpoint, caller, decision, status, reason FROM signer_audit ORDER BY seq"
    ).fetchall()


@pytest.fixture
def server(db: tuple[psycopg.Connection[Any], str], tmp_path: Path) -> Iterator[Server]:
    conn, schema = db
    migrate(conn, schema)
    credential = add_caller(conn, "ts-relayer-client")
    url, stop = start_in_thread(service(schema, keystore(tmp_path, 0), HandClock()), SignerSettings())
    try:
        yield f"{url}/builder/headers", credential, conn
    finally:
        stop()


@pytest.mark.parametrize(
    ("method", "path", "body", "ts"),
    [("POST", "/submit", SUBMIT, 1799999971), ("POST", "/submit", '{"data":"0x"}', 1800000000),
     ("GET", "/transactions", None, 1800000029), ("GET", "/nonce", "", 1800000000)],
)  # fmt: skip
def test_remote_mode_equals_local_mode(
    server: Server, method: str, path: str, body: str | None, ts: int
) -> None:
    url, credential, conn = server
    expected = local(method, path, body, ts)
    answer, stderr = remote(url, credential.token(), method, path, body, ts)
    assert expected is not None and expected["POLY_BUILDER_TIMESTAMP"] == str(ts)
    # the SDK hands the response object on as the headers, so an extra key would be an extra header
    assert expected == answer
    assert "" == stderr
    assert [("POST /builder/headers", "ts-relayer-client", "allowed", 200, "")] == audit(conn)


def test_server_clock_when_no_timestamp(server: Server) -> None:
    # the TS relayer client never passes a timestamp: the key is absent from the remote request
    url, credential, _ = server
    answer, _ = remote(url, credential.token(), "POST", "/submit", SUBMIT, None)
    assert answer is not None and answer["POLY_BUILDER_TIMESTAMP"] == str(HandClock().now // 1000)
    assert local("POST", "/submit", SUBMIT, 1800000000) == answer


@pytest.mark.parametrize("token", [None, WRONG_TOKEN])
def test_a_refused_caller_gets_no_headers_and_is_audited(server: Server, token: str | None) -> None:
    """The SDK swallows the 401: it resolves to undefined (no headers, nothing that looks valid), and
    the only trace is its console.error, which dumps the whole axios error including the request's
    `Authorization: Bearer` header. A relayer client on top then sends without builder headers
    (RELAYER.md 1.3), so the SDK's stderr must be watched, and treated as holding the caller's secret."""
    url, _, conn = server
    job = {"mode": "remote", "url": url, **request("POST", "/submit", SUBMIT, 1800000000)}
    if token is not None:
        job["token"] = token
    answer, stderr = sdk(job)
    assert answer is None
    assert "error calling remote signer" in stderr and "status code 401" in stderr
    if token is not None:
        assert f"Bearer {token}" in stderr
    reason = "unknown caller" if token is not None else "missing credential"
    [(endpoint, caller, decision, status, why)] = audit(conn)
    assert ("POST /builder/headers", "", "refused", 401) == (endpoint, caller, decision, status)
    assert why.startswith(reason)
