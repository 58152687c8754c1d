"""The core is pure: it may import only the standard library, attrs and itself (DESIGN.md section 2)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "src" / "core"
ALLOWED_THIRD_PARTY = {"attrs", "attr"}
#: stdlib modules that would smuggle I/O, wall-clock time or global randomness into the core
FORBIDDEN_STDLIB = {
    "socket",
    "asyncio",
    "subprocess",
    "threading",
    "multiprocessing",
    "urllib",
    "http",
    "sqlite3",
    "random",
    "time",
    "datetime",
    "os",
    "io",
    "logging",
    "shutil",
    "tempfile",
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_core_imports_only_stdlib_and_attrs() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert files, "no core modules found"
    offenders = []
    for path in files:
        for lineno, name in _imports(path):
            top = name.split(".")[0]
            if name.startswith("polysnipe.core") or name == "__future__":
                continue
            if top in ALLOWED_THIRD_PARTY:
                continue
            if top in sys.stdlib_module_names and top not in FORBIDDEN_STDLIB:
                continue
            offenders.append(f"{path.relative_to(CORE)}:{lineno} imports {name}")
    assert [] == offenders
