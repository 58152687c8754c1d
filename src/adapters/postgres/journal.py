"""The Postgres journal: the engine's typed records (core.messages.JournalRecord) in the SQL schema.

Theory of operation
-------------------
Each record type has one mapping here: the statements that write it (an insert, plus an update of the
row it changes: an outcome completes its opportunity row, an order event moves its order's status, a
kill-switch event sets the switch's current state) and the query that reads it back whole. Records are
buffered by `record` and written by `commit` in one transaction, in the order they came (an opportunity
before its risk decision, an order before its fills: the foreign keys hold), with consecutive rows of one
statement sent together through `executemany`, so journaling costs one round trip per batch of input,
not per row.

Writes are idempotent where a replay can repeat them: an opportunity, an order and a fill are keyed by
their deterministic ids (ON CONFLICT DO NOTHING), so a restarted engine that journals the same batch
again changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from polysnipe.core.events import Side
from polysnipe.core.messages import (
    ConvertPositions,
    JournalRecord,
    Liquidity,
    MergePositions,
    OrderFilled,
    OrderRequest,
    OrderType,
    OutcomeKind,
    PlaceOrder,
    PositionsConverted,
    PositionsMerged,
    PositionsRedeemed,
    RaiseAlert,
    RecordError,
    RecordFill,
    RecordKillSwitch,
    RecordOpportunity,
    RecordOrderStatus,
    RecordOutcome,
    RecordRiskDecision,
    RedeemPositions,
    TradeSettlement,
)
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.ports import Journal

__all__ = ["MAX_ERROR_PAYLOAD_CHARS", "PostgresJournal", "read_records", "set_schema", "statements_for"]

Row = dict[str, Any]
Statement = tuple[LiteralString, Row]

_INSERT_OPPORTUNITY: LiteralString = """
INSERT INTO opportunities (id, correlation_id, strategy, market, token_id, side, size_micro,
    limit_price_micro, fair_value_micro, edge_micro, confidence, created_ms, expires_ms, reason, urgency,
    group_id, policy, arrival_price_micro, recorded_ms)
VALUES (%(id)s, %(correlation_id)s, %(strategy)s, %(market)s, %(token_id)s, %(side)s, %(size)s, %(limit)s,
    %(fair)s, %(edge)s, %(confidence)s, %(created_ms)s, %(expires_ms)s, %(reason)s, %(urgency)s, %(group_id)s,
    %(policy)s, %(arrival)s, %(ts_ms)s)
ON CONFLICT (id) DO NOTHING"""

_UPDATE_OUTCOME: LiteralString = """
UPDATE opportunities SET outcome = %(kind)s, outcome_reasons = %(reasons)s, outcome_order_ids = %(order_ids)s,
    filled_size_micro = %(filled)s, avg_price_micro = %(avg)s, ended_ms = %(ts_ms)s,
    outcome_revision = %(revision)s
WHERE id = %(id)s AND outcome_revision <= %(revision)s"""

_INSERT_RISK: LiteralString = """
INSERT INTO risk_decisions (opportunity_id, correlation_id, approved, requested_size_micro,
    approved_size_micro, reasons, ts_ms)
VALUES (%(opportunity_id)s, %(correlation_id)s, %(approved)s, %(requested)s, %(approved_size)s, %(reasons)s,
    %(ts_ms)s)"""

_INSERT_ORDER: LiteralString = """
INSERT INTO orders (order_id, opportunity_id, correlation_id, strategy, wallet, market, routing, token_id,
    side, price_micro, size_micro, order_type, tick_size_micro, neg_risk, post_only, expiration_ms, parent_id,
    status, created_ms, updated_ms)
VALUES (%(order_id)s, %(opportunity_id)s, %(correlation_id)s, %(strategy)s, %(wallet)s, %(market)s,
    %(routing)s, %(token_id)s, %(side)s, %(price)s, %(size)s, %(order_type)s, %(tick)s, %(neg_risk)s,
    %(post_only)s, %(expiration_ms)s, %(parent_id)s, 'posted', %(ts_ms)s, %(ts_ms)s)
