"""Commands (imperative) and execution reports (past tense) exchanged between core and runners.

Handlers in the core return commands; runners perform them through ports and feed the resulting
reports back in as events. All frozen slotted attrs classes, all amounts in micro-units.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from polysnipe.core.events import Event, Side
from polysnipe.core.opportunity import Opportunity

__all__ = [
    "TRADE_STATUSES",
    "VENUE_CONDITIONS",
    "CancelOrder",
    "Command",
    "ConvertPositions",
    "ExecutionReport",
    "Input",
    "KillSwitch",
    "Liquidity",
    "MergePositions",
    "OrderAccepted",
    "OrderCancelled",
    "OrderExpired",
    "OrderFilled",
    "OrderRejected",
    "OrderRequest",
    "OrderStatusUnknown",
    "OrderType",
    "OutcomeKind",
    "PlaceOrder",
    "PositionsConverted",
    "PositionsMerged",
    "PositionsRedeemed",
    "RaiseAlert",
    "RecordError",
    "RecordFill",
    "RecordKillSwitch",
    "RecordOpportunity",
    "RecordOrderStatus",
    "RecordOutcome",
    "RecordRiskDecision",
    "RedeemPositions",
    "SettlementRefused",
    "SettlementReport",
    "SourceItem",
    "Tick",
    "TradeSettlement",
    "VenueCondition",
]


class OrderType(enum.Enum):
    GTC = "GTC"
    GTD = "GTD"
    FOK = "FOK"
    FAK = "FAK"

    @property
    def is_immediate(self) -> bool:
        return self in (OrderType.FOK, OrderType.FAK)


class Liquidity(enum.Enum):
    MAKER = "maker"
    TAKER = "taker"


@attrs.frozen(slots=True)
class OrderRequest:
    """An order the engine wants on the venue. Adapters turn it into a signed CLOB V2 order.

    `order_id` is deterministic (opportunity id + child index), and the signing salt derives from it,
    so a retried submission is byte-for-byte the same order and can never fill twice.
    """

    order_id: str
    opportunity_id: str
    correlation_id: str
    strategy: str
    routing: str
    wallet: str
    market: str
    token_id: str
    side: Side
    price: int
    size: int
    order_type: OrderType
    tick_size: int
    neg_risk: bool
    post_only: bool = False
    #: GTD expiry in ms epoch; 0 = none
    expiration_ms: int = 0
    parent_id: str = ""


# -- commands ------------------------------------------------------------------------------------
@attrs.frozen(slots=True)
class PlaceOrder:
    order: OrderRequest
    ts_ms: int


@attrs.frozen(slots=True)
class CancelOrder:
    order_id: str
    reason: str
    ts_ms: int
    correlation_id: str = ""


@attrs.frozen(slots=True)
class RecordOpportunity:
    """An opportunity the engine tracks, journaled before anything else is recorded about it.

    Every opportunity that is not a duplicate gets one, whether the evaluators then refuse it
    (`policy` is "") or it goes on to risk and routing. `arrival_price` is the best price on the side
    we take when the decision was made (0 when there was no book): slippage is measured against it.
    """

    opp: Opportunity
    policy: str
    arrival_price: int
    ts_ms: int


class OutcomeKind(enum.Enum):
    """How an opportunity ended; each opportunity gets exactly one (a late fill may revise it)."""

    REJECTED = "rejected"  # evaluators or risk said no
    EXPIRED = "expired"  # its time ran out before it could act, or its orders expired unfilled
    ORDERED = "ordered"  # orders reached the venue and ended with nothing filled
    FILLED = "filled"
    PARTLY_FILLED = "partly_filled"
    FAILED = "failed"  # the venue refused or an error stopped it


@attrs.frozen(slots=True)
class RecordOutcome:
    opportunity_id: str
    correlation_id: str
    kind: OutcomeKind
    reasons: tuple[str, ...]
    order_ids: tuple[str, ...]
    filled_size: int
    #: size-weighted average fill price in micro-units (0 when nothing filled)
    avg_price: int
    ts_ms: int
    #: 0 for the outcome; 1, 2, ... when fills that arrived after it revise it (the last one stands)
    revision: int = 0


@attrs.frozen(slots=True)
class RecordRiskDecision:
    opportunity_id: str
    correlation_id: str
    approved: bool
    requested_size: int
    approved_size: int
    reasons: tuple[str, ...]
    ts_ms: int


@attrs.frozen(slots=True)
class RaiseAlert:
    severity: str  # "info" | "warning" | "critical"
    code: str
    message: str
    ts_ms: int
    correlation_id: str = ""
    details: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(slots=True)
class Tick:
    """Time passed with no other input: lets the step release iceberg slices that fell due.

    Live loops send one when the step's next timer (pipeline.next_timer_ms) comes before any input.
    """

    ts_ms: int


#: what the venue's adapters can learn about its state, and what each forbids while it holds
VENUE_CONDITIONS: Mapping[str, str] = {
    # 425 on order endpoints: the matching engine restarts (~90 s); nothing new can be placed
    "restarting": "all",
    # the 2 minutes after a restart: only post-only orders and cancels are accepted
    "post_only": "taking",
    # 503 cancel-only / trading disabled
    "cancel_only": "all",
    # heartbeats fail while orders rest: the venue will cancel them; place nothing until it answers
    "heartbeat": "all",
}


@attrs.frozen(slots=True)
class VenueCondition:
    """The venue entered (`active`) or left a condition (VENUE_CONDITIONS): while it holds, risk
    refuses the new orders it forbids, with reason "venue:<condition>". Cancels are always allowed."""

    ts_ms: int
    condition: str
    active: bool
    detail: str = ""

    def __attrs_post_init__(self) -> None:
        if self.condition not in VENUE_CONDITIONS:
            raise ValueError(f"unknown venue condition {self.condition!r}; known: {sorted(VENUE_CONDITIONS)}")


@attrs.frozen(slots=True)
class KillSwitch:
    """Operator (or automatic) order to engage or release a kill switch scope.

    Scopes: "global", "strategy:<name>", "market:<condition_id>", "wallet:<address>". `by` says who:
    an operator's name, or "engine" when a limit tripped it.
    """

    ts_ms: int
    scope: str
    engage: bool
    reason: str = ""
    by: str = "engine"
    #: already in the journal (an operator's switch the engine read from it): not recorded again
    journaled: bool = False


@attrs.frozen(slots=True)
class RecordKillSwitch:
    """A kill switch changed: who, why and when (the journal keeps the current state and the history)."""

    scope: str
    engaged: bool
    reason: str
    by: str
    ts_ms: int


@attrs.frozen(slots=True)
class RecordOrderStatus:
    """An order's state changed on a venue report (or reconciliation); one per change, in order."""

    order_id: str
    #: the OrderStatus value ("live", "partly_filled", "cancelled", ...)
    status: str
    filled_size: int
    ts_ms: int
    reason: str = ""
    #: the venue's id for the order (the EIP-712 order hash on the CLOB) once it is known
    venue_order_id: str = ""


