"""`media:*` over the real `/ws`: order and targeting of every message, multi-tab, leaving.

Targeting, as docs/protocol.md states it: replies go to the requesting connection only;
peer notifications go user-level to the users in the room, except the acting connection.
"""

from __future__ import annotations

import asyncio

from tests.conference.conftest import (
    MediaClient,
    Team,
    chrome_rtp_capabilities,
    chrome_rtp_parameters,
    join_all,
    media_client,
    media_service,
    peer_joined,
    room_router,
    router_dump,
)
from tests.realtime.conftest import LiveServer


async def test_join_answers_capabilities_then_transports(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)

    request_id = await alice.send("media:join")
    capabilities = await alice.client.recv()
    transports = await alice.client.recv()

    assert capabilities["type"] == "media:router_capabilities"
    assert capabilities["request_id"] == request_id
    started = await team.api.ok(team.alice, "POST", f"/{conference_id}/start")
    assert capabilities["data"] == {"rtp_capabilities": started["rtp_capabilities"]}
    assert transports["type"] == "media:transport_created"
    assert transports["request_id"] == request_id
    data = transports["data"]
    assert set(data) == {"send_transport", "recv_transport", "ice_servers", "video_last_n"}
    assert data["ice_servers"] == []
    assert data["video_last_n"] == 9  # ROOMLER__CONFERENCE__VIDEO_LAST_N's default
    send, recv = data["send_transport"], data["recv_transport"]
    assert send["id"] != recv["id"]
    for transport in (send, recv):
        assert set(transport) == {"id", "ice_parameters", "ice_candidates", "dtls_parameters"}
        assert set(transport["ice_parameters"]) == {"usernameFragment", "password", "iceLite"}
        candidate = transport["ice_candidates"][0]
        assert (candidate["ip"], candidate["protocol"], candidate["type"]) == (
            "127.0.0.1",
            "udp",
            "host",
        )
        assert transport["dtls_parameters"]["fingerprints"][0]["algorithm"] == "sha-256"
    # The join ends with the other participants: none yet.
    participants = await alice.client.recv()
    assert participants == {
        "type": "media:participants",
        "data": {"conference_id": conference_id, "participants": [], "raised_hands": []},
        "request_id": request_id,
    }
    assert await alice.drain() == []
    assert sorted((await router_dump(server, conference_id))["transportIds"]) == sorted(
        [send["id"], recv["id"]]
    )
    await alice.close()


async def test_a_joiner_is_told_of_existing_producers_but_not_its_own(
    team: Team, server: LiveServer
) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    await alice.join()
    audio = await alice.produce("audio")
    video = await alice.produce("video")

    bob = await media_client(server, team.bob, conference_id)
    joined = await bob.join()

    assert joined.producers == [
        {"producer_id": audio, "user_id": team.alice.id, "kind": "audio", "app_data": {}},
        {"producer_id": video, "user_id": team.alice.id, "kind": "video", "app_data": {}},
    ]
    # Alice hears of Bob joining, then of his producer.
    assert await alice.drain() == [peer_joined(conference_id, team.bob, bob)]
    mine = await bob.produce("audio")
    assert await bob.drain() == []
    assert await alice.drain() == [
        {
            "type": "media:new_producer",
            "data": {"producer_id": mine, "user_id": team.bob.id, "kind": "audio", "app_data": {}},
        }
    ]
    await alice.close()
    await bob.close()


async def test_produce_reaches_other_users_and_the_producers_other_tabs(
    team: Team, server: LiveServer
) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    alice_tab2 = await media_client(server, team.alice, conference_id)  # in the room too
    alice_idle = await media_client(server, team.alice)  # not in the room
    bob = await media_client(server, team.bob, conference_id)
    owner = await media_client(server, team.owner)  # in the tenant, not in the room
    await alice.join()
    await alice_tab2.drain()  # user-level: Alice's other tabs hear of her joining
    await alice_tab2.join()
    await bob.join()
    for client in (alice, alice_tab2, alice_idle):
        await client.drain()  # the peer_joined of the later ones

    request_id = await alice.send(
        "media:produce",
        kind="video",
        rtp_parameters=chrome_rtp_parameters("video"),
        app_data={"source": "camera"},
    )
    result = await alice.reply("media:produce_result", request_id)

    announced = {
        "type": "media:new_producer",
        "data": {
            "producer_id": result["id"],
            "user_id": team.alice.id,
            "kind": "video",
            "app_data": {"source": "camera"},
        },
    }
    assert await alice.drain() == []
    assert await alice_tab2.drain() == [announced]
    assert await alice_idle.drain() == [announced]  # user-level: every tab of a room user
    assert await bob.drain() == [announced]
    assert await owner.drain() == []
    router = await room_router(server, conference_id)
    producer = router._producers[result["id"]]
    assert producer.app_data == {"source": "camera"}
    for client in (alice, alice_tab2, bob):
        await client.close()
    await alice_idle.close()
    await owner.close()


