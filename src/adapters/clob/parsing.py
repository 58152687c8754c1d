"""Pure mapping from CLOB wire payloads (and our external-signal lines) to core events and markets.

Theory of operation: a frame (one object or a JSON array of objects) decodes in one msgspec pass
into `WireMessage` Structs. Each message's `event_type`, or when a recording omits it the fields it
carries, selects a handler that turns decimal strings into micro-units and builds core events. Every
failure, from bad JSON (or JSON nested too deeply to decode) to a seventh decimal, surfaces as
`MalformedMessage` with a reason that names the message type and the offending value, so file readers
and socket loops can dead-letter it and move on: no other exception leaves a decoder here, whatever
the bytes.

Every number is range-checked where it is read, in ASCII digits only: timestamps within
[MIN_TS_MS, MAX_TS_MS], level prices within [0, 1] and trade prices strictly inside, sizes within
[0, MAX_AMOUNT_MICRO], ticks among the venue's, fee rates within [0, 1) and exponents within
[1, MAX_FEE_EXPONENT]. The checks sit on cache misses and already decoded integers, so the hot path
pays a compare or two per message.

Events carry the venue's timestamp. The receive time (`ts_recv_ms`) only stands in when a message
has no timestamp at all; with neither, the message is malformed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import attrs
import msgspec

from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.schemas import (
    WireClobMarket,
    WireCursorPage,
    WireFeeDetails,
    WireLevel,
    WireMakerOrder,
    WireMarket,
    WireMessage,
    WireNegRisk,
    WireOrder,
    WirePriceChangeEntry,
    WireTickSize,
    WireTrade,
    WireVersion,
)
from polysnipe.core.events import (
    MAX_TS_MS,
    MIN_TS_MS,
    BookDelta,
    BookSnapshot,
    Event,
    ExternalSignal,
    LastTrade,
    Level,
    MarketResolved,
    PriceChange,
    Side,
    TickSizeChange,
)
from polysnipe.core.fees import NO_FEE, TakerFee, check_fee_parameters
from polysnipe.core.market import VALID_TICKS, Market
from polysnipe.core.messages import (
    ExecutionReport,
    Liquidity,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
)
from polysnipe.core.units import MAX_AMOUNT_MICRO, MICRO, ONE, parse_micro

__all__ = [
    "EXTERNAL_SIGNAL",
    "IGNORED_EVENT_TYPES",
    "MAX_JSON_DEPTH",
    "FeeOf",
    "RestBook",
    "book_hash",
    "compiled_decoder_available",
    "decimal_micro",
    "decode_json",
    "decode_market_frame",
    "decode_user_frame",
    "decoder_implementation",
    "effective_event_type",
    "epoch_ms",
    "fee_parameters",
    "feed_keeper",
    "fills_from_trade",
    "match_delay_ms",
    "message_events",
    "next_cursor",
    "order_reports",
    "parse_clob_market_fees",
    "parse_int",
    "parse_market_line",
    "parse_market_message",
    "parse_markets",
    "parse_neg_risk",
    "parse_price",
    "parse_rest_book",
    "parse_server_time",
    "parse_size",
    "parse_tick_size",
    "parse_version",
    "token_id_text",
    "use_pure_python",
]

#: `event_type` of our own external-signal lines (docs/external-signals.md)
EXTERNAL_SIGNAL = "external_signal"
#: venue messages that decode fine but map to no event: best bid/ask already ride on every
#: price_change entry, and markets are loaded from REST, not discovered from the stream
IGNORED_EVENT_TYPES = frozenset({"best_bid_ask", "new_market"})

#: what every decoder takes: the JSON text as received
_Data = bytes | bytearray | memoryview | str
_T = TypeVar("_T")
_Frame = WireMessage | list[WireMessage]
_frame_decoder = msgspec.json.Decoder(_Frame)
_markets_doc_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw] | list[WireMarket])
_market_list_decoder = msgspec.json.Decoder(list[WireMarket])
_market_decoder = msgspec.json.Decoder(WireMarket)

_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}
#: a fee rate in basis points is below 1 (10_000 bps), as every fee rate is
_MAX_FEE_BPS = 9_999
#: builds a NamedTuple event from a tuple of all its fields, without its Python-level __new__
_new = tuple.__new__
_DIRECTIONS = {"up": 1, "down": -1}


# -- decimal fields ------------------------------------------------------------------------------
# Prices repeat constantly (a few thousand distinct ticks at most) and sizes often (every delta has
# a mirror delta on the complement token with the same size string), so caches turn most parses
# into one dict hit. Plain dicts rather than lru_cache: the hot loops call their bound `get`
# directly, which skips a Python call per field. When a cache fills it is simply emptied: recency
# bookkeeping would cost every hit to save a rare refill. A ValueError is never cached, so bad input
# always raises.
_PRICES: dict[str, int] = {}
_SIZES: dict[str, int] = {}
_PRICES_MAX = 16_384
_SIZES_MAX = 65_536


def _price(text: str) -> int:
    value = _PRICES.get(text)
    if value is None:
        value = parse_micro(text)
        if not 0 <= value <= ONE:
            raise ValueError(f"price outside [0, 1]: {text!r}")
        if len(_PRICES) >= _PRICES_MAX:
            _PRICES.clear()
        _PRICES[text] = value
    return value


def _trade_price(text: str) -> int:
    """A price something traded at: the venue matches only within [tick, 1 - tick]."""
    value = _price(text)
    if not 0 < value < ONE:
        raise ValueError(f"trade price outside (0, 1): {text!r}")
    return value


def _size(text: str) -> int:
    value = _SIZES.get(text)
    if value is None:
        value = parse_micro(text)
        if not 0 <= value <= MAX_AMOUNT_MICRO:
            raise ValueError(f"size outside [0, {MAX_AMOUNT_MICRO // MICRO}]: {text[:40]!r}")
        if len(_SIZES) >= _SIZES_MAX:
            _SIZES.clear()
        _SIZES[text] = value
    return value


def _opt_price(text: str | None) -> int | None:
    """An optional price field; "" counts as absent, as the venue spells "none" that way."""
    return _price(text) if text else None


def _tick(text: str) -> int:
    value = parse_micro(text)
    if value not in VALID_TICKS:
        raise ValueError(f"not a venue tick size: {text[:40]!r}")
    return value


#: MAX_TS_MS spelled as the venue spells timestamps: for digit strings of equal length, comparing the
#: text compares the numbers, which spares the hot path an int() of out-of-range input
_MAX_TS_TEXT = str(MAX_TS_MS)
_TS_DIGITS = len(_MAX_TS_TEXT)


def _int(value: str | int, name: str, low: int, high: int) -> int:
    """An integer field sent as a JSON number or as ASCII digits, within [low, high].

    `str.isdigit()` alone would take "١٢" or full-width digits (and `int()` then reads them), so the
    string must be ASCII too; signs, spaces and "_" are refused as well.
    """
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()) or len(value) > len(str(high)):
            raise ValueError(f"{name} is not an integer in [{low}, {high}]: {value[:40]!r}")
        number = int(value)
    else:
        number = value
    if not low <= number <= high:
        raise ValueError(f"{name} outside [{low}, {high}]: {number}")
    return number


def _ts(msg: WireMessage, ts_recv_ms: int | None) -> int:
    t = msg.timestamp
    if t is None:
        if ts_recv_ms is None:
            raise ValueError("missing timestamp")
        return ts_recv_ms
    if isinstance(t, str) and not (t.isascii() and t.isdigit()):
        raise ValueError(f"timestamp is not epoch ms: {t[:40]!r}")
    return _int(t, "timestamp", MIN_TS_MS, MAX_TS_MS)


def parse_price(text: str) -> int:
    """A price field of a REST answer (ASCII decimal in [0, 1]) in micro-units; ValueError if not."""
    return _price(text)


def parse_size(text: str) -> int:
    """A size field of a REST answer (ASCII decimal in [0, MAX_AMOUNT_MICRO]); ValueError if not."""
    return _size(text)


def parse_int(value: str | int, name: str, low: int, high: int) -> int:
    """An integer field of a REST answer (a JSON number, or ASCII digits) in [low, high]; ValueError
    naming `name` if not."""
    return _int(value, name, low, high)


def _req(value: str | None, name: str) -> str:
    if value is None:
        raise ValueError(f"missing {name}")
    return value


# -- handlers, one per event_type -----------------------------------------------------------------
def _levels(levels: list[WireLevel]) -> tuple[Level, ...]:
    # a book carries up to a few hundred levels: cache hits inline, a call only on a miss
    price_get, size_get = _PRICES.get, _SIZES.get
    out: list[Level] = []
    append = out.append
    for lv in levels:
        p = price_get(lv.price)
        if p is None:
            p = _price(lv.price)
        q = size_get(lv.size)
        if q is None:
            q = _size(lv.size)
        append(_new(Level, (p, q)))
    return tuple(out)


def _snapshot(msg: WireMessage, ts_recv_ms: int | None) -> BookSnapshot:
    bids, asks = msg.bids, msg.asks
    if bids is None or asks is None:
        raise ValueError("missing bids or asks")
    return BookSnapshot(
        _ts(msg, ts_recv_ms),
        _req(msg.asset_id, "asset_id"),
        _req(msg.market, "market"),
        _levels(bids),
        _levels(asks),
        msg.hash or "",
        _tick(msg.tick_size) if msg.tick_size else None,
    )


def _book(msg: WireMessage, ts_recv_ms: int | None) -> list[Event]:
    return [_snapshot(msg, ts_recv_ms)]


def _price_changes(entries: list[WirePriceChangeEntry]) -> tuple[BookDelta, ...]:
    """The current form, one BookDelta per entry: the hot path of every feed and backtest load.

    Cache hits stay inline (a call only on a miss) and deltas are built with `tuple.__new__`, which
    skips the NamedTuple's Python-level constructor: together about half the cost per delta.
    """
    price_get, size_get, sides = _PRICES.get, _SIZES.get, _SIDES
    out: list[BookDelta] = []
    append = out.append
    for e in entries:
        p = price_get(e.price)
        if p is None:
            p = _price(e.price)
        q = size_get(e.size)
        if q is None:
            q = _size(e.size)
        bid = e.best_bid
        if bid:
            bid_px = price_get(bid)
            if bid_px is None:
                bid_px = _price(bid)
        else:
            bid_px = None
        ask = e.best_ask
        if ask:
            ask_px = price_get(ask)
            if ask_px is None:
                ask_px = _price(ask)
        else:
            ask_px = None
        append(_new(BookDelta, (e.asset_id, sides[e.side], p, q, e.hash, bid_px, ask_px)))
    return tuple(out)


def _price_change(msg: WireMessage, ts_recv_ms: int | None) -> list[Event]:
    t = msg.timestamp
    # the venue's own spelling (13 ASCII digits of epoch ms) inline; every other case in _ts
    if type(t) is str and len(t) == _TS_DIGITS and t.isascii() and t.isdigit() and t <= _MAX_TS_TEXT:
        ts = int(t)
    else:
        ts = _ts(msg, ts_recv_ms)
    market = msg.market
    if market is None:
        raise ValueError("missing market")
    price, size, sides = _price, _size, _SIDES
    deltas: tuple[BookDelta, ...]
    if msg.price_changes is not None:
        deltas = _price_changes(msg.price_changes)
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
    return [_new(PriceChange, (ts, market, deltas))] if deltas else []


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
    fee_bps = 0 if fee is None or fee == "" else _int(fee, "fee_rate_bps", 0, _MAX_FEE_BPS)
    return [
        LastTrade(
            _ts(msg, ts_recv_ms),
            _req(msg.asset_id, "asset_id"),
            _req(msg.market, "market"),
            _trade_price(_req(msg.price, "price")),
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
    if ttl_ms is None or not 0 < ttl_ms <= MAX_TS_MS:
        raise ValueError(f"ttl_ms must be a positive integer up to {MAX_TS_MS}, got {ttl_ms!r}")
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


def _market_resolved(msg: WireMessage, ts_recv_ms: int | None) -> list[Event]:
    winner = _req(msg.winning_asset_id, "winning_asset_id")
    assets = msg.assets_ids
    if assets is not None and winner not in assets:
        raise ValueError("winning_asset_id is not one of the market's assets_ids")
    return [MarketResolved(_ts(msg, ts_recv_ms), _req(msg.market, "market"), winner)]


def _no_event(msg: WireMessage, ts_recv_ms: int | None) -> list[Event]:
    return []


_Handler = Callable[[WireMessage, int | None], list[Event]]
_HANDLERS: dict[str, _Handler] = {
    "book": _book,
    "price_change": _price_change,
    "tick_size_change": _tick_size_change,
    "last_trade_price": _last_trade,
    "market_resolved": _market_resolved,
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
        raise MalformedMessage(f"{kind[:40]}: {exc}") from None


def _frame_events(frame: WireMessage | list[WireMessage], ts_recv_ms: int | None) -> list[Event]:
    if isinstance(frame, WireMessage):
        return _message_events(frame, ts_recv_ms)
    out: list[Event] = []
    for msg in frame:
        out.extend(_message_events(msg, ts_recv_ms))
    return out


#: What decoding untrusted input can raise besides our own ValueErrors: msgspec's errors, a
#: RecursionError from msgspec itself when the JSON nests deeper than the interpreter's recursion
#: limit (it recurses even to skip an unknown field, so a 2 KB line of brackets is enough), a
#: UnicodeEncodeError (a ValueError) for a str with lone surrogates, a BufferError for a
#: non-contiguous memoryview.
_DECODE_ERRORS = (msgspec.DecodeError, ValueError, RecursionError, BufferError)

# -- nesting depth ---------------------------------------------------------------------------------
# msgspec recurses in C once per nesting level and stops only at the interpreter's recursion limit.
# That limit is 1,000 by default, but importing py_ecc (the official client does) raises it to
# 100,000 for the whole process, and then some 30,000 levels of brackets (60 KB) overflow the C stack:
# a segfault, not an exception. So texts long enough to nest that deep are checked before msgspec
# sees them; a shorter one cannot nest deeper than its length, which the C stack survives, and a
# RecursionError it raises below the limit is caught like any decode error. No venue message nests
# deeper than 5 levels.

#: the deepest nesting accepted in a text longer than _SHALLOW_LEN
MAX_JSON_DEPTH = 64
#: texts up to this many bytes are handed to msgspec unchecked: the hot path (price_change frames)
#: pays one comparison; 4,096 levels of C recursion need well under 2 MB of stack
_SHALLOW_LEN = 4_096
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+"', re.DOTALL)
_TOO_DEEP = f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels, or brackets unbalanced"


def _brackets_shallow(brackets: bytes) -> bool:
    """Do these brackets (nothing else) balance within MAX_JSON_DEPTH levels? Each pass removes the
    innermost pairs, so a balanced sequence empties in exactly its depth in passes."""
    for _ in range(MAX_JSON_DEPTH):
        if not brackets:
            return True
        inner_removed = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if len(inner_removed) == len(brackets):
            return False  # unbalanced (or brackets inside strings: see _check_depth)
        brackets = inner_removed
    return not brackets


def _check_depth(data: _Data) -> None:
    """Raise ValueError for a long text that nests deeper than MAX_JSON_DEPTH (see above)."""
    if len(data) <= _SHALLOW_LEN:
        return
    text = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if _brackets_shallow(text.translate(None, _NOT_BRACKETS)):
        return
    # brackets inside strings ("[x]" in a question) can unbalance the quick count: drop the strings
    if not _brackets_shallow(_JSON_STRING.sub(b"", text).translate(None, _NOT_BRACKETS)):
        raise ValueError(_TOO_DEEP)


def _malformed(exc: BaseException, what: str = "") -> MalformedMessage:
    """The MalformedMessage of one of _DECODE_ERRORS, its reason prefixed with `what` when given."""
    if isinstance(exc, MalformedMessage):
        reason = exc.reason
    elif isinstance(exc, msgspec.ValidationError):
        reason = f"invalid message: {exc}"
    elif isinstance(exc, msgspec.DecodeError):
        reason = f"invalid JSON: {exc}"
    elif isinstance(exc, RecursionError):
        reason = "invalid JSON: nested too deeply"
    elif type(exc) is ValueError:
        reason = str(exc)  # our own range and format checks, and int()'s
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return MalformedMessage(f"{what}: {reason}" if what else reason)


def decode_json(decoder: msgspec.json.Decoder[_T], data: _Data, what: str) -> _T:
    """Decode `data` with a typed msgspec decoder; every failure becomes MalformedMessage naming
    `what`. For the REST answers whose Structs need no mapping beyond their types."""
    try:
        _check_depth(data)
        return decoder.decode(data)
    except _DECODE_ERRORS as exc:
        raise _malformed(exc, what) from None


# -- the compiled fast path ---------------------------------------------------------------------
# _fastdecode (C, beside this file) decodes the common frames, plain price_change, last_trade_price and
# book messages alone or in arrays, straight into the events below build; it answers None for every
# other frame, which then takes the msgspec path. It is a strict subset of that path (its header comment
# says which frames it takes), so both give the same events and the same MalformedMessage reasons on
# every input (tests/unit/test_fastdecode.py). Its FeedKeeper is the live feed's BookKeeper.on_frame on
# the same frames, decoded and applied in one call (tests/unit/test_feed_keeper.py).
_FastDecode = Callable[[_Data], list[Event] | None]
_compiled_decode: _FastDecode | None
_compiled_keeper: type[FeedKeeper] | None
try:
    from polysnipe.adapters.clob._fastdecode import FeedKeeper
    from polysnipe.adapters.clob._fastdecode import decode_market as _compiled

    _compiled_decode, _compiled_keeper = _compiled, FeedKeeper
except ImportError:  # the extension is not built: the msgspec path serves alone
    _compiled_decode = _compiled_keeper = None

_fast_decode = _compiled_decode


def compiled_decoder_available() -> bool:
    """True when the compiled decoder (polysnipe.adapters.clob._fastdecode) is built and importable."""
    return _compiled_decode is not None


def use_pure_python(pure: bool) -> None:
    """Decode every frame with msgspec (True), or take the compiled fast path where it is built (False).

    Called once at start by the runners (POLYSNIPE_PURE_PYTHON=1, runners/implementation.py).
    """
    global _fast_decode
    _fast_decode = None if pure else _compiled_decode


def decoder_implementation() -> str:
    """ "compiled" or "python": whether parse_market_line tries the compiled fast path first."""
    return "python" if _fast_decode is None else "compiled"


def feed_keeper() -> type[FeedKeeper] | None:
    """The compiled common case of market_data.BookKeeper.on_frame (it decodes parse_market_line's
    compiled subset and keeps the books of its price changes, trade prints and books itself), or None
    when the fast path is off or absent; the keeper asks once, when it is made."""
    return None if _fast_decode is None else _compiled_keeper


# -- public API ----------------------------------------------------------------------------------
def parse_market_line(data: _Data, *, ts_recv_ms: int | None = None) -> list[Event]:
    """Fast path: one JSON text (a WebSocket frame or a JSON-lines line) to events, decoded once."""
    fast = _fast_decode
    if fast is not None:
        events = fast(data)
        if events is not None:
            return events
    try:
        if len(data) > _SHALLOW_LEN:
            _check_depth(data)
        frame = _frame_decoder.decode(data)
    except _DECODE_ERRORS as exc:
        raise _malformed(exc) from None
    if type(frame) is WireMessage and frame.event_type == "price_change" and frame.price_changes is not None:
        # Most frames are exactly this: skip the per-message dispatch (same handler, same errors).
        try:
            return _price_change(frame, ts_recv_ms)
        except ValueError as exc:
            raise MalformedMessage(f"price_change: {exc}") from None
    return _frame_events(frame, ts_recv_ms)


def parse_market_message(
    data: _Data | Mapping[str, Any] | Sequence[Mapping[str, Any]],
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
    except _DECODE_ERRORS as exc:
        raise _malformed(exc) from None
    return _frame_events(frame, ts_recv_ms)


#: Upper bounds, in whole units, of the decimal fields of a market (checked before scaling, so a
#: hostile "1e999999" never becomes an integer of a million digits)
_TICK_BOUND = Decimal(1)
_SIZE_BOUND = Decimal(MAX_AMOUNT_MICRO // MICRO)
_FEE_RATE_BOUND = Decimal(1)
_json_str = msgspec.json.Decoder(str)
_json_decimal = msgspec.json.Decoder(Decimal)


def decimal_micro(raw: msgspec.Raw, name: str, bound: Decimal) -> int:
    """Exact micro-units of a decimal field sent as a JSON number or a decimal string, in [0, bound].

    A number is read from its JSON digits, never via float (0.001 would become 0.00100000000000000002);
    a string must be a plain ASCII decimal (parse_micro): msgspec's own Decimal decoding of strings
    would also take " 12 ", "1_000" and "١٢".
    """
    text = bytes(raw)
    shown = text[:40].decode(errors="replace")
    try:
        if text[:1] == b'"':
            micro = parse_micro(_json_str.decode(text))
            if not 0 <= micro <= bound * MICRO:
                raise ValueError(f"must be in [0, {bound}], got {shown}")
            return micro
        value = _json_decimal.decode(text)
    except (ValueError, msgspec.DecodeError) as exc:
        raise ValueError(f"{name}: {exc}") from None
    if not value.is_finite() or not 0 <= value <= bound:
        raise ValueError(f"{name} must be in [0, {bound}], got {shown}")
    scaled = value.scaleb(6)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{name} has more than 6 decimals: {shown}")
    return int(scaled)


#: ERC-1155 position ids are uint256, at most 78 decimal digits
_TOKEN_ID_DIGITS = 78


def token_id_text(text: str) -> str:
    """A token id as the venue spells it: the decimal digits of a uint256 (orders sign int(token_id))."""
    if not (text.isascii() and text.isdigit()) or len(text) > _TOKEN_ID_DIGITS or int(text) >= 1 << 256:
        raise ValueError(f"token id is not a uint256 in decimal: {text[:80]!r}")
    return text


def fee_parameters(fd: WireFeeDetails | None) -> tuple[int, int]:
    """(rate in micro-units, exponent) of a market's `fd`, range-checked; no `fd` is no fee."""
    if fd is None:
        return 0, 1
    rate = decimal_micro(fd.r, "fd.r", _FEE_RATE_BOUND)
    check_fee_parameters(rate, fd.e)
    return rate, fd.e


