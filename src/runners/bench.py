"""`polysnipe bench ...`: benchmarks that print their figures and write them as JSON.

Speed is measured here, never asserted in tests: timings depend on the machine and its load. So
that a figure cannot flatter, every bench runs `--repeat` times and reports the median run, CPU
time beside the wall clock, the machine it ran on, and a peer measured in the same run where one
exists. A tail percentile is withheld (`n/a (N samples)`) unless it rests on enough samples.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from polysnipe.runners.logging import logging_to_file

__all__ = ["machine", "medians", "run_bench_command", "tail_stats"]

#: percentiles reported for latencies, each with the samples it needs: 10 beyond it (p99: 1,000)
_QUANTILES = (("p50", 0.5, 1), ("p90", 0.9, 100), ("p99", 0.99, 1_000), ("p99_9", 0.999, 10_000))


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "arch": platform.machine(),
        "system": platform.system(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


def tail_stats(samples_ns: Sequence[int]) -> dict[str, Any]:
    """p50/p90/p99/p99.9/max in microseconds, with the sample count. A tail quantile is a figure only
    with 10 samples beyond it (p99 from 1,000 on): below that it is the string "n/a (N samples)"."""
    n = len(samples_ns)
    ordered = sorted(samples_ns)
    out: dict[str, Any] = {"samples": n}
    for name, q, needs in _QUANTILES:
        if n >= needs:
            out[f"{name}_us"] = round(ordered[max(0, math.ceil(q * n) - 1)] / 1000, 2)
        else:
            out[f"{name}_us"] = f"n/a ({n} samples)"
    out["max_us"] = round(ordered[-1] / 1000, 2) if n else f"n/a ({n} samples)"
    return out


def medians(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per key, the median over the runs of the numeric values (other values from the first run)."""
    out: dict[str, Any] = {}
    for key, first in runs[0].items():
        values = [r[key] for r in runs]
        if isinstance(first, int | float) and not isinstance(first, bool):
            out[key] = statistics.median(values)
        elif isinstance(first, dict):
            out[key] = medians(values)
        else:
            out[key] = first
    return out


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds) if seconds > 0 else 0.0


def _write(out_dir: Path, name: str, result: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def _generated(seed: int) -> Iterator[tuple[Path, list[Path]]]:
    """A generated data set of the default size (about 27k frames): (events, metadata files)."""
    from polysnipe.tools.datagen import GENERATED_METADATA, generate

    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), seed=seed)
        yield Path(tmp) / "events.jsonl", [Path(tmp) / name for name in GENERATED_METADATA]


