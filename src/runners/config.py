"""Engine settings: one frozen section per concern, the embedded default, and the one loader.

The embedded default (what `make demo` runs) is the sections' own defaults: `EngineConfig()`. A TOML
file given with `--config` (or POLYSNIPE_CONFIG) replaces the keys it names, the environment
overrides the `[connections]` keys, and the command line overrides last (`--seed`). Everything is
checked once, here: types, ranges, units, unknown keys (with a "did you mean"), secrets (refused),
and then every section is converted to its core object once (`core_objects.check`), so a value the
core refuses is reported with its file and key before anything runs.

Money and sizes are decimal strings in the file (USDC or shares, `max_order_notional_usdc = "250"`)
and integer micro-units in the sections (`max_order_notional_usdc_micro`); the conversion is exact.
Defaults of the signal, evaluator and routing sections are read from the core's own parameter
classes, so the two never drift apart.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from polysnipe.adapters.clob.config import validate_address, validate_bytes32
from polysnipe.adapters.redis.config import StreamsConfig
from polysnipe.core.evaluators import EvaluatorParams
from polysnipe.core.exit_rules import DEFAULT_RULES, ExitParams, ExitRule
from polysnipe.core.messages import OrderType
from polysnipe.core.risk import RiskPolicy
from polysnipe.core.routing import ImmediateAggressive, PassivePosting
from polysnipe.core.signals.liquidity_vacuum import LiquidityVacuumParams
from polysnipe.core.signals.momentum import MomentumParams
from polysnipe.core.signals.spread_hunter import FAIR_SOURCES, SpreadHunterParams
from polysnipe.core.units import MICRO, format_micro
from polysnipe.runners.core_objects import check
from polysnipe.runners.errors import ConfigError, InputError, Problem
from polysnipe.runners.schema import (
    DEFAULT_SOURCE,
    Bool,
    Choice,
    Float,
    Int,
    Invalid,
    Kind,
    Loader,
    Micro,
    Text,
    dotted,
    env_leaves,
    leaf,
    optional_setting,
    render_toml,
    replace_leaf,
    setting,
    subsection,
    table,
)
from polysnipe.runners.settings import (
    SECRET_ENV,
    SECRET_ENV_PREFIXES,
    Settings,
    looks_secret,
    mask_url,
    url_password,
)
from polysnipe.runners.signer_settings import SignerSettings

__all__ = [
    "CONFIG_ENV",
    "MAX_LATENCY_MS",
    "AggressiveConfig",
    "ByStrategyConfig",
    "ByUrgencyConfig",
    "EngineConfig",
    "EvaluatorsConfig",
    "ExitsConfig",
    "FeeOverrideConfig",
    "IcebergConfig",
    "IngestConfig",
    "LiquidityVacuumConfig",
    "MomentumConfig",
    "OutputsConfig",
    "PassiveConfig",
    "RedisConfig",
    "ResolvedConfig",
    "RiskConfig",
    "RoutingConfig",
    "SignalsConfig",
    "SpreadHunterConfig",
    "StrategyEvaluatorConfig",
    "StrategyEvaluatorsConfig",
    "TreasuryConfig",
    "VenueConfig",
    "WalletConfig",
    "as_sections",
    "check_config_file",
    "load_config",
    "load_settings",
    "render_config",
    "resolve_config",
]

#: the environment variable naming the settings file when no --config is given
CONFIG_ENV: Final = "POLYSNIPE_CONFIG"
_POLICIES: Final = ("aggressive", "passive", "iceberg")
_IMMEDIATE: Final = tuple(t.value for t in OrderType if t.is_immediate)
_USDC = Micro("USDC")
_SHARES = Micro("shares")
_ANY_INT = Int()
_ANY_FLOAT = Float()


def _core(cls: type, name: str) -> Any:
    """The default the core declares for parameter `name` of `cls`: one source of truth for both."""
    return getattr(attrs.fields(cls), name).default


def _core_range(cls: type, name: str, *, micro: bool) -> str:
    """The bounds the core's attrs validators put on `name`, as documentation ("> 0, <= 1").

    Only read for the text `config show` prints: the check itself stays in the core, which refuses
    the value when the settings are loaded (core_objects.check)."""
    validator = getattr(attrs.fields(cls), name).validator
    parts = []
    for v in getattr(validator, "_validators", (validator,)):
        bound, op = getattr(v, "bound", None), getattr(v, "compare_op", None)
        if isinstance(bound, int | float) and isinstance(op, str):
            shown = format_micro(bound) if micro and isinstance(bound, int) else str(bound)
            parts.append(f"{op} {shown}")
    return ", ".join(parts)


def _from_core(cls: type, name: str, kind: Kind, doc: str, *, key: str = "") -> Any:
    """A setting for core parameter `name` of `cls`: the core's default, documented with its range."""
    note = _core_range(cls, name, micro=isinstance(kind, Micro))
    if note and isinstance(kind, Int | Float | Micro):
        kind = attrs.evolve(kind, note=note)
    return setting(_core(cls, name), kind, doc, key=key)


def _usdc(amount: int) -> int:
    return amount * MICRO


def _address(name: str) -> str | None:
    try:
        validate_address(name)
    except ValueError:
        return "expected a wallet address: 0x and 40 hex digits"
    return None


def _condition_id(name: str) -> str | None:
    try:
        validate_bytes32(name)
    except ValueError:
        return "expected a market condition id: 0x and 64 hex digits"
    return None


