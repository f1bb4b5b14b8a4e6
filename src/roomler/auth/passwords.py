"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106's second recommendation)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the timing of
# "unknown user" and "wrong password" alike.
_DUMMY_HASH = _hasher.hash("roomler-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class HashingBusy(Exception):
    """Every hashing slot is busy and the queue is full; try again in a moment."""


class HashingPool:
    """Password hashing bounded to the machine.

    An argon2id hash takes 64 MiB and a core for tens of milliseconds; run on the default
    thread pool (40 threads), 60 parallel registrations took the server from 173 MB to
    1.1 GB RSS and starved every other request. Here at most `workers` hashes run at once
    (one per core by default, on threads of their own: argon2-cffi releases the GIL), at
    most `queue` more wait, and beyond that `run` raises `HashingBusy` at once (the API
    answers 503 with Retry-After) instead of piling up memory and latency.
    """

    def __init__(self, workers: int, queue: int) -> None:
        self.workers = workers
        self.queue = queue
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="password-hash")
        self._admitted = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._admitted >= self.workers + self.queue:
            raise HashingBusy("password hashing is at capacity")
        self._admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._admitted -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def default_hash_workers() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
