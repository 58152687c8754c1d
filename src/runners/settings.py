"""Non-secret settings of runs that talk to real services: the `[connections]` section of the settings
file, each key overridden by its POLYSNIPE_* environment variable.

Secrets never pass through here: each adapter's factory reads its own from the environment (the CLOB
key and L2 credentials: `adapters/clob/factory.py`, POLYSNIPE_CLOB_*), so no settings object, repr or
log line can carry one. A settings file that names a secret, or a URL with a password in it, is
refused; a password given in an environment URL is masked whenever the URL is printed.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Final

import attrs

from polysnipe.adapters.clob.config import AMOY, BYTES32_ZERO, POLYGON, SignatureType
from polysnipe.adapters.clob.factory import ENV_API_KEY, ENV_API_PASSPHRASE, ENV_API_SECRET, ENV_PRIVATE_KEY
from polysnipe.adapters.signer_client.factory import ENV_CREDENTIAL
from polysnipe.adapters.signer_server.factory import (
    ENV_AUDIT_KEY,
    ENV_BUILDER_API_KEY,
    ENV_BUILDER_PASSPHRASE,
    ENV_BUILDER_SECRET,
    ENV_KEYSTORE_PASSWORD,
    ENV_PKCS11_PIN,
)
from polysnipe.adapters.urls import mask_url, url_password
from polysnipe.runners.schema import Int, Text, setting

__all__ = [
    "SECRET_ENV",
    "SECRET_ENV_PREFIXES",
    "Settings",
    "looks_secret",
    "mask_url",
    "url_password",
]

#: the environment variables that hold secrets: named by `config show`, never printed
SECRET_ENV: Final = (
    ENV_PRIVATE_KEY, ENV_API_KEY, ENV_API_SECRET, ENV_API_PASSPHRASE,
    # the signing server's, and the engine's credential for it
    ENV_BUILDER_API_KEY, ENV_BUILDER_SECRET, ENV_BUILDER_PASSPHRASE, ENV_AUDIT_KEY, ENV_KEYSTORE_PASSWORD,
    ENV_PKCS11_PIN, ENV_CREDENTIAL,
)  # fmt: skip
#: one secret per external-signal provider: POLYSNIPE_SIGNAL_KEY_<NAME>
SECRET_ENV_PREFIXES: Final = ("POLYSNIPE_SIGNAL_KEY_",)
_SECRET_WORDS: Final = (
    "private_key",
    "privatekey",
    "secret",
    "passphrase",
    "api_key",
    "apikey",
    "mnemonic",
    "password",
)


def looks_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _url(*schemes: str, empty_ok: bool = False, client: Callable[[str], None] | None = None) -> Text:
    """A URL of one of `schemes`, with a port in range and no control characters; `client`, when
    given, is the client library's own reading of it (raising ValueError or TypeError), so an option
    it would refuse is refused here, in one line, and not at the first connection."""

    def check(text: str) -> str | None:
        if empty_ok and text == "":
            return None
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            return "a URL holds no control characters"
        try:
            parts = urllib.parse.urlsplit(text)
            parts.port  # noqa: B018 -- reading it checks the range
        except ValueError as exc:
            return f"not a URL ({exc})"
        if parts.scheme not in schemes or not (parts.netloc or (parts.path and parts.scheme == "unix")):
            return f"expected a {' or '.join(s + '://' for s in schemes)} URL"
        if client is not None:
            try:
                client(text)
            except (ValueError, TypeError) as exc:
                return f"not usable by the client ({str(exc)[:160]})"
        return None

    return Text(
        f"{' or '.join(s + '://' for s in schemes)} URL" + (' or ""' if empty_ok else ""), check, mask_url
    )


def _postgres_options(url: str) -> None:
    """libpq's reading of a connection URL (unknown query options, bad escapes)."""
    import psycopg.conninfo

    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ValueError(str(exc).strip().splitlines()[0]) from None


def _redis_options(url: str) -> None:
    """redis-py's reading of a URL: its query options become client arguments (nothing connects)."""
    import redis

    parts = urllib.parse.urlsplit(url)
    db = parts.path.lstrip("/") if parts.scheme != "unix" else ""
    if db and not (db.isascii() and db.isdigit()):
        raise ValueError(f"the database number {db[:20]!r} is not a number")
    redis.ConnectionPool.from_url(url).make_connection()  # builds the connection object only


def _hex(digits: int, what: str, *, empty_ok: bool = False) -> Text:
    def check(text: str) -> str | None:
        if empty_ok and text == "":
            return None
        body = text[2:]
        if not (
            text.startswith("0x") and len(body) == digits and all(c in "0123456789abcdefABCDEF" for c in body)
        ):
            return f"expected {what}: 0x and {digits} hex digits"
        return None

    return Text(f"{what}, 0x + {digits} hex digits" + (' or ""' if empty_ok else ""), check)


