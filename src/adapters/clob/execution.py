"""Live execution on the Polymarket CLOB: signed V2 orders over REST (core.ports.ExecutionPort).

Theory of operation
-------------------
An order is signed once. Its deterministic salt (from the engine's order id) and its body bytes are
kept in an outbox entry, and every re-post sends exactly those bytes: the venue can then only ever
see one order, however often a network failure makes us repeat it. The single exception is
`order_version_mismatch`: the exchange moved to a new order version, the old signature can never be
accepted, so the order is re-signed once (same salt, fresh timestamp) after refreshing GET /version.

What a failed POST means decides what happens next (predicates in retry.py):

* 429 / 425 / a connection that never opened: the venue did not act. Wait (Retry-After as a floor;
  1-2 s doubling while the engine restarts) and send the same bytes again. After a restart the engine
  takes only post-only orders for 2 minutes: non-post-only orders are refused locally meanwhile.
* timeout / dropped connection / 5xx: UNKNOWN outcome. The order may be live or filled. It is
  reported as OrderStatusUnknown and parked; before anything new is posted, reconciliation asks
  GET /data/order/{order hash}. Found: its state is reported. Not found: the same bytes are posted
  again (a duplicate is refused by the venue, so this cannot double-fill), a bounded number of times.
* any other refusal: OrderRejected with the venue's text; refusals that point at us (bad order, no
  funds, bad keys) count towards the circuit breaker, which stops all posting and alerts.

Before signing, the order's tick is checked against the freshest tick we know: tick_size_change and
book events from the market feed refresh it, and an entry older than `tick_ttl_ms` is fetched again
(GET /tick-size, through the market metadata client of markets.py), so a tick is never trusted forever.

Every answer is decoded and range-checked by parsing.py: an unreadable answer is a MalformedMessage,
which for an order post means an unknown outcome (the order may have been placed).

Fills are learned from trades only (the user channel, or GET /data/trades during reconciliation and
`status`), keyed by trade id, so a trade reported as MATCHED, MINED and CONFIRMED counts once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import attrs
import msgspec

from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.errors import (
    DuplicateOrder,
    EngineRestarting,
    MalformedMessage,
    NotFound,
    OrderNotFilled,
    OrderVersionMismatch,
    PostOnlyMode,
    RateLimited,
    UnknownOutcome,
    VenueError,
    error_from_order_message,
)
from polysnipe.adapters.clob.markets import FIRST_PAGE, LAST_PAGE, ClobMarkets
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
    WireTradesPage,
)
from polysnipe.adapters.clob.signing import MAX_BATCH_ORDERS, OrderSigner, SignedOrder, batch_post_body
from polysnipe.core.events import MAX_TS_MS, BookSnapshot, Event, Side, TickSizeChange
from polysnipe.core.messages import (
    ExecutionReport,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderStatusUnknown,
    RaiseAlert,
)
from polysnipe.core.order_math import ROUNDING
from polysnipe.core.ports import NEVER_MS, Clock, Rng

__all__ = ["SUPPORTED_ORDER_VERSIONS", "ClobExecution", "OrderIndex", "VenueOrder"]

#: exchange order versions our signer produces (signing.py signs the V2 domain)
SUPPORTED_ORDER_VERSIONS: Final = frozenset({2})
#: order-response statuses that mean "accepted" (PROTOCOL.md 5.3)
_ACCEPTED: Final = frozenset({"live", "matched", "delayed"})
_RESTING: Final = frozenset({"live", "delayed"})
_SIDES: Final = {"BUY": Side.BUY, "SELL": Side.SELL}
#: an order's expiration, unix seconds: within the timestamp window
_MAX_EXPIRATION_S: Final = MAX_TS_MS // 1000

_order_response = msgspec.json.Decoder(WireOrderResponse)
_batch_response = msgspec.json.Decoder(list[WireOrderResponse])
_cancel_response = msgspec.json.Decoder(WireCancelResponse)
_order_or_null = msgspec.json.Decoder(WireOrder | None)
_orders_page = msgspec.json.Decoder(WireOrdersPage)
_trades_page = msgspec.json.Decoder(WireTradesPage)
_EMPTY_BODIES: Final = frozenset({b"", b"null", b"{}", b'""'})


# -- bookkeeping ---------------------------------------------------------------------------------
class OrderIndex:
    """Our order ids and the venue's, both ways, plus which orders rest on the book.

    Shared by execution (which learns venue ids from order responses) and the user channel (which
    maps venue ids back to ours). Orders that reached a terminal state are forgotten once
    `keep_terminal` newer ones did, so the index stays bounded while late reports (a fill racing a
    cancel) still find their order.
    """

    __slots__ = (
        "_by_order",
        "_by_venue",
        "_done",
        "_fills",
        "_resting",
        "_sizes",
        "_terminal",
        "keep_terminal",
    )

    def __init__(self, keep_terminal: int = 100_000) -> None:
        self.keep_terminal = keep_terminal
        self._by_order: dict[str, str] = {}
        self._by_venue: dict[str, str] = {}
        self._sizes: dict[str, int] = {}
        #: per order: trade id -> size, so a trade reported again is not counted twice
        self._fills: dict[str, dict[str, int]] = {}
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

    def observe(self, report: ExecutionReport) -> None:
        """Keep `resting` in step with what the venue reports about our orders."""
        order_id = report.order_id
        if isinstance(report, OrderFilled):
            size = self._sizes.get(order_id)
            if size is None:
                return
            fills = self._fills.setdefault(order_id, {})
            fills[report.trade_id] = report.size
            if sum(fills.values()) >= size:
                self._finish(order_id)
        elif isinstance(report, OrderCancelled | OrderExpired | OrderRejected):
            self._finish(order_id)

    def _finish(self, order_id: str) -> None:
        if order_id in self._done:
            return
        self._resting.discard(order_id)
        self._fills.pop(order_id, None)
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


@attrs.define(slots=True)
class _Outbox:
    """One signed order: the bytes that every re-post sends again."""

    request: OrderRequest
    signed: SignedOrder
    body: bytes
    reposts: int = 0


# -- the adapter ---------------------------------------------------------------------------------
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
        signer: OrderSigner,
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
        self._unknown: dict[str, _Outbox] = {}
        self._reconcile_lock = asyncio.Lock()
        self._post_only_until_ms = 0
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
    def post_only_until_ms(self) -> int:
        return self._post_only_until_ms

    def _open_post_only_window(self) -> None:
        self._post_only_until_ms = self._now_ms() + int(self._policy.post_only_window_s * 1000)

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
    def _sign(self, request: OrderRequest) -> _Outbox:
        signed = self._signer.sign_request(request, self._now_ms())
        body = signed.post_body(self._owner, request.order_type, post_only=request.post_only)
        entry = _Outbox(request, signed, body)
        self.index.add(request.order_id, signed.order_hash, request.size)
        return entry

    async def _prepare(self, order: OrderRequest) -> _Outbox | OrderRejected:
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
        try:
            return self._sign(order)
        except ValueError as exc:  # OrderMathError, bad token id, GTD without expiry...
            return OrderRejected(order.order_id, now, "invalid_order", str(exc))

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
                    if now - restart_since_ms > self._policy.restart_budget_s * 1000:
                        raise
                elif attempt > self._policy.max_attempts:
                    raise
                delay_s = retry_delay_s(exc, attempt, self._policy, self._rng)
                if isinstance(exc, RateLimited) and delay_s > self._policy.max_rate_wait_s:
                    raise
                await self._sleep(delay_s)
                continue
            if restart_since_ms is not None:
                self._open_post_only_window()
            return raw

    @staticmethod
    def _check_accepted(response: WireOrderResponse) -> None:
        """Raise the typed rejection unless the answer is an acceptance (PROTOCOL.md 5.3)."""
        status = (response.status or "").lower()
        # (the recorded minimal acceptance carries no status at all: the order was taken)
        if (
            response.success
            and not response.errorMsg
            and response.orderID
            and (status in _ACCEPTED or not status)
        ):
            return
        if status == "unmatched":
            raise OrderNotFilled(200, "unmatched", response.errorMsg or "unmatched")
        raise error_from_order_message(response.errorMsg or f"order not accepted (status {status!r})")

    def _accepted(self, entry: _Outbox, response: WireOrderResponse) -> list[ExecutionReport]:
        request = entry.request
        venue_id = response.orderID or entry.signed.order_hash
        # The orderID is believed to be the EIP-712 hash (UNVERIFIED): index whatever the venue says.
        self.index.add(request.order_id, venue_id, request.size)
        status = (response.status or "live").lower()
        if status in _RESTING and not request.order_type.is_immediate:
            self.index.mark_resting(request.order_id)
        self.circuit.record_success()
        return [OrderAccepted(request.order_id, self._now_ms(), venue_id)]

    def _unknown_outcome(self, entry: _Outbox, detail: str) -> list[ExecutionReport]:
        self._unknown[entry.request.order_id] = entry
        return [OrderStatusUnknown(entry.request.order_id, self._now_ms(), detail)]

    def _rejected(self, entry: _Outbox, exc: VenueError) -> list[ExecutionReport]:
        order_id = entry.request.order_id
        if isinstance(exc, PostOnlyMode):
            self._open_post_only_window()
        if counts_as_reject(exc) and self.circuit.record_reject(f"{exc.code}: {exc.message}"):
            self._raise_alert(
                "critical",
                "clob_circuit_open",
                f"{self.circuit.threshold} consecutive order rejects; posting stopped",
                last_reason=self.circuit.last_reason,
            )
        report = OrderRejected(order_id, self._now_ms(), exc.code, exc.message)
        self.index.observe(report)
        return [report]

    async def _answer(
        self, entry: _Outbox, response: WireOrderResponse, may_resign: bool
    ) -> list[ExecutionReport]:
        """Reports for one order's answer (single post or one batch element)."""
        try:
            self._check_accepted(response)
        except VenueError as exc:
            return await self._on_venue_error(entry, exc, may_resign)
        return self._accepted(entry, response)

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
        return await self._post(self._sign(entry.request), may_resign=False)

    # -- the engine loop's ExecutionPort ---------------------------------------------------------
    @property
    def wake_ms(self) -> int:
        """Nothing falls due here by itself: later reports come from the user channel."""
        return NEVER_MS

    def due(self, now_ms: int) -> Sequence[ExecutionReport]:
        return ()

    async def submit(self, order: OrderRequest, now_ms: int | None = None) -> list[ExecutionReport]:
        """Sign and post one order. Unknown outcomes of earlier posts are reconciled first; while one
        stays unknown, nothing new is posted. Orders carry this adapter's clock (`now_ms`, the engine's
        time, is not what the venue checks)."""
        reports = await self.reconcile()
        if self._unknown:
            reports.append(
                OrderRejected(
                    order.order_id, self._now_ms(), "unknown_outcome_pending", ",".join(self._unknown)
                )
            )
            return reports
        prepared = await self._prepare(order)
        if isinstance(prepared, OrderRejected):
            reports.append(prepared)
            return reports
        reports.extend(await self._post(prepared))
        return reports

    async def post_batch(self, orders: Sequence[OrderRequest]) -> list[ExecutionReport]:
        """POST /orders in chunks of at most 15; each order gets its own reports, in order."""
        reports = await self.reconcile()
        if self._unknown:
            now = self._now_ms()
            pending = ",".join(self._unknown)
            reports.extend(OrderRejected(o.order_id, now, "unknown_outcome_pending", pending) for o in orders)
            return reports
        entries: list[_Outbox] = []
        for order in orders:
            prepared = await self._prepare(order)
            if isinstance(prepared, OrderRejected):
                reports.append(prepared)
            else:
                entries.append(prepared)
        for start in range(0, len(entries), MAX_BATCH_ORDERS):
            reports.extend(await self._post_chunk(entries[start : start + MAX_BATCH_ORDERS]))
        return reports

    async def _post_chunk(self, chunk: list[_Outbox]) -> list[ExecutionReport]:
        reports: list[ExecutionReport] = []
        try:
            raw = await self._send_orders("/orders", batch_post_body([e.body for e in chunk]), len(chunk))
            answers = decode_json(_batch_response, raw, "batch response")
            if len(answers) != len(chunk):
                raise MalformedMessage(f"batch response: {len(answers)} answers for {len(chunk)} orders")
        except UnknownOutcome as exc:
            for entry in chunk:
                reports.extend(self._unknown_outcome(entry, exc.message))
            return reports
        except MalformedMessage as exc:
            for entry in chunk:
                reports.extend(self._unknown_outcome(entry, f"unreadable answer: {exc.reason}"))
            return reports
        except VenueError as exc:
            # a batch is all-or-nothing: one HTTP-level refusal refuses every order in it
            for entry in chunk:
                reports.extend(self._rejected(entry, exc))
            return reports
        for entry, answer in zip(chunk, answers, strict=True):
            reports.extend(await self._answer(entry, answer, may_resign=True))
        return reports

    # -- reconciliation ----------------------------------------------------------------------
    async def _fetch_order(self, venue_id: str) -> WireOrder | None:
        try:
            raw = await self._idempotent("GET", f"/data/order/{venue_id}", auth=True)
        except NotFound:
            return None
        if raw.strip() in _EMPTY_BODIES:
            return None
        wire: WireOrder | None = decode_json(_order_or_null, raw, f"order {venue_id}")
        return wire

    async def _trade_fills(self, order_id: str, trade_ids: Sequence[str]) -> list[ExecutionReport]:
        fills: list[ExecutionReport] = []
        for trade_id in trade_ids:
            raw = await self._idempotent("GET", "/data/trades", params={"id": trade_id}, auth=True)
            for trade in decode_json(_trades_page, raw, "trades").data:
                for fill in fills_from_trade(
                    trade, self.index.order_id, ts_recv_ms=self._now_ms(), fee_of=self._fee_of
                ):
                    if fill.order_id == order_id:
                        fills.append(fill)
        return fills

    async def _order_state(self, order_id: str, wire: WireOrder) -> list[ExecutionReport]:
        self.index.add(order_id, wire.id, self._size_of(order_id, wire))
        reports = order_reports(wire, order_id, ts_recv_ms=self._now_ms())
        if any(isinstance(r, OrderAccepted) for r in reports) and (wire.status or "").upper() == "LIVE":
            self.index.mark_resting(order_id)
        fills = await self._trade_fills(order_id, wire.associate_trades or ())
        # An order that filled and then ended (cancelled, expired) shows its fills first: that is
        # the order they happened in, and what the order state machine expects.
        ends = bool(reports) and not isinstance(reports[0], OrderAccepted)
        ordered = fills + reports if ends else reports + fills
        for report in ordered:
            self.index.observe(report)
        return ordered

    def _size_of(self, order_id: str, wire: WireOrder) -> int:
        entry = self._unknown.get(order_id)
        if entry is not None:
            return entry.request.size
        try:
            return parse_size(wire.original_size) if wire.original_size else 0
        except ValueError as exc:
            raise MalformedMessage(f"order {wire.id[:80]}: {exc}") from None

    async def reconcile(self) -> list[ExecutionReport]:
        """Settle every order whose submission outcome is unknown; returns what was learned.

        Found on the venue: its state (and fills). Not found: the same signed bytes are posted again,
        at most `max_reposts` times; after that the order is given up with an alert, since the venue
        has now refused or lost the identical bytes several times.
        """
        if not self._unknown:
            return []
        reports: list[ExecutionReport] = []
        async with self._reconcile_lock:
            for order_id, entry in list(self._unknown.items()):
                try:
                    wire = await self._fetch_order(entry.signed.order_hash)
                    # (its trades are read before the order leaves the unknown set: an unreadable
                    # trades answer must leave it unknown, not escape submit)
                    state = None if wire is None else await self._order_state(order_id, wire)
                except (VenueError, MalformedMessage):
                    continue  # still unknown: keep blocking new posts rather than guess
                del self._unknown[order_id]
                if state is not None:
                    reports.extend(state)
                    continue
                if entry.reposts >= self._policy.max_reposts:
                    self._raise_alert(
                        "warning",
                        "clob_order_lost",
                        f"order {order_id} not on the venue after {entry.reposts} re-posts",
                        order_hash=entry.signed.order_hash,
                    )
                    reports.append(OrderRejected(order_id, self._now_ms(), "not_found_after_timeout"))
                    continue
                entry.reposts += 1
                reports.extend(await self._post(entry, may_resign=False))
        return reports

    async def status(self, order_id: str) -> list[ExecutionReport]:
        """The venue's view of one of our orders: its state, then its fills (from its trades)."""
        venue_id = self.index.venue_id(order_id)
        if venue_id is None:
            return []
        wire = await self._fetch_order(venue_id)
        if wire is None:
            return []
        self._unknown.pop(order_id, None)
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
        """Cancel one order. When the venue will not cancel it (already matched or gone), its actual
        state is fetched instead, so a fill racing the cancel is reported, not lost."""
        venue_id = self.index.venue_id(order_id)
        if venue_id is None:
            return []
        await self._reserve(1, cancels=True)
        body = msgspec.json.encode({"orderID": venue_id})
        raw = await self._idempotent("DELETE", "/order", body=body, auth=True)
        reports, refused = await self._cancel_reports(raw)
        if venue_id in refused:
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
        for venue_id in refused:
            order_id = self.index.order_id(venue_id)
            if order_id is not None:
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
        cursor = FIRST_PAGE
        while cursor != LAST_PAGE:
            raw = await self._idempotent(
                "GET", "/data/orders", params={**params, "next_cursor": cursor}, auth=True
            )
            page = decode_json(_orders_page, raw, "orders")
            out.extend(self._venue_order(o) for o in page.data)
            cursor = page.next_cursor or LAST_PAGE
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
        params = {
            k: v
            for k, v in (("market", market), ("asset_id", token_id), ("after", after_s and str(after_s)))
            if v
        }
        out: list[OrderFilled] = []
        cursor = FIRST_PAGE
        while cursor != LAST_PAGE:
            raw = await self._idempotent(
                "GET", "/data/trades", params={**params, "next_cursor": cursor}, auth=True
            )
            page = decode_json(_trades_page, raw, "trades")
            for trade in page.data:
                out.extend(
                    fills_from_trade(
                        trade, self.index.order_id, ts_recv_ms=self._now_ms(), fee_of=self._fee_of
                    )
                )
            cursor = page.next_cursor or LAST_PAGE
        return out

    async def book(self, token_id: str) -> RestBook:
        """GET /book, hash-checked (see parsing.parse_rest_book); also refreshes the token's tick."""
        raw = await self._idempotent("GET", "/book", params={"token_id": token_id})
        book = parse_rest_book(raw, ts_recv_ms=self._now_ms())
        self.on_market_event(book.snapshot)
        return book
