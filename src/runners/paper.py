"""`polysnipe paper`: live market data from the CLOB's market WebSocket, fills from the simulated venue.

The same engine loop as the backtest and the live run (runners/loop.py), composed by the Paper
container: the market feed (books untrusted until a snapshot, REST resync on gaps, reconnects) pushes
into the inbox, the simulated venue is the execution port and sees every market event, and engine time
is the wall clock. Before subscribing, the venue's REST API must answer: a paper run that cannot reach
it fails at once with one clear line rather than trading on nothing.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs
from dependency_injector import providers

from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.config import ClobConfig
from polysnipe.adapters.clob.errors import VenueError
from polysnipe.adapters.clob.market_data import MarketDataConfig, MarketDataFeed
from polysnipe.adapters.clob.parsing import RestBook, parse_rest_book
from polysnipe.adapters.inbox import Inbox
from polysnipe.adapters.logs import get_logger
from polysnipe.adapters.postgres.database import DatabaseConfig, open_database
from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.core.market import MarketRegistry
from polysnipe.core.messages import RaiseAlert, RecordError
from polysnipe.runners.collector import between_batches
from polysnipe.runners.config import EngineConfig, as_sections
from polysnipe.runners.containers import Paper
from polysnipe.runners.loop import EngineLoop
from polysnipe.runners.results import InputStats, build_report, write_outputs

__all__ = ["PaperResult", "VenueUnreachable", "run_paper"]

log = get_logger("polysnipe.paper")


class VenueUnreachable(RuntimeError):
    """The CLOB's REST API did not answer before the run started."""


@attrs.define
class PaperResult:
    report: dict[str, Any]
    timing: dict[str, Any]
    loop: EngineLoop
    journal: MemoryJournal


async def _check_reachable(http: ClobHttpClient, clob_url: str) -> None:
    try:
        await http.get("/ok")
    except VenueError as exc:
        raise VenueUnreachable(f"cannot reach the CLOB at {clob_url}: {exc}") from None


async def run_paper(
    *,
    registry: MarketRegistry,
    config: EngineConfig,
    clob_url: str,
    market_ws_url: str,
    duration_s: float,
    out_dir: Path,
    token_ids: Sequence[str] | None = None,
    database: DatabaseConfig | None = None,
) -> PaperResult:
    """Trade the markets of `registry` on paper for `duration_s` seconds; writes the same outputs as a
    backtest. With `database`, every decision is journaled there too, and operators' kill switches
    apply, as in a live run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        # JournalUnavailable: the caller says so in one line
        db = stack.enter_context(open_database(database)) if database is not None else None
        container = Paper(registry=providers.Object(registry), database=providers.Object(db))
        container.config.from_dict(as_sections(config))
        loop: EngineLoop = container.loop()
        journal: MemoryJournal = container.view()
        inbox: Inbox = container.inbox()
        clock = container.clock()
        http = ClobHttpClient(ClobConfig(host=clob_url), clock)
        malformed = 0

        async def snapshot(token_id: str) -> RestBook:
            raw = await http.get("/book", {"token_id": token_id})
            return parse_rest_book(raw, ts_recv_ms=clock.now_ms())

        def on_malformed(frame: str | bytes, reason: str) -> None:
            # a frame we could not use is kept whole (errors table, dead letters) and the feed goes on
            nonlocal malformed
            malformed += 1
            payload = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
            inbox.push((RecordError("market_ws", str(malformed), reason, payload, clock.now_ms()),))

        def on_gap(token: str, reason: str) -> None:
            inbox.push((RaiseAlert("warning", "book_gap", f"{token}: {reason}", clock.now_ms()),))

        feed = MarketDataFeed(
            MarketDataConfig(market_url=market_ws_url),
            snapshots=snapshot,
            sink=inbox.push,
            clock=clock,
            rng=random.Random(config.seed),
            on_gap=on_gap,
            on_malformed=on_malformed,
        )
        starting_equity = loop.state.portfolio.equity().total_usdc_micro
        tokens = list(token_ids) if token_ids else registry.token_ids()
        started = time.monotonic()
        try:
            await _check_reachable(http, clob_url)
            log.info("paper_start", tokens=len(tokens), clob_url=clob_url, market_ws_url=market_ws_url)
            await feed.subscribe(tokens)
            # cyclic garbage is collected between batches, never inside a decision (collector.py)
            loop.on_batch = stack.enter_context(between_batches())
            runner = asyncio.create_task(loop.run())
            try:
                await asyncio.wait_for(asyncio.shield(runner), duration_s)
            except TimeoutError:
                loop.stop()
                inbox.close()
                await runner
        finally:
            await feed.close()
            await http.aclose()
        await loop.drain("paper_stopped")
        elapsed = time.monotonic() - started
        inputs = {
            "mode": "paper",
            "clob_url": clob_url,
            "market_ws_url": market_ws_url,
            "seed": config.seed,
        }
        report = build_report(
            loop,
            journal,
            inputs=inputs,
            stats=InputStats(lines=sum(loop.counts.values()) + malformed, malformed=malformed),
            starting_equity=starting_equity,
        )
        timing = {"duration_s": round(elapsed, 3), "events": sum(loop.counts.values())}
        write_outputs(out_dir, report, timing, loop, journal, title="paper")
        return PaperResult(report, timing, loop, journal)
