"""End to end on the bundled sample: the main job `make demo` runs, checked like a user would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit import SAMPLE, market_files
from polysnipe.runners.cli import main

#: every metadata file of the sample: CLOB markets and Gamma's fee schedules and events
_MARKETS = [arg for path in market_files(SAMPLE) for arg in ("--markets", str(path))]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    argv = ["backtest", *_MARKETS, "--events", str(SAMPLE / "events.jsonl"),
            "--labels", str(SAMPLE / "labels.jsonl"), "--out", str(out), "--no-progress",
            "--no-cache"]  # fmt: skip
    assert 0 == main(argv)
    return out


def test_outputs_are_written(run: Path) -> None:
    for name in ("report.json", "timing.json", "opportunities.jsonl", "equity.png", "run.log"):
        assert (run / name).stat().st_size > 0, name
    assert (run / "equity.png").read_bytes().startswith(b"\x89PNG")


def test_all_signals_and_routing_policies_trade_without_risk_breach(run: Path) -> None:
    report = json.loads((run / "report.json").read_text())
    assert {"spread_hunter", "momentum", "liquidity_vacuum"} <= set(report["opportunities"]["by_strategy"])
    assert {"aggressive", "passive", "iceberg"} <= set(report["fills"]["by_routing"])
    assert 0 == report["risk_audit"]["breaches"]
    assert report["risk_audit"]["checks"] > 0
    assert report["events"]["malformed_lines"] > 0  # the sample plants a few; they are counted, not fatal
    assert all(isinstance(line, int) for line, _ in report["events"]["malformed_samples"])
    assert "labels" in report and report["labels"]["caught"] > 0


def test_every_opportunity_has_exactly_one_outcome(run: Path) -> None:
    report = json.loads((run / "report.json").read_text())
    rows = [json.loads(line) for line in (run / "opportunities.jsonl").read_text().splitlines()]
    assert report["opportunities"]["total"] == len(rows) == len({r["id"] for r in rows})
    assert sum(report["opportunities"]["by_outcome"].values()) == len(rows)
    assert all(r["outcome"] != "open" for r in rows)


def test_log_lines_carry_the_correlation_id_from_signal_to_fill(run: Path) -> None:
    lines = [json.loads(line) for line in (run / "run.log").read_text().splitlines()]
    filled = next(line for line in lines if line["event"] == "order_filled")
    cid = filled["correlation_id"]
    events = [line["event"] for line in lines if line.get("correlation_id") == cid]
    assert {"opportunity", "risk_decision", "order_placed", "order_filled", "outcome"} <= set(events)


def test_same_inputs_give_a_byte_identical_report(run: Path, tmp_path: Path) -> None:
    argv = ["backtest", *_MARKETS, "--events", str(SAMPLE / "events.jsonl"),
            "--labels", str(SAMPLE / "labels.jsonl"), "--out", str(tmp_path), "--no-progress",
            "--no-cache"]  # fmt: skip
    assert 0 == main(argv)
    assert (run / "report.json").read_bytes() == (tmp_path / "report.json").read_bytes()
    assert (run / "opportunities.jsonl").read_bytes() == (tmp_path / "opportunities.jsonl").read_bytes()


def test_external_signals_may_live_beside_the_events_file(run: Path, tmp_path: Path) -> None:
    lines = (SAMPLE / "events.jsonl").read_text().splitlines(keepends=True)
    signals = [line for line in lines if '"external_signal"' in line]
    assert signals
    (tmp_path / "events.jsonl").write_text("".join(line for line in lines if line not in signals))
    (tmp_path / "signals.jsonl").write_text("".join(signals))
    out = tmp_path / "out"
    argv = ["backtest", *_MARKETS, "--events", str(tmp_path / "events.jsonl"),
            "--signals", str(tmp_path / "signals.jsonl"), "--out", str(out), "--no-progress"]  # fmt: skip
    assert 0 == main(argv)
    split = json.loads((out / "report.json").read_text())
    together = json.loads((run / "report.json").read_text())
    assert together["opportunities"] == split["opportunities"]
    assert together["fills"] == split["fills"]


def test_config_show_written_to_a_file_reproduces_the_default_run(run: Path, tmp_path: Path) -> None:
    from polysnipe.runners.config import render_config, resolve_config

    settings = tmp_path / "settings.toml"
    settings.write_text(render_config(resolve_config()))  # what `polysnipe config show` prints
    argv = ["backtest", *_MARKETS, "--events", str(SAMPLE / "events.jsonl"),
            "--labels", str(SAMPLE / "labels.jsonl"), "--out", str(tmp_path / "out"), "--no-progress",
            "--config", str(settings), "--no-cache"]  # fmt: skip
    assert 0 == main(argv)
    assert (run / "report.json").read_bytes() == (tmp_path / "out" / "report.json").read_bytes()


def test_settings_file_and_seed_reach_the_engine(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text('[signals.momentum]\nenabled = false\n[risk]\nmax_order_notional_usdc = "5"\n')
    argv = ["backtest", *_MARKETS, "--events", str(SAMPLE / "events.jsonl"),
            "--out", str(tmp_path / "out"), "--no-progress", "--config", str(settings),
            "--seed", "11", "--no-cache"]  # fmt: skip
    assert 0 == main(argv)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert 11 == report["inputs"]["seed"]
    assert "momentum" not in report["opportunities"]["by_strategy"]
    assert report["opportunities"]["total"] > 0
    assert report["risk_decisions"]["by_outcome"].get("resize", 0) > 0


def test_latency_sweep_writes_one_row_per_latency(tmp_path: Path) -> None:
    argv = ["backtest", *_MARKETS, "--events", str(SAMPLE / "events.jsonl"), "--out", str(tmp_path / "out"),
            "--no-progress", "--latency-sweep", "5,1000", "--no-cache"]  # fmt: skip
    assert 0 == main(argv)
    rows = json.loads((tmp_path / "out" / "latency_sweep.json").read_text())
    assert [5, 1000] == [r["latency_ms"] for r in rows]
    assert (tmp_path / "out" / "latency" / "1000ms" / "report.json").exists()
    header = (tmp_path / "out" / "latency_sweep.csv").read_text().splitlines()[0]
    assert header.startswith("latency_ms,")
    # a second away from the venue is not free: fewer fills than 5 ms
    assert rows[1]["fills"] < rows[0]["fills"]
    report = json.loads((tmp_path / "out" / "latency" / "1000ms" / "report.json").read_text())
    assert {"market_data": "1000 ms + 0..4 ms", "order": "1000 ms + 0..4 ms", "ack": "1000 ms + 0..4 ms"} == (
        report["assumptions"]["latency"]
    )
