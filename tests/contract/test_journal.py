"""Every journal record type round-trips through the SQL schema on a real Postgres."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import cast

import attrs
import psycopg
import pytest

from polysnipe.adapters.postgres.journal import (
    MAX_ERROR_PAYLOAD_CHARS,
    PostgresJournal,
    read_records,
    statements_for,
)
from polysnipe.adapters.sim.journal import MemoryJournal
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
from polysnipe.core.units import MICRO

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
T0 = 1_767_225_600_000


def _records() -> list[JournalRecord]:
    opp = Opportunity(
        id="opp1", strategy="spread_hunter", market="0xcond", token_id="123", side=Side.BUY,
        size=20 * MICRO, limit_price=480_000, fair_value=510_000, edge=30_000, confidence=0.8125,
        created_ms=T0, expires_ms=T0 + 2_000, reason="ask 0.48 below fair 0.51 (it's cheap)",
        correlation_id="c-opp1", urgency="aggressive", group_id="g-1",
    )  # fmt: skip
    order = OrderRequest(
        order_id="opp1-0", opportunity_id="opp1", correlation_id="c-opp1", strategy="spread_hunter",
        routing="aggressive", wallet="0x5afe", market="0xcond", token_id="123", side=Side.BUY,
        price=480_000, size=20 * MICRO, order_type=OrderType.GTD, tick_size=10_000, neg_risk=True,
        post_only=True, expiration_ms=T0 + 30_000, parent_id="opp1",
    )  # fmt: skip
    fill = OrderFilled(
        "opp1-0", "trade-1", T0 + 5, "123", Side.BUY, 480_000, 5 * MICRO, Liquidity.TAKER, 0, 91_000
    )
    return [
        RecordOpportunity(opp, "aggressive", 480_000, T0),
        RecordRiskDecision("opp1", "c-opp1", True, 20 * MICRO, 15 * MICRO, ("order_notional",), T0),
        PlaceOrder(order, T0),
        RecordOrderStatus("opp1-0", "live", 0, T0 + 3, "", "0x" + "ab" * 32),
        RecordOrderStatus("opp1-0", "partly_filled", 5 * MICRO, T0 + 5),
        RecordFill(fill, "opp1", "c-opp1", "spread_hunter", "aggressive"),
        RecordOutcome("opp1", "c-opp1", OutcomeKind.PARTLY_FILLED, ("venue:fak_not_filled",), ("opp1-0",),
                      5 * MICRO, 480_000, T0 + 9),
        RecordKillSwitch("market:0xcond", True, "operator saw a bad feed", "alice", T0 + 10),
        RecordKillSwitch("market:0xcond", False, "feed repaired", "bob", T0 + 20),
        RecordError("events.jsonl", "17", "not JSON", '{"event_type": "bo', T0),
        MergePositions("0x5afe", "0xcond", 4 * MICRO, T0 + 30, "c-opp1"),
        PositionsMerged("0x5afe", "0xcond", 4 * MICRO, T0 + 31),
        TradeSettlement(T0 + 6, "trade-1", "opp1-0", "MINED"),
        TradeSettlement(T0 + 7, "trade-1", "opp1-0", "CONFIRMED"),
        RedeemPositions("0x5afe", "0xcond", T0 + 40),
        PositionsRedeemed("0x5afe", "0xcond", "123", 1 * MICRO, 1 * MICRO, T0 + 41),
        ConvertPositions("0x5afe", "0xevent", ("0xa", "0xb"), 3 * MICRO, T0 + 50, "convert:0x5afe:0xevent"),
        PositionsConverted("0x5afe", "0xevent", ("0xa", "0xb"), 3 * MICRO, 2_970_000, ("0xc", "0xd"),
                           2_970_000, T0 + 51, "convert:0x5afe:0xevent"),
        RaiseAlert("critical", "kill_switch_engaged", "market:0xcond: operator", T0 + 10, "c-opp1",
                   {"module": "spread_hunter", "n": 3}),
    ]  # fmt: skip


def test_every_record_type_round_trips_through_postgres(journal_conn: psycopg.Connection) -> None:
    records = _records()
    journal = PostgresJournal(journal_conn)
    journal.record(records)
    assert [] == read_records(journal_conn)  # nothing is written before commit
    journal.commit()
    back = read_records(journal_conn)
    assert len(records) == len(back)
    assert [] == [r for r in records if r not in back]
    # the kinds a record type implies: every type of JournalRecord is covered here
    assert set(JournalRecord.__args__) == {type(r) for r in records}
    order = journal_conn.execute("SELECT status, filled_size_micro, order_hash FROM orders").fetchone()
    assert ("partly_filled", 5 * MICRO, "0x" + "ab" * 32) == order
    switch = journal_conn.execute("SELECT engaged, changed_by FROM kill_switches").fetchone()
    assert (False, "bob") == switch
    # the fill carries its trade's latest settlement status
    assert ("CONFIRMED",) == journal_conn.execute("SELECT settlement_status FROM fills").fetchone()


def test_a_failed_trade_stays_failed(journal_conn: psycopg.Connection) -> None:
    journal = PostgresJournal(journal_conn)
    journal.record([r for r in _records() if isinstance(r, RecordOpportunity | PlaceOrder | RecordFill)])
    for status in ("MATCHED", "FAILED", "CONFIRMED"):
        journal.record([TradeSettlement(T0 + 9, "trade-1", "opp1-0", status)])
    journal.commit()
    assert ("FAILED",) == journal_conn.execute("SELECT settlement_status FROM fills").fetchone()
    assert (3,) == journal_conn.execute("SELECT count(*) FROM trade_settlements").fetchone()


def test_replaying_a_batch_changes_nothing(journal_conn: psycopg.Connection) -> None:
    idempotent = [r for r in _records() if isinstance(r, RecordOpportunity | PlaceOrder | RecordFill)]
    journal = PostgresJournal(journal_conn)
    for _ in range(2):
        journal.record(idempotent)
        journal.commit()
    for table in ("opportunities", "orders", "fills"):
        assert (1,) == journal_conn.execute(f"SELECT count(*) FROM {table}").fetchone()


@pytest.mark.parametrize(
    ("record", "violation"),
    [
        # an order for an opportunity never journaled breaks the foreign key
        (PlaceOrder(cast(PlaceOrder, _records()[2]).order, T0), psycopg.errors.ForeignKeyViolation),
        # an error row needs nothing else first
        (RecordError("x", "1", "r", "p", T0), None),
    ],
)
def test_constraints_refuse_what_cannot_be(
    journal_conn: psycopg.Connection, record: JournalRecord, violation: type[Exception] | None
) -> None:
    journal = PostgresJournal(journal_conn)
    journal.record([record])
    if violation is None:
        journal.commit()
        return
    with pytest.raises(violation):
        journal.commit()
    # the failed batch left nothing behind
    assert [] == read_records(journal_conn)


def test_fill_beyond_the_order_size_is_refused(journal_conn: psycopg.Connection) -> None:
    journal = PostgresJournal(journal_conn)
    opp_record, _, place = _records()[:3]
    journal.record([opp_record, place])
    journal.commit()
    journal.record([RecordOrderStatus("opp1-0", "filled", 21 * MICRO, T0)])
    with pytest.raises(psycopg.errors.CheckViolation):
        journal.commit()


def test_a_revised_outcome_replaces_the_first_and_an_older_one_never_wins(
    journal_conn: psycopg.Connection,
) -> None:
    journal = PostgresJournal(journal_conn)
    opp_record, *_ = _records()
    first = RecordOutcome("opp1", "c-opp1", OutcomeKind.ORDERED, ("cancelled",), ("opp1-0",), 0, 0, T0 + 9)
    revised = attrs.evolve(
        first, kind=OutcomeKind.PARTLY_FILLED, filled_size=6 * MICRO, avg_price=480_000, revision=1
    )
    journal.record([opp_record, first, revised, first])  # a replayed older revision comes last
    journal.commit()
    [back] = [r for r in read_records(journal_conn) if isinstance(r, RecordOutcome)]
    assert revised == back


def test_a_maker_fill_keeps_its_rebate(journal_conn: psycopg.Connection) -> None:
    journal = PostgresJournal(journal_conn)
    opp_record, _, place, *_ = _records()
    fill = OrderFilled("opp1-0", "trade-9", T0 + 5, "123", Side.BUY, 480_000, 5 * MICRO, Liquidity.MAKER,
                       rebate_usdc=12_175)  # fmt: skip
    journal.record([opp_record, place, RecordFill(fill, "opp1", "c-opp1", "spread_hunter", "passive")])
    journal.commit()
    [back] = [r for r in read_records(journal_conn) if isinstance(r, RecordFill)]
    assert 12_175 == back.fill.rebate_usdc


def test_text_carrying_nul_is_journaled_escaped_and_the_batch_is_kept(
    journal_conn: psycopg.Connection,
) -> None:
    """Postgres text cannot hold NUL; a hostile frame carries it into a dead letter's payload and
    reason. The batch is written (NUL as the escape \\u0000) instead of failing the commit."""
    journal = PostgresJournal(journal_conn)
    bad = RecordError("market_ws", "17-0", "invalid message: \x00", '{"asset_id": "\x00"}', 1_000)
    good = RecordError("market_ws", "18-0", "not JSON", "plain", 1_001)
    journal.record([bad, good])
    journal.commit()
    rows = journal_conn.execute("SELECT position, reason, payload FROM errors ORDER BY id").fetchall()
    assert [
        ("17-0", "invalid message: \\u0000", '{"asset_id": "\\u0000"}'),
        ("18-0", "not JSON", "plain"),
    ] == rows
    journal.record([good])  # the journal goes on
    journal.commit()
    assert 3 == len(journal_conn.execute("SELECT id FROM errors").fetchall())


def test_a_huge_payload_is_stored_as_its_head_with_the_length_and_hash_of_the_rest(
    journal_conn: psycopg.Connection,
) -> None:
    """A bus entry of 180 MB of NUL escaped past Postgres' 1 GB field limit: the commit failed and
    the engine stopped, the entry redelivered on every start."""
    journal = PostgresJournal(journal_conn)
    payload = "\x00" * (MAX_ERROR_PAYLOAD_CHARS + 10)
    journal.record([RecordError("{md.0}", "5-0", "invalid message", payload, 1_000)])
    journal.commit()
    [(stored,)] = journal_conn.execute("SELECT payload FROM errors").fetchall()
    digest = hashlib.sha256(payload.encode()).hexdigest()
    assert stored.startswith("\\u0000" * 100)
    assert stored.endswith(f"... [10 more characters not stored; sha256 of all {digest}]")
    assert 6 * MAX_ERROR_PAYLOAD_CHARS + 200 > len(stored)


def test_memory_journal_keeps_the_records_in_order() -> None:
    journal = MemoryJournal()
    records = _records()
    journal.record(records[:4])
    journal.record(records[4:])
    journal.commit()
    assert records == journal.records
    assert [r for r in records if isinstance(r, RecordOrderStatus)] == journal.of(RecordOrderStatus)
    assert all(statements_for(r) for r in records)
