"""The official Python builder signing SDK in remote mode, pointed at a running signing server, gets
the headers it computes locally with the same credentials and timestamp, byte for byte."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from py_builder_signing_sdk.config import BuilderConfig
from py_builder_signing_sdk.sdk_types import BuilderApiKeyCreds, RemoteBuilderConfig

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

SUBMIT = json.dumps(
    {"from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "to": "0xaacFeEa03eb1561C4e67d661e40682Bd20E3541b",
     "proxyWallet": "0xEE1E501361D2A1E87c9fc4F802D7c904D163528c", "data": "0x", "nonce": "3",
     "signature": "0x" + "ab" * 65, "type": "SAFE", "metadata": "ünï cødé"},
    separators=(",", ":"), ensure_ascii=False,
)  # fmt: skip


@pytest.fixture
def server(db: tuple[psycopg.Connection[Any], str], tmp_path: Path) -> Iterator[tuple[str, Credential]]:
    conn, schema = db
    migrate(conn, schema)
    credential = add_caller(conn, "relayer-client")
    url, stop = start_in_thread(service(schema, keystore(tmp_path, 0), HandClock()), SignerSettings())
    try:
        yield url, credential
    finally:
        stop()


LOCAL = BuilderConfig(local_builder_creds=BuilderApiKeyCreds(BUILDER_KEY, BUILDER_SECRET, BUILDER_PASSPHRASE))


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", "/submit", SUBMIT), ("GET", "/transactions", None), ("POST", "/submit", '{"data":"0x"}'),
     ("GET", "/nonce", "")],
)  # fmt: skip
# explicit timestamps inside the server's freshness window (30 s), behind and at its clock
@pytest.mark.parametrize("ts", [1799999971, 1800000000])
def test_remote_mode_equals_local_mode(
    server: tuple[str, Credential], method: str, path: str, body: str | None, ts: int
) -> None:
    url, credential = server
    remote = BuilderConfig(
        remote_builder_config=RemoteBuilderConfig(f"{url}/builder/headers", credential.token())
    )
    expected = LOCAL.generate_builder_headers(method, path, body, ts)
    assert expected is not None
    assert expected.to_dict() == remote.generate_builder_headers(method, path, body, ts)


def test_server_clock_when_no_timestamp(server: tuple[str, Credential]) -> None:
    url, credential = server
    remote = BuilderConfig(
        remote_builder_config=RemoteBuilderConfig(f"{url}/builder/headers", credential.token())
    )
    answer = remote.generate_builder_headers("POST", "/submit", SUBMIT)
    assert answer is not None
    assert answer["POLY_BUILDER_TIMESTAMP"] == str(HandClock().now // 1000)
    local = LOCAL.generate_builder_headers("POST", "/submit", SUBMIT, int(answer["POLY_BUILDER_TIMESTAMP"]))
    assert local is not None and local.to_dict() == answer


def test_the_sdk_gets_nothing_without_the_credential(server: tuple[str, Credential]) -> None:
    url, _ = server
    for token in (None, "psk.0123456789abcdef.wrong-secret-wrong-secret-wrong"):
        remote = BuilderConfig(remote_builder_config=RemoteBuilderConfig(f"{url}/builder/headers", token))
        assert remote.generate_builder_headers("POST", "/submit", SUBMIT, 1) is None
    # the TS SDK sends only the keys it has: no body, no timestamp
    answer = requests.post(
        f"{url}/builder/headers", json={"method": "GET", "path": "/transactions"}, timeout=5
    )
    assert 401 == answer.status_code and "credential" in answer.json()["error"]