# -- wallets -------------------------------------------------------------------------------------
@attrs.frozen(slots=True, kw_only=True)
class WalletConfig:
    """A Safe wallet the engine trades with."""

    balance_usdc_micro: int = setting(
        0, Micro("USDC", min=0), "cash (pUSD) the wallet holds when the run starts", key="balance_usdc"
    )


_DEFAULT_WALLET: Final = "0x5afe000000000000000000000000000000000001"


def _default_wallets() -> dict[str, WalletConfig]:
    # one Safe per trader on the platform; the backtest trades one
    return {_DEFAULT_WALLET: WalletConfig(balance_usdc_micro=_usdc(10_000))}


# -- signals -------------------------------------------------------------------------------------
_SH = SpreadHunterParams


@attrs.frozen(slots=True, kw_only=True)
class SpreadHunterConfig:
    """Spread Hunter: asks swept below fair value, holes to post into, and neg-risk baskets whose
    outcomes' asks sum below 1 net of fees."""

    enabled: bool = setting(True, Bool(), "run this module")
    fair_source: str = _from_core(
        _SH, "fair_source", Choice(FAIR_SOURCES),
        '"ewma" (time-decayed mean of microprices and trades) or "microprice" (the previous microprice)',
    )  # fmt: skip
    half_life_ms: int = _from_core(_SH, "half_life_ms", _ANY_INT, "half-life of the fair-value mean")
    trade_weight: float = _from_core(
        _SH, "trade_weight", _ANY_FLOAT,
        'weight of one last-trade print relative to one microprice ("ewma" only; 0 = prints ignored)',
    )  # fmt: skip
    min_observations: int = _from_core(
        _SH,
        "min_observations",
        _ANY_INT,
        "observations a market needs before its fair value is trusted",
    )
    min_edge_ticks: int = _from_core(
        _SH, "min_edge_ticks", _ANY_INT, "edge required beyond the taker fee, in ticks of the book"
    )
    noise_z: float = _from_core(
        _SH, "noise_z", _ANY_FLOAT, 'and at least this many standard errors of the fair value ("ewma")'
    )
    require_sweep: bool = _from_core(
        _SH, "require_sweep", Bool(), "only an ask a seller just swept down to is a snipe"
    )
    sweep_window_ms: int = _from_core(_SH, "sweep_window_ms", _ANY_INT, "how recent that sweep must be")
    max_size_micro: int = _from_core(
        _SH, "max_size_micro", _SHARES, "largest order the module asks for", key="max_size_shares"
    )
    ttl_ms: int = _from_core(_SH, "ttl_ms", _ANY_INT, "lifetime of an aggressive opportunity")
    passive_enabled: bool = _from_core(
        _SH,
        "passive_enabled",
        Bool(),
        "post a bid into the hole a sweep left when the ask is not cheap",
    )
    passive_spread_mult: float = _from_core(
        _SH, "passive_spread_mult", _ANY_FLOAT, "the spread must be this many times its usual width"
    )
    passive_margin_micro: int = _from_core(
        _SH, "passive_margin_micro", _USDC,
        "the post must sit this far (USDC per share) below fair value minus the minimum edge",
        key="passive_margin_usdc",
    )  # fmt: skip
    passive_ttl_ms: int = _from_core(_SH, "passive_ttl_ms", _ANY_INT, "lifetime of a passive post")
    arb_enabled: bool = _from_core(_SH, "arb_enabled", Bool(), "trade neg-risk baskets")
    arb_min_edge_micro: int = _from_core(
        _SH, "arb_min_edge_micro", _USDC, "basket edge beyond the legs' fees, USDC per share of a leg",
        key="arb_min_edge_usdc",
    )  # fmt: skip
    arb_max_size_micro: int = _from_core(
        _SH,
        "arb_max_size_micro",
        _SHARES,
        "largest size of each basket leg",
        key="arb_max_size_shares",
    )
    arb_ttl_ms: int = _from_core(_SH, "arb_ttl_ms", _ANY_INT, "lifetime of a basket opportunity")
    max_data_quality_flags: int = _from_core(
        _SH,
        "max_data_quality_flags",
        _ANY_INT,
        "mispriced-pair flags kept in full (later ones counted)",
    )


_MO = MomentumParams


@attrs.frozen(slots=True, kw_only=True)
class MomentumConfig:
    """Momentum/Event: enters in the direction of external signals (news, social sentiment)."""

    enabled: bool = setting(True, Bool(), "run this module")
    min_edge_ticks: int = _from_core(
        _MO, "min_edge_ticks", _ANY_INT, "edge required at the limit beyond the fee, in ticks"
    )
    min_confidence: float = _from_core(
        _MO, "min_confidence", _ANY_FLOAT, "signals less confident are ignored"
    )
    default_move_ticks: int = _from_core(
        _MO,
        "default_move_ticks",
        _ANY_INT,
        "expected move from the mid when a signal carries no fair price",
    )
    slippage_ticks: int = _from_core(
        _MO, "slippage_ticks", _ANY_INT, "ticks above the best ask the limit may reach"
    )
    max_ttl_ms: int = _from_core(_MO, "max_ttl_ms", _ANY_INT, "longest lifetime of an opportunity")
    max_size_micro: int = _from_core(
        _MO,
        "max_size_micro",
        _SHARES,
        "size at confidence 1, scaled down linearly",
        key="max_size_shares",
    )
    iceberg_min_size_micro: int = _from_core(
        _MO, "iceberg_min_size_micro", _SHARES, "from this size up orders go out as iceberg",
        key="iceberg_min_size_shares",
    )  # fmt: skip


