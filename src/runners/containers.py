"""Dependency-injector containers, in layers (STYLE.md): Core (config, clock, rng), Gateways (one
singleton per outside system), Services (engine pieces), and compositions per runner that differ only
in the gateways they choose. Factories never open sockets.

Config files speak in USDC and shares as decimal strings (`max_order_notional_usdc = "250"`); the
core speaks micro-units (`max_order_notional_usdc_micro`). `micro_units()` converts every key ending
in `_usdc` or `_shares` once, by exact parsing, so no float ever carries money into the core.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from dependency_injector import containers, providers

from polysnipe.adapters.sim.clock import EventClock
from polysnipe.adapters.sim.models import (
    ConstantLatency,
    JitteredLatency,
    PolymarketFeeModel,
    PowerProbQueueModel,
    RiskAverseQueueModel,
)
from polysnipe.adapters.sim.venue import SimVenue
from polysnipe.core.evaluators import EvaluatorParams, Evaluators
from polysnipe.core.market import Market, MarketRegistry
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.portfolio import Portfolio
from polysnipe.core.risk import RiskGatekeeper, RiskPolicy, RiskState, TreasuryPolicy
from polysnipe.core.routing import build_router
from polysnipe.core.signals.base import build_signals
from polysnipe.core.state import EngineState, build_state
from polysnipe.core.units import parse_micro

__all__ = ["BacktestContainer", "build_backtest_engine", "micro_units"]

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
    clock = providers.Singleton(EventClock)
    #: the engine and the venue draw from separate seeded streams, so venue realism settings never
    #: change the engine's own choices (iceberg jitter) for the same seed
    engine_rng = providers.Singleton(random.Random, config.seed)
    venue_rng = providers.Singleton(lambda seed: random.Random(f"venue:{seed}"), config.seed)


class SimGateways(containers.DeclarativeContainer):
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


class BacktestContainer(containers.DeclarativeContainer):
    """Backtest composition: simulated venue, in-process bus and journal; no servers."""

    config = providers.Configuration()
    registry = providers.Dependency(instance_of=MarketRegistry)
    core = providers.Container(Core, config=config)
    gateways = providers.Container(SimGateways, config=config, core=core, registry=registry)
    services = providers.Container(Services, config=config, core=core, registry=registry)


def build_backtest_engine(config: dict[str, Any], markets: Sequence[Market]) -> tuple[EngineState, SimVenue]:
    container = BacktestContainer(registry=providers.Object(MarketRegistry.of(markets)))
    container.config.from_dict(config)
    return container.services.engine(), container.gateways.venue()
