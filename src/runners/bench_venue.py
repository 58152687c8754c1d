"""`polysnipe bench venue`: the simulated venue's per-event path with orders resting, compiled vs Python.

A whole stream (snapshots, price changes, prints) replays into fresh SimVenues of one kind: the
compiled one (C books, the compiled sink that a backtest uses) and the interpreted one (Python books
and per-delta loop, `POLYSNIPE_PURE_PYTHON`'s path, the reference). After a token's first snapshot
each places the same GTC orders, one bid and one ask at each of the `depth` levels behind the touch,
so most of the stream's deltas and prints meet resting orders: their queues move, and what later
fills them goes to the matching on both kinds. CPU time of this thread, median of `repeat` runs, the
kinds taking turns; both must end with the same open orders, balances and fills.

Arrivals, in a run of their own: after every `take_every`th price change, a FAK order on the token of
its first delta, BUY and SELL in turn, reaching `depth` ticks through the venue's touch, is placed and
answered at once (the matching of an arriving order: the walk, the claims, the fills and their
reports). CPU time of those calls alone, per order placed; both kinds must give the same reports.
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
from polysnipe.core.market import Market, MarketRegistry
from polysnipe.core.messages import OrderFilled, OrderRequest, OrderType
from polysnipe.core.units import ONE

__all__ = ["format_venue", "run_bench_venue"]


def _events(path: Path) -> list[MarketEvent]:
    """The stream's book events in time order, as a backtest replays them (malformed lines skipped)."""
    events, _ = load_events(path)
    return [e for e in events if isinstance(e, BookSnapshot | PriceChange | LastTrade)]


def _request(
    market: Market, token_id: str, order_id: str, wallet: str, side: Side, price: int, order_type: OrderType
) -> OrderRequest:
    """A bench order of twice the market's minimum size, and at least 10 shares."""
    return OrderRequest(
        order_id=order_id, opportunity_id="bench", correlation_id="bench", strategy="bench", routing="bench",
        wallet=wallet, market=market.condition_id, token_id=token_id, side=side, price=price,
        size=2 * max(market.min_order_size, 5_000_000), order_type=order_type, tick_size=market.tick_size,
        neg_risk=market.neg_risk,
    )  # fmt: skip


def _orders(snap: BookSnapshot, registry: MarketRegistry, depth: int) -> list[OrderRequest]:
    """One bid and one ask at each of the `depth` levels behind the touch of `snap`: resting, not crossing."""
    market = registry.get_by_token(snap.token_id)
    if market is None:
        return []
    out = []
    for side, levels in ((Side.BUY, sorted(snap.bids, reverse=True)), (Side.SELL, sorted(snap.asks))):
        for level in levels[1 : depth + 1]:
            order_id = f"{snap.token_id}-{side.name}-{level.price}"
            out.append(_request(market, snap.token_id, order_id, "bench", side, level.price, OrderType.GTC))
    return out


def _replay(
    events: Sequence[MarketEvent], registry: MarketRegistry, depth: int, take_every: int = 0
) -> tuple[float, Any]:
    """(CPU seconds, answers) of the stream; with `take_every`, of the takers among it only (module doc)."""
    venue = SimVenue(
        registry, ConstantLatency(0, 0), PowerProbQueueModel(), PolymarketFeeModel(), random.Random(0)
    )
    sink = venue.on_market_event
    seen: set[str] = set()
    fills = placed = changes = takers = 0
    taking_s = 0.0
    taker_reports: list[Any] = []
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
        elif take_every and type(e) is PriceChange:
            changes += 1
            due = changes % take_every == 0
            taker = _taker(venue, registry, e.changes[0].token_id, changes, depth) if due else None
            if taker is not None:
                takers += 1
                t0 = time.process_time()
                venue.submit(taker, ts)
                reports = venue.poll(ts)
                taking_s += time.process_time() - t0
                taker_reports += reports
                fills += sum(1 for r in reports if type(r) is OrderFilled and r.order_id != taker.order_id)
    cpu = taking_s if take_every else time.process_time() - t
    ledger = venue.ledger
    answer = (
        [(o.order.order_id, o.filled, o.remaining, o.queue_ahead) for o in venue.open_orders()],
        ledger.positions("bench"),
        ledger.usdc("bench"),
        fills,
        placed,
        taker_reports,
        takers,
    )
    return cpu, answer


