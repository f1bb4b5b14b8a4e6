"""Producer -> consumer forwarding between two real peers, with Chrome-captured parameters.

The sending peer produces with the rtpParameters mediasoup-client built in
Chrome (tests/sfu/fixtures), so packets carry Chrome's own payload types and
header-extension ids; the receiving peer consumes with Chrome's device
capabilities. Assertions are on what arrives on the wire.
"""

from __future__ import annotations

import asyncio
import copy
import json
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from roomler.sfu.rtcp import (
    GenericNack,
    Pli,
    ReceiverReport,
    Remb,
    Sdes,
    SenderReport,
    TransportFeedback,
    ntp_from_unix,
    ntp_middle_32,
)
from roomler.sfu.rtp import RtpPacket
from tests.sfu.engine_client import Harness, WebRtcPeer, wait_for

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())  # type: ignore[no-any-return]


VIDEO = _fixture("chrome_produce_video.json")
AUDIO = _fixture("chrome_produce_audio.json")
SIMULCAST = _fixture("chrome_produce_video_simulcast.json")
H264 = _fixture("chrome_produce_video_h264.json")
DEVICE_CAPS = _fixture("chrome_device_rtp_capabilities.json")
DEVICE_CAPS_NO_AUDIO_EXT = _fixture("chrome_device_rtp_capabilities_no_audio_ext.json")

VIDEO_SSRC = VIDEO["encodings"][0]["ssrc"]
VIDEO_RTX_SSRC = VIDEO["encodings"][0]["rtx"]["ssrc"]
AUDIO_SSRC = AUDIO["encodings"][0]["ssrc"]


def _chrome_ids(params: dict[str, Any]) -> dict[str, int]:
    names = {
        "urn:ietf:params:rtp-hdrext:sdes:mid": "mid",
        "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id": "rid",
        "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id": "rrid",
        "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": "abs",
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01": "twcc",
        "urn:3gpp:video-orientation": "orientation",
        "urn:ietf:params:rtp-hdrext:ssrc-audio-level": "level",
    }
    return {names[e["uri"]]: e["id"] for e in params["headerExtensions"]}


CHROME_VIDEO_IDS = _chrome_ids(VIDEO)
CHROME_AUDIO_IDS = _chrome_ids(AUDIO)


def vp8_payload(*, keyframe: bool, size: int = 60) -> bytes:
    """A VP8 payload descriptor (S=1, PID=0) and a payload header with P=0 for keyframes."""
    return bytes([0x10, 0x00 if keyframe else 0x01]) + bytes(range(size))


def video_packet(
    seq: int,
    *,
    keyframe: bool = False,
    twcc: int | None = None,
    ts: int | None = None,
    ssrc: int = VIDEO_SSRC,
    extensions: dict[int, bytes] | None = None,
    mid: bytes = b"1",
) -> RtpPacket:
    ids = CHROME_VIDEO_IDS
    ext = {ids["mid"]: mid, ids["abs"]: b"\x12\x34\x56", ids["orientation"]: b"\x01"}
    if twcc is not None:
        ext[ids["twcc"]] = struct.pack("!H", twcc)
    ext.update(extensions or {})
    return RtpPacket(
        payload_type=96,
        sequence_number=seq & 0xFFFF,
        timestamp=(ts if ts is not None else seq * 3000) & 0xFFFFFFFF,
        ssrc=ssrc,
        marker=True,
        extensions=ext,
        payload=vp8_payload(keyframe=keyframe),
    )


