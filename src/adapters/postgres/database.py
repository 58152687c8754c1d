"""The journal database as the engine uses it: a connection pool on one schema, checked at start.

A live or paper engine refuses to start on a schema that lacks a migration (`polysnipe migrate`
applies them) rather than journaling into tables that are not what the code expects. Each user of the
database takes its own pooled connection: the journal writer (one transaction per consumed batch), the
durable order outbox (committed before every POST), the operators' kill switches (polled before each
batch), the wallet leases (renewed in the background), the start-up takeover. Connections run in
autocommit mode with `search_path` set to the schema, so every statement of the journal adapter finds
its tables unqualified.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from polysnipe.adapters.postgres.migrations import MigrationDrift, pending_migrations
from polysnipe.adapters.urls import mask_url

__all__ = [
    "BUNDLED_MIGRATIONS",
    "DatabaseConfig",
    "JournalDatabase",
    "JournalUnavailable",
    "connect",
    "open_database",
]

#: the project's migrations (the repository's migrations/ folder)
BUNDLED_MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


class JournalUnavailable(RuntimeError):
    """The journal cannot be used: the database does not answer, or its schema is not migrated."""


@attrs.frozen(slots=True, kw_only=True)
class DatabaseConfig:
    url: str
    schema: str = "public"
    #: connections held: the journal writer, the outbox, the kill-switch watch, the wallet leases,
    #: the start-up takeover, and spares
    pool_size: int = 8
    connect_timeout_s: float = 10.0


def connect(config: DatabaseConfig, migrations: Path = BUNDLED_MIGRATIONS) -> psycopg.Connection[Any]:
    """One autocommit connection on the journal's schema, which must hold every migration; raises
    JournalUnavailable (with the line to show) when the database does not answer or is behind."""
    where = f"{mask_url(config.url)} (schema {config.schema})"
    try:
        conn = psycopg.connect(config.url, autocommit=True, connect_timeout=int(config.connect_timeout_s))
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise JournalUnavailable(f"cannot connect to the journal database at {where}: {reason}") from None
    try:
        missing = pending_migrations(conn, migrations, schema=config.schema)
        if missing:
            raise JournalUnavailable(
                f"the journal at {where} lacks migrations {', '.join(missing)}: run "
                f"`polysnipe migrate --schema {config.schema}` first"
            )
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(config.schema)))
    except MigrationDrift as exc:
        conn.close()
        raise JournalUnavailable(f"the journal at {where} differs from this version: {exc}") from None
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def open_database(config: DatabaseConfig) -> Iterator[JournalDatabase]:
    """The journal database opened (raises JournalUnavailable), closed when the block ends."""
    database = JournalDatabase(config)
    database.open()
    try:
        yield database
    finally:
        database.close()


class JournalDatabase:
    """A pool of connections on the journal's schema (module doc). `open` checks the schema first."""

    def __init__(self, config: DatabaseConfig, migrations: Path = BUNDLED_MIGRATIONS) -> None:
        self.config = config
        self.migrations = migrations
        self._pool: ConnectionPool[Any] | None = None
        self._held: list[psycopg.Connection[Any]] = []

    def open(self) -> None:
        config = self.config
        connect(config, self.migrations).close()
        where = f"{mask_url(config.url)} (schema {config.schema})"
        pool: ConnectionPool[Any] = ConnectionPool(
            config.url,
            min_size=1,
            max_size=config.pool_size,
            kwargs={"autocommit": True, "options": f"-c search_path={config.schema}"},
            open=False,
            name="polysnipe-journal",
        )
        try:
            pool.open(wait=True, timeout=config.connect_timeout_s)
        except PoolTimeout:
            pool.close()
            raise JournalUnavailable(f"the journal database at {where} gave no connection in time") from None
        self._pool = pool

    def connection(self) -> psycopg.Connection[Any]:
        """A connection of its own for one user (the journal writer, the outbox, the kill-switch
        watch), held until `close`."""
        if self._pool is None:
            raise RuntimeError("JournalDatabase.open() first")
        conn: psycopg.Connection[Any] = self._pool.getconn(timeout=self.config.connect_timeout_s)
        self._held.append(conn)
        return conn

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for conn in self._held:
            pool.putconn(conn)
        self._held.clear()
        pool.close()
