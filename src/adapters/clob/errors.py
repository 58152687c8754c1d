"""Typed errors of the CLOB adapter, and the pure mapping from an HTTP answer to them.

Theory of operation: the venue answers a refused request with a status and a body `{"error": "..."}`
(the heartbeat uses `error_msg`, order responses `errorMsg` inside a 200). `error_from_response` turns
(status, body) into exactly one VenueError subclass; each keeps the venue's status, a short stable
`code` (Polymarket's own SDK code where one exists, PROTOCOL.md 11.4) and the venue's text verbatim.
The retry predicates in `retry.py` decide on the class alone, never on text.

Matching on text is unavoidable (the venue has no error codes), so every substring matched here is one
Polymarket's SDKs match too, or one PROTOCOL.md records; unrecognised text falls through to the generic
class of its status, never to a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

__all__ = [
    "DuplicateOrder",
    "EngineRestarting",
    "HeartbeatMismatch",
    "InsufficientBalance",
    "InvalidOrder",
    "MalformedMessage",
    "NotFound",
    "OrderNotFilled",
    "OrderVersionMismatch",
    "PostOnlyMode",
    "RateLimited",
    "ServerError",
    "TradingHalted",
    "TransportFailure",
    "Unauthorized",
    "UnknownOutcome",
    "VenueError",
    "error_from_order_message",
    "error_from_response",
]


class MalformedMessage(ValueError):
    """A venue (or external-signal) payload that cannot be mapped to a domain event or market.

    One error type for every way a payload can be wrong (bad JSON, a missing or mistyped field, a
    decimal with more than 6 places, an unknown side), so readers can count and skip bad lines with
    a single `except` and never leak a bare KeyError from deep inside the mapping.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class VenueError(Exception):
    """The venue refused a request, or we could not learn its answer.

    `status` is the HTTP status (0 when no HTTP answer arrived), `code` a stable short name, `message`
    the venue's text verbatim (or the transport's description).
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class RateLimited(VenueError):
    """429: over a Cloudflare or per-signer limit. The request was not processed."""

    def __init__(self, status: int, code: str, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(status, code, message)
        #: the venue's Retry-After (header, or JSON `retry_after_seconds`), None when it sent none
        self.retry_after_s = retry_after_s


class EngineRestarting(VenueError):
    """425 Too Early: the matching engine is restarting (~90 s); post-only mode follows (PROTOCOL.md 11.3)."""


class PostOnlyMode(VenueError):
    """The engine accepts only post-only orders and cancels (the 2 minutes after a restart)."""


class InsufficientBalance(VenueError):
    """`not enough balance / allowance`: one bucket for both, as the venue does not say which."""


class InvalidOrder(VenueError):
    """The order itself is wrong (tick, minimum size, signature, expiration, post-only crossing...)."""


class DuplicateOrder(InvalidOrder):
    """The venue already has this exact order (same signed bytes): the earlier post did arrive."""


class OrderNotFilled(VenueError):
    """An immediate order found nothing to match: FOK killed, FAK without match, or `unmatched`."""


class OrderVersionMismatch(VenueError):
    """`order_version_mismatch`: the exchange order version changed; refresh GET /version, re-sign once."""


class Unauthorized(VenueError):
    """401/403: bad API key, passphrase, HMAC or L1 headers. Retrying cannot help."""


class UnknownOutcome(VenueError):
    """A timeout, a dropped connection or a 5xx on POST /order: the order may have matched.

    Never "not filled": reconcile by order hash before posting anything new.
    """


class TradingHalted(VenueError):
    """503: trading disabled, or cancel-only (new orders refused, cancels allowed)."""


class ServerError(VenueError):
    """A 5xx outside order placement (a read or a cancel, which are safe to repeat)."""


class NotFound(VenueError):
    """404: no such order, order book or market."""


class HeartbeatMismatch(VenueError):
    """400 `Invalid Heartbeat ID`: the chain moved on; resend with the id the venue expects."""

    def __init__(self, status: int, code: str, message: str, expected_id: str) -> None:
        super().__init__(status, code, message)
        self.expected_id = expected_id


class TransportFailure(VenueError):
    """No HTTP answer. `sent` is False only when the request certainly never left (connect failed,
    pool exhausted), which makes it safe to repeat even for an order."""

    def __init__(self, code: str, message: str, *, sent: bool) -> None:
        super().__init__(0, code, message)
        self.sent = sent


# -- mapping -------------------------------------------------------------------------------------
_VERSION_MISMATCH: Final = "order_version_mismatch"
_HEARTBEAT_MISMATCH: Final = "invalid heartbeat id"

#: (lower-case substring, class, code) in match order; first hit wins. Sources: PROTOCOL.md 11.3-11.4.
_ORDER_TEXTS: Final[tuple[tuple[str, type[VenueError], str], ...]] = (
    ("post-only mode", PostOnlyMode, "post_only_mode"),
    ("not enough balance", InsufficientBalance, "insufficient_balance_or_allowance"),
    ("allowance is not enough", InsufficientBalance, "insufficient_balance_or_allowance"),
    ("invalid post-only order: order crosses book", InvalidOrder, "post_only_would_cross"),
    ("invalid post-only order", InvalidOrder, "post_only_invalid_type"),
    ("couldn't be fully filled", OrderNotFilled, "fok_not_filled"),
    ("no orders found to match with fak", OrderNotFilled, "fak_not_filled"),
    ("duplicated", DuplicateOrder, "duplicate_order"),
    ("minimum tick size", InvalidOrder, "invalid_tick_size"),
    ("lower than the minimum", InvalidOrder, "below_min_size"),
    ("market is not yet ready", InvalidOrder, "market_not_ready"),
    ("invalid expiration", InvalidOrder, "invalid_expiration"),
    ("invalid nonce", InvalidOrder, "invalid_nonce"),
    ("signer address has to be", InvalidOrder, "invalid_signature"),
    ("owner has to be", InvalidOrder, "invalid_signature"),
    ("invalid signature", InvalidOrder, "invalid_signature"),
    ("invalid amounts", InvalidOrder, "invalid_amounts"),
    ("matching engine is restarting", EngineRestarting, "engine_restarting"),
    ("cancel-only", TradingHalted, "cancel_only"),
    ("trading is currently disabled", TradingHalted, "trading_disabled"),
    ("too many requests", RateLimited, "rate_limited"),
    ("unauthorized", Unauthorized, "unauthorized"),
    ("invalid api key", Unauthorized, "unauthorized"),
    ("invalid l1 request headers", Unauthorized, "unauthorized"),
)

_json_any = msgspec.json.Decoder()
#: An error body is `{"error": "<message>"}`: one longer than this is not read as JSON, which also
#: keeps hostile nesting away from msgspec's C recursion (see parsing.MAX_JSON_DEPTH), and its text
#: is cut to this length.
_MAX_ERROR_BODY = 4_096


def _decode_body(body: bytes | str | Mapping[str, Any] | None) -> tuple[str, Mapping[str, Any]]:
    """(the venue's message, the decoded object or {}) of an error body in any of its spellings."""
    if body is None:
        return "", {}
    obj: Any = body
    if isinstance(body, bytes | str):
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        if len(body) > _MAX_ERROR_BODY:
            return text[:_MAX_ERROR_BODY].strip(), {}
        try:
            obj = _json_any.decode(body)
        except (msgspec.DecodeError, RecursionError, ValueError):
            # (a RecursionError below the length cap; a ValueError for a str with lone surrogates)
            return text.strip(), {}
    if isinstance(obj, Mapping):
        for key in ("error", "error_msg", "errorMsg", "message"):
            value = obj.get(key)
            if value:
                # the Python client dumps a non-string `error` before matching; so do we
                return (value if isinstance(value, str) else msgspec.json.encode(value).decode()), obj
        return msgspec.json.encode(obj).decode(), obj
    return str(obj), {}


def _retry_after(header: str | None, obj: Mapping[str, Any]) -> float | None:
    for raw in (header, obj.get("retry_after_seconds")):
        if raw is None or isinstance(raw, bool):
            continue
        try:
            seconds = float(raw)
        except (TypeError, ValueError):
            # an HTTP-date Retry-After is legal but the venue sends seconds; without a date parser
            # the caller's own backoff applies
            continue
        if seconds >= 0:
            return seconds
    return None


def _from_text(status: int, message: str, *, posting: bool) -> VenueError:
    lowered = message.lower()
    if _VERSION_MISMATCH in lowered:
        return OrderVersionMismatch(status, _VERSION_MISMATCH, message)
    for needle, cls, code in _ORDER_TEXTS:
        if needle in lowered:
            if cls is RateLimited:
                return RateLimited(status, code, message)
            return cls(status, code, message)
    if posting:
        # a refusal of our order that no SDK names: still a rejection of this order, not of the venue
        return InvalidOrder(status, "order_rejected", message)
    return VenueError(status, "bad_request" if status == 400 else f"http_{status}", message)


def _unclear_to_posts(status: int) -> bool:
    """Answers to an order post that do not say whether the venue took it: a redirect (the venue
    never sends one, so something between us and it did, maybe after forwarding the order) and a
    request timeout (a proxy gave up while the order may have gone on). Only asking by hash tells."""
    return 300 <= status < 400 or status == 408


def error_from_response(
    status: int,
    body: bytes | str | Mapping[str, Any] | None,
    *,
    retry_after: str | None = None,
    posting: bool = False,
) -> VenueError:
    """The typed error of a non-2xx answer. `posting` marks POST /order(s): there a 5xx, a 3xx or a
    408 is an unknown outcome (the order may have matched), and unrecognised 4xx text is an order
    rejection."""
    message, obj = _decode_body(body)
    if status == 429:
        return RateLimited(
            status, "rate_limited", message or "Too Many Requests", _retry_after(retry_after, obj)
        )
    if status == 425:
        return EngineRestarting(status, "engine_restarting", message or "Too Early")
    if status in (401, 403):
        return Unauthorized(status, "unauthorized", message)
    if status == 400 and _HEARTBEAT_MISMATCH in message.lower():
        expected = obj.get("heartbeat_id")
        return HeartbeatMismatch(
            status, "heartbeat_mismatch", message, expected if isinstance(expected, str) else ""
        )
    if _VERSION_MISMATCH in message.lower():
        return OrderVersionMismatch(status, _VERSION_MISMATCH, message)
    if status == 503 and message:
        err = _from_text(status, message, posting=False)
        if isinstance(err, TradingHalted):
            return err
    if status >= 500 or (posting and _unclear_to_posts(status)):
        if posting:
            return UnknownOutcome(status, "unknown_outcome", message or f"HTTP {status}")
        return ServerError(status, "server_error", message or f"HTTP {status}")
    if status == 404:
        return NotFound(status, "not_found", message)
    return _from_text(status, message, posting=posting)


def error_from_order_message(message: str, status: int = 200) -> VenueError:
    """The typed error of an order response that came back with `success: false` or an `errorMsg`."""
    return _from_text(status, message, posting=True)
