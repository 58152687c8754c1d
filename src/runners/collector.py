"""Cyclic garbage collection between the loop's batches, off the decision path.

CPython collects its young generation whenever allocations outnumber frees by its threshold (700),
wherever that happens: inside a decision it is a pause of 75-250 us, and `bench latency` saw one in
1.5-2% of single-order decisions, more than the whole p99 budget of 150 us. `BetweenBatches` turns
automatic collection off for the engine loop's run and runs CPython's own generational schedule
itself after each batch the loop has finished (EngineLoop.on_batch): when no decision is in flight,
once the young generation has reached the same threshold. What start-up built is frozen first, out of
every collection's reach. Reference counting still frees everything without cycles at once; only
cycles wait, at most one batch longer than they would have.

The live and paper runners use it (a batch there is one frame or a few); backtests keep CPython's
collection, which changes no output and only their speed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BetweenBatches", "between_batches"]


class BetweenBatches:
    """start() before the loop runs, the instance itself as its on_batch, stop() after it."""

    __slots__ = ("_running", "_thresholds", "_was_enabled")

    def __init__(self) -> None:
        self._thresholds = gc.get_threshold()
        self._was_enabled = True
        self._running = False

    def start(self) -> None:
        """Collect and freeze what exists, then stop automatic collection."""
        if self._running:
            return
        self._thresholds = gc.get_threshold()
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()
        gc.disable()
        self._running = True

    def __call__(self) -> None:
        """After a batch: the collection CPython would have made by now, if any (the oldest generation
        whose count reached its threshold, with every younger one)."""
        young, middle, old = self._thresholds
        allocated, young_runs, middle_runs = gc.get_count()
        if not self._running or not young or allocated < young:
            return
        if middle_runs >= old:
            gc.collect(2)
        elif young_runs >= middle:
            gc.collect(1)
        else:
            gc.collect(0)

    def stop(self) -> None:
        """Automatic collection back as it was; what start() froze is collectable again."""
        if not self._running:
            return
        self._running = False
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()


@contextmanager
def between_batches() -> Iterator[BetweenBatches]:
    """A started BetweenBatches for the block (an EngineLoop's on_batch), stopped at its end."""
    collector = BetweenBatches()
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()
