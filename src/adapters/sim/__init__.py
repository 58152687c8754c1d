"""Simulated venue for backtests (and the engine the CLOB simulator drives): matching, latency,
queue position and fee models, all deterministic under a seeded RNG."""

from polysnipe.adapters.sim.models import (
    ConstantLatency,
    FeeModel,
    JitteredLatency,
    LatencyModel,
    PolymarketFeeModel,
    PowerProbQueueModel,
    QueueModel,
    QueuePosition,
    RiskAverseQueueModel,
)
from polysnipe.adapters.sim.venue import (
    VENUE_ERRORS,
    BookView,
    Ledger,
    MatchingEngine,
    OpenOrder,
    SimVenue,
    SimVenueConfig,
    Trade,
    TradeSide,
)

__all__ = [
    "VENUE_ERRORS",
    "BookView",
    "ConstantLatency",
    "FeeModel",
    "JitteredLatency",
    "LatencyModel",
    "Ledger",
    "MatchingEngine",
    "OpenOrder",
    "PolymarketFeeModel",
    "PowerProbQueueModel",
    "QueueModel",
    "QueuePosition",
    "RiskAverseQueueModel",
    "SimVenue",
    "SimVenueConfig",
    "Trade",
    "TradeSide",
]
