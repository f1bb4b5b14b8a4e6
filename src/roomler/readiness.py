"""`GET /ready`: whether this node can take traffic now, check by check.

`/health` stays the liveness probe (the process answers). `/ready` answers 200 only when
every check passes, else 503 with the reason of each:

- `database`: it answers, and this node's migrations are applied (a database at a
  revision this node does not know is newer: another node was upgraded first; ready);
- `sfu`: at least one SFU worker process is alive. The worker pool starts lazily, on the
  first conference, so a server nobody calls never forks a worker; the first `/ready`
  starts it (in the background: that probe answers 503 "starting"), so a node behind a
  load balancer that probes readiness has its workers up before the first call, and a
  pool that cannot start (ports in use, a bad listen address) shows here instead of at
  the first call;
- `redis` (several nodes only): the node's link to Redis is up;
- and never while draining (shutting down), whatever the checks say.

Each check is a small async callable answering None (fine) or the reason it is not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from roomler.db.migrate import current_revisions, migration_state

logger = logging.getLogger(__name__)

Check = Callable[[], Awaitable[str | None]]
CHECK_TIMEOUT_SECS = 3.0
OK = "ok"


class Readiness:
    def __init__(self, checks: dict[str, Check]) -> None:
        self.checks = checks
        self.draining = False

    def drain(self) -> None:
        """From now on not ready: the node is shutting down."""
        self.draining = True

    async def report(self) -> tuple[bool, dict[str, Any]]:
        """(ready, body): every check runs, concurrently, each bounded in time."""
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[name]) for name in names))
        checks = {name: reason or OK for name, reason in zip(names, results, strict=True)}
        ready = not self.draining and all(reason is None for reason in results)
        status = "draining" if self.draining else "ready" if ready else "not_ready"
        return ready, {"status": status, "checks": checks}

    async def _run(self, check: Check) -> str | None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECS):
                return await check()
        except TimeoutError:
            return f"no answer within {CHECK_TIMEOUT_SECS:g} s"
        except Exception as exc:  # a probe reports, it never fails the request
            logger.warning("readiness check %r failed", check, exc_info=True)
            return f"check failed: {type(exc).__name__}"


def database_check(engine: AsyncEngine) -> Check:
    async def database() -> str | None:
        try:
            async with engine.connect() as connection:
                revisions = await connection.run_sync(current_revisions)
        except Exception as exc:
            return f"unreachable: {type(exc).__name__}"
        return migration_state(revisions)

    return database


class MediaWorkers(Protocol):
    """What the SFU check needs of `ConferenceMedia`."""

    @property
    def pool_started(self) -> bool: ...

    @property
    def live_workers(self) -> int: ...

    async def pool(self) -> Any: ...


class SfuCheck:
    """Ready when a worker is alive; the first call starts the lazily started pool."""

    def __init__(self, media: MediaWorkers) -> None:
        self.media = media
        self._starting: asyncio.Task[Any] | None = None

    async def __call__(self) -> str | None:
        if self.media.pool_started:
            return (
                None
                if self.media.live_workers
                else "no live SFU worker (a replacement is starting)"
            )
        if self._starting is not None and not self._starting.done():
            return "starting the SFU workers"
        failure = self._last_failure()
        self._starting = asyncio.create_task(self.media.pool())
        if failure is not None:
            return f"the SFU workers did not start: {failure}; trying again"
        return "starting the SFU workers"

    def _last_failure(self) -> str | None:
        task = self._starting
        if task is None or task.cancelled() or task.exception() is None:
            return None
        return str(task.exception())


def redis_check(link_up: Callable[[], bool]) -> Check:
    async def redis() -> str | None:
        return None if link_up() else "Redis is unreachable; reconnecting"

    return redis
