"""What stands between the network and the venue: the request-body limit (a larger body is answered
413 before the rest of it is read), the texts of injected fault statuses, and how a lost answer
looks on the wire (a 5xx, or a response started and never finished: a dropped connection)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polysnipe.adapters.sim.clob import render
from polysnipe.adapters.sim.clob.config import Faults
from polysnipe.adapters.sim.clob.errors import ERRORS, VenueError

__all__ = ["BodyLimit", "fault_text", "lost_answer"]


class BodyLimit:
    """Reads each HTTP request body, at most `limit` bytes of it, before the app runs; a larger one is
    answered 413 at once and the rest is never read."""

    __slots__ = ("_app", "_limit", "_refused")

    def __init__(self, app: ASGIApp, limit: int, refused: Callable[[str, str], None]) -> None:
        self._app = app
        self._limit = limit
        self._refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = [v for k, v in scope["headers"] if k == b"content-length"]
        if declared and not (declared[0].isdigit() and len(declared[0]) <= 18):
            await render.error_response(VenueError(400, ERRORS["invalid_payload"]))(scope, receive, send)
            return
        if declared and int(declared[0]) > self._limit:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before sending its body: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # after the body: wait for the disconnect, as a server would
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self._app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._refused(scope["method"], scope["path"])
        response = render.error_response(VenueError(413, ERRORS["body_too_large"]))
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


class _DroppedConnection(Response):
    """An answer started and never finished: the server then closes the connection, which the caller
    sees as a connection dropped after its request was sent."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1")],
            }
        )


def fault_text(status: int) -> str:
    if status == 429:
        return ERRORS["rate_limited"]
    if status == 425:
        return ERRORS["restarting"]
    return ERRORS["internal"]


def lost_answer(faults: Faults) -> Response:
    if faults.answer_lost_status:
        return render.error_response(
            VenueError(faults.answer_lost_status, fault_text(faults.answer_lost_status))
        )
    return _DroppedConnection()
