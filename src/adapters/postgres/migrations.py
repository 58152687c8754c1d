"""Apply the SQL files in migrations/ in name order, each once, each in its own transaction.

Applied files are recorded in `schema_migrations` with a checksum, so a file edited after it ran is
refused instead of silently diverging from what the database holds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
from psycopg import sql

__all__ = ["MigrationDrift", "apply_migrations"]


class MigrationDrift(RuntimeError):
    """A migration file changed after it was applied."""


def apply_migrations(conn: psycopg.Connection, directory: Path, *, schema: str = "public") -> list[str]:
    """Apply pending migrations into `schema` (created if missing); returns the names applied now."""
    with conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        rows = conn.execute("SELECT name, sha256 FROM schema_migrations").fetchall()
        done: dict[str, str] = {name: digest for name, digest in rows}
    applied = []
    for path in sorted(directory.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(text.encode()).hexdigest()
        if path.name in done:
            if done[path.name] != digest:
                raise MigrationDrift(f"{path.name} changed after it was applied")
            continue
        with conn.transaction():
            # our own files, not user input: run as written
            conn.execute(sql.SQL(text))
            conn.execute("INSERT INTO schema_migrations (name, sha256) VALUES (%s, %s)", (path.name, digest))
        applied.append(path.name)
    return applied
