"""`polysnipe kill`, `resume` and `status`: what an operator does to and sees of running engines.

A kill switch is journaled (kill_switch_events: who, why, when; kill_switches: the current state) and
every running engine on the journal picks it up before its next decision (adapters/postgres/controls.py).
`status` reads the journal: kill switches, open orders, exposure per wallet and market, the outbox's
unresolved orders, and (when the bus is configured) the streams.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import psycopg

from polysnipe.adapters.clob.config import validate_address, validate_bytes32
from polysnipe.adapters.postgres.database import DatabaseConfig, JournalUnavailable, connect
from polysnipe.adapters.postgres.journal import PostgresJournal
from polysnipe.adapters.urls import mask_url
from polysnipe.core.messages import RecordKillSwitch
from polysnipe.core.risk import check_scope
from polysnipe.core.units import format_micro
from polysnipe.runners.core_objects import STRATEGIES
from polysnipe.runners.errors import UnreachableService, UsageError

__all__ = ["bus_lines", "engage", "operator_name", "status_text"]

#: a reason is for people reading the journal later: one line, bounded
MAX_REASON = 500


def operator_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (a container without passwd)
        return "operator"


@contextmanager
def _journal(database: DatabaseConfig) -> Iterator[psycopg.Connection[Any]]:
    try:
        conn = connect(database)
    except JournalUnavailable as exc:
        raise UnreachableService(
            f"{exc}; check POLYSNIPE_DATABASE_URL and POLYSNIPE_DATABASE_SCHEMA"
        ) from None
    with conn:
        yield conn


_SCOPES: Final = "global, strategy:NAME, market:CONDITION_ID or wallet:ADDRESS"


def _operator_scope(scope: str) -> str:
    """A scope an operator typed, as the engine matches it; UsageError for one that could never
    cover anything (a misspelt strategy, a market or wallet id of the wrong shape)."""
    try:
        normal = check_scope(scope)
    except ValueError:
        raise UsageError(f"--scope: {scope!r} is not a scope; use {_SCOPES}") from None
    kind, _, name = normal.partition(":")
    if kind == "strategy" and name not in STRATEGIES:
        raise UsageError(f"--scope: no strategy is named {name!r}; strategies: {', '.join(STRATEGIES)}")
    check = {"market": (validate_bytes32, "condition id is 0x and 64"),
             "wallet": (validate_address, "wallet address is 0x and 40")}.get(kind)  # fmt: skip
    if check is not None:
        validate, shape = check
        try:
            validate(name)
        except ValueError:
            raise UsageError(f"--scope: {scope!r}: a {shape} hex digits") from None
    return normal


def engage(database: DatabaseConfig, scope: str, *, engaged: bool, reason: str, by: str) -> str:
    """Journal a kill switch change; returns the line to print."""
    scope = _operator_scope(scope)
    if any(c in reason for c in "\r\n"):
        raise UsageError("--reason: one line, please (it is shown on one line in alerts and status)")
    reason = " ".join(reason.split())
    if not reason:
        raise UsageError("--reason: say why, for whoever reads the journal later")
    if len(reason) > MAX_REASON:
        raise UsageError(f"--reason: at most {MAX_REASON} characters, got {len(reason)}")
    with _journal(database) as conn:
        journal = PostgresJournal(conn)
        journal.record([RecordKillSwitch(scope, engaged, reason, by, time.time_ns() // 1_000_000)])
        journal.commit()
    verb = "engaged" if engaged else "released"
    return f"kill switch {scope} {verb} by {by}: {reason}"


_SWITCHES = "SELECT scope, engaged, reason, changed_by, ts_ms FROM kill_switches ORDER BY scope"
_OPEN_ORDERS = """
SELECT wallet, market, count(*), sum(size_micro - filled_size_micro) FROM orders
WHERE status NOT IN ('filled', 'cancelled', 'expired', 'rejected')
GROUP BY wallet, market ORDER BY wallet, market"""
# shares held by what the journal's fills say (FAILED trades never happened), and what they cost
_EXPOSURE = """
SELECT o.wallet, o.market,
       sum(CASE WHEN f.side = 'BUY' THEN f.size_micro - f.fee_shares_micro
                ELSE -(f.size_micro + f.fee_shares_micro) END)::bigint AS shares,
       sum(CASE WHEN f.side = 'BUY' THEN f.price_micro * f.size_micro / 1000000 + f.fee_usdc_micro
                ELSE -(f.price_micro * f.size_micro / 1000000) END)::bigint AS cost
