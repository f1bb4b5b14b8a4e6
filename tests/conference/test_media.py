"""Media through the signaling: ICE, DTLS and SRTP on real UDP, RTP from one user to another.

The peers are the SFU tests' `WebRtcPeer` (tests/sfu/engine_client.py): what a browser
does on the wire, driven here by the `media:*` messages a browser would send.
"""

from __future__ import annotations

from roomler.sfu.rtcp import Fir, Pli
from tests.conference.conftest import Team, join_all, media_client, router_dump
from tests.conference.peers import VIDEO_SSRC, connect, vp8_packet
from tests.realtime.conftest import LiveServer
from tests.sfu.engine_client import wait_for


async def test_video_flows_from_alice_to_bob(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    alice_joined, bob_joined = await join_all(alice, bob)
    sender = await connect(alice, alice_joined.send_transport)
    receiver = await connect(bob, bob_joined.recv_transport)
    try:
        video = await alice.produce("video")
        await bob.drain()
        consumer = await bob.consume(video)
        consumer_ssrc = consumer["rtp_parameters"]["encodings"][0]["ssrc"]

        # The server asks Alice for a keyframe as soon as Bob consumes.
        await wait_for(
            lambda: (
                any(p.media_ssrc == VIDEO_SSRC for p in sender.rtcp_of(Pli)) or sender.rtcp_of(Fir)
            )
        )
        sender.send_rtp(vp8_packet(1000, keyframe=True))
        for seq in range(1001, 1010):
            sender.send_rtp(vp8_packet(seq, keyframe=False))
        await wait_for(lambda: len(receiver.received(consumer_ssrc)) >= 10)

        received = receiver.received(consumer_ssrc)
        assert [p.payload for p in received[:10]] == [
            vp8_packet(s, keyframe=s == 1000).payload for s in range(1000, 1010)
        ]
        assert {p.payload_type for p in received} == {
            consumer["rtp_parameters"]["codecs"][0]["payloadType"]
        }

        # Bob hides the tile: nothing more arrives until he resumes.
        consumer_id = consumer["id"]
        await bob.request("media:consumer_pause", "media:consumer_paused", consumer_id=consumer_id)
        for seq in range(1010, 1015):
            sender.send_rtp(vp8_packet(seq, keyframe=False))
        await bob.request(
            "media:consumer_resume", "media:consumer_resumed", consumer_id=consumer_id
        )
        sender.send_rtp(vp8_packet(1015, keyframe=True))
        resumed = vp8_packet(1015, keyframe=True).payload
        await wait_for(lambda: resumed in [p.payload for p in receiver.received(consumer_ssrc)])
        payloads = [p.payload for p in receiver.received(consumer_ssrc)]
        hidden = [vp8_packet(s, keyframe=False).payload for s in range(1010, 1015)]
        assert not set(hidden) & set(payloads)
    finally:
        sender.close()
        receiver.close()
    await alice.close()
    await bob.close()
    await server.wait_connections(0)
    assert (await router_dump(server, conference_id))["transportIds"] == []
