"""The official py-clob-client-v2, unmodified, against the CLOB simulator on 127.0.0.1.

When the client and the simulator disagree, the simulator is wrong (DESIGN.md section 4). Each test
gets its own server on a free port (started in a thread, always stopped) so market state never leaks.
Keys are the public anvil test keys used by shared/data/vectors/orders.json.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import (
    AssetType,
    BalanceAllowanceParams,
    MarketOrderArgsV2,
    OpenOrderParams,
    OrderArgsV2,
    OrderMarketCancelParams,
    OrderPayload,
    OrderType,
    PartialCreateOrderOptions,
    PostOrdersV2Args,
    TradeParams,
)
from py_clob_client_v2.exceptions import PolyApiException
from websockets.sync.client import connect

from polysnipe.adapters.sim.clob import ClobSimConfig
from polysnipe.runners.sim_clob import start_in_thread

KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
ADDR0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ADDR1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
SAFE = "0x1F98431c8aD98523631AE4a59f267346ea31F984"
DEPOSIT_WALLET = "0x6aBcD2D7d5F1bC0f0B3B1e2a3C4d5E6f7a8B9c0D"
YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
COND = "0x" + "ab" * 32
# the recorded neg-risk market (GET /markets/{id}): tick 0.001, min size 5
NR_COND = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"
NR_YES = "21742633143463906290569050155826241533067272736897614950488156847949938836455"

FAST = ClobSimConfig(heartbeat_timeout_ms=400, mined_after_ms=100, confirmed_after_ms=200)


@pytest.fixture
def files(tmp_path: Path, shared_data: Path) -> tuple[Path, Path]:
    plain = {
        "enable_order_book": True,
        "active": True,
        "closed": False,
        "accepting_orders": True,
        "minimum_order_size": 5,
        "minimum_tick_size": 0.01,
        "condition_id": COND,
        "question": "Will the simulator agree with the client?",
        "neg_risk": False,
        "neg_risk_market_id": "",
        "tokens": [
            {"token_id": YES, "outcome": "Yes", "price": 0.5, "winner": False},
            {"token_id": NO, "outcome": "No", "price": 0.5, "winner": False},
        ],
    }
    neg_risk = json.loads((shared_data / "polymarket/rest/nautilus_py_market.json").read_text())
    markets = tmp_path / "markets.json"
    markets.write_text(json.dumps([plain, neg_risk]))
    held = {"usdc": "1000", "positions": {YES: "200", NR_YES: "50"}}
    balances = tmp_path / "balances.json"
    balances.write_text(
        json.dumps(
            {
                ADDR0: held,
                ADDR1: held,
                SAFE: {**held, "owner": ADDR0, "signature_type": 2},
                DEPOSIT_WALLET: {**held, "owner": ADDR0, "signature_type": 3},
            }
        )
    )
    return markets, balances


Server = Callable[..., str]


@pytest.fixture
def server(files: tuple[Path, Path]) -> Iterator[Server]:
    """Start a simulator (config per test); every one started is stopped at teardown."""
    stops: list[Callable[[], None]] = []

    def start(config: ClobSimConfig = FAST) -> str:
        url, stop = start_in_thread(files[0], balances_path=files[1], config=config)
        stops.append(stop)
        return url

    yield start
    for stop in stops:
        stop()


def client(url: str, key: str = KEY0, **kw: Any) -> ClobClient:
    c = ClobClient(url, 137, key=key, **kw)
    c.set_api_creds(c.create_or_derive_api_key())
    return c


def inject(url: str, frame: dict[str, Any]) -> None:
    httpx.post(f"{url}/_sim/events", json=frame).raise_for_status()


def book_frame(asset: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "event_type": "book",
        "asset_id": asset,
        "market": COND,
        "bids": [{"price": p, "size": s} for p, s in bids],
        "asks": [{"price": p, "size": s} for p, s in asks],
    }


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll `condition` until it holds; False if it never did within `timeout_s` (a safety bound,
    not a timing assertion: the condition normally holds long before)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def venue_error(call: Callable[[], Any]) -> tuple[int | None, Any]:
    with pytest.raises(PolyApiException) as info:
        call()
    return info.value.status_code, info.value.error_msg


# -- tests ---------------------------------------------------------------------------------------
def test_api_keys_create_and_derive_agree(server: Server) -> None:
    url = server()
    c = ClobClient(url, 137, key=KEY0)
    created = c.create_api_key()
    assert created == c.derive_api_key() == c.create_or_derive_api_key()
    assert created != c.create_api_key(nonce=1)
    c.set_api_creds(created)
    assert created.api_key in c.get_api_keys()["apiKeys"]
    assert c.get_ok() == "OK"
    assert {"version": 2} == httpx.get(f"{url}/version").json()


def test_market_data_reads_like_the_venue(server: Server) -> None:
    url = server()
    c = client(url)
    inject(url, book_frame(YES, [("0.44", "30"), ("0.45", "10")], [("0.6", "20"), ("0.55", "100")]))
    book = c.get_order_book(YES)
    assert ["0.44", "0.45"] == [lv["price"] for lv in book["bids"]]
    assert ["0.6", "0.55"] == [lv["price"] for lv in book["asks"]]  # descending: best is last
    assert book["hash"] == c.get_order_book_hash(book)
    assert "0.01" == c.get_tick_size(YES)
    assert c.get_neg_risk(NR_YES) is True
    assert {"price": 0.45} == c.get_price(YES, "BUY")
    assert "0.5" == c.get_midpoint(YES)["mid"]
    info = c.get_clob_market_info(NR_COND)
    assert (0.001, True) == (info["mts"], info["nr"])
    assert {COND, NR_COND} == {m["condition_id"] for m in c.get_markets()["data"]}
    assert NR_COND == c.get_market(NR_COND)["condition_id"]


def test_every_order_type_cancels_and_queries(server: Server) -> None:
    url = server()
    alice, bob = client(url), client(url, KEY1)
    inject(url, book_frame(YES, [("0.45", "10")], [("0.6", "100"), ("0.55", "100")]))

    gtc = alice.create_and_post_order(OrderArgsV2(token_id=YES, price=0.40, size=10, side="BUY"))
    gtd = alice.create_and_post_order(
        OrderArgsV2(token_id=YES, price=0.41, size=10, side="BUY", expiration=int(time.time()) + 120),
        order_type=OrderType.GTD,
    )
    post_only = alice.create_and_post_order(
        OrderArgsV2(token_id=YES, price=0.50, size=10, side="BUY"), post_only=True
    )
    assert ["live"] * 3 == [r["status"] for r in (gtc, gtd, post_only)]
    assert all(r["success"] and r["errorMsg"] == "" for r in (gtc, gtd, post_only))

    fok = bob.create_and_post_market_order(
        MarketOrderArgsV2(token_id=YES, amount=20, side="BUY", order_type=OrderType.FOK),
        order_type=OrderType.FOK,
    )
    assert ("matched", 1) == (fok["status"], len(fok["tradeIDs"]))
    # the engine fills the signed share amount (36.3636 at 0.55), not the last micro-dollar of $20
    assert Decimal("19.9999") <= Decimal(fok["makingAmount"]) <= 20
    assert fok["transactionsHashes"]  # the client resolved them from GET /data/trades?id=
    fak = bob.create_and_post_market_order(
        MarketOrderArgsV2(token_id=YES, amount=25, side="SELL", price=0.45, order_type=OrderType.FAK),
        order_type=OrderType.FAK,
    )
    # 10 shares rest at 0.50 (alice's post-only bid) and 10 replayed at 0.45; the rest is killed
    assert ("matched", "20", "9.5") == (fak["status"], fak["makingAmount"], fak["takingAmount"])

    batch = alice.post_orders(
        [
            PostOrdersV2Args(
                order=alice.create_order(OrderArgsV2(token_id=YES, price=p, size=5, side="BUY")),
                orderType=OrderType.GTC,
            )
            for p in (0.30, 0.31)
        ]
    )
    assert ["live", "live"] == [r["status"] for r in batch]

    open_ids = {o["id"] for o in alice.get_open_orders()}
    assert {gtc["orderID"], gtd["orderID"], *(r["orderID"] for r in batch)} == open_ids
    assert post_only["orderID"] not in open_ids  # the FAK filled it
    assert "MATCHED" == alice.get_order(post_only["orderID"])["status"]
    assert [gtc["orderID"]] == [o["id"] for o in alice.get_open_orders(OpenOrderParams(id=gtc["orderID"]))]
    trades = bob.get_trades()
    assert {"TAKER"} == {t["trader_side"] for t in trades}
    assert {fok["tradeIDs"][0], *fak["tradeIDs"]} == {t["id"] for t in trades}
    maker_view = alice.get_trades(TradeParams(market=COND))
    assert ["MAKER"] == [t["trader_side"] for t in maker_view]

    assert {"canceled": [gtc["orderID"]], "not_canceled": {}} == alice.cancel_order(
        OrderPayload(orderID=gtc["orderID"])
    )
    assert [batch[0]["orderID"]] == alice.cancel_orders([batch[0]["orderID"]])["canceled"]
    assert [gtd["orderID"]] == alice.cancel_market_orders(OrderMarketCancelParams(market=COND, asset_id=YES))[
        "canceled"
    ][:1]
    assert {"canceled": [], "not_canceled": {}} == alice.cancel_all()
    assert [] == alice.get_open_orders()
    again = alice.cancel_order(OrderPayload(orderID=gtc["orderID"]))
    assert {gtc["orderID"]: "already canceled or matched"} == again["not_canceled"]


def test_a_yes_bid_and_a_no_bid_mint_and_both_users_see_the_trade(server: Server) -> None:
    url = server()
    alice, bob = client(url), client(url, KEY1)
    yes_bid = alice.create_and_post_order(OrderArgsV2(token_id=YES, price=0.60, size=10, side="BUY"))
    assert "live" == yes_bid["status"]
    assert [{"price": "0.4", "size": "10"}] == bob.get_order_book(NO)["asks"]  # the bid, seen from NO
    no_bid = bob.create_and_post_order(OrderArgsV2(token_id=NO, price=0.40, size=10, side="BUY"))
    assert ("matched", "4", "10") == (no_bid["status"], no_bid["makingAmount"], no_bid["takingAmount"])
    (taker_view,) = bob.get_trades()
    (maker_view,) = alice.get_trades()
    assert taker_view["id"] == maker_view["id"] == no_bid["tradeIDs"][0]
    assert (NO, "BUY", "0.4", "TAKER") == tuple(
        taker_view[k] for k in ("asset_id", "side", "price", "trader_side")
    )
    assert "MAKER" == maker_view["trader_side"]
    assert [(yes_bid["orderID"], YES, "Yes", "BUY", "0.6", "10")] == [
        (m["order_id"], m["asset_id"], m["outcome"], m["side"], m["price"], m["matched_amount"])
        for m in taker_view["maker_orders"]
    ]
    no_shares = BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=NO)
    assert str(10 * 10**6) == bob.get_balance_allowance(no_shares)["balance"]
    collateral = BalanceAllowanceParams(asset_type=AssetType.COLLATERAL)
    assert (str(994 * 10**6), str(996 * 10**6)) == (
        alice.get_balance_allowance(collateral)["balance"],
        bob.get_balance_allowance(collateral)["balance"],
    )


def test_rejections_carry_the_venue_texts(server: Server) -> None:
    url = server()
    alice = client(url)
    inject(url, book_frame(YES, [("0.45", "10")], [("0.55", "10")]))

    signed = alice.create_order(OrderArgsV2(token_id=YES, price=0.40, size=10, side="BUY"))
    assert "live" == alice.post_order(signed)["status"]
    duplicate = "order is invalid. Duplicated. Same order has already been placed, can't be placed again"
    assert (400, {"error": duplicate}) == venue_error(lambda: alice.post_order(signed))

    tampered = alice.create_order(OrderArgsV2(token_id=YES, price=0.40, size=11, side="BUY"))
    sig = tampered.signature
    tampered.signature = sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:]
    assert (400, {"error": "invalid signature"}) == venue_error(lambda: alice.post_order(tampered))

    small = alice.create_order(OrderArgsV2(token_id=YES, price=0.40, size=1, side="BUY"))
    assert (400, {"error": "order is invalid. Size lower than the minimum"}) == venue_error(
        lambda: alice.post_order(small)
    )
    crossing = alice.create_order(OrderArgsV2(token_id=YES, price=0.55, size=5, side="BUY"))
    assert (400, {"error": "invalid post-only order: order crosses book"}) == venue_error(
        lambda: alice.post_order(crossing, post_only=True)
    )
    broke = alice.create_order(OrderArgsV2(token_id=YES, price=0.40, size=5000, side="BUY"))
    assert (400, {"error": "not enough balance / allowance"}) == venue_error(lambda: alice.post_order(broke))

    # the tick moves to 0.1 after the client cached 0.01: its 0.43 no longer sits on the tick
    off_tick = alice.create_order(OrderArgsV2(token_id=YES, price=0.43, size=10, side="BUY"))
    inject(
        url,
        {
            "event_type": "tick_size_change",
            "asset_id": YES,
            "market": COND,
            "old_tick_size": "0.01",
            "new_tick_size": "0.1",
        },
    )
    assert (400, {"error": "order is invalid. Price breaks minimum tick size rules"}) == venue_error(
        lambda: alice.post_order(off_tick)
    )

    wrong_secret = dataclasses.replace(alice.creds, api_secret="c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0")
    mallory = ClobClient(url, 137, key=KEY0, creds=wrong_secret)
    assert (401, {"error": "Unauthorized/Invalid api key"}) == venue_error(lambda: mallory.post_order(signed))

    log = httpx.get(f"{url}/_sim/orders").json()
    outcomes = [(e["outcome"], e["error"]) for e in log]
    assert ("accepted", "") == outcomes[0]
    assert ("rejected", duplicate) == outcomes[1]
    assert "unauthorized" == outcomes[-1][0]
    assert signed.salt == str(log[0]["salt"])


def test_l1_headers_are_verified(server: Server) -> None:
    url = server()
    c = ClobClient(url, 137, key=KEY0)
    headers = c._l1_headers()
    assert 200 == httpx.post(f"{url}/auth/api-key", headers=headers).status_code
    forged = {**headers, "POLY_ADDRESS": ADDR1}
    r = httpx.post(f"{url}/auth/api-key", headers=forged)
    assert (401, {"error": "Invalid L1 Request headers"}) == (r.status_code, r.json())
    stale = {**headers, "POLY_TIMESTAMP": str(int(headers["POLY_TIMESTAMP"]) - 3600)}
    assert 401 == httpx.get(f"{url}/auth/derive-api-key", headers=stale).status_code


def test_proxy_safe_and_deposit_wallet_orders(server: Server) -> None:
    url = server()
    safe = client(url, signature_type=2, funder=SAFE)
    r = safe.create_and_post_order(OrderArgsV2(token_id=YES, price=0.40, size=10, side="BUY"))
    assert "live" == r["status"]
    wallet = client(url, signature_type=3, funder=DEPOSIT_WALLET)
    r = wallet.create_and_post_order(OrderArgsV2(token_id=NR_YES, price=0.401, size=10, side="BUY"))
    assert "live" == r["status"]
    collateral = BalanceAllowanceParams(asset_type=AssetType.COLLATERAL)
    assert str(1_000 * 10**6) == wallet.get_balance_allowance(collateral)["balance"]
    assert str(1_000 * 10**6) == safe.get_balance_allowance(collateral)["balance"]
    shares = BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=YES)
    assert str(200 * 10**6) == client(url).get_balance_allowance(shares)["balance"]


def test_neg_risk_orders_sign_against_the_neg_risk_exchange(server: Server) -> None:
    url = server()
    alice, bob = client(url), client(url, KEY1)
    sell = alice.create_and_post_order(OrderArgsV2(token_id=NR_YES, price=0.487, size=10, side="SELL"))
    buy = bob.create_and_post_order(OrderArgsV2(token_id=NR_YES, price=0.487, size=6, side="BUY"))
    assert ("live", "matched") == (sell["status"], buy["status"])
    assert "6" == alice.get_order(sell["orderID"])["size_matched"]
    # told the market is not neg-risk, the client signs for the wrong exchange
    wrong = bob.create_order(
        OrderArgsV2(token_id=NR_YES, price=0.4, size=10, side="BUY"),
        PartialCreateOrderOptions(neg_risk=False),
    )
    assert (400, {"error": "invalid signature"}) == venue_error(lambda: bob.post_order(wrong))


def test_heartbeats_chain_and_their_absence_cancels_orders(server: Server) -> None:
    url = server()
    alice = client(url)
    first = alice.post_heartbeat()["heartbeat_id"]
    second = alice.post_heartbeat(first)["heartbeat_id"]
    assert (400, {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": second}) == venue_error(
        lambda: alice.post_heartbeat(first)
    )
    alice.create_and_post_order(OrderArgsV2(token_id=YES, price=0.40, size=10, side="BUY"))
    assert 1 == len(alice.get_open_orders())
    # FAST cancels 400 ms after the last good heartbeat
    assert wait_until(lambda: not alice.get_open_orders()), "orders outlived the heartbeat timeout"


def test_faults_rate_limits_and_version_bumps(server: Server) -> None:
    url = server(attrs.evolve(FAST, order_burst=2))
    alice = client(url)
    args = OrderArgsV2(token_id=YES, price=0.40, size=5, side="BUY")
    httpx.post(f"{url}/_sim/faults", json={"engine_restart": True, "retry_after_s": 1}).raise_for_status()
    assert (425, {"error": "Matching engine is restarting"}) == venue_error(
        lambda: alice.create_and_post_order(args)
    )
    assert 425 == venue_error(alice.cancel_all)[0]
    httpx.post(f"{url}/_sim/faults", json={"error_rate": 1.0, "status_codes": [503]}).raise_for_status()
    assert 503 == venue_error(lambda: alice.get_order_book(YES))[0]
    httpx.post(f"{url}/_sim/faults", json={"exchange_version": 3}).raise_for_status()
    # the client cached version 2: the venue refuses, and a client that re-reads /version signs V3
    assert (400, {"error": "order_version_mismatch"}) == venue_error(
        lambda: alice.create_and_post_order(args)
    )
    fresh = client(url)
    assert "live" == fresh.create_and_post_order(args)["status"]
    httpx.post(f"{url}/_sim/faults", json={}).raise_for_status()
    # the order bucket (2) is spent: the 3rd charged order request this window is throttled
    status, body = venue_error(lambda: alice.create_and_post_order(args))
    assert (429, {"error": "Too Many Requests"}) == (status, body)
    assert [e["outcome"] for e in httpx.get(f"{url}/_sim/orders").json()] == [
        "fault",
        "rejected",
        "accepted",
        "rate_limited",
    ]


def test_websocket_channels_follow_the_book_and_the_users_orders(server: Server) -> None:
    url = server()
    ws_url = url.replace("http", "ws")
    alice, bob = client(url), client(url, KEY1)
    creds = alice.creds
    with connect(f"{ws_url}/ws/market") as market_ws, connect(f"{ws_url}/ws/user") as user_ws:
        market_ws.send(json.dumps({"type": "market", "assets_ids": [YES], "custom_feature_enabled": False}))
        (book,) = json.loads(market_ws.recv(timeout=5))
        assert ("book", YES, [], []) == (book["event_type"], book["asset_id"], book["bids"], book["asks"])
        auth = {"apiKey": creds.api_key, "secret": creds.api_secret, "passphrase": creds.api_passphrase}
        user_ws.send(json.dumps({"auth": auth, "markets": [COND], "type": "user"}))
        user_ws.send("PING")
        assert "PONG" == user_ws.recv(timeout=5)

        resting = alice.create_and_post_order(OrderArgsV2(token_id=YES, price=0.60, size=10, side="SELL"))
        change = json.loads(market_ws.recv(timeout=5))
        assert "price_change" == change["event_type"]
        assert [(YES, "0.6", "10", "SELL")] == [
            (e["asset_id"], e["price"], e["size"], e["side"]) for e in change["price_changes"]
        ]
        placed = json.loads(user_ws.recv(timeout=5))
        assert ("PLACEMENT", "LIVE", resting["orderID"]) == (placed["type"], placed["status"], placed["id"])

        bob.create_and_post_order(OrderArgsV2(token_id=YES, price=0.60, size=5, side="BUY"))
        kinds = [json.loads(market_ws.recv(timeout=5))["event_type"] for _ in range(2)]
        assert ["last_trade_price", "book"] == kinds
        seen: list[tuple[str, str]] = []
        while ("trade", "CONFIRMED") not in seen:
            msg = json.loads(user_ws.recv(timeout=5))
            seen.append((msg["event_type"], msg["status"]))
        assert [("order", "LIVE"), ("trade", "MATCHED"), ("trade", "MINED"), ("trade", "CONFIRMED")] == seen

        httpx.post(f"{url}/_sim/faults", json={"drop_ws": True}).raise_for_status()
        with pytest.raises(Exception):  # noqa: B017 - the close code is the point, not the type
            market_ws.recv(timeout=5)
        assert 1011 == market_ws.close_code
