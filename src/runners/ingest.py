"""`polysnipe ingest`: the market channel (or a recording) and external signals onto the bus.

Composed by the Ingest container: frames go from their feed (adapters/ingest.py: the live
WebSocket, or a JSON-lines recording replayed) through a BufferedPublisher (pipelined XADDs to
`md.<shard>`) and, with `--record DIR`, to rotating JSON-lines files the backtest replays; signals
POSTed to `--signals-listen` go through the HMAC-checked endpoint (adapters/signals_http.py) to
`signals.external`, and are recorded too. A replay without a signal endpoint ends with its file;
everything else runs until SIGTERM / SIGINT (or `duration_s`), then sends what it holds and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import uvicorn

from polysnipe.adapters.clob.websocket import Connect
from polysnipe.adapters.ingest import LiveFeed, Recorder, ReplayFeed
from polysnipe.adapters.logs import get_logger
from polysnipe.adapters.redis.factory import ping
from polysnipe.adapters.redis.streams import BufferedPublisher, StreamPublisher
from polysnipe.adapters.signals_http import SignalEndpointConfig, keys_from_env, signal_app
from polysnipe.adapters.tasks import cancel_and_wait
from polysnipe.runners.config import EngineConfig, as_sections
from polysnipe.runners.containers import Ingest
from polysnipe.runners.settings import mask_url

__all__ = ["IngestJob", "IngestResult", "ingest_container", "run_ingest"]

log = get_logger("polysnipe.ingest")


@attrs.frozen(slots=True, kw_only=True)
class IngestJob:
    """What to ingest, as the command line said it (checked there)."""

    #: a recording to replay instead of the live feed
    replay: Path | None = None
    #: replay pace: 1 = as recorded, 0 = as fast as possible
    speed: float = 0.0
    #: --retime: the recording's timestamps moved to start now (ReplayFeed)
    retime: bool = False
    #: live: the tokens to subscribe, and the market channel's URL
    token_ids: Sequence[str] = ()
    market_ws_url: str = ""
    record_dir: Path | None = None
    #: (host, port) of the signal endpoint
    listen: tuple[str, int] | None = None
    duration_s: float | None = None


@attrs.define
class IngestResult:
    frames: int = 0
    entries: int = 0
    signals: int = 0
    record_files: list[Path] = attrs.field(factory=list)


def ingest_container(config: EngineConfig) -> Ingest:
    container = Ingest()
    container.config.from_dict(as_sections(config))
    return container


async def run_ingest(
    container: Ingest,
    config: EngineConfig,
    job: IngestJob,
    *,
    stop: asyncio.Event | None = None,
    connect: Connect | None = None,
    env: dict[str, str] | None = None,
) -> IngestResult:
    """Run one ingest job (module docstring). Raises BusUnavailable when Redis does not answer at
    start, MissingSignalKeys when a provider's key is not in the environment."""
    settings = config.ingest
    keys = keys_from_env(settings.providers(), env) if job.listen is not None else {}
    client = container.redis()
    await ping(client, mask_url(config.connections.redis_url))
    clock = container.clock()
    publisher: StreamPublisher = container.publisher()
    buffered: BufferedPublisher = container.buffered()
    recorder = (
        Recorder(
            job.record_dir, rotate_bytes=settings.record_rotate_mb << 20, rotate_s=settings.record_rotate_s
        )
        if job.record_dir is not None
        else None
    )
    result = IngestResult()
    stop = stop or _stop_on_signals()

    def sink(raw: bytes, recv_ms: int) -> None:
        result.frames += 1
        buffered.push(raw, recv_ms)
        if recorder is not None:
            recorder.write(raw, recv_ms)

    async def flush() -> None:
        await buffered.flush()
        if recorder is not None:
            recorder.flush()

    async def accept(body: bytes, recv_ms: int, provider: str) -> str:
        entry = await publisher.publish_signal(body, recv_ms, provider)
        result.signals += 1
        if recorder is not None:
            recorder.write(body, recv_ms)
            recorder.flush()
        return entry.decode()

    pump = asyncio.create_task(buffered.run())
    server: uvicorn.Server | None = None
    serving: asyncio.Task[None] | None = None
    feed: asyncio.Task[None] | None = None
    try:
        if job.listen is not None:
            endpoint = SignalEndpointConfig(
                keys=keys,
                max_skew_ms=settings.signal_max_skew_ms,
                max_body_bytes=settings.signal_max_body_bytes,
            )
            app = signal_app(endpoint, accept=accept, clock=clock)
            host, port = job.listen
            server = uvicorn.Server(
                uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
            )
            serving = asyncio.create_task(server.serve())
            log.info("signals_listening", host=host, port=port, providers=sorted(keys))
        if job.replay is not None:
            feed = asyncio.create_task(
                ReplayFeed(job.replay, speed=job.speed, clock=clock, retime=job.retime).run(sink, flush)
            )
        elif job.token_ids:
            live = LiveFeed(
                job.market_ws_url, list(job.token_ids), clock=clock, rng=container.rng(),
                stale_data_s=settings.stale_data_s, connect=connect,
            )  # fmt: skip
            feed = asyncio.create_task(live.run(sink))
        await _until_done(stop, feed, serving, job.duration_s)
    finally:
        if server is not None and serving is not None:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await serving
        await cancel_and_wait(feed)
        try:
            await buffered.flush()
        finally:
            await cancel_and_wait(pump)
            if recorder is not None:
                recorder.close()
                result.record_files = list(recorder.files)
            await client.aclose()
    result.entries = publisher.published
    log.info("ingest_done", frames=result.frames, entries=result.entries, signals=result.signals)
    return result


async def _until_done(
    stop: asyncio.Event,
    feed: asyncio.Task[None] | None,
    serving: asyncio.Task[None] | None,
    duration_s: float | None,
) -> None:
    """Until stopped or out of time; a replay without an endpoint also ends with its file. A feed
    or a server that failed raises here."""
    stopped = asyncio.create_task(stop.wait())
    pending: set[asyncio.Task[Any]] = {t for t in (stopped, feed, serving) if t is not None}
    loop = asyncio.get_running_loop()
    deadline = None if duration_s is None else loop.time() + duration_s
    try:
        while True:
            timeout = None if deadline is None else max(deadline - loop.time(), 0.0)
            done, pending = await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done or stopped in done:
                return
            for task in done:
                task.result()
            if serving is None or serving in done:
                return
    finally:
        stopped.cancel()


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (where the loop can install handlers)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    return stop