@dataclass
class Call:
    engine: Harness
    router_id: str
    sender: WebRtcPeer
    receiver: WebRtcPeer
    producer_id: str
    consumer_id: str
    consumer: dict[str, Any]

    @property
    def ssrc(self) -> int:
        return int(self.consumer["rtp_parameters"]["encodings"][0]["ssrc"])

    @property
    def rtx_ssrc(self) -> int:
        return int(self.consumer["rtp_parameters"]["encodings"][0]["rtx"]["ssrc"])

    def ext_id(self, uri_part: str) -> int:
        exts = self.consumer["rtp_parameters"]["headerExtensions"]
        return int(next(e["id"] for e in exts if uri_part in e["uri"]))

    def codec_pt(self, mime_type: str) -> int:
        codecs = self.consumer["rtp_parameters"]["codecs"]
        return int(next(c["payloadType"] for c in codecs if c["mimeType"] == mime_type))

    def forwarded(self) -> list[RtpPacket]:
        return self.receiver.received(self.ssrc)

    def plis(self) -> list[Pli]:
        return [p for p in self.sender.rtcp_of(Pli) if p.media_ssrc == VIDEO_SSRC]

    async def request(self, method: str, **data: Any) -> dict[str, Any]:
        return await self.engine.request(method, **data)


@pytest.fixture
async def engine() -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    await harness.close()


async def start_call(
    engine: Harness,
    params: dict[str, Any] = VIDEO,
    *,
    kind: str = "video",
    caps: dict[str, Any] = DEVICE_CAPS,
    paused: bool = False,
) -> Call:
    router_id = await engine.router()
    sender = await engine.connected_peer(router_id)
    receiver = await engine.connected_peer(router_id)
    producer_id = engine.new_id("producer")
    await engine.request(
        "transport.produce",
        transport_id=sender.transport_id,
        producer_id=producer_id,
        kind=kind,
        rtp_parameters=params,
    )
    consumer_id = engine.new_id("consumer")
    consumer = await engine.request(
        "transport.consume",
        transport_id=receiver.transport_id,
        consumer_id=consumer_id,
        producer_id=producer_id,
        rtp_capabilities=caps,
        paused=paused,
    )
    return Call(engine, router_id, sender, receiver, producer_id, consumer_id, consumer)


async def send_and_wait(call: Call, packets: list[RtpPacket], expected_total: int) -> None:
    for packet in packets:
        call.sender.send_rtp(packet)
    await wait_for(lambda: len(call.forwarded()) >= expected_total)


async def assert_nothing_more(call: Call, count: int) -> None:
    """Give the engine a moment, then check that nothing else was forwarded."""
    await asyncio.sleep(0.1)
    assert len(call.forwarded()) == count


# -- forwarding ---------------------------------------------------------------


async def test_video_arrives_with_the_consumer_ssrc_payload_type_and_extension_ids(
    engine: Harness,
) -> None:
    call = await start_call(engine)
    assert call.consumer["kind"] == "video" and call.consumer["type"] == "simple"
    assert call.consumer["rtp_parameters"]["mid"] == "0"

    await send_and_wait(
        call,
        [video_packet(1000, keyframe=True, twcc=40), video_packet(1001, twcc=41)],
        expected_total=2,
    )

    first, second = call.forwarded()
    assert first.payload_type == second.payload_type == call.codec_pt("video/VP8")
    assert second.sequence_number == (first.sequence_number + 1) & 0xFFFF
    assert (second.timestamp - first.timestamp) & 0xFFFFFFFF == 3000
    assert first.payload == vp8_payload(keyframe=True)
    consumer_ids = {e["id"] for e in call.consumer["rtp_parameters"]["headerExtensions"]}
    assert set(first.extensions) == consumer_ids
    assert first.extensions[call.ext_id("sdes:mid")] == b"0"  # the consumer's MID
    assert first.extensions[call.ext_id("video-orientation")] == b"\x01"
    assert len(first.extensions[call.ext_id("abs-send-time")]) == 3
    twcc_id = call.ext_id("transport-wide-cc")
    seqs = [struct.unpack("!H", p.extensions[twcc_id])[0] for p in (first, second)]
    assert seqs[1] == seqs[0] + 1  # the receiving transport's own counter


