"""The live source over the bus: venue reports are never held behind market data, and the bus's
entries are acknowledged only after the journal committed what they caused."""

from __future__ import annotations

from collections.abc import Sequence

from kit import T0, ScriptedVenue, engine, opportunity, run, snapshot, trade
from polysnipe.adapters.clock import EventClock
from polysnipe.adapters.inbox import BusWithInbox, Inbox
from polysnipe.adapters.settlement import NoSettlement
from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.core.messages import JournalRecord, KillSwitch, SourceItem
from polysnipe.runners.loop import EngineLoop, NullSink


class ListBus:
    """An AckingSource over prepared batches; records what was handed out when each ack came."""

    def __init__(self, batches: list[list[SourceItem]], journal: CountingJournal) -> None:
        self.batches = batches
        self.journal = journal
        self.handed = 0
        self.acks: list[tuple[int, int]] = []

    async def next_batch(self, timeout_s: float | None) -> Sequence[SourceItem] | None:
        if not self.batches:
            return None
        batch = self.batches.pop(0)
        self.handed += len(batch)
        return batch

    def acknowledge(self) -> None:
        self.acks.append((self.handed, self.journal.commits))


class CountingJournal(MemoryJournal):
    def __init__(self) -> None:
        super().__init__()
        self.commits = 0

    def record(self, records: Sequence[JournalRecord]) -> None:
        super().record(records)

    def commit(self) -> None:
        self.commits += 1


def test_reports_come_first_and_nothing_is_acknowledged_before_its_commit() -> None:
    journal = CountingJournal()
    bus = ListBus([[snapshot(T0)], [trade(T0 + 1)]], journal)
    inbox = Inbox()
    switch = KillSwitch(T0, "market:0xzz", True, "operator", by="alice")
    inbox.push([switch])
    venue = ScriptedVenue(journal)
    source = BusWithInbox(bus, inbox)
    loop = EngineLoop(engine({T0 + 1: [opportunity("a")]}), source=source, execution=venue,
                      sink=NullSink(), settlement=NoSettlement(), journal=journal,
                      clock=EventClock())  # fmt: skip
    run(loop.run())
    assert 1 == len(venue.submitted)
    # one ack per batch, each after the commit that covered it (the placement commits once more)
    assert [1, 2] == [handed for handed, _ in bus.acks]
    first, second = (commits for _, commits in bus.acks)
    assert 1 <= first < second
    # the operator's switch came in the first batch, ahead of the bus's market data
    assert "market:0xzz" in loop.state.risk.kill_switches


def test_an_empty_inbox_waits_only_briefly_on_the_bus() -> None:
    journal = CountingJournal()
    waits: list[float | None] = []

    class Quiet(ListBus):
        async def next_batch(self, timeout_s: float | None) -> Sequence[SourceItem] | None:
            waits.append(timeout_s)
            return []

    source = BusWithInbox(Quiet([], journal), Inbox(), report_wait_s=0.02)
    batch = run(source.next_batch(5.0))
    assert [] == list(batch or [])
    assert [0.02] == waits
