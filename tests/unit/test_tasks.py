"""cancel_and_wait stops a task even when its first cancellation is lost (CPython gh-102780)."""

from __future__ import annotations

import asyncio

from polysnipe.adapters.tasks import cancel_and_wait


async def _swallows_first_cancel(progress: list[str]) -> None:
    """What a retrying client does when a cancel turned into its own timeout: carry on."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        progress.append("swallowed")
    await asyncio.sleep(3600)


def test_a_task_that_lost_its_cancel_is_cancelled_again() -> None:
    async def go() -> tuple[list[str], bool]:
        progress: list[str] = []
        task = asyncio.create_task(_swallows_first_cancel(progress))
        await asyncio.sleep(0)
        await asyncio.wait_for(cancel_and_wait(task, retry_s=0.01), timeout=5)
        return progress, task.cancelled()

    progress, cancelled = asyncio.run(go())
    assert progress == ["swallowed"]
    assert cancelled


def test_none_finished_and_failed_tasks_are_fine() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    async def go() -> bool:
        done = asyncio.create_task(asyncio.sleep(0))
        failed = asyncio.create_task(fails())
        await asyncio.sleep(0.01)
        await cancel_and_wait(None, done, failed)
        return done.done() and failed.done()

    assert asyncio.run(go())
