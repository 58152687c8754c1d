"""Live execution on the Polymarket CLOB: signed V2 orders over REST (core.ports.ExecutionPort).

Theory of operation
-------------------
An order is signed once. Its deterministic salt (from the engine's order id) and its body bytes are
kept in an outbox entry, and every re-post sends exactly those bytes: the venue can then only ever
see one order, however often a network failure makes us repeat it. The single exception is
`order_version_mismatch`: the exchange moved to a new order version, the old signature can never be
accepted, so the order is re-signed once (same salt, fresh timestamp) after refreshing GET /version.

A basket's legs (`submit_many`) are checked and claimed one by one, signed together (in parallel
with signing.ParallelSigner) and sent in one POST /orders (chunks of 15). Each element of the answer
is handled as the answer to a single post; a failure of the request itself (unknown outcome, an
HTTP refusal) applies to every order in it.

What a failed POST means decides what happens next (predicates in retry.py):

* 429 / 425 / a connection that never opened: the venue did not act. Wait (Retry-After as a floor;
  1-2 s doubling while the engine restarts) and send the same bytes again. After a restart the engine
  takes only post-only orders for 2 minutes: non-post-only orders are refused locally meanwhile.
* timeout / dropped connection / 5xx / 3xx / 408 / an unreadable 2xx: UNKNOWN outcome. The order
  may be live or filled. It is reported as OrderStatusUnknown and parked; nothing new is posted
  until it is settled (see Reconciliation).
* any other refusal: OrderRejected with the venue's text; refusals that point at us (bad order, no
  funds, bad keys) count towards the circuit breaker, which stops all posting and alerts.

An accepted FAK/FOK ends at once on the venue (a FAK's unfilled remainder is killed, a FOK fills fully
or not at all), but nothing on the wire says "ended". So its answer is read to the end: the trades it
lists (`tradeIDs`, read from GET /data/trades) are its fills, checked against the shares its
`makingAmount`/`takingAmount` moved, and whatever the fills leave of its size is reported cancelled
(`unfilled_remainder`): the engine's order ends FILLED or CANCELLED in the same answer. When the
answer cannot settle it (a `delayed` match, trades the venue does not show yet) the order is "open"
and the reconciler ends it from GET /data/order.

Reconciliation
--------------
Three tracking sets hold orders whose fate is open: *unknown* (POST outcome unknown; new posts wait),
*open* (an accepted FAK/FOK not ended yet) and *watched* (given up locally without the venue's word).
`reconcile()` runs before every submit for the unknown ones; the periodic `Reconciler` (started by
factory.ClobAdapters.start) runs `reconcile(everything=True)` every `ReconcileConfig.interval_s` and
pushes what it learns into the engine loop's inbox, the user channel's sink. Each order is looked up
by GET /data/order/{id} (our EIP-712 hash until the venue acknowledged another id):

* Found: its state and its fills (its `associate_trades`, else the market's trades since it was
  signed). Fills short of its `size_matched` mean the trades lag: look again, up to
  `max_lag_checks` times. An immediate order that is no longer matching ends with its fills and its
  remainder cancelled.
* Not found, FAK/FOK: NEVER re-posted (its price and size were judged on a book that is gone). It is
  settled from GET /data/trades: fills found are reported, the rest cancelled. With no trade either,
  it is concluded "never placed" (`not_on_venue`, cancelled) once `settle_grace_s` passed, a request
  in flight having had its chance to land.
* Not found, GTC/GTD: re-posted as the same bytes (a duplicate is refused, so this cannot
  double-fill), at most `max_reposts` times, and only while the intent is fresh: a GTD before its
  `expiration_ms`, a GTC within `gtc_repost_window_s` of signing (the GTC bound is our choice: a
  resting price judged on a book that old is stale). After that it ends cancelled (`not_on_venue`).

Settlement moves the order and buffers its reports in one step with no await between, so a task
cancelled mid-round loses neither (the next round hands them out). An order that cannot be settled
(the venue unreachable after the bounded read retries, an unreadable answer) stays where it is and
is tried again next round; one unsettled for `alert_after_s` raises a critical alert.

A local give-up is never a rejection: an order ended without the venue's word (not found, a re-post
refused) is reported cancelled, because a cancelled order still takes fills (core/orders.py) and the
order may land late. Such orders are watched for `watch_s`: if the venue shows one after all, its
fills are reported, and a resting one is cancelled (the engine holds it for cancelled).

Order ids
---------
Reconciliation looks orders up by the EIP-712 hash we computed; that the venue's orderID is that hash
is UNVERIFIED for V2 (PROTOCOL.md 4.2, 12). It is checked on every acknowledgement and every lookup:
the first order the venue acknowledges (or finds, or names in a trade) under our hash verifies it,
from the first order of the run; an acknowledgement under another id is a mismatch, which trips the
circuit breaker (no further posts) with a critical alert, while the orders already acknowledged stay
tracked under the ids the venue gave. Until verified, absence proves nothing (the order could exist
under another id): an unknown order not found by hash is neither concluded "never placed" nor given
up; only a re-post of the same bytes (GTC/GTD), a lookup that finds it, or its trades settle it.
Nothing can be checked before our first order: the venue's order records carry no salt or signature,
so orders placed by an earlier run cannot be re-hashed.

Before signing, the order's tick is checked against the freshest tick we know: tick_size_change and
book events from the market feed refresh it, and an entry older than `tick_ttl_ms` is fetched again
(GET /tick-size, through the market metadata client of markets.py), so a tick is never trusted forever.

Every answer is decoded and range-checked by parsing.py: an unreadable answer is a MalformedMessage,
which for an order post means an unknown outcome (the order may have been placed).

Fills are learned from trades only (the user channel, GET /data/trades during reconciliation and
`status`, an order answer's trades), and claimed once per (trade id, order) in the OrderIndex shared
with the user channel, so a trade reported as MATCHED, MINED and CONFIRMED, and over REST and the
socket, is reported once where possible and counted once by the core (which keys fills by trade id)
in any case.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar, cast

import attrs
import msgspec

from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.conditions import VenueConditions
from polysnipe.adapters.clob.errors import (
    DuplicateOrder,
    EngineRestarting,
    MalformedMessage,
    NotFound,
    OrderNotFilled,
    OrderVersionMismatch,
    PostOnlyMode,
    RateLimited,
    TradingHalted,
    UnknownOutcome,
    VenueError,
    error_from_order_message,
)
from polysnipe.adapters.clob.markets import ClobMarkets, Cursor
from polysnipe.adapters.clob.parsing import (
    FeeOf,
    RestBook,
    decode_json,
    fills_from_trade,
    order_reports,
    parse_int,
    parse_price,
    parse_rest_book,
    parse_size,
)
from polysnipe.adapters.clob.retry import (
    CircuitBreaker,
    RateBudgets,
    RetryPolicy,
    counts_as_reject,
    is_safe_to_retry,
    retry_delay_s,
    retry_idempotent,
)
from polysnipe.adapters.clob.schemas import (
    WireCancelResponse,
    WireOrder,
    WireOrderResponse,
    WireOrdersPage,
    WireTrade,
    WireTradesPage,
)
from polysnipe.adapters.clob.signing import (
    MAX_BATCH_ORDERS,
    BatchOrderSigningPort,
    OrderSigningFailed,
    OrderSigningPort,
    SignedOrder,
    batch_post_body,
)
from polysnipe.adapters.logs import get_logger
from polysnipe.core.events import MAX_TS_MS, BookSnapshot, Event, Side, TickSizeChange
from polysnipe.core.market import Market
from polysnipe.core.messages import (
    ExecutionReport,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderStatusUnknown,
    OrderType,
    RaiseAlert,
)
from polysnipe.core.order_math import ROUNDING
from polysnipe.core.ports import NEVER_MS, Clock, OrderOutbox, Rng

__all__ = [
    "ORDER_IDS_MISMATCH",
    "ORDER_IDS_UNVERIFIED",
    "ORDER_IDS_VERIFIED",
    "SUPPORTED_ORDER_VERSIONS",
    "AlreadySent",
    "ClobExecution",
    "OrderIndex",
    "OutboxUnavailable",
    "ReconcileConfig",
    "Reconciler",
    "VenueOrder",
]

#: exchange order versions our signer produces (signing.py signs the V2 domain)
SUPPORTED_ORDER_VERSIONS: Final = frozenset({2})
#: order-response statuses that mean "accepted" (PROTOCOL.md 5.3)
_ACCEPTED: Final = frozenset({"live", "matched", "delayed"})
#: a venue order id (the order's EIP-712 hash): it goes into URLs (GET /data/order/{id})
_ORDER_ID: Final = re.compile(r"0x[0-9a-fA-F]{64}")
_RESTING: Final = frozenset({"live", "delayed"})
_SIDES: Final = {"BUY": Side.BUY, "SELL": Side.SELL}
#: an order's expiration, unix seconds: within the timestamp window
_MAX_EXPIRATION_S: Final = MAX_TS_MS // 1000

log = get_logger("polysnipe.clob.execution")

_order_response = msgspec.json.Decoder(WireOrderResponse)
_batch_response = msgspec.json.Decoder(list[WireOrderResponse])
_cancel_response = msgspec.json.Decoder(WireCancelResponse)
_order_or_null = msgspec.json.Decoder(WireOrder | None)
_orders_page = msgspec.json.Decoder(WireOrdersPage)
_trades_page = msgspec.json.Decoder(WireTradesPage)
_EMPTY_BODIES: Final = frozenset({b"", b"null", b"{}", b'""'})
#: the order-id probe's size when the market states no minimum (5 shares, the venue's usual one)
_PROBE_MIN_SIZE: Final = 5_000_000


# -- bookkeeping ---------------------------------------------------------------------------------
_K = TypeVar("_K")
_V = TypeVar("_V")


def _remember(memory: dict[_K, _V], key: _K, value: _V, limit: int) -> None:
    """Store `key` as the newest entry of a bounded memory, forgetting the oldest beyond `limit`
    (dicts keep insertion order)."""
    memory[key] = value
    if len(memory) > limit:
        del memory[next(iter(memory))]


class OrderIndex:
    """Our order ids and the venue's, both ways, which orders rest on the book, which fills were
    already reported, and the settlement status last passed on for each.

    Shared by execution (which learns venue ids from order responses and settles orders from REST)
    and the user channel (which maps venue ids back to ours). A fill is claimed once per (trade id,
    order): whoever reports it first claims it, so a trade the user channel sends as MATCHED, MINED
    and CONFIRMED, and REST reports again, counts once. Orders that reached a terminal state are
    forgotten once `keep_terminal` newer ones did, so the index stays bounded while late reports (a
    fill racing a cancel, a fill after a local give-up) still find their order.
    """

    __slots__ = (
        "_by_order",
        "_by_venue",
        "_claimed",
        "_done",
        "_filled",
        "_resting",
        "_sizes",
        "_statuses",
        "_terminal",
        "keep_terminal",
        "max_claims",
    )

    def __init__(self, keep_terminal: int = 100_000, max_claims: int = 200_000) -> None:
        self.keep_terminal = keep_terminal
        self.max_claims = max_claims
        self._by_order: dict[str, str] = {}
        self._by_venue: dict[str, str] = {}
        self._sizes: dict[str, int] = {}
        #: (trade id, order id) pairs already reported, oldest first
        self._claimed: dict[tuple[str, str], None] = {}
        #: (trade id, order id) -> the last settlement status passed on to the engine, oldest first
        self._statuses: dict[tuple[str, str], str] = {}
        #: size filled per open order, from claimed fills
        self._filled: dict[str, int] = {}
        self._resting: set[str] = set()
        self._done: set[str] = set()
        self._terminal: deque[str] = deque()

    def add(self, order_id: str, venue_id: str, size: int) -> None:
        self._by_order[order_id] = venue_id
        self._by_venue[venue_id] = order_id
        self._sizes.setdefault(order_id, size)

    def venue_id(self, order_id: str) -> str | None:
        return self._by_order.get(order_id)

    def order_id(self, venue_id: str) -> str | None:
        return self._by_venue.get(venue_id)

    @property
    def resting_count(self) -> int:
        return len(self._resting)

    def mark_resting(self, order_id: str) -> None:
        if order_id in self._sizes and order_id not in self._done:
            self._resting.add(order_id)

    def claimed(self, fill: OrderFilled) -> bool:
        """Whether this fill was already reported."""
        return (fill.trade_id, fill.order_id) in self._claimed

    def refuse(self, fill: OrderFilled) -> None:
        """A fill of a trade that FAILED: never counted, and a later sighting of it (a stale MATCHED,
        a REST listing) is refused like a repeat. One claimed before stays claimed (the core undoes
        it on the failure)."""
        key = (fill.trade_id, fill.order_id)
        if key not in self._claimed:
            _remember(self._claimed, key, None, self.max_claims)

    def passes_on(self, fill: OrderFilled, status: str) -> bool:
        """Whether the engine should hear that this fill's trade is now `status`: True unless that is
        the status last passed on for it, so the same trade told again (by REST after the user
        channel, say) is not journaled twice, and its failure undoes the fill once."""
        key = (fill.trade_id, fill.order_id)
        statuses = self._statuses
        if statuses.get(key) == status:
            return False
        statuses.pop(key, None)  # re-inserted last: the oldest entries go first
        _remember(statuses, key, status, self.max_claims)
        return True

    def claim(self, fill: OrderFilled) -> bool:
        """Count a fill; True the first time its (trade id, order) is seen, False for a repeat."""
        key = (fill.trade_id, fill.order_id)
        if key in self._claimed:
            return False
        _remember(self._claimed, key, None, self.max_claims)
        order_id = fill.order_id
        size = self._sizes.get(order_id)
        if size is not None and order_id not in self._done:
            filled = self._filled.get(order_id, 0) + fill.size
            self._filled[order_id] = filled
            if filled >= size:
                self._finish(order_id)
        return True

    def observe(self, report: ExecutionReport) -> None:
        """Keep `resting` in step with what the venue reports about our orders (fills are claimed)."""
        if isinstance(report, OrderFilled):
            self.claim(report)
        elif isinstance(report, OrderCancelled | OrderExpired | OrderRejected):
            self._finish(report.order_id)

    def _finish(self, order_id: str) -> None:
        if order_id in self._done:
            return
        self._resting.discard(order_id)
        self._filled.pop(order_id, None)
        self._done.add(order_id)
        self._terminal.append(order_id)
        while len(self._terminal) > self.keep_terminal:
            old = self._terminal.popleft()
            self._done.discard(old)
            self._sizes.pop(old, None)
            venue_id = self._by_order.pop(old, None)
            if venue_id is not None:
                self._by_venue.pop(venue_id, None)


@attrs.frozen(slots=True)
class VenueOrder:
    """An order as GET /data/orders lists it, in micro-units."""

    venue_id: str
    #: our order id, None for orders this process did not place
    order_id: str | None
    status: str
    market: str
    token_id: str
    side: Side
    price: int
    original_size: int
    size_matched: int
    order_type: str
    #: unix seconds, 0 = none
    expiration_s: int


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


@attrs.frozen(slots=True)
class ReconcileConfig:
    """How orders whose fate is open are settled (module doc, "Reconciliation")."""

    #: period of the reconciler task (ClobAdapters.start runs it)
    interval_s: float = attrs.field(default=2.0, validator=_positive)
    #: an immediate order the venue shows nowhere (no order, no trade) is concluded "never placed"
    #: only this long after its outcome became unknown: a request still in flight may land meanwhile
    settle_grace_s: float = attrs.field(default=10.0, validator=_non_negative)
    #: a GTC order is re-posted (the same bytes) only this long after it was signed; after that its
    #: price is stale intent. A GTD order is re-posted only before its expiration_ms.
    gtc_repost_window_s: float = attrs.field(default=15.0, validator=_non_negative)
    #: an order still unsettled this long raises a critical alert (once)
    alert_after_s: float = attrs.field(default=60.0, validator=_non_negative)
    #: an order given up locally is still looked up this long, to catch a late landing
    watch_s: float = attrs.field(default=300.0, validator=_non_negative)
    #: lookups that find fewer fills than the order's size_matched (trades lagging behind the order)
    #: before the order is settled with the fills found
    max_lag_checks: int = attrs.field(default=5, validator=attrs.validators.ge(0))


#: what the venue has shown about order ids (module doc, "Order ids")
ORDER_IDS_UNVERIFIED: Final = "unverified"
ORDER_IDS_VERIFIED: Final = "verified"
ORDER_IDS_MISMATCH: Final = "mismatch"

_UNKNOWN: Final = "unknown"
_OPEN: Final = "open"
_WATCH: Final = "watch"


@attrs.define(slots=True)
class _Outbox:
    """One signed order: the bytes that every re-post sends again, and how its settlement goes."""

    request: OrderRequest
    signed: SignedOrder
    body: bytes
    #: adapter clock when it was signed: the age of the intent these bytes carry
    signed_ms: int
    reposts: int = 0
    #: the venue's id once it acknowledged or showed the order; "" until then (we look up our hash)
    venue_id: str = ""
    #: when it entered its current tracking set (unknown, open, watched)
    since_ms: int = 0
    #: lookups that could not settle it
    attempts: int = 0
    alerted: bool = False

    @property
    def lookup_id(self) -> str:
        return self.venue_id or self.signed.order_hash


def _filled(fills: Sequence[OrderFilled]) -> int:
    return sum(f.size for f in fills)


def _merge(first: list[OrderFilled], more: Sequence[OrderFilled]) -> list[OrderFilled]:
    """Both lists' fills, each trade once, `first` first."""
    seen = {f.trade_id for f in first}
    return first + [f for f in more if f.trade_id not in seen]


