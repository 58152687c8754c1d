"""The order lifecycle as a transition table.

Theory of operation
-------------------
The main paths through the table below::

    NEW -sign-> SIGNED -post-> POSTED -accept-> LIVE -partial_fill-> PARTLY_FILLED -fill-> FILLED
    NEW -post-> POSTED                    (backtests: nothing to sign)
    POSTED / LIVE / PARTLY_FILLED -cancel-> CANCELLED, -expire-> EXPIRED; POSTED -reject-> REJECTED
    POSTED -timeout-> UNKNOWN -accept / partial_fill / fill / cancel / expire / reject-> (reconciled)

A backtest posts straight from NEW (there is nothing to sign). Local events (`sign`, `post`,
`cancel_request`, and `cancel` of an order that never left) go through `OrderRecord.fire`; venue
reports go through `OrderRecord.apply`, which maps each ExecutionReport to one event. Every allowed
(state, event) pair is in TRANSITIONS; anything else raises InvalidTransition, because a report the
table does not expect means our view of the order is wrong and must be reconciled, not guessed.

A fill is `partial_fill` or `fill` depending on whether it completes the order's size; a fill that
would take the total past the size raises OverFill. A fill is keyed by its trade id and counted once:
the venue reports a trade several times (MATCHED, MINED, CONFIRMED) and over both REST and WebSocket.

`cancel_request` changes no state: an order is cancelled only when the venue confirms, and until then
it can still fill. A timeout on submission is never "not filled": it moves the order to UNKNOWN,
where fills are allowed and reconciliation later learns the real outcome. Once the venue has spoken
(LIVE, PARTLY_FILLED or terminal) a late timeout carries no news and is absorbed.

Terminal states (FILLED, CANCELLED, EXPIRED, REJECTED) never change again. Reports race on the real
venue, so the table absorbs those that add nothing: a late `accept` after a fill or cancel, a repeated
cancel/expire/reject. A fill reported after CANCELLED or EXPIRED is a match that happened before the
cancel took effect (trade and order messages arrive in any order): it is counted in the filled size,
notional and fees, because the shares really changed hands, but the status stays terminal. A fill
after REJECTED is impossible and raises.
"""

from __future__ import annotations

import enum
from typing import assert_never

import attrs

from polysnipe.core.messages import (
    ExecutionReport,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderStatusUnknown,
)
from polysnipe.core.units import notional

__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "ForeignFill",
    "InvalidTransition",
    "OrderEvent",
    "OrderRecord",
    "OrderStatus",
    "OverFill",
    "next_status",
]


class OrderStatus(enum.Enum):
    NEW = "new"
    SIGNED = "signed"
    POSTED = "posted"
    LIVE = "live"
    PARTLY_FILLED = "partly_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    #: submission timed out: the order may or may not be on the venue until reconciliation says
    UNKNOWN = "unknown"


class OrderEvent(enum.Enum):
    SIGN = "sign"
    POST = "post"
    ACCEPT = "accept"
    #: a fill that leaves part of the order unfilled
    PARTIAL_FILL = "partial_fill"
    #: a fill that completes the order's size
    FILL = "fill"
    CANCEL_REQUEST = "cancel_request"
    CANCEL = "cancel"
    EXPIRE = "expire"
    REJECT = "reject"
    TIMEOUT = "timeout"


class InvalidTransition(Exception):
    def __init__(self, status: OrderStatus, event: OrderEvent) -> None:
        super().__init__(f"no transition from {status.value} on {event.value}")
        self.status = status
        self.event = event


class OverFill(Exception):
    """A fill would take the filled size past the order's size: our view of the order is wrong."""


class ForeignFill(Exception):
    """A fill on another token or side than its order's: applied, it would credit shares the order
    never asked for (the venue's report or our id mapping is wrong)."""


_S = OrderStatus
_E = OrderEvent

TERMINAL = frozenset({_S.FILLED, _S.CANCELLED, _S.EXPIRED, _S.REJECTED})

