"""Refusals of the signing server: missing, wrong, stale, replayed and tampered requests, disallowed
chains, contracts, makers and Safes, bursts above the rate limit, malformed bodies. Every one is
audited; no secret appears in any response or log line."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import structlog

from polysnipe.adapters.clob.signing import OrderSigner
from polysnipe.adapters.signer_client.client import SignerClient, order_sign_request
from polysnipe.adapters.signer_client.config import SignerClientConfig
from polysnipe.adapters.signer_client.errors import SignerRefused
from polysnipe.adapters.signer_server import schemas
from polysnipe.adapters.signer_server.auth import (
    CALLER_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Credential,
    engine_signature,
)
from polysnipe.adapters.signer_server.config import Policy, RateLimit
from polysnipe.adapters.signer_server.digests import MULTISEND, derive_safe
from polysnipe.adapters.signer_server.keys import KeyProvider
from polysnipe.core.events import Side
from polysnipe.runners.signer import start_in_thread
from polysnipe.runners.signer_settings import SignerSettings
from signer_support import (
    APPROVE_EXCHANGE,
    AUDIT_KEY_TEXT,
    BUILDER_PASSPHRASE,
    BUILDER_SECRET,
    KEYSTORE_PASSWORD,
    USDC,
    HandClock,
    add_caller,
    calldata,
    keystore,
    migrate,
    multisend,
    policy_for,
    service,
)

CLOCK_S = HandClock().now // 1000
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"


class Server:
    def __init__(self, url: str, credential: Credential, conn: psycopg.Connection[Any], keys: Any) -> None:
        self.url, self.credential, self.conn, self.keys = url, credential, conn, keys
        self.client = SignerClient(SignerClientConfig(url=url, retries=0), credential, now_s=lambda: CLOCK_S)

    @property
    def address(self) -> str:
        return str(self.keys.addresses()[0])

    def audit(self) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            "SELECT endpoint, caller, decision, status, reason, digest FROM signer_audit ORDER BY seq"
        ).fetchall()

    def engine_post(self, path: str, body: bytes, **override: str) -> httpx.Response:
        nonce = override.pop("nonce", secrets.token_urlsafe(18))
        ts = int(override.pop("ts", str(CLOCK_S)))
        sig_body = override.pop("signed_body", body.decode()).encode()
        headers = {
            CALLER_HEADER: self.credential.caller_id,
            TIMESTAMP_HEADER: str(ts),
            NONCE_HEADER: nonce,
            SIGNATURE_HEADER: engine_signature(self.credential.hmac_key(), "POST", path, ts, nonce, sig_body),
        }
        headers.update(override)
        return httpx.post(self.url + path, content=body, headers=headers)


def _order(signer: str, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        chain_id=137, signer=signer, maker=None, signature_type=0, builder_code="0x" + "00" * 31 + "07",
        token_id=TOKEN, side=Side.BUY, maker_amount=5_000_000, taker_amount=10_000_000, neg_risk=False,
        salt=12345, timestamp_ms=1_800_000_000_000,
    )  # fmt: skip
    base.update(changes)
    return base


def _request(signer: str, **changes: Any) -> schemas.OrderSignRequest:
    return order_sign_request(**_order(signer, **changes))


@contextlib.contextmanager
def running(
    db: tuple[psycopg.Connection[Any], str],
    tmp_path: Path,
    policy: Callable[[KeyProvider], Policy] | None = None,
    **config: Any,
) -> Iterator[Server]:
    """A signing server on a migrated schema of this test's own, with one caller, "engine"."""
    conn, schema = db
    migrate(conn, schema)
    credential = add_caller(conn, "engine")
    keys = keystore(tmp_path)
    svc = service(schema, keys, HandClock(), policy=policy(keys) if policy else None, **config)
    url, stop = start_in_thread(svc, SignerSettings())
    srv = Server(url, credential, conn, keys)
    try:
        yield srv
    finally:
        srv.client.close()
        stop()


