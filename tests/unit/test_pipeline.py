"""The pure pipeline step: routing, risk, outcomes, icebergs, kill switches, determinism."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from kit import market_files
from polysnipe.core.evaluators import Evaluators
from polysnipe.core.events import BookSnapshot, Event, LastTrade, Level, PriceChange, Side
from polysnipe.core.lifecycle import finish
from polysnipe.core.market import Market, MarketRegistry
from polysnipe.core.messages import (
    CancelOrder,
    Command,
    KillSwitch,
    Liquidity,
    OrderAccepted,
    OrderFilled,
    OutcomeKind,
    PlaceOrder,
    RaiseAlert,
    RecordOutcome,
)
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.pipeline import step
from polysnipe.core.portfolio import Portfolio
from polysnipe.core.risk import RiskGatekeeper, RiskPolicy, RiskState
from polysnipe.core.routing import build_router
from polysnipe.core.signals.base import SignalContext
from polysnipe.core.state import EngineState, build_state
from polysnipe.core.units import MICRO

WALLET = "0x5afe"
YES, NO = "111", "222"
MARKET = Market("0xc1", (YES, NO), ("Yes", "No"), 10_000, 5 * MICRO, False)
T0 = 1_700_000_000_000


class ScriptedSignal:
    """A real signal module that emits prepared opportunities when an event with a given time arrives."""

    name = "scripted"

    def __init__(self, script: dict[int, list[Opportunity]]) -> None:
        self.script = script

    def on_event(self, event: Event, ctx: SignalContext, now_ms: int) -> list[Opportunity]:
        return self.script.pop(event.ts_ms, [])


def opp(oid: str, *, size: int = 20 * MICRO, limit: int = 500_000, ts: int = T0, urgency: str = "aggressive",
        group: str = "", token: str = YES, ttl: int = 60_000) -> Opportunity:  # fmt: skip
    return Opportunity(
        id=oid, strategy="scripted", market=MARKET.condition_id, token_id=token, side=Side.BUY, size=size,
        limit_price=limit, fair_value=limit + 50_000, edge=50_000, confidence=0.9, created_ms=ts,
        expires_ms=ts + ttl, reason="test", correlation_id=f"c-{oid}", urgency=urgency, group_id=group,
    )  # fmt: skip


def engine(
    script: dict[int, list[Opportunity]], markets: Sequence[Market] = (MARKET,), **risk: int
) -> EngineState:
    policy = RiskPolicy(
        max_order_notional_usdc_micro=risk.get("notional", 1_000 * MICRO),
        max_market_exposure_usdc_micro=5_000 * MICRO,
        max_outcome_exposure_usdc_micro=5_000 * MICRO,
        max_open_orders=50,
        max_orders_per_window=100,
        rate_window_ms=10_000,
        daily_loss_limit_usdc_micro=1_000 * MICRO,
        max_book_age_ms=60_000,
    )
    router = build_router({
        "default": "aggressive",
        "by_urgency": {"passive": "passive", "iceberg": "iceberg"},
        "iceberg": {"display_size_micro": 8 * MICRO, "size_jitter_bps": 0, "delay_ms": 100,
                    "delay_jitter_ms": 0, "child": "aggressive"},
    })  # fmt: skip
    return build_state(
        markets=MarketRegistry.of(markets),
        signals=[ScriptedSignal(script)],
        evaluators=Evaluators(),
        gatekeeper=RiskGatekeeper(policy),
        risk=RiskState(Portfolio.of({WALLET: 10_000 * MICRO})),
        router=router,
        rng=random.Random(1),
        wallet_for=lambda _: WALLET,
    )


def snapshot(ts: int, token: str = YES, bid: int = 480_000, ask: int = 500_000) -> BookSnapshot:
    return BookSnapshot(
        ts, token, MARKET.condition_id, (Level(bid, 100 * MICRO),), (Level(ask, 100 * MICRO),)
    )


def trade(ts: int) -> LastTrade:
    return LastTrade(ts, YES, MARKET.condition_id, 500_000, MICRO, Side.BUY)


def of(commands: Sequence[Command], kind: type) -> list:  # type: ignore[type-arg]
    return [c for c in commands if isinstance(c, kind)]


def fill(order: PlaceOrder, ts: int, size: int | None = None, trade_id: str = "t1") -> OrderFilled:
    o = order.order
    return OrderFilled(o.order_id, trade_id, ts, o.token_id, o.side, o.price, size or o.size, Liquidity.TAKER)


def test_aggressive_opportunity_fills_and_ends_with_one_outcome() -> None:
    state = engine({T0 + 1: [opp("a")]})
    step(state, snapshot(T0), T0)
    cmds = step(state, trade(T0 + 1), T0 + 1)
    [place] = of(cmds, PlaceOrder)
    assert "aggressive" == place.order.routing
    assert 500_000 <= place.order.price
    assert [] == of(cmds, RecordOutcome)
    step(state, OrderAccepted(place.order.order_id, T0 + 5), T0 + 5)
    out = step(state, fill(place, T0 + 6), T0 + 6)
    [outcome] = of(out, RecordOutcome)
    assert OutcomeKind.FILLED == outcome.kind
    assert place.order.size == outcome.filled_size
    # the same trade reported again (MATCHED, then MINED, ...) changes nothing
    assert [] == step(state, fill(place, T0 + 7), T0 + 7)


def test_no_book_means_no_order_and_a_rejected_outcome() -> None:
    state = engine({T0: [opp("a")]})
    cmds = step(state, trade(T0), T0)
    assert [] == of(cmds, PlaceOrder)
    [outcome] = of(cmds, RecordOutcome)
    assert OutcomeKind.REJECTED == outcome.kind


def test_kill_switch_blocks_and_cancels_resting_orders() -> None:
    state = engine({T0 + 1: [opp("p", urgency="passive", limit=495_000)], T0 + 3: [opp("b", ts=T0 + 3)]})
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


def test_group_legs_pass_risk_together_or_not_at_all() -> None:
    other = Market("0xc2", ("333", "444"), ("Yes", "No"), 10_000, 5 * MICRO, False)
    legs = [opp("l1", group="g"), opp("l2", group="g", token="333", size=1 * MICRO)]  # leg 2 below min size
    state = engine({T0 + 1: legs}, markets=(MARKET, other))
    step(state, snapshot(T0), T0)
    step(
        state,
        BookSnapshot(T0, "333", "0xc2", (Level(480_000, 100 * MICRO),), (Level(500_000, 100 * MICRO),)),
        T0,
    )
    cmds = step(state, trade(T0 + 1), T0 + 1)
    assert [] == of(cmds, PlaceOrder)
    outcomes = of(cmds, RecordOutcome)
    assert {"l1", "l2"} == {o.opportunity_id for o in outcomes}
    assert all(OutcomeKind.REJECTED == o.kind for o in outcomes)


def test_iceberg_releases_slices_one_after_another_and_sums_to_parent() -> None:
    state = engine({T0 + 1: [opp("i", size=20 * MICRO, urgency="iceberg")]})
    step(state, snapshot(T0), T0)
    placed = of(step(state, trade(T0 + 1), T0 + 1), PlaceOrder)
    assert 1 == len(placed)
    now = T0 + 1
    while True:
        p = placed[-1]
        assert p.order.size <= 8 * MICRO
        now += 10
        done = step(state, fill(p, now, trade_id=f"t{now}"), now)
        outcomes = of(done, RecordOutcome)
        if outcomes:
            break
        now += 100  # the next slice waits for its delay
        nxt = of(step(state, trade(now), now), PlaceOrder)
        assert 1 == len(nxt)
        placed += nxt
    assert 20 * MICRO == sum(p.order.size for p in placed)
    assert OutcomeKind.FILLED == outcomes[0].kind


def test_contradictory_report_raises_an_alert_and_changes_nothing() -> None:
    state = engine({T0 + 1: [opp("a")]})
    step(state, snapshot(T0), T0)
    [place] = of(step(state, trade(T0 + 1), T0 + 1), PlaceOrder)
    cmds = step(state, fill(place, T0 + 2, size=place.order.size + MICRO), T0 + 2)
    [alert] = of(cmds, RaiseAlert)
    assert "contradictory_report" == alert.code
    assert 0 == state.orders[place.order.order_id].filled_size


def test_expired_opportunity_is_recorded_expired() -> None:
    state = engine({T0 + 5: [opp("e", ts=T0, ttl=1)]})
    step(state, snapshot(T0), T0)
    [outcome] = of(step(state, trade(T0 + 5), T0 + 5), RecordOutcome)
    assert OutcomeKind.EXPIRED == outcome.kind


def test_finish_cancels_resting_orders() -> None:
    state = engine({T0 + 1: [opp("p", urgency="passive", limit=495_000)]})
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
