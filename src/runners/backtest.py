"""The backtest runner: replay recorded (or generated) Polymarket data through the engine and the
simulated venue, with the in-process bus and journal. No servers.

The loop is the imperative shell around the pure `step`: it moves events from the bus into the step,
performs the commands it returns (orders to the simulated venue, rows to the journal, alerts), and
feeds the venue's execution reports back in, in time order.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import structlog

from polysnipe.adapters.files import ReadStats, load_events, read_markets
from polysnipe.adapters.sim.bus import InProcessBus
from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.adapters.sim.venue import SimVenue
from polysnipe.core.events import (
    BookSnapshot,
    Event,
    ExternalSignal,
    LastTrade,
    PriceChange,
    Side,
    TickSizeChange,
)
from polysnipe.core.market import Market
from polysnipe.core.messages import (
    PlaceOrder,
)
from polysnipe.core.pipeline import EngineState, finish, step
from polysnipe.core.units import MICRO, format_micro
from polysnipe.runners.config import EngineConfig
from polysnipe.runners.report import (
    EquityPoint,
    Label,
    percentile,
    score_labels,
    slippage_bps,
    write_chart,
    write_json,
)
from polysnipe.runners.shell import EngineShell

__all__ = ["BacktestResult", "build_report", "equity", "run_backtest", "write_outputs"]

log = structlog.get_logger("polysnipe.backtest")

MD_STREAM = "md.0"
DEAD_LETTER_STREAM = "md.dead"
_BATCH = 4096
_EVENT_TYPE_NAMES = {
    BookSnapshot: "book",
    PriceChange: "price_change",
    TickSizeChange: "tick_size_change",
    LastTrade: "last_trade_price",
    ExternalSignal: "external_signal",
}


@attrs.define
class BacktestResult:
    report: dict[str, Any]
    timing: dict[str, Any]
    out_dir: Path
    state: EngineState
    journal: MemoryJournal


def run_backtest(
    *,
    markets_path: Path,
    events_path: Path,
    out_dir: Path,
    config: EngineConfig,
    labels_path: Path | None = None,
    signals_path: Path | None = None,
    build: Callable[[EngineConfig, Sequence[Market]], tuple[EngineState, SimVenue]],
    progress: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Replay `events_path` against the simulated venue and write the report files into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    markets = read_markets(markets_path)
    events, stats = load_events(events_path)
    if signals_path is not None:
        # external signals kept beside the market data: merged in time order, market data first on a tie
        signals, signal_stats = load_events(signals_path)
        events = sorted(events + signals, key=lambda e: e.ts_ms)
        stats.lines += signal_stats.lines
        stats.events += signal_stats.events
        for line, reason in signal_stats.samples:
            stats.record_malformed(line, f"{signals_path.name}: {reason}")
        stats.malformed += signal_stats.malformed - len(signal_stats.samples)
    state, venue = build(config, markets)
    journal = MemoryJournal()
    dead_letters: InProcessBus[dict[str, Any]] = InProcessBus()
    for line, reason in stats.samples:
        # the errors table and the dead-letter stream keep what was dropped and why; the line itself
        # stays in the source file at that line number
        error = {"source": events_path.name, "line": line, "reason": reason}
        journal.append("errors", error)
        dead_letters.publish(DEAD_LETTER_STREAM, error)
    shell = EngineShell(state, venue, journal)
    bus: InProcessBus[Event] = InProcessBus()

    starting_equity = equity(state)[0]
    equity_points: list[EquityPoint] = []
    sample_every = config.outputs.equity_sample_ms
    next_sample = events[0].ts_ms if events else 0
    by_type = Counter(_EVENT_TYPE_NAMES[type(ev)] for ev in events)
    total = len(events)
    last_ms = 0
    on_market_event = venue.on_market_event
    poll = venue.poll
    # The loaded events live through the whole replay and cannot form reference cycles: frozen, the
    # collector stops rescanning them (on a fresh run that rescanning cost about 15%). A caller's own
    # frozen objects stay frozen.
    caller_froze = gc.get_freeze_count() > 0
    gc.collect()
    gc.freeze()
    perf = time.perf_counter_ns
    t_start = perf()
    try:
        for start in range(0, total, _BATCH):
            # ingest side: publish a batch onto the bus; engine side: consume it in order
            bus.publish_many(MD_STREAM, events[start : start + _BATCH])
            while (batch := bus.read_batch(MD_STREAM)) is not None:
                for ev in batch[1]:
                    now = ev.ts_ms
                    if now < last_ms:
                        now = last_ms  # a late message never moves the engine's clock backwards
                    last_ms = now
                    if type(ev) is not ExternalSignal:
                        on_market_event(ev)
                    # before `wake_ms` the venue has nothing to deliver: poll would return []
                    if now >= venue.wake_ms:
                        reports = poll(now)
                        if reports:
                            shell.now_ms = now
                            shell.deliver(reports)
                    t0 = perf()
                    commands = step(state, ev, now)
                    if commands:
                        t1 = perf()
                        if any(type(c) is PlaceOrder for c in commands):
                            shell.decision_ns.append(t1 - t0)
                        shell.now_ms = now
                        shell.perform(commands)
                    if now >= next_sample:
                        eq, exposure, held = equity(state)
                        equity_points.append(EquityPoint(now, eq, exposure, held))
                        next_sample = now + sample_every
            if progress is not None:
                progress(min(total, start + _BATCH), total)
    finally:
        if not caller_froze:
            gc.unfreeze()
    elapsed_ns = perf() - t_start

    # Drain: let in-flight orders arrive, then cancel what still rests, so every opportunity ends.
    horizon = last_ms + 60_000
    shell.now_ms = horizon
    shell.deliver(venue.poll(horizon))
    shell.perform(finish(state, horizon))
    shell.deliver(venue.poll(horizon + 60_000))
    eq, exposure, held = equity(state)
    equity_points.append(EquityPoint(horizon, eq, exposure, held))

    labels = _read_labels(labels_path) if labels_path else None
    inputs = {"markets": markets_path.name, "events": events_path.name, "seed": config.seed}
    report = build_report(
        state, journal, stats, by_type, inputs, starting_equity, eq, labels, shell.audits, shell.breaches
    )
    decisions = sorted(ns / 1000 for ns in shell.decision_ns)
    timing = {
        "events": total,
        "elapsed_s": round(elapsed_ns / 1e9, 4),
        "events_per_s": round(total / (elapsed_ns / 1e9)) if elapsed_ns else 0,
        "decision_compute_us": {
            "p50": round(percentile(decisions, 50), 2),
            "p99": round(percentile(decisions, 99), 2),
            "samples": len(decisions),
            "what": "wall-clock time of the pure step from a market event to the PlaceOrder commands",
        },
    }
    write_outputs(
        out_dir, report, timing, state, journal, equity_points, title=f"backtest: {events_path.name}"
    )
    return BacktestResult(report, timing, out_dir, state, journal)


def write_outputs(
    out_dir: Path,
    report: dict[str, Any],
    timing: dict[str, Any],
    state: EngineState,
    journal: MemoryJournal,
    equity_points: Sequence[EquityPoint],
    *,
    title: str,
) -> None:
    write_json(out_dir / "report.json", report)
    write_json(out_dir / "timing.json", timing)
    _write_opportunities(out_dir / "opportunities.jsonl", state, journal)
    write_chart(out_dir / "equity.png", equity_points, title=f"polysnipe {title}")


def equity(state: EngineState) -> tuple[int, int, int]:
    """(cash + positions at mid, positions at mid, tokens held), all from the risk state's wallets."""
    cash = 0
    exposure = 0
    held = 0
    for wallet in state.risk.wallets.values():
        cash += wallet.balance_usdc_micro
        for token, shares in wallet.positions.items():
            if not shares:
                continue
            held += 1
            exposure += shares * _mark(state, token) // MICRO
    return cash + exposure, exposure, held


