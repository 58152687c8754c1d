"""The journal schema applies to a real Postgres, once, in its own schema per test run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from polysnipe.adapters.postgres.migrations import MigrationDrift, apply_migrations

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
DSN = os.environ.get("POLYSNIPE_TEST_DATABASE_URL", "postgresql://127.0.0.1:5432/test")


@pytest.fixture
def db() -> Iterator[tuple[psycopg.Connection, str]]:
    """A connection and a schema of its own for this test run (dropped afterwards)."""
    schema = f"t_{os.environ.get('POLYSNIPE_TEST_RUN_ID', 'local')}_{os.getpid()}".lower()
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        try:
            yield c, schema
        finally:
            c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_migrations_apply_once_and_create_the_journal(
    db: tuple[psycopg.Connection, str], tmp_path: Path
) -> None:
    conn, schema = db
    assert ["0001_journal.sql"] == apply_migrations(conn, MIGRATIONS, schema=schema)
    assert [] == apply_migrations(conn, MIGRATIONS, schema=schema)
    tables = {r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))}  # fmt: skip
    assert {"opportunities", "risk_decisions", "orders", "fills", "errors", "alerts", "kill_switches",
            "wallets", "relayer_transactions", "signing_audit"} <= tables  # fmt: skip
    # money is integer micro-units: a fractional amount cannot be stored
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        conn.execute("SELECT '1.5'::bigint")
    edited = tmp_path / "m"
    edited.mkdir()
    (edited / "0001_journal.sql").write_text((MIGRATIONS / "0001_journal.sql").read_text() + "\n-- edited\n")
    with pytest.raises(MigrationDrift):
        apply_migrations(conn, edited, schema=schema)