ON CONFLICT (order_id) DO NOTHING"""

_INSERT_ORDER_EVENT: LiteralString = """
INSERT INTO order_events (order_id, status, filled_size_micro, reason, venue_order_id, ts_ms)
VALUES (%(order_id)s, %(status)s, %(filled)s, %(reason)s, %(venue_order_id)s, %(ts_ms)s)"""

_UPDATE_ORDER: LiteralString = """
UPDATE orders SET status = %(status)s, filled_size_micro = %(filled)s, updated_ms = %(ts_ms)s,
    order_hash = COALESCE(NULLIF(%(venue_order_id)s, ''), order_hash)
WHERE order_id = %(order_id)s"""

_INSERT_FILL: LiteralString = """
INSERT INTO fills (trade_id, order_id, correlation_id, token_id, side, price_micro, size_micro, liquidity,
    fee_usdc_micro, fee_shares_micro, rebate_usdc_micro, ts_ms)
VALUES (%(trade_id)s, %(order_id)s, %(correlation_id)s, %(token_id)s, %(side)s, %(price)s, %(size)s,
    %(liquidity)s, %(fee_usdc)s, %(fee_shares)s, %(rebate)s, %(ts_ms)s)
ON CONFLICT (trade_id, order_id) DO NOTHING"""

_INSERT_KILL_EVENT: LiteralString = """
INSERT INTO kill_switch_events (scope, engaged, reason, changed_by, ts_ms)
VALUES (%(scope)s, %(engaged)s, %(reason)s, %(by)s, %(ts_ms)s)"""

_UPSERT_KILL: LiteralString = """
INSERT INTO kill_switches (scope, engaged, reason, changed_by, ts_ms)
VALUES (%(scope)s, %(engaged)s, %(reason)s, %(by)s, %(ts_ms)s)
ON CONFLICT (scope) DO UPDATE SET engaged = EXCLUDED.engaged, reason = EXCLUDED.reason,
    changed_by = EXCLUDED.changed_by, ts_ms = EXCLUDED.ts_ms, changed_at = now()"""

_INSERT_ERROR: LiteralString = """
INSERT INTO errors (source, position, reason, payload, correlation_id, ts_ms)
VALUES (%(source)s, %(position)s, %(reason)s, %(payload)s, %(correlation_id)s, %(ts_ms)s)"""

_INSERT_SETTLEMENT: LiteralString = """
INSERT INTO settlements (kind, wallet, market, size_micro, winning_token, payout_micro, correlation_id, ts_ms)
VALUES (%(kind)s, %(wallet)s, %(market)s, %(size)s, %(winning)s, %(payout)s, %(correlation_id)s, %(ts_ms)s)"""

_INSERT_CONVERSION: LiteralString = """
INSERT INTO conversions (kind, wallet, event_id, markets, size_micro, collateral_micro, yes_markets,
    yes_size_micro, correlation_id, ts_ms)
