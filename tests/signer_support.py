"""A signing server on a migrated schema of the test database, with one caller and keystore keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import psycopg
import structlog
from psycopg import sql

from polysnipe.adapters.clob.auth import ApiCreds, BuilderAuth
from polysnipe.adapters.clob.signing import keccak256
from polysnipe.adapters.postgres.migrations import apply_migrations
from polysnipe.adapters.signer_server.app import SignerService
from polysnipe.adapters.signer_server.audit import audit_key
from polysnipe.adapters.signer_server.auth import Credential
from polysnipe.adapters.signer_server.callers import CallerStore
from polysnipe.adapters.signer_server.config import Policy, RateLimit, SignerServerConfig
from polysnipe.adapters.signer_server.factory import db_opener
from polysnipe.adapters.signer_server.keys import KeyProvider, KeystoreProvider
from polysnipe.core.ports import Clock
from polysnipe.core.secret import Secret

DSN = "postgresql://127.0.0.1:5432/test"
MIGRATIONS = Path(__file__).parents[1] / "migrations"
BUILDER_KEY = "019894b9-cb40-79c4-b2bd-6aecb6f8c6c5"
BUILDER_SECRET = "c2lnbmVyLXRlc3Qtc2VjcmV0LWJ5dGVzLTMyLWxvbmc="
BUILDER_PASSPHRASE = "signer-test-passphrase"
AUDIT_KEY_TEXT = "audit-key-for-the-signer-tests"
KEYSTORE_PASSWORD = "keystore-password-for-tests"
EXCHANGE = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE = "0xe2222d279d744050d28e00520010520000310F59"
USDC = "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174"
CONDITIONAL_TOKENS = "0x4D97DCd97eC945f40cF65F87097ACe5EA0476045"


class HandClock:
    """Wall-like time the test moves by hand."""

    def __init__(self, now_ms: int = 1_800_000_000_000) -> None:
        self.now = now_ms
        self.mono_ns = 10**12

    def now_ms(self) -> int:
        return self.now

    def monotonic_ns(self) -> int:
        return self.mono_ns

    def advance_s(self, seconds: float) -> None:
        self.now += int(seconds * 1000)
        self.mono_ns += int(seconds * 1e9)


def migrate(conn: psycopg.Connection[Any], schema: str) -> None:
    apply_migrations(conn, MIGRATIONS, schema=schema)
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))


def add_caller(conn: psycopg.Connection[Any], name: str) -> Credential:
    return CallerStore(conn).add(name)


def keystore(tmp: Path, count: int = 1) -> KeystoreProvider:
    provider = KeystoreProvider(tmp, Secret(KEYSTORE_PASSWORD), scrypt_n=2)
    for _ in range(count):
        provider.create()
    return provider


# -- Safe call data (the calls the signer's Safe policy reads) --------------------------------------
def calldata(signature: str, *words: bytes | str | int) -> bytes:
    """ABI call data for static arguments (addresses and integers), each one word."""
    out = keccak256(signature.encode())[:4]
    for w in words:
        if isinstance(w, str):
            out += bytes(12) + bytes.fromhex(w[2:])
        elif isinstance(w, int):
            out += w.to_bytes(32, "big")
        else:
            out += w
    return out


def packed(*calls: tuple[int, str, int, bytes]) -> bytes:
    """MultiSend's packed transactions: operation, to, value, data length, data."""
    return b"".join(
        bytes([op]) + bytes.fromhex(to[2:]) + value.to_bytes(32, "big") + len(d).to_bytes(32, "big") + d
        for op, to, value, d in calls
    )


def wrap(blob: bytes, *, offset: int = 32, padding: bytes | None = None) -> bytes:
    """multiSend(bytes) call data around `blob` (zero padding to a word unless given)."""
    pad = bytes(-len(blob) % 32) if padding is None else padding
    return calldata("multiSend(bytes)", offset, len(blob)) + blob + pad


def multisend(*calls: tuple[int, str, int, bytes]) -> bytes:
    return wrap(packed(*calls))


#: approve(EXCHANGE, 2**256 - 1): the call a new Safe makes before it trades
APPROVE_EXCHANGE = calldata("approve(address,uint256)", EXCHANGE, 2**256 - 1)


def policy_for(keys: KeyProvider, *, safes: tuple[str, ...] = ()) -> Policy:
    return Policy(
        chain_ids=frozenset({137}),
        verifying_contracts=(EXCHANGE, NEG_RISK_EXCHANGE, "0xaacFeEa03eb1561C4e67d661e40682Bd20E3541b"),
        safes=safes,
        makers=tuple(keys.addresses()),
        collateral_tokens=(USDC,),
        conditional_tokens=(CONDITIONAL_TOKENS,),
        spenders=(EXCHANGE, NEG_RISK_EXCHANGE),
    )


def service(
    schema: str,
    keys: KeyProvider,
    clock: Clock,
    *,
    policy: Policy | None = None,
    builder: bool = True,
    **config: Any,
) -> SignerService:
    creds = ApiCreds(BUILDER_KEY, Secret(BUILDER_SECRET), Secret(BUILDER_PASSPHRASE))
    base = SignerServerConfig(
        policy=policy if policy is not None else policy_for(keys),
        per_caller=RateLimit(1000.0, 1000),
        per_key=RateLimit(1000.0, 1000),
    )
    return SignerService(
        attrs.evolve(base, **config),
        keys=keys,
        builder=BuilderAuth(creds) if builder else None,
        open_db=db_opener(DSN, schema),
        audit_key=audit_key(Secret(AUDIT_KEY_TEXT)),
        clock=clock,
        log=structlog.get_logger(component="signer"),
    )