@pytest.fixture
def server(db: tuple[psycopg.Connection[Any], str], tmp_path: Path) -> Iterator[Server]:
    with running(
        db, tmp_path, per_caller=RateLimit(0.01, 30), daily_notional_cap_usdc_micro=12_000_000
    ) as srv:
        yield srv


def test_order_signatures_equal_in_process_signing(server: Server) -> None:
    fields = _order(server.address)
    remote = server.client.sign_order(order_sign_request(**fields))
    key = server.keys.signer(server.address)
    local = OrderSigner(key, 137, builder_code=fields["builder_code"]).sign(
        TOKEN, Side.BUY, 5_000_000, 10_000_000, neg_risk=False, salt=12345, timestamp_ms=1_800_000_000_000
    )
    assert local == remote
    assert ("POST /sign/order", "engine", "allowed", 200, "", local.order_hash) == server.audit()[-1]


def test_missing_wrong_stale_replayed_and_tampered_requests_are_refused_and_audited(server: Server) -> None:
    body = msgspec_order(server.address)
    cases = {
        "missing": httpx.post(server.url + "/sign/order", content=body),
        "wrong": server.engine_post("/sign/order", body, **{SIGNATURE_HEADER: "A" * 44}),
        "stale": server.engine_post("/sign/order", body, ts=str(CLOCK_S - 31)),
        "future": server.engine_post("/sign/order", body, ts=str(CLOCK_S + 31)),
        "tampered": server.engine_post(
            "/sign/order", body, signed_body=body.decode().replace("12345", "12346")
        ),
        "unknown": server.engine_post("/sign/order", body, **{CALLER_HEADER: "0" * 16}),
    }
    first = server.engine_post("/sign/order", body, nonce="n" * 20)
    replay = server.engine_post("/sign/order", body, nonce="n" * 20)
    assert 200 == first.status_code
    reasons = {name: (r.status_code, r.json()["error"]) for name, r in cases.items()}
    reasons["replayed"] = (replay.status_code, replay.json()["error"])
    assert {name: 401 for name in reasons} == {name: code for name, (code, _) in reasons.items()}
    assert "stale timestamp" in reasons["stale"][1] and "stale timestamp" in reasons["future"][1]
    assert "replayed nonce" == reasons["replayed"][1]
    assert "does not match" in reasons["tampered"][1] and "does not match" in reasons["wrong"][1]
    refused = [row for row in server.audit() if row[2] == "refused"]
    assert 7 == len(refused) and all(row[3] == 401 and row[4] for row in refused)


def msgspec_order(signer: str, **changes: Any) -> bytes:
    import msgspec

    return msgspec.json.encode(_request(signer, **changes))


def test_policy_refuses_other_chains_contracts_makers_and_safes(server: Server) -> None:
    address = server.address
    refusals = []
    for fields in (
        _order(address, chain_id=80002),
        _order(address, maker="0x" + "11" * 20, signature_type=2),
        _order("0x" + "22" * 20, maker=address, signature_type=2),
    ):
        with pytest.raises(SignerRefused) as err:
            server.client.sign_order(order_sign_request(**fields))
        refusals.append((err.value.status, err.value.reason))
    with pytest.raises(SignerRefused) as safe:
        server.client.sign_safe_tx(
            schemas.SafeTxSignRequest(137, address, "0x" + "33" * 20, "0x" + "44" * 20, "0", "0x", 0, "0")
        )
    with pytest.raises(SignerRefused) as create:
        server.client.sign_safe_create(schemas.SafeCreateSignRequest(137, address))
    assert [403, 403, 403] == [status for status, _ in refusals]
    assert "chain id 80002 is not allowed" in refusals[0][1]
    assert "order maker 0x1111111111111111111111111111111111111111 is not allowed" in refusals[1][1]
    assert "no managed key" in refusals[2][1]
    assert (403, True) == (safe.value.status, "is not allowed by the policy" in safe.value.reason)
    assert (403, True) == (create.value.status, "is not allowed by the policy" in create.value.reason)
    assert 5 == sum(1 for row in server.audit() if row[3] == 403)


