"""Pure mapping from CLOB wire payloads (and our external-signal lines) to core events and markets.

Theory of operation: a frame (one object or a JSON array of objects) decodes in one msgspec pass
into `WireMessage` Structs. Each message's `event_type`, or when a recording omits it the fields it
carries, selects a handler that turns decimal strings into micro-units and builds core events. Every
failure, from bad JSON to a seventh decimal, surfaces as `MalformedMessage` with a reason that names
the message type and the offending value, so file readers can count it and move on.

Events carry the venue's timestamp. The receive time (`ts_recv_ms`) only stands in when a message
has no timestamp at all; with neither, the message is malformed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

import msgspec
from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.schemas import WireMarket, WireMessage
from polysnipe.core.events import (
    BookDelta,
    BookSnapshot,
    Event,
    ExternalSignal,
    LastTrade,
    Level,
    PriceChange,
    Side,
    TickSizeChange,
)
from polysnipe.core.market import VALID_TICKS, Market
from polysnipe.core.units import ONE, parse_micro

__all__ = [
    "EXTERNAL_SIGNAL",
    "IGNORED_EVENT_TYPES",
    "parse_market_line",
    "parse_market_message",
    "parse_markets",
]

#: `event_type` of our own external-signal lines (docs/external-signals.md)
EXTERNAL_SIGNAL = "external_signal"
#: venue messages that decode fine but map to no event: best bid/ask already ride on every
#: price_change entry, and markets are loaded from REST, not discovered from the stream
IGNORED_EVENT_TYPES = frozenset({"best_bid_ask", "new_market", "market_resolved"})

_Frame = WireMessage | list[WireMessage]
_frame_decoder = msgspec.json.Decoder(_Frame)
_markets_doc_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw] | list[WireMarket])
_market_list_decoder = msgspec.json.Decoder(list[WireMarket])
_market_decoder = msgspec.json.Decoder(WireMarket)

_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}
_DIRECTIONS = {"up": 1, "down": -1}


# -- decimal fields ------------------------------------------------------------------------------
# Prices repeat constantly (a few thousand distinct ticks at most) and sizes often (every delta has
# a mirror delta on the complement token with the same size string), so bounded C-level caches turn
# most parses into one dict hit, ~7x cheaper than parse_micro. A ValueError is never cached, so bad
# input always raises.
@lru_cache(maxsize=16_384)
def _price(text: str) -> int:
    value = parse_micro(text)
    if not 0 <= value <= ONE:
        raise ValueError(f"price outside [0, 1]: {text!r}")
    return value


@lru_cache(maxsize=65_536)
def _size(text: str) -> int:
    value = parse_micro(text)
    if value < 0:
        raise ValueError(f"negative size: {text!r}")
    return value


def _opt_price(text: str | None) -> int | None:
    """An optional price field; "" counts as absent, as the venue spells "none" that way."""
    return _price(text) if text else None


def _tick(text: str) -> int:
    value = parse_micro(text)
    if value not in VALID_TICKS:
        raise ValueError(f"not a venue tick size: {text!r}")
    return value


def _ts(msg: WireMessage, ts_recv_ms: int | None) -> int:
    t = msg.timestamp
    if t is None:
        if ts_recv_ms is None:
            raise ValueError("missing timestamp")
        return ts_recv_ms
    if isinstance(t, int):
        return t
    if not t.isdigit():
        raise ValueError(f"timestamp is not epoch ms: {t!r}")
    return int(t)


def _req(value: str | None, name: str) -> str:
    if value is None:
        raise ValueError(f"missing {name}")
    return value


# -- handlers, one per event_type -----------------------------------------------------------------
def _book(msg: WireMessage, ts_recv_ms: int | None) -> list[Event]:
    bids, asks = msg.bids, msg.asks
    if bids is None or asks is None:
        raise ValueError("missing bids or asks")
    price, size = _price, _size
    return [
        BookSnapshot(
            _ts(msg, ts_recv_ms),
            _req(msg.asset_id, "asset_id"),
            _req(msg.market, "market"),
            tuple([Level(price(lv.price), size(lv.size)) for lv in bids]),
            tuple([Level(price(lv.price), size(lv.size)) for lv in asks]),
            msg.hash or "",
            _tick(msg.tick_size) if msg.tick_size else None,
        )
    ]


def _price_change(msg: WireMessage, ts_recv_ms: int | None) -> list[Event]:
    ts = _ts(msg, ts_recv_ms)
    market = _req(msg.market, "market")
    price, size, sides = _price, _size, _SIDES
    deltas: tuple[BookDelta, ...]
    if msg.price_changes is not None:
        deltas = tuple(
            [
                BookDelta(
                    e.asset_id,
                    sides[e.side],
                    price(e.price),
                    size(e.size),
                    e.hash,
                    price(e.best_bid) if e.best_bid else None,
                    price(e.best_ask) if e.best_ask else None,
                )
                for e in msg.price_changes
            ]
        )
    elif msg.changes is not None:
        # 2024 batch form: the one top-level hash describes the book after the whole batch, so
        # only the last delta may claim it.
        token = _req(msg.asset_id, "asset_id")
        last = len(msg.changes) - 1
        book_hash = msg.hash or ""
        deltas = tuple(
            [
                BookDelta(token, sides[c.side], price(c.price), size(c.size), book_hash if i == last else "")
                for i, c in enumerate(msg.changes)
            ]
        )
    elif msg.price is not None:
        if msg.side is None:
            raise ValueError("missing side")
        deltas = (
            BookDelta(
                _req(msg.asset_id, "asset_id"),
                sides[msg.side],
                price(msg.price),
                size(_req(msg.size, "size")),
                msg.hash or "",
            ),
        )
    else:
        raise ValueError("none of price_changes, changes or price")
    return [PriceChange(ts, market, deltas)] if deltas else []


def _tick_size_change(msg: WireMessage, ts_recv_ms: int | None) -> list[Event]:
    return [
        TickSizeChange(
            _ts(msg, ts_recv_ms),
            _req(msg.asset_id, "asset_id"),
            _req(msg.market, "market"),
            _tick(_req(msg.old_tick_size, "old_tick_size")),
            _tick(_req(msg.new_tick_size, "new_tick_size")),
        )
    ]


def _last_trade(msg: WireMessage, ts_recv_ms: int | None) -> list[Event]:
    if msg.side is None:
        raise ValueError("missing side")
    fee = msg.fee_rate_bps
    if fee is None or fee == "":
        fee_bps = 0
    elif isinstance(fee, int):
        fee_bps = fee
    elif fee.isdigit():
        fee_bps = int(fee)
    else:
        raise ValueError(f"fee_rate_bps is not an integer: {fee!r}")
    return [
        LastTrade(
            _ts(msg, ts_recv_ms),
            _req(msg.asset_id, "asset_id"),
            _req(msg.market, "market"),
            _price(_req(msg.price, "price")),
            _size(_req(msg.size, "size")),
            _SIDES[msg.side],
            fee_bps,
        )
    ]


def _external_signal(msg: WireMessage, ts_recv_ms: int | None) -> list[Event]:
    if msg.direction is None:
        raise ValueError("missing direction")
    confidence = msg.confidence
    if confidence is None or not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence must be within [0, 1], got {confidence!r}")
    ttl_ms = msg.ttl_ms
    if ttl_ms is None or ttl_ms <= 0:
        raise ValueError(f"ttl_ms must be a positive integer, got {ttl_ms!r}")
    if not msg.source:
        raise ValueError("missing source")
    return [
        ExternalSignal(
            _ts(msg, ts_recv_ms),
            _req(msg.asset_id, "asset_id"),
            msg.source,
            _DIRECTIONS[msg.direction],
            float(confidence),
            ttl_ms,
            _opt_price(msg.fair_price),
            msg.ref or "",
        )
    ]


def _no_event(msg: WireMessage, ts_recv_ms: int | None) -> list[Event]:
    return []


_Handler = Callable[[WireMessage, int | None], list[Event]]
_HANDLERS: dict[str, _Handler] = {
    "book": _book,
    "price_change": _price_change,
    "tick_size_change": _tick_size_change,
    "last_trade_price": _last_trade,
    EXTERNAL_SIGNAL: _external_signal,
    **dict.fromkeys(IGNORED_EVENT_TYPES, _no_event),
}


def _infer_type(msg: WireMessage) -> str:
    """The event_type of a message that lacks one, from the fields only that type carries."""
    if msg.bids is not None or msg.asks is not None:
        return "book"
    if msg.price_changes is not None or msg.changes is not None:
        return "price_change"
    if msg.new_tick_size is not None:
        return "tick_size_change"
    if msg.winning_asset_id is not None:
        return "market_resolved"
    if msg.price is not None:
        # A trade print has a fee rate and no book hash; an old single price_change the reverse.
        if msg.fee_rate_bps is not None or msg.hash is None:
            return "last_trade_price"
        return "price_change"
    if msg.best_bid is not None or msg.best_ask is not None:
        return "best_bid_ask"
    if msg.assets_ids is not None:
        return "new_market"
    raise MalformedMessage("no event_type, and the fields match no known message type")


def _message_events(msg: WireMessage, ts_recv_ms: int | None) -> list[Event]:
    kind = msg.event_type
    if kind is None:
        kind = _infer_type(msg)
    handler = _HANDLERS.get(kind)
    if handler is None:
        # Forward compatibility: the venue adds message types (best_bid_ask came late); one we do
        # not know carries nothing the engine could use yet.
        return []
    try:
        return handler(msg, ts_recv_ms)
    except ValueError as exc:  # includes MalformedMessage
        raise MalformedMessage(f"{kind}: {exc}") from None


def _frame_events(frame: WireMessage | list[WireMessage], ts_recv_ms: int | None) -> list[Event]:
    if isinstance(frame, WireMessage):
        return _message_events(frame, ts_recv_ms)
    out: list[Event] = []
    for msg in frame:
        out.extend(_message_events(msg, ts_recv_ms))
    return out


# -- public API ----------------------------------------------------------------------------------
def parse_market_line(
    data: bytes | bytearray | memoryview | str, *, ts_recv_ms: int | None = None
) -> list[Event]:
    """Fast path: one JSON text (a WebSocket frame or a JSON-lines line) to events, decoded once."""
    try:
        frame = _frame_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise MalformedMessage(f"invalid message: {exc}") from None
    except msgspec.DecodeError as exc:
        raise MalformedMessage(f"invalid JSON: {exc}") from None
    return _frame_events(frame, ts_recv_ms)


def parse_market_message(
    data: bytes | bytearray | memoryview | str | Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    ts_recv_ms: int | None = None,
) -> list[Event]:
    """A market-channel frame (JSON text, or an already decoded object or list of objects) to events.

    Returns [] for messages that map to no event (IGNORED_EVENT_TYPES, unknown types). Raises
    MalformedMessage for anything that cannot be mapped; one bad message rejects its whole frame.
    """
    if isinstance(data, bytes | bytearray | memoryview | str):
        return parse_market_line(data, ts_recv_ms=ts_recv_ms)
    try:
        frame = msgspec.convert(data, _Frame)
    except msgspec.ValidationError as exc:
        raise MalformedMessage(f"invalid message: {exc}") from None
    return _frame_events(frame, ts_recv_ms)


def _decimal_micro(value: Decimal, name: str) -> int:
    """Exact micro-units of a decimal decoded from JSON text (never via float)."""
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value}")
    scaled = value.scaleb(6)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{name} has more than 6 decimals: {value}")
    return int(scaled)


def _market(wire: WireMarket) -> Market | None:
    ids = [t.token_id for t in wire.tokens]
    if not any(ids):
        # Listed without an order book (the recorded page has a CLOB integration test market like
        # this): there is nothing to trade or to subscribe to.
        return None
    try:
        if len(ids) != 2 or not all(ids):
            raise ValueError(f"expected 2 token ids, got {ids!r}")
        fee_rate, fee_exponent = (
            (_decimal_micro(wire.fd.r, "fd.r"), wire.fd.e) if wire.fd is not None else (0, 1)
        )
        return Market(
            condition_id=wire.condition_id,
            token_ids=(ids[0], ids[1]),
            outcomes=(wire.tokens[0].outcome, wire.tokens[1].outcome),
            tick_size=_decimal_micro(wire.minimum_tick_size, "minimum_tick_size"),
            min_order_size=_decimal_micro(wire.minimum_order_size, "minimum_order_size"),
            neg_risk=wire.neg_risk,
            neg_risk_market_id=wire.neg_risk_market_id or None,
            fee_rate=fee_rate,
            fee_exponent=fee_exponent,
            question=wire.question,
        )
    except ValueError as exc:
        raise MalformedMessage(f"market {wire.condition_id}: {exc}") from None


def parse_markets(data: bytes | bytearray | memoryview | str) -> list[Market]:
    """CLOB REST markets to domain Markets, in venue order.

    Accepts a GET /markets page (`{"data": [...], ...}`), a bare list of markets, or the single
    object of GET /markets/{condition_id}. Takes the raw JSON text, not a decoded object, so tick and
    minimum sizes sent as JSON numbers (0.001, 14.96) are read exactly from their digits. Markets
    listed without token ids have no order book and are skipped; any other defect raises
    MalformedMessage naming the market.
    """
    try:
        doc = _markets_doc_decoder.decode(data)
        if isinstance(doc, dict):
            page_data = doc.get("data")
            wires = (
                _market_list_decoder.decode(page_data)
                if page_data is not None
                else [_market_decoder.decode(data)]
            )
        else:
            wires = doc
    except msgspec.DecodeError as exc:  # includes ValidationError
        raise MalformedMessage(f"markets: {exc}") from None
    markets: list[Market] = []
    for wire in wires:
        market = _market(wire)
        if market is not None:
            markets.append(market)
    return markets