_LV = LiquidityVacuumParams


@attrs.frozen(slots=True, kw_only=True)
class LiquidityVacuumConfig:
    """Liquidity Vacuum: resting depth vanishing on one side ahead of the price jump it announces."""

    enabled: bool = setting(True, Bool(), "run this module")
    n_ticks: int = _from_core(
        _LV, "n_ticks", _ANY_INT, "zone watched: the touch and this many ticks behind it"
    )
    window_ms: int = _from_core(
        _LV, "window_ms", _ANY_INT, "the zone must empty this soon after the touch retreats"
    )
    drop_fraction: float = _from_core(
        _LV,
        "drop_fraction",
        Float(note="> 0, <= 1"),
        "share of the zone's depth that must vanish, net of trades",
    )
    min_depth_micro: int = _from_core(
        _LV, "min_depth_micro", _SHARES, "at least this much depth must vanish", key="min_depth_shares"
    )
    min_pulls: int = _from_core(
        _LV, "min_pulls", _ANY_INT, "separate updates that each pulled the touch back"
    )
    cooldown_ms: int = _from_core(_LV, "cooldown_ms", _ANY_INT, "quiet time per token after a signal")
    jump_ticks: int = _from_core(
        _LV, "jump_ticks", _ANY_INT, "expected repricing beyond the ask, in ticks ..."
    )
    min_jump_micro: int = _from_core(
        _LV, "min_jump_micro", _USDC, "... or at least this much (USDC per share)", key="min_jump_usdc"
    )
    max_size_micro: int = _from_core(_LV, "max_size_micro", _SHARES, "largest order", key="max_size_shares")
    ttl_ms: int = _from_core(_LV, "ttl_ms", _ANY_INT, "lifetime of an opportunity")


@attrs.frozen(slots=True, kw_only=True)
class SignalsConfig:
    """Signal modules: each turns events into opportunities."""

    spread_hunter: SpreadHunterConfig = attrs.field(factory=SpreadHunterConfig, metadata=subsection())
    momentum: MomentumConfig = attrs.field(factory=MomentumConfig, metadata=subsection())
    liquidity_vacuum: LiquidityVacuumConfig = attrs.field(
        factory=LiquidityVacuumConfig, metadata=subsection()
    )


# -- evaluators ----------------------------------------------------------------------------------
_EV = EvaluatorParams


@attrs.frozen(slots=True, kw_only=True)
class StrategyEvaluatorConfig:
    """Thresholds of one strategy; an unset key takes the [evaluators] default."""

    min_edge_micro: int | None = optional_setting(
        Micro("USDC", min=0), "least edge (USDC per share) an opportunity must show",
        unset="default_min_edge_usdc applies", key="min_edge_usdc",
    )  # fmt: skip
    min_confidence: float | None = optional_setting(
        Float(0.0, 1.0), "least confidence", unset="default_min_confidence applies"
    )
    cooldown_ms: int | None = optional_setting(
        Int(min=0), "time after an accepted opportunity before the next on the same token",
        unset="default_cooldown_ms applies",
    )  # fmt: skip


@attrs.frozen(slots=True, kw_only=True)
class StrategyEvaluatorsConfig:
    """Thresholds per strategy."""

    spread_hunter: StrategyEvaluatorConfig = attrs.field(
        factory=StrategyEvaluatorConfig, metadata=subsection("Spread Hunter's thresholds")
    )
    momentum: StrategyEvaluatorConfig = attrs.field(
        factory=StrategyEvaluatorConfig, metadata=subsection("Momentum's thresholds")
    )
    liquidity_vacuum: StrategyEvaluatorConfig = attrs.field(
        factory=StrategyEvaluatorConfig, metadata=subsection("Liquidity Vacuum's thresholds")
    )


@attrs.frozen(slots=True, kw_only=True)
class EvaluatorsConfig:
    """Filters between a signal's claim and the risk gatekeeper: staleness, duplicates, minimum edge and
    confidence, cooldowns."""

    default_min_edge_micro: int = _from_core(
        _EV, "default_min_edge_micro", _USDC, "least edge (USDC per share) of any strategy",
        key="default_min_edge_usdc",
    )  # fmt: skip
    default_min_confidence: float = _from_core(
        _EV, "default_min_confidence", Float(max=1.0), "least confidence of any strategy"
    )
    default_cooldown_ms: int = _from_core(
        _EV, "default_cooldown_ms", _ANY_INT, "per (strategy, token): quiet time after an accepted one"
    )
    dedupe_horizon_ms: int = _from_core(
        _EV, "dedupe_horizon_ms", _ANY_INT, "how long an opportunity id is remembered"
    )
    max_remembered_ids: int = _from_core(
        _EV, "max_remembered_ids", _ANY_INT, "at most this many ids are remembered"
    )
    by_strategy: StrategyEvaluatorsConfig = attrs.field(
        factory=StrategyEvaluatorsConfig, metadata=subsection()
    )


