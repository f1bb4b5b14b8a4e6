"""Simulcast end to end through a worker: a producer of three rid-based encodings, one consumer.

The sending peer produces with the rtpParameters Chrome's mediasoup-client
built for three simulcast encodings (r0, r1, r2, SSRCs learned from MID and
RID); each test packet's payload carries its encoding index, so what the
receiving peer gets shows which encoding was forwarded.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from roomler.sfu.rtcp import Pli, SenderReport, ntp_from_unix
from roomler.sfu.rtp import RtpPacket
from tests.sfu.engine.test_producer_consumer import (
    CHROME_VIDEO_IDS,
    H264,
    SIMULCAST,
    VIDEO,
    VIDEO_SSRC,
    Call,
    _chrome_ids,
    start_call,
)
from tests.sfu.engine_client import Harness, wait_for

IDS = _chrome_ids(SIMULCAST)
SSRCS = (1111, 2222, 3333)
TS_BASE = (10_000, 5_000_000, 900_000_000)  # each encoding's own timestamp origin


@pytest.fixture
async def engine() -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    await harness.close()


class Sender:
    """Three encodings of one camera, each with its own numbering."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.seq = [100, 20_000, 40_000]
        self.frame = 0

    def send(self, layer: int, *, keyframe: bool = False) -> None:
        payload = bytes([0x10, 0x00 if keyframe else 0x01, layer]) + bytes(40)
        packet = RtpPacket(
            payload_type=96,
            sequence_number=self.seq[layer] & 0xFFFF,
            timestamp=(TS_BASE[layer] + self.frame * 3000) & 0xFFFFFFFF,
            ssrc=SSRCS[layer],
            marker=True,
            extensions={IDS["mid"]: b"2", IDS["rid"]: f"r{layer}".encode()},
            payload=payload,
        )
        self.seq[layer] += 1
        self.call.sender.send_rtp(packet)

    async def frames(
        self, layers: tuple[int, ...], count: int, keyframe: int | None = None
    ) -> None:
        """``count`` frames of each of ``layers``, 20 ms apart; ``keyframe``: that layer's first."""
        for index in range(count):
            self.frame += 1
            for layer in layers:
                self.send(layer, keyframe=index == 0 and layer == keyframe)
            await asyncio.sleep(0.02)

    def plis_for(self, layer: int) -> int:
        return sum(1 for p in self.call.sender.rtcp_of(Pli) if p.media_ssrc == SSRCS[layer])


def layers_of(call: Call) -> list[int]:
    return [p.payload[2] for p in call.forwarded()]


def assert_one_stream(call: Call) -> None:
    """What a decoder needs: no sequence gaps (one skip at a switch), time never goes back."""
    packets = call.forwarded()
    steps = [
        (b.sequence_number - a.sequence_number) & 0xFFFF
        for a, b in zip(packets, packets[1:], strict=False)
    ]
    assert set(steps) <= {1, 2}, steps
    for a, b in zip(packets, packets[1:], strict=False):
        assert (b.timestamp - a.timestamp) & 0xFFFFFFFF < 0x80000000
    for a, b in zip(packets, packets[1:], strict=False):
        if a.payload[2] != b.payload[2]:
            assert b.payload[1] == 0x00, "switched encodings on a non-keyframe"


async def test_the_consumer_climbs_to_the_best_active_encoding_and_follows_preferences(
    engine: Harness,
) -> None:
    call = await start_call(engine, SIMULCAST)
    assert call.consumer["type"] == "simulcast"
    assert call.consumer["rtp_parameters"]["encodings"][0]["scalabilityMode"] == "L3T3"
    sender = Sender(call)

    # Only r0 is sent: it is forwarded from its keyframe on.
    await sender.frames((0,), 3, keyframe=0)
    await wait_for(lambda: len(call.forwarded()) >= 3)
    assert set(layers_of(call)) == {0}

    # r1 starts: the consumer asks for a keyframe on r1 and switches on it.
    await sender.frames((0, 1), 20)
    await wait_for(lambda: sender.plis_for(1) >= 1)
    await sender.frames((0, 1), 5, keyframe=1)
    await wait_for(lambda: layers_of(call)[-1] == 1)
    assert_one_stream(call)

    changes = engine.events_of("consumer.layerschange", call.consumer_id)
    assert {"spatial_layer": 1, "temporal_layer": 0} in changes

    # The receiver prefers the lowest layer: back to r0 on its next keyframe.
    reply = await call.request(
        "consumer.set_preferred_layers", consumer_id=call.consumer_id, spatial_layer=0
    )
    assert reply["preferredLayers"] == {"spatialLayer": 0, "temporalLayer": 2}
    await wait_for(lambda: sender.plis_for(0) >= 1)
    await sender.frames((0, 1), 3)
    assert set(layers_of(call)[-3:]) == {1}  # no keyframe yet: still r1
    await sender.frames((0, 1), 5, keyframe=0)
    await wait_for(lambda: layers_of(call)[-1] == 0)
    assert_one_stream(call)
    stats = await call.request("consumer.get_stats", consumer_id=call.consumer_id)
    assert stats["currentLayers"] == {"spatialLayer": 0, "temporalLayer": 0}


