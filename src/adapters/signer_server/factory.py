"""Build the signing server from its config and the environment, the only place secrets are read.

POLYSNIPE_BUILDER_API_KEY / _SECRET / _PASSPHRASE: the builder credentials (all three or none; none
leaves the builder route answering 503). POLYSNIPE_SIGNER_AUDIT_KEY: the audit chain's key (required).
POLYSNIPE_SIGNER_KEYSTORE_PASSWORD or POLYSNIPE_SIGNER_PKCS11_PIN: the key backend's secret.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import psycopg
from psycopg import sql

from polysnipe.adapters.clob.auth import ApiCreds, BuilderAuth
from polysnipe.adapters.signer_server.audit import audit_key
from polysnipe.adapters.signer_server.keys import (
    DEFAULT_SCRYPT_N,
    KeyProvider,
    KeyProviderError,
    KeystoreProvider,
    Pkcs11Provider,
)
from polysnipe.core.secret import Secret

__all__ = [
    "ENV_AUDIT_KEY",
    "ENV_BUILDER_API_KEY",
    "ENV_BUILDER_PASSPHRASE",
    "ENV_BUILDER_SECRET",
    "ENV_KEYSTORE_PASSWORD",
    "ENV_PKCS11_PIN",
    "KeyBackend",
    "SignerEnvError",
    "audit_key_from_env",
    "builder_from_env",
    "db_opener",
    "open_key_provider",
]

ENV_BUILDER_API_KEY: Final = "POLYSNIPE_BUILDER_API_KEY"
ENV_BUILDER_SECRET: Final = "POLYSNIPE_BUILDER_SECRET"
ENV_BUILDER_PASSPHRASE: Final = "POLYSNIPE_BUILDER_PASSPHRASE"
ENV_AUDIT_KEY: Final = "POLYSNIPE_SIGNER_AUDIT_KEY"
ENV_KEYSTORE_PASSWORD: Final = "POLYSNIPE_SIGNER_KEYSTORE_PASSWORD"
ENV_PKCS11_PIN: Final = "POLYSNIPE_SIGNER_PKCS11_PIN"


class SignerEnvError(ValueError):
    """A secret the server needs is missing or malformed; names the variable, never its value."""


@attrs.frozen(slots=True, kw_only=True)
class KeyBackend:
    """Which provider holds the trader keys and where (nothing secret)."""

    kind: str  # "keystore" | "pkcs11"
    keystore_dir: str = "keys"
    scrypt_n: int = DEFAULT_SCRYPT_N
    pkcs11_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    pkcs11_token_label: str = "polysnipe"


def builder_from_env(env: Mapping[str, str]) -> BuilderAuth | None:
    names = (ENV_BUILDER_API_KEY, ENV_BUILDER_SECRET, ENV_BUILDER_PASSPHRASE)
    given = [env.get(name, "") for name in names]
    if not any(given):
        return None
    missing = [name for name, value in zip(names, given, strict=True) if not value]
    if missing:
        raise SignerEnvError(f"builder credentials need all three variables; {', '.join(missing)} not set")
    try:
        return BuilderAuth(ApiCreds(given[0], Secret(given[1]), Secret(given[2])))
    except (TypeError, ValueError) as exc:
        raise SignerEnvError(f"{ENV_BUILDER_API_KEY}/_SECRET/_PASSPHRASE: {exc}") from None


def audit_key_from_env(env: Mapping[str, str]) -> Secret[bytes]:
    text = env.get(ENV_AUDIT_KEY, "")
    if not text:
        raise SignerEnvError(f"{ENV_AUDIT_KEY} is not set: the audit chain's key (16+ characters)")
    try:
        return audit_key(Secret(text))
    except ValueError as exc:
        raise SignerEnvError(f"{ENV_AUDIT_KEY}: {exc}") from None


def open_key_provider(backend: KeyBackend, env: Mapping[str, str]) -> KeyProvider:
    if backend.kind == "keystore":
        password = env.get(ENV_KEYSTORE_PASSWORD, "")
        if not password:
            raise SignerEnvError(f"{ENV_KEYSTORE_PASSWORD} is not set: the key files' password")
        directory = Path(backend.keystore_dir)
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:  # a file of that name, a path under /proc, no permission
            raise KeyProviderError(
                f"{directory}: cannot be the keystore directory ({exc.strerror})"
            ) from None
        return KeystoreProvider(directory, Secret(password), scrypt_n=backend.scrypt_n)
    pin = env.get(ENV_PKCS11_PIN, "")
    if not pin:
        raise SignerEnvError(f"{ENV_PKCS11_PIN} is not set: the token's user PIN")
    return Pkcs11Provider(backend.pkcs11_module, backend.pkcs11_token_label, Secret(pin))


def db_opener(url: str, schema: str = "public") -> Callable[[], Awaitable[psycopg.AsyncConnection[Any]]]:
    """Opens autocommit connections whose search_path is `schema` (the migrated tables)."""

    async def connect() -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
        await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        return conn

    return connect