# -- risk ----------------------------------------------------------------------------------------
@attrs.frozen(slots=True, kw_only=True)
class TreasuryConfig:
    """How much of a wallet's cash the engine may commit to open BUY orders."""

    min_free_balance_usdc_micro: int = setting(
        _usdc(500), Micro("USDC", min=0), "cash the wallet always keeps (relayer ops, withdrawals, funding)",
        key="min_free_balance_usdc",
    )  # fmt: skip
    max_utilization_bps: int = setting(
        9_000, Int(0, 10_000), "at most this share of the cash may be reserved by open BUYs (10000 = all)"
    )


def _positive_usdc(default: int, doc: str, key: str) -> Any:
    return setting(_usdc(default), Micro("USDC", min=1), doc, key=key)


@attrs.frozen(slots=True, kw_only=True)
class RiskConfig:
    """The risk gatekeeper's limits: every order is approved, resized or rejected against them."""

    max_order_notional_usdc_micro: int = _positive_usdc(
        250, "largest notional of one order", "max_order_notional_usdc"
    )
    max_market_exposure_usdc_micro: int = _positive_usdc(
        1_500,
        "cost of held shares plus open BUYs, both tokens of a market together",
        "max_market_exposure_usdc",
    )
    max_outcome_exposure_usdc_micro: int = _positive_usdc(
        1_000, "the same for one outcome token", "max_outcome_exposure_usdc"
    )
    max_open_orders: int = setting(40, Int(min=1), "open orders at any time, all wallets")
    max_orders_per_window: int = setting(60, Int(min=1), "submissions in any rate_window_ms (sliding window)")
    rate_window_ms: int = setting(10_000, Int(min=1), "the sliding window of max_orders_per_window")
    daily_loss_limit_usdc_micro: int = setting(
        _usdc(1_500), Micro("USDC", min=0), "realized (UTC day) plus unrealized loss that stops new BUYs",
        key="daily_loss_limit_usdc",
    )  # fmt: skip
    max_book_age_ms: int = setting(
        120_000, Int(min=1), "a book older than this is stale: nothing trades on it"
    )
    allow_resize: bool = setting(True, Bool(), "shrink an order to fit the limits instead of rejecting it")
    max_event_exposure_usdc_micro: int | None = optional_setting(
        Micro("USDC", min=1), "cost held plus open BUYs over every outcome of one neg-risk event",
        unset="max_market_exposure_usdc applies", key="max_event_exposure_usdc",
    )  # fmt: skip
    max_basket_repair_loss_usdc_micro: int = setting(
        _core(RiskPolicy, "max_basket_repair_loss_usdc_micro"), Micro("USDC", min=0),
        "what completing or unwinding a basket whose legs filled unevenly may lose",
        key="max_basket_repair_loss_usdc",
    )  # fmt: skip
    max_open_orders_per_wallet: int | None = optional_setting(
        Int(min=1), "open orders of one wallet (one trader's Safe)", unset="only max_open_orders applies"
    )
    treasury: TreasuryConfig = attrs.field(
        factory=TreasuryConfig, metadata=subsection("treasury policy of every wallet without its own")
    )
    treasury_by_wallet: dict[str, TreasuryConfig] = attrs.field(
        factory=dict,
        metadata=table(
            TreasuryConfig, "treasury policy of one wallet, by address (both keys required)",
            entry_name=_address, complete=True,
        ),
    )  # fmt: skip


# -- routing -------------------------------------------------------------------------------------
@attrs.frozen(slots=True, kw_only=True)
class AggressiveConfig:
    """ImmediateAggressive: cross the spread now with a FAK/FOK limit."""

    slippage_ticks: int = _from_core(
        ImmediateAggressive, "slippage_ticks", Int(note=">= 0"), "ticks past the touch the limit may reach"
    )
    order_type: str = setting(
        _core(ImmediateAggressive, "order_type").value, Choice(_IMMEDIATE),
        '"FAK" (fill what you can, kill the rest) or "FOK" (all or nothing)',
    )  # fmt: skip


@attrs.frozen(slots=True, kw_only=True)
class PassiveConfig:
    """PassivePosting: a post-only GTD order that improves the touch without crossing."""

    improve_ticks: int = _from_core(
        PassivePosting, "improve_ticks", Int(note=">= 0"), "ticks inside the touch"
    )
    ttl_ms: int = _from_core(
        PassivePosting, "ttl_ms", Int(note="> 0"), "the order's GTD lifetime (cut to the opportunity's)"
    )


@attrs.frozen(slots=True, kw_only=True)
class IcebergConfig:
    """Iceberg: child slices with seeded jitter in size and timing that sum exactly to the parent."""

    display_size_micro: int = setting(
        _usdc(40), Micro("shares", note="> 0"), "largest slice shown at a time", key="display_size_shares"
    )
    size_jitter_bps: int = setting(
        2_000, Int(note=">= 0, < 10000"), "each slice shrinks by a uniform 0..this (bps)"
    )
    delay_ms: int = setting(400, Int(note=">= 0"), "time between slices")
    delay_jitter_ms: int = setting(300, Int(note=">= 0"), "uniform +- jitter around delay_ms")
    child: str = setting("aggressive", Choice(("aggressive", "passive")), "the policy that prices each slice")


@attrs.frozen(slots=True, kw_only=True)
class ByUrgencyConfig:
    """The policy for each urgency hint a signal gives its opportunities."""

    aggressive: str = setting("aggressive", Choice(_POLICIES), 'opportunities hinted "aggressive"')
    passive: str = setting("passive", Choice(_POLICIES), 'opportunities hinted "passive"')
    iceberg: str = setting("iceberg", Choice(_POLICIES), 'opportunities hinted "iceberg"')