async def test_two_tabs_of_one_user_are_independent_participants(
    team: Team, server: LiveServer
) -> None:
    conference_id = await team.api.started(team.alice)
    tab1 = await media_client(server, team.alice, conference_id)
    tab2 = await media_client(server, team.alice, conference_id)
    first = await tab1.join()
    audio = await tab1.produce("audio")
    # User-level: tab 2 hears of the producer before it is in the room itself...
    announced = {"producer_id": audio, "user_id": team.alice.id, "kind": "audio", "app_data": {}}
    assert await tab2.drain() == [
        peer_joined(conference_id, team.alice, tab1),
        {"type": "media:new_producer", "data": announced},
    ]
    second = await tab2.join()
    # Tab 1 hears of tab 2 like of anyone else; tab 2 finds tab 1 among the participants.
    assert await tab1.drain() == [peer_joined(conference_id, team.alice, tab2)]
    assert second.participants == [
        {"user_id": team.alice.id, "display_name": "Alice", "connection_id": tab1.connection_id}
    ]

    assert {first.send_transport["id"], first.recv_transport["id"]}.isdisjoint(
        {second.send_transport["id"], second.recv_transport["id"]}
    )
    # ... and again when it joins: a client keys producers by id.
    assert second.producers == [announced]
    consumer = await tab2.consume(audio)
    assert consumer["producer_id"] == audio

    # One tab leaving leaves the other's media alone.
    await tab1.request("media:leave", "media:peer_left")
    dump = await router_dump(server, conference_id)
    assert sorted(dump["transportIds"]) == sorted(
        [second.send_transport["id"], second.recv_transport["id"]]
    )
    assert dump["producerIds"] == []
    await tab1.close()
    await tab2.close()


async def test_consume_answers_the_consumer_with_real_parameters(
    team: Team, server: LiveServer
) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    await join_all(alice, bob)
    video = await alice.produce("video")
    audio = await alice.produce("audio")
    await bob.drain()

    consumer = await bob.consume(video)
    audio_consumer = await bob.consume(audio)

    assert set(consumer) == {
        "id",
        "producer_id",
        "kind",
        "type",
        "rtp_parameters",
        "producer_paused",
        "paused",
    }
    assert consumer["paused"] is False
    assert consumer["type"] == audio_consumer["type"] == "simple"
    assert (consumer["producer_id"], consumer["kind"], consumer["producer_paused"]) == (
        video,
        "video",
        False,
    )
    codecs = consumer["rtp_parameters"]["codecs"]
    assert codecs[0]["mimeType"] == "video/VP8"
    assert consumer["rtp_parameters"]["encodings"][0]["ssrc"] > 0
    assert audio_consumer["kind"] == "audio"
    assert audio_consumer["rtp_parameters"]["codecs"][0]["mimeType"] == "audio/opus"
    assert await alice.drain() == []
    assert await bob.drain() == []
    dump = await router_dump(server, conference_id)
    assert sorted(dump["mapProducerIdConsumerIds"][video]) == [consumer["id"]]
    await alice.close()
    await bob.close()