async def test_consumer_waits_for_a_keyframe_before_forwarding_video(engine: Harness) -> None:
    call = await start_call(engine)

    call.sender.send_rtp(video_packet(1))
    call.sender.send_rtp(video_packet(2))
    await assert_nothing_more(call, 0)
    await send_and_wait(call, [video_packet(3, keyframe=True), video_packet(4)], 2)

    assert [p.payload for p in call.forwarded()] == [
        vp8_payload(keyframe=True),
        vp8_payload(keyframe=False),
    ]


async def test_audio_flows_to_a_device_without_audio_header_extensions(engine: Harness) -> None:
    call = await start_call(engine, AUDIO, kind="audio", caps=DEVICE_CAPS_NO_AUDIO_EXT)
    ids = CHROME_AUDIO_IDS
    packet = RtpPacket(
        payload_type=111,
        sequence_number=7,
        timestamp=960,
        ssrc=AUDIO_SSRC,
        extensions={ids["mid"]: b"0", ids["level"]: b"\x90", ids["twcc"]: b"\x00\x01"},
        payload=b"opus" * 10,
    )

    await send_and_wait(call, [packet], 1)  # no keyframe wait for audio

    [forwarded] = call.forwarded()
    assert forwarded.payload_type == call.codec_pt("audio/opus")
    consumer_uris = {e["uri"] for e in call.consumer["rtp_parameters"]["headerExtensions"]}
    assert "urn:ietf:params:rtp-hdrext:ssrc-audio-level" not in consumer_uris
    assert set(forwarded.extensions) == {
        e["id"] for e in call.consumer["rtp_parameters"]["headerExtensions"]
    }
    assert forwarded.payload == b"opus" * 10


async def test_h264_keyframe_is_recognised(engine: Harness) -> None:
    call = await start_call(engine, H264)
    ssrc = H264["encodings"][0]["ssrc"]

    def h264(seq: int, nal_type: int) -> RtpPacket:
        payload = bytes([0x60 | nal_type]) + bytes(40)
        return RtpPacket(payload_type=108, sequence_number=seq, timestamp=seq, ssrc=ssrc,
                         extensions={4: b"3"}, payload=payload)  # fmt: skip

    call.sender.send_rtp(h264(1, 1))  # non-IDR slice
    await assert_nothing_more(call, 0)
    await send_and_wait(call, [h264(2, 5), h264(3, 1)], 2)  # IDR, then a slice

    assert call.forwarded()[0].payload[0] & 0x1F == 5
    assert call.forwarded()[0].payload_type == call.codec_pt("video/H264")


async def test_simulcast_ssrcs_are_learned_from_mid_and_rid_and_the_best_one_forwarded(
    engine: Harness,
) -> None:
    call = await start_call(engine, SIMULCAST)
    assert call.consumer["type"] == "simulcast"
    ids = _chrome_ids(SIMULCAST)

    def layer(ssrc: int, rid: bytes, seq: int, keyframe: bool = False) -> RtpPacket:
        return video_packet(seq, keyframe=keyframe, ssrc=ssrc, mid=b"2",
                            extensions={ids["rid"]: rid})  # fmt: skip

    await send_and_wait(call, [layer(2222, b"r1", 1, keyframe=True), layer(2222, b"r1", 2)], 2)
    call.sender.send_rtp(layer(1111, b"r0", 50, keyframe=True))
    call.sender.send_rtp(layer(1111, b"r0", 51))
    await assert_nothing_more(call, 2)  # r0 is below the best encoding that flows

    assert [p.payload for p in call.forwarded()][0] == vp8_payload(keyframe=True)
    stats = await call.request("producer.get_stats", producer_id=call.producer_id)
    learned = {s["rid"]: s["ssrc"] for s in stats["streams"]}
    assert learned == {"r0": 1111, "r1": 2222, "r2": None}
    assert call.consumer["rtp_parameters"]["encodings"][0]["scalabilityMode"] == "L3T3"


