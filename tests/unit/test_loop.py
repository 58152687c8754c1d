"""The one engine loop: what it does with each kind of input, in what order, through which port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest
from structlog.testing import capture_logs

from kit import (
    T0,
    WALLET,
    YES,
    ScriptedVenue,
    engine,
    market,
    opportunity,
    risk_policy,
    snapshot,
    trade,
    until,
)
from polysnipe.adapters.clock import EventClock, WallClock
from polysnipe.adapters.inbox import Inbox
from polysnipe.adapters.settlement import NoSettlement
from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.core.messages import (
    ExecutionReport,
    KillSwitch,
    OrderRequest,
    OutcomeKind,
    RaiseAlert,
    RecordError,
    RecordKillSwitch,
    RecordOpportunity,
    RecordOutcome,
)
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.units import MICRO
from polysnipe.runners.loop import EngineLoop, NullSink, audit_risk


def _loop(
    script: dict[int, list[Opportunity]], answer: str = "fill", clock: EventClock | WallClock | None = None
) -> tuple[EngineLoop, Inbox, ScriptedVenue, MemoryJournal]:
    journal = MemoryJournal()
    venue = ScriptedVenue(journal, answer)
    inbox = Inbox()
    source = inbox
    loop = EngineLoop(engine(script), source=source, execution=venue, sink=NullSink(),
                      settlement=NoSettlement(), journal=journal, clock=clock or EventClock(),
                      max_wait_s=0.05)  # fmt: skip
    return loop, inbox, venue, journal


def test_orders_are_journaled_before_they_reach_the_venue_and_answers_go_back_in() -> None:
    loop, inbox, venue, journal = _loop({T0 + 1: [opportunity("a")]})
    inbox.push([snapshot(T0), trade(T0 + 1)])
    inbox.close()
    asyncio.run(loop.run())
    assert [True] == venue.journaled_first
    [outcome] = journal.of(RecordOutcome)
    assert OutcomeKind.FILLED == outcome.kind
    assert 20 * MICRO == loop.state.portfolio.wallets[WALLET].positions[YES]


def test_an_orders_log_lines_are_written_once_it_is_out_in_the_commands_order() -> None:
    """Rendering log lines is not on an order's path: the opportunity's and risk decision's lines
    come after the venue took the order, followed by its order_placed line, then the answers'."""
    loop, inbox, venue, _ = _loop({T0 + 1: [opportunity("a")]})
    at_submit: list[list[str]] = []
    submit = venue.submit

    async def noting(order: OrderRequest, now_ms: int) -> Sequence[ExecutionReport]:
        at_submit.append([e["event"] for e in logs])
        return await submit(order, now_ms)

    venue.submit = noting  # type: ignore[method-assign]
    inbox.push([snapshot(T0), trade(T0 + 1)])
    inbox.close()
    with capture_logs() as logs:
        asyncio.run(loop.run())
    [before] = at_submit
    assert not {"opportunity", "risk_decision", "order_placed"} & set(before)
    events = [e["event"] for e in logs if e.get("correlation_id") == venue.submitted[0].correlation_id]
    assert ["opportunity", "risk_decision", "order_placed", "order_filled", "outcome"] == events


def test_a_refusal_in_the_venues_answer_ends_the_opportunity() -> None:
    loop, inbox, _, journal = _loop({T0 + 1: [opportunity("a")]}, answer="reject")
    inbox.push([snapshot(T0), trade(T0 + 1)])
    inbox.close()
    asyncio.run(loop.run())
    [outcome] = journal.of(RecordOutcome)
    assert OutcomeKind.FAILED == outcome.kind
    assert ("venue:fak_not_filled",) == outcome.reasons


def test_notices_and_kill_switches_from_the_source_are_journaled_in_order() -> None:
    loop, inbox, venue, journal = _loop({T0 + 3: [opportunity("b", created_ms=T0 + 3)]})
    alert = RaiseAlert("warning", "book_gap", "111: hash mismatch", T0)
    error = RecordError("market_ws", "1", "not JSON", "{", T0)
    inbox.push([snapshot(T0), alert, error, KillSwitch(T0 + 2, "global", True, "operator", by="alice")])
    inbox.push([trade(T0 + 3)])
    inbox.close()
    asyncio.run(loop.run())
    kinds = [type(r) for r in journal.records]
    assert kinds.index(RaiseAlert) < kinds.index(RecordError) < kinds.index(RecordKillSwitch)
    assert RecordKillSwitch("global", True, "operator", "alice", T0 + 2) in journal.records
    assert [] == venue.submitted  # the kill switch stopped the opportunity that came after it
    [outcome] = journal.of(RecordOutcome)
    assert ("kill_switch:global",) == outcome.reasons


