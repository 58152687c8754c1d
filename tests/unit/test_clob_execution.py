"""ClobExecution, ClobHttpClient and Heartbeat over httpx.MockTransport: the production HTTP path
against a small stateful venue with scripted faults (500s, 429 + Retry-After, 425, timeouts)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import httpx
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit import opportunity, order_request, run
from polysnipe.adapters.clob.auth import ApiCreds, LocalSigner, l2_signature
from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.conditions import VenueConditions
from polysnipe.adapters.clob.config import ClobConfig, exchange_contracts
from polysnipe.adapters.clob.errors import (
    MalformedMessage,
    NotFound,
    TransportFailure,
    UnknownOutcome,
    VenueError,
)
from polysnipe.adapters.clob.execution import ClobExecution, OrderIndex
from polysnipe.adapters.clob.heartbeat import Heartbeat, VenueHealth
from polysnipe.adapters.clob.retry import BucketSpec, CircuitBreaker, RateBudgets, RetryPolicy
from polysnipe.adapters.clob.signing import (
    ORDER_TYPE_STRING,
    OrderSigner,
    OrderSigningFailed,
    OrderSigningPort,
    ParallelSigner,
    SignedOrder,
    domain_separator,
    keccak256,
)
from polysnipe.adapters.postgres.journal import PostgresJournal
from polysnipe.adapters.postgres.outbox import PostgresOutbox
from polysnipe.core.events import Side, TickSizeChange
from polysnipe.core.messages import (
    ExecutionReport,
    Liquidity,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderType,
    PlaceOrder,
    RaiseAlert,
    RecordOpportunity,
    VenueCondition,
)

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
CREDS = ApiCreds(
    api_key="3843ba63-391a-4a8a-b913-d6c677fd7d6f",
    secret="468NIDFB-ziroyChmdO3fiJUKy7zjxahDLpTEEPxE7I=",
    passphrase="7cef18803c4ed83e4c409c7b57fa5c65853478780ff3c4520c74abd395f04199",
)
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
MARKET = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"
HOST = "https://clob.test"
T0_MS = 1_764_061_200_000


class FakeClock:
    def __init__(self, ms: int = T0_MS) -> None:
        self.ms = ms

    def now_ms(self) -> int:
        return self.ms

    def monotonic_ns(self) -> int:
        return self.ms * 1_000_000


class Sleeper:
    """Injected sleep: records each wait and moves the fake clock instead of waiting."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.ms += int(seconds * 1000)
        await asyncio.sleep(0)  # yield like a real sleep, so loops around it stay cancellable


def venue_order_hash(order: dict[str, Any], chain_id: int = 137) -> str:
    """The EIP-712 digest recomputed from the wire body alone, the way a venue would."""

    def word(value: int) -> bytes:
        return value.to_bytes(32, "big")

    def address(value: str) -> bytes:
        return bytes(12) + bytes.fromhex(value[2:])

    struct = keccak256(
        keccak256(ORDER_TYPE_STRING.encode())
        + word(int(order["salt"]))
        + address(order["maker"])
        + address(order["signer"])
        + word(int(order["tokenId"]))
        + word(int(order["makerAmount"]))
        + word(int(order["takerAmount"]))
        + word(0 if order["side"] == "BUY" else 1)
        + word(int(order["signatureType"]))
        + word(int(order["timestamp"]))
        + bytes.fromhex(order["metadata"][2:])
        + bytes.fromhex(order["builder"][2:])
    )
    domain = domain_separator(
        chain_id, exchange_contracts(chain_id).exchange_v2, name="Polymarket CTF Exchange", version="2"
    )
    return "0x" + keccak256(b"\x19\x01" + domain + struct).hex()


Fault = str  # see FakeVenue.post_order


