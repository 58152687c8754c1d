"""Ports: the only way the engine loop reaches the outside world. Adapters implement them.

The core itself never calls a port; pure handlers return commands, and the runners' one engine loop
(runners/loop.py) performs them here. Backtest, paper and live differ only in the adapters behind
these ports:

| port | backtest | paper | live |
|---|---|---|---|
| InputSource | replay of a recording | market WebSocket | market WebSocket / bus, user channel |
| MarketEventSink | the simulated venue | the simulated venue | the CLOB adapter (tick sizes) |
| ExecutionPort | simulated venue, virtual time | simulated venue, wall time | CLOB REST |
| SettlementPort | the simulated venue's ledger | the venue's ledger | the relayer (not yet: alerts) |
| Journal | memory | memory or Postgres | Postgres |
| OrderOutbox | - | - | Postgres |
| Clock | event time | wall clock | wall clock |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from polysnipe.core.events import MarketEvent
from polysnipe.core.messages import (
    ConvertPositions,
    ExecutionReport,
    JournalRecord,
    MergePositions,
    OrderRequest,
    RedeemPositions,
    SettlementReport,
    SourceItem,
)

__all__ = [
    "NEVER_MS",
    "OUTBOX_STATES",
    "BatchExecutionPort",
    "BuilderSigner",
    "Clock",
    "ExecutionPort",
    "InputSource",
    "Journal",
    "MarketEventSink",
    "OrderOutbox",
    "Rng",
    "SettlementPort",
]

#: a time no event reaches: "nothing is due"
NEVER_MS = 1 << 62


class Clock(Protocol):
    """Injected time. Backtests run on event time; live runners on the wall clock."""

    def now_ms(self) -> int: ...

    def monotonic_ns(self) -> int: ...


class Rng(Protocol):
    """Injected randomness (random.Random satisfies it); always seeded in backtests."""

    def random(self) -> float: ...

    def randint(self, a: int, b: int) -> int: ...


class InputSource(Protocol):
    """Where the engine's inputs come from, in order: market events, signals, venue reports, operators'
    kill switches, and the adapters' notices between them."""

    async def next_batch(self, timeout_s: float | None) -> Sequence[SourceItem] | None:
        """The next inputs; [] when `timeout_s` passed with nothing new (None: wait as long as it
        takes); None once the source has ended."""
        ...


class MarketEventSink(Protocol):
    """What must see every market event besides the engine (the simulated venue's books)."""

    def on_market_event(self, event: MarketEvent) -> None: ...


class ExecutionPort(Protocol):
    """Orders out, execution reports back, for every venue.

    `submit` and `cancel` return the reports the venue gave at once (the CLOB's answer to a POST);
    reports that fall due later without new input (a simulated venue's latency, its GTD expiries) come
    from `due`, and `wake_ms` says when the next one does (NEVER_MS when only new input can bring
    one: the live venue's later reports arrive through the InputSource, from the user channel).
    """

    async def submit(self, order: OrderRequest, now_ms: int) -> Sequence[ExecutionReport]: ...

    async def cancel(self, order_id: str, now_ms: int) -> Sequence[ExecutionReport]: ...

    def due(self, now_ms: int) -> Sequence[ExecutionReport]: ...

    @property
    def wake_ms(self) -> int: ...


class BatchExecutionPort(ExecutionPort, Protocol):
    """An ExecutionPort that also takes several orders in one call: the legs of a basket, signed
    together and sent in one request where the venue allows it (the CLOB's POST /orders).

    Optional: the engine loop uses `submit_many` where a port has it and calls `submit` per order
    where not. One sequence of reports per order, in the orders' order, meaning what `submit` would
    have answered for that order; a leg refused before it is sent is refused alone.
    """

    async def submit_many(
        self, orders: Sequence[OrderRequest], now_ms: int
    ) -> Sequence[Sequence[ExecutionReport]]: ...


class SettlementPort(Protocol):
    """On-chain changes of positions: merging complete sets into collateral, redeeming resolved markets,
    converting neg-risk NO shares into collateral and YES of the other outcomes.

    Live, these are CTF transactions of the wallet, sent through the relayer. The answer is the
    settlement done or, when it cannot be done now, a SettlementRefused saying why; either is fed back
    into the step. The portfolio changes only on a done settlement, never on a request.
    """

    async def merge(self, request: MergePositions) -> Sequence[SettlementReport]: ...

    async def redeem(self, request: RedeemPositions) -> Sequence[SettlementReport]: ...

    async def convert(self, request: ConvertPositions) -> Sequence[SettlementReport]: ...


class Journal(Protocol):
    """Append-only record of every decision: opportunities, risk decisions, orders, fills, errors.

    `record` may buffer; `commit` makes everything recorded so far durable at once (one transaction
    per consumed batch of input).
    """

    def record(self, records: Sequence[JournalRecord]) -> None: ...

    def commit(self) -> None: ...


#: what the venue's answers made of an outbox entry (OrderOutbox.settle)
OUTBOX_STATES = frozenset({"sending", "unknown", "acknowledged", "rejected", "ended", "absent"})


class OrderOutbox(Protocol):
    """The durable record of every order sent to the venue, written before its bytes leave.

    An order id is claimed once, ever: a claim refused means an earlier incarnation of the engine
    already sent that order, and it must never be sent again (its fate is found on the venue by its
    hash). States follow the venue's answers (OUTBOX_STATES).
    """

    def claim(self, order_id: str, order_hash: str, payload_sha256: str, signed_ms: int) -> bool: ...

    def resign(self, order_id: str, order_hash: str, payload_sha256: str, signed_ms: int) -> None: ...

    def settle(self, order_id: str, state: str, detail: str, ts_ms: int) -> None: ...


class BuilderSigner(Protocol):
    """The relayer's builder headers (the builder key), in process or from the signing server.

    Trader keys are not behind this port: the signing server signs an order from its fields, never a
    bare digest, so that its policy sees what it signs (adapters/signer_client).
    """

    def builder_headers(self, timestamp_s: int, method: str, path: str, body: bytes) -> Mapping[str, str]: ...
