"""The one place where typed settings become core objects (and the simulated venue's models).

Each function takes one section of `EngineConfig` and builds its core counterpart keyword by keyword.
The core validates its own parameters; when it refuses one, the ValueError becomes a ConfigError
naming the key as the file spells it (`signals.spread_hunter.max_size_shares`), so the message a user
reads points at the line to change. `check` runs them all once, when the settings are loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs
from attrs import AttrsInstance

from polysnipe.adapters.clob.config import ClobConfig
from polysnipe.adapters.signer_client.config import SignerClientConfig
from polysnipe.adapters.sim.models import (
    ConstantLatency,
    FeedLatency,
    FeeModel,
    JitteredLatency,
    LatencyModel,
    PolymarketFeeModel,
    PowerProbQueueModel,
    QueueModel,
    RiskAverseQueueModel,
)
from polysnipe.core.evaluators import EvaluatorParams
from polysnipe.core.exit_rules import ExitParams, ExitRule
from polysnipe.core.messages import OrderType
from polysnipe.core.portfolio import Portfolio
from polysnipe.core.risk import RiskPolicy, RiskState, TreasuryPolicy
from polysnipe.core.routing import Iceberg, ImmediateAggressive, PassivePosting, Router, RoutingPolicy
from polysnipe.core.signals import (
    LiquidityVacuum,
    LiquidityVacuumParams,
    Momentum,
    MomentumParams,
    SpreadHunter,
    SpreadHunterParams,
    liquidity_vacuum,
    momentum,
    spread_hunter,
)
from polysnipe.core.signals.base import SignalModule
from polysnipe.runners.errors import ConfigError, Problem
from polysnipe.runners.schema import dotted, file_key, spec_of

if TYPE_CHECKING:  # config imports this module to check what it loads
    from polysnipe.runners.config import (
        EngineConfig,
        EvaluatorsConfig,
        ExitsConfig,
        LiquidityVacuumConfig,
        MomentumConfig,
        RiskConfig,
        RoutingConfig,
        SignalsConfig,
        SpreadHunterConfig,
        TreasuryConfig,
        VenueConfig,
        WalletConfig,
    )
    from polysnipe.runners.settings import Settings

__all__ = [
    "STRATEGIES",
    "check",
    "clob_config",
    "evaluator_params",
    "exit_params",
    "fee_model",
    "feed_latency",
    "latency_model",
    "liquidity_vacuum_params",
    "momentum_params",
    "queue_model",
    "risk_policy",
    "risk_state",
    "router",
    "signal_modules",
    "spread_hunter_params",
    "treasury_policy",
    "venue_balances",
]

_T = TypeVar("_T")
#: the built-in signal modules, in the order the engine runs them
STRATEGIES: Final = (spread_hunter.NAME, momentum.NAME, liquidity_vacuum.NAME)
#: how a problem found while converting names its source; `config.resolve_config` replaces it
_SOURCE = "settings"


def _culprit(cls: Callable[..., Any], kwargs: Mapping[str, Any], message: str) -> str | None:
    """The keyword argument the core refused: the one whose own validator fails, else the one the
    message names (checks made after construction, e.g. in __attrs_post_init__)."""
    if isinstance(cls, type) and attrs.has(cls):
        for field in attrs.fields(cls):
            name: str = field.alias or field.name
            if name not in kwargs or field.validator is None:
                continue
            try:
                field.validator(None, field, kwargs[name])
            except (ValueError, TypeError):
                return name
    for name in sorted(kwargs, key=len, reverse=True):
        if re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message):
            return name
    return None


def _make(
    cls: Callable[..., _T], where: str, section: AttrsInstance, renames: Mapping[str, str], **kwargs: Any
) -> _T:
    """`cls(**kwargs)`; a refusal becomes a ConfigError at `where` + the refused key. `renames` maps
    a keyword of `cls` to the attribute of `section` it comes from, where the names differ."""
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        name = _culprit(cls, kwargs, str(exc))
        key, shown = where, ""
        attr = renames.get(name, name) if name is not None else None
        field = getattr(attrs.fields(type(section)), attr, None) if attr is not None else None
        if field is not None:
            spec = spec_of(field)
            key = dotted(where, file_key(field))
            value = getattr(section, field.name)
            if spec.kind is not None and value is not None:
                shown = f"{spec.kind.render(value)} "
        what = getattr(cls, "__name__", "the engine")
        raise ConfigError([Problem(_SOURCE, key, f"{shown}is refused by {what}: {exc}")]) from exc


# -- signals -------------------------------------------------------------------------------------
def spread_hunter_params(c: SpreadHunterConfig) -> SpreadHunterParams:
    return _make(
        SpreadHunterParams, "signals.spread_hunter", c, {},
        fair_source=c.fair_source,
        half_life_ms=c.half_life_ms,
        trade_weight=c.trade_weight,
        min_observations=c.min_observations,
        min_edge_ticks=c.min_edge_ticks,
        noise_z=c.noise_z,
        require_sweep=c.require_sweep,
        sweep_window_ms=c.sweep_window_ms,
        max_size_micro=c.max_size_micro,
        ttl_ms=c.ttl_ms,
        passive_enabled=c.passive_enabled,
        passive_spread_mult=c.passive_spread_mult,
        passive_margin_micro=c.passive_margin_micro,
        passive_ttl_ms=c.passive_ttl_ms,
        arb_enabled=c.arb_enabled,
        arb_min_edge_micro=c.arb_min_edge_micro,
        arb_max_size_micro=c.arb_max_size_micro,
        arb_ttl_ms=c.arb_ttl_ms,
        max_data_quality_flags=c.max_data_quality_flags,
    )  # fmt: skip


def momentum_params(c: MomentumConfig) -> MomentumParams:
    return _make(
        MomentumParams, "signals.momentum", c, {},
        min_edge_ticks=c.min_edge_ticks,
        min_confidence=c.min_confidence,
        default_move_ticks=c.default_move_ticks,
        slippage_ticks=c.slippage_ticks,
        max_ttl_ms=c.max_ttl_ms,
        max_size_micro=c.max_size_micro,
        iceberg_min_size_micro=c.iceberg_min_size_micro,
    )  # fmt: skip


def liquidity_vacuum_params(c: LiquidityVacuumConfig) -> LiquidityVacuumParams:
    return _make(
        LiquidityVacuumParams, "signals.liquidity_vacuum", c, {},
        n_ticks=c.n_ticks,
        window_ms=c.window_ms,
        drop_fraction=c.drop_fraction,
        min_depth_micro=c.min_depth_micro,
        min_pulls=c.min_pulls,
        cooldown_ms=c.cooldown_ms,
        jump_ticks=c.jump_ticks,
        min_jump_micro=c.min_jump_micro,
        max_size_micro=c.max_size_micro,
        ttl_ms=c.ttl_ms,
    )  # fmt: skip


def signal_modules(signals: SignalsConfig) -> list[SignalModule]:
    """The enabled modules, always in the order of STRATEGIES."""
    modules: list[SignalModule] = []
    if signals.spread_hunter.enabled:
        modules.append(SpreadHunter(spread_hunter_params(signals.spread_hunter)))
    if signals.momentum.enabled:
        modules.append(Momentum(momentum_params(signals.momentum)))
    if signals.liquidity_vacuum.enabled:
        modules.append(LiquidityVacuum(liquidity_vacuum_params(signals.liquidity_vacuum)))
    return modules


# -- evaluators ----------------------------------------------------------------------------------
def evaluator_params(c: EvaluatorsConfig) -> EvaluatorParams:
    per = {name: getattr(c.by_strategy, name) for name in STRATEGIES}
    return _make(
        EvaluatorParams, "evaluators", c, {},
        min_edge_micro={n: s.min_edge_micro for n, s in per.items() if s.min_edge_micro is not None},
        default_min_edge_micro=c.default_min_edge_micro,
        min_confidence={n: s.min_confidence for n, s in per.items() if s.min_confidence is not None},
        default_min_confidence=c.default_min_confidence,
        cooldown_ms={n: s.cooldown_ms for n, s in per.items() if s.cooldown_ms is not None},
        default_cooldown_ms=c.default_cooldown_ms,
        dedupe_horizon_ms=c.dedupe_horizon_ms,
        max_remembered_ids=c.max_remembered_ids,
    )  # fmt: skip


# -- risk ----------------------------------------------------------------------------------------
def treasury_policy(c: TreasuryConfig, where: str = "risk.treasury") -> TreasuryPolicy:
    return _make(
        TreasuryPolicy, where, c, {},
        min_free_balance_usdc_micro=c.min_free_balance_usdc_micro,
        max_utilization_bps=c.max_utilization_bps,
    )  # fmt: skip


def risk_policy(c: RiskConfig) -> RiskPolicy:
    by_wallet = {
        wallet: treasury_policy(t, dotted("risk.treasury_by_wallet", wallet))
        for wallet, t in c.treasury_by_wallet.items()
    }
    return _make(
        RiskPolicy, "risk", c, {},
        max_order_notional_usdc_micro=c.max_order_notional_usdc_micro,
        max_market_exposure_usdc_micro=c.max_market_exposure_usdc_micro,
        max_outcome_exposure_usdc_micro=c.max_outcome_exposure_usdc_micro,
        max_open_orders=c.max_open_orders,
        max_orders_per_window=c.max_orders_per_window,
        rate_window_ms=c.rate_window_ms,
        daily_loss_limit_usdc_micro=c.daily_loss_limit_usdc_micro,
        max_book_age_ms=c.max_book_age_ms,
        allow_resize=c.allow_resize,
        max_event_exposure_usdc_micro=c.max_event_exposure_usdc_micro,
        max_basket_repair_loss_usdc_micro=c.max_basket_repair_loss_usdc_micro,
        max_open_orders_per_wallet=c.max_open_orders_per_wallet,
        treasury=treasury_policy(c.treasury),
        treasury_by_wallet=by_wallet,
    )  # fmt: skip


def risk_state(wallets: Mapping[str, WalletConfig]) -> RiskState:
    return RiskState(Portfolio.of(venue_balances(wallets)))


def venue_balances(wallets: Mapping[str, WalletConfig]) -> dict[str, int]:
    """Cash per wallet in the simulated venue's ledger: the same the risk state starts from."""
    return {w: c.balance_usdc_micro for w, c in wallets.items()}


