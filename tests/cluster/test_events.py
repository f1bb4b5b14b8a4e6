"""Three `roomler serve` processes sharing PostgreSQL and the machine's Redis.

Every user-level event reaches every connection of every recipient, on every node,
exactly once; a connection-targeted send reaches the node that holds the connection.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.cluster.conftest import (
    FRAME_TIMEOUT,
    SHARED_REDIS,
    Node,
    RedisTarget,
    Tab,
    forget_keys,
    is_type,
    launch,
    loud_skip,
    make_users,
    open_tab,
    reachable,
    settle,
    stop_all,
)
from tests.realtime.conftest import User, add_channel, add_tenant

pytestmark = pytest.mark.nodb  # brings its own PostgreSQL database: one run is enough


@dataclass
class Team:
    nodes: list[Node]
    tenant_id: str
    channel_id: str
    alice: User
    bob: User
    carol: User


@pytest.fixture(scope="module")
def nodes(cluster_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    """Three nodes for the whole module; each test makes users and a tenant of its own."""
    redis = RedisTarget(SHARED_REDIS, f"roomler-test-{secrets.token_hex(4)}:")
    if not reachable("127.0.0.1", 6379):
        loud_skip("Redis is not answering at 127.0.0.1:6379")
    # Each test registers three users from 127.0.0.1: past the sign-up limit per address
    # (20 an hour, which tests/api/test_signup.py tests) by the seventh test.
    started = launch(
        3,
        redis,
        cluster_database,
        tmp_path_factory.mktemp("nodes"),
        ROOMLER__AUTH__SIGNUP_PER_ADDRESS="1000",
    )
    try:
        yield started
    finally:
        stop_all(started)
        forget_keys(redis)


@pytest.fixture
async def team(nodes: list[Node], cluster_db: AsyncEngine) -> Team:
    alice, bob, carol = await make_users(nodes[0], "alice", "bob", "carol")
    tenant_id = await add_tenant(cluster_db, alice, bob, carol)
    channel_id = await add_channel(cluster_db, tenant_id, alice, bob, carol)
    return Team(nodes, tenant_id, channel_id, alice, bob, carol)


async def post_message(
    node: Node, team: Team, author: User, content: str, connection_id: str | None = None
) -> dict[str, Any]:
    headers = dict(author.headers)
    if connection_id is not None:
        headers["X-Connection-Id"] = connection_id
    url = f"/api/tenant/{team.tenant_id}/channel/{team.channel_id}/message"
    async with httpx.AsyncClient(base_url=node.http_url, timeout=FRAME_TIMEOUT) as http:
        response = await http.post(url, json={"content": content}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def frames_until(tab: Tab, marker: str) -> list[dict[str, Any]]:
    """Frames up to and including the `message:create` whose content is `marker`."""
    seen = []
    while True:
        frame = await tab.next()
        seen.append(frame)
        if frame["type"] == "message:create" and frame["data"]["content"] == marker:
            return seen + await tab.quiet()


def contents(frames: list[dict[str, Any]]) -> list[str]:
    return [f["data"]["content"] for f in frames if f["type"] == "message:create"]


async def test_message_create_reaches_every_tab_on_every_node_exactly_once(team: Team) -> None:
    n1, n2, n3 = team.nodes
    # Bob has a tab on each node; Carol one on node 2; Alice posts from node 1 (a tab there)
    # through node 3's REST API, naming her tab so only that one is skipped.
    bob_tabs = [await open_tab(node, team.bob) for node in team.nodes]
    carol = await open_tab(n2, team.carol)
    alice_here = await open_tab(n1, team.alice)
    alice_there = await open_tab(n2, team.alice)
    await settle(*bob_tabs, carol, alice_here, alice_there)

    await post_message(n3, team, team.alice, "one", alice_here.connection_id)
    await post_message(n1, team, team.alice, "two", alice_here.connection_id)
    for tab in (*bob_tabs, carol, alice_there):
        assert contents(await frames_until(tab, "two")) == ["one", "two"], tab.node.node_id
    assert await alice_here.quiet() == []

    # Without a connection id every tab of the sender is skipped, wherever it is.
    await post_message(n2, team, team.alice, "three")
    await post_message(n2, team, team.alice, "four", alice_here.connection_id)
    assert contents(await frames_until(alice_there, "four")) == ["four"]
    for tab in (*bob_tabs, carol):
        assert contents(await frames_until(tab, "four")) == ["three", "four"]


async def test_typing_crosses_nodes_once_and_stops_when_the_message_is_posted(
    team: Team,
) -> None:
    n1, n2, n3 = team.nodes
    alice = await open_tab(n1, team.alice)
    alice_other = await open_tab(n3, team.alice)
    bob = await open_tab(n2, team.bob)
    carol_tabs = [await open_tab(n1, team.carol), await open_tab(n3, team.carol)]
    await settle(alice, alice_other, bob, *carol_tabs)

    start = {"channel_id": team.channel_id, "user_id": team.alice.id}
    await alice.send("typing:start", {"channel_id": team.channel_id})
    for tab in (bob, *carol_tabs):
        assert await tab.next() == {"type": "typing:start", "data": start}
        assert await tab.quiet() == []
    assert await alice_other.quiet() == []  # the typer's own tabs hear nothing

    # Posting through another node's REST API ends the indicator on Alice's node.
    await post_message(n2, team, team.alice, "done typing")
    for tab in (bob, *carol_tabs):
        kinds = [f["type"] for f in [await tab.next(), await tab.next()]]
        assert sorted(kinds) == ["message:create", "typing:stop"]
        assert await tab.quiet() == []


async def test_presence_across_nodes_multi_tab_and_invisible(team: Team) -> None:
    n1, n2, n3 = team.nodes
    bob = await open_tab(n1, team.bob)
    online = is_type("presence:update", user_id=team.alice.id, presence="online")
    offline = is_type("presence:update", user_id=team.alice.id, presence="offline")

    a2 = await open_tab(n2, team.alice)
    await bob.wait_for(online)
    a3 = await open_tab(n3, team.alice)  # a second tab, elsewhere: nothing new to see
    assert [f for f in await bob.quiet() if f["data"].get("user_id") == team.alice.id] == []

    snapshot = await presence_snapshot(n3, team, team.bob)
    assert snapshot[team.alice.id] == "online" and snapshot[team.bob.id] == "online"
    assert snapshot[team.carol.id] == "offline"

    # Invisible, chosen on node 2: peers see offline, her tab on node 3 sees the choice.
    await a2.send("presence:update", {"presence": "invisible"})
    await bob.wait_for(offline)
    own = await a3.wait_for(is_type("presence:update", user_id=team.alice.id))
    assert own["data"]["presence"] == "invisible"
    assert (await presence_snapshot(n1, team, team.bob))[team.alice.id] == "offline"
    assert (await presence_snapshot(n1, team, team.alice))[team.alice.id] == "invisible"

    await a2.send("presence:update", {"presence": "dnd"})
    await bob.wait_for(is_type("presence:update", user_id=team.alice.id, presence="dnd"))

    # Offline only when the last tab anywhere closes.
    await a2.close()
    assert [f for f in await bob.quiet(0.8) if f["data"].get("user_id") == team.alice.id] == []
    assert (await presence_snapshot(n2, team, team.bob))[team.alice.id] == "dnd"
    await a3.close()
    await bob.wait_for(offline)
    assert await bob.quiet() == []
    assert (await presence_snapshot(n2, team, team.bob))[team.alice.id] == "offline"


async def presence_snapshot(node: Node, team: Team, viewer: User) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=node.http_url, timeout=FRAME_TIMEOUT) as http:
        response = await http.get(f"/api/tenant/{team.tenant_id}/presence", headers=viewer.headers)
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def test_chat_events_reach_every_tab_on_every_node_exactly_once(team: Team) -> None:
    """Issue 18's events (reactions, pins, threads, direct messages) go the same way."""
    n1, n2, n3 = team.nodes
    bob_tabs = [await open_tab(node, team.bob) for node in team.nodes]
    alice_other = await open_tab(n3, team.alice)
    await settle(*bob_tabs, alice_other)
    message = await post_message(n1, team, team.alice, "reactions across nodes")
    url = f"/api/tenant/{team.tenant_id}/channel/{team.channel_id}/message/{message['id']}"
    async with httpx.AsyncClient(base_url=n2.http_url, timeout=FRAME_TIMEOUT) as http:
        reacted = await http.put(f"{url}/reaction/%F0%9F%91%8D", headers=team.alice.headers)
        assert reacted.status_code == 200, reacted.text
    async with httpx.AsyncClient(base_url=n3.http_url, timeout=FRAME_TIMEOUT) as http:
        pinned = await http.put(f"{url}/pin", headers=team.bob.headers)
        assert pinned.status_code == 200, pinned.text
    for tab in (*bob_tabs, alice_other):
        frame = await tab.wait_for(is_type("message:reaction", message_id=message["id"]))
        assert frame["data"] == reacted.json()
        frame = await tab.wait_for(is_type("message:pinned", message_id=message["id"]))
        assert frame["data"]["message"] == pinned.json()
        repeated = [f for f in await tab.quiet() if f["type"].startswith("message:")]
        assert [f for f in repeated if f["type"] != "message:create"] == []

    # Bob follows the thread from node 1; Alice's reply through node 3 reaches his tabs.
    async with httpx.AsyncClient(base_url=n1.http_url, timeout=FRAME_TIMEOUT) as http:
        followed = await http.put(f"{url}/follow", headers=team.bob.headers)
        assert followed.status_code == 200, followed.text
    async with httpx.AsyncClient(base_url=n3.http_url, timeout=FRAME_TIMEOUT) as http:
        replied = await http.post(
            url.rsplit("/", 1)[0],
            json={"content": "in the thread", "thread_id": message["id"]},
            headers=team.alice.headers,
        )
        assert replied.status_code == 201, replied.text
    for tab in bob_tabs:
        frame = await tab.wait_for(is_type("thread:reply", thread_id=message["id"]))
        assert frame["data"]["message"] == replied.json()
        assert [f for f in await tab.quiet() if f["type"] == "thread:reply"] == []

    # A direct conversation started on node 2 reaches Bob's tabs on every node, once.
    async with httpx.AsyncClient(base_url=n2.http_url, timeout=FRAME_TIMEOUT) as http:
        started = await http.post(
            f"/api/tenant/{team.tenant_id}/dm",
            json={"user_ids": [team.bob.id]},
            headers=team.alice.headers,
        )
        assert started.status_code == 201, started.text
    for tab in bob_tabs:
        frame = await tab.wait_for(is_type("channel:created", tenant_id=team.tenant_id))
        assert frame["data"]["channel"] == started.json()
        assert [f for f in await tab.quiet() if f["type"] == "channel:created"] == []