def _taker(
    venue: SimVenue, registry: MarketRegistry, token_id: str, n: int, depth: int
) -> OrderRequest | None:
    """The `n`th taker: a FAK on `token_id` reaching `depth` ticks through its touch, BUY and SELL in turn."""
    book, market = venue.book(token_id), registry.get_by_token(token_id)
    side = Side.BUY if n % 2 else Side.SELL
    touch = None if book is None or not book.trusted else book.best_ask() if n % 2 else book.best_bid()
    if market is None or touch is None:
        return None
    tick = market.tick_size
    limit = touch + depth * tick if side is Side.BUY else touch - depth * tick
    return _request(
        market, token_id, f"take-{n}", "taker", side, min(max(limit, tick), ONE - tick), OrderType.FAK
    )


def run_bench_venue(
    events_path: Path, markets: Sequence[Path], repeat: int, depth: int = 3, take_every: int = 10
) -> dict[str, Any]:
    events = _events(events_path)
    registry = load_market_files(list(markets)).registry()
    deltas = sum(len(e.changes) for e in events if type(e) is PriceChange)
    compiled = book_implementation() == "compiled"
    kinds = ["compiled", "python"] if compiled else ["python"]

    def one(kind: str, taking: int = 0) -> tuple[float, Any]:
        use_pure_python(kind == "python")
        try:
            return _replay(events, registry, depth, taking)
        finally:
            use_pure_python(not compiled)

    answers = {kind: one(kind)[1] for kind in kinds}  # warm-up, and the answers to compare
    taken = {kind: one(kind, take_every)[1] for kind in kinds} if take_every else {}
    arrivals = taken["python"][6] if taken else 0
    gc.collect()
    # the kinds take turns, run by run, so that a change in the machine's load falls on both alike
    runs: dict[str, list[float]] = {kind: [] for kind in kinds}
    arrival_runs: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(repeat):
        for kind in kinds:
            runs[kind].append(one(kind)[0])
            if arrivals:
                arrival_runs[kind].append(one(kind, take_every)[0])
    rows = {}
    for kind, cpus in runs.items():
        cpu_s = statistics.median(cpus)
        rows[kind] = {"cpu_s": cpu_s, "events_per_s": len(events) / cpu_s, "deltas_per_s": deltas / cpu_s}
        if arrivals:
            arrival_s = statistics.median(arrival_runs[kind])
            rows[kind]["arrival_us"] = arrival_s / arrivals * 1e6
    open_orders, _, _, fills, placed, _, _ = answers["python"]
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
        "take_every": take_every,
        "arrivals": arrivals,
        "arrival_reports": len(taken["python"][5]) if taken else 0,
        "same_arrival_reports": len({repr(a) for a in taken.values()}) <= 1,
    }
    if compiled:
        result["python_over_compiled"] = rows["python"]["cpu_s"] / rows["compiled"]["cpu_s"]
        if "arrival_us" in rows["compiled"]:
            result["arrivals_python_over_compiled"] = (
                rows["python"]["arrival_us"] / rows["compiled"]["arrival_us"]
            )
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
    if result["arrivals"]:
        lines.append(
            f"arrivals: {result['arrivals']:,} FAK orders through the touch, one every"
            f" {result['take_every']} price changes, {result['arrival_reports']:,} reports (a separate run)"
        )
        for name, row in result["venues"].items():
            lines.append(f"  {name:<9} {row['arrival_us']:>10.1f} us per order")
        if "arrivals_python_over_compiled" in result:
            lines.append(f"  compiled is {result['arrivals_python_over_compiled']:.2f}x the Python venue")
        lines.append("  same reports: " + ("yes" if result["same_arrival_reports"] else "NO"))
    return "\n".join(lines)
