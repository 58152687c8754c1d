"""Operators and the journal: `kill`, `resume` and `status` on real Postgres, a kill switch reaching a
running engine before its next decision, and migrations applied by two processes at once."""

from __future__ import annotations

import asyncio
import threading

import psycopg
import pytest

from conftest import DSN
from kit import T0, ScriptedVenue, engine, opportunity, snapshot, trade, until
from polysnipe.adapters.clock import EventClock
from polysnipe.adapters.inbox import Inbox
from polysnipe.adapters.postgres.controls import KillSwitchWatch
from polysnipe.adapters.postgres.database import BUNDLED_MIGRATIONS, DatabaseConfig, JournalDatabase
from polysnipe.adapters.postgres.journal import PostgresJournal
from polysnipe.adapters.postgres.migrations import apply_migrations
from polysnipe.adapters.settlement import NoSettlement
from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.core.messages import OutcomeKind, RecordOutcome
from polysnipe.runners.cli import main
from polysnipe.runners.loop import EngineLoop, NullSink


def test_kill_resume_and_status_from_the_command_line(
    journal_env: str, db: tuple[psycopg.Connection, str], capsys: pytest.CaptureFixture[str]
) -> None:
    conn, schema = db
    # typed in capitals, kept as the engine matches it: a condition id in lowercase
    typed = "market:0x" + "C1" * 32
    scope = typed.lower()
    assert 0 == main(["kill", "--scope", typed, "--reason", "bad feed", "--by", "alice"])
    assert f"kill switch {scope} engaged by alice: bad feed" in capsys.readouterr().out
    assert 0 == main(["status"])
    shown = capsys.readouterr().out
    assert scope in shown and "alice" in shown and f"schema {schema}" in shown
    assert 0 == main(["resume", "--scope", scope, "--reason", "feed repaired", "--by", "bob"])
    events = conn.execute(
        f"SELECT scope, engaged, changed_by, reason FROM {schema}.kill_switch_events ORDER BY id"
    ).fetchall()
    assert [
        (scope, True, "alice", "bad feed"),
        (scope, False, "bob", "feed repaired"),
    ] == events
    assert 0 == main(["status"])
    assert "kill switches engaged: none" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["kill", "--scope", "markt:0xc1", "--reason", "x"], "--scope: 'markt:0xc1' is not a scope"),
        # scopes that could never cover anything: they were journaled and "engaged"
        (["kill", "--scope", "market:0x12", "--reason", "x"], "a condition id is 0x and 64 hex digits"),
        (["kill", "--scope", "wallet:nothex", "--reason", "x"], "a wallet address is 0x and 40 hex digits"),
        (["kill", "--scope", "strategy:momentun", "--reason", "x"], "no strategy is named 'momentun'"),
        (["kill", "--scope", "global", "--reason", "two\nlines"], "--reason: one line"),
        (["kill", "--scope", "global", "--reason", "   "], "--reason: say why"),
        (["resume", "--scope", "global", "--reason", "x" * 501], "--reason: at most 500 characters"),
    ],
)
def test_an_operators_mistake_is_one_line_and_exit_2(
    journal_env: str, args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 2 == main(args)
    err = capsys.readouterr().err
    assert says in err and 1 == len(err.strip().splitlines())


def test_status_on_an_unmigrated_schema_says_to_migrate(
    db: tuple[psycopg.Connection, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, schema = db
    monkeypatch.setenv("POLYSNIPE_DATABASE_SCHEMA", schema)
    monkeypatch.setenv("POLYSNIPE_DATABASE_URL", DSN)
    assert 2 == main(["status"])
    assert f"polysnipe migrate --schema {schema}" in capsys.readouterr().err


def test_a_kill_switch_from_the_command_line_stops_a_running_engines_next_decision(journal_env: str) -> None:
    database = JournalDatabase(DatabaseConfig(url=DSN, schema=journal_env))
    database.open()
    try:
        view = MemoryJournal()
        venue = ScriptedVenue(view)
        inbox = Inbox()
        script = {T0 + 1: [opportunity("a")], T0 + 3: [opportunity("b", created_ms=T0 + 3)]}
        journal = PostgresJournal(database.connection(), also=view)
        source = inbox
        loop = EngineLoop(engine(script), source=source, execution=venue, sink=NullSink(),
                          settlement=NoSettlement(), journal=journal,
                          clock=EventClock(), max_wait_s=0.02,
                          controls=KillSwitchWatch(database.connection()).poll)  # fmt: skip

        async def scenario() -> None:
            task = asyncio.create_task(loop.run())
            inbox.push([snapshot(T0), trade(T0 + 1)])
            await until(lambda: len(venue.submitted) == 1, timeout_s=30)
            assert 0 == main(["kill", "--scope", "global", "--reason", "stop now", "--by", "carol"])
            inbox.push([trade(T0 + 3)])
            inbox.close()
            await task

        asyncio.run(scenario())
    finally:
        database.close()
    assert ["a"] == [o.opportunity_id for o in venue.submitted]
    outcomes = {r.opportunity_id: r for r in view.of(RecordOutcome)}
    assert (OutcomeKind.REJECTED, ("kill_switch:global",)) == (outcomes["b"].kind, outcomes["b"].reasons)
    # journaled once, by who engaged it (the engine does not journal it again)
    with psycopg.connect(DSN) as conn:
        rows = conn.execute(f"SELECT changed_by FROM {journal_env}.kill_switch_events").fetchall()
    assert [("carol",)] == rows


def test_migrations_applied_by_two_processes_at_once_apply_once(db: tuple[psycopg.Connection, str]) -> None:
    _, schema = db
    applied: list[list[str]] = []
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            with psycopg.connect(DSN, autocommit=True) as conn:
                applied.append(apply_migrations(conn, BUNDLED_MIGRATIONS, schema=schema))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [] == errors
    names = sorted(p.name for p in BUNDLED_MIGRATIONS.glob("*.sql"))
    assert [[], names] == sorted(applied)
