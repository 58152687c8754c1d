"""The journal schema applies to a real Postgres, once, in its own schema per test run."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from polysnipe.adapters.postgres.migrations import MigrationDrift, apply_migrations

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def test_migrations_apply_once_and_create_the_journal(
    db: tuple[psycopg.Connection, str], tmp_path: Path
) -> None:
    conn, schema = db
    assert sorted(p.name for p in MIGRATIONS.glob("*.sql")) == apply_migrations(
        conn, MIGRATIONS, schema=schema
    )
    assert [] == apply_migrations(conn, MIGRATIONS, schema=schema)
    tables = {r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))}  # fmt: skip
    assert {"opportunities", "risk_decisions", "orders", "order_events", "fills", "errors", "alerts",
            "kill_switches", "kill_switch_events", "wallets", "relayer_transactions",
            "signing_audit"} <= tables  # fmt: skip
    # money is integer micro-units: a fractional amount cannot be stored
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        conn.execute("SELECT '1.5'::bigint")
    edited = tmp_path / "m"
    edited.mkdir()
    for path in MIGRATIONS.glob("*.sql"):
        (edited / path.name).write_text(path.read_text())
    (edited / "0001_journal.sql").write_text((MIGRATIONS / "0001_journal.sql").read_text() + "\n-- edited\n")
    with pytest.raises(MigrationDrift):
        apply_migrations(conn, edited, schema=schema)