class FakeVenue:
    """A venue that stores orders by hash, checks L2 HMACs and plays scripted faults on POST /order.

    Faults: "ok"; "500" and "timeout" (order NOT stored); "500_stored" and "timeout_stored" (the
    venue stored it, then the answer was lost); "429" (Retry-After: 2); "425"; "mismatch"
    (order_version_mismatch); "balance"; "cancel_only" (503); "connect" (connection refused before
    sending).
    """

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.script: list[Fault] = []
        self.posted: list[bytes] = []
        self.stored: list[tuple[str, bytes]] = []
        self.requests: list[tuple[str, str]] = []
        self.version = 2
        self.tick = "0.01"
        self.trades: dict[str, dict[str, Any]] = {}
        self.heartbeat_id = ""
        self.heartbeat_script: list[Fault] = []
        self.not_cancelable: set[str] = set()
        #: order ids the next GET /data/order does not find (a lagging read path)
        self.lookup_misses: set[str] = set()
        #: (fault, body) of every POST /order that reached the venue, in order
        self.outcomes: list[tuple[Fault, bytes]] = []
        #: a venue whose order ids are not the EIP-712 hash (what PROTOCOL.md 12 cannot rule out)
        self.foreign_ids = False

    # -- plumbing ------------------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def _check_l2(self, request: httpx.Request) -> None:
        headers = request.headers
        expected = l2_signature(
            CREDS.secret, int(headers["POLY_TIMESTAMP"]), request.method, request.url.path, request.content
        )
        assert expected == headers["POLY_SIGNATURE"], "L2 HMAC must cover the exact bytes sent"
        assert CREDS.api_key == headers["POLY_API_KEY"]

    @staticmethod
    def reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.Response(status, content=json.dumps(obj).encode(), headers=headers)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append((request.method, path))
        if path.startswith(("/order", "/orders", "/data", "/cancel", "/v1/heartbeats")):
            self._check_l2(request)
        if request.method == "POST" and path == "/order":
            return self.post_order(request)
        if request.method == "POST" and path == "/orders":
            bodies = json.loads(request.content)
            return self.reply([self._store(b["order"], json.dumps(b).encode()) for b in bodies])
        if request.method == "GET" and path.startswith("/data/order/"):
            order_id = path.rsplit("/", 1)[1]
            if order_id in self.lookup_misses:
                self.lookup_misses.discard(order_id)
                return self.reply({"error": "order not found"}, 404)
            order = self.orders.get(order_id)
            return self.reply(order) if order else self.reply({"error": "order not found"}, 404)
        if request.method == "GET" and path == "/data/trades":
            params = request.url.params
            if "id" in params:
                trade = self.trades.get(params["id"])
                return self.reply({"data": [trade] if trade else [], "next_cursor": "LTE="})
            rows = [t for t in self.trades.values() if params.get("market", t["market"]) == t["market"]]
            return self.reply({"data": rows, "next_cursor": "LTE="})
        if request.method == "GET" and path == "/version":
            return self.reply({"version": self.version})
        if request.method == "GET" and path == "/tick-size":
            return httpx.Response(200, content=f'{{"minimum_tick_size": {self.tick}}}'.encode())
        if request.method == "DELETE" and path == "/order":
            venue_id = json.loads(request.content)["orderID"]
            if venue_id in self.not_cancelable or venue_id not in self.orders:
                return self.reply({"canceled": [], "not_canceled": {venue_id: "already canceled or matched"}})
            self.orders[venue_id]["status"] = "CANCELED"
            return self.reply({"canceled": [venue_id], "not_canceled": {}})
        if request.method == "POST" and path == "/v1/heartbeats":
            return self.heartbeat(request)
        raise AssertionError(f"unexpected {request.method} {path}")

    def _store(self, order: dict[str, Any], body: bytes) -> dict[str, Any]:
        order_hash = venue_order_hash(order)
        if self.foreign_ids:
            order_hash = "0x" + keccak256(b"venue:" + order_hash.encode()).hex()
        if order_hash in self.orders:
            return {"success": False, "errorMsg": "order is invalid. Duplicated.", "orderID": ""}
        self.orders[order_hash] = {
            "id": order_hash,
            "status": "LIVE",
            "market": MARKET,
            "asset_id": order["tokenId"],
            "side": order["side"],
            "original_size": "100",
            "size_matched": "0",
            "price": "0.5",
            "associate_trades": [],
            "order_type": "GTC",
            "owner": CREDS.api_key,
        }
        self.stored.append((order_hash, body))
        return {"success": True, "errorMsg": "", "orderID": order_hash, "status": "live"}

    def post_order(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        fault = self.script.pop(0) if self.script else "ok"
        if fault == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        self.posted.append(body)
        self.outcomes.append((fault, body))
        order = json.loads(body)["order"]
        if fault == "429":
            return self.reply({"error": "Too Many Requests"}, 429, {"Retry-After": "2"})
        if fault == "425":
            return httpx.Response(425, content=b"Too Early")
        if fault == "mismatch":
            return self.reply({"error": "order_version_mismatch"}, 400)
        if fault == "balance":
            return self.reply({"error": "not enough balance / allowance"}, 400)
        if fault == "cancel_only":
            text = "Trading is currently cancel-only. New orders are not accepted, but cancels are allowed."
            return self.reply({"error": text}, 503)
        if fault in ("500", "timeout"):
            if fault == "500":
                return self.reply({"error": "Internal server error"}, 500)
            raise httpx.ReadTimeout("timed out", request=request)
        answer = self._store(order, body)
        if fault == "500_stored":
            return self.reply({"error": "Internal server error"}, 500)
        if fault == "timeout_stored":
            raise httpx.ReadTimeout("timed out", request=request)
        return (
            self.reply(answer, 200 if answer["success"] else 400)
            if answer["success"]
            else self.reply({"error": answer["errorMsg"]}, 400)
        )

    def heartbeat(self, request: httpx.Request) -> httpx.Response:
        fault = self.heartbeat_script.pop(0) if self.heartbeat_script else "ok"
        if fault == "500":
            return self.reply({"error": "Internal server error"}, 500)
        sent = json.loads(request.content)["heartbeat_id"]
        if sent != self.heartbeat_id:
            return self.reply({"error_msg": "Invalid Heartbeat ID", "heartbeat_id": self.heartbeat_id}, 400)
        self.heartbeat_id = f"hb-{len(self.requests)}"
        return self.reply({"heartbeat_id": self.heartbeat_id})


class Harness:
    def __init__(
        self, venue: FakeVenue | None = None, signer: OrderSigningPort | None = None, **kwargs: Any
    ) -> None:
        self.venue = venue or FakeVenue()
        self.clock = FakeClock()
        self.sleeper = Sleeper(self.clock)
        self.alerts: list[RaiseAlert] = []
        self.local = LocalSigner.from_private_key(KEY, 137, CREDS)
        self.client = ClobHttpClient(
            ClobConfig(host=HOST), self.clock, self.local, transport=self.venue.transport()
        )
        self.signer = signer or OrderSigner.from_key(KEY, 137)
        self.execution = ClobExecution(
            self.client,
            self.signer,
            owner=CREDS.api_key,
            clock=self.clock,
            rng=random.Random(7),
            alert=self.alerts.append,
            sleep=self.sleeper,
            **kwargs,
        )
        # a known, fresh tick: most tests are not about tick refreshes
        self.execution.on_market_event(TickSizeChange(self.clock.ms, TOKEN, MARKET, 10_000, 10_000))


def order(n: int = 0, **changes: Any) -> OrderRequest:
    fields: dict[str, Any] = {
        "opportunity_id": f"opp-{n}", "correlation_id": f"c-{n}", "strategy": "test", "routing": "passive",
        "wallet": "w", "market": MARKET, "token_id": TOKEN, "size": 100_000_000, "order_type": OrderType.GTC,
    }  # fmt: skip
    return order_request(f"opp-{n}:0", **{**fields, **changes})


def kinds(reports: Sequence[object]) -> list[str]:
    return [type(r).__name__ for r in reports]


def salt_of(body: bytes) -> int:
    return int(json.loads(body)["order"]["salt"])


# -- the happy path ------------------------------------------------------------------------------
def test_submit_posts_signed_bytes_and_reports_acceptance() -> None:
    h = Harness()
    reports = run(h.execution.submit(order()))
    assert ["OrderAccepted"] == kinds(reports)
    (order_hash, body) = h.venue.stored[0]
    accepted = reports[0]
    assert isinstance(accepted, OrderAccepted)
    assert order_hash == accepted.venue_order_id  # the venue's id is the EIP-712 hash we computed
    assert h.execution.index.venue_id("opp-0:0") == order_hash
    assert 1 == h.execution.index.resting_count
    assert CREDS.api_key == json.loads(body)["owner"]


# -- unknown outcomes: never posted twice, reconciled by hash ------------------------------------
@pytest.mark.parametrize("fault", ["500_stored", "timeout_stored"])
def test_lost_answer_after_the_venue_stored_the_order_is_reconciled_not_reposted(fault: str) -> None:
    h = Harness()
    h.venue.script = [fault]
    first = run(h.execution.submit(order(1)))
    assert ["OrderStatusUnknown"] == kinds(first)
    assert ["opp-1:0"] == h.execution.unknown_orders
    second = run(h.execution.submit(order(2)))
    # reconciliation found order 1 by its hash before order 2 was posted
    assert ["OrderAccepted", "OrderAccepted"] == kinds(second)
    assert ["opp-1:0", "opp-2:0"] == [r.order_id for r in second]
    gets = [i for i, (m, p) in enumerate(h.venue.requests) if m == "GET" and p.startswith("/data/order/")]
    posts = [i for i, (m, p) in enumerate(h.venue.requests) if m == "POST" and p == "/order"]
    assert gets[0] < posts[1]
    assert 2 == len(h.venue.stored)
    assert [salt_of(b) for b in h.venue.posted].count(salt_of(h.venue.posted[0])) == 1


@pytest.mark.parametrize("fault", ["500", "timeout"])
def test_lost_order_is_reposted_as_the_same_bytes(fault: str) -> None:
    h = Harness()
    h.venue.script = [fault]
    assert ["OrderStatusUnknown"] == kinds(run(h.execution.submit(order(1))))
    reports = run(h.execution.reconcile())
    assert ["OrderAccepted"] == kinds(reports)
    assert (
        h.venue.posted[0] == h.venue.posted[1]
    )  # identical bytes: same salt, same timestamp, same signature
    assert 1 == len(h.venue.stored)


def test_duplicate_on_repost_means_the_first_post_landed() -> None:
    h = Harness()
    h.venue.script = ["timeout_stored"]
    run(h.execution.submit(order(1)))
    order_hash = h.venue.stored[0][0]
    # the venue's order lookup lags behind its book once: reconciliation re-posts the same bytes,
    # the venue answers "Duplicated", and the order stays unknown instead of being given up
    h.venue.lookup_misses.add(order_hash)
    assert ["OrderStatusUnknown"] == kinds(run(h.execution.reconcile()))
    assert h.venue.posted[0] == h.venue.posted[1]
    assert ["OrderAccepted"] == kinds(run(h.execution.reconcile()))
    assert [order_hash] == [hash_ for hash_, _ in h.venue.stored]
    assert not h.alerts


def test_new_orders_wait_while_an_outcome_stays_unknown() -> None:
    h = Harness()
    h.venue.script = ["timeout_stored"]
    run(h.execution.submit(order(1)))

    def refuse_lookups(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/data/order/"):
            return httpx.Response(503, content=b'{"error": "upstream"}')
        return h.venue.handle(request)

    h.client._http._transport = httpx.MockTransport(refuse_lookups)  # the venue's order lookup is down
    reports = run(h.execution.submit(order(2)))
    assert ["OrderRejected"] == kinds(reports)
    assert isinstance(reports[0], OrderRejected)
    assert "unknown_outcome_pending" == reports[0].reason
    assert 1 == len(h.venue.posted)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.sampled_from(["ok", "500", "500_stored", "timeout", "timeout_stored", "429", "connect"]),
        max_size=12,
    ),
    st.integers(1, 6),
)
def test_no_order_is_ever_stored_twice_whatever_the_faults(faults: list[str], n_orders: int) -> None:
    h = Harness(policy=RetryPolicy(max_reposts=3))
    h.venue.script = list(faults)
    salts: dict[int, set[bytes]] = {}

    async def scenario() -> list[ExecutionReport]:
        out: list[ExecutionReport] = []
        for n in range(n_orders):
            out += await h.execution.submit(order(n))
        for _ in range(4):
            out += await h.execution.reconcile()
        return out

    run(scenario())
    for body in h.venue.posted:
        salts.setdefault(salt_of(body), set()).add(body)
    # every re-post of one order is byte-identical
    assert all(1 == len(bodies) for bodies in salts.values())
    stored_hashes = [hash_ for hash_, _ in h.venue.stored]
    assert len(stored_hashes) == len(set(stored_hashes))
    assert len(h.venue.stored) <= n_orders


