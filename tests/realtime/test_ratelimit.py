"""The per-connection message rate limiter (realtime/ratelimit.py)."""

from __future__ import annotations

import pytest

from roomler.realtime.ratelimit import MessageRateLimiter, Verdict


def test_bucket_allows_the_burst_then_the_rate() -> None:
    limiter = MessageRateLimiter(rate=50, burst=100, flood_close_secs=10, now=0.0)
    assert [limiter.check(0.0) for _ in range(100)] == [Verdict.ALLOW] * 100
    assert limiter.check(0.0) is Verdict.LIMIT
    assert limiter.check(0.02) is Verdict.ALLOW  # one token per 20 ms
    assert limiter.check(0.02) is Verdict.LIMIT
    assert [limiter.check(10.0) for _ in range(100)] == [Verdict.ALLOW] * 100  # refilled


def test_ten_seconds_of_flooding_closes() -> None:
    limiter = MessageRateLimiter(rate=50, burst=100, flood_close_secs=10, now=0.0)
    now = 0.0
    verdicts = []
    while now < 12.0:  # 200 messages a second
        verdicts.append((now, limiter.check(now)))
        now = round(now + 0.005, 3)
    first_close = next(t for t, v in verdicts if v is Verdict.CLOSE)
    first_limit = next(t for t, v in verdicts if v is Verdict.LIMIT)
    assert first_limit == pytest.approx(0.665, abs=0.01)
    assert first_close == pytest.approx(first_limit + 10, abs=0.01)


def test_a_quiet_second_ends_the_flood() -> None:
    def verdicts(times: list[float]) -> list[Verdict]:
        limiter = MessageRateLimiter(rate=0.001, burst=1, flood_close_secs=3, now=0.0)
        assert limiter.check(0.0) is Verdict.ALLOW  # every later message is limited
        return [limiter.check(t) for t in times]

    # Limited messages at most 1 s apart form one flood, closed after 3 s.
    assert verdicts([0.5, 1.4, 2.3, 3.2, 3.6]) == [Verdict.LIMIT] * 4 + [Verdict.CLOSE]
    # A gap of more than a second starts a new flood at 2.5.
    assert verdicts([0.5, 1.4, 2.5, 3.4, 4.3, 5.2, 5.4]) == [Verdict.LIMIT] * 7


def test_limiter_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        MessageRateLimiter(rate=0, burst=1, flood_close_secs=1, now=0)
