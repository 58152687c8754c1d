"""Wallet leases on real Postgres: one engine owns a wallet at a time, a dead engine's wallet is taken
over once its lease runs out, and the engine that lost it learns so on its next renewal."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from conftest import DSN
from polysnipe.adapters.postgres.journal import set_schema
from polysnipe.adapters.postgres.leases import LeaseHeld, WalletLeases

WALLET = "0x5afe"


@pytest.fixture
def schema(journal_schema: str) -> str:
    return journal_schema


def leases(schema: str, holder: str, ttl_ms: int = 60_000) -> WalletLeases:
    conn = psycopg.connect(DSN, autocommit=True)
    set_schema(conn, schema)
    return WalletLeases(conn, holder, ttl_ms)


def test_one_engine_per_wallet_and_a_dead_engines_wallet_is_taken_over(schema: str) -> None:
    a, b = leases(schema, "engine-a", ttl_ms=1_000), leases(schema, "engine-b", ttl_ms=1_000)
    a.acquire(WALLET)
    a.acquire(WALLET)  # its own lease: taken again, not refused
    with pytest.raises(LeaseHeld, match="engine-a"):
        b.acquire(WALLET)
    assert a.renew(WALLET)
    time.sleep(1.1)  # engine a died: nobody renews
    b.acquire(WALLET)
    # a wakes up: its renewal fails, so it stops trading the wallet
    assert not a.renew(WALLET)
    with pytest.raises(LeaseHeld, match="engine-b"):
        a.acquire(WALLET)
    b.release(WALLET)
    a.acquire(WALLET)


def test_a_late_renewal_keeps_a_wallet_nobody_took(schema: str) -> None:
    a, b = leases(schema, "engine-a", ttl_ms=300), leases(schema, "engine-b", ttl_ms=300)
    a.acquire(WALLET)
    time.sleep(0.4)  # engine a stalled past its lease, and nobody took the wallet meanwhile
    assert a.renew(WALLET)
    with pytest.raises(LeaseHeld, match="engine-a"):
        b.acquire(WALLET)


def test_two_engines_starting_at_once_never_both_own_the_wallet(schema: str) -> None:
    engines = [leases(schema, f"engine-{i}") for i in range(6)]
    won: list[str] = []
    start = threading.Barrier(len(engines))

    def take(engine: WalletLeases) -> None:
        start.wait()
        try:
            engine.acquire(WALLET)
            won.append(engine.holder)
        except LeaseHeld:
            pass

    threads = [threading.Thread(target=take, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 == len(won)


def test_a_lease_lasts_a_positive_time(schema: str) -> None:
    with pytest.raises(ValueError, match="positive"):
        leases(schema, "engine-a", ttl_ms=0)