def test_neg_risk_exchange_needs_its_own_permission(
    db: tuple[psycopg.Connection[Any], str], tmp_path: Path
) -> None:
    def narrow(keys: KeyProvider) -> Policy:
        return Policy(chain_ids=frozenset({137}), makers=tuple(keys.addresses()),
                      verifying_contracts=("0xE111180000d2663C0091e4f400237545B87B996B",))  # fmt: skip

    with running(db, tmp_path, narrow) as srv:
        srv.client.sign_order(_request(srv.address))
        with pytest.raises(
            SignerRefused, match="0xe2222d279d744050d28e00520010520000310F59 is not an allowed"
        ):
            srv.client.sign_order(_request(srv.address, neg_risk=True))


def _with_its_safe(keys: KeyProvider) -> Policy:
    """The test policy, with the Safe of the server's first key allowed."""
    return policy_for(keys, safes=(derive_safe(keys.addresses()[0]).lower(),))


def test_uint256_fields_beyond_2_256_are_a_400_not_an_internal_error(
    db: tuple[psycopg.Connection[Any], str], tmp_path: Path
) -> None:
    """The schema's 78 digits reach past 2**256: the digest could not encode them (OverflowError)."""

    with running(db, tmp_path, _with_its_safe) as srv:
        owner = srv.address
        base = {"chain_id": 137, "signer": owner, "safe": derive_safe(owner), "to": USDC,
                "value": "0", "data": "0x" + APPROVE_EXCHANGE.hex(), "operation": 0,
                "nonce": "0"}  # fmt: skip
        assert 200 == srv.engine_post("/sign/safe-tx", json.dumps(base).encode()).status_code
        for field in ("value", "nonce", "safe_tx_gas", "base_gas", "gas_price"):
            answer = srv.engine_post("/sign/safe-tx", json.dumps(base | {field: str(2**256)}).encode())
            assert (400, f"invalid body: {field} is beyond uint256") == (
                answer.status_code,
                answer.json()["error"],
            )
        create = json.dumps({"chain_id": 137, "signer": owner, "payment": "9" * 78}).encode()
        created = srv.engine_post("/sign/safe-create", create)
        assert (400, "invalid body: payment is beyond uint256") == (
            created.status_code,
            created.json()["error"],
        )
        assert 0 == sum(1 for row in srv.audit() if row[3] == 500)


def test_a_safe_transaction_that_could_move_value_elsewhere_is_refused_and_audited(
    db: tuple[psycopg.Connection[Any], str], tmp_path: Path
) -> None:
    """An engine credential had any call of an allowed Safe signed: a USDC transfer out, a new owner,
    a gas refund to itself, a payment out of a Safe about to be created."""

    stranger = "0x" + "ee" * 20
    with running(db, tmp_path, _with_its_safe) as srv:
        owner, safe = srv.address, derive_safe(srv.address)
        base = {"chain_id": 137, "signer": owner, "safe": safe, "to": USDC, "value": "0", "operation": 0,
                "nonce": "0", "data": "0x" + APPROVE_EXCHANGE.hex()}  # fmt: skip
        steal = calldata("transfer(address,uint256)", stranger, 10**12)
        add_owner = calldata("addOwnerWithThreshold(address,uint256)", stranger, 1)
        attempts = [
            base | {"data": "0x" + steal.hex()},
            base | {"to": safe, "data": "0x" + add_owner.hex()},
            base | {"gas_price": "1", "refund_receiver": stranger},
            base | {"to": MULTISEND, "operation": 1,
                    "data": "0x" + multisend((0, USDC, 0, APPROVE_EXCHANGE), (0, USDC, 0, steal)).hex()},
        ]  # fmt: skip
        answers = [srv.engine_post("/sign/safe-tx", json.dumps(a).encode()) for a in attempts]
        assert [403] * 4 == [a.status_code for a in answers]
        reasons = [a.json()["error"] for a in answers]
        assert all(r.startswith("Safe transaction refused by the policy: ") for r in reasons), reasons
        assert "transfer recipient 0xeeee" in reasons[0] and "MultiSend transaction 1" in reasons[3]
        paid = json.dumps({"chain_id": 137, "signer": owner, "payment": "1", "payment_receiver": stranger})
        created = srv.engine_post("/sign/safe-create", paid.encode())
        assert (403, "Safe creation refused by the policy: the new Safe may pay nothing") == (
            created.status_code,
            created.json()["error"],
        )
        # the allowed call is still signed, and every refusal is in the audit chain
        assert 200 == srv.engine_post("/sign/safe-tx", json.dumps(base).encode()).status_code
        assert [403] * 5 + [200] == [row[3] for row in srv.audit() if "/sign/safe" in row[0]]


