"""ReconnectingSocket against a real local WebSocket server: no frame, no broken session and no
misbehaving callback can end the loop; only cancellation does."""

from __future__ import annotations

import asyncio
import random

import pytest
import websockets
from structlog.testing import capture_logs
from websockets.asyncio.server import ServerConnection, serve

from kit import until
from polysnipe.adapters.clob.retry import RetryPolicy
from polysnipe.adapters.clob.websocket import PING, PONG, ReconnectingSocket, ws_connect
from polysnipe.adapters.clock import WallClock


def test_the_loop_outlives_failing_frames_sessions_and_callbacks() -> None:
    handled: list[str | bytes] = []
    errors: list[tuple[str | bytes | None, str]] = []
    lost: list[str] = []
    subscriptions: list[str] = []

    def handle(frame: str | bytes, now_ms: int) -> None:
        if frame == "boom":
            raise RuntimeError("a bug in the owner")
        handled.append(frame)

    async def on_open(connects: int) -> None:
        if connects == 1:
            raise RuntimeError("catch-up failed")

    def on_error(frame: str | bytes | None, exc: Exception) -> None:
        errors.append((frame, str(exc)))
        raise ValueError("the alert sink is down too")  # logged, and the loop still goes on

    async def scenario() -> int:
        async def handler(ws: ServerConnection) -> None:
            subscriptions.append(str(await ws.recv()))
            for frame in ("a", "boom", PONG, "b"):
                await ws.send(frame)
            async for message in ws:
                if message == PING:
                    await ws.send(PONG)

        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            socket = ReconnectingSocket(
                f"ws://127.0.0.1:{port}",
                "subscribe",
                handle=handle,
                on_open=on_open,
                on_lost=lost.append,
                on_error=on_error,
                ping_interval_s=0.05,
                stale_after_s=1.0,
                policy=RetryPolicy(base_s=0.01, cap_s=0.02),
                clock=WallClock(),
                rng=random.Random(1),
                connect=ws_connect,
                sleep=asyncio.sleep,
            )
            task = asyncio.create_task(socket.run())
            await until(lambda: handled == ["a", "b"])
            task.cancel()
            return socket.errors

    with capture_logs() as logs:
        caught = asyncio.run(scenario())
    # the first session broke in on_open (reconnect); the second read past the frame that raised
    assert ["subscribe", "subscribe"] == subscriptions
    assert [(None, "catch-up failed"), ("boom", "a bug in the owner")] == errors
    assert 2 == caught
    assert lost and lost[0].startswith("error: RuntimeError")
    events = [e["event"] for e in logs]
    assert 1 == events.count("ws_session_failed")
    assert 2 == events.count("ws_error_callback_failed")


def test_a_frame_beyond_the_bound_closes_the_connection_instead_of_growing_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import polysnipe.adapters.clob.websocket as websocket

    monkeypatch.setattr(websocket, "MAX_FRAME_BYTES", 1_000)

    async def handler(conn: ServerConnection) -> None:
        await conn.send("x" * 999)
        await conn.send("x" * 1_001)
        await asyncio.sleep(1)

    async def body() -> tuple[int, type[BaseException]]:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with ws_connect(f"ws://127.0.0.1:{port}") as conn:
                first = await conn.recv()
                with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                    await conn.recv()
                return len(first), closed.type

    assert (999, websockets.exceptions.ConnectionClosedError) == asyncio.run(body())
