"""The backtest loop's compiled market-event path (runners/_loop.c) against loop.py's Python path.

The same replay runs twice through one composition, once with runners._loop.feed_quiet and once
without it, in batches of several sizes (a batch boundary can fall anywhere in a run of market
events): the journal, the counts, the equity curve, the engine time and when the venue wakes next
must be equal.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

from conftest import require_compiled_book
from kit import SAMPLE, market_files
from polysnipe.adapters.files import load_events
from polysnipe.adapters.metadata import load_market_files
from polysnipe.adapters.sim.replay import ReplaySource
from polysnipe.runners import loop as loop_module
from polysnipe.runners.config import as_sections, load_config
from polysnipe.runners.containers import Backtest
from polysnipe.tools.datagen import generate


@pytest.fixture(autouse=True)
def _compiled() -> None:
    require_compiled_book()
    if loop_module._feed_quiet is None:
        pytest.skip("polysnipe.runners._loop is not built")


def _replay(data: Path, batch: int, *, compiled: bool) -> tuple[Any, ...]:
    events, _ = load_events(data / "events.jsonl")
    container = Backtest(
        registry=providers.Object(load_market_files(market_files(data)).registry()),
        source=providers.Object(ReplaySource(events, batch=batch)),
    )
    container.config.from_dict(as_sections(load_config(None)))
    loop = container.loop()
    journal = container.journal()
    feed_quiet = loop_module._feed_quiet
    calls = 0

    def counting(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        assert feed_quiet is not None
        return feed_quiet(*args)

    loop_module._feed_quiet = counting if compiled else None
    try:
        asyncio.run(loop.run())
        asyncio.run(loop.drain("end_of_data"))
    finally:
        loop_module._feed_quiet = feed_quiet
    assert (calls > 0) == compiled
    venue = container.gateways.execution().venue
    return (journal.records, dict(loop.counts), loop.equity, loop.now_ms, loop._feed_last_ms, loop.breaches,
            len(loop.decision_ns), loop.order_legs, venue.wake_ms)  # fmt: skip


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("generated")
    generate(data, seed=5, duration_s=600)
    return data


@pytest.mark.parametrize("batch", [1, 7, 4096])
def test_the_sample_replays_alike_both_ways(batch: int) -> None:
    assert _replay(SAMPLE, batch, compiled=False) == _replay(SAMPLE, batch, compiled=True)


@pytest.mark.parametrize("batch", [3, 4096])
def test_a_generated_set_replays_alike_both_ways(generated: Path, batch: int) -> None:
    want = _replay(generated, batch, compiled=False)
    assert want[0], "the generated set should journal decisions"
    assert want == _replay(generated, batch, compiled=True)


def test_hostile_arguments_raise_rather_than_crash() -> None:
    from polysnipe.runners._loop import feed_quiet

    class Loop:
        _feed_last_ms = 0
        _next_sample_ms = 10**12
        now_ms = 0

    class Event:
        ts_ms = 5

    def args(**override: Any) -> list[Any]:
        base: dict[str, Any] = {
            "batch": [Event()], "start": 0, "loop": Loop(), "step": lambda *_: [], "state": None,
            "to_venue": lambda _: None, "observe": lambda t: t, "execution": Loop(), "feed": deque(),
            "feed_delay": lambda: 1, "counts": Counter(), "names": {Event: "e"}, "kinds": frozenset({Event}),
            "perf": lambda: 0,
        }  # fmt: skip
        base.update(override)
        return list(base.values())

    with pytest.raises(TypeError):
        feed_quiet(*args()[:13])
    hostile: list[dict[str, Any]] = [{"batch": (Event(),)}, {"counts": []}, {"kinds": [Event]}]
    for bad in hostile:
        with pytest.raises(TypeError):
            feed_quiet(*args(**bad))
    with pytest.raises(ValueError, match="negative"):
        feed_quiet(*args(start=-1))
    with pytest.raises(KeyError):
        feed_quiet(*args(names={}))
    with pytest.raises(TypeError, match="arrives_ms, event"):
        feed_quiet(*args(feed=deque([(1,)])))
    with pytest.raises(AttributeError):
        feed_quiet(*args(execution=object(), feed=deque([(1, Event())])))
    # a well-formed call: the event is counted, handed to the venue and queued after its delay
    feed: deque[tuple[int, object]] = deque()
    counts: Counter[str] = Counter()
    seen: list[object] = []
    event = Event()
    assert (1, None) == feed_quiet(*args(batch=[event], feed=feed, counts=counts, to_venue=seen.append))
    assert ([(6, event)], {"e": 1}, [event]) == (list(feed), dict(counts), seen)
