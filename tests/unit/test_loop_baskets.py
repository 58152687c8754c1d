"""A basket through the engine loop: every leg journaled and committed, then all legs handed to the
execution port in one call; answers, log lines and audits in the legs' order."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

from structlog.testing import capture_logs

from kit import T0, WALLET, ScriptedVenue, engine, event_legs, opportunity
from polysnipe.adapters.clock import EventClock
from polysnipe.adapters.inbox import Inbox
from polysnipe.adapters.settlement import NoSettlement
from polysnipe.adapters.sim import ConstantLatency, PolymarketFeeModel, RiskAverseQueueModel, SimVenue
from polysnipe.adapters.sim.execution import SimExecution
from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.core.events import BookSnapshot, LastTrade, Level, MarketEvent, Side
from polysnipe.core.market import MarketRegistry, NegRiskEvent
from polysnipe.core.messages import (
    ExecutionReport,
    JournalRecord,
    OrderFilled,
    OrderRequest,
    PlaceOrder,
    RecordFill,
)
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.ports import BatchExecutionPort, ExecutionPort
from polysnipe.core.state import EngineState
from polysnipe.core.units import MICRO
from polysnipe.runners.loop import EngineLoop, NullSink

EVENT = "E"
LEGS = event_legs(EVENT)
ASKS = (300_000, 300_000, 300_000)


def _state() -> EngineState:
    edge = 1_000_000 - sum(ASKS)
    basket: list[Opportunity] = [
        opportunity(
            f"leg{i}", token_id=m.token_ids[0], market=m.condition_id, size=20 * MICRO, limit_price=ask,
            fair_value=ask + edge, edge=edge, created_ms=T0 + 1, expires_ms=T0 + 1_001, group_id="g1",
            strategy="spread_hunter",
        )
        for i, (m, ask) in enumerate(zip(LEGS, ASKS, strict=True))
    ]  # fmt: skip
    state = engine({T0 + 1: basket}, LEGS)
    state.markets.add_event(NegRiskEvent(EVENT, tuple(m.condition_id for m in LEGS), False, False, True))
    return state


def _inputs() -> list[MarketEvent]:
    books: list[MarketEvent] = [
        BookSnapshot(T0, m.token_ids[0], m.condition_id, (Level(ask - 20_000, 500 * MICRO),),
                     (Level(ask, 500 * MICRO),))
        for m, ask in zip(LEGS, ASKS, strict=True)
    ]  # fmt: skip
    return [*books, LastTrade(T0 + 1, LEGS[0].token_ids[0], LEGS[0].condition_id, 300_000, MICRO, Side.BUY)]


class CallJournal(MemoryJournal):
    """A MemoryJournal that notes each call, in one list with the venue's."""

    def __init__(self, calls: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.calls = calls

    def record(self, records: Sequence[JournalRecord]) -> None:
        self.calls.append(("record", [type(r).__name__ for r in records]))
        super().record(records)

    def commit(self) -> None:
        self.calls.append(("commit", None))


class BatchVenue(ScriptedVenue):
    """ScriptedVenue with submit_many: every order accepted and filled at once, batches noted."""

    def __init__(self, journal: CallJournal) -> None:
        super().__init__(journal)
        self.calls = journal.calls
        self.batches: list[list[str]] = []

    async def submit_many(
        self, orders: Sequence[OrderRequest], now_ms: int
    ) -> Sequence[Sequence[ExecutionReport]]:
        self.calls.append(("submit_many", [o.order_id for o in orders]))
        self.batches.append([o.order_id for o in orders])
        return [await ScriptedVenue.submit(self, o, now_ms) for o in orders]

    async def submit(self, order: OrderRequest, now_ms: int) -> Sequence[ExecutionReport]:
        self.calls.append(("submit", order.order_id))
        return await super().submit(order, now_ms)


def _run(
    execution: ExecutionPort, journal: MemoryJournal, sink: Any = None, settlement: Any = None
) -> EngineLoop:
    inbox = Inbox()
    source = inbox
    loop = EngineLoop(_state(), source=source, execution=execution, sink=sink or NullSink(),
                      settlement=settlement or NoSettlement(), journal=journal, clock=EventClock(),
                      max_wait_s=0.05)  # fmt: skip
    inbox.push(_inputs())
    inbox.close()

    async def run_and_drain() -> None:
        await loop.run()
        await loop.drain("end_of_run")  # the simulated venue answers after its latency

    asyncio.run(run_and_drain())
    return loop


def test_a_baskets_legs_are_journaled_and_committed_then_sent_in_one_call() -> None:
    calls: list[tuple[str, Any]] = []
    journal = CallJournal(calls)
    venue = BatchVenue(journal)
    batch: BatchExecutionPort = venue
    loop = _run(batch, journal)
    legs = [p.order.order_id for p in journal.of(PlaceOrder)]
    assert 3 == len(legs)
    assert [legs] == venue.batches
    assert not [c for c in calls if c[0] == "submit"]
    sent = calls.index(("submit_many", legs))
    before = calls[:sent]
    # every leg recorded, and a commit after the last record, before the batch
    assert 3 == sum(names.count("PlaceOrder") for kind, names in before if kind == "record")
    last_record = max(i for i, (kind, _) in enumerate(before) if kind == "record")
    assert ("commit", None) in before[last_record:]
    # the answers went back into the step in the legs' order: each filled, fills journaled in order
    assert legs == [r.fill.order_id for r in journal.of(RecordFill)]
    assert all(20 * MICRO == loop.state.portfolio.wallets[WALLET].positions[m.token_ids[0]] for m in LEGS)
    assert 6 == loop.audits  # one per leg placed, one per fill
    assert [3] == loop.order_legs


def test_a_port_without_submit_many_gets_the_legs_one_by_one_after_all_are_committed() -> None:
    calls: list[tuple[str, Any]] = []
    journal = CallJournal(calls)
    venue = ScriptedVenue(journal)
    seen: list[int] = []
    submit = venue.submit

    async def counting(order: OrderRequest, now_ms: int) -> Sequence[ExecutionReport]:
        seen.append(len(journal.of(PlaceOrder)))
        assert ("commit", None) == calls[-1]
        return await submit(order, now_ms)

    venue.submit = counting  # type: ignore[method-assign]
    _run(venue, journal)
    assert [3, 3, 3] == seen
    assert [p.order for p in journal.of(PlaceOrder)] == venue.submitted


def test_a_baskets_log_lines_follow_the_batch_one_order_placed_per_leg() -> None:
    calls: list[tuple[str, Any]] = []
    journal = CallJournal(calls)
    venue = BatchVenue(journal)
    at_batch: list[list[str]] = []
    submit_many = venue.submit_many

    async def noting(orders: Sequence[OrderRequest], now_ms: int) -> Sequence[Sequence[ExecutionReport]]:
        at_batch.append([e["event"] for e in logs])
        return await submit_many(orders, now_ms)

    venue.submit_many = noting  # type: ignore[method-assign]
    with capture_logs() as logs:
        _run(venue, journal)
    [before] = at_batch
    assert not {"opportunity", "risk_decision", "order_placed"} & set(before)
    placed = [e["order_id"] for e in logs if e["event"] == "order_placed"]
    assert [p.order.order_id for p in journal.of(PlaceOrder)] == placed
    events = [e["event"] for e in logs]
    assert events.index("order_placed") > max(i for i, e in enumerate(events) if e == "risk_decision")
    assert max(i for i, e in enumerate(events) if e == "order_placed") < events.index("order_filled")


class LegByLeg:
    """SimExecution behind a port without submit_many: the loop's fallback, one submit per leg."""

    def __init__(self, inner: SimExecution) -> None:
        self.inner = inner

    async def submit(self, order: OrderRequest, now_ms: int) -> Sequence[ExecutionReport]:
        return await self.inner.submit(order, now_ms)

    async def cancel(self, order_id: str, now_ms: int) -> Sequence[ExecutionReport]:
        return await self.inner.cancel(order_id, now_ms)

    def due(self, now_ms: int) -> Sequence[ExecutionReport]:
        return self.inner.due(now_ms)

    @property
    def wake_ms(self) -> int:
        return self.inner.wake_ms


def _sim() -> SimExecution:
    registry = MarketRegistry.of(LEGS)
    venue = SimVenue(
        registry, ConstantLatency(order_ms=5, ack_ms=5), RiskAverseQueueModel(), PolymarketFeeModel(),
        random.Random(7), {WALLET: 10_000 * MICRO},
    )  # fmt: skip
    return SimExecution(venue, registry)


def test_on_the_simulated_venue_a_batch_is_the_legs_submitted_in_order() -> None:
    batched, serial = _sim(), _sim()
    batched_journal, serial_journal = MemoryJournal(), MemoryJournal()
    one = _run(batched, batched_journal, batched, batched)
    other = _run(LegByLeg(serial), serial_journal, serial, serial)
    assert 3 == len(batched_journal.of(PlaceOrder))
    assert 3 == len(batched_journal.of(RecordFill))
    assert serial_journal.records == batched_journal.records
    assert (other.audits, other.breaches) == (one.audits, one.breaches)
    assert serial.venue.ledger.positions(WALLET) == batched.venue.ledger.positions(WALLET)
    assert serial.venue.ledger.usdc(WALLET) == batched.venue.ledger.usdc(WALLET)
    fills = [r.fill for r in batched_journal.of(RecordFill)]
    assert [p.order.order_id for p in batched_journal.of(PlaceOrder)] == [f.order_id for f in fills]
    assert all(isinstance(f, OrderFilled) for f in fills)
