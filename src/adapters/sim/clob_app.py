"""The CLOB simulator's ASGI app: PROTOCOL.md's REST and WebSocket wire protocol over ClobSimState.

Theory of operation. Handlers are `async def` and never await between touching the state and
returning, so the one event loop serialises every mutation (no locks). After each request and each
ticker step the hub drains the state's outboxes into per-connection queues; a pump task per socket
writes them out, so a slow client never blocks the venue. The ticker runs `state.tick()` (GTD
expiries, heartbeat timeouts, trade settlement) every `tick_interval_s`.

Faults (`POST /_sim/faults`) act here, where the network is: latency before a call, injected error
statuses (with Retry-After), 425 on order endpoints while the engine "restarts", dropped WebSockets.
Admin calls under /_sim/ are never faulted. Error bodies are `{"error": "<text>"}` (PROTOCOL 11.4).

Admin API: GET /_sim/orders (every order request received, with hash, salt, owner, outcome, error),
GET /_sim/state (keys, wallets, counts, faults), POST /_sim/faults (replaces the fault set; `{}` clears
it), POST /_sim/advance `{count?, until_ms?}` (paced replay), POST /_sim/events (a market-channel frame
to apply now, e.g. a `book` to build liquidity).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from polysnipe.adapters.sim.clob_state import ERRORS, ApiKey, ClobSimState, Faults, VenueError
from polysnipe.core.events import Side
from polysnipe.core.units import format_micro

__all__ = ["create_app"]

_log = logging.getLogger(__name__)
#: Decimal renders as a JSON number: tick sizes and prices the venue sends as numbers stay exact
_encoder = msgspec.json.Encoder(decimal_format="number")
_MAX_BATCH = 15  # POST /orders (PROTOCOL 5.2)

_Handler = Callable[[Request], Awaitable[Response]]


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encoder.encode(obj), status_code=status, media_type="application/json", headers=headers)


def _error(exc: VenueError) -> Response:
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
    return _json(exc.body, exc.status, headers)


def _decode(body: bytes) -> Any:
    """The JSON body, or None when it is empty or not JSON (the endpoint decides what that means)."""
    if not body:
        return None
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None


def _number(micro: int) -> Decimal:
    return Decimal(format_micro(micro))


class _Conn:
    """One WebSocket client: its queue of frames to send and what it listens to."""

    __slots__ = ("assets", "markets", "queue", "user", "ws")

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        #: None closes the socket (a dropped connection)
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.assets: set[str] = set()
        self.user = ""
        self.markets: set[str] = set()

    def send(self, obj: Any) -> None:
        self.queue.put_nowait(_encoder.encode(obj).decode())

    async def pump(self) -> None:
        try:
            while True:
                text = await self.queue.get()
                if text is None:
                    await self.ws.close(code=1011)
                    return
                await self.ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client went away; the receive loop cleans up


class _Sim:
    """Routes, hub and ticker around one ClobSimState."""

    def __init__(self, state: ClobSimState, tick_interval_s: float) -> None:
        self.state = state
        self.tick_interval_s = tick_interval_s
        self.market_conns: set[_Conn] = set()
        self.user_conns: set[_Conn] = set()

    # -- hub -----------------------------------------------------------------------------------
    def dispatch(self) -> None:
        for assets, msg in self.state.drain_market():
            for conn in self.market_conns:
                if conn.assets.isdisjoint(assets):
                    continue
                if msg["event_type"] == "price_change":
                    entries = [e for e in msg["price_changes"] if e["asset_id"] in conn.assets]
                    conn.send({**msg, "price_changes": entries})
                else:
                    conn.send(msg)
        for user, condition_id, msg in self.state.drain_user():
            for conn in self.user_conns:
                if conn.user == user and (not conn.markets or condition_id in conn.markets):
                    conn.send(msg)

    def drop_all(self) -> None:
        for conn in (*self.market_conns, *self.user_conns):
            conn.queue.put_nowait(None)

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
                self.dispatch()
            except Exception:  # a dead ticker would silently stop expiries and settlement
                _log.exception("clob simulator tick failed")

    # -- guards --------------------------------------------------------------------------------
    def guarded(self, handler: _Handler, *, orders: bool = False) -> _Handler:
        """Apply network faults, turn VenueError into the venue's error response, then dispatch.

        `orders` marks order endpoints: they get the engine-restart 425 and their refusals are
        written to the order log.
        """

        async def run(request: Request) -> Response:
            faults = self.state.faults
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            status = faults.injected_status()
            if not status and orders and faults.engine_restart:
                status = 425
            if status:
                fault = VenueError(status, _fault_text(status), retry_after_s=faults.retry_after_s)
                if orders and request.method == "POST":
                    self._log_refused(request, await request.body(), "fault", fault.message)
                return _error(fault)
            try:
                return await handler(request)
            except VenueError as exc:
                return _error(exc)
            finally:
                self.dispatch()

        return run

    def _log_refused(self, request: Request, body: bytes, outcome: str, error: str) -> None:
        payload = _decode(body)
        items = payload if request.url.path == "/orders" and isinstance(payload, list) else [payload]
        for item in items:
            self.state.log_request(request.url.path, item, outcome, error)

    async def _l2(self, request: Request) -> tuple[ApiKey, bytes]:
        body = await request.body()
        creds = self.state.authenticate_l2(request.headers, request.method, request.url.path, body)
        return creds, body

    def _trading_allowed(self, *, new_orders: bool) -> None:
        mode = self.state.faults.mode
        if mode == "disabled" or (new_orders and mode == "cancel_only"):
            raise VenueError(503, ERRORS[mode])

    def _token(self, request: Request, *, not_found: str = "no_orderbook") -> str:
        token = request.query_params.get("token_id", "")
        if not (token.isascii() and token.isdecimal()):
            raise VenueError(400, "Invalid token id")
        if token not in self.state.registry:
            raise VenueError(404, ERRORS[not_found])
        return token

    # -- public market data --------------------------------------------------------------------
    async def ok(self, request: Request) -> Response:
        return PlainTextResponse("OK")

    async def server_time(self, request: Request) -> Response:
        return _json(self.state.now_ms() // 1000)

    async def version(self, request: Request) -> Response:
        return _json({"version": self.state.exchange_version()})

    async def markets(self, request: Request) -> Response:
        return _json(self.state.markets_page(request.query_params.get("next_cursor")))

    async def market(self, request: Request) -> Response:
        condition_id = request.path_params["condition_id"]
        for doc in self.state.market_documents():
            if doc.get("condition_id") == condition_id:
                return _json(doc)
        raise VenueError(404, ERRORS["market_not_found"])

    async def market_by_token(self, request: Request) -> Response:
        market = self.state.registry.get_by_token(request.path_params["token_id"])
        if market is None:
            raise VenueError(404, ERRORS["market_not_found"])
        return _json(
            {
                "condition_id": market.condition_id,
                "primary_token_id": market.token_ids[0],
                "secondary_token_id": market.token_ids[1],
            }
        )

    async def clob_market(self, request: Request) -> Response:
        """Compact market info the V2 client caches: tokens, min tick, neg risk, fee details."""
        condition_id = request.path_params["condition_id"]
        market = next((m for m in self.state.registry if m.condition_id == condition_id), None)
        if market is None:
            raise VenueError(404, ERRORS["market_not_found"])
        info: dict[str, Any] = {
            "t": [{"t": t, "o": o} for t, o in zip(market.token_ids, market.outcomes, strict=True)],
            "mts": _number(self.state.tick_size(market.token_ids[0])),
            "mos": _number(market.min_order_size),
            "nr": market.neg_risk,
        }
        if market.fee_rate:
            info["fd"] = {"r": _number(market.fee_rate), "e": market.fee_exponent}
        return _json(info)

    async def book(self, request: Request) -> Response:
        return _json(self.state.book_json(self._token(request)))

    async def books(self, request: Request) -> Response:
        items = _decode(await request.body())
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise VenueError(400, "Invalid payload")
        if len(items) > 500:
            raise VenueError(400, "Payload exceeds the limit")
        tokens = [str(i.get("token_id", "")) for i in items]
        return _json([self.state.book_json(t) for t in tokens if t in self.state.registry])

    async def tick_size(self, request: Request) -> Response:
        token = self._token(request, not_found="market_not_found")
        return _json({"minimum_tick_size": _number(self.state.tick_size(token))})

    async def neg_risk(self, request: Request) -> Response:
        token = self._token(request, not_found="market_not_found")
        return _json({"neg_risk": self.state.registry.by_token(token).neg_risk})

    async def fee_rate(self, request: Request) -> Response:
        token = self._token(request, not_found="market_not_found")
        return _json({"base_fee": self.state.registry.by_token(token).fee_rate // 100})

    async def price(self, request: Request) -> Response:
        """Best bid for side=BUY, best ask for side=SELL (docs: get-market-price)."""
        token = self._token(request)
        side = {"BUY": Side.BUY, "SELL": Side.SELL}.get(request.query_params.get("side", "").upper())
        if side is None:
            raise VenueError(400, "Invalid side")
        best = self.state.best(token, side)
        if best is None:
            raise VenueError(404, ERRORS["no_orderbook"])
        return _json({"price": _number(best)})

    async def midpoint(self, request: Request) -> Response:
        token = self._token(request)
        bid, ask = self.state.best(token, Side.BUY), self.state.best(token, Side.SELL)
        if bid is None or ask is None:
            raise VenueError(404, ERRORS["no_orderbook"])
        mid = format_micro((bid + ask) // 2)
        # older docs and clients read "mid", the current reference page "mid_price"
        return _json({"mid": mid, "mid_price": mid})

    async def spread(self, request: Request) -> Response:
        token = self._token(request)
        bid, ask = self.state.best(token, Side.BUY), self.state.best(token, Side.SELL)
        if bid is None or ask is None:
            raise VenueError(404, ERRORS["no_orderbook"])
        return _json({"spread": format_micro(ask - bid)})

    async def last_trade_price(self, request: Request) -> Response:
        last = self.state.last_trade_price(self._token(request))
        return _json({"price": format_micro(last) if last is not None else ""})

    async def builder_fees(self, request: Request) -> Response:
        return _json({"builder_maker_fee_rate_bps": 0, "builder_taker_fee_rate_bps": 0})

    # -- L1 ------------------------------------------------------------------------------------
    async def api_key(self, request: Request) -> Response:
        address, nonce = self.state.authenticate_l1(request.headers)
        creds = self.state.api_key_for(address, nonce)
        return _json({"apiKey": creds.key, "secret": creds.secret, "passphrase": creds.passphrase})

    # -- L2: keys, balances, heartbeats ----------------------------------------------------------
    async def api_keys(self, request: Request) -> Response:
        creds, _ = await self._l2(request)
        return _json({"apiKeys": self.state.api_keys_of(creds.address)})

    async def delete_api_key(self, request: Request) -> Response:
        creds, _ = await self._l2(request)
        self.state.delete_api_key(creds)
        return PlainTextResponse("OK")

    async def closed_only(self, request: Request) -> Response:
        await self._l2(request)
        return _json({"closed_only": False})

    async def balance_allowance(self, request: Request) -> Response:
        creds, _ = await self._l2(request)
        q = request.query_params
        return _json(
            self.state.balance_allowance(
                creds, q.get("asset_type", "COLLATERAL"), q.get("token_id", ""), q.get("signature_type", "0")
            )
        )

    async def heartbeat(self, request: Request) -> Response:
        creds, body = await self._l2(request)
        payload = _decode(body)
        if not isinstance(payload, dict) or not isinstance(payload.get("heartbeat_id", ""), str):
            raise VenueError(400, "Invalid payload")
        return _json(self.state.heartbeat(creds, payload.get("heartbeat_id", "")))

    async def legacy_heartbeat(self, request: Request) -> Response:
        creds, _ = await self._l2(request)
        return _json(self.state.legacy_heartbeat(creds))

    # -- L2: orders ----------------------------------------------------------------------------
    async def _order_gate(self, request: Request, cost_of: Callable[[Any], int]) -> tuple[ApiKey, Any]:
        """Auth, rate limit and trading mode of POST /order(s); every refusal goes to the order log."""
        body = await request.body()
        payload = _decode(body)
        try:
            creds = self.state.authenticate_l2(request.headers, request.method, request.url.path, body)
        except VenueError as exc:
            self._log_refused(request, body, "unauthorized", exc.message)
            raise
        cost = cost_of(payload)
        try:
            self.state.check_rate(creds, "order", cost)
            self._trading_allowed(new_orders=True)
        except VenueError as exc:
            self._log_refused(request, body, "rate_limited" if exc.status == 429 else "rejected", exc.message)
            raise
        self.state.charge(creds, "order", cost)
        return creds, payload

    async def post_order(self, request: Request) -> Response:
        creds, payload = await self._order_gate(request, lambda _: 1)
        return _json(self.state.place_order(creds, payload))

    async def post_orders(self, request: Request) -> Response:
        creds, payload = await self._order_gate(request, lambda p: len(p) if isinstance(p, list) else 1)
        if not isinstance(payload, list) or not payload:
            self._log_refused(request, await request.body(), "rejected", ERRORS["payload"])
            raise VenueError(400, ERRORS["payload"])
        if len(payload) > _MAX_BATCH:
            self._log_refused(request, await request.body(), "rejected", ERRORS["batch_limit"])
            raise VenueError(400, ERRORS["batch_limit"])
        return _json(self.state.place_orders(creds, payload))

    async def _cancel_gate(self, request: Request, cost: int) -> tuple[ApiKey, Any]:
        creds, body = await self._l2(request)
        self.state.check_rate(creds, "cancel", cost)
        self._trading_allowed(new_orders=False)
        return creds, _decode(body)

    async def cancel_order(self, request: Request) -> Response:
        creds, payload = await self._cancel_gate(request, 1)
        if not isinstance(payload, dict) or not isinstance(payload.get("orderID"), str):
            raise VenueError(400, "Invalid orderID")
        self.state.charge(creds, "cancel", 1)
        return _json(self.state.cancel(creds, [payload["orderID"]]))

    async def cancel_orders(self, request: Request) -> Response:
        body = _decode(await request.body())
        ids = body if isinstance(body, list) and all(isinstance(i, str) for i in body) else None
        creds, _ = await self._cancel_gate(request, len(ids) if ids else 1)
        if not ids:
            raise VenueError(400, "Invalid orderID")
        self.state.charge(creds, "cancel", len(ids))
        return _json(self.state.cancel(creds, ids))

    async def cancel_all(self, request: Request) -> Response:
        creds, _ = await self._cancel_gate(request, 1)
        result = self.state.cancel_where(creds)
        self.state.charge(creds, "cancel", 1 + len(result["canceled"]))
        return _json(result)

    async def cancel_market_orders(self, request: Request) -> Response:
        creds, payload = await self._cancel_gate(request, 1)
        payload = payload if isinstance(payload, dict) else {}
        market, asset_id = str(payload.get("market", "")), str(payload.get("asset_id", ""))
        result = self.state.cancel_where(creds, market, asset_id)
        self.state.charge(creds, "cancel", 1 + len(result["canceled"]))
        return _json(result)

    async def open_orders(self, request: Request) -> Response:
        creds, _ = await self._l2(request)
        q = request.query_params
        return _json(
            self.state.open_orders_page(
                creds,
                market=q.get("market", ""),
                asset_id=q.get("asset_id", ""),
                order_id=q.get("id", ""),
                cursor=q.get("next_cursor"),
            )
        )

    async def get_order(self, request: Request) -> Response:
        creds, _ = await self._l2(request)
        return _json(self.state.get_order(creds, request.path_params["order_id"]))

    async def trades(self, request: Request) -> Response:
        creds, _ = await self._l2(request)
        return _json(self.state.trades_page(creds, dict(request.query_params)))

    # -- WebSockets ----------------------------------------------------------------------------
    async def ws_market(self, ws: WebSocket) -> None:
        await self._serve_ws(ws, self.market_conns, self._on_market_frame)

    async def ws_user(self, ws: WebSocket) -> None:
        await self._serve_ws(ws, self.user_conns, self._on_user_frame)

    async def _serve_ws(
        self, ws: WebSocket, conns: set[_Conn], on_frame: Callable[[_Conn, dict[str, Any]], bool]
    ) -> None:
        if self.state.faults.drop_ws:
            await ws.close(code=1013)  # before accept: the handshake is refused
            return
        await ws.accept()
        conn = _Conn(ws)
        conns.add(conn)
        pump = asyncio.create_task(conn.pump())
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    continue
                if text == "PING":
                    conn.queue.put_nowait("PONG")
                    continue
                frame = _decode(text.encode())
                if isinstance(frame, dict) and not on_frame(conn, frame):
                    conn.queue.put_nowait(None)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            conns.discard(conn)
            self.state.unwatch(conn.assets)
            conn.assets.clear()
            pump.cancel()

    def _on_market_frame(self, conn: _Conn, frame: dict[str, Any]) -> bool:
        ids = frame.get("assets_ids")
        ids = [str(a) for a in ids] if isinstance(ids, list) else []
        if frame.get("operation") == "unsubscribe":
            gone = [a for a in ids if a in conn.assets]
            conn.assets.difference_update(gone)
            self.state.unwatch(gone)
            return True
        if frame.get("operation") == "subscribe" or str(frame.get("type", "")).lower() == "market":
            self.dispatch()  # everything already published reaches listeners before the new books
            new = [a for a in dict.fromkeys(ids) if a not in conn.assets and a in self.state.registry]
            conn.assets.update(new)
            books = self.state.watch(new)
            if books and frame.get("initial_dump", True) is not False:
                conn.send(books)
        return True

    def _on_user_frame(self, conn: _Conn, frame: dict[str, Any]) -> bool:
        markets = frame.get("markets")
        markets = {str(m) for m in markets} if isinstance(markets, list) else set()
        if not conn.user:
            creds = self.state.authenticate_ws(frame.get("auth"))
            if creds is None:
                return False
            conn.user = creds.address
            conn.markets = markets
        elif frame.get("operation") == "unsubscribe":
            conn.markets.difference_update(markets)
        elif frame.get("operation") == "subscribe":
            conn.markets.update(markets)
        return True

    # -- admin ---------------------------------------------------------------------------------
    async def admin_orders(self, request: Request) -> Response:
        return _json([entry.to_json() for entry in self.state.order_log])

    async def admin_state(self, request: Request) -> Response:
        return _json(self.state.summary())

    async def admin_faults(self, request: Request) -> Response:
        try:
            faults = Faults.from_json(_decode(await request.body()) or {})
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        self.state.faults = faults
        if faults.drop_ws:
            self.drop_all()
        return _json(faults.to_json())

    async def admin_advance(self, request: Request) -> Response:
        payload = _decode(await request.body()) or {}
        limits = [payload.get(k) for k in ("count", "until_ms")] if isinstance(payload, dict) else ["?"]
        if not all(v is None or isinstance(v, int) for v in limits):
            return _json({"error": "expected {count?: int, until_ms?: int}"}, 400)
        count, until = (v if isinstance(v, int) else None for v in limits)
        applied = self.state.advance(count, until)
        self.dispatch()
        return _json({"applied": applied, "pending": self.state.pending_events})

    async def admin_events(self, request: Request) -> Response:
        frame = _decode(await request.body())
        try:
            applied = self.state.inject(frame if frame is not None else {})
        except VenueError as exc:
            return _error(exc)
        finally:
            self.dispatch()
        return _json({"applied": applied})

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
        ]
        routes: list[BaseRoute] = [Route(path, g(h), methods=m) for path, h, m in public]
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
            Route("/_sim/orders", self.admin_orders, methods=["GET"]),
            Route("/_sim/state", self.admin_state, methods=["GET"]),
            Route("/_sim/faults", self.admin_faults, methods=["POST"]),
            Route("/_sim/advance", self.admin_advance, methods=["POST"]),
            Route("/_sim/events", self.admin_events, methods=["POST"]),
        ]
        return routes


def _fault_text(status: int) -> str:
    if status == 429:
        return ERRORS["rate_limited"]
    if status == 425:
        return ERRORS["restarting"]
    return ERRORS["internal"]


def create_app(state: ClobSimState, *, tick_interval_s: float = 0.05) -> Starlette:
    """The simulator as an ASGI app; run it with uvicorn (runners/sim_clob.py) or a TestClient."""
    sim = _Sim(state, tick_interval_s)
    return Starlette(routes=list(sim.routes()), lifespan=sim.lifespan)