# -- routing -------------------------------------------------------------------------------------
def router(c: RoutingConfig) -> Router:
    aggressive = _make(
        ImmediateAggressive, "routing.aggressive", c.aggressive, {},
        slippage_ticks=c.aggressive.slippage_ticks,
        order_type=OrderType(c.aggressive.order_type),
    )  # fmt: skip
    passive = _make(
        PassivePosting, "routing.passive", c.passive, {},
        improve_ticks=c.passive.improve_ticks,
        ttl_ms=c.passive.ttl_ms,
    )  # fmt: skip
    slices: RoutingPolicy = aggressive if c.iceberg.child == "aggressive" else passive
    iceberg = _make(
        Iceberg, "routing.iceberg", c.iceberg, {},
        display_size_micro=c.iceberg.display_size_micro,
        size_jitter_bps=c.iceberg.size_jitter_bps,
        delay_ms=c.iceberg.delay_ms,
        delay_jitter_ms=c.iceberg.delay_jitter_ms,
        child=slices,
    )  # fmt: skip
    policies: dict[str, RoutingPolicy] = {"aggressive": aggressive, "passive": passive, "iceberg": iceberg}
    by_strategy = {n: p for n in STRATEGIES if (p := getattr(c.by_strategy, n)) is not None}
    by_urgency = {u: getattr(c.by_urgency, u) for u in ("aggressive", "passive", "iceberg")}
    return _make(Router, "routing", c, {}, policies=policies, default=c.default,
                 by_strategy=by_strategy, by_urgency=by_urgency)  # fmt: skip