def test_an_iceberg_slice_falls_due_with_no_input_and_the_loop_ticks() -> None:
    now = time.time_ns() // 1_000_000
    iceberg = opportunity("i", urgency="iceberg", created_ms=now, expires_ms=now + 60_000)
    loop, inbox, venue, journal = _loop({now + 1: [iceberg]}, clock=WallClock())

    async def scenario() -> None:
        runner = asyncio.create_task(loop.run())
        inbox.push([snapshot(now), trade(now + 1)])
        # nothing else arrives: the second and third slices (100 ms apart) come from ticks
        try:
            await until(lambda: len(venue.submitted) >= 3)
        finally:
            inbox.close()
        await runner

    asyncio.run(scenario())
    # slices of at most the display size (8), each at least the market's minimum (5), summing to 20
    assert 20 * MICRO == sum(o.size for o in venue.submitted)
    assert 3 == len(venue.submitted)
    [outcome] = journal.of(RecordOutcome)
    assert OutcomeKind.FILLED == outcome.kind


def test_an_input_the_loop_cannot_take_is_a_bug_not_a_silent_skip() -> None:
    loop, inbox, _, _ = _loop({})
    inbox.push(["not an input"])  # type: ignore[list-item]
    inbox.close()
    with pytest.raises(TypeError, match="cannot take a str"):
        asyncio.run(loop.run())


class RecordingSink:
    """A MarketEventSink that notes when (in engine time) it saw each event."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_market_event(self, event: object) -> None:
        self.seen.append(event.ts_ms)  # type: ignore[attr-defined]


def test_with_a_feed_latency_the_venue_sees_events_at_exchange_time_and_the_engine_later() -> None:
    journal = MemoryJournal()
    venue = ScriptedVenue(journal)
    inbox = Inbox()
    sink = RecordingSink()
    source = inbox
    loop = EngineLoop(engine({T0 + 1: [opportunity("a")]}), source=source, execution=venue, sink=sink,
                      settlement=NoSettlement(), journal=journal, clock=EventClock(),
                      feed_delay=lambda: 7)  # fmt: skip
    submitted_at: list[int] = []
    submit = venue.submit

    async def timed_submit(order: OrderRequest, now_ms: int) -> Sequence[ExecutionReport]:
        submitted_at.append(now_ms)
        return await submit(order, now_ms)

    venue.submit = timed_submit  # type: ignore[method-assign]
    inbox.push([snapshot(T0), trade(T0 + 1)])
    inbox.close()
    asyncio.run(loop.run())
    assert [T0, T0 + 1] == sink.seen
    # the trade reached the engine 7 ms after the venue printed it: it decided and ordered then
    assert [T0 + 1 + 7] == submitted_at
    [record] = journal.of(RecordOpportunity)
    assert T0 + 1 + 7 == record.ts_ms


def test_the_audit_finds_exposure_breaches_where_the_engine_holds_or_reserves() -> None:
    # it skips markets where nothing is held or reserved, never a breach in one where something is
    quiet, held, reserved = (
        market("0xq", ("q1", "q2")),
        market("0xh", ("h1", "h2")),
        market("0xr", ("r1", "r2")),
    )
    cap = 100 * MICRO
    state = engine(markets=(quiet, held, reserved), policy=risk_policy(max_outcome_exposure_usdc_micro=cap,
                   max_market_exposure_usdc_micro=cap))  # fmt: skip
    assert [] == audit_risk(state)
    state.risk.portfolio.wallets[WALLET].cost["h2"] = cap + 1
    state.risk.reserved_by_token["r1"] = cap // 2 + 1
    state.risk.reserved_by_token["r2"] = cap // 2
    assert [
        f"outcome exposure h2 {cap + 1}",
        f"market exposure 0xh {cap + 1}",
        f"market exposure 0xr {cap + 1}",
    ] == (audit_risk(state))
    # a negative cap (no config allows one) is breached by every market, held or not
    state = engine(markets=(quiet,), policy=risk_policy(max_outcome_exposure_usdc_micro=-1))
    assert ["outcome exposure q1 0", "outcome exposure q2 0"] == audit_risk(state)