async def test_a_read_marker_reaches_the_readers_tabs_on_every_node_only(team: Team) -> None:
    """`channel:read` (issue 18 item 5) is user-scoped: each of the reader's tabs, once."""
    n1, n2, n3 = team.nodes
    bob_tabs = [await open_tab(node, team.bob) for node in team.nodes]
    alice_tab = await open_tab(n3, team.alice)
    await settle(*bob_tabs, alice_tab)
    message = await post_message(n1, team, team.alice, f"read me, @{team.bob.username}")
    async with httpx.AsyncClient(base_url=n2.http_url, timeout=FRAME_TIMEOUT) as http:
        unread = await http.get(f"/api/tenant/{team.tenant_id}/unread", headers=team.bob.headers)
        assert unread.status_code == 200, unread.text
        [state] = [s for s in unread.json() if s["channel_id"] == team.channel_id]
        assert (state["unread_count"], state["mention_count"]) == (1, 1)
        read = await http.put(
            f"/api/tenant/{team.tenant_id}/channel/{team.channel_id}/read",
            json={"message_id": message["id"]},
            headers=team.bob.headers,
        )
        assert read.status_code == 200, read.text
    assert (read.json()["unread_count"], read.json()["mention_count"]) == (0, 0)
    for tab in bob_tabs:
        frame = await tab.wait_for(is_type("channel:read", channel_id=team.channel_id))
        assert frame["data"] == read.json()
        assert [f for f in await tab.quiet() if f["type"] == "channel:read"] == []
    assert [f for f in await alice_tab.quiet() if f["type"] == "channel:read"] == []