UNKNOWN_FAULTS = ("500", "timeout", "500_stored", "timeout_stored")


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.sampled_from(["ok", "500", "500_stored", "timeout", "timeout_stored", "429", "connect"]),
        max_size=12,
    ),
    st.lists(st.sampled_from([OrderType.GTC, OrderType.FAK, OrderType.FOK]), min_size=1, max_size=6),
)
def test_an_immediate_order_is_never_posted_again_after_an_unknown_outcome(
    faults: list[str], types: list[OrderType]
) -> None:
    h = Harness(policy=RetryPolicy(max_reposts=3))
    h.venue.script = list(faults)

    async def scenario() -> None:
        for n, order_type in enumerate(types):
            await h.execution.submit(order(n, order_type=order_type))
        for _ in range(4):
            h.clock.ms += 11_000  # past the settle grace, within the GTC re-post window
            await h.execution.reconcile(everything=True)

    run(scenario())
    immediate = {salt_of(b) for f, b in h.venue.outcomes if json.loads(b)["orderType"] in ("FAK", "FOK")}
    for salt in immediate:
        faults_of = [f for f, b in h.venue.outcomes if salt_of(b) == salt]
        first_unknown = next((i for i, f in enumerate(faults_of) if f in UNKNOWN_FAULTS), None)
        # 429s and refused connections may repeat it (the venue did not act); nothing after an unknown
        assert first_unknown is None or first_unknown == len(faults_of) - 1


def test_a_gtc_is_reposted_only_within_its_window_then_ends_cancelled_not_rejected() -> None:
    h = Harness()
    h.venue.script = ["ok", "500"]
    run(h.execution.submit(order(0)))  # acknowledged under our hash: order ids verified
    assert ["OrderStatusUnknown"] == kinds(run(h.execution.submit(order(1))))
    h.clock.ms += 16_000  # the GTC's price is older than its re-post window now
    reports = run(h.execution.reconcile())
    assert ["OrderCancelled"] == kinds(reports)
    assert isinstance(reports[0], OrderCancelled)
    assert "not_on_venue" == reports[0].reason
    assert 2 == len(h.venue.posted)  # not re-posted
    assert ["clob_order_lost"] == [a.code for a in h.alerts]
    assert (["opp-1:0"], []) == (h.execution.watched_orders, h.execution.unknown_orders)


@pytest.mark.parametrize(("wait_ms", "reposted"), [(1_000, True), (31_000, False)])
def test_a_gtd_is_reposted_only_before_its_expiry(wait_ms: int, reposted: bool) -> None:
    h = Harness()
    h.venue.script = ["ok", "500"]
    run(h.execution.submit(order(0)))
    gtd = order(1, order_type=OrderType.GTD, expiration_ms=T0_MS + 30_000)
    assert ["OrderStatusUnknown"] == kinds(run(h.execution.submit(gtd)))
    h.clock.ms += wait_ms
    reports = run(h.execution.reconcile())
    assert (["OrderAccepted"] if reposted else ["OrderCancelled"]) == kinds(reports)
    assert (3 if reposted else 2) == len(h.venue.posted)
    assert h.venue.posted[1] == h.venue.posted[-1]


def test_a_fill_after_a_gtc_was_given_up_reaches_the_engine_and_counts() -> None:
    from polysnipe.adapters.clob.user_channel import UserChannel
    from polysnipe.core.orders import OrderRecord, OrderStatus

    h = Harness(policy=RetryPolicy(max_reposts=1))
    h.venue.script = ["ok", "500", "500"]
    request = order(1, size=10_000_000)
    run(h.execution.submit(order(0)))
    reports = list(run(h.execution.submit(request)))
    reports += run(h.execution.reconcile())  # re-posted once: lost again
    reports += run(h.execution.reconcile())  # re-posts spent: given up
    assert ["OrderStatusUnknown", "OrderStatusUnknown", "OrderCancelled"] == kinds(reports)
    # the order reached the venue after all (a delayed retry by a proxy) and traded
    order_hash = h.execution.index.venue_id("opp-1:0")
    assert order_hash is not None
    h.venue.orders[order_hash] = {
        "id": order_hash,
        "status": "MATCHED",
        "side": "BUY",
        "original_size": "10",
        "size_matched": "10",
        "associate_trades": ["t-late"],
    }
    trade = {
        "id": "t-late",
        "taker_order_id": order_hash,
        "market": MARKET,
        "asset_id": TOKEN,
        "side": "BUY",
        "size": "10",
        "price": "0.5",
        "status": "MATCHED",
        "match_time": "1764061230",
    }
    h.venue.trades["t-late"] = trade
    on_socket = UserChannel(h.execution.index).on_frame(json.dumps({"event_type": "trade", **trade}), 0)
    assert ["OrderFilled", "TradeSettlement"] == kinds(on_socket)
    by_socket = [r for r in on_socket if isinstance(r, OrderFilled)]
    by_rest = run(h.execution.reconcile(everything=True))
    assert (["OrderFilled"], ["OrderFilled"]) == (kinds(by_socket), kinds(by_rest))
    record = OrderRecord(request)
    record.mark_posted()
    for report in [*reports, *by_socket, *by_rest]:
        record.apply(report)
    assert (OrderStatus.CANCELLED, 10_000_000) == (record.status, record.filled_size)


def test_order_ids_that_are_not_our_hashes_stop_posting() -> None:
    h = Harness()
    h.venue.foreign_ids = True
    (accepted,) = run(h.execution.submit(order(1)))
    assert isinstance(accepted, OrderAccepted)
    assert isinstance(h.signer, OrderSigner)  # the harness's default signer
    our_hash = h.signer.sign_request(order(1), T0_MS).order_hash
    assert accepted.venue_order_id != our_hash
    assert "mismatch" == h.execution.order_id_check
    assert [("critical", "clob_order_id_mismatch")] == [(a.severity, a.code) for a in h.alerts]
    (refused,) = run(h.execution.submit(order(2)))
    assert isinstance(refused, OrderRejected)
    assert "circuit_open" == refused.reason
    assert 1 == len(h.venue.posted)
    # the order already placed stays tracked under the id the venue gave it
    assert ["OrderCancelled"] == kinds(run(h.execution.cancel("opp-1:0")))


def test_the_order_id_probe_on_a_venue_with_other_ids_stops_posting() -> None:
    from polysnipe.core.market import Market

    h = Harness()
    h.venue.foreign_ids = True
    market = Market(MARKET, (TOKEN, "1234"), ("Yes", "No"), 10_000, 5_000_000, False)
    assert "mismatch" == run(h.execution.probe_order_ids(market, TOKEN))
    assert h.execution.circuit.is_open
    assert ["clob_order_id_mismatch"] == [a.code for a in h.alerts]
    (probe_id,) = h.venue.orders
    assert "CANCELED" == h.venue.orders[probe_id]["status"]  # cancelled by the id the venue gave