TRANSITIONS: dict[tuple[OrderStatus, OrderEvent], OrderStatus] = {
    # not yet on the venue: withdrawing it is final without asking anyone
    (_S.NEW, _E.SIGN): _S.SIGNED,
    (_S.NEW, _E.POST): _S.POSTED,
    (_S.NEW, _E.REJECT): _S.REJECTED,
    (_S.NEW, _E.CANCEL): _S.CANCELLED,
    (_S.SIGNED, _E.POST): _S.POSTED,
    (_S.SIGNED, _E.REJECT): _S.REJECTED,
    (_S.SIGNED, _E.CANCEL): _S.CANCELLED,
    # sent, no answer yet: an immediate order can match or be killed before any ack
    (_S.POSTED, _E.ACCEPT): _S.LIVE,
    (_S.POSTED, _E.PARTIAL_FILL): _S.PARTLY_FILLED,
    (_S.POSTED, _E.FILL): _S.FILLED,
    (_S.POSTED, _E.CANCEL_REQUEST): _S.POSTED,
    (_S.POSTED, _E.CANCEL): _S.CANCELLED,
    (_S.POSTED, _E.EXPIRE): _S.EXPIRED,
    (_S.POSTED, _E.REJECT): _S.REJECTED,
    (_S.POSTED, _E.TIMEOUT): _S.UNKNOWN,
    (_S.LIVE, _E.ACCEPT): _S.LIVE,
    (_S.LIVE, _E.PARTIAL_FILL): _S.PARTLY_FILLED,
    (_S.LIVE, _E.FILL): _S.FILLED,
    (_S.LIVE, _E.CANCEL_REQUEST): _S.LIVE,
    (_S.LIVE, _E.CANCEL): _S.CANCELLED,
    (_S.LIVE, _E.EXPIRE): _S.EXPIRED,
    (_S.LIVE, _E.TIMEOUT): _S.LIVE,
    (_S.PARTLY_FILLED, _E.ACCEPT): _S.PARTLY_FILLED,
    (_S.PARTLY_FILLED, _E.PARTIAL_FILL): _S.PARTLY_FILLED,
    (_S.PARTLY_FILLED, _E.FILL): _S.FILLED,
    (_S.PARTLY_FILLED, _E.CANCEL_REQUEST): _S.PARTLY_FILLED,
    (_S.PARTLY_FILLED, _E.CANCEL): _S.CANCELLED,
    (_S.PARTLY_FILLED, _E.EXPIRE): _S.EXPIRED,
    (_S.PARTLY_FILLED, _E.TIMEOUT): _S.PARTLY_FILLED,
    # reconciliation resolves UNKNOWN to whatever the venue says happened
    (_S.UNKNOWN, _E.ACCEPT): _S.LIVE,
    (_S.UNKNOWN, _E.PARTIAL_FILL): _S.PARTLY_FILLED,
    (_S.UNKNOWN, _E.FILL): _S.FILLED,
    (_S.UNKNOWN, _E.CANCEL_REQUEST): _S.UNKNOWN,
    (_S.UNKNOWN, _E.CANCEL): _S.CANCELLED,
    (_S.UNKNOWN, _E.EXPIRE): _S.EXPIRED,
    (_S.UNKNOWN, _E.REJECT): _S.REJECTED,
    (_S.UNKNOWN, _E.TIMEOUT): _S.UNKNOWN,
    # terminal: late or repeated reports that add nothing are absorbed; late fills are counted
    (_S.FILLED, _E.ACCEPT): _S.FILLED,
    (_S.FILLED, _E.TIMEOUT): _S.FILLED,
    (_S.CANCELLED, _E.ACCEPT): _S.CANCELLED,
    (_S.CANCELLED, _E.PARTIAL_FILL): _S.CANCELLED,
    (_S.CANCELLED, _E.FILL): _S.CANCELLED,
    (_S.CANCELLED, _E.CANCEL): _S.CANCELLED,
    (_S.CANCELLED, _E.TIMEOUT): _S.CANCELLED,
    (_S.EXPIRED, _E.ACCEPT): _S.EXPIRED,
    (_S.EXPIRED, _E.PARTIAL_FILL): _S.EXPIRED,
    (_S.EXPIRED, _E.FILL): _S.EXPIRED,
    (_S.EXPIRED, _E.EXPIRE): _S.EXPIRED,
    (_S.EXPIRED, _E.TIMEOUT): _S.EXPIRED,
    (_S.REJECTED, _E.REJECT): _S.REJECTED,
    (_S.REJECTED, _E.TIMEOUT): _S.REJECTED,
}


def next_status(status: OrderStatus, event: OrderEvent) -> OrderStatus:
    try:
        return TRANSITIONS[status, event]
    except KeyError:
        raise InvalidTransition(status, event) from None


