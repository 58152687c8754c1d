"""Engine configuration: the embedded default, TOML overrides, and builders for the core pieces.

Money in config files is written as decimal strings in USDC or shares ("500", "0.05") and converted to
micro-units here, once, by exact parsing.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_CONFIG", "deep_merge", "load_config"]

#: The embedded default: what `make demo` runs. Every key can be overridden from a TOML file.
DEFAULT_CONFIG: dict[str, Any] = {
    "seed": 7,
    "wallets": {
        # one Safe per trader on the platform; the backtest trades one
        "0x5afe000000000000000000000000000000000001": {"balance_usdc": "10000"},
    },
    "signals": {
        "spread_hunter": {},
        "momentum": {},
        "liquidity_vacuum": {},
    },
    "evaluators": {},
    "risk": {
        "max_order_notional_usdc": "250",
        "max_market_exposure_usdc": "1500",
        "max_outcome_exposure_usdc": "1000",
        "max_open_orders": 40,
        "max_orders_per_window": 60,
        "rate_window_ms": 10_000,
        "daily_loss_limit_usdc": "1500",
        "max_book_age_ms": 120_000,
        "treasury": {"min_free_balance_usdc": "500", "max_utilization_bps": 9000},
    },
    "routing": {
        "default": "aggressive",
        "by_urgency": {"aggressive": "aggressive", "passive": "passive", "iceberg": "iceberg"},
        "aggressive": {"slippage_ticks": 2, "order_type": "FAK"},
        "passive": {"improve_ticks": 1, "ttl_ms": 30_000},
        "iceberg": {
            "display_size_shares": "40",
            "size_jitter_bps": 2000,
            "delay_ms": 400,
            "delay_jitter_ms": 300,
            "child": "aggressive",
        },
    },
    "venue": {
        "order_latency_ms": 4,
        "latency_jitter_ms": 3,
        "queue_model": "prob",
        "queue_power": 2.0,
    },
    "equity_sample_ms": 1000,
}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_config(path: Path | None) -> dict[str, Any]:
    """The embedded default, with the TOML file at `path` merged over it."""
    if path is None:
        return copy.deepcopy(DEFAULT_CONFIG)
    with path.open("rb") as fh:
        return deep_merge(DEFAULT_CONFIG, tomllib.load(fh))
