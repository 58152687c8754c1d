"""The bundled sample's report.json and opportunities.jsonl are pinned: they change only on purpose.

When a change of behaviour moves them, regenerate with `make golden` and say why in the commit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kit import SAMPLE, market_files
from polysnipe.runners.cli import main

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("golden") / "out"
    markets = [arg for path in market_files(SAMPLE) for arg in ("--markets", str(path))]
    argv = ["backtest", *markets, "--events", str(SAMPLE / "events.jsonl"),
            "--labels", str(SAMPLE / "labels.jsonl"), "--out", str(out), "--no-progress",
            "--no-cache"]  # fmt: skip
    assert 0 == main(argv)
    return out


@pytest.mark.parametrize("name", ["report.json", "opportunities.jsonl"])
def test_the_sample_backtest_matches_its_golden_output(demo: Path, name: str) -> None:
    expected = (GOLDEN / name).read_text(encoding="utf-8")
    actual = (demo / name).read_text(encoding="utf-8")
    assert expected == actual, f"{name} changed: if on purpose, run `make golden` and say why in the commit"
