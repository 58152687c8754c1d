"""`polysnipe bench ws`: market-channel frames parsed and applied to books, per second on one core.

The frames are a long stream, each frame used once per run (the parser's decimal caches emptied
before it): a recording of the market channel (one frame per line, as the data generator writes
them) or, by default, a generated set of about 27k frames. Replaying a few dozen frames thousands
of times, as this bench once did, lets the parser's caches hit every time; a long stream sees new
prices, sizes and tokens as a feed does.
Three paths, each timed `repeat` runs (the median reported):

* parse: `parse_market_line` alone (JSON to core events);
* parse + apply: the live feed's path, `BookKeeper.on_frame`: decode, map, gap checks (timestamps,
  sampled book hashes) and book updates; the headline figure;
* parse + apply (bare): `parse_market_line` then the engine's own per-event apply,
  `core.book.apply_changes` (one call per price change, as core.market_handlers.on_price_change does
  on the Redis path), no gap checks.

The books are what `core.book.new_book` makes: the compiled DenseBook unless POLYSNIPE_PURE_PYTHON=1,
which also turns off the compiled market-channel decoder (adapters/clob/_fastdecode); the JSON and the
table say which book and which decoder ran.

Each run starts from fresh books. The complement token of a book without a snapshot of its own is
seeded (untimed) as the mirror of the first book (every order shows on both tokens,
shared/data/README.md). Only time spent inside the frame loop is counted, in CPU seconds of this
thread and on the wall clock; deltas that could not be applied (a token with no book) are reported
separately, not counted as applied. Lines that do not parse (the generator plants a few) are skipped.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polysnipe.adapters.clob import parsing
from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.market_data import BookKeeper, MarketDataConfig
from polysnipe.adapters.clob.parsing import RestBook, parse_market_line
from polysnipe.core.book import Book, apply_changes, book_implementation, new_book
from polysnipe.core.events import BookSnapshot, LastTrade, Level, PriceChange, TickSizeChange
from polysnipe.core.market import mirror_price
from polysnipe.runners.errors import InputError

__all__ = ["format_table", "run_bench_ws"]

_MARKET_EVENTS = (BookSnapshot, PriceChange, TickSizeChange, LastTrade)


def _frames(path: Path) -> tuple[list[bytes], int, int]:
    """The market-channel frames of a JSON-lines file: (frames, messages in them, lines skipped)."""
    frames: list[bytes] = []
    messages = 0
    skipped = 0
    with path.open("rb") as f:
        for raw in f:
            frame = raw.strip()
            if not frame:
                continue
            try:
                events = parse_market_line(frame)
            except MalformedMessage:
                skipped += 1
                continue
            if any(isinstance(e, _MARKET_EVENTS) for e in events):
                frames.append(frame)
                doc = json.loads(frame)
                messages += len(doc) if isinstance(doc, list) else 1
            else:
                skipped += 1
    return frames, messages, skipped


def _seed_books(frames: list[bytes], *, with_first_books: bool) -> tuple[list[str], list[BookSnapshot]]:
    """Every token in the frames, and the snapshots that start each repetition: a mirrored book for
    the complement of a token that has a book but none of its own, and (when the timed frames hold
    no books) each token's first book."""
    tokens: dict[str, None] = {}
    first_book: dict[str, BookSnapshot] = {}
    pairs: dict[str, set[str]] = {}
    for frame in frames:
        for event in parse_market_line(frame):
            if isinstance(event, PriceChange):
                ids = {d.token_id for d in event.changes}
                for token_id in ids:
                    tokens.setdefault(token_id)
                    pairs.setdefault(token_id, set()).update(ids - {token_id})
            elif isinstance(event, BookSnapshot | TickSizeChange | LastTrade):
                tokens.setdefault(event.token_id)
                if isinstance(event, BookSnapshot):
                    first_book.setdefault(event.token_id, event)
    seeds: list[BookSnapshot] = list(first_book.values()) if with_first_books else []
    for token_id, book in first_book.items():
        for other in pairs.get(token_id, ()):
            if other not in first_book:
                seeds.append(
                    BookSnapshot(
                        book.ts_ms,
                        other,
                        book.market,
                        tuple(Level(mirror_price(lv.price), lv.size) for lv in book.asks),
                        tuple(Level(mirror_price(lv.price), lv.size) for lv in book.bids),
                        "",
                        book.tick_size,
                    )
                )
    return list(tokens), seeds


def _time_runs(repeat: int, setup: Callable[[], Callable[[], int]]) -> tuple[float, float, int]:
    """Run `setup()` (untimed) then its returned loop (timed) `repeat` times: the median run's
    (CPU seconds of this thread, wall seconds, deltas applied).

    CPU time is the headline: the figure is "per core", and load from other processes (which
    stretches wall time, not our CPU time) does not deflate it; the wall clock is kept beside it.
    """
    cpu_s: list[float] = []
    wall_s: list[float] = []
    applied = 0
    setup()()  # warm-up: imports, branch paths
    gc.collect()
    for _ in range(repeat):
        loop = setup()
        # every run meets the stream as new: the decimal caches would otherwise hold its strings
        parsing._PRICES.clear()
        parsing._SIZES.clear()
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        applied = loop()
        cpu_s.append(time.thread_time() - cpu0)
        wall_s.append(time.perf_counter() - wall0)
    return statistics.median(cpu_s), statistics.median(wall_s), applied


def _is_price_change(frame: bytes) -> bool:
    return all(isinstance(e, PriceChange) for e in parse_market_line(frame))