def _mark(state: EngineState, token: str) -> int:
    book = state.books.get(token)
    mid = book.mid() if book is not None and book.trusted else None
    if mid is not None:
        return mid
    trade = state.last_trades.get(token)
    return trade.price if trade is not None else 0


def _read_labels(path: Path) -> list[Label]:
    import json

    from polysnipe.core.units import parse_micro

    labels = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        labels.append(
            Label(
                d["kind"],
                d["token_id"],
                d.get("market", ""),
                int(d["start_ms"]),
                int(d["end_ms"]),
                parse_micro(str(d.get("edge", "0"))),
                d.get("note", ""),
            )
        )
    return labels


def _opportunity_rows(state: EngineState, journal: MemoryJournal) -> list[dict[str, Any]]:
    outcomes = {r["opportunity_id"]: r for r in journal.rows("outcomes")}
    risk: dict[str, dict[str, Any]] = {}
    for r in journal.rows("risk_decisions"):
        risk.setdefault(r["opportunity_id"], r)
    arrival = {r["id"]: r["arrival_price"] for r in journal.rows("opportunities")}
    rows = []
    for opp_id, track in state.tracks.items():
        opp = track.opp
        out = outcomes.get(opp_id)
        rd = risk.get(opp_id)
        kind = out["kind"] if out else "open"
        reasons = list(out["reasons"]) if out else []
        avg = out["avg_price"] if out else 0
        filled = out["filled_size"] if out else 0
        if rd is None:
            risk_outcome = "not_checked"
        elif not rd["approved"]:
            risk_outcome = "reject"
        elif rd["approved_size"] < rd["requested_size"]:
            risk_outcome = "resize"
        else:
            risk_outcome = "approve"
        rows.append(
            {
                "id": opp_id,
                "correlation_id": opp.correlation_id,
                "event_ms": opp.created_ms,
                "created_ms": opp.created_ms,
                "token_id": opp.token_id,
                "market": opp.market,
                "side": opp.side.name,
                "strategy": opp.strategy,
                "policy": track.policy,
                "size": format_micro(opp.size),
                "limit_price": format_micro(opp.limit_price),
                "edge": format_micro(opp.edge),
                "confidence": round(opp.confidence, 4),
                "risk_outcome": risk_outcome,
                "risk_reasons": list(rd["reasons"]) if rd else [],
                "outcome": kind
                if kind != "rejected" or not reasons or not reasons[0].startswith("evaluator:")
                else f"rejected:{reasons[0]}",
                "reasons": reasons,
                "order_ids": list(out["order_ids"]) if out else list(track.order_ids),
                "filled_size": filled,
                "avg_price": format_micro(avg) if filled else None,
                "slippage_bps": round(slippage_bps(avg, arrival.get(opp_id, 0), opp.side is Side.BUY), 2)
                if filled
                else None,
            }
        )
    return rows


