"""The market and user WebSocket channels (PROTOCOL 10).

`Channels` decides what is sent: a watched token keeps the last book its watchers were shown (the
engine's merged view); after each change the difference goes out as one `price_change` with entries
for every watched token of the market, and after a trade as `last_trade_price` and a full `book`.
Users get their orders' PLACEMENT / UPDATE / CANCELLATION and every trade they are a side of, at
each settlement step. Messages queue here, synchronously, until `Hub.dispatch` drains them.

`Hub` owns the sockets: one queue and one pump task per connection, so a slow client never blocks
the venue; market sockets get the messages of the tokens they subscribed to, user sockets those of
their user (optionally only some condition ids).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from polysnipe.adapters.sim.clob import render
from polysnipe.adapters.sim.clob.accounts import ApiKey
from polysnipe.adapters.sim.clob.config import Faults
from polysnipe.adapters.sim.clob.errors import VenueError
from polysnipe.adapters.sim.clob.market import MarketData
from polysnipe.adapters.sim.clob.records import SimOrder, SimTrade
from polysnipe.adapters.sim.clob.wire import decode_json
from polysnipe.adapters.sim.venue import BookView
from polysnipe.core.events import LastTrade, Side, TickSizeChange
from polysnipe.core.market import Market

__all__ = ["Channels", "Hub", "MarketOut", "UserOut"]

#: (the tokens a message concerns, the message)
MarketOut = tuple[tuple[str, ...], dict[str, Any]]
#: (user, condition id, the message)
UserOut = tuple[str, str, dict[str, Any]]
#: sent only to subscribers that set `custom_feature_enabled` (PROTOCOL 10.1)
_CUSTOM_FEATURES = frozenset({"best_bid_ask", "new_market", "market_resolved"})


class Channels:
    """What the channels send, queued (see module doc)."""

    __slots__ = ("_market", "_market_out", "_shown", "_user_out", "_watch_count")

    def __init__(self, market: MarketData) -> None:
        self._market = market
        self._watch_count: dict[str, int] = {}
        self._shown: dict[str, BookView] = {}
        self._market_out: list[MarketOut] = []
        self._user_out: list[UserOut] = []

    # -- market channel ------------------------------------------------------------------------
    def watch(self, token_ids: Iterable[str]) -> list[dict[str, Any]]:
        """A subscriber wants these tokens: returns their `book` messages (listed tokens only)."""
        out = []
        for token in token_ids:
            if token not in self._market.registry:
                continue
            self._watch_count[token] = self._watch_count.get(token, 0) + 1
            view = self._market.view(token)
            self._shown[token] = view
            out.append({"event_type": "book", **self._market.book_json(token, view)})
        return out

    def unwatch(self, token_ids: Iterable[str]) -> None:
        for token in token_ids:
            n = self._watch_count.get(token, 0) - 1
            if n > 0:
                self._watch_count[token] = n
            elif n == 0:
                del self._watch_count[token]
                self._shown.pop(token, None)

    def publish(self, market: Market, now_ms: int, *, traded: bool) -> None:
        """Tell watchers how the market's books changed: `book` after trades, else `price_change`."""
        entries: list[dict[str, Any]] = []
        tokens: list[str] = []
        for token in market.token_ids:
            shown = self._shown.get(token)
            if shown is None:
                continue
            view = self._market.view(token)
            if (view.bids, view.asks) == (shown.bids, shown.asks):
                continue
            self._shown[token] = view
            book = self._market.book_json(token, view)
            if traded:
                self._market_out.append(((token,), {"event_type": "book", **book}))
                continue
            best_bid, best_ask = view.best_bid(), view.best_ask()
            tokens.append(token)
            for side, now_levels, old_levels in (
                (Side.BUY, view.bids, shown.bids),
                (Side.SELL, view.asks, shown.asks),
            ):
                for price in sorted(now_levels.keys() | old_levels.keys()):
                    size = now_levels.get(price, 0)
                    if size != old_levels.get(price, 0):
                        entries.append(
                            {
                                "asset_id": token,
                                "price": render.fmt(price),
                                "size": render.fmt(size),
                                "side": render.side_name(side),
                                "hash": book["hash"],
                                "best_bid": render.fmt(best_bid) if best_bid is not None else "",
                                "best_ask": render.fmt(best_ask) if best_ask is not None else "",
                            }
                        )
        if entries:
            self._market_out.append(
                (
                    tuple(tokens),
                    {
                        "event_type": "price_change",
                        "market": market.condition_id,
                        "timestamp": str(now_ms),
                        "price_changes": entries,
                    },
                )
            )

    def replayed_print(self, event: LastTrade, market: Market) -> None:
        if event.token_id in self._shown:
            self._market_out.append(
                (
                    (event.token_id,),
                    {
                        "event_type": "last_trade_price",
                        "asset_id": event.token_id,
                        "market": market.condition_id,
                        "price": render.fmt(event.price),
                        "side": render.side_name(event.side),
                        "size": render.fmt(event.size),
                        "fee_rate_bps": str(event.fee_rate_bps),
                        "timestamp": str(event.ts_ms),
                    },
                )
            )

    def tick_size_change(self, event: TickSizeChange, market: Market) -> None:
        for token in market.token_ids:
            if token in self._shown:
                self._market_out.append(
                    (
                        (token,),
                        {
                            "event_type": "tick_size_change",
                            "asset_id": token,
                            "market": market.condition_id,
                            "old_tick_size": render.fmt(event.old_tick),
                            "new_tick_size": render.fmt(event.new_tick),
                            "timestamp": str(event.ts_ms),
                        },
                    )
                )

    def resolved(self, market: Market, winning_token: str, market_id: str, now_ms: int) -> None:
        """`market_resolved`, with the fields of the recorded payload
        (data/polymarket/ws/nautilus_rs_ws_market_resolved_msg.json)."""
        self._market_out.append(
            (
                market.token_ids,
                {
                    "event_type": "market_resolved",
                    "id": market_id,
                    "market": market.condition_id,
                    "assets_ids": list(market.token_ids),
                    "winning_asset_id": winning_token,
                    "winning_outcome": market.outcome_of(winning_token),
                    "timestamp": str(now_ms),
                    "tags": [],
                },
            )
        )

    # -- user channel --------------------------------------------------------------------------
    def order(self, order: SimOrder, kind: str, now_ms: int) -> None:
        self._user_out.append(
            (order.user, order.market.condition_id, render.order_message(order, kind, now_ms))
        )

    def trade(self, trade: SimTrade, now_ms: int) -> None:
        """Every side's user hears of the trade; a fresh venue-taken trade also prints on the market."""
        for user in trade.users():
            self._user_out.append(
                (user, trade.market.condition_id, render.trade_message(trade, user, now_ms))
            )
        taken = trade.taken
        # replayed flow's own prints come with the replayed feed (replayed_print)
        if trade.status == "MATCHED" and trade.taker is not None and taken.token_id in self._shown:
            self._market_out.append(
                (
                    (taken.token_id,),
                    {
                        "event_type": "last_trade_price",
                        "asset_id": taken.token_id,
                        "market": trade.market.condition_id,
                        "price": render.fmt(taken.price),
                        "side": render.side_name(taken.side),
                        "size": render.fmt(taken.size),
                        "fee_rate_bps": str(trade.market.fee_rate // 100),
                        "timestamp": str(now_ms),
                        "transaction_hash": trade.tx_hash,
                    },
                )
            )

    # -- draining ------------------------------------------------------------------------------
    def drain_market(self) -> list[MarketOut]:
        out, self._market_out = self._market_out, []
        return out

    def drain_user(self) -> list[UserOut]:
        out, self._user_out = self._user_out, []
        return out


class _Conn:
    """One WebSocket client: its queue of frames to send and what it listens to."""

    __slots__ = ("assets", "custom", "markets", "queue", "user", "ws")

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        #: None closes the socket (a dropped connection)
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.assets: set[str] = set()
        #: the subscriber asked for the custom-feature messages (market_resolved among them)
        self.custom = False
        self.user = ""
        self.markets: set[str] = set()

    def send(self, obj: Any) -> None:
        self.queue.put_nowait(render.encode(obj).decode())

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


class Hub:
    """The connected sockets of both channels (see module doc)."""

    __slots__ = ("_authenticate", "_channels", "_faults", "_market", "market_conns", "user_conns")

    def __init__(
        self,
        channels: Channels,
        market: MarketData,
        authenticate: Callable[[object], ApiKey | None],
        faults: Callable[[], Faults],
    ) -> None:
        self._channels = channels
        self._market = market
        self._authenticate = authenticate
        self._faults = faults
        self.market_conns: set[_Conn] = set()
        self.user_conns: set[_Conn] = set()

    def dispatch(self) -> None:
        """Move every queued channel message to the sockets that listen for it."""
        for assets, msg in self._channels.drain_market():
            for conn in self.market_conns:
                if conn.assets.isdisjoint(assets):
                    continue
                if msg["event_type"] in _CUSTOM_FEATURES and not conn.custom:
                    continue
                if msg["event_type"] == "price_change":
                    entries = [e for e in msg["price_changes"] if e["asset_id"] in conn.assets]
                    conn.send({**msg, "price_changes": entries})
                else:
                    conn.send(msg)
        for user, condition_id, msg in self._channels.drain_user():
            for conn in self.user_conns:
                if conn.user == user and (not conn.markets or condition_id in conn.markets):
                    conn.send(msg)

    def summary(self) -> dict[str, Any]:
        """The subscriptions GET /_sim/state reports: what a test waits on instead of sleeping until
        a client has subscribed. A socket counts once it has subscribed to a listed asset (market)
        or authenticated (user); connected but silent, it does not."""
        market = [c for c in self.market_conns if c.assets]
        assets: set[str] = set()
        for conn in market:
            assets |= conn.assets
        return {
            "market": len(market),
            "user": sum(1 for c in self.user_conns if c.user),
            "market_assets": sorted(assets),
        }

    def drop_all(self) -> None:
        for conn in (*self.market_conns, *self.user_conns):
            conn.queue.put_nowait(None)

    async def serve_market(self, ws: WebSocket) -> None:
        await self._serve(ws, self.market_conns, self._on_market_frame)

    async def serve_user(self, ws: WebSocket) -> None:
        await self._serve(ws, self.user_conns, self._on_user_frame)

    async def _serve(
        self, ws: WebSocket, conns: set[_Conn], on_frame: Callable[[_Conn, dict[str, Any]], bool]
    ) -> None:
        if self._faults().drop_ws:
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
                try:
                    frame = decode_json(text.encode())
                except VenueError:
                    continue  # not JSON: the venue ignores it, the socket lives on
                if isinstance(frame, dict) and not on_frame(conn, frame):
                    conn.queue.put_nowait(None)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            conns.discard(conn)
            self._channels.unwatch(conn.assets)
            conn.assets.clear()
            pump.cancel()

    def _on_market_frame(self, conn: _Conn, frame: dict[str, Any]) -> bool:
        ids = frame.get("assets_ids")
        ids = [a for a in ids if isinstance(a, str)] if isinstance(ids, list) else []
        if frame.get("operation") == "unsubscribe":
            gone = [a for a in ids if a in conn.assets]
            conn.assets.difference_update(gone)
            self._channels.unwatch(gone)
            return True
        kind = frame.get("type")
        if frame.get("operation") == "subscribe" or (isinstance(kind, str) and kind.lower() == "market"):
            if "custom_feature_enabled" in frame:
                conn.custom = frame["custom_feature_enabled"] is True
            self.dispatch()  # everything already published reaches listeners before the new books
            new = [a for a in dict.fromkeys(ids) if a not in conn.assets and a in self._market.registry]
            conn.assets.update(new)
            books = self._channels.watch(new)
            if books and frame.get("initial_dump", True) is not False:
                conn.send(books)
        return True

    def _on_user_frame(self, conn: _Conn, frame: dict[str, Any]) -> bool:
        markets = frame.get("markets")
        markets = {m for m in markets if isinstance(m, str)} if isinstance(markets, list) else set()
        if not conn.user:
            creds = self._authenticate(frame.get("auth"))
            if creds is None:
                return False
            conn.user = creds.address
            conn.markets = markets
        elif frame.get("operation") == "unsubscribe":
            conn.markets.difference_update(markets)
        elif frame.get("operation") == "subscribe":
            conn.markets.update(markets)
        return True