def _measure(
    frames: list[bytes], messages: int, seed_frames: list[bytes], repeat: int, *, with_first_books: bool
) -> dict[str, Any]:
    tokens, seeds = _seed_books(seed_frames, with_first_books=with_first_books)
    deltas_per_pass = sum(
        len(e.changes) for f in frames for e in parse_market_line(f) if isinstance(e, PriceChange)
    )
    config = MarketDataConfig()

    def parse_only() -> Callable[[], int]:
        def loop() -> int:
            for frame in frames:
                parse_market_line(frame)
            return 0

        return loop

    def keeper_path() -> Callable[[], int]:
        keeper = BookKeeper(config)
        keeper.track(tokens, 0)
        for snap in seeds:
            keeper.on_rest_book(RestBook(snap, None, None, None, None, False), 0)

        def loop() -> int:
            applied = 0
            for frame in frames:
                for event in keeper.on_frame(frame, 0):
                    if type(event) is PriceChange:
                        applied += len(event.changes)
            return applied

        return loop

    def bare_path() -> Callable[[], int]:
        books: dict[str, Book] = {t: new_book(t, 10_000) for t in tokens}
        for snap in seeds:
            books[snap.token_id].apply_snapshot(snap)

        def loop() -> int:
            applied = 0
            for frame in frames:
                for event in parse_market_line(frame):
                    if type(event) is PriceChange:
                        changes = event.changes
                        start = 0
                        while start < len(changes):
                            # every token of the frames has a book; a stop would be one that does not
                            stop, took, _ = apply_changes(books, changes, event.ts_ms, start)
                            applied += took
                            start = stop + 1
                    elif type(event) is BookSnapshot:
                        books[event.token_id].apply_snapshot(event)
            return applied

        return loop

    def row(timed: tuple[float, float, int], what: str) -> dict[str, Any]:
        cpu_s, wall_s, applied = timed
        return {
            "measures": what,
            "cpu_s": cpu_s,
            "wall_s": wall_s,
            "frames_per_s": len(frames) / cpu_s,
            "messages_per_s": messages / cpu_s,
            "deltas_parsed_per_s": deltas_per_pass / cpu_s,
            "deltas_applied": applied,
            "deltas_applied_per_s": applied / cpu_s,
            "deltas_applied_per_wall_s": applied / wall_s,
        }

    return {
        "frames": len(frames),
        "messages": messages,
        "deltas_per_pass": deltas_per_pass,
        "parse": row(_time_runs(repeat, parse_only), "parse_market_line: JSON frame to core events"),
        "keeper": row(
            _time_runs(repeat, keeper_path),
            "BookKeeper.on_frame: parse + gap checks + sampled hashes + apply",
        ),
        "bare": row(
            _time_runs(repeat, bare_path),
            "parse_market_line + core.book.apply_changes (the engine's per-event apply), no checks",
        ),
    }


def run_bench_ws(events: Path, repeat: int, out: Path | None) -> dict[str, Any]:
    """Time the market frames of the JSON-lines file `events`, `repeat` runs of each path; write
    JSON to `out` if given.

    Two frame sets: every market message (books included: they dominate the time per message), and
    the price_change messages alone (books applied untimed beforehand): the delta throughput.
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    frames, messages, skipped = _frames(events)
    if not frames:
        raise InputError(events, "holds no market-channel message; --events takes them, one per line")
    deltas = [f for f in frames if _is_price_change(f)]
    delta_messages = sum(len(d) if isinstance(d, list) else 1 for d in map(json.loads, deltas))
    result: dict[str, Any] = {
        "bench": "ws",
        "events_file": str(events),
        "skipped_lines": skipped,
        "repeat": repeat,
        # compiled or python (POLYSNIPE_PURE_PYTHON=1): the DenseBook or BookState, and the compiled
        # market-channel fast path or msgspec alone
        "book": book_implementation(),
        "decoder": parsing.decoder_implementation(),
        "clock": "CPU seconds of the timing thread (wall seconds beside); the median of the runs",
        "all_messages": _measure(frames, messages, frames, repeat, with_first_books=False),
        "price_change_only": _measure(deltas, delta_messages, frames, repeat, with_first_books=True)
        if deltas
        else None,
        "target_deltas_per_s": 1_500_000,
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"market-channel parse + apply, median of {result['repeat']} run(s) over {result['events_file']}"
        f" ({result['skipped_lines']} lines skipped; {result['book']} book, {result['decoder']} decoder)"
    ]
    for title, key in (("all market messages", "all_messages"), ("price_change only", "price_change_only")):
        part = result[key]
        if part is None:
            continue
        lines.append(
            f"{title}: {part['frames']:,} frames, {part['messages']:,} messages,"
            f" {part['deltas_per_pass']:,} deltas per run"
        )
        lines.append(f"  {'':32s}{'msgs/s':>12s}{'deltas/s':>12s}{'applied/s':>12s}")
        for name, row_key in (
            ("parse only", "parse"),
            ("parse + apply (live feed path)", "keeper"),
            ("parse + apply (bare)", "bare"),
        ):
            row = part[row_key]
            lines.append(
                f"  {name:32s}{row['messages_per_s']:12,.0f}{row['deltas_parsed_per_s']:12,.0f}"
                f"{row['deltas_applied_per_s']:12,.0f}"
            )
    lines.append(f"target: {result['target_deltas_per_s']:,} deltas/s per core (CPU time)")
    return "\n".join(lines)