def _schema_name(text: str) -> str | None:
    # it goes into search_path and identifiers: plain lower-case names only
    if not (0 < len(text) <= 63 and text[0] in _SCHEMA_FIRST and all(c in _SCHEMA_REST for c in text)):
        return "expected a schema name: a-z or _ first, then a-z, 0-9 or _, at most 63 characters"
    return None


_SCHEMA_FIRST: Final = frozenset("abcdefghijklmnopqrstuvwxyz_")
_SCHEMA_REST: Final = _SCHEMA_FIRST | frozenset("0123456789")


@attrs.frozen(slots=True, kw_only=True)
class Settings:
    """Where the venue, the journal and the bus are, and the non-secret parameters orders are signed
    with. Each key may also come from its POLYSNIPE_* environment variable, which wins over the file."""

    chain_id: int = setting(
        POLYGON, Int(choices=(POLYGON, AMOY)), "chain the orders are signed for: 137 Polygon, 80002 Amoy",
        env="POLYSNIPE_CHAIN_ID",
    )  # fmt: skip
    clob_url: str = setting(
        "https://clob.polymarket.com", _url("https", "http"), "Polymarket CLOB REST endpoint",
        env="POLYSNIPE_CLOB_URL",
    )  # fmt: skip
    gamma_url: str = setting(
        "https://gamma-api.polymarket.com", _url("https", "http"),
        "Polymarket Gamma API (market metadata: fee schedules, neg-risk events); polysnipe sim-clob"
        " serves it under its URL + /gamma", env="POLYSNIPE_GAMMA_URL",
    )  # fmt: skip
    clob_ws_url: str = setting(
        "wss://ws-subscriptions-clob.polymarket.com/ws", _url("wss", "ws"),
        "CLOB WebSocket base URL (the market channel is its /market)", env="POLYSNIPE_CLOB_WS_URL",
    )  # fmt: skip
    builder_code: str = setting(
        BYTES32_ZERO, _hex(64, "bytes32"), "builder code signed into every order (attribution)",
        env="POLYSNIPE_BUILDER_CODE",
    )  # fmt: skip
    signature_type: int = setting(
        int(SignatureType.EOA), Int(choices=tuple(int(t) for t in SignatureType)),
        "who signs and holds the funds: 0 EOA, 1 proxy, 2 Safe, 3 deposit wallet (1-3 need a funder)",
        env="POLYSNIPE_SIGNATURE_TYPE",
    )  # fmt: skip
    funder: str = setting(
        "", _hex(40, "address", empty_ok=True), 'wallet holding the funds; "" = the signing key\'s address',
        env="POLYSNIPE_FUNDER",
    )  # fmt: skip
    database_url: str = setting(
        "postgresql://127.0.0.1:5432/test", _url("postgresql", "postgres", client=_postgres_options),
        "Postgres journal (a password belongs in the environment or ~/.pgpass, never in a file)",
        env="POLYSNIPE_DATABASE_URL",
    )  # fmt: skip
    database_schema: str = setting(
        "public", Text("a Postgres schema name", _schema_name),
        "schema of the journal, so several deployments (or test runs) share one database",
        env="POLYSNIPE_DATABASE_SCHEMA",
    )  # fmt: skip
    wallet_lease_ms: int = setting(
        15_000, Int(min=1_000, max=600_000),
        "how long a wallet stays one engine's without renewal: a restarted or standby engine takes a dead "
        "engine's wallet over after at most this long",
        env="POLYSNIPE_WALLET_LEASE_MS",
    )  # fmt: skip
    signing_threads: int = setting(
        -1, Int(min=-1, max=64),
        "worker threads signing a basket's legs beside the engine loop; -1 = the CPUs less one, 0 = none"
        " (best on a host whose CPUs other processes keep busy)",
        env="POLYSNIPE_SIGNING_THREADS",
    )  # fmt: skip
    signer_url: str = setting(
        "", _url("https", "http", empty_ok=True),
        'signing server (polysnipe signer serve) that signs the orders of polysnipe run; "" = in process'
        " with POLYSNIPE_CLOB_PRIVATE_KEY. Its caller credential comes from POLYSNIPE_SIGNER_CREDENTIAL",
        env="POLYSNIPE_SIGNER_URL",
    )  # fmt: skip
    signer_key: str = setting(
        "", _hex(40, "address", empty_ok=True),
        "the signing server's managed key that signs the orders (polysnipe signer keys list)",
        env="POLYSNIPE_SIGNER_KEY",
    )  # fmt: skip
    redis_url: str = setting(
        "redis://127.0.0.1:6379/0", _url("redis", "rediss", "unix", client=_redis_options),
        "Redis Streams bus",
        env="POLYSNIPE_REDIS_URL",
    )  # fmt: skip
