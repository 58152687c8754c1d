"""Our V2 order amounts, hashes, signatures, bodies and auth headers against the official client.

The vectors were produced offline by py-clob-client-v2 1.2.1; any file of the same schema can stand
in (POLYSNIPE_ORDER_VECTORS, see order_vector_file). Every vector is checked; tests about one kind of
vector (neg-risk, POLY_1271, float artifacts, ...) choose it by property and skip when the file has
none. The official client itself is the oracle for what a file may not cover (POLY_1271 signatures).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from coincurve import PublicKey
from order_vector_file import load_vectors, parametrize_vectors, pick, pick_all
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
    ORDER_TYPE_STRING,
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
from polysnipe.core.order_math import (
    InvalidPrice,
    amounts_for_order,
    limit_amounts,
    market_amounts,
    rounding_for,
)
from polysnipe.core.units import MICRO

Vector = dict[str, Any]
VectorFile = dict[str, Any]

# Tests that need no vector use public anvil test keys and fake, well-formed credentials.
KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
WALLET = "0x1F98431c8aD98523631AE4a59f267346ea31F984"
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
BUILDER = "0x" + "ab" * 32
CREDS = ApiCreds(
    "3843ba63-391a-4a8a-b913-d6c677fd7d6f",
    "468NIDFB-ziroyChmdO3fiJUKy7zjxahDLpTEEPxE7I=",
    "7cef18803c4ed83e4c409c7b57fa5c65853478780ff3c4520c74abd395f04199",
)
#: ERC-7739 wrapper of POLY_1271 signatures, from PROTOCOL.md 2 (independent of signing.py's copy)
TYPED_DATA_SIGN = (
    "TypedDataSign(Order contents,string name,string version,uint256 chainId,"
    "address verifyingContract,bytes32 salt)" + ORDER_TYPE_STRING
)


@pytest.fixture(scope="module")
def vectors() -> VectorFile:
    return load_vectors()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_vectors(metafunc)


@pytest.fixture
def vector(vectors: VectorFile, vector_index: int) -> Vector:
    result: Vector = vectors["vectors"][vector_index]
    return result


# -- helpers -----------------------------------------------------------------------------------------
def signer_for(vector: Vector) -> OrderSigner:
    inputs = vector["inputs"]
    config = ClobConfig(
        chain_id=vector["chain_id"],
        signature_type=inputs["signature_type"],
        funder=inputs["funder"],
        builder_code=inputs["builder"],
    )
    return OrderSigner.for_config(EcdsaKey(vector["key"]), config)


def sign_vector(vector: Vector, *, neg_risk: bool | None = None) -> SignedOrder:
    """Sign with the vector's own amounts, salt and timestamp (the official client's float amounts)."""
    signed = vector["signed"]
    return signer_for(vector).sign(
        signed["tokenId"],
        Side(signed["side"]),
        int(signed["makerAmount"]),
        int(signed["takerAmount"]),
        neg_risk=vector["inputs"]["neg_risk"] if neg_risk is None else neg_risk,
        salt=int(signed["salt"]),
        timestamp_ms=int(signed["timestamp"]),
        expiration_s=int(signed["expiration"]),
    )


def body_of(vector: Vector, order: SignedOrder) -> bytes:
    inputs = vector["inputs"]
    return order.post_body(
        vector["api_creds"]["key"],
        OrderType(inputs["order_type"]),
        post_only=inputs["post_only"],
        defer_exec=inputs["defer_exec"],
    )


def creds_of(vector: Vector) -> ApiCreds:
    creds = vector["api_creds"]
    return ApiCreds(creds["key"], creds["secret"], creds["passphrase"])


def ecrecover(digest: bytes, signature: bytes) -> str:
    """The address whose key made `signature` (r || s || v, v = 27/28) over `digest`."""
    public = PublicKey.from_signature_and_message(
        signature[:64] + bytes([signature[64] - 27]), digest, hasher=None
    )
    return checksum_address("0x" + keccak256(public.format(compressed=False)[1:])[-20:].hex())


def poly_1271_signer(order: SignedOrder, chain_id: int) -> str:
    """The EOA inside an ERC-7739 wrapped signature, after checking the wrapper's layout."""
    raw = bytes.fromhex(order.signature[2:])
    inner, domain, contents, tail = raw[:65], raw[65:97], raw[97:129], raw[129:]
    assert ORDER_TYPE_STRING.encode() + len(ORDER_TYPE_STRING).to_bytes(2, "big") == tail
    assert order.order_hash == "0x" + keccak256(b"\x19\x01" + domain + contents).hex()
    wallet_domain = (
        keccak256(b"DepositWallet")
        + keccak256(b"1")
        + chain_id.to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(order.signer[2:])
        + bytes(32)
    )
    typed_data_sign = keccak256(keccak256(TYPED_DATA_SIGN.encode()) + contents + wallet_domain)
    return ecrecover(keccak256(b"\x19\x01" + domain + typed_data_sign), inner)


