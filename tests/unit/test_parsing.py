"""Wire -> domain mapping of market-channel messages, external signals, REST markets and event files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.parsing import (
    decode_market_frame,
    message_events,
    parse_market_line,
    parse_market_message,
    parse_markets,
    parse_rest_book,
)
from polysnipe.adapters.files import ReadStats, iter_events, load_events, read_markets
from polysnipe.core.events import (
    MAX_TS_MS,
    BookDelta,
    BookSnapshot,
    ExternalSignal,
    LastTrade,
    Level,
    MarketResolved,
    PriceChange,
    Side,
    TickSizeChange,
)
from polysnipe.core.units import MAX_AMOUNT_MICRO, ONE, format_micro

YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
MKT = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def book_msg(**extra: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "event_type": "book",
        "asset_id": YES,
        "market": MKT,
        "timestamp": "1703875200000",
        "hash": "abc",
        "bids": [{"price": ".48", "size": "500"}, {"price": "0.49", "size": "350.5"}],
        "asks": [{"price": "0.52", "size": "250"}, {"price": ".51", "size": "150.000001"}],
    }
    msg.update(extra)
    return msg


def pc_msg(**entry_extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "asset_id": YES,
        "price": "0.51",
        "side": "BUY",
        "size": "150.0",
        "hash": "h1",
        "best_bid": "0.51",
        "best_ask": "0.52",
    }
    entry.update(entry_extra)
    return {
        "event_type": "price_change",
        "market": MKT,
        "timestamp": "1703875201000",
        "price_changes": [
            entry,
            {
                "asset_id": NO,
                "price": "0.49",
                "side": "SELL",
                "size": "150.0",
                "hash": "h2",
                "best_bid": "",
                "best_ask": "0.49",
            },
        ],
    }


LAST_TRADE = {
    "event_type": "last_trade_price",
    "asset_id": YES,
    "market": MKT,
    "fee_rate_bps": "0",
    "price": "0.51",
    "side": "BUY",
    "size": "25.0",
    "timestamp": "1703875202000",
}
TICK = {
    "event_type": "tick_size_change",
    "asset_id": YES,
    "market": MKT,
    "old_tick_size": "0.1",
    "new_tick_size": "0.01",
    "timestamp": "1703875210000",
}
SIGNAL = {
    "event_type": "external_signal",
    "timestamp": "1700000000000",
    "asset_id": YES,
    "source": "newswire",
    "direction": "up",
    "confidence": 0.8,
    "ttl_ms": 30000,
    "fair_price": "0.62",
    "ref": "https://example.org/story",
}


def without(msg: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in msg.items() if k not in keys}


# -- message forms ------------------------------------------------------------------------------
def test_book_levels_in_micro_units_with_short_prices() -> None:
    [snap] = parse_market_line(dumps(book_msg(tick_size="0.01")))
    assert isinstance(snap, BookSnapshot)
    assert (
        snap.token_id,
        snap.market,
        snap.ts_ms,
        snap.hash,
        snap.tick_size,
    ) == (YES, MKT, 1703875200000, "abc", 10_000)
    assert (Level(480_000, 500_000_000), Level(490_000, 350_500_000)) == snap.bids
    assert (Level(520_000, 250_000_000), Level(510_000, 150_000_001)) == snap.asks


def test_book_without_hash_or_tick_and_empty_side() -> None:
    [snap] = parse_market_line(dumps(without(book_msg(asks=[]), "hash")))
    assert isinstance(snap, BookSnapshot)
    assert (snap.hash, snap.tick_size, snap.asks) == ("", None, ())


def test_price_change_current_form_maps_each_entry() -> None:
    [pc] = parse_market_message(dumps(pc_msg()))
    assert (
        PriceChange(
            1703875201000,
            MKT,
            (
                BookDelta(YES, Side.BUY, 510_000, 150_000_000, "h1", 510_000, 520_000),
                BookDelta(NO, Side.SELL, 490_000, 150_000_000, "h2", None, 490_000),
            ),
        )
        == pc
    )


def test_price_change_old_single_form() -> None:
    msg = {
        "asset_id": YES,
        "event_type": "price_change",
        "hash": "bf32",
        "market": MKT,
        "price": "0.514",
        "side": "SELL",
        "size": "0",
        "timestamp": "1723967931411",
    }
    [pc] = parse_market_message(dumps(msg))
    assert PriceChange(1723967931411, MKT, (BookDelta(YES, Side.SELL, 514_000, 0, "bf32"),)) == pc


def test_price_change_2024_batch_form_puts_hash_on_last_delta() -> None:
    msg = {
        "asset_id": YES,
        "changes": [
            {"price": "0.6", "side": "BUY", "size": "3300"},
            {"price": "0.7", "side": "SELL", "size": "0"},
        ],
        "event_type": "price_change",
        "market": MKT,
        "hash": "final",
        "timestamp": "1729084877448",
    }
    [pc] = parse_market_message(dumps(msg))
    assert (
        BookDelta(YES, Side.BUY, 600_000, 3_300_000_000, ""),
        BookDelta(YES, Side.SELL, 700_000, 0, "final"),
    ) == pc.changes  # type: ignore[union-attr]


def test_empty_price_changes_yield_no_event() -> None:
    assert parse_market_message(dumps({**pc_msg(), "price_changes": []})) == []


def test_tick_size_change_and_last_trade() -> None:
    assert [TickSizeChange(1703875210000, YES, MKT, 100_000, 10_000)] == parse_market_message(dumps(TICK))
    trade = {**LAST_TRADE, "transaction_hash": "0x1"}
    assert [LastTrade(1703875202000, YES, MKT, 510_000, 25_000_000, Side.BUY, 0)] == parse_market_message(
        dumps(trade)
    )


def test_last_trade_fee_rate_bps_kept() -> None:
    [trade] = parse_market_message(dumps({**LAST_TRADE, "fee_rate_bps": 1000}))
    assert isinstance(trade, LastTrade)
    assert trade.fee_rate_bps == 1000


@pytest.mark.parametrize(
    ("msg", "kind"),
    [
        (book_msg(), BookSnapshot),
        (pc_msg(), PriceChange),
        (
            {
                "asset_id": YES,
                "market": MKT,
                "price": ".5",
                "side": "BUY",
                "size": "1",
                "hash": "h",
                "timestamp": "1",
            },
            PriceChange,
        ),
        (TICK, TickSizeChange),
        (LAST_TRADE, LastTrade),
        (without(LAST_TRADE, "fee_rate_bps"), LastTrade),
    ],
)
def test_missing_event_type_is_inferred(msg: dict[str, Any], kind: type) -> None:
    [event] = parse_market_message(dumps(without(msg, "event_type")))
    assert kind is type(event)


@pytest.mark.parametrize(
    ("msg", "problem"),
    [
        ({"market": MKT, "assets_ids": [YES, NO], "winning_asset_id": YES}, "missing timestamp"),
        (
            {"market": MKT, "assets_ids": [YES, NO], "winning_asset_id": "9", "timestamp": "1700000000000"},
            "not one of the market's assets_ids",
        ),
    ],
)
def test_market_resolved_needs_a_time_and_a_winner_of_its_own(msg: dict[str, Any], problem: str) -> None:
    with pytest.raises(MalformedMessage, match=problem):
        parse_market_message(json.dumps(msg))


def test_market_resolved_without_event_type_is_recognised() -> None:
    msg = {"market": MKT, "assets_ids": [YES, NO], "winning_asset_id": YES, "winning_outcome": "Yes",
           "timestamp": "1700000000000"}  # fmt: skip
    assert [MarketResolved(1700000000000, MKT, YES)] == parse_market_message(json.dumps(msg))


@pytest.mark.parametrize(
    "msg",
    [
        {
            "event_type": "best_bid_ask",
            "market": MKT,
            "asset_id": YES,
            "best_bid": "0.73",
            "best_ask": "0.77",
        },
        {"market": MKT, "asset_id": YES, "best_bid": "0.73", "best_ask": "0.77", "spread": "0.04"},
        {"event_type": "new_market", "market": MKT, "assets_ids": [YES, NO], "outcomes": ["Yes", "No"]},
        {"event_type": "some_future_type", "market": MKT, "whatever": [1, 2]},
    ],
)
def test_ignored_and_unknown_types_yield_nothing(msg: dict[str, Any]) -> None:
    assert parse_market_message(dumps(msg)) == []


def test_array_frame_keeps_order_and_dict_input_matches_bytes() -> None:
    frame = [book_msg(), pc_msg(), TICK]
    from_bytes = parse_market_message(dumps(frame))
    assert [BookSnapshot, PriceChange, TickSizeChange] == [type(e) for e in from_bytes]
    assert from_bytes == parse_market_message(frame)
    assert from_bytes[:1] == parse_market_message(book_msg())
    assert parse_market_message(b"[]") == []


def test_unknown_fields_are_ignored() -> None:
    msg = pc_msg(future_field={"nested": True})
    msg["another"] = [1, "x"]
    assert parse_market_message(dumps(pc_msg())) == parse_market_message(dumps(msg))


def test_numeric_timestamp_and_receive_time_fallback() -> None:
    [a] = parse_market_message(dumps({**TICK, "timestamp": 1703875210000}))
    assert a.ts_ms == 1703875210000
    [b] = parse_market_message(dumps(without(TICK, "timestamp")), ts_recv_ms=42)
    assert b.ts_ms == 42
    [c] = parse_market_message(dumps(TICK), ts_recv_ms=42)
    assert c.ts_ms == 1703875210000


def test_external_signal() -> None:
    [sig] = parse_market_line(dumps(SIGNAL))
    assert (
        ExternalSignal(1700000000000, YES, "newswire", 1, 0.8, 30000, 620_000, "https://example.org/story")
        == sig
    )
    [down] = parse_market_line(
        dumps({**without(SIGNAL, "fair_price", "ref"), "direction": "down", "confidence": 1})
    )
    assert ExternalSignal(1700000000000, YES, "newswire", -1, 1.0, 30000, None, "") == down


# -- malformed input ----------------------------------------------------------------------------
def missing_price() -> dict[str, Any]:
    msg = pc_msg()
    del msg["price_changes"][0]["price"]
    return msg


MALFORMED: list[tuple[str, bytes, str]] = [
    ("bad json", b'{"event_type": "book", ', "invalid JSON"),
    ("not an object", b'"hello"', "invalid message"),
    ("missing price", dumps(missing_price()), "missing required field `price`"),
    ("seven decimals", dumps(pc_msg(price="0.5100001")), "more than 6 decimals"),
    ("unknown side", dumps(pc_msg(side="BID")), "BID"),
    ("lower-case side", dumps({**LAST_TRADE, "side": "buy"}), "buy"),
    ("price above one", dumps(pc_msg(price="1.5")), "price outside"),
    ("negative size", dumps(pc_msg(size="-1")), "size outside"),
    ("not a decimal", dumps(pc_msg(size="1e3")), "not a decimal"),
    ("book without asks", dumps(without(book_msg(), "asks")), "missing bids or asks"),
    ("book without asset", dumps(without(book_msg(), "asset_id")), "missing asset_id"),
    ("no timestamp", dumps(without(TICK, "timestamp")), "missing timestamp"),
    ("bad timestamp", dumps({**TICK, "timestamp": "2024-01-01"}), "epoch ms"),
    ("float timestamp", dumps({**TICK, "timestamp": 1.5}), "invalid message"),
    ("bad tick", dumps({**TICK, "new_tick_size": "0.02"}), "tick size"),
    ("trade without size", dumps(without(LAST_TRADE, "size")), "missing size"),
    ("untypeable", dumps({"market": MKT, "foo": 1}), "no event_type"),
    (
        "price_change with nothing",
        dumps({"event_type": "price_change", "market": MKT, "timestamp": "1"}),
        "none of",
    ),
    ("bad fee", dumps({**LAST_TRADE, "fee_rate_bps": "x"}), "fee_rate_bps"),
    ("signal direction", dumps({**SIGNAL, "direction": "sideways"}), "direction"),
    ("signal confidence", dumps({**SIGNAL, "confidence": 1.5}), "confidence"),
    ("signal ttl", dumps({**SIGNAL, "ttl_ms": 0}), "ttl_ms"),
    ("signal source", dumps(without(SIGNAL, "source")), "source"),
    ("signal fair price", dumps({**SIGNAL, "fair_price": 0.62}), "fair_price"),
    ("one bad message spoils its frame", dumps([book_msg(), pc_msg(side="X")]), "X"),
]


@pytest.mark.parametrize(("payload", "needle"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_raises_typed_error_with_reason(payload: bytes, needle: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        parse_market_message(payload)
    assert needle in info.value.reason


def test_malformed_decoded_object() -> None:
    with pytest.raises(MalformedMessage, match="side"):
        parse_market_message(pc_msg(side="HOLD"))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=ONE), st.integers(min_value=0, max_value=10**15), st.booleans())
def test_any_micro_price_and_size_round_trip(price: int, size: int, short: bool) -> None:
    text = format_micro(price)
    if short and text.startswith("0."):
        text = text[1:]  # the venue's ".48" spelling
    [pc] = parse_market_message(dumps(pc_msg(price=text, size=format_micro(size))))
    assert isinstance(pc, PriceChange)
    assert (price, size) == (pc.changes[0].price, pc.changes[0].size)


# -- REST markets -------------------------------------------------------------------------------
def wire_market(**extra: Any) -> dict[str, Any]:
    market: dict[str, Any] = {
        "condition_id": "0xc1",
        "question": "Q?",
        "tokens": [{"token_id": YES, "outcome": "Yes", "price": 0.5}, {"token_id": NO, "outcome": "No"}],
        "minimum_tick_size": 0.001,
        "minimum_order_size": 14.96,
        "neg_risk": False,
        "neg_risk_market_id": "",
        "rewards": {"rates": None},
    }
    market.update(extra)
    return market


def test_markets_exact_numbers_from_page_list_and_single() -> None:
    page = {"data": [wire_market()], "next_cursor": "LTE=", "limit": 100, "count": 1}
    [m] = parse_markets(dumps(page))
    assert (
        m.token_ids,
        m.outcomes,
        m.tick_size,
        m.min_order_size,
        m.neg_risk,
        m.neg_risk_market_id,
        m.fee_rate,
        m.fee_exponent,
        m.question,
    ) == ((YES, NO), ("Yes", "No"), 1_000, 14_960_000, False, None, 0, 1, "Q?")
    assert [m] == parse_markets(dumps([wire_market()]))
    assert [m] == parse_markets(dumps(wire_market()))
    assert [m] == parse_markets(dumps(wire_market(minimum_tick_size="0.001", minimum_order_size="14.96")))


def test_markets_neg_risk_and_fees() -> None:
    [m] = parse_markets(dumps(wire_market(neg_risk=True, neg_risk_market_id="0xe3", fd={"r": 0.04, "e": 2})))
    assert (m.neg_risk, m.neg_risk_market_id, m.fee_rate, m.fee_exponent) == (True, "0xe3", 40_000, 2)


def test_markets_without_token_ids_are_skipped() -> None:
    bookless = wire_market(
        condition_id="0xc2", tokens=[{"token_id": "", "outcome": ""}] * 2, minimum_order_size=0
    )
    assert [m.condition_id for m in parse_markets(dumps([bookless, wire_market()]))] == ["0xc1"]


@pytest.mark.parametrize(
    ("market", "needle"),
    [
        ({k: v for k, v in wire_market().items() if k != "neg_risk"}, "neg_risk"),
        (wire_market(minimum_tick_size=0.02), "tick size"),
        (wire_market(minimum_order_size=0.0000001), "more than 6 decimals"),
        (wire_market(minimum_order_size=-5), "must be in [0,"),
        (wire_market(tokens=[{"token_id": YES, "outcome": "Yes"}]), "expected 2 token ids"),
        (
            wire_market(tokens=[{"token_id": YES, "outcome": "Yes"}, {"token_id": "", "outcome": "No"}]),
            "token",
        ),
    ],
)
def test_malformed_markets(market: dict[str, Any], needle: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        parse_markets(dumps({"data": [market]}))
    assert needle in info.value.reason


def test_markets_bad_json() -> None:
    with pytest.raises(MalformedMessage, match="markets"):
        parse_markets(b"{")


# -- files --------------------------------------------------------------------------------------
def test_iter_events_counts_malformed_lines_and_keeps_going(tmp_path: Path) -> None:
    lines = [
        dumps(book_msg()),  # 1
        b"",  # 2 blank: skipped, not counted
        b"{not json",  # 3
        dumps(pc_msg()),  # 4
        dumps(pc_msg(side="X")),  # 5
        dumps({"event_type": "best_bid_ask", "market": MKT, "asset_id": YES, "best_bid": "0.1"}),  # 6
        dumps([TICK, LAST_TRADE]),  # 7
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines))  # no trailing newline on the last line
    stats = ReadStats(max_samples=1)
    got = [(n, [type(e) for e in evs]) for n, evs in iter_events(path, stats)]
    assert [(1, [BookSnapshot]), (4, [PriceChange]), (7, [TickSizeChange, LastTrade])] == got
    assert (stats.lines, stats.events, stats.malformed) == (6, 4, 2)
    assert len(stats.samples) == 1
    assert stats.samples[0][0] == 3
    assert "invalid JSON" in stats.samples[0][1]


def test_load_events_sorts_stably_by_timestamp(tmp_path: Path) -> None:
    rows = [
        {**TICK, "timestamp": "300"},
        {**LAST_TRADE, "timestamp": "100"},
        {**SIGNAL, "timestamp": "300"},
        {**TICK, "timestamp": "100", "new_tick_size": "0.001"},
        {**TICK, "timestamp": "200"},
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(dumps(r) for r in rows) + b"\n")
    events, stats = load_events(path)
    expected = [
        (100, LastTrade),
        (100, TickSizeChange),
        (200, TickSizeChange),
        (300, TickSizeChange),
        (300, ExternalSignal),
    ]
    assert expected == [(e.ts_ms, type(e)) for e in events]
    assert events[1].new_tick == 1_000  # type: ignore[union-attr]
    assert (stats.lines, stats.events, stats.malformed) == (5, 5, 0)


def test_read_markets(tmp_path: Path) -> None:
    path = tmp_path / "markets.json"
    path.write_bytes(dumps({"data": [wire_market()], "next_cursor": "LTE="}))
    assert [m.condition_id for m in read_markets(path)] == ["0xc1"]


_PC_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("current form", pc_msg()),
    ("numeric timestamp", {**pc_msg(), "timestamp": 1703875201000}),
    ("no timestamp", without(pc_msg(), "timestamp")),
    ("bad timestamp", {**pc_msg(), "timestamp": "2024-01-01"}),
    ("non-ascii digits", {**pc_msg(), "timestamp": "١٢٣"}),
    ("no market", without(pc_msg(), "market")),
    ("empty entries", {**pc_msg(), "price_changes": []}),
    ("bad price", pc_msg(price="1.5")),
    ("bad best ask", pc_msg(best_ask="0.5.1")),
]


@pytest.mark.parametrize("ts_recv_ms", [None, 42])
@pytest.mark.parametrize("msg", [v[1] for v in _PC_VARIANTS], ids=[v[0] for v in _PC_VARIANTS])
def test_price_change_fast_path_matches_per_message_mapping(
    msg: dict[str, Any], ts_recv_ms: int | None
) -> None:
    # parse_market_line maps a lone price_change without the per-message dispatch; the result, or
    # the error and its reason, must be what the general path (used by the live feed) gives
    def outcome(parse: Any) -> Any:
        try:
            return parse()
        except MalformedMessage as exc:
            return ("malformed", exc.reason)

    frame = dumps(msg)
    fast = outcome(lambda: parse_market_line(frame, ts_recv_ms=ts_recv_ms))
    general = outcome(
        lambda: [e for m in decode_market_frame(frame) for e in message_events(m, ts_recv_ms=ts_recv_ms)]
    )
    assert general == fast


# -- hostile input (issue 11 items 8-10): each of these crashed, hung or parsed on the old decoders --
def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


DEEP_LINES = {
    "bare brackets": b"[" * 1_000 + b"]" * 1_000,
    "nested objects": nested(1_000),
    "inside a known message": dumps(pc_msg())[:-1] + b',"extra":' + nested(1_000) + b"}",
}


@pytest.mark.parametrize("line", list(DEEP_LINES.values()), ids=list(DEEP_LINES))
@pytest.mark.parametrize(
    "decode",
    [parse_market_line, parse_market_message, decode_market_frame, parse_markets, parse_rest_book],
    ids=lambda f: f.__name__,
)
def test_json_nested_past_the_recursion_limit_is_malformed(decode: Any, line: bytes) -> None:
    # msgspec raises RecursionError (not a DecodeError) even for a field it only skips
    with pytest.raises(MalformedMessage):
        decode(line)


def test_deep_nesting_cannot_crash_a_process_whose_recursion_limit_was_raised() -> None:
    # importing py_ecc (the official client does) sets the limit to 100,000; msgspec then recursed
    # until the C stack overflowed: a segfault. Run in a child process, which would die of it.
    code = """