def _strategy_policy(name: str) -> Any:
    return optional_setting(
        Choice(_POLICIES), f"policy of every {name} opportunity", unset="routed by urgency"
    )


@attrs.frozen(slots=True, kw_only=True)
class ByStrategyConfig:
    """A policy for every opportunity of one strategy, whatever its urgency."""

    spread_hunter: str | None = _strategy_policy("spread_hunter")
    momentum: str | None = _strategy_policy("momentum")
    liquidity_vacuum: str | None = _strategy_policy("liquidity_vacuum")


@attrs.frozen(slots=True, kw_only=True)
class RoutingConfig:
    """How an approved size becomes an order: by strategy, then by urgency hint, then the default."""

    default: str = setting("aggressive", Choice(_POLICIES), "policy when neither rule below applies")
    by_strategy: ByStrategyConfig = attrs.field(factory=ByStrategyConfig, metadata=subsection())
    by_urgency: ByUrgencyConfig = attrs.field(factory=ByUrgencyConfig, metadata=subsection())
    aggressive: AggressiveConfig = attrs.field(factory=AggressiveConfig, metadata=subsection())
    passive: PassiveConfig = attrs.field(factory=PassiveConfig, metadata=subsection())
    iceberg: IcebergConfig = attrs.field(factory=IcebergConfig, metadata=subsection())


# -- simulated venue -----------------------------------------------------------------------------
@attrs.frozen(slots=True, kw_only=True)
class FeeOverrideConfig:
    """A fee schedule that replaces one market's own (replay old data under today's fees, or stress)."""

    rate_micro: int = setting(0, Micro("fee rate", min=0, max=MICRO), 'fee rate, e.g. "0.07"', key="rate")
    exponent: int = setting(1, Int(1, 4), "exponent of p * (1 - p) in the fee formula")


#: the longest simulated delay, as --latency-sweep takes: ten minutes; a delay of 10**26 ms made a
#: backtest silently trade nothing
MAX_LATENCY_MS: Final = 600_000


@attrs.frozen(slots=True, kw_only=True)
class VenueConfig:
    """The simulated venue of backtests and paper trading: latency, queue position and fee models."""

    feed_latency_ms: int = setting(
        6, Int(min=0, max=MAX_LATENCY_MS),
        "delay from the venue publishing a market event to the engine seeing it (backtests; about 6 ms to"
        " first byte measured from Amsterdam, 60-100+ ms from farther regions)",
    )  # fmt: skip
    feed_jitter_ms: int = setting(
        4, Int(min=0, max=MAX_LATENCY_MS), "uniform 0..this added to each market event's delay"
    )
    order_latency_ms: int = setting(
        6,
        Int(min=0, max=MAX_LATENCY_MS),
        "delay from our order to the venue seeing it (the same network path as the feed)",
    )
    ack_latency_ms: int | None = optional_setting(
        Int(min=0, max=MAX_LATENCY_MS),
        "delay from the venue's report to us receiving it",
        unset="same as order_latency_ms",
    )
    latency_jitter_ms: int = setting(
        4,
        Int(min=0, max=MAX_LATENCY_MS),
        "uniform 0..this added to each order and ack delay (0 = constant delays)",
    )
    latency_spike_prob: float = setting(0.0, Float(0.0, 1.0), "chance of a slow spike on a delay")
    latency_spike_ms: int = setting(0, Int(min=0, max=MAX_LATENCY_MS), "size of that spike")
    queue_model: str = setting(
        "prob", Choice(("prob", "risk_averse")),
        '"prob": cancels split between front and back of the queue by a power law; "risk_averse": '
        "only trades move us forward",
    )  # fmt: skip
    queue_power: int = setting(
        2, Int(note=">= 1"), 'power n of the "prob" model: larger sends cancels further back'
    )
    fee_overrides: dict[str, FeeOverrideConfig] = attrs.field(
        factory=dict,
        metadata=table(
            FeeOverrideConfig, "fee schedule by market condition id instead of the market's own (both keys)",
            entry_name=_condition_id, complete=True,
        ),
    )  # fmt: skip


@attrs.frozen(slots=True, kw_only=True)
class OutputsConfig:
    """What a run writes besides the report."""

    equity_sample_ms: int = setting(
        1_000, Int(min=1), "equity and positions are sampled this often for equity.png"
    )


# -- exits ---------------------------------------------------------------------------------------
def _exit_rule_section(name: str, rule: ExitRule, who: str) -> type:
    """The settings of one strategy's exit rule, its defaults being that strategy's (exit_rules.py)."""
    fields = {
        "take_profit": setting(
            rule.take_profit, Bool(), "sell once the best bid reaches the fair value the entry claimed"
        ),
        "stop_loss_micro": setting(
            rule.stop_loss_micro, Micro("price", min=0, max=MICRO),
            'sell once the bid is this far below the lot\'s cost, e.g. "0.03" (0: never)', key="stop_loss",
        ),
        "max_hold_ms": setting(rule.max_hold_ms, Int(min=0), "sell once held this long (0: never)"),
        "exit_before_end_ms": setting(
            rule.exit_before_end_ms, Int(min=0), "sell once the market's end is this near (0: never)"
        ),
        "slippage_ticks": setting(
            rule.slippage_ticks, Int(min=0), "a stop or time exit sells down to this many ticks under the bid"
        ),
    }  # fmt: skip
    doc = f"When {who} lots are sold. Basket legs are held to resolution."
    cls = attrs.make_class(name, fields, frozen=True, slots=True, kw_only=True)
    cls.__doc__ = doc
    return cls


