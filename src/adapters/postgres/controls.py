"""Operators' kill switches, from the journal to a running engine.

`polysnipe kill` and `polysnipe resume` journal a RecordKillSwitch (kill_switch_events keeps who, why
and when; kill_switches the current state). A running engine's KillSwitchWatch reads the events it has
not seen before each batch, so a switch engaged from the command line blocks the engine's next
decision; at start it takes the current state first, so an engine never starts trading a scope an
operator stopped. The engine applies them as already journaled (KillSwitch.journaled): the journal
says once who engaged a switch. Switches the engine engages itself (a daily-loss breach) are its own
state already and are skipped.
"""

from __future__ import annotations

from typing import Any

import psycopg

from polysnipe.core.messages import KillSwitch

__all__ = ["KillSwitchWatch"]

_CURRENT = """
SELECT scope, engaged, reason, changed_by, ts_ms FROM kill_switches WHERE engaged ORDER BY scope"""
_LAST_EVENT = "SELECT coalesce(max(id), 0) FROM kill_switch_events"
_NEW_EVENTS = """
SELECT id, scope, engaged, reason, changed_by, ts_ms FROM kill_switch_events
WHERE id > %s AND changed_by <> 'engine' ORDER BY id LIMIT 1000"""


class KillSwitchWatch:
    """Kill switches from the journal (module doc), on a connection of its own (autocommit)."""

    __slots__ = ("_conn", "_last_id")

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._last_id = -1

    def current(self) -> list[KillSwitch]:
        """The switches engaged now (what an engine must honour before its first decision); later
        changes come from `poll`."""
        conn = self._conn
        with conn.transaction():
            # one snapshot for both reads, so no change slips between them
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            row = conn.execute(_LAST_EVENT).fetchone()
            rows = conn.execute(_CURRENT).fetchall()
        self._last_id = int(row[0]) if row is not None else 0
        return [KillSwitch(ts, scope, True, reason, by, journaled=True) for scope, _, reason, by, ts in rows]

    def poll(self) -> list[KillSwitch]:
        """The operators' changes since the last call, in the order they were made."""
        if self._last_id < 0:
            return self.current()
        rows = self._conn.execute(_NEW_EVENTS, (self._last_id,)).fetchall()
        if not rows:
            return []
        self._last_id = int(rows[-1][0])
        return [
            KillSwitch(ts, scope, engaged, reason, by, journaled=True)
            for _, scope, engaged, reason, by, ts in rows
        ]
