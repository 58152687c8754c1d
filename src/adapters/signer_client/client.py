"""The signing server's client: the core's BuilderSigner port, and order / Safe signatures by fields.

One keep-alive httpx client per process. The builder route authenticates with the bearer credential
(as the SDKs do); the signing routes add the timestamp, nonce and HMAC the server requires
(adapters/signer_server/auth.py holds the one definition of that HMAC). The server never signs a bare
digest: an order goes as its fields, so the server's policy sees what it signs.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping

import httpx
import msgspec

from polysnipe.adapters.clob.signing import SignedOrder
from polysnipe.adapters.signer_client.config import SignerClientConfig
from polysnipe.adapters.signer_client.errors import SignerRefused, SignerUnavailable, is_safe_to_retry
from polysnipe.adapters.signer_server import schemas
from polysnipe.adapters.signer_server.auth import (
    CALLER_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Credential,
    engine_signature,
)
from polysnipe.core.events import Side

__all__ = ["AsyncSignerClient", "SignerClient", "order_sign_request"]

_ENCODER = msgspec.json.Encoder()


def _headers(
    credential: Credential, timestamp_s: int, path: str, body: bytes, engine: bool, correlation_id: str
) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-Correlation-Id": correlation_id}
    if engine:
        nonce = secrets.token_urlsafe(18)
        headers |= {
            CALLER_HEADER: credential.caller_id,
            TIMESTAMP_HEADER: str(timestamp_s),
            NONCE_HEADER: nonce,
            SIGNATURE_HEADER: engine_signature(credential.hmac_key(), "POST", path, timestamp_s, nonce, body),
        }
    else:
        headers["Authorization"] = f"Bearer {credential.token()}"
    return headers


def _answer(response: httpx.Response) -> bytes:
    if response.status_code != 200:
        try:
            reason = msgspec.json.decode(response.content, type=schemas.ErrorBody).error
        except msgspec.MsgspecError:
            reason = response.reason_phrase
        raise SignerRefused(response.status_code, reason)
    return response.content


def order_sign_request(
    *, chain_id: int, signer: str, maker: str | None, signature_type: int, builder_code: str, token_id: str,
    side: Side, maker_amount: int, taker_amount: int, neg_risk: bool, salt: int, timestamp_ms: int,
    expiration_s: int = 0,
) -> schemas.OrderSignRequest:  # fmt: skip
    """An order to sign, by its fields as OrderSigner signs them (amounts in micro-units)."""
    return schemas.OrderSignRequest(
        chain_id, signer, maker, signature_type, builder_code, token_id,
        "BUY" if side is Side.BUY else "SELL", str(maker_amount), str(taker_amount),
        neg_risk, salt, timestamp_ms, expiration_s,
    )  # fmt: skip


def _signed_order(answer: bytes) -> SignedOrder:
    try:
        signed = msgspec.json.decode(answer, type=schemas.OrderSignature)
    except msgspec.MsgspecError as exc:
        raise SignerUnavailable(
            f"signing server sent an unreadable order signature: {str(exc)[:120]}"
        ) from None
    return SignedOrder(**msgspec.structs.asdict(signed))


class SignerClient:
    """BuilderSigner over HTTP (`builder_headers`), plus `sign_order`, `sign_safe_tx`, `sign_safe_create`."""

    __slots__ = ("_config", "_credential", "_http", "_now_s")

    def __init__(
        self,
        config: SignerClientConfig,
        credential: Credential,
        *,
        transport: httpx.BaseTransport | None = None,
        now_s: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        self._config = config
        self._credential = credential
        self._now_s = now_s
        self._http = httpx.Client(
            base_url=config.url,
            timeout=httpx.Timeout(config.request_timeout_s, connect=config.connect_timeout_s),
            transport=transport,
            verify=config.ca_file if config.ca_file is not None else True,
        )

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: bytes, *, engine: bool, correlation_id: str) -> bytes:
        last: BaseException | None = None
        for _ in range(self._config.retries + 1):
            headers = _headers(self._credential, self._now_s(), path, body, engine, correlation_id)
            try:
                return _answer(self._http.post(path, content=body, headers=headers))
            except (httpx.TransportError, SignerRefused) as exc:
                if not is_safe_to_retry(exc):
                    raise
                last = exc
        raise SignerUnavailable(f"signing server at {self._config.url} failed: {last}") from last

    def builder_headers(self, timestamp_s: int, method: str, path: str, body: bytes) -> Mapping[str, str]:
        request = schemas.BuilderHeadersRequest(method, path, body.decode() if body else None, timestamp_s)
        answer = self._post("/builder/headers", _ENCODER.encode(request), engine=False, correlation_id="")
        return msgspec.structs.asdict(msgspec.json.decode(answer, type=schemas.BuilderHeaders))

    def sign_order(self, request: schemas.OrderSignRequest, correlation_id: str = "") -> SignedOrder:
        """The same SignedOrder OrderSigner.sign makes, signed by the server's key for `request.signer`."""
        body = _ENCODER.encode(request)
        return _signed_order(self._post("/sign/order", body, engine=True, correlation_id=correlation_id))

    def sign_safe_tx(self, request: schemas.SafeTxSignRequest, correlation_id: str = "") -> schemas.Signature:
        answer = self._post(
            "/sign/safe-tx", _ENCODER.encode(request), engine=True, correlation_id=correlation_id
        )
        return msgspec.json.decode(answer, type=schemas.Signature)

    def sign_safe_create(
        self, request: schemas.SafeCreateSignRequest, correlation_id: str = ""
    ) -> schemas.Signature:
        answer = self._post(
            "/sign/safe-create", _ENCODER.encode(request), engine=True, correlation_id=correlation_id
        )
        return msgspec.json.decode(answer, type=schemas.Signature)

    def __repr__(self) -> str:
        return f"SignerClient(url={self._config.url}, caller={self._credential.caller_id})"


