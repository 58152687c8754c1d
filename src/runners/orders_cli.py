"""`polysnipe orders sign`: print the signed POST /order body for order inputs given as JSON lines.

Operators use it to check a payload by hand. Each input line:
`{"token_id": "...", "price": "0.57", "size": "100" | "amount": "10", "side": "BUY", "tick_size": "0.01",
  "neg_risk": false, "order_type": "GTC", "expiration": "0", "post_only": false, "client_order_id": "..."}`
`size` (shares) is for GTC/GTD, `amount` (USDC for BUY, shares for SELL) for FOK/FAK, as in the official
client. The salt derives from `client_order_id` (default: a hash of the line), so signing the same line
twice gives the same order; `salt` and `timestamp_ms` may be pinned to compare with another client.
Chain, builder code and funder come from settings; the key and API key from POLYSNIPE_CLOB_* (factory).
A line may repeat `signature_type`, `funder` and `builder` (as the order vectors do): they must then
agree with the settings, which is what is signed.

Inputs finer than the protocol allows are rounded as the protocol rounds them (core.order_math:
sizes and amounts floored to 2 decimals, limit prices half-even and market prices floored to the
tick's decimals); what cannot be an order is refused. A refused line is one line on stderr, `line N:`
naming the field and what is wrong with it; the other lines still sign, and the exit code is 2.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from collections.abc import Iterable
from typing import IO, Any, Final, NoReturn

from polysnipe.adapters.clob.config import BYTES32_ZERO, SignatureType
from polysnipe.adapters.clob.factory import ClobSecrets
from polysnipe.adapters.clob.signing import OrderSigner, salt_from_order_id
from polysnipe.core.events import Side
from polysnipe.core.messages import OrderType
from polysnipe.core.order_math import OrderMathError, limit_amounts, market_amounts
from polysnipe.runners.settings import Settings

__all__ = ["EXIT_BAD_LINES", "sign_lines"]

#: exit code when any line was refused: a user's mistake (the good lines were still printed)
EXIT_BAD_LINES: Final = 2

_UINT256_END: Final = 2**256
#: an order line is one flat object; anything nested deeper than this is refused before parsing
_MAX_DEPTH: Final = 8
#: decimal digits of 2**256 - 1
_UINT256_DIGITS: Final = 78
_KNOWN_FIELDS: Final = frozenset(
    {
        "token_id", "price", "size", "amount", "side", "tick_size", "neg_risk", "order_type",
        "expiration", "post_only", "defer_exec", "client_order_id", "salt", "timestamp_ms",
        "signature_type", "funder", "builder",
    }
)  # fmt: skip


class _BadLine(ValueError):
    """One input line that cannot be signed; the message names the field."""


def _bad(field: str, problem: str) -> NoReturn:
    raise _BadLine(f"{field} {problem}")


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _refuse_constant(name: str) -> NoReturn:
    raise _BadLine(f"{name} is not a number")


def _too_deep(raw: str) -> bool:
    """Whether JSON text nests deeper than an order line ever does, outside strings.

    Checked before parsing: the decoders recurse on the C stack, and a library that raises the
    recursion limit (py_ecc sets 100000) turns a RecursionError on a deep line into a segfault.
    """
    if raw.count("[") + raw.count("{") <= _MAX_DEPTH:
        return False
    depth, in_string, escaped = 0, False, False
    for char in raw:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > _MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _parse(raw: str) -> dict[str, Any]:
    if _too_deep(raw):
        raise _BadLine(f"not valid JSON: nested more than {_MAX_DEPTH} levels deep")
    try:
        # numbers keep the exact text typed: 0.1 stays "0.1", never a binary float
        spec = json.loads(raw, parse_float=str, parse_int=str, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise _BadLine(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(spec, dict):
        raise _BadLine(f"expected a JSON object, got {type(spec).__name__}")
    unknown = sorted(set(spec) - _KNOWN_FIELDS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(_KNOWN_FIELDS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        _bad(unknown[0], f"is not a field{hint}")
    return spec


def _text(spec: dict[str, Any], field: str) -> str:
    if field not in spec or spec[field] is None:
        _bad(field, "is missing")
    value = spec[field]
    if not isinstance(value, str):
        _bad(field, f"must be a string or a number, got {_shown(value)}")
    return value


def _flag(spec: dict[str, Any], field: str, *, required: bool = False) -> bool:
    value = spec.get(field)
    if value is None and not required:
        return False
    if not isinstance(value, bool):
        _bad(field, f"must be true or false, got {_shown(value)}")
    return value


def _uint(spec: dict[str, Any], field: str) -> int | None:
    """An optional unsigned integer field (uint256: what the signed struct can carry)."""
    value = spec.get(field)
    if value is None:
        return None
    if not (isinstance(value, str) and value.isascii() and value.isdecimal()):
        _bad(field, f"must be a non-negative integer, got {_shown(value)}")
    if len(value) > _UINT256_DIGITS or int(value) >= _UINT256_END:
        _bad(field, f"does not fit in uint256, got {_shown(value)}")
    return int(value)


def _choice(spec: dict[str, Any], field: str, names: Iterable[str], default: str | None = None) -> str:
    value = spec.get(field, default)
    allowed = tuple(names)
    if not isinstance(value, str) or value.upper() not in allowed:
        _bad(field, f"must be one of {', '.join(allowed)}, got {_shown(value)}")
    return value.upper()


def _amounts(spec: dict[str, Any], side: Side, order_type: OrderType) -> tuple[int, int]:
    quantity, other = ("amount", "size") if order_type.is_immediate else ("size", "amount")
    if spec.get(other) is not None:
        unit = "USDC for BUY, shares for SELL" if order_type.is_immediate else "shares"
        _bad(other, f"is not used by {order_type.value} orders: give {quantity} ({unit})")
    price, text, tick = _text(spec, "price"), _text(spec, quantity), _text(spec, "tick_size")
    compute = market_amounts if order_type.is_immediate else limit_amounts
    try:
        return compute(side, price, text, tick)
    except OrderMathError as exc:  # its messages name the field (price, size, amount, tick size)
        raise _BadLine(str(exc)) from None


def _check_settings(spec: dict[str, Any], settings: Settings) -> None:
    """Wallet fields a line repeats must be the ones the settings sign with."""
    expected = {
        "signature_type": str(settings.signature_type),
        "funder": (settings.funder or "").lower(),
        "builder": (settings.builder_code or BYTES32_ZERO).lower(),
    }
    for field, wanted in expected.items():
        value = spec.get(field)
        if value is None:
            value = "" if field == "funder" else None
        if value is not None and str(value).lower() != wanted:
            _bad(field, f"is {_shown(value)} on the line but {_shown(wanted or None)} in the settings")


def _signer(settings: Settings, secrets: ClobSecrets) -> OrderSigner:
    return OrderSigner.from_key(
        secrets.private_key,
        settings.chain_id,
        signature_type=SignatureType(settings.signature_type),
        funder=settings.funder or None,
        builder_code=settings.builder_code or BYTES32_ZERO,
    )


def _sign_one(signer: OrderSigner, settings: Settings, owner: str, raw: str, now_ms: int) -> bytes:
    spec = _parse(raw)
    _check_settings(spec, settings)
    side = Side[_choice(spec, "side", (s.name for s in Side))]
    order_type = OrderType(_choice(spec, "order_type", (t.value for t in OrderType), "GTC"))
    maker, taker = _amounts(spec, side, order_type)
    # market orders always carry expiration 0, as the official client sends them (PROTOCOL.md 3.5)
    expiration_s = 0 if order_type.is_immediate else (_uint(spec, "expiration") or 0)
    neg_risk = _flag(spec, "neg_risk", required=True)
    salt = _uint(spec, "salt")  # pinned, to compare with another client's payload byte for byte
    if salt is None:
        client_order_id = spec.get("client_order_id") or hashlib.sha256(raw.encode()).hexdigest()
        salt = salt_from_order_id(str(client_order_id))
    post_only = _flag(spec, "post_only")
    if post_only and order_type.is_immediate:
        _bad("post_only", "is not supported for FOK/FAK orders")
    token_id = _text(spec, "token_id")
    timestamp_ms = _uint(spec, "timestamp_ms") or now_ms
    try:
        signed = signer.sign(
            token_id, side, maker, taker, neg_risk=neg_risk, salt=salt, timestamp_ms=timestamp_ms,
            expiration_s=expiration_s,
        )  # fmt: skip
    except ValueError as exc:  # every other input is checked above; the signer checks the token id
        raise _BadLine(str(exc)) from None
    return signed.post_body(owner, order_type, post_only=post_only, defer_exec=_flag(spec, "defer_exec"))


def sign_lines(
    lines: Iterable[str], settings: Settings, secrets: ClobSecrets, out: IO[str], err: IO[str]
) -> int:
    """Sign each JSON line; a bad line is reported with its number and the rest still sign.

    Returns 0, or EXIT_BAD_LINES when any line was refused.
    """
    signer = _signer(settings, secrets)
    owner = secrets.creds.api_key if secrets.creds is not None else ""
    failures = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            line.encode("utf-8")  # bytes that were not UTF-8 arrive as surrogate escapes
        except UnicodeEncodeError:
            failures += 1
            print(f"line {number}: not UTF-8 text", file=err)
            continue
        try:
            body = _sign_one(signer, settings, owner, line, time.time_ns() // 1_000_000)
        except _BadLine as exc:
            failures += 1
            print(f"line {number}: {exc}", file=err)
            continue
        out.write(body.decode() + "\n")
    return EXIT_BAD_LINES if failures else 0
