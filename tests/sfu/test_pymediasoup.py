"""A second client stack that no one here wrote: pymediasoup through roomler.sfu.

pymediasoup is a Python port of mediasoup-client on aiortc (its own ICE, DTLS,
SRTP, RTP stack and VP8/Opus codecs). Here it sends to and receives from
unmodified mediasoup-client in headless Chromium through one router of a real
`WorkerPool`, speaking the same signaling as the test page
(tests/sfu/browser/signaling.py).
"""

from __future__ import annotations

import asyncio
import fractions
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aioice.ice
import av
import pytest
import pytest_asyncio
from aiortc import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack
from pymediasoup import AiortcHandler, Device
from pymediasoup.consumer import Consumer
from pymediasoup.rtp_parameters import RtpCapabilities
from pymediasoup.transport import Transport
from websockets.asyncio.client import ClientConnection, connect

from tests.sfu.browser.harness import STEP_TIMEOUT, BrowserPeer, evidence, media_flows, poll
from tests.sfu.browser.signaling import SignalingServer

pytest_plugins = ("tests.sfu.browser.fixtures",)
pytestmark = [pytest.mark.browser, pytest.mark.slow]

OpenPeer = Callable[[str], Awaitable[BrowserPeer]]

MEDIA_TIMEOUT = 10.0
MIN_FRAMES = 30


class MovingVideoTrack(VideoStreamTrack):
    """320x240 frames at aiortc's 30 fps whose brightness changes every frame."""

    def __init__(self) -> None:
        super().__init__()
        self._luma = itertools.cycle(range(16, 236, 3))

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=320, height=240, format="yuv420p")
        luma = next(self._luma)
        for plane, value in zip(frame.planes, (luma, 128, 128), strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = fractions.Fraction(time_base)
        return frame


class PyMediasoupPeer:
    """pymediasoup + aiortc over the signaling server's WebSocket JSON-RPC."""

    def __init__(self, ws_url: str) -> None:
        self.ws_url = ws_url
        self.producers: dict[str, str] = {}  # kind -> producer id
        self.notifications: list[dict[str, Any]] = []
        self._tracks: list[MediaStreamTrack] = [AudioStreamTrack(), MovingVideoTrack()]
        self._device = Device(handlerFactory=AiortcHandler.createFactory(tracks=self._tracks))
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._socket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._send: Transport | None = None
        self._recv: Transport | None = None

    async def open(self) -> None:
        self._socket = await asyncio.wait_for(connect(self.ws_url), STEP_TIMEOUT)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._socket is not None
        async for text in self._socket:
            message = json.loads(text)
            if "notification" in message:
                self.notifications.append(message)
                continue
            future = self._pending.pop(message["id"], None)
            if future is None or future.done():
                continue
            if "error" in message:
                future.set_exception(RuntimeError(message["error"]))
            else:
                future.set_result(message["result"])

    async def request(self, method: str, params: dict[str, Any] | None = None) -> Any:
        assert self._socket is not None
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message = {"id": request_id, "method": method, "params": params or {}}
        await self._socket.send(json.dumps(message))
        return await asyncio.wait_for(future, STEP_TIMEOUT)

    async def join(self) -> None:
        caps = await self.request("getRouterRtpCapabilities")
        await self._device.load(RtpCapabilities(**caps))
        self._send = await self._create_transport("send")
        self._recv = await self._create_transport("recv")

    async def _create_transport(self, direction: str) -> Transport:
        params = await self.request("createWebRtcTransport", {"direction": direction})
        options = {
            "id": params["id"],
            "iceParameters": params["iceParameters"],
            "iceCandidates": params["iceCandidates"],
            "dtlsParameters": params["dtlsParameters"],
            "sctpParameters": None,
            # No STUN servers: aiortc would otherwise ask stun.l.google.com.
            "iceServers": [],
        }
        if direction == "send":
            transport = self._device.createSendTransport(**options)
        else:
            transport = self._device.createRecvTransport(**options)

        async def on_connect(dtls_parameters: Any) -> None:
            await self.request(
                "connectWebRtcTransport",
                {"transportId": transport.id, "dtlsParameters": dtls_parameters.model_dump()},
            )

        async def on_produce(kind: str, rtp_parameters: Any, app_data: Any) -> str:
            rtp = rtp_parameters.model_dump(exclude_none=True)
            params = {"transportId": transport.id, "kind": kind, "rtpParameters": rtp}
            produced = await self.request("produce", params)
            return str(produced["id"])

        transport.on("connect", on_connect)
        transport.on("produce", on_produce)
        return transport

    async def produce_all(self) -> dict[str, str]:
        assert self._send is not None
        for track in self._tracks:
            producer = await asyncio.wait_for(self._send.produce(track=track), STEP_TIMEOUT)
            self.producers[track.kind] = producer.id
        return self.producers

    async def consume(self, producer_id: str) -> Consumer:
        assert self._recv is not None
        caps = self._device.rtpCapabilities
        assert caps is not None
        params = await self.request(
            "consume",
            {
                "transportId": self._recv.id,
                "producerId": producer_id,
                "rtpCapabilities": caps.model_dump(exclude_none=True),
            },
        )
        consumer = await asyncio.wait_for(
            self._recv.consume(
                id=params["id"],
                producerId=params["producerId"],
                kind=params["kind"],
                rtpParameters=params["rtpParameters"],
            ),
            STEP_TIMEOUT,
        )
        await self.request("resumeConsumer", {"consumerId": consumer.id})
        return consumer

    async def stats(self) -> str:
        """aiortc's getStats() of both transports, for failure messages."""
        lines: list[str] = []
        for transport in (self._send, self._recv):
            if transport is None or transport.closed:
                continue
            report = await asyncio.wait_for(transport.getStats(), STEP_TIMEOUT)
            lines.extend(f"pymediasoup.{transport.direction}: {stat}" for stat in report.values())
        return "\n".join(lines)

    async def close(self) -> None:
        for transport in (self._send, self._recv):
            if transport is not None and not transport.closed:
                await asyncio.wait_for(transport.close(), STEP_TIMEOUT)
        for track in self._tracks:
            track.stop()
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, STEP_TIMEOUT)


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice gathers host candidates on 127.0.0.1 only: the test stays on loopback."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest_asyncio.fixture
async def pymediasoup_peer(
    signaling: SignalingServer, loopback_ice: None
) -> AsyncIterator[PyMediasoupPeer]:
    peer = PyMediasoupPeer(signaling.ws_url)
    await peer.open()
    try:
        yield peer
    finally:
        await peer.close()


