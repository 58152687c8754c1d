"""Shared fixtures of the tests: where the recorded venue data lives.

The recordings sit in `shared/data/` beside the repository checkout (not inside it: they are
LGPL-licensed copies, see their README). POLYSNIPE_SHARED_DATA points elsewhere when a machine keeps
them in another place. Tests reach them only through the `shared_data` fixture, never at import
time, so collection works without them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["shared_data_dir"]


def shared_data_dir() -> Path:
    """The `shared/data` directory: $POLYSNIPE_SHARED_DATA, else `../shared/data` from the repo root."""
    override = os.environ.get("POLYSNIPE_SHARED_DATA")
    if override:
        return Path(override)
    return Path(__file__).parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.fail(f"recorded data not found at {path}; set POLYSNIPE_SHARED_DATA to its directory")
    return path