class AsyncSignerClient:
    """Order signatures from the event loop: the live engine's path (signer_client/orders.py). Same
    routes, credential, retries and errors as SignerClient, over an httpx.AsyncClient with keep-alive."""

    __slots__ = ("_config", "_credential", "_http", "_now_s")

    def __init__(
        self,
        config: SignerClientConfig,
        credential: Credential,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        now_s: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        self._config = config
        self._credential = credential
        self._now_s = now_s
        self._http = httpx.AsyncClient(
            base_url=config.url,
            timeout=httpx.Timeout(config.request_timeout_s, connect=config.connect_timeout_s),
            transport=transport,
            verify=config.ca_file if config.ca_file is not None else True,
        )

    @property
    def url(self) -> str:
        return self._config.url

    async def aclose(self) -> None:
        await self._http.aclose()

    async def health(self) -> schemas.Health:
        """GET /healthz (no credential); raises SignerUnavailable when the server cannot answer."""
        try:
            answer = _answer(await self._http.get("/healthz"))
            return msgspec.json.decode(answer, type=schemas.Health)
        except (httpx.TransportError, SignerRefused, msgspec.MsgspecError) as exc:
            raise SignerUnavailable(f"signing server at {self._config.url} failed: {exc}") from None

    async def _post(self, path: str, body: bytes, correlation_id: str) -> bytes:
        last: BaseException | None = None
        for _ in range(self._config.retries + 1):
            headers = _headers(self._credential, self._now_s(), path, body, True, correlation_id)
            try:
                return _answer(await self._http.post(path, content=body, headers=headers))
            except (httpx.TransportError, SignerRefused) as exc:
                if not is_safe_to_retry(exc):
                    raise
                last = exc
        raise SignerUnavailable(f"signing server at {self._config.url} failed: {last}") from last

    async def sign_order(self, request: schemas.OrderSignRequest, correlation_id: str = "") -> SignedOrder:
        """SignerClient.sign_order, awaitable."""
        return _signed_order(await self._post("/sign/order", _ENCODER.encode(request), correlation_id))

    def __repr__(self) -> str:
        return f"AsyncSignerClient(url={self._config.url}, caller={self._credential.caller_id})"