_EXITS = ExitParams()
SpreadHunterExitConfig = _exit_rule_section(
    "SpreadHunterExitConfig", DEFAULT_RULES["spread_hunter"], "Spread Hunter's"
)
MomentumExitConfig = _exit_rule_section("MomentumExitConfig", DEFAULT_RULES["momentum"], "Momentum's")
LiquidityVacuumExitConfig = _exit_rule_section(
    "LiquidityVacuumExitConfig", DEFAULT_RULES["liquidity_vacuum"], "Liquidity Vacuum's"
)
DefaultExitConfig = _exit_rule_section("DefaultExitConfig", _EXITS.default, "other strategies'")


@attrs.frozen(slots=True, kw_only=True)
class ExitsConfig:
    """The position manager: exit rules per strategy, merging complete sets, neg-risk conversions,
    retrying exits."""

    spread_hunter: Any = attrs.field(factory=SpreadHunterExitConfig, metadata=subsection())
    momentum: Any = attrs.field(factory=MomentumExitConfig, metadata=subsection())
    liquidity_vacuum: Any = attrs.field(factory=LiquidityVacuumExitConfig, metadata=subsection())
    default: Any = attrs.field(factory=DefaultExitConfig, metadata=subsection())
    merge_complete_sets: bool = setting(
        True, Bool(), "merge YES+NO held in one market back into USDC (frees the collateral)"
    )
    min_merge_micro: int = setting(
        _EXITS.min_merge_micro, Micro("shares", min=0), "complete sets below this are not merged",
        key="min_merge_shares",
    )  # fmt: skip
    retry_ms: int = setting(_EXITS.retry_ms, Int(min=0), "after an exit that did not fill, wait this long")
    settlement_retry_ms: int = setting(
        _EXITS.settlement_retry_ms,
        Int(min=0),
        "after a merge or conversion the chain side refused, wait this long",
    )
    convert_neg_risk: bool = setting(
        True, Bool(), "convert NO held in several outcomes of a complete neg-risk event into USDC + YES"
    )
    min_convert_micro: int = setting(
        _EXITS.min_convert_micro, Micro("shares", min=0), "NO per outcome below this is not converted",
        key="min_convert_shares",
    )  # fmt: skip


# -- the bus and ingest --------------------------------------------------------------------------
_PROVIDER = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def _key_prefix(text: str) -> str | None:
    if "{" in text or "}" in text or any(c.isspace() for c in text) or len(text) > 128:
        return "expected at most 128 characters without braces or spaces (braces are the hash tags)"
    return None


def _group_name(text: str) -> str | None:
    if not text or len(text) > 128 or any(c.isspace() for c in text):
        return "expected a name of 1 to 128 characters without spaces"
    return None


def _providers(text: str) -> str | None:
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [n for n in names if not _PROVIDER.fullmatch(n)]
    if bad:
        return f"expected comma-separated provider names (a-z, 0-9, _ and -), not {bad[0]!r}"
    return None


@attrs.frozen(slots=True, kw_only=True)
class RedisConfig:
    """The Redis Streams bus (its URL is connections.redis_url): shards, trimming, consumer group."""

    prefix: str = setting(
        "", Text("key prefix", _key_prefix),
        "in front of every key, so several deployments (and test runs) share one server",
        env="POLYSNIPE_REDIS_PREFIX",
    )  # fmt: skip
    cluster: bool = setting(
        False, Bool(), "redis_url is a Redis Cluster node (reads go one stream at a time)",
        env="POLYSNIPE_REDIS_CLUSTER",
    )  # fmt: skip
    shards: int = setting(
        8, Int(1, 4_096), "market-data streams md.0 .. md.<shards-1>; ingest and every engine must agree",
        env="POLYSNIPE_REDIS_SHARDS",
    )  # fmt: skip
    maxlen: int = setting(1_000_000, Int(min=1_000), "approximate cap on each stream's entries")
    dead_maxlen: int = setting(100_000, Int(min=1), "approximate cap on each <stream>.dead")
    group: str = setting("engine", Text("group name", _group_name), "consumer group of the engines")
    batch: int = setting(2_048, Int(1, 100_000), "entries per stream per read")
    block_ms: int = setting(1_000, Int(1, 60_000), "longest wait of one read")
    claim_idle_ms: int = setting(
        30_000, Int(min=1), "an entry pending this long belongs to a dead engine and is taken over"
    )
    claim_every_ms: int = setting(10_000, Int(min=1), "how often an engine looks for such entries")

    def streams(self) -> StreamsConfig:
        """The adapter's config (the one place these keys become it)."""
        return StreamsConfig(
            prefix=self.prefix, shards=self.shards, maxlen=self.maxlen, dead_maxlen=self.dead_maxlen,
            group=self.group, batch=self.batch, block_ms=self.block_ms, claim_idle_ms=self.claim_idle_ms,
            claim_every_ms=self.claim_every_ms,
        )  # fmt: skip


