"""Sign-up: the policy (open | invite | closed), a limit per address, bounded hashing."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.app import create_app
from roomler.auth.passwords import HashingBusy, HashingPool
from roomler.config import Settings


def body(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": f"{name}@example.com",
        "username": name,
        "display_name": name.title(),
        "password": "correct horse battery",
        **extra,
    }


@pytest.fixture
async def serve(settings: Settings) -> AsyncIterator[Any]:
    """`await serve(signup="closed", ...)` -> (app, client) with those auth settings."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**auth: Any) -> tuple[Any, httpx.AsyncClient]:
            configured = settings.model_copy(update={"auth": settings.auth.model_copy(update=auth)})
            application = create_app(configured)
            await stack.enter_async_context(application.router.lifespan_context(application))
            transport = httpx.ASGITransport(app=application)
            client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            await stack.enter_async_context(client)
            return application, client

        yield start


async def test_closed_refuses_every_registration(serve: Any) -> None:
    _, client = await serve(signup="closed")
    response = await client.post("/api/auth/register", json=body("nobody"))
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "message": "Sign-up is closed on this server"}


async def test_invite_refuses_without_a_valid_invitation(serve: Any) -> None:
    _, client = await serve(signup="invite")
    missing = await client.post("/api/auth/register", json=body("uninvited"))
    assert missing.status_code == 403 and "invitation" in missing.json()["message"]
    # No invitation exists until invitation links do (issue 18): every code is refused.
    made_up = await client.post("/api/auth/register", json=body("guesser", invite_code="x1"))
    assert made_up.status_code == 403 and "not valid" in made_up.json()["message"]


class OneInvitation:
    """What issue 18's invitation links plug in: here, a single code usable once."""

    def __init__(self, code: str) -> None:
        self.code: str | None = code

    async def redeem(self, session: AsyncSession, code: str, email: str) -> bool:
        if code != self.code:
            return False
        self.code = None
        return True


async def test_invite_admits_a_code_the_invitations_accept(serve: Any) -> None:
    app, client = await serve(signup="invite")
    app.state.ctx.invitations = OneInvitation("welcome")
    invited = await client.post("/api/auth/register", json=body("invited", invite_code="welcome"))
    assert invited.status_code == 201, invited.text
    again = await client.post("/api/auth/register", json=body("second", invite_code="welcome"))
    assert again.status_code == 403


async def test_registrations_are_limited_per_client_address(serve: Any) -> None:
    _, client = await serve(signup_per_address=3)
    for n in range(3):
        assert (await client.post("/api/auth/register", json=body(f"user{n}"))).status_code == 201
    limited = await client.post("/api/auth/register", json=body("user3"))
    assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
    assert 0 < int(limited.headers["retry-after"]) <= 3600


async def test_a_full_hashing_pool_answers_503_with_retry_after(serve: Any) -> None:
    app, client = await serve(hash_workers=1, hash_queue=0)
    release = threading.Event()
    # Another request's hash holds the only worker.
    holder = asyncio.create_task(app.state.ctx.hashing.run(release.wait, 10))
    await asyncio.sleep(0)
    busy = await client.post("/api/auth/register", json=body("waiting"))
    login = await client.post("/api/auth/login", json={"username": "x", "password": "y"})
    release.set()
    await holder
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert busy.json()["error"] == "unavailable"
    assert login.status_code == 503
    assert (await client.post("/api/auth/register", json=body("waiting"))).status_code == 201


async def test_hashing_pool_runs_at_most_workers_and_queues_at_most_queue() -> None:
    pool = HashingPool(workers=2, queue=1)
    release = threading.Event()
    running = [asyncio.create_task(pool.run(release.wait, 10)) for _ in range(3)]
    await asyncio.sleep(0)
    with pytest.raises(HashingBusy):
        await pool.run(release.wait, 10)
    release.set()
    assert await asyncio.gather(*running) == [True, True, True]
    assert await pool.run(sum, [1, 2]) == 3  # room again once they finished
    pool.close()