FROM fills f JOIN orders o ON o.order_id = f.order_id
WHERE f.settlement_status <> 'FAILED'
GROUP BY o.wallet, o.market HAVING sum(f.size_micro) > 0 ORDER BY o.wallet, o.market"""
_OUTBOX = "SELECT state, count(*) FROM outbox GROUP BY state ORDER BY state"


def _table(title: str, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    if not rows:
        return [f"{title}: none"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return [f"{title}:", "  " + line.format(*header), *("  " + line.format(*r) for r in rows)]


async def bus_lines(redis_url: str, prefix: str, cluster: bool) -> list[str]:
    """The bus as an operator needs it: each stream's length, and per consumer group what it has not
    read yet (lag) and what it read but never acknowledged (pending); dead letters per stream."""
    import redis.exceptions

    from polysnipe.adapters.redis.factory import redis_client

    rows: list[tuple[str, ...]] = []
    dead: dict[str, int] = {}
    client = redis_client(redis_url, cluster=cluster, timeout_s=5.0)
    try:
        keys = sorted([k.decode() async for k in client.scan_iter(match=f"{prefix}{{*", count=1000)])
        for key in keys:
            if key.endswith(".dead"):
                dead[key.removesuffix(".dead")] = int(await client.xlen(key))
                continue
            length = int(await client.xlen(key))
            for g in await client.xinfo_groups(key) or [{"name": b"-", "pending": 0, "lag": None}]:
                name = g["name"].decode() if isinstance(g["name"], bytes) else str(g["name"])
                lag = g.get("lag")
                lagging = "?" if lag is None else str(lag)
                rows.append((key, str(length), name, lagging, str(g["pending"])))
    except (redis.exceptions.RedisError, OSError) as exc:
        return [f"bus: unreachable at {mask_url(redis_url)} ({type(exc).__name__})"]
    finally:
        await client.aclose()
    shown = [(k.removeprefix(prefix), n, g, lag, p, str(dead.get(k, 0))) for k, n, g, lag, p in rows]
    header = ("stream", "length", "group", "lag", "pending", "dead")
    return _table(f"bus {mask_url(redis_url)} prefix {prefix!r}", header, shown)


def status_text(database: DatabaseConfig, extra: list[str] | None = None) -> str:
    """The operator's view of the journal (module doc); `extra` lines (the bus) go at the end."""
    with _journal(database) as conn:
        switches = conn.execute(_SWITCHES).fetchall()
        orders = conn.execute(_OPEN_ORDERS).fetchall()
        exposure = conn.execute(_EXPOSURE).fetchall()
        outbox = conn.execute(_OUTBOX).fetchall()
    engaged = [s for s in switches if s[1]]
    out = [f"journal {mask_url(database.url)} schema {database.schema}"]
    out += _table("kill switches engaged", ("scope", "by", "reason"),
                  [(scope, by, reason) for scope, _, reason, by, _ in engaged])  # fmt: skip
    out += _table("open orders", ("wallet", "market", "orders", "remaining shares"),
                  [(w, m, str(n), format_micro(int(rest or 0))) for w, m, n, rest in orders])  # fmt: skip
    held = [(w, m, format_micro(int(sh)), format_micro(int(c))) for w, m, sh, c in exposure]
    out += _table("exposure", ("wallet", "market", "net shares", "cost USDC"), held)
    out += _table("outbox", ("state", "orders"), [(state, str(n)) for state, n in outbox])
    return "\n".join([*out, *(extra or [])])
