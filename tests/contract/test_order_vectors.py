"""Our V2 order amounts, hashes, signatures, bodies and auth headers against the official client.

The vectors (shared/data/vectors/orders.json) were produced offline by py-clob-client-v2 1.2.1; the
official client itself is the oracle for what the vectors do not cover (POLY_1271 signatures).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs
import pytest
from coincurve import PublicKey
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2
from py_clob_client_v2.order_utils.model.side import Side as OfficialSide
from py_clob_client_v2.order_utils.model.signature_type_v2 import SignatureTypeV2
from py_clob_client_v2.signer import Signer

from polysnipe.adapters.clob.auth import ApiCreds, LocalSigner, clob_auth_digest
from polysnipe.adapters.clob.config import (
    BYTES32_ZERO,
    POLYGON,
    ClobConfig,
    SignatureType,
    exchange_contracts,
)
from polysnipe.adapters.clob.signing import (
    GTD_SECURITY_THRESHOLD_S,
    EcdsaKey,
    OrderSigner,
    SignedOrder,
    batch_post_body,
    checksum_address,
    keccak256,
    salt_from_order_id,
)
from polysnipe.core.events import Side
from polysnipe.core.messages import OrderRequest, OrderType
from polysnipe.core.order_math import amounts_for_order, limit_amounts, market_amounts
from polysnipe.core.units import parse_micro

REPO = Path(__file__).resolve().parents[2]
VECTORS_PATH = Path(
    os.environ.get("POLYSNIPE_ORDER_VECTORS") or REPO / ".." / "shared" / "data" / "vectors" / "orders.json"
)
DATA: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
VECTORS: list[dict[str, Any]] = DATA["vectors"]
BY_ID = {v["id"]: v for v in VECTORS}
VECTOR_IDS = [v["id"] for v in VECTORS]
CREDS = ApiCreds(DATA["api_creds"]["key"], DATA["api_creds"]["secret"], DATA["api_creds"]["passphrase"])


def signer_for(vector: dict[str, Any]) -> OrderSigner:
    inputs = vector["inputs"]
    config = ClobConfig(
        chain_id=vector["chain_id"],
        signature_type=inputs["signature_type"],
        funder=inputs["funder"],
        builder_code=inputs["builder"],
    )
    return OrderSigner.for_config(EcdsaKey(vector["key"]), config)


def sign_vector(vector: dict[str, Any]) -> SignedOrder:
    """Sign with the vector's own amounts, salt and timestamp (the official client's float amounts)."""
    signed = vector["signed"]
    return signer_for(vector).sign(
        signed["tokenId"],
        Side(signed["side"]),
        int(signed["makerAmount"]),
        int(signed["takerAmount"]),
        neg_risk=vector["inputs"]["neg_risk"],
        salt=int(signed["salt"]),
        timestamp_ms=int(signed["timestamp"]),
        expiration_s=int(signed["expiration"]),
    )


def body_of(vector: dict[str, Any], order: SignedOrder) -> bytes:
    inputs = vector["inputs"]
    return order.post_body(
        vector["api_creds"]["key"],
        OrderType(inputs["order_type"]),
        post_only=inputs["post_only"],
        defer_exec=inputs["defer_exec"],
    )


def recover(order_hash: str, signature: str) -> str:
    """ecrecover: the address whose key made `signature` (r || s || v, v = 27/28) over `order_hash`."""
    raw = bytes.fromhex(signature[2:])
    public = PublicKey.from_signature_and_message(
        raw[:64] + bytes([raw[64] - 27]), bytes.fromhex(order_hash[2:]), hasher=None
    )
    return checksum_address("0x" + keccak256(public.format(compressed=False)[1:])[-20:].hex())


def test_vector_file_is_the_expected_one() -> None:
    assert "polysnipe-clob-order-vectors/1" == DATA["schema"]
    assert 42 == len(VECTORS) == len(BY_ID)


@pytest.mark.parametrize("vector_id", VECTOR_IDS)
def test_exact_amounts_from_decimal_inputs(vector_id: str) -> None:
    vector = BY_ID[vector_id]
    inputs = vector["inputs"]
    side = Side[inputs["side"]]
    if vector["kind"] == "limit":
        actual = limit_amounts(side, inputs["price"], inputs["size"], inputs["tick_size"])
    else:
        actual = market_amounts(side, inputs["price"], inputs["amount"], inputs["tick_size"])
    expected = vector["exact_amounts"]
    assert (int(expected["maker_amount"]), int(expected["taker_amount"])) == actual


@pytest.mark.parametrize("vector_id", VECTOR_IDS)
def test_signed_order_is_byte_identical(vector_id: str) -> None:
    vector = BY_ID[vector_id]
    order = sign_vector(vector)
    expected = vector["signed"]
    assert vector["order_hash"] == order.order_hash
    assert expected["signature"] == order.signature
    wire_fields = {name: getattr(order, name) for name in expected}
    wire_fields["side"] = 0 if order.side == "BUY" else 1
    wire_fields["salt"] = str(order.salt)
    assert expected == wire_fields
    contracts = exchange_contracts(POLYGON)
    neg_risk = vector["inputs"]["neg_risk"]
    assert vector["exchange"] == (contracts.neg_risk_exchange_v2 if neg_risk else contracts.exchange_v2)
    assert vector["signature_recovers_to"] == recover(order.order_hash, order.signature)
    assert vector["signer_address"] == EcdsaKey(vector["key"]).address


@pytest.mark.parametrize("vector_id", VECTOR_IDS)
def test_post_body_and_l2_headers(vector_id: str) -> None:
    vector = BY_ID[vector_id]
    body = body_of(vector, sign_vector(vector))
    assert vector["post_body"].encode() == body
    signer = LocalSigner.from_private_key(vector["key"], vector["chain_id"], CREDS)
    assert vector["l2_headers"] == signer.l2_headers(
        int(vector["l2_timestamp"]), "POST", vector["post_path"], body
    )


def test_batch_post_body_and_headers() -> None:
    batch = DATA["batch_post"]
    vectors = [BY_ID[i] for i in batch["vector_ids"]]
    body = batch_post_body([body_of(v, sign_vector(v)) for v in vectors])
    assert batch["post_body"].encode() == body
    signer = LocalSigner.from_private_key(vectors[0]["key"], POLYGON, CREDS)
    assert batch["l2_headers"] == signer.l2_headers(
        int(batch["l2_timestamp"]), "POST", batch["post_path"], body
    )


def test_batch_size_is_bounded() -> None:
    with pytest.raises(ValueError):
        batch_post_body([])
    with pytest.raises(ValueError):
        batch_post_body([b"{}"] * 16)


@pytest.mark.parametrize("l1", DATA["l1_auth_vectors"], ids=lambda v: f"nonce-{v['nonce']}")
def test_l1_headers(l1: dict[str, Any]) -> None:
    signer = LocalSigner.from_private_key(l1["key"], l1["chain_id"])
    assert l1["address"] == signer.address
    assert l1["headers"] == signer.l1_headers(l1["timestamp"], l1["nonce"])


@pytest.mark.parametrize("chain_id", [POLYGON, 80002])
@pytest.mark.parametrize(("timestamp_s", "nonce"), [(1_700_000_000, 0), (1_764_061_999, 7), (1, 2**64)])
def test_l1_headers_match_the_official_client(chain_id: int, timestamp_s: int, nonce: int) -> None:
    from py_clob_client_v2.headers.headers import create_level_1_headers

    key = VECTORS[0]["key"]
    expected = create_level_1_headers(Signer(key, chain_id), nonce=nonce, timestamp=timestamp_s)
    assert expected == LocalSigner.from_private_key(key, chain_id).l1_headers(timestamp_s, nonce)
    assert 32 == len(clob_auth_digest(EcdsaKey(key).address, chain_id, timestamp_s, nonce))


@pytest.mark.parametrize("neg_risk", [False, True])
@pytest.mark.parametrize("side", list(Side))
@pytest.mark.parametrize("builder", [BYTES32_ZERO, BY_ID["gtc-0.01-buy-builder"]["inputs"]["builder"]])
def test_poly_1271_signature_matches_the_official_builder(neg_risk: bool, side: Side, builder: str) -> None:
    """Deposit wallets (signature type 3): no vectors, so the official builder is the oracle."""
    key, wallet = VECTORS[0]["key"], "0x1F98431c8aD98523631AE4a59f267346ea31F984"
    token, salt, timestamp = VECTORS[0]["signed"]["tokenId"], 123_456_789, 1_764_061_234_567
    contracts = exchange_contracts(POLYGON)
    official = ExchangeOrderBuilderV2(
        contracts.neg_risk_exchange_v2 if neg_risk else contracts.exchange_v2,
        POLYGON,
        Signer(key, POLYGON),
        generate_salt=lambda: str(salt),
    )
    expected = official.build_signed_order(
        OrderDataV2(
            maker=wallet,
            tokenId=token,
            makerAmount="5000000",
            takerAmount="10000000",
            side=OfficialSide(int(side)),
            signer=wallet,
            signatureType=SignatureTypeV2.POLY_1271,
            timestamp=str(timestamp),
            builder=builder,
        )
    )
    ours = OrderSigner.from_key(
        key, POLYGON, signature_type=SignatureType.POLY_1271, funder=wallet, builder_code=builder
    ).sign(token, side, 5_000_000, 10_000_000, neg_risk=neg_risk, salt=salt, timestamp_ms=timestamp)
    assert expected.signature == ours.signature
    assert (wallet, wallet, 3) == (ours.maker, ours.signer, ours.signatureType)
    assert official.build_order_hash(official.build_order_typed_data(expected)) == ours.order_hash


def test_engine_order_signs_the_exact_amounts() -> None:
    """The engine path (OrderRequest in micro-units) gives the vector's exact amounts and fields."""
    for vector in VECTORS:
        inputs = vector["inputs"]
        # market BUYs are sized in USDC by users but in shares by the engine: not comparable
        if vector["kind"] == "market" and inputs["side"] == "BUY":
            continue
        order_type = OrderType(inputs["order_type"])
        request = OrderRequest(
            order_id=vector["id"],
            opportunity_id=vector["id"],
            correlation_id="c",
            strategy="s",
            routing="r",
            wallet="w",
            market="m",
            token_id=inputs["token_id"],
            side=Side[inputs["side"]],
            price=parse_micro(inputs["price"]),
            size=parse_micro(inputs.get("size") or inputs["amount"]),
            order_type=order_type,
            tick_size=parse_micro(inputs["tick_size"]),
            neg_risk=inputs["neg_risk"],
            # the engine asks for its own expiry; the signed one adds the venue's one-minute threshold
            expiration_ms=max(0, int(inputs["expiration"]) - GTD_SECURITY_THRESHOLD_S) * 1000,
        )
        order = signer_for(vector).sign_request(request, int(vector["timestamp"]))
        exact = vector["exact_amounts"]
        assert (exact["maker_amount"], exact["taker_amount"]) == (order.makerAmount, order.takerAmount)
        assert (inputs["expiration"], vector["timestamp"]) == (order.expiration, order.timestamp)
        assert salt_from_order_id(vector["id"]) == order.salt < 2**53
        assert (exact["maker_amount"], exact["taker_amount"]) == tuple(
            str(a)
            for a in amounts_for_order(
                request.side, request.price, request.size, order_type, request.tick_size
            )
        )


