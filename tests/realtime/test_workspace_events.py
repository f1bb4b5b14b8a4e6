"""Workspace changes pushed live: members added and removed, channels created.

Alice owns the tenant (two tabs), Carol is a member, Bob is outside it until Alice adds
him, Eve belongs to another tenant. Every change goes through the real REST API; the
events are read on real WebSocket connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.realtime.conftest import (
    Client,
    LiveServer,
    User,
    add_tenant,
    drain_all,
    open_client,
    register,
)


@dataclass
class Workspace:
    http: httpx.AsyncClient
    tenant_id: str
    alice: User
    bob: User
    carol: User
    a1: Client
    a2: Client
    b1: Client
    c1: Client
    e1: Client

    @property
    def everyone(self) -> list[Client]:
        return [self.a1, self.a2, self.b1, self.c1, self.e1]

    async def call(self, user: User, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(
            method, f"/api/tenant/{self.tenant_id}{path}", json=body, headers=user.headers
        )
        assert response.status_code in (200, 201), response.text
        return response.json()


@pytest.fixture
async def space(server: LiveServer, http: httpx.AsyncClient, db: AsyncEngine) -> Workspace:
    alice, bob, carol, eve = [await register(http, n) for n in ("alice", "bob", "carol", "eve")]
    tenant_id = await add_tenant(db, alice, carol)
    await add_tenant(db, eve)
    clients = [await open_client(server, u) for u in (alice, alice, bob, carol, eve)]
    space = Workspace(http, tenant_id, alice, bob, carol, *clients)
    await drain_all(*space.everyone)  # presence events of the connects
    return space


async def test_adding_a_member_tells_the_members_and_the_new_member(space: Workspace) -> None:
    member = await space.call(space.alice, "POST", "/member", {"username": "bob", "role": "admin"})

    added = {
        "type": "tenant:member_added",
        "data": {"tenant_id": space.tenant_id, "member": member},
    }
    # The members, the one who added included (all tabs: the other may show the list).
    for client in (space.a1, space.a2, space.c1):
        assert await client.drain() == [added]
    # The new member learns of the workspace, with their role in it, and nothing else.
    tenant = await space.call(space.bob, "GET", "")
    assert tenant["role"] == "admin"
    assert await space.b1.drain() == [{"type": "tenant:joined", "data": {"tenant": tenant}}]
    assert await space.e1.drain() == []


async def test_a_refused_add_tells_no_one(space: Workspace) -> None:
    response = await space.http.post(
        f"/api/tenant/{space.tenant_id}/member",
        json={"username": "bob"},
        headers=space.carol.headers,  # a plain member may not add
    )
    assert response.status_code == 403
    for client, frames in zip(space.everyone, await drain_all(*space.everyone), strict=True):
        assert frames == [], client


async def test_removing_a_member_tells_the_members_and_the_removed_user(space: Workspace) -> None:
    await space.call(space.alice, "POST", "/member", {"username": "bob"})
    await drain_all(*space.everyone)

    assert await space.call(space.alice, "DELETE", f"/member/{space.bob.id}") == {"removed": True}

    removed = {
        "type": "tenant:member_removed",
        "data": {"tenant_id": space.tenant_id, "user_id": space.bob.id},
    }
    for client in (space.a1, space.a2, space.b1, space.c1):
        assert await client.drain() == [removed]
    assert await space.e1.drain() == []

    # Leaving on one's own is a removal too.
    await space.call(space.carol, "DELETE", f"/member/{space.carol.id}")
    left = {
        "type": "tenant:member_removed",
        "data": {"tenant_id": space.tenant_id, "user_id": space.carol.id},
    }
    for client in (space.a1, space.a2, space.c1):
        assert await client.drain() == [left]
    assert await space.b1.drain() == []  # no longer a member


async def test_a_public_channel_is_announced_to_every_member(space: Workspace) -> None:
    channel = await space.call(
        space.carol, "POST", "/channel", {"name": "random", "purpose": "Anything"}
    )

    assert channel["is_member"] is True
    mine = {"type": "channel:created", "data": {"tenant_id": space.tenant_id, "channel": channel}}
    theirs = {**channel, "is_member": False}
    # Each as they see it: the creator is its member (on every tab), the others are not.
    assert await space.c1.drain() == [mine]
    for client in (space.a1, space.a2):
        assert await client.drain() == [
            {"type": "channel:created", "data": {"tenant_id": space.tenant_id, "channel": theirs}}
        ]
    listed = await space.call(space.alice, "GET", f"/channel/{channel['id']}")
    assert listed == theirs
    assert await space.b1.drain() == []
    assert await space.e1.drain() == []


async def test_a_private_channel_is_announced_to_its_creator_only(space: Workspace) -> None:
    channel = await space.call(
        space.alice, "POST", "/channel", {"name": "board", "is_private": True}
    )

    created = {
        "type": "channel:created",
        "data": {"tenant_id": space.tenant_id, "channel": channel},
    }
    for client in (space.a1, space.a2):
        assert await client.drain() == [created]
    for client in (space.b1, space.c1, space.e1):
        assert await client.drain() == []


async def test_a_member_added_to_a_private_channel_is_shown_it(space: Workspace) -> None:
    channel = await space.call(
        space.alice, "POST", "/channel", {"name": "board", "is_private": True}
    )
    await drain_all(*space.everyone)

    await space.call(
        space.alice, "POST", f"/channel/{channel['id']}/member", {"user_id": space.carol.id}
    )

    seen = await space.call(space.carol, "GET", f"/channel/{channel['id']}")
    assert seen["is_member"] is True and seen["member_count"] == 2
    shown = {"type": "channel:created", "data": {"tenant_id": space.tenant_id, "channel": seen}}
    assert await space.c1.drain() == [shown]
    for client in (space.a1, space.a2, space.b1, space.e1):
        assert await client.drain() == []


async def test_joining_through_an_invitation_link_tells_the_members(space: Workspace) -> None:
    link = await space.call(space.alice, "POST", "/invitation", {"max_uses": 1})
    joined = await space.http.post(
        f"/api/invitation/{link['code']}/accept", headers=space.bob.headers
    )
    assert joined.status_code == 200, joined.text

    members = await space.call(space.alice, "GET", "/member")
    member = next(m for m in members["items"] if m["user_id"] == space.bob.id)
    added = {
        "type": "tenant:member_added",
        "data": {"tenant_id": space.tenant_id, "member": member},
    }
    for client in (space.a1, space.a2, space.c1):
        assert await client.drain() == [added]
    tenant = await space.call(space.bob, "GET", "")
    assert tenant["role"] == "member"
    assert await space.b1.drain() == [{"type": "tenant:joined", "data": {"tenant": tenant}}]
    assert await space.e1.drain() == []


async def test_signing_up_through_an_invitation_link_tells_the_members(space: Workspace) -> None:
    code = (await space.call(space.alice, "POST", "/invitation", {}))["code"]
    registered = await space.http.post(
        "/api/auth/register",
        json={
            "email": "dave@example.com",
            "username": "dave",
            "display_name": "Dave",
            "password": "correct horse battery",
            "invite_code": code,
        },
    )
    assert registered.status_code == 201, registered.text
    space.http.cookies.clear()

    members = await space.call(space.alice, "GET", "/member")
    member = next(m for m in members["items"] if m["username"] == "dave")
    added = {
        "type": "tenant:member_added",
        "data": {"tenant_id": space.tenant_id, "member": member},
    }
    for client in (space.a1, space.a2, space.c1):
        assert await client.drain() == [added]
    for client in (space.b1, space.e1):
        assert await client.drain() == []
