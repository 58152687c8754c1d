"""`polysnipe bench book`: the order book alone, the Python BookState against the compiled DenseBook.

The stream is parsed once, untimed, into snapshots and level updates; each timed run replays it into
fresh books of one kind and reads the touch after every update (`top_bid` and `top_ask`, as every
signal does), so the figure is apply_level + two top reads per delta, with the stream's snapshots
(a few percent of its events) applied in place. CPU time of this thread, median of `repeat` runs,
the two books taking turns; the loop's own cost (no book call) is measured beside them.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.parsing import parse_market_line
from polysnipe.core.book import Book, BookState, compiled_available
from polysnipe.core.events import BookSnapshot, PriceChange, Side
from polysnipe.runners.errors import InputError

__all__ = ["format_book", "run_bench_book"]

#: a snapshot, or one level update (token, side, price, size, ts_ms)
_Op = BookSnapshot | tuple[str, Side, int, int, int]


def _ops(path: Path) -> tuple[list[_Op], list[str]]:
    ops: list[_Op] = []
    tokens: dict[str, None] = {}
    with path.open("rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                events = parse_market_line(raw)
            except MalformedMessage:
                continue
            for e in events:
                if type(e) is BookSnapshot:
                    ops.append(e)
                    tokens[e.token_id] = None
                elif type(e) is PriceChange:
                    for d in e.changes:
                        ops.append((d.token_id, d.side, d.price, d.size, e.ts_ms))
                        tokens[d.token_id] = None
    return ops, list(tokens)


def _replay(make: Callable[[str, int], Book], ops: list[_Op], tokens: list[str]) -> tuple[float, int]:
    books = {t: make(t, 10_000) for t in tokens}
    touched = 0
    cpu0 = time.thread_time()
    for op in ops:
        if isinstance(op, BookSnapshot):
            books[op.token_id].apply_snapshot(op)
        else:
            token, side, price, size, ts = op
            book = books[token]
            book.apply_level(side, price, size, ts)
            if book.top_bid is not None and book.top_ask is not None:
                touched += 1
    return time.thread_time() - cpu0, touched


def _loop_only(ops: list[_Op], tokens: list[str]) -> float:
    """The replay loop with no book call: what both books' figures include and neither causes."""
    books = dict.fromkeys(tokens, 0)
    cpu0 = time.thread_time()
    for op in ops:
        if not isinstance(op, BookSnapshot):
            token, _side, _price, _size, _ts = op  # the same unpacking as a replay
            books[token] += 1
    return time.thread_time() - cpu0


def run_bench_book(events: Path, repeat: int) -> dict[str, Any]:
    ops, tokens = _ops(events)
    deltas = sum(1 for op in ops if not isinstance(op, BookSnapshot))
    if not deltas:
        raise InputError(
            events, "holds no book delta (price_change message); --events takes market-channel messages"
        )
    kinds: dict[str, Callable[[str, int], Book]] = {"python": BookState}
    if compiled_available():
        from polysnipe.core._book import DenseBook

        kinds["compiled"] = DenseBook
    for make in kinds.values():
        _replay(make, ops, tokens)  # warm-up
    gc.collect()
    # the kinds take turns, run by run, so that a change in the machine's load falls on both alike
    runs: dict[str, list[tuple[float, int]]] = {name: [] for name in kinds}
    loops: list[float] = []
    for _ in range(repeat):
        for name, make in kinds.items():
            runs[name].append(_replay(make, ops, tokens))
        loops.append(_loop_only(ops, tokens))
    rows: dict[str, Any] = {}
    for name, timed in runs.items():
        cpu_s = statistics.median(cpu for cpu, _ in timed)
        rows[name] = {
            "cpu_s": cpu_s,
            "ns_per_delta": cpu_s / deltas * 1e9,
            "deltas_per_s": deltas / cpu_s,
            "two_sided_after": timed[0][1],
        }
    loop_s = statistics.median(loops)
    for row in rows.values():
        row["ns_per_delta_net_of_loop"] = (row["cpu_s"] - loop_s) / deltas * 1e9
    result: dict[str, Any] = {
        "events_file": str(events),
        "measures": "apply_level + top_bid/top_ask reads per delta, snapshots applied in place",
        "deltas": deltas,
        "snapshots": len(ops) - deltas,
        "tokens": len(tokens),
        "repeat": repeat,
        "books": rows,
        "loop_only_ns_per_delta": loop_s / deltas * 1e9,
    }
    if "compiled" in rows:
        result["python_over_compiled"] = rows["python"]["cpu_s"] / rows["compiled"]["cpu_s"]
    return result


def format_book(result: dict[str, Any]) -> str:
    lines = [
        f"book: {result['deltas']:,} deltas and {result['snapshots']:,} snapshots over"
        f" {result['tokens']} tokens, median of {result['repeat']} (CPU time)",
    ]
    for name, row in result["books"].items():
        lines.append(
            f"  {name:<9} {row['ns_per_delta']:8.1f} ns/delta  {row['deltas_per_s']:>13,.0f} deltas/s"
        )
    lines.append(f"  the replay loop alone: {result['loop_only_ns_per_delta']:.1f} ns/delta")
    if "python_over_compiled" in result:
        lines.append(f"  compiled is {result['python_over_compiled']:.2f}x the Python book")
    else:
        lines.append("  compiled book not built: Python only")
    return "\n".join(lines)
