"""Which implementation of the compiled parts a process uses: the one place the environment decides.

Library modules read no environment, so the choice is made here, once, by `cli.main` before any
command decodes a frame: POLYSNIPE_PURE_PYTHON=1 makes parse_market_line decode every frame with
msgspec, where the compiled fast path (adapters/clob/_fastdecode) would take the plain price_change
frames. Both give the same events and the same MalformedMessage reasons (tests/unit/test_fastdecode.py);
the switch exists to check that and to run where the extension is not built. Code that decodes without
the CLI (tests, notebooks) gets the fast path when it is built, or calls `parsing.use_pure_python`.
"""

from __future__ import annotations

from collections.abc import Mapping

from polysnipe.adapters.clob import parsing

__all__ = ["PURE_PYTHON_ENV", "select_decoder"]

#: set to 1: every frame this process decodes goes through msgspec
PURE_PYTHON_ENV = "POLYSNIPE_PURE_PYTHON"


def select_decoder(env: Mapping[str, str]) -> str:
    """Apply PURE_PYTHON_ENV from `env`; returns what parse_market_line uses now ("compiled" or "python")."""
    parsing.use_pure_python(env.get(PURE_PYTHON_ENV) == "1")
    return parsing.decoder_implementation()
