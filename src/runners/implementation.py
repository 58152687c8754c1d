"""Which implementation of the compiled parts a process uses: the one place the environment decides.

The core reads no environment (DESIGN.md section 2), so the choice is made here, once, by `cli.main`
before any command makes a book: POLYSNIPE_PURE_PYTHON=1 selects the Python reference book
(core.book.BookState) where the compiled one (core._book.DenseBook) would serve. Both give the same
answers (tests/unit/test_book_compiled.py, tests/unit/test_book_paths.py); the switch exists to check
that and to run where the extension is not built. Code that makes books without the CLI (tests,
notebooks) gets the compiled book when it is built, or calls `core.book.use_pure_python` itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from polysnipe.core.book import book_implementation, use_pure_python

__all__ = ["PURE_PYTHON_ENV", "select_book"]

#: set to 1: every book this process makes is the Python BookState
PURE_PYTHON_ENV = "POLYSNIPE_PURE_PYTHON"


def select_book(env: Mapping[str, str]) -> str:
    """Apply PURE_PYTHON_ENV from `env`; returns what `new_book` makes now ("compiled" or "python")."""
    use_pure_python(env.get(PURE_PYTHON_ENV) == "1")
    return book_implementation()
