"""`polysnipe bench venue`: the simulated venue's per-event path with orders resting, compiled vs Python.

A whole stream (snapshots, price changes, prints) replays into fresh SimVenues of one kind: the
compiled one (C books, the compiled sink that a backtest uses) and the interpreted one (Python books
and per-delta loop, `POLYSNIPE_PURE_PYTHON`'s path, the reference). After a token's first snapshot
each places the same GTC orders, one bid and one ask at each of the `depth` levels behind the touch,
so most of the stream's deltas and prints meet resting orders: their queues move, and what later
fills them goes to the Python matching on both kinds. CPU time of this thread, median of `repeat`
runs, the kinds taking turns; both must end with the same open orders, balances and fills.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from polysnipe.adapters.files import load_events
from polysnipe.adapters.metadata import load_market_files
from polysnipe.adapters.sim import ConstantLatency, PolymarketFeeModel, PowerProbQueueModel, SimVenue
from polysnipe.core.book import book_implementation, use_pure_python
from polysnipe.core.events import BookSnapshot, LastTrade, MarketEvent, PriceChange, Side
from polysnipe.core.market import MarketRegistry
from polysnipe.core.messages import OrderFilled, OrderRequest, OrderType

__all__ = ["format_venue", "run_bench_venue"]


def _events(path: Path) -> list[MarketEvent]:
    """The stream's book events in time order, as a backtest replays them (malformed lines skipped)."""
    events, _ = load_events(path)
    return [e for e in events if isinstance(e, BookSnapshot | PriceChange | LastTrade)]


def _orders(snap: BookSnapshot, registry: MarketRegistry, depth: int) -> list[OrderRequest]:
    """One bid and one ask at each of the `depth` levels behind the touch of `snap`: resting, not crossing."""
    market = registry.get_by_token(snap.token_id)
    if market is None:
        return []
    size = 2 * max(market.min_order_size, 5_000_000)  # twice the minimum, and at least 10 shares
    out = []
    for side, levels in ((Side.BUY, sorted(snap.bids, reverse=True)), (Side.SELL, sorted(snap.asks))):
        for level in levels[1 : depth + 1]:
            out.append(
                OrderRequest(
                    order_id=f"{snap.token_id}-{side.name}-{level.price}",
                    opportunity_id="bench",
                    correlation_id="bench",
                    strategy="bench",
                    routing="bench",
                    wallet="bench",
                    market=market.condition_id,
                    token_id=snap.token_id,
                    side=side,
                    price=level.price,
                    size=size,
                    order_type=OrderType.GTC,
                    tick_size=market.tick_size,
                    neg_risk=market.neg_risk,
                )
            )
    return out


def _replay(events: Sequence[MarketEvent], registry: MarketRegistry, depth: int) -> tuple[float, Any]:
    venue = SimVenue(
        registry, ConstantLatency(0, 0), PowerProbQueueModel(), PolymarketFeeModel(), random.Random(0)
    )
    sink = venue.on_market_event
    seen: set[str] = set()
    fills = placed = 0
    t = time.process_time()
    for e in events:
        ts = e.ts_ms
        if ts >= venue.wake_ms:
            fills += sum(1 for r in venue.poll(ts) if type(r) is OrderFilled)
        sink(e)
        if type(e) is BookSnapshot and e.token_id not in seen:
            seen.add(e.token_id)
            for req in _orders(e, registry, depth):
                venue.submit(req, ts)
                placed += 1
    cpu = time.process_time() - t
    ledger = venue.ledger
    answer = (
        [(o.order.order_id, o.filled, o.remaining, o.queue_ahead) for o in venue.open_orders()],
        ledger.positions("bench"),
        ledger.usdc("bench"),
        fills,
        placed,
    )
    return cpu, answer


def run_bench_venue(
    events_path: Path, markets: Sequence[Path], repeat: int, depth: int = 3
) -> dict[str, Any]:
    events = _events(events_path)
    registry = load_market_files(list(markets)).registry()
    deltas = sum(len(e.changes) for e in events if type(e) is PriceChange)
    compiled = book_implementation() == "compiled"
    kinds = ["compiled", "python"] if compiled else ["python"]

    def one(kind: str) -> tuple[float, Any]:
        use_pure_python(kind == "python")
        try:
            return _replay(events, registry, depth)
        finally:
            use_pure_python(not compiled)

    answers = {kind: one(kind)[1] for kind in kinds}  # warm-up, and the answers to compare
    gc.collect()
    # the kinds take turns, run by run, so that a change in the machine's load falls on both alike
    runs: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(repeat):
        for kind in kinds:
            runs[kind].append(one(kind)[0])
    rows = {}
    for kind, cpus in runs.items():
        cpu_s = statistics.median(cpus)
        rows[kind] = {"cpu_s": cpu_s, "events_per_s": len(events) / cpu_s, "deltas_per_s": deltas / cpu_s}
    open_orders, _, _, fills, placed = answers["python"]
    result: dict[str, Any] = {
        "events_file": str(events_path),
        "measures": "SimVenue.on_market_event per replayed event, GTC orders resting behind every touch",
        "events": len(events),
        "deltas": deltas,
        "orders_placed": placed,
        "fills": fills,
        "open_at_end": len(open_orders),
        "repeat": repeat,
        "venues": rows,
        "same_answers": len({repr(a) for a in answers.values()}) == 1,
    }
    if compiled:
        result["python_over_compiled"] = rows["python"]["cpu_s"] / rows["compiled"]["cpu_s"]
    return result


def format_venue(result: dict[str, Any]) -> str:
    lines = [
        f"venue: {result['events']:,} events ({result['deltas']:,} deltas), {result['orders_placed']} orders"
        f" resting behind the touch, {result['fills']} fills; median of {result['repeat']} (CPU time)",
    ]
    for name, row in result["venues"].items():
        lines.append(
            f"  {name:<9} {row['events_per_s']:>13,.0f} events/s {row['deltas_per_s']:>13,.0f} deltas/s"
        )
    if "python_over_compiled" in result:
        lines.append(f"  compiled is {result['python_over_compiled']:.2f}x the Python venue")
    else:
        lines.append("  compiled venue not built: Python only")
    lines.append("  same open orders, balances and fills: " + ("yes" if result["same_answers"] else "NO"))
    return "\n".join(lines)
