"""Peers that speak to the SFU on the wire, driven by `media:*` messages.

They are the SFU tests' `WebRtcPeer` (tests/sfu/engine_client.py): ICE checks, DTLS and
SRTP on real UDP, what a browser does.
"""

from __future__ import annotations

from typing import Any

from roomler.sfu.rtp import RtpPacket
from tests.conference.conftest import MediaClient, chrome_rtp_parameters
from tests.sfu.engine_client import WebRtcPeer, wait_for

VIDEO = chrome_rtp_parameters("video")
VIDEO_SSRC = VIDEO["encodings"][0]["ssrc"]
VIDEO_PT = VIDEO["codecs"][0]["payloadType"]
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
MID_ID = next(e["id"] for e in VIDEO["headerExtensions"] if e["uri"] == MID_URI)


def vp8_packet(seq: int, *, keyframe: bool) -> RtpPacket:
    """A one-packet VP8 frame (descriptor S=1; P=0 marks a keyframe) that names its `seq`."""
    payload = bytes([0x10, 0x00 if keyframe else 0x01]) + seq.to_bytes(2, "big") + bytes(60)
    return RtpPacket(
        payload_type=VIDEO_PT,
        sequence_number=seq,
        timestamp=seq * 3000,
        ssrc=VIDEO_SSRC,
        marker=True,
        extensions={MID_ID: VIDEO["mid"].encode()},
        payload=payload,
    )


async def connect(client: MediaClient, transport: dict[str, Any]) -> WebRtcPeer:
    """ICE check, `media:connect_transport`, DTLS handshake: what mediasoup-client does."""
    peer = await WebRtcPeer(transport, dtls_role="client").open()
    await peer.ice_check()
    result = await client.request(
        "media:connect_transport",
        "media:transport_connected",
        transport_id=transport["id"],
        dtls_parameters=peer.dtls_parameters(),
    )
    assert result == {"transport_id": transport["id"]}
    peer.start_dtls()
    await wait_for(lambda: peer.srtp is not None)
    return peer
