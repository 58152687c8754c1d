"""Show that the pipeline properties catch known mutations of the lifecycle (issue 12 item 6).

For each mutation below: copy `src/` to a scratch directory as the `polysnipe` package, apply the
mutation there (an exact text replacement that must match once, so a refactor of the lifecycle makes
this script fail loudly instead of testing nothing), and run the pipeline property with that copy
first on PYTHONPATH (ahead of the editable install). The mutation is caught when the property fails
with a named violation; a crash or a pass is reported as such. The working tree is never changed.

    .venv/bin/python tests/mutation/run.py [--seeds 0,1,2] [--only NAME]     (or: make mutation)

Exit status 0 only when the unmutated tree passes and every mutation is caught under every seed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
TARGET = "tests/unit/test_pipeline_properties.py::test_random_runs_keep_the_pipeline_invariants"
LIFECYCLE = "core/lifecycle.py"


class Mutation(NamedTuple):
    name: str
    what: str
    file: str
    #: (exact text, replacement) pairs, each matching exactly once
    edits: tuple[tuple[str, str], ...]


MUTATIONS = (
    Mutation(
        "full-size-after-resize",
        "an order risk resized is sent at its full size",
        LIFECYCLE,
        (
            (
                "    if decision.approved_size != order.size:\n"
                "        order = attrs.evolve(order, size=decision.approved_size)\n"
                "    track.target_size = order.size\n",
                "    track.target_size = order.size\n",
            ),
        ),
    ),
    Mutation(
        "slices-not-rechecked",
        "iceberg slices are placed without the risk re-check",
        LIFECYCLE,
        (
            (
                "    decision = state.gatekeeper.check(order, state.risk, market, book, now_ms, tokens)\n",
                '    decision = RiskDecision("approve", order.size, ())\n',
            ),
            (
                "from polysnipe.core.routing import ChildOrder, Iceberg, RoutingPolicy\n",
                "from polysnipe.core.risk import RiskDecision\n"
                "from polysnipe.core.routing import ChildOrder, Iceberg, RoutingPolicy\n",
            ),
        ),
    ),
    Mutation(
        "approvals-not-journaled",
        "approve and resize decisions are not journaled (refusals still are)",
        LIFECYCLE,
        (
            (
                ") -> None:\n    commands.append(\n        RecordRiskDecision(\n",
                ") -> None:\n    if approved > 0:\n        return\n"
                "    commands.append(\n        RecordRiskDecision(\n",
            ),
        ),
    ),
    Mutation(
        "no-daily-loss-kill-switch",
        "a fill beyond the daily loss limit does not engage the global kill switch",
        LIFECYCLE,
        (
            (
                '        on_kill_switch(state, KillSwitch(now_ms, "global", True, "daily loss limit"), '
                "now_ms, commands)\n",
                "        pass\n",
            ),
        ),
    ),
    # two more, for the basket properties (items 2b and 2c)
    Mutation(
        "basket-legs-checked-alone",
        "a basket is risk-checked on its first leg only, not as one unit",
        LIFECYCLE,
        (
            (
                "state.gatekeeper.check_orders(orders, state.risk, now_ms, tokens)",
                "state.gatekeeper.check_orders(orders[:1], state.risk, now_ms, tokens)",
            ),
        ),
    ),
    Mutation(
        "basket-fees-ignored",
        "a basket that can lose after fees is placed anyway",
        LIFECYCLE,
        (
            (
                "worst_case_profit([(m, o.price) for o, m, _ in orders], decision.approved_size) <= 0:",
                "worst_case_profit([(m, o.price) for o, m, _ in orders], decision.approved_size) < -ONE:",
            ),
        ),
    ),
)


def _pytest(env: dict[str, str], seed: int, log: Path) -> tuple[int, str]:
    env = {**env, "POLYSNIPE_PROPERTY_LOG": str(log)}
    plugin = ["-p", "no:cacheprovider", "-p", "mutation_profile"]
    cmd = [sys.executable, "-m", "pytest", TARGET, "-q", "-x", *plugin,
           "--hypothesis-profile=mutation", f"--hypothesis-seed={seed}"]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout + done.stderr


def _timed(env: dict[str, str], seed: int, log: Path) -> tuple[int, str, float]:
    t0 = time.monotonic()
    rc, out = _pytest(env, seed, log)
    return rc, out, time.monotonic() - t0


def _violated(log: Path) -> list[str]:
    if not log.exists():
        return []
    return sorted({name for line in log.read_text(encoding="ascii").split("\n") for name in line.split()})


def _mutate(scratch: Path, mutation: Mutation) -> None:
    shutil.copytree(ROOT / "src", scratch / "polysnipe", ignore=shutil.ignore_patterns("__pycache__"))
    path = scratch / "polysnipe" / mutation.file
    text = path.read_text(encoding="utf-8")
    for old, new in mutation.edits:
        if text.count(old) != 1:
            raise SystemExit(f"{mutation.name}: the text to mutate occurs {text.count(old)} times in {path}")
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")


def _imports_from(env: dict[str, str], scratch: Path) -> bool:
    probe = "import polysnipe.core.lifecycle as m; print(m.__file__)"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False)
    return done.stdout.strip().startswith(str(scratch))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="hypothesis seeds, comma-separated")
    parser.add_argument("--only", default="", help="run only the mutation of this name")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    mutations = [m for m in MUTATIONS if not args.only or m.name == args.only]
    ok = True
    with tempfile.TemporaryDirectory(prefix="polysnipe-mutation-") as tmp:
        here = str(Path(__file__).parent)  # for `-p mutation_profile`
        base = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, (here, os.environ.get("PYTHONPATH")))),
        }
        t0 = time.monotonic()
        rc, out = _pytest(base, seeds[0], Path(tmp) / "baseline.log")
        print(f"{'unmutated':28} {'passes' if rc == 0 else 'FAILS'} ({time.monotonic() - t0:.1f} s)")
        if rc != 0:
            print(out[-3000:])
            return 1
        jobs = []
        for mutation in mutations:
            scratch = Path(tmp) / mutation.name
            _mutate(scratch, mutation)
            env = {**base, "PYTHONPATH": os.pathsep.join((str(scratch), base["PYTHONPATH"]))}
            if not _imports_from(env, scratch):
                raise SystemExit(f"{mutation.name}: polysnipe does not import from the scratch copy")
            jobs += [(mutation, env, seed, scratch / f"seed{seed}.log") for seed in seeds]
        # two at a time: the machine's two cores
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = pool.map(lambda job: (job, _timed(job[1], job[2], job[3])), jobs)
            for (mutation, _, seed, log), (rc, out, took) in results:
                violated = _violated(log)
                caught = rc == 1 and bool(violated)
                verdict = (
                    "caught by " + " ".join(violated) if caught else ("SURVIVED" if rc == 0 else "ERROR")
                )
                print(f"{mutation.name:28} seed {seed}: {verdict} ({took:.1f} s)", flush=True)
                if not caught:
                    ok = False
                    if rc != 0:
                        print(out[-3000:])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
