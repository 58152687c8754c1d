"""The CLOB simulator's state and app, driven with a fake clock (no sockets, no wall time).

Orders are signed with polysnipe's own OrderSigner here; the official client is run against the
simulator in tests/contract/test_official_client_vs_sim.py. The recorded vectors (made by the official
client) are replayed byte for byte, with the clock set to their L2 timestamps.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import warnings
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_clob_client_v2.utilities import generate_orderbook_summary_hash, parse_raw_orderbook_summary

with warnings.catch_warnings():
    # starlette nags about httpx vs httpx2 on import; the TestClient works the same either way
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

from kit import order_request
from polysnipe.adapters.clob.auth import ApiCreds, L2Auth, LocalSigner
from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.config import ClobConfig, SignatureType
from polysnipe.adapters.clob.execution import ClobExecution
from polysnipe.adapters.clob.signing import OrderSigner, SignedOrder
from polysnipe.adapters.sim.clob import (
    END_CURSOR,
    ERRORS,
    INITIAL_CURSOR,
    ApiKey,
    Balances,
    ClobSimConfig,
    ClobSimState,
    Faults,
    TokenBucket,
    VenueError,
    create_app,
    parse_balances,
    recover_address,
    render,
)
from polysnipe.adapters.sim.venue import VENUE_ERRORS
from polysnipe.core.events import BookSnapshot, LastTrade, Level, Side, TickSizeChange
from polysnipe.core.market import Market
from polysnipe.core.messages import (
    ExecutionReport,
    OrderAccepted,
    OrderFilled,
    OrderRequest,
    OrderStatusUnknown,
    OrderType,
    RaiseAlert,
)
from polysnipe.core.order_math import amounts_for_order
from polysnipe.core.units import MICRO
from polysnipe.runners.cli import main as cli_main
from polysnipe.runners.sim_clob import ENV_ADMIN_TOKEN, admin_token_for, start_in_thread

YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
COND = "0x" + "ab" * 32
# public anvil/hardhat test keys (as in the vectors)
KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
ADDR0 = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
ADDR1 = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
WALLET = "0x1f98431c8ad98523631ae4a59f267346ea31f984"
T0 = 1_764_061_200_000
S = MICRO


class Clock:
    def __init__(self, ms: int = T0) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def market(*, tick: int = 10_000, min_size: int = 5 * S, neg_risk: bool = False) -> Market:
    return Market(COND, (YES, NO), ("Yes", "No"), tick, min_size, neg_risk)


def make_state(
    clock: Clock | None = None, config: ClobSimConfig | None = None, balances: Balances | None = None
) -> ClobSimState:
    funded = Balances(
        usdc={ADDR0: 1_000 * S, ADDR1: 1_000 * S, WALLET: 1_000 * S},
        positions={ADDR0: {YES: 100 * S}, ADDR1: {YES: 100 * S}, WALLET: {YES: 100 * S}},
    )
    return ClobSimState([market()], config, balances=balances or funded, clock=clock or Clock())


def post(state: ClobSimState, creds: ApiKey, payload: Any) -> dict[str, Any]:
    """What POST /order answers: the 5.3 response, or VenueError with the venue's status and text."""
    placement = state.orders.place(creds, payload, "/order")
    if placement.order is None:
        raise VenueError(placement.status, placement.error)
    return render.order_response(placement)


def post_batch(state: ClobSimState, creds: ApiKey, payloads: list[Any]) -> list[dict[str, Any]]:
    return [render.order_response(state.orders.place(creds, p, "/orders")) for p in payloads]


def trades(state: ClobSimState, creds: ApiKey, query: dict[str, str]) -> list[dict[str, Any]]:
    """GET /data/trades rows as the caller sees them."""
    return [render.trade_json(t, creds.address) for t in state.orders.trades_of(creds.address, query)]


def get_order(state: ClobSimState, creds: ApiKey, order_id: str) -> dict[str, Any]:
    return render.order_json(state.orders.order(creds.address, order_id))


def cancel(state: ClobSimState, creds: ApiKey, order_ids: list[str]) -> dict[str, Any]:
    return render.cancel_json(*state.orders.cancel(creds.address, order_ids))


