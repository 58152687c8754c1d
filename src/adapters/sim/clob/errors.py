"""The venue's refusals: the texts the simulated CLOB answers with, and the exception that carries one
from wherever a check fails to the HTTP layer, which renders it as `{"error": text}` (PROTOCOL 11.4)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

__all__ = ["ERRORS", "VenueError"]

#: The venue's texts beyond the engine's VENUE_ERRORS (PROTOCOL 11.3-11.4; the owner/signer/signature
#: wording is what the venue answers in py-clob-client(-v2) issue reports, PROTOCOL 11.4 [3P]).
ERRORS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "unauthorized": "Unauthorized/Invalid api key",
        "l1": "Invalid L1 Request headers",
        "rate_limited": "Too Many Requests",
        "payload": "Invalid order payload",
        "invalid_payload": "Invalid payload",
        "invalid_order_id": "Invalid orderID",
        "batch_limit": "Payload exceeds the limit",
        "owner": "the order owner has to be the owner of the API KEY",
        "signer": "the order signer address has to be the address of the API KEY",
        "signature": "invalid signature",
        "version": "order_version_mismatch",
        "restarting": "Matching engine is restarting",
        "cancel_only": (
            "Trading is currently cancel-only. New orders are not accepted, but cancels are allowed."
        ),
        "disabled": "Trading is currently disabled. Check polymarket.com for updates",
        "post_only_mode": "post-only mode: only post-only orders and cancels are allowed",
        "heartbeat": "Invalid Heartbeat ID",
        "order_not_found": "order not found",
        "not_cancelable": "already canceled or matched",
        "no_orderbook": "No orderbook exists for the requested token id",
        "market_not_found": "market not found",
        "invalid_token": "Invalid token id",
        "invalid_side": "Invalid side",
        "invalid_cursor": "invalid next_cursor",
        "internal": "Internal server error",
        # not venue texts (the venue's own are unknown): the simulator's HTTP guard and admin API
        "body_too_large": "Payload Too Large",
        "admin_unauthorized": "admin token required",
    }
)


class VenueError(Exception):
    """A refusal the venue answers with a non-200 status and `{"error": message}` (or `body`)."""

    def __init__(
        self, status: int, message: str, *, body: Mapping[str, Any] | None = None, retry_after_s: int = 0
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body: Mapping[str, Any] = body if body is not None else {"error": message}
        self.retry_after_s = retry_after_s
