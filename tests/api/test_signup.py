"""Sign-up: the policy (open | invite | closed), a limit per address, bounded hashing."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

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
    # A code no invitation link has is refused.
    made_up = await client.post("/api/auth/register", json=body("guesser", invite_code="x1"))
    assert made_up.status_code == 403 and "not valid" in made_up.json()["message"]


async def test_invite_admits_the_code_of_an_invitation_link(serve: Any) -> None:
    # The workspace's owner signed up while sign-up was open (or came from `roomler user create`).
    _, opened = await serve(signup="open")
    founder = await opened.post(
        "/api/auth/register",
        json=body("signup_founder", tenant_name="Founders", tenant_slug="founders-signup"),
    )
    assert founder.status_code == 201, founder.text
    headers = {"Authorization": f"Bearer {founder.json()['access_token']}"}
    tid = (await opened.get("/api/tenant", headers=headers)).json()[0]["id"]
    link = await opened.post(f"/api/tenant/{tid}/invitation", json={"max_uses": 1}, headers=headers)
    assert link.status_code == 201, link.text
    code = link.json()["code"]

    _, client = await serve(signup="invite")
    invited = await client.post("/api/auth/register", json=body("signup_invited", invite_code=code))
    assert invited.status_code == 201, invited.text
    mine = await client.get(
        "/api/tenant", headers={"Authorization": f"Bearer {invited.json()['access_token']}"}
    )
    assert [(t["id"], t["role"]) for t in mine.json()] == [(tid, "member")]
    # One use only: the next registration with it is refused and creates no account.
    again = await client.post("/api/auth/register", json=body("signup_second", invite_code=code))
    assert again.status_code == 403 and "not valid" in again.json()["message"]
    retry = await opened.post("/api/auth/register", json=body("signup_second"))
    assert retry.status_code == 201, "the refused registration left no account behind"


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
