"""Shared fixtures of the tests: where the recorded venue data lives, and a Postgres schema per test.

The recordings sit in `shared/data/` beside the repository checkout (not inside it: they are
LGPL-licensed copies, see their README). POLYSNIPE_SHARED_DATA points elsewhere when a machine keeps
them in another place. Tests reach them only through the `shared_data` fixture, never at import
time, so collection works without them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

__all__ = [
    "require_compiled_book",
    "require_compiled_decoder",
    "require_compiled_hashes",
    "require_shared_data",
    "shared_data_dir",
]

DSN = os.environ.get("POLYSNIPE_TEST_DATABASE_URL", "postgresql://127.0.0.1:5432/test")


def shared_data_dir() -> Path:
    """The `shared/data` directory: $POLYSNIPE_SHARED_DATA, else `../shared/data` from the repo root."""
    override = os.environ.get("POLYSNIPE_SHARED_DATA")
    if override:
        return Path(override)
    return Path(__file__).parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _logging_outlives_capsys() -> Iterator[None]:
    # A CLI run ends by sending log lines back to the terminal, which under capsys is a stream pytest
    # closes after the test; later tests must not log into it.
    yield
    from polysnipe.runners.logging import configure_logging

    with contextlib.redirect_stderr(sys.__stderr__):
        configure_logging(mode="console")


_REPO_DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(autouse=True, scope="session")
def _no_event_cache_in_the_repository() -> Iterator[None]:
    """Tests run backtests on the bundled sample with --no-cache or on tmp_path copies: a cache they
    wrote into data/ would be a stray file in a user's tree (one `make demo` wrote is left alone)."""
    before = set(_REPO_DATA.rglob("*.cache"))
    yield
    stray = set(_REPO_DATA.rglob("*.cache")) - before
    assert not stray, f"tests wrote event caches into the repository: {sorted(stray)}"


def require_shared_data() -> Path:
    """The recorded venue data's directory. Where it is missing (a clone outside the workspace), the
    test asking skips with the reason; CI sets POLYSNIPE_REQUIRE_SHARED_DATA=1 (.ci/run), and then a
    missing directory fails it instead, so the contract tests can never go quietly unrun."""
    path = shared_data_dir()
    if not path.is_dir():
        why = f"recorded data not found at {path}; set POLYSNIPE_SHARED_DATA to its directory"
        if os.environ.get("POLYSNIPE_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return path


def _require_built(available: bool, why: str) -> None:
    """Skip the asking test with `why` when a compiled part is not built; CI sets
    POLYSNIPE_REQUIRE_COMPILED=1 (.ci/run), and then its absence fails the test instead."""
    if not available:
        if os.environ.get("POLYSNIPE_REQUIRE_COMPILED") == "1":
            pytest.fail(why)
        pytest.skip(why)


def require_compiled_book() -> None:
    """The compiled book (polysnipe.core._book) is built, or the test skips (fails in CI)."""
    from polysnipe.core.book import compiled_available

    _require_built(
        compiled_available(), "the compiled book polysnipe.core._book is not built (make install builds it)"
    )


def require_compiled_decoder() -> None:
    """The compiled decoder (polysnipe.adapters.clob._fastdecode) is built, or the test skips (fails
    in CI)."""
    from polysnipe.adapters.clob.parsing import compiled_decoder_available

    _require_built(
        compiled_decoder_available(),
        "the compiled decoder polysnipe.adapters.clob._fastdecode is not built (make install builds it)",
    )


def require_compiled_hashes() -> None:
    """The compiled order hashes (polysnipe.adapters.clob._orderhash) are built, or the test skips
    (fails in CI)."""
    from polysnipe.adapters.clob.signing import compiled_hashes_available

    _require_built(
        compiled_hashes_available(),
        "the compiled order hashes polysnipe.adapters.clob._orderhash are not built"
        " (make install builds them)",
    )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_shared_data()


@pytest.fixture
def db() -> Iterator[tuple[psycopg.Connection, str]]:
    """A connection and a schema of its own for this test (dropped afterwards), on the real Postgres."""
    run = os.environ.get("POLYSNIPE_TEST_RUN_ID", "local")
    schema = f"t_{run}_{os.getpid()}_{next(_schemas)}".lower()
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        try:
            yield c, schema
        finally:
            c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


_schemas = iter(range(1_000_000))


@pytest.fixture
def journal_schema(db: tuple[psycopg.Connection, str]) -> str:
    """A schema of this test's own with every migration applied."""
    from polysnipe.adapters.postgres.database import BUNDLED_MIGRATIONS
    from polysnipe.adapters.postgres.migrations import apply_migrations

    conn, schema = db
    apply_migrations(conn, BUNDLED_MIGRATIONS, schema=schema)
    return schema


@pytest.fixture
def journal_conn(db: tuple[psycopg.Connection, str], journal_schema: str) -> psycopg.Connection:
    """The `db` connection on a migrated schema (its search_path set there)."""
    from polysnipe.adapters.postgres.journal import set_schema

    conn, _ = db
    set_schema(conn, journal_schema)
    return conn


@pytest.fixture
def journal_env(journal_schema: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated journal schema of this test's own, named in POLYSNIPE_DATABASE_URL/_SCHEMA (what
    `polysnipe run` reads); returns the schema."""
    monkeypatch.setenv("POLYSNIPE_DATABASE_URL", DSN)
    monkeypatch.setenv("POLYSNIPE_DATABASE_SCHEMA", journal_schema)
    return journal_schema


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        # a cluster node also listens on port + 10000: keep both free
        ports = [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()
    if any(p + 10_000 > 65_535 for p in ports):
        return _free_ports(n)
    return ports


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[str]:
    """A three-master Redis Cluster on free loopback ports (DESIGN.md 5), killed afterwards; skipped
    where redis-server or redis-cli is not installed."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server / redis-cli not installed")
    ports = _free_ports(3)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            node = tmp_path / str(port)
            node.mkdir()
            procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--cluster-enabled", "yes", "--cluster-config-file",
                 "nodes.conf", "--dir", str(node), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
        for port in ports:
            _wait_ping(port)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while (
            b"cluster_state:ok"
            not in subprocess.run(
                ["redis-cli", "-p", str(ports[0]), "cluster", "info"], capture_output=True, timeout=5
            ).stdout
        ):
            assert time.monotonic() < deadline, "the cluster never reached cluster_state:ok"
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait(timeout=10)


def _wait_ping(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            assert time.monotonic() < deadline, f"redis-server on {port} did not start"
            time.sleep(0.05)