async def test_packets_before_the_producer_exists_are_dropped_then_forwarded(
    engine: Harness,
) -> None:
    router_id = await engine.router()
    sender = await engine.connected_peer(router_id)
    sender.send_rtp(video_packet(1, keyframe=True))
    transport = engine.handler.objects.transports[sender.transport_id]
    await wait_for(lambda: transport.drops["unknown_ssrc"] == 1)

    producer_id = engine.new_id("producer")
    await engine.request(
        "transport.produce", transport_id=sender.transport_id, producer_id=producer_id,
        kind="video", rtp_parameters=VIDEO,
    )  # fmt: skip
    sender.send_rtp(video_packet(2, keyframe=True))

    stats = await wait_for(
        lambda: transport.producers[producer_id].get_stats()["streams"][0]["packetCount"]
    )
    assert stats == 1


# -- pause / resume -------------------------------------------------------------


async def test_sequence_numbers_continue_across_consumer_pause_and_resume(
    engine: Harness,
) -> None:
    call = await start_call(engine)
    await send_and_wait(call, [video_packet(s, keyframe=s == 100) for s in range(100, 105)], 5)
    plis_before = len(call.plis())

    await call.request("consumer.pause", consumer_id=call.consumer_id)
    for seq in range(105, 110):
        call.sender.send_rtp(video_packet(seq))
    await assert_nothing_more(call, 5)
    await call.request("consumer.resume", consumer_id=call.consumer_id)

    await wait_for(lambda: len(call.plis()) > plis_before)  # resume asks for a keyframe
    call.sender.send_rtp(video_packet(110))  # not a keyframe: still waiting
    await send_and_wait(call, [video_packet(111, keyframe=True), video_packet(112)], 7)

    seqs = [p.sequence_number for p in call.forwarded()]
    assert [(s - seqs[0]) & 0xFFFF for s in seqs] == list(range(7))
    stamps = [p.timestamp for p in call.forwarded()]
    assert 0 < (stamps[5] - stamps[4]) & 0xFFFFFFFF < 90000 * 5  # moved on by wall time
    assert call.forwarded()[5].payload == vp8_payload(keyframe=True)


async def test_producer_pause_and_resume_reach_the_consumer(engine: Harness) -> None:
    call = await start_call(engine)
    await send_and_wait(call, [video_packet(1, keyframe=True), video_packet(2)], 2)

    await call.request("producer.pause", producer_id=call.producer_id)
    assert engine.events_of("consumer.producerpause", call.consumer_id) == [{}]
    call.sender.send_rtp(video_packet(3, keyframe=True))
    await assert_nothing_more(call, 2)
    await call.request("producer.resume", producer_id=call.producer_id)
    assert engine.events_of("consumer.producerresume", call.consumer_id) == [{}]
    await send_and_wait(call, [video_packet(4), video_packet(5, keyframe=True)], 3)

    seqs = [p.sequence_number for p in call.forwarded()]
    assert seqs[2] == (seqs[1] + 1) & 0xFFFF
    dump = await call.request("consumer.dump", consumer_id=call.consumer_id)
    assert dump["producerPaused"] is False


async def test_consumer_created_paused_reports_producer_paused(engine: Harness) -> None:
    router_id = await engine.router()
    sender = await engine.connected_peer(router_id)
    receiver = await engine.connected_peer(router_id)
    producer_id = engine.new_id("producer")
    await engine.request(
        "transport.produce", transport_id=sender.transport_id, producer_id=producer_id,
        kind="video", rtp_parameters=VIDEO, paused=True,
    )  # fmt: skip
    result = await engine.request(
        "transport.consume", transport_id=receiver.transport_id,
        consumer_id=engine.new_id("consumer"), producer_id=producer_id,
        rtp_capabilities=DEVICE_CAPS,
    )  # fmt: skip
    assert result["producer_paused"] is True


# -- keyframe requests ------------------------------------------------------------


