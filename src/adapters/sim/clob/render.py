"""Every JSON shape the simulated venue returns, built from its records: orders, trades (REST and user
channel), books (with the hash the official client reproduces), order responses, cancel results,
pages with cursors, market documents, and error responses. Pure functions; nothing here holds state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import msgspec
from starlette.responses import Response

from polysnipe.adapters.clob.signing import keccak256
from polysnipe.adapters.sim.clob.errors import ERRORS, VenueError
from polysnipe.adapters.sim.clob.records import Placement, SimOrder, SimTrade
from polysnipe.adapters.sim.venue import BookView, buy_cost, sell_proceeds
from polysnipe.core.events import Side
from polysnipe.core.market import Market
from polysnipe.core.units import format_micro

__all__ = [
    "END_CURSOR",
    "INITIAL_CURSOR",
    "balance_json",
    "book_json",
    "cancel_json",
    "encode",
    "error_response",
    "fmt",
    "json_response",
    "market_document",
    "number",
    "order_json",
    "order_message",
    "order_response",
    "page",
    "side_name",
    "trade_json",
    "trade_message",
]

INITIAL_CURSOR: Final = "MA=="
END_CURSOR: Final = "LTE="
_SIDE_NAMES: Final = ("BUY", "SELL")
#: the allowance the simulator grants every exchange: the uint256 maximum, as approvals usually are
_UNLIMITED: Final = str((1 << 256) - 1)
#: Decimal renders as a JSON number: tick sizes and prices the venue sends as numbers stay exact
_encoder = msgspec.json.Encoder(decimal_format="number")


# -- values --------------------------------------------------------------------------------------
def fmt(value: int) -> str:
    return format_micro(value)


def number(micro: int) -> Decimal:
    """Micro-units as a JSON number (`0.01`, not `"0.01"`), for the fields the venue sends as numbers."""
    return Decimal(format_micro(micro))


def side_name(side: Side) -> str:
    return _SIDE_NAMES[side]


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


# -- HTTP ----------------------------------------------------------------------------------------
def json_response(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(encode(obj), status_code=status, media_type="application/json", headers=headers)


def error_response(exc: VenueError) -> Response:
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
    return json_response(exc.body, exc.status, headers)


# -- orders --------------------------------------------------------------------------------------
def order_json(order: SimOrder) -> dict[str, Any]:
    return {
        "id": order.id,
        "status": order.status,
        "owner": order.owner,
        "maker_address": order.maker,
        "market": order.market.condition_id,
        "asset_id": order.token_id,
        "side": side_name(order.side),
        "original_size": fmt(order.original_size),
        "size_matched": fmt(order.size_matched),
        "price": fmt(order.price),
        "outcome": order.market.outcome_of(order.token_id),
        "expiration": str(order.expiration_s),
        "order_type": order.order_type.value,
        "associate_trades": list(order.trade_ids),
        "created_at": order.created_ms // 1000,
    }


def order_message(order: SimOrder, kind: str, now_ms: int) -> dict[str, Any]:
    """A user-channel `order` message: PLACEMENT | UPDATE | CANCELLATION (PROTOCOL 10.3)."""
    return {
        **order_json(order),
        "event_type": "order",
        "type": kind,
        "order_owner": order.owner,
        "timestamp": str(now_ms),
        "created_at": str(order.created_ms // 1000),
    }


def order_response(placement: Placement) -> dict[str, Any]:
    """The POST /order answer (PROTOCOL 5.3); making/taking are what the order's own trades moved."""
    order = placement.order
    if order is None:
        return {
            "success": False,
            "errorMsg": placement.error,
            "orderID": placement.order_hash,
            "status": "",
            "makingAmount": "",
            "takingAmount": "",
            "tradeIDs": [],
        }
    making = taking = 0
    for trade in placement.trades:
        mine = trade.taken
        if mine.side is Side.BUY:
            making += buy_cost(mine.price, mine.size)
            taking += mine.size - mine.fee_shares
        else:
            making += mine.size
            taking += sell_proceeds(mine.price, mine.size) - mine.fee_usdc
    matched = bool(placement.trades)
    return {
        "success": True,
        "errorMsg": "",
        "orderID": order.id,
        "status": "matched" if matched else "live",
        "makingAmount": fmt(making) if matched else "",
        "takingAmount": fmt(taking) if matched else "",
        "tradeIDs": [t.id for t in placement.trades],
    }


def balance_json(balance: int, spenders: Sequence[str]) -> dict[str, Any]:
    """GET /balance-allowance: the balance in micro-units and each exchange's allowance."""
    return {"balance": str(balance), "allowances": dict.fromkeys(spenders, _UNLIMITED)}


def cancel_json(canceled: Sequence[str], not_canceled: Mapping[str, str]) -> dict[str, Any]:
    return {"canceled": list(canceled), "not_canceled": dict(not_canceled)}


# -- trades --------------------------------------------------------------------------------------
def _outside_order_id(trade: SimTrade) -> str:
    # replayed flow has no order; a stable stand-in keeps taker_order_id a 0x + 64-hex id
    return "0x" + keccak256(b"taker:" + trade.id.encode()).hex()


