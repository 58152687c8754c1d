"""Gamma wire types (GET /markets, GET /events), as recorded in shared/data/polymarket/rest.

Gamma spells fields in camelCase and sends some lists as JSON-encoded strings inside the JSON
(`clobTokenIds`, `outcomes`: `"[\\"Yes\\", \\"No\\"]"`). Decimal fields are kept as their raw JSON
text and read exactly by parsing.py. Only what the engine uses is declared; the rest is ignored.
"""

from __future__ import annotations

import msgspec

__all__ = ["WireEventRef", "WireFeeSchedule", "WireGammaEvent", "WireGammaMarket"]


class WireFeeSchedule(msgspec.Struct, gc=False, rename="camel"):
    """`feeSchedule` of a fee-enabled market: fee = C * rate * (p(1-p))^exponent (PROTOCOL.md 11.1)."""

    #: fee rate as a JSON number, e.g. 0.04
    rate: msgspec.Raw
    exponent: int = 1
    #: only takers pay (the venue's rule; recorded true everywhere)
    taker_only: bool = True
    #: share of the fees paid back to makers, e.g. 0.25 (empty when absent)
    rebate_rate: msgspec.Raw = msgspec.Raw()


class WireEventRef(msgspec.Struct, gc=False):
    """One of a Gamma market's `events`: the event it belongs to."""

    #: Gamma's event id (a decimal string in every recording; a number in some SDKs' fixtures)
    id: str | int | None = None


class WireGammaMarket(msgspec.Struct, gc=False, rename="camel"):
    """One market of Gamma GET /markets, or of an event's `markets`."""

    condition_id: str
    #: the two token ids in the outcomes' order: a JSON-encoded list (the API) or a list (some SDKs)
    clob_token_ids: str | list[str] | None = None
    #: the outcome names, likewise
    outcomes: str | list[str] | None = None
    #: decimals as raw JSON text; empty when absent
    order_price_min_tick_size: msgspec.Raw = msgspec.Raw()
    order_min_size: msgspec.Raw = msgspec.Raw()
    neg_risk: bool | None = None
    #: Gamma's spelling: ...MarketID
    neg_risk_market_id: str | None = msgspec.field(default=None, name="negRiskMarketID")
    #: the placeholder "Other" market of an augmented event
    neg_risk_other: bool | None = None
    #: the outcome's name inside its event
    group_item_title: str | None = None
    active: bool | None = None
    closed: bool | None = None
    accepting_orders: bool | None = None
    fees_enabled: bool | None = None
    fee_type: str | None = None
    fee_schedule: WireFeeSchedule | None = None
    #: ISO 8601 time the market is scheduled to end
    end_date: str | None = None
    question: str | None = None
    #: seconds the venue holds a marketable order before matching it (sports markets: 3)
    seconds_delay: int | None = None
    #: the events the market belongs to (a neg-risk market's event is asked for by this id)
    events: list[WireEventRef] | None = None


class WireGammaEvent(msgspec.Struct, gc=False, rename="camel"):
    """One event of Gamma GET /events: a neg-risk event and the markets that make it up."""

    #: each a WireGammaMarket, decoded alone so that one malformed member refuses only itself
    markets: list[msgspec.Raw]
    id: str | None = None
    neg_risk: bool | None = None
    enable_neg_risk: bool | None = None
    neg_risk_market_id: str | None = msgspec.field(default=None, name="negRiskMarketID")
    #: the event can gain outcomes later: its current outcomes are not a complete set
    neg_risk_augmented: bool | None = None
    active: bool | None = None
    closed: bool | None = None
    title: str | None = None
