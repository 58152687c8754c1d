"""What the simulated venue remembers: its orders (by hash), its trades (built from the matching
engine's Trade records), the outcome of an order request, and the order log (GET /_sim/orders)."""

from __future__ import annotations

from typing import Any

import attrs

from polysnipe.adapters.sim.venue import Trade, TradeSide
from polysnipe.core.events import Side
from polysnipe.core.market import Market
from polysnipe.core.messages import OrderType

__all__ = ["OrderLogEntry", "Placement", "SimOrder", "SimTrade"]


@attrs.define(slots=True, eq=False)
class SimOrder:
    """An order the venue accepted, with its venue-side state."""

    id: str
    #: the API key that placed it
    owner: str
    #: the EOA of that key: heartbeats, open orders and the user channel are per user
    user: str
    #: `maker` exactly as the order carried it (the wallet holding the funds)
    maker: str
    market: Market
    token_id: str
    side: Side
    price: int
    original_size: int
    order_type: OrderType
    expiration_s: int
    created_ms: int
    size_matched: int = 0
    #: LIVE | MATCHED | CANCELED
    status: str = "LIVE"
    trade_ids: list[str] = attrs.field(factory=list)

    @property
    def remaining(self) -> int:
        return self.original_size - self.size_matched


@attrs.define(slots=True, eq=False)
class SimTrade:
    """One match of the engine (`record`), as the venue shows it: an id, a settlement status, and the
    venue orders on each side."""

    id: str
    record: Trade
    market: Market
    #: the venue order that took; None when replayed (outside) flow did
    taker: SimOrder | None
    #: the venue orders it met, each with its side of the trade (replayed liquidity is not an order)
    makers: list[tuple[SimOrder, TradeSide]]
    match_ms: int
    tx_hash: str
    #: MATCHED -> MINED -> CONFIRMED
    status: str = "MATCHED"
    last_update_ms: int = 0

    @property
    def taken(self) -> TradeSide:
        """The taker's side: the token, side, price and size the trade printed at."""
        return self.record.taker

    def sides(self) -> list[tuple[SimOrder, TradeSide]]:
        """Every venue order of the trade with its part: the taker (when an order) first, then makers."""
        head = [(self.taker, self.record.taker)] if self.taker is not None else []
        return head + self.makers

    def users(self) -> set[str]:
        out = {o.user for o, _ in self.makers}
        if self.taker is not None:
            out.add(self.taker.user)
        return out


@attrs.frozen(slots=True)
class Placement:
    """The outcome of one order request: the order and the trades it took, or the refusal."""

    order_hash: str
    order: SimOrder | None = None
    #: the trades the order made as the taker, in order
    trades: tuple[SimTrade, ...] = ()
    error: str = ""
    #: HTTP status of the refusal when it is the only order of the request (POST /order)
    status: int = 200


@attrs.frozen(slots=True)
class OrderLogEntry:
    """One order request as received (accepted or not): what GET /_sim/orders lists.

    Requests refused before they were authenticated are logged without anything from their body,
    which is never parsed.
    """

    ts_ms: int
    endpoint: str
    order_hash: str
    salt: int | None
    owner: str
    order_type: str
    #: "accepted" | "rejected" | "unauthorized" | "rate_limited" | "fault" | "too_large"
    outcome: str
    error: str = ""
    status: str = ""
    #: the venue carried the request out but its answer never reached the caller (a fault)
    answer_lost: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "ts_ms": self.ts_ms,
            "endpoint": self.endpoint,
            "order_hash": self.order_hash,
            "salt": self.salt,
            "owner": self.owner,
            "order_type": self.order_type,
            "outcome": self.outcome,
            "error": self.error,
            "status": self.status,
            "answer_lost": self.answer_lost,
        }
