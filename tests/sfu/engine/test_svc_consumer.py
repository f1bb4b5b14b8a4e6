"""VP9 SVC end to end through a worker: one stream of three spatial layers, one consumer.

The sending peer produces VP9 with one encoding and a ``scalabilityMode``
(as mediasoup-client does for Chrome); each picture is one packet per
spatial layer, its VP9 descriptor carrying the layer ids (RFC 9628) and its
last byte the spatial id, so what the receiving peer gets shows which layers
were forwarded.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from roomler.sfu.rtcp import Pli, Remb
from roomler.sfu.rtp import RtpPacket
from tests.sfu.engine.test_bandwidth_layers import ShapedReceiver
from tests.sfu.engine.test_producer_consumer import VIDEO, VIDEO_SSRC, Call, _chrome_ids, start_call
from tests.sfu.engine_client import Harness, wait_for

IDS = _chrome_ids(VIDEO)
VP9_PT = 98


def vp9_params(mode: str) -> dict[str, Any]:
    params = copy.deepcopy(VIDEO)
    feedback = params["codecs"][0]["rtcpFeedback"]
    params["codecs"] = [
        {
            "mimeType": "video/VP9",
            "payloadType": VP9_PT,
            "clockRate": 90000,
            "parameters": {"profile-id": 0},
            "rtcpFeedback": feedback,
        },
        {
            "mimeType": "video/rtx",
            "payloadType": VP9_PT + 1,
            "clockRate": 90000,
            "parameters": {"apt": VP9_PT},
            "rtcpFeedback": [],
        },
    ]
    params["encodings"][0]["scalabilityMode"] = mode
    return params


@pytest.fixture
async def engine() -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    await harness.close()


class Sender:
    """A VP9 SVC camera: three spatial layers a picture, one temporal layer."""

    def __init__(self, call: Call, spatial_layers: int = 3) -> None:
        self.call = call
        self.spatial_layers = spatial_layers
        self.seq = 1000
        self.picture = 0

    def send_picture(self, *, keyframe: bool = False) -> None:
        self.picture += 1
        for sid in range(self.spatial_layers):
            inter = 0x00 if keyframe else 0x40
            first = 0x20 | inter | 0x08 | 0x04  # L, P, B, E (one packet per layer frame)
            layers = 0x10 | (sid << 1) | (1 if sid and keyframe else 0)  # U, SID, D
            payload = bytes([first, layers, self.picture & 0xFF]) + bytes(30) + bytes([sid])
            packet = RtpPacket(
                payload_type=VP9_PT,
                sequence_number=self.seq & 0xFFFF,
                timestamp=(self.picture * 3000) & 0xFFFFFFFF,
                ssrc=VIDEO_SSRC,
                marker=sid == self.spatial_layers - 1,
                extensions={IDS["mid"]: b"1"},
                payload=payload,
            )
            self.seq += 1
            self.call.sender.send_rtp(packet)

    async def pictures(self, count: int, *, keyframe: bool = False) -> None:
        for index in range(count):
            self.send_picture(keyframe=keyframe and index == 0)
            await asyncio.sleep(0.02)

    def plis(self) -> int:
        return sum(1 for p in self.call.sender.rtcp_of(Pli) if p.media_ssrc == VIDEO_SSRC)


def layers_of(call: Call) -> list[int]:
    return [p.payload[-1] for p in call.forwarded()]


def assert_one_stream(call: Call) -> None:
    """No sequence gaps, and each picture's marker on the highest layer the receiver got.

    Not checked on the very first picture: its upper layers were not yet seen
    when its layer 0 went out (that one ends the picture as far as was known).
    """
    packets = call.forwarded()
    steps = {
        (b.sequence_number - a.sequence_number) & 0xFFFF
        for a, b in zip(packets, packets[1:], strict=False)
    }
    assert steps <= {1}, steps
    by_picture: dict[int, list[RtpPacket]] = {}
    for packet in packets:
        by_picture.setdefault(packet.timestamp, []).append(packet)
    for picture in list(by_picture.values())[1:]:
        assert [p.marker for p in picture] == [False] * (len(picture) - 1) + [True], " ".join(
            f"{p.timestamp}/{p.payload[-1]}/{int(p.marker)}" for p in packets
        )


async def test_k_svc_switches_spatial_layers_on_keyframes_only(engine: Harness) -> None:
    call = await start_call(engine, vp9_params("L3T3_KEY"))
    assert call.consumer["type"] == "svc"
    assert call.consumer["rtp_parameters"]["encodings"][0]["scalabilityMode"] == "L3T3_KEY"
    sender = Sender(call)

    # A keyframe carries every layer; after it, only the top one flows.
    await sender.pictures(4, keyframe=True)
    await wait_for(lambda: len(call.forwarded()) >= 6)
    assert layers_of(call) == [0, 1, 2, 2, 2, 2]
    changes = engine.events_of("consumer.layerschange", call.consumer_id)
    assert changes[-1] == {"spatial_layer": 2, "temporal_layer": 0}

    # The receiver asks for the lowest layer: K-SVC waits for a keyframe.
    reply = await call.request(
        "consumer.set_preferred_layers", consumer_id=call.consumer_id, spatial_layer=0
    )
    assert reply["preferredLayers"] == {"spatialLayer": 0, "temporalLayer": 2}
    plis = sender.plis()
    await wait_for(lambda: sender.plis() > plis)
    await sender.pictures(3)
    assert layers_of(call)[-3:] == [2, 2, 2]
    await sender.pictures(3, keyframe=True)
    await wait_for(lambda: len(call.forwarded()) >= 12)
    assert layers_of(call)[-3:] == [0, 0, 0]
    assert_one_stream(call)
    stats = await call.request("consumer.get_stats", consumer_id=call.consumer_id)
    assert stats["currentLayers"] == {"spatialLayer": 0, "temporalLayer": 0}
    assert stats["type"] == "outbound-rtp"

    # Up again: a keyframe is asked for, and the top layer comes back with it.
    plis = sender.plis()
    await call.request(
        "consumer.set_preferred_layers", consumer_id=call.consumer_id, spatial_layer=2
    )
    await wait_for(lambda: sender.plis() > plis)
    await sender.pictures(2)
    assert layers_of(call)[-2:] == [0, 0]
    count = len(call.forwarded())
    await sender.pictures(2, keyframe=True)
    await wait_for(lambda: len(call.forwarded()) >= count + 4)
    assert layers_of(call)[count:] == [0, 1, 2, 2]
    assert_one_stream(call)


async def test_full_svc_drops_upper_layers_from_the_next_picture(engine: Harness) -> None:
    call = await start_call(engine, vp9_params("L3T3"))
    sender = Sender(call)
    await sender.pictures(2, keyframe=True)
    await wait_for(lambda: len(call.forwarded()) >= 6)
    assert layers_of(call) == [0, 1, 2] * 2
    plis = sender.plis()
    await call.request(
        "consumer.set_preferred_layers", consumer_id=call.consumer_id, spatial_layer=1
    )
    await sender.pictures(2)
    await wait_for(lambda: len(call.forwarded()) >= 10)
    assert layers_of(call)[6:] == [0, 1] * 2  # no keyframe needed to go down
    assert sender.plis() == plis
    assert_one_stream(call)
    assert {"spatial_layer": 1, "temporal_layer": 0} in engine.events_of(
        "consumer.layerschange", call.consumer_id
    )


async def test_svc_numbering_continues_across_pause_and_resume(engine: Harness) -> None:
    call = await start_call(engine, vp9_params("L3T3_KEY"))
    sender = Sender(call)
    await sender.pictures(3, keyframe=True)
    await wait_for(lambda: len(call.forwarded()) >= 5)
    await call.request("consumer.pause", consumer_id=call.consumer_id)
    await sender.pictures(3)
    count = len(call.forwarded())
    await call.request("consumer.resume", consumer_id=call.consumer_id)
    await sender.pictures(2)  # not a keyframe yet: nothing
    assert len(call.forwarded()) == count
    await sender.pictures(2, keyframe=True)
    await wait_for(lambda: len(call.forwarded()) >= count + 4)
    assert layers_of(call)[count:] == [0, 1, 2, 2]
    assert_one_stream(call)


async def test_svc_demand_counts_the_layers_a_spatial_layer_needs(engine: Harness) -> None:
    call = await start_call(engine, vp9_params("L3T3"))
    sender = Sender(call)
    await sender.pictures(10, keyframe=True)
    await wait_for(lambda: len(call.forwarded()) >= 30)
    consumer = engine.handler.objects.consumers[call.consumer_id]
    demand = consumer.demand(asyncio.get_running_loop().time())
    costs = [demand.layers[(s, 2)] for s in range(3)]
    # Full SVC: each spatial layer costs itself and those below (equal-size layers here).
    assert 0 < costs[0] < costs[1] < costs[2]
    assert costs[2] == pytest.approx(3 * costs[0], rel=0.2)


class SvcCamera:
    """A VP9 SVC camera at 25 fps: spatial layers of about 60, 200 and 700 kbps,
    a keyframe (every layer intra) whenever it was asked for one."""

    SIZES = ((1, 280), (1, 1000), (3, 1150))  # (packets, payload bytes) per layer frame

    def __init__(self, call: Call) -> None:
        self.call = call
        self.seq = 7000
        self.picture = 0
        self.plis_seen = 0
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.picture += 1
            plis = sum(1 for p in self.call.sender.rtcp_of(Pli) if p.media_ssrc == VIDEO_SSRC)
            keyframe = self.picture == 1 or plis > self.plis_seen
            self.plis_seen = plis
            for sid, (packets, size) in enumerate(self.SIZES):
                for index in range(packets):
                    first = 0x20 | (0x00 if keyframe else 0x40)
                    first |= (0x08 if index == 0 else 0) | (0x04 if index == packets - 1 else 0)
                    layers = 0x10 | (sid << 1) | (1 if sid and keyframe else 0)
                    payload = (
                        bytes([first, layers, self.picture & 0xFF]) + bytes(size) + bytes([sid])
                    )
                    self.call.sender.send_rtp(
                        RtpPacket(
                            payload_type=VP9_PT,
                            sequence_number=self.seq & 0xFFFF,
                            timestamp=(self.picture * 3600) & 0xFFFFFFFF,
                            ssrc=VIDEO_SSRC,
                            marker=sid == 2 and index == packets - 1,
                            extensions={IDS["mid"]: b"1"},
                            payload=payload,
                        )
                    )
                    self.seq += 1
            await asyncio.sleep(1 / 25)

    def stop(self) -> None:
        self.task.cancel()


def picture_layer(call: Call) -> int | None:
    """The spatial layer that ended the last picture the receiver got (its marker)."""
    ends = [p for p in call.forwarded()[-20:] if p.marker]
    return ends[-1].payload[-1] if ends else None


@pytest.mark.parametrize("mode", ["L3T3_KEY", "L3T3"])
async def test_remb_caps_the_svc_spatial_layer(engine: Harness, mode: str) -> None:
    call = await start_call(engine, vp9_params(mode))
    camera = SvcCamera(call)
    try:
        await wait_for(lambda: picture_layer(call) == 2, timeout=5)
        call.receiver.send_rtcp([Remb(sender_ssrc=77, bitrate=150_000, ssrcs=[call.ssrc])])
        await wait_for(lambda: picture_layer(call) == 0, timeout=3)
        stats = await call.request("consumer.get_stats", consumer_id=call.consumer_id)
        assert stats["allowedSpatialLayer"] == 0
        assert stats["currentLayers"]["spatialLayer"] == 0
        call.receiver.send_rtcp([Remb(sender_ssrc=77, bitrate=5_000_000, ssrcs=[call.ssrc])])
        await wait_for(lambda: picture_layer(call) == 2, timeout=5)
        assert_one_stream(call)
    finally:
        camera.stop()


async def test_svc_layers_follow_the_receivers_capacity_down_and_back_up(engine: Harness) -> None:
    call = await start_call(engine, vp9_params("L3T3_KEY"))
    camera = SvcCamera(call)
    receiver = ShapedReceiver(call, capacity=3_000_000)
    loop = asyncio.get_running_loop()
    try:
        await wait_for(lambda: picture_layer(call) == 2, timeout=15)
        await asyncio.sleep(1)
        receiver.capacity = 150_000
        start = loop.time()
        await wait_for(lambda: picture_layer(call) == 0, timeout=4)
        assert loop.time() - start < 2.0, "took over 2 s to drop to a fitting layer"
        receiver.capacity = 3_000_000
        start = loop.time()
        await wait_for(lambda: picture_layer(call) == 2, timeout=20)
        assert loop.time() - start < 15.0, "took over 15 s to climb back"
    finally:
        camera.stop()
        receiver.stop()