async def test_connect_transport_with_dtls_parameters(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    joined = await alice.join()
    transport_id = joined.send_transport["id"]
    fingerprint = ":".join(["AB"] * 32)

    result = await alice.request(
        "media:connect_transport",
        "media:transport_connected",
        transport_id=transport_id,
        dtls_parameters={
            "role": "client",
            "fingerprints": [{"algorithm": "sha-256", "value": fingerprint}],
        },
    )

    assert result == {"transport_id": transport_id}
    assert await alice.drain() == []
    await alice.close()


async def test_pause_and_resume_a_producer(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    await join_all(alice, bob)
    audio = await alice.produce("audio")
    await bob.drain()
    consumer = await bob.consume(audio)
    router = await room_router(server, conference_id)

    for action, event in [("pause", "media:producer_paused"), ("resume", "media:producer_resumed")]:
        data = await alice.request(f"media:producer_{action}", event, producer_id=audio)
        assert data == {"producer_id": audio, "user_id": team.alice.id}
        assert await alice.drain() == []
        assert await bob.drain() == [{"type": event, "data": data}]
        server_consumer = router._producers[audio]._consumers[consumer["id"]]
        assert server_consumer.producer_paused is (action == "pause")

    # A late joiner's consumer of a paused producer says so.
    await alice.request("media:producer_pause", "media:producer_paused", producer_id=audio)
    owner = await media_client(server, team.owner, conference_id)
    await owner.join()
    await alice.drain()
    await bob.drain()
    assert (await owner.consume(audio))["producer_paused"] is True
    for client in (alice, bob, owner):
        await client.close()


async def test_pause_and_resume_a_consumer(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    await join_all(alice, bob)
    video = await alice.produce("video")
    await bob.drain()
    consumer_id = (await bob.consume(video))["id"]
    router = await room_router(server, conference_id)

    paused = await bob.request(
        "media:consumer_pause", "media:consumer_paused", consumer_id=consumer_id
    )
    assert paused == {"consumer_id": consumer_id}
    assert router._producers[video]._consumers[consumer_id].paused is True
    resumed = await bob.request(
        "media:consumer_resume", "media:consumer_resumed", consumer_id=consumer_id
    )
    assert resumed == {"consumer_id": consumer_id}
    assert router._producers[video]._consumers[consumer_id].paused is False
    assert await alice.drain() == []  # the producer is not told
    await alice.close()
    await bob.close()


async def test_closing_a_producer_closes_its_consumers(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    await join_all(alice, bob)
    video = await alice.produce("video")
    await bob.drain()
    await bob.consume(video)

    data = await alice.request("media:producer_close", "media:producer_closed", producer_id=video)

    assert data == {"producer_id": video, "user_id": team.alice.id}
    assert await bob.drain() == [{"type": "media:producer_closed", "data": data}]
    dump = await router_dump(server, conference_id)
    assert (dump["producerIds"], dump["consumerIds"]) == ([], [])
    # It is gone for good: closing or consuming it again fails.
    await alice.error("media:producer_close", producer_id=video)
    await bob.error("media:consume", producer_id=video, rtp_capabilities={"codecs": []})
    await alice.close()
    await bob.close()


async def _room_of_three(
    team: Team, server: LiveServer
) -> tuple[str, MediaClient, MediaClient, MediaClient, list[str]]:
    """Alice (producing audio and video), Bob consuming both, the owner in the room."""
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    owner = await media_client(server, team.owner, conference_id)
    await join_all(alice, bob, owner)
    producers = [await alice.produce("audio"), await alice.produce("video")]
    await bob.drain()
    for producer_id in producers:
        await bob.consume(producer_id)
    for client in (alice, bob, owner):
        await client.drain()
    return conference_id, alice, bob, owner, producers


def _departure(
    team: Team, conference_id: str, producers: list[str], alice: MediaClient | None = None
) -> list[dict[str, object]]:
    """What the others hear when Alice's participant goes: her producers, then her (with
    the connection that left, when one did)."""
    closed: list[dict[str, object]] = [
        {"type": "media:producer_closed", "data": {"producer_id": p, "user_id": team.alice.id}}
        for p in producers
    ]
    gone: dict[str, object] = {"user_id": team.alice.id, "conference_id": conference_id}
    if alice is not None:
        gone["connection_id"] = alice.connection_id
    left: dict[str, object] = {"type": "media:peer_left", "data": gone}
    return [*closed, left]


async def _assert_alice_is_gone(server: LiveServer, conference_id: str, alice: MediaClient) -> None:
    dump = await router_dump(server, conference_id)
    assert dump["producerIds"] == []
    assert dump["consumerIds"] == []
    assert len(dump["transportIds"]) == 4  # Bob's and the owner's
    rooms = media_service(server).rooms
    assert await server.call(lambda: alice.connection_id not in rooms.connection_rooms)


async def test_ws_leave(team: Team, server: LiveServer) -> None:
    conference_id, alice, bob, owner, producers = await _room_of_three(team, server)

    data = await alice.request("media:leave", "media:peer_left")

    assert data == {"user_id": team.alice.id, "conference_id": conference_id}
    assert await alice.drain() == []
    expected = _departure(team, conference_id, producers, alice)
    assert await bob.drain() == expected
    assert await owner.drain() == expected
    await _assert_alice_is_gone(server, conference_id, alice)
    # The connection may join again.
    rejoined = await alice.join()
    assert rejoined.producers == []
    for client in (alice, bob, owner):
        await client.close()


async def test_http_leave_removes_every_tab_of_the_user(team: Team, server: LiveServer) -> None:
    conference_id, alice, bob, owner, producers = await _room_of_three(team, server)
    alice_tab2 = await media_client(server, team.alice, conference_id)
    await alice_tab2.join()
    await team.api.ok(team.alice, "POST", f"/{conference_id}/join")
    for client in (alice, bob, owner):
        await client.drain()

    assert await team.api.ok(team.alice, "POST", f"/{conference_id}/leave") == {"left": True}

    expected = _departure(team, conference_id, producers)  # one peer_left for the user
    assert await bob.drain() == expected
    assert await owner.drain() == expected
    assert await alice.drain() == []
    assert await alice_tab2.drain() == []
    await _assert_alice_is_gone(server, conference_id, alice)
    records = await team.api.ok(team.bob, "GET", f"/{conference_id}/participant")
    assert [(r["user_id"], r["is_present"]) for r in records] == [(team.alice.id, False)]
    # Alice's tabs are no longer participants.
    await alice_tab2.error("media:produce", kind="audio", rtp_parameters={})
    for client in (alice, alice_tab2, bob, owner):
        await client.close()


async def test_the_last_one_leaving_tells_no_one(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    alice_idle = await media_client(server, team.alice)
    await alice.join()
    await alice.produce("audio")
    assert [f["type"] for f in await alice_idle.drain()] == [
        "media:peer_joined",
        "media:new_producer",
    ]

    await alice.request("media:leave", "media:peer_left")

    assert await alice_idle.drain() == []
    assert (await router_dump(server, conference_id))["transportIds"] == []
    await alice.close()
    await alice_idle.close()


async def test_end_closes_the_room_for_every_participant_connection(
    team: Team, server: LiveServer
) -> None:
    conference_id, alice, bob, owner, _producers = await _room_of_three(team, server)
    bob_idle = await media_client(server, team.bob)  # Bob's tab that is not in the room
    router = await room_router(server, conference_id)

    await team.api.ok(team.alice, "POST", f"/{conference_id}/end")

    closed = {
        "type": "media:room_closed",
        "data": {"conference_id": conference_id, "reason": "ended"},
    }
    for client in (alice, bob, owner):
        assert await client.drain() == [closed]
    assert await bob_idle.drain() == []
    assert router.closed
    worker = router.worker
    assert (await server.call(worker.dump))["routers"] == []
    error = await alice.error("media:join")
    assert error["message"] == f"conference {conference_id} is ended, not in progress"
    for client in (alice, bob, owner):
        await client.close()
    await bob_idle.close()


async def test_many_clients_join_at_once(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    clients = [
        await media_client(server, user, conference_id)
        for user in (team.alice, team.bob, team.owner) * 3
    ]
    joined = await asyncio.gather(*(client.join(concurrent=True) for client in clients))

    transport_ids = {j.send_transport["id"] for j in joined} | {
        j.recv_transport["id"] for j in joined
    }
    assert len(transport_ids) == 2 * len(clients)
    assert len((await router_dump(server, conference_id))["transportIds"]) == 2 * len(clients)
    for client in clients:
        await client.close()
    await server.wait_connections(0)
    assert (await router_dump(server, conference_id))["transportIds"] == []


async def test_app_data_reaches_the_others_live_and_on_join(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    await join_all(alice, bob)
    screen = {"source": "screen", "label": "Präsentation", "nested": {"n": [1, 2.5, None]}}

    shared = await alice.produce("video", app_data=screen)
    bare = await alice.produce("audio")  # no app_data: an empty object

    live = [frame["data"] for frame in await bob.drain()]
    assert live == [
        {"producer_id": shared, "user_id": team.alice.id, "kind": "video", "app_data": screen},
        {"producer_id": bare, "user_id": team.alice.id, "kind": "audio", "app_data": {}},
    ]
    owner = await media_client(server, team.owner, conference_id)
    assert (await owner.join()).producers == live  # the replay on join carries it too
    await owner.close()
    await alice.close()
    await bob.close()


async def test_app_data_is_bounded_to_4_kib_of_json(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    await join_all(alice, bob)
    at_limit = {"x": "y" * (4096 - len('{"x":""}'))}
    over = {"x": "y" * (4097 - len('{"x":""}'))}

    error = await alice.error(
        "media:produce", kind="audio", rtp_parameters=chrome_rtp_parameters("audio"), app_data=over
    )
    assert error["message"] == "data.app_data must be at most 4096 bytes as JSON, got 4097"
    assert await bob.drain() == []
    assert (await router_dump(server, conference_id))["producerIds"] == []
    # Multi-byte characters count as their UTF-8 bytes.
    wide = {"x": "é" * 2045}  # 8 + 2 * 2045 = 4098 bytes
    error = await alice.error(
        "media:produce", kind="audio", rtp_parameters=chrome_rtp_parameters("audio"), app_data=wide
    )
    assert error["message"].endswith("got 4098")

    produced = await alice.produce("audio", app_data=at_limit)
    [announced] = await bob.drain()
    assert announced["data"]["producer_id"] == produced
    assert announced["data"]["app_data"] == at_limit
    await alice.close()
    await bob.close()


async def test_participants_without_media_are_announced_and_listed(
    team: Team, server: LiveServer
) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    bob_idle = await media_client(server, team.bob)  # Bob's tab outside the room
    owner = await media_client(server, team.owner)  # in the tenant, not in the room

    first = await alice.join()
    assert first.participants == []
    second = await bob.join()

    # Nobody produced anything: Bob still learns Alice is there, and Alice of Bob.
    assert second.producers == []
    assert second.participants == [
        {"user_id": team.alice.id, "display_name": "Alice", "connection_id": alice.connection_id}
    ]
    assert await alice.drain() == [peer_joined(conference_id, team.bob, bob)]
    # User-level, like every peer notification: Bob's other tab hears it, the joiner does not.
    assert await bob_idle.drain() == [peer_joined(conference_id, team.bob, bob)]
    assert await bob.drain() == []
    assert await owner.drain() == []

    # A third joins: listed are the two before, oldest first.
    owner_in = await media_client(server, team.owner, conference_id)
    third = await owner_in.join()
    assert [p["connection_id"] for p in third.participants] == [
        alice.connection_id,
        bob.connection_id,
    ]
    assert [p["display_name"] for p in third.participants] == ["Alice", "Bob"]
    for client in (alice, bob):
        assert await client.drain() == [peer_joined(conference_id, team.owner, owner_in)]
    assert await owner.drain() == [peer_joined(conference_id, team.owner, owner_in)]

    # Bob leaves: the others are told which connection went.
    await bob.request("media:leave", "media:peer_left")
    gone = {
        "type": "media:peer_left",
        "data": {
            "user_id": team.bob.id,
            "conference_id": conference_id,
            "connection_id": bob.connection_id,
        },
    }
    assert await alice.drain() == [gone]
    assert await owner_in.drain() == [gone]
    fourth = await bob.join()
    assert [p["user_id"] for p in fourth.participants] == [team.alice.id, team.owner.id]
    for client in (alice, bob, bob_idle, owner, owner_in):
        await client.close()


async def test_a_consumer_created_paused_stays_paused_until_resumed(
    team: Team, server: LiveServer
) -> None:
    """Last N (issue 17): the web client creates video consumers paused and resumes only
    those it shows; a paused consumer's SFU side is paused from the start."""
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    await join_all(alice, bob)
    video = await alice.produce("video")
    await bob.drain()
    consumer = await bob.request(
        "media:consume",
        "media:consumer_created",
        producer_id=video,
        rtp_capabilities=chrome_rtp_capabilities(),
        paused=True,
    )
    assert consumer["paused"] is True
    router = await room_router(server, conference_id)
    server_consumer = router._producers[video]._consumers[consumer["id"]]
    assert server_consumer.paused is True
    await bob.request("media:consumer_resume", "media:consumer_resumed", consumer_id=consumer["id"])
    assert server_consumer.paused is False
    for client in (alice, bob):
        await client.close()