async def test_consumer_creation_sends_a_pli_to_the_producer(engine: Harness) -> None:
    call = await start_call(engine)

    [pli] = await wait_for(call.plis)

    assert pli.media_ssrc == VIDEO_SSRC


async def test_receiver_pli_reaches_the_producer_at_most_once_per_interval(
    engine: Harness,
) -> None:
    call = await start_call(engine)
    await wait_for(lambda: len(call.plis()) == 1)  # from the consumer's creation
    started = time.monotonic()

    for _ in range(3):
        call.receiver.send_rtcp([Pli(sender_ssrc=1, media_ssrc=call.ssrc)])
    await wait_for(lambda: len(call.plis()) == 2)

    # The three requests were folded into one, sent when the interval allowed.
    assert time.monotonic() - started >= 0.1
    await asyncio.sleep(0.35)
    assert len(call.plis()) == 2
    stats = await call.request("consumer.get_stats", consumer_id=call.consumer_id)
    assert stats["pliCount"] == 3


async def test_request_key_frame_through_the_handler(engine: Harness) -> None:
    call = await start_call(engine)
    await wait_for(lambda: len(call.plis()) == 1)
    await call.request("consumer.request_key_frame", consumer_id=call.consumer_id)
    await wait_for(lambda: len(call.plis()) == 2)


# -- loss repair --------------------------------------------------------------------


async def test_receiver_nack_is_answered_over_rtx(engine: Harness) -> None:
    call = await start_call(engine)
    await send_and_wait(call, [video_packet(s, keyframe=s == 10) for s in range(10, 15)], 5)
    lost = call.forwarded()[2]

    call.receiver.send_rtcp([GenericNack(1, call.ssrc, [lost.sequence_number])])

    [rtx] = await wait_for(lambda: call.receiver.received(call.rtx_ssrc))
    assert rtx.payload_type == call.codec_pt("video/rtx")
    assert rtx.payload[:2] == struct.pack("!H", lost.sequence_number)  # OSN, RFC 4588
    assert rtx.payload[2:] == lost.payload
    stats = await call.request("consumer.get_stats", consumer_id=call.consumer_id)
    assert stats["retransmittedPackets"] == 1 and stats["nackCount"] == 1


async def test_receiver_nack_without_rtx_resends_the_same_srtp_packet(engine: Harness) -> None:
    caps = copy.deepcopy(DEVICE_CAPS)
    caps["codecs"] = [c for c in caps["codecs"] if c["mimeType"] != "video/rtx"]
    call = await start_call(engine, caps=caps)
    assert "rtx" not in call.consumer["rtp_parameters"]["encodings"][0]
    await send_and_wait(call, [video_packet(s, keyframe=s == 10) for s in range(10, 13)], 3)
    original = call.receiver.raw_rtp[1]
    seq = call.forwarded()[1].sequence_number

    call.receiver.send_rtcp([GenericNack(1, call.ssrc, [seq])])

    await wait_for(lambda: len(call.receiver.raw_rtp) == 4)
    assert call.receiver.raw_rtp[3] == original
    assert "replayed" in call.receiver.unprotect_errors[0]


async def test_gaps_are_nacked_to_the_producer_and_its_rtx_repairs_them(engine: Harness) -> None:
    call = await start_call(engine)
    await send_and_wait(call, [video_packet(1, keyframe=True), video_packet(2), video_packet(4)], 3)

    nack = await wait_for(
        lambda: next(
            (p for p in call.sender.rtcp_of(GenericNack) if p.media_ssrc == VIDEO_SSRC), None
        )
    )
    assert nack.lost == [3]
    original = video_packet(3)
    rtx = RtpPacket(
        payload_type=97, sequence_number=500, timestamp=original.timestamp, ssrc=VIDEO_RTX_SSRC,
        extensions=original.extensions, payload=struct.pack("!H", 3) + original.payload,
    )  # fmt: skip
    call.sender.send_rtp(rtx)
    probe = RtpPacket(payload_type=97, sequence_number=501, ssrc=VIDEO_RTX_SSRC, padding_size=200)
    call.sender.send_rtp(probe)  # padding only: Chrome's bandwidth probe, not media
    await wait_for(lambda: len(call.forwarded()) == 4)
    await assert_nothing_more(call, 4)

    repaired = call.forwarded()[3]
    first = call.forwarded()[0].sequence_number
    assert (repaired.sequence_number - first) & 0xFFFF == 2
    assert repaired.payload == original.payload
    assert repaired.payload_type == call.codec_pt("video/VP8")