# -- backtest ----------------------------------------------------------------------------------
def _bench_backtest(args: argparse.Namespace) -> dict[str, Any]:
    """The whole backtest (all three signals on), `--repeat` times: replay-only and end to end."""
    from polysnipe.adapters.event_cache import cache_dir_of
    from polysnipe.adapters.files import load_events
    from polysnipe.core.events import BookSnapshot, PriceChange
    from polysnipe.runners.backtest import run_backtest
    from polysnipe.runners.config import load_config

    events, _ = load_events(args.events)
    deltas = 0
    for e in events:
        if type(e) is PriceChange:
            deltas += len(e.changes)
        elif type(e) is BookSnapshot:
            deltas += len(e.bids) + len(e.asks)
    runs: list[dict[str, Any]] = []
    decision: dict[str, Any] = {}

    def one_run(events_path: Path, prefix: str) -> dict[str, Any]:
        nonlocal decision
        gc.collect()
        with tempfile.TemporaryDirectory() as tmp, logging_to_file(Path(tmp) / "run.log", level="warning"):
            wall0, cpu0 = time.perf_counter(), time.process_time()
            result = run_backtest(
                markets_paths=[Path(m) for m in args.markets],
                events_path=events_path,
                out_dir=Path(tmp),
                config=load_config(None),
                use_cache=args.cache,
            )
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        t = result.timing
        decision = t["decision_compute_us"]
        figures = {"replay_s": t["elapsed_s"], "replay_cpu_s": t["cpu_s"], "load_s": t["load_s"],
                   "load_cpu_s": t["load_cpu_s"], "end_to_end_s": round(wall, 4),
                   "end_to_end_cpu_s": round(cpu, 4)}  # fmt: skip
        return {prefix + key: value for key, value in figures.items()}

    with tempfile.TemporaryDirectory() as work:
        if args.cache:
            # The runs write and remove the cache beside a link to (or copy of) the events file,
            # never the one a user's own backtests keep beside theirs.
            events_path = _private_link(Path(args.events), Path(work))
            for _ in range(args.repeat):
                shutil.rmtree(cache_dir_of(events_path), ignore_errors=True)
                cold = one_run(events_path, "cold_")
                runs.append({**one_run(events_path, ""), **cold})
        else:
            runs = [one_run(Path(args.events), "") for _ in range(args.repeat)]
    med = medians(runs)
    n = len(events)
    ours = {
        **med,
        "replay_events_per_s": _rate(n, med["replay_s"]),
        "replay_deltas_per_s": _rate(deltas, med["replay_s"]),
        "replay_deltas_per_cpu_s": _rate(deltas, med["replay_cpu_s"]),
        "end_to_end_events_per_s": _rate(n, med["end_to_end_s"]),
        "end_to_end_deltas_per_s": _rate(deltas, med["end_to_end_s"]),
        "end_to_end_deltas_per_cpu_s": _rate(deltas, med["end_to_end_cpu_s"]),
    }
    out: dict[str, Any] = {
        "bench": "backtest",
        "events_file": str(args.events),
        "events": n,
        "deltas": deltas,
        "deltas_count": "price_change entries plus the levels of every book snapshot",
        "repeat": args.repeat,
        "machine": machine(),
        "measures": {
            "replay": "the engine loop over the loaded events (the simulated venue, three signals)",
            "end_to_end": "run_backtest: load, replay, build and write the report; the load reads the"
            " parsed-events cache (warm) unless --no-cache, then it parses the JSON lines",
            "cold_end_to_end": "run_backtest with no cache yet: parse the JSON lines and write the cache",
            "load": "run_backtest's reading of the events file, inside end_to_end",
        },
        "event_cache": "on (each repeat: a cold run, then a warm one)" if args.cache else "off (--no-cache)",
        "runs": runs,
        "median": ours,
        "decision_compute_us_last_run": decision,
    }
    return out


def _private_link(events: Path, folder: Path) -> Path:
    """`events` under `folder`, hard-linked where the file system allows (no copy), else copied."""
    target = folder / events.name
    try:
        os.link(events, target)
    except OSError:
        shutil.copyfile(events, target)
    return target


def _format_backtest(r: dict[str, Any]) -> str:
    m = r["median"]
    lines = [
        f"backtest: {r['events']:,} events, {r['deltas']:,} deltas, median of {r['repeat']}"
        f" ({r['machine']['cpu_count']} cpus, Python {r['machine']['python']})",
        f"{'':24s}{'wall s':>9s}{'cpu s':>9s}{'events/s':>12s}{'deltas/s':>12s}",
        f"{'polysnipe replay':24s}{m['replay_s']:9.3f}{m['replay_cpu_s']:9.3f}"
        f"{m['replay_events_per_s']:12,.0f}{m['replay_deltas_per_s']:12,.0f}",
        f"{'polysnipe end to end':24s}{m['end_to_end_s']:9.3f}{m['end_to_end_cpu_s']:9.3f}"
        f"{m['end_to_end_events_per_s']:12,.0f}{m['end_to_end_deltas_per_s']:12,.0f}",
        f"{'polysnipe load':24s}{m['load_s']:9.3f}{m['load_cpu_s']:9.3f}"
        + ("   (from the cache)" if "cold_load_s" in m else "   (parsing the JSON lines, --no-cache)"),
    ]
    if "cold_load_s" in m:
        lines += [
            f"{'cold end to end':24s}{m['cold_end_to_end_s']:9.3f}{m['cold_end_to_end_cpu_s']:9.3f}",
            f"{'cold load':24s}{m['cold_load_s']:9.3f}{m['cold_load_cpu_s']:9.3f}"
            "   (parse + write the cache)",
        ]
    return "\n".join(lines)