def match_delay_ms(seconds: int | None) -> int | None:
    """`seconds_delay` (CLOB) / `secondsDelay` (Gamma) in ms; None when the document does not say."""
    if seconds is None:
        return None
    if not 0 <= seconds <= 3_600:
        raise ValueError(f"seconds_delay {seconds} outside 0..3600")
    return seconds * 1_000


def _market(wire: WireMarket) -> Market | None:
    ids = [t.token_id for t in wire.tokens]
    if not any(ids):
        # Listed without an order book (the recorded page has a CLOB integration test market like
        # this): there is nothing to trade or to subscribe to.
        return None
    try:
        if len(ids) != 2 or not all(ids):
            raise ValueError(f"expected 2 token ids, got {ids!r}")
        fee_rate, fee_exponent = fee_parameters(wire.fd)
        return Market(
            condition_id=wire.condition_id,
            token_ids=(token_id_text(ids[0]), token_id_text(ids[1])),
            outcomes=(wire.tokens[0].outcome, wire.tokens[1].outcome),
            tick_size=decimal_micro(wire.minimum_tick_size, "minimum_tick_size", _TICK_BOUND),
            min_order_size=decimal_micro(wire.minimum_order_size, "minimum_order_size", _SIZE_BOUND),
            neg_risk=wire.neg_risk,
            neg_risk_market_id=wire.neg_risk_market_id or None,
            fee_rate=fee_rate,
            fee_exponent=fee_exponent,
            question=wire.question,
            match_delay_ms=match_delay_ms(wire.seconds_delay) or 0,
        )
    except _DECODE_ERRORS as exc:
        raise _malformed(exc, f"market {wire.condition_id[:80]}") from None


