"""What a live engine does before it consumes anything: take over from the run before it.

Theory of operation
-------------------
An engine can die at any instant: between journaling an order and sending it, between sending it and
reading the answer, with orders resting and fills arriving while it is down. The next run starts here:

1. The outbox entries of earlier runs whose fate was never told (`sending`, `unknown`) are looked up
   on the venue by their order hash: found means the venue has it (`acknowledged`), not found means
   it never arrived (`absent`). Nothing is ever sent again: the order id stays claimed for good.
2. Every order of earlier runs that the journal does not show ended is settled with the venue: its
   fills are taken from its trades (journaled; a fill journaled already changes nothing), and what
   still rests is cancelled, because the intent behind it is as old as the crash. Its status is
   journaled with reason `engine_restarted`.
3. Every opportunity of earlier runs without an outcome gets one (reason `engine_restarted`), so each
   opportunity ends exactly once in the journal.
4. The positions the engine trades from are the venue's (conditional token balances), at the cost and
   in the strategy lot the journal's fills say, and the opportunity ids the journal holds are
   remembered, so a redelivered market event never trades the same opportunity twice.

All of it is journaled in one transaction before the loop starts.
"""

from __future__ import annotations

from typing import Any

import attrs
import psycopg

from polysnipe.adapters.clob.account import conditional_balance
from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.execution import ClobExecution
from polysnipe.adapters.logs import get_logger
from polysnipe.adapters.postgres.journal import PostgresJournal
from polysnipe.adapters.postgres.outbox import PostgresOutbox
from polysnipe.core.messages import (
    JournalRecord,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OutcomeKind,
    RecordFill,
    RecordOrderStatus,
    RecordOutcome,
)
from polysnipe.core.state import EngineState
from polysnipe.core.units import notional

__all__ = ["Takeover", "take_over"]

log = get_logger("polysnipe.restart")

REASON = "engine_restarted"

_OPEN_ORDERS = """
SELECT o.order_id, coalesce(o.order_hash, x.order_hash) AS order_hash, o.size_micro, o.opportunity_id,
       o.correlation_id, o.strategy, o.routing, o.status
FROM orders o LEFT JOIN outbox x ON x.order_id = o.order_id
WHERE o.status NOT IN ('filled', 'cancelled', 'expired', 'rejected')
ORDER BY o.created_ms, o.order_id"""
_OPEN_OPPORTUNITIES = """
SELECT o.id, o.correlation_id, o.size_micro,
       array_remove(array_agg(r.order_id ORDER BY r.created_ms), NULL) AS order_ids,
       coalesce(sum(f.size), 0)::bigint AS filled, coalesce(sum(f.cost), 0)::bigint AS cost
FROM opportunities o
LEFT JOIN orders r ON r.opportunity_id = o.id
LEFT JOIN (SELECT order_id, sum(size_micro) AS size, sum(price_micro * size_micro) AS cost
           FROM fills WHERE settlement_status <> 'FAILED' GROUP BY order_id) f ON f.order_id = r.order_id
WHERE o.outcome IS NULL GROUP BY o.id, o.correlation_id, o.size_micro ORDER BY o.id"""
_SEEN = "SELECT id, created_ms FROM opportunities WHERE created_ms >= %s"
_FILLED = "SELECT trade_id FROM fills WHERE order_id = %s"
#: per token: which strategy bought it last, and the average price its journaled buys paid
_LOTS = """
SELECT DISTINCT ON (f.token_id) f.token_id, o.strategy, f.ts_ms,
       (sum(f.price_micro * f.size_micro) FILTER (WHERE f.side = 'BUY') OVER w)::numeric AS paid,
       (sum(f.size_micro) FILTER (WHERE f.side = 'BUY') OVER w)::numeric AS bought
FROM fills f JOIN orders o ON o.order_id = f.order_id
WHERE o.wallet = %s AND f.settlement_status <> 'FAILED'
WINDOW w AS (PARTITION BY f.token_id)
ORDER BY f.token_id, (f.side = 'BUY') DESC, f.ts_ms DESC"""


@attrs.define
class Takeover:
    """What the takeover found and did (logged, and in the run's report)."""

    outbox_acknowledged: int = 0
    outbox_absent: int = 0
    orders_settled: int = 0
    orders_cancelled: int = 0
    fills_recovered: int = 0
    outcomes_closed: int = 0
    positions_restored: int = 0
    ids_remembered: int = 0

    def as_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