@attrs.frozen(slots=True)
class RecordFill:
    """A new fill of one of our orders (a trade id counted once), with the order it belongs to."""

    fill: OrderFilled
    opportunity_id: str
    correlation_id: str
    strategy: str
    routing: str


@attrs.frozen(slots=True)
class MergePositions:
    """Merge `size` complete sets (one YES and one NO share each) of `market` back into `size` USDC.

    A wallet holding both outcomes of one market holds collateral twice over: merging frees it.
    On chain this is a CTF mergePositions, sent gaslessly through the relayer.
    """

    wallet: str
    market: str
    size: int
    ts_ms: int
    correlation_id: str = ""


@attrs.frozen(slots=True)
class RedeemPositions:
    """Redeem what `wallet` holds of a resolved `market`: 1 USDC per winning share, nothing per loser."""

    wallet: str
    market: str
    ts_ms: int
    correlation_id: str = ""


@attrs.frozen(slots=True)
class ConvertPositions:
    """Convert `size` NO shares of each of `markets` (k >= 2 outcomes of the neg-risk event `event`)
    into (k - 1) * `size` USDC plus `size` YES shares of each of the event's other outcomes.

    Exactly one outcome of a complete event wins, so k NO shares pay k - 1 if the winner is among
    them and k otherwise, and so does what they convert into: the payoff is the same whatever wins,
    and k - 1 of it is cash now. On chain this is NegRiskAdapter.convertPositions(marketId = `event`
    (the neg_risk_market_id), indexSet, amount = `size`), where bit i of indexSet (least significant
    first) selects the question of index i, the low byte of that market's question id; the adapter
    takes its fee (feeBips of the event, 0 on none) from the collateral and the YES shares alike.
    """

    wallet: str
    #: the neg_risk_market_id the markets share
    event: str
    #: condition ids of the markets whose NO shares are converted, in the event's order
    markets: tuple[str, ...]
    size: int
    ts_ms: int
    correlation_id: str = ""


@attrs.frozen(slots=True)
class PositionsConverted:
    """The venue (or chain) converted `size` NO shares of each of `markets`: the wallet received
    `collateral` USDC and `yes_size` YES shares of each of `yes_markets` (the event's other
    outcomes); with no adapter fee, collateral = (k - 1) * size and yes_size = size."""

    wallet: str
    event: str
    markets: tuple[str, ...]
    size: int
    collateral: int
    yes_markets: tuple[str, ...]
    yes_size: int
    ts_ms: int
    correlation_id: str = ""


@attrs.frozen(slots=True)
class PositionsMerged:
    """The venue (or chain) merged `size` complete sets of `market` for `wallet`."""

    wallet: str
    market: str
    size: int
    ts_ms: int


