"""The human summary a backtest prints on stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from polysnipe.adapters.text import printable

__all__ = ["print_summary"]


def _kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "-"


def print_summary(
    report: dict[str, Any], timing: dict[str, Any], out_dir: Path, *, title: str = "polysnipe backtest"
) -> None:
    """The run's figures as a table; speed only where the run measured it (a replay, not a paper run)."""
    console = Console(soft_wrap=True)
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column(overflow="fold")  # a long path or condition id wraps whole, never cut short
    refused = report.get("inputs", {}).get("markets_refused")
    if refused:
        cid, why = refused[0]
        more = f" and {len(refused) - 1} more" if len(refused) > 1 else ""
        shown = f"{printable(cid, 80)}: {printable(why, 200)}"
        t.add_row("markets refused", f"{len(refused)}: {shown}{more} (report.json inputs)")
    ev = report["events"]
    t.add_row("events", f"{ev['events']} ({_kv(ev['by_type'])}); malformed lines {ev['malformed_lines']}")
    opp = report["opportunities"]
    t.add_row("opportunities", f"{opp['total']} ({_kv(opp['by_strategy'])})")
    t.add_row("outcomes", _kv(opp["by_outcome"]))
    rd = report["risk_decisions"]
    t.add_row("risk decisions", f"{rd['total']} ({_kv(rd['by_outcome'])})")
    if rd["by_reason"]:
        t.add_row("risk reasons", _kv(rd["by_reason"]))
    t.add_row("orders", f"{report['orders']['total']} ({_kv(report['orders']['by_routing'])})")
    f = report["fills"]
    t.add_row(
        "fills",
        f"{f['count']} ({_kv(f['by_routing'])}); {f['shares']} shares, "
        f"{f['notional_usdc']} USDC, fees {f['fees_usdc']} USDC",
    )
    t.add_row("hit rate", f"{report['hit_rate']:.2%}")
    t.add_row("avg slippage", f"{report['avg_slippage_bps']} bps")
    pnl = report["pnl"]
    t.add_row("PnL", f"realized {pnl['realized_usdc']} USDC, marked {pnl['marked_usdc']} USDC")
    ex = report["exits"]
    t.add_row(
        "settlements",
        f"merges {ex['merges']}, redemptions {ex['redemptions']}, neg-risk conversions {ex['conversions']}",
    )
    latency = report.get("assumptions", {}).get("latency")
    if latency:
        t.add_row("assumed latency", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in latency.items()))
    if "labels" in report:
        lb = report["labels"]
        t.add_row(
            "vs labels",
            f"caught {lb['caught']}, missed {lb['missed']}, false positives "
            f"{lb['false_positives']} (recall {lb['recall']:.0%})",
        )
    dc = timing.get("decision_compute_us")
    if dc is not None:
        p99 = dc["p99"] if isinstance(dc["p99"], str) else f"{dc['p99']} us"
        t.add_row("speed", f"{timing['events_per_s']:,} events/s; decision p50 {dc['p50']} us, p99 {p99}")
    elif "duration_s" in timing:
        t.add_row("ran", f"{timing['duration_s']} s, {timing['events']} events")
    written = sorted(p.name for p in out_dir.iterdir()) if out_dir.is_dir() else []
    t.add_row("outputs", f"{out_dir}/: {', '.join(written)}")
    console.print(t)
