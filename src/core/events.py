"""Normalized input events: what the engine reacts to, whatever wire format carried them.

Adapters map venue messages to these with pure functions that take the receive time as an argument.
All times are venue epoch milliseconds (`ts_ms`); all prices and sizes are micro-units.
"""

from __future__ import annotations

import enum

import attrs

__all__ = [
    "BookDelta",
    "BookSnapshot",
    "Event",
    "ExternalSignal",
    "LastTrade",
    "Level",
    "MarketEvent",
    "PriceChange",
    "Side",
    "TickSizeChange",
]


class Side(enum.IntEnum):
    """Order side; the values are the V2 signed order's `side` field (0 = BUY, 1 = SELL)."""

    BUY = 0
    SELL = 1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        """+1 for BUY (position grows), -1 for SELL."""
        return 1 if self is Side.BUY else -1


@attrs.frozen(slots=True)
class Level:
    price: int
    size: int


@attrs.frozen(slots=True)
class BookSnapshot:
    """A full L2 book for one token (`book` message or REST /book). Levels in any order."""

    ts_ms: int
    token_id: str
    market: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    hash: str = ""
    #: the venue's tick at snapshot time, when the message carries it
    tick_size: int | None = None


@attrs.frozen(slots=True)
class BookDelta:
    """One level's new total size (0 removes the level). `side` is the resting side: BUY = bid."""

    token_id: str
    side: Side
    price: int
    size: int
    hash: str = ""
    best_bid: int | None = None
    best_ask: int | None = None


@attrs.frozen(slots=True)
class PriceChange:
    """A batch of level changes sharing one timestamp (one `price_change` message)."""

    ts_ms: int
    market: str
    changes: tuple[BookDelta, ...]


@attrs.frozen(slots=True)
class TickSizeChange:
    ts_ms: int
    token_id: str
    market: str
    old_tick: int
    new_tick: int


@attrs.frozen(slots=True)
class LastTrade:
    """A trade printed on the venue (`last_trade_price`). `side` is the taker's side."""

    ts_ms: int
    token_id: str
    market: str
    price: int
    size: int
    side: Side
    fee_rate_bps: int = 0


@attrs.frozen(slots=True)
class ExternalSignal:
    """News or social input for the Momentum/Event module (schema: docs/external-signals.md).

    `direction` is +1 (outcome more likely) or -1; `fair_price`, when the source gives one, is its
    estimate of the token's value in micro-units. `confidence` is signal math, hence a float.
    """

    ts_ms: int
    token_id: str
    source: str
    direction: int
    confidence: float
    ttl_ms: int
    fair_price: int | None = None
    ref: str = ""


MarketEvent = BookSnapshot | PriceChange | TickSizeChange | LastTrade
Event = MarketEvent | ExternalSignal