async def take_over(
    *,
    conn: psycopg.Connection[Any],
    outbox: PostgresOutbox,
    execution: ClobExecution,
    client: ClobHttpClient,
    state: EngineState,
    wallet: str,
    signature_type: int,
    now_ms: int,
    dedupe_horizon_ms: int,
) -> Takeover:
    """Take over from earlier runs (module doc). Raises VenueError / MalformedMessage when the venue
    cannot tell us what we need: then the engine does not start (it would trade blind)."""
    done = Takeover()
    records: list[JournalRecord] = []
    for row in outbox.unresolved():
        wire = await execution.lookup(row.order_hash)
        state_now = "acknowledged" if wire is not None else "absent"
        outbox.settle(row.order_id, state_now, f"{REASON}: {wire.status if wire else 'not on the venue'}",
                      now_ms)  # fmt: skip
        if wire is None:
            done.outbox_absent += 1
        else:
            done.outbox_acknowledged += 1
    for order_id, order_hash, size, opp_id, correlation_id, strategy, routing, _ in conn.execute(
        _OPEN_ORDERS
    ).fetchall():
        done.orders_settled += 1
        filled = 0
        resting = False
        if order_hash:
            execution.index.add(order_id, order_hash, size)
            known = {t for (t,) in conn.execute(_FILLED, (order_id,)).fetchall()}
            for report in await execution.status(order_id):
                if isinstance(report, OrderFilled):
                    filled += report.size
                    if report.trade_id not in known:
                        # a fill the crashed run never journaled (one it did is its row already)
                        records.append(RecordFill(report, opp_id, correlation_id, strategy, routing))
                        done.fills_recovered += 1
                elif isinstance(report, OrderAccepted):
                    resting = True
                elif isinstance(report, OrderCancelled):
                    resting = False
        if resting and filled < size:
            await execution.cancel(order_id)
            done.orders_cancelled += 1
        status = "filled" if filled >= size else "cancelled"
        records.append(
            RecordOrderStatus(order_id, status, min(filled, size), now_ms, REASON, order_hash or "")
        )
    journal = PostgresJournal(conn)
    journal.record(records)
    journal.commit()
    closing: list[JournalRecord] = []
    for opp_id, correlation_id, target, order_ids, filled, cost in conn.execute(_OPEN_OPPORTUNITIES):
        kind = _outcome(int(target), int(filled), bool(order_ids))
        closing.append(RecordOutcome(opp_id, correlation_id, kind, (REASON,), tuple(order_ids), int(filled),
                                     int(cost) // int(filled) if filled else 0, now_ms))  # fmt: skip
        done.outcomes_closed += 1
    journal.record(closing)
    journal.commit()
    done.positions_restored = await _restore_positions(conn, client, state, wallet, signature_type, now_ms)
    seen = [(oid, ts) for oid, ts in conn.execute(_SEEN, (now_ms - dedupe_horizon_ms,)).fetchall()]
    state.evaluators.remember(seen)
    done.ids_remembered = len(seen)
    log.info("engine_takeover", **done.as_dict())
    return done


def _outcome(target: int, filled: int, ordered: bool) -> OutcomeKind:
    if filled >= target:
        return OutcomeKind.FILLED
    if filled:
        return OutcomeKind.PARTLY_FILLED
    return OutcomeKind.ORDERED if ordered else OutcomeKind.EXPIRED


async def _restore_positions(
    conn: psycopg.Connection[Any],
    client: ClobHttpClient,
    state: EngineState,
    wallet: str,
    signature_type: int,
    now_ms: int,
) -> int:
    lots = {token: (strategy, ts, paid, bought) for token, strategy, ts, paid, bought in
            conn.execute(_LOTS, (wallet,)).fetchall()}  # fmt: skip
    restored = 0
    for token_id in state.markets.token_ids():
        shares = await conditional_balance(client, token_id, signature_type)
        if not shares:
            continue
        strategy, ts, paid, bought = lots.get(token_id, ("", now_ms, None, None))
        # held shares the journal never saw bought (a deposit, a manual trade) have no cost basis:
        # they are marked at what they are worth and belong to no strategy
        avg = int(paid) // int(bought) if paid is not None and bought else 0
        state.portfolio.restore_position(wallet, token_id, shares, notional(avg, shares), strategy, int(ts))
        restored += 1
    return restored