import sys
sys.setrecursionlimit(100_000)
from polysnipe.adapters.clob import parsing
from polysnipe.adapters.clob.errors import MalformedMessage, error_from_response
deep = b"[" * 100_000 + b"]" * 100_000
for text in (deep, b'{"x":' + deep + b"}", b"[" * 200_000, b'{"a":' * 60_000 + b"1" + b"}" * 60_000):
    for decode in (parsing.parse_market_line, parsing.decode_market_frame, parsing.parse_markets,
                   parsing.parse_rest_book, parsing.decode_user_frame, parsing.parse_tick_size):
        try:
            decode(text)
        except MalformedMessage:
            pass
        else:
            raise SystemExit(3)
    error_from_response(400, text)
print("survived")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (0, "survived") == (done.returncode, done.stdout.strip()), done.stderr[-2000:]


def test_long_texts_with_brackets_inside_strings_are_not_mistaken_for_deep_ones() -> None:
    question = "[" * 3_000 + "{" * 3_000  # 6 KB of brackets, all inside a string
    msg = {"event_type": "new_market", "market": MKT, "assets_ids": [YES, NO], "question": question}
    assert [] == parse_market_line(dumps(msg))
    assert [] == parse_market_line(dumps(msg).decode())
    deep_but_quoted = dumps([book_msg(), {**msg, "question": '"\\' * 2_000}])  # escapes, still a string
    assert [BookSnapshot] == [type(e) for e in parse_market_line(deep_but_quoted)]