def parse_markets(data: _Data) -> list[Market]:
    """CLOB REST markets to domain Markets, in venue order.

    Accepts a GET /markets page (`{"data": [...], ...}`), a bare list of markets, or the single
    object of GET /markets/{condition_id}. Takes the raw JSON text, not a decoded object, so tick and
    minimum sizes sent as JSON numbers (0.001, 14.96) are read exactly from their digits. Markets
    listed without token ids have no order book and are skipped; any other defect raises
    MalformedMessage naming the market.
    """
    try:
        _check_depth(data)
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
    except _DECODE_ERRORS as exc:
        raise _malformed(exc, "markets") from None
    markets: list[Market] = []
    for wire in wires:
        market = _market(wire)
        if market is not None:
            markets.append(market)
    return markets


# -- market metadata answers (markets.py sends the requests) --------------------------------------
_clob_market_decoder = msgspec.json.Decoder(WireClobMarket)
_tick_size_decoder = msgspec.json.Decoder(WireTickSize)
_neg_risk_decoder = msgspec.json.Decoder(WireNegRisk)
_version_decoder = msgspec.json.Decoder(WireVersion)
_server_time_decoder = msgspec.json.Decoder(int | float)
_cursor_decoder = msgspec.json.Decoder(WireCursorPage)
#: exchange order versions are small integers (2 today); anything else is not an answer to read
_MAX_VERSION = 1_000
_MAX_TS_S = MAX_TS_MS // 1000