async def count_frames(consumer: Consumer, wanted: int, timeout: float) -> int:
    """Frames aiortc decoded from `consumer`'s track within `timeout` s (stops at `wanted`)."""
    track = consumer.track
    assert track is not None
    frames = 0
    deadline = time.monotonic() + timeout
    while frames < wanted and (left := deadline - time.monotonic()) > 0:
        try:
            await asyncio.wait_for(track.recv(), left)
        except TimeoutError:
            break
        frames += 1
    return frames


async def test_pymediasoup_sends_to_and_receives_from_a_browser(
    open_peer: OpenPeer, signaling: SignalingServer, pymediasoup_peer: PyMediasoupPeer
) -> None:
    browser = await open_peer("browser")
    await browser.join(signaling.ws_url)
    await browser.produce()
    await pymediasoup_peer.join()
    await pymediasoup_peer.produce_all()

    browser_consumers = {
        kind: (await browser.consume(producer_id))["id"]
        for kind, producer_id in pymediasoup_peer.producers.items()
    }
    python_consumers = {
        kind: await pymediasoup_peer.consume(producer_id)
        for kind, producer_id in browser.producers.items()
    }

    # Browser side: what Chrome decoded from aiortc's VP8 and Opus.
    ok, stats = await poll(
        browser.stats, lambda s: media_flows(s, browser_consumers, MIN_FRAMES), MEDIA_TIMEOUT
    )
    assert ok, (
        f"the browser did not decode {MIN_FRAMES} frames and get audio from pymediasoup"
        f" in {MEDIA_TIMEOUT} s: {stats}\n{await evidence(signaling, [browser])}\n"
        f"{await pymediasoup_peer.stats()}"
    )

    # pymediasoup side: what aiortc decoded from Chrome's VP8 and Opus.
    video_frames, audio_frames = await asyncio.gather(
        count_frames(python_consumers["video"], MIN_FRAMES, MEDIA_TIMEOUT),
        count_frames(python_consumers["audio"], 1, MEDIA_TIMEOUT),
    )
    assert video_frames >= MIN_FRAMES and audio_frames >= 1, (
        f"pymediasoup decoded {video_frames} video and {audio_frames} audio frames from the"
        f" browser in {MEDIA_TIMEOUT} s\n{await evidence(signaling, [browser])}\n"
        f"{await pymediasoup_peer.stats()}"
    )
