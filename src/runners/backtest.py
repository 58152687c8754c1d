"""The backtest runner: a recording (or a generated set) replayed through the one engine loop against
the simulated venue, on event time, with the in-process bus and the memory journal. No servers.

Malformed lines never stop a run: each is counted, journaled as a RecordError and put on the
dead-letter stream, with its line number; the report keeps a few samples.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs
from dependency_injector import providers

from polysnipe.adapters.event_cache import CacheStatus, load_events_cached
from polysnipe.adapters.files import ReadStats
from polysnipe.adapters.logs import get_logger
from polysnipe.adapters.metadata import load_market_files
from polysnipe.adapters.sim.bus import InProcessBus
from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.adapters.sim.replay import ReplaySource
from polysnipe.core.events import Event
from polysnipe.core.messages import RecordError
from polysnipe.core.state import EngineState
from polysnipe.runners import core_objects as to_core
from polysnipe.runners.config import EngineConfig, as_sections
from polysnipe.runners.containers import Backtest
from polysnipe.runners.loop import EngineLoop
from polysnipe.runners.report import percentile, read_labels
from polysnipe.runners.results import InputStats, build_report, write_outputs

__all__ = ["DEAD_LETTER_STREAM", "BacktestResult", "run_backtest"]

log = get_logger("polysnipe.backtest")

DEAD_LETTER_STREAM = "md.dead"


@attrs.define
class BacktestResult:
    report: dict[str, Any]
    timing: dict[str, Any]
    out_dir: Path
    loop: EngineLoop
    journal: MemoryJournal

    @property
    def state(self) -> EngineState:
        return self.loop.state


class _MalformedSink:
    """Every malformed input line, kept three ways: a RecordError for the journal's errors table, the
    dead-letter stream, and one JSON line in malformed.jsonl beside the report (with the line itself)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.errors: list[RecordError] = []
        self.dead_letters: InProcessBus[RecordError] = InProcessBus()

    def source(self, name: str) -> Callable[[int, str, bytes], None]:
        def on_malformed(line_number: int, reason: str, raw: bytes) -> None:
            payload = raw.decode("utf-8", "replace")
            error = RecordError(name, str(line_number), reason, payload, 0)
            self.errors.append(error)
            self.dead_letters.publish(DEAD_LETTER_STREAM, error)
            row = {"source": name, "line": line_number, "reason": reason, "raw": payload}
            self.out.write(json.dumps(row, ensure_ascii=False) + "\n")

        return on_malformed


def _load(
    events_path: Path, signals_path: Path | None, sink: _MalformedSink, *, use_cache: bool
) -> tuple[list[Event], ReadStats, list[CacheStatus]]:
    events, stats, status = load_events_cached(
        events_path, on_malformed=sink.source(events_path.name), use_cache=use_cache
    )
    statuses = [status]
    if signals_path is not None:
        # external signals kept beside the market data: merged in time order, market data first on a tie
        signals, signal_stats, status = load_events_cached(
            signals_path, on_malformed=sink.source(signals_path.name), use_cache=use_cache
        )
        statuses.append(status)
        events = sorted(events + signals, key=lambda e: e.ts_ms)
        stats.lines += signal_stats.lines
        stats.events += signal_stats.events
        for line, reason in signal_stats.samples:
            stats.record_malformed(line, f"{signals_path.name}: {reason}")
        stats.malformed += signal_stats.malformed - len(signal_stats.samples)
    return events, stats, statuses