def parse_clob_market_fees(data: _Data) -> tuple[int, int] | None:
    """GET /clob-markets/{condition_id} to (fee rate in micro-units, exponent), range-checked; None
    when the answer carries no fee details."""
    try:
        _check_depth(data)
        wire = _clob_market_decoder.decode(data)
        return None if wire.fd is None else fee_parameters(wire.fd)
    except _DECODE_ERRORS as exc:
        raise _malformed(exc, "clob-markets") from None


def parse_tick_size(data: _Data) -> int:
    """GET /tick-size to the token's tick in micro-units: one of the venue's ticks, or malformed."""
    try:
        _check_depth(data)
        tick = decimal_micro(_tick_size_decoder.decode(data).minimum_tick_size, "tick", _TICK_BOUND)
        if tick not in VALID_TICKS:
            raise ValueError(f"not a venue tick: {tick / MICRO:g}")
    except _DECODE_ERRORS as exc:
        raise _malformed(exc, "tick-size") from None
    return tick


def parse_neg_risk(data: _Data) -> bool:
    """GET /neg-risk; a missing flag is malformed (False means known-false, never "unknown")."""
    return decode_json(_neg_risk_decoder, data, "neg-risk").neg_risk


def parse_version(data: _Data) -> int:
    """GET /version to the exchange order version."""
    try:
        _check_depth(data)
        return _int(_version_decoder.decode(data).version, "version", 0, _MAX_VERSION)
    except _DECODE_ERRORS as exc:
        raise _malformed(exc, "version") from None