def protocol_price(vector: Vector) -> Decimal:
    """The price as PROTOCOL.md 3.6 rounds it: half-even (limit) or floor (market) to P decimals."""
    inputs = vector["inputs"]
    decimals = rounding_for(inputs["tick_size"]).price_decimals
    mode = ROUND_HALF_EVEN if vector["kind"] == "limit" else ROUND_FLOOR
    return Decimal(inputs["price"]).quantize(Decimal(1).scaleb(-decimals), rounding=mode)


def off_tick(vector: Vector) -> bool:
    """Only the half ticks (0.005, 0.0025) can round to a price off the tick; we refuse those."""
    return bool(protocol_price(vector) % Decimal(vector["inputs"]["tick_size"]))


# -- the file itself ---------------------------------------------------------------------------------
def test_vector_file_is_consistent(vectors: VectorFile) -> None:
    ids = [v["id"] for v in vectors["vectors"]]
    assert ids, "the vector file holds no vectors"
    assert len(ids) == len(set(ids)), "vector ids repeat"
    for v in vectors["vectors"]:
        exact, official = v["exact_amounts"], v["official_amounts"]
        assert v["float_artifact"] == (exact != official), v["id"]
        assert (v["kind"] == "market") == OrderType(v["inputs"]["order_type"]).is_immediate, v["id"]
        assert v["inputs"]["signature_type"] == v["signed"]["signatureType"], v["id"]


# -- every vector --------------------------------------------------------------------------------------
def test_exact_amounts_from_decimal_inputs(vector: Vector) -> None:
    inputs = vector["inputs"]
    side = Side[inputs["side"]]
    compute: Callable[[Side, str, str, str], tuple[int, int]]
    if vector["kind"] == "limit":
        compute, quantity = limit_amounts, inputs["size"]
    else:
        compute, quantity = market_amounts, inputs["amount"]
    if off_tick(vector):
        with pytest.raises(InvalidPrice, match="off the tick"):
            compute(side, inputs["price"], quantity, inputs["tick_size"])
        return
    expected = vector["exact_amounts"]
    actual = compute(side, inputs["price"], quantity, inputs["tick_size"])
    assert (int(expected["maker_amount"]), int(expected["taker_amount"])) == actual


def test_signed_order_is_byte_identical(vector: Vector) -> None:
    order = sign_vector(vector)
    expected = vector["signed"]
    assert vector["order_hash"] == order.order_hash
    assert expected["signature"] == order.signature
    wire_fields = {name: getattr(order, name) for name in expected}
    wire_fields["side"] = 0 if order.side == "BUY" else 1
    wire_fields["salt"] = str(order.salt)
    assert expected == wire_fields
    contracts = exchange_contracts(vector["chain_id"])
    neg_risk = vector["inputs"]["neg_risk"]
    assert vector["exchange"] == (contracts.neg_risk_exchange_v2 if neg_risk else contracts.exchange_v2)
    eoa = EcdsaKey(vector["key"]).address
    assert vector["signer_address"] == eoa
    signature = bytes.fromhex(order.signature[2:])
    plain = ecrecover(bytes.fromhex(order.order_hash[2:]), signature[:65])
    if order.signatureType == SignatureType.POLY_1271:
        # a plain ecrecover over the order hash does not give the EOA (PROTOCOL.md 2); a file may record
        # either reading of `signature_recovers_to`, the EOA behind the wrapper being the meaningful one
        assert eoa == poly_1271_signer(order, vector["chain_id"])
        assert vector.get("signature_recovers_to", eoa) in (eoa, plain)
    else:
        assert vector["signature_recovers_to"] == plain == eoa


