"""Dependency-injector containers, in layers (STYLE.md): Core (config, rng), Gateways (one singleton
per outside system), Services (engine pieces), and the three compositions -- Backtest, Paper, Live --
that differ only in the gateways they choose: input source, execution port, market-event sink,
journal and clock. All three build the same EngineLoop (runners/loop.py). Factories never open
sockets; the runners start what needs starting.

The engine config is the typed `EngineConfig` (runners/config.py), checked when it was loaded and
handed to a container as `config.from_dict(as_sections(config))`: one typed section per key. The
sections become core objects through `runners/core_objects.py`, the one place that maps settings to
the core.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dependency_injector import containers, providers

from polysnipe.adapters.clock import EventClock, WallClock
from polysnipe.adapters.inbox import AckingSource, BusWithInbox, Inbox
from polysnipe.adapters.postgres.controls import KillSwitchWatch
from polysnipe.adapters.postgres.database import JournalDatabase
from polysnipe.adapters.postgres.journal import PostgresJournal
from polysnipe.adapters.postgres.outbox import PostgresOutbox
from polysnipe.adapters.redis.factory import redis_client
from polysnipe.adapters.redis.streams import BufferedPublisher, RedisClient, StreamPublisher
from polysnipe.adapters.settlement import NoSettlement
from polysnipe.adapters.sim.execution import SimExecution
from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.adapters.sim.models import FeedLatency
from polysnipe.adapters.sim.venue import SimVenue
from polysnipe.core.evaluators import Evaluators
from polysnipe.core.market import MarketRegistry
from polysnipe.core.messages import KillSwitch
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.ports import Journal
from polysnipe.core.risk import RiskGatekeeper
from polysnipe.core.state import EngineState, build_state
from polysnipe.runners import core_objects as to_core
from polysnipe.runners.config import OutputsConfig, RedisConfig, WalletConfig
from polysnipe.runners.loop import EngineLoop
from polysnipe.runners.settings import Settings

__all__ = ["Backtest", "ClobGateways", "Ingest", "Live", "Paper"]


def _wallet_chooser(wallets: Mapping[str, WalletConfig]) -> Callable[[Opportunity], str]:
    """The backtest trades one Safe; with several, opportunities go to them by a stable hash of the token."""
    names = sorted(wallets)

    def choose(opp: Opportunity) -> str:
        if len(names) == 1:
            return names[0]
        return names[sum(opp.token_id.encode()) % len(names)]

    return choose


def _feed_delay(model: FeedLatency, seed: int) -> Callable[[], int] | None:
    """The backtest's market-data delay as a draw per event, from a seeded stream of its own (so the
    delay never changes the venue's or the engine's random choices); None when there is none."""
    if not model.base_ms and not model.jitter_ms:
        return None
    return model.draws(random.Random(f"feed:{seed}"))


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
        providers.Callable(to_core.latency_model, config.venue),
        providers.Callable(to_core.queue_model, config.venue),
        providers.Callable(to_core.fee_model, config.venue),
        core.venue_rng,
        providers.Callable(to_core.venue_balances, config.wallets),
    )
    #: the venue executes, sees market events and settles on its own ledger
    execution = providers.Singleton(SimExecution, venue, registry)
    settlement = execution


def _clob_adapters(
    settings: Mapping[str, Any],
    clock: WallClock,
    rng: random.Random,
    inbox: Inbox,
    registry: MarketRegistry,
    secrets: Any,
    transport: Any,
    connect: Any,
    outbox: Any,
) -> Any:
    from polysnipe.adapters.clob.factory import build_clob_adapters

    return build_clob_adapters(
        settings,
        clock=clock,
        rng=rng,
        alert=lambda alert: inbox.push((alert,)),
        market_sink=inbox.push,
        user_sink=inbox.push,
        on_condition=lambda condition: inbox.push((condition,)),
        condition_ids=[m.condition_id for m in registry],
        registry=registry,
        secrets=secrets,
        transport=transport,
        connect=connect,
        outbox=outbox,
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
    #: the durable order outbox (core.ports.OrderOutbox)
    outbox: providers.Dependency[Any] = providers.Dependency()
    adapters = providers.Singleton(
        _clob_adapters, clob, clock, core.venue_rng, inbox, registry, secrets, transport, connect, outbox
    )
    execution = providers.Callable(lambda adapters: adapters.execution, adapters)
    #: merges and redemptions need the relayer (not built yet): they wait, loudly
    settlement = providers.Singleton(NoSettlement)


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
        exits=providers.Callable(to_core.exit_params, config.exits),
    )


def _loop(
    engine: EngineState,
    source: Any,
    execution: Any,
    settlement: Any,
    journal: Any,
    clock: Any,
    outputs: OutputsConfig,
    feed_delay: Callable[[], int] | None = None,
    controls: Callable[[], Sequence[KillSwitch]] | None = None,
) -> EngineLoop:
    return EngineLoop(
        engine,
        source=source,
        execution=execution,
        sink=execution,
        settlement=settlement,
        journal=journal,
        clock=clock,
        equity_sample_ms=outputs.equity_sample_ms,
        feed_delay=feed_delay,
        controls=controls,
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
        _loop,
        services.engine,
        source,
        gateways.execution,
        gateways.settlement,
        journal,
        clock,
        config.outputs,
        providers.Callable(_feed_delay, providers.Callable(to_core.feed_latency, config.venue), config.seed),
    )


def _journal(database: JournalDatabase | None, view: MemoryJournal) -> Journal:
    """The journal a paper or live run writes: Postgres when the run has a database (with the
    in-memory view its report is built from), else the view alone."""
    if database is None:
        return view
    return PostgresJournal(database.connection(), also=view)


def _controls(database: JournalDatabase | None) -> Callable[[], Sequence[KillSwitch]] | None:
    return None if database is None else KillSwitchWatch(database.connection()).poll


class Paper(containers.DeclarativeContainer):
    """Live market data into the inbox, fills from the simulated venue on the wall clock."""

    config = providers.Configuration()
    registry = providers.Dependency(instance_of=MarketRegistry)
    core = providers.Container(Core, config=config)
    gateways = providers.Container(SimGateways, config=config, core=core, registry=registry)
    services = providers.Container(Services, config=config, core=core, registry=registry)
    clock = providers.Singleton(WallClock)
    inbox = providers.Singleton(Inbox)
    #: the journal database (opened by the runner), or None to journal in memory only
    database: providers.Object[JournalDatabase | None] = providers.Object(None)
    view = providers.Singleton(MemoryJournal)
    journal = providers.Singleton(_journal, database, view)
    loop = providers.Singleton(
        _loop,
        services.engine,
        inbox,
        gateways.execution,
        gateways.settlement,
        journal,
        clock,
        config.outputs,
        None,
        providers.Callable(_controls, database),
    )


def _live_source(bus: AckingSource | None, inbox: Inbox) -> Inbox | BusWithInbox:
    """Market data from the bus when the engine has one (venue reports still come by the inbox),
    else everything by the inbox (the market channel feeds it)."""
    return inbox if bus is None else BusWithInbox(bus, inbox)


def _outbox(database: JournalDatabase, incarnation: str) -> PostgresOutbox:
    return PostgresOutbox(database.connection(), incarnation)


class Live(containers.DeclarativeContainer):
    """Live market data and the CLOB: signed orders over REST, fills from the user channel."""

    config = providers.Configuration()
    registry = providers.Dependency(instance_of=MarketRegistry)
    clob = providers.Dependency(instance_of=dict)
    secrets: providers.Dependency[Any] = providers.Dependency()
    core = providers.Container(Core, config=config)
    clock = providers.Singleton(WallClock)
    inbox = providers.Singleton(Inbox)
    #: the journal database, opened by the runner: a live engine always journals to Postgres
    database = providers.Dependency(instance_of=JournalDatabase)
    view = providers.Singleton(MemoryJournal)
    journal = providers.Singleton(_journal, database, view)
    #: names this run of the engine in the outbox (runners/live.py)
    incarnation = providers.Dependency(instance_of=str)
    #: the Redis Streams source of market data and signals, or None for the market WebSocket
    bus: providers.Object[AckingSource | None] = providers.Object(None)
    source = providers.Singleton(_live_source, bus, inbox)
    outbox = providers.Singleton(
        lambda database, incarnation: PostgresOutbox(database.connection(), incarnation),
        database,
        incarnation,
    )
    gateways = providers.Container(
        ClobGateways, clob=clob, core=core, registry=registry, clock=clock, inbox=inbox, secrets=secrets,
        outbox=outbox,
    )  # fmt: skip
    services = providers.Container(Services, config=config, core=core, registry=registry)
    loop = providers.Singleton(
        _loop,
        services.engine,
        source,
        gateways.execution,
        gateways.settlement,
        journal,
        clock,
        config.outputs,
        None,
        providers.Callable(_controls, database),
    )


def _redis_client(connections: Settings, redis: RedisConfig) -> RedisClient:
    return redis_client(connections.redis_url, cluster=redis.cluster)


class Ingest(containers.DeclarativeContainer):
    """`polysnipe ingest`: frames and signals onto the Redis Streams bus. The client connects on its
    first command (runners/ingest.py pings it before anything else)."""

    config = providers.Configuration()
    clock = providers.Singleton(WallClock)
    rng = providers.Singleton(random.Random)
    streams = providers.Singleton(RedisConfig.streams, config.redis)
    #: tests override this with a client of their own (a Redis Cluster, say)
    redis = providers.Singleton(_redis_client, config.connections, config.redis)
    publisher = providers.Singleton(StreamPublisher, redis, streams)
    buffered = providers.Singleton(BufferedPublisher, publisher)
