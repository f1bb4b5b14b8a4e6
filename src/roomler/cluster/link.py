"""`RedisLink`: one node's connection to Redis, and what happens when Redis goes away.

Commands go through one FIFO drained by one writer task, which sends whatever is
waiting as a single pipeline and waits for its replies before sending the next: Redis
therefore executes a node's commands (and the PUBLISHes inside its scripts) in the
order the node issued them, which keeps every connection's frames in order across
nodes, and a burst of broadcasts costs one round trip per batch, not per event.

The FIFO is bounded (`max_pending`). While Redis is unreachable nothing is queued at
all: `send` refuses, `call` raises `RedisUnavailable`, and callers fall back to this
node alone. The link logs one line when Redis goes, reconnects with exponential
backoff, and when it is back reloads the scripts, resubscribes and calls `on_up`
(which re-publishes this node's state) before logging one more line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError

from roomler.cluster.scripts import Script

logger = logging.getLogger(__name__)

# Commands sent in one pipeline at most.
MAX_BATCH = 512
# Reconnect delays: doubled after each failed attempt, up to the cap.
RECONNECT_FIRST_SECS = 0.2
RECONNECT_MAX_SECS = 5.0
# A command (or the connect) that gets no answer this long means Redis is gone.
SOCKET_TIMEOUT_SECS = 5.0
CONNECT_TIMEOUT_SECS = 2.0

Command = tuple[str | int, ...]


class RedisUnavailable(Exception):
    """Redis cannot be reached right now; the caller serves this node alone."""


@dataclass(slots=True)
class _Queued:
    command: Command
    future: asyncio.Future[Any] | None  # None: nobody waits for the reply


def redacted(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


class RedisLink:
    def __init__(
        self,
        url: str,
        channel: str,
        *,
        scripts: Iterable[Script],
        on_message: Callable[[str], None],
        on_up: Callable[[], Awaitable[None]],
        max_pending: int,
        name: str = "",
    ) -> None:
        self.url = url
        self.channel = channel
        self.scripts = tuple(scripts)
        self.max_pending = max_pending
        self.name = name
        self._on_message = on_message
        self._on_up = on_up
        self._queue: deque[_Queued] = deque()
        self._work: asyncio.Event = asyncio.Event()
        self._up = False
        self._ready = asyncio.Event()  # up, and `on_up` has finished
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._down_since: float | None = None
        self._overflowing = False
        self.dropped = 0  # commands refused because the queue was full
        self.commands_sent = 0  # commands written to Redis (PUBLISH, scripts, ...)
        self.messages_received = 0  # envelopes received on our channel

    def __repr__(self) -> str:
        return f"RedisLink({self.name or self.channel})"

    @property
    def up(self) -> bool:
        return self._up

    @property
    def pending(self) -> int:
        return len(self._queue)

    # --- issuing commands ------------------------------------------------------------------

    def send(self, *command: str | int) -> bool:
        """Queue a command whose reply nobody waits for; False when down or full."""
        return self._enqueue(command, None)

    async def call(self, *command: str | int) -> Any:
        """Run a command in order with the others and return its reply."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._enqueue(command, future):
            raise RedisUnavailable("Redis is unreachable" if not self._up else "queue full")
        return await future

    def _enqueue(self, command: Command, future: asyncio.Future[Any] | None) -> bool:
        if not self._up:
            return False
        if len(self._queue) >= self.max_pending:
            self.dropped += 1
            if not self._overflowing:
                self._overflowing = True
                logger.error(
                    "%r: %d Redis commands are waiting; dropping cross-node traffic until "
                    "Redis catches up",
                    self,
                    len(self._queue),
                )
            return False
        self._queue.append(_Queued(command, future))
        self._work.set()
        return True

    async def flushed(self, timeout: float) -> bool:
        """Wait until every queued command was answered (or Redis went away)."""
        deadline = time.monotonic() + timeout
        while self._up and (self._queue or self._work.is_set()):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, wait_secs: float = 0.0) -> None:
        """Connect in the background; wait up to `wait_secs` for the first connection."""
        if self._runner is not None:
            raise RuntimeError(f"{self!r} was already started")
        self._runner = asyncio.get_running_loop().create_task(self._run())
        if wait_secs > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait_secs)

    async def wait_ready(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self._closing = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._fail_queued()

    async def _run(self) -> None:
        delay = RECONNECT_FIRST_SECS
        while not self._closing:
            started = time.monotonic()
            try:
                await self._session()
            except (RedisError, OSError, RedisUnavailable) as exc:
                self._went_down(exc)
            if time.monotonic() - started > RECONNECT_MAX_SECS:
                delay = RECONNECT_FIRST_SECS  # it was up for a while: retry quickly
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECS)

    async def _session(self) -> None:
        """One connection to Redis, from connect to the first failure."""
        redis = Redis.from_url(
            self.url,
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),  # never resend: a resent PUBLISH delivers twice
            socket_timeout=SOCKET_TIMEOUT_SECS,
            socket_connect_timeout=CONNECT_TIMEOUT_SECS,
        )
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        tasks: list[asyncio.Task[None]] = []
        try:
            await redis.ping()
            for script in self.scripts:
                await redis.script_load(script.source)
            await pubsub.subscribe(self.channel)
            self._up = True
            self._overflowing = False
            loop = asyncio.get_running_loop()
            tasks = [
                loop.create_task(self._write_loop(redis)),
                loop.create_task(self._read_loop(pubsub)),
            ]
            try:
                await self._on_up()
            except (RedisError, OSError, RedisUnavailable):
                raise
            except Exception:
                logger.exception("%r: re-publishing this node's state failed", self)
            self._came_up()
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended the session
            raise RedisUnavailable("the connection ended")
        finally:
            self._up = False
            self._ready.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._fail_queued()
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):
                await redis.aclose()

    def _came_up(self) -> None:
        self._ready.set()
        if self._down_since is not None:
            logger.warning(
                "%r: Redis at %s is back after %.1f s; this node's state was re-published",
                self,
                redacted(self.url),
                time.monotonic() - self._down_since,
            )
            self._down_since = None
        else:
            logger.info("%r: connected to Redis at %s", self, redacted(self.url))

    def _went_down(self, exc: BaseException) -> None:
        if self._down_since is not None or self._closing:
            return
        self._down_since = time.monotonic()
        logger.error(
            "%r: Redis at %s is unreachable (%s); serving this node's connections only "
            "and reconnecting with backoff",
            self,
            redacted(self.url),
            exc or type(exc).__name__,
        )

    def _fail_queued(self) -> None:
        queued, self._queue = self._queue, deque()
        self._work.clear()
        for item in queued:
            if item.future is not None and not item.future.done():
                item.future.set_exception(RedisUnavailable("Redis went away"))

    # --- the two tasks of a session ----------------------------------------------------------

    async def _write_loop(self, redis: Redis) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._work.clear()
                await self._work.wait()
                continue
            batch = [queue.popleft() for _ in range(min(len(queue), MAX_BATCH))]
            pipe = redis.pipeline(transaction=False)
            for item in batch:
                pipe.execute_command(*item.command)
            try:
                results = await pipe.execute(raise_on_error=False)
            except BaseException as exc:
                for item in batch:
                    if item.future is not None and not item.future.done():
                        item.future.set_exception(RedisUnavailable(str(exc)))
                raise
            self.commands_sent += len(batch)
            self._resolve(batch, results)
            if not queue:
                self._overflowing = False

    def _resolve(self, batch: list[_Queued], results: list[Any]) -> None:
        reload = False
        for item, result in zip(batch, results, strict=True):
            if isinstance(result, NoScriptError):
                reload = True  # scripts were flushed: reconnect, which reloads them
            if item.future is None:
                if isinstance(result, ResponseError):
                    logger.error("%r: %s failed: %s", self, item.command[0], result)
            elif not item.future.done():
                if isinstance(result, Exception):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)
        if reload:
            raise RedisUnavailable("Redis lost our scripts")

    async def _read_loop(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is None or message.get("type") != "message":
                continue
            self.messages_received += 1
            try:
                self._on_message(message["data"])
            except Exception:
                logger.exception("%r: handling a message from Redis failed", self)