def test_post_body_and_l2_headers(vector: Vector) -> None:
    body = body_of(vector, sign_vector(vector))
    assert vector["post_body"].encode() == body
    signer = LocalSigner.from_private_key(vector["key"], vector["chain_id"], creds_of(vector))
    assert vector["l2_headers"] == signer.l2_headers(
        int(vector["l2_timestamp"]), "POST", vector["post_path"], body
    )


def test_signed_order_is_an_immutable_value_that_survives_the_signing_server_wire(vector: Vector) -> None:
    import msgspec

    from polysnipe.adapters.signer_server.schemas import OrderSignature

    order = sign_vector(vector)
    with pytest.raises(AttributeError):
        order.signature = "0x"  # type: ignore[misc]
    # the signing server's answer and the client's rebuild of it (adapters/signer_client)
    answer = msgspec.json.encode(OrderSignature(**msgspec.structs.asdict(order)))
    rebuilt = SignedOrder(**msgspec.structs.asdict(msgspec.json.decode(answer, type=OrderSignature)))
    assert order == rebuilt
    assert hash(order) == hash(rebuilt)
    assert body_of(vector, order) == body_of(vector, rebuilt)


def test_engine_order_signs_the_exact_amounts(vector: Vector) -> None:
    """The engine path (OrderRequest in micro-units) gives the vector's exact amounts and fields."""
    inputs = vector["inputs"]
    if vector["kind"] == "market" and inputs["side"] == "BUY":
        pytest.skip("market BUYs are sized in USDC by users but in shares by the engine: not comparable")
    if off_tick(vector):
        pytest.skip("the price rounds off the tick: no engine order has it")
    order_type = OrderType(inputs["order_type"])
    quantity = Decimal(inputs.get("size") or inputs["amount"])
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
        # the engine holds on-tick prices and micro-unit sizes: what the protocol's rounding makes
        # of the typed inputs (the amounts then floor the size to the cent, as the venue's do)
        price=int(protocol_price(vector) * MICRO),
        size=int((quantity * MICRO).to_integral_value(rounding=ROUND_FLOOR)),
        order_type=order_type,
        tick_size=int(Decimal(inputs["tick_size"]) * MICRO),
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
        for a in amounts_for_order(request.side, request.price, request.size, order_type, request.tick_size)
    )


# -- vectors of one kind -------------------------------------------------------------------------------
def test_neg_risk_picks_the_exchange_the_signature_covers(vectors: VectorFile) -> None:
    """A wrong neg-risk flag signs for the other exchange: the same order gets another hash."""
    for neg_risk in (True, False):
        what = "neg-risk vector" if neg_risk else "vector without neg-risk"

        def where(v: Vector, n: bool = neg_risk) -> bool:
            return v["inputs"]["neg_risk"] is n

        vector = pick(vectors, what, where)
        assert vector["order_hash"] == sign_vector(vector).order_hash
        assert vector["order_hash"] != sign_vector(vector, neg_risk=not neg_risk).order_hash


@pytest.mark.parametrize("signature_type", [SignatureType.POLY_PROXY, SignatureType.POLY_GNOSIS_SAFE])
def test_proxy_and_safe_orders_are_funded_by_the_wallet(vectors: VectorFile, signature_type: int) -> None:
    for vector in pick_all(
        vectors,
        f"vector with signature type {signature_type}",
        lambda v: v["inputs"]["signature_type"] == signature_type,
    ):
        order = sign_vector(vector)
        assert (vector["inputs"]["funder"], vector["signer_address"]) == (order.maker, order.signer)


def test_poly_1271_orders_are_signed_for_the_deposit_wallet(vectors: VectorFile) -> None:
    for vector in pick_all(
        vectors, "vector with signature type 3 (POLY_1271)", lambda v: v["inputs"]["signature_type"] == 3
    ):
        order = sign_vector(vector)
        wallet = vector["inputs"]["funder"]
        assert (wallet, wallet, 3) == (order.maker, order.signer, order.signatureType)
        assert vector["signer_address"] == poly_1271_signer(order, vector["chain_id"])


