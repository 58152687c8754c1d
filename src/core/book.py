"""L2 order book per token.

Theory of operation: each side is a dict price -> size plus a sorted list of its prices, so a level
update is a dict write plus (only when a level appears or disappears) a bisect insert/delete on a short
list: O(log n) search and a memmove of a few hundred ints at most. The best bid and ask are cached in
`top_bid` / `top_ask` and refreshed only when a level appears or disappears, so reading the touch (what
every signal does after every update) is an attribute read. A book is *untrusted* until a snapshot
arrives and again after any gap or reconnect: deltas applied to an untrusted book are dropped (they
describe changes to a state we do not have), and risk refuses to trade on it.

Two books, one interface (`Book`): `BookState` here is the readable reference model, and
`polysnipe.core._book.DenseBook` (C, src/core/_book.c) is the same book on a dense price grid with a
bitmap over its levels, giving identical answers on any int input (its header says how). Callers use the
methods, never a side's storage, and make books with `new_book`, which picks DenseBook when the extension
is built. The core reads no environment: the runners turn POLYSNIPE_PURE_PYTHON=1 into
`use_pure_python(True)` before anything makes a book (runners/cli.py).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from polysnipe.core.events import BookDelta, BookSnapshot, Level, Side

__all__ = [
    "Book",
    "BookState",
    "apply_changes",
    "book_implementation",
    "compiled_available",
    "new_book",
    "use_pure_python",
]

# `Side.BUY` is a lookup through the enum metaclass's __getattr__ hook (about 60 ns a read in 3.11);
# a module constant is a plain global read, and apply_level runs for every delta.
_BUY = Side.BUY


class Book(Protocol):
    """An L2 book of one token: what every caller may use (BookState documents each method)."""

    @property
    def token_id(self) -> str: ...
    @property
    def tick_size(self) -> int: ...
    @property
    def top_bid(self) -> int | None: ...
    @property
    def top_ask(self) -> int | None: ...
    @property
    def trusted(self) -> bool: ...
    @property
    def last_ts_ms(self) -> int: ...
    @property
    def snapshot_ts_ms(self) -> int: ...
    @property
    def hash(self) -> str: ...
    def apply_snapshot(self, snap: BookSnapshot, /) -> None: ...
    def apply_level(self, side: Side, price: int, size: int, ts_ms: int, /) -> int: ...
    def set_tick_size(self, tick_size: int, /) -> None: ...
    def invalidate(self) -> None: ...
    def best_bid(self) -> int | None: ...
    def best_ask(self) -> int | None: ...
    def best_bid_size(self) -> int: ...
    def best_ask_size(self) -> int: ...
    def size_at(self, side: Side, price: int, /) -> int: ...
    def mid(self) -> int | None: ...
    def spread(self) -> int | None: ...
    def is_crossed(self) -> bool: ...
    def depth(self, side: Side, n_ticks: int, /) -> int: ...
    def grid_depth(self, side: Side, price: int, n_ticks: int, /) -> int: ...
    def levels(self, side: Side, /) -> list[Level]: ...
    def level_prices(self, side: Side, /) -> list[int]: ...
    def is_stale(self, now_ms: int, max_age_ms: int, /) -> bool: ...


class BookState:
    __slots__ = (
        "_ask_px",
        "_bid_px",
        "asks",
        "bids",
        "hash",
        "last_ts_ms",
        "snapshot_ts_ms",
        "tick_size",
        "token_id",
        "top_ask",
        "top_bid",
        "trusted",
    )

    def __init__(self, token_id: str, tick_size: int) -> None:
        self.token_id = token_id
        self.tick_size = tick_size
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self._bid_px: list[int] = []  # ascending; best bid is last
        self._ask_px: list[int] = []  # ascending; best ask is first
        #: best bid / ask price, None while that side is empty (read-only outside this class)
        self.top_bid: int | None = None
        self.top_ask: int | None = None
        self.trusted = False
        self.last_ts_ms = 0
        self.snapshot_ts_ms = 0
        self.hash = ""

    # -- updates -------------------------------------------------------------------------------
    def apply_snapshot(self, snap: BookSnapshot) -> None:
        """Replace the whole book. REST asks arrive worst-first and bids best-last: order is ignored."""
        self.bids = {lv.price: lv.size for lv in snap.bids if lv.size > 0}
        self.asks = {lv.price: lv.size for lv in snap.asks if lv.size > 0}
        self._bid_px = bid_px = sorted(self.bids)
        self._ask_px = ask_px = sorted(self.asks)
        self.top_bid = bid_px[-1] if bid_px else None
        self.top_ask = ask_px[0] if ask_px else None
        if snap.tick_size is not None:
            self.tick_size = snap.tick_size
        self.trusted = True
        self.last_ts_ms = snap.ts_ms
        self.snapshot_ts_ms = snap.ts_ms
        self.hash = snap.hash

    def apply_level(self, side: Side, price: int, size: int, ts_ms: int) -> int:
        """Set one level's total size; returns the change in size (negative when liquidity left).

        Returns 0 without touching anything while the book is untrusted.
        """
        if not self.trusted:
            return 0
        if ts_ms > self.last_ts_ms:
            self.last_ts_ms = ts_ms
        # The common update resizes a level that exists and stays: one dict read and one write.
        if side is _BUY:
            levels = self.bids
            old = levels.get(price, 0)
            if size > 0:
                levels[price] = size
                if not old:
                    prices = self._bid_px
                    insort(prices, price)
                    self.top_bid = prices[-1]
            elif old:
                del levels[price]
                prices = self._bid_px
                del prices[bisect_left(prices, price)]
                self.top_bid = prices[-1] if prices else None
            return size - old
        levels = self.asks
        old = levels.get(price, 0)
        if size > 0:
            levels[price] = size
            if not old:
                prices = self._ask_px
                insort(prices, price)
                self.top_ask = prices[0]
        elif old:
            del levels[price]
            prices = self._ask_px
            del prices[bisect_left(prices, price)]
            self.top_ask = prices[0] if prices else None
        return size - old

    def set_tick_size(self, tick_size: int) -> None:
        self.tick_size = tick_size

    def invalidate(self) -> None:
        """Forget trust after a gap or reconnect; the next snapshot restores it."""
        self.trusted = False

    # -- queries -------------------------------------------------------------------------------
    def best_bid(self) -> int | None:
        return self.top_bid

    def best_ask(self) -> int | None:
        return self.top_ask

    def best_bid_size(self) -> int:
        bid = self.top_bid
        return 0 if bid is None else self.bids[bid]

    def best_ask_size(self) -> int:
        ask = self.top_ask
        return 0 if ask is None else self.asks[ask]

    def size_at(self, side: Side, price: int) -> int:
        return (self.bids if side is _BUY else self.asks).get(price, 0)

    def mid(self) -> int | None:
        """Mid price in micro-units (rounded down); None unless both sides exist."""
        if self.top_bid is None or self.top_ask is None:
            return None
        return (self.top_bid + self.top_ask) // 2

    def spread(self) -> int | None:
        if self.top_bid is None or self.top_ask is None:
            return None
        return self.top_ask - self.top_bid

    def is_crossed(self) -> bool:
        bid, ask = self.top_bid, self.top_ask
        return bid is not None and ask is not None and bid >= ask

    def depth(self, side: Side, n_ticks: int) -> int:
        """Total size resting within `n_ticks` ticks of the best price on `side` (inclusive)."""
        if side is _BUY:
            if not self._bid_px:
                return 0
            floor = self._bid_px[-1] - n_ticks * self.tick_size
            i = bisect_left(self._bid_px, floor)
            return sum(self.bids[p] for p in self._bid_px[i:])
        if not self._ask_px:
            return 0
        ceiling = self._ask_px[0] + n_ticks * self.tick_size
        i = bisect_left(self._ask_px, ceiling + 1)
        return sum(self.asks[p] for p in self._ask_px[:i])

    def grid_depth(self, side: Side, price: int, n_ticks: int) -> int:
        """Size at `price` plus at the `n_ticks` grid prices behind it, one tick apart away from the spread.

        Unlike `depth` it starts where the caller says (an anchor the touch has left) and makes n_ticks + 1
        lookups instead of a bisect and a slice; a level off the tick grid is not counted.
        """
        levels = self.bids if side is _BUY else self.asks
        step = -self.tick_size if side is _BUY else self.tick_size
        get = levels.get
        depth = get(price, 0)
        for _ in range(n_ticks):
            price += step
            depth += get(price, 0)
        return depth

    def levels(self, side: Side) -> list[Level]:
        """Levels best-first."""
        if side is _BUY:
            return [Level(p, self.bids[p]) for p in reversed(self._bid_px)]
        return [Level(p, self.asks[p]) for p in self._ask_px]

    def level_prices(self, side: Side) -> list[int]:
        """Prices best-first (a copy; safe to hold while the book changes)."""
        return self._bid_px[::-1] if side is _BUY else list(self._ask_px)

    def is_stale(self, now_ms: int, max_age_ms: int) -> bool:
        return now_ms - self.last_ts_ms > max_age_ms


def _apply_changes(
    books: Mapping[str, Book], changes: Sequence[BookDelta], ts_ms: int, start: int
) -> tuple[int, int, int]:
    """`apply_changes` in Python: the reference for the compiled loop (core._book.apply_changes)."""
    applied = dropped = 0
    for i in range(max(start, 0), len(changes)):
        d = changes[i]
        book = books.get(d.token_id)
        if book is None:
            return i, applied, dropped
        if book.trusted:
            book.apply_level(d.side, d.price, d.size, ts_ms)
            applied += 1
        else:
            dropped += 1
    return len(changes), applied, dropped


# -- which book ----------------------------------------------------------------------------------
_ApplyLoop = Callable[[Mapping[str, Book], Sequence[BookDelta], int, int], tuple[int, int, int]]
_DenseBook: Callable[[str, int], Book] | None
_compiled_apply: _ApplyLoop | None
try:
    from polysnipe.core._book import DenseBook as _Compiled
    from polysnipe.core._book import apply_changes as _compiled_loop

    _DenseBook, _compiled_apply = _Compiled, _compiled_loop
except ImportError:  # the extension is not built: the reference model serves alone
    _DenseBook = _compiled_apply = None

#: what `new_book` makes: the compiled book where it is built, unless turned off
_make_book: Callable[[str, int], Book] = _DenseBook or BookState
#: the per-delta loop `apply_changes` runs, chosen with the book
_apply = _compiled_apply or _apply_changes


def compiled_available() -> bool:
    """True when the compiled book (polysnipe.core._book) is built and importable."""
    return _DenseBook is not None


def use_pure_python(pure: bool) -> None:
    """Make `new_book` return BookState (True) or the compiled book where it is built (False).

    Called once at start by the runners (POLYSNIPE_PURE_PYTHON=1); books made before keep their kind.
    """
    global _make_book, _apply
    _make_book = BookState if pure else (_DenseBook or BookState)
    _apply = _apply_changes if pure else (_compiled_apply or _apply_changes)


def book_implementation() -> str:
    """ "compiled" or "python": what `new_book` makes now."""
    return "python" if _make_book is BookState else "compiled"


def apply_changes(
    books: Mapping[str, Book], changes: Sequence[BookDelta], ts_ms: int, start: int = 0
) -> tuple[int, int, int]:
    """Apply `changes[start:]` to their books in order: a trusted book takes the level, an untrusted
    one drops it (it describes a state we do not have). Stops at the first change whose token has no
    book in `books` and returns (its index, levels applied, levels dropped), so the caller can make
    that book, or skip the change, and go on from there; the index is len(changes) when all were taken.
    One call per price change instead of a Python loop per delta: the compiled loop where it is built.
    """
    return _apply(books, changes, ts_ms, start)


def new_book(token_id: str, tick_size: int) -> Book:
    """An empty, untrusted book for `token_id`: the compiled one unless it is absent or turned off."""
    return _make_book(token_id, tick_size)
