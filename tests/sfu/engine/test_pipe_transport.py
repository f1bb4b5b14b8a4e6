"""Two routers joined by a pipe: a browser's producer on one, its consumer on the other.

Two `WorkerHandler`s stand for two worker processes (each with its own objects, as
two workers have); the pipe between them is real UDP on 127.0.0.1, the browsers are
`WebRtcPeer`s. What is asserted is what reaches the receiving peer (and the sending
one: keyframe requests), as in test_producer_consumer.py.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from roomler.sfu.engine.pipe_transport import PipeTransport
from roomler.sfu.rtcp import Fir, GenericNack, Pli
from roomler.sfu.rtp import RtpPacket
from tests.sfu.engine.test_producer_consumer import (
    AUDIO,
    DEVICE_CAPS,
    SIMULCAST,
    VIDEO,
    VIDEO_SSRC,
    _chrome_ids,
    video_packet,
)
from tests.sfu.engine_client import PORT_MAX, PORT_MIN, Harness, WebRtcPeer, wait_for


@pytest.fixture
async def engines() -> AsyncIterator[tuple[Harness, Harness]]:
    first, second = Harness(), Harness()
    yield first, second
    await first.close()
    await second.close()


@dataclass
class PipedCall:
    source: Harness
    target: Harness
    sender: WebRtcPeer
    receiver: WebRtcPeer
    producer_id: str
    pipe_consumer: dict[str, Any]
    pipe_consumer_id: str
    pipe_ids: tuple[str, str]
    consumer: dict[str, Any]
    consumer_id: str

    @property
    def ssrc(self) -> int:
        return int(self.consumer["rtp_parameters"]["encodings"][0]["ssrc"])

    def forwarded(self) -> list[RtpPacket]:
        return self.receiver.received(self.ssrc)

    def engine_pipe(self, harness: Harness) -> PipeTransport:
        transport = harness.handler.objects.transports[
            self.pipe_ids[0] if harness is self.source else self.pipe_ids[1]
        ]
        assert isinstance(transport, PipeTransport)
        return transport


async def create_pipe(harness: Harness, router_id: str, **options: Any) -> dict[str, Any]:
    return await harness.request(
        "router.create_pipe_transport",
        router_id=router_id,
        transport_id=harness.new_id("pipe"),
        listen_ip="127.0.0.1",
        port_min=PORT_MIN,
        port_max=PORT_MAX,
        **options,
    )


async def connect_pipes(
    first: Harness, one: dict[str, Any], second: Harness, other: dict[str, Any]
) -> None:
    for harness, mine, theirs in ((first, one, other), (second, other, one)):
        data: dict[str, Any] = {
            "transport_id": mine["id"],
            "ip": theirs["tuple"]["localIp"],
            "port": theirs["tuple"]["localPort"],
        }
        if theirs["srtp_parameters"] is not None:
            data["srtp_parameters"] = theirs["srtp_parameters"]
        await harness.request("transport.connect", **data)


async def start_piped_call(
    source: Harness,
    target: Harness,
    params: dict[str, Any] = VIDEO,
    *,
    kind: str = "video",
    **pipe_options: Any,
) -> PipedCall:
    router1, router2 = await source.router(), await target.router()
    sender = await source.connected_peer(router1)
    receiver = await target.connected_peer(router2)
    producer_id = source.new_id("producer")
    await source.request(
        "transport.produce",
        transport_id=sender.transport_id,
        producer_id=producer_id,
        kind=kind,
        rtp_parameters=params,
    )
    pipe1 = await create_pipe(source, router1, **pipe_options)
    pipe2 = await create_pipe(target, router2, **pipe_options)
    await connect_pipes(source, pipe1, target, pipe2)
    pipe_consumer_id = source.new_id("pipe-consumer")
    pipe_consumer = await source.request(
        "transport.consume",
        transport_id=pipe1["id"],
        consumer_id=pipe_consumer_id,
        producer_id=producer_id,
    )
    await target.request(
        "transport.produce",
        transport_id=pipe2["id"],
        producer_id=producer_id,  # the pipe producer has its source's id
        kind=pipe_consumer["kind"],
        rtp_parameters=pipe_consumer["rtp_parameters"],
        paused=pipe_consumer["producer_paused"],
    )
    consumer_id = target.new_id("consumer")
    consumer = await target.request(
        "transport.consume",
        transport_id=receiver.transport_id,
        consumer_id=consumer_id,
        producer_id=producer_id,
        rtp_capabilities=DEVICE_CAPS,
    )
    return PipedCall(
        source, target, sender, receiver, producer_id, pipe_consumer, pipe_consumer_id,
        (pipe1["id"], pipe2["id"]), consumer, consumer_id,
    )  # fmt: skip


def sent_pli(call: PipedCall) -> Callable[[], list[Pli | Fir]]:
    def found() -> list[Pli | Fir]:
        plis: list[Pli | Fir] = [p for p in call.sender.rtcp_of(Pli) if p.media_ssrc == VIDEO_SSRC]
        return plis + [p for p in call.sender.rtcp_of(Fir)]

    return found


# -- parameters ------------------------------------------------------------------------


async def test_pipe_consumer_has_every_encoding_no_mid_and_no_congestion_feedback(
    engines: tuple[Harness, Harness],
) -> None:
    call = await start_piped_call(*engines)
    params = call.pipe_consumer["rtp_parameters"]
    assert call.pipe_consumer["type"] == "pipe"
    assert "mid" not in params
    [codec] = params["codecs"]  # no RTX without enable_rtx
    assert codec["mimeType"] == "video/VP8"
    feedback = {(fb["type"], fb["parameter"]) for fb in codec["rtcpFeedback"]}
    assert feedback == {("nack", "pli"), ("ccm", "fir")}
    uris = {ext["uri"] for ext in params["headerExtensions"]}
    assert not any("mid" in uri or "transport-wide" in uri or "abs-send" in uri for uri in uris)
    assert len(params["encodings"]) == 1 and "rtx" not in params["encodings"][0]
    assert call.consumer["type"] == "simple"


async def test_pipe_with_rtx_negotiates_nack_and_an_rtx_ssrc_per_encoding(
    engines: tuple[Harness, Harness],
) -> None:
    call = await start_piped_call(*engines, enable_rtx=True)
    params = call.pipe_consumer["rtp_parameters"]
    assert [c["mimeType"] for c in params["codecs"]] == ["video/VP8", "video/rtx"]
    feedback = {(fb["type"], fb["parameter"]) for fb in params["codecs"][0]["rtcpFeedback"]}
    assert ("nack", "") in feedback
    assert all("ssrc" in e["rtx"] for e in params["encodings"])


async def test_a_pipe_refuses_srtp_parameters_it_did_not_agree_to(
    engines: tuple[Harness, Harness],
) -> None:
    source, _ = engines
    router = await source.router()
    plain = await create_pipe(source, router)
    assert plain["srtp_parameters"] is None
    key = {"cryptoSuite": "AEAD_AES_128_GCM", "keyBase64": base64.b64encode(bytes(28)).decode()}
    with pytest.raises(ValueError, match="without SRTP"):
        await source.request(
            "transport.connect", transport_id=plain["id"], ip="127.0.0.2", port=9999,
            srtp_parameters=key,
        )  # fmt: skip
    secure = await create_pipe(source, router, enable_srtp=True)
    assert secure["srtp_parameters"]["cryptoSuite"] == "AEAD_AES_128_GCM"
    assert len(secure["srtp_parameters"]["keyBase64"]) == 40  # 16-byte key, 12-byte salt
    bad: list[Any] = [
        None,
        1,
        {"keyBase64": key["keyBase64"]},
        {"cryptoSuite": "AEAD_AES_128_GCM"},
        {"cryptoSuite": "FOO", "keyBase64": key["keyBase64"]},
        {"cryptoSuite": "AEAD_AES_128_GCM", "keyBase64": "not base64!"},
        {"cryptoSuite": "AEAD_AES_128_GCM", "keyBase64": "AAAA"},
    ]
    for parameters in bad:
        data: dict[str, Any] = {"transport_id": secure["id"], "ip": "127.0.0.2", "port": 9999}
        if parameters is not None:
            data["srtp_parameters"] = parameters
        with pytest.raises(ValueError):
            await source.request("transport.connect", **data)
    await source.request(
        "transport.connect", transport_id=secure["id"], ip="127.0.0.2", port=9999,
        srtp_parameters=key,
    )  # fmt: skip


async def test_a_pipe_transport_is_not_a_webrtc_one(engines: tuple[Harness, Harness]) -> None:
    source, _ = engines
    pipe = await create_pipe(source, await source.router())
    with pytest.raises(ValueError, match="pipe transport"):
        await source.request("transport.restart_ice", transport_id=pipe["id"])


# -- media across the pipe -----------------------------------------------------------------


@pytest.mark.parametrize("srtp", [False, True])
async def test_video_crosses_the_pipe_to_the_far_routers_consumer(
    engines: tuple[Harness, Harness], srtp: bool
) -> None:
    call = await start_piped_call(*engines, enable_srtp=srtp)
    for seq in range(100, 110):
        call.sender.send_rtp(video_packet(seq, keyframe=seq == 100))
    await wait_for(lambda: len(call.forwarded()) == 10)

    packets = call.forwarded()
    seqs = [p.sequence_number for p in packets]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(10)]
    assert [p.timestamp - packets[0].timestamp for p in packets] == [i * 3000 for i in range(10)]
    assert packets[0].payload == video_packet(100, keyframe=True).payload
    stats = call.engine_pipe(call.target).get_stats()
    assert stats["rtpPacketsReceived"] >= 10 and stats["droppedPackets"] == 0


async def test_audio_crosses_the_pipe(engines: tuple[Harness, Harness]) -> None:
    call = await start_piped_call(*engines, AUDIO, kind="audio")
    ssrc = AUDIO["encodings"][0]["ssrc"]
    for seq in range(5):
        call.sender.send_rtp(
            RtpPacket(payload_type=111, sequence_number=seq, timestamp=seq * 960, ssrc=ssrc,
                      payload=b"opus" * 10)
        )  # fmt: skip
    await wait_for(lambda: len(call.forwarded()) == 5)
    assert all(p.payload == b"opus" * 10 for p in call.forwarded())


async def test_a_datagram_from_another_address_is_dropped(
    engines: tuple[Harness, Harness],
) -> None:
    call = await start_piped_call(*engines)
    pipe = call.engine_pipe(call.target)
    stranger = await WebRtcPeer(
        {"ice_candidates": [{"ip": "127.0.0.1", "port": pipe.port}], "ice_parameters": {},
         "dtls_parameters": {"fingerprints": []}}
    ).open()  # fmt: skip
    try:
        ssrc = call.pipe_consumer["rtp_parameters"]["encodings"][0]["ssrc"]
        stranger.send_raw(video_packet(1, keyframe=True, ssrc=ssrc).serialize())
        await wait_for(lambda: pipe.drops["unknown_address"] == 1)
    finally:
        stranger.close()
    assert call.forwarded() == []


# -- RTCP across the pipe ----------------------------------------------------------------


async def test_a_receivers_pli_on_the_far_router_reaches_the_sending_browser(
    engines: tuple[Harness, Harness],
) -> None:
    call = await start_piped_call(*engines)
    call.sender.send_rtp(video_packet(1, keyframe=True))
    await wait_for(lambda: len(call.forwarded()) == 1)
    await asyncio.sleep(0.35)  # past the producer's keyframe request interval (test: 0.3 s)
    before = len(sent_pli(call)())

    call.receiver.send_rtcp([Pli(1, call.ssrc)])

    await wait_for(lambda: len(sent_pli(call)()) > before)
    pipe_stats = await call.source.request("consumer.get_stats", consumer_id=call.pipe_consumer_id)
    assert pipe_stats["pliCount"] + pipe_stats["firCount"] >= 1


async def test_a_packet_lost_on_the_pipe_is_nacked_and_repaired_over_rtx(
    engines: tuple[Harness, Harness],
) -> None:
    call = await start_piped_call(*engines, enable_rtx=True)
    pipe = call.engine_pipe(call.source)
    original_send = pipe.send_rtp
    pipe_ssrc = call.pipe_consumer["rtp_parameters"]["encodings"][0]["ssrc"]
    dropped: list[int] = []

    def lossy_send(packet: bytes) -> bytes | None:
        parsed = RtpPacket.parse(packet)
        if parsed.ssrc == pipe_ssrc and not dropped and parsed.sequence_number % 5 == 3:
            dropped.append(parsed.sequence_number)
            return packet  # "sent", and lost on the way
        return original_send(packet)

    pipe.send_rtp = lossy_send  # type: ignore[method-assign]
    for seq in range(200, 210):
        call.sender.send_rtp(video_packet(seq, keyframe=seq == 200))
    await wait_for(lambda: len(call.forwarded()) == 10)

    assert dropped
    payloads = {p.sequence_number - call.forwarded()[0].sequence_number for p in call.forwarded()}
    assert payloads == set(range(10))
    stats = await call.source.request("consumer.get_stats", consumer_id=call.pipe_consumer_id)
    assert stats["nackCount"] >= 1 and stats["retransmittedPackets"] >= 1
    assert call.receiver.rtcp_of(GenericNack) == []  # repaired before the browser saw a gap


async def test_sender_reports_cross_the_pipe(engines: tuple[Harness, Harness]) -> None:
    call = await start_piped_call(*engines)
    call.sender.send_rtp(video_packet(1, keyframe=True))
    await wait_for(lambda: len(call.forwarded()) == 1)
    producer = call.target.handler.objects.producers[call.producer_id]
    await wait_for(lambda: producer.streams[0].stats.last_sr_time is not None)


# -- pause, resume, close --------------------------------------------------------------


async def test_a_paused_pipe_consumer_sends_nothing_and_resumes_on_a_keyframe(
    engines: tuple[Harness, Harness],
) -> None:
    call = await start_piped_call(*engines)
    call.sender.send_rtp(video_packet(1, keyframe=True))
    await wait_for(lambda: len(call.forwarded()) == 1)
    await call.source.request("consumer.pause", consumer_id=call.pipe_consumer_id)
    call.sender.send_rtp(video_packet(2))
    await asyncio.sleep(0.1)
    assert len(call.forwarded()) == 1

    await call.source.request("consumer.resume", consumer_id=call.pipe_consumer_id)
    call.sender.send_rtp(video_packet(3))  # not a keyframe: held back
    call.sender.send_rtp(video_packet(4, keyframe=True))
    await wait_for(lambda: len(call.forwarded()) == 2)
    first, second = call.forwarded()
    assert second.sequence_number == (first.sequence_number + 1) & 0xFFFF  # no gap


async def test_the_source_producers_pause_reaches_the_pipe_consumer(
    engines: tuple[Harness, Harness],
) -> None:
    call = await start_piped_call(*engines)
    await call.source.request("producer.pause", producer_id=call.producer_id)
    assert call.source.events_of("consumer.producerpause", call.pipe_consumer_id)
    await call.source.request("producer.resume", producer_id=call.producer_id)
    assert call.source.events_of("consumer.producerresume", call.pipe_consumer_id)


async def test_closing_the_far_pipe_transport_closes_the_pipe_producers_consumers(
    engines: tuple[Harness, Harness],
) -> None:
    call = await start_piped_call(*engines)
    await call.target.request("transport.close", transport_id=call.pipe_ids[1])
    assert call.target.events_of("producer.close", call.producer_id)
    assert call.target.events_of("consumer.producerclose", call.consumer_id)
    await call.source.request("producer.close", producer_id=call.producer_id)
    assert call.source.events_of("consumer.producerclose", call.pipe_consumer_id)


async def test_simulcast_crosses_the_pipe_and_the_far_consumer_switches_layers(
    engines: tuple[Harness, Harness],
) -> None:
    call = await start_piped_call(*engines, SIMULCAST)
    assert call.consumer["type"] == "simulcast"
    assert len(call.pipe_consumer["rtp_parameters"]["encodings"]) == 3
    ids = _chrome_ids(SIMULCAST)

    def layer(ssrc: int, rid: bytes, seq: int, keyframe: bool = False) -> RtpPacket:
        return video_packet(seq, keyframe=keyframe, ssrc=ssrc, mid=b"2",
                            extensions={ids["rid"]: rid})  # fmt: skip

    call.sender.send_rtp(layer(1111, b"r0", 1, keyframe=True))
    call.sender.send_rtp(layer(1111, b"r0", 2))
    await wait_for(lambda: len(call.forwarded()) == 2)  # the only encoding that flows
    for seq in range(10, 14):
        call.sender.send_rtp(layer(2222, b"r1", seq, keyframe=seq == 10))
        call.sender.send_rtp(layer(1111, b"r0", seq - 7))
    # The far consumer moves up to r1 once its keyframe crossed the pipe.
    await wait_for(lambda: any(p.payload == video_packet(10, keyframe=True).payload
                               for p in call.forwarded()[2:]))  # fmt: skip
    seqs = [p.sequence_number for p in call.forwarded()]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(len(seqs))]  # gap-free
    layers = call.target.events_of("consumer.layerschange", call.consumer_id)
    assert layers[-1]["spatial_layer"] == 1


async def test_a_keyframe_lost_before_the_pipe_producer_existed_is_asked_for_again(
    engines: tuple[Harness, Harness],
) -> None:
    """pipe_to_router makes the pipe consumer first: what it sends before the far pipe
    producer exists (the stream's first keyframe included) is dropped there, and the far
    consumer's keyframe request must cross the pipe to the sending browser."""
    source, target = engines
    router1, router2 = await source.router(), await target.router()
    sender = await source.connected_peer(router1)
    receiver = await target.connected_peer(router2)
    producer_id = source.new_id("producer")
    await source.request(
        "transport.produce", transport_id=sender.transport_id, producer_id=producer_id,
        kind="video", rtp_parameters=VIDEO,
    )  # fmt: skip
    pipe1, pipe2 = await create_pipe(source, router1), await create_pipe(target, router2)
    await connect_pipes(source, pipe1, target, pipe2)
    piped = await source.request(
        "transport.consume", transport_id=pipe1["id"], consumer_id=source.new_id("pc"),
        producer_id=producer_id,
    )  # fmt: skip
    sender.send_rtp(video_packet(1, keyframe=True))
    sender.send_rtp(video_packet(2))
    far_pipe = target.handler.objects.transports[pipe2["id"]]
    await wait_for(lambda: far_pipe.drops["unknown_ssrc"] == 2)
    await target.request(
        "transport.produce", transport_id=pipe2["id"], producer_id=producer_id,
        kind="video", rtp_parameters=piped["rtp_parameters"],
    )  # fmt: skip
    consumer = await target.request(
        "transport.consume", transport_id=receiver.transport_id,
        consumer_id=target.new_id("consumer"), producer_id=producer_id,
        rtp_capabilities=DEVICE_CAPS,
    )  # fmt: skip
    ssrc = consumer["rtp_parameters"]["encodings"][0]["ssrc"]
    before = len([p for p in sender.rtcp_of(Pli) if p.media_ssrc == VIDEO_SSRC])
    seq = 3
    deadline = asyncio.get_running_loop().time() + 3.0
    while len([p for p in sender.rtcp_of(Pli) if p.media_ssrc == VIDEO_SSRC]) == before:
        assert asyncio.get_running_loop().time() < deadline, "no keyframe request crossed"
        sender.send_rtp(video_packet(seq))  # delta frames: the far consumer waits
        seq += 1
        await asyncio.sleep(0.05)
    assert receiver.received(ssrc) == []
    sender.send_rtp(video_packet(seq, keyframe=True))
    await wait_for(lambda: len(receiver.received(ssrc)) == 1)