async def test_a_notification_and_its_reading_reach_every_tab_on_every_node(team: Team) -> None:
    """`notification:new` and `notification:read` (issue 18 item 4): each of the named
    user's tabs, once, whichever node they are on; nobody else."""
    n1, n2, _ = team.nodes
    bob_tabs = [await open_tab(node, team.bob) for node in team.nodes]
    alice_tab = await open_tab(n2, team.alice)
    await settle(*bob_tabs, alice_tab)
    message = await post_message(n1, team, team.alice, f"look, @{team.bob.username}")
    notes = []
    for tab in bob_tabs:
        frame = await tab.wait_for(is_type("notification:new"))
        assert frame["data"]["notification"]["message_id"] == message["id"]
        notes.append(frame["data"]["notification"])
        assert [f for f in await tab.quiet() if f["type"] == "notification:new"] == []
    assert notes[0] == notes[1] == notes[2]
    assert [f for f in await alice_tab.quiet() if f["type"].startswith("notification:")] == []
    async with httpx.AsyncClient(base_url=n2.http_url, timeout=FRAME_TIMEOUT) as http:
        read = await http.put(
            f"/api/tenant/{team.tenant_id}/notification/read", headers=team.bob.headers
        )
        assert read.status_code == 200, read.text
    assert read.json()["notification_ids"] == [notes[0]["id"]]
    for tab in bob_tabs:
        frame = await tab.wait_for(is_type("notification:read"))
        assert frame["data"] == read.json()
        assert [f for f in await tab.quiet() if f["type"] == "notification:read"] == []


