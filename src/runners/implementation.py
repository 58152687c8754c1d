"""Which implementation of the compiled parts a process uses: the one place the environment decides.

The core and the adapters read no environment (DESIGN.md section 2), so the choice is made here, once,
by `cli.main` before any command makes a book or decodes a frame. POLYSNIPE_PURE_PYTHON=1 selects the
Python versions of both compiled parts:

* the reference book (core.book.BookState) where the compiled one (core._book.DenseBook) would serve;
  both give the same answers (tests/unit/test_book_compiled.py, tests/unit/test_book_paths.py);
* msgspec alone for every market frame, where the compiled fast path (adapters/clob/_fastdecode) would
  take the plain price_change frames; both give the same events and the same MalformedMessage reasons
  (tests/unit/test_fastdecode.py);
* and with it the live feed's BookKeeper in Python alone, where the same module's FeedKeeper would run
  its common case (decode, gap checks, book hash checks and book updates of plain price changes,
  trade prints and books in one call per frame);
  both give the same events, gaps, checks and books (tests/unit/test_feed_keeper.py);
* and, following the book (they are chosen where `book_implementation()` says "compiled"): the Python
  per-delta loops of the engine and the simulated venue (core._book.apply_changes,
  adapters/sim/_venue.apply_plain), the simulated venue's Python market-event path where its compiled
  sink would apply the events that are only book upkeep (_venue.sink, SimVenue.market_sink), the
  backtest's Python feed-delay draw (_venue.draws, models.FeedLatency.draws), the Python Spread
  Hunter and Liquidity Vacuum, where their compiled kernels (core/signals/_hunter.c, _vacuum.c) would
  hold the per-event state, and market_handlers.on_price_change's own steps, where the compiled
  dispatch (core/_market.c) would apply a price change, run the signal modules and pick the lots to
  judge in one call, pipeline.step's own steps where core._market.step would make that call from C,
  and the backtest loop's upkeep of market events (count, release what has reached the engine, hand
  to the venue, queue after the feed delay) where runners/_loop.c would do it for a run of them
  (tests/unit/test_loop_compiled.py), and OrderSigner.prepare's Python hashing where the compiled
  order hashes (adapters/clob/_orderhash.c) would hash the order's struct and digest
  (tests/unit/test_orderhash.py); each pair is held to one answer by differential tests
  (tests/unit/test_venue_compiled.py for the venue's), and whole backtests to the same bytes
  (tests/unit/test_book_paths.py).

The switch exists to check that and to run where the extensions are not built. Code that works without
the CLI (tests, notebooks) gets the compiled parts when they are built, or calls
`core.book.use_pure_python` / `adapters.clob.parsing.use_pure_python` itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from polysnipe.adapters.clob import parsing, signing
from polysnipe.core.book import book_implementation, use_pure_python
from polysnipe.runners.errors import UserError

__all__ = ["PURE_PYTHON_ENV", "pure_python", "select_book", "select_decoder"]

#: set to 1: every book this process makes is the Python BookState, every frame it decodes goes
#: through msgspec
PURE_PYTHON_ENV = "POLYSNIPE_PURE_PYTHON"


def pure_python(env: Mapping[str, str]) -> bool:
    """PURE_PYTHON_ENV read from `env`: unset, empty or "0" is False, "1" True; anything else is a
    UserError (a misspelt "true" silently running the compiled path would defeat its purpose)."""
    value = env.get(PURE_PYTHON_ENV, "")
    if value not in ("", "0", "1"):
        raise UserError(
            f"{PURE_PYTHON_ENV} must be 1 (Python implementations) or 0 / unset, got {value[:40]!r}"
        )
    return value == "1"


def select_book(env: Mapping[str, str]) -> str:
    """Apply PURE_PYTHON_ENV from `env`; returns what `new_book` makes now ("compiled" or "python")."""
    use_pure_python(pure_python(env))
    return book_implementation()


def select_decoder(env: Mapping[str, str]) -> str:
    """Apply PURE_PYTHON_ENV from `env` to the frame decoder and the order hashes; returns what
    parse_market_line uses now ("compiled" or "python")."""
    pure = pure_python(env)
    parsing.use_pure_python(pure)
    signing.use_pure_python(pure)
    return parsing.decoder_implementation()
