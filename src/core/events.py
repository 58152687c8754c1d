"""Normalized input events: what the engine reacts to, whatever wire format carried them.

Adapters map venue messages to these with pure functions that take the receive time as an argument.
All times are venue epoch milliseconds (`ts_ms`); all prices and sizes are micro-units.

Why NamedTuples rather than attrs classes (the house style for commands and reports): a day of data is
tens of millions of levels and deltas, and a frozen attrs instance costs about 0.6 us to build (one
`object.__setattr__` per field) where a NamedTuple costs 0.15 us (parsers build them with
`tuple.__new__(Cls, fields)`, so the field order below is part of the interface). They stay
immutable and hashable, compare by value and are read by field name, like the attrs classes were.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = [
    "MAX_TS_MS",
    "MIN_TS_MS",
    "BookDelta",
    "BookSnapshot",
    "Event",
    "ExternalSignal",
    "LastTrade",
    "Level",
    "MarketEvent",
    "MarketResolved",
    "PriceChange",
    "Side",
    "TickSizeChange",
]

#: The window of venue timestamps (epoch ms) every boundary accepts, both ends included: the epoch to
#: the last millisecond before 2200-01-01T00:00:00Z. Far beyond any real message, and far below the
#: sentinels schedulers use for "never" (the simulated venue uses 1 << 62), which a hostile timestamp
#: could otherwise reach.
MIN_TS_MS = 0
MAX_TS_MS = 7_258_118_399_999


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


class Level(NamedTuple):
    price: int
    size: int


class BookSnapshot(NamedTuple):
    """A full L2 book for one token (`book` message or REST /book). Levels in any order."""

    ts_ms: int
    token_id: str
    market: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    hash: str = ""
    #: the venue's tick at snapshot time, when the message carries it
    tick_size: int | None = None


class BookDelta(NamedTuple):
    """One level's new total size (0 removes the level). `side` is the resting side: BUY = bid."""

    token_id: str
    side: Side
    price: int
    size: int
    hash: str = ""
    best_bid: int | None = None
    best_ask: int | None = None


class PriceChange(NamedTuple):
    """A batch of level changes sharing one timestamp (one `price_change` message)."""

    ts_ms: int
    market: str
    changes: tuple[BookDelta, ...]


class TickSizeChange(NamedTuple):
    ts_ms: int
    token_id: str
    market: str
    old_tick: int
    new_tick: int


class LastTrade(NamedTuple):
    """A trade printed on the venue (`last_trade_price`). `side` is the taker's side."""

    ts_ms: int
    token_id: str
    market: str
    price: int
    size: int
    side: Side
    fee_rate_bps: int = 0


class ExternalSignal(NamedTuple):
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


class MarketResolved(NamedTuple):
    """A market resolved (`market_resolved`): its winning token pays 1 per share, the other nothing."""

    ts_ms: int
    market: str
    winning_token: str


MarketEvent = BookSnapshot | PriceChange | TickSizeChange | LastTrade | MarketResolved
Event = MarketEvent | ExternalSignal