async def test_a_keyframe_that_does_not_come_is_asked_for_again(engine: Harness) -> None:
    call = await start_call(engine, SIMULCAST)
    sender = Sender(call)
    await sender.frames((0, 1), 10, keyframe=1)
    await wait_for(lambda: bool(call.forwarded()) and layers_of(call)[-1] == 1)
    await call.request(
        "consumer.set_preferred_layers", consumer_id=call.consumer_id, spatial_layer=0
    )
    await asyncio.sleep(0.1)  # the first request has arrived
    asked = sender.plis_for(0)
    # The browser ignores the request (too soon after its last keyframe, say).
    await sender.frames((0, 1), 60)
    assert sender.plis_for(0) >= asked + 1
    assert set(layers_of(call)[-3:]) == {1}  # still waiting, nothing broken meanwhile
    await sender.frames((0, 1), 3, keyframe=0)
    await wait_for(lambda: layers_of(call)[-1] == 0)
    plis = sender.plis_for(0)
    await sender.frames((0, 1), 60)
    assert sender.plis_for(0) == plis  # switched: no more asking


async def test_an_encoding_that_stops_is_left_for_one_that_flows(engine: Harness) -> None:
    call = await start_call(engine, SIMULCAST)
    sender = Sender(call)
    await sender.frames((0, 1, 2), 20, keyframe=2)
    await wait_for(lambda: bool(call.forwarded()) and layers_of(call)[-1] == 2)
    # The sender drops its top encoding (its bandwidth fell): r1 takes over.
    await sender.frames((0, 1), 70)
    await wait_for(lambda: sender.plis_for(1) >= 1)
    await sender.frames((0, 1), 5, keyframe=1)
    await wait_for(lambda: layers_of(call)[-1] == 1)
    assert_one_stream(call)


async def test_sender_reports_line_up_the_encodings_timestamps(engine: Harness) -> None:
    call = await start_call(engine, SIMULCAST)
    sender = Sender(call)
    await sender.frames((0,), 3, keyframe=0)
    await wait_for(lambda: len(call.forwarded()) >= 3)
    await sender.frames((0, 1), 20)
    await wait_for(lambda: sender.plis_for(1) >= 1)
    # Once their SSRCs are known: both encodings sampled one instant at their origins.
    ntp = ntp_from_unix(1_000_000.0)
    for layer in (0, 1):
        call.sender.send_rtcp([SenderReport(SSRCS[layer], ntp, TS_BASE[layer], 0, 0)])
    await asyncio.sleep(0.1)
    frame = sender.frame + 1
    # r1's keyframe goes before r0's packet of the same frame (else it would be
    # moved one frame later: that instant was already sent).
    await sender.frames((1, 0), 3, keyframe=1)
    await wait_for(lambda: layers_of(call)[-1] == 1)
    first = next(p for p in call.forwarded() if p.payload[2] == 1)
    reference = call.forwarded()[0]
    # r1's keyframe of frame N carries r0's timeline: the receiver sees no jump.
    assert (first.timestamp - reference.timestamp) & 0xFFFFFFFF == (frame - 1) * 3000


async def test_preferred_layers_are_refused_for_a_simple_consumer(engine: Harness) -> None:
    call = await start_call(engine)
    with pytest.raises(ValueError, match="simple: it has no layers"):
        await call.request(
            "consumer.set_preferred_layers", consumer_id=call.consumer_id, spatial_layer=0
        )
    with pytest.raises(ValueError, match="spatial_layer"):
        await call.request("consumer.set_preferred_layers", consumer_id=call.consumer_id)


