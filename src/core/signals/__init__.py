"""Signal modules: plug-ins that turn events into Opportunities, registered by name from config.

Importing this package registers the built-in modules, so `build_signals` always knows them.
"""

from __future__ import annotations

from polysnipe.core.signals.base import (
    REGISTRY,
    SignalContext,
    SignalModule,
    build_signals,
    register,
)
from polysnipe.core.signals.liquidity_vacuum import LiquidityVacuum, LiquidityVacuumParams
from polysnipe.core.signals.momentum import Momentum, MomentumParams
from polysnipe.core.signals.spread_hunter import DataQualityFlag, SpreadHunter, SpreadHunterParams

__all__ = [
    "REGISTRY",
    "DataQualityFlag",
    "LiquidityVacuum",
    "LiquidityVacuumParams",
    "Momentum",
    "MomentumParams",
    "SignalContext",
    "SignalModule",
    "SpreadHunter",
    "SpreadHunterParams",
    "build_signals",
    "register",
]

register("spread_hunter", SpreadHunter.from_params)
register("momentum", Momentum.from_params)
register("liquidity_vacuum", LiquidityVacuum.from_params)