def test_float_artifact_vectors_are_signed_as_given(vectors: VectorFile) -> None:
    """The official client's float rounding signs other amounts than the exact ones (PROTOCOL.md 3.7):
    the exact ones are what we build from the inputs, and its own sign byte for byte as given."""
    for vector in pick_all(vectors, "vector with float artifacts", lambda v: v["float_artifact"]):
        official, exact, signed = vector["official_amounts"], vector["exact_amounts"], vector["signed"]
        assert (official["maker_amount"], official["taker_amount"]) == (
            signed["makerAmount"],
            signed["takerAmount"],
        )
        assert official != exact
        assert signed["signature"] == sign_vector(vector).signature


def test_batch_post_body_and_headers(vectors: VectorFile) -> None:
    batch = vectors.get("batch_post")
    if not batch:
        pytest.skip("the vector file has no batch_post example")
    by_id = {v["id"]: v for v in vectors["vectors"]}
    batched = [by_id[i] for i in batch["vector_ids"]]
    body = batch_post_body([body_of(v, sign_vector(v)) for v in batched])
    assert batch["post_body"].encode() == body
    signer = LocalSigner.from_private_key(batched[0]["key"], batched[0]["chain_id"], creds_of(batched[0]))
    assert batch["l2_headers"] == signer.l2_headers(
        int(batch["l2_timestamp"]), "POST", batch["post_path"], body
    )


def test_l1_headers(vectors: VectorFile) -> None:
    l1_vectors = vectors.get("l1_auth_vectors") or []
    if not l1_vectors:
        pytest.skip("the vector file has no l1_auth_vectors")
    for l1 in l1_vectors:
        signer = LocalSigner.from_private_key(l1["key"], l1["chain_id"])
        assert l1["address"] == signer.address
        assert l1["headers"] == signer.l1_headers(l1["timestamp"], l1["nonce"]), f"nonce {l1['nonce']}"


# -- no vector needed: the official client is the oracle -----------------------------------------------
def test_batch_size_is_bounded() -> None:
    with pytest.raises(ValueError):
        batch_post_body([])
    with pytest.raises(ValueError):
        batch_post_body([b"{}"] * 16)


@pytest.mark.parametrize("chain_id", [POLYGON, 80002])
@pytest.mark.parametrize(("timestamp_s", "nonce"), [(1_700_000_000, 0), (1_764_061_999, 7), (1, 2**64)])
def test_l1_headers_match_the_official_client(chain_id: int, timestamp_s: int, nonce: int) -> None:
    from py_clob_client_v2.headers.headers import create_level_1_headers

    expected = create_level_1_headers(Signer(KEY, chain_id), nonce=nonce, timestamp=timestamp_s)
    assert expected == LocalSigner.from_private_key(KEY, chain_id).l1_headers(timestamp_s, nonce)
    assert 32 == len(clob_auth_digest(EcdsaKey(KEY).address, chain_id, timestamp_s, nonce))


@pytest.mark.parametrize("neg_risk", [False, True])
@pytest.mark.parametrize("side", list(Side))
@pytest.mark.parametrize("builder", [BYTES32_ZERO, BUILDER])
def test_poly_1271_signature_matches_the_official_builder(neg_risk: bool, side: Side, builder: str) -> None:
    """Deposit wallets (signature type 3), whether or not the file has vectors of them."""
    salt, timestamp = 123_456_789, 1_764_061_234_567
    contracts = exchange_contracts(POLYGON)
    official = ExchangeOrderBuilderV2(
        contracts.neg_risk_exchange_v2 if neg_risk else contracts.exchange_v2,
        POLYGON,
        Signer(KEY, POLYGON),
        generate_salt=lambda: str(salt),
    )
    expected = official.build_signed_order(
        OrderDataV2(
            maker=WALLET,
            tokenId=TOKEN,
            makerAmount="5000000",
            takerAmount="10000000",
            side=OfficialSide(int(side)),
            signer=WALLET,
            signatureType=SignatureTypeV2.POLY_1271,
            timestamp=str(timestamp),
            builder=builder,
        )
    )
    ours = OrderSigner.from_key(
        KEY, POLYGON, signature_type=SignatureType.POLY_1271, funder=WALLET, builder_code=builder
    ).sign(TOKEN, side, 5_000_000, 10_000_000, neg_risk=neg_risk, salt=salt, timestamp_ms=timestamp)
    assert expected.signature == ours.signature
    assert (WALLET, WALLET, 3) == (ours.maker, ours.signer, ours.signatureType)
    assert official.build_order_hash(official.build_order_typed_data(expected)) == ours.order_hash
    assert EcdsaKey(KEY).address == poly_1271_signer(ours, POLYGON)