def test_status_of_an_unknown_order_keeps_it_when_the_venue_cannot_be_read() -> None:
    h = Harness()
    h.venue.script = ["timeout_stored"]
    run(h.execution.submit(order(1)))
    order_hash = h.venue.stored[0][0]
    h.venue.orders[order_hash].update(status="MATCHED", size_matched="100", associate_trades=["t-1"])

    def trades_down(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/data/trades":
            return httpx.Response(503, content=b'{"error": "upstream"}')
        return h.venue.handle(request)

    h.client._http._transport = httpx.MockTransport(trades_down)
    assert [] == run(h.execution.status("opp-1:0"))  # no answer yet, and no exception
    assert ["opp-1:0"] == h.execution.unknown_orders  # still tracked: new posts keep waiting


# -- 429 and 425 ---------------------------------------------------------------------------------
def test_429_waits_at_least_retry_after_then_reposts_the_same_bytes() -> None:
    h = Harness()
    h.venue.script = ["429"]
    reports = run(h.execution.submit(order()))
    assert ["OrderAccepted"] == kinds(reports)
    assert h.sleeper.waits and h.sleeper.waits[0] >= 2.0
    assert h.venue.posted[0] == h.venue.posted[1]


def test_429_beyond_the_wait_budget_rejects() -> None:
    h = Harness(policy=RetryPolicy(max_rate_wait_s=1.0))
    h.venue.script = ["429"]
    reports = run(h.execution.submit(order()))
    assert ["OrderRejected"] == kinds(reports)
    assert isinstance(reports[0], OrderRejected)
    assert "rate_limited" == reports[0].reason
    assert not h.alerts  # a busy venue is not a fault of ours: no circuit count


def test_425_backs_off_one_to_two_seconds_then_opens_a_post_only_window() -> None:
    h = Harness()
    h.venue.script = ["425", "425"]
    reports = run(h.execution.submit(order(1, post_only=True)))
    assert ["OrderAccepted"] == kinds(reports)
    assert 1.0 <= h.sleeper.waits[0] <= 2.0
    assert h.sleeper.waits[1] >= h.sleeper.waits[0]
    assert 3 == len(h.venue.posted)
    assert 1 == len(set(h.venue.posted))
    # engine back in post-only mode: a taking order is refused locally, a post-only one goes out
    before = len(h.venue.posted)
    refused = run(h.execution.submit(order(2)))
    assert ["OrderRejected"] == kinds(refused)
    assert isinstance(refused[0], OrderRejected)
    assert "post_only_mode" == refused[0].reason
    assert before == len(h.venue.posted)
    assert ["OrderAccepted"] == kinds(run(h.execution.submit(order(3, post_only=True))))
    h.clock.ms += 121_000
    assert ["OrderAccepted"] == kinds(run(h.execution.submit(order(4))))


class ManualTimers:
    """`later` for VenueConditions: keeps the callbacks so the test fires them when it chooses."""

    def __init__(self) -> None:
        self.pending: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay_s: float, callback: Callable[[], None]) -> ManualTimers:
        self.pending.append((delay_s, callback))
        return self

    def cancel(self) -> None:
        """(a real handle cancels one callback; here the test decides what fires)"""

    def fire_all(self) -> None:
        for _, callback in self.pending:
            callback()
        self.pending.clear()


def test_a_restart_is_told_to_the_engine_as_conditions_that_clear() -> None:
    heard: list[VenueCondition] = []
    clock = FakeClock()
    timers = ManualTimers()
    h = Harness(conditions=VenueConditions(heard.append, clock, timers))
    h.venue.script = ["425", "425"]
    assert ["OrderAccepted"] == kinds(run(h.execution.submit(order(1, post_only=True))))
    # raised once at the first 425, cleared when the post got through, then the post-only window
    assert [("restarting", True), ("restarting", False), ("post_only", True)] == [
        (c.condition, c.active) for c in heard
    ]
    assert [120.0] == [delay for delay, _ in timers.pending[-1:]]
    timers.fire_all()
    assert ("post_only", False) == (heard[-1].condition, heard[-1].active)


def test_a_cancel_only_venue_is_a_condition_held_for_the_probe_time() -> None:
    heard: list[VenueCondition] = []
    timers = ManualTimers()
    venue = FakeVenue()
    h = Harness(venue, conditions=VenueConditions(heard.append, FakeClock(), timers))
    venue.script = ["cancel_only"]
    assert ["OrderRejected"] == kinds(run(h.execution.submit(order(1))))
    assert [("cancel_only", True)] == [(c.condition, c.active) for c in heard]
    assert [10.0] == [delay for delay, _ in timers.pending]


def test_425_for_longer_than_the_restart_budget_rejects() -> None:
    h = Harness(policy=RetryPolicy(restart_budget_s=5))
    h.venue.script = ["425"] * 20
    reports = run(h.execution.submit(order()))
    assert ["OrderRejected"] == kinds(reports)
    assert isinstance(reports[0], OrderRejected)
    assert "engine_restarting" == reports[0].reason


def test_connection_refused_is_retried_with_the_same_bytes() -> None:
    h = Harness()
    h.venue.script = ["connect", "connect"]
    assert ["OrderAccepted"] == kinds(run(h.execution.submit(order())))
    assert 2 == len(h.sleeper.waits)


# -- version mismatch: the one re-sign -----------------------------------------------------------
def test_version_mismatch_refreshes_version_and_resigns_once_with_the_same_salt() -> None:
    h = Harness()
    h.venue.script = ["mismatch"]
    h.clock.ms += 0
    reports = run(h.execution.submit(order()))
    assert ["OrderAccepted"] == kinds(reports)
    assert ("GET", "/version") in h.venue.requests
    first, second = h.venue.posted
    assert salt_of(first) == salt_of(second)
    assert 1 == len(h.venue.stored)


def test_second_version_mismatch_rejects_and_unsupported_version_alerts() -> None:
    h = Harness()
    h.venue.script = ["mismatch", "mismatch"]
    reports = run(h.execution.submit(order()))
    assert ["OrderRejected"] == kinds(reports)
    assert 2 == len(h.venue.posted)
    h2 = Harness()
    h2.venue.version = 3
    h2.venue.script = ["mismatch"]
    reports = run(h2.execution.submit(order()))
    assert ["OrderRejected"] == kinds(reports)
    assert 1 == len(h2.venue.posted)
    assert ["clob_order_version"] == [a.code for a in h2.alerts]


# -- rejections and the circuit ------------------------------------------------------------------
def test_rejections_are_typed_and_open_the_circuit_after_n() -> None:
    h = Harness(circuit=CircuitBreaker(3))
    h.venue.script = ["balance"] * 3
    for n in range(3):
        (report,) = run(h.execution.submit(order(n)))
        assert isinstance(report, OrderRejected)
        assert "insufficient_balance_or_allowance" == report.reason
        assert "not enough balance / allowance" == report.venue_message
    assert ["clob_circuit_open"] == [a.code for a in h.alerts]
    assert "critical" == h.alerts[0].severity
    posted = len(h.venue.posted)
    (report,) = run(h.execution.submit(order(9)))
    assert isinstance(report, OrderRejected)
    assert "circuit_open" == report.reason
    assert posted == len(h.venue.posted)


def test_order_math_errors_are_rejections_not_exceptions() -> None:
    h = Harness()
    (report,) = run(h.execution.submit(order(price=505_000)))  # off the 0.01 tick
    assert isinstance(report, OrderRejected)
    assert "invalid_order" == report.reason
    assert not h.venue.posted


# -- tick sizes ----------------------------------------------------------------------------------
def test_tick_change_is_revalidated_before_signing() -> None:
    h = Harness()
    # finer tick: a 0.50 price is still valid, the order is signed with the venue's rounding
    h.execution.on_market_event(TickSizeChange(h.clock.ms, TOKEN, MARKET, 10_000, 1_000))
    assert ["OrderAccepted"] == kinds(run(h.execution.submit(order(1))))
    # coarser tick: 0.55 is off the new 0.1 grid -> refused before signing
    h.execution.on_market_event(TickSizeChange(h.clock.ms, TOKEN, MARKET, 1_000, 100_000))
    (report,) = run(h.execution.submit(order(2, price=550_000)))
    assert isinstance(report, OrderRejected)
    assert "tick_size_changed" == report.reason
    assert 1 == len(h.venue.posted)