@attrs.frozen(slots=True)
class PositionsRedeemed:
    """Redemption done: `shares` of the winning token paid `payout` USDC, the losing token's are gone."""

    wallet: str
    market: str
    winning_token: str
    shares: int
    payout: int
    ts_ms: int


@attrs.frozen(slots=True)
class RecordError:
    """Input the engine could not use: kept whole with its reason (the errors table, the dead letters).

    `position` says where it came from inside `source`: a line number, a stream entry id.
    """

    source: str
    position: str
    reason: str
    payload: str
    ts_ms: int
    correlation_id: str = ""


#: a trade's settlement on chain (PROTOCOL.md 10.3): MATCHED -> MINED -> CONFIRMED, or via RETRYING to
#: CONFIRMED or FAILED
TRADE_STATUSES = frozenset({"MATCHED", "MINED", "CONFIRMED", "RETRYING", "FAILED"})


@attrs.frozen(slots=True)
class TradeSettlement:
    """A fill's trade moved on in its settlement. A fill is provisional exposure until its trade is
    CONFIRMED; FAILED means it never happened, and the engine undoes it (lifecycle.py)."""

    ts_ms: int
    trade_id: str
    order_id: str
    status: str

    def __attrs_post_init__(self) -> None:
        if self.status not in TRADE_STATUSES:
            raise ValueError(f"unknown trade status {self.status!r}; known: {sorted(TRADE_STATUSES)}")


Command = (
    PlaceOrder
    | CancelOrder
    | RecordOpportunity
    | RecordOutcome
    | RecordRiskDecision
    | RecordOrderStatus
    | RecordFill
    | RecordKillSwitch
    | MergePositions
    | RedeemPositions
    | ConvertPositions
    | PositionsMerged
    | PositionsRedeemed
    | PositionsConverted
    | RaiseAlert
    | TradeSettlement
)


@attrs.frozen(slots=True)
class SettlementRefused:
    """A merge, redemption or conversion that could not be done now (nothing to merge, no route to the
    chain, the market not resolved on chain, too few NO shares): the portfolio is unchanged and the
    request may be retried later."""

    kind: str  # "merge" | "redeem" | "convert"
    wallet: str
    #: the condition id; for a conversion, the event (neg_risk_market_id)
    market: str
    reason: str
    ts_ms: int
    correlation_id: str = ""


#: on-chain settlement results, fed back into the step like execution reports
SettlementReport = PositionsMerged | PositionsRedeemed | PositionsConverted | SettlementRefused

#: what the journal keeps: every decision, order, fill, error and alert
JournalRecord = (
    RecordOpportunity
    | RecordRiskDecision
    | RecordOutcome
    | PlaceOrder
    | RecordOrderStatus
    | RecordFill
    | RecordKillSwitch
    | RecordError
    | MergePositions
    | RedeemPositions
    | ConvertPositions
    | PositionsMerged
    | PositionsRedeemed
    | PositionsConverted
    | RaiseAlert
    | TradeSettlement
)


# -- execution reports ---------------------------------------------------------------------------
@attrs.frozen(slots=True)
class OrderAccepted:
    order_id: str
    ts_ms: int
    venue_order_id: str = ""


@attrs.frozen(slots=True)
class OrderRejected:
    order_id: str
    ts_ms: int
    reason: str
    #: the venue's error string, kept verbatim
    venue_message: str = ""


@attrs.frozen(slots=True)
class OrderFilled:
    """One fill of one of our orders. `trade_id` keys it: a trade is counted once whatever its status."""

    order_id: str
    trade_id: str
    ts_ms: int
    token_id: str
    side: Side
    price: int
    size: int
    liquidity: Liquidity
    #: taker fee: BUY pays in shares (fee_shares), SELL in USDC (fee_usdc); makers pay nothing
    fee_usdc: int = 0
    fee_shares: int = 0
    #: a maker's share of the taker fees (the venue pays it daily in USDC; counted when earned)
    rebate_usdc: int = 0


@attrs.frozen(slots=True)
class OrderCancelled:
    order_id: str
    ts_ms: int
    reason: str = ""


@attrs.frozen(slots=True)
class OrderExpired:
    order_id: str
    ts_ms: int


@attrs.frozen(slots=True)
class OrderStatusUnknown:
    """A timeout or 5xx on submission: the order may have matched. Reconcile before anything new."""

    order_id: str
    ts_ms: int
    detail: str = ""


ExecutionReport = (
    OrderAccepted | OrderRejected | OrderFilled | OrderCancelled | OrderExpired | OrderStatusUnknown
)

#: everything the pipeline step takes
Input = Event | ExecutionReport | TradeSettlement | SettlementReport | KillSwitch | VenueCondition | Tick

#: what an input source hands the engine loop: the step's inputs, and the notices adapters raise in
#: between (alerts, dead-lettered input), journaled in order with the inputs around them
SourceItem = Input | RaiseAlert | RecordError
