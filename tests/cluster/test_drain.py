"""A node that shuts down (SIGTERM) or dies (kill -9) while it hosts a conference.

Two `roomler serve` nodes; the participants speak the real `media:*` protocol. SIGTERM on
the host: its participants, local and forwarded, hear `media:room_closed {reason:
"server_shutdown"}`, its own WebSockets close with 1001, the conference goes on (the next
join places a router on the surviving node, and a participant that reconnects there is the
same participant to the others). kill -9 on the host: the participant records of its
conference are closed by the surviving node when nobody comes back, and the empty
conference ends (it was left open forever before, issue 14).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.exceptions import ConnectionClosed

from roomler.db.models import Conference, ConferenceParticipant
from tests.cluster.conftest import (
    Node,
    RedisTarget,
    StartNodes,
    is_type,
    media_settings,
    open_tab,
    port_range,
    settle,
)
from tests.cluster.test_conference import candidate_ports, joined, media, rest, started_call

pytestmark = pytest.mark.nodb  # brings its own PostgreSQL database: one run is enough

SHUTDOWN_TIMEOUT_SECS = 10.0
GRACE_SECS = 2.0
EMPTY_END_SECS = 3.0
# The dead host's heartbeat expires (10 s, seen at the next 3 s sweep), then the grace
# period, the empty period and a few attendance checks; a loaded machine is slow at each.
RECORDS_CLOSED_SECS = 13.0 + GRACE_SECS + EMPTY_END_SECS + 25.0
READY_SECS = 60.0


def wait_until_ready(*nodes: Node) -> None:
    """Each node's `/ready` answers 200: its SFU workers run (the first probe starts them),
    as on nodes a load balancer sends traffic to."""
    deadline = time.monotonic() + READY_SECS
    with httpx.Client(timeout=5) as http:
        for node in nodes:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if http.get(f"{node.http_url}/ready").status_code == 200:
                        break
                assert time.monotonic() < deadline, f"{node.node_id} not ready: {node.log_tail()}"
                time.sleep(0.2)


async def test_sigterm_on_the_host_moves_the_conference_to_the_surviving_node(
    start_nodes: StartNodes, shared_redis: RedisTarget, cluster_db: AsyncEngine
) -> None:
    n1, n2 = start_nodes(
        2,
        shared_redis,
        per_node=media_settings,
        ROOMLER__APP__SHUTDOWN_TIMEOUT_SECS=str(SHUTDOWN_TIMEOUT_SECS),
    )
    await asyncio.to_thread(wait_until_ready, n1, n2)
    call = await started_call(n1, cluster_db)  # the room lives on node 1
    alice_tab, bob_tab = await open_tab(n1, call.alice), await open_tab(n2, call.bob)
    await settle(alice_tab, bob_tab)
    alice, bob = media(alice_tab, call.conference_id), media(bob_tab, call.conference_id)
    assert candidate_ports(await joined(alice)) <= set(port_range(1))
    await alice.produce("video")
    # Bob's transports are on his own node, on a router node 1 drives there (issue 17).
    assert candidate_ports(await joined(bob, producers=1)) <= set(port_range(2))
    await bob.produce("audio")
    await settle(alice_tab, bob_tab)

    assert n1.process is not None
    n1.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()

    # Both participants hear why, the one forwarded through node 2 included.
    shutdown = {"conference_id": call.conference_id, "reason": "server_shutdown"}
    assert (await alice_tab.wait_for(is_type("media:room_closed")))["data"] == shutdown
    assert (await bob_tab.wait_for(is_type("media:room_closed")))["data"] == shutdown

    # Bob's socket (node 2) stays; he joins again: node 2 places the room now.
    assert candidate_ports(await joined(bob)) <= set(port_range(2))
    await bob.produce("video")

    # Alice's socket on node 1 is closed with 1001 ("going away": reconnect).
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await alice_tab.next(SHUTDOWN_TIMEOUT_SECS)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001, closed.value
    assert n1.process.wait(timeout=SHUTDOWN_TIMEOUT_SECS + 5) == 0, n1.log_tail()
    assert time.monotonic() - signalled < SHUTDOWN_TIMEOUT_SECS

    # She reconnects (through the proxy: to node 2) and joins naming her old connection:
    # the same participant to Bob, whose video she gets.
    old_connection = alice_tab.connection_id
    alice_tab = await open_tab(n2, call.alice)
    alice = media(alice_tab, call.conference_id)
    request_id = await alice.send("media:join", previous_connection_id=old_connection)
    await alice.reply("media:router_capabilities", request_id)
    transports = await alice.reply("media:transport_created", request_id)
    assert candidate_ports(transports) <= set(port_range(2))
    announced = await alice.next_media()
    assert announced["type"] == "media:new_producer", announced
    assert announced["data"]["user_id"] == call.bob.id

    # The conference never stopped, and both records are still open.
    async with cluster_db.connect() as connection:
        status = await connection.scalar(
            select(Conference.status).where(Conference.id == call.conference_id)
        )
    assert status == "in_progress"


async def present_records(engine: AsyncEngine, conference_id: str) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.scalars(
            select(ConferenceParticipant.user_id).where(
                ConferenceParticipant.conference_id == conference_id,
                ConferenceParticipant.is_present.is_(True),
            )
        )
        return list(rows)


async def test_a_dead_hosts_participant_records_close_and_its_empty_conference_ends(
    start_nodes: StartNodes, shared_redis: RedisTarget, cluster_db: AsyncEngine
) -> None:
    n1, n2 = start_nodes(
        2,
        shared_redis,
        per_node=media_settings,
        ROOMLER__CONFERENCE__REJOIN_GRACE_SECS=str(GRACE_SECS),
        ROOMLER__CONFERENCE__EMPTY_END_SECS=str(EMPTY_END_SECS),
    )
    await asyncio.to_thread(wait_until_ready, n1, n2)
    call = await started_call(n1, cluster_db)
    path = f"/api/tenant/{call.tenant_id}/conference/{call.conference_id}/join"
    await rest(n1, call.alice, "POST", path)
    alice_tab = await open_tab(n1, call.alice)
    await joined(media(alice_tab, call.conference_id))
    assert await present_records(cluster_db, call.conference_id) == [call.alice.id]

    # The host dies with Alice in its room; she never comes back.
    n1.kill()
    await alice_tab.close()
    deadline = time.monotonic() + RECORDS_CLOSED_SECS
    while records := await present_records(cluster_db, call.conference_id):
        assert time.monotonic() < deadline, f"still present: {records}\n{n2.log_tail()}"
        await asyncio.sleep(0.5)
    while True:
        async with cluster_db.connect() as connection:
            status = await connection.scalar(
                select(Conference.status).where(Conference.id == call.conference_id)
            )
        if status == "ended":
            break
        assert time.monotonic() < deadline, f"still {status}\n{n2.log_tail()}"
        await asyncio.sleep(0.5)
