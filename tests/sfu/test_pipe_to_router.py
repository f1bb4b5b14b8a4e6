"""`Router.pipe_to_router` through real worker processes: mediasoup's test-PipeTransport.ts,
ported as far as it applies (no data channels; SRTP is AEAD_AES_128_GCM, 28-byte keys).

Two workers of one `WorkerPool`, a router on each; producers made with mediasoup's own
test parameters on a WebRTC transport of the first router (no browser: nothing is sent,
these are the objects and their parameters, pause, resume and close across the pipe).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from roomler.sfu import PipeTransport, Producer, Router, WebRtcTransport, WorkerPool

MEDIA_CODECS = [
    {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2},
    {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000},
]
AUDIO = {
    "mid": "AUDIO",
    "codecs": [
        {
            "mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 2,
            "parameters": {"useinbandfec": 1, "foo": "bar1"},
        }
    ],
    "headerExtensions": [{"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 10}],
    "encodings": [{"ssrc": 11111111}],
    "rtcp": {"cname": "FOOBAR"},
}  # fmt: skip
VIDEO = {
    "mid": "VIDEO",
    "codecs": [
        {
            "mimeType": "video/VP8", "payloadType": 112, "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "nack"}, {"type": "nack", "parameter": "pli"},
                {"type": "goog-remb"}, {"type": "lalala"},
            ],
        }
    ],
    "headerExtensions": [
        {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 10},
        {"uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 11},
        {"uri": "urn:3gpp:video-orientation", "id": 13},
    ],
    "encodings": [{"ssrc": 22222222}, {"ssrc": 22222223}, {"ssrc": 22222224}],
    "rtcp": {"cname": "FOOBAR"},
}  # fmt: skip
DEVICE_CAPS = {
    "codecs": [
        {"kind": "audio", "mimeType": "audio/opus", "preferredPayloadType": 100,
         "clockRate": 48000, "channels": 2},
        {"kind": "video", "mimeType": "video/VP8", "preferredPayloadType": 101,
         "clockRate": 90000, "rtcpFeedback": [
             {"type": "nack"}, {"type": "ccm", "parameter": "fir"}, {"type": "transport-cc"}]},
        {"kind": "video", "mimeType": "video/rtx", "preferredPayloadType": 102,
         "clockRate": 90000, "parameters": {"apt": 101}, "rtcpFeedback": []},
    ],
    "headerExtensions": [
        {"kind": "video", "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
         "preferredId": 4, "preferredEncrypt": False, "direction": "sendrecv"},
        {"kind": "video",
         "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
         "preferredId": 5, "preferredEncrypt": False},
        {"kind": "audio", "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
         "preferredId": 10, "preferredEncrypt": False},
    ],
}  # fmt: skip


@dataclass
class Ctx:
    pool: WorkerPool
    router1: Router
    router2: Router
    transport1: WebRtcTransport
    transport2: WebRtcTransport
    audio: Producer
    video: Producer


@pytest.fixture
async def ctx() -> AsyncIterator[Ctx]:
    async with asyncio.timeout(60), WorkerPool(2, "127.0.0.1", None, 43100, 43299) as pool:
        worker1, worker2 = pool.workers
        router1 = await worker1.create_router(MEDIA_CODECS)
        router2 = await worker2.create_router(MEDIA_CODECS)
        transport1 = await router1.create_webrtc_transport()
        transport2 = await router2.create_webrtc_transport()
        audio = await transport1.produce("audio", AUDIO)
        video = await transport1.produce("video", VIDEO)
        yield Ctx(pool, router1, router2, transport1, transport2, audio, video)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def uris(params: dict[str, Any]) -> set[str]:
    return {ext["uri"] for ext in params["headerExtensions"]}


async def test_pipe_to_router_with_audio(ctx: Ctx) -> None:
    result = await ctx.router1.pipe_to_router(producer_id=ctx.audio.id, router=ctx.router2)
    consumer, producer = result.pipe_consumer, result.pipe_producer

    assert len((await ctx.router1.dump())["transportIds"]) == 2  # WebRTC + pipe
    assert len((await ctx.router2.dump())["transportIds"]) == 2
    assert consumer.kind == "audio" and consumer.type == "pipe"
    assert "mid" not in consumer.rtp_parameters
    [codec] = consumer.rtp_parameters["codecs"]
    assert codec["mimeType"] == "audio/opus" and codec["rtcpFeedback"] == []
    assert codec["parameters"] == {"useinbandfec": 1, "foo": "bar1"}
    assert "urn:ietf:params:rtp-hdrext:ssrc-audio-level" in uris(consumer.rtp_parameters)
    assert not any("sdes:mid" in uri for uri in uris(consumer.rtp_parameters))
    assert not consumer.paused and not consumer.producer_paused
    assert producer.id == ctx.audio.id and producer.kind == "audio"
    assert producer.rtp_parameters == consumer.rtp_parameters
    assert not producer.paused and not producer.closed


async def test_pipe_to_router_with_video_reuses_the_pair_and_carries_pause(ctx: Ctx) -> None:
    await ctx.router1.pipe_to_router(producer_id=ctx.audio.id, router=ctx.router2)
    await ctx.video.pause()
    result = await ctx.router1.pipe_to_router(producer_id=ctx.video.id, router=ctx.router2)
    consumer, producer = result.pipe_consumer, result.pipe_producer

    assert len((await ctx.router1.dump())["transportIds"]) == 2  # the same pipe
    assert len((await ctx.router2.dump())["transportIds"]) == 2
    assert consumer.type == "pipe" and consumer.kind == "video"
    [codec] = consumer.rtp_parameters["codecs"]
    assert codec["rtcpFeedback"] == [
        {"type": "nack", "parameter": "pli"},
        {"type": "ccm", "parameter": "fir"},
    ]
    assert len(consumer.rtp_parameters["encodings"]) == 3  # every encoding crosses
    assert consumer.producer_paused and not consumer.paused
    assert producer.id == ctx.video.id and producer.paused
    assert producer.type == "simulcast"


async def test_create_pipe_transport_with_rtx(ctx: Ctx) -> None:
    pipe = await ctx.router1.create_pipe_transport(enable_rtx=True)
    consumer = await pipe.consume(ctx.video.id)
    assert [c["mimeType"] for c in consumer.rtp_parameters["codecs"]] == [
        "video/VP8",
        "video/rtx",
    ]
    assert consumer.rtp_parameters["codecs"][0]["rtcpFeedback"][0] == {
        "type": "nack",
        "parameter": "",
    }
    assert consumer.rtp_parameters["codecs"][1]["parameters"] == {"apt": 101}
    assert all("rtx" in encoding for encoding in consumer.rtp_parameters["encodings"])


async def test_pipe_connect_with_srtp(ctx: Ctx) -> None:
    plain = await ctx.router1.create_pipe_transport()
    assert plain.srtp_parameters is None
    secure = await ctx.router1.create_pipe_transport(enable_srtp=True)
    assert secure.srtp_parameters is not None
    assert len(secure.srtp_parameters["keyBase64"]) == 40
    other = await ctx.router2.create_pipe_transport(enable_srtp=True)
    with pytest.raises(Exception, match="without SRTP"):
        await plain.connect(ip="127.0.0.2", port=9999, srtp_parameters=other.srtp_parameters)
    with pytest.raises(Exception, match="required"):
        await secure.connect(ip="127.0.0.2", port=9999)
    await secure.connect_to(other)
    assert secure.tuple["remotePort"] == other.tuple["localPort"]


async def test_consume_a_pipe_producer(ctx: Ctx) -> None:
    await ctx.router1.pipe_to_router(producer_id=ctx.video.id, router=ctx.router2)
    consumer = await ctx.transport2.consume(ctx.video.id, DEVICE_CAPS)
    assert consumer.kind == "video" and consumer.type == "simulcast"
    assert consumer.rtp_parameters["mid"] == "0"
    assert [c["mimeType"] for c in consumer.rtp_parameters["codecs"]] == [
        "video/VP8",
        "video/rtx",
    ]
    assert len(consumer.rtp_parameters["encodings"]) == 1
    assert not consumer.paused and not consumer.producer_paused


async def test_producer_pause_and_resume_reach_the_far_consumer(ctx: Ctx) -> None:
    await ctx.video.pause()
    result = await ctx.router1.pipe_to_router(producer_id=ctx.video.id, router=ctx.router2)
    consumer = await ctx.transport2.consume(ctx.video.id, DEVICE_CAPS)
    assert consumer.producer_paused

    await ctx.video.resume()
    await until(lambda: not consumer.producer_paused and not result.pipe_producer.paused)
    await ctx.video.pause()
    await until(lambda: consumer.producer_paused and result.pipe_producer.paused)
    assert not consumer.paused


async def test_producer_close_reaches_the_far_consumer(ctx: Ctx) -> None:
    await ctx.router1.pipe_to_router(producer_id=ctx.video.id, router=ctx.router2)
    consumer = await ctx.transport2.consume(ctx.video.id, DEVICE_CAPS)
    events: list[str] = []
    consumer.on("producerclose", lambda: events.append("producerclose"))

    await ctx.video.close()

    await until(lambda: consumer.closed)
    assert events == ["producerclose"]


async def test_closing_a_pipe_transport_closes_its_twin_and_the_pipe_producers(ctx: Ctx) -> None:
    result = await ctx.router1.pipe_to_router(producer_id=ctx.video.id, router=ctx.router2)
    consumer = await ctx.transport2.consume(ctx.video.id, DEVICE_CAPS)
    local = ctx.router1.pipe_transport_to(ctx.router2)
    remote = ctx.router2.pipe_transport_to(ctx.router1)
    assert isinstance(local, PipeTransport) and isinstance(remote, PipeTransport)

    await local.close()

    await until(lambda: remote.closed and result.pipe_producer.closed and consumer.closed)
    assert ctx.router1.pipe_transport_to(ctx.router2) is None
    assert not ctx.video.closed
    # Piping again makes a new pair.
    again = await ctx.router1.pipe_to_router(producer_id=ctx.video.id, router=ctx.router2)
    assert not again.pipe_producer.closed


async def test_pipe_to_router_refuses_the_same_worker_and_the_same_router(ctx: Ctx) -> None:
    router1bis = await ctx.router1.worker.create_router(MEDIA_CODECS)
    with pytest.raises(ValueError, match="same worker"):
        await ctx.router1.pipe_to_router(producer_id=ctx.video.id, router=router1bis)
    with pytest.raises(ValueError, match="itself"):
        await ctx.router1.pipe_to_router(producer_id=ctx.video.id, router=ctx.router1)
    with pytest.raises(ValueError, match="not in router"):
        await ctx.router1.pipe_to_router(producer_id="nope", router=ctx.router2)


async def test_piping_twice_at_once_makes_one_pair(ctx: Ctx) -> None:
    second = await ctx.transport1.produce("audio", {**AUDIO, "mid": "AUDIO2",
                                                    "encodings": [{"ssrc": 33333333}]})  # fmt: skip
    await asyncio.gather(
        ctx.router1.pipe_to_router(producer_id=ctx.audio.id, router=ctx.router2),
        ctx.router1.pipe_to_router(producer_id=second.id, router=ctx.router2),
    )
    assert len((await ctx.router1.dump())["transportIds"]) == 2
    assert len((await ctx.router2.dump())["transportIds"]) == 2


async def test_piping_each_way_at_once_makes_one_pair(ctx: Ctx) -> None:
    producer_b = await ctx.transport2.produce("audio", AUDIO)
    await asyncio.gather(
        ctx.router1.pipe_to_router(producer_id=ctx.audio.id, router=ctx.router2),
        ctx.router2.pipe_to_router(producer_id=producer_b.id, router=ctx.router1),
    )
    pipes1 = [t for t in ctx.router1.transports.values() if isinstance(t, PipeTransport)]
    pipes2 = [t for t in ctx.router2.transports.values() if isinstance(t, PipeTransport)]
    assert len(pipes1) == len(pipes2) == 1
    assert pipes1[0].tuple["remotePort"] == pipes2[0].tuple["localPort"]
    assert pipes2[0].tuple["remotePort"] == pipes1[0].tuple["localPort"]


async def test_a_dead_workers_pipes_close_on_the_other_side(ctx: Ctx) -> None:
    result = await ctx.router1.pipe_to_router(producer_id=ctx.video.id, router=ctx.router2)
    consumer = await ctx.transport2.consume(ctx.video.id, DEVICE_CAPS)
    os.kill(ctx.router1.worker.pid, signal.SIGKILL)

    await until(lambda: result.pipe_producer.closed and consumer.closed)
    assert not ctx.transport2.closed


async def test_a_pipe_toward_another_host_announces_its_address(ctx: Ctx) -> None:
    """Across nodes the far side sends to the announced address (NAT, 0.0.0.0 listeners)."""
    pipe = await ctx.router1.create_pipe_transport(
        listen_ip="0.0.0.0", announced_ip="203.0.113.7", enable_srtp=True
    )
    assert pipe.tuple["localIp"] == "203.0.113.7"
    assert 43100 <= pipe.tuple["localPort"] <= 43299  # the worker's own share of the range
    unannounced = await ctx.router1.create_pipe_transport(listen_ip="0.0.0.0")
    assert unannounced.tuple["localIp"] == "127.0.0.1"
