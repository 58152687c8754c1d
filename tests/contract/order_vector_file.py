"""The signed-order vector file the contract tests check us against, whichever file it is.

Any file of schema `polysnipe-clob-order-vectors/1` works: POLYSNIPE_ORDER_VECTORS names it, else it
is `vectors/orders.json` in the shared data (POLYSNIPE_SHARED_DATA or ../shared/data, as the
`shared_data` fixture finds it). Nothing is read at import time. At collection the file is read once
to give every vector its own test; a file that cannot be read gives one placeholder per test instead,
which fails with the reason, so collection never breaks. Tests choose vectors by property (`pick`)
and skip, saying so, when the file has none of a kind.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import require_shared_data, shared_data_dir

__all__ = [
    "ENV_VECTORS",
    "SCHEMA",
    "VECTOR_ARG",
    "load_vectors",
    "parametrize_vectors",
    "pick",
    "pick_all",
    "vectors_path",
]

SCHEMA = "polysnipe-clob-order-vectors/1"
ENV_VECTORS = "POLYSNIPE_ORDER_VECTORS"
VECTOR_ARG = "vector_index"
_UNAVAILABLE = "order-vectors-unavailable"

Vector = dict[str, Any]


def vectors_path() -> Path:
    override = os.environ.get(ENV_VECTORS)
    if override:
        return Path(override)
    return shared_data_dir() / "vectors" / "orders.json"


@functools.cache
def _read(path: Path) -> dict[str, Any] | str:
    """The parsed file, or why it cannot be used (a str)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"order vectors not readable at {path} ({exc}); set {ENV_VECTORS} to a vector file"
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return f"{path} is not a vector file of schema {SCHEMA}"
    if not isinstance(data.get("vectors"), list):
        return f"{path} has no `vectors` list"
    return data


def load_vectors() -> dict[str, Any]:
    """The vector file, or the test fails saying why (unreadable, another schema). The recorded data
    missing altogether is the `shared_data` fixture's case: skip, or fail under .ci/run."""
    if os.environ.get(ENV_VECTORS) is None:
        require_shared_data()
    data = _read(vectors_path())
    if isinstance(data, str):
        pytest.fail(data)
    return data


def parametrize_vectors(metafunc: pytest.Metafunc) -> None:
    """`pytest_generate_tests` body: one test per vector for tests taking `vector_index`."""
    if VECTOR_ARG not in metafunc.fixturenames:
        return
    data = _read(vectors_path())
    if isinstance(data, str):
        metafunc.parametrize(VECTOR_ARG, [-1], ids=[_UNAVAILABLE])
        return
    ids = [str(v.get("id", i)) if isinstance(v, dict) else str(i) for i, v in enumerate(data["vectors"])]
    metafunc.parametrize(VECTOR_ARG, range(len(ids)), ids=ids)


def pick_all(data: dict[str, Any], what: str, where: Callable[[Vector], bool]) -> list[Vector]:
    """Every vector with a property; skip the test when the file has none (`what` names the kind)."""
    found = [v for v in data["vectors"] if where(v)]
    if not found:
        pytest.skip(f"{vectors_path()} has no {what}")
    return found


def pick(data: dict[str, Any], what: str, where: Callable[[Vector], bool]) -> Vector:
    """The first vector with a property, or skip."""
    return pick_all(data, what, where)[0]
