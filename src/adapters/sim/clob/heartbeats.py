"""Heartbeats (PROTOCOL 9): chained ids on POST /v1/heartbeats, the legacy POST /heartbeats, and the
timer that cancels a user's open orders after `heartbeat_timeout_ms` without a good heartbeat. The
timer runs only for users who have sent one (an assumption: the docs do not say)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

from polysnipe.adapters.sim.clob.accounts import ApiKey
from polysnipe.adapters.sim.clob.config import ClobSimConfig
from polysnipe.adapters.sim.clob.errors import ERRORS, VenueError

__all__ = ["Heartbeats"]


class Heartbeats:
    """Per-user heartbeat chains and their deadlines."""

    __slots__ = ("_clock", "_expected", "_last_ms", "_rng", "_timeout_ms")

    def __init__(self, config: ClobSimConfig, clock: Callable[[], int]) -> None:
        self._clock = clock
        self._timeout_ms = config.heartbeat_timeout_ms
        self._rng = random.Random(config.seed)
        self._expected: dict[str, str] = {}
        self._last_ms: dict[str, int] = {}

    def beat(self, creds: ApiKey, heartbeat_id: str) -> dict[str, Any]:
        """POST /v1/heartbeats: chained ids; a stale id gets 400 with the expected one."""
        user = creds.address
        expected = self._expected.get(user, "")
        if heartbeat_id != expected:
            raise VenueError(
                400, ERRORS["heartbeat"], body={"error_msg": ERRORS["heartbeat"], "heartbeat_id": expected}
            )
        new_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        self._expected[user] = new_id
        self._last_ms[user] = self._clock()
        return {"heartbeat_id": new_id}

    def legacy(self, creds: ApiKey) -> dict[str, Any]:
        self._last_ms[creds.address] = self._clock()
        return {"status": "ok"}

    def timed_out(self, now_ms: int) -> list[str]:
        """Users whose last good heartbeat is `heartbeat_timeout_ms` old; their timer then rests until
        their next good heartbeat."""
        gone = [user for user, last in self._last_ms.items() if now_ms - last >= self._timeout_ms]
        for user in gone:
            del self._last_ms[user]
        return gone

    def summary(self) -> dict[str, str]:
        return {user: self._expected.get(user, "") for user in self._last_ms}