# -- RTCP reports and congestion feedback -----------------------------------------


async def test_receiver_reports_tell_the_producer_about_loss_and_its_sender_report(
    engine: Harness,
) -> None:
    call = await start_call(engine)
    ntp = ntp_from_unix(time.time())
    call.sender.send_rtcp([SenderReport(VIDEO_SSRC, ntp, 123456, 10, 1000)])
    for seq in (1, 2, 3, 5, 6):
        call.sender.send_rtp(video_packet(seq, keyframe=seq == 1))

    def block() -> Any:
        for report in call.sender.rtcp_of(ReceiverReport):
            for b in report.reports:
                if b.ssrc == VIDEO_SSRC and b.highest_sequence == 6 and b.packets_lost == 1:
                    return b
        return None

    found = await wait_for(block, timeout=5)
    assert found.lsr == ntp_middle_32(ntp)
    assert 0 < found.dlsr < 65536 * 5
    cnames = [c.cname for s in call.sender.rtcp_of(Sdes) for c in s.chunks]
    assert cnames and all(cnames)


async def test_sender_reports_map_the_producer_clock_onto_the_consumer_stream(
    engine: Harness,
) -> None:
    call = await start_call(engine)
    await send_and_wait(call, [video_packet(s, keyframe=s == 1) for s in range(1, 4)], 3)
    sent_at = time.monotonic()
    call.sender.send_rtcp([SenderReport(VIDEO_SSRC, ntp_from_unix(time.time()), 777_000, 3, 180)])

    def consumer_sr() -> SenderReport | None:
        reports = [r for r in call.receiver.rtcp_of(SenderReport) if r.ssrc == call.ssrc]
        return next((r for r in reversed(reports) if r.rtp_timestamp >= 777_000), None)

    report = await wait_for(consumer_sr, timeout=5)
    elapsed = time.monotonic() - sent_at
    # Offsets start at zero, so the consumer's clock is the producer's.
    assert 777_000 <= report.rtp_timestamp <= 777_000 + int((elapsed + 0.05) * 90000)
    assert report.packet_count == 3
    assert abs(report.ntp_timestamp / 2**32 - (time.time() + 2_208_988_800)) < 5
    cnames = [c.cname for s in call.receiver.rtcp_of(Sdes) for c in s.chunks if c.ssrc == call.ssrc]
    assert cnames[0] == VIDEO["rtcp"]["cname"]


async def test_transport_cc_feedback_reports_every_transport_sequence_number(
    engine: Harness,
) -> None:
    call = await start_call(engine)
    for seq in range(20):
        if seq != 10:
            call.sender.send_rtp(video_packet(seq + 1, keyframe=seq == 0, twcc=seq))

    def arrivals() -> dict[int, int | None]:
        result: dict[int, int | None] = {}
        for feedback in call.sender.rtcp_of(TransportFeedback):
            result.update(feedback.arrivals())
        return result

    await wait_for(lambda: 19 in arrivals())
    report = arrivals()
    assert [seq for seq in range(20) if report.get(seq) is None] == [10]
    times = [t for seq, t in sorted(report.items()) if t is not None]
    assert len(times) == 19 and times == sorted(times)  # sent in order over loopback
    feedback = call.sender.rtcp_of(TransportFeedback)[0]
    assert feedback.media_ssrc == VIDEO_SSRC


# -- closing ------------------------------------------------------------------------


