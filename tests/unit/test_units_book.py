from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit import event_legs
from polysnipe.core.book import BookState
from polysnipe.core.events import BookSnapshot, Level, Side
from polysnipe.core.market import Market, MarketRegistry, UnknownToken, mirror_price
from polysnipe.core.units import (
    MAX_AMOUNT_MICRO,
    MAX_WHOLE_DIGITS,
    MICRO,
    format_micro,
    notional,
    parse_micro,
    price_from_float,
)


@pytest.mark.parametrize(
    ("text", "micro"),
    [
        ("0.48", 480_000),
        (".48", 480_000),
        ("5", 5 * MICRO),
        ("3149725.72", 3_149_725_720_000),
        ("-1.5", -1_500_000),
        ("0.000001", 1),
        ("1.0000000", MICRO),
        ("0", 0),
    ],
)
def test_parse_micro_exact(text: str, micro: int) -> None:
    assert micro == parse_micro(text)


@pytest.mark.parametrize(
    "bad",
    [
        *["", "abc", "1.2.3", "0.0000001", "1e-3", "--1", ".", "-", "1" * (MAX_WHOLE_DIGITS + 1)],
        # digits str.isdigit() and int() accept but no venue sends: Arabic-Indic, full-width, Devanagari
        *["١٢", "٠.٥", "１２", "０.５", "१२", "1٢"],
        # int() niceties
        *[" 12 ", "12 ", "\t1", "1_000", "0.000_001", "+1", "+0.5"],
    ],
)
def test_parse_micro_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_micro(bad)


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_format_parse_roundtrip(v: int) -> None:
    assert v == parse_micro(format_micro(v))


def test_notional_rounds_down() -> None:
    assert 145_000 == notional(500_000, 290_000)
    assert 0 == notional(1, 1)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(min_value=-5, max_value=5, allow_nan=False),
    st.sampled_from([100_000, 10_000, 1_000, 100]),
    st.sampled_from(["nearest", "down", "up"]),
)
def test_price_from_float_on_tick_inside_unit_interval(v: float, tick: int, mode: str) -> None:
    p = price_from_float(v, tick, mode=mode)
    assert 0 < p < MICRO
    assert 0 == p % tick


def _market() -> Market:
    return Market("0xc", ("111", "222"), ("Yes", "No"), 10_000, 5 * MICRO, False)


def test_market_complement_and_registry() -> None:
    reg = MarketRegistry.of([_market()])
    assert "222" == reg.complement("111")
    assert "Yes" == reg.by_token("111").outcome_of("111")
    with pytest.raises(UnknownToken):
        reg.by_token("333")
    assert 700_000 == mirror_price(300_000)
    with pytest.raises(ValueError):
        Market("0xd", ("1", "2"), ("Yes", "No"), 20_000, 1, False)


def test_event_tokens_follow_markets_added_after_a_lookup() -> None:
    first, second, third = event_legs("E", 3)
    reg = MarketRegistry.of([first, second, _market()])
    assert ("y0", "n0", "y1", "n1") == reg.event_tokens("E")
    assert reg.event_tokens("E") is reg.event_tokens("E")  # remembered: the risk check asks per order
    assert () == reg.event_tokens("F") == reg.event_tokens(None)
    reg.add(third)
    assert ("y0", "n0", "y1", "n1", "y2", "n2") == reg.event_tokens("E")


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"fee_exponent": 0}, "fee exponent"),
        ({"fee_exponent": 100_000}, "fee exponent"),
        ({"fee_rate": MICRO}, "fee rate"),
        ({"fee_rate": -1}, "fee rate"),
        ({"min_order_size": -1}, "minimum order size"),
        ({"min_order_size": MAX_AMOUNT_MICRO + 1}, "minimum order size"),
        ({"tick_size": 10**309}, "tick size"),  # formatting this one overflowed a float
    ],
)
def test_market_refuses_what_would_fail_mid_run(changes: dict[str, int], needle: str) -> None:
    fields: dict[str, Any] = {
        "tick_size": 10_000,
        "min_order_size": 5 * MICRO,
        "fee_rate": 40_000,
        "fee_exponent": 1,
        **changes,
    }
    with pytest.raises(ValueError, match=needle):
        Market("0xd", ("1", "2"), ("Yes", "No"), neg_risk=False, **fields)