def _amount(text: str | None, what: str) -> int:
    """A 6-decimal amount of an order answer; the venue sends "" when nothing filled."""
    if not text:
        return 0
    try:
        return parse_size(text)
    except ValueError as exc:
        raise MalformedMessage(f"order response {what}: {exc}") from None


# -- the adapter ---------------------------------------------------------------------------------
class AlreadySent(Exception):
    """The durable outbox already holds this order id: an earlier run sent it."""


class OutboxUnavailable(Exception):
    """The durable outbox could not record the order: it must not be sent."""


#: the outbox state each report puts an order in (core.ports.OUTBOX_STATES)
_OUTBOX_STATE: Final[dict[type, str]] = {
    OrderAccepted: "acknowledged",
    OrderFilled: "acknowledged",
    OrderRejected: "rejected",
    OrderStatusUnknown: "unknown",
    OrderCancelled: "ended",
    OrderExpired: "ended",
}
#: refusals before anything was sent: the outbox row (if any) is not this attempt's
_NEVER_SENT: Final = frozenset(
    {"already_sent", "outbox_unavailable", "unknown_outcome_pending", "circuit_open", "post_only_mode",
     "tick_size_changed", "invalid_order"}
)  # fmt: skip


class ClobExecution:
    """AsyncExecutionPort over CLOB REST, plus the venue's other trading calls (cancels, open
    orders, trades, order books). Market metadata reads live in `metadata` (markets.ClobMarkets).

    `submit` never raises for venue trouble: every outcome is a report. The other calls raise a
    typed VenueError when the venue refuses or stays unreachable after the read retries, and
    MalformedMessage when its answer cannot be read.
    """

    def __init__(
        self,
        client: ClobHttpClient,
        signer: OrderSigningPort,
        *,
        owner: str,
        clock: Clock,
        rng: Rng,
        alert: Callable[[RaiseAlert], None],
        policy: RetryPolicy | None = None,
        budgets: RateBudgets | None = None,
        circuit: CircuitBreaker | None = None,
        index: OrderIndex | None = None,
        fee_of: FeeOf | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        tick_ttl_ms: int = 300_000,
        metadata: ClobMarkets | None = None,
        reconcile: ReconcileConfig | None = None,
        conditions: VenueConditions | None = None,
        outbox: OrderOutbox | None = None,
    ) -> None:
        self._client = client
        self._signer = signer
        self._owner = owner
        self._clock = clock
        self._rng = rng
        self._alert = alert
        self._policy = policy or RetryPolicy()
        self._budgets = budgets or RateBudgets()
        self.circuit = circuit or CircuitBreaker()
        self.index = index or OrderIndex()
        self._fee_of = fee_of
        self._sleep = sleep
        self._tick_ttl_ms = tick_ttl_ms
        self._ticks: dict[str, tuple[int, int]] = {}
        self._reconciling = reconcile or ReconcileConfig()
        #: POST outcome unknown: new posts wait until these are settled
        self._unknown: dict[str, _Outbox] = {}
        #: accepted FAK/FOK orders whose end (fills, killed remainder) is not known yet
        self._open: dict[str, _Outbox] = {}
        #: given up locally without the venue's word: still looked up for a while (a late landing)
        self._watch: dict[str, _Outbox] = {}
        self._trackers: Final = {_UNKNOWN: self._unknown, _OPEN: self._open, _WATCH: self._watch}
        #: reports of orders settled and not yet handed out (see `_take_settled`)
        self._settled: list[ExecutionReport] = []
        self._reconcile_lock = asyncio.Lock()
        self._order_ids = ORDER_IDS_UNVERIFIED
        self._post_only_until_ms = 0
        #: restart, post-only window, cancel-only: told to the engine, whose risk then holds orders back
        self.conditions = conditions
        #: the durable record of every order sent (Postgres live): claimed before the bytes leave
        self.outbox = outbox
        #: the venue's market metadata (ticks, neg-risk flags, order version, markets)
        self.metadata = metadata or ClobMarkets(client, rng=rng, policy=self._policy, sleep=sleep)

    # -- small helpers -----------------------------------------------------------------------
    def _now_ms(self) -> int:
        return self._clock.now_ms()

    @property
    def unknown_orders(self) -> list[str]:
        """Orders whose submission outcome is still unknown (new posts wait for these)."""
        return list(self._unknown)

    @property
    def open_immediate_orders(self) -> list[str]:
        """Accepted FAK/FOK orders the reconciler has yet to end (fills, then the killed remainder)."""
        return list(self._open)

    @property
    def watched_orders(self) -> list[str]:
        """Orders given up locally that are still looked up, in case they land late."""
        return list(self._watch)

    @property
    def order_id_check(self) -> str:
        """ "unverified", "verified" or "mismatch": whether the venue's order ids are our EIP-712
        hashes (module doc, "Order ids")."""
        return self._order_ids

    @property
    def post_only_until_ms(self) -> int:
        return self._post_only_until_ms

    def _open_post_only_window(self, detail: str) -> None:
        window_s = self._policy.post_only_window_s
        self._post_only_until_ms = self._now_ms() + int(window_s * 1000)
        if self.conditions is not None:
            self.conditions.raise_("post_only", detail, clear_after_s=window_s)

    async def _reserve(self, n: int, *, cancels: bool) -> None:
        now_s = self._now_ms() / 1000
        signer = self._signer.address
        wait_s = (
            self._budgets.reserve_cancels(signer, n, now_s)
            if cancels
            else self._budgets.reserve_orders(signer, n, now_s)
        )
        if wait_s > 0:
            await self._sleep(wait_s)

    async def _idempotent(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        auth: bool = False,
    ) -> bytes:
        """A request that may be repeated (reads, cancels): retried on 429/425/5xx/lost answers."""
        return await retry_idempotent(
            lambda: self._client.request(method, path, params=params, body=body, auth=auth),
            self._policy,
            self._rng,
            self._sleep,
        )

    def _raise_alert(self, severity: str, code: str, message: str, **details: str) -> None:
        self._alert(RaiseAlert(severity, code, message, self._now_ms(), details=details))

    # -- ticks -------------------------------------------------------------------------------
    def on_market_event(self, event: Event) -> None:
        """The engine loop's MarketEventSink: tick_size_change (and ticks carried by books) refresh the
        tick that orders are validated against."""
        if isinstance(event, TickSizeChange):
            self._ticks[event.token_id] = (event.new_tick, self._now_ms())
        elif isinstance(event, BookSnapshot) and event.tick_size is not None:
            self._ticks[event.token_id] = (event.tick_size, self._now_ms())

    async def _current_tick(self, token_id: str, fallback: int) -> int:
        cached = self._ticks.get(token_id)
        if cached is not None and self._now_ms() - cached[1] <= self._tick_ttl_ms:
            return cached[0]
        try:
            tick = await self.metadata.tick_size(token_id)
        except (VenueError, MalformedMessage):
            # The venue validates the tick anyway; without a fresher answer use the best we have.
            return cached[0] if cached is not None else fallback
        self._ticks[token_id] = (tick, self._now_ms())
        return tick

    # -- signing -----------------------------------------------------------------------------
    async def _sign(self, request: OrderRequest, *, resign: bool = False) -> _Outbox:
        """Sign `request` and, with a durable outbox, claim its order id there before anything is
        sent (raises AlreadySent when an earlier run sent it; OutboxUnavailable when the claim
        cannot be made, OrderSigningFailed when the signer refuses: then nothing is sent)."""
        now = self._now_ms()
        return self._claim(request, await self._signer.sign_order(request, now), now, resign=resign)

    def _claim(
        self, request: OrderRequest, signed: SignedOrder, now: int, *, resign: bool = False
    ) -> _Outbox:
        """The outbox entry of a signed order, claimed in the durable outbox (see `_sign`)."""
        body = signed.post_body(self._owner, request.order_type, post_only=request.post_only)
        entry = _Outbox(request, signed, body, now)
        outbox = self.outbox
        if outbox is not None:
            digest = hashlib.sha256(body).hexdigest()
            try:
                if resign:
                    outbox.resign(request.order_id, signed.order_hash, digest, now)
                elif not outbox.claim(request.order_id, signed.order_hash, digest, now):
                    raise AlreadySent(request.order_id)
            except AlreadySent:
                raise
            except Exception as exc:  # the database's error, whatever its driver calls it
                raise OutboxUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        self.index.add(request.order_id, signed.order_hash, request.size)
        return entry

    def _noted(self, reports: list[ExecutionReport]) -> list[ExecutionReport]:
        """Tell the durable outbox what the venue's answers made of its orders; returns `reports`.
        A failure here loses nothing: the entry stays open and a restart resolves it by hash."""
        outbox = self.outbox
        if outbox is None:
            return reports
        # an entry's first final state is the one that sticks (the outbox moves only open entries):
        # an accepted order's fills and end in the same answer need no round trip of their own
        settled: set[str] = set()
        for report in reports:
            state = _OUTBOX_STATE.get(type(report))
            if (
                state is None
                or report.order_id in settled
                or (isinstance(report, OrderRejected) and report.reason in _NEVER_SENT)
            ):
                continue
            if state != "unknown":
                settled.add(report.order_id)
            detail = getattr(report, "reason", "")
            try:
                outbox.settle(report.order_id, state, detail, self._now_ms())
            except Exception as exc:
                log.error("outbox_settle_failed", order_id=report.order_id, state=state,
                          error=f"{type(exc).__name__}: {str(exc)[:200]}")  # fmt: skip
        return reports

    async def _prepare(self, order: OrderRequest) -> _Outbox | OrderRejected:
        checked = await self._check(order)
        if isinstance(checked, OrderRejected):
            return checked
        try:
            return await self._sign(checked)
        except Exception as exc:
            return self._refusal(checked, exc)

    async def _check(self, order: OrderRequest) -> OrderRequest | OrderRejected:
        """What may be sent of `order` before it is signed: refused while the circuit is open, in a
        post-only window, or off the venue's current tick; re-ticked when its price is on that tick."""
        now = self._now_ms()
        if self.circuit.is_open:
            return OrderRejected(order.order_id, now, "circuit_open", self.circuit.last_reason)
        if now < self._post_only_until_ms and not order.post_only:
            return OrderRejected(order.order_id, now, "post_only_mode", "engine restart: post-only window")
        tick = await self._current_tick(order.token_id, order.tick_size)
        if tick != order.tick_size:
            if tick not in ROUNDING or order.price % tick:
                return OrderRejected(
                    order.order_id, now, "tick_size_changed", f"tick is now {tick}, price {order.price}"
                )
            # still on the venue's tick: sign with the venue's rounding for it
            order = attrs.evolve(order, tick_size=tick)
        return order

    def _refusal(self, order: OrderRequest, exc: Exception) -> OrderRejected:
        """The rejection of an order that could not be signed or claimed (nothing was sent); raises
        `exc` again when it is none of those."""
        now = self._now_ms()
        if isinstance(exc, OrderSigningFailed):
            return self._signing_failed(order, exc)
        if isinstance(exc, AlreadySent):
            why = "an earlier run of the engine sent this order id; it is never sent again"
            return OrderRejected(order.order_id, now, "already_sent", why)
        if isinstance(exc, OutboxUnavailable):
            self._raise_alert("critical", "outbox_unavailable", f"order not sent: {exc}",
                              order_id=order.order_id)  # fmt: skip
            return OrderRejected(order.order_id, now, "outbox_unavailable", str(exc))
        if isinstance(exc, ValueError):  # OrderMathError, bad token id, GTD without expiry...
            return OrderRejected(order.order_id, now, "invalid_order", str(exc))
        raise exc

    def _signing_failed(self, order: OrderRequest, exc: OrderSigningFailed) -> OrderRejected:
        """Fail closed: an order the signer would not sign is never sent; the operator hears of it."""
        now = self._now_ms()
        message = f"order not signed, not sent: {exc.detail}"
        details = {"order_id": order.order_id}
        self._alert(RaiseAlert("critical", exc.code, message, now, order.correlation_id, details))
        return OrderRejected(order.order_id, now, exc.code, exc.detail)

    # -- order ids ---------------------------------------------------------------------------
    def _note_order_id(self, entry: _Outbox, venue_id: str) -> None:
        """The venue showed this order under `venue_id`: check it against our EIP-712 hash."""
        if venue_id == entry.signed.order_hash:
            if self._order_ids == ORDER_IDS_UNVERIFIED:
                self._order_ids = ORDER_IDS_VERIFIED
                log.info(
                    "clob_order_ids_verified",
                    correlation_id=entry.request.correlation_id,
                    order_id=entry.request.order_id,
                    order_hash=venue_id,
                )
            return
        if self._order_ids == ORDER_IDS_MISMATCH:
            return
        self._order_ids = ORDER_IDS_MISMATCH
        self.circuit.trip("order_id_mismatch: the venue's order ids are not our EIP-712 hashes")
        self._raise_alert(
            "critical",
            "clob_order_id_mismatch",
            "the venue's order id is not our EIP-712 order hash: reconciliation by hash would be wrong, "
            "posting stopped",
            order_id=entry.request.order_id,
            order_hash=entry.signed.order_hash,
            venue_order_id=venue_id[:100],
        )

    # -- posting -----------------------------------------------------------------------------
    async def _send_orders(self, path: str, body: bytes, n_orders: int) -> bytes:
        """POST /order(s) with the retries that are safe for orders: the same bytes, only after
        errors that prove the venue did not act."""
        attempt = 0
        restart_since_ms: int | None = None
        while True:
            await self._reserve(n_orders, cancels=False)
            try:
                raw = await self._client.request("POST", path, body=body, auth=True, posting=True)
            except VenueError as exc:
                if not is_safe_to_retry(exc):
                    raise
                attempt += 1
                if isinstance(exc, EngineRestarting):
                    now = self._now_ms()
                    restart_since_ms = now if restart_since_ms is None else restart_since_ms
                    if self.conditions is not None:
                        # held until this post gets through; if it never does, the next one probes
                        self.conditions.raise_(
                            "restarting", exc.message, clear_after_s=self._policy.restart_cap_s
                        )
                    if now - restart_since_ms > self._policy.restart_budget_s * 1000:
                        raise
                elif attempt > self._policy.max_attempts:
                    raise
                delay_s = retry_delay_s(exc, attempt, self._policy, self._rng)
                if isinstance(exc, RateLimited) and delay_s > self._policy.max_rate_wait_s:
                    raise
                await self._sleep(delay_s)
                continue
            if self.conditions is not None:
                self.conditions.clear("restarting", "an order post got through")
                self.conditions.clear("cancel_only", "an order post got through")
            if restart_since_ms is not None:
                self._open_post_only_window("the matching engine restarted")
            return raw

    @staticmethod
    def _unclear(response: WireOrderResponse) -> str | None:
        """Why an answer says neither that the order was taken nor that it was refused, or None.

        A refusal needs the venue to say so (`success: false`, an error text, or `unmatched`);
        anything else that is not a whole acceptance may have placed the order, so it is an
        unknown outcome, reconciled by hash, never a rejection."""
        status = (response.status or "").lower()
        if response.orderID is not None and not _ORDER_ID.fullmatch(response.orderID):
            return f"an orderID that is not an order hash: {response.orderID[:80]!r}"
        if not response.success or response.errorMsg or response.error or status == "unmatched":
            return None
        if not response.orderID:
            return "an acceptance without an orderID"
        if status and status not in _ACCEPTED:
            return f"an acceptance with status {status[:40]!r}, which the protocol does not list"
        return None

    @staticmethod
    def _check_accepted(response: WireOrderResponse) -> None:
        """Raise the typed rejection unless the answer is an acceptance (PROTOCOL.md 5.3)."""
        status = (response.status or "").lower()
        # (the recorded minimal acceptance carries no status at all: the order was taken)
        if (
            response.success
            and not response.errorMsg
            and not response.error
            and response.orderID
            and (status in _ACCEPTED or not status)
        ):
            return
        if status == "unmatched":
            raise OrderNotFilled(200, "unmatched", response.errorMsg or "unmatched")
        text = response.errorMsg or response.error
        raise error_from_order_message(text or f"order not accepted (status {status!r})")

    async def _accepted(self, entry: _Outbox, response: WireOrderResponse) -> list[ExecutionReport]:
        request = entry.request
        order_id = request.order_id
        venue_id = response.orderID or entry.signed.order_hash
        self._note_order_id(entry, venue_id)
        # index whatever the venue says: its id is what the user channel and cancels use
        self.index.add(order_id, venue_id, request.size)
        entry.venue_id = venue_id
        self.circuit.record_success()
        accepted = OrderAccepted(order_id, self._now_ms(), venue_id)
        if not request.order_type.is_immediate:
            if (response.status or "live").lower() in _RESTING:
                self.index.mark_resting(order_id)
            self._unknown.pop(order_id, None)
            return [accepted]
        ended = await self._immediate_end(entry, response)
        # (no await from here on: the order moves and its reports leave together)
        self._unknown.pop(order_id, None)
        if ended is None:
            self._track(_OPEN, entry)
            return [accepted]
        self._observe(ended)
        return [accepted, *ended]

    async def _immediate_end(
        self, entry: _Outbox, response: WireOrderResponse
    ) -> list[ExecutionReport] | None:
        """How an accepted FAK/FOK ended, from its answer: its fills (the trades it lists), then its
        killed remainder. None when the answer does not settle it yet (a delayed match, trades the
        venue does not show yet): the reconciler ends it from the venue's order."""
        request = entry.request
        if (response.status or "").lower() != "matched":
            return None
        trade_ids = response.tradeIDs or []
        try:
            fills = await self._trade_fills(request.order_id, trade_ids)
            # the shares the placement moved (PROTOCOL.md 5.3): what a BUY takes, what a SELL gives
            shares = (
                _amount(response.takingAmount, "takingAmount")
                if request.side is Side.BUY
                else _amount(response.makingAmount, "makingAmount")
            )
        except (VenueError, MalformedMessage):
            return None
        if not trade_ids or {f.trade_id for f in fills} != set(trade_ids) or _filled(fills) < shares:
            return None
        return self._ended(request, fills, [])

    def _ended(
        self, request: OrderRequest, fills: Sequence[OrderFilled], ends: Sequence[ExecutionReport]
    ) -> list[ExecutionReport]:
        """An immediate order's end: its fills, then the rest cancelled (an immediate order cannot
        rest: the venue kills a FAK's remainder, a FOK fills fully or not at all)."""
        if not ends and _filled(fills) < request.size:
            ends = [OrderCancelled(request.order_id, self._now_ms(), "unfilled_remainder")]
        return [*fills, *ends]

    def _unknown_outcome(self, entry: _Outbox, detail: str) -> list[ExecutionReport]:
        if entry.request.order_id not in self._unknown:
            self._track(_UNKNOWN, entry)
        return [OrderStatusUnknown(entry.request.order_id, self._now_ms(), detail)]

    def _rejected(self, entry: _Outbox, exc: VenueError) -> list[ExecutionReport]:
        order_id = entry.request.order_id
        now = self._now_ms()
        if isinstance(exc, PostOnlyMode):
            self._open_post_only_window(exc.message)
        if isinstance(exc, TradingHalted) and self.conditions is not None:
            self.conditions.raise_("cancel_only", exc.message, clear_after_s=self._policy.halt_probe_s)
        if counts_as_reject(exc) and self.circuit.record_reject(f"{exc.code}: {exc.message}"):
            self._raise_alert(
                "critical",
                "clob_circuit_open",
                f"{self.circuit.threshold} consecutive order rejects; posting stopped",
                last_reason=self.circuit.last_reason,
            )
        report: ExecutionReport
        if self._unknown.pop(order_id, None) is not None:
            # A re-post refused: these bytes were sent before with an unknown outcome, and a refusal
            # now does not prove the first one never lands. The order ends cancelled, never rejected,
            # so a late fill still counts, and it is watched.
            report = OrderCancelled(order_id, now, f"repost_refused:{exc.code}")
            self._track(_WATCH, entry)
        else:
            report = OrderRejected(order_id, now, exc.code, exc.message)
        self.index.observe(report)
        return [report]

    async def _answer(
        self, entry: _Outbox, response: WireOrderResponse, may_resign: bool
    ) -> list[ExecutionReport]:
        """Reports for one order's answer (single post or one batch element)."""
        unclear = self._unclear(response)
        holder = self.index.order_id(response.orderID) if unclear is None and response.orderID else None
        if holder is not None and holder != entry.request.order_id:
            unclear = f"an orderID the venue already gave our order {holder}"
        if unclear is not None:
            return self._unknown_outcome(entry, f"unclear answer: {unclear}")
        try:
            self._check_accepted(response)
        except VenueError as exc:
            return await self._on_venue_error(entry, exc, may_resign)
        return await self._accepted(entry, response)

    async def _on_venue_error(
        self, entry: _Outbox, exc: VenueError, may_resign: bool
    ) -> list[ExecutionReport]:
        """What a venue error means for one order, however it arrived (HTTP error or answer element)."""
        if isinstance(exc, DuplicateOrder):
            # the venue already holds these exact bytes: an earlier post did land
            return self._unknown_outcome(entry, f"venue reports a duplicate: {exc.message}")
        if isinstance(exc, OrderVersionMismatch) and may_resign:
            return await self._resign_and_post(entry, exc)
        return self._rejected(entry, exc)

    async def _post(self, entry: _Outbox, *, may_resign: bool = True) -> list[ExecutionReport]:
        try:
            raw = await self._send_orders("/order", entry.body, 1)
            response = decode_json(_order_response, raw, "order response")
        except UnknownOutcome as exc:
            return self._unknown_outcome(entry, exc.message)
        except MalformedMessage as exc:
            # a 2xx we cannot read may still have placed the order
            return self._unknown_outcome(entry, f"unreadable answer: {exc.reason}")
        except VenueError as exc:
            return await self._on_venue_error(entry, exc, may_resign)
        return await self._answer(entry, response, may_resign)

    async def _resign_and_post(self, entry: _Outbox, exc: OrderVersionMismatch) -> list[ExecutionReport]:
        """The one case where an order is signed again: the venue changed its order version."""
        try:
            version = await self.metadata.version(refresh=True)
        except VenueError as version_exc:
            return self._rejected(entry, version_exc)
        except MalformedMessage as version_exc:
            return self._rejected(entry, VenueError(200, "unreadable_version", version_exc.reason))
        if version not in SUPPORTED_ORDER_VERSIONS:
            self._raise_alert(
                "critical",
                "clob_order_version",
                f"venue order version {version} is not one we sign",
                version=str(version),
            )
            return self._rejected(entry, exc)
        try:
            again = await self._sign(entry.request, resign=True)
        except OutboxUnavailable as outbox_exc:
            return self._rejected(entry, VenueError(0, "outbox_unavailable", str(outbox_exc)))
        except OrderSigningFailed as signing_exc:
            self._signing_failed(entry.request, signing_exc)
            return self._rejected(entry, VenueError(0, signing_exc.code, signing_exc.detail))
        return await self._post(again, may_resign=False)

    # -- the engine loop's ExecutionPort ---------------------------------------------------------
    @property
    def wake_ms(self) -> int:
        """Nothing falls due here by itself: later reports come from the user channel and the
        reconciler, through the engine loop's inbox."""
        return NEVER_MS

    def due(self, now_ms: int) -> Sequence[ExecutionReport]:
        return ()

    async def submit(self, order: OrderRequest, now_ms: int | None = None) -> list[ExecutionReport]:
        """Sign and post one order. Unknown outcomes of earlier posts are reconciled first; while one
        stays unknown, nothing new is posted. Orders carry this adapter's clock (`now_ms`, the engine's
        time, is not what the venue checks)."""
        async with self._reconcile_lock:
            await self._settle_all(_UNKNOWN)
        if self._unknown:
            pending = ",".join(self._unknown)
            refused = OrderRejected(order.order_id, self._now_ms(), "unknown_outcome_pending", pending)
            return self._noted([*self._take_settled(), refused])
        prepared = await self._prepare(order)
        if isinstance(prepared, OrderRejected):
            return self._noted([*self._take_settled(), prepared])
        posted = await self._post(prepared)
        return self._noted([*self._take_settled(), *posted])

    async def submit_many(
        self, orders: Sequence[OrderRequest], now_ms: int | None = None
    ) -> list[list[ExecutionReport]]:
        """Sign the orders together (in parallel with a ParallelSigner) and post them with POST
        /orders, in chunks of at most 15: the legs of a basket reach the venue in one request. One
        list of reports per order, in order, as `submit` answers (reports of earlier orders that
        reconciliation settled come first, in the first order's list). An order refused before it is
        sent (checks, signing, the outbox claim) is refused alone; a refusal of the whole request
        (HTTP level) refuses every order in it, and an unknown outcome makes each unknown."""
        async with self._reconcile_lock:
            await self._settle_all(_UNKNOWN)
        answers: list[list[ExecutionReport]]
        if self._unknown:
            now = self._now_ms()
            pending = ",".join(self._unknown)
            answers = [[OrderRejected(o.order_id, now, "unknown_outcome_pending", pending)] for o in orders]
        else:
            answers = await self._place_many(orders)
        if answers:
            answers[0][:0] = self._take_settled()
        for reports in answers:
            self._noted(reports)
        return answers

    async def _place_many(self, orders: Sequence[OrderRequest]) -> list[list[ExecutionReport]]:
        answers: list[list[ExecutionReport]] = [[] for _ in orders]
        ready: list[tuple[int, OrderRequest]] = []
        for i, order in enumerate(orders):
            checked = await self._check(order)
            if isinstance(checked, OrderRejected):
                answers[i].append(checked)
            else:
                ready.append((i, checked))
        now = self._now_ms()
        signed = await self._sign_all([order for _, order in ready], now)
        entries: list[tuple[int, _Outbox]] = []
        # claimed one by one, in order, all before the first byte leaves
        for (i, order), result in zip(ready, signed, strict=True):
            try:
                if isinstance(result, Exception):
                    raise result
                entries.append((i, self._claim(order, result, now)))
            except Exception as exc:
                answers[i].append(self._refusal(order, exc))
        if len(entries) == 1:
            i, entry = entries[0]
            answers[i].extend(await self._post(entry))
            return answers
        for start in range(0, len(entries), MAX_BATCH_ORDERS):
            chunk = entries[start : start + MAX_BATCH_ORDERS]
            posted = await self._post_chunk([entry for _, entry in chunk])
            for (i, _), reports in zip(chunk, posted, strict=True):
                answers[i].extend(reports)
        return answers

    async def _sign_all(self, orders: list[OrderRequest], now: int) -> list[SignedOrder | Exception]:
        """Every order signed at `now`, or the exception that refused it: at once by a signer that
        signs batches (BatchOrderSigningPort), else concurrently (the signing server's requests)."""
        if not orders:
            return []
        if hasattr(self._signer, "sign_orders"):
            return await cast(BatchOrderSigningPort, self._signer).sign_orders(orders, now)
        results = await asyncio.gather(
            *(self._signer.sign_order(order, now) for order in orders), return_exceptions=True
        )
        out: list[SignedOrder | Exception] = []
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result  # a cancellation is not the order's refusal
            out.append(result)
        return out

    async def post_batch(self, orders: Sequence[OrderRequest]) -> list[ExecutionReport]:
        """`submit_many`, its reports in one list."""
        return [report for reports in await self.submit_many(orders) for report in reports]

    async def _post_chunk(self, chunk: list[_Outbox]) -> list[list[ExecutionReport]]:
        """POST /orders of one chunk: each entry's reports, in order."""
        try:
            raw = await self._send_orders("/orders", batch_post_body([e.body for e in chunk]), len(chunk))
            answers = decode_json(_batch_response, raw, "batch response")
            if len(answers) != len(chunk):
                raise MalformedMessage(f"batch response: {len(answers)} answers for {len(chunk)} orders")
        except UnknownOutcome as exc:
            return [self._unknown_outcome(entry, exc.message) for entry in chunk]
        except MalformedMessage as exc:
            return [self._unknown_outcome(entry, f"unreadable answer: {exc.reason}") for entry in chunk]
        except VenueError as exc:
            # a batch is all-or-nothing: one HTTP-level answer holds for every order in it, read
            # as for a single post (a duplicate means the bytes landed, a version change re-signs)
            return [await self._on_venue_error(entry, exc, may_resign=True) for entry in chunk]
        return [
            await self._answer(entry, answer, may_resign=True)
            for entry, answer in zip(chunk, answers, strict=True)
        ]

    # -- reading the venue's view of an order ------------------------------------------------
    async def lookup(self, order_hash: str) -> WireOrder | None:
        """The venue's view of an order by its hash (None: the venue does not have it). Raises
        VenueError / MalformedMessage when the venue cannot tell."""
        return await self._fetch_order(order_hash)

    async def _fetch_order(self, venue_id: str) -> WireOrder | None:
        try:
            raw = await self._idempotent("GET", f"/data/order/{venue_id}", auth=True)
        except NotFound:
            return None
        if raw.strip() in _EMPTY_BODIES:
            return None
        wire: WireOrder | None = decode_json(_order_or_null, raw, f"order {venue_id}")
        return wire

    async def _trade_fills(self, order_id: str, trade_ids: Sequence[str]) -> list[OrderFilled]:
        fills: dict[str, OrderFilled] = {}
        # a trade id listed twice (or a trade listed twice in an answer) is one fill
        for trade_id in dict.fromkeys(trade_ids):
            raw = await self._idempotent("GET", "/data/trades", params={"id": trade_id}, auth=True)
            for trade in decode_json(_trades_page, raw, "trades").data:
                for fill in self._rest_fills(trade):
                    if fill.order_id == order_id:
                        fills.setdefault(fill.trade_id, fill)
        return list(fills.values())

    def _rest_fills(self, trade: WireTrade) -> list[OrderFilled]:
        """Our fills in a trade the REST API lists; none for a trade that FAILED (it never happened),
        whose fills the index then refuses wherever they show up again."""
        fills = fills_from_trade(trade, self.index.order_id, ts_recv_ms=self._now_ms(), fee_of=self._fee_of)
        if trade.status.upper().removeprefix("TRADE_STATUS_") == "FAILED":
            for fill in fills:
                self.index.refuse(fill)
            return []
        return fills

    async def _scan_fills(self, entry: _Outbox) -> list[OrderFilled]:
        """The order's fills among the venue's trades in its market since it was signed: an order
        the order lookup does not show (or shows with trades missing) may still have traded."""
        request = entry.request
        fills = await self.trades(request.market, after_s=entry.signed_ms // 1000 - 1)
        return [f for f in fills if f.order_id == request.order_id]

    async def _order_state(self, order_id: str, wire: WireOrder) -> list[ExecutionReport]:
        """Reports for an order we no longer track (a resting order's status, a refused cancel)."""
        size = self._size_of(wire)
        reports = order_reports(wire, order_id, ts_recv_ms=self._now_ms())
        fills = await self._trade_fills(order_id, wire.associate_trades or ())
        self.index.add(order_id, wire.id, size)
        if any(isinstance(r, OrderAccepted) for r in reports) and (wire.status or "").upper() == "LIVE":
            self.index.mark_resting(order_id)
        ordered = self._in_order(reports, fills)
        self._observe(ordered)
        return ordered

    @staticmethod
    def _in_order(state: list[ExecutionReport], fills: list[OrderFilled]) -> list[ExecutionReport]:
        # An order that filled and then ended (cancelled, expired) shows its fills first: that is
        # the order they happened in, and what the order state machine expects.
        ends = bool(state) and not isinstance(state[0], OrderAccepted)
        return [*fills, *state] if ends else [*state, *fills]

    @staticmethod
    def _size_of(wire: WireOrder) -> int:
        try:
            return parse_size(wire.original_size) if wire.original_size else 0
        except ValueError as exc:
            raise MalformedMessage(f"order {wire.id[:80]}: {exc}") from None

    @staticmethod
    def _matched_of(wire: WireOrder) -> int:
        try:
            return parse_size(wire.size_matched) if wire.size_matched else 0
        except ValueError as exc:
            raise MalformedMessage(f"order {wire.id[:80]}: {exc}") from None

    def _observe(self, reports: Sequence[ExecutionReport]) -> None:
        for report in reports:
            self.index.observe(report)

    # -- reconciliation ----------------------------------------------------------------------
    def _track(self, kind: str, entry: _Outbox) -> None:
        """Put the order in one tracking set (and out of the others)."""
        order_id = entry.request.order_id
        for name, tracker in self._trackers.items():
            if name != kind:
                tracker.pop(order_id, None)
        entry.since_ms = self._now_ms()
        entry.attempts = 0
        entry.alerted = False
        self._trackers[kind][order_id] = entry

    def _untrack(self, order_id: str) -> None:
        for tracker in self._trackers.values():
            tracker.pop(order_id, None)

    def _tracked_as(self, order_id: str) -> str | None:
        for name, tracker in self._trackers.items():
            if order_id in tracker:
                return name
        return None

    def _take_settled(self) -> list[ExecutionReport]:
        """Reports of settled orders, handed out once. An order leaves its tracking set in the same
        step (no await between) as its reports enter this buffer, so a task cancelled mid-way (the
        reconciler at shutdown) loses neither: whoever reconciles next hands them out."""
        out, self._settled = self._settled, []
        return out

    async def reconcile(self, *, everything: bool = False) -> list[ExecutionReport]:
        """Settle every order whose submission outcome is unknown; returns what was learned.

        With `everything` (the periodic reconciler) it also ends accepted FAK/FOK orders and looks
        up orders given up locally. Never raises for venue trouble: an order the venue cannot tell
        us about now stays where it is, and one unsettled for `alert_after_s` raises an alert.
        """
        async with self._reconcile_lock:
            await self._settle_all(_UNKNOWN)
            if everything:
                await self._settle_all(_OPEN)
                await self._settle_all(_WATCH)
            self._alert_overdue()
            return self._noted(self._take_settled())

    async def _settle_all(self, kind: str) -> None:
        for entry in list(self._trackers[kind].values()):
            if self._trackers[kind].get(entry.request.order_id) is entry:
                await self._settle(kind, entry)

    async def _settle(self, kind: str, entry: _Outbox) -> None:
        try:
            reports = await self._resolve(kind, entry)
        except (VenueError, MalformedMessage):
            reports = None  # the venue cannot tell us now: keep it, rather than guess
        if reports is None:
            entry.attempts += 1
            return
        self._settled.extend(reports)

    async def _resolve(self, kind: str, entry: _Outbox) -> list[ExecutionReport] | None:
        """The order's reports once its fate is known (it then leaves or changes its tracking set),
        else None. Raises VenueError / MalformedMessage when the venue cannot be read."""
        wire = await self._fetch_order(entry.lookup_id)
        if wire is None:
            return await self._resolve_absent(kind, entry)
        return await self._resolve_found(kind, entry, wire)

    async def _resolve_found(
        self, kind: str, entry: _Outbox, wire: WireOrder
    ) -> list[ExecutionReport] | None:
        request = entry.request
        order_id = request.order_id
        matched = self._matched_of(wire)
        state = order_reports(wire, order_id, ts_recv_ms=self._now_ms())
        fills = await self._trade_fills(order_id, wire.associate_trades or ())
        if _filled(fills) < matched:
            fills = _merge(fills, await self._scan_fills(entry))
        if _filled(fills) < matched and entry.attempts < self._reconciling.max_lag_checks:
            return None  # the venue's trades lag behind its order: look again
        status = (wire.status or "").upper()
        still_matching = request.order_type.is_immediate and status in ("LIVE", "DELAYED")
        if kind == _WATCH and (still_matching or status == "LIVE"):
            # landed after we gave it up: a resting order the engine holds for cancelled is stale
            # intent, so it is cancelled; its fills are reported once it has ended (a later round)
            if status == "LIVE" and not request.order_type.is_immediate:
                await self._cancel_late_landing(wire.id)
            return None
        # (no await from here on: the order moves and its reports leave together)
        if not entry.venue_id:
            self._note_order_id(entry, wire.id)  # found by the hash we computed
        entry.venue_id = wire.id
        self.index.add(order_id, wire.id, request.size)
        if kind == _WATCH:
            return self._late(entry, fills)
        accepted = [r for r in state if isinstance(r, OrderAccepted)] if kind == _UNKNOWN else []
        ends = [r for r in state if not isinstance(r, OrderAccepted)]
        if not request.order_type.is_immediate:
            reports = self._in_order(state, fills)
            if accepted and status == "LIVE":
                self.index.mark_resting(order_id)
            self._untrack(order_id)
        elif still_matching and not ends:
            # a delayed match: accepted, not yet ended; the reconciler comes back for the rest
            reports = [*accepted, *fills]
            self._track(_OPEN, entry)
        else:
            if ends and isinstance(ends[0], OrderRejected) and (fills or kind == _OPEN):
                ends = [OrderCancelled(order_id, self._now_ms(), ends[0].reason)]
            reports = [*accepted, *self._ended(request, fills, ends)]
            self._untrack(order_id)
        self._observe(reports)
        return reports

    def _late(self, entry: _Outbox, fills: list[OrderFilled]) -> list[ExecutionReport]:
        """A given-up order the venue shows after all, ended: its fills count (the core applies fills
        after a cancel); its state reports would contradict the local end, so only fills go out."""
        self._untrack(entry.request.order_id)
        self._raise_alert(
            "warning",
            "clob_order_landed_late",
            f"order {entry.request.order_id}, given up locally, is on the venue with {len(fills)} fills",
            order_hash=entry.signed.order_hash,
        )
        self._observe(fills)
        return list(fills)

    async def _cancel_late_landing(self, venue_id: str) -> None:
        await self._reserve(1, cancels=True)
        await self._idempotent("DELETE", "/order", body=msgspec.json.encode({"orderID": venue_id}), auth=True)

    async def _resolve_absent(self, kind: str, entry: _Outbox) -> list[ExecutionReport] | None:
        """The venue's order lookup does not show the order."""
        request = entry.request
        order_id = request.order_id
        now = self._now_ms()
        if kind == _WATCH:
            if now - entry.since_ms >= self._reconciling.watch_s * 1000:
                self._untrack(order_id)
                return []
            return None
        if request.order_type.is_immediate:
            # never re-posted: its price and size were judged on a book that is gone; settled from
            # the venue's trades instead
            fills = await self._scan_fills(entry)
            if fills:
                if not entry.venue_id:
                    self._note_order_id(entry, entry.signed.order_hash)  # trades name our hash
                self._untrack(order_id)
                reports = self._ended(request, fills, [])
                self._observe(reports)
                return reports
            if kind == _UNKNOWN and self._order_ids != ORDER_IDS_VERIFIED:
                return None  # it may be on the venue under another id: absence proves nothing yet
            if now - entry.since_ms < self._reconciling.settle_grace_s * 1000:
                return None
            reason = "not_on_venue" if kind == _UNKNOWN else "unfilled_remainder"
            report = OrderCancelled(order_id, now, reason)
            if kind == _UNKNOWN:
                self._track(_WATCH, entry)
            else:
                self._untrack(order_id)
            self.index.observe(report)
            return [report]
        if self._may_repost(entry, now):
            entry.reposts += 1
            # the answer moves the order: accepted, refused (cancelled and watched), or unknown again
            return await self._post(entry, may_resign=False)
        if self._order_ids != ORDER_IDS_VERIFIED:
            return None
        self._raise_alert(
            "warning",
            "clob_order_lost",
            f"order {order_id} not on the venue after {entry.reposts} re-posts; ended as cancelled",
            order_hash=entry.signed.order_hash,
        )
        report = OrderCancelled(order_id, now, "not_on_venue")
        self._track(_WATCH, entry)
        self.index.observe(report)
        return [report]

    def _may_repost(self, entry: _Outbox, now: int) -> bool:
        """Only a resting order type, only within the opportunity's expiry (module doc)."""
        request = entry.request
        if request.order_type.is_immediate or self.circuit.is_open:
            return False
        if entry.reposts >= self._policy.max_reposts:
            return False
        if request.order_type is OrderType.GTD:
            return now < request.expiration_ms
        return now - entry.signed_ms <= self._reconciling.gtc_repost_window_s * 1000

    def _alert_overdue(self) -> None:
        now = self._now_ms()
        limit_ms = self._reconciling.alert_after_s * 1000
        for kind in (_UNKNOWN, _OPEN):
            for entry in self._trackers[kind].values():
                if entry.alerted or now - entry.since_ms < limit_ms:
                    continue
                entry.alerted = True
                self._raise_alert(
                    "critical",
                    "clob_order_unsettled",
                    f"order {entry.request.order_id} unsettled for {(now - entry.since_ms) // 1000} s "
                    f"({kind}, {entry.attempts} lookups); new orders wait while an outcome is unknown",
                    order_hash=entry.signed.order_hash,
                    order_ids=self._order_ids,
                )

    async def probe_order_ids(self, market: Market, token_id: str) -> str:
        """Start-up check that the venue's order id is our EIP-712 hash, before any real order.

        Posts one post-only GTC BUY of `token_id` at the lowest price (one tick) and the market's
        minimum size, so it cannot take and rests below any real bid; compares the id the venue
        acknowledges, looks the order up by our hash, and cancels it. Returns `order_id_check`; a
        mismatch has tripped the circuit (no further posts) with a critical alert. A probe the venue
        refuses (no balance, a book at one tick) verifies nothing and is said with a warning. Its
        reports are not the engine's: it never asked for this order.
        """
        now = self._now_ms()
        probe = OrderRequest(
            order_id=f"order-id-probe:{now}",
            opportunity_id="",
            correlation_id="order-id-probe",
            strategy="",
            routing="probe",
            wallet="",
            market=market.condition_id,
            token_id=token_id,
            side=Side.BUY,
            price=market.tick_size,
            size=max(market.min_order_size, _PROBE_MIN_SIZE),
            order_type=OrderType.GTC,
            tick_size=market.tick_size,
            neg_risk=market.neg_risk,
            post_only=True,
        )
        answer = await self.submit(probe)
        venue_id = self.index.venue_id(probe.order_id)
        if any(isinstance(r, OrderAccepted) for r in answer) and venue_id is not None:
            if self._order_ids == ORDER_IDS_VERIFIED:
                # the acknowledgement matched: the order must also be found by that hash
                try:
                    found = await self._fetch_order(venue_id)
                except (VenueError, MalformedMessage):
                    found = None
                if found is None or found.id != venue_id:
                    self._order_ids = ORDER_IDS_UNVERIFIED
            try:
                await self.cancel(probe.order_id)
            except (VenueError, MalformedMessage) as exc:
                self._raise_alert(
                    "warning",
                    "clob_order_id_probe_rests",
                    f"the order-id probe could not be cancelled ({exc}); it rests at one tick",
                    order_hash=venue_id,
                )
        elif self._order_ids == ORDER_IDS_UNVERIFIED:
            reason = next((r.reason for r in answer if isinstance(r, OrderRejected)), "no answer")
            self._raise_alert(
                "warning",
                "clob_order_id_probe_failed",
                f"the order-id probe was not placed ({reason}): order ids stay unverified until the "
                "venue acknowledges an order",
            )
        return self._order_ids

    async def status(self, order_id: str) -> list[ExecutionReport]:
        """The venue's view of one of our orders: its state, then its fills (from its trades).

        An order still being reconciled is settled as reconciliation would (and never raises for
        venue trouble); for any other order a venue failure raises.
        """
        if self._tracked_as(order_id) is not None:
            async with self._reconcile_lock:
                kind = self._tracked_as(order_id)
                if kind is not None:
                    await self._settle(kind, self._trackers[kind][order_id])
                return self._take_settled()
        venue_id = self.index.venue_id(order_id)
        if venue_id is None:
            return []
        wire = await self._fetch_order(venue_id)
        if wire is None:
            return []
        return await self._order_state(order_id, wire)

    # -- cancels -----------------------------------------------------------------------------
    async def _cancel_reports(self, raw: bytes) -> tuple[list[ExecutionReport], dict[str, str]]:
        answer = decode_json(_cancel_response, raw, "cancel response")
        now = self._now_ms()
        reports: list[ExecutionReport] = []
        for venue_id in answer.canceled or ():
            order_id = self.index.order_id(venue_id)
            if order_id is not None:
                report = OrderCancelled(order_id, now, "cancelled")
                self.index.observe(report)
                reports.append(report)
        return reports, answer.not_canceled or {}

    async def cancel(self, order_id: str, now_ms: int | None = None) -> list[ExecutionReport]:
        """Cancel one order. When the venue will not cancel it (already matched or gone), or it is
        still being reconciled, its actual state is fetched too, so a fill racing the cancel is
        reported, not lost."""
        venue_id = self.index.venue_id(order_id)
        if venue_id is None:
            return []
        await self._reserve(1, cancels=True)
        body = msgspec.json.encode({"orderID": venue_id})
        raw = await self._idempotent("DELETE", "/order", body=body, auth=True)
        reports, refused = await self._cancel_reports(raw)
        if venue_id in refused or self._tracked_as(order_id) is not None:
            reports.extend(await self.status(order_id))
        return reports

    async def cancel_orders(self, order_ids: Sequence[str]) -> list[ExecutionReport]:
        """DELETE /orders for many of our orders; refused ones are looked up like in `cancel`."""
        venue_ids = [v for v in (self.index.venue_id(o) for o in order_ids) if v is not None]
        if not venue_ids:
            return []
        await self._reserve(len(venue_ids), cancels=True)
        raw = await self._idempotent("DELETE", "/orders", body=msgspec.json.encode(venue_ids), auth=True)
        reports, refused = await self._cancel_reports(raw)
        for venue_id in venue_ids:
            order_id = self.index.order_id(venue_id)
            if order_id is not None and (venue_id in refused or self._tracked_as(order_id) is not None):
                reports.extend(await self.status(order_id))
        return reports

    async def cancel_all(self) -> list[ExecutionReport]:
        """DELETE /cancel-all: every open order of this API key, ours or not."""
        await self._reserve(1, cancels=True)
        raw = await self._idempotent("DELETE", "/cancel-all", auth=True)
        reports, _ = await self._cancel_reports(raw)
        # the cancel budget also pays one token per order cancelled; charged after the fact
        self._budgets.reserve_cancels(self._signer.address, len(reports), self._now_ms() / 1000)
        return reports

    async def cancel_market(
        self, market: str | None = None, token_id: str | None = None
    ) -> list[ExecutionReport]:
        """DELETE /cancel-market-orders for a condition id and/or a token id."""
        if market is None and token_id is None:
            raise ValueError("name a market or a token (cancel_all cancels everything)")
        payload = {k: v for k, v in (("market", market), ("asset_id", token_id)) if v is not None}
        await self._reserve(1, cancels=True)
        raw = await self._idempotent(
            "DELETE", "/cancel-market-orders", body=msgspec.json.encode(payload), auth=True
        )
        reports, _ = await self._cancel_reports(raw)
        self._budgets.reserve_cancels(self._signer.address, len(reports), self._now_ms() / 1000)
        return reports

    # -- queries -----------------------------------------------------------------------------
    async def open_orders(self, market: str | None = None, token_id: str | None = None) -> list[VenueOrder]:
        """Every open order of this API key (all pages)."""
        params = {k: v for k, v in (("market", market), ("asset_id", token_id)) if v is not None}
        out: list[VenueOrder] = []
        cursor = Cursor()
        while cursor.more:
            raw = await self._idempotent(
                "GET", "/data/orders", params={**params, "next_cursor": cursor.value}, auth=True
            )
            page = decode_json(_orders_page, raw, "orders")
            out.extend(self._venue_order(o) for o in page.data)
            cursor.advance(page.next_cursor)
        return out

    def _venue_order(self, wire: WireOrder) -> VenueOrder:
        try:
            if wire.side is None:
                raise ValueError("missing side")
            expiration = wire.expiration
            return VenueOrder(
                wire.id,
                self.index.order_id(wire.id),
                wire.status or "",
                wire.market or "",
                wire.asset_id or "",
                _SIDES[wire.side],
                parse_price(wire.price or ""),
                parse_size(wire.original_size or ""),
                parse_size(wire.size_matched) if wire.size_matched else 0,
                wire.order_type or "",
                0
                if expiration is None or expiration == ""
                else parse_int(expiration, "expiration", 0, _MAX_EXPIRATION_S),
            )
        except ValueError as exc:
            raise MalformedMessage(f"order {wire.id[:80]}: {exc}") from None

    async def trades(
        self, market: str | None = None, token_id: str | None = None, *, after_s: int | None = None
    ) -> list[OrderFilled]:
        """Our fills in this API key's trades (all pages), each keyed by its trade id."""
        return [
            fill
            for trade in await self.trade_list(market, token_id, after_s=after_s)
            for fill in self._rest_fills(trade)
        ]

    async def trade_list(
        self, market: str | None = None, token_id: str | None = None, *, after_s: int | None = None
    ) -> list[WireTrade]:
        """This API key's trades (all pages) as the venue lists them, whatever their status."""
        params = {
            k: v
            for k, v in (("market", market), ("asset_id", token_id), ("after", after_s and str(after_s)))
            if v
        }
        out: list[WireTrade] = []
        cursor = Cursor()
        while cursor.more:
            raw = await self._idempotent(
                "GET", "/data/trades", params={**params, "next_cursor": cursor.value}, auth=True
            )
            page = decode_json(_trades_page, raw, "trades")
            out.extend(page.data)
            cursor.advance(page.next_cursor)
        return out

    async def book(self, token_id: str) -> RestBook:
        """GET /book, hash-checked (see parsing.parse_rest_book); also refreshes the token's tick."""
        raw = await self._idempotent("GET", "/book", params={"token_id": token_id})
        book = parse_rest_book(raw, ts_recv_ms=self._now_ms())
        self.on_market_event(book.snapshot)
        return book


# -- the periodic reconciler -----------------------------------------------------------------------
class Reconciler:
    """Settles orders whose fate is open on a timer, not only when a new order is submitted: every
    `interval_s`, `ClobExecution.reconcile(everything=True)`; what it learns goes to `sink`, the
    engine loop's inbox, as the user channel's reports do. Nothing stops it: a failure (the sink's
    included) is logged and raised through `on_alert`, and the next round runs."""

    def __init__(
        self,
        execution: ClobExecution,
        *,
        sink: Callable[[Sequence[ExecutionReport | RaiseAlert]], None],
        on_alert: Callable[[RaiseAlert], None],
        clock: Clock,
        interval_s: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.execution = execution
        self.interval_s = interval_s
        self._sink = sink
        self._on_alert = on_alert
        self._clock = clock
        self._sleep = sleep
        #: rounds run, and rounds that failed
        self.rounds = 0
        self.failures = 0

    def _alert(self, code: str, message: str, **details: str) -> None:
        try:
            self._on_alert(RaiseAlert("critical", code, message, self._clock.now_ms(), details=details))
        except Exception:
            log.exception("reconciler_alert_failed", code=code)

    async def tick(self) -> list[ExecutionReport]:
        """One round: settle what can be settled now and hand it to the sink."""
        self.rounds += 1
        try:
            reports = await self.execution.reconcile(everything=True)
        except Exception as exc:  # reconcile raises nothing for venue trouble: this is a bug, not the venue
            self.failures += 1
            log.exception("reconciler_failed")
            self._alert("clob_reconciler_failed", f"a reconciliation round raised {type(exc).__name__}")
            return []
        if reports:
            try:
                self._sink(list(reports))
            except Exception as exc:
                # these orders already left reconciliation: their reports will not come again
                self.failures += 1
                log.exception("reconciler_sink_failed", reports=len(reports))
                self._alert(
                    "clob_reconciler_sink_failed",
                    f"the reconciler's sink raised {type(exc).__name__}: {len(reports)} reports lost",
                    order_ids=",".join(r.order_id for r in reports)[:500],
                )
        return reports

    async def run(self) -> None:
        while True:
            await self._sleep(self.interval_s)
            await self.tick()
