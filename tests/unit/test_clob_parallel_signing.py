"""ParallelSigner: a basket's legs signed at once by the calling thread and persistent workers, each
on an OrderSigner of its own; the signatures are the serial ones, byte for byte."""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from kit import order_request
from polysnipe.adapters.clob.config import SignatureType
from polysnipe.adapters.clob.signing import OrderSigner, ParallelSigner, SignedOrder
from polysnipe.core.events import Side
from polysnipe.core.messages import OrderType

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"


@pytest.fixture
def vectors(shared_data: Path) -> list[dict[str, Any]]:
    """The official client's signed-order vectors (data/vectors/orders.json)."""
    data: dict[str, Any] = json.loads((shared_data / "vectors" / "orders.json").read_text())
    return list(data["vectors"])


def _wallet(vector: dict[str, Any]) -> tuple[str, int, int, str | None, str]:
    inputs = vector["inputs"]
    return vector["key"], vector["chain_id"], inputs["signature_type"], inputs["funder"], inputs["builder"]


def _vector_signer(vector: dict[str, Any]) -> OrderSigner:
    key, chain_id, signature_type, funder, builder = _wallet(vector)
    return OrderSigner.from_key(
        key, chain_id, signature_type=SignatureType(signature_type), funder=funder, builder_code=builder
    )


def _vector_args(vector: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    inputs, signed = vector["inputs"], vector["signed"]
    args = (
        inputs["token_id"],
        Side.BUY if inputs["side"] == "BUY" else Side.SELL,
        int(signed["makerAmount"]),
        int(signed["takerAmount"]),
    )
    return args, {
        "neg_risk": inputs["neg_risk"],
        "salt": int(signed["salt"]),
        "timestamp_ms": int(signed["timestamp"]),
        "expiration_s": int(signed["expiration"]),
    }


def _started(threads: int = 2) -> ParallelSigner:
    pool = ParallelSigner(lambda: OrderSigner.from_key(KEY, 137), threads)
    pool.start()
    return pool


def test_the_official_vectors_signed_in_parallel_are_the_serial_signatures(
    vectors: list[dict[str, Any]],
) -> None:
    assert vectors
    for wallet in {_wallet(v) for v in vectors}:
        group = [v for v in vectors if _wallet(v) == wallet]
        serial = _vector_signer(group[0])
        pool = ParallelSigner(functools.partial(_vector_signer, group[0]), 2)
        pool.start()
        try:
            unsigned = [serial.prepare(*a, **k) for a, k in map(_vector_args, group)]
            results = pool.sign_prepared([*unsigned, *unsigned])  # every leg also on another thread
        finally:
            pool.close()
        for vector, signed in zip(group * 2, results, strict=True):
            assert isinstance(signed, SignedOrder), vector["id"]
            assert vector["signed"]["signature"] == signed.signature, vector["id"]
            assert vector["order_hash"] == signed.order_hash, vector["id"]
            args, kwargs = _vector_args(vector)
            assert serial.sign(*args, **kwargs) == signed, vector["id"]


def test_workers_and_the_caller_both_sign() -> None:
    """The caller holds its first signature until a worker made one: both kinds of thread sign,
    and the answers are in the items' order whoever made them."""
    pool = _started()
    worker_signed = threading.Event()
    signers: list[bool] = []

    def sign(signer: OrderSigner, digest: bytes) -> bytes:
        on_worker = threading.current_thread().name.startswith("order-signer-")
        signature = signer.sign_digest(digest)
        signers.append(on_worker)
        if on_worker:
            worker_signed.set()
        else:
            worker_signed.wait(10)
        return signature

    digests = [bytes([n + 1]) * 32 for n in range(6)]
    try:
        results = pool.map(sign, digests)
    finally:
        pool.close()
    assert {True, False} == set(signers)
    serial = OrderSigner.from_key(KEY, 137)
    assert [serial.sign_digest(d) for d in digests] == results


def test_many_baskets_sign_as_the_serial_signer_does() -> None:
    """Every worker on buffers of its own: no signature of one leg leaks into another's."""
    serial = OrderSigner.from_key(KEY, 137)
    pool = _started(3)
    try:
        for n in range(40):
            legs = [
                order_request(
                    f"b{n}l{i}-0", token_id=TOKEN, price=100_000 + 10_000 * i, size=(i + 1) * 1_000_000
                )
                for i in range(1 + n % 15)
            ]
            assert [serial.sign_request(o, 1_764_061_200_000 + n) for o in legs] == pool.sign_requests(
                legs, 1_764_061_200_000 + n
            )
    finally:
        pool.close()


def test_a_leg_that_cannot_be_signed_fails_alone_in_its_place() -> None:
    pool = _started()
    try:
        legs = [
            order_request("a-0", token_id=TOKEN),
            order_request("b-0", token_id="not-a-number"),
            order_request("c-0", token_id=TOKEN, order_type=OrderType.GTD),  # a GTD needs an expiry
            order_request("d-0", token_id=TOKEN),
        ]
        results = pool.sign_requests(legs, 1_764_061_200_000)
    finally:
        pool.close()
    assert [SignedOrder, ValueError, ValueError, SignedOrder] == [type(r) for r in results]
    assert "token id is not a decimal integer" in str(results[1])
    serial = OrderSigner.from_key(KEY, 137)
    assert serial.sign_request(legs[3], 1_764_061_200_000) == results[3]


def test_workers_run_from_start_to_close_and_the_caller_signs_alone_outside() -> None:
    pool = ParallelSigner(lambda: OrderSigner.from_key(KEY, 137), 2)
    assert 0 == pool.threads  # building starts no thread
    legs = [order_request(f"o{i}-0", token_id=TOKEN) for i in range(4)]
    expected = [OrderSigner.from_key(KEY, 137).sign_request(o, 5) for o in legs]
    assert expected == pool.sign_requests(legs, 5)
    pool.start()
    pool.start()
    assert 2 == pool.threads
    running = [t for t in threading.enumerate() if t.name.startswith("order-signer-")]
    assert expected == pool.sign_requests(legs, 5)
    pool.close()
    pool.close()
    assert 0 == pool.threads
    assert not any(t.is_alive() for t in running)
    assert expected == pool.sign_requests(legs, 5)


def test_sign_orders_is_the_async_port_of_the_same_signatures() -> None:
    import asyncio

    pool = _started()
    try:
        legs = [order_request(f"o{i}-0", token_id=TOKEN) for i in range(3)]
        assert pool.sign_requests(legs, 9) == asyncio.run(pool.sign_orders(legs, 9))
        assert pool.sign_request(legs[0], 9) == asyncio.run(pool.sign_order(legs[0], 9))
        assert OrderSigner.from_key(KEY, 137).address == pool.address
    finally:
        pool.close()
