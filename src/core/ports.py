"""Ports: the only way the core's runners reach the outside world. Adapters implement them.

The core itself never calls a port; pure handlers return commands, and runners perform them here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from polysnipe.core.events import Event
from polysnipe.core.messages import ExecutionReport, OrderRequest, RaiseAlert

__all__ = [
    "Alerts",
    "AsyncExecutionPort",
    "BuilderSigner",
    "ChainTransactor",
    "Clock",
    "ExecutionPort",
    "Journal",
    "MarketData",
    "Metrics",
    "Relayer",
    "Rng",
]


class Clock(Protocol):
    """Injected time. Backtests use a clock driven by event time; live runners the wall clock."""

    def now_ms(self) -> int: ...

    def monotonic_ns(self) -> int: ...


class Rng(Protocol):
    """Injected randomness (random.Random satisfies it); always seeded in backtests."""

    def random(self) -> float: ...

    def randint(self, a: int, b: int) -> int: ...


class MarketData(Protocol):
    """A source of normalized events in time order."""

    def events(self) -> Sequence[Event]: ...


class ExecutionPort(Protocol):
    """Synchronous execution (simulated venue). Reports arrive through `poll` once they are due."""

    def submit(self, order: OrderRequest, now_ms: int) -> None: ...

    def cancel(self, order_id: str, now_ms: int) -> None: ...

    def poll(self, now_ms: int) -> list[ExecutionReport]: ...


class AsyncExecutionPort(Protocol):
    """Live execution (CLOB REST). Each call returns the reports it learned synchronously."""

    async def submit(self, order: OrderRequest) -> list[ExecutionReport]: ...

    async def cancel(self, order_id: str) -> list[ExecutionReport]: ...

    async def status(self, order_id: str) -> list[ExecutionReport]: ...


class Journal(Protocol):
    """Append-only record of every decision: opportunities, risk decisions, orders, fills, errors."""

    def append(self, table: str, row: Mapping[str, Any]) -> None: ...


class Alerts(Protocol):
    def send(self, alert: RaiseAlert) -> None: ...


class Metrics(Protocol):
    def inc(self, name: str, value: int = 1, **labels: str) -> None: ...

    def observe(self, name: str, value: float, **labels: str) -> None: ...


class BuilderSigner(Protocol):
    """Signs for the platform: order digests (trader keys) and relayer builder headers (builder key)."""

    def sign_order_digest(self, digest: bytes) -> bytes: ...

    def builder_headers(self, timestamp_s: int, method: str, path: str, body: bytes) -> Mapping[str, str]: ...


class Relayer(Protocol):
    """Gasless Safe / deposit-wallet transactions through Polymarket's relayer.

    `submit` returns the relayer's transaction id; `state` its current state ("STATE_MINED", ...).
    """

    async def submit(
        self, wallet: str, kind: str, payload: Mapping[str, Any], correlation_id: str
    ) -> str: ...

    async def state(self, transaction_id: str) -> str: ...


class ChainTransactor(Protocol):
    """Direct Polygon fallback: the Safe owner executes the same Safe transaction and pays gas."""

    async def execute(
        self, wallet: str, kind: str, payload: Mapping[str, Any], correlation_id: str
    ) -> str: ...