# -- simulated venue -----------------------------------------------------------------------------
_LATENCY_RENAMES = {
    "order_ms": "order_latency_ms",
    "ack_ms": "ack_latency_ms",
    "jitter_ms": "latency_jitter_ms",
    "spike_prob": "latency_spike_prob",
    "spike_ms": "latency_spike_ms",
}


def latency_model(c: VenueConfig) -> LatencyModel:
    """Constant delays, unless jitter or spikes are asked for."""
    ack = c.order_latency_ms if c.ack_latency_ms is None else c.ack_latency_ms
    if c.latency_jitter_ms or c.latency_spike_prob:
        return _make(
            JitteredLatency, "venue", c, _LATENCY_RENAMES,
            order_ms=c.order_latency_ms, ack_ms=ack, jitter_ms=c.latency_jitter_ms,
            spike_prob=c.latency_spike_prob, spike_ms=c.latency_spike_ms,
        )  # fmt: skip
    return _make(ConstantLatency, "venue", c, _LATENCY_RENAMES, order_ms=c.order_latency_ms, ack_ms=ack)


def feed_latency(c: VenueConfig) -> FeedLatency:
    return _make(
        FeedLatency, "venue", c, {"base_ms": "feed_latency_ms", "jitter_ms": "feed_jitter_ms"},
        base_ms=c.feed_latency_ms, jitter_ms=c.feed_jitter_ms,
    )  # fmt: skip