async def test_numbering_continues_across_pause_and_resume(engine: Harness) -> None:
    call = await start_call(engine, SIMULCAST)
    sender = Sender(call)
    await sender.frames((0, 1), 5, keyframe=1)
    await wait_for(lambda: len(call.forwarded()) >= 5)
    await call.request("consumer.pause", consumer_id=call.consumer_id)
    await sender.frames((0, 1), 5)
    count = len(call.forwarded())
    await call.request("consumer.resume", consumer_id=call.consumer_id)
    await wait_for(lambda: sender.plis_for(1) >= 2)  # resume asks for a keyframe
    await sender.frames((0, 1), 3)  # not a keyframe yet: nothing
    assert len(call.forwarded()) == count
    await sender.frames((0, 1), 3, keyframe=1)
    await wait_for(lambda: len(call.forwarded()) >= count + 3)
    assert_one_stream(call)
    resumed = call.forwarded()[count]
    assert resumed.payload[1] == 0x00  # starts again on a keyframe
    stats = await call.request("consumer.get_stats", consumer_id=call.consumer_id)
    assert stats["currentLayers"] == {"spatialLayer": 1, "temporalLayer": 0}


async def test_resume_asks_the_forwarded_encoding_for_its_keyframe_until_it_comes(
    engine: Harness,
) -> None:
    """A receiver of the top encoding, paused and resumed, needs a keyframe of that one."""
    call = await start_call(engine, SIMULCAST)
    sender = Sender(call)
    await sender.frames((0, 1, 2), 5, keyframe=2)
    await wait_for(lambda: bool(call.forwarded()) and layers_of(call)[-1] == 2)
    await call.request("consumer.pause", consumer_id=call.consumer_id)
    await sender.frames((0, 1, 2), 3)
    asked = sender.plis_for(2)
    count = len(call.forwarded())
    await call.request("consumer.resume", consumer_id=call.consumer_id)
    await wait_for(lambda: sender.plis_for(2) > asked)
    # The browser ignores it (too soon after its last keyframe): asked again.
    await sender.frames((0, 1, 2), 60)
    assert sender.plis_for(2) >= asked + 2
    assert len(call.forwarded()) == count  # nothing a decoder could start from
    await sender.frames((0, 1, 2), 3, keyframe=2)
    await wait_for(lambda: len(call.forwarded()) >= count + 3)
    assert set(layers_of(call)[count:]) == {2}
    assert_one_stream(call)


# -- one VP8 encoding with temporal layers (L1T3) -------------------------------------

L1T3_PATTERN = (0, 2, 1, 2)  # libwebrtc's three-layer VP8 pattern, TID per frame


def _l1t3_params() -> dict[str, Any]:
    params = copy.deepcopy(VIDEO)
    params["encodings"][0]["scalabilityMode"] = "L1T3"
    return params


