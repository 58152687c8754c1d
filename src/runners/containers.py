"""Dependency-injector containers, in layers (STYLE.md): Core (config, clock, rng), Gateways (one
singleton per outside system), Services (engine pieces), and compositions per runner that differ only
in the gateways they choose. Factories never open sockets.

The config is the typed `EngineConfig` (runners/config.py), checked when it was loaded; its sections
become core objects through `runners/core_objects.py`, the one place that maps settings to the core.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

import attrs
from dependency_injector import containers, providers

from polysnipe.adapters.sim.clock import EventClock
from polysnipe.adapters.sim.venue import SimVenue
from polysnipe.core.evaluators import Evaluators
from polysnipe.core.market import Market, MarketRegistry
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.pipeline import EngineState, build_state
from polysnipe.core.risk import RiskGatekeeper
from polysnipe.runners import core_objects as to_core
from polysnipe.runners.config import EngineConfig, WalletConfig

__all__ = ["BacktestContainer", "build_backtest_engine"]


def _wallet_chooser(wallets: Mapping[str, WalletConfig]) -> Callable[[Opportunity], str]:
    """The backtest trades one Safe; with several, opportunities go to them by a stable hash of the token."""
    names = sorted(wallets)

    def choose(opp: Opportunity) -> str:
        if len(names) == 1:
            return names[0]
        return names[sum(opp.token_id.encode()) % len(names)]

    return choose


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
        providers.Callable(to_core.latency_model, config.venue),
        providers.Callable(to_core.queue_model, config.venue),
        providers.Callable(to_core.fee_model, config.venue),
        core.venue_rng,
        providers.Callable(to_core.venue_balances, config.wallets),
    )


class Services(containers.DeclarativeContainer):
    config = providers.Configuration()
    core = providers.DependenciesContainer()
    registry = providers.Dependency(instance_of=MarketRegistry)
    signals = providers.Singleton(to_core.signal_modules, config.signals)
    evaluators = providers.Singleton(
        Evaluators, providers.Callable(to_core.evaluator_params, config.evaluators)
    )
    gatekeeper = providers.Singleton(RiskGatekeeper, providers.Callable(to_core.risk_policy, config.risk))
    risk_state = providers.Singleton(to_core.risk_state, config.wallets)
    router = providers.Singleton(to_core.router, config.routing)
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


def build_backtest_engine(config: EngineConfig, markets: Sequence[Market]) -> tuple[EngineState, SimVenue]:
    container = BacktestContainer(registry=providers.Object(MarketRegistry.of(markets)))
    # one entry per section: the providers hand each typed section to its conversion
    container.config.from_dict({f.name: getattr(config, f.name) for f in attrs.fields(EngineConfig)})
    return container.services.engine(), container.gateways.venue()