def _write_opportunities(path: Path, state: EngineState, journal: MemoryJournal) -> None:
    import json

    with path.open("w", encoding="utf-8") as fh:
        for row in _opportunity_rows(state, journal):
            out = dict(row)
            out["filled_size"] = format_micro(row["filled_size"])
            fh.write(json.dumps(out, sort_keys=True) + "\n")


def build_report(
    state: EngineState,
    journal: MemoryJournal,
    stats: ReadStats,
    by_type: Counter[str],
    inputs: dict[str, Any],
    starting_equity: int,
    final_equity: int,
    labels: list[Label] | None,
    audits: int,
    breaches: list[str],
) -> dict[str, Any]:
    rows = _opportunity_rows(state, journal)
    risk_rows = journal.rows("risk_decisions")
    risk_by_outcome: Counter[str] = Counter()
    risk_by_reason: Counter[str] = Counter()
    for r in risk_rows:
        if not r["approved"]:
            risk_by_outcome["reject"] += 1
        elif r["approved_size"] < r["requested_size"]:
            risk_by_outcome["resize"] += 1
        else:
            risk_by_outcome["approve"] += 1
        risk_by_reason.update(r["reasons"])
    orders = journal.rows("orders")
    fills = journal.rows("fills")
    outcomes = Counter(r["kind"] for r in journal.rows("outcomes"))
    placed = [r for r in rows if r["order_ids"]]
    hit = [r for r in placed if r["filled_size"] > 0]
    slips = [r["slippage_bps"] for r in hit if r["slippage_bps"] is not None]
    fees = sum(f["fee_usdc"] for f in fills) + sum(f["fee_shares"] * f["price"] // MICRO for f in fills)
    positions = {}
    for wallet in state.risk.wallets.values():
        for token, shares in sorted(wallet.positions.items()):
            if shares:
                positions[token] = {"shares": format_micro(shares), "mark": format_micro(_mark(state, token))}
    report: dict[str, Any] = {
        "inputs": inputs,
        "markets": len(state.markets),
        "events": {
            "lines": stats.lines,
            "events": sum(by_type.values()),
            "by_type": dict(sorted(by_type.items())),
            "malformed_lines": stats.malformed,
            "malformed_samples": [[line, reason] for line, reason in stats.samples],
            "deltas_before_snapshot": state.counters.get("deltas_before_snapshot", 0),
            "unknown_token_events": state.counters.get("events_unknown_token", 0),
        },
        "opportunities": {
            "total": len(rows),
            "duplicates_dropped": state.counters.get("opportunities_duplicate", 0),
            "by_strategy": dict(sorted(Counter(r["strategy"] for r in rows).items())),
            "by_outcome": dict(sorted(outcomes.items())),
        },
        "risk_decisions": {
            "total": len(risk_rows),
            "by_outcome": dict(sorted(risk_by_outcome.items())),
            "by_reason": dict(sorted(risk_by_reason.items())),
        },
        "orders": {
            "total": len(orders),
            "by_routing": dict(sorted(Counter(o["routing"] for o in orders).items())),
            "by_type": dict(sorted(Counter(o["order_type"] for o in orders).items())),
            "rejected_by_venue": state.counters.get("orders_rejected", 0),
        },
        "fills": {
            "count": len(fills),
            "by_routing": dict(sorted(Counter(f["routing"] for f in fills).items())),
            "by_liquidity": dict(sorted(Counter(f["liquidity"] for f in fills).items())),
            "shares": format_micro(sum(f["size"] for f in fills)),
            "notional_usdc": format_micro(sum(f["price"] * f["size"] // MICRO for f in fills)),
            "fees_usdc": format_micro(fees),
        },
        "hit_rate": round(len(hit) / len(placed), 4) if placed else 0.0,
        "avg_slippage_bps": round(sum(slips) / len(slips), 2) if slips else 0.0,
        "pnl": {
            "realized_usdc": format_micro(state.risk.realized_pnl_usdc_micro),
            "marked_usdc": format_micro(final_equity - starting_equity),
            "starting_equity_usdc": format_micro(starting_equity),
            "final_equity_usdc": format_micro(final_equity),
            "positions": positions,
        },
        "alerts": dict(sorted(Counter(a["code"] for a in journal.rows("alerts")).items())),
        "risk_audit": {"checks": audits, "breaches": len(breaches), "samples": breaches[:10]},
    }
    if labels is not None:
        event_of = {
            t: m.neg_risk_market_id for m in state.markets if m.neg_risk_market_id for t in m.token_ids
        }
        report["labels"] = score_labels(labels, rows, event_of=event_of)
    return report
