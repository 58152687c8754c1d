"""Apply the SQL files in migrations/ in name order, each once, each in its own transaction.

Applied files are recorded in `schema_migrations` with a checksum, so a file edited after it ran is
refused instead of silently diverging from what the database holds. Two processes migrating one schema
at once (two engines starting, an operator's `polysnipe migrate` beside them) are serialized by a
session advisory lock per schema: the second waits, then finds nothing pending.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
from psycopg import sql

__all__ = ["MigrationDrift", "apply_migrations", "pending_migrations"]

#: the advisory lock space of migrations (pg_advisory_lock(int, int): this, then the schema's hash)
_LOCK_SPACE = 0x5053_4D47  # "PSMG"


class MigrationDrift(RuntimeError):
    """A migration file changed after it was applied."""


def _files(directory: Path) -> list[tuple[str, str, str]]:
    """(name, text, sha256) of each migration, in the order they apply."""
    out = []
    for path in sorted(directory.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        out.append((path.name, text, hashlib.sha256(text.encode()).hexdigest()))
    return out


def _applied(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute("SELECT name, sha256 FROM schema_migrations").fetchall()
    return {name: digest for name, digest in rows}


def _pending(files: list[tuple[str, str, str]], done: dict[str, str]) -> list[tuple[str, str, str]]:
    out = []
    for name, text, digest in files:
        if name in done:
            if done[name] != digest:
                raise MigrationDrift(f"{name} changed after it was applied")
            continue
        out.append((name, text, digest))
    return out


def apply_migrations(conn: psycopg.Connection, directory: Path, *, schema: str = "public") -> list[str]:
    """Apply pending migrations into `schema` (created if missing); returns the names applied now.
    `conn` must be in autocommit mode (each migration is its own transaction)."""
    files = _files(directory)
    conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (_LOCK_SPACE, schema))
    try:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = _applied(conn)
        applied = []
        for name, text, digest in _pending(files, done):
            with conn.transaction():
                # our own files, not user input: run as written
                conn.execute(sql.SQL(text))
                conn.execute("INSERT INTO schema_migrations (name, sha256) VALUES (%s, %s)", (name, digest))
            applied.append(name)
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_LOCK_SPACE, schema))


def pending_migrations(conn: psycopg.Connection, directory: Path, *, schema: str) -> list[str]:
    """The migrations `schema` still lacks (all of them when it was never migrated); raises
    MigrationDrift when one it holds differs from its file. Reads only."""
    exists = conn.execute(
        "SELECT 1 FROM information_schema.tables"
        " WHERE table_schema = %s AND table_name = 'schema_migrations'",
        (schema,),
    ).fetchone()
    files = _files(directory)
    if exists is None:
        return [name for name, _, _ in files]
    query = sql.SQL("SELECT name, sha256 FROM {}.schema_migrations").format(sql.Identifier(schema))
    done = {name: digest for name, digest in conn.execute(query).fetchall()}
    return [name for name, _, _ in _pending(files, done)]