# -- compare-nautilus --------------------------------------------------------------------------
#: NautilusTrader's BacktestEngine as the peer runs it (bench_nautilus_peer.py)
_PEER_ENGINE = (
    "BacktestEngine, one L2_MBP venue (its matching engine applies every delta), one strategy subscribed"
    " to every token's deltas with a managed book, reading its best bid on each delta"
)

#: the generated set compared on by default: realistic books and flow, far beyond the tiny sample
_COMPARE_SEED = 11


def _compare_nautilus(args: argparse.Namespace) -> dict[str, Any]:
    """The same deltas through our backtest and NautilusTrader's BacktestEngine, a run of each in
    turn `--repeat` times (so a change in the machine's load falls on both), medians reported."""
    from polysnipe.runners.bench_nautilus import HOW_TO_GET, find_nautilus_python

    if args.events is not None:
        data = f"{args.events} (given)"
    else:
        data = f"generated: polysnipe generate --seed {_COMPARE_SEED} (datagen defaults, 1800 s)"
    head: dict[str, Any] = {
        "bench": "compare-nautilus",
        "data": data,
        "repeat": args.repeat,
        "machine": machine(),
    }
    python, found = find_nautilus_python(args.nautilus_python)
    if python is None:
        return {**head, "status": "skipped", "why": f"NautilusTrader not found: {found}", "how": HOW_TO_GET}
    if args.events is not None:
        return _compare_on(args, head, python, found)
    with _generated(_COMPARE_SEED) as (events_path, markets):
        ns = argparse.Namespace(
            **{**vars(args), "events": str(events_path), "markets": [str(m) for m in markets]}
        )
        return _compare_on(ns, head, python, found)


def _compare_on(args: argparse.Namespace, head: dict[str, Any], python: str, found: str) -> dict[str, Any]:
    from polysnipe.adapters.files import load_events
    from polysnipe.runners.bench_nautilus import run_peer, write_deltas

    once = argparse.Namespace(**{**vars(args), "repeat": 1})
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    version = peer_python = ""
    with tempfile.TemporaryDirectory() as tmp:
        deltas_path = Path(tmp) / "deltas.txt"
        events, _ = load_events(args.events)
        write_deltas(events, deltas_path)
        del events
        for _ in range(args.repeat):
            ran = _bench_backtest(once)
            ours.append(ran["median"])
            try:
                peer = run_peer(python, deltas_path, 1)
            except RuntimeError as exc:
                return {**head, "status": "failed", "why": str(exc)}
            version, peer_python = peer["version"], peer["python"]
            run = peer["runs"][0]
            n = run["deltas"]
            e2e_s = run["load_s"] + run["replay_s"] + run["report_s"]
            e2e_cpu_s = run["load_cpu_s"] + run["replay_cpu_s"] + run["report_cpu_s"]
            theirs.append({
                **run, "end_to_end_s": e2e_s, "end_to_end_cpu_s": e2e_cpu_s,
                "replay_deltas_per_s": _rate(n, run["replay_s"]),
                "replay_deltas_per_cpu_s": _rate(n, run["replay_cpu_s"]),
                "end_to_end_deltas_per_s": _rate(n, e2e_s),
                "end_to_end_deltas_per_cpu_s": _rate(n, e2e_cpu_s),
            })  # fmt: skip
    mine, peer_med = medians(ours), medians(theirs)
    keys = (
        "replay_deltas_per_s",
        "replay_deltas_per_cpu_s",
        "end_to_end_deltas_per_s",
        "end_to_end_deltas_per_cpu_s",
    )
    return {
        **head,
        "status": "ran",
        "events": ran["events"],
        "deltas": ran["deltas"],
        "ours": {
            "engine": "polysnipe backtest: the engine loop, three signals, the simulated venue",
            "measures": ran["measures"],
            "runs": ours,
            "median": mine,
        },
        "nautilus": {
            "engine": f"NautilusTrader {version} {_PEER_ENGINE}",
            "version": version,
            "python": peer_python,
            "found": f"{python} ({found})",
            "measures": {
                "replay": "BacktestEngine.run over the loaded deltas",
                "end_to_end": "load (read the deltas polysnipe parsed, as text lines, and build"
                " OrderBookDelta objects; it parses no JSON frames) + replay + report (result, fills,"
                " positions, account)",
                "deltas": "ours plus one clear per book snapshot",
            },
            "runs": theirs,
            "median": peer_med,
        },
        "ours_over_nautilus": {k: round(mine[k] / peer_med[k], 3) if peer_med[k] else None for k in keys},
        "aims": {"replay_deltas_per_s": 5, "end_to_end_deltas_per_s": 2},
    }