def parse_server_time(data: _Data) -> int:
    """GET /time to unix seconds, within the timestamp window."""
    seconds = decode_json(_server_time_decoder, data, "time")
    # (a NaN or an infinity fails this comparison too)
    if not 0 <= seconds <= _MAX_TS_S:
        raise MalformedMessage(f"time: outside [0, {_MAX_TS_S}]: {seconds!r}")
    return int(seconds)


def next_cursor(data: _Data) -> str | None:
    """`next_cursor` of any paginated answer; None when it carries none."""
    return decode_json(_cursor_decoder, data, "page").next_cursor


# -- market-channel frames, one message at a time (the live feed needs the raw fields) -------------
def decode_market_frame(data: _Data) -> list[WireMessage]:
    """Decode one frame into its messages, for callers that need raw fields besides the events
    (book hash checks read the venue's own strings); map each with `message_events`."""
    try:
        if len(data) > _SHALLOW_LEN:
            _check_depth(data)
        frame = _frame_decoder.decode(data)
    except _DECODE_ERRORS as exc:
        raise _malformed(exc) from None
    return [frame] if isinstance(frame, WireMessage) else frame


def message_events(msg: WireMessage, *, ts_recv_ms: int | None = None) -> list[Event]:
    """The events of one decoded market-channel message (see parse_market_message)."""
    return _message_events(msg, ts_recv_ms)


