"""In the call (issue 14 item 5), through the real /ws and SFU workers: raised hands, the
organizer muting and removing a participant, joining by meeting code over REST.

Alice starts the conference (its organizer), the owner owns the workspace, Bob is a
plain member.
"""

from __future__ import annotations

from typing import Any

from roomler.conference.conference_media import ConferenceMedia
from tests.conference.conftest import (
    LiveServer,
    MediaClient,
    Team,
    join_all,
    media_client,
    media_service,
)

NOT_MODERATOR = "only the organizer or a workspace owner/admin may {} in this call"


async def _room(
    team: Team, server: LiveServer
) -> tuple[str, MediaClient, MediaClient, MediaClient]:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    owner = await media_client(server, team.owner, conference_id)
    await join_all(alice, bob, owner)
    return conference_id, alice, bob, owner


async def _close(*clients: MediaClient) -> None:
    for client in clients:
        await client.close()


def hand(conference_id: str, user_id: str, raised: bool) -> dict[str, Any]:
    return {"conference_id": conference_id, "user_id": user_id, "raised": raised}


async def test_a_raised_hand_reaches_the_room_and_joiners_and_goes_with_its_user(
    team: Team, server: LiveServer
) -> None:
    conference_id, alice, bob, owner = await _room(team, server)

    data = await bob.request("media:raise_hand", "media:hand_raised")
    assert data == hand(conference_id, team.bob.id, True)
    for other in (alice, owner):
        assert await other.drain() == [{"type": "media:hand_raised", "data": data}]
    assert await bob.drain() == []

    # A second tab of Alice's joining later is told whose hands are up.
    late = await media_client(server, team.alice, conference_id)
    request_id = await late.send("media:join")
    while (frame := await late.next_media())["type"] != "media:participants":
        assert frame.get("request_id") == request_id, frame
    assert frame["data"]["raised_hands"] == [team.bob.id]
    await late.close()
    for client in (alice, bob, owner):
        await client.drain()

    # Only the organizer (or an owner/admin) lowers someone else's hand.
    error = await bob.error("media:lower_hand", user_id=team.alice.id)
    assert error["message"] == NOT_MODERATOR.format("lower someone's hand")
    lowered = await owner.request("media:lower_hand", "media:hand_raised", user_id=team.bob.id)
    assert lowered == hand(conference_id, team.bob.id, False)
    assert await bob.drain() == [{"type": "media:hand_raised", "data": lowered}]
    await alice.drain()

    # Raised, then gone: a later join of Bob's starts with his hand down.
    await bob.request("media:raise_hand", "media:hand_raised")
    await bob.request("media:leave", "media:peer_left")
    room = media_service(server).room(conference_id)
    assert room is not None
    assert await server.call(lambda: dict(room.hands)) == {}
    joined = await bob.join()
    assert joined.participants  # the others are there
    await _close(alice, bob, owner)


async def test_the_organizer_mutes_a_participant_who_may_unmute_themselves(
    team: Team, server: LiveServer
) -> None:
    conference_id, alice, bob, owner = await _room(team, server)
    bob_audio = await bob.produce("audio")
    bob_video = await bob.produce("video")
    for client in (alice, bob, owner):
        await client.drain()

    # Bob, a member, may not mute the organizer.
    error = await bob.error("media:mute_participant", user_id=team.alice.id)
    assert error["message"] == NOT_MODERATOR.format("mute others")

    muted = await alice.request(
        "media:mute_participant", "media:participant_muted", user_id=team.bob.id
    )
    assert muted == {
        "conference_id": conference_id,
        "user_id": team.bob.id,
        "kind": "audio",
        "producer_ids": [bob_audio],
    }
    paused = {
        "type": "media:producer_paused",
        "data": {"producer_id": bob_audio, "user_id": team.bob.id},
    }
    notice = {
        "conference_id": conference_id,
        "kind": "audio",
        "producer_ids": [bob_audio],
        "by_user_id": team.alice.id,
    }
    assert await bob.drain() == [{"type": "media:muted", "data": notice}, paused]
    assert await owner.drain() == [paused]
    assert await alice.drain() == [paused]
    room = media_service(server).room(conference_id)
    assert room is not None
    producers = room.participants[bob.connection_id].producers
    assert producers[bob_audio].paused and not producers[bob_video].paused

    # Muting again pauses nothing more; Bob unmutes his own microphone.
    again = await alice.request(
        "media:mute_participant", "media:participant_muted", user_id=team.bob.id
    )
    assert again["producer_ids"] == []
    await bob.drain()
    resumed = await bob.request(
        "media:producer_resume", "media:producer_resumed", producer_id=bob_audio
    )
    assert resumed == {"producer_id": bob_audio, "user_id": team.bob.id}
    assert not producers[bob_audio].paused
    await alice.drain()
    await owner.drain()

    # The workspace owner may stop his camera too; nobody can unmute someone else's.
    video = await owner.request(
        "media:mute_participant", "media:participant_muted", user_id=team.bob.id, kind="video"
    )
    assert video["producer_ids"] == [bob_video]
    await alice.drain()
    error = await alice.error("media:producer_resume", producer_id=bob_video)
    assert error["message"] == f"unknown producer {bob_video}"
    error = await alice.error("media:mute_participant", user_id=team.eve.id)
    assert error["message"] == f"user {team.eve.id} is not in conference {conference_id}"
    await _close(alice, bob, owner)