async def test_a_profile_change_reaches_every_tab_of_workspace_peers_on_every_node(
    team: Team,
) -> None:
    """`user:updated` (issue 18 item 11), made through node 2, reaches Bob's tabs on every
    node and Alice's own on another, once each."""
    n1, n2, n3 = team.nodes
    bob_tabs = [await open_tab(node, team.bob) for node in team.nodes]
    alice_other = await open_tab(n3, team.alice)
    await settle(*bob_tabs, alice_other)
    async with httpx.AsyncClient(base_url=n2.http_url, timeout=FRAME_TIMEOUT) as http:
        renamed = await http.put(
            "/api/auth/me",
            json={"display_name": "Alice across nodes", "time_zone": "Asia/Tokyo"},
            headers=team.alice.headers,
        )
        assert renamed.status_code == 200, renamed.text
    profile = {k: v for k, v in renamed.json().items() if k != "email"}
    for tab in (*bob_tabs, alice_other):
        frame = await tab.wait_for(is_type("user:updated"))
        assert frame["data"] == {"user": profile}
        assert [f for f in await tab.quiet() if f["type"] == "user:updated"] == []


async def test_archiving_a_channel_reaches_every_tab_on_every_node_and_stops_typing(
    team: Team,
) -> None:
    """`channel:updated` with `archived` (issue 18 item 10), made through node 2, reaches
    every tab of the channel's viewers on every node once; then a `typing:start` on
    node 1 is refused to that tab alone and nobody on any node hears of it."""
    n1, n2, n3 = team.nodes
    bob_tabs = [await open_tab(node, team.bob) for node in team.nodes]
    alice_other = await open_tab(n3, team.alice)
    await settle(*bob_tabs, alice_other)
    async with httpx.AsyncClient(base_url=n2.http_url, timeout=FRAME_TIMEOUT) as http:
        archived = await http.put(
            f"/api/tenant/{team.tenant_id}/channel/{team.channel_id}/archive",
            headers=team.alice.headers,
        )
        assert archived.status_code == 200, archived.text
    assert archived.json()["archived"] is True
    for tab in (*bob_tabs, alice_other):
        frame = await tab.wait_for(is_type("channel:updated", channel_id=team.channel_id))
        assert frame["data"]["archived"] is True
        assert frame["data"]["archived_at"] == archived.json()["archived_at"]
        assert [f for f in await tab.quiet() if f["type"] == "channel:updated"] == []

    await bob_tabs[0].send("typing:start", {"channel_id": team.channel_id}, request_id="t")
    refused = await bob_tabs[0].wait_for(is_type("error", code="channel_archived"))
    assert refused["request_id"] == "t"
    for tab in (*bob_tabs, alice_other):
        assert [f for f in await tab.quiet() if f["type"].startswith("typing:")] == []
    async with httpx.AsyncClient(base_url=n3.http_url, timeout=FRAME_TIMEOUT) as http:
        posted = await http.post(
            f"/api/tenant/{team.tenant_id}/channel/{team.channel_id}/message",
            json={"content": "too late"},
            headers=team.bob.headers,
        )
    assert posted.status_code == 409, posted.text
