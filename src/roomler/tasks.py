"""`BackgroundTasks`: coroutines started without waiting for them, kept until they end.

asyncio keeps only a weak reference to a running task, so one started and forgotten can
be collected mid-flight; and an exception nobody awaits is reported late or not at all.
This set holds each task until it is done and logs a failure at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any


class BackgroundTasks:
    def __init__(self, logger: logging.Logger, failure: str) -> None:
        self._logger = logger
        self._failure = failure  # logged when a task raises, with its traceback
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._logger.error(self._failure, exc_info=task.exception())
