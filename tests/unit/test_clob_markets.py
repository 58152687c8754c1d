"""Market metadata reads (markets.ClobMarkets) and execution's REST answers against hostile bodies:
every unreadable answer is a MalformedMessage (an order's, an unknown outcome), never a crash."""

from __future__ import annotations

import json
import random
from typing import Any

import attrs
import httpx
import pytest

from kit import order_request, run
from polysnipe.adapters.clob.auth import ApiCreds, LocalSigner
from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.config import ClobConfig
from polysnipe.adapters.clob.errors import MalformedMessage, error_from_response
from polysnipe.adapters.clob.execution import ClobExecution
from polysnipe.adapters.clob.heartbeat import Heartbeat, VenueHealth
from polysnipe.adapters.clob.markets import ClobMarkets
from polysnipe.adapters.clob.signing import OrderSigner
from polysnipe.core.market import Market
from polysnipe.core.messages import OrderRejected, OrderRequest, OrderStatusUnknown, OrderType, RaiseAlert

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
CREDS = ApiCreds(
    api_key="3843ba63-391a-4a8a-b913-d6c677fd7d6f",
    secret="468NIDFB-ziroyChmdO3fiJUKy7zjxahDLpTEEPxE7I=",
    passphrase="7cef18803c4ed83e4c409c7b57fa5c65853478780ff3c4520c74abd395f04199",
)
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO_TOKEN = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
MARKET = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"
DEEP = b'{"a":' * 1_000 + b"1" + b"}" * 1_000


class FixedClock:
    def now_ms(self) -> int:
        return 1_764_061_200_000

    def monotonic_ns(self) -> int:
        return 0


def client_answering(body: bytes, *, signer: LocalSigner | None = None) -> ClobHttpClient:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    return ClobHttpClient(ClobConfig(host="https://clob.test"), FixedClock(), signer, transport=transport)


def markets_answering(body: bytes) -> ClobMarkets:
    return ClobMarkets(client_answering(body), rng=random.Random(1))


READS = {
    "tick_size": lambda m: m.tick_size("t"),
    "neg_risk": lambda m: m.neg_risk("t"),
    "version": lambda m: m.version(),
    "server_time": lambda m: m.server_time(),
    "fee_parameters": lambda m: m.fee_parameters(MARKET),
    "markets": lambda m: m.markets(),
}
HOSTILE_BODIES = {
    "deep": DEEP,
    "not json": b"<html>502</html>",
    "wrong type": b'["x"]',
    "huge": b'{"minimum_tick_size": 1e309, "neg_risk": 1, "version": 1e999, "fd": {"r": 1e309, "e": 0}}',
    "unicode digits": '{"minimum_tick_size": "٠.٠١", "version": "٢", "fd": {"r": "٠.٠٤"}}'.encode(),
}


