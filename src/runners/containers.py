"""Dependency-injector containers, in layers (STYLE.md): Core (config, rng), Gateways (one singleton
per outside system), Services (engine pieces), and the three compositions -- Backtest, Paper, Live --
that differ only in the gateways they choose: input source, execution port, market-event sink,
journal and clock. All three build the same EngineLoop (runners/loop.py). Factories never open
sockets; the runners start what needs starting.

Config files speak in USDC and shares as decimal strings (`max_order_notional_usdc = "250"`); the
core speaks micro-units (`max_order_notional_usdc_micro`). `micro_units()` converts every key ending
in `_usdc` or `_shares` once, by exact parsing, so no float ever carries money into the core.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from dependency_injector import containers, providers

from polysnipe.adapters.clock import EventClock, WallClock
from polysnipe.adapters.inbox import Inbox
from polysnipe.adapters.sim.execution import SimExecution
from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.adapters.sim.models import (
    ConstantLatency,
    JitteredLatency,
    PolymarketFeeModel,
    PowerProbQueueModel,
    RiskAverseQueueModel,
)
from polysnipe.adapters.sim.venue import SimVenue
from polysnipe.core.evaluators import EvaluatorParams, Evaluators
from polysnipe.core.market import MarketRegistry
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.portfolio import Portfolio
from polysnipe.core.risk import RiskGatekeeper, RiskPolicy, RiskState, TreasuryPolicy
from polysnipe.core.routing import build_router
from polysnipe.core.signals.base import build_signals
from polysnipe.core.state import EngineState, build_state
from polysnipe.core.units import parse_micro
from polysnipe.runners.loop import EngineLoop

__all__ = ["Backtest", "ClobGateways", "Live", "Paper", "micro_units"]

_MONEY_SUFFIXES = ("_usdc", "_shares")


def micro_units(config: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively turn `x_usdc = "1.5"` into `x_usdc_micro = 1500000` (also for `_shares`)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out[key] = micro_units(value)
        elif key.endswith(_MONEY_SUFFIXES) and isinstance(value, str | int) and not isinstance(value, bool):
            out[f"{key}_micro"] = parse_micro(str(value))
        else:
            out[key] = value
    return out


def _risk_policy(risk: Mapping[str, Any]) -> RiskPolicy:
    cfg = micro_units(risk)
    treasury = TreasuryPolicy(**cfg.pop("treasury", {}))
    by_wallet = {w: TreasuryPolicy(**t) for w, t in cfg.pop("treasury_by_wallet", {}).items()}
    return RiskPolicy(treasury=treasury, treasury_by_wallet=by_wallet, **cfg)


def _risk_state(wallets: Mapping[str, Any]) -> RiskState:
    cfg = micro_units(wallets)
    return RiskState(Portfolio.of({w: c["balance_usdc_micro"] for w, c in cfg.items()}))


def _router(routing: Mapping[str, Any]) -> Any:
    cfg = micro_units(routing)
    iceberg = cfg.get("iceberg")
    if iceberg and "display_size_shares_micro" in iceberg:
        iceberg["display_size_micro"] = iceberg.pop("display_size_shares_micro")
    return build_router(cfg)


def _wallet_chooser(wallets: Mapping[str, Any]) -> Any:
    """The backtest trades one Safe; with several, opportunities go to them by a stable hash of the token."""
    names = sorted(wallets)

    def choose(opp: Opportunity) -> str:
        if len(names) == 1:
            return names[0]
        return names[sum(opp.token_id.encode()) % len(names)]

    return choose


def _latency(venue: Mapping[str, Any]) -> Any:
    jitter = int(venue.get("latency_jitter_ms", 0))
    order_ms = int(venue.get("order_latency_ms", 0))
    ack_ms = int(venue.get("ack_latency_ms", order_ms))
    if jitter:
        return JitteredLatency(order_ms, ack_ms, jitter)
    return ConstantLatency(order_ms, ack_ms)


def _queue(venue: Mapping[str, Any]) -> Any:
    if venue.get("queue_model", "prob") == "risk_averse":
        return RiskAverseQueueModel()
    return PowerProbQueueModel(power=int(venue.get("queue_power", 2)))


def _balances(wallets: Mapping[str, Any]) -> dict[str, int]:
    return {w: c["balance_usdc_micro"] for w, c in micro_units(wallets).items()}


class Core(containers.DeclarativeContainer):
    config = providers.Configuration()
    #: the engine and the venue draw from separate seeded streams, so venue realism settings never
    #: change the engine's own choices (iceberg jitter) for the same seed
    engine_rng = providers.Singleton(random.Random, config.seed)
    venue_rng = providers.Singleton(lambda seed: random.Random(f"venue:{seed}"), config.seed)


class SimGateways(containers.DeclarativeContainer):
    """The simulated venue as execution port and market-event sink (backtest and paper)."""

    config = providers.Configuration()
    core = providers.DependenciesContainer()
    registry = providers.Dependency(instance_of=MarketRegistry)
    venue = providers.Singleton(
        SimVenue,
        registry,
        providers.Callable(_latency, config.venue),
        providers.Callable(_queue, config.venue),
        providers.Singleton(PolymarketFeeModel),
        core.venue_rng,
        providers.Callable(_balances, config.wallets),
    )
    execution = providers.Singleton(SimExecution, venue)


def _clob_adapters(
    settings: Mapping[str, Any],
    clock: WallClock,
    rng: random.Random,
    inbox: Inbox,
    registry: MarketRegistry,
    secrets: Any,
    transport: Any,
    connect: Any,
) -> Any:
    from polysnipe.adapters.clob.factory import build_clob_adapters

    return build_clob_adapters(
        settings,
        clock=clock,
        rng=rng,
        alert=lambda alert: inbox.push((alert,)),
        market_sink=inbox.push,
        user_sink=inbox.push,
        condition_ids=[m.condition_id for m in registry],
        registry=registry,
        secrets=secrets,
        transport=transport,
        connect=connect,
    )


class ClobGateways(containers.DeclarativeContainer):
    """Polymarket's CLOB: REST execution (also the sink: it follows tick sizes), both channels into
    the inbox. Secrets come from the environment inside the CLOB factory."""

    clob = providers.Dependency(instance_of=dict)
    core = providers.DependenciesContainer()
    registry = providers.Dependency(instance_of=MarketRegistry)
    clock: providers.Dependency[Any] = providers.Dependency()
    inbox = providers.Dependency(instance_of=Inbox)
    #: the signing key and L2 credentials (runners/live.py resolves them from the environment)
    secrets: providers.Dependency[Any] = providers.Dependency()
    #: tests override these with an ASGI transport and an in-process WebSocket connector
    transport: providers.Object[Any] = providers.Object(None)
    connect: providers.Object[Any] = providers.Object(None)
    adapters = providers.Singleton(
        _clob_adapters, clob, clock, core.venue_rng, inbox, registry, secrets, transport, connect
    )
    execution = providers.Callable(lambda adapters: adapters.execution, adapters)


class Services(containers.DeclarativeContainer):
    config = providers.Configuration()
    core = providers.DependenciesContainer()
    registry = providers.Dependency(instance_of=MarketRegistry)
    signals = providers.Singleton(build_signals, config.signals)
    evaluators = providers.Singleton(
        Evaluators,
        providers.Callable(lambda c: EvaluatorParams.from_mapping(micro_units(c or {})), config.evaluators),
    )
    gatekeeper = providers.Singleton(RiskGatekeeper, providers.Callable(_risk_policy, config.risk))
    risk_state = providers.Singleton(_risk_state, config.wallets)
    router = providers.Singleton(_router, config.routing)
    engine = providers.Singleton(
        build_state,
        markets=registry,
        signals=signals,
        evaluators=evaluators,
        gatekeeper=gatekeeper,
        risk=risk_state,
        router=router,
        rng=core.engine_rng,
        wallet_for=providers.Callable(_wallet_chooser, config.wallets),
    )


def _loop(
    engine: EngineState,
    source: Any,
    execution: Any,
    journal: Any,
    clock: Any,
    equity_sample_ms: int | None,
) -> EngineLoop:
    return EngineLoop(
        engine,
        source=source,
        execution=execution,
        sink=execution,
        journal=journal,
        clock=clock,
        equity_sample_ms=int(equity_sample_ms or 1_000),
    )


class Backtest(containers.DeclarativeContainer):
    """A recording replayed against the simulated venue on event time; memory journal; no servers."""

    config = providers.Configuration()
    registry = providers.Dependency(instance_of=MarketRegistry)
    source: providers.Dependency[Any] = providers.Dependency()
    core = providers.Container(Core, config=config)
    gateways = providers.Container(SimGateways, config=config, core=core, registry=registry)
    services = providers.Container(Services, config=config, core=core, registry=registry)
    clock = providers.Singleton(EventClock)
    journal = providers.Singleton(MemoryJournal)
    loop = providers.Singleton(
        _loop, services.engine, source, gateways.execution, journal, clock, config.equity_sample_ms
    )


class Paper(containers.DeclarativeContainer):
    """Live market data into the inbox, fills from the simulated venue on the wall clock."""

    config = providers.Configuration()
    registry = providers.Dependency(instance_of=MarketRegistry)
    core = providers.Container(Core, config=config)
    gateways = providers.Container(SimGateways, config=config, core=core, registry=registry)
    services = providers.Container(Services, config=config, core=core, registry=registry)
    clock = providers.Singleton(WallClock)
    inbox = providers.Singleton(Inbox)
    journal = providers.Singleton(MemoryJournal)
    loop = providers.Singleton(
        _loop, services.engine, inbox, gateways.execution, journal, clock, config.equity_sample_ms
    )


class Live(containers.DeclarativeContainer):
    """Live market data and the CLOB: signed orders over REST, fills from the user channel."""

    config = providers.Configuration()
    registry = providers.Dependency(instance_of=MarketRegistry)
    clob = providers.Dependency(instance_of=dict)
    secrets: providers.Dependency[Any] = providers.Dependency()
    core = providers.Container(Core, config=config)
    clock = providers.Singleton(WallClock)
    inbox = providers.Singleton(Inbox)
    journal = providers.Singleton(MemoryJournal)
    gateways = providers.Container(
        ClobGateways, clob=clob, core=core, registry=registry, clock=clock, inbox=inbox, secrets=secrets
    )
    services = providers.Container(Services, config=config, core=core, registry=registry)
    loop = providers.Singleton(
        _loop, services.engine, inbox, gateways.execution, journal, clock, config.equity_sample_ms
    )