def test_a_tick_is_never_cached_forever() -> None:
    h = Harness(tick_ttl_ms=60_000)
    run(h.execution.submit(order(1)))
    assert ("GET", "/tick-size") not in h.venue.requests
    h.clock.ms += 61_000
    h.venue.tick = "0.1"
    (report,) = run(h.execution.submit(order(2, price=550_000)))
    assert ("GET", "/tick-size") in h.venue.requests
    assert isinstance(report, OrderRejected)
    assert "tick_size_changed" == report.reason


# -- batches -------------------------------------------------------------------------------------
def test_post_batch_splits_into_requests_of_at_most_15() -> None:
    h = Harness()
    reports = run(h.execution.post_batch([order(n) for n in range(20)]))
    assert 20 * ["OrderAccepted"] == kinds(reports)
    assert [f"opp-{n}:0" for n in range(20)] == [r.order_id for r in reports]
    assert 2 == sum(1 for m, p in h.venue.requests if (m, p) == ("POST", "/orders"))
    assert 20 == len(h.venue.stored)


@pytest.fixture
def parallel() -> Iterator[ParallelSigner]:
    signer = ParallelSigner(lambda: OrderSigner.from_key(KEY, 137), 2)
    signer.start()
    yield signer
    signer.close()


def test_a_basket_is_signed_together_and_sent_in_one_post_orders(parallel: ParallelSigner) -> None:
    legs = [order(n, price=300_000 + n * 10_000) for n in range(3)]
    h = Harness(signer=parallel)
    answers = run(h.execution.submit_many(legs))
    assert [["OrderAccepted"]] * 3 == [kinds(a) for a in answers]
    assert [leg.order_id for leg in legs] == [a[0].order_id for a in answers]
    assert [("POST", "/orders")] == [(m, p) for m, p in h.venue.requests if m == "POST"]
    # the bytes signed in parallel are those `submit` signs one by one
    serial = Harness()
    for leg in legs:
        run(serial.execution.submit(leg))
    assert [order_hash for order_hash, _ in serial.venue.stored] == [
        order_hash for order_hash, _ in h.venue.stored
    ]
    assert [cast(OrderAccepted, a[0]).venue_order_id for a in answers] == [
        order_hash for order_hash, _ in h.venue.stored
    ]


def test_a_leg_refused_before_sending_is_refused_alone_in_its_place(parallel: ParallelSigner) -> None:
    h = Harness(signer=parallel)
    legs = [order(0), order(1, price=505_000), order(2, order_type=OrderType.GTD), order(3)]
    h.execution.on_market_event(TickSizeChange(h.clock.ms, TOKEN, MARKET, 10_000, 10_000))
    answers = run(h.execution.submit_many(legs))
    assert [["OrderAccepted"], ["OrderRejected"], ["OrderRejected"], ["OrderAccepted"]] == [
        kinds(a) for a in answers
    ]
    assert ["invalid_order", "invalid_order"] == [cast(OrderRejected, a[0]).reason for a in answers[1:3]]
    assert 1 == sum(1 for m, p in h.venue.requests if (m, p) == ("POST", "/orders"))
    assert 2 == len(h.venue.stored)


class RefusingSigner:
    """A signing port without batches (the signing server's shape) that refuses one order id."""

    def __init__(self, refused: str) -> None:
        self.inner = OrderSigner.from_key(KEY, 137)
        self.refused = refused

    @property
    def address(self) -> str:
        return self.inner.address

    async def sign_order(self, order: OrderRequest, timestamp_ms: int) -> SignedOrder:
        await asyncio.sleep(0)  # a round trip, as to the server
        if order.order_id == self.refused:
            raise OrderSigningFailed("signer_refused", "policy says no")
        return self.inner.sign_request(order, timestamp_ms)


def test_a_leg_the_signer_refuses_is_rejected_alone_with_an_alert() -> None:
    h = Harness(signer=RefusingSigner("opp-1:0"))
    answers = run(h.execution.submit_many([order(n, price=300_000 + n * 10_000) for n in range(3)]))
    assert [["OrderAccepted"], ["OrderRejected"], ["OrderAccepted"]] == [kinds(a) for a in answers]
    assert "signer_refused" == cast(OrderRejected, answers[1][0]).reason
    assert ["signer_refused"] == [a.code for a in h.alerts]
    assert 1 == sum(1 for m, p in h.venue.requests if (m, p) == ("POST", "/orders"))


def test_a_basket_is_refused_whole_while_an_earlier_outcome_is_unknown(parallel: ParallelSigner) -> None:
    h = Harness(signer=parallel)
    h.venue.script = ["timeout_stored"]
    assert ["OrderStatusUnknown"] == kinds(run(h.execution.submit(order(9))))
    h.venue.lookup_misses.add(h.venue.stored[0][0])  # the venue cannot show it yet
    answers = run(h.execution.submit_many([order(1), order(2)]))
    assert [["OrderRejected"], ["OrderRejected"]] == [kinds(a)[-1:] for a in answers]
    assert {"unknown_outcome_pending"} == {cast(OrderRejected, a[-1]).reason for a in answers}


def test_rate_budget_spaces_out_orders() -> None:
    h = Harness(budgets=RateBudgets(BucketSpec(2, 1.0), BucketSpec(2, 1.0)))
    for n in range(3):
        run(h.execution.submit(order(n)))
    assert [pytest.approx(1.0)] == h.sleeper.waits


# -- cancels and status --------------------------------------------------------------------------
def test_cancel_and_a_refused_cancel_looks_the_order_up() -> None:
    h = Harness()
    run(h.execution.submit(order(1)))
    run(h.execution.submit(order(2)))
    cancelled = run(h.execution.cancel("opp-1:0"))
    assert ["OrderCancelled"] == kinds(cancelled)
    assert 1 == h.execution.index.resting_count
    # order 2 matched before our cancel arrived: the venue refuses, we learn the fill instead
    hash2 = h.execution.index.venue_id("opp-2:0")
    assert hash2 is not None
    h.venue.not_cancelable.add(hash2)
    h.venue.orders[hash2].update(status="MATCHED", size_matched="100", associate_trades=["t-1"])
    h.venue.trades["t-1"] = {
        "id": "t-1",
        "taker_order_id": "0xsomeoneelse",
        "market": MARKET,
        "asset_id": TOKEN,
        "side": "SELL",
        "size": "100",
        "price": "0.5",
        "status": "MATCHED",
        "match_time": "1764061201",
        "maker_orders": [{"order_id": hash2, "matched_amount": "100", "price": "0.5", "asset_id": TOKEN}],
    }
    reports = run(h.execution.cancel("opp-2:0"))
    assert ["OrderAccepted", "OrderFilled"] == kinds(reports)
    fill = reports[1]
    assert isinstance(fill, OrderFilled)
    assert (Side.BUY, Liquidity.MAKER, 100_000_000, 500_000) == (
        fill.side,
        fill.liquidity,
        fill.size,
        fill.price,
    )
    assert 1_764_061_201_000 == fill.ts_ms
    assert 0 == h.execution.index.resting_count


def test_status_of_an_unknown_order_is_empty_and_cancel_of_unsent_is_noop() -> None:
    h = Harness()
    assert [] == run(h.execution.status("never-sent"))
    assert [] == run(h.execution.cancel("never-sent"))


# -- reads ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recorded(shared_data: Path) -> Callable[[str], bytes]:
    """A recorded REST answer by file name (shared/data/polymarket/rest), read when a test asks."""
    return lambda name: (shared_data / "polymarket" / "rest" / name).read_bytes()


def reads_harness(routes: dict[str, bytes | httpx.Response]) -> Harness:
    venue = FakeVenue()
    calls: dict[str, int] = {}

    def handle(request: httpx.Request) -> httpx.Response:
        key = request.url.path
        calls[key] = calls.get(key, 0) + 1
        answer = routes[key]
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, content=answer)

    venue.transport = lambda: httpx.MockTransport(handle)  # type: ignore[method-assign]
    return Harness(venue)


