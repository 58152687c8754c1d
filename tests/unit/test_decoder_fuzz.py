"""Every decoder of the CLOB adapter against hostile input: only MalformedMessage may escape.

Each decoder gets arbitrary bytes, arbitrary JSON, JSON nested far past the recursion limit, and
valid messages with one field replaced by something hostile (huge numbers, Unicode or full-width
digits, Python int() niceties, wrong types, nesting). Valid messages generated from integer values
must still parse to exactly those values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polysnipe.adapters.clob.errors import MalformedMessage, error_from_response
from polysnipe.adapters.clob.execution import OrderIndex
from polysnipe.adapters.clob.market_data import BookKeeper
from polysnipe.adapters.clob.parsing import (
    decode_json,
    decode_market_frame,
    decode_user_frame,
    epoch_ms,
    message_events,
    next_cursor,
    parse_clob_market_fees,
    parse_market_line,
    parse_market_message,
    parse_markets,
    parse_neg_risk,
    parse_rest_book,
    parse_server_time,
    parse_tick_size,
    parse_version,
)
from polysnipe.adapters.clob.schemas import (
    WireCancelResponse,
    WireOrder,
    WireOrderResponse,
    WireOrdersPage,
    WireTradesPage,
)
from polysnipe.adapters.clob.user_channel import UserChannel
from polysnipe.adapters.files import ReadStats, iter_events
from polysnipe.core.events import MAX_TS_MS, BookSnapshot, LastTrade, PriceChange, Side
from polysnipe.core.fees import MAX_FEE_EXPONENT
from polysnipe.core.market import VALID_TICKS
from polysnipe.core.units import MAX_AMOUNT_MICRO, ONE, format_micro, parse_micro

YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
MKT = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"
VENUE_ORDER = "0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef"
MAKER_ORDER = "0xfedcba0987654321fedcba0987654321fedcba0987654321fedcba0987654321"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- valid seeds: one per message shape, spelled as the venue spells it ---------------------------
LEVELS = [{"price": ".48", "size": "500"}, {"price": "0.49", "size": "350.5"}]
SEEDS: dict[str, Any] = {
    "book": {
        "event_type": "book",
        "asset_id": YES,
        "market": MKT,
        "timestamp": "1703875200000",
        "hash": "abc",
        "bids": LEVELS,
        "asks": [{"price": "0.52", "size": "250"}],
        "tick_size": "0.01",
    },
    "price_change": {
        "event_type": "price_change",
        "market": MKT,
        "timestamp": "1703875201000",
        "price_changes": [
            {"asset_id": YES, "price": "0.51", "side": "BUY", "size": "150", "hash": "h", "best_bid": "0.51"},
            {"asset_id": NO, "price": "0.49", "side": "SELL", "size": "0", "best_ask": ""},
        ],
    },
    "price_change_2024": {
        "asset_id": YES,
        "market": MKT,
        "timestamp": 1729084877448,
        "hash": "final",
        "changes": [{"price": "0.6", "side": "BUY", "size": "3300"}],
    },
    "tick_size_change": {
        "event_type": "tick_size_change",
        "asset_id": YES,
        "market": MKT,
        "old_tick_size": "0.1",
        "new_tick_size": "0.01",
        "timestamp": "1703875210000",
    },
    "last_trade_price": {
        "event_type": "last_trade_price",
        "asset_id": YES,
        "market": MKT,
        "fee_rate_bps": "1000",
        "price": "0.51",
        "side": "BUY",
        "size": "25.0",
        "timestamp": "1703875202000",
    },
    "external_signal": {
        "event_type": "external_signal",
        "timestamp": "1700000000000",
        "asset_id": YES,
        "source": "newswire",
        "direction": "up",
        "confidence": 0.8,
        "ttl_ms": 30000,
        "fair_price": "0.62",
    },
}
MARKET: dict[str, Any] = {
    "condition_id": "0xc1",
    "question": "Q?",
    "tokens": [{"token_id": YES, "outcome": "Yes"}, {"token_id": NO, "outcome": "No"}],
    "minimum_tick_size": 0.001,
    "minimum_order_size": "14.96",
    "neg_risk": False,
    "fd": {"r": 0.04, "e": 1},
}
REST_BOOK: dict[str, Any] = {
    "market": MKT,
    "asset_id": YES,
    "timestamp": "1703875200000",
    "hash": "",
    "bids": LEVELS,
    "asks": [{"price": "0.52", "size": "250"}],
    "min_order_size": "5",
    "tick_size": "0.01",
    "neg_risk": False,
    "last_trade_price": "0.5",
}
USER_ORDER: dict[str, Any] = {
    "event_type": "order",
    "type": "PLACEMENT",
    "id": VENUE_ORDER,
    "status": "LIVE",
    "market": MKT,
    "asset_id": YES,
    "side": "BUY",
    "original_size": "100",
    "size_matched": "0",
    "price": "0.5",
    "timestamp": "1703875200001",
}
USER_TRADE: dict[str, Any] = {
    "event_type": "trade",
    "type": "TRADE",
    "id": "trade-1",
    "status": "MATCHED",
    "asset_id": YES,
    "side": "BUY",
    "size": "25",
    "price": "0.5",
    "taker_order_id": VENUE_ORDER,
    "matchtime": "1703875200",
    "maker_orders": [
        {"order_id": MAKER_ORDER, "matched_amount": "25", "price": "0.5", "asset_id": YES, "side": "SELL"}
    ],
}
REST_ANSWERS: dict[str, Any] = {
    "tick-size": {"minimum_tick_size": 0.01},
    "neg-risk": {"neg_risk": True},
    "version": {"version": 2},
    "time": 1764061200,
    "clob-markets": {"t": [{"t": YES}, {"t": NO}], "mts": 0.01, "nr": False, "fd": {"r": 0.04, "e": 1}},
    "order response": {"success": True, "errorMsg": "", "orderID": VENUE_ORDER, "status": "live"},
    "cancel": {"canceled": [VENUE_ORDER], "not_canceled": {MAKER_ORDER: "order not found"}},
    "orders page": {"data": [USER_ORDER], "next_cursor": "LTE="},
    "trades page": {"data": [USER_TRADE], "next_cursor": "LTE="},
}


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


# -- hostile values --------------------------------------------------------------------------------
UNICODE_DIGITS = st.text(st.characters(categories=["Nd"]), min_size=1, max_size=14)
FULL_WIDTH = st.sampled_from(["１２", "０.５", "１７０３８７５２００００", "٠.٥", "١٧٢٥٨٤١٧٤١", "१२", "١٢"])
NICETIES = st.sampled_from(
    [" 12 ", "1_000", "+1", "0.5 ", "\t1", "1e3", "0x10", "inf", "nan", "-0", "1.", ".", "", "٫5", "１"]
)
HUGE = st.one_of(
    st.integers(min_value=2**62, max_value=2**200),
    st.integers(max_value=-1, min_value=-(2**200)),
    st.sampled_from([2**62, 2**63, 2**64, 10**19, 1 << 62, 7_258_118_400_000]),
    st.sampled_from([1e308, -1e308, 1.5, 0.0001, 1e-300]),
    st.integers(min_value=14, max_value=400).map(lambda n: "9" * n),
)
JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()
)
ANY_JSON = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
HOSTILE = st.one_of(UNICODE_DIGITS, FULL_WIDTH, NICETIES, HUGE, ANY_JSON)


def deep(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


DEPTHS = st.sampled_from([1_000, 1_001, 5_000, 100_000])
DEEP = st.builds(deep, DEPTHS, st.sampled_from(["list", "object"]))


def deep_in(seed: Any, nested: bytes) -> bytes:
    """`seed` with a deeply nested value in an extra field (skipped, but still parsed) and as a
    field that the decoder reads."""
    text = dumps(seed)
    if isinstance(seed, dict) and seed:
        return b'{"zz_unknown":' + nested + b"," + text[1:]
    return b"[" + nested + b"," + text + b"]"


@st.composite
def mutated(draw: st.DrawFn, seed: Any) -> bytes:
    """`seed` with one value, anywhere in it, replaced by a hostile one."""
    doc = json.loads(json.dumps(seed))
    parent: Any = None
    key: Any = None
    node = doc
    while isinstance(node, dict | list) and node and draw(st.booleans()):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = draw(st.sampled_from(keys))
        parent, node = node, node[key]
    if parent is None:
        return dumps(draw(HOSTILE))
    parent[key] = draw(HOSTILE)
    return dumps(doc)


def hostile_inputs(seeds: list[Any]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=256),
        ANY_JSON.map(dumps),
        DEEP,
        st.builds(deep_in, st.sampled_from(seeds), DEEP),
        st.sampled_from(seeds).flatmap(mutated),
        st.sampled_from(seeds).map(lambda s: dumps(s)[: len(dumps(s)) // 2]),
    )


def only_malformed(decode: Callable[[bytes], object], data: bytes) -> None:
    try:
        decode(data)
    except MalformedMessage as exc:
        assert exc.reason  # always a reason for the dead letters and the errors table


# -- market channel, external signals, event files -----------------------------------------------
MARKET_SEEDS = [*SEEDS.values(), list(SEEDS.values())[:3]]


def _via_frame(data: bytes) -> None:
    for msg in decode_market_frame(data):
        message_events(msg, ts_recv_ms=1)


def _via_keeper(data: bytes) -> None:
    keeper = BookKeeper()
    keeper.track([YES, NO], 0)
    keeper.set_market_meta(YES, min_order_size="5", neg_risk=False)
    keeper.on_frame(data, 1)


def _via_objects(data: bytes) -> None:
    if len(data) > 4_096:
        return  # an untyped decode here could itself recurse past the C stack (see parsing.py)
    try:
        obj = msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return  # not JSON: nothing to hand over as a decoded object
    if isinstance(obj, dict | list):
        parse_market_message(obj)


MARKET_DECODERS: list[Callable[[bytes], object]] = [
    parse_market_line,
    parse_market_message,
    _via_frame,
    _via_keeper,
    _via_objects,
]


@pytest.mark.parametrize("decode", MARKET_DECODERS, ids=lambda f: f.__name__)
@FUZZ
@given(data=hostile_inputs(MARKET_SEEDS))
def test_market_channel_decoders_raise_only_malformed(decode: Callable[[bytes], object], data: bytes) -> None:
    only_malformed(decode, data)


@FUZZ
@given(data=hostile_inputs(MARKET_SEEDS))
def test_a_str_frame_with_any_characters_raises_only_malformed(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")  # lone surrogates included
    only_malformed(parse_market_line, text)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(hostile_inputs(MARKET_SEEDS), min_size=1, max_size=6))
def test_event_files_count_every_hostile_line(tmp_path: Path, lines: list[bytes]) -> None:
    path = tmp_path / "events.jsonl"
    body = [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines]
    path.write_bytes(b"\n".join(body))
    stats = ReadStats()
    seen: list[int] = []
    list(iter_events(path, stats, on_malformed=lambda n, reason, raw: seen.append(n)))
    assert stats.malformed == len(seen)
    assert stats.lines >= stats.malformed


# -- REST markets and books ----------------------------------------------------------------------
@FUZZ
@given(data=hostile_inputs([MARKET, {"data": [MARKET], "next_cursor": "LTE="}, [MARKET]]))
def test_parse_markets_raises_only_malformed(data: bytes) -> None:
    only_malformed(parse_markets, data)


@FUZZ
@given(data=hostile_inputs([REST_BOOK, {**REST_BOOK, "event_type": "tick_size_change"}]))
def test_parse_rest_book_raises_only_malformed(data: bytes) -> None:
    only_malformed(parse_rest_book, data)


# -- user channel ----------------------------------------------------------------------------------
def _user_channel(data: bytes) -> None:
    index = OrderIndex()
    index.add("ours", VENUE_ORDER, 100_000_000)
    index.add("maker", MAKER_ORDER, 100_000_000)
    UserChannel(index).on_frame(data, 1)


@pytest.mark.parametrize("decode", [decode_user_frame, _user_channel], ids=lambda f: f.__name__)
@FUZZ
@given(data=hostile_inputs([USER_ORDER, USER_TRADE, [USER_ORDER, USER_TRADE]]))
def test_user_channel_decoders_raise_only_malformed(decode: Callable[[bytes], object], data: bytes) -> None:
    only_malformed(decode, data)


@FUZZ
@given(value=st.one_of(HOSTILE, st.text(max_size=40)))
def test_epoch_ms_raises_only_malformed(value: Any) -> None:
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            ms = epoch_ms(value)
        except MalformedMessage:
            return
        assert ms is None or 0 <= ms <= MAX_TS_MS


# -- REST answers ----------------------------------------------------------------------------------
REST_DECODERS: dict[str, Callable[[bytes], object]] = {
    "tick-size": parse_tick_size,
    "neg-risk": parse_neg_risk,
    "version": parse_version,
    "time": parse_server_time,
    "clob-markets": parse_clob_market_fees,
    "order response": lambda d: decode_json(msgspec.json.Decoder(WireOrderResponse), d, "order"),
    "cancel": lambda d: decode_json(msgspec.json.Decoder(WireCancelResponse), d, "cancel"),
    "orders page": lambda d: decode_json(msgspec.json.Decoder(WireOrdersPage), d, "orders"),
    "trades page": lambda d: decode_json(msgspec.json.Decoder(WireTradesPage), d, "trades"),
}


@pytest.mark.parametrize("name", list(REST_DECODERS))
@FUZZ
@given(data=st.data())
def test_rest_answer_decoders_raise_only_malformed(name: str, data: st.DataObject) -> None:
    payload = data.draw(hostile_inputs([REST_ANSWERS[name]]))
    only_malformed(REST_DECODERS[name], payload)
    only_malformed(next_cursor, payload)
    only_malformed(lambda d: decode_json(msgspec.json.Decoder(WireOrder | None), d, "order"), payload)


# -- valid input still parses, to exactly the values it was built from ---------------------------
prices = st.integers(min_value=0, max_value=ONE)
trade_prices = st.integers(min_value=1, max_value=ONE - 1)
sizes = st.integers(min_value=0, max_value=MAX_AMOUNT_MICRO)
timestamps = st.integers(min_value=0, max_value=MAX_TS_MS)


def spelled(value: int, short: bool) -> str:
    text = format_micro(value)
    return text[1:] if short and text.startswith("0.") else text  # the venue's ".48"


@FUZZ
@given(
    st.lists(
        st.tuples(prices, sizes, st.sampled_from(["BUY", "SELL"]), st.booleans()), min_size=1, max_size=8
    ),
    timestamps,
    st.booleans(),
)
def test_valid_price_changes_parse_to_their_values(
    entries: list[tuple[int, int, str, bool]], ts: int, numeric_ts: bool
) -> None:
    msg = {
        "event_type": "price_change",
        "market": MKT,
        "timestamp": ts if numeric_ts else str(ts),
        "price_changes": [
            {"asset_id": YES, "price": spelled(p, short), "size": format_micro(q), "side": side}
            for p, q, side, short in entries
        ],
    }
    expected = [(p, q, Side[side]) for p, q, side, _ in entries]
    for parse in (parse_market_line, parse_market_message):
        [event] = parse(dumps(msg))
        assert isinstance(event, PriceChange)
        assert (ts, expected) == (event.ts_ms, [(d.price, d.size, d.side) for d in event.changes])


@FUZZ
@given(st.lists(st.tuples(prices, sizes), max_size=6), timestamps, st.sampled_from(sorted(VALID_TICKS)))
def test_valid_books_parse_to_their_values(levels: list[tuple[int, int]], ts: int, tick: int) -> None:
    wire = [{"price": format_micro(p), "size": format_micro(q)} for p, q in levels]
    msg = {**SEEDS["book"], "timestamp": str(ts), "bids": wire, "asks": wire, "tick_size": format_micro(tick)}
    [snap] = parse_market_line(dumps(msg))
    assert isinstance(snap, BookSnapshot)
    assert (ts, levels, tick) == (snap.ts_ms, [tuple(lv) for lv in snap.bids], snap.tick_size)
    rest = parse_rest_book(dumps({k: v for k, v in msg.items() if k != "event_type"}))
    assert snap == rest.snapshot


@FUZZ
@given(trade_prices, sizes, st.integers(min_value=0, max_value=9_999), timestamps)
def test_valid_trades_parse_to_their_values(price: int, size: int, fee_bps: int, ts: int) -> None:
    msg = {**SEEDS["last_trade_price"], "price": format_micro(price), "size": format_micro(size)}
    [trade] = parse_market_line(dumps({**msg, "fee_rate_bps": str(fee_bps), "timestamp": ts}))
    assert LastTrade(ts, YES, MKT, price, size, Side.BUY, fee_bps) == trade


@FUZZ
@given(
    st.sampled_from(sorted(VALID_TICKS)),
    st.integers(min_value=0, max_value=10**15),
    st.integers(min_value=0, max_value=ONE - 1),
    st.integers(min_value=1, max_value=MAX_FEE_EXPONENT),
    st.booleans(),
)
def test_valid_markets_parse_to_their_values(
    tick: int, min_size: int, rate: int, exponent: int, as_strings: bool
) -> None:
    def number(micro: int) -> Any:
        # a JSON number written from its exact decimal text, or the same text as a string
        text = format_micro(micro)
        return text if as_strings else msgspec.Raw(text.encode())

    market = {
        **MARKET,
        "minimum_tick_size": number(tick),
        "minimum_order_size": number(min_size),
        "fd": {"r": msgspec.Raw(format_micro(rate).encode()), "e": exponent},
    }
    [m] = parse_markets(msgspec.json.encode(market))
    assert (tick, min_size, rate, exponent) == (m.tick_size, m.min_order_size, m.fee_rate, m.fee_exponent)


@FUZZ
@given(st.integers(min_value=-(10**29), max_value=10**29))  # up to MAX_WHOLE_DIGITS whole digits
def test_parse_micro_reads_every_value_it_formats(value: int) -> None:
    assert value == parse_micro(format_micro(value))


@FUZZ
@given(st.one_of(UNICODE_DIGITS, FULL_WIDTH, NICETIES, st.text(max_size=12)))
def test_parse_micro_reads_only_plain_ascii_decimals(text: str) -> None:
    try:
        value = parse_micro(text)
    except ValueError:
        return
    assert text.isascii() and text.strip() == text and "_" not in text and "+" not in text
    assert value == parse_micro(format_micro(value))


@FUZZ
@given(
    body=hostile_inputs([{"error": "not enough balance"}, {"error_msg": "x", "heartbeat_id": "h"}]),
    status=st.sampled_from([400, 401, 404, 425, 429, 500, 503]),
)
def test_error_bodies_always_map_to_a_typed_error(body: bytes, status: int) -> None:
    assert status == error_from_response(status, body).status
