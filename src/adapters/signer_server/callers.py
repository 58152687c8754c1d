"""The server's callers in Postgres (`signer_callers`): a name, the credential's id and its hash only."""

from __future__ import annotations

import re
from typing import Any, Final

import attrs
import psycopg

from polysnipe.adapters.signer_server.auth import Caller, Credential, new_credential
from polysnipe.core.secret import Secret

__all__ = ["CallerInfo", "CallerStore", "CallerStoreError", "lookup_caller"]

_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class CallerStoreError(ValueError):
    """A caller name that is malformed, taken or unknown."""


@attrs.frozen(slots=True)
class CallerInfo:
    name: str
    caller_id: str
    created_at: str
    revoked_at: str | None


class CallerStore:
    """Administration of callers (the CLI); the server reads them with `lookup_caller`."""

    __slots__ = ("_conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def add(self, name: str) -> Credential:
        if not _NAME.fullmatch(name):
            raise CallerStoreError(
                f"caller name {name[:70]!r} must be 1-64 characters of letters, digits, '_', '.', '-'"
            )
        credential = new_credential()
        try:
            self._conn.execute(
                "INSERT INTO signer_callers (caller_id, name, secret_sha256) VALUES (%s, %s, %s)",
                (credential.caller_id, name, credential.hmac_key().hex()),
            )
        except psycopg.errors.UniqueViolation:
            raise CallerStoreError(
                f"caller {name!r} exists; revoke it first or choose another name"
            ) from None
        return credential

    def list(self) -> list[CallerInfo]:
        rows = self._conn.execute(
            "SELECT name, caller_id, created_at, revoked_at FROM signer_callers ORDER BY created_at, name"
        ).fetchall()
        return [
            CallerInfo(n, i, c.isoformat(timespec="seconds"), r.isoformat(timespec="seconds") if r else None)
            for n, i, c, r in rows
        ]

    def revoke(self, name: str) -> None:
        cur = self._conn.execute(
            "UPDATE signer_callers SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL", (name,)
        )
        if cur.rowcount != 1:
            raise CallerStoreError(
                f"no active caller named {name[:70]!r}; `polysnipe signer callers list` shows them"
            )


async def lookup_caller(conn: psycopg.AsyncConnection[Any], caller_id: str) -> Caller | None:
    """Read per request, so a revocation holds from the next request on."""
    cur = await conn.execute(
        "SELECT name, secret_sha256, revoked_at IS NOT NULL FROM signer_callers WHERE caller_id = %s",
        (caller_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    name, digest, revoked = row
    return Caller(caller_id, str(name), Secret(bytes.fromhex(str(digest))), bool(revoked))
