"""The audit chain in real Postgres: intact after traffic, and `polysnipe signer verify-audit` names a
deleted, an inserted and an edited row."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from polysnipe.adapters.signer_server.audit import AuditEntry, AuditLog, audit_key, fetch_rows, verify_rows
from polysnipe.core.secret import Secret
from polysnipe.runners.cli import main
from signer_support import AUDIT_KEY_TEXT, DSN, migrate

KEY = audit_key(Secret(AUDIT_KEY_TEXT))


def _entry(i: int) -> AuditEntry:
    return AuditEntry(
        ts_ms=1_800_000_000_000 + i, caller="engine", endpoint="POST /sign/order", purpose="order",
        digest="0x" + f"{i:064x}", key_address="0xabc", notional_usdc_micro=i, decision="allowed", status=200,
        reason="", latency_us=50, correlation_id=f"c{i}",
    )  # fmt: skip


async def _write(schema: str, count: int) -> None:
    conn = await psycopg.AsyncConnection.connect(DSN, autocommit=True)
    await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    log = AuditLog(conn, KEY)
    await log.open()
    for i in range(count):
        await log.append(_entry(i))
    await conn.close()


@pytest.fixture
def chain(db: tuple[psycopg.Connection[Any], str]) -> tuple[psycopg.Connection[Any], str]:
    conn, schema = db
    migrate(conn, schema)
    asyncio.run(_write(schema, 3))
    asyncio.run(_write(schema, 3))  # a restart continues the chain
    conn.execute("ALTER TABLE signer_audit DISABLE TRIGGER signer_audit_no_rewrite")
    return conn, schema


def _verify(conn: psycopg.Connection[Any]) -> list[str]:
    return [f.render() for f in verify_rows(fetch_rows(conn), KEY)[1]]


def test_intact_chain_and_append_only(db: tuple[psycopg.Connection[Any], str]) -> None:
    conn, schema = db
    migrate(conn, schema)
    asyncio.run(_write(schema, 4))
    assert (4, []) == verify_rows(fetch_rows(conn), KEY)
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("DELETE FROM signer_audit WHERE seq = 2")
    assert [] != [f for f in verify_rows(fetch_rows(conn), audit_key(Secret("another key entirely")))[1]]


def test_deleted_row_is_named(chain: tuple[psycopg.Connection[Any], str]) -> None:
    conn, _ = chain
    conn.execute("DELETE FROM signer_audit WHERE seq = 3")
    assert ["deleted: row seq 3 deleted (before seq 4)"] == _verify(conn)


def test_inserted_row_is_named(chain: tuple[psycopg.Connection[Any], str]) -> None:
    conn, _ = chain
    conn.execute(
        "INSERT INTO signer_audit (seq, ts_ms, caller, endpoint, purpose, digest, key_address,"
        " notional_usdc_micro, decision, status, reason, latency_us, correlation_id, prev_hash, row_hash)"
        " SELECT 3, ts_ms, caller, endpoint, purpose, digest, key_address, 99,"
        " decision, status, reason, latency_us, correlation_id, row_hash, row_hash"
        " FROM signer_audit WHERE seq = 2"
    )
    conn.execute(
        "INSERT INTO signer_audit (seq, ts_ms, caller, endpoint, purpose, digest, key_address,"
        " notional_usdc_micro, decision, status, reason, latency_us, correlation_id, prev_hash, row_hash)"
        " SELECT 7, ts_ms, caller, endpoint, purpose, digest, key_address, 5, decision, status, reason,"
        " latency_us, correlation_id, row_hash, row_hash FROM signer_audit WHERE seq = 6"
    )
    assert [
        "inserted: row seq 3 was not written by the signer (inserted)",
        "inserted: row seq 7 does not match its hash and nothing follows it (inserted at the end, or the last"
        " row edited)",
    ] == _verify(conn)


def test_edited_row_is_named(chain: tuple[psycopg.Connection[Any], str]) -> None:
    conn, _ = chain
    conn.execute("UPDATE signer_audit SET decision = 'refused', status = 403 WHERE seq = 2")
    assert ["edited: row seq 2 does not match its hash (edited)"] == _verify(conn)


def test_verify_audit_command(
    chain: tuple[psycopg.Connection[Any], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    conn, schema = chain
    settings = tmp_path / "signer.toml"
    settings.write_text(f'[signer]\ndb_schema = "{schema}"\n')
    monkeypatch.setenv("POLYSNIPE_DATABASE_URL", DSN)
    monkeypatch.setenv("POLYSNIPE_SIGNER_AUDIT_KEY", AUDIT_KEY_TEXT)
    assert 0 == main(["signer", "verify-audit", "--config", str(settings)])
    assert "6 audit rows, chain intact" in capsys.readouterr().out
    conn.execute("UPDATE signer_audit SET reason = 'nothing to see' WHERE seq = 5")
    assert 1 == main(["signer", "verify-audit", "--config", str(settings)])
    assert "edited: row seq 5" in capsys.readouterr().out
    monkeypatch.delenv("POLYSNIPE_SIGNER_AUDIT_KEY")
    assert 2 == main(["signer", "verify-audit", "--config", str(settings)])
    assert "POLYSNIPE_SIGNER_AUDIT_KEY is not set" in capsys.readouterr().err
