"""Presence: the five states, invisible, first/last connection, storage, tenant scope, snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from roomler.db.models import User as UserRow
from roomler.ids import new_id
from tests.realtime.conftest import (
    Client,
    LiveServer,
    User,
    add_tenant,
    drain_all,
    open_client,
    register,
)


def presence(user: User, state: str) -> dict[str, Any]:
    return {"type": "presence:update", "data": {"user_id": user.id, "presence": state}}


@dataclass
class Team:
    """Alice and Bob share tenant T; Carol shares tenant U with Bob only; Dave has none."""

    tenant_t: str
    tenant_u: str
    alice: User
    bob: User
    carol: User
    dave: User


@pytest.fixture
async def team(http: httpx.AsyncClient, db: AsyncEngine) -> Team:
    alice, bob, carol, dave = [await register(http, n) for n in ("alice", "bob", "carol", "dave")]
    tenant_t = await add_tenant(db, alice, bob)
    tenant_u = await add_tenant(db, carol, bob)
    return Team(tenant_t, tenant_u, alice, bob, carol, dave)


async def stored_presence(db: AsyncEngine, user: User) -> str:
    async with db.connect() as connection:
        value = await connection.scalar(select(UserRow.presence).where(UserRow.id == user.id))
    assert isinstance(value, str)
    return value


async def test_first_connection_and_last_disconnection_reach_tenant_peers_only(
    server: LiveServer, team: Team
) -> None:
    bob = await open_client(server, team.bob)
    carol = await open_client(server, team.carol)
    dave = await open_client(server, team.dave)
    assert await drain_all(bob, dave) == [[presence(team.carol, "online")], []]

    a1 = await open_client(server, team.alice)
    assert await drain_all(bob, carol, dave) == [[presence(team.alice, "online")], [], []]
    a2 = await open_client(server, team.alice)  # not the first: nothing new to see
    assert await drain_all(bob, carol, dave, a1) == [[], [], [], []]

    await a1.close()
    await server.wait_connections(4)
    assert await drain_all(bob, a2) == [[], []]
    await a2.close()
    await server.wait_connections(3)
    assert await drain_all(bob, carol, dave) == [[presence(team.alice, "offline")], [], []]


async def test_each_state_reaches_peers_and_own_tabs(
    server: LiveServer, team: Team, db: AsyncEngine
) -> None:
    bob = await open_client(server, team.bob)
    a1 = await open_client(server, team.alice)
    a2 = await open_client(server, team.alice)
    carol = await open_client(server, team.carol)
    await drain_all(bob)
    for state in ("idle", "dnd", "offline", "online"):
        await a1.send("presence:update", {"presence": state})
        event = presence(team.alice, state)
        assert await drain_all(a1, a2, bob) == [[event], [event], [event]], state
        assert await stored_presence(db, team.alice) == state
    assert await carol.drain() == []  # carol shares no tenant with alice


async def test_invisible_looks_offline_to_others(
    server: LiveServer, team: Team, db: AsyncEngine
) -> None:
    bob = await open_client(server, team.bob)
    a1 = await open_client(server, team.alice)
    a2 = await open_client(server, team.alice)
    await drain_all(bob)
    await a2.send("presence:update", {"presence": "invisible"})
    own = presence(team.alice, "invisible")
    assert await drain_all(a2, a1, bob) == [[own], [own], [presence(team.alice, "offline")]]
    assert await stored_presence(db, team.alice) == "invisible"

    # From invisible to offline others see no change; her own tabs do.
    await a1.send("presence:update", {"presence": "offline"})
    own = presence(team.alice, "offline")
    assert await drain_all(a1, a2, bob) == [[own], [own], []]
    await a1.send("presence:update", {"presence": "invisible"})
    await drain_all(a1, a2)
    # Leaving while invisible changes nothing for others either.
    await a1.close()
    await a2.close()
    await server.wait_connections(1)
    assert await bob.drain() == []


async def test_choosing_the_current_state_sends_nothing(server: LiveServer, team: Team) -> None:
    bob = await open_client(server, team.bob)
    alice = await open_client(server, team.alice)
    await drain_all(bob)
    await alice.send("presence:update", {"presence": "online"})
    assert await drain_all(alice, bob) == [[], []]


async def test_the_choice_survives_reconnects(
    server: LiveServer, team: Team, db: AsyncEngine
) -> None:
    bob = await open_client(server, team.bob)
    alice = await open_client(server, team.alice)
    await alice.send("presence:update", {"presence": "dnd"})
    await alice.drain()
    await alice.close()
    await server.wait_connections(1)
    assert await bob.drain() == [
        presence(team.alice, "online"),
        presence(team.alice, "dnd"),
        presence(team.alice, "offline"),
    ]
    alice = await open_client(server, team.alice)
    assert await bob.drain() == [presence(team.alice, "dnd")]
    await alice.send("presence:update", {"presence": "invisible"})
    await alice.drain()
    await alice.close()
    await server.wait_connections(1)
    assert await bob.drain() == [presence(team.alice, "offline")]
    # An invisible user's arrival is not announced.
    alice = await open_client(server, team.alice)
    assert await bob.drain() == []
    assert await stored_presence(db, team.alice) == "invisible"


async def test_snapshot_shows_members_as_the_caller_sees_them(
    server: LiveServer, http: httpx.AsyncClient, team: Team
) -> None:
    url = f"/api/tenant/{team.tenant_t}/presence"
    response = await http.get(url, headers=team.bob.headers)
    assert response.status_code == 200
    assert response.json() == {team.alice.id: "offline", team.bob.id: "offline"}

    alice = await open_client(server, team.alice)
    bob = await open_client(server, team.bob)
    await alice.send("presence:update", {"presence": "idle"})
    await alice.drain()
    assert (await http.get(url, headers=team.bob.headers)).json() == {
        team.alice.id: "idle",
        team.bob.id: "online",
    }
    await alice.send("presence:update", {"presence": "invisible"})
    await alice.drain()
    assert (await http.get(url, headers=team.bob.headers)).json() == {
        team.alice.id: "offline",
        team.bob.id: "online",
    }
    assert (await http.get(url, headers=team.alice.headers)).json() == {
        team.alice.id: "invisible",
        team.bob.id: "online",
    }
    await bob.close()
    await server.wait_connections(1)
    assert (await http.get(url, headers=team.alice.headers)).json()[team.bob.id] == "offline"


async def test_snapshot_is_for_tenant_members_only(
    server: LiveServer, http: httpx.AsyncClient, team: Team
) -> None:
    for tenant_id in (team.tenant_t, new_id(), "not-an-id"):
        response = await http.get(f"/api/tenant/{tenant_id}/presence", headers=team.carol.headers)
        assert response.status_code == 403, tenant_id
    response = await http.get(f"/api/tenant/{team.tenant_t}/presence")
    assert response.status_code == 401


async def test_presence_with_many_tabs_and_an_unconnected_client(
    server: LiveServer, team: Team
) -> None:
    """A user's presence events reach all their peers' tabs."""
    b1 = await open_client(server, team.bob)
    b2 = await open_client(server, team.bob)
    alice: Client = await open_client(server, team.alice)
    online = presence(team.alice, "online")
    assert await drain_all(b1, b2) == [[online], [online]]
    await alice.send("presence:update", {"presence": "idle"})
    idle = presence(team.alice, "idle")
    assert await drain_all(alice, b1, b2) == [[idle], [idle], [idle]]


async def test_a_member_added_or_removed_while_connected_is_heard_or_not(
    server: LiveServer, team: Team, http: httpx.AsyncClient
) -> None:
    """Who hears a change follows the memberships the REST API changes, without a reconnect."""
    alice = await open_client(server, team.alice)
    dave = await open_client(server, team.dave)
    await drain_all(alice, dave)
    added = await http.post(
        f"/api/tenant/{team.tenant_t}/member",
        headers=team.alice.headers,
        json={"user_id": team.dave.id, "role": "member"},
    )
    assert added.status_code == 201, added.text
    await drain_all(alice, dave)  # tenant:member_added, tenant:joined
    # Each change is handled before the changer's pong: drain the changer first.
    await dave.send("presence:update", {"presence": "dnd"})
    await dave.drain()
    assert presence(team.dave, "dnd") in await alice.drain()
    await alice.send("presence:update", {"presence": "idle"})
    await alice.drain()
    assert presence(team.alice, "idle") in await dave.drain()

    removed = await http.delete(
        f"/api/tenant/{team.tenant_t}/member/{team.dave.id}", headers=team.alice.headers
    )
    assert removed.status_code == 200, removed.text
    await drain_all(alice, dave)  # tenant:member_removed
    await alice.send("presence:update", {"presence": "online"})
    to_alice = await alice.drain()
    await dave.send("presence:update", {"presence": "idle"})
    to_dave = await dave.drain()
    to_alice += await alice.drain()  # both changes are handled by now
    assert presence(team.alice, "online") in to_alice  # her own tab
    assert presence(team.alice, "online") not in to_dave
    assert presence(team.dave, "idle") in to_dave
    assert presence(team.dave, "idle") not in to_alice
