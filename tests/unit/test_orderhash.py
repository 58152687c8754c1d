"""The compiled order hashes (adapters/clob/_orderhash) against signing.py's Python hashing, their
reference: keccak-256 itself, the two hashes of an order's digest, whole prepared orders of every
signature type, and hostile arguments. The official vectors (tests/contract/test_order_vectors.py)
pin whichever path the build uses."""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import require_compiled_hashes
from polysnipe.adapters.clob import signing
from polysnipe.adapters.clob.config import SignatureType
from polysnipe.adapters.clob.signing import OrderSigner, UnsignedOrder, keccak256
from polysnipe.core.events import Side
from polysnipe.runners.bench_orders import ANVIL_TEST_KEY
from polysnipe.runners.implementation import PURE_PYTHON_ENV, select_decoder

FUNDER = "0x5afe000000000000000000000000000000000001"
WORD = st.binary(min_size=32, max_size=32)
PAIR = st.binary(min_size=64, max_size=64)
#: uint256 values around the compiled path's 64-bit edge, and past it (the Python path's)
UINT = st.one_of(st.integers(0, 2**64 - 1), st.integers(2**64 - 4, 2**64 + 4), st.integers(0, 2**256 - 1))


@contextlib.contextmanager
def _python_hashing() -> Iterator[None]:
    """signing.py's Python hashing for the block, the compiled hashes again after it."""
    signing.use_pure_python(True)
    try:
        yield
    finally:
        signing.use_pure_python(False)


def _reference(
    type_hash: bytes, salt: int, pair: bytes, token: bytes, maker: int, taker: int, side: bytes, ts: int,
    meta: bytes, prefix: bytes,
) -> tuple[bytes, bytes]:  # fmt: skip
    """signing.py's Python hashing of the same pieces."""
    words = (type_hash, salt.to_bytes(32, "big"), pair, token, maker.to_bytes(32, "big"),
             taker.to_bytes(32, "big"), side, ts.to_bytes(32, "big"), meta)  # fmt: skip
    contents = keccak256(b"".join(words))
    return contents, keccak256(prefix + contents)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=700))
def test_keccak256_is_ethereums_at_every_length(data: bytes) -> None:
    require_compiled_hashes()
    from polysnipe.adapters.clob._orderhash import keccak256 as compiled_keccak

    assert keccak256(data) == compiled_keccak(data)


def test_keccak256_known_digests() -> None:
    require_compiled_hashes()
    from polysnipe.adapters.clob._orderhash import keccak256 as compiled_keccak

    assert "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470" == compiled_keccak(b"").hex()
    # the block boundary: 135 bytes fill the rate with the padding, 136 need a second block
    for n in (135, 136, 137, 272):
        assert keccak256(b"\xa5" * n) == compiled_keccak(b"\xa5" * n)


@settings(max_examples=300, deadline=None)
@given(WORD, UINT, PAIR, WORD, UINT, UINT, PAIR, UINT, PAIR, st.binary(min_size=34, max_size=34))
def test_order_hashes_equal_the_python_hashing_or_defer_to_it(
    type_hash: bytes, salt: int, pair: bytes, token: bytes, maker: int, taker: int,
    side: bytes, ts: int, meta: bytes, prefix: bytes,
) -> None:  # fmt: skip
    require_compiled_hashes()
    from polysnipe.adapters.clob._orderhash import order_hashes

    got = order_hashes(type_hash, salt, pair, token, maker, taker, side, ts, meta, prefix)
    if max(salt, maker, taker, ts) >= 2**64:
        assert got is None  # the Python path hashes those
    else:
        assert _reference(type_hash, salt, pair, token, maker, taker, side, ts, meta, prefix) == got


def _prepared(signer: OrderSigner, token: str, side: Side, amounts: tuple[int, int], salt: int, ts: int,
              neg_risk: bool) -> UnsignedOrder:  # fmt: skip
    return signer.prepare(token, side, amounts[0], amounts[1], neg_risk=neg_risk, salt=salt,
                          timestamp_ms=ts, expiration_s=0)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    signature_type=st.sampled_from(list(SignatureType)),
    token=st.integers(1, 2**256 - 1).map(str),
    side=st.sampled_from([Side.BUY, Side.SELL]),
    amounts=st.tuples(st.integers(1, 2**70), st.integers(1, 2**70)),
    salt=st.integers(0, 2**48),
    ts=st.integers(0, 2**45),
    neg_risk=st.booleans(),
)
def test_prepared_orders_are_the_same_on_both_paths(
    signature_type: SignatureType, token: str, side: Side, amounts: tuple[int, int],
    salt: int, ts: int, neg_risk: bool,
) -> None:  # fmt: skip
    require_compiled_hashes()
    funder = None if signature_type is SignatureType.EOA else FUNDER
    signer = OrderSigner.from_key(ANVIL_TEST_KEY, 137, signature_type=signature_type, funder=funder)
    fast = _prepared(signer, token, side, amounts, salt, ts, neg_risk)
    with _python_hashing():
        assert fast == _prepared(signer, token, side, amounts, salt, ts, neg_risk)


class _Small(enum.IntEnum):
    ONE = 1


def test_hostile_arguments_are_refused_or_left_to_python() -> None:
    require_compiled_hashes()
    from polysnipe.adapters.clob._orderhash import order_hashes

    call: Any = order_hashes  # wrong arguments on purpose
    good: list[object] = [b"\0" * 32, 1, b"\0" * 64, b"\0" * 32, 1, 1, b"\0" * 64, 1, b"\0" * 64, b"\0" * 34]
    assert call(*good) is not None
    with pytest.raises(TypeError):
        call(*good[:9])
    wrong_bytes: list[tuple[int, object, type[Exception]]] = [
        (0, b"\0" * 31, ValueError),
        (2, "x" * 64, TypeError),
        (9, bytearray(34), TypeError),
    ]
    for at, value, error in wrong_bytes:
        wrong = list(good)
        wrong[at] = value
        with pytest.raises(error):
            call(*wrong)
    # not exactly an int, or outside 0..2**64-1: the Python path judges it (None)
    for number in (-1, 2**64, True, _Small.ONE, 1.0, "1"):
        wrong = list(good)
        wrong[1] = number
        assert call(*wrong) is None


def test_the_environment_picks_the_hashing() -> None:
    require_compiled_hashes()
    try:
        select_decoder({PURE_PYTHON_ENV: "1"})
        assert "python" == signing.hashing_implementation()
        select_decoder({})
        assert "compiled" == signing.hashing_implementation()
    finally:
        select_decoder({})
