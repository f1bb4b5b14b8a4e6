"""Counting failed logins per key (username, client address) in a sliding window."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class FailureLimiter:
    max_failures: int = 10
    window_secs: float = 60.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, keys: list[str], now: float | None = None) -> int:
        """Seconds until every key is below the limit again; 0 when none is limited."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        for key in keys:
            times = self._prune(key, now)
            if len(times) >= self.max_failures:
                wait = max(wait, times[0] + self.window_secs - now)
        return int(wait) + 1 if wait > 0 else 0

    def record_failure(self, keys: list[str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._failures) > 10_000:
            self.sweep(now)
        for key in keys:
            self._prune(key, now).append(now)

    def _prune(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window_secs:
            times.popleft()
        return times

    def sweep(self, now: float | None = None) -> None:
        """Forget keys whose failures have all left the window."""
        now = time.monotonic() if now is None else now
        for key in [
            k for k, t in self._failures.items() if not t or t[-1] <= now - self.window_secs
        ]:
            del self._failures[key]