def run_backtest(
    *,
    markets_paths: Sequence[Path],
    events_path: Path,
    out_dir: Path,
    config: EngineConfig,
    labels_path: Path | None = None,
    signals_path: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    use_cache: bool = True,
) -> BacktestResult:
    """Replay `events_path` against the simulated venue and write the report files into `out_dir`.

    `markets_paths` are metadata files of any shape the loader reads (CLOB, GET /clob-markets,
    Gamma markets and events), merged by condition id. With `use_cache`, the parsed events and
    signals files are cached beside them (adapters/event_cache.py); the outputs are the same either way.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    catalog = load_market_files(markets_paths)
    with (out_dir / "malformed.jsonl").open("w", encoding="utf-8") as malformed_out:
        sink = _MalformedSink(malformed_out)
        load_start, load_cpu_start = time.perf_counter_ns(), time.process_time_ns()
        events, stats, cache_statuses = _load(events_path, signals_path, sink, use_cache=use_cache)
        load_ns = time.perf_counter_ns() - load_start
        load_cpu_ns = time.process_time_ns() - load_cpu_start
    source = ReplaySource(events)
    container = Backtest(registry=providers.Object(catalog.registry()), source=providers.Object(source))
    container.config.from_dict(as_sections(config))
    loop: EngineLoop = container.loop()
    journal: MemoryJournal = container.journal()
    # the errors table and the dead-letter stream keep what was dropped and why
    journal.record(sink.errors)
    if progress is not None:
        loop.on_batch = lambda: progress(source.consumed, source.total)
    starting_equity = loop.state.portfolio.equity().total_usdc_micro

    # The loaded events live through the whole replay and cannot form reference cycles: frozen, the
    # collector stops rescanning them (on a fresh run that rescanning cost about 15%). A caller's own
    # frozen objects stay frozen.
    caller_froze = gc.get_freeze_count() > 0
    gc.collect()
    gc.freeze()
    t_start = time.perf_counter_ns()
    cpu_start = time.process_time_ns()
    try:
        asyncio.run(loop.run())
    finally:
        if not caller_froze:
            gc.unfreeze()
    elapsed_ns = time.perf_counter_ns() - t_start
    cpu_ns = time.process_time_ns() - cpu_start
    asyncio.run(loop.drain("end_of_data"))

    labels = read_labels(labels_path) if labels_path else None
    inputs = {
        "markets": [p.name for p in markets_paths],
        "events": events_path.name,
        "seed": config.seed,
        "markets_loaded": len(catalog.markets),
        "markets_refused": [[cid, why] for cid, why in catalog.refused],
        "markets_with_unknown_fees": catalog.fees_unknown,
        "neg_risk_events_complete": sum(1 for e in catalog.events if e.complete),
    }
    feed = to_core.feed_latency(config.venue)
    orders = to_core.latency_model(config.venue).describe()
    delayed = sum(1 for m in catalog.markets if m.match_delay_ms)
    assumptions = {
        "latency": {"market_data": feed.describe(), **orders},
        "queue_model": config.venue.queue_model,
        "fees": "each market's schedule from its metadata; markets with unknown fees are not traded",
        "matching_delay": "marketable orders wait their market's seconds_delay before matching"
        f" ({delayed} of {len(catalog.markets)} markets have one)",
    }
    report = build_report(
        loop,
        journal,
        assumptions=assumptions,
        inputs=inputs,
        stats=InputStats(stats.lines, stats.malformed, tuple(stats.samples)),
        starting_equity=starting_equity,
        labels=labels,
    )
    decisions = sorted(ns / 1000 for ns in loop.decision_ns)
    total = len(events)
    timing = {
        "events": total,
        "elapsed_s": round(elapsed_ns / 1e9, 4),
        # CPU time of this process beside the wall clock: load from other processes stretches only the latter
        "cpu_s": round(cpu_ns / 1e9, 4),
        "events_per_s": round(total / (elapsed_ns / 1e9)) if elapsed_ns else 0,
        # reading the events (and signals) files: parsed, or rebuilt from their cache
        "load_s": round(load_ns / 1e9, 4),
        "load_cpu_s": round(load_cpu_ns / 1e9, 4),
        "event_cache": cache_statuses,
        "decision_compute_us": {
            "p50": round(percentile(decisions, 50), 2),
            # a p99 is a figure only over enough samples (issue 15: never the maximum of a few dozen)
            "p99": round(percentile(decisions, 99), 2)
            if len(decisions) >= 1_000
            else f"n/a ({len(decisions)} samples)",
            "samples": len(decisions),
            "what": "wall-clock time of the pure step from a market event to the PlaceOrder commands",
        },
    }
    write_outputs(out_dir, report, timing, loop, journal, title=f"backtest: {events_path.name}")
    return BacktestResult(report, timing, out_dir, loop, journal)
