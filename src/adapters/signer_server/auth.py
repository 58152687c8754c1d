"""Who may ask the server for a signature: caller credentials, engine request HMACs, replay defence.

A credential is `psk.<caller id>.<secret>`, printed once when the caller is added. The server keeps
only sha256(secret): the SDK route compares the bearer token's hash with it; the engine routes use
that hash as the HMAC key, so the caller proves it holds the secret without sending it. (Whoever
reads the callers table can therefore forge engine requests but not bearer tokens: the table is as
sensitive as the server's host.) Every comparison is constant-time.

The engine's HMAC covers METHOD, path, body, timestamp and nonce, newline-separated with the body
last, so no field can bleed into another. A timestamp further than the allowed skew from the server's
clock is stale; a nonce is remembered for twice the skew, so inside the window a replay is caught and
outside it the timestamp is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict
from typing import Final

import attrs

from polysnipe.core.secret import Secret

__all__ = [
    "CALLER_HEADER",
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Caller",
    "Credential",
    "NonceBook",
    "Refused",
    "engine_signature",
    "new_credential",
    "parse_credential",
    "secret_hash",
]

CALLER_HEADER: Final = "X-Polysnipe-Caller"
TIMESTAMP_HEADER: Final = "X-Polysnipe-Timestamp"
NONCE_HEADER: Final = "X-Polysnipe-Nonce"
SIGNATURE_HEADER: Final = "X-Polysnipe-Signature"

_PREFIX: Final = "psk"
_ID_CHARS: Final = frozenset("0123456789abcdef")
_SECRET_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_NONCE_CHARS: Final = _SECRET_CHARS


class Refused(Exception):
    """A request the server will not serve: HTTP `status` and the one-line reason sent back."""

    def __init__(self, status: int, reason: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after_s = retry_after_s


@attrs.frozen(slots=True)
class Caller:
    caller_id: str
    name: str
    #: sha256 of the credential's secret; the engine routes' HMAC key
    secret_sha256: Secret[bytes] = attrs.field(repr=False)
    revoked: bool = False


@attrs.frozen(slots=True)
class Credential:
    caller_id: str
    secret: Secret[str] = attrs.field(repr=False)

    def token(self) -> str:
        """The whole credential as printed and as sent in `Authorization: Bearer`."""
        return f"{_PREFIX}.{self.caller_id}.{self.secret.reveal()}"

    def hmac_key(self) -> bytes:
        return secret_hash(self.secret)


def secret_hash(secret: Secret[str]) -> bytes:
    return hashlib.sha256(secret.reveal().encode()).digest()


def new_credential() -> Credential:
    return Credential(secrets.token_hex(8), Secret(secrets.token_urlsafe(32)))


def parse_credential(token: str) -> Credential:
    """A credential from its text; raises Refused(401) without echoing any of it."""
    prefix, _, rest = token.partition(".")
    caller_id, _, secret = rest.partition(".")
    if not (
        prefix == _PREFIX
        and len(caller_id) == 16
        and _ID_CHARS.issuperset(caller_id)
        and 20 <= len(secret) <= 128
        and _SECRET_CHARS.issuperset(secret)
    ):
        raise Refused(401, "malformed credential: expected psk.<caller id>.<secret>")
    return Credential(caller_id, Secret(secret))


def engine_signature(key: bytes, method: str, path: str, timestamp_s: int, nonce: str, body: bytes) -> str:
    """URL-safe base64 HMAC-SHA256 of an engine request (the client computes the same)."""
    mac = hmac.new(key, f"{method.upper()}\n{path}\n{timestamp_s}\n{nonce}\n".encode(), hashlib.sha256)
    mac.update(body)
    return base64.urlsafe_b64encode(mac.digest()).decode()


def check_bearer(caller: Caller, credential: Credential) -> None:
    if not hmac.compare_digest(caller.secret_sha256.reveal(), credential.hmac_key()):
        raise Refused(401, "wrong credential")


def check_engine_signature(
    caller: Caller, method: str, path: str, timestamp_s: int, nonce: str, body: bytes, presented: str
) -> None:
    expected = engine_signature(caller.secret_sha256.reveal(), method, path, timestamp_s, nonce, body)
    if not hmac.compare_digest(expected.encode(), presented.encode("ascii", "replace")):
        raise Refused(401, "request signature does not match (method, path, body, timestamp, nonce)")


def parse_timestamp(text: str | None) -> int:
    if text is None:
        raise Refused(401, f"missing {TIMESTAMP_HEADER} (unix seconds)")
    if not (0 < len(text) <= 12 and text.isascii() and text.isdecimal()):
        raise Refused(401, f"{TIMESTAMP_HEADER} must be unix seconds, ASCII digits")
    return int(text)


def parse_nonce(text: str | None) -> str:
    if text is None:
        raise Refused(401, f"missing {NONCE_HEADER}")
    if not (16 <= len(text) <= 64 and _NONCE_CHARS.issuperset(text)):
        raise Refused(401, f"{NONCE_HEADER} must be 16-64 characters of [A-Za-z0-9_-]")
    return text


class NonceBook:
    """Nonces seen inside the freshness window, per caller; refuses a replay and forgets what expired.

    Bounded: when full of live nonces it refuses new requests (503) rather than forget one, since a
    forgotten nonce would be a replay window.
    """

    __slots__ = ("_capacity", "_seen", "_ttl_s")

    def __init__(self, ttl_s: int, capacity: int) -> None:
        self._ttl_s = ttl_s
        self._capacity = capacity
        # insertion order is expiry order, because every entry lives exactly ttl_s
        self._seen: OrderedDict[tuple[str, str], int] = OrderedDict()

    def check_and_remember(self, caller_id: str, nonce: str, now_s: int) -> None:
        seen = self._seen
        while seen:
            key, expires = next(iter(seen.items()))
            # kept through its last second: a timestamp `skew` ahead, first seen `skew` behind,
            # still passes the freshness check then (at exactly `skew` from now)
            if expires >= now_s:
                break
            del seen[key]
        if (caller_id, nonce) in seen:
            raise Refused(401, "replayed nonce")
        if len(seen) >= self._capacity:
            raise Refused(503, "too many requests in flight to remember their nonces; retry shortly")
        seen[(caller_id, nonce)] = now_s + self._ttl_s

    def __len__(self) -> int:
        return len(self._seen)
