"""One long-lived CLOB WebSocket subscription that no frame and no error can stop.

Theory of operation: `ReconnectingSocket.run` connects, sends the subscription, pings (the venue's
text PING every 10 s, PROTOCOL.md 10.1) and reads with a staleness watchdog, until cancelled. What
can go wrong is split three ways, and none of them ends the task:

* a frame its owner cannot handle (a decode failure, an error in the owner's sink, a bug): the
  exception goes to the owner's `on_error` with the frame, and the next frame is read;
* the connection failing (closed, reset, silent for `stale_after_s`): `on_lost`, then a reconnect
  after jittered exponential backoff;
* anything else inside a session (an `on_open` that raised, an unexpected exception): logged, given
  to `on_error` without a frame, `on_lost`, and the same reconnect.

A callback that raises in turn is logged and otherwise ignored: the loop outlives its owner's bugs.
Only cancellation stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Final, Protocol

import websockets
from websockets.asyncio.client import connect as _websockets_connect

from polysnipe.adapters.clob.retry import RetryPolicy, backoff_s
from polysnipe.adapters.logs import get_logger
from polysnipe.core.messages import RaiseAlert
from polysnipe.core.ports import Clock, Rng

__all__ = ["PING", "PONG", "Connect", "Notices", "ReconnectingSocket", "WsConnection", "ws_connect"]

PING: Final = "PING"
PONG: Final = "PONG"

log = get_logger("polysnipe.clob.websocket")


class WsConnection(Protocol):
    """What the feeds need of a WebSocket connection (websockets' ClientConnection fits)."""

    async def send(self, message: str) -> None: ...

    async def recv(self) -> str | bytes: ...


Connect = Callable[[str], AbstractAsyncContextManager[WsConnection]]


#: the largest frame taken (book dumps of many tokens run to megabytes): a venue sending more closes
#: the connection (1009), which reconnects, rather than growing the process without bound
MAX_FRAME_BYTES: Final = 64 * 2**20


def ws_connect(url: str) -> AbstractAsyncContextManager[WsConnection]:
    """The production Connect. Protocol-level pings off: the venue speaks text PING/PONG."""
    return _websockets_connect(
        url, ping_interval=None, max_size=MAX_FRAME_BYTES, open_timeout=10, close_timeout=2
    )


#: the connection itself failed: reconnect without alarm (the venue drops sockets routinely)
_WS_ERRORS: Final = (OSError, TimeoutError, websockets.exceptions.WebSocketException)

#: (frame or None when the error was not about one frame, the exception)
OnError = Callable[[str | bytes | None, Exception], None]


class ReconnectingSocket:
    """One subscription: connect, subscribe, ping, read with a staleness watchdog, reconnect with
    jittered backoff until cancelled. See the module docstring for what happens on errors."""

    __slots__ = (
        "_clock",
        "_connect",
        "_handle",
        "_on_error",
        "_on_lost",
        "_on_open",
        "_ping_interval_s",
        "_policy",
        "_rng",
        "_sleep",
        "_stale_after_s",
        "_subscribe",
        "_url",
        "connects",
        "errors",
    )

    def __init__(
        self,
        url: str,
        subscribe: str,
        *,
        handle: Callable[[str | bytes, int], None],
        on_open: Callable[[int], Awaitable[None]],
        on_lost: Callable[[str], None],
        on_error: OnError,
        ping_interval_s: float,
        stale_after_s: float,
        policy: RetryPolicy,
        clock: Clock,
        rng: Rng,
        connect: Connect,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._url = url
        self._subscribe = subscribe
        self._handle = handle
        self._on_open = on_open
        self._on_lost = on_lost
        self._on_error = on_error
        self._ping_interval_s = ping_interval_s
        self._stale_after_s = stale_after_s
        self._policy = policy
        self._clock = clock
        self._rng = rng
        self._connect = connect
        self._sleep = sleep
        #: successful connections so far (the first is not a reconnect)
        self.connects = 0
        #: exceptions caught (frames that failed, sessions that broke other than by the network)
        self.errors = 0

    def _error(self, frame: str | bytes | None, exc: Exception) -> None:
        self.errors += 1
        try:
            self._on_error(frame, exc)
        except Exception:
            log.exception("ws_error_callback_failed", url=self._url)

    def _lost(self, reason: str) -> None:
        try:
            self._on_lost(reason)
        except Exception:
            log.exception("ws_lost_callback_failed", url=self._url, reason=reason)

    async def _ping(self, ws: WsConnection) -> None:
        while True:
            await self._sleep(self._ping_interval_s)
            await ws.send(PING)

    async def _session(self, ws: WsConnection) -> None:
        await ws.send(self._subscribe)
        self.connects += 1
        await self._on_open(self.connects)
        pinger = asyncio.create_task(self._ping(ws))
        handle, clock = self._handle, self._clock
        try:
            while True:
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancel that lands while a
                    # frame is ready, and a busy feed then never lets the socket close
                    async with asyncio.timeout(self._stale_after_s):
                        frame = await ws.recv()
                except TimeoutError:
                    self._lost("stale")
                    return
                if frame == PONG:
                    continue
                try:
                    handle(frame, clock.now_ms())
                except Exception as exc:
                    self._error(frame, exc)
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_WS_ERRORS):
                await pinger

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                async with self._connect(self._url) as ws:
                    attempt = 0
                    await self._session(ws)
            except _WS_ERRORS as exc:
                self._lost(f"disconnected: {exc!r}")
            except Exception as exc:
                # not the network: a callback or a bug broke the session; start a fresh one
                log.exception("ws_session_failed", url=self._url)
                self._error(None, exc)
                self._lost(f"error: {exc!r}")
            attempt += 1
            await self._sleep(backoff_s(attempt, self._policy, self._rng))


class Notices:
    """A socket stream's alerts and dead letters, handed to callbacks that may themselves fail: a
    failing callback is logged (`<name>_alert_callback_failed`, `<name>_dead_letter_failed`), never
    the end of the stream."""

    __slots__ = ("_clock", "_name", "_on_alert", "_on_malformed")

    def __init__(
        self,
        name: str,
        clock: Clock,
        on_alert: Callable[[RaiseAlert], None] | None,
        on_malformed: Callable[[str | bytes, str], None] | None,
    ) -> None:
        self._name = name
        self._clock = clock
        self._on_alert = on_alert
        self._on_malformed = on_malformed

    def alert(self, severity: str, code: str, message: str, **details: str) -> None:
        if self._on_alert is None:
            return
        try:
            self._on_alert(RaiseAlert(severity, code, message, self._clock.now_ms(), details=details))
        except Exception:
            log.exception(f"{self._name}_alert_callback_failed", code=code)

    def dead_letter(self, frame: str | bytes, reason: str) -> None:
        if self._on_malformed is None:
            return
        try:
            self._on_malformed(frame, reason)
        except Exception:
            log.exception(f"{self._name}_dead_letter_failed", reason=reason)
