"""Cyclic garbage collection between the loop's batches (runners/collector.py)."""

from __future__ import annotations

import gc

from polysnipe.runners.collector import BetweenBatches, between_batches


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_collection_waits_for_the_batch_and_follows_cpythons_schedule() -> None:
    before = gc.isenabled()
    with between_batches() as collector:
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0  # what start-up built is out of reach
        young = gc.get_threshold()[0]
        collected_before = gc.get_stats()[0]["collections"]
        for _ in range(young * 3):
            _Cycle()  # cycles: only a collection frees them
        assert gc.get_count()[0] >= young, "no automatic collection while the loop runs"
        collector()  # the batch ended: the young generation is collected
        assert gc.get_count()[0] < young
        assert gc.get_stats()[0]["collections"] == collected_before + 1
        collector()  # below the threshold: nothing to do
        assert gc.get_stats()[0]["collections"] == collected_before + 1
    assert gc.isenabled() == before
    assert gc.get_freeze_count() == 0


def test_older_generations_are_collected_when_their_counts_come_due() -> None:
    with between_batches() as collector:
        young, middle, _ = gc.get_threshold()
        runs = {g: gc.get_stats()[g]["collections"] for g in (0, 1, 2)}
        for _ in range(middle + 1):
            for _ in range(young):
                _Cycle()
            collector()
        stats = gc.get_stats()
        assert stats[1]["collections"] > runs[1], "a middle collection after `middle` young ones"


def test_start_and_stop_are_idempotent_and_restore_a_disabled_collector() -> None:
    gc.disable()
    try:
        c = BetweenBatches()
        c.start()
        c.start()
        c.stop()
        c.stop()
        assert not gc.isenabled()  # it was off before: it stays off
        c()  # not running: does nothing
    finally:
        gc.enable()