def test_a_deeply_nested_line_is_counted_and_the_file_read_on(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join([dumps(TICK), DEEP_LINES["inside a known message"], dumps(LAST_TRADE)]))
    events, stats = load_events(path)
    assert [LastTrade, TickSizeChange] == sorted((type(e) for e in events), key=lambda t: t.__name__)
    assert (1, 2) == (stats.malformed, stats.samples[0][0])


@pytest.mark.parametrize(
    "timestamp",
    [2**62, str(2**62), 2**63, 2**64 + 1, "7258118400000", 7_258_118_400_000, -1, "9" * 400],
)
@pytest.mark.parametrize(
    "msg", [TICK, pc_msg(), LAST_TRADE, SIGNAL, book_msg()], ids=lambda m: m["event_type"]
)
def test_timestamps_outside_the_window_are_malformed(msg: dict[str, Any], timestamp: Any) -> None:
    # 2^62 is the simulated venue's "never": a message stamped with it used to loop it forever
    with pytest.raises(MalformedMessage, match="timestamp"):
        parse_market_line(dumps({**msg, "timestamp": timestamp}))


def test_timestamps_inside_the_window_parse() -> None:
    for ts in (0, 1, MAX_TS_MS):
        [event] = parse_market_line(dumps({**TICK, "timestamp": str(ts)}))
        assert ts == event.ts_ms