def test_book_is_hash_checked_and_keeps_neg_risk_true(recorded: Callable[[str], bytes]) -> None:
    raw = recorded("nautilus_rs_clob_book_response_empty_ask.json")
    book = run(reads_harness({"/book": raw}).execution.book("7261"))
    assert book.hash_verified
    assert book.neg_risk is True
    assert () == book.snapshot.asks
    corrupt = raw.replace(b'"667.12"', b'"667.13"')
    with pytest.raises(MalformedMessage, match="hash"):
        run(reads_harness({"/book": corrupt}).execution.book("7261"))


def test_book_asks_arrive_worst_first_and_the_book_sorts_them(recorded: Callable[[str], bytes]) -> None:
    from polysnipe.core.book import BookState

    book = run(reads_harness({"/book": recorded("nautilus_py_book.json")}).execution.book("x"))
    assert 980_000 == book.snapshot.asks[0].price  # worst first on the wire
    state = BookState(book.snapshot.token_id, 10_000)
    state.apply_snapshot(book.snapshot)
    assert (100_000, 140_000) == (state.best_bid(), state.best_ask())


def test_neg_risk_false_means_false_and_missing_is_an_error() -> None:
    assert False is run(reads_harness({"/neg-risk": b'{"neg_risk": false}'}).execution.metadata.neg_risk("t"))
    assert True is run(reads_harness({"/neg-risk": b'{"neg_risk": true}'}).execution.metadata.neg_risk("t"))
    with pytest.raises(MalformedMessage):
        run(reads_harness({"/neg-risk": b"{}"}).execution.metadata.neg_risk("t"))


def test_tick_size_server_time_and_version() -> None:
    h = reads_harness(
        {"/tick-size": b'{"minimum_tick_size": 0.001}', "/time": b"1764061200", "/version": b'{"version": 2}'}
    )
    assert 1_000 == run(h.execution.metadata.tick_size("t"))
    assert 1_764_061_200 == run(h.execution.metadata.server_time())
    assert 2 == run(h.execution.metadata.version())
    with pytest.raises(MalformedMessage):
        run(reads_harness({"/tick-size": b'{"minimum_tick_size": 0.02}'}).execution.metadata.tick_size("t"))


def test_open_orders_and_trades_map_recorded_pages(recorded: Callable[[str], bytes]) -> None:
    h = reads_harness(
        {
            "/data/orders": recorded("nautilus_rs_http_open_orders_page.json"),
            "/data/trades": recorded("nautilus_rs_http_trades_page.json"),
        }
    )
    h.execution.index.add(
        "ours", "0xbbbb000000000000000000000000000000000000000000000000000000000002", 150_000_000
    )
    orders = run(h.execution.open_orders(market=MARKET))
    assert 2 == len(orders)
    assert (Side.SELL, 400_000, 150_000_000, 50_000_000, "ours") == (
        orders[1].side,
        orders[1].price,
        orders[1].original_size,
        orders[1].size_matched,
        orders[1].order_id,
    )
    assert None is orders[0].order_id
    trades_page = json.loads(recorded("nautilus_rs_http_trades_page.json"))
    taker = trades_page["data"][0]["taker_order_id"]
    h.execution.index.add("mine", taker, 10**12)
    fills = run(h.execution.trades())
    assert fills and all(f.order_id == "mine" and f.liquidity is Liquidity.TAKER for f in fills)


def test_markets_follow_the_cursor_to_the_last_page(recorded: Callable[[str], bytes]) -> None:
    page = json.loads(recorded("nautilus_py_markets.json"))
    first = dict(page, next_cursor="NEXT")
    last = dict(page, next_cursor="LTE=")
    served: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params["next_cursor"]
        served.append(cursor)
        return httpx.Response(200, content=json.dumps(first if cursor == "MA==" else last).encode())

    venue = FakeVenue()
    venue.transport = lambda: httpx.MockTransport(handle)  # type: ignore[method-assign]
    markets = run(Harness(venue).execution.metadata.markets())
    assert ["MA==", "NEXT"] == served
    assert 0 < len(markets) and len(markets) % 2 == 0


def test_reads_retry_5xx_and_raise_typed_errors_when_it_persists() -> None:
    answers = [httpx.Response(500, content=b'{"error":"x"}'), httpx.Response(200, content=b'{"version": 2}')]
    venue = FakeVenue()
    venue.transport = lambda: httpx.MockTransport(lambda request: answers.pop(0))  # type: ignore[method-assign]
    h = Harness(venue)
    assert 2 == run(h.execution.metadata.version())
    gone = reads_harness({"/data/order/0xabc": httpx.Response(404, content=b'{"error": "not found"}')})
    gone.execution.index.add("o", "0xabc", 1)
    assert [] == run(gone.execution.status("o"))
    bad = reads_harness({"/time": httpx.Response(401, content=b'{"error": "Unauthorized/Invalid api key"}')})
    with pytest.raises(VenueError) as info:
        run(bad.execution.metadata.server_time())
    assert "unauthorized" == info.value.code


# -- client --------------------------------------------------------------------------------------
def test_client_splits_transport_failures_by_whether_the_request_left() -> None:
    clock = FakeClock()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed", request=request)

    signer = LocalSigner.from_private_key(KEY, 137, CREDS)
    refused = ClobHttpClient(ClobConfig(host=HOST), clock, signer, transport=httpx.MockTransport(refuse))
    dropped = ClobHttpClient(ClobConfig(host=HOST), clock, signer, transport=httpx.MockTransport(drop))
    with pytest.raises(TransportFailure) as info:
        run(refused.request("POST", "/order", body=b"{}", auth=True, posting=True))
    assert not info.value.sent
    with pytest.raises(UnknownOutcome):
        run(dropped.request("POST", "/order", body=b"{}", auth=True, posting=True))
    with pytest.raises(TransportFailure) as info:
        run(dropped.request("GET", "/data/orders", auth=True))
    assert info.value.sent
    with pytest.raises(NotFound):
        run(
            ClobHttpClient(
                ClobConfig(host=HOST), clock, transport=httpx.MockTransport(lambda r: httpx.Response(404))
            ).get("/book")
        )


