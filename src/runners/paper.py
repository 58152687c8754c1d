"""`polysnipe paper`: live market data from the CLOB's market WebSocket, fills from the simulated venue.

The engine, the simulated venue and the shell are the very ones the backtest uses (same containers,
same matching engine); only the source of events differs: a MarketDataFeed that keeps books untrusted
until a snapshot, resyncs over REST on gaps and reconnects. Engine time is the wall clock, clamped so
it never runs backwards.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import structlog

from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.config import ClobConfig
from polysnipe.adapters.clob.market_data import MarketDataConfig, MarketDataFeed, RestBook
from polysnipe.adapters.clob.parsing import parse_rest_book
from polysnipe.adapters.files import ReadStats
from polysnipe.adapters.sim.bus import InProcessBus
from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.core.events import Event, ExternalSignal
from polysnipe.core.market import Market
from polysnipe.core.pipeline import EngineState, finish, step
from polysnipe.runners.backtest import DEAD_LETTER_STREAM, build_report, equity, write_outputs
from polysnipe.runners.config import EngineConfig
from polysnipe.runners.containers import build_backtest_engine
from polysnipe.runners.report import EquityPoint
from polysnipe.runners.shell import EngineShell

__all__ = ["PaperResult", "WallClock", "run_paper"]

log = structlog.get_logger("polysnipe.paper")

_EVENT_NAMES = {"BookSnapshot": "book", "PriceChange": "price_change", "TickSizeChange": "tick_size_change",
                "LastTrade": "last_trade_price", "ExternalSignal": "external_signal"}  # fmt: skip


def dead_letter(
    journal: MemoryJournal, bus: InProcessBus[dict[str, Any]], source: str, frame: str | bytes, reason: str
) -> None:
    """A message we could not use: kept whole in the dead-letter stream and the errors table."""
    payload = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
    error = {"source": source, "reason": reason, "payload": payload}
    journal.append("errors", error)
    bus.publish(DEAD_LETTER_STREAM, error)
    log.warning("malformed_message", source=source, reason=reason)


class WallClock:
    """The live runners' clock (the core never reads it: it gets `now_ms` from the runner)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()


@attrs.define
class PaperResult:
    report: dict[str, Any]
    state: EngineState
    journal: MemoryJournal


class _PaperLoop:
    def __init__(self, state: EngineState, shell: EngineShell, clock: WallClock) -> None:
        self.state = state
        self.shell = shell
        self.clock = clock
        self.now_ms = 0
        self.by_type: Counter[str] = Counter()

    def tick(self) -> int:
        self.now_ms = max(self.now_ms, self.clock.now_ms())
        self.shell.now_ms = self.now_ms
        return self.now_ms

    def on_events(self, events: list[Event]) -> None:
        venue = self.shell.venue
        for ev in events:
            now = self.tick()
            self.by_type[_EVENT_NAMES[type(ev).__name__]] += 1
            if type(ev) is not ExternalSignal:
                venue.on_market_event(ev)  # type: ignore[attr-defined]
            self.poll()
            self.shell.perform(step(self.state, ev, now))

    def poll(self) -> None:
        reports = self.shell.venue.poll(self.tick())
        if reports:
            self.shell.deliver(reports)


async def run_paper(
    *,
    markets: Sequence[Market],
    config: EngineConfig,
    clob_url: str,
    market_ws_url: str,
    duration_s: float,
    out_dir: Path,
    token_ids: Sequence[str] | None = None,
) -> PaperResult:
    """Trade `markets` on paper for `duration_s` seconds; writes the same outputs as a backtest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    state, venue = build_backtest_engine(config, markets)
    journal = MemoryJournal()
    dead_letters: InProcessBus[dict[str, Any]] = InProcessBus()
    shell = EngineShell(state, venue, journal)
    clock = WallClock()
    loop = _PaperLoop(state, shell, clock)
    http = ClobHttpClient(ClobConfig(host=clob_url), clock)

    async def snapshot(token_id: str) -> RestBook:
        raw = await http.get("/book", {"token_id": token_id})
        return parse_rest_book(raw, ts_recv_ms=clock.now_ms())

    feed = MarketDataFeed(
        MarketDataConfig(market_url=market_ws_url),
        snapshots=snapshot,
        sink=loop.on_events,
        clock=clock,
        rng=random.Random(config.seed),
        on_gap=lambda token, reason: log.warning("book_gap", token_id=token, reason=reason),
        on_malformed=lambda frame, reason: dead_letter(journal, dead_letters, "market_ws", frame, reason),
    )
    starting_equity = equity(state)[0]
    points = [EquityPoint(loop.tick(), *equity(state))]
    tokens = list(token_ids) if token_ids else [t for m in markets for t in m.token_ids]
    log.info("paper_start", tokens=len(tokens), clob_url=clob_url, market_ws_url=market_ws_url)
    try:
        await feed.subscribe(tokens)
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            # order arrivals and acks are timed by the venue's latency model: deliver them as they fall due
            await asyncio.sleep(0.05)
            loop.poll()
            points.append(EquityPoint(loop.now_ms, *equity(state)))
    finally:
        await feed.close()
        await http.aclose()
    horizon = loop.tick() + 60_000
    shell.now_ms = horizon
    shell.deliver(venue.poll(horizon))
    shell.perform(finish(state, horizon, reason="paper_stopped"))
    shell.deliver(venue.poll(horizon + 60_000))
    final = equity(state)
    points.append(EquityPoint(horizon, *final))
    inputs = {
        "mode": "paper",
        "clob_url": clob_url,
        "market_ws_url": market_ws_url,
        "seed": config.seed,
    }
    report = build_report(
        state, journal, ReadStats(), loop.by_type, inputs, starting_equity, final[0], None,
        shell.audits, shell.breaches,
    )  # fmt: skip
    timing = {"duration_s": duration_s, "events": sum(loop.by_type.values())}
    write_outputs(out_dir, report, timing, state, journal, points, title="paper")
    return PaperResult(report, state, journal)
