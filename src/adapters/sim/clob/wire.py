"""What clients send, parsed: request bodies decoded without ever raising anything but VenueError,
POST /order elements read by key (the Python and TypeScript clients order keys differently), the
order's EIP-712 struct hash, and the on-tick price its signed amounts stand for."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Final

import attrs
import msgspec

from polysnipe.adapters.clob.signing import ORDER_TYPE_STRING, keccak256
from polysnipe.adapters.sim.clob.errors import ERRORS, VenueError
from polysnipe.core.events import Side
from polysnipe.core.messages import OrderType
from polysnipe.core.order_math import ROUNDING, price_of
from polysnipe.core.units import MICRO, ONE

__all__ = [
    "ORDER_TYPEHASH",
    "WireOrder",
    "decode_json",
    "hex_bytes",
    "is_int",
    "parse_address",
    "parse_wire_order",
    "peek",
    "uint",
    "venue_price",
]

ORDER_TYPEHASH: Final = keccak256(ORDER_TYPE_STRING.encode())
_SIDES: Final = {"BUY": Side.BUY, "SELL": Side.SELL}
#: fields only V1 orders carry (PROTOCOL 4.4): their presence means a client signing another version
_V1_FIELDS: Final = frozenset({"nonce", "feeRateBps", "taker"})
_MAX_UINT256: Final = (1 << 256) - 1
_ORDER_TYPES: Final = frozenset(t.value for t in OrderType)


def decode_json(body: bytes, *, error: str = ERRORS["invalid_payload"]) -> Any:
    """The JSON value of a request body; None when the body is empty.

    Anything that is not JSON, including a document nested too deep to decode (msgspec refuses it
    with RecursionError), is a 400 with `error`: a hostile body never becomes a 500.
    """
    if not body:
        return None
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise VenueError(400, error) from None


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_address(value: object) -> str | None:
    """Lowercase form of a 0x address, or None."""
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        return None
    digits = value[2:]
    if not digits.isascii() or not all(c in "0123456789abcdefABCDEF" for c in digits):
        return None
    return value.lower()


def hex_bytes(value: object, length: int | None = None) -> bytes | None:
    if not isinstance(value, str) or not value.startswith("0x") or not value.isascii():
        return None
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        return None
    if length is not None and len(raw) != length:
        return None
    return raw


def uint(value: object) -> int | None:
    """A uint256 from a decimal string (or a JSON integer, as salt and signatureType travel)."""
    if is_int(value):
        assert isinstance(value, int)
        n = value
    elif isinstance(value, str) and 0 < len(value) <= 78 and value.isascii() and value.isdecimal():
        n = int(value)
    else:
        return None
    return n if 0 <= n <= _MAX_UINT256 else None


@attrs.frozen(slots=True)
class WireOrder:
    """A POST /order element, parsed by key."""

    salt: int
    #: lowercase; `maker_text` is the address as sent (checksummed by the clients)
    maker: str
    maker_text: str
    signer: str
    token_id: str
    maker_amount: int
    taker_amount: int
    side: Side
    expiration_s: int
    signature_type: int
    timestamp_ms: int
    metadata: bytes
    builder: bytes
    signature: bytes
    owner: str
    order_type: OrderType
    post_only: bool

    def struct_hash(self) -> bytes:
        return keccak256(
            b"".join(
                (
                    ORDER_TYPEHASH,
                    self.salt.to_bytes(32, "big"),
                    bytes(12) + bytes.fromhex(self.maker[2:]),
                    bytes(12) + bytes.fromhex(self.signer[2:]),
                    int(self.token_id).to_bytes(32, "big"),
                    self.maker_amount.to_bytes(32, "big"),
                    self.taker_amount.to_bytes(32, "big"),
                    int(self.side).to_bytes(32, "big"),
                    self.signature_type.to_bytes(32, "big"),
                    self.timestamp_ms.to_bytes(32, "big"),
                    self.metadata,
                    self.builder,
                )
            )
        )

    @property
    def size(self) -> int:
        """Shares: what a BUY receives, what a SELL gives."""
        return self.taker_amount if self.side is Side.BUY else self.maker_amount


def peek(payload: Any) -> tuple[int | None, str, str]:
    """(salt, owner, orderType) of a payload that may not parse, for the order log."""
    if not isinstance(payload, dict):
        return None, "", ""
    order = payload.get("order")
    salt = uint(order.get("salt")) if isinstance(order, dict) else None
    owner, order_type = payload.get("owner"), payload.get("orderType")
    return salt, owner if isinstance(owner, str) else "", order_type if isinstance(order_type, str) else ""


def parse_wire_order(payload: Any) -> WireOrder:
    """One POST /order element, or VenueError 400 (`order_version_mismatch` for a V1-shaped order)."""
    bad = VenueError(400, ERRORS["payload"])
    if not isinstance(payload, dict) or not isinstance(payload.get("order"), dict):
        raise bad
    order: dict[str, Any] = payload["order"]
    if "timestamp" not in order and _V1_FIELDS & order.keys():
        raise VenueError(400, ERRORS["version"])
    salt = uint(order.get("salt"))
    maker, signer = parse_address(order.get("maker")), parse_address(order.get("signer"))
    token_id = order.get("tokenId")
    maker_amount, taker_amount = uint(order.get("makerAmount")), uint(order.get("takerAmount"))
    side_text = order.get("side")
    side = _SIDES.get(side_text) if isinstance(side_text, str) else None
    expiration = uint(order.get("expiration", "0"))
    sig_type = order.get("signatureType")
    timestamp = uint(order.get("timestamp"))
    metadata = hex_bytes(order.get("metadata"), 32)
    builder = hex_bytes(order.get("builder"), 32)
    signature = hex_bytes(order.get("signature"))
    owner = payload.get("owner")
    order_type = payload.get("orderType")
    post_only = payload.get("postOnly", False)
    if (
        salt is None
        or maker is None
        or signer is None
        or not (isinstance(token_id, str) and uint(token_id) is not None)
        or not maker_amount
        or not taker_amount
        or side is None
        or expiration is None
        or not (is_int(sig_type) and sig_type in (0, 1, 2, 3))
        or timestamp is None
        or metadata is None
        or builder is None
        or signature is None
        or not isinstance(owner, str)
        or not (isinstance(order_type, str) and order_type in _ORDER_TYPES)
        or not isinstance(post_only, bool)
        or not isinstance(payload.get("deferExec", False), bool)
    ):
        raise bad
    assert isinstance(token_id, str) and isinstance(sig_type, int) and isinstance(order_type, str)
    return WireOrder(
        salt,
        maker,
        order["maker"],
        signer,
        token_id,
        maker_amount,
        taker_amount,
        side,
        expiration,
        sig_type,
        timestamp,
        metadata,
        builder,
        signature,
        owner,
        OrderType(order_type),
        post_only,
    )


def venue_price(side: Side, maker_amount: int, taker_amount: int, tick: int) -> int | None:
    """The on-tick price the signed amounts stand for, or None when it is off the tick.

    The official client rounds the USDC (or, for market BUYs, the share) leg to the tick's amount
    decimals A with floats, so amount / size is within one unit of the A-th decimal of an on-tick
    price; anything farther breaks the tick rules (PROTOCOL 3.4-3.7).
    """
    exact = price_of(maker_amount, taker_amount, side)
    shares, usdc = (taker_amount, maker_amount) if side is Side.BUY else (maker_amount, taker_amount)
    price = round(exact * MICRO / tick) * tick
    slack = 10 ** (6 - ROUNDING[tick].amount_decimals)
    if abs(Fraction(usdc) - Fraction(shares * price, MICRO)) > slack:
        return None
    return price if tick <= price <= ONE - tick else None