def _format_compare(r: dict[str, Any]) -> str:
    if r["status"] != "ran":
        return f"compare-nautilus {r['status']}: {r['why']}" + (f"; {r['how']}" if "how" in r else "")
    o, t, x = r["ours"]["median"], r["nautilus"]["median"], r["ours_over_nautilus"]

    def ratio(key: str) -> str:
        return f"{x[key]:.2f}x" if x[key] is not None else "n/a"

    lines = [
        f"data: {r['data']}: {r['events']:,} events, {r['deltas']:,} deltas",
        f"polysnipe vs {r['nautilus']['engine']}",
        f"median of {r['repeat']} run(s) each, in turn ({r['machine']['cpu_count']} cpus; Python"
        f" {r['machine']['python']} vs {r['nautilus']['python']})",
        f"{'':28s}{'wall s':>9s}{'cpu s':>9s}{'deltas/s':>12s}{'deltas/cpu s':>14s}",
    ]
    for name, m in (("polysnipe", o), ("nautilus", t)):
        for part in ("replay", "end_to_end"):
            label = f"{name} {'replay' if part == 'replay' else 'end to end'}"
            lines.append(
                f"{label:28s}{m[f'{part}_s']:9.3f}{m[f'{part}_cpu_s']:9.3f}"
                f"{m[f'{part}_deltas_per_s']:12,.0f}{m[f'{part}_deltas_per_cpu_s']:14,.0f}"
            )
    replay, e2e = (
        f"{ratio(f'{p}_deltas_per_s')} (cpu {ratio(f'{p}_deltas_per_cpu_s')})"
        for p in ("replay", "end_to_end")
    )
    lines.append(
        f"ours / nautilus per delta: replay {replay}, end to end {e2e};"
        f" aims {r['aims']['replay_deltas_per_s']}x, {r['aims']['end_to_end_deltas_per_s']}x"
    )
    return "\n".join(lines)


# -- latency -----------------------------------------------------------------------------------
class _SigningExecution:
    """An execution port that signs every order as the CLOB adapter would (its POST /order body;
    a basket's legs in parallel, as POST /orders elements) before handing it to the simulated venue:
    the live decision path, without a network. The simulated venue is also the backtest's
    settlement gateway: that passes through."""

    def __init__(self, inner: Any, signer: Any) -> None:
        self.inner = inner
        self.signer = signer

    async def submit(self, order: Any, now_ms: int) -> Any:
        self.signer.sign_request(order, now_ms).post_body(
            "bench-owner", order.order_type, post_only=order.post_only
        )
        return await self.inner.submit(order, now_ms)

    async def submit_many(self, orders: Sequence[Any], now_ms: int) -> Any:
        """A basket as the CLOB adapter sends it: the legs signed at once (ParallelSigner), each
        serialized as its element of the POST /orders body."""
        for order, signed in zip(orders, self.signer.sign_requests(orders, now_ms), strict=True):
            if isinstance(signed, Exception):
                raise signed
            signed.post_body("bench-owner", order.order_type, post_only=order.post_only)
        return await self.inner.submit_many(orders, now_ms)

    async def cancel(self, order_id: str, now_ms: int) -> Any:
        return await self.inner.cancel(order_id, now_ms)

    def due(self, now_ms: int) -> Any:
        return self.inner.due(now_ms)

    @property
    def wake_ms(self) -> int:
        return int(self.inner.wake_ms)

    def on_market_event(self, event: Any) -> None:
        self.inner.on_market_event(event)

    async def merge(self, request: Any) -> Any:
        return await self.inner.merge(request)

    async def redeem(self, request: Any) -> Any:
        return await self.inner.redeem(request)

    async def convert(self, request: Any) -> Any:
        return await self.inner.convert(request)


