"""`polysnipe bench ...`: benchmarks that print their figures and write them as JSON.

Speed is measured here, never asserted in tests: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import tempfile
from pathlib import Path
from typing import Any

from polysnipe.runners.logging import logging_to_file

__all__ = ["run_bench_command"]


def _write(out_dir: Path, name: str, result: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _bench_backtest(args: argparse.Namespace) -> dict[str, Any]:
    """The whole backtest (all three signals on) over a data set: replay events/s and decision latency."""
    from polysnipe.runners.backtest import run_backtest
    from polysnipe.runners.config import load_config
    from polysnipe.runners.containers import build_backtest_engine

    with tempfile.TemporaryDirectory() as tmp, logging_to_file(Path(tmp) / "run.log", level="warning"):
        result = run_backtest(
            markets_path=Path(args.markets),
            events_path=Path(args.events),
            out_dir=Path(tmp),
            config=load_config(None),
            build=build_backtest_engine,
        )
    return {
        "bench": "backtest",
        "events_file": str(args.events),
        "python": platform.python_version(),
        "machine": platform.machine(),
        **result.timing,
    }


def _bench_latency(args: argparse.Namespace) -> dict[str, Any]:
    """Event to signed order: from a market event entering the step to every order it causes signed
    and serialized as its POST /order body (the CLOB path, not the simulated venue's)."""
    import time

    from polysnipe.adapters.clob.signing import OrderSigner
    from polysnipe.adapters.files import load_events, read_markets
    from polysnipe.adapters.sim.journal import MemoryJournal
    from polysnipe.core.events import ExternalSignal
    from polysnipe.core.messages import PlaceOrder
    from polysnipe.core.pipeline import step
    from polysnipe.runners.bench_orders import ANVIL_TEST_KEY, latency_stats
    from polysnipe.runners.config import load_config
    from polysnipe.runners.containers import build_backtest_engine
    from polysnipe.runners.shell import EngineShell

    # a public anvil test key: nothing here is a secret or reaches a venue
    signer = OrderSigner.from_key(ANVIL_TEST_KEY, 137)
    markets = read_markets(args.markets)
    events, _ = load_events(args.events)
    state, venue = build_backtest_engine(load_config(None), markets)
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    with tempfile.TemporaryDirectory() as tmp, logging_to_file(Path(tmp) / "run.log", level="warning"):
        shell = EngineShell(state, venue, MemoryJournal())
        samples: list[int] = []
        perf = time.perf_counter_ns
        for ev in events:
            shell.now_ms = ev.ts_ms
            if type(ev) is not ExternalSignal:
                venue.on_market_event(ev)
            reports = venue.poll(ev.ts_ms)
            if reports:
                shell.deliver(reports)
            t0 = perf()
            commands = step(state, ev, ev.ts_ms)
            orders = [c.order for c in commands if isinstance(c, PlaceOrder)]
            for order in orders:
                signer.sign_request(order, ev.ts_ms).post_body(
                    "bench-owner", order.order_type, post_only=order.post_only
                )
            if orders:
                samples.append(perf() - t0)
            shell.perform(commands)
    return {"bench": "latency", "events_file": str(args.events), "signed_order_events": len(samples),
            "event_to_signed_order_us": latency_stats(samples)}  # fmt: skip


def run_bench_command(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    if args.what == "orders":
        from polysnipe.runners.bench_orders import format_table, run_bench

        result = run_bench(args.n, None)
        print(format_table(result))
    elif args.what == "backtest":
        result = _bench_backtest(args)
        dc = result["decision_compute_us"]
        print(
            f"backtest: {result['events']} events in {result['elapsed_s']} s"
            f" = {result['events_per_s']:,} events/s;"
            f" decision compute p50 {dc['p50']} us, p99 {dc['p99']} us ({dc['samples']} orders)"
        )
    elif args.what == "latency":
        result = _bench_latency(args)
        lat = result["event_to_signed_order_us"]
        print(f"event to signed order ({result['signed_order_events']} events that placed orders):"
              f" p50 {lat['p50_us']} us, p99 {lat['p99_us']} us")  # fmt: skip
    else:
        from polysnipe.runners.bench_ws import default_ws_files, run_bench_ws
        from polysnipe.runners.bench_ws import format_table as ws_table

        recorded = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "polymarket" / "ws"
        files = [Path(f) for f in args.files] if args.files else default_ws_files(recorded)
        result = run_bench_ws(files, args.repeat, None)
        print(ws_table(result))
    path = _write(out_dir, args.what, result)
    print(f"figures written to {path}")
    return 0