VALUES (%(kind)s, %(wallet)s, %(event)s, %(markets)s, %(size)s, %(collateral)s, %(yes_markets)s, %(yes_size)s,
    %(correlation_id)s, %(ts_ms)s)"""

_INSERT_TRADE_SETTLEMENT: LiteralString = """
INSERT INTO trade_settlements (trade_id, order_id, status, ts_ms)
VALUES (%(trade_id)s, %(order_id)s, %(status)s, %(ts_ms)s)"""

# the fill carries its trade's latest status; a FAILED one stays failed whatever comes after it
_UPDATE_FILL_SETTLEMENT: LiteralString = """
UPDATE fills SET settlement_status = %(status)s
WHERE trade_id = %(trade_id)s AND order_id = %(order_id)s AND settlement_status <> 'FAILED'"""

_INSERT_ALERT: LiteralString = """
INSERT INTO alerts (severity, code, message, correlation_id, ts_ms, details)
VALUES (%(severity)s, %(code)s, %(message)s, %(correlation_id)s, %(ts_ms)s, %(details)s)"""


def _opportunity(r: RecordOpportunity) -> list[Statement]:
    o = r.opp
    return [(_INSERT_OPPORTUNITY, {
        "id": o.id, "correlation_id": o.correlation_id, "strategy": o.strategy, "market": o.market,
        "token_id": o.token_id, "side": o.side.name, "size": o.size, "limit": o.limit_price,
        "fair": o.fair_value, "edge": o.edge, "confidence": o.confidence, "created_ms": o.created_ms,
        "expires_ms": o.expires_ms, "reason": o.reason, "urgency": o.urgency, "group_id": o.group_id,
        "policy": r.policy, "arrival": r.arrival_price, "ts_ms": r.ts_ms,
    })]  # fmt: skip


def _outcome(r: RecordOutcome) -> list[Statement]:
    return [(_UPDATE_OUTCOME, {
        "id": r.opportunity_id, "kind": r.kind.value, "reasons": list(r.reasons),
        "order_ids": list(r.order_ids), "filled": r.filled_size, "avg": r.avg_price, "ts_ms": r.ts_ms,
        "revision": r.revision,
    })]  # fmt: skip


def _risk(r: RecordRiskDecision) -> list[Statement]:
    return [(_INSERT_RISK, {
        "opportunity_id": r.opportunity_id, "correlation_id": r.correlation_id, "approved": r.approved,
        "requested": r.requested_size, "approved_size": r.approved_size, "reasons": list(r.reasons),
        "ts_ms": r.ts_ms,
    })]  # fmt: skip


def _order(r: PlaceOrder) -> list[Statement]:
    o = r.order
    return [(_INSERT_ORDER, {
        "order_id": o.order_id, "opportunity_id": o.opportunity_id, "correlation_id": o.correlation_id,
        "strategy": o.strategy, "wallet": o.wallet, "market": o.market, "routing": o.routing,
        "token_id": o.token_id, "side": o.side.name, "price": o.price, "size": o.size,
        "order_type": o.order_type.value, "tick": o.tick_size, "neg_risk": o.neg_risk,
        "post_only": o.post_only, "expiration_ms": o.expiration_ms, "parent_id": o.parent_id,
        "ts_ms": r.ts_ms,
    })]  # fmt: skip


def _order_status(r: RecordOrderStatus) -> list[Statement]:
    row = {"order_id": r.order_id, "status": r.status, "filled": r.filled_size, "reason": r.reason,
           "venue_order_id": r.venue_order_id, "ts_ms": r.ts_ms}  # fmt: skip
    return [(_INSERT_ORDER_EVENT, row), (_UPDATE_ORDER, row)]


def _fill(r: RecordFill) -> list[Statement]:
    f = r.fill
    return [(_INSERT_FILL, {
        "trade_id": f.trade_id, "order_id": f.order_id, "correlation_id": r.correlation_id,
        "token_id": f.token_id, "side": f.side.name, "price": f.price, "size": f.size,
        "liquidity": f.liquidity.value, "fee_usdc": f.fee_usdc, "fee_shares": f.fee_shares,
        "rebate": f.rebate_usdc, "ts_ms": f.ts_ms,
    })]  # fmt: skip


def _kill_switch(r: RecordKillSwitch) -> list[Statement]:
    row = {"scope": r.scope, "engaged": r.engaged, "reason": r.reason, "by": r.by, "ts_ms": r.ts_ms}
    return [(_INSERT_KILL_EVENT, row), (_UPSERT_KILL, row)]


#: the longest payload an errors row stores: hostile input can be hundreds of MB (a bus entry may
#: be 512 MB), and a row past Postgres' 1 GB field limit would fail the whole commit
MAX_ERROR_PAYLOAD_CHARS: Final = 1_000_000


def _stored_payload(payload: str) -> str:
    """`payload`, or its head with what was left out (its length and SHA-256, to match the whole
    input kept elsewhere: the dead letters, the source file)."""
    if len(payload) <= MAX_ERROR_PAYLOAD_CHARS:
        return payload
    digest = hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()
    left = len(payload) - MAX_ERROR_PAYLOAD_CHARS
    return (
        f"{payload[:MAX_ERROR_PAYLOAD_CHARS]}... [{left} more characters not stored; sha256 of all {digest}]"
    )


def _error(r: RecordError) -> list[Statement]:
    return [(_INSERT_ERROR, {
        "source": r.source, "position": r.position, "reason": r.reason, "payload": _stored_payload(r.payload),
        "correlation_id": r.correlation_id, "ts_ms": r.ts_ms,
    })]  # fmt: skip


def _settlement(
    kind: str, r: MergePositions | RedeemPositions | PositionsMerged | PositionsRedeemed
) -> list[Statement]:
    row = {"kind": kind, "wallet": r.wallet, "market": r.market, "size": 0, "winning": "", "payout": 0,
           "correlation_id": getattr(r, "correlation_id", ""), "ts_ms": r.ts_ms}  # fmt: skip
    if isinstance(r, MergePositions | PositionsMerged):
        row["size"] = r.size
    if isinstance(r, PositionsRedeemed):
        row.update(size=r.shares, winning=r.winning_token, payout=r.payout)
    return [(_INSERT_SETTLEMENT, row)]


def _conversion(r: ConvertPositions | PositionsConverted) -> list[Statement]:
    row = {"kind": "convert_requested", "wallet": r.wallet, "event": r.event, "markets": list(r.markets),
           "size": r.size, "collateral": 0, "yes_markets": [], "yes_size": 0,
           "correlation_id": r.correlation_id, "ts_ms": r.ts_ms}  # fmt: skip
    if isinstance(r, PositionsConverted):
        row.update(
            kind="converted", collateral=r.collateral, yes_markets=list(r.yes_markets), yes_size=r.yes_size
        )
    return [(_INSERT_CONVERSION, row)]


def _alert(r: RaiseAlert) -> list[Statement]:
    return [(_INSERT_ALERT, {
        "severity": r.severity, "code": r.code, "message": r.message, "correlation_id": r.correlation_id,
        "ts_ms": r.ts_ms, "details": Jsonb(dict(r.details)),
    })]  # fmt: skip


def _trade_settlement(r: TradeSettlement) -> list[Statement]:
    row = {"trade_id": r.trade_id, "order_id": r.order_id, "status": r.status, "ts_ms": r.ts_ms}
    return [(_INSERT_TRADE_SETTLEMENT, row), (_UPDATE_FILL_SETTLEMENT, row)]


_STATEMENTS: dict[type, Callable[[Any], list[Statement]]] = {
    RecordOpportunity: _opportunity,
    RecordOutcome: _outcome,
    RecordRiskDecision: _risk,
    PlaceOrder: _order,
    RecordOrderStatus: _order_status,
    RecordFill: _fill,
    RecordKillSwitch: _kill_switch,
    RecordError: _error,
    MergePositions: lambda r: _settlement("merge_requested", r),
    RedeemPositions: lambda r: _settlement("redeem_requested", r),
    PositionsMerged: lambda r: _settlement("merged", r),
    PositionsRedeemed: lambda r: _settlement("redeemed", r),
    ConvertPositions: _conversion,
    PositionsConverted: _conversion,
    RaiseAlert: _alert,
    TradeSettlement: _trade_settlement,
}


def statements_for(record: JournalRecord) -> list[Statement]:
    """The SQL (with its parameters) that journals `record`; KeyError for a type the journal lacks."""
    return _STATEMENTS[type(record)](record)


class PostgresJournal:
    """core.ports.Journal on one psycopg connection whose search_path selects the journal's schema.

    `also` receives every record too, as it is recorded (the in-memory view a run's report is built
    from)."""

    __slots__ = ("_also", "_conn", "_pending")

    def __init__(self, conn: psycopg.Connection[Any], also: Journal | None = None) -> None:
        self._conn = conn
        self._also = also
        self._pending: list[Statement] = []

    def record(self, records: Sequence[JournalRecord]) -> None:
        for r in records:
            self._pending.extend(statements_for(r))
        if self._also is not None:
            self._also.record(records)

    def commit(self) -> None:
        """Write everything recorded since the last commit in one transaction."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        try:
            self._write(pending)
        except psycopg.DataError:
            # Postgres text cannot hold NUL, and hostile input carries it into a dead letter's
            # payload or a reason: such text is written with NUL escaped rather than lose the batch
            # or stop the engine. Checked only after a refusal, so the order path pays nothing.
            storable = [(query, _nul_escaped(row)) for query, row in pending]
            if storable == pending:
                raise
            self._write(storable)

    def _write(self, pending: list[Statement]) -> None:
        with self._conn.transaction(), self._conn.cursor() as cur:
            for query, rows in _runs(pending):
                cur.executemany(query, rows)


