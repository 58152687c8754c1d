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

    with tempfile.TemporaryDirectory() as tmp, logging_to_file(Path(tmp) / "run.log", level="warning"):
        result = run_backtest(
            markets_paths=[Path(m) for m in args.markets],
            events_path=Path(args.events),
            out_dir=Path(tmp),
            config=load_config(None),
        )
    return {
        "bench": "backtest",
        "events_file": str(args.events),
        "python": platform.python_version(),
        "machine": platform.machine(),
        **result.timing,
    }


class _SigningExecution:
    """An execution port that signs every order as the CLOB adapter would (its POST /order body)
    before handing it to the simulated venue: the live decision path, without a network."""

    def __init__(self, inner: Any, signer: Any) -> None:
        self.inner = inner
        self.signer = signer

    async def submit(self, order: Any, now_ms: int) -> Any:
        self.signer.sign_request(order, now_ms).post_body(
            "bench-owner", order.order_type, post_only=order.post_only
        )
        return await self.inner.submit(order, now_ms)

    async def cancel(self, order_id: str, now_ms: int) -> Any:
        return await self.inner.cancel(order_id, now_ms)

    def due(self, now_ms: int) -> Any:
        return self.inner.due(now_ms)

    @property
    def wake_ms(self) -> int:
        return int(self.inner.wake_ms)

    def on_market_event(self, event: Any) -> None:
        self.inner.on_market_event(event)


def _bench_latency(args: argparse.Namespace) -> dict[str, Any]:
    """Event to signed order: from a market event entering the step to every order it causes signed
    and serialized as its POST /order body (the CLOB path), through the engine loop."""
    import asyncio

    from dependency_injector import providers

    from polysnipe.adapters.clob.signing import OrderSigner
    from polysnipe.adapters.files import load_events
    from polysnipe.adapters.metadata import load_market_files
    from polysnipe.adapters.sim.replay import ReplaySource
    from polysnipe.runners.bench_orders import ANVIL_TEST_KEY, latency_stats
    from polysnipe.runners.config import as_sections, load_config
    from polysnipe.runners.containers import Backtest

    # a public anvil test key: nothing here is a secret or reaches a venue
    signer = OrderSigner.from_key(ANVIL_TEST_KEY, 137)
    events, _ = load_events(args.events)
    container = Backtest(
        registry=providers.Object(load_market_files([Path(m) for m in args.markets]).registry()),
        source=providers.Object(ReplaySource(events)),
    )
    container.config.from_dict(as_sections(load_config(None)))
    container.gateways.execution.override(
        providers.Object(_SigningExecution(container.gateways.execution(), signer))
    )
    loop = container.loop()
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    with tempfile.TemporaryDirectory() as tmp, logging_to_file(Path(tmp) / "run.log", level="warning"):
        asyncio.run(loop.run())
    return {"bench": "latency", "events_file": str(args.events), "signed_order_events": len(loop.order_ns),
            "event_to_signed_order_us": latency_stats(loop.order_ns)}  # fmt: skip


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
    elif args.what == "bus":
        import asyncio

        from polysnipe.runners.bench_bus import format_bus, run_bench_bus
        from polysnipe.runners.config import load_config

        url = load_config(None).connections.redis_url
        result = asyncio.run(run_bench_bus(url, Path(args.events), args.n, max(args.n // 20, 1_000)))
        print(format_bus(result))
    elif args.what == "signer":
        from polysnipe.runners.bench_signer import format_signer, run_bench_signer
        from polysnipe.runners.config import load_config

        result = run_bench_signer(load_config(None).connections.database_url, args.n)
        print(format_signer(result))
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
