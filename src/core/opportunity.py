"""Opportunity: a signal's claim that a trade has edge, before risk and routing look at it."""

from __future__ import annotations

import hashlib

import attrs

from polysnipe.core.events import Side

__all__ = ["Opportunity", "opportunity_id"]


def opportunity_id(strategy: str, token_id: str, side: Side, *parts: object) -> str:
    """Deterministic id from the inputs that define the opportunity.

    The id is the idempotency key everywhere downstream (dedupe, journal, order ids), so the same
    inputs replayed give the same id and a re-delivered event never trades twice.
    """
    raw = "|".join([strategy, token_id, side.name, *map(str, parts)])
    return hashlib.blake2b(raw.encode(), digest_size=12).hexdigest()


@attrs.frozen(slots=True)
class Opportunity:
    id: str
    strategy: str
    market: str  # condition id
    token_id: str
    side: Side
    #: micro-shares the signal would like to trade
    size: int
    #: worst acceptable price (micro-units, on tick)
    limit_price: int
    #: the signal's fair value for the token (micro-units)
    fair_value: int
    #: expected edge per share at the limit price, micro-units (fair - limit for BUY)
    edge: int
    #: 0..1, signal math
    confidence: float
    created_ms: int
    expires_ms: int
    reason: str
    #: carried on every log line and journal row from signal to fill / relayer response
    correlation_id: str
    #: routing hint from the signal ("aggressive", "passive", "iceberg"); the routing config decides
    urgency: str = "aggressive"
    #: legs that must trade together (complement arbitrage): ids of sibling opportunities
    group_id: str = ""
