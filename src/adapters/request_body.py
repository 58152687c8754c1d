"""The body of a request to one of our own HTTP services (the signing server, the signal endpoint),
read within a bound: what a caller may send is refused before it is buffered whole."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request

__all__ = ["read_body"]


async def read_body(request: Request, limit: int, refuse: Callable[[int, str], Exception]) -> bytes:
    """At most `limit` bytes of body; `refuse(status, reason)` is raised for a larger one (413, by
    its Content-Length before anything is read) and for a client gone before the end (400)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isascii() or not declared.isdecimal() or int(declared) > limit):
        raise refuse(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise refuse(413, f"body larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise refuse(400, "the client went away before its body was read") from None
    return b"".join(chunks)
