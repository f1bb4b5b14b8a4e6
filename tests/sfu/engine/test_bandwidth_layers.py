"""Bandwidth-driven simulcast layers, end to end through a worker.

A sending peer produces three VP8 simulcast encodings of clearly different
bitrates (about 60, 200 and 700 kbps) and answers each PLI with a keyframe on
that encoding.  The receiving peer stands behind a modelled bottleneck: each
RTP packet it gets is given the arrival time a link of ``capacity`` with a
300 ms drop-tail queue would have given it (or is dropped), and it sends
transport-wide cc feedback of those arrivals every 50 ms, as a browser does.
So the SFU's estimator sees a real queue build up when it sends too much, and
the tests assert the issue's targets on what is forwarded: a fitting layer
within 2 s of the capacity falling, the top layer again within 15 s of it
returning, probes on the RTX stream (copies of media just sent) to find it.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from roomler.sfu.rtcp import Pli, ReceiverReport, Remb, ReportBlock, TransportFeedbackBuilder
from roomler.sfu.rtp import RtpPacket
from tests.sfu.engine.test_producer_consumer import SIMULCAST, Call, _chrome_ids, start_call
from tests.sfu.engine_client import Harness, wait_for

IDS = _chrome_ids(SIMULCAST)
SSRCS = (1111, 2222, 3333)
FPS = 25
#: (packets per frame, payload bytes) of each encoding: ~60, ~200, ~700 kbps.
FRAME_SHAPE = ((1, 280), (1, 1000), (3, 1150))


@pytest.fixture
async def engine() -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    await harness.close()


class Camera:
    """Three encodings at FPS, a keyframe on an encoding whenever it was asked for one."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.seq = [100, 20_000, 40_000]
        self.frame = 0
        self.plis_seen = [0, 0, 0]
        self.task = asyncio.get_running_loop().create_task(self._run())

    def _plis(self, layer: int) -> int:
        return sum(1 for p in self.call.sender.rtcp_of(Pli) if p.media_ssrc == SSRCS[layer])

    async def _run(self) -> None:
        while True:
            self.frame += 1
            for layer, (packets, size) in enumerate(FRAME_SHAPE):
                plis = self._plis(layer)
                keyframe = self.frame == 1 or plis > self.plis_seen[layer]
                self.plis_seen[layer] = plis
                for index in range(packets):
                    self._send(layer, index, packets, size, keyframe)
            await asyncio.sleep(1 / FPS)

    def _send(self, layer: int, index: int, packets: int, size: int, keyframe: bool) -> None:
        start = 0x10 if index == 0 else 0x00  # S bit on the frame's first packet
        payload = bytes([start, 0x00 if keyframe else 0x01, layer]) + bytes(size)
        packet = RtpPacket(
            payload_type=96,
            sequence_number=self.seq[layer] & 0xFFFF,
            timestamp=(self.frame * 3600) & 0xFFFFFFFF,
            ssrc=SSRCS[layer],
            marker=index == packets - 1,
            extensions={IDS["mid"]: b"2", IDS["rid"]: f"r{layer}".encode()},
            payload=payload,
        )
        self.seq[layer] += 1
        self.call.sender.send_rtp(packet)

    def stop(self) -> None:
        self.task.cancel()


