"""External signals (news, sentiment) POSTed by their providers, checked, then appended to the bus.

Theory of operation: a provider POSTs one signal (docs/external-signals.md, one JSON object) to
`/signals` with three headers:

* `X-Polysnipe-Provider`: its name, one of the configured providers;
* `X-Polysnipe-Timestamp`: when it signed, epoch ms in ASCII digits;
* `X-Polysnipe-Signature`: hex HMAC-SHA256 under the provider's key of `<timestamp>.<body>`.

The request is refused, with a 4xx and its reason in `{"error": ...}`, when the body is too large
(413), the provider unknown or the signature wrong (401, compared in constant time), the timestamp
further than `max_skew_ms` from now (401: a captured request cannot be replayed later) or already
accepted while its timestamp can still pass that check (409: nor twice now), the body not exactly
one valid external signal (422, the parser's reason), or its `source` not the provider who signed
(403: one provider cannot speak for another). Unknown paths and methods are a 404 or 405 in the
same shape. A signal that passes goes to `accept` (the bus), 202 with its entry id; a bus failure
is a 503, so the provider retries.

Keys come from the environment only (`keys_from_env`), never from a file or the command line, and
never reach a log line.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

import attrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.parsing import parse_market_line
from polysnipe.adapters.logs import get_logger
from polysnipe.adapters.request_body import read_body
from polysnipe.core.events import ExternalSignal
from polysnipe.core.ports import Clock

__all__ = [
    "HEADER_PROVIDER",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "MissingSignalKeys",
    "SignalEndpointConfig",
    "key_env",
    "keys_from_env",
    "sign",
    "signal_app",
]

log = get_logger("polysnipe.signals_http")

HEADER_PROVIDER: Final = "x-polysnipe-provider"
HEADER_TIMESTAMP: Final = "x-polysnipe-timestamp"
HEADER_SIGNATURE: Final = "x-polysnipe-signature"
_SEEN_MAX: Final = 100_000

#: appends one accepted signal (body as received, receive time, provider); returns its entry id
Accept = Callable[[bytes, int, str], Awaitable[str]]


class MissingSignalKeys(ValueError):
    """Configured providers whose key is not in the environment (names the variables, not values)."""


def key_env(provider: str) -> str:
    return "POLYSNIPE_SIGNAL_KEY_" + provider.upper().replace("-", "_")


def keys_from_env(providers: Sequence[str], env: Mapping[str, str] | None = None) -> dict[str, bytes]:
    env = os.environ if env is None else env
    missing = [key_env(p) for p in providers if not env.get(key_env(p))]
    if missing:
        raise MissingSignalKeys(f"no HMAC key for signal provider(s): set {', '.join(missing)}")
    return {p: env[key_env(p)].encode() for p in providers}


def sign(key: bytes, timestamp_ms: int | str, body: bytes) -> str:
    """The signature a provider sends: hex HMAC-SHA256 of `<timestamp>.<body>`."""
    return hmac.new(key, str(timestamp_ms).encode() + b"." + body, hashlib.sha256).hexdigest()


@attrs.frozen(slots=True, kw_only=True)
class SignalEndpointConfig:
    keys: Mapping[str, bytes] = attrs.field(repr=False)
    max_skew_ms: int = 30_000
    max_body_bytes: int = 65_536


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _ReplayWindow:
    """The signatures accepted while their timestamps can still pass the skew check.

    A signature is remembered until its own timestamp plus the skew, not its arrival plus the skew:
    a request stamped ahead of the server's clock stays valid that much longer, and would otherwise
    be accepted again after being forgotten. When the window holds `capacity` live signatures, new
    requests are refused (503) rather than forgetting one that could still be replayed."""

    def __init__(self, skew_ms: int, capacity: int) -> None:
        self.skew_ms = skew_ms
        self.capacity = capacity
        self._until: dict[str, int] = {}
        self._expiries: list[tuple[int, str]] = []  # a heap of (until, signature)

    def admit(self, signature: str, stamp_ms: int, now_ms: int) -> bool:
        """True (and remembered) the first time; False for a signature seen in the window."""
        expiries = self._expiries
        while expiries and expiries[0][0] < now_ms:
            until, old = heapq.heappop(expiries)
            if self._until.get(old) == until:
                del self._until[old]
        if signature in self._until:
            return False
        if len(self._until) >= self.capacity:
            raise _Refused(503, "too many signed requests inside the replay window, retry")
        until = stamp_ms + self.skew_ms
        self._until[signature] = until
        heapq.heappush(expiries, (until, signature))
        return True

    def forget(self, signature: str) -> None:
        """A request that was not accepted after all: its retry must get through."""
        self._until.pop(signature, None)


def _signal(body: bytes) -> ExternalSignal:
    if body.lstrip()[:1] != b"{":
        raise _Refused(422, "expected one external signal as a JSON object")
    try:
        events = parse_market_line(body)
    except MalformedMessage as exc:
        raise _Refused(422, exc.reason) from None
    if len(events) != 1 or type(events[0]) is not ExternalSignal:
        raise _Refused(422, 'not an external signal: event_type must be "external_signal"')
    return events[0]


def signal_app(config: SignalEndpointConfig, *, accept: Accept, clock: Clock) -> Starlette:
    """The ASGI app of the signal endpoint (served by uvicorn in `polysnipe ingest`)."""
    seen = _ReplayWindow(config.max_skew_ms, _SEEN_MAX)

    async def post(request: Request) -> JSONResponse:
        provider = request.headers.get(HEADER_PROVIDER, "")
        try:
            body = await read_body(request, config.max_body_bytes, _Refused)
            key = config.keys.get(provider)
            if key is None:
                raise _Refused(401, "unknown provider")
            stamp = request.headers.get(HEADER_TIMESTAMP, "")
            if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 13):
                raise _Refused(401, f"missing or malformed {HEADER_TIMESTAMP} (epoch ms)")
            claimed = request.headers.get(HEADER_SIGNATURE, "")
            if not hmac.compare_digest(sign(key, stamp, body).encode(), claimed.encode("utf-8", "replace")):
                raise _Refused(401, "bad signature")
            now = clock.now_ms()
            if abs(now - int(stamp)) > config.max_skew_ms:
                raise _Refused(401, f"stale timestamp: more than {config.max_skew_ms} ms from now")
            signal = _signal(body)
            if signal.source != provider:
                raise _Refused(403, f"source {signal.source[:64]!r} is not the signing provider")
            if not seen.admit(claimed, int(stamp), now):
                raise _Refused(409, "this signed request was already accepted")
        except _Refused as exc:
            log.warning("signal_refused", provider=provider[:64], status=exc.status, reason=exc.reason[:300])
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        try:
            entry = await accept(body, now, provider)
        except Exception as exc:
            seen.forget(claimed)
            log.error("signal_not_appended", provider=provider, error=repr(exc)[:300])
            return JSONResponse({"error": "the bus is unavailable, retry"}, status_code=503)
        log.info("signal_accepted", provider=provider, token_id=signal.token_id, entry=entry)
        return JSONResponse({"id": entry}, status_code=202)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "providers": sorted(config.keys)})

    async def refuse(request: Request, exc: Exception) -> JSONResponse:
        """Every other answer in the same shape: unknown paths, wrong methods, an internal error."""
        if isinstance(exc, HTTPException):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        log.error("signal_endpoint_error", error=f"{type(exc).__name__}: {exc}"[:300])
        return JSONResponse({"error": "internal error"}, status_code=500)

    app = Starlette(
        routes=[Route("/signals", post, methods=["POST"]), Route("/healthz", health)],
        exception_handlers={HTTPException: refuse, Exception: refuse},
    )
    # a path with a trailing slash is unknown, not a redirect built from the caller's Host header
    app.router.redirect_slashes = False
    return app
