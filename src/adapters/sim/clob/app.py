"""The CLOB simulator's ASGI app: PROTOCOL.md's REST and WebSocket wire protocol over ClobSimState.

Theory of operation. Handlers are `async def` and never await between touching the state and
returning, so the one event loop serialises every mutation (no locks). After each request and each
ticker step the hub drains the channels' queues into per-connection queues (channels.py). The
ticker runs `state.tick()` (GTD expiries, heartbeat timeouts, trade settlement) every
`tick_interval_s`.

Hostile requests. A body larger than `ClobSimConfig.max_body_bytes` is answered 413 before the rest
of it is read (declared by Content-Length or found while reading). L2 credentials are checked over
the raw bytes before the body is decoded, so an unauthenticated request is never parsed, and every
body that is not JSON (malformed, or nested too deep to decode) is a 400 in the venue's error shape.
Only the bounded order log remembers requests.

Faults (`POST /_sim/faults`) act here, where the network is: latency before a call, injected error
statuses before the venue acts (with Retry-After), 425 on order endpoints while the engine
"restarts", dropped WebSockets, and lost answers: the venue carries out an order call and its answer
never arrives (a 5xx instead, or with `answer_lost_status` 0 a connection dropped mid-response; an
in-process ASGI transport cannot show a dropped connection, use a 5xx there). Error bodies are
`{"error": "<text>"}` (PROTOCOL 11.4).

Admin API under /_sim/ (never faulted): GET /_sim/orders (every order request received, with hash,
salt, owner, outcome, error), GET /_sim/state (keys, wallets, counts, faults, and `subscriptions`:
`{market, user, market_assets}`, the market sockets subscribed to at least one listed asset, the
authenticated user sockets, and the sorted asset ids the market channel serves), POST /_sim/faults
(replaces the fault set; `{}` clears it), POST /_sim/advance `{count?, until_ms?}` (paced replay),
POST /_sim/events (a market-channel frame to apply now), POST /_sim/resolve `{market, winning_asset_id}`
(the market resolves: `market_resolved` on the market channel, to subscribers that enabled custom
features). Gamma's GET /markets and GET /events are served under /gamma (sim/clob/gamma.py). With an
admin token, every admin call must carry `Authorization: Bearer <token>`; runners/sim_clob.py refuses
to expose the admin API beyond loopback without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from polysnipe.adapters.clob.config import exchange_contracts
from polysnipe.adapters.sim.clob import render
from polysnipe.adapters.sim.clob.accounts import ApiKey
from polysnipe.adapters.sim.clob.channels import Hub
from polysnipe.adapters.sim.clob.config import Faults
from polysnipe.adapters.sim.clob.errors import ERRORS, VenueError
from polysnipe.adapters.sim.clob.gamma import GAMMA_PREFIX
from polysnipe.adapters.sim.clob.guards import BodyLimit, fault_text, lost_answer
from polysnipe.adapters.sim.clob.orders import MAX_BATCH
from polysnipe.adapters.sim.clob.state import ClobSimState
from polysnipe.adapters.sim.clob.wire import decode_json, is_int
from polysnipe.core.events import Side
from polysnipe.core.units import format_micro

__all__ = ["create_app"]

_log = logging.getLogger(__name__)
_Handler = Callable[[Request], Awaitable[Response]]
#: POST /books (PROTOCOL 11.4 `Payload exceeds the limit`)
_MAX_BOOKS: Final = 500
_ORDER_PATHS: Final = frozenset({"/order", "/orders"})


class _Sim:
    """Routes, guards and ticker around one ClobSimState."""

    def __init__(self, state: ClobSimState, tick_interval_s: float, admin_token: str | None) -> None:
        self.state = state
        self.tick_interval_s = tick_interval_s
        self._admin_token = admin_token
        self.hub = Hub(state.channels, state.market, state.auth.ws, lambda: state.faults)
        contracts = exchange_contracts(state.config.chain_id)
        self._spenders = (contracts.exchange_v2, contracts.neg_risk_exchange_v2)

    @contextlib.asynccontextmanager
    async def lifespan(self, _: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(self._ticker())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval_s)
            try:
                self.state.tick()
                self.hub.dispatch()
            except Exception:  # a dead ticker would silently stop expiries and settlement
                _log.exception("clob simulator tick failed")

    # -- guards --------------------------------------------------------------------------------
    def guarded(self, handler: _Handler, *, orders: bool = False) -> _Handler:
        """Apply network faults, turn VenueError into the venue's error response, then dispatch.

        `orders` marks order endpoints: they get the engine-restart 425 and lost answers, and their
        refusals are written to the order log.
        """

        async def run(request: Request) -> Response:
            faults = self.state.faults
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            status = faults.injected_status()
            if not status and orders and faults.engine_restart:
                status = 425
            if status:
                fault = VenueError(status, fault_text(status), retry_after_s=faults.retry_after_s)
                if orders and request.method == "POST":
                    self.state.orders.log_refused(request.url.path, "fault", fault.message)
                return render.error_response(fault)
            lost = orders and faults.answer_lost()
            request.state.answer_lost = lost
            try:
                response = await handler(request)
            except VenueError as exc:
                response = render.error_response(exc)
            except Exception:  # a bug, never a hostile input: those are VenueErrors
                _log.exception("clob simulator request failed: %s %s", request.method, request.url.path)
                response = render.error_response(VenueError(500, ERRORS["internal"]))
            finally:
                self.hub.dispatch()
            return lost_answer(faults) if lost else response

        return run

    def admin(self, handler: _Handler) -> _Handler:
        """Admin calls: never faulted; with an admin token configured they must present it."""

        async def run(request: Request) -> Response:
            if self._admin_token is not None:
                given = request.headers.get("authorization", "").encode()
                if not hmac.compare_digest(given, f"Bearer {self._admin_token}".encode()):
                    return render.error_response(VenueError(401, ERRORS["admin_unauthorized"]))
            try:
                return await handler(request)
            except VenueError as exc:
                return render.error_response(exc)
            finally:
                self.hub.dispatch()

        return run

    def log_too_large(self, method: str, path: str) -> None:
        if method == "POST" and path in _ORDER_PATHS:
            self.state.orders.log_refused(path, "too_large", ERRORS["body_too_large"])

    async def _l2(self, request: Request) -> tuple[ApiKey, bytes]:
        body = await request.body()
        creds = self.state.auth.l2(request.headers, request.method, request.url.path, body)
        return creds, body

    def _trading_allowed(self, *, new_orders: bool) -> None:
        mode = self.state.faults.mode
        if mode == "disabled" or (new_orders and mode == "cancel_only"):
            raise VenueError(503, ERRORS[mode])

    def _token(self, request: Request, *, not_found: str = "no_orderbook") -> str:
        token = request.query_params.get("token_id", "")
        if not (token.isascii() and token.isdecimal()):
            raise VenueError(400, ERRORS["invalid_token"])
        if token not in self.state.registry:
            raise VenueError(404, ERRORS[not_found])
        return token

    # -- public market data --------------------------------------------------------------------
    async def ok(self, request: Request) -> Response:
        return PlainTextResponse("OK")

    async def server_time(self, request: Request) -> Response:
        return render.json_response(self.state.now_ms() // 1000)

    async def version(self, request: Request) -> Response:
        return render.json_response({"version": self.state.exchange_version()})

    async def markets(self, request: Request) -> Response:
        docs = [dict(d) for d in self.state.market.documents()]
        page = render.page(docs, request.query_params.get("next_cursor"), self.state.config.page_size)
        return render.json_response(page)

    async def market(self, request: Request) -> Response:
        doc = self.state.market.document(request.path_params["condition_id"])
        if doc is None:
            raise VenueError(404, ERRORS["market_not_found"])
        return render.json_response(doc)

    async def market_by_token(self, request: Request) -> Response:
        market = self.state.registry.get_by_token(request.path_params["token_id"])
        if market is None:
            raise VenueError(404, ERRORS["market_not_found"])
        return render.json_response(
            {
                "condition_id": market.condition_id,
                "primary_token_id": market.token_ids[0],
                "secondary_token_id": market.token_ids[1],
            }
        )

    async def clob_market(self, request: Request) -> Response:
        """Compact market info the V2 client caches: tokens, min tick, neg risk, fee details; the
        recorded answer when the metadata files held one."""
        condition_id = request.path_params["condition_id"]
        recorded = self.state.market.compact_document(condition_id)
        if recorded is not None:
            return render.json_response(recorded)
        market = self.state.market.market(condition_id)
        if market is None:
            raise VenueError(404, ERRORS["market_not_found"])
        info: dict[str, Any] = {
            "t": [{"t": t, "o": o} for t, o in zip(market.token_ids, market.outcomes, strict=True)],
            "mts": render.number(self.state.market.tick_size(market.token_ids[0])),
            "mos": render.number(market.min_order_size),
            "nr": market.neg_risk,
        }
        if market.fee_rate:
            info["fd"] = {"r": render.number(market.fee_rate), "e": market.fee_exponent}
        return render.json_response(info)

    async def gamma_markets(self, request: Request) -> Response:
        return render.json_response(self.state.gamma.markets(_multi(request)))

    async def gamma_events(self, request: Request) -> Response:
        return render.json_response(self.state.gamma.events(_multi(request)))

    async def book(self, request: Request) -> Response:
        return render.json_response(self.state.market.book_json(self._token(request)))

    async def books(self, request: Request) -> Response:
        items = decode_json(await request.body())
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise VenueError(400, ERRORS["invalid_payload"])
        if len(items) > _MAX_BOOKS:
            raise VenueError(400, ERRORS["batch_limit"])
        tokens = [t for t in (i.get("token_id") for i in items) if isinstance(t, str)]
        market = self.state.market
        return render.json_response([market.book_json(t) for t in tokens if t in self.state.registry])

    async def tick_size(self, request: Request) -> Response:
        token = self._token(request, not_found="market_not_found")
        return render.json_response({"minimum_tick_size": render.number(self.state.market.tick_size(token))})

    async def neg_risk(self, request: Request) -> Response:
        token = self._token(request, not_found="market_not_found")
        return render.json_response({"neg_risk": self.state.registry.by_token(token).neg_risk})

    async def fee_rate(self, request: Request) -> Response:
        token = self._token(request, not_found="market_not_found")
        return render.json_response({"base_fee": self.state.registry.by_token(token).fee_rate // 100})

    async def price(self, request: Request) -> Response:
        """Best bid for side=BUY, best ask for side=SELL (docs: get-market-price)."""
        token = self._token(request)
        side = {"BUY": Side.BUY, "SELL": Side.SELL}.get(request.query_params.get("side", "").upper())
        if side is None:
            raise VenueError(400, ERRORS["invalid_side"])
        best = self.state.market.best(token, side)
        if best is None:
            raise VenueError(404, ERRORS["no_orderbook"])
        return render.json_response({"price": render.number(best)})

    def _touch(self, token: str) -> tuple[int, int]:
        view = self.state.market.view(token)
        bid, ask = view.best_bid(), view.best_ask()
        if bid is None or ask is None:
            raise VenueError(404, ERRORS["no_orderbook"])
        return bid, ask

    async def midpoint(self, request: Request) -> Response:
        bid, ask = self._touch(self._token(request))
        mid = format_micro((bid + ask) // 2)
        # older docs and clients read "mid", the current reference page "mid_price"
        return render.json_response({"mid": mid, "mid_price": mid})

    async def spread(self, request: Request) -> Response:
        bid, ask = self._touch(self._token(request))
        return render.json_response({"spread": format_micro(ask - bid)})

    async def last_trade_price(self, request: Request) -> Response:
        last = self.state.market.last_trade_price(self._token(request))
        return render.json_response({"price": format_micro(last) if last is not None else ""})

    async def builder_fees(self, request: Request) -> Response:
        return render.json_response({"builder_maker_fee_rate_bps": 0, "builder_taker_fee_rate_bps": 0})

    # -- L1 ------------------------------------------------------------------------------------
    async def api_key(self, request: Request) -> Response:
        address, nonce = self.state.auth.l1(request.headers)
        creds = self.state.accounts.api_key_for(address, nonce)
        return render.json_response(
            {"apiKey": creds.key, "secret": creds.secret, "passphrase": creds.passphrase}
        )

    # -- L2: keys, balances, heartbeats ----------------------------------------------------------
    async def api_keys(self, request: Request) -> Response:
        creds, _ = await self._l2(request)
        return render.json_response({"apiKeys": self.state.accounts.api_keys_of(creds.address)})

    async def delete_api_key(self, request: Request) -> Response:
        creds, _ = await self._l2(request)
        self.state.accounts.delete_api_key(creds)
        return PlainTextResponse("OK")

    async def closed_only(self, request: Request) -> Response:
        await self._l2(request)
        return render.json_response({"closed_only": False})

    async def balance_allowance(self, request: Request) -> Response:
        """GET /balance-allowance: the wallet the signature type names for this user."""
        creds, _ = await self._l2(request)
        q = request.query_params
        sig_text = q.get("signature_type", "0")
        signature_type = int(sig_text) if sig_text in ("0", "1", "2", "3") else 0
        accounts = self.state.accounts
        wallet = accounts.funder_of(creds.address, signature_type)
        if q.get("asset_type", "COLLATERAL") == "CONDITIONAL":
            token = q.get("token_id", "")
            if token not in self.state.registry:
                raise VenueError(400, ERRORS["invalid_token"])
            balance = accounts.ledger.shares(wallet, token)
        else:
            balance = accounts.ledger.usdc(wallet)
        return render.json_response(render.balance_json(balance, self._spenders))

    async def heartbeat(self, request: Request) -> Response:
        creds, body = await self._l2(request)
        payload = decode_json(body)
        # `{"heartbeat_id": ""}` starts the chain (PROTOCOL 9); a body without the id is no heartbeat
        if not isinstance(payload, dict) or not isinstance(payload.get("heartbeat_id"), str):
            raise VenueError(400, ERRORS["invalid_payload"])
        return render.json_response(self.state.heartbeats.beat(creds, payload["heartbeat_id"]))

    async def legacy_heartbeat(self, request: Request) -> Response:
        creds, _ = await self._l2(request)
        return render.json_response(self.state.heartbeats.legacy(creds))

    # -- L2: orders ----------------------------------------------------------------------------
    async def _order_gate(self, request: Request, cost_of: Callable[[Any], int]) -> tuple[ApiKey, Any]:
        """Auth (over the raw bytes, before any decoding), decoding, rate limit and trading mode of
        POST /order(s); every refusal goes to the order log."""
        body = await request.body()
        path = request.url.path
        orders = self.state.orders
        try:
            creds = self.state.auth.l2(request.headers, request.method, path, body)
        except VenueError as exc:
            orders.log_refused(path, "unauthorized", exc.message)
            raise
        try:
            payload = decode_json(body, error=ERRORS["payload"])
        except VenueError as exc:
            orders.log_refused(path, "rejected", exc.message)
            raise
        cost = cost_of(payload)
        try:
            self.state.rates.check(creds, "order", cost)
            self._trading_allowed(new_orders=True)
        except VenueError as exc:
            orders.log_refused(
                path, "rate_limited" if exc.status == 429 else "rejected", exc.message, payload
            )
            raise
        self.state.rates.charge(creds, "order", cost)
        return creds, payload

    async def post_order(self, request: Request) -> Response:
        creds, payload = await self._order_gate(request, lambda _: 1)
        placement = self.state.orders.place(creds, payload, "/order", answer_lost=request.state.answer_lost)
        if placement.order is None:
            raise VenueError(placement.status, placement.error)
        return render.json_response(render.order_response(placement))

    async def post_orders(self, request: Request) -> Response:
        creds, payload = await self._order_gate(request, lambda p: len(p) if isinstance(p, list) else 1)
        orders = self.state.orders
        # a batch must be a list of order objects; what is wrong inside an object is that order's error
        if not isinstance(payload, list) or not payload or not all(isinstance(p, dict) for p in payload):
            orders.log_refused("/orders", "rejected", ERRORS["payload"], payload)
            raise VenueError(400, ERRORS["payload"])
        if len(payload) > MAX_BATCH:
            orders.log_refused("/orders", "rejected", ERRORS["batch_limit"], payload)
            raise VenueError(400, ERRORS["batch_limit"])
        lost = request.state.answer_lost
        return render.json_response(
            [render.order_response(orders.place(creds, p, "/orders", answer_lost=lost)) for p in payload]
        )

    async def _cancel_gate(self, request: Request) -> tuple[ApiKey, Any]:
        """Auth, then the body (decoded only now), then the trading mode; the caller charges."""
        creds, body = await self._l2(request)
        payload = decode_json(body)
        self._trading_allowed(new_orders=False)
        return creds, payload

    def _cancel(self, creds: ApiKey, order_ids: Sequence[str]) -> Response:
        self.state.rates.check(creds, "cancel", len(order_ids))
        self.state.rates.charge(creds, "cancel", len(order_ids))
        return render.json_response(render.cancel_json(*self.state.orders.cancel(creds.address, order_ids)))

    async def cancel_order(self, request: Request) -> Response:
        creds, payload = await self._cancel_gate(request)
        if not isinstance(payload, dict) or not isinstance(payload.get("orderID"), str):
            raise VenueError(400, ERRORS["invalid_order_id"])
        return self._cancel(creds, [payload["orderID"]])

    async def cancel_orders(self, request: Request) -> Response:
        creds, payload = await self._cancel_gate(request)
        if not (isinstance(payload, list) and payload and all(isinstance(i, str) for i in payload)):
            raise VenueError(400, ERRORS["invalid_order_id"])
        return self._cancel(creds, payload)

    def _cancel_where(self, creds: ApiKey, market: str = "", asset_id: str = "") -> Response:
        self.state.rates.check(creds, "cancel", 1)
        canceled, not_canceled = self.state.orders.cancel_where(creds.address, market, asset_id)
        self.state.rates.charge(creds, "cancel", 1 + len(canceled))
        return render.json_response(render.cancel_json(canceled, not_canceled))

    async def cancel_all(self, request: Request) -> Response:
        creds, _ = await self._l2(request)  # no body to read: cancel-all takes none
        self._trading_allowed(new_orders=False)
        return self._cancel_where(creds)

    async def cancel_market_orders(self, request: Request) -> Response:
        creds, payload = await self._cancel_gate(request)
        payload = {} if payload is None else payload
        # anything but {market?, asset_id?} is refused: a body misread as "no filter" cancels everything
        if not isinstance(payload, dict) or not payload.keys() <= {"market", "asset_id"}:
            raise VenueError(400, ERRORS["invalid_payload"])
        market, asset_id = payload.get("market", ""), payload.get("asset_id", "")
        if not (isinstance(market, str) and isinstance(asset_id, str)):
            raise VenueError(400, ERRORS["invalid_payload"])
        return self._cancel_where(creds, market, asset_id)

    async def open_orders(self, request: Request) -> Response:
        creds, _ = await self._l2(request)
        q = request.query_params
        live = self.state.orders.live_orders(
            creds.address, q.get("market", ""), q.get("asset_id", ""), q.get("id", "")
        )
        rows = [render.order_json(o) for o in live]
        return render.json_response(render.page(rows, q.get("next_cursor"), self.state.config.page_size))

    async def get_order(self, request: Request) -> Response:
        creds, _ = await self._l2(request)
        order = self.state.orders.order(creds.address, request.path_params["order_id"])
        return render.json_response(render.order_json(order))

    async def trades(self, request: Request) -> Response:
        creds, _ = await self._l2(request)
        q = request.query_params
        rows = [render.trade_json(t, creds.address) for t in self.state.orders.trades_of(creds.address, q)]
        return render.json_response(render.page(rows, q.get("next_cursor"), self.state.config.page_size))

    # -- WebSockets ----------------------------------------------------------------------------
    async def ws_market(self, ws: WebSocket) -> None:
        await self.hub.serve_market(ws)

    async def ws_user(self, ws: WebSocket) -> None:
        await self.hub.serve_user(ws)

    # -- admin ---------------------------------------------------------------------------------
    async def admin_orders(self, request: Request) -> Response:
        return render.json_response([entry.to_json() for entry in self.state.order_log])

    async def admin_state(self, request: Request) -> Response:
        return render.json_response({**self.state.summary(), "subscriptions": self.hub.summary()})

    async def admin_faults(self, request: Request) -> Response:
        try:
            body = await request.body()
            # an empty body clears the faults; anything else must be the faults object
            faults = Faults.from_json(decode_json(body) if body else {})
        except ValueError as exc:
            raise VenueError(400, str(exc)) from None
        self.state.faults = faults
        if faults.drop_ws:
            self.hub.drop_all()
        return render.json_response(faults.to_json())

    async def admin_advance(self, request: Request) -> Response:
        payload = decode_json(await request.body()) or {}
        if not (isinstance(payload, dict) and payload.keys() <= {"count", "until_ms"}):
            raise VenueError(400, "expected {count?: int, until_ms?: int}")
        limits = [payload.get(k) for k in ("count", "until_ms")]
        if not all(v is None or is_int(v) for v in limits):
            raise VenueError(400, "expected {count?: int, until_ms?: int}")
        count, until = (v if isinstance(v, int) else None for v in limits)
        applied = self.state.advance(count, until)
        return render.json_response({"applied": applied, "pending": self.state.pending_events})

    async def admin_resolve(self, request: Request) -> Response:
        payload = decode_json(await request.body())
        if not (
            isinstance(payload, dict)
            and payload.keys() == {"market", "winning_asset_id"}
            and all(isinstance(v, str) for v in payload.values())
        ):
            raise VenueError(400, "expected {market: condition id, winning_asset_id: token id}")
        self.state.resolve(payload["market"], payload["winning_asset_id"])
        return render.json_response(
            {"resolved": payload["market"], "winning_asset_id": payload["winning_asset_id"]}
        )

    async def admin_events(self, request: Request) -> Response:
        frame = decode_json(await request.body())
        applied = self.state.inject(frame if frame is not None else {})
        return render.json_response({"applied": applied})

    # -- routing -------------------------------------------------------------------------------
    def routes(self) -> Sequence[BaseRoute]:
        g = self.guarded
        public: list[tuple[str, _Handler, list[str]]] = [
            ("/ok", self.ok, ["GET"]),
            ("/time", self.server_time, ["GET"]),
            ("/version", self.version, ["GET"]),
            ("/markets", self.markets, ["GET"]),
            ("/markets/{condition_id}", self.market, ["GET"]),
            ("/markets-by-token/{token_id}", self.market_by_token, ["GET"]),
            ("/clob-markets/{condition_id}", self.clob_market, ["GET"]),
            ("/book", self.book, ["GET"]),
            ("/books", self.books, ["POST"]),
            ("/tick-size", self.tick_size, ["GET"]),
            ("/neg-risk", self.neg_risk, ["GET"]),
            ("/fee-rate", self.fee_rate, ["GET"]),
            ("/price", self.price, ["GET"]),
            ("/midpoint", self.midpoint, ["GET"]),
            ("/spread", self.spread, ["GET"]),
            ("/last-trade-price", self.last_trade_price, ["GET"]),
            ("/fees/builder-fees/{builder_code}", self.builder_fees, ["GET"]),
            ("/auth/api-key", self.api_key, ["POST"]),
            ("/auth/derive-api-key", self.api_key, ["GET"]),
            ("/auth/api-keys", self.api_keys, ["GET"]),
            ("/auth/ban-status/closed-only", self.closed_only, ["GET"]),
            ("/balance-allowance", self.balance_allowance, ["GET"]),
            ("/balance-allowance/update", self.balance_allowance, ["GET"]),
            ("/v1/heartbeats", self.heartbeat, ["POST"]),
            ("/heartbeats", self.legacy_heartbeat, ["POST"]),
            ("/data/orders", self.open_orders, ["GET"]),
            ("/data/order/{order_id}", self.get_order, ["GET"]),
            ("/data/trades", self.trades, ["GET"]),
            (GAMMA_PREFIX + "/markets", self.gamma_markets, ["GET"]),
            (GAMMA_PREFIX + "/events", self.gamma_events, ["GET"]),
        ]
        routes: list[BaseRoute] = [Route(path, g(h), methods=m) for path, h, m in public]
        a = self.admin
        routes += [
            Route("/auth/api-key", g(self.delete_api_key), methods=["DELETE"]),
            Route("/order", g(self.post_order, orders=True), methods=["POST"]),
            Route("/order", g(self.cancel_order, orders=True), methods=["DELETE"]),
            Route("/orders", g(self.post_orders, orders=True), methods=["POST"]),
            Route("/orders", g(self.cancel_orders, orders=True), methods=["DELETE"]),
            Route("/cancel-all", g(self.cancel_all, orders=True), methods=["DELETE"]),
            Route("/cancel-market-orders", g(self.cancel_market_orders, orders=True), methods=["DELETE"]),
            WebSocketRoute("/ws/market", self.ws_market),
            WebSocketRoute("/ws/user", self.ws_user),
            Route("/_sim/orders", a(self.admin_orders), methods=["GET"]),
            Route("/_sim/state", a(self.admin_state), methods=["GET"]),
            Route("/_sim/faults", a(self.admin_faults), methods=["POST"]),
            Route("/_sim/advance", a(self.admin_advance), methods=["POST"]),
            Route("/_sim/events", a(self.admin_events), methods=["POST"]),
            Route("/_sim/resolve", a(self.admin_resolve), methods=["POST"]),
        ]
        return routes


def _multi(request: Request) -> dict[str, list[str]]:
    """The query as {key: every value given}: Gamma repeats a key to name several ids."""
    q = request.query_params
    return {key: q.getlist(key) for key in q}


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in the venue's error shape too."""
    assert isinstance(exc, HTTPException)
    return render.json_response({"error": exc.detail}, exc.status_code, exc.headers)


def create_app(
    state: ClobSimState, *, tick_interval_s: float = 0.05, admin_token: str | None = None
) -> ASGIApp:
    """The simulator as an ASGI app; run it with uvicorn (runners/sim_clob.py) or a TestClient.

    `admin_token`: when set, the /_sim/ admin API requires it as a bearer token.
    """
    sim = _Sim(state, tick_interval_s, admin_token)
    app = Starlette(
        routes=list(sim.routes()), lifespan=sim.lifespan, exception_handlers={HTTPException: _http_error}
    )
    # a trailing slash is an unknown path (404, the venue's JSON), not a redirect built from the
    # caller's Host header that a client would follow with its order
    app.router.redirect_slashes = False
    return BodyLimit(app, state.config.max_body_bytes, sim.log_too_large)
