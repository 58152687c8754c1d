"""A run's output folder: written whole or not at all, and described by its manifest.

A run writes into a staging folder beside the one it was asked for (`.NAME.partial-XXXX`) and only a
run that completes swaps it in, by renames, for the folder named on the command line. A killed or
failed run therefore leaves the previous results untouched (and its staging folder, never a mix of
old and new files); a rerun never leaves a new report.json beside an old equity.png.

Replacing a folder means deleting what it held, so only an empty folder or an earlier polysnipe
output (one with a manifest.json) is ever replaced; anything else is refused.

`manifest.json` names what the run read (full paths, sizes and SHA-256), the effective settings, the
polysnipe version and the command, so any report can be traced to exactly what produced it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "MANIFEST",
    "OutputDirRefused",
    "check_output_dir",
    "file_digest",
    "staged_output",
    "write_manifest",
]

MANIFEST = "manifest.json"
_CHUNK = 1 << 20


class OutputDirRefused(ValueError):
    """The output folder exists and is not one a run may replace."""


def file_digest(path: Path) -> dict[str, Any]:
    """Full path, size and SHA-256 of one input file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"path": str(path.resolve()), "bytes": size, "sha256": digest.hexdigest()}


def check_output_dir(out_dir: Path) -> None:
    """Raise OutputDirRefused unless a run may write (or replace) `out_dir`."""
    if out_dir.name in ("", ".", ".."):
        # the outputs replace the folder whole, and ".", ".." or "/" cannot be renamed
        raise OutputDirRefused(f"{str(out_dir)!r} is not a folder of its own: name a new or empty folder")
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise OutputDirRefused(f"{out_dir} exists and is not a folder: choose a folder for the outputs")
    if any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
        raise OutputDirRefused(
            f"{out_dir} is not empty and holds no {MANIFEST} of an earlier run: polysnipe replaces only "
            "its own output folders; choose a new or empty folder"
        )


@contextlib.contextmanager
def staged_output(out_dir: Path) -> Iterator[Path]:
    """Yield a fresh staging folder; when the block completes, it becomes `out_dir` (module doc)."""
    check_output_dir(out_dir)
    parent = out_dir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=parent))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    check_output_dir(out_dir)  # the folder may have changed while the run went on
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=parent))
        os.rename(out_dir, old / out_dir.name)
        os.rename(stage, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(stage, out_dir)


def write_manifest(
    out_dir: Path, *, command: str, inputs: Mapping[str, Path | None], settings: Mapping[str, Any]
) -> None:
    """Write manifest.json: inputs by role (path, bytes, SHA-256), settings, version, command line."""
    try:
        version = metadata.version("polysnipe")
    except metadata.PackageNotFoundError:
        version = "unknown"
    manifest = {
        "polysnipe_version": version,
        "command": command,
        "argv": sys.argv[1:],
        "inputs": {role: file_digest(path) for role, path in inputs.items() if path is not None},
        "settings": settings,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"
    (out_dir / MANIFEST).write_text(text, encoding="utf-8")
