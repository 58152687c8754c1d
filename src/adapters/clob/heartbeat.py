"""Chained order heartbeats: keep resting orders alive, report venue health (PROTOCOL.md 9).

Theory of operation: while any of our orders rest, POST /v1/heartbeats every 5 s with the id the
previous answer returned ("" the first time). If heartbeats stop for ~10 s the venue cancels all our
open orders, so a failed heartbeat is news the engine must hear at once: it becomes a VenueHealth
event (unhealthy, with how long since the last good one), and the next success another (healthy).
A 400 `Invalid Heartbeat ID` means our chain fell behind; its body names the id the venue expects,
which is sent straight away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

import attrs
import msgspec

from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.errors import HeartbeatMismatch, MalformedMessage, VenueError
from polysnipe.adapters.clob.parsing import decode_json
from polysnipe.adapters.clob.schemas import WireHeartbeat
from polysnipe.core.messages import RaiseAlert
from polysnipe.core.ports import Clock

__all__ = ["HEARTBEAT_PATH", "Heartbeat", "HeartbeatConfig", "VenueHealth"]

HEARTBEAT_PATH: Final = "/v1/heartbeats"

_answer = msgspec.json.Decoder(WireHeartbeat)


@attrs.frozen(slots=True)
class HeartbeatConfig:
    #: the official example's cadence
    interval_s: float = 5.0
    #: the venue cancels open orders after about this long without a heartbeat (PR #253, unverified)
    venue_timeout_s: float = 10.0
    #: per-request timeout: a heartbeat that takes longer than the interval is as good as lost
    request_timeout_s: float = 3.0


@attrs.frozen(slots=True)
class VenueHealth:
    """A change in what we know about the venue's health, for the engine and the operator."""

    ts_ms: int
    healthy: bool
    #: "heartbeat" (the only source so far)
    source: str
    reason: str
    consecutive_failures: int
    #: last successful heartbeat, 0 = never
    last_ok_ms: int
    #: True once we have been silent long enough for the venue to have cancelled our orders
    orders_at_risk: bool

    def to_alert(self) -> RaiseAlert:
        severity = "info" if self.healthy else ("critical" if self.orders_at_risk else "warning")
        return RaiseAlert(
            severity,
            "venue_health",
            f"{self.source}: {'healthy' if self.healthy else 'unhealthy'} ({self.reason})",
            self.ts_ms,
            details={"consecutive_failures": self.consecutive_failures, "last_ok_ms": self.last_ok_ms},
        )


class Heartbeat:
    """Sends the heartbeat chain while `should_beat()` (orders rest); emits VenueHealth on changes."""

    __slots__ = (
        "_client",
        "_clock",
        "_config",
        "_failures",
        "_healthy",
        "_last_ok_ms",
        "_on_health",
        "_should_beat",
        "_sleep",
        "heartbeat_id",
    )

    def __init__(
        self,
        client: ClobHttpClient,
        *,
        clock: Clock,
        should_beat: Callable[[], bool],
        on_health: Callable[[VenueHealth], None],
        config: HeartbeatConfig | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._clock = clock
        self._should_beat = should_beat
        self._on_health = on_health
        self._config = config or HeartbeatConfig()
        self._sleep = sleep
        #: the id to send next ("" starts a new chain)
        self.heartbeat_id = ""
        self._failures = 0
        self._healthy = True
        self._last_ok_ms = 0

    async def _send(self) -> str:
        body = msgspec.json.encode({"heartbeat_id": self.heartbeat_id})
        raw = await self._client.request(
            "POST", HEARTBEAT_PATH, body=body, auth=True, timeout_s=self._config.request_timeout_s
        )
        answer = decode_json(_answer, raw, "heartbeat")
        if not answer.heartbeat_id:
            raise MalformedMessage("heartbeat: empty heartbeat_id")
        return answer.heartbeat_id

    async def beat(self) -> bool:
        """Send one heartbeat (resyncing the chain once if the venue expects another id)."""
        try:
            try:
                next_id = await self._send()
            except HeartbeatMismatch as exc:
                self.heartbeat_id = exc.expected_id
                next_id = await self._send()
        except (VenueError, MalformedMessage) as exc:
            self._failed(exc)
            return False
        self.heartbeat_id = next_id
        self._ok()
        return True

    def _ok(self) -> None:
        now = self._clock.now_ms()
        self._last_ok_ms = now
        self._failures = 0
        if not self._healthy:
            self._healthy = True
            self._on_health(VenueHealth(now, True, "heartbeat", "heartbeat acknowledged", 0, now, False))

    def _failed(self, exc: Exception) -> None:
        now = self._clock.now_ms()
        self._failures += 1
        self._healthy = False
        silent_ms = now - self._last_ok_ms if self._last_ok_ms else 0
        at_risk = silent_ms >= self._config.venue_timeout_s * 1000
        # every failure is reported: the engine must know each time the venue may cancel our orders
        self._on_health(
            VenueHealth(now, False, "heartbeat", str(exc), self._failures, self._last_ok_ms, at_risk)
        )

    async def run(self) -> None:
        """Beat every interval while orders rest; cancel the task to stop."""
        while True:
            if self._should_beat():
                await self.beat()
            await self._sleep(self._config.interval_s)