class ShapedReceiver:
    """The receiving browser behind a bottleneck of ``capacity`` bps (see the module docstring)."""

    QUEUE_LIMIT = 0.3
    DELAY = 0.02

    def __init__(self, call: Call, capacity: float) -> None:
        self.call = call
        self.capacity = capacity
        self.twcc_id = call.ext_id("transport-wide-cc")
        self.builder = TransportFeedbackBuilder(sender_ssrc=77, media_ssrc=call.ssrc)
        self.free_at = 0.0
        self.loop = asyncio.get_running_loop()
        peer = call.receiver
        original = peer._on_datagram
        self.seen = 0

        def on_datagram(data: bytes, addr: tuple[Any, ...]) -> None:
            before = len(peer.rtp)
            original(data, addr)
            if len(peer.rtp) > before:
                self._arrived(peer.rtp[-1], len(data))

        peer._on_datagram = on_datagram  # type: ignore[method-assign]
        self.task = self.loop.create_task(self._feedback())

    def _arrived(self, plain: bytes, size: int) -> None:
        packet = RtpPacket.parse(plain)
        value = packet.extensions.get(self.twcc_id)
        if value is None:
            return
        now = self.loop.time()
        start = max(now, self.free_at)
        if start - now > self.QUEUE_LIMIT:
            return  # tail drop: reported lost
        self.free_at = start + size * 8 / self.capacity
        arrival = self.free_at + self.DELAY
        self.builder.add(int.from_bytes(value, "big"), int(arrival * 1_000_000))

    async def _feedback(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            packets = self.builder.build()
            if packets:
                self.call.receiver.send_rtcp(list(packets))

    def stop(self) -> None:
        self.task.cancel()


def current_layer(call: Call) -> int | None:
    packets = call.forwarded()
    return packets[-1].payload[2] if packets else None


async def wait_layer(call: Call, predicate: Any, timeout: float) -> float:
    """Seconds until the forwarded encoding satisfies ``predicate``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    await wait_for(lambda: predicate(current_layer(call)), timeout=timeout)
    return loop.time() - start


async def test_layers_follow_the_receivers_capacity_down_and_back_up(engine: Harness) -> None:
    call = await start_call(engine, SIMULCAST)
    camera = Camera(call)
    receiver = ShapedReceiver(call, capacity=3_000_000)
    try:
        # A good link: once the feedback counts, the top encoding still (probes lift
        # the 600 kbps start estimate).
        async def transport_stats() -> dict[str, Any]:
            transport_id = call.receiver.transport_id
            return await call.request("transport.get_stats", transport_id=transport_id)

        deadline = asyncio.get_running_loop().time() + 3
        while not (await transport_stats())["bandwidthLimiting"]:
            assert asyncio.get_running_loop().time() < deadline, "no feedback was used"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1)
        await wait_layer(call, lambda layer: layer == 2, timeout=15)
        assert (await transport_stats())["availableOutgoingBitrate"] > 500_000

        # The link falls to 150 kbps: only the lowest encoding fits.
        receiver.capacity = 150_000
        took = await wait_layer(call, lambda layer: layer == 0, timeout=4)
        assert took < 2.0, f"took {took:.2f} s to drop to a fitting layer"
        # It stays there while the link stays low (no oscillation).
        forwarded = len(call.forwarded())
        await asyncio.sleep(2)
        assert {p.payload[2] for p in call.forwarded()[forwarded:]} == {0}

        # The capacity returns: probes find it, the top layer is back within 15 s.
        receiver.capacity = 3_000_000
        took = await wait_layer(call, lambda layer: layer == 2, timeout=20)
        assert took < 15.0, f"took {took:.2f} s to climb back"
        # Probes on the RTX stream: copies of media packets sent a moment before (RFC 4588:
        # the original sequence number, then its payload), or padding.
        probes = call.receiver.received(call.rtx_ssrc)
        assert probes, "no probe was sent"
        media = {p.sequence_number: p.payload for p in call.forwarded()}
        for probe in probes:
            if probe.payload:
                original = struct.unpack("!H", probe.payload[:2])[0]
                assert media.get(original) == probe.payload[2:], "a probe that is no copy"
            else:
                assert probe.padding_size > 0
        assert any(probe.payload for probe in probes), "probes of padding only, not of media"
        changes = engine.events_of("consumer.layerschange", call.consumer_id)
        assert {"spatial_layer": 0, "temporal_layer": 0} in changes
    finally:
        camera.stop()
        receiver.stop()


async def test_remb_alone_caps_the_layer(engine: Harness) -> None:
    """A receiver that sends REMB but no transport-cc: REMB is the estimate."""
    call = await start_call(engine, SIMULCAST)
    camera = Camera(call)
    try:
        await wait_layer(call, lambda layer: layer == 2, timeout=5)
        call.receiver.send_rtcp([Remb(sender_ssrc=77, bitrate=120_000, ssrcs=[call.ssrc])])
        await wait_layer(call, lambda layer: layer == 0, timeout=2)
        stats = await call.request("consumer.get_stats", consumer_id=call.consumer_id)
        assert stats["allowedSpatialLayer"] == 0
        call.receiver.send_rtcp([Remb(sender_ssrc=77, bitrate=5_000_000, ssrcs=[call.ssrc])])
        await wait_layer(call, lambda layer: layer == 2, timeout=5)
    finally:
        camera.stop()


async def test_priority_is_set_and_reported(engine: Harness) -> None:
    call = await start_call(engine, SIMULCAST)
    reply = await call.request("consumer.set_priority", consumer_id=call.consumer_id, priority=5)
    assert reply == {"priority": 5}
    stats = await call.request("consumer.get_stats", consumer_id=call.consumer_id)
    assert stats["priority"] == 5
    with pytest.raises(Exception, match="priority must be 1..255"):
        await call.request("consumer.set_priority", consumer_id=call.consumer_id, priority=0)


async def test_the_score_follows_the_receivers_loss(engine: Harness) -> None:
    call = await start_call(engine, SIMULCAST)
    camera = Camera(call)
    try:
        await wait_for(lambda: call.forwarded())

        def report(fraction_lost: int) -> None:
            block = ReportBlock(call.ssrc, fraction_lost, 0, 0, 0, 0, 0)
            call.receiver.send_rtcp([ReceiverReport(ssrc=77, reports=[block])])

        def scores() -> list[int]:
            return [e["score"] for e in engine.events_of("consumer.score", call.consumer_id)]

        report(128)  # half lost
        await wait_for(lambda: scores() and scores()[-1] == 0)
        report(0)
        await wait_for(lambda: scores()[-1] == 10)
        [*_, last] = engine.events_of("consumer.score", call.consumer_id)
        # Every encoding flows without loss into the SFU.
        assert last["producer_scores"] == [10, 10, 10]
        assert last["producer_score"] == 10
    finally:
        camera.stop()