def _nul_escaped(row: Row) -> Row:
    """`row` with every NUL in its text (and in lists of text) written as the JSON escape \\u0000."""

    def escaped(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("\x00", "\\u0000")
        if isinstance(value, list):
            return [escaped(v) for v in value]
        return value

    return {key: escaped(value) for key, value in row.items()}


def _runs(statements: list[Statement]) -> Iterator[tuple[LiteralString, list[Row]]]:
    """Consecutive statements with the same SQL, grouped (order preserved)."""
    query: LiteralString | None = None
    rows: list[Row] = []
    for q, row in statements:
        if q is not query and rows:
            assert query is not None
            yield query, rows
            rows = []
        query = q
        rows.append(row)
    if rows and query is not None:
        yield query, rows


# -- reading back ------------------------------------------------------------------------------------
def read_records(conn: psycopg.Connection[Any]) -> list[JournalRecord]:
    """Every record the journal holds, rebuilt from its rows, grouped by type in journal order.

    Used by tests and by operators' tools; an opportunity's outcome, an order's events and a kill
    switch's events each come back as the records that wrote them.
    """
    out: list[JournalRecord] = []
    with conn.cursor(row_factory=dict_row) as cur:
        opportunities = cur.execute("SELECT * FROM opportunities ORDER BY recorded_ms, id").fetchall()
        out += [_read_opportunity(r) for r in opportunities]
        out += [_read_outcome(r) for r in opportunities if r["outcome"] is not None]
        out += [_read_risk(r) for r in cur.execute("SELECT * FROM risk_decisions ORDER BY id")]
        out += [_read_order(r) for r in cur.execute("SELECT * FROM orders ORDER BY created_ms, order_id")]
        out += [_read_order_status(r) for r in cur.execute("SELECT * FROM order_events ORDER BY id")]
        fills = cur.execute(
            "SELECT f.*, o.opportunity_id, o.strategy, o.routing FROM fills f JOIN orders o USING (order_id)"
            " ORDER BY f.ts_ms, f.trade_id, f.order_id"
        )
        out += [_read_fill(r) for r in fills]
        out += [_read_kill(r) for r in cur.execute("SELECT * FROM kill_switch_events ORDER BY id")]
        out += [_read_error(r) for r in cur.execute("SELECT * FROM errors ORDER BY id")]
        out += [_read_alert(r) for r in cur.execute("SELECT * FROM alerts ORDER BY id")]
        out += [_read_settlement(r) for r in cur.execute("SELECT * FROM settlements ORDER BY id")]
        out += [_read_conversion(r) for r in cur.execute("SELECT * FROM conversions ORDER BY id")]
        out += [
            TradeSettlement(r["ts_ms"], r["trade_id"], r["order_id"], r["status"])
            for r in cur.execute("SELECT * FROM trade_settlements ORDER BY id")
        ]
    return out


def _read_opportunity(r: Row) -> RecordOpportunity:
    opp = Opportunity(
        id=r["id"], strategy=r["strategy"], market=r["market"], token_id=r["token_id"],
        side=Side[r["side"]], size=r["size_micro"], limit_price=r["limit_price_micro"],
        fair_value=r["fair_value_micro"], edge=r["edge_micro"], confidence=r["confidence"],
        created_ms=r["created_ms"], expires_ms=r["expires_ms"], reason=r["reason"],
        correlation_id=r["correlation_id"], urgency=r["urgency"], group_id=r["group_id"],
    )  # fmt: skip
    return RecordOpportunity(opp, r["policy"], r["arrival_price_micro"], r["recorded_ms"])


def _read_outcome(r: Row) -> RecordOutcome:
    return RecordOutcome(
        r["id"], r["correlation_id"], OutcomeKind(r["outcome"]), tuple(r["outcome_reasons"]),
        tuple(r["outcome_order_ids"]), r["filled_size_micro"], r["avg_price_micro"], r["ended_ms"],
        r["outcome_revision"],
    )  # fmt: skip


def _read_risk(r: Row) -> RecordRiskDecision:
    return RecordRiskDecision(
        r["opportunity_id"], r["correlation_id"], r["approved"], r["requested_size_micro"],
        r["approved_size_micro"], tuple(r["reasons"]), r["ts_ms"],
    )  # fmt: skip


def _read_order(r: Row) -> PlaceOrder:
    order = OrderRequest(
        order_id=r["order_id"], opportunity_id=r["opportunity_id"], correlation_id=r["correlation_id"],
        strategy=r["strategy"], routing=r["routing"], wallet=r["wallet"], market=r["market"],
        token_id=r["token_id"], side=Side[r["side"]], price=r["price_micro"], size=r["size_micro"],
        order_type=OrderType(r["order_type"]), tick_size=r["tick_size_micro"], neg_risk=r["neg_risk"],
        post_only=r["post_only"], expiration_ms=r["expiration_ms"], parent_id=r["parent_id"],
    )  # fmt: skip
    return PlaceOrder(order, r["created_ms"])


def _read_order_status(r: Row) -> RecordOrderStatus:
    return RecordOrderStatus(
        r["order_id"], r["status"], r["filled_size_micro"], r["ts_ms"], r["reason"], r["venue_order_id"]
    )


def _read_fill(r: Row) -> RecordFill:
    fill = OrderFilled(
        r["order_id"], r["trade_id"], r["ts_ms"], r["token_id"], Side[r["side"]], r["price_micro"],
        r["size_micro"], Liquidity(r["liquidity"]), r["fee_usdc_micro"], r["fee_shares_micro"],
        r["rebate_usdc_micro"],
    )  # fmt: skip
    return RecordFill(fill, r["opportunity_id"], r["correlation_id"], r["strategy"], r["routing"])


def _read_kill(r: Row) -> RecordKillSwitch:
    return RecordKillSwitch(r["scope"], r["engaged"], r["reason"], r["changed_by"], r["ts_ms"])


def _read_error(r: Row) -> RecordError:
    return RecordError(r["source"], r["position"], r["reason"], r["payload"], r["ts_ms"], r["correlation_id"])


def _read_alert(r: Row) -> RaiseAlert:
    return RaiseAlert(r["severity"], r["code"], r["message"], r["ts_ms"], r["correlation_id"], r["details"])


def _read_settlement(r: Row) -> MergePositions | RedeemPositions | PositionsMerged | PositionsRedeemed:
    kind = r["kind"]
    if kind == "merge_requested":
        return MergePositions(r["wallet"], r["market"], r["size_micro"], r["ts_ms"], r["correlation_id"])
    if kind == "redeem_requested":
        return RedeemPositions(r["wallet"], r["market"], r["ts_ms"], r["correlation_id"])
    if kind == "merged":
        return PositionsMerged(r["wallet"], r["market"], r["size_micro"], r["ts_ms"])
    return PositionsRedeemed(
        r["wallet"], r["market"], r["winning_token"], r["size_micro"], r["payout_micro"], r["ts_ms"]
    )


def _read_conversion(r: Row) -> ConvertPositions | PositionsConverted:
    if r["kind"] == "convert_requested":
        return ConvertPositions(
            r["wallet"], r["event_id"], tuple(r["markets"]), r["size_micro"], r["ts_ms"], r["correlation_id"]
        )
    return PositionsConverted(
        r["wallet"], r["event_id"], tuple(r["markets"]), r["size_micro"], r["collateral_micro"],
        tuple(r["yes_markets"]), r["yes_size_micro"], r["ts_ms"], r["correlation_id"],
    )  # fmt: skip


def set_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Point the connection at the journal's schema (one deployment or test run per schema)."""
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