async def test_producer_close_closes_its_consumers_with_producerclose(engine: Harness) -> None:
    call = await start_call(engine)

    await call.request("producer.close", producer_id=call.producer_id)

    assert engine.events_of("consumer.producerclose", call.consumer_id) == [{}]
    assert engine.events_of("producer.close") == []  # it was asked to close
    with pytest.raises(ValueError, match="not found"):
        await call.request("consumer.dump", consumer_id=call.consumer_id)
    transport = engine.handler.objects.transports[call.sender.transport_id]
    call.sender.send_rtp(video_packet(1, keyframe=True))
    await wait_for(lambda: transport.drops["unknown_ssrc"] == 1)


async def test_send_transport_close_closes_producer_and_consumers(engine: Harness) -> None:
    call = await start_call(engine)

    await call.request("transport.close", transport_id=call.sender.transport_id)

    assert engine.events_of("producer.close", call.producer_id) == [{}]
    assert engine.events_of("consumer.producerclose", call.consumer_id) == [{}]
    receiving = await call.request("transport.dump", transport_id=call.receiver.transport_id)
    assert receiving["consumerIds"] == []


async def test_recv_transport_close_emits_transportclose(engine: Harness) -> None:
    call = await start_call(engine)

    await call.request("transport.close", transport_id=call.receiver.transport_id)

    assert engine.events_of("consumer.transportclose", call.consumer_id) == [{}]
    producer = await call.request("producer.dump", producer_id=call.producer_id)
    assert producer["consumerIds"] == []


async def test_stats_count_what_flowed(engine: Harness) -> None:
    call = await start_call(engine)
    await send_and_wait(call, [video_packet(s, keyframe=s == 1) for s in range(1, 6)], 5)

    producer = await call.request("producer.get_stats", producer_id=call.producer_id)
    consumer = await call.request("consumer.get_stats", consumer_id=call.consumer_id)
    sending = await call.request("transport.get_stats", transport_id=call.sender.transport_id)
    receiving = await call.request("transport.get_stats", transport_id=call.receiver.transport_id)

    assert producer["streams"][0]["packetCount"] == 5
    assert producer["streams"][0]["bitrate"] > 0
    assert consumer["packetCount"] == 5
    assert sending["rtpPacketsReceived"] == 5
    assert receiving["bytesSent"] > sum(len(p.payload) for p in call.forwarded())


async def test_remb_is_sent_when_the_producer_has_no_transport_cc(engine: Harness) -> None:
    params = copy.deepcopy(VIDEO)
    params["headerExtensions"] = [
        e for e in params["headerExtensions"] if "transport-wide-cc" not in e["uri"]
    ]
    call = await start_call(engine, params)
    for seq in range(1, 30):
        call.sender.send_rtp(video_packet(seq, keyframe=seq == 1))

    remb = await wait_for(lambda: call.sender.rtcp_of(Remb), timeout=5)

    assert remb[0].ssrcs == [VIDEO_SSRC]
    assert remb[0].bitrate >= 500_000
    assert call.sender.rtcp_of(TransportFeedback) == []


async def test_a_producer_without_encodings_is_bound_by_its_mid(engine: Harness) -> None:
    params = copy.deepcopy(AUDIO)
    del params["encodings"]  # mediasoup-client may leave them out; mediasoup binds by MID
    call = await start_call(engine, params, kind="audio")
    ids = CHROME_AUDIO_IDS
    packet = RtpPacket(
        payload_type=111,
        sequence_number=7,
        timestamp=960,
        ssrc=123456,  # signalled nowhere: learned from the MID
        extensions={ids["mid"]: AUDIO["mid"].encode(), ids["twcc"]: b"\x00\x01"},
        payload=b"opus" * 10,
    )
    await send_and_wait(call, [packet], 1)
    stats = await call.request("producer.get_stats", producer_id=call.producer_id)
    assert [s["ssrc"] for s in stats["streams"]] == [123456]