@attrs.frozen(slots=True, kw_only=True)
class IngestConfig:
    """`polysnipe ingest`: the recorder's rotation and the external-signal endpoint. Each provider's
    HMAC key comes from the environment only: POLYSNIPE_SIGNAL_KEY_<NAME> (upper case, - as _)."""

    record_rotate_mb: int = setting(256, Int(min=1), "--record starts a new file past this many MB ...")
    record_rotate_s: int = setting(3_600, Int(min=1), "... or this many seconds")
    signal_providers: str = setting(
        "", Text("provider names", _providers),
        'who may POST signals, comma-separated, e.g. "newswire,x-sentiment" (each needs its key)',
        env="POLYSNIPE_SIGNAL_PROVIDERS",
    )  # fmt: skip
    signal_max_skew_ms: int = setting(
        30_000, Int(1, 3_600_000), "a signed request whose timestamp is further from now is refused"
    )
    signal_max_body_bytes: int = setting(65_536, Int(256, 16_777_216), "largest signal body accepted")
    stale_data_s: int = setting(
        300, Int(min=1), "live: a connection without market data this long (PONGs aside) is reopened"
    )

    def providers(self) -> list[str]:
        return [p.strip() for p in self.signal_providers.split(",") if p.strip()]


# -- the whole -----------------------------------------------------------------------------------
@attrs.frozen(slots=True, kw_only=True)
class EngineConfig:
    """Everything a run is configured with. `EngineConfig()` is the embedded default."""

    seed: int = setting(
        7,
        Int(min=0),
        "seed of the engine's and the simulated venue's random streams (same seed, same report)",
    )
    wallets: dict[str, WalletConfig] = attrs.field(
        factory=_default_wallets,
        metadata=table(
            WalletConfig, "wallets the engine trades, by address; wallets in a file replace this list",
            entry_name=_address, complete=True,
        ),
    )  # fmt: skip
    signals: SignalsConfig = attrs.field(factory=SignalsConfig, metadata=subsection())
    evaluators: EvaluatorsConfig = attrs.field(factory=EvaluatorsConfig, metadata=subsection())
    risk: RiskConfig = attrs.field(factory=RiskConfig, metadata=subsection())
    routing: RoutingConfig = attrs.field(factory=RoutingConfig, metadata=subsection())
    venue: VenueConfig = attrs.field(factory=VenueConfig, metadata=subsection())
    exits: ExitsConfig = attrs.field(factory=ExitsConfig, metadata=subsection())
    outputs: OutputsConfig = attrs.field(factory=OutputsConfig, metadata=subsection())
    redis: RedisConfig = attrs.field(factory=RedisConfig, metadata=subsection())
    ingest: IngestConfig = attrs.field(factory=IngestConfig, metadata=subsection())
    connections: Settings = attrs.field(factory=Settings, metadata=subsection())
    signer: SignerSettings = attrs.field(factory=SignerSettings, metadata=subsection())


def as_sections(config: EngineConfig) -> dict[str, Any]:
    """What a container's `config.from_dict` takes: one typed section (or value) per top-level key,
    so each provider hands its section to its conversion in core_objects."""
    return {f.name: getattr(config, f.name) for f in attrs.fields(EngineConfig)}


# -- loading -------------------------------------------------------------------------------------
@attrs.frozen(slots=True)
class ResolvedConfig:
    """The effective config and where each value came from (dotted key -> source; unlisted = default)."""

    config: EngineConfig
    sources: Mapping[str, str]
    #: the settings file read, if any
    path: Path | None


def _read_toml(path: Path) -> dict[str, Any]:
    if path.exists() and not path.is_dir() and not path.is_file():
        # a pipe would wait for a writer for ever, /dev/zero would never end
        raise InputError(path, "is not a regular file (a pipe or a device); --config takes a TOML file")
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise InputError(
            path, "settings file not found; check the path given to --config or POLYSNIPE_CONFIG"
        ) from None
    except IsADirectoryError:
        raise InputError(path, "is a directory; --config takes a TOML file") from None
    except OSError as exc:
        raise InputError(path, f"cannot read the settings file: {exc.strerror}") from None
    try:
        return tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text (byte {exc.start}); a settings file is TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem(str(path), "", f"not valid TOML: {exc}")]) from None


def _secrets(raw: Mapping[str, Any], loader: Loader, path: str = "") -> None:
    """Refuse secret-looking keys anywhere, and URLs carrying a password: a file is no place for them."""
    for key, value in raw.items():
        here = dotted(path, key)
        if looks_secret(key):
            loader.problem(
                here,
                "secrets are never read from a file: remove it and set it in the environment "
                "(polysnipe config show lists the variables secrets come from)",
            )
        elif isinstance(value, Mapping):
            _secrets(value, loader, here)
        elif isinstance(value, str) and url_password(value):
            loader.problem(
                here, f"{mask_url(value)} carries a password; give the URL in the environment "
                "(or the password in ~/.pgpass), never in a file",
            )  # fmt: skip


def _from_file(base: EngineConfig, raw: Mapping[str, Any], source: str) -> tuple[EngineConfig, Loader]:
    loader = Loader(source, EngineConfig)
    _secrets(raw, loader)
    if loader.problems:
        return base, loader
    return loader.section(EngineConfig, raw, base, ""), loader


def _from_env(
    base: EngineConfig, env: Mapping[str, str]
) -> tuple[EngineConfig, list[Problem], dict[str, str]]:
    problems: list[Problem] = []
    sources: dict[str, str] = {}
    config = base
    for keys, spec in env_leaves(EngineConfig):
        text = env.get(spec.env, "")
        if text == "":
            continue
        assert spec.kind is not None
        try:
            value = spec.kind.parse_env(text)
        except Invalid as exc:
            problems.append(Problem(f"environment variable {spec.env}", "", str(exc)))
            continue
        config = replace_leaf(config, keys, value)
        sources[".".join(keys)] = f"environment {spec.env}"
    return config, problems, sources


