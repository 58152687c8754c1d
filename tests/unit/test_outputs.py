"""Output folders are replaced whole or not at all, and only when they are polysnipe's own."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from polysnipe.runners.outputs import MANIFEST, OutputDirRefused, staged_output, write_manifest


def _run(out: Path, files: dict[str, str], fail: bool = False) -> None:
    with staged_output(out) as stage:
        for name, text in files.items():
            (stage / name).write_text(text)
        write_manifest(stage, command="backtest", inputs={}, settings={})
        if fail:
            raise RuntimeError("killed mid-run")


def test_a_completed_run_replaces_the_whole_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _run(out, {"report.json": "old", "equity.png": "old chart"})
    _run(out, {"report.json": "new"})
    assert {"report.json", MANIFEST} == {p.name for p in out.iterdir()}
    assert "new" == (out / "report.json").read_text()
    # nothing is left beside it: no staging or old folders
    assert ["out"] == [p.name for p in tmp_path.iterdir()]


def test_a_failed_run_leaves_the_previous_results_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _run(out, {"report.json": "old", "equity.png": "old chart"})
    with pytest.raises(RuntimeError):
        _run(out, {"report.json": "half"}, fail=True)
    assert "old" == (out / "report.json").read_text()
    assert (out / "equity.png").exists()
    assert ["out"] == [p.name for p in tmp_path.iterdir()]


@pytest.mark.parametrize("setup", ["file", "foreign"])
def test_a_folder_that_is_not_an_output_is_never_replaced(tmp_path: Path, setup: str) -> None:
    out = tmp_path / "out"
    if setup == "file":
        out.write_text("my notes")
    else:
        out.mkdir()
        (out / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputDirRefused), staged_output(out):
        pass
    assert out.exists()
    assert ["out"] == [p.name for p in tmp_path.iterdir()]


def test_manifest_names_inputs_with_their_digest(tmp_path: Path) -> None:
    data = tmp_path / "events.jsonl"
    data.write_bytes(b'{"event_type":"book"}\n')
    write_manifest(tmp_path, command="backtest", inputs={"events": data, "labels": None},
                   settings={"seed": 7})  # fmt: skip
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert {"events"} == set(manifest["inputs"])
    entry = manifest["inputs"]["events"]
    assert str(data.resolve()) == entry["path"]
    assert hashlib.sha256(data.read_bytes()).hexdigest() == entry["sha256"]
    assert {"seed": 7} == manifest["settings"]
    assert manifest["polysnipe_version"]