_FILL_EVENTS = (OrderEvent.PARTIAL_FILL, OrderEvent.FILL)


@attrs.define(slots=True)
class OrderRecord:
    """One order's lifecycle and fill totals, built from the reports the venue sends about it."""

    request: OrderRequest
    status: OrderStatus = OrderStatus.NEW
    filled_size: int = 0
    #: sum over fills of price * size // 1e6 (USDC micro-units)
    filled_notional: int = 0
    fee_usdc: int = 0
    fee_shares: int = 0
    trade_ids: set[str] = attrs.field(factory=set)
    venue_order_id: str = ""
    cancel_requested: bool = False
    #: the venue's or our reason for the last cancel / reject
    reason: str = ""
    #: sum of price * size, unrounded, so avg_price loses nothing to per-fill rounding
    _fill_value: int = 0

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def remaining(self) -> int:
        return self.request.size - self.filled_size

    @property
    def avg_price(self) -> int:
        """Size-weighted average fill price in micro-units, rounded down; 0 before any fill."""
        return self._fill_value // self.filled_size if self.filled_size else 0

    def mark_posted(self) -> None:
        """The order left for the venue (from NEW in a backtest, from SIGNED live)."""
        self.status = next_status(self.status, OrderEvent.POST)

    def fire(self, event: OrderEvent, reason: str = "") -> None:
        """Apply a local event (sign, post, cancel_request, or cancel/reject of an unsent order).

        Fills only come from the venue, through `apply`, because they carry sizes and trade ids.
        """
        if event in _FILL_EVENTS:
            raise ValueError("fills are applied from OrderFilled reports")
        self.status = next_status(self.status, event)
        if event is OrderEvent.CANCEL_REQUEST:
            self.cancel_requested = True
        elif reason:
            self.reason = reason

    def apply(self, report: ExecutionReport) -> bool:
        """Apply one venue report. Returns False when it changed nothing (a repeated trade id, a
        repeated ack, a late timeout), so the caller forwards each fill to risk exactly once.

        Raises InvalidTransition for a report the current state does not allow, OverFill when a new
        fill would exceed the order's size, ForeignFill for a fill on another token or side (all
        three leave the record unchanged), and ValueError for a report about another order.
        """
        if report.order_id != self.request.order_id:
            raise ValueError(f"report for {report.order_id} applied to {self.request.order_id}")
        old = self.status
        if isinstance(report, OrderFilled):
            return self._fill(report)
        if isinstance(report, OrderAccepted):
            self.status = next_status(old, OrderEvent.ACCEPT)
            if report.venue_order_id and not self.venue_order_id:
                self.venue_order_id = report.venue_order_id
                return True
        elif isinstance(report, OrderCancelled):
            self.status = next_status(old, OrderEvent.CANCEL)
            if self.status is not old:
                self.reason = report.reason
        elif isinstance(report, OrderExpired):
            self.status = next_status(old, OrderEvent.EXPIRE)
        elif isinstance(report, OrderRejected):
            self.status = next_status(old, OrderEvent.REJECT)
            if self.status is not old:
                self.reason = report.venue_message or report.reason
        elif isinstance(report, OrderStatusUnknown):
            self.status = next_status(old, OrderEvent.TIMEOUT)
        else:
            assert_never(report)
        return self.status is not old

    def _fill(self, fill: OrderFilled) -> bool:
        if fill.trade_id in self.trade_ids:
            return False
        request = self.request
        if fill.token_id != request.token_id or fill.side is not request.side:
            raise ForeignFill(
                f"order {request.order_id} ({request.side.name} {request.token_id[:80]}): fill "
                f"{fill.trade_id[:80]} is a {fill.side.name} of {fill.token_id[:80]}"
            )
        filled = self.filled_size + fill.size
        if filled > self.request.size:
            raise OverFill(
                f"order {self.request.order_id}: fill {fill.trade_id} of {fill.size} takes the filled "
                f"size to {filled}, above the order size {self.request.size}"
            )
        event = OrderEvent.FILL if filled == self.request.size else OrderEvent.PARTIAL_FILL
        self.status = next_status(self.status, event)
        self.trade_ids.add(fill.trade_id)
        self.filled_size = filled
        self._fill_value += fill.price * fill.size
        self.filled_notional += notional(fill.price, fill.size)
        self.fee_usdc += fill.fee_usdc
        self.fee_shares += fill.fee_shares
        return True
