"""The audit log: one row per request, allowed or refused, hash-chained in Postgres (`signer_audit`).

Theory of operation. The server numbers rows itself (seq 1, 2, 3, ...) and chains them:
`row_hash = HMAC-SHA256(audit key, prev_hash || canonical row)`, where the canonical row is the JSON
array of every field but the two hashes. Keyed, so that someone who can write the table cannot
forge a row or re-chain the tail; verification needs the same key. A trigger refuses UPDATE and
DELETE (migrations/0006_signer.sql); the chain is what catches someone who gets past it:

* an edited row no longer matches its own hash, but its neighbours still link through it;
* an inserted row does not match its hash (or copies a seq that is already there); at the very end
  of the log an appended row and an edited last row look alike, and are reported as either;
* a deleted row leaves a gap in seq and a next row whose prev_hash links to nothing.

A signature leaves the server only after its row is written: if the audit cannot be written the
request fails (503), so nothing is ever signed unaudited.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs
import msgspec
import psycopg

from polysnipe.adapters.text import printable
from polysnipe.core.secret import Secret

__all__ = ["AuditEntry", "AuditLog", "AuditUnavailable", "Finding", "verify_rows"]

_COLUMNS: Final = (
    "seq, ts_ms, caller, endpoint, purpose, digest, key_address, notional_usdc_micro, decision, status,"
    " reason, latency_us, correlation_id, prev_hash, row_hash"
)


#: the longest text an audit row keeps of a path or a reason
_TEXT_MAX = 400


class AuditUnavailable(RuntimeError):
    """The audit row could not be written; the request it describes must not be answered."""


def storable(text: str) -> str:
    """A path or a reason as an audit row keeps it (a caller's text: escaped and bounded)."""
    return printable(text, _TEXT_MAX)


@attrs.frozen(slots=True, kw_only=True)
class AuditEntry:
    ts_ms: int
    caller: str
    endpoint: str = attrs.field(converter=storable)
    purpose: str
    digest: str
    key_address: str
    notional_usdc_micro: int
    decision: str
    status: int
    reason: str = attrs.field(converter=storable)
    latency_us: int
    correlation_id: str


def _canonical(seq: int, e: AuditEntry) -> bytes:
    return msgspec.json.encode(
        [
            seq,
            e.ts_ms,
            e.caller,
            e.endpoint,
            e.purpose,
            e.digest,
            e.key_address,
            e.notional_usdc_micro,
            e.decision,
            e.status,
            e.reason,
            e.latency_us,
            e.correlation_id,
        ]
    )


def _row_hash(key: Secret[bytes], prev_hash: str, seq: int, entry: AuditEntry) -> str:
    return hmac.new(key.reveal(), prev_hash.encode() + _canonical(seq, entry), hashlib.sha256).hexdigest()


def audit_key(text: Secret[str]) -> Secret[bytes]:
    """The chain key from its environment text (at least 16 characters; stretched by sha256)."""
    if len(text.reveal()) < 16:
        raise ValueError("the audit key must be at least 16 characters")
    return Secret(hashlib.sha256(b"polysnipe-signer-audit\x00" + text.reveal().encode()).digest())


class AuditLog:
    """Appends chained rows through one async connection; one writer at a time keeps the chain linear."""

    __slots__ = ("_conn", "_key", "_last_hash", "_lock", "_seq")

    def __init__(self, conn: psycopg.AsyncConnection[Any], key: Secret[bytes]) -> None:
        self._conn = conn
        self._key = key
        self._lock = asyncio.Lock()
        self._seq = 0
        self._last_hash = ""

    async def open(self) -> None:
        """Continue the chain where the table ends."""
        cur = await self._conn.execute("SELECT seq, row_hash FROM signer_audit ORDER BY seq DESC LIMIT 1")
        row = await cur.fetchone()
        if row is not None:
            self._seq, self._last_hash = int(row[0]), str(row[1])

    async def append(self, entry: AuditEntry) -> int:
        async with self._lock:
            seq = self._seq + 1
            row_hash = _row_hash(self._key, self._last_hash, seq, entry)
            try:
                await self._conn.execute(
                    f"INSERT INTO signer_audit ({_COLUMNS}) VALUES"
                    " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (seq, *attrs.astuple(entry), self._last_hash, row_hash),
                )
            except psycopg.Error as exc:
                raise AuditUnavailable(f"audit row not written: {type(exc).__name__}") from None
            self._seq, self._last_hash = seq, row_hash
            return seq

    async def orders_since(self, since_ms: int) -> list[tuple[str, str, int]]:
        """(key, digest, notional) of the orders allowed since `since_ms`: the daily cap's memory."""
        cur = await self._conn.execute(
            "SELECT key_address, digest, notional_usdc_micro FROM signer_audit"
            " WHERE decision = 'allowed' AND purpose = 'order' AND ts_ms >= %s",
            (since_ms,),
        )
        return [(str(k), str(d), int(n)) for k, d, n in await cur.fetchall()]


@attrs.frozen(slots=True)
class Finding:
    """One break in the chain, naming the row."""

    kind: str  # "edited" | "inserted" | "deleted"
    seq: int
    detail: str

    def render(self) -> str:
        return f"{self.kind}: {self.detail}"


def _entry(row: Sequence[Any]) -> AuditEntry:
    names = [f.name for f in attrs.fields(AuditEntry)]
    return AuditEntry(**dict(zip(names, row[1:13], strict=True)))


def fetch_rows(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(f"SELECT {_COLUMNS} FROM signer_audit ORDER BY seq, id").fetchall()


def verify_rows(rows: Iterable[Sequence[Any]], key: Secret[bytes]) -> tuple[int, list[Finding]]:
    """Walk the chain in seq order; (rows read, findings). No findings: the log is as written."""
    ordered = list(rows)
    findings: list[Finding] = []
    last_seq, last_hash = 0, ""
    seqs = [int(r[0]) for r in ordered]
    for i, row in enumerate(ordered):
        seq, prev_hash, stored = int(row[0]), str(row[13]), str(row[14])
        try:
            entry = _entry(row)
        except (TypeError, ValueError):
            entry = None
        authentic = entry is not None and hmac.compare_digest(_row_hash(key, prev_hash, seq, entry), stored)
        duplicate = seqs.count(seq) > 1
        if not authentic:
            nxt = ordered[i + 1] if i + 1 < len(ordered) else None
            linked = nxt is not None and str(nxt[13]) == stored
            if (
                seq == last_seq + 1
                and not duplicate
                and (linked or (prev_hash == last_hash and nxt is not None))
            ):
                findings.append(Finding("edited", seq, f"row seq {seq} does not match its hash (edited)"))
                last_seq, last_hash = seq, str(nxt[13]) if nxt is not None else stored
            elif nxt is None and seq == last_seq + 1:
                findings.append(
                    Finding(
                        "inserted", seq,
                        f"row seq {seq} does not match its hash and nothing follows it"
                        " (inserted at the end, or the last row edited)",
                    )
                )  # fmt: skip
            else:
                findings.append(
                    Finding("inserted", seq, f"row seq {seq} was not written by the signer (inserted)")
                )
            continue
        if duplicate and prev_hash != last_hash:
            findings.append(Finding("inserted", seq, f"row seq {seq} is a copy of another row (inserted)"))
            continue
        if seq > last_seq + 1:
            missing = f"{last_seq + 1}" if seq == last_seq + 2 else f"{last_seq + 1}..{seq - 1}"
            findings.append(Finding("deleted", last_seq + 1, f"row seq {missing} deleted (before seq {seq})"))
        elif prev_hash != last_hash:
            findings.append(Finding("edited", seq, f"row seq {seq} does not link to seq {last_seq}"))
        last_seq, last_hash = seq, stored
    return len(ordered), findings