class Trader:
    """One account: its signer, its API key on the simulator, and helpers to post signed orders."""

    def __init__(self, state: ClobSimState, key: str, **signer_kwargs: Any) -> None:
        self.state = state
        self.local = LocalSigner.from_private_key(key, 137)
        self.signer = OrderSigner.from_key(key, 137, **signer_kwargs)
        self.creds = state.api_key_for(self.local.address, 0)
        self.salt = 1

    def sign(
        self,
        side: Side,
        price: int,
        size: int,
        order_type: OrderType = OrderType.GTC,
        *,
        token: str = YES,
        expiration_s: int = 0,
        tick: int = 10_000,
    ) -> SignedOrder:
        maker, taker = amounts_for_order(side, price, size, order_type, tick)
        self.salt += 1
        return self.signer.sign(
            token,
            side,
            maker,
            taker,
            neg_risk=False,
            salt=self.salt,
            timestamp_ms=self.state.now_ms(),
            expiration_s=expiration_s,
        )

    def body(self, order: SignedOrder, order_type: OrderType = OrderType.GTC, post_only: bool = False) -> Any:
        return json.loads(order.post_body(self.creds.key, order_type, post_only=post_only))

    def place(
        self, side: Side, price: int, size: int, order_type: OrderType = OrderType.GTC, **kw: Any
    ) -> dict[str, Any]:
        post_only = kw.pop("post_only", False)
        order = self.sign(side, price, size, order_type, **kw)
        return post(self.state, self.creds, self.body(order, order_type, post_only))

    def headers(self, method: str, path: str, body: bytes = b"") -> dict[str, str]:
        creds = ApiCreds(self.creds.key, self.creds.secret, self.creds.passphrase)
        return L2Auth(self.local.address, creds).headers(self.state.now_ms() // 1000, method, path, body)


def rejected(call: Any) -> VenueError:
    with pytest.raises(VenueError) as info:
        call()
    return info.value


# -- recorded vectors (made by the official client) -----------------------------------------------
@pytest.fixture(scope="module")
def vectors(shared_data: Path) -> dict[str, Any]:
    """The official client's signed-order vectors, read when a test asks (never at collection)."""
    path = shared_data / "vectors" / "orders.json"
    if not path.is_file():
        pytest.fail(f"order vectors not found at {path}; set POLYSNIPE_SHARED_DATA to shared/data")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _vector_state(vector: dict[str, Any], at_s: str = "") -> tuple[ClobSimState, ApiKey]:
    inputs = vector["inputs"]
    token = inputs["token_id"]
    tick = int(float(inputs["tick_size"]) * MICRO + 0.5)
    m = Market(COND, (token, "1"), ("Yes", "No"), tick, 0, inputs["neg_risk"])
    maker = vector["signed"]["maker"].lower()
    balances = Balances(usdc={maker: 10**6 * S}, positions={maker: {token: 10**6 * S}})
    clock = Clock(int(at_s or vector["l2_timestamp"]) * 1000)
    state = ClobSimState([m], balances=balances, clock=clock)
    creds = vector["api_creds"]
    key = state.accounts.register_api_key(
        vector["signer_address"], creds["key"], creds["secret"], creds["passphrase"]
    )
    if inputs["order_type"] in ("FOK", "FAK"):
        # liquidity at the signed price, so market orders fill and their amounts are proven usable
        maker_amount, taker_amount = (
            int(vector["signed"]["makerAmount"]),
            int(vector["signed"]["takerAmount"]),
        )
        usdc, shares = (
            (taker_amount, maker_amount) if inputs["side"] == "SELL" else (maker_amount, taker_amount)
        )
        level = (Level(round(Fraction(usdc * MICRO, shares) / tick) * tick, 10**7 * S),)
        bids, asks = (level, ()) if inputs["side"] == "SELL" else ((), level)
        state.apply_events([BookSnapshot(clock.ms, token, COND, bids, asks)])
    return state, key


def test_every_official_vector_is_accepted_byte_for_byte(vectors: dict[str, Any]) -> None:
    assert vectors["vectors"]
    for vector in vectors["vectors"]:
        state, key = _vector_state(vector)
        body = vector["post_body"].encode()
        assert key == state.auth.l2(vector["l2_headers"], "POST", "/order", body), vector["id"]
        response = post(state, key, json.loads(body))
        immediate = vector["inputs"]["order_type"] in ("FOK", "FAK")
        assert (vector["order_hash"], "matched" if immediate else "live") == (
            response["orderID"],
            response["status"],
        ), vector["id"]
        assert [("accepted", vector["order_hash"])] == [(e.outcome, e.order_hash) for e in state.order_log]


def test_batch_vector_is_accepted_in_request_order(vectors: dict[str, Any]) -> None:
    data = vectors
    batch = data["batch_post"]
    first = next(v for v in data["vectors"] if v["id"] == batch["vector_ids"][0])
    state, key = _vector_state(first, batch["l2_timestamp"])
    body = batch["post_body"].encode()
    assert key == state.auth.l2(batch["l2_headers"], "POST", "/orders", body)
    by_id = {v["id"]: v for v in data["vectors"]}
    responses = post_batch(state, key, json.loads(body))
    assert [by_id[i]["order_hash"] for i in batch["vector_ids"]] == [r["orderID"] for r in responses]
    assert all(r["success"] for r in responses)


def test_l1_vectors_authenticate_and_stale_or_forged_headers_do_not(vectors: dict[str, Any]) -> None:
    for vector in vectors["l1_auth_vectors"]:
        state = ClobSimState([market()], clock=Clock(vector["timestamp"] * 1000))
        assert (vector["address"].lower(), vector["nonce"]) == state.auth.l1(vector["headers"])
        stale = ClobSimState([market()], clock=Clock((vector["timestamp"] + 3600) * 1000))
        assert ERRORS["l1"] == rejected(lambda s=stale, h=vector["headers"]: s.auth.l1(h)).message
        forged = {**vector["headers"], "POLY_ADDRESS": "0x" + "11" * 20}
        assert 401 == rejected(lambda s=state, h=forged: s.auth.l1(h)).status


def test_recover_address_matches_the_vectors(vectors: dict[str, Any]) -> None:
    for vector in vectors["vectors"][:5]:
        digest = bytes.fromhex(vector["order_hash"][2:])
        signature = bytes.fromhex(vector["signed"]["signature"][2:])
        assert vector["signature_recovers_to"].lower() == recover_address(digest, signature)
    assert recover_address(b"\x00" * 32, b"\x01" * 64 + b"\x05") is None


# -- credentials and L2 auth ---------------------------------------------------------------------
def test_credentials_are_deterministic_per_address_nonce_and_seed() -> None:
    a, b = make_state(), make_state()
    assert a.api_key_for(ADDR0, 0) == b.api_key_for(ADDR0.upper().replace("0X", "0x"), 0)
    assert a.api_key_for(ADDR0, 0) != a.api_key_for(ADDR0, 1)
    assert a.api_key_for(ADDR0, 0) != make_state(config=ClobSimConfig(seed=7)).api_key_for(ADDR0, 0)
    creds = a.api_key_for(ADDR0, 0)
    ApiCreds(creds.key, creds.secret, creds.passphrase)  # the client-side validator accepts the secret


def test_l2_rejects_wrong_secret_passphrase_address_and_stale_timestamp() -> None:
    clock = Clock()
    state = make_state(clock)
    trader = Trader(state, KEY0)
    body = b'{"orderID":"0x01"}'
    good = trader.headers("DELETE", "/order", body)
    assert trader.creds == state.auth.l2(good, "DELETE", "/order", body)
    wrong_secret = L2Auth(
        trader.local.address, ApiCreds(trader.creds.key, "c2VjcmV0c2VjcmV0c2VjcmV0", trader.creds.passphrase)
    ).headers(state.now_ms() // 1000, "DELETE", "/order", body)
    cases = [
        wrong_secret,
        {**good, "POLY_PASSPHRASE": "nope"},
        {**good, "POLY_ADDRESS": ADDR1},
        {**good, "POLY_API_KEY": "00000000-0000-4000-8000-000000000000"},
    ]
    for headers in cases:
        err = rejected(lambda h=headers: state.auth.l2(h, "DELETE", "/order", body))
        assert (401, ERRORS["unauthorized"]) == (err.status, err.message)
    assert 401 == rejected(lambda: state.auth.l2(good, "DELETE", "/order", body + b" ")).status
    clock.ms = T0 + 3_600_000
    assert 401 == rejected(lambda: state.auth.l2(good, "DELETE", "/order", body)).status


# -- order checks --------------------------------------------------------------------------------
def test_order_rejections_carry_the_venue_texts() -> None:
    clock = Clock()
    state = make_state(clock)
    alice, bob = Trader(state, KEY0), Trader(state, KEY1)
    assert "live" == alice.place(Side.BUY, 400_000, 10 * S)["status"]

    cases = {
        "min size": lambda: alice.place(Side.BUY, 400_000, 1 * S),
        "balance": lambda: alice.place(Side.BUY, 500_000, 5_000 * S),
        "shares": lambda: alice.place(Side.SELL, 900_000, 500 * S),
        "gtd": lambda: alice.place(Side.BUY, 300_000, 10 * S, OrderType.GTD, expiration_s=T0 // 1000 + 30),
        "fok": lambda: alice.place(Side.SELL, 450_000, 50 * S, OrderType.FOK),
        "fak": lambda: alice.place(Side.BUY, 800_000, 10 * S, OrderType.FAK),
        "post-only fok": lambda: post(
            state,
            alice.creds,
            {**alice.body(alice.sign(Side.BUY, 100_000, 10 * S)), "orderType": "FOK", "postOnly": True},
        ),
        "post-only cross": lambda: bob.place(Side.SELL, 400_000, 10 * S, post_only=True),
    }
    expected = {
        "min size": VENUE_ERRORS["min_size"],
        "balance": VENUE_ERRORS["insufficient_balance_or_allowance"],
        "shares": VENUE_ERRORS["insufficient_balance_or_allowance"],
        "gtd": VENUE_ERRORS["invalid_expiration"],
        "fok": VENUE_ERRORS["fok_not_filled"],
        "fak": VENUE_ERRORS["fak_not_filled"],
        "post-only fok": VENUE_ERRORS["post_only_order_type"],
        "post-only cross": VENUE_ERRORS["post_only_would_cross"],
    }
    got = {name: rejected(call).message for name, call in cases.items()}
    assert expected == got
    gtd = alice.place(Side.BUY, 300_000, 10 * S, OrderType.GTD, expiration_s=T0 // 1000 + 61)
    assert "live" == gtd["status"]


def test_signature_owner_signer_tick_duplicate_and_version_checks() -> None:
    state = make_state()
    alice, bob = Trader(state, KEY0), Trader(state, KEY1)
    order = alice.sign(Side.BUY, 400_000, 10 * S)
    body = alice.body(order)
    first = post(state, alice.creds, body)
    assert order.order_hash == first["orderID"]
    assert VENUE_ERRORS["duplicated"] == rejected(lambda: post(state, alice.creds, body)).message

    fresh = alice.body(alice.sign(Side.BUY, 400_000, 10 * S))
    tampered = {**fresh, "order": {**fresh["order"], "signature": fresh["order"]["signature"][:-4] + "0000"}}
    assert ERRORS["signature"] == rejected(lambda: post(state, alice.creds, tampered)).message
    moved = {**fresh, "order": {**fresh["order"], "takerAmount": "20000000"}}
    assert ERRORS["signature"] == rejected(lambda: post(state, alice.creds, moved)).message
    assert ERRORS["owner"] == rejected(lambda: post(state, bob.creds, fresh)).message
    foreign = {**bob.body(bob.sign(Side.BUY, 400_000, 10 * S)), "owner": alice.creds.key}
    assert ERRORS["signer"] == rejected(lambda: post(state, alice.creds, foreign)).message

    off_tick = alice.signer.sign(YES, Side.BUY, 4_050_000, 10 * S, neg_risk=False, salt=99, timestamp_ms=T0)
    assert (
        VENUE_ERRORS["invalid_tick"]
        == rejected(lambda: post(state, alice.creds, alice.body(off_tick))).message
    )
    neg_risk_domain = alice.signer.sign(YES, Side.BUY, 4 * S, 10 * S, neg_risk=True, salt=98, timestamp_ms=T0)
    assert (
        ERRORS["signature"] == rejected(lambda: post(state, alice.creds, alice.body(neg_risk_domain))).message
    )

    v1_shaped = {**fresh, "order": {**fresh["order"], "nonce": "0", "feeRateBps": "0"}}
    del v1_shaped["order"]["timestamp"]
    assert ERRORS["version"] == rejected(lambda: post(state, alice.creds, v1_shaped)).message
    state.faults = Faults(exchange_version=3)  # the venue moved on: V2-signed orders are stale
    err = rejected(lambda: post(state, alice.creds, fresh))
    assert (400, ERRORS["version"]) == (err.status, err.message)
    assert ERRORS["payload"] == rejected(lambda: post(state, alice.creds, {"order": {}})).message
    outcomes = [e.outcome for e in state.order_log]
    assert ["accepted"] + ["rejected"] * 10 == outcomes


def test_float_artifact_amounts_are_accepted_at_the_tick_they_stand_for() -> None:
    state = make_state()
    alice = Trader(state, KEY0)
    # $10 at 0.57 signed by the official client as round_down(0.57) = 0.56: taker 17.8571 shares
    order = alice.signer.sign(YES, Side.BUY, 10 * S, 17_857_100, neg_risk=False, salt=5, timestamp_ms=T0)
    assert "live" == post(state, alice.creds, alice.body(order))["status"]
    assert [560_000] == [o.price for o in state.orders.live_orders(ADDR0)]


def test_poly_1271_wrapped_signature_recovers_the_key_owner() -> None:
    state = make_state()
    wallet_trader = Trader(state, KEY0, signature_type=SignatureType.POLY_1271, funder=WALLET)
    order = wallet_trader.sign(Side.BUY, 400_000, 10 * S)
    assert WALLET == order.signer.lower() == order.maker.lower()
    assert "live" == post(state, wallet_trader.creds, wallet_trader.body(order))["status"]
    # a wallet the balances file gives to another EOA cannot be used by this key
    owned = make_state(balances=parse_balances({WALLET: {"usdc": "100", "owner": ADDR1}}))
    other = Trader(owned, KEY0, signature_type=SignatureType.POLY_1271, funder=WALLET)
    body = other.body(other.sign(Side.BUY, 400_000, 10 * S))
    assert ERRORS["signature"] == rejected(lambda: post(owned, other.creds, body)).message


def test_safe_orders_use_the_funders_balance() -> None:
    state = make_state()
    safe = Trader(state, KEY0, signature_type=SignatureType.POLY_GNOSIS_SAFE, funder=WALLET)
    safe.place(Side.BUY, 500_000, 100 * S)
    assert 950 * S == state.accounts.ledger.free_usdc(WALLET)
    assert 1_000 * S == state.accounts.ledger.free_usdc(ADDR0)


def test_unknown_wallets_hold_nothing_unless_a_default_is_configured() -> None:
    bare = ClobSimState([market()], clock=Clock())
    poor = Trader(bare, KEY0)
    err = rejected(lambda: poor.place(Side.BUY, 400_000, 10 * S))
    assert VENUE_ERRORS["insufficient_balance_or_allowance"] == err.message
    rich = ClobSimState([market()], ClobSimConfig(default_usdc_micro=50 * S), clock=Clock())
    assert "live" == Trader(rich, KEY0).place(Side.BUY, 400_000, 10 * S)["status"]
    assert 50 * S == rich.accounts.ledger.usdc(ADDR0)


# -- matching, trades, settlement, cancels ---------------------------------------------------------
def test_match_creates_one_trade_seen_by_taker_and_maker_then_settles() -> None:
    clock = Clock()
    state = make_state(clock, ClobSimConfig(mined_after_ms=1_000, confirmed_after_ms=3_000))
    alice, bob = Trader(state, KEY0), Trader(state, KEY1)
    resting = alice.place(Side.SELL, 600_000, 10 * S)["orderID"]
    state.channels.drain_user()
    taken = bob.place(Side.BUY, 650_000, 5 * S)
    assert ("matched", "3", "5") == (taken["status"], taken["makingAmount"], taken["takingAmount"])
    (trade_id,) = taken["tradeIDs"]
    bob_view = trades(state, bob.creds, {"id": trade_id})[0]
    alice_view = trades(state, alice.creds, {})[0]
    assert ("TAKER", "MAKER") == (bob_view["trader_side"], alice_view["trader_side"])
    assert [resting] == [m["order_id"] for m in bob_view["maker_orders"]]
    assert ("0.6", "5", "MATCHED") == (bob_view["price"], bob_view["size"], bob_view["status"])
    assert bob_view["transaction_hash"].startswith("0x")
    resting_view = get_order(state, alice.creds, resting)
    assert ("10", "5", "LIVE") == (
        resting_view["original_size"],
        resting_view["size_matched"],
        resting_view["status"],
    )

    statuses = []
    for ms in (500, 1_000, 3_000):
        clock.ms = T0 + ms
        state.tick()
        statuses.append(trades(state, alice.creds, {})[0]["status"])
    assert ["MATCHED", "MINED", "CONFIRMED"] == statuses
    user_msgs = state.channels.drain_user()
    kinds = [(u, m["event_type"], m.get("type"), m.get("status")) for u, _, m in user_msgs]
    assert (ADDR1, "order", "PLACEMENT", "MATCHED") in kinds
    assert (ADDR0, "order", "UPDATE", "LIVE") in kinds
    trade_statuses = [m["status"] for u, _, m in user_msgs if u == ADDR0 and m["event_type"] == "trade"]
    assert ["MATCHED", "MINED", "CONFIRMED"] == trade_statuses
    assert 1_003 * S == state.accounts.ledger.usdc(ADDR0)
    assert 105 * S == state.accounts.ledger.shares(ADDR1, YES)


_MAKER_FIELDS = ("order_id", "asset_id", "outcome", "side", "price", "matched_amount")


def test_a_mint_is_one_trade_with_the_other_outcome_among_its_maker_orders() -> None:
    state = make_state()
    alice, bob = Trader(state, KEY0), Trader(state, KEY1)
    resting = alice.place(Side.BUY, 600_000, 10 * S)["orderID"]
    # an order on NO meets alice's YES bid as an ask at 0.40
    assert [("0.4", "10")] == [(lv["price"], lv["size"]) for lv in state.market.book_json(NO)["asks"]]
    state.channels.drain_user()
    taken = bob.place(Side.BUY, 400_000, 10 * S, token=NO)
    assert ("matched", "4", "10") == (taken["status"], taken["makingAmount"], taken["takingAmount"])
    (trade_id,) = taken["tradeIDs"]
    trades = {
        (u, m["trader_side"]): m for u, _, m in state.channels.drain_user() if m["event_type"] == "trade"
    }
    assert {(ADDR1, "TAKER"), (ADDR0, "MAKER")} == trades.keys()
    taker_msg, maker_msg = trades[(ADDR1, "TAKER")], trades[(ADDR0, "MAKER")]
    assert trade_id == taker_msg["id"] == maker_msg["id"]
    assert (NO, "No", "BUY", "0.4", "10") == tuple(
        taker_msg[k] for k in ("asset_id", "outcome", "side", "price", "size")
    )
    expected = [(resting, YES, "Yes", "BUY", "0.6", "10")]
    for msg in (taker_msg, maker_msg):
        assert expected == [tuple(m[k] for k in _MAKER_FIELDS) for m in msg["maker_orders"]]
    assert (994 * S, 110 * S) == (state.accounts.ledger.usdc(ADDR0), state.accounts.ledger.shares(ADDR0, YES))
    assert (996 * S, 10 * S) == (state.accounts.ledger.usdc(ADDR1), state.accounts.ledger.shares(ADDR1, NO))
    assert "MATCHED" == get_order(state, alice.creds, resting)["status"]


def test_one_taker_meets_makers_on_both_outcomes_in_one_trade() -> None:
    state = make_state()
    alice, bob = Trader(state, KEY0), Trader(state, KEY1)
    sell_yes = alice.place(Side.SELL, 600_000, 5 * S)["orderID"]
    buy_no = alice.place(Side.BUY, 400_000, 6 * S, token=NO)["orderID"]  # also a YES ask at 0.60
    taken = bob.place(Side.BUY, 600_000, 11 * S)
    (trade_id,) = taken["tradeIDs"]
    view = trades(state, bob.creds, {"id": trade_id})[0]
    assert (YES, "BUY", "0.6", "11", "TAKER") == tuple(
        view[k] for k in ("asset_id", "side", "price", "size", "trader_side")
    )
    # as in the recorded user_trade1: complementary and mint makers side by side, each in its own terms
    assert [(sell_yes, YES, "Yes", "SELL", "0.6", "5"), (buy_no, NO, "No", "BUY", "0.4", "6")] == [
        tuple(m[k] for k in _MAKER_FIELDS) for m in view["maker_orders"]
    ]
    ledger = state.accounts.ledger
    assert (1_000_600_000, 95 * S, 6 * S) == (
        ledger.usdc(ADDR0),
        ledger.shares(ADDR0, YES),
        ledger.shares(ADDR0, NO),
    )
    assert (993_400_000, 111 * S) == (ledger.usdc(ADDR1), ledger.shares(ADDR1, YES))
    assert [] == state.orders.live_orders(ADDR0)


def test_cancels_report_what_was_and_was_not_cancelled() -> None:
    state = make_state()
    alice, bob = Trader(state, KEY0), Trader(state, KEY1)
    a = alice.place(Side.BUY, 400_000, 10 * S)["orderID"]
    b = alice.place(Side.BUY, 300_000, 10 * S)["orderID"]
    c = bob.place(Side.BUY, 200_000, 10 * S)["orderID"]
    assert {"canceled": [a], "not_canceled": {}} == cancel(state, alice.creds, [a])
    assert {"canceled": [], "not_canceled": {a: ERRORS["not_cancelable"], c: ERRORS["order_not_found"]}} == (
        cancel(state, alice.creds, [a, c])
    )
    assert {"canceled": [b], "not_canceled": {}} == render.cancel_json(
        *state.orders.cancel_where(ADDR0, market=COND)
    )
    assert [c] == [o.id for o in state.orders.live_orders(ADDR1)]
    assert 1_000 * S == state.accounts.ledger.free_usdc(ADDR0)


def test_gtd_orders_expire_on_tick() -> None:
    clock = Clock()
    state = make_state(clock)
    alice = Trader(state, KEY0)
    oid = alice.place(Side.BUY, 400_000, 10 * S, OrderType.GTD, expiration_s=T0 // 1000 + 90)["orderID"]
    clock.ms = T0 + 89_000
    state.tick()
    assert [oid] == [o.id for o in state.orders.live_orders(ADDR0)]
    clock.ms = T0 + 90_000
    state.tick()
    assert [] == state.orders.live_orders(ADDR0)
    assert "CANCELED" == get_order(state, alice.creds, oid)["status"]


# -- heartbeats ----------------------------------------------------------------------------------
def test_heartbeats_chain_and_a_stale_id_gets_the_expected_one() -> None:
    state = make_state()
    alice = Trader(state, KEY0)
    first = state.heartbeats.beat(alice.creds, "")["heartbeat_id"]
    second = state.heartbeats.beat(alice.creds, first)["heartbeat_id"]
    assert first != second
    err = rejected(lambda: state.heartbeats.beat(alice.creds, first))
    assert (400, {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": second}) == (
        err.status,
        dict(err.body),
    )
    assert {"status": "ok"} == state.heartbeats.legacy(alice.creds)


def test_missing_heartbeats_cancel_open_orders_only_after_a_first_heartbeat() -> None:
    clock = Clock()
    state = make_state(clock, ClobSimConfig(heartbeat_timeout_ms=10_000))
    alice, bob = Trader(state, KEY0), Trader(state, KEY1)
    alice.place(Side.BUY, 400_000, 10 * S)
    bob.place(Side.BUY, 300_000, 10 * S)
    hb = state.heartbeats.beat(alice.creds, "")["heartbeat_id"]
    clock.ms += 9_000
    state.heartbeats.beat(alice.creds, hb)
    clock.ms += 9_999
    state.tick()
    assert 1 == len(state.orders.live_orders(ADDR0))
    clock.ms += 1
    state.tick()
    assert ([], 1) == (state.orders.live_orders(ADDR0), len(state.orders.live_orders(ADDR1)))


# -- market data ---------------------------------------------------------------------------------
def test_book_is_bids_ascending_asks_descending_with_a_hash_the_client_reproduces() -> None:
    state = make_state()
    state.apply_events(
        [
            BookSnapshot(
                T0, YES, COND, (Level(450_000, 10 * S), Level(440_000, 5 * S)), (Level(470_000, 7 * S),)
            )
        ]
    )
    Trader(state, KEY0).place(Side.SELL, 480_000, 6 * S)
    state.apply_events([LastTrade(T0, YES, COND, 460_000, S, Side.BUY)])
    book = state.market.book_json(YES)
    assert [("0.44", "5"), ("0.45", "10")] == [(lv["price"], lv["size"]) for lv in book["bids"]]
    assert [("0.48", "6"), ("0.47", "7")] == [(lv["price"], lv["size"]) for lv in book["asks"]]
    assert ("0.01", "5", "0.46") == (book["tick_size"], book["min_order_size"], book["last_trade_price"])
    assert book["hash"] == generate_orderbook_summary_hash(parse_raw_orderbook_summary(dict(book)))
    # NO has no snapshot: its book is YES's mirrored, where an order on NO would match
    mirrored = state.market.book_json(NO)
    assert [("0.52", "6"), ("0.53", "7")] == [(lv["price"], lv["size"]) for lv in mirrored["bids"]]
    assert [("0.56", "5"), ("0.55", "10")] == [(lv["price"], lv["size"]) for lv in mirrored["asks"]]


def test_watchers_get_price_change_for_orders_and_book_after_trades() -> None:
    state = make_state()
    alice, bob = Trader(state, KEY0), Trader(state, KEY1)
    (initial,) = state.channels.watch([YES])
    assert ("book", [], []) == (initial["event_type"], initial["bids"], initial["asks"])
    alice.place(Side.SELL, 600_000, 10 * S)
    ((assets, change),) = state.channels.drain_market()
    entry = change["price_changes"][0]
    assert (("price_change", (YES,))) == (change["event_type"], assets)
    assert (YES, "0.6", "10", "SELL", "", "0.6") == (
        entry["asset_id"],
        entry["price"],
        entry["size"],
        entry["side"],
        entry["best_bid"],
        entry["best_ask"],
    )
    bob.place(Side.BUY, 600_000, 5 * S)
    kinds = [m["event_type"] for _, m in state.channels.drain_market()]
    assert ["last_trade_price", "book"] == kinds
    state.channels.unwatch([YES])
    alice.place(Side.SELL, 700_000, 10 * S)
    assert [] == state.channels.drain_market()


def test_paced_replay_waits_for_advance() -> None:
    events = [BookSnapshot(T0 + i, YES, COND, (Level(400_000 + i * 10_000, S),), ()) for i in range(3)]
    state = ClobSimState([market()], ClobSimConfig(paced_replay=True), events=events, clock=Clock())
    assert ([], 3) == (state.market.book_json(YES)["bids"], state.pending_events)
    assert 2 == state.advance(until_ms=T0 + 1)
    assert "0.41" == state.market.book_json(YES)["bids"][-1]["price"]
    assert 1 == state.advance()
    assert 0 == state.pending_events


def test_inject_parses_venue_frames_and_rejects_garbage() -> None:
    state = make_state()
    frame = {
        "event_type": "book",
        "asset_id": YES,
        "market": COND,
        "bids": [{"price": ".5", "size": "3"}],
        "asks": [],
    }
    assert 1 == state.inject(frame)
    assert "0.5" == state.market.book_json(YES)["bids"][0]["price"]
    assert 400 == rejected(lambda: state.inject({"event_type": "book", "asset_id": YES})).status


def test_pagination_cursors() -> None:
    state = make_state(config=ClobSimConfig(page_size=2))
    alice = Trader(state, KEY0)
    ids = [alice.place(Side.BUY, 100_000 + i * 10_000, 5 * S)["orderID"] for i in range(5)]
    seen, cursor = [], INITIAL_CURSOR
    while cursor != END_CURSOR:
        rows = [render.order_json(o) for o in state.orders.live_orders(ADDR0)]
        page = render.page(rows, cursor, state.config.page_size)
        seen += [o["id"] for o in page["data"]]
        cursor = page["next_cursor"]
    assert ids == seen
    assert 400 == rejected(lambda: render.page([], "not base64!", 10)).status


# -- pieces --------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    burst=st.integers(1, 50),
    window=st.integers(1, 10_000),
    steps=st.lists(st.tuples(st.integers(0, 5_000), st.integers(1, 5)), max_size=30),
)
def test_token_bucket_never_exceeds_its_rate(burst: int, window: int, steps: list[tuple[int, int]]) -> None:
    now = 0
    bucket = TokenBucket(burst, window, now)
    spent = 0
    for dt, cost in steps:
        now += dt
        if bucket.retry_after_s(cost, now) == 0:
            bucket.take(cost, now)
            spent += cost
    # never more than the burst plus what the elapsed time refilled
    assert spent <= burst + now * burst // window


def test_token_bucket_retry_after() -> None:
    bucket = TokenBucket(2, 10_000, 0)
    bucket.take(2, 0)
    assert 5 == bucket.retry_after_s(1, 0)
    assert 0 == bucket.retry_after_s(1, 5_000)


def test_faults_parse_and_draw_deterministically() -> None:
    a = Faults.from_json({"error_rate": 0.5, "status_codes": [500, 503], "seed": 3})
    b = Faults.from_json({"error_rate": 0.5, "status_codes": [500, 503], "seed": 3})
    draws = [a.injected_status() for _ in range(50)]
    assert draws == [b.injected_status() for _ in range(50)]
    assert {0, 500, 503} == set(draws)
    assert (503,) == Faults.from_json({"status": 503}).status_codes
    lost = Faults.from_json({"answer_lost_rate": 1.0, "answer_lost_status": 504})
    assert (True, 504) == (lost.answer_lost(), lost.to_json()["answer_lost_status"])
    assert False is Faults.from_json({}).answer_lost()
    bad_inputs: list[Any] = [
        {"error_rate": 2},
        {"status": 200},
        {"mode": "chaos"},
        {"nope": 1},
        [1],
        {"answer_lost_rate": -0.1},
        {"answer_lost_status": 404},
        {"answer_lost_status": True},
        {"drop_ws": "yes"},
    ]
    for bad in bad_inputs:
        with pytest.raises(ValueError):
            Faults.from_json(bad)


def test_balances_file_parsing() -> None:
    parsed = parse_balances({ADDR0.upper().replace("0X", "0x"): {"usdc": "12.5", "positions": {YES: "3"}}})
    assert ({ADDR0: 12_500_000}, {ADDR0: {YES: 3 * S}}) == (
        dict(parsed.usdc),
        {k: dict(v) for k, v in parsed.positions.items()},
    )
    with pytest.raises(ValueError):
        parse_balances({"not-an-address": {}})


# -- the ASGI app --------------------------------------------------------------------------------
@pytest.fixture
def app_state() -> Iterator[tuple[ClobSimState, TestClient]]:
    state = make_state(config=ClobSimConfig(order_burst=2, cancel_burst=2))
    with TestClient(create_app(state, tick_interval_s=0.01)) as client:
        yield state, client


def test_app_order_flow_rate_limit_faults_and_admin(app_state: tuple[ClobSimState, TestClient]) -> None:
    state, client = app_state
    alice = Trader(state, KEY0)
    order = alice.sign(Side.BUY, 400_000, 10 * S)
    body = order.post_body(alice.creds.key, OrderType.GTC)
    r = client.post("/order", content=body, headers=alice.headers("POST", "/order", body))
    assert (200, order.order_hash) == (r.status_code, r.json()["orderID"])
    r = client.post("/order", content=body, headers=alice.headers("POST", "/order", body))
    assert (400, {"error": VENUE_ERRORS["duplicated"]}) == (r.status_code, r.json())
    r = client.post("/order", content=body, headers=alice.headers("POST", "/order", body))
    assert (429, "Too Many Requests") == (r.status_code, r.json()["error"])
    assert int(r.headers["Retry-After"]) >= 1
    r = client.post(
        "/order", content=body, headers={**alice.headers("POST", "/order", body), "POLY_PASSPHRASE": "x"}
    )
    assert (401, {"error": ERRORS["unauthorized"]}) == (r.status_code, r.json())

    client.post("/_sim/faults", json={"engine_restart": True, "retry_after_s": 2})
    cancel_body = json.dumps({"orderID": order.order_hash}).encode()
    r = client.request(
        "DELETE", "/order", content=cancel_body, headers=alice.headers("DELETE", "/order", cancel_body)
    )
    assert (425, "2") == (r.status_code, r.headers["Retry-After"])
    client.post("/_sim/faults", json={"mode": "cancel_only"})
    r = client.request(
        "DELETE", "/order", content=cancel_body, headers=alice.headers("DELETE", "/order", cancel_body)
    )
    assert (200, [order.order_hash]) == (r.status_code, r.json()["canceled"])
    client.post("/_sim/faults", json={"error_rate": 1.0, "status": 503})
    assert 503 == client.get("/book", params={"token_id": YES}).status_code
    assert 200 == client.get("/_sim/state").status_code  # admin is never faulted
    client.post("/_sim/faults", json={})

    log = client.get("/_sim/orders").json()
    assert ["accepted", "rejected", "rate_limited", "unauthorized"] == [e["outcome"] for e in log]
    assert order.order_hash == log[0]["order_hash"]
    assert 400 == client.post("/_sim/faults", json={"mode": "chaos"}).status_code


def test_app_public_endpoints(app_state: tuple[ClobSimState, TestClient]) -> None:
    _, client = app_state
    client.post(
        "/_sim/events",
        json={
            "event_type": "book",
            "asset_id": YES,
            "market": COND,
            "bids": [{"price": "0.4", "size": "10"}],
            "asks": [{"price": "0.6", "size": "10"}],
        },
    )
    assert {"version": 2} == client.get("/version").json()
    assert "OK" == client.get("/ok").text
    assert isinstance(client.get("/time").json(), int)
    assert b'{"minimum_tick_size":0.01}' == client.get("/tick-size", params={"token_id": YES}).content
    assert {"neg_risk": False} == client.get("/neg-risk", params={"token_id": YES}).json()
    assert b'{"price":0.4}' == client.get("/price", params={"token_id": YES, "side": "BUY"}).content
    assert "0.5" == client.get("/midpoint", params={"token_id": YES}).json()["mid"]
    assert (404, ERRORS["no_orderbook"]) == (
        (r := client.get("/book", params={"token_id": "123"})).status_code,
        r.json()["error"],
    )
    assert 400 == client.get("/book", params={"token_id": "x"}).status_code
    page = client.get("/markets").json()
    assert ([COND], END_CURSOR) == ([m["condition_id"] for m in page["data"]], page["next_cursor"])
    info = client.get(f"/clob-markets/{COND}").json()
    assert ([YES, NO], 0.01, False) == ([t["t"] for t in info["t"]], info["mts"], info["nr"])


def test_app_websockets(app_state: tuple[ClobSimState, TestClient]) -> None:
    state, client = app_state
    alice = Trader(state, KEY0)
    with client.websocket_connect("/ws/market") as market_ws, client.websocket_connect("/ws/user") as user_ws:
        market_ws.send_text(json.dumps({"type": "market", "assets_ids": [YES]}))
        (book,) = market_ws.receive_json()
        assert ("book", YES) == (book["event_type"], book["asset_id"])
        market_ws.send_text("PING")
        assert "PONG" == market_ws.receive_text()
        auth = {"apiKey": alice.creds.key, "secret": alice.creds.secret, "passphrase": alice.creds.passphrase}
        user_ws.send_text(json.dumps({"auth": auth, "markets": [COND], "type": "user"}))
        user_ws.send_text("PING")
        assert "PONG" == user_ws.receive_text()  # the auth frame was processed first
        order = alice.sign(Side.BUY, 420_000, 10 * S)
        body = order.post_body(alice.creds.key, OrderType.GTC)
        assert (
            200
            == client.post("/order", content=body, headers=alice.headers("POST", "/order", body)).status_code
        )
        change = market_ws.receive_json()
        assert ("price_change", "0.42", "BUY") == (
            change["event_type"],
            change["price_changes"][0]["price"],
            change["price_changes"][0]["side"],
        )
        placed = user_ws.receive_json()
        assert ("order", "PLACEMENT", order.order_hash) == (
            placed["event_type"],
            placed["type"],
            placed["id"],
        )
    with client.websocket_connect("/ws/user") as bad:
        bad.send_text(json.dumps({"auth": {**auth, "secret": "x"}, "type": "user"}))
        assert "websocket.close" == bad.receive()["type"]


def test_state_reports_the_channels_subscriptions(app_state: tuple[ClobSimState, TestClient]) -> None:
    state, client = app_state
    alice = Trader(state, KEY0)

    def subscriptions() -> dict[str, Any]:
        subs: dict[str, Any] = client.get("/_sim/state").json()["subscriptions"]
        return subs

    nobody = {"market": 0, "user": 0, "market_assets": []}
    assert nobody == subscriptions()
    with client.websocket_connect("/ws/market") as market_ws, client.websocket_connect("/ws/user") as user_ws:
        market_ws.send_text("PING")
        assert "PONG" == market_ws.receive_text()
        assert nobody == subscriptions()  # connected is not subscribed
        market_ws.send_text(json.dumps({"type": "market", "assets_ids": [NO, "123", YES]}))
        market_ws.receive_json()  # the books: the subscription was processed
        # "123" is no listed token: the venue does not serve it
        assert {"market": 1, "user": 0, "market_assets": sorted([YES, NO])} == subscriptions()
        auth = {"apiKey": alice.creds.key, "secret": alice.creds.secret, "passphrase": alice.creds.passphrase}
        user_ws.send_text(json.dumps({"auth": auth, "markets": [COND], "type": "user"}))
        user_ws.send_text("PING")
        assert "PONG" == user_ws.receive_text()
        assert {"market": 1, "user": 1, "market_assets": sorted([YES, NO])} == subscriptions()
        market_ws.send_text(json.dumps({"operation": "unsubscribe", "assets_ids": [YES, NO]}))
        market_ws.send_text("PING")
        assert "PONG" == market_ws.receive_text()
        assert {"market": 0, "user": 1, "market_assets": []} == subscriptions()


# -- trades come from the engine's records ---------------------------------------------------------
def test_a_replayed_print_reaching_two_users_orders_is_one_trade_both_see_and_prints_once() -> None:
    state = make_state()
    state.apply_events([BookSnapshot(T0, YES, COND, (Level(390_000, 10 * S),), (Level(400_000, 10 * S),))])
    alice, bob = Trader(state, KEY0), Trader(state, KEY1)
    a = alice.place(Side.SELL, 400_000, 5 * S)["orderID"]
    b = bob.place(Side.SELL, 400_000, 6 * S)["orderID"]
    state.channels.watch([YES])
    state.channels.drain_user()
    state.apply_events([LastTrade(T0 + 1, YES, COND, 410_000, 20 * S, Side.BUY)])  # trades through 0.40
    (alice_view,) = trades(state, alice.creds, {})
    (bob_view,) = trades(state, bob.creds, {})
    assert alice_view["id"] == bob_view["id"]
    assert ("BUY", "0.41", "11", "MAKER") == tuple(
        alice_view[k] for k in ("side", "price", "size", "trader_side")
    )
    assert alice_view["taker_order_id"].startswith("0x") and 66 == len(alice_view["taker_order_id"])
    assert [(a, "SELL", "0.4", "5", 0), (b, "SELL", "0.4", "6", 0)] == [
        (m["order_id"], m["side"], m["price"], m["matched_amount"], m["outcome_index"])
        for m in alice_view["maker_orders"]
    ]
    users = {u for u, _, m in state.channels.drain_user() if m["event_type"] == "trade"}
    assert {ADDR0, ADDR1} == users
    # the replayed print goes out once: the outside taker's trade is not printed a second time
    kinds = [m["event_type"] for _, m in state.channels.drain_market()]
    assert 1 == kinds.count("last_trade_price")


def test_taking_displayed_liquidity_is_a_trade_without_venue_makers() -> None:
    state = make_state()
    state.apply_events([BookSnapshot(T0, YES, COND, (), (Level(400_000, 10 * S),))])
    bob = Trader(state, KEY1)
    taken = bob.place(Side.BUY, 400_000, 5 * S, OrderType.FAK)
    assert ("matched", "2", "5") == (taken["status"], taken["makingAmount"], taken["takingAmount"])
    (view,) = trades(state, bob.creds, {})
    assert (taken["orderID"], "TAKER", []) == (
        view["taker_order_id"],
        view["trader_side"],
        view["maker_orders"],
    )
    assert "0.4" == state.market.book_json(YES)["last_trade_price"]


# -- hostile requests ------------------------------------------------------------------------------
def _asgi_post(app: Any, path: str, headers: list[tuple[bytes, bytes]], receive: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("sim.test", 80),
    }
    asyncio.run(app(scope, receive, send))
    return sent


def test_an_oversized_body_is_refused_before_the_rest_of_it_is_read() -> None:
    state = make_state(config=ClobSimConfig(max_body_bytes=1_000))
    app = create_app(state)
    reads = 0

    async def endless() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"[" * 400, "more_body": True}

    sent = _asgi_post(app, "/orders", [], endless)
    assert 3 == reads  # 1,200 bytes read: over the limit, nothing more is asked for
    assert 413 == sent[0]["status"]
    assert {"error": ERRORS["body_too_large"]} == json.loads(sent[1]["body"])

    async def never() -> dict[str, Any]:
        raise AssertionError("a body declared too large must not be read")

    sent = _asgi_post(app, "/order", [(b"content-length", str(10 << 20).encode())], never)
    assert 413 == sent[0]["status"]
    assert [("/orders", "too_large"), ("/order", "too_large")] == [
        (e.endpoint, e.outcome) for e in state.order_log
    ]


def test_unauthenticated_order_requests_are_refused_unparsed_and_the_log_is_bounded() -> None:
    state = make_state(config=ClobSimConfig(order_log_size=3))
    alice = Trader(state, KEY0)
    signed = alice.sign(Side.BUY, 400_000, 10 * S).post_body(alice.creds.key, OrderType.GTC)
    deep = b"[" * 1_000 + b"]" * 1_000
    with TestClient(create_app(state)) as client:
        for body in (signed, deep, signed, deep, signed):
            r = client.post("/order", content=body, headers={"POLY_API_KEY": alice.creds.key})
            assert (401, {"error": ERRORS["unauthorized"]}) == (r.status_code, r.json())
    # three entries kept of five; none carries anything from a body, which was never decoded
    assert 3 == len(state.order_log)
    assert {("unauthorized", None, "", "")} == {
        (e.outcome, e.salt, e.owner, e.order_type) for e in state.order_log
    }


_HOSTILE_BODIES = {
    "nested": b"[" * 1_000 + b"]" * 1_000,
    "nested-object": b'{"order":' * 1_000 + b"1" + b"}" * 1_000,
    "truncated": b'{"order": {"salt": 1',
    "not-utf8": b'{"orderID": "\xff\xfe"}',
    "huge-number": b'{"order": {"salt": ' + b"9" * 5_000 + b"}}",
}
_ENDPOINTS = [
    ("POST", "/order"),
    ("POST", "/orders"),
    ("DELETE", "/order"),
    ("DELETE", "/orders"),
    ("DELETE", "/cancel-market-orders"),
    ("POST", "/v1/heartbeats"),
    ("POST", "/books"),
    ("POST", "/_sim/faults"),
    ("POST", "/_sim/advance"),
    ("POST", "/_sim/events"),
]


@pytest.mark.parametrize(("method", "path"), _ENDPOINTS)
def test_malformed_or_deeply_nested_bodies_get_a_4xx_in_the_venue_shape(method: str, path: str) -> None:
    state = make_state()
    alice = Trader(state, KEY0)
    with TestClient(create_app(state)) as client:
        for name, body in _HOSTILE_BODIES.items():
            r = client.request(method, path, content=body, headers=alice.headers(method, path, body))
            assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
            error = r.json()
            assert list(error) == ["error"] and isinstance(error["error"], str), name
        assert [] == state.orders.live_orders(ADDR0)  # nothing garbage reached the book
        assert 200 == client.get("/ok").status_code


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)


def _order_like(values: Any) -> Any:
    # an order body with some of its fields replaced by arbitrary values
    return st.fixed_dictionaries(
        {"order": st.dictionaries(st.sampled_from(["salt", "maker", "tokenId", "side", "signature"]), values)}
    ) | st.fixed_dictionaries({"owner": values, "orderType": values, "order": values})


def test_fuzzed_order_bodies_never_get_a_5xx() -> None:
    state = make_state()
    alice = Trader(state, KEY0)
    with TestClient(create_app(state)) as client:

        @settings(max_examples=150, deadline=None)
        @given(
            st.binary(max_size=200)
            | _json_values.map(json.dumps).map(str.encode)
            | _order_like(_json_values).map(lambda v: json.dumps(v).encode())
        )
        def check(body: bytes) -> None:
            r = client.post("/order", content=body, headers=alice.headers("POST", "/order", body))
            assert 400 <= r.status_code < 500 and isinstance(r.json()["error"], str)

        check()


def test_websocket_frames_that_are_not_json_leave_the_socket_open(
    app_state: tuple[ClobSimState, TestClient],
) -> None:
    _, client = app_state
    with client.websocket_connect("/ws/market") as ws:
        for frame in ("[" * 1_000 + "]" * 1_000, '{"type": "market"', '{"type": [[[[]]]], "assets_ids": 7}'):
            ws.send_text(frame)
        ws.send_text("PING")
        assert "PONG" == ws.receive_text()
        ws.send_text(json.dumps({"type": "market", "assets_ids": [YES]}))
        (book,) = ws.receive_json()
        assert YES == book["asset_id"]


def test_unknown_routes_answer_in_the_venue_shape(app_state: tuple[ClobSimState, TestClient]) -> None:
    _, client = app_state
    r = client.get("/no-such-endpoint")
    assert (404, {"error": "Not Found"}) == (r.status_code, r.json())
    assert 405 == client.get("/order").status_code


def test_an_unhashable_order_type_is_refused_alone_and_a_batch_never_fails_half_placed() -> None:
    """orderType [] or {} reached a frozenset lookup: a 500, after the batch's earlier orders rested."""
    state = make_state()
    alice = Trader(state, KEY0)
    good = alice.body(alice.sign(Side.BUY, 400_000, 10 * S))
    with TestClient(create_app(state)) as client:
        odd: Any
        for odd in ([], {}, [1]):
            bad = alice.body(alice.sign(Side.BUY, 300_000, 10 * S)) | {"orderType": odd}
            body = json.dumps(bad).encode()
            r = client.post("/order", content=body, headers=alice.headers("POST", "/order", body))
            assert (400, {"error": ERRORS["payload"]}) == (r.status_code, r.json())
        body = json.dumps([good, bad]).encode()
        r = client.post("/orders", content=body, headers=alice.headers("POST", "/orders", body))
        assert 200 == r.status_code
        first, second = r.json()
        assert (True, "", False, ERRORS["payload"]) == (
            first["success"],
            first["errorMsg"],
            second["success"],
            second["errorMsg"],
        )
        log = client.get("/_sim/orders").json()
        assert ["rejected"] * 3 + ["accepted", "rejected"] == [e["outcome"] for e in log]


def test_a_batch_beyond_what_the_rate_bucket_can_hold_is_a_400_not_an_endless_429(
    app_state: tuple[ClobSimState, TestClient],
) -> None:
    """A 429 promises that waiting helps: for a cost above the bucket's burst no wait ever does."""
    state, client = app_state  # order and cancel bursts of 2
    alice = Trader(state, KEY0)
    bodies = [alice.body(alice.sign(Side.BUY, 100_000 * (n + 1), 10 * S)) for n in range(3)]
    body = json.dumps(bodies).encode()
    r = client.post("/orders", content=body, headers=alice.headers("POST", "/orders", body))
    assert (400, {"error": ERRORS["batch_limit"]}, None) == (
        r.status_code,
        r.json(),
        r.headers.get("retry-after"),
    )
    ids = json.dumps(["0x" + f"{n:064x}" for n in range(3)]).encode()
    r = client.request("DELETE", "/orders", content=ids, headers=alice.headers("DELETE", "/orders", ids))
    assert (400, {"error": ERRORS["batch_limit"]}) == (r.status_code, r.json())
    body = json.dumps(bodies[:2]).encode()
    assert (
        200
        == client.post("/orders", content=body, headers=alice.headers("POST", "/orders", body)).status_code
    )


def test_admin_faults_refuse_what_would_hang_or_mislead(app_state: tuple[ClobSimState, TestClient]) -> None:
    _, client = app_state
    hostile: list[Any] = [
        {"latency_ms": 10**15},
        {"retry_after_s": 10**9},
        {"exchange_version": 2.0},
        [],
        None,
        0,
    ]
    for faults in hostile:
        r = client.post("/_sim/faults", content=json.dumps(faults).encode())
        assert (400, True) == (r.status_code, isinstance(r.json()["error"], str)), faults
    assert 200 == client.post("/_sim/faults", json={"latency_ms": 60_000}).status_code
    r = client.post("/_sim/faults", content=b"")  # an empty body clears them
    assert (200, 0) == (r.status_code, r.json()["latency_ms"])
    assert 2 == client.get("/version").json()["version"]


def test_a_trailing_slash_is_an_unknown_path_never_a_redirect(
    app_state: tuple[ClobSimState, TestClient],
) -> None:
    _, client = app_state
    for method, path in (("GET", "/markets/"), ("POST", "/order/"), ("GET", "/book/")):
        r = client.request(method, path, headers={"host": "evil.example"}, follow_redirects=False)
        assert (404, None) == (r.status_code, r.headers.get("location")), path
        assert isinstance(r.json()["error"], str)


def test_with_an_admin_token_the_admin_api_requires_it() -> None:
    state = make_state()
    with TestClient(create_app(state, admin_token="s3cret")) as client:
        assert (401, {"error": ERRORS["admin_unauthorized"]}) == (
            (r := client.get("/_sim/state")).status_code,
            r.json(),
        )
        assert (
            401 == client.post("/_sim/faults", json={}, headers={"Authorization": "Bearer nope"}).status_code
        )
        assert 200 == client.get("/_sim/state", headers={"Authorization": "Bearer s3cret"}).status_code
        assert 200 == client.get("/version").status_code  # the venue's own API is not the admin's


@pytest.mark.parametrize(
    ("host", "env", "expected"),
    [
        ("127.0.0.1", {}, None),
        ("localhost", {}, None),
        ("::1", {}, None),
        ("127.0.0.2", {}, None),
        ("0.0.0.0", {ENV_ADMIN_TOKEN: "tok"}, "tok"),
        ("127.0.0.1", {ENV_ADMIN_TOKEN: "tok"}, "tok"),
    ],
)
def test_the_admin_token_a_bind_needs(host: str, env: dict[str, str], expected: str | None) -> None:
    assert expected == admin_token_for(host, env)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "sim.example.com"])
def test_sim_clob_refuses_a_non_loopback_bind_without_a_token(
    host: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(ENV_ADMIN_TOKEN, raising=False)
    assert 2 == cli_main(["sim-clob", "--host", host, "--markets", "markets.json"])
    err = capsys.readouterr().err
    assert 1 == len(err.splitlines()) and ENV_ADMIN_TOKEN in err and host in err


# -- venue acted, answer lost ----------------------------------------------------------------------
def test_a_lost_answer_leaves_the_order_on_the_venue(app_state: tuple[ClobSimState, TestClient]) -> None:
    state, client = app_state
    alice = Trader(state, KEY0)
    client.post("/_sim/faults", json={"answer_lost_rate": 1.0, "answer_lost_status": 502})
    order = alice.sign(Side.BUY, 400_000, 10 * S)
    body = order.post_body(alice.creds.key, OrderType.GTC)
    r = client.post("/order", content=body, headers=alice.headers("POST", "/order", body))
    assert (502, {"error": ERRORS["internal"]}) == (r.status_code, r.json())
    assert [order.order_hash] == [o.id for o in state.orders.live_orders(ADDR0)]
    (entry,) = client.get("/_sim/orders").json()
    assert ("accepted", order.order_hash, True) == (
        entry["outcome"],
        entry["order_hash"],
        entry["answer_lost"],
    )


class _ExecClock(Clock):
    """One clock for the venue (called) and for its client (the core Clock port)."""

    def now_ms(self) -> int:
        return self.ms

    def monotonic_ns(self) -> int:
        return self.ms * 1_000_000


def _request(n: int, price: int, order_type: OrderType = OrderType.GTC) -> OrderRequest:
    return order_request(f"opp-{n}:0", opportunity_id=f"opp-{n}", correlation_id=f"c-{n}", strategy="test",
                         routing="passive", wallet=ADDR0, market=COND, token_id=YES, price=price,
                         size=20 * S, order_type=order_type)  # fmt: skip


def _execution(
    creds: ApiCreds, clock: _ExecClock, transport: httpx.AsyncBaseTransport | None, host: str
) -> tuple[ClobExecution, list[RaiseAlert]]:
    signer = LocalSigner.from_private_key(KEY0, 137, creds)
    client = ClobHttpClient(ClobConfig(host=host), clock, signer, transport=transport)
    alerts: list[RaiseAlert] = []

    async def no_wait(seconds: float) -> None:
        clock.ms += int(seconds * 1000)

    execution = ClobExecution(
        client,
        OrderSigner.from_key(KEY0, 137),
        owner=creds.api_key,
        clock=clock,
        rng=random.Random(3),
        alert=alerts.append,
        sleep=no_wait,
    )
    execution.on_market_event(TickSizeChange(clock.ms, YES, COND, 10_000, 10_000))
    return execution, alerts


def _creds(state: ClobSimState) -> ApiCreds:
    api = state.api_key_for(ADDR0, 0)
    return ApiCreds(api_key=api.key, secret=api.secret, passphrase=api.passphrase)


def _posts(state: ClobSimState, order_hash: str) -> list[str]:
    return [e.outcome for e in state.order_log if e.order_hash == order_hash]


@pytest.mark.parametrize("status", [500, 502, 504])
@pytest.mark.parametrize("liquidity", [False, True], ids=["rests", "matches"])
def test_execution_reconciles_a_lost_answer_by_hash_and_never_posts_twice(
    status: int, liquidity: bool
) -> None:
    clock = _ExecClock(T0)
    state = make_state(clock)
    if liquidity:
        state.apply_events([BookSnapshot(T0, YES, COND, (), (Level(400_000, 100 * S),))])
    transport = httpx.ASGITransport(app=create_app(state))
    execution, alerts = _execution(_creds(state), clock, transport, "http://sim.test")
    state.faults = Faults.from_json({"answer_lost_rate": 1.0, "answer_lost_status": status})

    async def scenario() -> tuple[list[ExecutionReport], list[ExecutionReport], list[ExecutionReport]]:
        lost = await execution.submit(_request(1, 400_000))
        state.faults = Faults()  # the network recovers; the venue kept what it did
        found = await execution.reconcile()
        after = await execution.submit(_request(2, 300_000))
        return lost, found, after

    lost, found, after = asyncio.run(scenario())
    (unknown,) = lost
    assert isinstance(unknown, OrderStatusUnknown) and "opp-1:0" == unknown.order_id
    order_hash = execution.index.venue_id("opp-1:0")
    assert order_hash is not None
    assert ["accepted"] == _posts(state, order_hash)  # reconciliation found it: never re-posted
    assert 2 == state.orders.counts()["orders"]
    accepted = [r for r in found if isinstance(r, OrderAccepted)]
    fills = [r for r in found if isinstance(r, OrderFilled)]
    assert all(r.order_id == "opp-1:0" for r in found)
    if liquidity:
        assert [(400_000, 20 * S)] == [(f.price, f.size) for f in fills]
    else:
        assert ([order_hash], []) == ([a.venue_order_id for a in accepted], fills)
        assert [order_hash] == [o.id for o in state.orders.live_orders(ADDR0) if o.id == order_hash]
    assert ["OrderAccepted"] == [type(r).__name__ for r in after]
    assert [] == execution.unknown_orders and [] == alerts


def test_a_dropped_connection_after_the_venue_acted_is_reconciled_over_real_http(tmp_path: Path) -> None:
    markets = tmp_path / "markets.json"
    markets.write_bytes(render.encode([render.market_document(market())]))
    balances = tmp_path / "balances.json"
    balances.write_text(json.dumps({ADDR0: {"usdc": "1000"}}))
    url, stop = start_in_thread(markets, balances_path=balances)
    try:
        clock = _ExecClock(time.time_ns() // 1_000_000)
        with httpx.Client(base_url=url) as admin:
            l1 = LocalSigner.from_private_key(KEY0, 137).l1_headers(clock.ms // 1000)
            keys = admin.post("/auth/api-key", headers=l1).raise_for_status().json()
            creds = ApiCreds(api_key=keys["apiKey"], secret=keys["secret"], passphrase=keys["passphrase"])
            execution, alerts = _execution(creds, clock, None, url)
            admin.post("/_sim/faults", json={"answer_lost_rate": 1.0}).raise_for_status()

            async def scenario() -> tuple[list[ExecutionReport], list[ExecutionReport]]:
                lost = await execution.submit(_request(1, 400_000))
                admin.post("/_sim/faults", json={}).raise_for_status()
                return lost, await execution.reconcile()

            lost, found = asyncio.run(scenario())
            log = admin.get("/_sim/orders").json()
    finally:
        stop()
    assert ["OrderStatusUnknown"] == [type(r).__name__ for r in lost]
    order_hash = execution.index.venue_id("opp-1:0")
    assert ["OrderAccepted"] == [type(r).__name__ for r in found]
    assert [(order_hash, "accepted", True)] == [
        (e["order_hash"], e["outcome"], e["answer_lost"]) for e in log
    ]
    assert [] == alerts
