"""Simulcast through the signaling: preferred layers, priority, layer and score events on /ws.

Alice produces the three rid-based VP8 encodings Chrome's mediasoup-client sends
(tests/sfu/fixtures/chrome_produce_video_simulcast.json) from a real ICE/DTLS/SRTP peer;
Bob consumes over his own peer and drives the consumer with the `media:*` messages.
"""

from __future__ import annotations

import asyncio
from typing import Any

from roomler.sfu.rtcp import Pli, ReceiverReport, ReportBlock
from roomler.sfu.rtp import RtpPacket
from tests.conference.conftest import (
    MediaClient,
    Team,
    fixture_json,
    join_all,
    media_client,
)
from tests.conference.peers import connect
from tests.realtime.conftest import LiveServer
from tests.sfu.engine_client import WebRtcPeer, wait_for

SIMULCAST = fixture_json("chrome_produce_video_simulcast.json")
EXTENSIONS = {e["uri"]: e["id"] for e in SIMULCAST["headerExtensions"]}
MID_ID = EXTENSIONS["urn:ietf:params:rtp-hdrext:sdes:mid"]
RID_ID = EXTENSIONS["urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"]
SSRCS = (1111, 2222, 3333)


class Camera:
    """Alice's three encodings; a keyframe on an encoding whenever the SFU asks for one."""

    def __init__(self, peer: WebRtcPeer) -> None:
        self.peer = peer
        self.seq = [100, 20_000, 40_000]
        self.plis = [0, 0, 0]
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        frame = 0
        while True:
            frame += 1
            for layer in range(3):
                asked = sum(1 for p in self.peer.rtcp_of(Pli) if p.media_ssrc == SSRCS[layer])
                keyframe = frame == 1 or asked > self.plis[layer]
                self.plis[layer] = asked
                self._send(layer, frame, keyframe)
            await asyncio.sleep(0.03)

    def _send(self, layer: int, frame: int, keyframe: bool) -> None:
        self.peer.send_rtp(
            RtpPacket(
                payload_type=SIMULCAST["codecs"][0]["payloadType"],
                sequence_number=self.seq[layer] & 0xFFFF,
                timestamp=frame * 3000,
                ssrc=SSRCS[layer],
                marker=True,
                extensions={MID_ID: SIMULCAST["mid"].encode(), RID_ID: f"r{layer}".encode()},
                payload=bytes([0x10, 0x00 if keyframe else 0x01, layer]) + bytes(200),
            )
        )
        self.seq[layer] += 1


async def events(client: MediaClient, event_type: str, predicate: Any) -> dict[str, Any]:
    """The next unsolicited `event_type` frame whose data satisfies ``predicate``."""
    async with asyncio.timeout(5):
        while True:
            frame = await client.next_media()
            if frame["type"] == event_type and predicate(frame["data"]):
                assert "request_id" not in frame
                data: dict[str, Any] = frame["data"]
                return data


async def test_preferred_layers_priority_layer_and_score_events(
    team: Team, server: LiveServer
) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    alice_joined, bob_joined = await join_all(alice, bob)
    sender = await connect(alice, alice_joined.send_transport)
    receiver = await connect(bob, bob_joined.recv_transport)
    camera: Camera | None = None
    try:
        video = await alice.request(
            "media:produce", "media:produce_result", kind="video", rtp_parameters=SIMULCAST
        )
        await bob.drain()
        consumer = await bob.consume(video["id"])
        assert consumer["type"] == "simulcast"
        consumer_id = consumer["id"]
        ssrc = consumer["rtp_parameters"]["encodings"][0]["ssrc"]
        camera = Camera(sender)

        # The consumer climbs to the top encoding and tells Bob's connection.
        top = await events(bob, "media:consumer_layers_changed", lambda d: d["spatial_layer"] == 2)
        assert top == {"consumer_id": consumer_id, "spatial_layer": 2, "temporal_layer": 0}

        # Bob's tile is small: he prefers the lowest layer, and gets it.
        reply = await bob.request(
            "media:set_preferred_layers",
            "media:preferred_layers_set",
            consumer_id=consumer_id,
            spatial_layer=0,
        )
        assert reply == {"consumer_id": consumer_id, "spatial_layer": 0, "temporal_layer": 2}
        await events(bob, "media:consumer_layers_changed", lambda d: d["spatial_layer"] == 0)
        await wait_for(lambda: receiver.received(ssrc)[-1].payload[2] == 0)

        # Too high a layer is clamped to what the producer has.
        reply = await bob.request(
            "media:set_preferred_layers",
            "media:preferred_layers_set",
            consumer_id=consumer_id,
            spatial_layer=9,
            temporal_layer=0,
        )
        assert reply == {"consumer_id": consumer_id, "spatial_layer": 2, "temporal_layer": 0}
        # ... and the consumer climbs back to it (its event may come before the next reply).
        await events(bob, "media:consumer_layers_changed", lambda d: d["spatial_layer"] == 2)

        reply = await bob.request(
            "media:set_consumer_priority",
            "media:consumer_priority_set",
            consumer_id=consumer_id,
            priority=3,
        )
        assert reply == {"consumer_id": consumer_id, "priority": 3}

        # Bob's browser reports heavy loss: the score drops, and comes back.
        def report(fraction_lost: int) -> None:
            block = ReportBlock(ssrc, fraction_lost=fraction_lost)
            receiver.send_rtcp([ReceiverReport(ssrc=5, reports=[block])])

        report(128)
        low = await events(bob, "media:consumer_score", lambda d: d["score"] == 0)
        assert low["consumer_id"] == consumer_id
        assert len(low["producer_scores"]) == 3
        report(0)
        await events(bob, "media:consumer_score", lambda d: d["score"] == 10)

        # Alice hears none of Bob's consumer events.
        assert not [f for f in await alice.drain() if f["type"].startswith("media:consumer_")]
    finally:
        if camera is not None:
            camera.task.cancel()
        sender.close()
        receiver.close()
    await alice.close()
    await bob.close()


async def test_bad_layer_and_priority_requests_are_refused(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    await join_all(alice, bob)
    video = await alice.produce("video")  # one encoding
    await bob.drain()
    consumer = await bob.consume(video)
    assert consumer["type"] == "simple"
    consumer_id = consumer["id"]

    error = await bob.error("media:set_preferred_layers", consumer_id=consumer_id, spatial_layer=0)
    assert "it has no layers" in error["message"]
    error = await bob.error("media:set_preferred_layers", consumer_id=consumer_id)
    assert error["message"] == "data.spatial_layer is required"
    error = await bob.error("media:set_preferred_layers", consumer_id=consumer_id, spatial_layer=-1)
    assert "data.spatial_layer must be an integer from 0 to 15" in error["message"]
    for priority in (0, 256, "high", True):
        error = await bob.error(
            "media:set_consumer_priority", consumer_id=consumer_id, priority=priority
        )
        assert error["message"] == "data.priority must be an integer from 1 to 255"
    # Alice cannot steer Bob's consumer.
    error = await alice.error("media:set_consumer_priority", consumer_id=consumer_id, priority=2)
    assert consumer_id in error["message"] or "consumer" in error["message"]
    # A simple consumer takes a priority.
    reply = await bob.request(
        "media:set_consumer_priority",
        "media:consumer_priority_set",
        consumer_id=consumer_id,
        priority=2,
    )
    assert reply == {"consumer_id": consumer_id, "priority": 2}
    await alice.close()
    await bob.close()
