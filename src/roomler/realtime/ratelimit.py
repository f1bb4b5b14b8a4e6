"""Per-connection limit on incoming messages: a token bucket plus a flood verdict.

No I/O and no clock of its own: the caller passes `now` (monotonic seconds), so tests
can drive it deterministically.
"""

from __future__ import annotations

import enum

# A flood ends after this long without a limited message.
FLOOD_QUIET_SECS = 1.0


class Verdict(enum.Enum):
    ALLOW = "allow"
    LIMIT = "limit"  # drop the message and answer `rate_limited`
    CLOSE = "close"  # the connection kept flooding: close it (1008)


class MessageRateLimiter:
    """Allows `rate` messages per second on average and bursts of `burst`.

    A connection is *flooding* from its first limited message until it has sent no
    limited message for `FLOOD_QUIET_SECS`; flooding for `flood_close_secs` closes it.
    """

    __slots__ = (
        "rate",
        "burst",
        "flood_close_secs",
        "_tokens",
        "_updated",
        "_flood_started",
        "_last_limited",
    )

    def __init__(self, rate: float, burst: int, flood_close_secs: float, now: float) -> None:
        if rate <= 0 or burst < 1 or flood_close_secs <= 0:
            raise ValueError("rate and flood_close_secs must be positive, burst at least 1")
        self.rate = rate
        self.burst = float(burst)
        self.flood_close_secs = flood_close_secs
        self._tokens = float(burst)
        self._updated = now
        self._flood_started: float | None = None
        self._last_limited = 0.0

    def check(self, now: float) -> Verdict:
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return Verdict.ALLOW
        return self._limited(now)

    def _limited(self, now: float) -> Verdict:
        if self._flood_started is None or now - self._last_limited > FLOOD_QUIET_SECS:
            self._flood_started = now
        self._last_limited = now
        if now - self._flood_started >= self.flood_close_secs:
            return Verdict.CLOSE
        return Verdict.LIMIT
