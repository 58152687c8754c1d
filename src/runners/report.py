"""Backtest outputs: report.json, opportunities.jsonl, the equity/positions chart and the terminal summary.

Everything in report.json is a pure function of the inputs and the seed, so two runs give byte-identical
files. Wall-clock measurements (events per second, decision compute latency) go to timing.json and the
terminal, never into report.json.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from polysnipe.core.units import MICRO

__all__ = [
    "EquityPoint",
    "Label",
    "percentile",
    "read_labels",
    "score_labels",
    "slippage_bps",
    "write_chart",
    "write_json",
]


@attrs.frozen(slots=True)
class EquityPoint:
    ts_ms: int
    equity: int  # USDC micro: cash plus positions marked at mid
    exposure: int  # USDC micro: positions marked at mid
    positions: int  # number of tokens held


@attrs.frozen(slots=True)
class Label:
    kind: str
    token_id: str
    market: str
    start_ms: int
    end_ms: int
    edge: int
    note: str = ""


def slippage_bps(avg_price: int, arrival_price: int, buy: bool) -> float:
    """Signed slippage against the arrival price; positive means we paid more (BUY) or got less (SELL)."""
    if not arrival_price or not avg_price:
        return 0.0
    diff = avg_price - arrival_price if buy else arrival_price - avg_price
    return diff * 10_000 / arrival_price


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return float(sorted_values[k])


#: which strategy is expected to catch each planted kind; a label is caught by an opportunity of that
#: strategy on the label's token inside its window (plus a grace period for detection delay)
EXPECTED_STRATEGY = {
    "mispriced_book": "spread_hunter",
    "complement_arb": "spread_hunter",
    "liquidity_vacuum": "liquidity_vacuum",
    "news": "momentum",
}


def score_labels(
    labels: Sequence[Label],
    opportunities: Iterable[Mapping[str, Any]],
    *,
    event_of: Mapping[str, str],
    grace_ms: int = 2_000,
) -> dict[str, Any]:
    """Caught / missed per planted kind, and opportunities that match no planted inefficiency.

    `opportunities` rows need id, token_id, strategy, created_ms, filled_size and outcome; only
    opportunities that passed the evaluators count. A complement-arbitrage label names the neg-risk
    event (`market` = neg_risk_market_id): every leg bought in that event during the window matches it,
    found through `event_of` (token id -> neg_risk_market_id).
    """
    by_token: dict[str, list[Mapping[str, Any]]] = {}
    opps = [o for o in opportunities if not str(o.get("outcome", "")).startswith("rejected:evaluator")]
    for o in opps:
        by_token.setdefault(o["token_id"], []).append(o)
        event = event_of.get(o["token_id"])
        if event:
            by_token.setdefault(f"event:{event}", []).append(o)
    matched: set[str] = set()
    per_kind: dict[str, Counter[str]] = {}
    for lb in labels:
        if lb.kind not in EXPECTED_STRATEGY:
            per_kind.setdefault(lb.kind, Counter())["not_tradeable"] += 1
            continue
        key = f"event:{lb.market}" if lb.kind == "complement_arb" else lb.token_id
        hits = [
            o
            for o in by_token.get(key, [])
            if lb.start_ms - grace_ms <= o["created_ms"] <= lb.end_ms + grace_ms
        ]
        c = per_kind.setdefault(lb.kind, Counter())
        if hits:
            c["caught"] += 1
            if any(o["filled_size"] > 0 for o in hits):
                c["caught_and_filled"] += 1
            matched.update(o["id"] for o in hits)
        else:
            c["missed"] += 1
    false_pos = [o for o in opps if o["id"] not in matched]
    total_caught = sum(c["caught"] for c in per_kind.values())
    total_missed = sum(c["missed"] for c in per_kind.values())
    return {
        "labels": len(labels),
        "caught": total_caught,
        "missed": total_missed,
        "false_positives": len(false_pos),
        "false_positives_by_strategy": dict(sorted(Counter(o["strategy"] for o in false_pos).items())),
        "by_kind": {k: dict(sorted(v.items())) for k, v in sorted(per_kind.items())},
        "recall": round(total_caught / (total_caught + total_missed), 4)
        if total_caught + total_missed
        else 0.0,
        "precision": round(len(matched) / len(opps), 4) if opps else 0.0,
    }


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_chart(path: Path, points: Sequence[EquityPoint], *, title: str) -> None:
    """PNG of equity (marked PnL) and exposure over time."""
    # the object API, not pyplot: no global figure registry and no backend switch in the caller's
    # process; fixed margins, not constrained layout, which draws the whole figure twice (a third of
    # the chart's cost, and the chart is most of a backtest's report time)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    fig.subplots_adjust(left=0.08, right=0.985, top=0.945, bottom=0.085, hspace=0.08)
    if points:
        t0 = points[0].ts_ms
        xs = [(p.ts_ms - t0) / 1000 for p in points]
        start = points[0].equity
        ax1.plot(xs, [(p.equity - start) / MICRO for p in points], color="tab:blue", lw=1.2)
        ax2.fill_between(xs, [p.exposure / MICRO for p in points], step="post", color="tab:orange", alpha=0.5)
        ax2.plot(xs, [p.exposure / MICRO for p in points], drawstyle="steps-post", color="tab:orange", lw=1)
    ax1.set_ylabel("PnL marked at mid (USDC)")
    ax1.axhline(0, color="grey", lw=0.6)
    ax1.set_title(title)
    ax2.set_ylabel("Positions at mid (USDC)")
    ax2.set_xlabel("seconds since first event")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)


def read_labels(path: Path) -> list[Label]:
    """Planted inefficiencies (labels.jsonl of `polysnipe generate`) to score a run against."""
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
