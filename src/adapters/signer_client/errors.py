"""What can go wrong asking the signing server, and which failures are safe to retry."""

from __future__ import annotations

import httpx

__all__ = ["SignerRefused", "SignerUnavailable", "is_safe_to_retry"]


class SignerRefused(RuntimeError):
    """The server answered and said no (4xx or 5xx), with its reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"signing server refused ({status}): {reason}")
        self.status = status
        self.reason = reason


class SignerUnavailable(RuntimeError):
    """The server could not be reached, or kept failing after the retries."""


def is_safe_to_retry(err: BaseException) -> bool:
    """Transport failures, and 502/503/504. A signature request is idempotent by its digest (the
    server counts an order's notional once per digest), so a retry after a lost answer signs the
    same thing again; a fresh nonce goes with every attempt. A refusal (4xx) is never retried."""
    if isinstance(err, httpx.TransportError):
        return True
    return isinstance(err, SignerRefused) and err.status in (502, 503, 504)