def trade_json(trade: SimTrade, user: str) -> dict[str, Any]:
    """A trade as `user` sees it (GET /data/trades): trader_side TAKER or MAKER, owner = their key.

    The top-level asset, side, price and size are the taker's; `maker_orders` lists every venue order
    it met, each in its own terms, so a MINT or MERGE shows the other outcome's orders there.
    """
    taker, taken = trade.taker, trade.taken
    market = trade.market
    mine = [o for o, _ in trade.makers if o.user == user]
    is_taker = taker is not None and taker.user == user
    viewer_key = taker.owner if is_taker and taker is not None else (mine[0].owner if mine else "")
    return {
        "id": trade.id,
        "taker_order_id": taker.id if taker is not None else _outside_order_id(trade),
        "market": market.condition_id,
        "asset_id": taken.token_id,
        "side": side_name(taken.side),
        "size": fmt(taken.size),
        "fee_rate_bps": str(market.fee_rate // 100),
        "price": fmt(taken.price),
        "status": trade.status,
        "match_time": str(trade.match_ms // 1000),
        "last_update": str(trade.last_update_ms // 1000),
        "outcome": market.outcome_of(taken.token_id),
        "bucket_index": 0,
        "owner": viewer_key,
        "trade_owner": viewer_key,
        "maker_address": taker.maker if taker is not None else "",
        "transaction_hash": trade.tx_hash,
        "trader_side": "TAKER" if is_taker else "MAKER",
        "maker_orders": [
            {
                "order_id": o.id,
                "owner": o.owner,
                "maker_address": o.maker,
                "matched_amount": fmt(made.size),
                "price": fmt(made.price),
                "fee_rate_bps": "0",
                "asset_id": made.token_id,
                "outcome": market.outcome_of(made.token_id),
                "outcome_index": market.token_ids.index(made.token_id),
                "side": side_name(made.side),
            }
            for o, made in trade.makers
        ],
    }


def trade_message(trade: SimTrade, user: str, now_ms: int) -> dict[str, Any]:
    """A user-channel `trade` message (PROTOCOL 10.3)."""
    return {"event_type": "trade", "type": "TRADE", **trade_json(trade, user), "timestamp": str(now_ms)}


# -- books ---------------------------------------------------------------------------------------
def _book_hash(summary: Mapping[str, Any]) -> str:
    # The server hashes the compact summary with "hash" blank; py-clob-client-v2's
    # generate_orderbook_summary_hash reproduces it, so clients can validate our books.
    return hashlib.sha1(
        json.dumps({**summary, "hash": ""}, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def book_json(market: Market, view: BookView, last_trade: int | None, now_ms: int) -> dict[str, Any]:
    """GET /book: bids ascending and asks descending (best last), as the venue sends them."""
    bids, asks = view.bids, view.asks
    summary: dict[str, Any] = {
        "market": market.condition_id,
        "asset_id": view.token_id,
        "timestamp": str(now_ms),
        "hash": "",
        "bids": [{"price": fmt(p), "size": fmt(bids[p])} for p in sorted(bids)],
        "asks": [{"price": fmt(p), "size": fmt(asks[p])} for p in sorted(asks, reverse=True)],
        "min_order_size": fmt(market.min_order_size),
        "tick_size": fmt(view.tick_size),
        "neg_risk": market.neg_risk,
        "last_trade_price": fmt(last_trade) if last_trade is not None else "",
    }
    summary["hash"] = _book_hash(summary)
    return summary


# -- pages ---------------------------------------------------------------------------------------
def _cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.b64decode(cursor, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        raise VenueError(400, ERRORS["invalid_cursor"]) from None
    if not (0 < len(text) <= 18 and text.isdecimal()):
        raise VenueError(400, ERRORS["invalid_cursor"])
    return int(text)


def page(rows: Sequence[Any], cursor: str | None, size: int) -> dict[str, Any]:
    """One page of `rows` from a `next_cursor` (base64 of the offset; `LTE=` after the last)."""
    if cursor == END_CURSOR:
        return {"data": [], "next_cursor": END_CURSOR, "limit": size, "count": 0}
    start = _offset(cursor)
    end = start + size
    data = list(rows[start:end])
    return {
        "data": data,
        "next_cursor": _cursor(end) if end < len(rows) else END_CURSOR,
        "limit": size,
        "count": len(data),
    }


# -- markets -------------------------------------------------------------------------------------
def market_document(market: Market) -> dict[str, Any]:
    """A GET /markets object for a market known only as a domain Market (no recorded document)."""
    return {
        "enable_order_book": True,
        "active": True,
        "closed": False,
        "archived": False,
        "accepting_orders": True,
        "minimum_order_size": number(market.min_order_size),
        "minimum_tick_size": number(market.tick_size),
        "condition_id": market.condition_id,
        "question": market.question,
        "neg_risk": market.neg_risk,
        "neg_risk_market_id": market.neg_risk_market_id or "",
        "tokens": [
            {"token_id": t, "outcome": o, "price": 0, "winner": False}
            for t, o in zip(market.token_ids, market.outcomes, strict=True)
        ],
    }
