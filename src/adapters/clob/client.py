"""The one HTTP client of the CLOB REST API in a process: HTTP/2 keep-alive, L2 auth, typed errors.

Theory of operation: a single `httpx.AsyncClient` (HTTP/2, pooled keep-alive connections) carries
every call, so the TLS handshake happens once and orders ride a warm connection. Every call has a
connect timeout, a timeout per read and one for the whole answer. Authenticated calls are signed
through the SignerPort over the exact body bytes that are then sent. The answer is either the body
bytes (2xx) or one typed VenueError (errors.py): this module never retries; the policy lives in
`retry.py` and its callers.

Transport failures are split by what the venue may have seen: a connection that never opened (or
no free pooled connection) certainly did not deliver the request; a timeout or dropped connection
after sending may have. For POST /order the latter is an UnknownOutcome, to be reconciled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import urlencode

import httpx

from polysnipe.adapters.clob.auth import SignerPort
from polysnipe.adapters.clob.config import ClobConfig
from polysnipe.adapters.clob.errors import TransportFailure, UnknownOutcome, error_from_response
from polysnipe.core.ports import Clock

__all__ = ["ClobHttpClient"]

_JSON_HEADERS: Final = {"Content-Type": "application/json"}
_USER_AGENT: Final = "polysnipe"


class ClobHttpClient:
    """Async CLOB REST client. Create one per process; `aclose()` at shutdown."""

    __slots__ = ("_clock", "_config", "_http", "_signer")

    def __init__(
        self,
        config: ClobConfig,
        clock: Clock,
        signer: SignerPort | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 20,
    ) -> None:
        self._config = config
        self._clock = clock
        self._signer = signer
        # Constructing the client opens no socket: the first request does (factories stay cheap).
        self._http = httpx.AsyncClient(
            base_url=config.host,
            http2=transport is None,
            transport=transport,
            timeout=httpx.Timeout(config.request_timeout_s, connect=config.connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"User-Agent": _USER_AGENT},
        )

    @property
    def config(self) -> ClobConfig:
        return self._config

    @property
    def signer_address(self) -> str:
        """POLY_ADDRESS of our L2 calls: the key per-signer rate budgets are kept under."""
        if self._signer is None:
            raise PermissionError("no signer configured")
        return self._signer.address

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        body: bytes | None = None,
        auth: bool = False,
        posting: bool = False,
        timeout_s: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """Send one request; return the body of a 2xx answer or raise a typed VenueError.

        `posting` marks order placement: a 5xx or an answer lost after sending raises UnknownOutcome.
        `path` carries no query string; `params` are appended to the URL but never signed (PROTOCOL.md
        6.2 signs the bare path); pairs repeat a key (Gamma's `condition_ids=a&condition_ids=b`).
        `headers` are sent as given (the L1 headers of credential calls).
        """
        url = path + "?" + urlencode(params) if params else path
        sent: dict[str, str] = dict(headers or {})
        if body is not None:
            sent.update(_JSON_HEADERS)
        if auth:
            if self._signer is None:
                raise PermissionError(f"{method} {path} needs L2 credentials")
            sent.update(self._signer.l2_headers(self._clock.now_ms() // 1000, method, path, body or b""))
        timeout = httpx.USE_CLIENT_DEFAULT if timeout_s is None else httpx.Timeout(timeout_s)
        # httpx's timeouts bound each read, not the whole answer: one trickled a byte at a time would
        # hold the call (and an order's reconciliation lock) for ever
        overall_s = self._config.connect_timeout_s + (
            self._config.request_timeout_s if timeout_s is None else timeout_s
        )
        try:
            async with asyncio.timeout(overall_s):
                response = await self._http.request(method, url, content=body, headers=sent, timeout=timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransportFailure("connect_failed", f"{method} {path}: {exc!r}", sent=False) from exc
        except httpx.InvalidURL as exc:  # refused before anything was sent
            raise TransportFailure("invalid_request", f"{method} {path[:200]}: {exc}", sent=False) from exc
        except (httpx.HTTPError, TimeoutError) as exc:
            # after sending: a dropped connection, no whole answer in time, or one that cannot be read
            # (a body that fails to decompress): the venue may have acted on it
            what = f"{method} {path}: {exc!r}" if str(exc) else f"{method} {path}: no answer in {overall_s} s"
            if posting:
                raise UnknownOutcome(0, "unknown_outcome", what) from exc
            raise TransportFailure("no_answer", what, sent=True) from exc
        if 200 <= response.status_code < 300:
            return response.content
        raise error_from_response(
            response.status_code,
            response.content,
            retry_after=response.headers.get("Retry-After"),
            posting=posting,
        )

    async def get(self, path: str, params: Mapping[str, str] | None = None, *, auth: bool = False) -> bytes:
        return await self.request("GET", path, params=params, auth=auth)

    def __repr__(self) -> str:
        return f"ClobHttpClient(host={self._config.host}, signer={self._signer!r})"