class _TimedKey:
    """A DigestSigner around the bench's key that times each raw ECDSA call (libsecp256k1 alone, no
    Python inside): the floor of an order's signing, measured inside the same decisions, so that
    the part of the tail the host adds to C code is seen beside the tail of the whole path. The
    wrapper's own cost (one call, two clock reads) is well under a microsecond."""

    __slots__ = ("_sign", "address", "samples")

    def __init__(self, key: Any, samples: list[int]) -> None:
        self._sign = key.sign_order_digest
        self.address = key.address
        self.samples = samples

    def sign_order_digest(self, digest: bytes) -> bytes:
        perf = time.perf_counter_ns
        t0 = perf()
        signature: bytes = self._sign(digest)
        self.samples.append(perf() - t0)
        return signature


@attrs.frozen
class _LatencySamples:
    """One replay's samples, one row per event that placed orders (`order_ns`, `step_ns`, `legs`
    align); `ecdsa_ns` holds every raw signature call of the run."""

    #: the event entering the step to its last order signed and handed on
    order_ns: list[int]
    #: the same events' pure step alone (event to its commands)
    step_ns: list[int]
    #: PlaceOrder commands of each event: 1 is a single order, more a basket
    legs: list[int]
    ecdsa_ns: list[int]
    source: str


def _latency_run(events_path: Path, markets: Sequence[Path], gc_freeze: bool, source: str) -> _LatencySamples:
    """One replay with a signing port."""
    import asyncio

    from dependency_injector import providers

    from polysnipe.adapters.clob.signing import EcdsaKey, OrderSigner, ParallelSigner
    from polysnipe.adapters.files import load_events
    from polysnipe.adapters.metadata import load_market_files
    from polysnipe.adapters.sim.replay import ReplaySource
    from polysnipe.runners.bench_orders import ANVIL_TEST_KEY
    from polysnipe.runners.collector import between_batches
    from polysnipe.runners.config import as_sections, load_config
    from polysnipe.runners.containers import Backtest

    ecdsa_ns: list[int] = []
    # a public anvil test key: nothing here is a secret or reaches a venue
    signer = ParallelSigner(lambda: OrderSigner(_TimedKey(EcdsaKey(ANVIL_TEST_KEY), ecdsa_ns), 137))
    events, _ = load_events(events_path)
    container = Backtest(
        registry=providers.Object(load_market_files(list(markets)).registry()),
        source=providers.Object(ReplaySource(events)),
    )
    container.config.from_dict(as_sections(load_config(None)))
    container.gateways.execution.override(
        providers.Object(_SigningExecution(container.gateways.execution(), signer))
    )
    loop = container.loop()
    gc.collect()
    signer.start()
    try:
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            stack.enter_context(logging_to_file(Path(tmp) / "run.log", level="warning"))
            if gc_freeze:
                # as the live and paper runners collect: between batches, never inside a decision
                loop.on_batch = stack.enter_context(between_batches())
            asyncio.run(loop.run())
    finally:
        signer.close()
    return _LatencySamples(loop.order_ns, loop.decision_ns, loop.order_legs, ecdsa_ns, source)


