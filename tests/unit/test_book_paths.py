"""A backtest writes the same bytes with the compiled book and with the Python book.

Each run is its own process (the book implementation is chosen once, at start, from
POLYSNIPE_PURE_PYTHON), on the bundled sample (whose outputs are also the golden ones) and on a
generated half hour.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_compiled_book
from kit import SAMPLE, market_files
from polysnipe.tools.datagen import generate

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
OUTPUTS = ("report.json", "opportunities.jsonl")
_MAIN = "import sys; from polysnipe.runners.cli import main; sys.exit(main(sys.argv[1:]))"


def _backtest(data: Path, out: Path, *, pure: bool) -> dict[str, bytes]:
    env = {k: v for k, v in os.environ.items() if k != "POLYSNIPE_PURE_PYTHON"}
    if pure:
        env["POLYSNIPE_PURE_PYTHON"] = "1"
    markets = [arg for path in market_files(data) for arg in ("--markets", str(path))]
    argv = ["backtest", *markets, "--events", str(data / "events.jsonl"), "--no-cache",
            "--labels", str(data / "labels.jsonl"), "--out", str(out), "--no-progress"]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", _MAIN, *argv], env=env, capture_output=True, timeout=600)
    assert 0 == done.returncode, done.stderr.decode(errors="replace")[-2000:]
    return {name: (out / name).read_bytes() for name in OUTPUTS}


def _both(data: Path, tmp: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    require_compiled_book()
    return _backtest(data, tmp / "compiled", pure=False), _backtest(data, tmp / "python", pure=True)


def test_the_sample_backtest_is_byte_identical_on_both_books(tmp_path: Path) -> None:
    compiled, python = _both(SAMPLE, tmp_path)
    for name in OUTPUTS:
        assert python[name] == compiled[name], name
        assert (GOLDEN / name).read_bytes() == compiled[name], name


def test_a_generated_half_hour_is_byte_identical_on_both_books(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, seed=11, duration_s=1800)
    compiled, python = _both(data, tmp_path)
    assert compiled["opportunities.jsonl"], "the generated set should find opportunities"
    for name in OUTPUTS:
        assert python[name] == compiled[name], name


@pytest.mark.parametrize(("value", "expected"), [("1", "python"), ("0", "compiled"), (None, "compiled")])
def test_the_environment_picks_the_book(value: str | None, expected: str) -> None:
    from polysnipe.core.book import use_pure_python
    from polysnipe.runners.implementation import PURE_PYTHON_ENV, select_book

    require_compiled_book()
    try:
        assert expected == select_book({} if value is None else {PURE_PYTHON_ENV: value})
    finally:
        use_pure_python(False)
