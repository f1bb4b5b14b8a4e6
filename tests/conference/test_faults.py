"""Faults: a worker process killed mid-call, a WebSocket that dies without a close frame."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Callable

import pytest

from tests.conference.conftest import (
    MEDIA,
    MediaClient,
    Team,
    join_all,
    media_client,
    media_service,
    room_router,
    router_dump,
)
from tests.realtime.conftest import RECEIVE_TIMEOUT, LiveServer

pytestmark = pytest.mark.slow

TWO_WORKERS = {**MEDIA, "num_workers": 2}


@pytest.fixture
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server(mediasoup=TWO_WORKERS)


def _udp_port_is_free(port: int) -> bool:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    finally:
        sock.close()
    return True


async def test_a_killed_worker_closes_its_rooms_and_they_can_start_again(
    team: Team, server: LiveServer
) -> None:
    doomed = await team.api.started(team.alice)
    other = await team.api.started(team.alice)  # round-robin: the other worker
    doomed_router = await room_router(server, doomed)
    other_router = await room_router(server, other)
    assert doomed_router.worker.pid != other_router.worker.pid
    alice = await media_client(server, team.alice, doomed)
    bob = await media_client(server, team.bob, doomed)
    carol = await media_client(server, team.owner, other)  # on the surviving worker
    await join_all(alice, bob)
    await carol.join()
    await alice.produce("video")
    await bob.drain()

    os.kill(doomed_router.worker.pid, signal.SIGKILL)

    closed = {
        "type": "media:room_closed",
        "data": {"conference_id": doomed, "reason": "worker_died"},
    }
    for client in (alice, bob):
        assert await client.next_media() == closed
    assert await carol.drain() == []
    assert (await router_dump(server, other))["transportIds"] != []
    # The conference is still in progress; the first to join again places a new router
    # on a live worker (as POST start would), and everyone can follow.
    assert (await team.api.ok(team.alice, "GET", f"/{doomed}"))["status"] == "in_progress"
    rejoined, _ = await asyncio.gather(alice.join(concurrent=True), bob.join(concurrent=True))
    for client in (alice, bob):
        await client.drain()  # the other's media:peer_joined, if it came after the join
    new_router = await room_router(server, doomed)
    assert new_router.id != doomed_router.id
    assert new_router.worker.pid != doomed_router.worker.pid
    assert rejoined.rtp_capabilities == new_router.rtp_capabilities
    assert await server.call(lambda: _router_count(server)) == 2  # one per conference
    restarted = await team.api.ok(team.bob, "POST", f"/{doomed}/start")  # idempotent
    assert restarted == {"started": True, "rtp_capabilities": new_router.rtp_capabilities}
    video = await alice.produce("video")
    assert [f["data"]["producer_id"] for f in await bob.drain()] == [video]
    assert (await bob.consume(video))["kind"] == "video"
    for client in (alice, bob, carol):
        await client.close()


def _router_count(server: LiveServer) -> int:
    pool = media_service(server)._pool
    assert pool is not None
    return sum(len(worker.routers) for worker in pool.workers)


async def test_post_start_after_a_worker_died_places_a_new_router(
    team: Team, server: LiveServer
) -> None:
    conference_id = await team.api.started(team.alice)
    router = await room_router(server, conference_id)
    alice = await media_client(server, team.alice, conference_id)
    await alice.join()
    os.kill(router.worker.pid, signal.SIGKILL)
    assert (await alice.next_media())["data"]["reason"] == "worker_died"

    restarted = await team.api.ok(team.alice, "POST", f"/{conference_id}/start")

    new_router = await room_router(server, conference_id)
    assert new_router.id != router.id and not new_router.closed
    assert restarted["rtp_capabilities"] == new_router.rtp_capabilities
    await alice.join()
    assert len((await router_dump(server, conference_id))["transportIds"]) == 2
    await alice.close()


async def test_the_pool_replaces_a_killed_worker(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    router = await room_router(server, conference_id)
    os.kill(router.worker.pid, signal.SIGKILL)

    pool = media_service(server)._pool
    assert pool is not None
    deadline = time.monotonic() + 10
    while True:
        pids = await server.call(lambda: [w.pid for w in pool.workers])
        if len(pids) == 2 and router.worker.pid not in pids:
            break
        assert time.monotonic() < deadline, pids
        await asyncio.sleep(0.05)


async def _abort(client: MediaClient) -> None:
    """Drop the TCP connection without a WebSocket close frame, like a crashed browser."""
    transport = client.client.ws.transport
    transport.abort()
    await asyncio.sleep(0)


async def test_a_websocket_that_dies_leaves_nothing_behind(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    joined, _ = await join_all(alice, bob)
    audio = await alice.produce("audio")
    await bob.drain()
    await bob.consume(audio)
    ports = [t["ice_candidates"][0]["port"] for t in (joined.send_transport, joined.recv_transport)]
    assert not any(_udp_port_is_free(port) for port in ports)

    await _abort(alice)

    assert await bob.next_media() == {
        "type": "media:producer_closed",
        "data": {"producer_id": audio, "user_id": team.alice.id},
    }
    # Her media goes at once; `media:peer_left` waits for the rejoin grace (test_rejoin.py).
    dump = await router_dump(server, conference_id)
    assert (dump["producerIds"], dump["consumerIds"], len(dump["transportIds"])) == ([], [], 2)
    deadline = time.monotonic() + RECEIVE_TIMEOUT
    while not all(_udp_port_is_free(port) for port in ports):
        assert time.monotonic() < deadline, "the dead connection's UDP ports are still bound"
        await asyncio.sleep(0.02)
    await bob.close()
