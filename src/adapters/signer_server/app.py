"""The signing server as an ASGI app: builder headers for the SDKs, trader signatures for the engine.

Theory of operation. Every request goes through `SignerService.handle`, one path for all routes:
read the body (size-limited), authenticate (bearer on the SDK route, HMAC + timestamp + nonce on the
engine routes), rate-limit the caller, decode the body by its schema, apply the policy, rate-limit
the key, sign, write the audit row, answer. Any step may refuse with an HTTP status and a one-line
reason; the refusal is audited like a success. Unexpected exceptions become a 500 with an audit row
and a log line, never a dead server. Nothing secret is in a response but the builder passphrase the
SDK protocol requires, and nothing secret in a log line or an audit row.

Routes (see /openapi.json): POST /builder/headers (the SDKs' remote signer), POST /sign/order,
POST /sign/safe-tx, POST /sign/safe-create, GET /healthz and GET /openapi.json (no credential).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import attrs
import msgspec
import psycopg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from polysnipe.adapters.clob.auth import BuilderAuth
from polysnipe.adapters.clob.config import SignatureType, exchange_contracts
from polysnipe.adapters.clob.signing import DigestSigner, OrderSigner
from polysnipe.adapters.request_body import read_body
from polysnipe.adapters.signer_server import schemas
from polysnipe.adapters.signer_server.audit import AuditEntry, AuditLog, AuditUnavailable
from polysnipe.adapters.signer_server.auth import (
    CALLER_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Caller,
    NonceBook,
    Refused,
    check_bearer,
    check_engine_signature,
    parse_credential,
    parse_nonce,
    parse_timestamp,
)
from polysnipe.adapters.signer_server.callers import lookup_caller
from polysnipe.adapters.signer_server.config import SignerServerConfig
from polysnipe.adapters.signer_server.digests import (
    SAFE_FACTORY,
    ZERO_ADDRESS,
    create_proxy_digest,
    derive_safe,
    eth_signed_message_hash,
    safe_tx_digest,
)
from polysnipe.adapters.signer_server.keys import KeyProvider
from polysnipe.adapters.signer_server.limits import Buckets, DailyNotional
from polysnipe.adapters.signer_server.safe_calls import SafeCall, SafeTransaction
from polysnipe.adapters.signer_server.safe_calls import refusal as safe_call_refusal
from polysnipe.core.events import Side
from polysnipe.core.ports import Clock

__all__ = ["CORRELATION_HEADER", "SignerService", "create_app", "openapi_document"]

CORRELATION_HEADER: Final = "X-Correlation-Id"
_JSON: Final = "application/json"
_ORDER_SIGNERS_MAX: Final = 1024


@attrs.define(slots=True)
class _Ctx:
    """What the audit row of one request says, filled in as the request goes."""

    endpoint: str
    purpose: str
    correlation_id: str
    caller: str = ""
    digest: str = ""
    key_address: str = ""
    notional_usdc_micro: int = 0


@attrs.frozen(slots=True)
class _Spec:
    path: str
    method: str
    purpose: str
    #: "bearer" (the SDK route), "hmac" (engine routes) or "" (no credential)
    auth: str
    request: type[msgspec.Struct] | None
    response: type[msgspec.Struct]
    summary: str


_ROUTES: Final = (
    _Spec("/builder/headers", "POST", "builder_headers", "bearer", schemas.BuilderHeadersRequest,
          schemas.BuilderHeaders, "POLY_BUILDER_* headers for a relayer request (the SDKs' remote mode)"),
    _Spec("/sign/order", "POST", "order", "hmac", schemas.OrderSignRequest, schemas.OrderSignature,
          "sign a CLOB V2 order with a managed key"),
    _Spec("/sign/safe-tx", "POST", "safe_tx", "hmac", schemas.SafeTxSignRequest, schemas.Signature,
          "sign a Safe v1.3 transaction as its owner (eth_sign form, v + 4)"),
    _Spec("/sign/safe-create", "POST", "safe_create", "hmac", schemas.SafeCreateSignRequest,
          schemas.Signature, "sign the Safe factory's CreateProxy authorisation"),
    _Spec("/healthz", "GET", "health", "", None, schemas.Health, "liveness, key count, builder configured"),
    _Spec("/openapi.json", "GET", "openapi", "", None, schemas.ErrorBody, "this document"),
)  # fmt: skip

_ENCODER: Final = msgspec.json.Encoder()


def _error(status: int, reason: str, correlation_id: str, retry_after_s: int | None = None) -> Response:
    headers = {CORRELATION_HEADER: correlation_id}
    if retry_after_s is not None:
        headers["Retry-After"] = str(retry_after_s)
    return Response(_ENCODER.encode(schemas.ErrorBody(reason)), status, headers, media_type=_JSON)


def _correlation_id(request: Request) -> str:
    given = request.headers.get(CORRELATION_HEADER, "")
    if 0 < len(given) <= 128 and given.isascii() and given.isprintable():
        return given
    return secrets.token_hex(8)


def _decode(body: bytes, kind: type[msgspec.Struct]) -> Any:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise Refused(400, f"invalid body: {str(exc)[:200]}") from None
    except msgspec.DecodeError as exc:
        raise Refused(400, f"body is not JSON: {str(exc)[:120]}") from None


def _uint256(text: str, name: str) -> int:
    """A schema Uint256 (up to 78 digits, which reach past 2**256) as the int a digest encodes."""
    value = int(text)
    if value >= 1 << 256:
        raise Refused(400, f"invalid body: {name} is beyond uint256")
    return value


class SignerService:
    """Everything a request needs; one per server process (single event loop, no locks but the audit's)."""

    def __init__(
        self,
        config: SignerServerConfig,
        *,
        keys: KeyProvider,
        builder: BuilderAuth | None,
        open_db: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
        audit_key: Any,
        clock: Clock,
        log: Any,
    ) -> None:
        self.config = config
        self.keys = keys
        self._builder = builder
        self._open_db = open_db
        self._audit_key = audit_key
        self._clock = clock
        self._log = log
        self._nonces = NonceBook(2 * config.max_clock_skew_s, config.max_nonces)
        self._caller_buckets = Buckets(config.per_caller)
        self._key_buckets = Buckets(config.per_key)
        self._daily = DailyNotional(config.daily_notional_cap_usdc_micro)
        self._order_signers: dict[tuple[str, int, int, str | None, str], OrderSigner] = {}
        self._callers_db: psycopg.AsyncConnection[Any] | None = None
        self._audit_db: psycopg.AsyncConnection[Any] | None = None
        self._audit: AuditLog | None = None

    async def start(self) -> None:
        """Open the two connections (callers read, audit written) and restore today's order notional."""
        self._callers_db = await self._open_db()
        self._audit_db = await self._open_db()
        self._audit = AuditLog(self._audit_db, self._audit_key)
        await self._audit.open()
        now_ms = self._clock.now_ms()
        for key, digest, notional in await self._audit.orders_since(self._daily.day_start_ms(now_ms)):
            self._daily.restore(key, digest, notional, now_ms)

    async def close(self) -> None:
        for conn in (self._callers_db, self._audit_db):
            if conn is not None:
                await conn.close()

    # -- the one request path ---------------------------------------------------------------------
    async def handle(self, request: Request, spec: _Spec) -> Response:
        started = self._clock.monotonic_ns()
        ctx = _Ctx(f"{request.method} {spec.path}", spec.purpose, _correlation_id(request))
        status, reason, retry_after = 200, "", None
        payload = b""
        try:
            body = await read_body(request, self.config.max_body_bytes, Refused)
            if spec.auth:
                caller = await self._authenticate(request, spec, body)
                ctx.caller = caller.name
                wait = self._caller_buckets.take(caller.caller_id, started / 1e9)
                if wait:
                    raise Refused(429, f"rate limit of caller {caller.name}", retry_after_s=wait)
            payload = await self._dispatch(spec, body, ctx)
        except Refused as refused:
            status, reason, retry_after = refused.status, refused.reason, refused.retry_after_s
        except Exception as exc:  # the server never dies of a request; the bug is logged and audited
            self._log.error("signer_internal_error", endpoint=ctx.endpoint, error=type(exc).__name__,
                            correlation_id=ctx.correlation_id)  # fmt: skip
            status, reason = 500, "internal error"
        latency_us = (self._clock.monotonic_ns() - started) // 1000
        entry = AuditEntry(
            ts_ms=self._clock.now_ms(),
            caller=ctx.caller,
            endpoint=ctx.endpoint,
            purpose=ctx.purpose,
            digest=ctx.digest,
            key_address=ctx.key_address,
            notional_usdc_micro=ctx.notional_usdc_micro,
            decision="allowed" if status == 200 else "refused",
            status=status,
            reason=reason,
            latency_us=latency_us,
            correlation_id=ctx.correlation_id,
        )
        try:
            assert self._audit is not None, "start() opens the audit log"
            await self._audit.append(entry)
        except AuditUnavailable as exc:
            self._log.error("signer_audit_unavailable", error=str(exc), correlation_id=ctx.correlation_id)
            return _error(503, "audit log unavailable; nothing was signed", ctx.correlation_id)
        self._log.info(
            "signer_request", endpoint=ctx.endpoint, caller=ctx.caller, decision=entry.decision,
            status=status, reason=reason, digest=ctx.digest, key_address=ctx.key_address,
            latency_us=latency_us, correlation_id=ctx.correlation_id,
        )  # fmt: skip
        if status != 200:
            return _error(status, reason, ctx.correlation_id, retry_after)
        return Response(payload, 200, {CORRELATION_HEADER: ctx.correlation_id}, media_type=_JSON)

    async def refuse_unrouted(self, request: Request, status: int) -> Response:
        """404/405: audited like any refusal (a probe of the server is worth a row)."""
        spec = _Spec(request.url.path[:200], request.method[:16], "other", "", None, schemas.ErrorBody, "")
        with contextlib.suppress(Refused):
            await read_body(request, self.config.max_body_bytes, Refused)
        started = self._clock.monotonic_ns()
        ctx = _Ctx(f"{spec.method} {spec.path}", "other", _correlation_id(request))
        reason = "no such route" if status == 404 else f"method {spec.method} not allowed here"
        entry = AuditEntry(
            ts_ms=self._clock.now_ms(), caller="", endpoint=ctx.endpoint, purpose="other", digest="",
            key_address="", notional_usdc_micro=0, decision="refused", status=status, reason=reason,
            latency_us=(self._clock.monotonic_ns() - started) // 1000, correlation_id=ctx.correlation_id,
        )  # fmt: skip
        try:
            assert self._audit is not None, "start() opens the audit log"
            await self._audit.append(entry)
        except AuditUnavailable as exc:
            self._log.error("signer_audit_unavailable", error=str(exc), correlation_id=ctx.correlation_id)
            return _error(503, "audit log unavailable", ctx.correlation_id)
        self._log.info("signer_request", endpoint=entry.endpoint, caller="", decision="refused",
                       status=status, reason=reason, correlation_id=ctx.correlation_id)  # fmt: skip
        return _error(status, reason, ctx.correlation_id)

    async def _caller(self, caller_id: str) -> Caller:
        assert self._callers_db is not None, "start() opens the callers connection"
        caller = await lookup_caller(self._callers_db, caller_id)
        if caller is None:
            raise Refused(401, "unknown caller")
        if caller.revoked:
            raise Refused(401, f"caller {caller.name} is revoked")
        return caller

    async def _authenticate(self, request: Request, spec: _Spec, body: bytes) -> Caller:
        headers = request.headers
        if spec.auth == "bearer":
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise Refused(401, "missing credential: send Authorization: Bearer <caller credential>")
            credential = parse_credential(token.strip())
            caller = await self._caller(credential.caller_id)
            check_bearer(caller, credential)
            return caller
        caller_id = headers.get(CALLER_HEADER)
        if caller_id is None:
            raise Refused(401, f"missing {CALLER_HEADER}")
        timestamp_s = parse_timestamp(headers.get(TIMESTAMP_HEADER))
        nonce = parse_nonce(headers.get(NONCE_HEADER))
        presented = headers.get(SIGNATURE_HEADER)
        if presented is None:
            raise Refused(401, f"missing {SIGNATURE_HEADER}")
        if len(caller_id) != 16 or not caller_id.isascii():
            raise Refused(401, "unknown caller")
        caller = await self._caller(caller_id)
        now_s = self._clock.now_ms() // 1000
        skew = self.config.max_clock_skew_s
        if abs(now_s - timestamp_s) > skew:
            raise Refused(
                401, f"stale timestamp: {timestamp_s} is more than {skew} s from the server's {now_s}"
            )
        check_engine_signature(caller, request.method, spec.path, timestamp_s, nonce, body, presented)
        self._nonces.check_and_remember(caller.caller_id, nonce, now_s)
        return caller

    async def _dispatch(self, spec: _Spec, body: bytes, ctx: _Ctx) -> bytes:
        if spec.purpose == "builder_headers":
            return self._builder_headers(_decode(body, schemas.BuilderHeadersRequest), ctx)
        if spec.purpose == "order":
            return self._order(_decode(body, schemas.OrderSignRequest), ctx)
        if spec.purpose == "safe_tx":
            return self._safe_tx(_decode(body, schemas.SafeTxSignRequest), ctx)
        if spec.purpose == "safe_create":
            return self._safe_create(_decode(body, schemas.SafeCreateSignRequest), ctx)
        if spec.purpose == "health":
            keys = len(self.keys.addresses())
            return _ENCODER.encode(schemas.Health("ok", keys, self._builder is not None))
        return _ENCODER.encode(openapi_document())

    # -- routes -----------------------------------------------------------------------------------
    def _builder_headers(self, req: schemas.BuilderHeadersRequest, ctx: _Ctx) -> bytes:
        if self._builder is None:
            raise Refused(503, "builder credentials are not configured on this server")
        if not req.method.isupper():
            # the SDKs sign the method as given and we sign it upper-case: refuse rather than differ
            raise Refused(400, f"method must be upper-case, got {req.method!r}")
        now_s = self._clock.now_ms() // 1000
        timestamp_s = req.timestamp if req.timestamp is not None else now_s
        skew = self.config.max_clock_skew_s
        if abs(timestamp_s - now_s) > skew:
            # headers signed for a far time would outlive this caller's revocation
            raise Refused(400, f"timestamp is more than {skew} s from the server's clock")
        body = req.body or ""
        ctx.digest = "0x" + hashlib.sha256(f"{timestamp_s}{req.method}{req.path}{body}".encode()).hexdigest()
        headers = self._builder.headers(timestamp_s, req.method, req.path, body)
        return _ENCODER.encode(schemas.BuilderHeaders(**headers))

    def _policy_chain(self, chain_id: int) -> None:
        if chain_id not in self.config.policy.chain_ids:
            raise Refused(403, f"chain id {chain_id} is not allowed by the policy")

    def _key(self, address: str, ctx: _Ctx) -> DigestSigner:
        key = self.keys.signer(address)
        if key is None:
            raise Refused(403, f"no managed key for {address}")
        ctx.key_address = key.address
        wait = self._key_buckets.take(key.address, self._clock.monotonic_ns() / 1e9)
        if wait:
            raise Refused(429, f"rate limit of key {key.address}", retry_after_s=wait)
        return key

    def _order(self, req: schemas.OrderSignRequest, ctx: _Ctx) -> bytes:
        policy = self.config.policy
        self._policy_chain(req.chain_id)
        try:
            contracts = exchange_contracts(req.chain_id)
        except ValueError:
            raise Refused(403, f"chain id {req.chain_id} has no CLOB exchange") from None
        exchange = contracts.neg_risk_exchange_v2 if req.neg_risk else contracts.exchange_v2
        if exchange.lower() not in policy.verifying_contracts:
            raise Refused(403, f"exchange {exchange} is not an allowed verifying contract")
        maker = req.maker if req.maker is not None else req.signer
        if maker.lower() not in policy.makers:
            raise Refused(403, f"order maker {maker} is not allowed by the policy")
        key = self._key(req.signer, ctx)
        signer = self._order_signer(key, req)
        side = Side.BUY if req.side == "BUY" else Side.SELL
        try:
            signed = signer.sign(
                req.token_id, side, int(req.maker_amount), int(req.taker_amount), neg_risk=req.neg_risk,
                salt=req.salt, timestamp_ms=req.timestamp_ms, expiration_s=req.expiration_s,
            )  # fmt: skip
        except ValueError as exc:
            raise Refused(400, f"invalid order: {str(exc)[:160]}") from None
        ctx.digest = signed.order_hash
        # the USDC side of the order: what a BUY pays, what a SELL receives
        notional = int(req.maker_amount) if side is Side.BUY else int(req.taker_amount)
        ctx.notional_usdc_micro = notional
        now_ms = self._clock.now_ms()
        breach = self._daily.check(key.address, signed.order_hash, notional, now_ms)
        if breach is not None:
            ctx.notional_usdc_micro = 0
            raise Refused(403, breach)
        # counted before the audit row is written: a failed audit over-counts, never under-counts
        self._daily.commit(key.address, signed.order_hash, notional, now_ms)
        return _ENCODER.encode(schemas.OrderSignature(**msgspec.structs.asdict(signed)))

    def _order_signer(self, key: DigestSigner, req: schemas.OrderSignRequest) -> OrderSigner:
        cache_key = (key.address, req.chain_id, req.signature_type, req.maker, req.builder_code.lower())
        signer = self._order_signers.get(cache_key)
        if signer is None:
            try:
                signer = OrderSigner(
                    key, req.chain_id, signature_type=SignatureType(req.signature_type), funder=req.maker,
                    builder_code=req.builder_code,
                )  # fmt: skip
            except ValueError as exc:
                raise Refused(400, f"invalid order: {str(exc)[:160]}") from None
            if len(self._order_signers) >= _ORDER_SIGNERS_MAX:
                self._order_signers.clear()
            self._order_signers[cache_key] = signer
        return signer

    def _safe_tx(self, req: schemas.SafeTxSignRequest, ctx: _Ctx) -> bytes:
        self._policy_chain(req.chain_id)
        if req.safe.lower() not in self.config.policy.safes:
            raise Refused(403, f"Safe {req.safe} is not allowed by the policy")
        tx = SafeTransaction(
            safe=req.safe,
            call=SafeCall(req.to, _uint256(req.value, "value"), bytes.fromhex(req.data[2:]), req.operation),
            safe_tx_gas=_uint256(req.safe_tx_gas, "safe_tx_gas"), base_gas=_uint256(req.base_gas, "base_gas"),
            gas_price=_uint256(req.gas_price, "gas_price"), gas_token=req.gas_token,
            refund_receiver=req.refund_receiver,
        )  # fmt: skip
        nonce = _uint256(req.nonce, "nonce")
        why = safe_call_refusal(self.config.policy, tx)
        if why is not None:
            raise Refused(403, f"Safe transaction refused by the policy: {why}")
        key = self._key(req.signer, ctx)
        call = tx.call
        digest = safe_tx_digest(
            req.chain_id, req.safe, to=call.to, value=call.value, data=call.data, operation=call.operation,
            safe_tx_gas=tx.safe_tx_gas, base_gas=tx.base_gas, gas_price=tx.gas_price, gas_token=tx.gas_token,
            refund_receiver=tx.refund_receiver, nonce=nonce,
        )  # fmt: skip
        ctx.digest = "0x" + digest.hex()
        signature = key.sign_order_digest(eth_signed_message_hash(digest))
        # Safe 1.3 reads v > 30 as an eth_sign signature (RELAYER.md 3.3)
        packed = signature[:64] + bytes([signature[64] + 4])
        return _ENCODER.encode(schemas.Signature(ctx.digest, "0x" + packed.hex(), req.safe))

    def _safe_create(self, req: schemas.SafeCreateSignRequest, ctx: _Ctx) -> bytes:
        self._policy_chain(req.chain_id)
        if SAFE_FACTORY.lower() not in self.config.policy.verifying_contracts:
            raise Refused(403, f"Safe factory {SAFE_FACTORY} is not an allowed verifying contract")
        safe = derive_safe(req.signer)
        if safe.lower() not in self.config.policy.safes:
            raise Refused(403, f"Safe {safe} of {req.signer} is not allowed by the policy")
        payment = _uint256(req.payment, "payment")
        if (
            payment
            or req.payment_token.lower() != ZERO_ADDRESS
            or req.payment_receiver.lower() != ZERO_ADDRESS
        ):
            # the factory would pay it out of whatever already sits at the Safe's address (RELAYER.md 3.6)
            raise Refused(403, "Safe creation refused by the policy: the new Safe may pay nothing")
        key = self._key(req.signer, ctx)
        digest = create_proxy_digest(
            req.chain_id,
            payment_token=req.payment_token,
            payment=payment,
            payment_receiver=req.payment_receiver,
        )
        ctx.digest = "0x" + digest.hex()
        signature = key.sign_order_digest(digest)
        return _ENCODER.encode(schemas.Signature(ctx.digest, "0x" + signature.hex(), safe))


_SECURITY: Final[dict[str, list[dict[str, list[str]]]]] = {
    "bearer": [{"callerBearer": []}],
    "hmac": [{"callerId": [], "timestamp": [], "nonce": [], "requestSignature": []}],
}


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 of every route, its body schema, responses and credentials."""
    structs = [s.request for s in _ROUTES if s.request is not None] + [s.response for s in _ROUTES]
    _, components = msgspec.json.schema_components(
        sorted(set(structs), key=lambda t: t.__name__), ref_template="#/components/schemas/{name}"
    )

    def ref(kind: type[msgspec.Struct]) -> dict[str, Any]:
        return {"content": {_JSON: {"schema": {"$ref": f"#/components/schemas/{kind.__name__}"}}}}

    error = {"description": "refused, with the reason", **ref(schemas.ErrorBody)}
    paths: dict[str, Any] = {}
    for spec in _ROUTES:
        op: dict[str, Any] = {
            "summary": spec.summary,
            "operationId": spec.purpose,
            "responses": {"200": {"description": "done", **ref(spec.response)}},
        }
        if spec.path == "/openapi.json":
            op["responses"]["200"] = {"description": "this document", "content": {_JSON: {}}}
        if spec.request is not None:
            op["requestBody"] = {"required": True, **ref(spec.request)}
            for code in ("400", "413"):
                op["responses"][code] = error
        if spec.auth:
            op["security"] = _SECURITY[spec.auth]
            for code in ("401", "403", "429", "503"):
                op["responses"][code] = error
        paths[spec.path] = {spec.method.lower(): op}
    return {
        "openapi": "3.1.0",
        "info": {"title": "polysnipe signing server", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "callerBearer": {"type": "http", "scheme": "bearer", "description": "psk.<id>.<secret>"},
                "callerId": {"type": "apiKey", "in": "header", "name": CALLER_HEADER},
                "timestamp": {"type": "apiKey", "in": "header", "name": TIMESTAMP_HEADER},
                "nonce": {"type": "apiKey", "in": "header", "name": NONCE_HEADER},
                "requestSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": SIGNATURE_HEADER,
                    "description": "base64url HMAC-SHA256, key sha256(secret), over "
                    "METHOD\\npath\\ntimestamp\\nnonce\\nbody",
                },
            },
        },
    }


def create_app(service: SignerService, *, manage_lifespan: bool = True) -> Starlette:
    """The ASGI app. With `manage_lifespan`, the server's lifespan opens and closes the service."""

    def endpoint(spec: _Spec) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            return await service.handle(request, spec)

        return run

    async def not_found(request: Request, exc: Exception) -> Response:
        return await service.refuse_unrouted(request, int(getattr(exc, "status_code", 404)))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if manage_lifespan:
            await service.start()
        try:
            yield
        finally:
            if manage_lifespan:
                await service.close()

    routes = [Route(s.path, endpoint(s), methods=[s.method]) for s in _ROUTES]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found}, lifespan=lifespan)
    # a path with a trailing slash is an unknown route (audited), not a redirect built from the
    # caller's Host header
    app.router.redirect_slashes = False
    return app