def test_nul_and_control_characters_are_audited_escaped_and_slashes_never_redirect(server: Server) -> None:
    """Postgres text cannot hold NUL: a path or a refusal carrying one made the audit fail (503,
    unaudited); a trailing slash was a redirect built from the caller's Host header."""
    assert 404 == httpx.get(server.url + "/%00").status_code
    assert 404 == httpx.post(server.url + "/sign/order%00%1b").status_code
    body = json.dumps({"\u0000x": 1}).encode()
    refused = server.engine_post("/sign/order", body)
    assert (400, True) == (refused.status_code, "unknown field" in refused.json()["error"])
    slash = httpx.post(server.url + "/sign/order/", content=b"{}", headers={"Host": "evil.example"})
    assert (404, None) == (slash.status_code, slash.headers.get("location"))
    rows = server.audit()
    assert {"GET /\\x00", "POST /sign/order\\x00\\x1b", "POST /sign/order/"} <= {row[0] for row in rows}
    assert any("\\x00x" in row[4] for row in rows)
    assert all(row[0].isprintable() and row[4].isprintable() for row in rows)


def test_a_client_that_goes_away_mid_body_is_audited_as_a_400_not_an_internal_error(server: Server) -> None:
    host, port = httpx.URL(server.url).host, httpx.URL(server.url).port
    for path in ("/sign/order", "/nope"):
        with socket.create_connection((host, port)) as raw:
            raw.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc".encode())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(server.audit()) < 2:
        time.sleep(0.02)
    rows = {row[0]: row for row in server.audit()}
    assert (400, "the client went away before its body was read") == rows["POST /sign/order"][3:5]
    assert 404 == rows["POST /nope"][3]
    assert 200 == httpx.get(server.url + "/healthz").status_code


def test_a_nonce_is_remembered_through_the_last_second_its_timestamp_can_pass() -> None:
    """A request stamped `skew` ahead and first seen `skew` behind it is still fresh 2 x skew later,
    at exactly `skew` past its stamp: its nonce must still be known then."""
    from polysnipe.adapters.signer_server.auth import NonceBook, Refused

    skew = 30
    book = NonceBook(2 * skew, 10)
    first_seen = 1_000
    book.check_and_remember("engine", "n" * 16, first_seen)
    for now in (first_seen + 1, first_seen + 2 * skew):
        with pytest.raises(Refused, match="replayed nonce"):
            book.check_and_remember("engine", "n" * 16, now)
    book.check_and_remember("engine", "n" * 16, first_seen + 2 * skew + 1)  # stale by then anyway


def test_burst_above_the_rate_limit_gets_429_with_retry_after(server: Server) -> None:
    url = server.url + "/builder/headers"
    auth = {"Authorization": f"Bearer {server.credential.token()}"}
    with httpx.Client() as http:
        codes = [
            http.post(url, json={"method": "GET", "path": "/nonce", "timestamp": CLOCK_S}, headers=auth)
            for _ in range(32)
        ]
    assert [200] * 30 + [429, 429] == [r.status_code for r in codes]
    assert int(codes[-1].headers["Retry-After"]) >= 1
    assert "rate limit of caller engine" == codes[-1].json()["error"]


