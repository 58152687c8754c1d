"""The compiled book (core._book.DenseBook) against the reference model (core.book.BookState).

Hypothesis drives random streams of snapshots, level updates (zero and negative sizes included),
invalidations and tick changes through both books, with prices on the 0.0001 grid, on its edges, off it,
out of range and beyond int64; after every step every level and every query must be equal.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import require_compiled_book
from polysnipe.core.book import Book, BookState, new_book, use_pure_python
from polysnipe.core.events import BookDelta, BookSnapshot, Level, Side

INT64_MAX = 2**63 - 1


@pytest.fixture(autouse=True)
def _compiled() -> None:
    require_compiled_book()


def _dense() -> Any:
    from polysnipe.core._book import DenseBook

    return DenseBook


# A few grid prices near each other make levels collide, appear and vanish at the touch; the edges of
# the grid and of int64 and off-grid prices go to the compiled book's overflow.
GRID = st.integers(min_value=0, max_value=10_000).map(lambda i: i * 100)
NEAR = st.integers(min_value=4_990, max_value=5_010).map(lambda i: i * 100)
EDGE = st.sampled_from([0, 100, 999_900, 1_000_000, 1_000_100, -100, 50, 999_999, 1_000_001])
OFF = st.one_of(
    st.integers(min_value=-2_000_000, max_value=3_000_000),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([INT64_MAX, -(2**63), 2**63, 2**64 + 100]),
)
PRICE = st.one_of(NEAR, NEAR, NEAR, GRID, EDGE, OFF)
SIZE = st.one_of(
    st.integers(min_value=1, max_value=1_000_000_000),
    st.just(0),
    st.integers(min_value=-5, max_value=-1),
    st.sampled_from([INT64_MAX, 1, -(2**63), -(2**70)]),
)
TS = st.one_of(st.integers(min_value=0, max_value=2_000), st.sampled_from([-(2**70), 2**64, INT64_MAX]))
# venue ticks, and ints off the grid so that depth bounds fall between grid prices
TICK = st.one_of(st.sampled_from([100, 1_000, 2_500, 5_000, 10_000, 100_000]), st.integers(-300, 700))
SIDE = st.sampled_from([Side.BUY, Side.SELL])
ON_GRID = st.one_of(NEAR, NEAR, NEAR, GRID, st.sampled_from([0, 100, 999_900, 1_000_000]))


def _ops(price: st.SearchStrategy[int]) -> st.SearchStrategy[tuple[Any, ...]]:
    levels = st.lists(st.builds(Level, price, SIZE), max_size=12)
    level = st.tuples(st.just("level"), SIDE, price, SIZE, TS)
    return st.one_of(
        level,
        level,
        level,
        st.tuples(st.just("snap"), levels, levels, TS, st.text(max_size=3), st.one_of(st.none(), TICK)),
        st.tuples(st.just("invalidate")),
        st.tuples(st.just("tick"), TICK),
    )


def _snap(bids: list[Level], asks: list[Level], ts: int, hash_: str, tick: int | None) -> BookSnapshot:
    return BookSnapshot(ts, "t", "m", tuple(bids), tuple(asks), hash_, tick)


def _queries(book: Book, probes: list[int]) -> dict[str, object]:
    """Everything a caller can read from a book."""
    out: dict[str, object] = {
        "attrs": (book.token_id, book.tick_size, book.top_bid, book.top_ask, book.trusted),
        "ts": (book.last_ts_ms, book.snapshot_ts_ms, book.hash),
        "best": (book.best_bid(), book.best_ask(), book.best_bid_size(), book.best_ask_size()),
        "touch": (book.mid(), book.spread(), book.is_crossed()),
        "stale": [book.is_stale(now, age) for now in (0, 1_000, 2**65) for age in (-1, 0, 500)],
    }
    for side in (Side.BUY, Side.SELL):
        out[f"levels {side}"] = book.levels(side)
        out[f"prices {side}"] = book.level_prices(side)
        out[f"depth {side}"] = [book.depth(side, n) for n in (-3, -1, 0, 1, 2, 3, 5, 7, 40, 10_001, 2**70)]
        top = book.top_bid if side is Side.BUY else book.top_ask
        starts = [*probes, *([top] if top is not None else [])]
        out[f"grid {side}"] = [book.grid_depth(side, p, n) for p in starts for n in (-1, 0, 1, 3, 12)]
        out[f"size {side}"] = [book.size_at(side, p) for p in probes]
    return out


def _run(ops: list[tuple[Any, ...]], tick: int = 10_000) -> None:
    ref = BookState("t", tick)
    dense = _dense()("t", tick)
    probes = [0, 100, 500_000, 1_000_000, -100, 123]
    assert _queries(ref, probes) == _queries(dense, probes)
    for op in ops:
        kind = op[0]
        if kind == "level":
            _, side, price, size, ts = op
            if size > INT64_MAX:
                continue
            assert ref.apply_level(side, price, size, ts) == dense.apply_level(side, price, size, ts), op
            probes.append(price)
        elif kind == "snap":
            snap = _snap(*op[1:])
            if any(lv.size > INT64_MAX for lv in (*snap.bids, *snap.asks)):
                continue
            ref.apply_snapshot(snap)
            dense.apply_snapshot(snap)
            probes += [lv.price for lv in snap.bids[:3]]
        elif kind == "invalidate":
            ref.invalidate()
            dense.invalidate()
        else:
            ref.set_tick_size(op[1])
            dense.set_tick_size(op[1])
        del probes[:-24]
        assert _queries(ref, probes) == _queries(dense, probes), op


@settings(max_examples=300, deadline=None)
@given(st.lists(_ops(ON_GRID), max_size=60), TICK)
def test_compiled_book_answers_as_the_python_book_on_the_grid(ops: list[tuple[Any, ...]], tick: int) -> None:
    _run(ops, tick)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ops(PRICE), max_size=60), TICK)
def test_compiled_book_answers_as_the_python_book_on_any_int_price(
    ops: list[tuple[Any, ...]], tick: int
) -> None:
    # off-grid, out-of-range and beyond-int64 prices live in the compiled book's overflow
    _run(ops, tick)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(SIDE, GRID, st.integers(1, 10**6)), min_size=1, max_size=120),
    st.lists(st.tuples(SIDE, st.integers(0, 119)), max_size=150),
)
def test_emptying_the_touch_finds_the_next_level_across_the_whole_grid(
    adds: list[tuple[Side, int, int]], removals: list[tuple[Side, int]]
) -> None:
    # levels spread over the whole grid (many 64-slot words apart), then touches and others removed:
    # the bitmap search must land where the sorted list says
    ops: list[tuple[Any, ...]] = [("snap", [], [], 1, "", None)]
    ops += [("level", side, price, size, 2) for side, price, size in adds]
    ops += [("level", side, adds[i % len(adds)][1], 0, 3) for side, i in removals]
    _run(ops)


def test_the_touch_walks_down_every_level_of_a_full_grid() -> None:
    snap = _snap([Level(i * 100, i + 1) for i in range(10_001)], [], 1, "", None)
    ref, dense = BookState("t", 100), _dense()("t", 100)
    ref.apply_snapshot(snap)
    dense.apply_snapshot(snap)
    for i in range(10_000, -1, -1):
        assert (ref.top_bid, ref.best_bid_size()) == (dense.top_bid, dense.best_bid_size())
        assert (
            -(i + 1) == ref.apply_level(Side.BUY, i * 100, 0, 2) == dense.apply_level(Side.BUY, i * 100, 0, 2)
        )
    assert None is dense.top_bid
    assert [] == dense.levels(Side.BUY)


def test_a_size_beyond_int64_is_refused_and_the_book_is_unchanged() -> None:
    dense = _dense()("t", 10_000)
    dense.apply_snapshot(_snap([Level(400_000, 5)], [Level(600_000, 7)], 1, "h", None))
    before = _queries(dense, [400_000, 600_000])
    with pytest.raises(OverflowError):
        dense.apply_level(Side.BUY, 400_000, 2**63, 9)
    with pytest.raises(OverflowError):
        dense.apply_level(Side.SELL, 1_000_001, 2**63, 9)  # an off-grid price too
    with pytest.raises(OverflowError):
        dense.apply_snapshot(_snap([Level(300_000, 1)], [Level(700_000, 2**64)], 9, "x", None))
    assert before == _queries(dense, [400_000, 600_000])
    # a size below int64's range removes the level, and the change is exact
    assert -(2**70) - 5 == dense.apply_level(Side.BUY, 400_000, -(2**70), 9)
    assert None is dense.top_bid


def test_a_price_that_is_not_an_int_is_refused() -> None:
    dense = _dense()("t", 10_000)
    dense.apply_snapshot(_snap([], [], 1, "", None))
    with pytest.raises(TypeError):
        dense.apply_level(Side.BUY, 0.5, 1, 2)
    with pytest.raises(TypeError):
        dense.size_at(Side.BUY, "400000")


def test_new_book_follows_the_selection() -> None:
    try:
        use_pure_python(True)
        assert isinstance(new_book("t", 10_000), BookState)
        use_pure_python(False)
        assert isinstance(new_book("t", 10_000), _dense())
    finally:
        use_pure_python(False)


TOKENS = ("t0", "t1", "t2", "t3")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(TOKENS), SIDE, ON_GRID, SIZE), max_size=12),
    st.lists(
        st.tuples(st.sampled_from(TOKENS), st.booleans(), st.booleans()), max_size=4, unique_by=lambda t: t[0]
    ),
    st.integers(min_value=-2, max_value=14),
    TS,
)
def test_apply_changes_in_c_is_the_python_loop(
    raw: list[tuple[str, Side, int, int]], held: list[tuple[str, bool, bool]], start: int, ts: int
) -> None:
    # books of both classes, trusted or not, tokens without one: the same stop, counts and levels
    from polysnipe.core import _book, book

    changes = tuple(BookDelta(token, side, price, size) for token, side, price, size in raw)

    def make() -> dict[str, Book]:
        books: dict[str, Book] = {}
        for token, dense, trusted in held:
            b: Book = _dense()(token, 100) if dense else BookState(token, 100)
            if trusted:
                b.apply_snapshot(_snap([Level(500_000, 7)], [Level(510_000, 9)], 0, "h", None))
            books[token] = b
        return books

    compiled_books, python_books = make(), make()
    got = _book.apply_changes(compiled_books, changes, ts, start)
    expected = book._apply_changes(python_books, changes, ts, start)
    assert expected == got
    for token in compiled_books:
        c, p = compiled_books[token], python_books[token]
        assert (p.levels(Side.BUY), p.levels(Side.SELL), p.last_ts_ms) == (
            c.levels(Side.BUY),
            c.levels(Side.SELL),
            c.last_ts_ms,
        )
