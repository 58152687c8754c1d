"""Rate limits (token buckets per caller and per key) and the per-key daily notional cap of orders.

Time is passed in (monotonic seconds for buckets, UTC ms for days), so tests drive them exactly.
The daily cap counts each order digest once: a retried signature request (same order, same digest)
is not a second order.
"""

from __future__ import annotations

import math
from typing import Final

from polysnipe.adapters.signer_server.config import RateLimit
from polysnipe.core.units import format_micro

__all__ = ["Buckets", "DailyNotional"]

_DAY_MS: Final = 86_400_000


class Buckets:
    """One token bucket per name, all with the same rate and burst."""

    __slots__ = ("_burst", "_rate", "_state")

    def __init__(self, limit: RateLimit) -> None:
        self._rate = limit.rate_per_s
        self._burst = float(limit.burst)
        self._state: dict[str, tuple[float, float]] = {}

    def take(self, name: str, now_s: float) -> int:
        """0 when a token was taken; else the whole seconds to wait (Retry-After), at least 1."""
        tokens, last = self._state.get(name, (self._burst, now_s))
        tokens = min(self._burst, tokens + (now_s - last) * self._rate)
        if tokens >= 1.0:
            self._state[name] = (tokens - 1.0, now_s)
            return 0
        self._state[name] = (tokens, now_s)
        return max(1, math.ceil((1.0 - tokens) / self._rate))


class DailyNotional:
    """USDC (micro) of orders each key signed in the current UTC day, against a cap."""

    __slots__ = ("_cap", "_day", "_digests", "_used")

    def __init__(self, cap_usdc_micro: int) -> None:
        self._cap = cap_usdc_micro
        self._day = -1
        self._used: dict[str, int] = {}
        self._digests: set[str] = set()

    def _roll(self, now_ms: int) -> None:
        day = now_ms // _DAY_MS
        if day != self._day:
            self._day = day
            self._used.clear()
            self._digests.clear()

    def restore(self, key: str, digest: str, notional_usdc_micro: int, now_ms: int) -> None:
        """Count an order signed earlier today (read back from the audit log at start)."""
        self._roll(now_ms)
        if digest not in self._digests:
            self._digests.add(digest)
            self._used[key] = self._used.get(key, 0) + notional_usdc_micro

    def check(self, key: str, digest: str, notional_usdc_micro: int, now_ms: int) -> str | None:
        """Why this order would break the cap, or None (nothing is counted until `commit`)."""
        self._roll(now_ms)
        if digest in self._digests:
            return None
        used = self._used.get(key, 0)
        if used + notional_usdc_micro > self._cap:
            return (
                f"daily notional cap: key {key} has signed {format_micro(used)} USDC today, this order "
                f"adds {format_micro(notional_usdc_micro)}, the cap is {format_micro(self._cap)}"
            )
        return None

    def commit(self, key: str, digest: str, notional_usdc_micro: int, now_ms: int) -> None:
        self.restore(key, digest, notional_usdc_micro, now_ms)

    def day_start_ms(self, now_ms: int) -> int:
        return now_ms - now_ms % _DAY_MS
