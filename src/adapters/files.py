"""Recorded data on disk: CLOB markets JSON and JSON-lines event files, normalized to core types.

An events file holds one market-channel frame (an object or a JSON array) or one external-signal
object per line (docs/external-signals.md). A malformed line is skipped, so one bad record in a day
of data never stops a backtest, and every one is accounted for: counted in ReadStats, handed whole
(line number, reason, raw bytes) to the caller's `on_malformed` (which keeps them all: a
malformed.jsonl, the errors table, the dead-letter stream), and the first few kept as samples for the
report's short list.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter
from pathlib import Path

import attrs

from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.parsing import parse_market_line, parse_markets
from polysnipe.core.events import Event
from polysnipe.core.market import Market

__all__ = [
    "OnMalformedLine",
    "ReadStats",
    "collect_events",
    "iter_events",
    "iter_line_events",
    "load_events",
    "read_markets",
]

_by_ts = attrgetter("ts_ms")

#: called once per malformed line: (line number from 1, reason, the raw line without its newline)
OnMalformedLine = Callable[[int, str, bytes], None]


@attrs.define(slots=True)
class ReadStats:
    """What reading an events file saw. Mutated while reading; report it when the run ends."""

    #: non-blank lines read
    lines: int = 0
    #: events produced (a price_change line is one PriceChange event, whatever its delta count)
    events: int = 0
    #: lines that raised MalformedMessage and were skipped (every one, however many)
    malformed: int = 0
    #: the first `max_samples` malformed lines as (line_number, reason), for a report's short list;
    #: line numbers start at 1. Every malformed line goes to `on_malformed` of iter_events/load_events.
    samples: list[tuple[int, str]] = attrs.field(factory=list)
    max_samples: int = 20

    def record_malformed(self, line_number: int, reason: str) -> None:
        self.malformed += 1
        if len(self.samples) < self.max_samples:
            self.samples.append((line_number, reason))


def read_markets(path: str | os.PathLike[str]) -> list[Market]:
    """Markets from a CLOB REST JSON file: a GET /markets page, a list, or one market object."""
    return parse_markets(Path(path).read_bytes())


def iter_events(
    path: str | os.PathLike[str],
    stats: ReadStats | None = None,
    *,
    on_malformed: OnMalformedLine | None = None,
) -> Iterator[tuple[int, list[Event]]]:
    """Yield (line_number, events) for each line of a JSON-lines file that produced events.

    Lines that map to no event (best_bid_ask, new_market, ...) are not yielded; malformed lines are
    recorded in `stats` (when given), passed to `on_malformed` (every one), and skipped. Each line is
    decoded exactly once.
    """
    with open(path, "rb") as f:
        yield from iter_line_events(f, stats, on_malformed=on_malformed)


def iter_line_events(
    lines: Iterable[bytes],
    stats: ReadStats | None = None,
    *,
    on_malformed: OnMalformedLine | None = None,
) -> Iterator[tuple[int, list[Event]]]:
    """iter_events over lines already read (each with its newline, as a binary file yields them)."""
    st = stats if stats is not None else ReadStats()
    parse = parse_market_line
    for line_number, line in enumerate(lines, 1):
        if line.isspace():
            continue
        st.lines += 1
        try:
            events = parse(line)
        except MalformedMessage as exc:
            st.record_malformed(line_number, exc.reason)
            if on_malformed is not None:
                on_malformed(line_number, exc.reason, line.rstrip(b"\r\n"))
            continue
        if events:
            st.events += len(events)
            yield line_number, events


def load_events(
    path: str | os.PathLike[str], *, on_malformed: OnMalformedLine | None = None
) -> tuple[list[Event], ReadStats]:
    """All events of a JSON-lines file, sorted by ts_ms; equal timestamps keep file order.

    Every malformed line is counted in the returned ReadStats and passed to `on_malformed`.
    """
    with open(path, "rb") as f:
        return collect_events(f, on_malformed=on_malformed)


def collect_events(
    lines: Iterable[bytes], *, on_malformed: OnMalformedLine | None = None
) -> tuple[list[Event], ReadStats]:
    """load_events over lines already read (each with its newline, as a binary file yields them)."""
    stats = ReadStats()
    events: list[Event] = []
    extend = events.extend
    # Millions of freshly allocated, acyclic event objects make the cyclic GC rescan the growing
    # heap over and over (about 40% of load time); nothing here can form a cycle, so pause it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _, line_events in iter_line_events(lines, stats, on_malformed=on_malformed):
            extend(line_events)
    finally:
        if gc_was_enabled:
            gc.enable()
    # list.sort is stable, which is what keeps same-millisecond events in their recorded order
    events.sort(key=_by_ts)
    return events, stats
