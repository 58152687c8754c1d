"""`polysnipe bench ...`: benchmarks that print their figures and write them as JSON.

Speed is measured here, never asserted in tests: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path
from typing import Any

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
    from polysnipe.runners.logging import logging_to_file

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