def test_client_signs_the_bare_path_and_sends_the_query() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"[]")

    clock = FakeClock()
    signer = LocalSigner.from_private_key(KEY, 137, CREDS)
    client = ClobHttpClient(ClobConfig(host=HOST), clock, signer, transport=httpx.MockTransport(handle))
    run(client.get("/data/orders", {"market": MARKET, "next_cursor": "MA=="}, auth=True))
    request = seen[0]
    assert "/data/orders" == request.url.path
    assert MARKET == request.url.params["market"]
    assert (
        l2_signature(CREDS.secret, clock.ms // 1000, "GET", "/data/orders")
        == request.headers["POLY_SIGNATURE"]
    )
    with pytest.raises(PermissionError):
        run(
            ClobHttpClient(ClobConfig(host=HOST), clock, transport=httpx.MockTransport(handle)).get(
                "/x", auth=True
            )
        )


# -- heartbeat -----------------------------------------------------------------------------------
def heartbeat_harness(
    resting: Callable[[], bool] = lambda: True,
) -> tuple[Heartbeat, FakeVenue, list[VenueHealth], FakeClock]:
    venue = FakeVenue()
    clock = FakeClock()
    health: list[VenueHealth] = []
    client = ClobHttpClient(
        ClobConfig(host=HOST),
        clock,
        LocalSigner.from_private_key(KEY, 137, CREDS),
        transport=venue.transport(),
    )
    beat = Heartbeat(client, clock=clock, should_beat=resting, on_health=health.append, sleep=Sleeper(clock))
    return beat, venue, health, clock


def test_heartbeats_chain_ids() -> None:
    beat, venue, health, _ = heartbeat_harness()
    assert run(beat.beat())
    first = beat.heartbeat_id
    assert run(beat.beat())
    assert first != beat.heartbeat_id
    assert venue.heartbeat_id == beat.heartbeat_id
    assert [] == health


def test_heartbeat_resyncs_a_stale_chain_from_the_400_body() -> None:
    beat, venue, health, _ = heartbeat_harness()
    run(beat.beat())
    venue.heartbeat_id = "moved-on"
    assert run(beat.beat())
    assert venue.heartbeat_id == beat.heartbeat_id
    assert [] == health


def test_heartbeat_failure_is_a_venue_health_event_and_recovery_another() -> None:
    beat, venue, health, clock = heartbeat_harness()
    run(beat.beat())
    venue.heartbeat_script = ["500", "500", "500"]
    clock.ms += 5_000
    assert not run(beat.beat())
    clock.ms += 6_000
    assert not run(beat.beat())
    assert [False, False] == [h.healthy for h in health]
    assert [False, True] == [h.orders_at_risk for h in health]
    assert "critical" == health[1].to_alert().severity
    venue.heartbeat_script = []
    assert run(beat.beat())
    assert health[-1].healthy


def test_heartbeat_runs_only_while_orders_rest() -> None:
    resting = [False, True, True]
    beat, venue, _, _ = heartbeat_harness(lambda: resting.pop(0) if resting else False)

    async def three_rounds() -> None:
        task = asyncio.create_task(beat.run())
        for _ in range(20):
            await asyncio.sleep(0)
        task.cancel()

    run(three_rounds())
    assert 2 == sum(1 for m, p in venue.requests if p == "/v1/heartbeats")


def test_order_index_tracks_resting_orders_and_counts_fills_once() -> None:
    index = OrderIndex(keep_terminal=1)
    index.add("a", "0xa", 10)
    index.mark_resting("a")
    fill = OrderFilled("a", "t1", 0, TOKEN, Side.BUY, 1, 6, Liquidity.MAKER)
    index.observe(fill)
    index.observe(fill)  # the same trade again (MINED, CONFIRMED): still 6 of 10
    assert 1 == index.resting_count
    index.observe(OrderFilled("a", "t2", 0, TOKEN, Side.BUY, 1, 4, Liquidity.MAKER))
    assert 0 == index.resting_count
    index.add("b", "0xb", 10)
    index.observe(OrderCancelled("b", 0))
    assert None is index.order_id("0xa")  # forgotten once a newer order ended
    assert "b" == index.order_id("0xb")


# -- against the CLOB simulator (src/adapters/sim), in process over httpx.ASGITransport ------------
SIM_HOST = "http://sim.test"
S = 1_000_000


class SimHarness:
    """Our client and execution talking to the simulator's ASGI app; faults set on its state."""

    def __init__(self, order_signer: OrderSigningPort | None = None, **kwargs: Any) -> None:
        from polysnipe.adapters.sim.clob import Balances, ClobSimState, create_app
        from polysnipe.core.market import Market

        self.clock = FakeClock()
        self.local_key = LocalSigner.from_private_key(KEY, 137)
        address = self.local_key.address.lower()
        self.state = ClobSimState(
            [Market(MARKET, (TOKEN, NO_TOKEN), ("Yes", "No"), 10_000, 5 * S, False)],
            balances=Balances(usdc={address: 10_000 * S}, positions={address: {TOKEN: 1_000 * S}}),
            clock=lambda: self.clock.ms,
        )
        api = self.state.api_key_for(address, 0)
        self.creds = ApiCreds(api_key=api.key, secret=api.secret, passphrase=api.passphrase)
        signer = LocalSigner.from_private_key(KEY, 137, self.creds)
        transport = httpx.ASGITransport(app=create_app(self.state))
        self.client = ClobHttpClient(ClobConfig(host=SIM_HOST), self.clock, signer, transport=transport)
        self.alerts: list[RaiseAlert] = []
        self.waits: list[float] = []
        #: faults to switch off at the first backoff (the venue recovers while we wait)
        self.heal_on_sleep = True
        self.execution = ClobExecution(
            self.client,
            order_signer or OrderSigner.from_key(KEY, 137),
            owner=self.creds.api_key,
            clock=self.clock,
            rng=random.Random(5),
            alert=self.alerts.append,
            sleep=self.sleep,
            **kwargs,
        )
        self.execution.on_market_event(TickSizeChange(self.clock.ms, TOKEN, MARKET, 10_000, 10_000))

    async def sleep(self, seconds: float) -> None:
        from polysnipe.adapters.sim.clob import Faults

        self.waits.append(seconds)
        self.clock.ms += int(seconds * 1000)
        if self.heal_on_sleep:
            self.state.faults = Faults()

    def fault(self, **fields: Any) -> None:
        from polysnipe.adapters.sim.clob import Faults

        self.state.faults = Faults.from_json(fields)

    def posts(self) -> list[Any]:
        return [e.to_json() for e in self.state.order_log if e.to_json().get("endpoint") == "/order"]


NO_TOKEN = "52114319501245915516055106046884209969926127482827954674443846427813813222426"


def test_sim_accepts_our_orders_by_their_eip712_hash_and_cancels_them() -> None:
    sim = SimHarness()

    async def scenario() -> None:
        (accepted,) = await sim.execution.submit(order(1, price=400_000))
        assert isinstance(accepted, OrderAccepted)
        assert sim.execution.index.venue_id("opp-1:0") == accepted.venue_order_id
        assert ["OrderAccepted"] == kinds(await sim.execution.status("opp-1:0"))
        (listed,) = await sim.execution.open_orders(token_id=TOKEN)
        assert ("opp-1:0", 400_000, 100_000_000) == (listed.order_id, listed.price, listed.original_size)
        book = await sim.execution.book(TOKEN)
        assert book.hash_verified
        assert [(400_000, 100_000_000)] == [(lv.price, lv.size) for lv in book.snapshot.bids]
        assert ["OrderCancelled"] == kinds(await sim.execution.cancel("opp-1:0"))
        assert [] == await sim.execution.open_orders()
        assert 10_000 == await sim.execution.metadata.tick_size(TOKEN)
        assert False is await sim.execution.metadata.neg_risk(TOKEN)
        assert 2 == await sim.execution.metadata.version()

    run(scenario())


def test_sim_injected_500_is_an_unknown_outcome_reconciled_without_a_second_order() -> None:
    sim = SimHarness()
    sim.heal_on_sleep = False
    sim.fault(error_rate=1.0, status_codes=[500])

    async def scenario() -> None:
        assert ["OrderStatusUnknown"] == kinds(await sim.execution.submit(order(1, price=400_000)))
        sim.state.faults = type(sim.state.faults)()
        reports = await sim.execution.submit(order(2, price=410_000))
        assert ["OrderAccepted", "OrderAccepted"] == kinds(reports)
        assert 2 == len(await sim.execution.open_orders())

    run(scenario())


def test_sim_429_with_retry_after_and_425_restart_then_post_only_window() -> None:
    sim = SimHarness()
    sim.fault(error_rate=1.0, status_codes=[429], retry_after_s=3)

    async def scenario() -> None:
        assert ["OrderAccepted"] == kinds(await sim.execution.submit(order(1, price=400_000)))
        assert sim.waits[0] >= 3.0
        sim.fault(engine_restart=True)
        assert ["OrderAccepted"] == kinds(await sim.execution.submit(order(2, price=410_000, post_only=True)))
        assert 1.0 <= sim.waits[1] <= 2.0
        (refused,) = await sim.execution.submit(order(3, price=420_000))
        assert isinstance(refused, OrderRejected)
        assert "post_only_mode" == refused.reason

    run(scenario())


def test_sim_exchange_version_change_is_refused_with_an_alert() -> None:
    sim = SimHarness()
    sim.heal_on_sleep = False
    sim.fault(exchange_version=3)
    (report,) = run(sim.execution.submit(order(1, price=400_000)))
    assert isinstance(report, OrderRejected)
    assert "order_version_mismatch" == report.reason
    assert ["clob_order_version"] == [a.code for a in sim.alerts]


def test_sim_heartbeat_chain() -> None:
    sim = SimHarness()
    health: list[VenueHealth] = []
    beat = Heartbeat(sim.client, clock=sim.clock, should_beat=lambda: True, on_health=health.append)
    assert run(beat.beat())
    first = beat.heartbeat_id
    assert run(beat.beat())
    assert first != beat.heartbeat_id
    assert [] == health


def test_sim_basket_legs_reach_the_simulator_in_one_post_orders(parallel: ParallelSigner) -> None:
    sim = SimHarness(order_signer=parallel)
    legs = [order(n, price=300_000 + n * 10_000, size=5 * S) for n in range(4)]
    answers = run(sim.execution.submit_many(legs))
    assert [["OrderAccepted"]] * 4 == [kinds(a) for a in answers]
    assert ["/orders"] * 4 == [e.to_json().get("endpoint") for e in sim.state.order_log]
    assert {leg.order_id for leg in legs} == {o.order_id for o in run(sim.execution.open_orders())}


def test_sim_batch_of_20_orders() -> None:
    sim = SimHarness()
    reports = run(
        sim.execution.post_batch([order(n, price=300_000 + n * 10_000, size=5 * S) for n in range(20)])
    )
    assert 20 * ["OrderAccepted"] == kinds(reports)
    assert 20 == len(run(sim.execution.open_orders()))


# -- factory -------------------------------------------------------------------------------------
def test_factory_reads_secrets_from_env_only_and_builds_without_sockets() -> None:
    from polysnipe.adapters.clob.factory import (
        ENV_API_KEY,
        ENV_API_PASSPHRASE,
        ENV_API_SECRET,
        ENV_PRIVATE_KEY,
        build_clob_adapters,
        secrets_from_env,
        settings_from_mapping,
    )

    env = {
        ENV_PRIVATE_KEY: KEY,
        ENV_API_KEY: CREDS.api_key,
        ENV_API_SECRET: CREDS.secret.reveal(),
        ENV_API_PASSPHRASE: CREDS.passphrase.reveal(),
    }
    secrets = secrets_from_env(env)
    assert KEY not in repr(secrets) and CREDS.secret.reveal() not in repr(secrets)
    with pytest.raises(KeyError):
        secrets_from_env({ENV_PRIVATE_KEY: KEY, ENV_API_KEY: "only-one"})
    with pytest.raises(ValueError, match="secret"):
        settings_from_mapping({"clob": {"host": HOST, "private_key": KEY}})
    with pytest.raises(TypeError):
        settings_from_mapping({"retry": {"max_atempts": 3}})  # a typo must not fall back to a default
    settings = settings_from_mapping(
        {
            "clob": {"host": HOST},
            "retry": {"max_attempts": 3},
            "rate_limits": {"order": {"burst": 10, "per_s": 1.0}},
            "circuit_threshold": 2,
        }
    )
    assert (3, 10, 2) == (
        settings.retry.max_attempts,
        settings.order_bucket.burst,
        settings.circuit_threshold,
    )

    venue = FakeVenue()
    alerts: list[RaiseAlert] = []

    async def scenario() -> None:
        adapters = build_clob_adapters(
            settings,
            clock=FakeClock(),
            rng=random.Random(1),
            alert=alerts.append,
            market_sink=lambda events: None,
            user_sink=lambda reports: None,
            env=env,
            transport=venue.transport(),
        )
        assert not venue.requests  # building opened nothing
        signers = adapters.signers
        assert signers is not None and 0 == signers.threads  # ... and started no thread
        adapters.execution.on_market_event(TickSizeChange(T0_MS, TOKEN, MARKET, 10_000, 10_000))
        assert ["OrderAccepted"] == kinds(await adapters.execution.submit(order()))
        assert 1 == adapters.index.resting_count  # the heartbeat now has a reason to beat
        assert await adapters.heartbeat.beat()
        signers.start()  # as start() does; the basket's legs are then signed in parallel
        legs = [order(n, price=300_000 + n * 10_000) for n in range(1, 4)]
        assert [["OrderAccepted"]] * 3 == [kinds(a) for a in await adapters.execution.submit_many(legs)]
        await adapters.aclose()
        assert 0 == signers.threads  # the signing threads stop with the adapters

    run(scenario())
    assert [] == alerts


def test_signing_threads_are_a_setting_zero_signs_on_the_event_loops_thread_alone() -> None:
    from polysnipe.adapters.clob.factory import (
        ENV_API_KEY,
        ENV_API_PASSPHRASE,
        ENV_API_SECRET,
        ENV_PRIVATE_KEY,
        build_clob_adapters,
        settings_from_mapping,
    )

    env = {ENV_PRIVATE_KEY: KEY, ENV_API_KEY: CREDS.api_key, ENV_API_SECRET: CREDS.secret.reveal(),
           ENV_API_PASSPHRASE: CREDS.passphrase.reveal()}  # fmt: skip
    for threads in (0, 2):
        settings = settings_from_mapping({"clob": {"host": HOST}, "signing_threads": threads})
        adapters = build_clob_adapters(
            settings, clock=FakeClock(), rng=random.Random(1), alert=lambda a: None,
            market_sink=lambda events: None, user_sink=lambda reports: None, env=env,
            transport=FakeVenue().transport(),
        )  # fmt: skip
        assert adapters.signers is not None
        adapters.signers.start()
        assert threads == adapters.signers.threads
        run(adapters.aclose())
        assert 0 == adapters.signers.threads


# -- the durable outbox ------------------------------------------------------------------------------
def journaled(conn: psycopg.Connection, request: OrderRequest) -> OrderRequest:
    """The order and its opportunity in the journal, as the loop commits them before a placement."""
    opp = opportunity(
        request.opportunity_id, market=MARKET, token_id=TOKEN, correlation_id=request.correlation_id
    )
    journal = PostgresJournal(conn)
    journal.record([RecordOpportunity(opp, "passive", request.price, 0), PlaceOrder(request, 0)])
    journal.commit()
    return request


def test_every_order_is_claimed_in_the_outbox_before_it_is_sent_and_never_sent_twice(
    journal_conn: psycopg.Connection,
) -> None:
    first = Harness(outbox=PostgresOutbox(journal_conn, "run-1"))
    request = journaled(journal_conn, order(1))
    assert ["OrderAccepted"] == kinds(run(first.execution.submit(request)))
    ((order_hash, state, incarnation),) = journal_conn.execute(
        "SELECT order_hash, state, incarnation FROM outbox"
    ).fetchall()
    assert (first.venue.stored[0][0], "acknowledged", "run-1") == (order_hash, state, incarnation)
    # a restarted engine (a new incarnation) that decides the same order again never sends it
    again = Harness(venue=first.venue, outbox=PostgresOutbox(journal_conn, "run-2"))
    (refused,) = run(again.execution.submit(request))
    assert isinstance(refused, OrderRejected)
    assert "already_sent" == refused.reason
    assert 1 == len(first.venue.posted)
    assert ("acknowledged",) == journal_conn.execute("SELECT state FROM outbox").fetchone()


def test_an_answer_lost_leaves_the_entry_unknown_for_the_next_run_to_resolve_by_hash(
    journal_conn: psycopg.Connection,
) -> None:
    h = Harness(outbox=PostgresOutbox(journal_conn, "run-1"))
    h.venue.script = ["timeout_stored"]
    assert ["OrderStatusUnknown"] == kinds(run(h.execution.submit(journaled(journal_conn, order(1)))))
    assert ("unknown",) == journal_conn.execute("SELECT state FROM outbox").fetchone()
    # the next run sees it as unresolved (its own rows it does not)
    assert [] == PostgresOutbox(journal_conn, "run-1").unresolved()
    (row,) = PostgresOutbox(journal_conn, "run-2").unresolved()
    assert h.venue.stored[0][0] == row.order_hash


def test_an_outbox_that_cannot_record_sends_nothing(journal_conn: psycopg.Connection) -> None:
    h = Harness(outbox=PostgresOutbox(journal_conn, "run-1"))
    # no journaled order row: the outbox's foreign key refuses the claim, as a dead database would
    (refused,) = run(h.execution.submit(order(1)))
    assert isinstance(refused, OrderRejected)
    assert "outbox_unavailable" == refused.reason
    assert [] == h.venue.posted
    assert ["outbox_unavailable"] == [a.code for a in h.alerts]