def _snap(bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> BookSnapshot:
    return BookSnapshot(
        1, "111", "0xc", tuple(Level(p, s) for p, s in bids), tuple(Level(p, s) for p, s in asks)
    )


def test_book_untrusted_until_snapshot_and_after_invalidate() -> None:
    book = BookState("111", 10_000)
    assert 0 == book.apply_level(Side.BUY, 400_000, 10, 5)
    assert book.best_bid() is None
    # asks arrive worst-first from the venue: order must not matter
    book.apply_snapshot(_snap([(400_000, 10), (410_000, 5)], [(600_000, 3), (500_000, 7)]))
    assert (410_000, 500_000) == (book.best_bid(), book.best_ask())
    assert -5 == book.apply_level(Side.BUY, 410_000, 0, 6)
    assert 400_000 == book.best_bid()
    assert 10 == book.depth(Side.SELL, 10)
    assert 7 == book.depth(Side.SELL, 9)
    book.invalidate()
    assert 0 == book.apply_level(Side.SELL, 450_000, 1, 7)
    assert 500_000 == book.best_ask()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 99), st.integers(0, 50)), max_size=80
    )
)
def test_book_matches_naive_model(updates: list[tuple[Side, int, int]]) -> None:
    book = BookState("111", 10_000)
    book.apply_snapshot(_snap([], []))
    model: dict[Side, dict[int, int]] = {Side.BUY: {}, Side.SELL: {}}
    for side, tick, size in updates:
        price = tick * 10_000
        book.apply_level(side, price, size, 1)
        if size:
            model[side][price] = size
        else:
            model[side].pop(price, None)
    assert (max(model[Side.BUY]) if model[Side.BUY] else None) == book.best_bid()
    assert (min(model[Side.SELL]) if model[Side.SELL] else None) == book.best_ask()
    assert sorted(model[Side.BUY].items(), reverse=True) == [
        (lv.price, lv.size) for lv in book.levels(Side.BUY)
    ]
    assert sorted(model[Side.SELL].items()) == [(lv.price, lv.size) for lv in book.levels(Side.SELL)]


def test_opportunity_id_is_deterministic_and_input_sensitive() -> None:
    from polysnipe.core.opportunity import opportunity_id

    a = opportunity_id("spread_hunter", "111", Side.BUY, 480_000, 1_700_000_000_000)
    assert a == opportunity_id("spread_hunter", "111", Side.BUY, 480_000, 1_700_000_000_000)
    assert a != opportunity_id("spread_hunter", "111", Side.BUY, 490_000, 1_700_000_000_000)
    assert a != opportunity_id("momentum", "111", Side.BUY, 480_000, 1_700_000_000_000)


_LEVELS = st.dictionaries(st.integers(1, 99), st.integers(1, 50), max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    _LEVELS,
    _LEVELS,
    st.lists(
        st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 99), st.integers(0, 50)), max_size=60
    ),
)
def test_book_cached_touch_matches_levels_after_every_update(
    bids: dict[int, int], asks: dict[int, int], updates: list[tuple[Side, int, int]]
) -> None:
    # top_bid / top_ask are caches refreshed only when a level appears or disappears: after every
    # update (a snapshot included) they must equal what the levels say
    book = BookState("111", 10_000)
    book.apply_snapshot(
        _snap([(t * 10_000, n) for t, n in bids.items()], [(t * 10_000, n) for t, n in asks.items()])
    )
    for side, tick, size in [(Side.BUY, 1, 1), *updates]:
        book.apply_level(side, tick * 10_000, size, 1)
        best_bid = max(book.bids) if book.bids else None
        best_ask = min(book.asks) if book.asks else None
        assert (best_bid, best_ask) == (book.top_bid, book.top_ask)
        assert (best_bid, best_ask) == (book.best_bid(), book.best_ask())
        assert (book.bids[best_bid] if best_bid else 0) == book.best_bid_size()
        assert (book.asks[best_ask] if best_ask else 0) == book.best_ask_size()
        both = best_bid is not None and best_ask is not None
        assert ((best_bid + best_ask) // 2 if both else None) == book.mid()  # type: ignore[operator]
        assert (both and best_bid >= best_ask) == book.is_crossed()  # type: ignore[operator]


def test_book_cached_touch_ignores_updates_while_untrusted() -> None:
    book = BookState("111", 10_000)
    book.apply_level(Side.BUY, 400_000, 10, 1)
    assert (None, None) == (book.top_bid, book.top_ask)
    book.apply_snapshot(_snap([(400_000, 10)], [(500_000, 7)]))
    book.invalidate()
    book.apply_level(Side.BUY, 450_000, 10, 2)
    book.apply_level(Side.SELL, 500_000, 0, 2)
    assert (400_000, 500_000) == (book.top_bid, book.top_ask)
    book.apply_snapshot(_snap([], [(600_000, 1)]))
    assert (None, 600_000) == (book.top_bid, book.top_ask)
