"""The signing server end to end: its OpenAPI document, Safe signatures through it, TLS with a
certificate the test makes, and the callers / keys commands."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from eth_account import Account
from eth_account.messages import encode_defunct

from polysnipe.adapters.signer_client.client import SignerClient
from polysnipe.adapters.signer_client.config import SignerClientConfig
from polysnipe.adapters.signer_server import schemas
from polysnipe.adapters.signer_server.digests import MULTISEND, derive_safe
from polysnipe.runners.cli import main
from polysnipe.runners.signer import start_in_thread
from polysnipe.runners.signer_settings import SignerSettings
from signer_support import (
    APPROVE_EXCHANGE,
    DSN,
    KEYSTORE_PASSWORD,
    USDC,
    HandClock,
    add_caller,
    keystore,
    migrate,
    multisend,
    policy_for,
    service,
)

NOW_S = HandClock().now // 1000


def _self_signed(directory: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


def test_safe_signatures_over_tls_and_the_openapi_document(
    db: tuple[psycopg.Connection[Any], str], tmp_path: Path
) -> None:
    conn, schema = db
    migrate(conn, schema)
    credential = add_caller(conn, "engine")
    (tmp_path / "keys").mkdir()
    keys = keystore(tmp_path / "keys")
    owner = keys.addresses()[0]
    safe = derive_safe(owner)
    cert, key = _self_signed(tmp_path)
    settings = SignerSettings(tls_cert_file=cert, tls_key_file=key)
    svc = service(schema, keys, HandClock(), policy=policy_for(keys, safes=(safe,)))
    url, stop = start_in_thread(svc, settings)
    client = SignerClient(SignerClientConfig(url=url, ca_file=cert), credential, now_s=lambda: NOW_S)
    try:
        assert url.startswith("https://")
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/healthz")  # an unknown certificate is refused
        doc = httpx.get(url + "/openapi.json", verify=cert).json()
        assert "3.1.0" == doc["openapi"]
        assert {"/builder/headers", "/sign/order", "/sign/safe-tx", "/sign/safe-create", "/healthz",
                "/openapi.json"} == set(doc["paths"])  # fmt: skip
        order_body = doc["paths"]["/sign/order"]["post"]["requestBody"]["content"]["application/json"]
        assert "#/components/schemas/OrderSignRequest" == order_body["schema"]["$ref"]
        assert "maker_amount" in doc["components"]["schemas"]["OrderSignRequest"]["properties"]
        created = client.sign_safe_create(schemas.SafeCreateSignRequest(137, owner))
        assert safe == created.safe
        signature = bytes.fromhex(created.signature[2:])
        assert owner == Account._recover_hash(bytes.fromhex(created.digest[2:]), signature=signature)
        approve_both = multisend((0, USDC, 0, APPROVE_EXCHANGE), (0, USDC, 0, APPROVE_EXCHANGE))
        batch = schemas.SafeTxSignRequest(137, owner, safe, MULTISEND, "0", "0x" + approve_both.hex(), 1, "4")
        signed = client.sign_safe_tx(batch)
        packed = bytes.fromhex(signed.signature[2:])
        assert packed[64] in (31, 32)
        eth_sign = packed[:64] + bytes([packed[64] - 4])
        assert owner == Account.recover_message(
            encode_defunct(bytes.fromhex(signed.digest[2:])), signature=eth_sign
        )
        refused = httpx.post(url + "/sign/safe-tx", content=b"{}", verify=cert)
        assert 401 == refused.status_code
    finally:
        client.close()
        stop()


def test_signer_mistakes_are_one_line_before_anything_listens(tmp_path: Path) -> None:
    """Each was a traceback: uvicorn's (exit 3) for a schema never migrated or a database that is
    down, an internal error for a TLS certificate without its key, a key directory that is a file,
    or a scrypt cost that is not a power of two. Run as a user runs it, with a time limit: should a
    check be missed, the server would serve."""
    env = {**os.environ, "POLYSNIPE_SIGNER_AUDIT_KEY": "a" * 20, "POLYSNIPE_DATABASE_URL": DSN,
           "POLYSNIPE_SIGNER_KEYSTORE_PASSWORD": KEYSTORE_PASSWORD}  # fmt: skip
    (tmp_path / "a_file").write_text("")
    keys = f'keystore_dir = "{tmp_path / "keys"}"\n'
    cases = [
        (f'{keys}db_schema = "never_migrated_{uuid.uuid4().hex[:8]}"\n', DSN, "has no signer tables"),
        (f'{keys}tls_cert_file = "{tmp_path / "a_file"}"\n', DSN, "TLS needs both a certificate"),
        (f'keystore_dir = "{tmp_path / "a_file"}"\n', DSN, "cannot be the keystore directory"),
        (f"{keys}keystore_scrypt_n = 3\n", DSN, "keystore_scrypt_n: must be one of 2, 4, 8"),
        (keys, "postgresql://127.0.0.1:1/test", "cannot connect to the database at postgresql://127.0.0.1:1"),
    ]
    exe = str(Path(sys.executable).with_name("polysnipe"))
    settings = tmp_path / "signer.toml"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    for text, url, says in cases:
        settings.write_text("[signer]\n" + text)
        done = subprocess.run([exe, "signer", "serve", "--port", port, "--config", str(settings)],
                              env=env | {"POLYSNIPE_DATABASE_URL": url}, capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip
        assert (2, True, 1) == (done.returncode, says in done.stderr, len(done.stderr.splitlines())), (
            done.stderr
        )


def test_callers_and_keys_commands(
    db: tuple[psycopg.Connection[Any], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    conn, schema = db
    migrate(conn, schema)
    settings = tmp_path / "signer.toml"
    settings.write_text(
        f'[signer]\ndb_schema = "{schema}"\nkeystore_dir = "{tmp_path / "keys"}"\nkeystore_scrypt_n = 2\n'
    )
    monkeypatch.setenv("POLYSNIPE_DATABASE_URL", DSN)
    config = ["--config", str(settings)]
    assert 0 == main(["signer", "callers", "add", "engine-1", *config])
    token = capsys.readouterr().out.splitlines()[-1]
    assert token.startswith("psk.")
    stored = conn.execute("SELECT secret_sha256 FROM signer_callers").fetchall()
    assert token.rsplit(".", 1)[1] not in repr(stored)
    assert 2 == main(["signer", "callers", "add", "engine-1", *config])
    assert "exists" in capsys.readouterr().err
    assert 0 == main(["signer", "callers", "revoke", "engine-1", *config])
    assert 0 == main(["signer", "callers", "list", *config])
    listed = capsys.readouterr().out
    assert "engine-1" in listed and "revoked" in listed and token not in listed
    assert 2 == main(["signer", "callers", "revoke", "nobody", *config])
    assert "no active caller" in capsys.readouterr().err
    assert 2 == main(["signer", "keys", "create", *config])
    assert "POLYSNIPE_SIGNER_KEYSTORE_PASSWORD is not set" in capsys.readouterr().err
    monkeypatch.setenv("POLYSNIPE_SIGNER_KEYSTORE_PASSWORD", KEYSTORE_PASSWORD)
    assert 0 == main(["signer", "keys", "create", *config])
    address = capsys.readouterr().out.strip()
    assert 0 == main(["signer", "keys", "list", *config])
    assert [address] == capsys.readouterr().out.split()
