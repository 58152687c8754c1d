"""What `polysnipe ingest` reads and writes besides the bus: the live market channel, a recording
replayed, and the recorder that turns what arrives into backtest data.

Every frame is handed on as bytes exactly as it arrived (`FrameSink(raw, recv_ms)`): the live feed
does not parse, the replay does not normalize. A recording is the backtest's events format, one
frame per line, so `--record` output replays through `polysnipe backtest --events` and through
`ingest --replay` unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final

import msgspec

from polysnipe.adapters.clob.market_data import market_subscription
from polysnipe.adapters.clob.retry import RetryPolicy
from polysnipe.adapters.clob.websocket import Connect, ReconnectingSocket, ws_connect
from polysnipe.adapters.logs import get_logger
from polysnipe.adapters.tasks import cancel_and_wait
from polysnipe.core.ports import Clock, Rng

__all__ = ["FrameSink", "LiveFeed", "Recorder", "ReplayFeed", "one_line"]

log = get_logger("polysnipe.ingest")

#: (raw bytes as received, receive time in epoch ms)
FrameSink = Callable[[bytes, int], None]

_LINE_BREAKS: Final = bytes.maketrans(b"\r\n", b"  ")


def one_line(raw: bytes) -> bytes:
    """A frame as one JSON line. JSON strings cannot hold a raw line break, so one can only be
    whitespace between tokens: replacing it by a space keeps the same JSON (and a frame that was not
    JSON stays as malformed as it was)."""
    return raw.translate(_LINE_BREAKS) if b"\n" in raw or b"\r" in raw else raw


class Recorder:
    """Appends frames as JSON lines to `<dir>/events-<UTC start>-<n>.jsonl`, a new file past
    `rotate_bytes` or `rotate_s`. Names sort in time order; each file is a valid events file."""

    def __init__(self, directory: Path, *, rotate_bytes: int, rotate_s: float) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._dir = directory
        self._rotate_bytes = rotate_bytes
        self._rotate_s = rotate_s
        self._handle: BinaryIO | None = None
        self._opened = 0.0
        self._size = 0
        self.files: list[Path] = []
        self.lines = 0

    def _open(self) -> BinaryIO:
        self.close()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self._dir / f"events-{stamp}-{len(self.files) + 1:04d}.jsonl"
        self._handle = handle = path.open("ab")
        self.files.append(path)
        self._opened = time.monotonic()
        self._size = 0
        log.info("recording_to", path=str(path))
        return handle

    def write(self, raw: bytes, recv_ms: int) -> None:
        handle = self._handle
        if (
            handle is None
            or self._size >= self._rotate_bytes
            or time.monotonic() - self._opened >= self._rotate_s
        ):
            handle = self._open()
        line = one_line(raw) + b"\n"
        handle.write(line)
        self._size += len(line)
        self.lines += 1

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class _Stamp(msgspec.Struct, gc=False):
    timestamp: str | int | None = None


_stamp_one = msgspec.json.Decoder(_Stamp)
_stamp_many = msgspec.json.Decoder(list[_Stamp])


def _line_ts(line: bytes) -> int | None:
    """The venue time of a line (its first message's), for pacing only; None when unreadable."""
    try:
        head = line.lstrip()[:1]
        stamps = _stamp_many.decode(line) if head == b"[" else [_stamp_one.decode(line)]
        ts = stamps[0].timestamp if stamps else None
        return (
            int(ts)
            if isinstance(ts, int) or (isinstance(ts, str) and ts.isascii() and ts.isdigit())
            else None
        )
    except (msgspec.DecodeError, ValueError, RecursionError, IndexError):
        return None


def retimed(line: bytes, offset_ms: int) -> bytes:
    """`line` with every message's `timestamp` moved by `offset_ms` (re-encoded compactly); the line
    unchanged when it is not JSON or holds no timestamp (the engine dead-letters what it cannot use)."""
    try:
        doc = msgspec.json.decode(line)
    except (msgspec.DecodeError, RecursionError):
        return line
    messages = doc if isinstance(doc, list) else [doc]
    moved = False
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        ts = msg.get("timestamp")
        if isinstance(ts, str) and ts.isascii() and ts.isdigit() and len(ts) <= 16:
            msg["timestamp"] = str(int(ts) + offset_ms)
            moved = True
        elif isinstance(ts, int) and not isinstance(ts, bool) and 0 <= ts < 1 << 53:
            msg["timestamp"] = ts + offset_ms
            moved = True
    return msgspec.json.encode(doc) if moved else line


class ReplayFeed:
    """A JSON-lines recording fed line by line as if it arrived now.

    `speed` 0 sends as fast as the sink takes it; otherwise the gaps between the lines' venue
    timestamps are slept through, divided by `speed` (lines out of order are sent at once). Lines go
    out in file order, in batches of `batch` between yields to the event loop.

    `retime` moves every message's venue timestamp so the recording starts now: a live engine's
    freshness checks (the age of a book) then see a replay as the live feed it stands in for. The
    lines are then re-encoded (same content, compact JSON) instead of sent byte for byte.
    """

    def __init__(
        self, path: Path, *, speed: float, clock: Clock, batch: int = 1_000, retime: bool = False
    ) -> None:
        self._path = path
        self._speed = speed
        self._clock = clock
        self._batch = batch
        self._retime = retime
        self.lines = 0

    async def run(self, sink: FrameSink, flush: Callable[[], Awaitable[None]]) -> None:
        first_ts: int | None = None
        offset: int | None = None
        started = time.monotonic()
        pending = 0
        with self._path.open("rb") as f:
            for line in f:
                if line.isspace():
                    continue
                raw = line.rstrip(b"\r\n")
                if self._retime:
                    ts = _line_ts(raw)
                    if ts is not None and offset is None:
                        offset = self._clock.now_ms() - ts
                    if offset is not None:
                        raw = retimed(raw, offset)
                if self._speed > 0:
                    ts = _line_ts(raw)
                    if ts is not None:
                        if first_ts is None:
                            first_ts = ts
                        due = started + (ts - first_ts) / 1000 / self._speed
                        wait = due - time.monotonic()
                        if wait > 0:
                            await flush()
                            pending = 0
                            await asyncio.sleep(wait)
                sink(raw, self._clock.now_ms())
                self.lines += 1
                pending += 1
                if pending >= self._batch:
                    await flush()
                    pending = 0
        await flush()


class LiveFeed:
    """The market channel for `token_ids`, every frame to the sink as received.

    One ReconnectingSocket per `max_tokens` tokens (PING every 10 s, reconnect with jittered backoff).
    Resync is the venue's: each (re)subscription brings a fresh book dump, appended like any frame.
    A connection that stays open and answers PING but sends no market data for `stale_data_s` is
    reopened, which resubscribes and so resyncs its books.
    """

    def __init__(
        self,
        url: str,
        token_ids: Sequence[str],
        *,
        clock: Clock,
        rng: Rng,
        stale_data_s: float,
        max_tokens: int = 200,
        connect: Connect | None = None,
        ping_interval_s: float = 10.0,
        stale_after_s: float = 30.0,
    ) -> None:
        self._url = url
        self._groups = [list(token_ids[i : i + max_tokens]) for i in range(0, len(token_ids), max_tokens)]
        self._clock = clock
        self._rng = rng
        self._stale_data_s = stale_data_s
        self._connect = connect or ws_connect
        self._ping_interval_s = ping_interval_s
        self._stale_after_s = stale_after_s
        self.frames = 0
        self.reopened = 0

    async def run(self, sink: FrameSink) -> None:
        """Until cancelled."""
        await asyncio.gather(*(self._group(i, tokens, sink) for i, tokens in enumerate(self._groups)))

    async def _group(self, index: int, tokens: list[str], sink: FrameSink) -> None:
        last = [time.monotonic()]

        def handle(frame: str | bytes, now_ms: int) -> None:
            last[0] = time.monotonic()
            self.frames += 1
            # websockets hands text frames as str: its UTF-8 is the bytes the venue sent
            sink(frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else frame, now_ms)

        async def on_open(connects: int) -> None:
            last[0] = time.monotonic()
            log.info("market_ws_open", connection=index, connects=connects, tokens=len(tokens))

        while True:
            socket = ReconnectingSocket(
                self._url,
                market_subscription(tokens, custom_feature_enabled=True),
                handle=handle,
                on_open=on_open,
                on_lost=lambda reason: log.warning("market_ws_lost", connection=index, reason=reason),
                on_error=lambda frame, exc: log.error(
                    "market_ws_error", connection=index, error=repr(exc)[:300]
                ),
                ping_interval_s=self._ping_interval_s,
                stale_after_s=self._stale_after_s,
                policy=RetryPolicy(base_s=0.5, cap_s=30.0),
                clock=self._clock,
                rng=self._rng,
                connect=self._connect,
                sleep=asyncio.sleep,
            )
            task = asyncio.create_task(socket.run())
            try:
                while not task.done():
                    await asyncio.sleep(min(1.0, self._stale_data_s / 4))
                    if time.monotonic() - last[0] > self._stale_data_s:
                        log.warning("market_ws_silent", connection=index, seconds=self._stale_data_s)
                        self.reopened += 1
                        break
            finally:
                await cancel_and_wait(task)
            last[0] = time.monotonic()