class TemporalSender:
    """One VP8 stream of three temporal layers: TIDs 0,2,1,2, the Y bit on each
    frame right after a TID 0 frame, TL0PICIDX counting TID 0 frames."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.frame = 0
        self.tl0 = 200

    def send_frame(self, *, keyframe: bool = False) -> None:
        tid = 0 if keyframe else L1T3_PATTERN[self.frame % 4]
        if tid == 0:
            self.tl0 = (self.tl0 + 1) & 0xFF
        sync = tid > 0 and L1T3_PATTERN[(self.frame - 1) % 4] == 0
        picture_id = (0x7FF0 + self.frame) & 0x7FFF  # wraps during the test
        for part in range(2):  # two packets a frame
            descriptor = bytes(
                [
                    0x90 if part == 0 else 0x80,  # X, S on the first packet
                    0xE0,  # I, L, T
                    0x80 | (picture_id >> 8),
                    picture_id & 0xFF,
                    self.tl0,
                    (tid << 6) | (0x20 if sync else 0),
                ]
            )
            header = bytes([0x10 if keyframe else 0x11, 2, 0]) if part == 0 else b"\x55"
            seq = 2 * self.frame + part
            self.call.sender.send_rtp(
                RtpPacket(
                    payload_type=96,
                    sequence_number=(60_000 + seq) & 0xFFFF,
                    timestamp=self.frame * 3000,
                    ssrc=VIDEO_SSRC,
                    marker=part == 1,
                    extensions={CHROME_VIDEO_IDS["mid"]: b"1"},
                    payload=descriptor + header + bytes(30),
                )
            )
        self.frame += 1

    async def frames(self, count: int, *, keyframe: bool = False) -> None:
        for index in range(count):
            self.send_frame(keyframe=keyframe and index == 0)
            await asyncio.sleep(0.005)


def _descriptor(packet: RtpPacket) -> tuple[int, int, int]:
    """(PictureID, TL0PICIDX, TID) of a forwarded packet."""
    p = packet.payload
    return ((p[2] & 0x7F) << 8) | p[3], p[4], p[5] >> 6


def _assert_one_vp8_stream(packets: list[RtpPacket]) -> None:
    """No sequence gap, PictureIDs +1 a picture and TL0PICIDX +1 a TID 0 picture."""
    for a, b in zip(packets, packets[1:], strict=False):
        assert (b.sequence_number - a.sequence_number) & 0xFFFF == 1
        (pid_a, tl0_a, _), (pid_b, tl0_b, tid_b) = _descriptor(a), _descriptor(b)
        if b.timestamp == a.timestamp:
            assert (pid_b, tl0_b) == (pid_a, tl0_a)
        else:
            assert (pid_b - pid_a) & 0x7FFF == 1, (pid_a, pid_b)
            assert (tl0_b - tl0_a) & 0xFF == (1 if tid_b == 0 else 0), (tl0_a, tl0_b)


async def test_one_vp8_encoding_with_temporal_layers_is_consumed_by_temporal_layer(
    engine: Harness,
) -> None:
    call = await start_call(engine, _l1t3_params())
    # mediasoup's type for one VP8 encoding of several temporal layers.
    assert call.consumer["type"] == "simulcast"
    assert call.consumer["rtp_parameters"]["encodings"][0]["scalabilityMode"] == "L1T3"
    sender = TemporalSender(call)
    await sender.frames(8, keyframe=True)
    await wait_for(lambda: len(call.forwarded()) >= 16)
    stats = await call.request("consumer.get_stats", consumer_id=call.consumer_id)
    assert stats["currentLayers"] == {"spatialLayer": 0, "temporalLayer": 2}

    # Temporal layer 0 only: a quarter of the pictures, numbered without gaps.
    reply = await call.request(
        "consumer.set_preferred_layers",
        consumer_id=call.consumer_id,
        spatial_layer=0,
        temporal_layer=0,
    )
    assert reply["preferredLayers"] == {"spatialLayer": 0, "temporalLayer": 0}
    before = len(call.forwarded())
    await sender.frames(16)
    await wait_for(lambda: len(call.forwarded()) >= before + 8)
    await asyncio.sleep(0.05)
    low = call.forwarded()[before:]
    assert len(low) == 8 and {_descriptor(p)[2] for p in low} == {0}
    stats = await call.request("consumer.get_stats", consumer_id=call.consumer_id)
    assert stats["currentLayers"] == {"spatialLayer": 0, "temporalLayer": 0}
    assert {"spatial_layer": 0, "temporal_layer": 0} in engine.events_of(
        "consumer.layerschange", call.consumer_id
    )

    # Back up to layer 2: taken at the next layer-sync point, without a keyframe.
    await call.request(
        "consumer.set_preferred_layers",
        consumer_id=call.consumer_id,
        spatial_layer=0,
        temporal_layer=2,
    )
    before = len(call.forwarded())
    await sender.frames(8)
    await wait_for(lambda: len(call.forwarded()) >= before + 14)
    assert {_descriptor(p)[2] for p in call.forwarded()[before:]} == {0, 1, 2}
    _assert_one_vp8_stream(call.forwarded())
    stats = await call.request("consumer.get_stats", consumer_id=call.consumer_id)
    assert stats["currentLayers"] == {"spatialLayer": 0, "temporalLayer": 2}


async def test_one_h264_encoding_with_temporal_layers_has_one_temporal_layer(
    engine: Harness,
) -> None:
    """mediasoup makes it a simulcast consumer; H.264 packets name no TID to drop by."""
    params = copy.deepcopy(H264)
    params["encodings"][0]["scalabilityMode"] = "L1T3"
    call = await start_call(engine, params)
    assert call.consumer["type"] == "simulcast"
    reply = await call.request(
        "consumer.set_preferred_layers", consumer_id=call.consumer_id, spatial_layer=0
    )
    assert reply["preferredLayers"] == {"spatialLayer": 0, "temporalLayer": 0}
    ssrc = H264["encodings"][0]["ssrc"]
    for seq, nal_type in enumerate((5, 1, 1, 1), start=1):  # an IDR, then slices
        call.sender.send_rtp(
            RtpPacket(
                payload_type=108,
                sequence_number=seq,
                timestamp=seq * 3000,
                ssrc=ssrc,
                marker=True,
                extensions={4: b"3"},
                payload=bytes([0x60 | nal_type]) + bytes(40),
            )
        )
    await wait_for(lambda: len(call.forwarded()) == 4)
    stats = await call.request("consumer.get_stats", consumer_id=call.consumer_id)
    assert stats["currentLayers"] == {"spatialLayer": 0, "temporalLayer": 0}