def _latency_sample_set(args: argparse.Namespace) -> Iterator[_LatencySamples]:
    """Sample sets of distinct events: the one given file, or generated sets (seeds 1, 2, ...)
    until `--samples` single-order decisions (the aim's kind) are pooled, at most `--max-sets` sets."""
    if args.events is not None:
        yield _samples_of(args, str(args.events))
        return
    pooled = 0
    for seed in range(1, args.max_sets + 1):
        samples = _samples_of(args, f"generated seed {seed}")
        pooled += samples.legs.count(1)
        yield samples
        if pooled >= args.samples:
            return


def _bench_latency(args: argparse.Namespace) -> dict[str, Any]:
    """Event to signed order: from a market event entering the step to every order it causes signed
    and serialized as its POST /order body (the CLOB path), through the engine loop. Each sample set
    holds every event once; `--repeat` replays the same sets again as another set; the percentiles
    reported are the medians over the sets' percentiles."""
    sets = list(_latency_sample_set(args))
    runs: list[dict[str, Any]] = [_latency_stats(sets)]
    for _ in range(args.repeat - 1):
        runs.append(_latency_stats([_samples_of(args, s.source) for s in sets]))
    return {
        "bench": "latency",
        "sources": [s.source for s in sets],
        "repeat": args.repeat,
        "machine": machine(),
        "measures": "event entering the step to its last order signed and serialized (POST /order body)",
        "parts": {
            "single_step": "of the single orders: the pure step alone (event to its commands)",
            "ecdsa": "every raw libsecp256k1 signature call of the same runs (no Python inside)",
        },
        "runs": runs,
        "median": _median_stats(runs),
        "aim_single_p99_us": 150,
    }


def _samples_of(args: argparse.Namespace, source: str) -> _LatencySamples:
    """The samples of one replay of `source`: a file, or "generated seed N"."""
    if not source.startswith("generated seed "):
        return _latency_run(Path(source), [Path(m) for m in args.markets], args.gc_freeze, source)
    with _generated(int(source.rsplit(" ", 1)[1])) as (events_path, markets):
        return _latency_run(events_path, markets, args.gc_freeze, source)


def _latency_stats(sets: Sequence[_LatencySamples]) -> dict[str, Any]:
    single = [t for s in sets for t, n in zip(s.order_ns, s.legs, strict=True) if n == 1]
    basket = [t for s in sets for t, n in zip(s.order_ns, s.legs, strict=True) if n > 1]
    step = [t for s in sets for t, n in zip(s.step_ns, s.legs, strict=True) if n == 1]
    return {
        "all": tail_stats(single + basket),
        "single": tail_stats(single),
        "basket": tail_stats(basket),
        "single_step": tail_stats(step),
        "ecdsa": tail_stats([t for s in sets for t in s.ecdsa_ns]),
    }


