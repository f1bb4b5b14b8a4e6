"""Refresh tokens rotate on use, a reused one revokes its family, logout ends the session."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import select

from roomler.db.models import RefreshToken
from tests.conftest import Account, register


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/auth/refresh", json={"refresh_token": token})


async def test_a_refresh_token_works_once_and_its_successor_works(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client, "rotor")
    first = await refresh(client, account.refresh_token)
    assert first.status_code == 200
    successor = first.json()["refresh_token"]
    assert successor != account.refresh_token
    second = await refresh(client, successor)
    assert second.status_code == 200
    assert (await client.get("/api/auth/me", headers=bearer(second))).status_code == 200


async def test_reusing_a_rotated_token_revokes_the_whole_family(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client, "victim")
    other_sign_in = await login(client, account)
    stolen = account.refresh_token
    legitimate = (await refresh(client, stolen)).json()["refresh_token"]
    replay = await refresh(client, stolen)  # the copy is used after the owner rotated it
    assert replay.status_code == 401 and replay.json()["error"] == "unauthorized"
    assert "already used" in replay.json()["message"]
    # The legitimate holder's successor is revoked with it: both must sign in again.
    assert (await refresh(client, legitimate)).status_code == 401
    # Another sign-in of the same user is a family of its own and keeps working.
    assert (await refresh(client, other_sign_in)).status_code == 200


async def test_two_concurrent_refreshes_with_one_token_do_not_both_win(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client, "doubler")
    replies = await asyncio.gather(*(refresh(client, account.refresh_token) for _ in range(4)))
    assert Counter(r.status_code for r in replies)[200] <= 1


async def test_logout_revokes_the_refresh_token(client: httpx.AsyncClient) -> None:
    account = await register(client, "leaver")
    kept = await login(client, account)
    response = await client.post("/api/auth/logout", headers=account.headers)
    assert response.status_code == 200 and response.json() == {"logged_out": True}
    assert (await refresh(client, account.refresh_token)).status_code == 401
    # Only that session: the user's other sign-in still refreshes.
    assert (await refresh(client, kept)).status_code == 200


async def test_logout_with_the_refresh_token_in_the_body(client: httpx.AsyncClient) -> None:
    account = await register(client, "bodyleaver")
    response = await client.post("/api/auth/logout", json={"refresh_token": account.refresh_token})
    assert response.status_code == 200
    assert (await refresh(client, account.refresh_token)).status_code == 401


async def test_every_refresh_token_is_recorded_in_its_family(
    app: Any, client: httpx.AsyncClient
) -> None:
    account = await register(client, "recorded")
    successor = (await refresh(client, account.refresh_token)).json()["refresh_token"]
    async with app.state.ctx.sessions() as session:
        rows = (await session.scalars(select(RefreshToken))).all()
    assert len(rows) == 2 and len({r.family_id for r in rows}) == 1
    used = [r for r in rows if r.used_at is not None]
    assert len(used) == 1 and successor  # the first is used, its successor is not


def bearer(response: httpx.Response) -> dict[str, str]:
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def login(client: httpx.AsyncClient, account: Account) -> str:
    response = await client.post(
        "/api/auth/login", json={"username": account.username, "password": account.password}
    )
    assert response.status_code == 200, response.text
    client.cookies.clear()
    token: str = response.json()["refresh_token"]
    return token
