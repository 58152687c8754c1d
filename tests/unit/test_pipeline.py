"""The pure pipeline step: routing, risk, outcomes, icebergs, kill switches, determinism."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from kit import MARKET, T0, engine, fill, market, market_files, of, opportunity, snapshot, trade
from polysnipe.core.events import BookSnapshot, Event, LastTrade, PriceChange
from polysnipe.core.lifecycle import finish
from polysnipe.core.messages import (
    CancelOrder,
    KillSwitch,
    OrderAccepted,
    OrderCancelled,
    OutcomeKind,
    PlaceOrder,
    RaiseAlert,
    RecordOpportunity,
    RecordOutcome,
)
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.pipeline import step
from polysnipe.core.signals.base import SignalContext
from polysnipe.core.units import MICRO


def test_aggressive_opportunity_fills_and_ends_with_one_outcome() -> None:
    state = engine({T0 + 1: [opportunity("a")]})
    step(state, snapshot(T0), T0)
    cmds = step(state, trade(T0 + 1), T0 + 1)
    [place] = of(cmds, PlaceOrder)
    assert "aggressive" == place.order.routing
    assert 500_000 <= place.order.price
    assert [] == of(cmds, RecordOutcome)
    step(state, OrderAccepted(place.order.order_id, T0 + 5), T0 + 5)
    out = step(state, fill(place.order, T0 + 6), T0 + 6)
    [outcome] = of(out, RecordOutcome)
    assert OutcomeKind.FILLED == outcome.kind
    assert place.order.size == outcome.filled_size
    # the same trade reported again (MATCHED, then MINED, ...) changes nothing
    assert [] == step(state, fill(place.order, T0 + 7), T0 + 7)


def test_no_book_means_no_order_and_a_rejected_outcome() -> None:
    state = engine({T0: [opportunity("a")]})
    cmds = step(state, trade(T0), T0)
    assert [] == of(cmds, PlaceOrder)
    [outcome] = of(cmds, RecordOutcome)
    assert OutcomeKind.REJECTED == outcome.kind


def test_kill_switch_blocks_and_cancels_resting_orders() -> None:
    state = engine(
        {
            T0 + 1: [opportunity("p", urgency="passive", limit_price=495_000, fair_value=545_000)],
            T0 + 3: [opportunity("b", created_ms=T0 + 3, expires_ms=T0 + 3 + 60_000)],
        }
    )
    step(state, snapshot(T0), T0)
    [place] = of(step(state, trade(T0 + 1), T0 + 1), PlaceOrder)
    assert place.order.post_only
    step(state, OrderAccepted(place.order.order_id, T0 + 2), T0 + 2)
    cmds = step(state, KillSwitch(T0 + 2, "global", True, "operator"), T0 + 2)
    assert [place.order.order_id] == [c.order_id for c in of(cmds, CancelOrder)]
    assert of(cmds, RaiseAlert)
    blocked = step(state, trade(T0 + 3), T0 + 3)
    assert [] == of(blocked, PlaceOrder)
    [outcome] = of(blocked, RecordOutcome)
    assert ("kill_switch:global",) == outcome.reasons


def test_a_fill_after_the_outcome_revises_it_and_raises_an_alert() -> None:
    state = engine({T0 + 1: [opportunity("p", urgency="passive", limit_price=495_000, fair_value=545_000)]})
    step(state, snapshot(T0), T0)
    [place] = of(step(state, trade(T0 + 1), T0 + 1), PlaceOrder)
    step(state, OrderAccepted(place.order.order_id, T0 + 2), T0 + 2)
    [first] = of(step(state, OrderCancelled(place.order.order_id, T0 + 3), T0 + 3), RecordOutcome)
    assert (0, 0) == (first.filled_size, first.revision)
    # the venue matched part of it before the cancel took effect; that report comes last
    cmds = step(state, fill(place.order, T0 + 4, size=6 * MICRO), T0 + 4)
    [revised] = of(cmds, RecordOutcome)
    assert (OutcomeKind.PARTLY_FILLED, 6 * MICRO, 1) == (revised.kind, revised.filled_size, revised.revision)
    assert (place.order.price, "late_fill") == (revised.avg_price, revised.reasons[-1])
    assert ["late_fill"] == [a.code for a in of(cmds, RaiseAlert)]
    cmds = step(state, fill(place.order, T0 + 5, size=14 * MICRO, trade_id="t2"), T0 + 5)
    [again] = of(cmds, RecordOutcome)
    assert (OutcomeKind.FILLED, 20 * MICRO, 2) == (again.kind, again.filled_size, again.revision)


def test_group_legs_pass_risk_together_or_not_at_all() -> None:
    other = market("0xc2", ("333", "444"))
    legs = [
        opportunity("l1", group_id="g"),
        opportunity("l2", group_id="g", token_id="333", size=1 * MICRO),  # below the min size
    ]
    state = engine({T0 + 1: legs}, markets=(MARKET, other))
    step(state, snapshot(T0), T0)
    step(state, snapshot(T0, token="333", condition_id="0xc2"), T0)
    cmds = step(state, trade(T0 + 1), T0 + 1)
    assert [] == of(cmds, PlaceOrder)
    outcomes = of(cmds, RecordOutcome)
    assert {"l1", "l2"} == {o.opportunity_id for o in outcomes}
    assert all(OutcomeKind.REJECTED == o.kind for o in outcomes)


def test_iceberg_releases_slices_one_after_another_and_sums_to_parent() -> None:
    state = engine({T0 + 1: [opportunity("i", size=20 * MICRO, urgency="iceberg")]})
    step(state, snapshot(T0), T0)
    placed = of(step(state, trade(T0 + 1), T0 + 1), PlaceOrder)
    assert 1 == len(placed)
    now = T0 + 1
    while True:
        p = placed[-1]
        assert p.order.size <= 8 * MICRO
        now += 10
        done = step(state, fill(p.order, now, trade_id=f"t{now}"), now)
        outcomes = of(done, RecordOutcome)
        if outcomes:
            break
        now += 100  # the next slice waits for its delay
        nxt = of(step(state, trade(now), now), PlaceOrder)
        assert 1 == len(nxt)
        placed += nxt
    assert 20 * MICRO == sum(p.order.size for p in placed)
    assert OutcomeKind.FILLED == outcomes[0].kind


def test_an_iceberg_whose_display_is_below_the_markets_minimum_refuses_the_opportunity() -> None:
    # 8 shares shown at a time (kit's iceberg) on a market that takes no order below 15: no slice
    # could be placed, so the opportunity is refused with its reason and the engine goes on
    big_minimum = market(min_size=15 * MICRO)
    state = engine(
        {
            T0 + 1: [opportunity("i", size=20 * MICRO, urgency="iceberg")],
            T0 + 2: [opportunity("a", size=20 * MICRO, created_ms=T0 + 2, expires_ms=T0 + 60_000)],
        },
        markets=(big_minimum,),
    )
    step(state, snapshot(T0), T0)
    cmds = step(state, trade(T0 + 1), T0 + 1)
    assert [] == of(cmds, PlaceOrder)
    assert ["i"] == [r.opp.id for r in of(cmds, RecordOpportunity)]
    [outcome] = of(cmds, RecordOutcome)
    assert (OutcomeKind.REJECTED, ("iceberg_display_below_min_size",)) == (outcome.kind, outcome.reasons)
    [place] = of(step(state, trade(T0 + 2), T0 + 2), PlaceOrder)
    assert "aggressive" == place.order.routing


def test_contradictory_report_raises_an_alert_and_changes_nothing() -> None:
    state = engine({T0 + 1: [opportunity("a")]})
    step(state, snapshot(T0), T0)
    [place] = of(step(state, trade(T0 + 1), T0 + 1), PlaceOrder)
    cmds = step(state, fill(place.order, T0 + 2, size=place.order.size + MICRO), T0 + 2)
    [alert] = of(cmds, RaiseAlert)
    assert "contradictory_report" == alert.code
    assert 0 == state.orders[place.order.order_id].filled_size


def test_a_fill_on_another_token_raises_an_alert_and_credits_nothing() -> None:
    state = engine({T0 + 1: [opportunity("a")]})
    step(state, snapshot(T0), T0)
    [place] = of(step(state, trade(T0 + 1), T0 + 1), PlaceOrder)
    held = [dict(w.positions) for w in state.portfolio.wallets.values()]
    foreign = attrs.evolve(fill(place.order, T0 + 2), token_id="999")
    [alert] = of(step(state, foreign, T0 + 2), RaiseAlert)
    assert ("critical", "contradictory_report") == (alert.severity, alert.code)
    assert 0 == state.orders[place.order.order_id].filled_size
    assert held == [dict(w.positions) for w in state.portfolio.wallets.values()]


def test_expired_opportunity_is_recorded_expired() -> None:
    state = engine({T0 + 5: [opportunity("e", expires_ms=T0 + 1)]})
    step(state, snapshot(T0), T0)
    [outcome] = of(step(state, trade(T0 + 5), T0 + 5), RecordOutcome)
    assert OutcomeKind.EXPIRED == outcome.kind


def test_finish_cancels_resting_orders() -> None:
    state = engine({T0 + 1: [opportunity("p", urgency="passive", limit_price=495_000, fair_value=545_000)]})
    step(state, snapshot(T0), T0)
    [place] = of(step(state, trade(T0 + 1), T0 + 1), PlaceOrder)
    assert [place.order.order_id] == [c.order_id for c in of(finish(state, T0 + 10), CancelOrder)]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    from polysnipe.tools.datagen import generate

    out = {}
    for seed in (3, 4):
        d = tmp_path_factory.mktemp(f"gen{seed}")
        generate(d, seed=seed, duration_s=120, markets=4)
        out[seed] = d
    return out


@pytest.mark.parametrize(("seed", "engine_seed"), [(3, 0), (3, 2), (4, 1), (4, 3)])
def test_replay_is_deterministic_and_every_opportunity_ends_once(
    generated: dict[int, Path], seed: int, engine_seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import attrs

    from polysnipe.core.messages import RecordOpportunity, RecordOutcome
    from polysnipe.runners.backtest import run_backtest
    from polysnipe.runners.config import load_config

    d = generated[seed]
    runs = []
    for _ in range(2):
        config = attrs.evolve(load_config(None), seed=engine_seed)
        out = tmp_path_factory.mktemp("bt")
        result = run_backtest(markets_paths=market_files(d), events_path=d / "events.jsonl", out_dir=out,
                              config=config)  # fmt: skip
        runs.append((out / "report.json").read_bytes() + (out / "opportunities.jsonl").read_bytes())
        outcomes = [r.opportunity_id for r in result.journal.of(RecordOutcome)]
        assert len(outcomes) == len(set(outcomes)) == len(result.state.tracks)
        # every tracked opportunity was journaled, once, before its outcome
        assert sorted(outcomes) == sorted(r.opp.id for r in result.journal.of(RecordOpportunity))
        assert 0 == result.report["risk_audit"]["breaches"]
    assert runs[0] == runs[1]


class Recorder:
    """A real module that records which events it was called for; `event_types` limits them."""

    def __init__(self, name: str, event_types: tuple[type, ...] | None = None) -> None:
        self.name = name
        self.seen: list[type] = []
        if event_types is not None:
            self.event_types = event_types

    def on_event(self, event: Event, ctx: SignalContext, now_ms: int) -> list[Opportunity]:
        self.seen.append(type(event))
        return []


class Flagger(Recorder):
    """A module that raises one data-quality flag per trade print it sees."""

    def __init__(self) -> None:
        super().__init__("flagger", (LastTrade,))
        self.data_quality_flags: list[str] = []

    def on_event(self, event: Event, ctx: SignalContext, now_ms: int) -> list[Opportunity]:
        self.data_quality_flags.append(f"flag at {event.ts_ms}")
        return super().on_event(event, ctx, now_ms)


def test_modules_are_called_only_for_the_event_types_they_declare() -> None:
    state = engine({})
    every, books_only = Recorder("every"), Recorder("books", (BookSnapshot,))
    state.signals = [every, books_only]
    events: list[Event] = [snapshot(T0), trade(T0 + 1), PriceChange(T0 + 2, MARKET.condition_id, ()),
                           snapshot(T0 + 3)]  # fmt: skip
    for ev in events:
        step(state, ev, ev.ts_ms)
    # an empty price change applies to no book: no module sees it
    assert [BookSnapshot, LastTrade, BookSnapshot] == every.seen
    assert [BookSnapshot, BookSnapshot] == books_only.seen
    # replacing the modules takes effect at the next step
    later = Recorder("later", (LastTrade,))
    state.signals = [later]
    step(state, trade(T0 + 4), T0 + 4)
    step(state, snapshot(T0 + 5), T0 + 5)
    assert [LastTrade] == later.seen
    assert 3 == len(every.seen)


def test_data_quality_flags_become_one_alert_each() -> None:
    state = engine({})
    flagger = Flagger()
    state.signals = [flagger]
    step(state, snapshot(T0), T0)
    alerts = [of(step(state, trade(T0 + i), T0 + i), RaiseAlert) for i in (1, 2)]
    assert [["flag at 1700000000001"], ["flag at 1700000000002"]] == [[a.message for a in x] for x in alerts]
    assert 2 == state.counters["data_quality_flags"]
    assert [] == of(step(state, snapshot(T0 + 3), T0 + 3), RaiseAlert)