def test_sign_request_rejects_inconsistent_expirations() -> None:
    vector = BY_ID["gtd-0.01-buy"]
    request = OrderRequest(
        order_id="x",
        opportunity_id="x",
        correlation_id="c",
        strategy="s",
        routing="r",
        wallet="w",
        market="m",
        token_id=vector["inputs"]["token_id"],
        side=Side.BUY,
        price=350_000,
        size=20_000_000,
        order_type=OrderType.GTD,
        tick_size=10_000,
        neg_risk=True,
    )
    signer = signer_for(vector)
    with pytest.raises(ValueError, match="no expiration"):
        signer.sign_request(request, 1)
    with pytest.raises(ValueError, match="cannot carry an expiration"):
        signer.sign_request(attrs.evolve(request, order_type=OrderType.GTC, expiration_ms=5_000), 1)
    with pytest.raises(ValueError, match="post_only"):
        signer.sign_request(attrs.evolve(request, order_type=OrderType.FOK), 1).post_body(
            "owner", OrderType.FOK, post_only=True
        )


def test_bad_inputs_never_reach_the_signature() -> None:
    signer = signer_for(VECTORS[0])
    token = VECTORS[0]["inputs"]["token_id"]
    for bad_token in ("+1", " 1", "1_0", "0x12", "", "١٢"):
        with pytest.raises(ValueError):
            signer.sign(bad_token, Side.BUY, 1, 1, neg_risk=False, salt=1, timestamp_ms=1)
    with pytest.raises(ValueError):
        signer.sign(token, Side.BUY, 0, 1, neg_risk=False, salt=1, timestamp_ms=1)
    with pytest.raises(ValueError):
        OrderSigner.from_key(VECTORS[0]["key"], POLYGON, signature_type=SignatureType.POLY_GNOSIS_SAFE)
    with pytest.raises(ValueError):
        OrderSigner.from_key(VECTORS[0]["key"], 1, builder_code=BYTES32_ZERO)
    with pytest.raises(ValueError):
        OrderSigner.from_key(VECTORS[0]["key"], POLYGON, builder_code="0x12")


def test_reprs_never_show_secrets() -> None:
    key = VECTORS[0]["key"]
    shown = " ".join(
        repr(x)
        for x in (
            EcdsaKey(key),
            OrderSigner.from_key(key, POLYGON),
            LocalSigner.from_private_key(key, POLYGON, CREDS),
            CREDS,
        )
    )
    for secret in (key, key[2:], CREDS.secret, CREDS.passphrase, CREDS.api_key):
        assert secret not in shown


def test_bench_runs_offline_and_both_builders_agree(tmp_path: Path) -> None:
    from polysnipe.runners.bench_orders import format_table, run_bench

    out = tmp_path / "bench.json"
    result = run_bench(20, out)
    assert result == json.loads(out.read_text())
    assert result["same_amounts"]
    assert 0 < result["ours"]["p50_us"] <= result["ours"]["p99_us"]
    assert "py-clob-client-v2" in format_table(result)
