"""Conferences across nodes: the host node runs the room, other nodes forward `media:*`.

Two `roomler serve` processes, each with its own SFU worker and UDP port range; the
participants speak the real `media:*` protocol with the RTP parameters Chrome sends
(`tests/conference/conftest.py`'s `MediaClient`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.cluster.conftest import (
    FRAME_TIMEOUT,
    Node,
    RedisTarget,
    StartNodes,
    Tab,
    is_type,
    make_users,
    media_settings,
    open_tab,
    port_range,
    settle,
)
from tests.conference.conftest import MediaClient, chrome_rtp_capabilities
from tests.realtime.conftest import User, add_tenant

pytestmark = pytest.mark.nodb  # brings its own PostgreSQL database: one run is enough

DEAD_NODE_SECS = 30.0


@dataclass
class Call:
    tenant_id: str
    conference_id: str
    alice: User
    bob: User


async def rest(node: Node, user: User, method: str, path: str, body: Any = None) -> Any:
    async with httpx.AsyncClient(base_url=node.http_url, timeout=FRAME_TIMEOUT * 2) as http:
        response = await http.request(method, path, json=body, headers=user.headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def started_call(node: Node, db: AsyncEngine) -> Call:
    alice, bob = await make_users(node, "alice", "bob")
    tenant_id = await add_tenant(db, alice, bob)
    base = f"/api/tenant/{tenant_id}/conference"
    conference = await rest(node, alice, "POST", base, {"subject": "Across nodes"})
    started = await rest(node, alice, "POST", f"{base}/{conference['id']}/start")
    assert started["started"] is True and started["rtp_capabilities"]["codecs"]
    return Call(tenant_id, conference["id"], alice, bob)


def media(tab: Tab, conference_id: str) -> MediaClient:
    return MediaClient(tab.client, conference_id)


async def joined(client: MediaClient, producers: int = 0) -> dict[str, Any]:
    """Join; the replies, the room's existing producers, then the participants, in this order."""
    request_id = await client.send("media:join")
    await client.reply("media:router_capabilities", request_id)
    transports = await client.reply("media:transport_created", request_id)
    for _ in range(producers):
        frame = await client.next_media()
        assert frame["type"] == "media:new_producer" and "request_id" in frame, frame
    await client.reply("media:participants", request_id)
    return transports


def candidate_ports(transports: dict[str, Any]) -> set[int]:
    return {
        candidate["port"]
        for direction in ("send_transport", "recv_transport")
        for candidate in transports[direction]["ice_candidates"]
    }


async def test_a_participant_on_another_node_is_served_by_the_host_in_order(
    start_nodes: StartNodes, shared_redis: RedisTarget, cluster_db: AsyncEngine
) -> None:
    # A short rejoin grace: a closed WebSocket's peer_left comes after it (test_rejoin.py).
    n1, n2 = start_nodes(
        2, shared_redis, per_node=media_settings, ROOMLER__CONFERENCE__REJOIN_GRACE_SECS="0.5"
    )
    call = await started_call(n1, cluster_db)  # the room lives on node 1
    alice_tab, bob_tab = await open_tab(n1, call.alice), await open_tab(n2, call.bob)
    await settle(alice_tab, bob_tab)
    alice, bob = media(alice_tab, call.conference_id), media(bob_tab, call.conference_id)

    assert candidate_ports(await joined(alice)) <= set(port_range(1))
    video = await alice.produce("video")
    audio = await alice.produce("audio")

    # Bob's WebSocket is on node 2: so are his transports (a worker of node 2 that
    # node 1 drives), and Alice's producers are piped over to them.
    assert candidate_ports(await joined(bob, producers=2)) <= set(port_range(2))

    # Several requests at once: the replies come back in the order they were sent.
    ids = [
        await bob.send(
            "media:consume", producer_id=producer, rtp_capabilities=chrome_rtp_capabilities()
        )
        for producer in (video, audio)
    ]
    ids.append(await bob.send("media:consumer_pause", consumer_id="no-such-consumer"))
    consumed = [await bob.reply("media:consumer_created", ids[0])]
    consumed.append(await bob.reply("media:consumer_created", ids[1]))
    assert [c["producer_id"] for c in consumed] == [video, audio]
    error = await bob.reply("media:error", ids[2])
    assert error["message"] == "unknown consumer no-such-consumer", error

    # A producer on the edge is announced to the host's participants exactly once.
    bob_audio = await bob.produce("audio")
    frame = await alice_tab.wait_for(is_type("media:new_producer", producer_id=bob_audio))
    assert frame["data"]["user_id"] == call.bob.id
    assert [f for f in await alice_tab.quiet() if f["type"].startswith("media:")] == []

    # Bob's WebSocket closes: the host removes him from the room (after the grace period).
    await bob_tab.close()
    await alice_tab.wait_for(is_type("media:producer_closed", producer_id=bob_audio))
    await alice_tab.wait_for(is_type("media:peer_left", user_id=call.bob.id))

    # Ending the call on node 2's REST API closes the room on node 1.
    await rest(
        n2, call.alice, "POST", f"/api/tenant/{call.tenant_id}/conference/{call.conference_id}/end"
    )
    closed = await alice_tab.wait_for(is_type("media:room_closed"))
    assert closed["data"] == {"conference_id": call.conference_id, "reason": "ended"}


async def test_when_the_host_dies_its_remote_participants_hear_node_lost_and_can_restart(
    start_nodes: StartNodes, shared_redis: RedisTarget, cluster_db: AsyncEngine
) -> None:
    n1, n2 = start_nodes(2, shared_redis, per_node=media_settings)
    call = await started_call(n1, cluster_db)
    bob_tab = await open_tab(n2, call.bob)
    bob = media(bob_tab, call.conference_id)
    await joined(bob)
    await bob.produce("video")

    n1.kill()
    killed_at = time.monotonic()
    closed = await bob_tab.wait_for(is_type("media:room_closed"), DEAD_NODE_SECS)
    assert closed["data"] == {"conference_id": call.conference_id, "reason": "node_lost"}
    assert time.monotonic() - killed_at < DEAD_NODE_SECS

    # Started again, on the surviving node this time.
    path = f"/api/tenant/{call.tenant_id}/conference/{call.conference_id}/start"
    assert (await rest(n2, call.bob, "POST", path))["started"] is True
    assert candidate_ports(await joined(bob)) <= set(port_range(2))
    await bob.produce("audio")
