"""How results change with latency: the same backtest rerun at several latencies, one row each.

Each row sets the market-data delay and the order and ack delays to the same value (jitter kept as
configured), so the rows answer "what if we sat this far from the venue". The sweep's runs write their
full outputs under `latency/<ms>ms/` beside the main run's; the table goes to latency_sweep.json and
latency_sweep.csv.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from polysnipe.runners.backtest import run_backtest
from polysnipe.runners.config import EngineConfig

__all__ = ["format_sweep", "latency_sweep"]

_COLUMNS = ("latency_ms", "opportunities", "orders", "fills", "hit_rate", "fees_usdc", "realized_usdc",
            "marked_usdc")  # fmt: skip


def latency_sweep(
    latencies_ms: Sequence[int],
    *,
    markets_paths: Sequence[Path],
    events_path: Path,
    out_dir: Path,
    config: EngineConfig,
    labels_path: Path | None = None,
    signals_path: Path | None = None,
    use_cache: bool = True,
) -> list[dict[str, Any]]:
    rows = []
    for ms in latencies_ms:
        venue = attrs.evolve(config.venue, feed_latency_ms=ms, order_latency_ms=ms, ack_latency_ms=ms)
        result = run_backtest(
            markets_paths=markets_paths,
            events_path=events_path,
            labels_path=labels_path,
            signals_path=signals_path,
            out_dir=out_dir / "latency" / f"{ms}ms",
            config=attrs.evolve(config, venue=venue),
            use_cache=use_cache,
        )
        r = result.report
        rows.append(
            {
                "latency_ms": ms,
                "opportunities": r["opportunities"]["total"],
                "orders": r["orders"]["total"],
                "fills": r["fills"]["count"],
                "hit_rate": r["hit_rate"],
                "fees_usdc": r["fills"]["fees_usdc"],
                "realized_usdc": r["pnl"]["realized_usdc"],
                "marked_usdc": r["pnl"]["marked_usdc"],
            }
        )
    (out_dir / "latency_sweep.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    with (out_dir / "latency_sweep.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def format_sweep(rows: Sequence[dict[str, Any]]) -> str:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in _COLUMNS}
    lines = ["  ".join(c.rjust(widths[c]) for c in _COLUMNS)]
    lines += ["  ".join(str(r[c]).rjust(widths[c]) for c in _COLUMNS) for r in rows]
    return "\n".join(lines)