async def test_a_removed_participant_leaves_and_may_not_rejoin_until_readmitted(
    team: Team, server: LiveServer
) -> None:
    conference_id, alice, bob, owner = await _room(team, server)
    await team.api.ok(team.bob, "POST", f"/{conference_id}/join")
    bob_audio = await bob.produce("audio")
    for client in (alice, bob, owner):
        await client.drain()

    error = await owner.error("media:remove_participant", user_id=team.owner.id)
    assert error["message"] == "you cannot remove yourself; send media:leave"
    error = await bob.error("media:remove_participant", user_id=team.owner.id)
    assert error["message"] == NOT_MODERATOR.format("remove participants")

    # Alice hears Bob go like everyone else, then the answer to her request.
    request_id = await alice.send("media:remove_participant", user_id=team.bob.id)
    heard = [await alice.next_media() for _ in range(3)]
    removed = heard.pop()
    assert removed["request_id"] == request_id, removed
    assert removed["type"] == "media:participant_removed", removed
    assert removed["data"] == {"conference_id": conference_id, "user_id": team.bob.id}
    closed = {"conference_id": conference_id, "reason": "removed"}
    assert await bob.drain() == [{"type": "media:room_closed", "data": closed}]
    gone = [
        {
            "type": "media:producer_closed",
            "data": {"producer_id": bob_audio, "user_id": team.bob.id},
        },
        {
            "type": "media:peer_left",
            "data": {
                "user_id": team.bob.id,
                "conference_id": conference_id,
                "connection_id": bob.connection_id,
            },
        },
    ]
    assert await owner.drain() == gone
    assert heard == gone
    assert await alice.drain() == []
    conference = await team.api.ok(team.alice, "GET", f"/{conference_id}")
    assert conference["participant_count"] == 0  # Bob's record closed (Alice never POSTed)

    # Refused, over the WebSocket and over REST, on any of his connections.
    error = await bob.error("media:join")
    assert error["message"] == f"you were removed from conference {conference_id} by its organizer"
    response = await team.api.call(team.bob, "POST", f"/{conference_id}/join")
    assert response.status_code == 403, response.text
    assert response.json()["message"] == "You were removed from this call by its organizer"
    media: ConferenceMedia = media_service(server)
    assert await server.call(lambda: bob.connection_id not in media.rooms.connection_rooms)

    # Readmitted ("re-invited"), he may join again.
    readmitted = await alice.request(
        "media:readmit_participant", "media:participant_readmitted", user_id=team.bob.id
    )
    assert readmitted == {"conference_id": conference_id, "user_id": team.bob.id}
    await team.api.ok(team.bob, "POST", f"/{conference_id}/join")
    await bob.join()
    await _close(alice, bob, owner)


async def test_moderation_needs_a_connection_in_the_room(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    error = await alice.error("media:mute_participant", user_id=team.bob.id)
    assert error["message"] == f"not a participant of conference {conference_id}; send media:join"
    error = await alice.error("media:raise_hand")
    assert error["message"] == f"not a participant of conference {conference_id}; send media:join"
    error = await alice.error("media:mute_participant", user_id=team.bob.id, kind="screen")
    assert error["message"] == "data.kind must be one of audio|video"
    error = await alice.error("media:remove_participant")
    assert error["message"] == "data.user_id is required"
    await alice.close()


async def test_a_meeting_code_finds_the_conference(team: Team, server: LiveServer) -> None:
    conference = await team.api.create(team.alice)
    code = conference["meeting_code"]
    for typed in (code, code.replace("-", ""), f" {code[:3]} {code[4:7]} {code[8:]} "):
        found = await team.api.ok(team.bob, "GET", f"/code/{typed}")
        assert found["id"] == conference["id"], typed
        assert found["meeting_code"] == code

    wrong = "000-000-000" if code != "000-000-000" else "111-111-111"
    response = await team.api.call(team.bob, "GET", f"/code/{wrong}")
    assert response.status_code == 404
    assert response.json()["message"] == f"No meeting in this workspace has the code {wrong}"
    response = await team.api.call(team.bob, "GET", "/code/12345")
    assert response.status_code == 404
    assert response.json()["message"] == "A meeting code is nine digits, like 123-456-789"
    # Another workspace's member does not find it (and is not a member here: 403).
    response = await team.api.call(team.eve, "GET", f"/code/{code}")
    assert response.status_code == 403
