"""What every run produces, backtest, paper or live alike: report.json, opportunities.jsonl, the chart.

Everything here is read from the engine's state and the journal's typed records after the loop ran, so
the three modes report the same way. report.json is a pure function of the inputs and the seed (two
backtests give byte-identical files); wall-clock figures go to timing.json.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.core.events import Side
from polysnipe.core.messages import (
    PlaceOrder,
    RaiseAlert,
    RecordFill,
    RecordOpportunity,
    RecordOutcome,
    RecordRiskDecision,
)
from polysnipe.core.state import EngineState
from polysnipe.core.units import MICRO, format_micro
from polysnipe.runners.loop import EngineLoop
from polysnipe.runners.report import Label, score_labels, slippage_bps, write_chart, write_json

__all__ = ["InputStats", "build_report", "opportunity_rows", "write_outputs"]


@attrs.frozen(slots=True)
class InputStats:
    """What reading the inputs saw (a recording's lines; a live feed's frames)."""

    lines: int = 0
    malformed: int = 0
    #: a few (position, reason) pairs of malformed input for the report; all are in malformed.jsonl
    malformed_samples: tuple[tuple[int, str], ...] = ()


def _risk_outcome(rd: RecordRiskDecision | None) -> str:
    if rd is None:
        return "not_checked"
    if not rd.approved:
        return "reject"
    if rd.approved_size < rd.requested_size:
        return "resize"
    return "approve"


def opportunity_rows(state: EngineState, journal: MemoryJournal) -> list[dict[str, Any]]:
    """One row per opportunity the engine tracked, with its risk decision and outcome."""
    outcomes = {r.opportunity_id: r for r in journal.of(RecordOutcome)}
    risk: dict[str, RecordRiskDecision] = {}
    for r in journal.of(RecordRiskDecision):
        risk.setdefault(r.opportunity_id, r)
    arrival = {r.opp.id: r.arrival_price for r in journal.of(RecordOpportunity)}
    rows = []
    for opp_id, track in state.tracks.items():
        opp = track.opp
        out = outcomes.get(opp_id)
        rd = risk.get(opp_id)
        kind = out.kind.value if out else "open"
        reasons = list(out.reasons) if out else []
        avg = out.avg_price if out else 0
        filled = out.filled_size if out else 0
        evaluator_refused = kind == "rejected" and reasons and reasons[0].startswith("evaluator:")
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
                "risk_outcome": _risk_outcome(rd),
                "risk_reasons": list(rd.reasons) if rd else [],
                "outcome": f"rejected:{reasons[0]}" if evaluator_refused else kind,
                "reasons": reasons,
                "order_ids": list(out.order_ids) if out else list(track.order_ids),
                "filled_size": filled,
                "avg_price": format_micro(avg) if filled else None,
                "slippage_bps": round(slippage_bps(avg, arrival.get(opp_id, 0), opp.side is Side.BUY), 2)
                if filled
                else None,
            }
        )
    return rows


def build_report(
    loop: EngineLoop,
    journal: MemoryJournal,
    *,
    inputs: dict[str, Any],
    stats: InputStats,
    starting_equity: int,
    labels: Sequence[Label] | None = None,
    assumptions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report of one run. `assumptions` states what the run assumed rather than observed
    (a backtest's latencies and queue model), so a reader can judge the figures."""
    state = loop.state
    rows = opportunity_rows(state, journal)
    risk_rows = journal.of(RecordRiskDecision)
    risk_by_outcome = Counter(_risk_outcome(r) for r in risk_rows)
    risk_by_reason: Counter[str] = Counter()
    for r in risk_rows:
        risk_by_reason.update(r.reasons)
    orders = [p.order for p in journal.of(PlaceOrder)]
    fills = journal.of(RecordFill)
    # an outcome revised by a late fill counts once, as its last revision
    final = {r.opportunity_id: r for r in journal.of(RecordOutcome)}
    outcomes = Counter(r.kind.value for r in final.values())
    placed = [r for r in rows if r["order_ids"]]
    hit = [r for r in placed if r["filled_size"] > 0]
    slips = [r["slippage_bps"] for r in hit if r["slippage_bps"] is not None]
    fees = sum(f.fill.fee_usdc + f.fill.fee_shares * f.fill.price // MICRO for f in fills)
    portfolio = state.portfolio
    positions = {}
    for wallet in portfolio.wallets.values():
        for token, shares in sorted(wallet.positions.items()):
            if shares:
                mark = portfolio.mark(token)
                positions[token] = {"shares": format_micro(shares), "mark": format_micro(mark or 0)}
    final_equity = portfolio.equity().total_usdc_micro
    counts = loop.counts
    report: dict[str, Any] = {
        "inputs": inputs,
        "assumptions": assumptions or {},
        "markets": len(state.markets),
        "events": {
            "lines": stats.lines,
            "events": sum(counts.values()),
            "by_type": dict(sorted(counts.items())),
            "malformed_lines": stats.malformed,
            "malformed_samples": [[line, reason] for line, reason in stats.malformed_samples],
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
            "by_routing": dict(sorted(Counter(o.routing for o in orders).items())),
            "by_type": dict(sorted(Counter(o.order_type.value for o in orders).items())),
            "rejected_by_venue": state.counters.get("orders_rejected", 0),
        },
        "fills": {
            "count": len(fills),
            "by_routing": dict(sorted(Counter(f.routing for f in fills).items())),
            "by_liquidity": dict(sorted(Counter(f.fill.liquidity.value for f in fills).items())),
            "shares": format_micro(sum(f.fill.size for f in fills)),
            "notional_usdc": format_micro(sum(f.fill.price * f.fill.size // MICRO for f in fills)),
            "fees_usdc": format_micro(fees),
            "maker_rebates_usdc": format_micro(sum(f.fill.rebate_usdc for f in fills)),
        },
        "hit_rate": round(len(hit) / len(placed), 4) if placed else 0.0,
        "avg_slippage_bps": round(sum(slips) / len(slips), 2) if slips else 0.0,
        "pnl": {
            "realized_usdc": format_micro(portfolio.realized_total_usdc_micro),
            "realized_by_strategy_usdc": {
                k or "opening holdings": format_micro(v)
                for k, v in sorted(portfolio.realized_by_strategy.items())
            },
            # USDC traded over the capital it was traded with: how hard the wallets' money worked
            "capital_turnover": round(portfolio.traded_usdc_micro / starting_equity, 4)
            if starting_equity
            else 0.0,
            "marked_usdc": format_micro(final_equity - starting_equity),
            "starting_equity_usdc": format_micro(starting_equity),
            "final_equity_usdc": format_micro(final_equity),
            "positions": positions,
        },
        "exits": {
            "by_reason": dict(sorted(state.exits.exits.items())),
            "merges": state.counters.get("merges", 0),
            "redemptions": state.counters.get("redemptions", 0),
            "conversions": state.counters.get("conversions", 0),
            "markets_resolved": state.counters.get("markets_resolved", 0),
        },
        "alerts": dict(sorted(Counter(a.code for a in journal.of(RaiseAlert)).items())),
        "risk_audit": {"checks": loop.audits, "breaches": len(loop.breaches), "samples": loop.breaches[:10]},
    }
    if labels is not None:
        event_of = {
            t: m.neg_risk_market_id for m in state.markets if m.neg_risk_market_id for t in m.token_ids
        }
        report["labels"] = score_labels(labels, rows, event_of=event_of)
    return report


def write_outputs(
    out_dir: Path,
    report: dict[str, Any],
    timing: dict[str, Any],
    loop: EngineLoop,
    journal: MemoryJournal,
    *,
    title: str,
) -> None:
    write_json(out_dir / "report.json", report)
    write_json(out_dir / "timing.json", timing)
    with (out_dir / "opportunities.jsonl").open("w", encoding="utf-8") as fh:
        for row in opportunity_rows(loop.state, journal):
            out = dict(row)
            out["filled_size"] = format_micro(row["filled_size"])
            fh.write(json.dumps(out, sort_keys=True) + "\n")
    write_chart(out_dir / "equity.png", loop.equity, title=f"polysnipe {title}")
