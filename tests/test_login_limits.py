"""The login limiter: atomic counting, one window per account, trusted proxies only."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx

from roomler.auth.ratelimit import LocalLimiter
from tests.conftest import register
from tests.test_serve import RoomlerProcess

WRONG = {"password": "wrong-pass"}


async def test_parallel_wrong_logins_for_one_account_stop_at_the_limit(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "racer")
    replies = await asyncio.gather(
        *(client.post("/api/auth/login", json={"username": "racer", **WRONG}) for _ in range(40))
    )
    # Counted before the password check, in the same step as the limit check: 10, not 40.
    assert Counter(r.status_code for r in replies) == {401: 10, 429: 30}


async def test_username_and_email_share_one_window(client: httpx.AsyncClient) -> None:
    account = await register(client, "twonames")
    for _ in range(5):
        wrong = await client.post("/api/auth/login", json={"username": "TwoNames", **WRONG})
        assert wrong.status_code == 401
    for _ in range(5):
        wrong = await client.post("/api/auth/login", json={"email": account.email, **WRONG})
        assert wrong.status_code == 401
    for body in ({"email": account.email.upper()}, {"username": "twonames"}):
        locked = await client.post("/api/auth/login", json={**body, "password": account.password})
        assert locked.status_code == 429, body


async def test_a_successful_login_is_not_counted(client: httpx.AsyncClient) -> None:
    account = await register(client, "regular")
    right = {"username": "regular", "password": account.password}
    for _ in range(15):
        assert (await client.post("/api/auth/login", json=right)).status_code == 200
    for _ in range(10):
        wrong = await client.post("/api/auth/login", json={"username": "regular", **WRONG})
        assert wrong.status_code == 401
    assert (await client.post("/api/auth/login", json=right)).status_code == 429


async def test_local_limiter_window_slides() -> None:
    limiter = LocalLimiter(max_attempts=2, window_secs=10)
    assert limiter.acquire_now(["k"], 0).retry_after == 0
    assert limiter.acquire_now(["k"], 4).retry_after == 0
    refused = limiter.acquire_now(["k"], 5)
    assert refused.retry_after == 6  # the first attempt leaves the window at 10
    assert limiter.acquire_now(["k"], 10.5).retry_after == 0
    await limiter.release(limiter.acquire_now(["other"], 11))
    assert limiter.acquire_now(["other"], 11).retry_after == 0
    assert limiter.acquire_now(["other"], 11).retry_after == 0
    assert limiter.acquire_now(["other"], 11).retry_after > 0


def _wrong_logins_from_rotating_addresses(base: str, count: int) -> Counter[int]:
    """`count` wrong logins for different names, each claiming another X-Forwarded-For."""
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=base) as http:
        for n in range(count):
            reply = http.post(
                "/api/auth/login",
                json={"username": f"nobody{n}", **WRONG},
                headers={"X-Forwarded-For": f"203.0.113.{n + 1}"},
            )
            statuses[reply.status_code] += 1
    return statuses


def test_x_forwarded_for_is_ignored_unless_from_a_configured_proxy(
    tmp_path: Path, database_url: str
) -> None:
    server = RoomlerProcess(tmp_path, database_url)
    try:
        server.start()  # inside: a server that starts too slowly is still stopped
        # Loopback is not a trusted proxy by default: all 12 come from one address.
        assert _wrong_logins_from_rotating_addresses(server.base, 12) == {401: 10, 429: 2}
    finally:
        server.stop()
    server.env["ROOMLER__APP__FORWARDED_ALLOW_IPS"] = "127.0.0.1"
    try:
        server.start()
        # Behind a configured proxy, each forwarded address is counted on its own.
        assert _wrong_logins_from_rotating_addresses(server.base, 12) == {401: 12}
    finally:
        server.stop()