def effective_event_type(msg: WireMessage) -> str:
    """`event_type`, or the type its fields imply when a payload omits it."""
    return msg.event_type if msg.event_type is not None else _infer_type(msg)


# -- order book hash ----------------------------------------------------------------------------
def _json_text(value: str | bool | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


def _json_levels(levels: Iterable[tuple[str, str]]) -> str:
    return ",".join([f'{{"price":{_json_text(p)},"size":{_json_text(s)}}}' for p, s in levels])


def book_hash(
    market: str,
    asset_id: str,
    timestamp: str,
    bids: Iterable[tuple[str, str]],
    asks: Iterable[tuple[str, str]],
    *,
    min_order_size: str | None,
    tick_size: str | None,
    neg_risk: bool | None,
    last_trade_price: str | None,
) -> str:
    """The venue's order-book hash: SHA-1 of the compact JSON summary with `hash` set to "", keys in
    this order (py-clob-client-v2 `generate_orderbook_summary_hash`). Levels go in the order the venue
    lists them: bids ascending, asks descending. Checked against real 2026 captures of GET /book and
    of market-channel `book` and `price_change` messages (tests/unit/test_clob_market_data.py)."""
    text = (
        f'{{"market":{_json_text(market)},"asset_id":{_json_text(asset_id)},'
        f'"timestamp":{_json_text(timestamp)},"hash":"",'
        f'"bids":[{_json_levels(bids)}],"asks":[{_json_levels(asks)}],'
        f'"min_order_size":{_json_text(min_order_size)},"tick_size":{_json_text(tick_size)},'
        f'"neg_risk":{_json_text(neg_risk)},"last_trade_price":{_json_text(last_trade_price)}}}'
    )
    # (surrogatepass: a hostile string with a lone surrogate must not raise here; it just won't match)
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


@attrs.frozen(slots=True)
class RestBook:
    """GET /book: the snapshot plus the venue's own strings that the book hash covers.

    Those strings (minimum size, tick, neg-risk flag, last trade price) are what later lets the live
    feed check the hashes of market-channel messages, which omit some of them.
    """

    snapshot: BookSnapshot
    min_order_size: str | None
    tick_size: str | None
    #: None when the payload lacks it: unknown, never read as False
    neg_risk: bool | None
    last_trade_price: str | None
    #: True when the hash was checked and matched; False when the payload lacked a field it covers
    hash_verified: bool


_book_decoder = msgspec.json.Decoder(WireMessage)


def parse_rest_book(data: _Data, *, ts_recv_ms: int | None = None) -> RestBook:
    """GET /book to a snapshot. Asks arrive worst-first and bids best-last; BookState ignores order.

    A book whose hash can be checked (all covered fields present) and does not match is corrupt and
    raises MalformedMessage rather than seeding a book we would then trust.
    """
    try:
        _check_depth(data)
        msg = _book_decoder.decode(data)
        # a REST book is a book whatever `event_type` it may carry: map it as one, directly
        snapshot = _snapshot(msg, ts_recv_ms)
    except _DECODE_ERRORS as exc:
        raise _malformed(exc, "book") from None
    checkable = (
        bool(msg.hash)
        and isinstance(msg.timestamp, str)
        and msg.min_order_size is not None
        and msg.tick_size is not None
        and msg.neg_risk is not None
        and msg.last_trade_price is not None
    )
    if checkable:
        computed = book_hash(
            snapshot.market,
            snapshot.token_id,
            str(msg.timestamp),
            [(lv.price, lv.size) for lv in msg.bids or ()],
            [(lv.price, lv.size) for lv in msg.asks or ()],
            min_order_size=msg.min_order_size,
            tick_size=msg.tick_size,
            neg_risk=msg.neg_risk,
            last_trade_price=msg.last_trade_price,
        )
        if computed != msg.hash:
            raise MalformedMessage(
                f"book {snapshot.token_id[:80]}: hash {(msg.hash or '')[:80]} does not match {computed}"
            )
    return RestBook(
        snapshot, msg.min_order_size, msg.tick_size, msg.neg_risk, msg.last_trade_price, checkable
    )


# -- user channel and REST orders/trades --------------------------------------------------------
_ISO_Z = "Z"
#: below this a numeric time is in seconds (1e11 s is the year 5138; 1e11 ms is 1973)
_SECONDS_BELOW = 100_000_000_000


def epoch_ms(value: str | int | None) -> int | None:
    """Epoch ms of a venue time given as ms or s digits (told apart by size) or ISO 8601; None or ""
    is None. The venue mixes all three across payloads (shared/data/README.md). Raises
    MalformedMessage for anything else, or for a time outside [MIN_TS_MS, MAX_TS_MS]."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        number = value
    elif value.isascii() and value.isdigit():
        if len(value) > _TS_DIGITS:
            raise MalformedMessage(f"time out of range: {value[:40]!r}")
        number = int(value)
    else:
        try:
            if not value.isascii():
                raise ValueError("not ASCII")
            moment = datetime.fromisoformat(value.replace(_ISO_Z, "+00:00"))
        except ValueError:
            raise MalformedMessage(f"not a time: {value[:40]!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        number = int(moment.timestamp() * 1000)
        return _epoch_in_range(number, value)
    return _epoch_in_range(number * 1000 if number < _SECONDS_BELOW else number, value)


def _epoch_in_range(ms: int, value: str | int) -> int:
    if not MIN_TS_MS <= ms <= MAX_TS_MS:
        raise MalformedMessage(f"time out of range: {str(value)[:40]!r}")
    return ms


_user_frame_decoder = msgspec.json.Decoder(dict[str, Any] | list[dict[str, Any]])


def decode_user_frame(data: _Data) -> list[WireOrder | WireTrade]:
    """A user-channel frame (one object or an array) to typed order and trade messages.

    Messages of other types are skipped (forward compatibility). Some recordings omit `event_type`;
    a trade is then recognised by the fields only trades carry.
    """
    try:
        _check_depth(data)
        frame = _user_frame_decoder.decode(data)
    except _DECODE_ERRORS as exc:
        raise _malformed(exc, "user channel") from None
    out: list[WireOrder | WireTrade] = []
    for obj in [frame] if isinstance(frame, dict) else frame:
        kind = obj.get("event_type") or ("trade" if obj.get("type") == "TRADE" else None)
        if kind is None:
            kind = "trade" if "taker_order_id" in obj or "maker_orders" in obj else "order"
        try:
            if kind == "trade":
                out.append(msgspec.convert(obj, WireTrade))
            elif kind == "order":
                out.append(msgspec.convert(obj, WireOrder))
        except _DECODE_ERRORS as exc:
            raise _malformed(exc, f"user channel {kind}") from None
    return out


def _cancel_reason(status: str) -> str:
    # "CANCELED_order couldn't be fully filled..." carries the venue's reason after the underscore
    head, _, tail = status.partition("_")
    return tail if head.upper() == "CANCELED" and tail else status.lower()


def order_reports(msg: WireOrder, order_id: str, *, ts_recv_ms: int) -> list[ExecutionReport]:
    """What one order message (user channel, or GET /data/order) says about our order `order_id`.

    Fills are not read from orders: `size_matched` has no trade id to count it once by, so fills come
    only from trades (fills_from_trade).
    """
    ts = epoch_ms(msg.timestamp) or ts_recv_ms
    status = (msg.status or "").upper()
    kind = (msg.type or "").upper()
    accepted = OrderAccepted(order_id, ts, msg.id)
    if kind == "PLACEMENT":
        return [accepted]
    if kind == "CANCELLATION" or status.startswith(("CANCELED", "CANCELLED")) or status == "INVALID":
        return [OrderCancelled(order_id, ts, _cancel_reason(msg.status or "canceled"))]
    if status == "EXPIRED":
        return [OrderExpired(order_id, ts)]
    if status == "UNMATCHED":
        return [OrderRejected(order_id, ts, "unmatched", msg.status or "")]
    if kind == "UPDATE":
        return []
    if status in ("LIVE", "MATCHED", "DELAYED"):
        return [accepted]
    raise MalformedMessage(f"order {msg.id}: unknown status {msg.status!r}")


#: (token, side, price, size, the trade's fee_rate_bps or None) -> the taker's fee
FeeOf = Callable[[str, Side, int, int, int | None], TakerFee]


def _maker_side(trade: WireTrade, maker: WireMakerOrder) -> Side:
    if maker.side is not None:
        return _SIDES[maker.side]
    # Older payloads omit it: a maker on the taker's token took the other side; one on the
    # complement token matched through the mirror (BUY YES against BUY NO), so the same side.
    taker_side = _SIDES[trade.side]
    same_token = maker.asset_id is None or maker.asset_id == trade.asset_id
    return taker_side.opposite if same_token else taker_side


def fills_from_trade(
    trade: WireTrade,
    order_id_of: Callable[[str], str | None],
    *,
    ts_recv_ms: int,
    fee_of: FeeOf | None = None,
) -> list[OrderFilled]:
    """Our fills in one trade: the taker order, the maker orders, or both (a self-cross).

    `order_id_of` maps a venue order id to our order id, None for orders that are not ours. Each fill
    is keyed by the trade id; the caller counts a (trade, order) pair once across statuses. Makers
    never pay fees; a taker's fee comes from `fee_of`, given the trade's own fee_rate_bps when it
    carries one (the rate the venue charged) and the market's fee parameters otherwise.
    """
    ts = epoch_ms(trade.match_time) or epoch_ms(trade.matchtime) or epoch_ms(trade.timestamp) or ts_recv_ms
    fills: list[OrderFilled] = []
    try:
        if trade.taker_order_id:
            ours = order_id_of(trade.taker_order_id)
            if ours is not None:
                side, price, size = _SIDES[trade.side], _trade_price(trade.price), _size(trade.size)
                raw_bps = trade.fee_rate_bps
                bps = (
                    None
                    if raw_bps is None or raw_bps == ""
                    else _int(raw_bps, "fee_rate_bps", 0, _MAX_FEE_BPS)
                )
                fee = fee_of(trade.asset_id, side, price, size, bps) if fee_of is not None else NO_FEE
                fills.append(
                    OrderFilled(
                        ours,
                        trade.id,
                        ts,
                        trade.asset_id,
                        side,
                        price,
                        size,
                        Liquidity.TAKER,
                        fee.fee_usdc,
                        fee.fee_shares,
                    )
                )
        for maker in trade.maker_orders or ():
            ours = order_id_of(maker.order_id)
            if ours is not None:
                fills.append(
                    OrderFilled(
                        ours,
                        trade.id,
                        ts,
                        maker.asset_id or trade.asset_id,
                        _maker_side(trade, maker),
                        _trade_price(maker.price),
                        _size(maker.matched_amount),
                        Liquidity.MAKER,
                    )
                )
    except ValueError as exc:  # includes MalformedMessage
        raise MalformedMessage(f"trade {trade.id[:80]}: {exc}") from None
    return fills
