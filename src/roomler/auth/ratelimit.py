"""Counting attempts per key (an account, a client address) in a sliding window.

An attempt is counted *before* the expensive check (the password hash), in the same
atomic step that checks the limit: N parallel requests cannot all pass a check that none
of them has recorded yet. A login that succeeds is then forgotten (`release`), so only
failures stay in the window. With several nodes the windows live in Redis and a Lua
script does check-and-count in one step, so the limit holds across nodes; while Redis
cannot be reached, each node counts on its own (a limit per node is still a limit).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Beyond this many keys in memory, windows that have emptied are swept.
SWEEP_ABOVE_KEYS = 10_000


@dataclass(frozen=True)
class Attempt:
    """One counted attempt, or a refusal (`retry_after` seconds > 0, nothing counted)."""

    keys: tuple[str, ...]
    member: str
    retry_after: int = 0


class AttemptLimiter(Protocol):
    async def acquire(self, keys: Sequence[str]) -> Attempt:
        """Count an attempt on every key, or refuse it if any key is at the limit."""
        ...

    async def release(self, attempt: Attempt) -> None:
        """Forget a counted attempt (a login that succeeded)."""
        ...

    async def close(self) -> None: ...


def _seconds(wait: float) -> int:
    return int(wait) + 1 if wait > 0 else 0


@dataclass
class LocalLimiter:
    """In this process. Check-and-count never awaits, so it is atomic on the event loop."""

    max_attempts: int = 10
    window_secs: float = 60.0
    _windows: dict[str, deque[tuple[float, str]]] = field(default_factory=dict)

    async def acquire(self, keys: Sequence[str]) -> Attempt:
        return self.acquire_now(keys, time.monotonic())

    def acquire_now(self, keys: Sequence[str], now: float) -> Attempt:
        if len(self._windows) > SWEEP_ABOVE_KEYS:
            self.sweep(now)
        wait = 0.0
        for key in keys:
            window = self._prune(key, now)
            if len(window) >= self.max_attempts:
                wait = max(wait, window[0][0] + self.window_secs - now)
        member = secrets.token_hex(8)
        if wait > 0:
            return Attempt(tuple(keys), member, _seconds(wait))
        for key in keys:
            self._windows[key].append((now, member))
        return Attempt(tuple(keys), member)

    async def release(self, attempt: Attempt) -> None:
        for key in attempt.keys:
            window = self._windows.get(key)
            if window is not None:
                for entry in window:
                    if entry[1] == attempt.member:
                        window.remove(entry)
                        break

    async def close(self) -> None:
        self._windows.clear()

    def _prune(self, key: str, now: float) -> deque[tuple[float, str]]:
        window = self._windows.setdefault(key, deque())
        while window and window[0][0] <= now - self.window_secs:
            window.popleft()
        return window

    def sweep(self, now: float) -> None:
        """Forget keys whose attempts have all left the window."""
        stale = [k for k, w in self._windows.items() if not w or w[-1][0] <= now - self.window_secs]
        for key in stale:
            del self._windows[key]


# KEYS: the windows (sorted sets scored by milliseconds). ARGV: window ms, limit, member.
# Returns 0 when counted, else the milliseconds until the fullest key has room again.
# Redis's own clock (TIME) so that nodes with skewed clocks share one window.
_ACQUIRE = """
local now_time = redis.call('TIME')
local now = tonumber(now_time[1]) * 1000 + math.floor(tonumber(now_time[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local wait = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
if wait > 0 then
  return wait
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, window)
end
return 0
"""


class RedisLimiter:
    """The same windows in Redis, shared by every node; `fallback` while Redis is away."""

    def __init__(self, url: str, prefix: str, fallback: LocalLimiter) -> None:
        self.redis = Redis.from_url(
            url, decode_responses=True, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        self.prefix = prefix
        self.fallback = fallback
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._redis_down = False

    async def acquire(self, keys: Sequence[str]) -> Attempt:
        member = secrets.token_hex(8)
        window_ms = int(self.fallback.window_secs * 1000)
        names = [self.prefix + key for key in keys]
        try:
            wait_ms = await self._acquire(
                keys=names, args=[window_ms, self.fallback.max_attempts, member]
            )
        except (RedisError, OSError) as exc:
            self._went_down(exc)
            return await self.fallback.acquire(keys)
        self._redis_down = False
        return Attempt(tuple(keys), member, _seconds(int(wait_ms) / 1000))

    async def release(self, attempt: Attempt) -> None:
        await self.fallback.release(attempt)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in attempt.keys:
                    pipe.zrem(self.prefix + key, attempt.member)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._went_down(exc)

    async def close(self) -> None:
        await self.redis.aclose()

    def _went_down(self, exc: BaseException) -> None:
        if not self._redis_down:
            logger.warning("attempt limiter: Redis unreachable (%s); counting on this node", exc)
        self._redis_down = True


def create_limiter(
    max_attempts: int, window_secs: float, redis_url: str | None, prefix: str
) -> AttemptLimiter:
    local = LocalLimiter(max_attempts, window_secs)
    if redis_url is None:
        return local
    return RedisLimiter(redis_url, prefix, local)