@pytest.mark.parametrize("body", list(HOSTILE_BODIES.values()), ids=list(HOSTILE_BODIES))
@pytest.mark.parametrize("read", list(READS.values()), ids=list(READS))
def test_metadata_reads_turn_hostile_answers_into_malformed(read: Any, body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        run(read(markets_answering(body)))


@pytest.mark.parametrize(
    ("read", "body"),
    [
        ("tick_size", b'{"minimum_tick_size": 0.02}'),
        ("tick_size", b'{"minimum_tick_size": "0.02"}'),
        ("server_time", b"1e300"),
        ("server_time", b"-1"),
        ("version", b'{"version": 100000000000000000000}'),
        ("fee_parameters", b'{"fd": {"r": 0.04, "e": 0}}'),
        ("fee_parameters", b'{"fd": {"r": 0.04, "e": 100000}}'),
        ("fee_parameters", b'{"fd": {"r": 1.5, "e": 1}}'),
    ],
)
def test_metadata_values_out_of_range_are_malformed(read: str, body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        run(READS[read](markets_answering(body)))


def test_metadata_reads_of_valid_answers() -> None:
    assert 10_000 == run(markets_answering(b'{"minimum_tick_size": "0.01"}').tick_size("t"))
    assert 1_000 == run(markets_answering(b'{"minimum_tick_size": 0.001}').tick_size("t"))
    assert 1_764_061_200 == run(markets_answering(b"1764061200").server_time())
    assert (40_000, 2) == run(markets_answering(b'{"fd": {"r": 0.04, "e": 2}}').fee_parameters(MARKET))
    assert None is run(markets_answering(b'{"t": [], "nr": false}').fee_parameters(MARKET))


def test_fee_parameters_from_the_simulator() -> None:
    from polysnipe.adapters.sim.clob import ClobSimState, create_app

    fee_market = Market(MARKET, (TOKEN, NO_TOKEN), ("Yes", "No"), 10_000, 5_000_000, False, fee_rate=40_000)
    free = Market("0x" + "ab" * 32, ("1", "2"), ("Yes", "No"), 10_000, 5_000_000, False)
    transport = httpx.ASGITransport(app=create_app(ClobSimState([fee_market, free])))
    client = ClobHttpClient(ClobConfig(host="http://sim"), FixedClock(), transport=transport)
    metadata = ClobMarkets(client, rng=random.Random(2))
    assert (40_000, 1) == run(metadata.fee_parameters(MARKET))
    assert None is run(metadata.fee_parameters(free.condition_id))


# -- execution's answers -----------------------------------------------------------------------------
#: bodies no answer of execution's can be read from (the other hostile bodies above are objects
#: whose fields those answers do not have, hence valid empty answers)
UNREADABLE = {k: HOSTILE_BODIES[k] for k in ("deep", "not json", "wrong type")}


def execution_answering(body: bytes) -> ClobExecution:
    signer = LocalSigner.from_private_key(KEY, 137, CREDS)
    alerts: list[RaiseAlert] = []
    execution = ClobExecution(
        client_answering(body, signer=signer),
        OrderSigner.from_key(KEY, 137),
        owner=CREDS.api_key,
        clock=FixedClock(),
        rng=random.Random(3),
        alert=alerts.append,
        metadata=markets_answering(b'{"minimum_tick_size": 0.01}'),
    )
    execution.index.add("ours", "0xabc", 1_000_000)
    return execution


def request() -> OrderRequest:
    return order_request("opp-1:0", opportunity_id="opp-1", correlation_id="c-1", strategy="test",
                         routing="passive", wallet="w", market=MARKET, token_id=TOKEN, size=100_000_000,
                         order_type=OrderType.GTC)  # fmt: skip


@pytest.mark.parametrize("body", list(UNREADABLE.values()), ids=list(UNREADABLE))
def test_an_unreadable_order_answer_is_an_unknown_outcome(body: bytes) -> None:
    # the order may have been placed: never a crash (RecursionError escaped submit), never "rejected"
    (report,) = run(execution_answering(body).submit(request()))
    assert isinstance(report, OrderStatusUnknown)


@pytest.mark.parametrize("body", list(UNREADABLE.values()), ids=list(UNREADABLE))
@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.cancel("ours"),
        lambda e: e.cancel_all(),
        lambda e: e.open_orders(),
        lambda e: e.trades(),
        lambda e: e.status("ours"),
        lambda e: e.book(TOKEN),
    ],
    ids=["cancel", "cancel_all", "open_orders", "trades", "status", "book"],
)
def test_execution_reads_turn_hostile_answers_into_malformed(call: Any, body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        run(call(execution_answering(body)))


@pytest.mark.parametrize(
    "field", [{"expiration": "١٢"}, {"price": "٠.٥"}, {"original_size": " 100"}, {"expiration": 2**62}]
)
def test_open_orders_read_ascii_numbers_in_range_only(field: dict[str, Any]) -> None:
    order = {"id": "0xabc", "status": "LIVE", "side": "BUY", "price": "0.5", "original_size": "100", **field}
    body = json.dumps({"data": [order], "next_cursor": "LTE="}).encode()
    with pytest.raises(MalformedMessage, match="order 0xabc"):
        run(execution_answering(body).open_orders())


def test_an_unreadable_trades_answer_during_reconciliation_leaves_the_order_unknown() -> None:
    signer = LocalSigner.from_private_key(KEY, 137, CREDS)
    found = {"id": "0xabc", "status": "MATCHED", "side": "BUY", "associate_trades": ["t1"]}

    def venue(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/data/order/"):
            return httpx.Response(200, content=json.dumps(found).encode())
        return httpx.Response(200, content=DEEP)  # POST /order and GET /data/trades

    transport = httpx.MockTransport(venue)
    client = ClobHttpClient(ClobConfig(host="https://clob.test"), FixedClock(), signer, transport=transport)
    execution = ClobExecution(
        client,
        OrderSigner.from_key(KEY, 137),
        owner=CREDS.api_key,
        clock=FixedClock(),
        rng=random.Random(4),
        alert=lambda alert: None,
        metadata=markets_answering(b'{"minimum_tick_size": 0.01}'),
    )
    (unknown,) = run(execution.submit(request()))
    assert isinstance(unknown, OrderStatusUnknown)
    # the next submit reconciles: the order is found, its trades unreadable; nothing escapes
    (pending,) = run(execution.submit(attrs.evolve(request(), order_id="opp-2:0")))
    assert isinstance(pending, OrderRejected)
    assert ("unknown_outcome_pending", ["opp-1:0"]) == (pending.reason, execution.unknown_orders)


@pytest.mark.parametrize("body", list(UNREADABLE.values()), ids=list(UNREADABLE))
def test_an_unreadable_heartbeat_answer_is_a_failed_beat_not_a_dead_loop(body: bytes) -> None:
    signer = LocalSigner.from_private_key(KEY, 137, CREDS)
    health: list[VenueHealth] = []
    client = client_answering(body, signer=signer)
    heartbeat = Heartbeat(client, clock=FixedClock(), should_beat=lambda: True, on_health=health.append)
    assert False is run(heartbeat.beat())  # RecursionError escaped it, ending the heartbeat task


HOSTILE_ERROR_BODIES = {
    "deep": b"[" * 60_000 + b"]" * 60_000,
    "1,000 deep": b'{"error": ' + b"[" * 1_000 + b"]" * 1_000 + b"}",
    "invalid utf-8": "\ud800".encode("utf-8", "surrogatepass"),
}


@pytest.mark.parametrize("body", list(HOSTILE_ERROR_BODIES.values()), ids=list(HOSTILE_ERROR_BODIES))
def test_hostile_error_bodies_still_map_to_a_typed_error(body: bytes) -> None:
    error = error_from_response(400, body)
    assert "bad_request" == error.code
    assert len(error.message) <= 4_096