def _cross_checks(config: EngineConfig) -> list[tuple[str, str]]:
    """(key, problem) for what no single value shows: relations between sections."""
    out: list[tuple[str, str]] = []
    if not config.wallets:
        out.append(("wallets", 'no wallet: add one, e.g. [wallets."0x…"] with balance_usdc = "1000"'))
    for wallet in config.risk.treasury_by_wallet:
        if wallet not in config.wallets:
            out.append((dotted("risk.treasury_by_wallet", wallet), "names a wallet that is not in [wallets]"))
    return out


def resolve_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, tuple[object, str]] | None = None,
) -> ResolvedConfig:
    """The effective config: defaults, then the file at `path` (default: $POLYSNIPE_CONFIG), then the
    environment, then `overrides` ({dotted key: (value, source label)}, e.g. {"seed": (3, "--seed")}).

    Raises ConfigError with every problem found, or InputError when the file cannot be read.
    """
    env = os.environ if env is None else env
    if path is None and env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
    config = EngineConfig()
    sources: dict[str, str] = {}
    problems: list[Problem] = []
    if path is not None:
        config, loader = _from_file(config, _read_toml(path), str(path))
        problems += loader.problems
        sources.update(loader.sources)
    config, env_problems, env_sources = _from_env(config, env)
    problems += env_problems
    sources.update(env_sources)
    for key, (value, label) in (overrides or {}).items():
        found = leaf(EngineConfig, key.split("."))
        if found is None:
            raise KeyError(f"no setting {key!r}")  # a caller's bug, not the user's
        kind = found[2].kind
        assert kind is not None
        try:
            config = replace_leaf(config, key.split("."), kind.parse(value))
        except Invalid as exc:
            problems.append(Problem(label, "", str(exc)))
            continue
        sources[key] = label
    if problems:
        raise ConfigError(problems)
    later = [Problem(_source(key, sources), key, message) for key, message in _cross_checks(config)]
    later += [attrs.evolve(p, source=_source(p.key, sources)) for p in check(config)]
    if later:
        raise ConfigError(later)
    return ResolvedConfig(config, dict(sources), path)


def _source(key: str, sources: Mapping[str, str]) -> str:
    """Who set `key` or the innermost table around it, else who set another key of its section (a
    problem between two keys), else nobody did: the embedded defaults."""
    section = key.rpartition(".")[0]
    while key:
        if key in sources:
            return sources[key]
        key = key.rpartition(".")[0]
    siblings = [source for k, source in sources.items() if k.rpartition(".")[0] == section]
    return siblings[0] if siblings else "embedded defaults"


def load_config(path: Path | None = None, *, env: Mapping[str, str] | None = None) -> EngineConfig:
    """The effective EngineConfig: defaults, the settings file, the environment (see resolve_config)."""
    return resolve_config(path, env=env).config


def load_settings(env: Mapping[str, str] | None = None, toml_path: Path | None = None) -> Settings:
    """The `[connections]` settings of the file at `toml_path` (default $POLYSNIPE_CONFIG) and the
    environment. The whole file is checked: a file is valid or it is not."""
    return resolve_config(toml_path, env=env).config.connections


def check_config_file(path: Path) -> EngineConfig:
    """Check one settings file against the embedded defaults alone (the environment is not read)."""
    return resolve_config(path, env={}).config


def render_config(resolved: ResolvedConfig, env: Mapping[str, str] | None = None) -> str:
    """The effective settings as TOML: every key documented, with its source at the end of its line.
    The text loads back to the same settings; secrets are only said to be set or not."""
    env = os.environ if env is None else env
    lines = [
        "# polysnipe settings: the effective value of every key and where it came from",
        f"# ({DEFAULT_SOURCE}, the settings file, the environment or the command line).",
        f"# settings file: {resolved.path if resolved.path is not None else 'none (embedded defaults)'}",
        '# Money and sizes are decimal strings in USDC or shares ("0.05"); times are in ms.',
    ]
    lines += render_toml(resolved.config, resolved.sources)
    lines += ["", "# secrets: read from the environment only, never printed"]
    lines += [f"#   {name}: {'set' if env.get(name) else 'not set'}" for name in SECRET_ENV]
    from polysnipe.core.book import book_implementation, compiled_available
    from polysnipe.runners.implementation import PURE_PYTHON_ENV

    built = "built" if compiled_available() else "not built"
    lines += [
        "",
        f"# order book: {book_implementation()} (compiled extension {built}; {PURE_PYTHON_ENV}=1: Python)",
    ]
    known = [spec.env for _, spec in env_leaves(EngineConfig)] + [CONFIG_ENV, PURE_PYTHON_ENV, *SECRET_ENV]
    stray = sorted(
        name for name in env
        if name.startswith("POLYSNIPE_") and name not in known and not name.startswith(SECRET_ENV_PREFIXES)
    )  # fmt: skip
    if stray:
        lines += ["", "# set in the environment but read by no setting (a test or tool may read it):"]
        for name in stray:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
            lines.append(f"#   {name}" + (f": did you mean {close[0]}?" if close else ""))
    return "\n".join(lines) + "\n"