def test_daily_notional_cap(server: Server) -> None:
    server.client.sign_order(_request(server.address))  # 5 USDC
    server.client.sign_order(_request(server.address))  # the same order again: counted once
    server.client.sign_order(_request(server.address, salt=2))  # 10
    with pytest.raises(SignerRefused, match="daily notional cap") as err:
        server.client.sign_order(_request(server.address, salt=3))  # 15 > 12
    assert 403 == err.value.status
    # a SELL's notional is what it receives
    server.client.sign_order(
        _request(server.address, side=Side.SELL, maker_amount=9_000_000, taker_amount=2_000_000)
    )


def test_malformed_input_is_a_4xx_with_a_reason_and_the_server_lives(server: Server) -> None:
    auth = {"Authorization": f"Bearer {server.credential.token()}"}
    url = server.url + "/builder/headers"
    bad = [
        (b"not json", 400, "not JSON"),
        (b'{"method": "GET"}', 400, "path"),
        (b'{"method": "GET", "path": "/x", "extra": 1}', 400, "extra"),
        (b'{"method": "get", "path": "/x"}', 400, "upper-case"),
        (b'{"method": "GET", "path": "/x", "timestamp": -1}', 400, "timestamp"),
        # signed for a far time, the headers would outlive the caller's revocation
        (
            f'{{"method": "GET", "path": "/x", "timestamp": {CLOCK_S + 31}}}'.encode(),
            400,
            "from the server's clock",
        ),
        (f'{{"method": "GET", "path": "/x", "timestamp": {2**62}}}'.encode(), 400, "from the server's clock"),
        (b'{"method": "GET", "path": "no-slash"}', 400, "path"),
        (b"\xff\xfe" * 10, 400, "JSON"),
        (b"x" * 20_000, 413, "larger than"),
    ]
    for body, status, words in bad:
        answer = httpx.post(url, content=body, headers=auth)
        assert (status, True) == (answer.status_code, words in answer.json()["error"]), body[:40]
    for headers in (
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer psk.x.y"},
    ):
        answer = httpx.post(url, json={"method": "GET", "path": "/x"}, headers=headers)
        assert 401 == answer.status_code and answer.json()["error"]
    assert 404 == httpx.get(server.url + "/nope").status_code
    assert 405 == httpx.get(url).status_code
    bad_engine = server.engine_post("/sign/order", b'{"chain_id": "137"}')
    assert 400 == bad_engine.status_code and "chain_id" in bad_engine.json()["error"]
    assert 200 == httpx.get(server.url + "/healthz").status_code
    rows = server.audit()
    assert {"GET /nope", "GET /builder/headers"} <= {row[0] for row in rows}
    assert all(row[4] for row in rows if row[2] == "refused")


def test_revoked_callers_are_refused(server: Server) -> None:
    from polysnipe.adapters.signer_server.callers import CallerStore

    CallerStore(server.conn).revoke("engine")
    with pytest.raises(SignerRefused, match="caller engine is revoked"):
        server.client.sign_order(_request(server.address))


def test_no_secret_in_any_response_or_log_line(server: Server) -> None:
    with structlog.testing.capture_logs() as logs:
        server.client.sign_order(_request(server.address))
        server.client.builder_headers(CLOCK_S, "POST", "/submit", b'{"a":1}')
        httpx.post(server.url + "/sign/order", content=b"{}")
        server.engine_post("/sign/order", b"{}", nonce="m" * 20)
        docs = httpx.get(server.url + "/openapi.json").text + httpx.get(server.url + "/healthz").text
    key_file = next(Path(server.keys._directory).glob("*.json")).read_text()
    import json

    from eth_account import Account

    private = Account.decrypt(json.loads(key_file), KEYSTORE_PASSWORD).hex()
    everything = repr(logs) + docs + repr(server.audit()) + repr(server.client) + repr(server.keys)
    secret_hash = server.credential.hmac_key().hex()
    for secret in (private, BUILDER_SECRET, AUDIT_KEY_TEXT, server.credential.secret.reveal(), secret_hash,
                   KEYSTORE_PASSWORD, BUILDER_PASSPHRASE):  # fmt: skip
        assert secret not in everything
    assert any(entry.get("event") == "signer_request" for entry in logs)
