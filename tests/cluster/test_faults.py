"""Faults: a node killed with SIGKILL, and Redis going away and coming back empty."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.cluster.conftest import (
    FRAME_TIMEOUT,
    Node,
    PrivateRedis,
    RedisTarget,
    StartNodes,
    is_type,
    make_users,
    open_tab,
    settle,
)
from tests.realtime.conftest import User, add_channel, add_tenant

pytestmark = pytest.mark.nodb  # brings its own PostgreSQL database: one run is enough

# The bound: a dead node's users are offline elsewhere within 30 s.
DEAD_NODE_SECS = 30.0


@dataclass
class Team:
    tenant_id: str
    channel_id: str
    alice: User
    bob: User
    carol: User
    dave: User


async def make_team(node: Node, db: AsyncEngine) -> Team:
    alice, bob, carol, dave = await make_users(node, "alice", "bob", "carol", "dave")
    tenant_id = await add_tenant(db, alice, bob, carol, dave)
    channel_id = await add_channel(db, tenant_id, alice, bob, carol, dave)
    return Team(tenant_id, channel_id, alice, bob, carol, dave)


async def snapshot(node: Node, team: Team, viewer: User) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=node.http_url, timeout=FRAME_TIMEOUT) as http:
        response = await http.get(f"/api/tenant/{team.tenant_id}/presence", headers=viewer.headers)
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def about(frames: list[dict[str, Any]], user: User) -> list[dict[str, Any]]:
    """The frames that concern `user`."""
    return [f for f in frames if (f.get("data") or {}).get("user_id") == user.id]


async def test_a_killed_node_s_users_go_offline_and_stop_typing_elsewhere(
    start_nodes: StartNodes, shared_redis: RedisTarget, cluster_db: AsyncEngine
) -> None:
    n1, n2 = start_nodes(2, shared_redis)  # default heartbeat (3 s) and TTL (10 s)
    team = await make_team(n1, cluster_db)
    bob = await open_tab(n1, team.bob)
    carol_survivor = await open_tab(n1, team.carol)
    carol_doomed = await open_tab(n2, team.carol)
    alice = await open_tab(n2, team.alice)
    await settle(bob, carol_survivor, carol_doomed, alice)
    await alice.send("typing:start", {"channel_id": team.channel_id})
    await bob.wait_for(is_type("typing:start", user_id=team.alice.id))

    n2.kill()
    killed_at = time.monotonic()
    stop = await bob.wait_for(is_type("typing:stop", user_id=team.alice.id), DEAD_NODE_SECS)
    assert stop["data"]["channel_id"] == team.channel_id
    await bob.wait_for(
        is_type("presence:update", user_id=team.alice.id, presence="offline"), DEAD_NODE_SECS
    )
    assert time.monotonic() - killed_at < DEAD_NODE_SECS
    # Carol still has a tab on node 1: she stays online, nobody hears otherwise.
    assert about(bob.frames + await bob.quiet(), team.carol) == []
    seen = await snapshot(n1, team, team.bob)
    assert [seen[u.id] for u in (team.alice, team.carol, team.bob)] == [
        "offline",
        "online",
        "online",
    ]


async def test_redis_outage_keeps_local_traffic_and_recovers_without_duplicates(
    start_nodes: StartNodes, private_redis: PrivateRedis, cluster_db: AsyncEngine
) -> None:
    redis = RedisTarget(private_redis.url, "roomler:")
    n1, n2 = start_nodes(2, redis)
    team = await make_team(n1, cluster_db)
    alice = await open_tab(n1, team.alice)
    bob = await open_tab(n1, team.bob)
    carol = await open_tab(n2, team.carol)
    await settle(alice, bob, carol)

    private_redis.stop()
    await wait_for_log(n1, "is unreachable")
    await wait_for_log(n2, "is unreachable")

    # Among one node's users everything still flows; nothing crosses, nothing is kept.
    await alice.send("typing:start", {"channel_id": team.channel_id})
    await bob.wait_for(is_type("typing:start", user_id=team.alice.id))
    dave = await open_tab(n1, team.dave)  # arrives during the outage
    await bob.wait_for(is_type("presence:update", user_id=team.dave.id, presence="online"))
    await alice.send("typing:stop", {"channel_id": team.channel_id})
    await bob.wait_for(is_type("typing:stop", user_id=team.alice.id))
    assert await carol.quiet(1.0) == []
    async with httpx.AsyncClient(timeout=FRAME_TIMEOUT) as http:
        for node in (n1, n2):
            assert (await http.get(f"{node.http_url}/health")).status_code == 200
    await asyncio.sleep(1.5)  # several reconnect attempts fail meanwhile
    await settle(alice, bob, carol, dave)

    private_redis.start()  # empty: no persistence
    await wait_for_log(n1, "is back")
    await wait_for_log(n2, "is back")

    # Node 1 re-published its state: Carol (node 2) now sees Dave, Bob is not told again.
    await carol.wait_for(is_type("presence:update", user_id=team.dave.id, presence="online"))
    assert (await snapshot(n2, team, team.carol))[team.dave.id] == "online"
    assert about(await bob.quiet(), team.dave) == []
    assert about(carol.frames + await carol.quiet(), team.dave) == []
    await settle(alice, bob, carol, dave)

    await alice.send("typing:start", {"channel_id": team.channel_id})
    for tab in (bob, carol, dave):
        await tab.wait_for(is_type("typing:start", user_id=team.alice.id))
    for tab in (alice, bob, carol, dave):
        assert await tab.quiet() == []

    for node in (n1, n2):
        assert len(node.log_lines("is unreachable")) == 1, node.log_tail()
        assert len(node.log_lines("is back")) == 1, node.log_tail()


async def wait_for_log(node: Node, needle: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not node.log_lines(needle):
        assert time.monotonic() < deadline, f"{node.node_id} never logged {needle!r}"
        await asyncio.sleep(0.05)
