"""Wallet leases in Postgres (migrations/0009_wallet_leases.sql): one engine owns a wallet at a time.

`acquire` takes a wallet when nobody holds it, when its lease ran out (its engine died), or when this
incarnation already holds it; otherwise it says who does. The row is locked while it is decided, so two
engines starting at once never both win. `renew` extends the lease only while this incarnation still
holds it; False means the wallet was lost (this engine stalled longer than the lease and another took
over), and the engine must stop trading it at once. A renewal that comes late, after the lease ran out
but before anyone took the wallet, still holds it: the holder is the fence, and nobody else traded the
wallet meanwhile (taking it changes the holder), so a busy machine's stall is no reason to stop.
Times are the database's clock, one clock for every host.
"""

from __future__ import annotations

from typing import Any

import psycopg

__all__ = ["LeaseHeld", "WalletLeases"]

_NOW_MS = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
_ACQUIRE = f"""
INSERT INTO wallet_leases (wallet, holder, acquired_ms, expires_ms)
VALUES (%(wallet)s, %(holder)s, {_NOW_MS}, {_NOW_MS} + %(ttl)s)
ON CONFLICT (wallet) DO UPDATE SET holder = EXCLUDED.holder, acquired_ms = EXCLUDED.acquired_ms,
    expires_ms = EXCLUDED.expires_ms
WHERE wallet_leases.holder = EXCLUDED.holder OR wallet_leases.expires_ms <= {_NOW_MS}
RETURNING holder"""
_HOLDER = f"SELECT holder, expires_ms - {_NOW_MS} FROM wallet_leases WHERE wallet = %s"
_RENEW = f"""
UPDATE wallet_leases SET expires_ms = {_NOW_MS} + %(ttl)s
WHERE wallet = %(wallet)s AND holder = %(holder)s RETURNING wallet"""
_RELEASE = "DELETE FROM wallet_leases WHERE wallet = %s AND holder = %s"


class LeaseHeld(RuntimeError):
    """Another engine holds the wallet's lease."""


class WalletLeases:
    """Leases of one engine incarnation (module doc), on a connection of its own (autocommit)."""

    __slots__ = ("_conn", "holder", "ttl_ms")

    def __init__(self, conn: psycopg.Connection[Any], holder: str, ttl_ms: int = 15_000) -> None:
        if ttl_ms <= 0:
            raise ValueError(f"a lease lasts a positive time, got {ttl_ms} ms")
        self._conn = conn
        self.holder = holder
        self.ttl_ms = ttl_ms

    def acquire(self, wallet: str) -> None:
        """Take `wallet` (module doc); raises LeaseHeld naming the holder and when it runs out."""
        row = self._conn.execute(
            _ACQUIRE, {"wallet": wallet, "holder": self.holder, "ttl": self.ttl_ms}
        ).fetchone()
        if row is not None:
            return
        held = self._conn.execute(_HOLDER, (wallet,)).fetchone()
        holder, left_ms = held if held is not None else ("another engine", 0)
        left_s = max(int(left_ms), 0) / 1000
        raise LeaseHeld(
            f"wallet {wallet} is traded by engine {holder} (its lease runs {left_s:.1f} s more unless "
            "renewed): one engine per wallet"
        )

    def renew(self, wallet: str) -> bool:
        row = self._conn.execute(
            _RENEW, {"wallet": wallet, "holder": self.holder, "ttl": self.ttl_ms}
        ).fetchone()
        return row is not None

    def _params(self, wallet: str) -> dict[str, object]:
        return {"wallet": wallet, "holder": self.holder, "ttl": self.ttl_ms}

    def release(self, wallet: str) -> None:
        self._conn.execute(_RELEASE, (wallet, self.holder))
