"""`polysnipe orders sign`: print the signed POST /order body for order inputs given as JSON lines.

Operators use it to check a payload by hand. Each input line:
`{"token_id": "...", "price": "0.57", "size": "100" | "amount": "10", "side": "BUY", "tick_size": "0.01",
  "neg_risk": false, "order_type": "GTC", "expiration": "0", "post_only": false, "client_order_id": "..."}`
`size` (shares) is for GTC/GTD, `amount` (USDC for BUY, shares for SELL) for FOK/FAK, as in the official
client. The salt derives from `client_order_id` (default: a hash of the line), so signing the same line
twice gives the same order; `salt` and `timestamp_ms` may be pinned to compare with another client.
Chain, builder code and funder come from settings; the key and API key from POLYSNIPE_CLOB_* (factory).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from typing import IO, Any

from polysnipe.adapters.clob.config import BYTES32_ZERO, SignatureType
from polysnipe.adapters.clob.factory import ClobSecrets
from polysnipe.adapters.clob.signing import OrderSigner, salt_from_order_id
from polysnipe.core.events import Side
from polysnipe.core.messages import OrderType
from polysnipe.core.order_math import OrderMathError, limit_amounts, market_amounts
from polysnipe.runners.settings import Settings

__all__ = ["sign_lines"]


def _signer(settings: Settings, secrets: ClobSecrets) -> OrderSigner:
    return OrderSigner.from_key(
        secrets.private_key,
        settings.chain_id,
        signature_type=SignatureType(settings.signature_type),
        funder=settings.funder or None,
        builder_code=settings.builder_code or BYTES32_ZERO,
    )


def _sign_one(signer: OrderSigner, owner: str, spec: dict[str, Any], raw: str, now_ms: int) -> bytes:
    side = Side[str(spec["side"]).upper()]
    order_type = OrderType(str(spec.get("order_type", "GTC")).upper())
    tick = str(spec["tick_size"])
    if order_type.is_immediate:
        maker, taker = market_amounts(side, str(spec["price"]), str(spec["amount"]), tick)
        expiration_s = 0
    else:
        maker, taker = limit_amounts(side, str(spec["price"]), str(spec["size"]), tick)
        expiration_s = int(spec.get("expiration", 0) or 0)
    neg_risk = spec.get("neg_risk")
    if not isinstance(neg_risk, bool):
        raise ValueError("neg_risk must be true or false (a wrong flag signs for the wrong exchange)")
    if spec.get("salt") is not None:
        salt = int(spec["salt"])  # pinned, to compare with another client's payload byte for byte
    else:
        salt = salt_from_order_id(
            str(spec.get("client_order_id") or hashlib.sha256(raw.encode()).hexdigest())
        )
    signed = signer.sign(
        str(spec["token_id"]), side, maker, taker, neg_risk=neg_risk, salt=salt,
        timestamp_ms=int(spec.get("timestamp_ms") or now_ms), expiration_s=expiration_s,
    )  # fmt: skip
    return signed.post_body(
        owner,
        order_type,
        post_only=bool(spec.get("post_only", False)),
        defer_exec=bool(spec.get("defer_exec", False)),
    )


def sign_lines(
    lines: Iterable[str], settings: Settings, secrets: ClobSecrets, out: IO[str], err: IO[str]
) -> int:
    """Sign each JSON line; a bad line is reported with its number and the rest still sign."""
    signer = _signer(settings, secrets)
    owner = secrets.creds.api_key if secrets.creds is not None else ""
    failures = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            body = _sign_one(signer, owner, json.loads(raw), raw.strip(), time.time_ns() // 1_000_000)
        except (ValueError, KeyError, OrderMathError) as exc:
            failures += 1
            print(f"line {number}: {type(exc).__name__}: {exc}", file=err)
            continue
        out.write(body.decode() + "\n")
    return 1 if failures else 0
