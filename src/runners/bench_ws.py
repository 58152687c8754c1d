"""`polysnipe bench ws`: market-channel frames parsed and applied to BookState, per second on one core.

The recorded frames (shared/data/polymarket/ws) are replayed `repeat` times through three paths:

* parse: `parse_market_line` alone (JSON to core events);
* parse + apply: the live feed's path, `BookKeeper.on_frame`: decode, map, gap checks (timestamps,
  sampled book hashes) and BookState updates; the headline figure;
* parse + apply (bare): `parse_market_line` then `BookState.apply_level` directly, no gap checks.

Each repetition starts from fresh books, seeded outside the timed region, because the recording's
timestamps would otherwise run backwards at every repetition and (correctly) make the keeper
distrust its books. The complement token of the burst has no snapshot in the recording; its book is
seeded as the mirror of the first book (every order shows on both tokens, shared/data/README.md).
Only time spent inside the frame loop is counted; deltas that could not be applied (a token with no
book) are reported separately, not counted as applied.
"""

from __future__ import annotations

import gc
import json
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.market_data import BookKeeper, MarketDataConfig
from polysnipe.adapters.clob.parsing import RestBook, parse_market_line
from polysnipe.core.book import BookState
from polysnipe.core.events import BookSnapshot, LastTrade, Level, PriceChange, TickSizeChange
from polysnipe.core.market import mirror_price

__all__ = ["default_ws_files", "format_table", "run_bench_ws"]

#: market-channel recordings (user-channel and RTDS files are other protocols)
_MARKET_FILE = re.compile(r"book|price_change|tick_size|last_trade|quotes|best_bid_ask|new_market|resolved")
_MARKET_EVENTS = (BookSnapshot, PriceChange, TickSizeChange, LastTrade)


def default_ws_files(directory: Path) -> list[Path]:
    """The market-channel recordings in `directory` (shared/data/polymarket/ws)."""
    return sorted(p for p in directory.glob("*.json") if _MARKET_FILE.search(p.name))


def _frames(files: list[Path]) -> tuple[list[bytes], int]:
    """One compact frame per recorded market message; returns (frames, messages skipped)."""
    frames: list[bytes] = []
    skipped = 0
    for path in files:
        doc = json.loads(path.read_bytes())
        for msg in doc if isinstance(doc, list) else [doc]:
            frame = json.dumps(msg, separators=(",", ":")).encode()
            try:
                events = parse_market_line(frame)
            except MalformedMessage:
                skipped += 1
                continue
            if any(isinstance(e, _MARKET_EVENTS) for e in events):
                frames.append(frame)
            else:
                skipped += 1
    return frames, skipped


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


def _time_reps(repeat: int, setup: Callable[[], Callable[[], int]]) -> tuple[float, int]:
    """Run `setup()` (untimed) then its returned loop (timed) `repeat` times; (seconds, deltas applied).

    Timed in CPU seconds of this thread: the figure is "per core", and machine load from other
    processes (which stretches wall time, not our CPU time) does not deflate it.
    """
    clock = time.thread_time
    total_s = 0.0
    applied = 0
    setup()()  # warm-up: caches, branch paths
    gc.collect()
    for _ in range(repeat):
        loop = setup()
        start = clock()
        applied += loop()
        total_s += clock() - start
    return total_s, applied


def _is_price_change(frame: bytes) -> bool:
    return all(isinstance(e, PriceChange) for e in parse_market_line(frame))


def _measure(
    frames: list[bytes], seed_frames: list[bytes], repeat: int, *, with_first_books: bool
) -> dict[str, Any]:
    tokens, seeds = _seed_books(seed_frames, with_first_books=with_first_books)
    deltas_per_rep = sum(
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
        books = {t: BookState(t, 10_000) for t in tokens}
        for snap in seeds:
            books[snap.token_id].apply_snapshot(snap)

        def loop() -> int:
            applied = 0
            for frame in frames:
                for event in parse_market_line(frame):
                    if type(event) is PriceChange:
                        ts = event.ts_ms
                        for d in event.changes:
                            book = books[d.token_id]
                            if book.trusted:
                                book.apply_level(d.side, d.price, d.size, ts)
                                applied += 1
                    elif type(event) is BookSnapshot:
                        books[event.token_id].apply_snapshot(event)
            return applied

        return loop

    def row(seconds: float, applied: int, what: str) -> dict[str, Any]:
        return {
            "measures": what,
            "seconds": seconds,
            "messages_per_s": repeat * len(frames) / seconds,
            "deltas_parsed_per_s": repeat * deltas_per_rep / seconds,
            "deltas_applied": applied,
            "deltas_applied_per_s": applied / seconds,
        }

    parse_s, _ = _time_reps(repeat, parse_only)
    keeper_s, keeper_applied = _time_reps(repeat, keeper_path)
    bare_s, bare_applied = _time_reps(repeat, bare_path)
    return {
        "frames": len(frames),
        "deltas_per_repeat": deltas_per_rep,
        "parse": row(parse_s, 0, "parse_market_line: JSON frame to core events"),
        "keeper": row(
            keeper_s, keeper_applied, "BookKeeper.on_frame: parse + gap checks + sampled hashes + apply"
        ),
        "bare": row(bare_s, bare_applied, "parse_market_line + BookState.apply_level, no checks"),
    }


def run_bench_ws(files: list[Path], repeat: int, out: Path | None) -> dict[str, Any]:
    """Replay the market frames of `files` `repeat` times; write JSON to `out` if given.

    Two frame sets: every market message (books included: they dominate the time per message), and
    the price_change messages alone (books applied untimed beforehand): the delta throughput.
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    frames, skipped = _frames(files)
    if not frames:
        raise ValueError("no market-channel messages in the given files")
    deltas = [f for f in frames if _is_price_change(f)]
    result: dict[str, Any] = {
        "files": [p.name for p in files],
        "skipped_messages": skipped,
        "repeat": repeat,
        "all_messages": _measure(frames, frames, repeat, with_first_books=False),
        "price_change_only": _measure(deltas, frames, repeat, with_first_books=True) if deltas else None,
        "python": platform.python_version(),
        "target_deltas_per_s": 1_500_000,
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"market-channel parse + apply, x{result['repeat']} ({result['skipped_messages']} messages skipped)"
    ]
    for title, key in (("all market messages", "all_messages"), ("price_change only", "price_change_only")):
        part = result[key]
        if part is None:
            continue
        lines.append(f"{title}: {part['frames']} frames, {part['deltas_per_repeat']} deltas per pass")
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
    lines.append(f"target: {result['target_deltas_per_s']:,} deltas/s per core")
    return "\n".join(lines)
