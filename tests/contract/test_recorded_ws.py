"""Recorded Polymarket payloads (shared/data/polymarket) parse into the right normalized events.

Values asserted here were read off the recorded files by hand; user-channel and RTDS recordings are
out of scope for the market-data parser.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from polysnipe.adapters.clob.parsing import parse_market_message
from polysnipe.adapters.files import read_markets
from polysnipe.core.book import BookState
from polysnipe.core.events import (
    BookDelta,
    BookSnapshot,
    Event,
    LastTrade,
    Level,
    MarketResolved,
    PriceChange,
    Side,
    TickSizeChange,
)
from polysnipe.core.market import mirror_price

RS_TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
RS_MARKET = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"
TRUMP_YES = "21742633143463906290569050155826241533067272736897614950488156847949938836455"
TRUMP_NO = "48331043336612883890938759509493159234755048973500640148014422747788308965732"
V2_TOKEN = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
V2_MARKET = "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1"
BURST_TOKEN = "76670567130917723816490572615540605537878462672464291990940067659127658071111"
BURST_OTHER = "54179564009642723353355316176091991063553046330768303687769988635499280029688"


def ws(shared_data: Path, name: str) -> list[Event]:
    return parse_market_message((shared_data / "polymarket" / "ws" / name).read_bytes())


def one(shared_data: Path, name: str) -> Event:
    events = ws(shared_data, name)
    assert len(events) == 1, events
    return events[0]


# -- book --------------------------------------------------------------------------------------
def test_py_book_real_capture(shared_data: Path) -> None:
    snap = one(shared_data, "nautilus_py_book.json")
    assert isinstance(snap, BookSnapshot)
    assert (snap.token_id, snap.market, snap.ts_ms) == (TRUMP_NO, RS_MARKET, 1728799418260)
    assert snap.hash == "655a38d4977427b086c25b985993691b753ed166"
    assert (len(snap.bids), len(snap.asks)) == (76, 86)
    # bids ascending, asks descending on the wire: the first entries are the worst prices
    assert Level(1_000, 9_000_023_580_000) == snap.bids[0]
    assert Level(999_000, 10_500_100_000_000) == snap.asks[0]
    assert (max(lv.price for lv in snap.bids), min(lv.price for lv in snap.asks)) == (511_000, 514_000)
    assert snap.tick_size is None


def test_book_captured_2026_with_tick_and_75_digit_token(shared_data: Path) -> None:
    snap = one(shared_data, "nautilus_rs_ws_book_snapshot_captured.json")
    assert isinstance(snap, BookSnapshot)
    assert snap.token_id == "350977769852917329387037893294763093471844346281449484439085576212613048126"
    assert (len(snap.bids), len(snap.asks), snap.tick_size) == (7, 57, 10_000)
    assert Level(10_000, 3_149_725_720_000) == snap.bids[0]
    assert Level(80_000, 228_198_280_000) == snap.asks[-1]


def test_synthetic_books_with_and_without_event_type(shared_data: Path) -> None:
    with_type = one(shared_data, "nautilus_rs_ws_market_book_msg.json")
    without_type = one(shared_data, "nautilus_rs_ws_book_snapshot.json")
    assert isinstance(with_type, BookSnapshot)
    assert isinstance(without_type, BookSnapshot)
    assert (with_type.token_id, with_type.hash) == (RS_TOKEN, "")
    assert (Level(500_000, 200_000_000), Level(490_000, 350_000_000)) == with_type.bids
    assert (Level(480_000, 500_000_000), Level(490_000, 350_000_000), Level(500_000, 200_000_000)) == (
        without_type.bids
    )
    assert Level(530_000, 400_000_000) == without_type.asks[0]


def test_rest_book_with_empty_ask_side_parses_as_snapshot(shared_data: Path) -> None:
    path = shared_data / "polymarket" / "rest" / "nautilus_rs_clob_book_response_empty_ask.json"
    [snap] = parse_market_message(path.read_bytes())
    assert isinstance(snap, BookSnapshot)
    assert ((Level(1_000, 667_120_000), Level(2_000, 6_990_000)), (), 1_000) == (
        snap.bids,
        snap.asks,
        snap.tick_size,
    )


# -- price_change, every form --------------------------------------------------------------------
def test_price_change_old_single_form(shared_data: Path) -> None:
    pc = one(shared_data, "nautilus_py_price_change.json")
    assert (
        PriceChange(
            1723967931411,
            RS_MARKET,
            (
                BookDelta(
                    TRUMP_NO, Side.SELL, 514_000, 21_574_080_000, "bf32b3746fff40c76c98021b7f3f07261169dd26"
                ),
            ),
        )
        == pc
    )


def test_price_change_current_form(shared_data: Path) -> None:
    pc = one(shared_data, "nautilus_py_price_change_v2.json")
    assert isinstance(pc, PriceChange)
    assert (pc.ts_ms, pc.market) == (1729084877448, V2_MARKET)
    assert [(d.price, d.size) for d in pc.changes] == [
        (600_000, 3_300_000_000),
        (500_000, 3_400_000_000),
        (700_000, 3_400_000_000),
    ]
    assert {(V2_TOKEN, Side.BUY, 600_000, 700_000)} == {
        (d.token_id, d.side, d.best_bid, d.best_ask) for d in pc.changes
    }
    assert pc.changes[1].hash == "af32b3746fff40c76c98021b7f3f07261169dd27"


def test_price_change_obsolete_2024_batch_form(shared_data: Path) -> None:
    pc = one(shared_data, "nautilus_py_price_change_v2_2024.json")
    assert isinstance(pc, PriceChange)
    assert [
        BookDelta(V2_TOKEN, Side.BUY, 600_000, 3_300_000_000, ""),
        BookDelta(V2_TOKEN, Side.BUY, 500_000, 3_400_000_000, ""),
        BookDelta(V2_TOKEN, Side.BUY, 700_000, 3_400_000_000, "bf32b3746fff40c76c98021b7f3f07261169dd26"),
    ] == list(pc.changes)


def test_price_change_synthetic_with_and_without_event_type(shared_data: Path) -> None:
    single = one(shared_data, "nautilus_rs_ws_market_price_change_msg.json")
    quotes = one(shared_data, "nautilus_rs_ws_quotes.json")
    assert isinstance(single, PriceChange)
    assert isinstance(quotes, PriceChange)
    assert (
        BookDelta(RS_TOKEN, Side.BUY, 510_000, 150_000_000, "0xhash001", 510_000, 520_000),
    ) == single.changes
    assert (
        BookDelta(V2_TOKEN, Side.SELL, 490_000, 100_000_000, "0xhash002", 480_000, 490_000)
        == quotes.changes[1]
    )


# -- tick size, trades, ignored types ------------------------------------------------------------
def test_tick_size_changes(shared_data: Path) -> None:
    assert TickSizeChange(
        1739068041853,
        "115474063863764126958837769719736461272619491980773624567012766320777398670353",
        "0xbacdf04bf7f22a670dc4fb408878ec56b76f9934599829455b9371693ba84b8b",
        10_000,
        1_000,
    ) == one(shared_data, "nautilus_py_tick_size_change.json")
    expected = TickSizeChange(1703875210000, RS_TOKEN, RS_MARKET, 100_000, 10_000)
    assert expected == one(shared_data, "nautilus_rs_ws_market_tick_size_msg.json")
    assert expected == one(shared_data, "nautilus_rs_ws_tick_size_change.json")


def test_last_trades(shared_data: Path) -> None:
    assert LastTrade(1724564136087, TRUMP_YES, RS_MARKET, 491_000, 85_360_000, Side.SELL, 0) == one(
        shared_data, "nautilus_py_last_trade_price.json"
    )
    expected = LastTrade(1703875202000, RS_TOKEN, RS_MARKET, 510_000, 25_000_000, Side.BUY, 0)
    assert expected == one(shared_data, "nautilus_rs_ws_market_last_trade_msg.json")
    assert expected == one(shared_data, "nautilus_rs_ws_last_trade.json")


@pytest.mark.parametrize(
    "name",
    [
        "nautilus_rs_ws_market_best_bid_ask_msg.json",
        "nautilus_rs_ws_market_new_market_msg.json",
    ],
)
def test_custom_feature_messages_parse_to_no_event(shared_data: Path, name: str) -> None:
    assert ws(shared_data, name) == []


def test_market_resolved_names_the_winner(shared_data: Path) -> None:
    winner = "76043073756653678226373981964075571318267289248134717369284518995922789326425"
    market = "0x311d0c4b6671ab54af4970c06fcf58662516f5168997bdda209ec3db5aa6b0c1"
    assert MarketResolved(1766790415550, market, winner) == one(
        shared_data, "nautilus_rs_ws_market_resolved_msg.json"
    )


# -- the crossing burst: replaying deltas reproduces the venue's next snapshot --------------------
def burst(shared_data: Path) -> list[Event]:
    events = ws(shared_data, "nautilus_rs_ws_market_price_change_crossing_burst.json")
    assert len(events) == 51
    assert [BookSnapshot] + [PriceChange] * 49 + [BookSnapshot] == [type(e) for e in events]
    return events


def test_burst_replay_matches_final_snapshot_exactly(shared_data: Path) -> None:
    events = burst(shared_data)
    first, last = events[0], events[-1]
    assert isinstance(first, BookSnapshot)
    assert isinstance(last, BookSnapshot)
    assert BURST_TOKEN == first.token_id == last.token_id
    book = BookState(BURST_TOKEN, tick_size=1_000)
    book.apply_snapshot(first)
    applied = 0
    for ev in events[1:-1]:
        assert isinstance(ev, PriceChange)
        for d in ev.changes:
            if d.token_id == BURST_TOKEN:
                book.apply_level(d.side, d.price, d.size, ev.ts_ms)
                applied += 1
    assert applied == 49
    expected = BookState(BURST_TOKEN, tick_size=1_000)
    expected.apply_snapshot(last)
    assert expected.bids == book.bids
    assert expected.asks == book.asks
    assert expected.levels(Side.BUY) == book.levels(Side.BUY)
    assert expected.levels(Side.SELL) == book.levels(Side.SELL)
    assert (len(book.bids), len(book.asks)) == (23, 23)


def test_burst_deltas_mirror_on_the_complement_token(shared_data: Path) -> None:
    pairs = 0
    for ev in burst(shared_data)[1:-1]:
        assert isinstance(ev, PriceChange)
        ours = Counter((d.side, d.price, d.size) for d in ev.changes if d.token_id == BURST_TOKEN)
        theirs = Counter(
            (d.side.opposite, mirror_price(d.price), d.size) for d in ev.changes if d.token_id == BURST_OTHER
        )
        assert ours == theirs
        assert len(ev.changes) == sum(ours.values()) + sum(theirs.values())
        pairs += sum(ours.values())
    assert pairs == 49


# -- REST markets --------------------------------------------------------------------------------
def test_markets_page(shared_data: Path) -> None:
    markets = read_markets(shared_data / "polymarket" / "rest" / "nautilus_py_markets.json")
    # 100 listed; the one without token ids (a CLOB integration test market) has no book
    assert len(markets) == 99
    assert Counter((m.tick_size, m.min_order_size) for m in markets) == {
        (10_000, 15_000_000): 79,
        (1_000, 5_000_000): 17,
        (10_000, 5_000_000): 1,
        (10_000, 14_960_000): 1,
        (10_000, 14_970_000): 1,
    }
    assert not any(m.neg_risk for m in markets)
    assert all(m.neg_risk_market_id is None for m in markets)
    first = markets[0]
    assert first.condition_id == "0x12a0cb60174abc437bf1178367c72d11f069e1a3add20b148fb0ab4279b772b2"
    assert first.token_ids == (
        "10715043962341292242163832255523703116280692082153281340642602592290195499485",
        "80085489243215790077454313513728486445319747473476157602131800551595373270758",
    )
    assert (*first.outcomes, first.tick_size, first.min_order_size) == ("Yes", "No", 1_000, 5_000_000)


def test_single_neg_risk_market(shared_data: Path) -> None:
    [m] = read_markets(shared_data / "polymarket" / "rest" / "nautilus_py_market.json")
    assert (m.condition_id, m.token_ids, m.outcomes) == (RS_MARKET, (TRUMP_YES, TRUMP_NO), ("Yes", "No"))
    assert (m.tick_size, m.min_order_size, m.neg_risk) == (1_000, 5_000_000, True)
    assert m.neg_risk_market_id == "0xe3b1bc389210504ebcb9cffe4b0ed06ccac50561e0f24abb6379984cec030f00"
    assert (m.fee_rate, m.fee_exponent) == (0, 1)


@pytest.mark.parametrize(
    ("name", "tick"),
    [
        ("nautilus_rs_clob_market_closed_binary_accepting_true.json", 10_000),
        ("nautilus_rs_clob_market_closed_binary_accepting_false.json", 1_000),
    ],
)
def test_closed_markets(shared_data: Path, name: str, tick: int) -> None:
    [m] = read_markets(shared_data / "polymarket" / "rest" / name)
    assert (tick, 5_000_000, False) == (m.tick_size, m.min_order_size, m.neg_risk)
