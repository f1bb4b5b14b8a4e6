"""`BackgroundTasks`: started tasks are kept until they end, failures are logged at once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from roomler.tasks import BackgroundTasks


async def test_a_task_is_kept_until_it_ends_and_a_failure_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = BackgroundTasks(logging.getLogger("test.tasks"), "a test task failed")
    release = asyncio.Event()

    async def wait() -> None:
        await release.wait()

    async def fail() -> None:
        raise ValueError("boom")

    waiting = tasks.spawn(wait())
    failing = tasks.spawn(fail())
    assert len(tasks) == 2
    with caplog.at_level(logging.ERROR, logger="test.tasks"):
        await asyncio.wait({failing})
        await asyncio.sleep(0)  # the done callback runs on the next loop iteration
    assert len(tasks) == 1
    [record] = caplog.records
    assert record.getMessage() == "a test task failed"
    assert record.exc_info is not None and str(record.exc_info[1]) == "boom"
    release.set()
    await waiting
    await asyncio.sleep(0)
    assert len(tasks) == 0


async def test_cancel_all_cancels_without_logging(caplog: pytest.LogCaptureFixture) -> None:
    tasks = BackgroundTasks(logging.getLogger("test.tasks"), "a test task failed")
    task = tasks.spawn(asyncio.sleep(60))
    tasks.cancel_all()
    with caplog.at_level(logging.ERROR, logger="test.tasks"):
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)
    assert task.cancelled()
    assert len(tasks) == 0
    assert caplog.records == []
