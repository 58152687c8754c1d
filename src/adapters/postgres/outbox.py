"""The durable order outbox in Postgres (migrations/0008_outbox.sql; core.ports.OrderOutbox).

Every call commits before it returns: a claim is durable before the order's bytes leave, so a crash
right after the POST still finds the row, and the order id can never be sent again. The outbox runs on
a connection of its own (autocommit), apart from the journal writer's batch transaction; the journal
commits the order's row first (the loop commits before each placement), which the foreign key needs.
"""

from __future__ import annotations

from typing import Any

import attrs
import psycopg

from polysnipe.core.ports import OUTBOX_STATES

__all__ = ["OutboxRow", "PostgresOutbox"]

_CLAIM = """
INSERT INTO outbox (order_id, order_hash, payload_sha256, signed_ms, updated_ms, incarnation)
VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (order_id) DO NOTHING RETURNING order_id"""
_RESIGN = """
UPDATE outbox SET order_hash = %s, payload_sha256 = %s, signed_ms = %s, updated_ms = %s, state = 'sending'
WHERE order_id = %s AND incarnation = %s"""
# an answer moves only an entry whose fate is still open; acknowledged, rejected and ended are final
_SETTLE = """
UPDATE outbox SET state = %s, detail = %s, updated_ms = %s
WHERE order_id = %s AND state IN ('sending', 'unknown')"""
_UNRESOLVED = """
SELECT o.order_id, o.order_hash, o.state, o.signed_ms, o.incarnation FROM outbox o
WHERE o.state IN ('sending', 'unknown') AND o.incarnation <> %s ORDER BY o.signed_ms, o.order_id"""


@attrs.frozen(slots=True)
class OutboxRow:
    order_id: str
    order_hash: str
    state: str
    signed_ms: int
    incarnation: str


class PostgresOutbox:
    """core.ports.OrderOutbox (module doc). `incarnation` names this run of the engine."""

    __slots__ = ("_conn", "incarnation")

    def __init__(self, conn: psycopg.Connection[Any], incarnation: str) -> None:
        self._conn = conn
        self.incarnation = incarnation

    def claim(self, order_id: str, order_hash: str, payload_sha256: str, signed_ms: int) -> bool:
        row = self._conn.execute(
            _CLAIM, (order_id, order_hash, payload_sha256, signed_ms, signed_ms, self.incarnation)
        ).fetchone()
        return row is not None

    def resign(self, order_id: str, order_hash: str, payload_sha256: str, signed_ms: int) -> None:
        """The venue changed its order version and this incarnation signs the order again: the new
        bytes replace the old (which the venue refused) before they are sent."""
        self._conn.execute(
            _RESIGN, (order_hash, payload_sha256, signed_ms, signed_ms, order_id, self.incarnation)
        )

    def settle(self, order_id: str, state: str, detail: str, ts_ms: int) -> None:
        if state not in OUTBOX_STATES:
            raise ValueError(f"unknown outbox state {state!r}")
        self._conn.execute(_SETTLE, (state, detail[:500], ts_ms, order_id))

    def unresolved(self) -> list[OutboxRow]:
        """Entries of earlier incarnations whose fate the venue never told (sent, then a crash or a
        lost answer): to be resolved by hash before anything new is sent."""
        rows = self._conn.execute(_UNRESOLVED, (self.incarnation,)).fetchall()
        return [OutboxRow(*r) for r in rows]
