"""NautilusTrader, the peer of `polysnipe bench compare-nautilus`: finding an interpreter that has it,
handing it our deltas and running its BacktestEngine over them (bench_nautilus_peer.py).

NautilusTrader needs a Python of its own (3.12 where this project runs 3.11), so the peer runs as a
child process under that interpreter and never imports polysnipe. Nothing here installs it: where no
interpreter has it, the comparison is skipped with one line saying how to get one.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["HOW_TO_GET", "find_nautilus_python", "run_peer", "write_deltas"]

HOW_TO_GET = (
    "get it into a Python 3.12 of its own (python3.12 -m venv /tmp/nt312 && /tmp/nt312/bin/pip install"
    " nautilus_trader) and pass --nautilus-python /tmp/nt312/bin/python or set POLYSNIPE_NAUTILUS_PYTHON"
)
#: importing nautilus_trader loads a large compiled extension: seconds on a busy machine
_PROBE_TIMEOUT_S = 120
#: one peer run (load + replay + report of one data set)
_PEER_TIMEOUT_S = 1_800
_PYENV_GLOB = "~/.pyenv/versions/3.12*/bin/python"


def _nautilus_version(python: str) -> str | None:
    """The nautilus_trader version `python` imports, or None when it cannot."""
    try:
        # -I: neither the current folder nor PYTHON* variables decide what the probe imports
        done = subprocess.run(
            [python, "-I", "-c", "import nautilus_trader; print(nautilus_trader.__version__)"],
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def find_nautilus_python(given: str | None) -> tuple[str | None, str]:
    """(an interpreter that imports nautilus_trader, where it came from), or (None, why none).

    The order: `given` (--nautilus-python), $POLYSNIPE_NAUTILUS_PYTHON, this interpreter, then a pyenv
    Python 3.12. An interpreter named explicitly is the only one tried: a wrong one is said, not
    passed over for another the user did not choose."""
    env = os.environ.get("POLYSNIPE_NAUTILUS_PYTHON")
    for named, source in ((given, "--nautilus-python"), (env, "POLYSNIPE_NAUTILUS_PYTHON")):
        if named:
            if _nautilus_version(named) is None:
                return None, f"{named} (from {source}) does not run or cannot import nautilus_trader"
            return named, source
    if importlib.util.find_spec("nautilus_trader") is not None:
        return sys.executable, "this interpreter"
    for python in sorted(glob.glob(os.path.expanduser(_PYENV_GLOB)), reverse=True):
        if _nautilus_version(python) is not None:
            return python, "pyenv"
    return None, f"no nautilus_trader in this interpreter or {_PYENV_GLOB}"


def write_deltas(events: Sequence[Any], path: Path) -> int:
    """The events' book deltas in the peer's line format (bench_nautilus_peer); returns the count."""
    from polysnipe.core.events import BookSnapshot, PriceChange, Side

    live: set[tuple[str, int, int]] = set()
    count = 0
    with path.open("w", encoding="ascii") as out:
        for e in events:
            if type(e) is BookSnapshot:
                levels = [(Side.BUY, lv) for lv in e.bids] + [(Side.SELL, lv) for lv in e.asks]
                live = {k for k in live if k[0] != e.token_id}
                out.write(f"{e.ts_ms} {e.token_id} C - 0 0 {0 if levels else 1}\n")
                for i, (side, lv) in enumerate(levels):
                    live.add((e.token_id, side, lv.price))
                    last = 1 if i == len(levels) - 1 else 0
                    out.write(f"{e.ts_ms} {e.token_id} A {'BS'[side]} {lv.price} {lv.size} {last}\n")
                count += len(levels)
            elif type(e) is PriceChange:
                last_of = {d.token_id: i for i, d in enumerate(e.changes)}
                for i, d in enumerate(e.changes):
                    key = (d.token_id, d.side, d.price)
                    if d.size == 0:
                        action = "D"
                        live.discard(key)
                    else:
                        action = "U" if key in live else "N"
                        live.add(key)
                    last = 1 if last_of[d.token_id] == i else 0
                    out.write(f"{e.ts_ms} {d.token_id} {action} {'BS'[d.side]} {d.price} {d.size} {last}\n")
                count += len(e.changes)
    return count


def run_peer(python: str, deltas_path: Path, repeat: int) -> dict[str, Any]:
    """The peer's `repeat` runs over the deltas file: {"version", "python", "runs"}. A peer that
    fails raises RuntimeError with its last line of stderr."""
    script = Path(__file__).with_name("bench_nautilus_peer.py")
    try:
        # -I: the script's folder (runners/, which has a logging.py) must not shadow the stdlib
        done = subprocess.run(
            [python, "-I", str(script), str(deltas_path), str(repeat)],
            capture_output=True,
            text=True,
            timeout=_PEER_TIMEOUT_S * repeat,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"the NautilusTrader peer under {python}: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the NautilusTrader peer under {python} exited {done.returncode}: {tail}")
    peer: dict[str, Any] = json.loads(done.stdout)
    return peer