def engine_order(**changes: Any) -> OrderRequest:
    request = OrderRequest(
        order_id="x",
        opportunity_id="x",
        correlation_id="c",
        strategy="s",
        routing="r",
        wallet="w",
        market="m",
        token_id=TOKEN,
        side=Side.BUY,
        price=350_000,
        size=20_000_000,
        order_type=OrderType.GTD,
        tick_size=10_000,
        neg_risk=True,
    )
    return attrs.evolve(request, **changes)


def test_sign_request_rejects_inconsistent_expirations() -> None:
    signer = OrderSigner.from_key(KEY, POLYGON)
    with pytest.raises(ValueError, match="no expiration"):
        signer.sign_request(engine_order(), 1)
    with pytest.raises(ValueError, match="cannot carry an expiration"):
        signer.sign_request(engine_order(order_type=OrderType.GTC, expiration_ms=5_000), 1)
    with pytest.raises(ValueError, match="post_only"):
        signer.sign_request(engine_order(order_type=OrderType.FOK), 1).post_body(
            "owner", OrderType.FOK, post_only=True
        )


def test_bad_inputs_never_reach_the_signature() -> None:
    signer = OrderSigner.from_key(KEY, POLYGON)
    for bad_token in ("+1", " 1", "1_0", "0x12", "", "١٢", str(2**256), "9" * 5000):
        with pytest.raises(ValueError, match="token id"):
            signer.sign(bad_token, Side.BUY, 1, 1, neg_risk=False, salt=1, timestamp_ms=1)
    for maker, taker in ((0, 1), (1, -1), (2**256, 1)):
        with pytest.raises(ValueError, match="invalid amounts"):
            signer.sign(TOKEN, Side.BUY, maker, taker, neg_risk=False, salt=1, timestamp_ms=1)
    for salt, timestamp_ms in ((-1, 1), (2**256, 1), (1, -1), (1, 2**256)):
        with pytest.raises(ValueError, match="uint256"):
            signer.sign(TOKEN, Side.BUY, 1, 1, neg_risk=False, salt=salt, timestamp_ms=timestamp_ms)
    with pytest.raises(ValueError):
        OrderSigner.from_key(KEY, POLYGON, signature_type=SignatureType.POLY_GNOSIS_SAFE)
    with pytest.raises(ValueError):
        OrderSigner.from_key(KEY, 1, builder_code=BYTES32_ZERO)
    with pytest.raises(ValueError):
        OrderSigner.from_key(KEY, POLYGON, builder_code="0x12")


def test_reprs_never_show_secrets() -> None:
    shown = " ".join(
        repr(x)
        for x in (
            EcdsaKey(KEY),
            OrderSigner.from_key(KEY, POLYGON),
            LocalSigner.from_private_key(KEY, POLYGON, CREDS),
            CREDS,
        )
    )
    for secret in (KEY, KEY[2:], CREDS.secret.reveal(), CREDS.passphrase.reveal(), CREDS.api_key):
        assert secret not in shown


def test_bench_runs_offline_and_both_builders_agree(tmp_path: Path) -> None:
    from polysnipe.runners.bench_orders import format_table, run_bench

    out = tmp_path / "bench.json"
    result = run_bench(20, out, repeat=2)
    assert result == json.loads(out.read_text())
    assert result["same_amounts"]
    assert 2 == len(result["runs"])
    assert 0 < result["ours"]["p50_us"] <= result["ours"]["p99_us"]
    assert 0 < result["floor"]["p50_us"]
    assert {"official_over_ours_p50", "ours_over_floor_p50", "ours_over_floor_paired"} <= result.keys()
    assert 2 == len(result["ours_over_floor_paired"]["runs"])
    assert "signing floor" in format_table(result)
