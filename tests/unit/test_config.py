"""Typed settings: what a file, the environment and the command line may say, and what is refused."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from polysnipe.adapters.sim.models import (
    FeedLatency,
    JitteredLatency,
    PolymarketFeeModel,
    PowerProbQueueModel,
)
from polysnipe.core.evaluators import EvaluatorParams
from polysnipe.core.messages import OrderType
from polysnipe.core.risk import RiskPolicy, TreasuryPolicy
from polysnipe.core.routing import Iceberg, ImmediateAggressive, PassivePosting
from polysnipe.core.signals import (
    LiquidityVacuumParams,
    MomentumParams,
    SpreadHunter,
    SpreadHunterParams,
)
from polysnipe.runners import core_objects
from polysnipe.runners.config import (
    EngineConfig,
    LiquidityVacuumConfig,
    MomentumConfig,
    RiskConfig,
    SpreadHunterConfig,
    check_config_file,
    load_settings,
    render_config,
    resolve_config,
)
from polysnipe.runners.errors import ConfigError, InputError
from polysnipe.runners.schema import Micro, iter_leaves, spec_of
from polysnipe.runners.settings import Settings

WALLET = "0x5afe000000000000000000000000000000000001"
OTHER = "0x00000000000000000000000000000000000000aa"


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        resolve_config(path, env=env or {})
    return err.value.lines()


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> EngineConfig:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return resolve_config(path, env=env or {}).config


# -- the embedded default ------------------------------------------------------------------------
def test_the_embedded_default_builds_the_core_objects_make_demo_runs_with() -> None:
    c = EngineConfig()
    assert 7 == c.seed
    assert {WALLET: 10_000_000_000} == core_objects.venue_balances(c.wallets)
    assert RiskPolicy(
        max_order_notional_usdc_micro=250_000_000,
        max_market_exposure_usdc_micro=1_500_000_000,
        max_outcome_exposure_usdc_micro=1_000_000_000,
        max_open_orders=40,
        max_orders_per_window=60,
        rate_window_ms=10_000,
        daily_loss_limit_usdc_micro=1_500_000_000,
        max_book_age_ms=120_000,
        treasury=TreasuryPolicy(min_free_balance_usdc_micro=500_000_000, max_utilization_bps=9_000),
    ) == core_objects.risk_policy(c.risk)
    router = core_objects.router(c.routing)
    aggressive = ImmediateAggressive(slippage_ticks=2, order_type=OrderType.FAK)
    assert {
        "aggressive": aggressive,
        "passive": PassivePosting(improve_ticks=1, ttl_ms=30_000),
        "iceberg": Iceberg(
            display_size_micro=40_000_000,
            size_jitter_bps=2_000,
            delay_ms=400,
            delay_jitter_ms=300,
            child=aggressive,
        ),
    } == dict(router.policies)
    assert JitteredLatency(order_ms=6, ack_ms=6, jitter_ms=4) == core_objects.latency_model(c.venue)
    assert FeedLatency(base_ms=6, jitter_ms=4) == core_objects.feed_latency(c.venue)
    assert PowerProbQueueModel(power=2) == core_objects.queue_model(c.venue)
    assert PolymarketFeeModel() == core_objects.fee_model(c.venue)
    assert EvaluatorParams() == core_objects.evaluator_params(c.evaluators)
    names = [m.name for m in core_objects.signal_modules(c.signals)]
    assert ["spread_hunter", "momentum", "liquidity_vacuum"] == names
    assert [] == core_objects.check(c)


@pytest.mark.parametrize(
    ("section", "params"),
    [
        (SpreadHunterConfig, SpreadHunterParams),
        (MomentumConfig, MomentumParams),
        (LiquidityVacuumConfig, LiquidityVacuumParams),
    ],
)
def test_every_core_signal_parameter_has_a_setting_with_the_core_default(section: type, params: type) -> None:
    settings = {f.name for f in attrs.fields(section)} - {"enabled"}
    assert {f.name for f in attrs.fields(params)} == settings
    builders: dict[type, Callable[[Any], object]] = {
        SpreadHunterConfig: core_objects.spread_hunter_params,
        MomentumConfig: core_objects.momentum_params,
        LiquidityVacuumConfig: core_objects.liquidity_vacuum_params,
    }
    build = builders[section]
    assert params() == build(section())


def test_every_risk_policy_field_has_a_setting() -> None:
    # size_step_micro is the venue's 2-decimal size grid (PROTOCOL.md 3.1), not a choice
    core = {f.name for f in attrs.fields(RiskPolicy)} - {"size_step_micro"}
    assert core == {f.name for f in attrs.fields(RiskConfig)}


def test_per_wallet_and_event_risk_limits_reach_the_policy(tmp_path: Path) -> None:
    c = load(tmp_path, '[risk]\nmax_event_exposure_usdc = "800"\nmax_open_orders_per_wallet = 5\n')
    policy = core_objects.risk_policy(c.risk)
    assert (800_000_000, 5, 10_000_000) == (
        policy.max_event_exposure_usdc_micro,
        policy.max_open_orders_per_wallet,
        policy.max_basket_repair_loss_usdc_micro,
    )


def test_every_setting_is_documented_and_money_carries_its_unit_in_the_file_key() -> None:
    for key, field, spec, _ in iter_leaves(EngineConfig(wallets={WALLET: EngineConfig().wallets[WALLET]})):
        assert spec.doc.strip(), key
        if isinstance(spec.kind, Micro) and spec.kind.unit in ("USDC", "shares"):
            assert field.name.endswith("_micro"), key
            assert key.endswith("_usdc" if spec.kind.unit == "USDC" else "_shares"), key


# -- what a file may say -------------------------------------------------------------------------
def test_a_file_replaces_only_the_keys_it_names(tmp_path: Path) -> None:
    c = load(
        tmp_path, '[risk]\nmax_order_notional_usdc = "12.5"\n[routing.iceberg]\ndisplay_size_shares = 25\n'
    )
    assert 12_500_000 == c.risk.max_order_notional_usdc_micro
    assert 25_000_000 == c.routing.iceberg.display_size_micro
    assert EngineConfig().risk.max_open_orders == c.risk.max_open_orders


def test_wallets_in_a_file_replace_the_default_list(tmp_path: Path) -> None:
    c = load(tmp_path, f'[wallets."{OTHER}"]\nbalance_usdc = "42.000001"\n')
    assert {OTHER: 42_000_001} == core_objects.venue_balances(c.wallets)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('seed = "abc"', 'c.toml: seed: expected a whole number, got the string "abc"'),
        (
            'seed = "12"',
            'c.toml: seed: expected a whole number, got the string "12"; write it without quotes: 12',
        ),
        ("[venu]\norder_latency_ms = 1", "c.toml: [venu]: unknown section; did you mean [venue]?"),
        (
            '[venue]\nqueue_model = "fifo-typo"',
            'c.toml: venue.queue_model: must be one of "prob", "risk_averse", got "fifo-typo"',
        ),
        ('[venue]\nqueue_model = "risk_avers"', 'did you mean "risk_averse"?'),
        (
            "[risk]\nmax_order_notional_usdc = 0.05",
            "c.toml: risk.max_order_notional_usdc: a float cannot hold USDC exactly; "
            'write it as a string, e.g. "0.05"',
        ),
        (
            '[risk]\nmax_order_notional_usdc = "-5"',
            'risk.max_order_notional_usdc: must be more than 0 USDC, got "-5"',
        ),
        ("[risk]\nmax_open_orders = -3", "c.toml: risk.max_open_orders: must be at least 1, got -3"),
        (
            "[risk]\nmax_utilization_bps = 9000",
            "c.toml: risk.max_utilization_bps: unknown key in [risk]; "
            "did you mean risk.treasury.max_utilization_bps?",
        ),
        (
            "[risk.treasury]\nmax_utilization_bps = 10001",
            "risk.treasury.max_utilization_bps: must be at most 10000",
        ),
        (
            '[risk]\nmax_order_notional = "4"',
            "risk.max_order_notional: unknown key; did you mean risk.max_order_notional_usdc?",
        ),
        (
            "[signals.momentum]\nmax_size_micro = 5",
            "signals.momentum.max_size_micro: unknown key: the file takes USDC and shares as decimal "
            'strings, not micro-units; write max_size_shares = "1.5" (shares) instead',
        ),
        (
            "equity_sample_ms = 5",
            "c.toml: equity_sample_ms: unknown key in the top level; did you mean outputs.equity_sample_ms?",
        ),
        (
            "[venue]\nqueue_power = 2.0",
            "venue.queue_power: expected a whole number, got 2.0; write it without the decimal point: 2",
        ),
        ('[signals.spread_hunter]\nmax_size_shares = "1.0000001"', "at most 6 decimals"),
        ('[signals.spread_hunter]\nmax_size_shares = "١٢"', "at most 6 decimals"),
        ('[signals.spread_hunter]\nenabled = "true"', "write it without quotes: true"),
        ("[signals.spread_hunter]\nnoise_z = nan", "signals.spread_hunter.noise_z: must be a finite number"),
        ("risk = 5", "c.toml: risk: is a section, not a single value; write it as [risk] with keys below it"),
        ("[seed]\nx = 1", "c.toml: seed: is a single value (whole number >= 0), not a section"),
        (
            '[wallets.bob]\nbalance_usdc = "1"',
            "c.toml: wallets.bob: expected a wallet address: 0x and 40 hex digits",
        ),
        (
            f'[wallets."{OTHER}"]\n',
            f"c.toml: wallets.{OTHER}.balance_usdc: missing: every entry of this table",
        ),
        ("[wallets]\n", "c.toml: wallets: no wallet: add one"),
        (
            f'[risk.treasury_by_wallet."{OTHER}"]\nmin_free_balance_usdc = "1"\nmax_utilization_bps = 1',
            f"c.toml: risk.treasury_by_wallet.{OTHER}: names a wallet that is not in [wallets]",
        ),
        ("[connections]\nchain_id = 1", "c.toml: connections.chain_id: must be one of 137, 80002, got 1"),
        (
            '[connections]\nclob_url = "clob.polymarket.com"',
            "connections.clob_url: expected a https:// or http:// URL",
        ),
        (
            '[connections]\nbuilder_code = "0x12"',
            "connections.builder_code: expected bytes32: 0x and 64 hex digits",
        ),
    ],
)
def test_a_mistake_is_one_line_naming_the_file_the_key_and_the_fix(
    tmp_path: Path, text: str, expected: str
) -> None:
    lines = problems(tmp_path, text + "\n")
    assert 1 == len(lines), lines
    assert expected in lines[0]


def test_every_mistake_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    lines = problems(tmp_path, 'seed = "abc"\n[venu]\nx = 1\n[risk]\nmax_open_orders = 0\n')
    assert ["seed", "[venu]", "risk.max_open_orders"] == [line.split(": ")[1] for line in lines]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[signals.spread_hunter]\nhalf_life_ms = -5",
            "c.toml: signals.spread_hunter.half_life_ms: -5 is refused by SpreadHunterParams: "
            "'half_life_ms' must be > 0: -5",
        ),
        (
            '[signals.liquidity_vacuum]\nmax_size_shares = "0"',
            'c.toml: signals.liquidity_vacuum.max_size_shares: "0" is refused by LiquidityVacuumParams',
        ),
        (
            "[signals.liquidity_vacuum]\ndrop_fraction = 1.5",
            "signals.liquidity_vacuum.drop_fraction: 1.5 is refused",
        ),
        # values that turned the fair value or the edge into infinity mid-run (an internal error), or
        # made every zone read loop for ever
        ("[signals.spread_hunter]\nnoise_z = 1e308", "signals.spread_hunter.noise_z: 1e+308 is refused"),
        (
            "[signals.spread_hunter]\ntrade_weight = 1e308",
            "signals.spread_hunter.trade_weight: 1e+308 is refused",
        ),
        (
            "[signals.liquidity_vacuum]\nn_ticks = 1000000000000",
            "signals.liquidity_vacuum.n_ticks: 1000000000000 is refused",
        ),
        (
            "[routing.iceberg]\nsize_jitter_bps = 12000",
            "routing.iceberg.size_jitter_bps: 12000 is refused by Iceberg",
        ),
        ("[routing.passive]\nttl_ms = 0", "routing.passive.ttl_ms: 0 is refused by PassivePosting"),
        ("[venue]\nqueue_power = 0", "c.toml: venue.queue_power: 0 is refused by PowerProbQueueModel"),
        (
            "[evaluators]\ndedupe_horizon_ms = 0",
            "evaluators.dedupe_horizon_ms: 0 is refused by EvaluatorParams",
        ),
        (
            "[connections]\nsignature_type = 2",
            'c.toml: connections.funder: "" is refused by ClobConfig: '
            "signature type POLY_GNOSIS_SAFE needs a funder",
        ),
    ],
)
def test_a_value_the_core_refuses_is_reported_at_its_file_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    lines = problems(tmp_path, text + "\n")
    assert 1 == len(lines), lines
    assert expected in lines[0]


@pytest.mark.parametrize(
    "text",
    [
        'private_key = "0x01"',
        '[connections]\napi_secret = "x"',
        '[signals.spread_hunter]\nclob_api_passphrase = "x"',
        '[connections]\ndatabase_url = "postgresql://trader:hunter2@db/journal"',
    ],
)
def test_secrets_are_never_read_from_a_file_nor_echoed(tmp_path: Path, text: str) -> None:
    lines = problems(tmp_path, text + "\n")
    assert 1 == len(lines)
    assert "never" in lines[0] and "environment" in lines[0]
    assert "hunter2" not in lines[0]


def test_a_file_that_cannot_be_read_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="settings file not found"):
        resolve_config(tmp_path / "missing.toml", env={})
    with pytest.raises(InputError, match="is a directory"):
        resolve_config(tmp_path, env={})
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(InputError, match="not UTF-8"):
        resolve_config(tmp_path / "bin.toml", env={})
    [line] = problems(tmp_path, "a = [\n")
    assert line.startswith(f"{tmp_path / 'c.toml'}: not valid TOML: ")


# -- the environment and the command line --------------------------------------------------------
def test_the_environment_overrides_the_file_and_each_source_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('seed = 3\n[connections]\nclob_url = "http://file:1"\nchain_id = 80002\n')
    env = {"POLYSNIPE_CLOB_URL": "http://env:2", "POLYSNIPE_CONFIG": "/ignored/when/a/path/is/given.toml"}
    r = resolve_config(path, env=env, overrides={"seed": (11, "command line --seed")})
    assert "http://env:2" == r.config.connections.clob_url
    assert 80002 == r.config.connections.chain_id
    assert 11 == r.config.seed
    assert "environment POLYSNIPE_CLOB_URL" == r.sources["connections.clob_url"]
    assert str(path) == r.sources["connections.chain_id"]
    assert "command line --seed" == r.sources["seed"]
    assert "risk.max_open_orders" not in r.sources


def test_polysnipe_config_names_the_file_when_no_path_is_given(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("seed = 5\n")
    assert 5 == resolve_config(None, env={"POLYSNIPE_CONFIG": str(path)}).config.seed


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"POLYSNIPE_CHAIN_ID": "abc"},
            'environment variable POLYSNIPE_CHAIN_ID: expected a whole number, got "abc"',
        ),
        ({"POLYSNIPE_CHAIN_ID": "١٣٧"}, "environment variable POLYSNIPE_CHAIN_ID: expected a whole number"),
        ({"POLYSNIPE_SIGNATURE_TYPE": "7"}, "POLYSNIPE_SIGNATURE_TYPE: must be one of 0, 1, 2, 3, got 7"),
        ({"POLYSNIPE_FUNDER": "bob"}, "POLYSNIPE_FUNDER: expected address: 0x and 40 hex digits"),
        (
            {"POLYSNIPE_DATABASE_URL": "mysql://u:hunter2@db/x"},
            'POLYSNIPE_DATABASE_URL: expected a postgresql:// or postgres:// URL, got "mysql://u:***@db/x"',
        ),
        # URLs the client libraries would refuse only at the first connection, as an internal error
        ({"POLYSNIPE_DATABASE_URL": "postgresql://db:5432/x?foo=1"}, 'invalid URI query parameter: "foo"'),
        ({"POLYSNIPE_DATABASE_URL": "postgresql://db:99999/x"}, "Port out of range"),
        ({"POLYSNIPE_REDIS_URL": "redis://r:6379/0?foo=1"}, "unexpected keyword argument 'foo'"),
        ({"POLYSNIPE_REDIS_URL": "redis://r:6379/0?socket_timeout=abc"}, "socket_timeout"),
        ({"POLYSNIPE_REDIS_URL": "redis://r:6379/abc"}, "the database number 'abc' is not a number"),
        ({"POLYSNIPE_CLOB_URL": "http://a\x01b"}, "holds no control characters"),
    ],
)
def test_a_bad_environment_value_names_the_variable(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_config(None, env=env)
    [line] = err.value.lines()
    assert expected in line


def test_load_settings_reads_the_connections_section_then_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[connections]\nredis_url = "redis://file:6379/1"\nchain_id = 80002\n')
    s = load_settings({"POLYSNIPE_CHAIN_ID": "137", "POLYSNIPE_CLOB_PRIVATE_KEY": "0xdead"}, path)
    assert Settings(redis_url="redis://file:6379/1", chain_id=137) == s


def test_check_config_file_ignores_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text("seed = 1\n")
    monkeypatch.setenv("POLYSNIPE_CHAIN_ID", "abc")
    assert 1 == check_config_file(path).seed


# -- what the sections become --------------------------------------------------------------------
def test_signals_can_be_switched_off_and_keep_their_order(tmp_path: Path) -> None:
    c = load(
        tmp_path, "[signals.momentum]\nenabled = false\n[signals.spread_hunter]\nrequire_sweep = false\n"
    )
    modules = core_objects.signal_modules(c.signals)
    assert ["spread_hunter", "liquidity_vacuum"] == [m.name for m in modules]
    assert isinstance(modules[0], SpreadHunter) and not modules[0].params.require_sweep


def test_per_strategy_thresholds_and_routes(tmp_path: Path) -> None:
    c = load(
        tmp_path,
        '[evaluators.by_strategy.momentum]\nmin_edge_usdc = "0.02"\ncooldown_ms = 500\n'
        "[evaluators.by_strategy.spread_hunter]\nmin_confidence = 0.6\n"
        '[routing.by_strategy]\nmomentum = "passive"\n[routing.by_urgency]\niceberg = "aggressive"\n',
    )
    params = core_objects.evaluator_params(c.evaluators)
    assert {"momentum": 20_000} == params.min_edge_micro
    assert {"momentum": 500} == params.cooldown_ms
    assert {"spread_hunter": 0.6} == params.min_confidence
    router = core_objects.router(c.routing)
    assert router.policies["passive"] is router._by_strategy["momentum"]
    assert router.policies["aggressive"] is router._by_urgency["iceberg"]


def test_venue_models_follow_the_venue_section(tmp_path: Path) -> None:
    cid = "0x" + "ab" * 32
    c = load(
        tmp_path,
        '[venue]\nlatency_jitter_ms = 0\nack_latency_ms = 9\nqueue_model = "risk_averse"\n'
        f'[venue.fee_overrides."{cid}"]\nrate = "0.07"\nexponent = 2\n',
    )
    latency = core_objects.latency_model(c.venue)
    assert (6, 9) == (latency.order_latency_ms(None), latency.ack_latency_ms(None))  # type: ignore[arg-type]
    assert "RiskAverseQueueModel" == type(core_objects.queue_model(c.venue)).__name__
    assert PolymarketFeeModel(overrides={cid: (70_000, 2)}) == core_objects.fee_model(c.venue)


# -- config show ---------------------------------------------------------------------------------
def _show(tmp_path: Path, text: str, env: dict[str, str]) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return render_config(resolve_config(path, env=env), env=env)


def test_show_prints_every_key_with_its_documentation_and_source(tmp_path: Path) -> None:
    env = {"POLYSNIPE_REDIS_URL": "redis://env:1/0", "POLYSNIPE_CLOB_PRIVATE_KEY": "0x" + "11" * 32}
    text = _show(tmp_path, "[risk]\nmax_open_orders = 9\n", env)
    lines = text.splitlines()
    assert f"max_open_orders = 9  # {tmp_path / 'c.toml'}" in lines
    assert 'redis_url = "redis://env:1/0"  # environment POLYSNIPE_REDIS_URL' in lines
    assert "max_orders_per_window = 60  # default" in lines
    doc = lines[lines.index("max_orders_per_window = 60  # default") - 1]
    assert doc.startswith("# submissions in any rate_window_ms") and doc.endswith("[whole number >= 1]")
    assert "#   POLYSNIPE_CLOB_PRIVATE_KEY: set" in lines
    assert "11" * 32 not in text


def test_show_points_at_a_misspelt_environment_variable(tmp_path: Path) -> None:
    text = _show(tmp_path, "", {"POLYSNIPE_CLOB_ULR": "http://x", "POLYSNIPE_ORDER_VECTORS": "v.json"})
    assert "#   POLYSNIPE_CLOB_ULR: did you mean POLYSNIPE_CLOB_URL?" in text.splitlines()
    assert "#   POLYSNIPE_ORDER_VECTORS" in text.splitlines()


def test_show_never_prints_a_password_from_the_environment(tmp_path: Path) -> None:
    env = {"POLYSNIPE_DATABASE_URL": "postgresql://trader:hunter2@db:5432/journal"}
    text = _show(tmp_path, "", env)
    assert "hunter2" not in text
    assert (
        'database_url = "postgresql://trader:***@db:5432/journal"  # environment POLYSNIPE_DATABASE_URL'
        in text
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        f'seed = 9\n[wallets."{OTHER}"]\nbalance_usdc = "5.5"\n[risk.treasury_by_wallet."{OTHER}"]\n'
        'min_free_balance_usdc = "1"\nmax_utilization_bps = 100\n[venue]\nack_latency_ms = 1\n'
        '[routing.by_strategy]\nmomentum = "iceberg"\n[signals.liquidity_vacuum]\nenabled = false\n',
    ],
)
def test_what_show_prints_loads_back_to_the_same_settings(tmp_path: Path, text: str) -> None:
    shown = _show(tmp_path, text, {"POLYSNIPE_CLOB_URL": "http://127.0.0.1:8080"})
    again = tmp_path / "again.toml"
    again.write_text(shown)
    assert tomllib.loads(shown)  # valid TOML
    assert resolve_config(
        tmp_path / "c.toml", env={"POLYSNIPE_CLOB_URL": "http://127.0.0.1:8080"}
    ).config == (resolve_config(again, env={}).config)


@given(st.integers(-(10**15), 10**15))
def test_money_round_trips_exactly_through_its_text(micro: int) -> None:
    kind = Micro("USDC")
    assert micro == kind.parse(tomllib.loads(f"x = {kind.render(micro)}")["x"])


def _leaf_specs() -> list[Any]:
    return [spec_of(f) for f in attrs.fields(Settings)]


def test_every_connection_setting_has_its_environment_variable() -> None:
    assert all(spec.env.startswith("POLYSNIPE_") for spec in _leaf_specs())


def test_signing_threads_come_from_the_environment_and_are_range_checked() -> None:
    """The workers signing a basket's legs in a live run (README, Latency)."""
    assert -1 == resolve_config(None, env={}).config.connections.signing_threads
    threads = resolve_config(None, env={"POLYSNIPE_SIGNING_THREADS": "0"}).config.connections.signing_threads
    assert 0 == threads
    with pytest.raises(ConfigError, match="POLYSNIPE_SIGNING_THREADS"):
        resolve_config(None, env={"POLYSNIPE_SIGNING_THREADS": "-2"})