def queue_model(c: VenueConfig) -> QueueModel:
    if c.queue_model == "risk_averse":
        return RiskAverseQueueModel()
    return _make(PowerProbQueueModel, "venue", c, {"power": "queue_power"}, power=c.queue_power)


def fee_model(c: VenueConfig) -> FeeModel:
    overrides = {cid: (f.rate_micro, f.exponent) for cid, f in c.fee_overrides.items()}
    return _make(PolymarketFeeModel, "venue.fee_overrides", c, {}, overrides=overrides)


# -- connections ---------------------------------------------------------------------------------
def clob_config(c: Settings) -> ClobConfig:
    """The CLOB adapter's config from the connection settings (timeouts keep the adapter's defaults)."""
    return _make(
        ClobConfig, "connections", c, {"host": "clob_url"},
        host=c.clob_url, chain_id=c.chain_id, builder_code=c.builder_code,
        signature_type=c.signature_type, funder=c.funder or None,
    )  # fmt: skip


def signer_client_config(c: Settings) -> SignerClientConfig | None:
    """Where `polysnipe run` has its orders signed: None in process, else the signing server."""
    if not c.signer_url:
        return None
    if not c.signer_key:
        problem = "is needed with signer_url: the managed key that signs the orders (signer keys list)"
        raise ConfigError([Problem(_SOURCE, "connections.signer_key", problem)])
    return SignerClientConfig(url=c.signer_url, order_key=c.signer_key)


def exit_params(c: ExitsConfig) -> ExitParams:
    def rule(r: Any, key: str) -> ExitRule:
        return _make(
            ExitRule, key, r, {},
            take_profit=r.take_profit,
            stop_loss_micro=r.stop_loss_micro,
            max_hold_ms=r.max_hold_ms,
            exit_before_end_ms=r.exit_before_end_ms,
            slippage_ticks=r.slippage_ticks,
        )  # fmt: skip

    rules = {name: rule(getattr(c, name), f"exits.{name}") for name in STRATEGIES}
    return _make(
        ExitParams, "exits", c, {},
        rules=rules,
        default=rule(c.default, "exits.default"),
        merge_complete_sets=c.merge_complete_sets,
        min_merge_micro=c.min_merge_micro,
        retry_ms=c.retry_ms,
        settlement_retry_ms=c.settlement_retry_ms,
        convert_neg_risk=c.convert_neg_risk,
        min_convert_micro=c.min_convert_micro,
    )  # fmt: skip


def check(config: EngineConfig) -> list[Problem]:
    """Every conversion run once: the problems the core finds in otherwise well-typed settings."""
    problems: list[Problem] = []
    steps: list[Callable[[], object]] = [
        lambda: signal_modules(config.signals),
        lambda: evaluator_params(config.evaluators),
        lambda: risk_policy(config.risk),
        lambda: router(config.routing),
        lambda: exit_params(config.exits),
        lambda: latency_model(config.venue),
        lambda: feed_latency(config.venue),
        lambda: queue_model(config.venue),
        lambda: fee_model(config.venue),
        lambda: clob_config(config.connections),
    ]
    for build in steps:
        try:
            build()
        except ConfigError as exc:
            problems += exc.problems
    return problems
