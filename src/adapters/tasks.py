"""Stopping asyncio tasks for certain.

`task.cancel()` once is not always enough on Python 3.11: when a cancellation races a timeout that
expires at the same moment inside `asyncio.timeout` (redis-py reads replies under one), the timeout
wins and the cancellation is lost (CPython gh-102780, fixed in 3.12); a retrying caller then carries
on as if never asked to stop. A replay feed that swallowed its cancel kept `ingest` running to the end
of its file after SIGTERM. So a task is cancelled again until it has ended.
"""

from __future__ import annotations

import asyncio
from typing import Any

from polysnipe.adapters.logs import get_logger

__all__ = ["cancel_and_wait"]

log = get_logger("polysnipe.tasks")


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None, retry_s: float = 0.2) -> None:
    """Cancel every task (None and finished ones are skipped) and wait until each has ended,
    cancelling again every `retry_s` a task that has not. A task that ended with an error is logged,
    not raised: it was being stopped, and the caller is cleaning up."""
    given = [t for t in tasks if t is not None]
    pending = {t for t in given if not t.done()}
    while pending:
        for running in pending:
            running.cancel()
        _, pending = await asyncio.wait(pending, timeout=retry_s)
    for task in given:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            log.warning("task_failed_while_stopping", task=task.get_name(), error=repr(error)[:300])