# Arabic-Indic, full-width, Devanagari digits; int() and str.isdigit() take all of them
NOT_ASCII_DIGITS = ["١٢", "１２", "१२", "١٧٠٣٨٧٥٢٠١٠٠٠", "１７０３８７５２０１０００"]
NOT_PLAIN_NUMBERS = [" 12 ", "1_000", "+1", "12\n"]


@pytest.mark.parametrize("text", NOT_ASCII_DIGITS + NOT_PLAIN_NUMBERS)
@pytest.mark.parametrize(
    "msg",
    [
        lambda t: {**TICK, "timestamp": t},
        lambda t: pc_msg(price=f"0.{t}"),
        lambda t: pc_msg(size=t),
        lambda t: pc_msg(best_bid=f".{t}"),
        lambda t: {**LAST_TRADE, "fee_rate_bps": t},
        lambda t: {**LAST_TRADE, "size": t},
        lambda t: {**SIGNAL, "fair_price": f"0.{t}"},
        lambda t: {**TICK, "new_tick_size": f"0.0{t}"},
        lambda t: book_msg(bids=[{"price": "0.5", "size": t}]),
    ],
    ids=[
        "timestamp",
        "price",
        "size",
        "best_bid",
        "fee_rate_bps",
        "trade size",
        "fair_price",
        "tick",
        "level",
    ],
)
def test_only_ascii_digits_are_numbers(msg: Any, text: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_market_line(dumps(msg(text)))


@pytest.mark.parametrize("text", NOT_ASCII_DIGITS + NOT_PLAIN_NUMBERS)
@pytest.mark.parametrize("field", ["minimum_tick_size", "minimum_order_size"])
def test_market_decimals_sent_as_strings_are_ascii_only(field: str, text: str) -> None:
    # msgspec's Decimal reads " 12 ", "1_000" and "١٢" from a JSON string without complaint
    with pytest.raises(MalformedMessage, match=field):
        parse_markets(dumps(wire_market(**{field: text})))


@pytest.mark.parametrize(
    ("trade", "needle"),
    [
        ({**LAST_TRADE, "price": "0"}, "trade price"),
        ({**LAST_TRADE, "price": "1"}, "trade price"),
        ({**LAST_TRADE, "fee_rate_bps": "10000"}, "fee_rate_bps"),
        ({**LAST_TRADE, "fee_rate_bps": -1}, "fee_rate_bps"),
        ({**LAST_TRADE, "size": "1000000000001"}, "size outside"),
        ({**SIGNAL, "ttl_ms": 2**62}, "ttl_ms"),
    ],
)
def test_numbers_out_of_range_are_malformed(trade: dict[str, Any], needle: str) -> None:
    with pytest.raises(MalformedMessage, match=needle):
        parse_market_line(dumps(trade))


def test_sizes_up_to_the_bound_parse() -> None:
    [pc] = parse_market_line(dumps(pc_msg(size="1000000000000")))
    assert MAX_AMOUNT_MICRO == pc.changes[0].size  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "fd",
    [{"r": 0.04, "e": 0}, {"r": 0.04, "e": 100_000}, {"r": 0.04, "e": -1}, {"r": 1, "e": 1}, {"r": -0.01}],
    ids=["exponent 0", "exponent 100000", "negative exponent", "rate 1", "negative rate"],
)
def test_fee_parameters_out_of_range_are_refused_at_load(fd: dict[str, Any]) -> None:
    # an exponent of 0 loaded and failed at the first fill; one of 100000 stalled it
    with pytest.raises(MalformedMessage, match=r"fee|fd\.r"):
        parse_markets(dumps(wire_market(fd=fd)))