def _median_stats(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per kind and figure, the median over the runs; a figure withheld in any run stays withheld."""
    out: dict[str, Any] = {}
    for kind in runs[0]:
        out[kind] = {}
        for key, first in runs[0][kind].items():
            values = [r[kind][key] for r in runs]
            if all(type(v) is int for v in values):  # counts stay counts
                out[kind][key] = statistics.median_low(values)
            elif all(isinstance(v, int | float) for v in values):
                out[kind][key] = statistics.median(values)
            else:
                out[kind][key] = first
    return out


def _format_latency(r: dict[str, Any]) -> str:
    lines = [
        f"event to signed order, median of {r['repeat']} run(s) over {len(r['sources'])} data set(s)"
        f" ({r['machine']['cpu_count']} cpus, Python {r['machine']['python']})",
        f"{'':10s}{'samples':>9s}{'p50 us':>10s}{'p90 us':>20s}{'p99 us':>22s}{'p99.9 us':>22s}"
        f"{'max us':>10s}",
    ]

    def cell(v: Any, width: int) -> str:
        return f"{v:{width},.1f}" if isinstance(v, int | float) else f"  {v:>{width - 2}s}"

    def row(kind: str, label: str) -> str:
        s = r["median"][kind]
        return (
            f"{label:10s}{s['samples']:9,d}{cell(s['p50_us'], 10)}{cell(s['p90_us'], 20)}"
            f"{cell(s['p99_us'], 22)}{cell(s['p99_9_us'], 22)}{cell(s['max_us'], 10)}"
        )

    lines += [row(kind, kind) for kind in ("single", "basket", "all")]
    lines += [
        "parts, in the same runs: 'step' the single orders' pure step alone; 'ecdsa' each raw",
        "libsecp256k1 signature call alone (C, no Python: what the host itself adds to its tail)",
        row("single_step", "step"),
        row("ecdsa", "ecdsa"),
    ]
    return "\n".join(lines)


# -- dispatch ----------------------------------------------------------------------------------
def run_bench_command(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    if args.what == "orders":
        from polysnipe.runners.bench_orders import format_table, run_bench

        result = run_bench(args.n, None, repeat=args.repeat)
        result["machine"] = machine()
        print(format_table(result))
    elif args.what == "backtest":
        result = _bench_backtest(args)
        print(_format_backtest(result))
    elif args.what == "bus":
        import asyncio

        from polysnipe.runners.bench_bus import format_bus, run_bench_bus
        from polysnipe.runners.config import load_config

        url = load_config(None).connections.redis_url
        result = asyncio.run(
            run_bench_bus(url, Path(args.events), args.n, max(args.n // 20, 1_000), repeat=args.repeat)
        )
        result["machine"] = machine()
        print(format_bus(result))
    elif args.what == "live":
        import asyncio

        from polysnipe.runners.bench_live import format_live, run_bench_live
        from polysnipe.runners.config import load_config
        from polysnipe.runners.logging import configure_logging

        # the engine logs every decision; the bench prints figures only
        configure_logging(mode="console", level="error")

        config = load_config(None)
        result = asyncio.run(
            run_bench_live(
                redis_url=config.connections.redis_url, database_url=config.connections.database_url,
                events_path=Path(args.events), markets=[Path(m) for m in args.markets], config=config,
                n=args.n, repeat=args.repeat, samples=max(args.n // 20, 1_000),
            )
        )  # fmt: skip
        print(format_live(result))
    elif args.what == "signer":
        from polysnipe.runners.bench_signer import format_signer, run_bench_signer
        from polysnipe.runners.config import load_config

        result = run_bench_signer(load_config(None).connections.database_url, args.n)
        print(format_signer(result))
    elif args.what == "latency":
        result = _bench_latency(args)
        print(_format_latency(result))
    elif args.what == "compare-nautilus":
        result = _compare_nautilus(args)
        print(_format_compare(result))
    elif args.what == "venue":
        from polysnipe.runners.bench_venue import format_venue, run_bench_venue

        if args.events is not None:
            result = run_bench_venue(Path(args.events), [Path(m) for m in args.markets], args.repeat)
        else:
            with _generated(1) as (events_path, markets):
                result = run_bench_venue(events_path, markets, args.repeat)
                result["events_file"] = "generated seed 1 (datagen defaults)"
        result["machine"] = machine()
        print(format_venue(result))
    elif args.what == "book":
        from polysnipe.runners.bench_book import format_book, run_bench_book

        if args.events is not None:
            result = run_bench_book(Path(args.events), args.repeat)
        else:
            with _generated(1) as (events_path, _):
                result = run_bench_book(events_path, args.repeat)
                result["events_file"] = "generated seed 1 (datagen defaults)"
        result["machine"] = machine()
        print(format_book(result))
    else:
        from polysnipe.runners.bench_ws import format_table as ws_table
        from polysnipe.runners.bench_ws import run_bench_ws

        if args.events is not None:
            result = run_bench_ws(Path(args.events), args.repeat, None)
        else:
            with _generated(1) as (events_path, _):
                result = run_bench_ws(events_path, args.repeat, None)
                result["events_file"] = "generated seed 1 (datagen defaults)"
        result["machine"] = machine()
        print(ws_table(result))
    path = _write(out_dir, args.what, result)
    print(f"figures written to {path}")
    # skipped (no NautilusTrader here) is not a failure; a peer that ran and broke is
    return 1 if result.get("status") == "failed" else 0
