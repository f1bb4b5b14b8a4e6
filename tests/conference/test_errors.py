"""Every `media:*` failure is a `media:error` to the requesting connection only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from roomler.ids import new_id
from tests.conference.conftest import (
    MediaClient,
    Team,
    chrome_rtp_capabilities,
    chrome_rtp_parameters,
    media_client,
    router_dump,
)
from tests.realtime.conftest import LiveServer, add_tenant


async def test_join_refusals(team: Team, server: LiveServer, db: Any) -> None:
    unknown = new_id()
    scheduled = (await team.api.create(team.alice))["id"]
    eve_tenant = await add_tenant(db, team.eve)
    foreign = await type(team.api)(team.api.http, eve_tenant).started(team.eve)
    alice = await media_client(server, team.alice)

    cases = [
        (unknown, f"unknown conference {unknown}"),
        (foreign, f"unknown conference {foreign}"),  # another tenant's
        (scheduled, f"conference {scheduled} is scheduled, not in progress"),
    ]
    for conference_id, message in cases:
        alice.conference_id = conference_id
        assert (await alice.error("media:join"))["message"] == message
    assert await alice.drain() == []
    await alice.close()


async def test_requests_before_joining_are_refused(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    expected = f"not a participant of conference {conference_id}; send media:join"
    requests: list[tuple[str, dict[str, Any]]] = [
        ("media:connect_transport", {"transport_id": "t", "dtls_parameters": {}}),
        ("media:produce", {"kind": "audio", "rtp_parameters": chrome_rtp_parameters("audio")}),
        ("media:consume", {"producer_id": "p", "rtp_capabilities": chrome_rtp_capabilities()}),
        ("media:producer_close", {"producer_id": "p"}),
        ("media:producer_pause", {"producer_id": "p"}),
        ("media:producer_resume", {"producer_id": "p"}),
        ("media:consumer_pause", {"consumer_id": "c"}),
        ("media:consumer_resume", {"consumer_id": "c"}),
        ("media:leave", {}),
    ]
    for message_type, data in requests:
        error = await alice.error(message_type, **data)
        assert error["message"] == expected, message_type
    await alice.close()


async def _pair(team: Team, server: LiveServer) -> tuple[MediaClient, MediaClient, Any, Any]:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    alice_joined, bob_joined = await alice.join(), await bob.join()
    assert [f["type"] for f in await alice.drain()] == ["media:peer_joined"]
    return alice, bob, alice_joined, bob_joined


async def test_unknown_or_foreign_objects(team: Team, server: LiveServer) -> None:
    alice, bob, _alice_joined, bob_joined = await _pair(team, server)
    bobs_producer = await bob.produce("audio")
    await alice.drain()
    bobs_transport = bob_joined.send_transport["id"]
    dtls = {"role": "client", "fingerprints": [{"algorithm": "sha-256", "value": "AA"}]}

    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            "media:connect_transport",
            {"transport_id": "nope", "dtls_parameters": dtls},
            "unknown transport nope",
        ),
        # Another participant's transport is not this connection's to connect.
        (
            "media:connect_transport",
            {"transport_id": bobs_transport, "dtls_parameters": dtls},
            f"unknown transport {bobs_transport}",
        ),
        (
            "media:consume",
            {"producer_id": "nope", "rtp_capabilities": chrome_rtp_capabilities()},
            "unknown producer nope",
        ),
        # Only the producing connection may close, pause or resume its producer.
        (
            "media:producer_close",
            {"producer_id": bobs_producer},
            f"unknown producer {bobs_producer}",
        ),
        (
            "media:producer_pause",
            {"producer_id": bobs_producer},
            f"unknown producer {bobs_producer}",
        ),
        ("media:consumer_pause", {"consumer_id": "nope"}, "unknown consumer nope"),
        ("media:consumer_resume", {"consumer_id": "nope"}, "unknown consumer nope"),
    ]
    for message_type, data, message in cases:
        assert (await alice.error(message_type, **data))["message"] == message
    assert await bob.drain() == []
    dump = await router_dump(server, alice.conference_id)
    assert dump["producerIds"] == [bobs_producer]
    await alice.close()
    await bob.close()


async def test_invalid_parameters(team: Team, server: LiveServer) -> None:
    alice, bob, joined, _ = await _pair(team, server)
    transport_id = joined.send_transport["id"]
    audio = chrome_rtp_parameters("audio")
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("media:produce", {"kind": "text", "rtp_parameters": audio}, "data.kind must be one of"),
        ("media:produce", {"kind": "audio"}, "data.rtp_parameters is required"),
        ("media:produce", {"kind": "audio", "rtp_parameters": []}, "data.rtp_parameters must be"),
        (
            "media:produce",
            {"kind": "audio", "rtp_parameters": audio, "app_data": "x"},
            "data.app_data must be an object",
        ),
        (
            "media:produce",
            {"kind": "audio", "rtp_parameters": audio, "app_data": {"x": "y" * 4096}},
            "data.app_data must be at most 4096 bytes as JSON, got 4104",
        ),
        (
            "media:produce",
            {"kind": "audio", "rtp_parameters": audio, "app_data": {"label": "\ud800"}},
            "data.app_data must not contain lone surrogates",
        ),
        ("media:consume", {"producer_id": "p"}, "data.rtp_capabilities is required"),
        ("media:consume", {"producer_id": 7, "rtp_capabilities": {}}, "data.producer_id must be"),
        ("media:connect_transport", {"transport_id": transport_id}, "data.dtls_parameters"),
        (
            "media:connect_transport",
            {"transport_id": "x" * 65, "dtls_parameters": {}},
            "at most 64",
        ),
        ("media:consumer_pause", {}, "data.consumer_id is required"),
    ]
    for message_type, data, message in cases:
        error = await alice.error(message_type, **data)
        assert message in error["message"], (message_type, error)
    # Fields the worker checks: SFU objects that are well-formed JSON but wrong.
    for message_type, data in [
        ("media:produce", {"kind": "audio", "rtp_parameters": {"codecs": []}}),
        ("media:produce", {"kind": "video", "rtp_parameters": {**audio, "encodings": "x"}}),
        (
            "media:connect_transport",
            {"transport_id": transport_id, "dtls_parameters": {"role": "boss", "fingerprints": []}},
        ),
    ]:
        await alice.error(message_type, **data)
    # A conference id is required and must be an id.
    alice.conference_id = ""
    error = await alice.error("media:join")
    assert error["message"] == "data.conference_id must be a 24-character lowercase hex id"
    await alice.client.send("media:join", {}, request_id="q")
    error = await alice.reply("media:error", "q")
    assert error["message"] == "data.conference_id is required"
    # Nothing was created by any of it, and the connection still works.
    dump = await router_dump(server, bob.conference_id)
    assert dump["producerIds"] == []
    alice.conference_id = bob.conference_id
    assert await alice.produce("audio")
    await alice.close()
    await bob.close()


async def test_cannot_consume_without_a_common_codec(team: Team, server: LiveServer) -> None:
    alice, bob, _, _ = await _pair(team, server)
    video = await alice.produce("video")
    await bob.drain()
    audio_only = chrome_rtp_capabilities()
    audio_only["codecs"] = [c for c in audio_only["codecs"] if c["kind"] == "audio"]

    error = await bob.error("media:consume", producer_id=video, rtp_capabilities=audio_only)

    assert error["message"].startswith(f"cannot consume producer {video}")
    assert (await router_dump(server, bob.conference_id))["consumerIds"] == []
    await alice.close()
    await bob.close()


async def test_a_connection_joins_one_room_at_a_time(team: Team, server: LiveServer) -> None:
    alice, bob, first, _ = await _pair(team, server)
    error = await alice.error("media:join")
    assert error["message"] == (
        f"this connection is already in conference {alice.conference_id}; send media:leave first"
    )
    other = await team.api.started(team.alice)
    error = await alice.error("media:join", conference_id=other)
    assert "already in conference" in error["message"]
    dump = await router_dump(server, alice.conference_id)
    assert len(dump["transportIds"]) == 4
    await alice.close()
    await bob.close()


async def test_errors_reach_only_the_requesting_connection(team: Team, server: LiveServer) -> None:
    alice, bob, _, _ = await _pair(team, server)
    alice_tab2 = await media_client(server, team.alice, alice.conference_id)
    await alice_tab2.join()
    for client in (alice, bob):
        assert [f["type"] for f in await client.drain()] == ["media:peer_joined"]

    await alice.error("media:producer_close", producer_id="nope")
    # Without a request id, the error has none either.
    await alice.client.ws.send(
        json.dumps({"type": "media:consume", "data": {"conference_id": alice.conference_id}})
    )
    frame = await alice.next_media()
    assert frame == {
        "type": "media:error",
        "data": {"message": "data.producer_id is required", "request_type": "media:consume"},
    }

    assert await alice_tab2.drain() == []
    assert await bob.drain() == []
    for client in (alice, alice_tab2, bob):
        await client.close()


# --- the conference layer's one error: SFU failures become RoomError ------------------------


def test_sfu_failures_become_room_errors_with_the_workers_message() -> None:
    from roomler.conference.errors import RoomError, sfu_failures_as_room_errors
    from roomler.sfu import ChannelError, InvalidStateError, RequestFailedError

    failures = [
        (RequestFailedError("transport.produce", "unsupported codec"), "unsupported codec"),
        (ChannelError("worker 12 died: killed"), "worker 12 died: killed"),
        (InvalidStateError("Producer closed"), "Producer closed"),
    ]
    for failure, message in failures:
        with pytest.raises(RoomError) as raised, sfu_failures_as_room_errors():
            raise failure
        assert str(raised.value) == message
        assert raised.value.__cause__ is failure
    with pytest.raises(KeyError), sfu_failures_as_room_errors():
        raise KeyError("not an SFU failure")