@pytest.mark.parametrize("tick", [b"1e309", b'"1e309"', b"1e999999999", b"-0.01", b"0.02e1", b"true"])
def test_absurd_ticks_are_malformed_not_overflows(tick: bytes) -> None:
    raw = dumps(wire_market(minimum_tick_size="TICK")).replace(b'"TICK"', tick)
    with pytest.raises(MalformedMessage, match="tick"):
        parse_markets(raw)


def test_token_ids_are_uint256_decimal_digits() -> None:
    for bad in ["١٢", "0x12", " 12", str(1 << 256)]:
        tokens = [{"token_id": bad, "outcome": "Yes"}, {"token_id": NO, "outcome": "No"}]
        with pytest.raises(MalformedMessage, match="token id"):
            parse_markets(dumps(wire_market(tokens=tokens)))


@pytest.mark.parametrize(
    "event_type", ["tick_size_change", "best_bid_ask", "some_future_type", "price_change", None]
)
def test_rest_book_is_read_as_a_book_whatever_event_type_it_claims(event_type: str | None) -> None:
    # these raised AssertionError (tick_size_change) or ValueError from tuple unpacking (others)
    msg = {**without(book_msg(), "event_type"), "event_type": event_type, "new_tick_size": "0.01"}
    book = parse_rest_book(dumps(msg))
    assert (YES, 2) == (book.snapshot.token_id, len(book.snapshot.bids))


@pytest.mark.parametrize("payload", [b"[]", b"null", b'{"bids": []}', dumps(without(book_msg(), "asks"))])
def test_rest_book_defects_are_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedMessage, match="book"):
        parse_rest_book(payload)


def test_every_malformed_line_reaches_the_callback(tmp_path: Path) -> None:
    bad = [b"{not json", DEEP_LINES["nested objects"], dumps(pc_msg(side="X"))] * 10  # 30 > max_samples
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join([dumps(TICK), *bad, dumps(LAST_TRADE)]) + b"\r\n")
    seen: list[tuple[int, str, bytes]] = []
    events, stats = load_events(path, on_malformed=lambda n, reason, raw: seen.append((n, reason, raw)))
    assert [n for n, _, _ in seen] == list(range(2, 32))
    assert [raw for _, _, raw in seen] == bad  # whole, without the line end
    assert all(reason for _, reason, _ in seen)
    assert (30, 20, 2) == (stats.malformed, len(stats.samples), len(events))
    assert [(n, r) for n, r, _ in seen[:20]] == stats.samples
