"""Lost connections, rejoins and ICE restarts (issue 14): a participant whose WebSocket
closes keeps its place for the rejoin grace period; a rejoin naming the previous
connection is the same participant to the others; records and empty conferences follow.

The server runs with a short grace period and empty-call timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conference.conftest import (
    MEDIA,
    MediaClient,
    Team,
    join_all,
    media_client,
    media_service,
)
from tests.realtime.conftest import LiveServer

GRACE_SECS = 0.5
EMPTY_END_SECS = 1.0
# Attendance checks run every 0.25 s here; a record or conference follows within this.
SETTLE_SECS = 10.0


@pytest.fixture
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server(
        mediasoup=MEDIA,
        conference={"rejoin_grace_secs": GRACE_SECS, "empty_end_secs": EMPTY_END_SECS},
    )


async def _room(team: Team, server: LiveServer) -> tuple[str, MediaClient, MediaClient, list[str]]:
    """Alice producing audio and video, Bob consuming both."""
    conference_id = await team.api.started(team.alice)
    await team.api.ok(team.bob, "POST", f"/{conference_id}/join")
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    await join_all(alice, bob)
    producers = [await alice.produce("audio"), await alice.produce("video")]
    await bob.drain()
    for producer_id in producers:
        await bob.consume(producer_id)
    await alice.drain()
    await bob.drain()
    return conference_id, alice, bob, producers


def _closed(team: Team, producers: list[str]) -> list[dict[str, Any]]:
    return [
        {"type": "media:producer_closed", "data": {"producer_id": p, "user_id": team.alice.id}}
        for p in producers
    ]


async def _frames(client: MediaClient, count: int) -> list[dict[str, Any]]:
    return [await client.next_media() for _ in range(count)]


async def _present(team: Team, conference_id: str) -> list[str]:
    records = await team.api.ok(team.bob, "GET", f"/{conference_id}/participant")
    return sorted(r["user_id"] for r in records if r["is_present"])


async def _until(probe: Callable[[], Any], wanted: Any) -> Any:
    deadline = time.monotonic() + SETTLE_SECS
    value = await probe()
    while value != wanted and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        value = await probe()
    return value


async def test_a_lost_connection_leaves_after_the_grace_period(
    team: Team, server: LiveServer
) -> None:
    conference_id, alice, bob, producers = await _room(team, server)
    await team.api.ok(team.alice, "POST", f"/{conference_id}/join")
    lost_at = time.monotonic()

    await alice.close()

    # Her media goes at once; she leaves only when no rejoin came within the grace period.
    assert await _frames(bob, 2) == _closed(team, producers)
    left = await bob.next_media()
    waited = time.monotonic() - lost_at
    assert left == {
        "type": "media:peer_left",
        "data": {
            "user_id": team.alice.id,
            "conference_id": conference_id,
            "connection_id": alice.connection_id,
        },
    }
    assert waited >= GRACE_SECS * 0.9, f"peer_left came {waited:.2f} s after the loss"
    # Her participant record is closed too (she sent no leave); Bob's stays open.
    assert await _until(lambda: _present(team, conference_id), [team.bob.id]) == [team.bob.id]
    await bob.close()


async def test_a_rejoin_in_the_grace_period_is_the_same_participant(
    team: Team, server: LiveServer
) -> None:
    conference_id, alice, bob, producers = await _room(team, server)
    await alice.close()
    assert await _frames(bob, 2) == _closed(team, producers)

    again = await media_client(server, team.alice, conference_id)
    request_id = await again.send("media:join", previous_connection_id=alice.connection_id)
    while (frame := await again.next_media())["type"] != "media:participants":
        assert frame.get("request_id") == request_id, frame
    assert [p["connection_id"] for p in frame["data"]["participants"]] == [bob.connection_id]

    reconnected = await bob.next_media()
    assert reconnected == {
        "type": "media:peer_reconnected",
        "data": {
            "conference_id": conference_id,
            "user_id": team.alice.id,
            "display_name": "Alice",
            "connection_id": again.connection_id,
            "previous_connection_id": alice.connection_id,
        },
    }
    # Well past the grace period, Bob has heard of no leave.
    await asyncio.sleep(GRACE_SECS * 3)
    assert await bob.drain() == []
    for client in (again, bob):
        await client.close()


async def test_a_rejoin_replaces_a_connection_the_server_still_holds(
    team: Team, server: LiveServer
) -> None:
    conference_id, alice, bob, producers = await _room(team, server)

    # A half-open old socket: the browser reconnected before the server saw it die.
    again = await media_client(server, team.alice, conference_id)
    request_id = await again.send("media:join", previous_connection_id=alice.connection_id)
    while (await again.next_media())["type"] != "media:participants":
        pass
    assert await _frames(bob, 2) == _closed(team, producers)
    frame = await bob.next_media()
    assert frame["type"] == "media:peer_reconnected", frame
    assert frame["data"]["previous_connection_id"] == alice.connection_id
    assert request_id

    # The old connection is no participant any more; its close tells nobody anything.
    assert [f["type"] for f in await alice.drain()] == ["media:peer_reconnected"]
    error = await alice.error("media:produce", kind="audio", rtp_parameters={})
    assert "not a participant" in error["message"]
    await alice.close()
    await asyncio.sleep(GRACE_SECS * 3)
    assert await bob.drain() == []
    for client in (again, bob):
        await client.close()


async def test_previous_connection_of_another_user_is_a_plain_join(
    team: Team, server: LiveServer
) -> None:
    conference_id, alice, bob, _producers = await _room(team, server)
    owner = await media_client(server, team.owner, conference_id)
    request_id = await owner.send("media:join", previous_connection_id=alice.connection_id)
    while (await owner.next_media())["type"] != "media:participants":
        pass
    for client in (alice, bob):
        frame = await client.next_media()
        assert frame["type"] == "media:peer_joined", frame
    assert request_id
    bad = await owner.error("media:join", previous_connection_id=7)
    assert "previous_connection_id" in bad["message"]
    for client in (alice, bob, owner):
        await client.close()


async def test_restart_ice_gives_the_transport_new_credentials(
    team: Team, server: LiveServer
) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    joined = await alice.join()
    transport = joined.recv_transport

    restarted = await alice.request(
        "media:restart_ice", "media:ice_restarted", transport_id=transport["id"]
    )

    assert restarted["transport_id"] == transport["id"]
    old, new = transport["ice_parameters"], restarted["ice_parameters"]
    assert new["usernameFragment"] != old["usernameFragment"]
    assert new["password"] != old["password"]
    error = await alice.error("media:restart_ice", transport_id="nope")
    assert error["message"] == "unknown transport nope"
    stranger = await media_client(server, team.bob, conference_id)
    error = await stranger.error("media:restart_ice", transport_id=transport["id"])
    assert "not a participant" in error["message"]
    for client in (alice, stranger):
        await client.close()


async def test_an_empty_conference_ends_itself(team: Team, server: LiveServer) -> None:
    conference_id, alice, bob, _producers = await _room(team, server)
    # Bob's record is open (he joined over REST); both have media connections.
    await asyncio.sleep(EMPTY_END_SECS * 2)
    assert (await team.api.ok(team.alice, "GET", f"/{conference_id}"))["status"] == "in_progress"

    await alice.close()
    await bob.close()

    async def status_now() -> str:
        return str((await team.api.ok(team.alice, "GET", f"/{conference_id}"))["status"])

    # Bob's record closes after the grace period, and the empty call ends after its time.
    assert await _until(status_now, "ended") == "ended"
    assert await _present(team, conference_id) == []
    assert media_service(server).room(conference_id) is None
