"""Helpers for the roomler.sfu browser tests (the fixtures are in fixtures.py).

- `bundle()`: entry.js plus web/node_modules' mediasoup-client, by esbuild.
- `BrowserPeer`: one page running entry.js; calls `window.roomler.*` with a timeout.
- `poll()`: bounded waiting for a condition on fresh stats.
- `evidence()`: on failure, what chrome://webrtc-internals would show (each
  page's `getStats()`) and what the server knows (`router.dump()`,
  `transport.get_stats()`, consumer and producer stats), so a report can say
  which side is at fault.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import random
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.async_api import Page

from tests.sfu.browser.signaling import SignalingServer

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
WEB = REPO / "web"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# One browser-side step (a getUserMedia, an SDP negotiation, a signaling round trip).
STEP_TIMEOUT = 15.0
EVIDENCE_TIMEOUT = 5.0
# A port range of its own, away from the defaults other tests may use.
RTC_MIN_PORT = 47000
RTC_MAX_PORT = 47999

# The noise clip for bitrate measurements (write_noise_y4m).
NOISE_WIDTH = 640
NOISE_HEIGHT = 360
NOISE_FRAMES = 15
NOISE_SEED = 4

T = TypeVar("T")


def bundle(entry: Path, out_dir: Path) -> Path:
    """Bundle `entry` with mediasoup-client into out_dir/bundle.js."""
    esbuild = WEB / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        pytest.fail(f"{esbuild} is missing: run `make web` (or `cd web && npm ci`)")
    out = out_dir / "bundle.js"
    subprocess.run(
        [
            str(esbuild),
            str(entry),
            "--bundle",
            "--format=iife",
            "--platform=browser",
            "--target=es2022",
            f"--outfile={out}",
            "--log-level=warning",
        ],
        check=True,
        timeout=60,
        # The entry lives outside web/, so point module resolution at web/node_modules.
        env={**os.environ, "NODE_PATH": str(WEB / "node_modules")},
    )
    return out


def write_noise_y4m(path: Path, width: int, height: int, frames: int) -> None:
    """A YUV4MPEG2 clip of random 4:2:0 frames for --use-file-for-fake-video-capture.

    Chromium's built-in fake camera pattern is so easy to compress that VP8
    undershoots any target (about 450 kbps at 1280x720 for a 2.5 Mbps target),
    so its bytes on the wire measure the picture, not the bandwidth estimate.
    Noise cannot be compressed: the encoder spends its whole target, which
    follows the estimate that the SFU's congestion feedback drives.
    """
    rng = random.Random(NOISE_SEED)
    frame_size = width * height * 3 // 2
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + rng.randbytes(frame_size))


@dataclass
class BrowserPeer:
    """A page running entry.js: calls `window.roomler.<function>` with a timeout."""

    name: str
    page: Page
    console: list[str] = field(default_factory=list)
    producers: dict[str, str] = field(default_factory=dict)  # kind -> producer id
    transports: dict[str, str] = field(default_factory=dict)  # direction -> transport id
    ports: dict[str, int] = field(default_factory=dict)  # direction -> server UDP port

    async def call(self, function: str, *args: Any, timeout: float = STEP_TIMEOUT) -> Any:
        script = f"args => window.roomler.{function}(...args)"
        try:
            return await asyncio.wait_for(self.page.evaluate(script, list(args)), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.name}: roomler.{function} did not finish in {timeout} s;"
                f" console: {self.console[-20:]}"
            ) from None

    async def join(self, ws_url: str, *, send: bool = True, recv: bool = True) -> None:
        """Connect the signaling, load the device, create the transports."""
        await self.call("connect", ws_url)
        device = await self.call("loadDevice")
        assert device["canProduceAudio"] and device["canProduceVideo"], device
        for direction, wanted in (("send", send), ("recv", recv)):
            if wanted:
                created = await self.call("createTransport", direction)
                self.transports[direction] = created["id"]
                self.ports[direction] = created["port"]

    async def produce(self, **options: Any) -> dict[str, str]:
        """Camera and mic; ``width``, ``height``, ``simulcast``, ``svc`` as entry.js takes them."""
        self.producers = await self.call("produceCameraAndMic", options)
        return self.producers

    async def set_preferred_layers(
        self, consumer_id: str, spatial: int, temporal: int | None = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "setPreferredLayers", consumer_id, spatial, temporal
        )
        return result

    async def consume(self, producer_id: str) -> dict[str, Any]:
        consumed: dict[str, Any] = await self.call("consume", producer_id)
        return consumed

    async def consume_all(self, other: BrowserPeer) -> dict[str, str]:
        """Consume every producer of `other`; returns kind -> consumer id."""
        return {
            kind: (await self.consume(producer_id))["id"]
            for kind, producer_id in other.producers.items()
        }

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("stats")
        return result

    async def consumer_state(self, consumer_id: str) -> dict[str, Any]:
        """{closed, trackReadyState, events} of one of this page's consumers."""
        result: dict[str, Any] = await self.call("consumerState", consumer_id)
        return result


def udp_port_is_bound(port: int) -> bool:
    """Whether something (an SFU transport) holds UDP `port` on 127.0.0.1."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind(("127.0.0.1", port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        return True
    finally:
        probe.close()
    return False


def media_flows(stats: dict[str, Any], consumer_ids: dict[str, str], min_frames: int) -> bool:
    """The video consumer decoded `min_frames` frames and the audio one got packets."""
    video = stats["inbound"].get(consumer_ids["video"], {})
    audio = stats["inbound"].get(consumer_ids["audio"], {})
    return bool(video.get("framesDecoded", 0) >= min_frames and audio.get("packetsReceived", 0) > 0)


async def poll(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout: float,
    interval: float = 0.25,
) -> tuple[bool, T]:
    """Call probe() until done(value) or `timeout` seconds pass: (done, last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if done(value):
            return True, value
        if time.monotonic() >= deadline:
            return False, value
        await asyncio.sleep(interval)


class ReceivedVideo:
    """A receiving peer's video consumer, watched through its `getStats()`: every sample
    is kept, so a test can wait for a width and then ask how long the decoder stalled."""

    def __init__(
        self,
        receiver: BrowserPeer,
        consumer_id: str,
        server: SignalingServer,
        peers: list[BrowserPeer],
    ) -> None:
        self.receiver = receiver
        self.consumer_id = consumer_id
        self.server = server
        self.peers = peers  # whose state the failure message shows
        self.decoded: list[tuple[float, int]] = []  # (time, framesDecoded)

    async def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = (await self.receiver.stats())["inbound"][self.consumer_id]
        self.decoded.append((time.monotonic(), stats["framesDecoded"]))
        return stats

    async def width_reaches(self, width: int, timeout: float) -> None:
        ok, last = await poll(self.stats, lambda s: s["frameWidth"] == width, timeout)
        assert ok, (
            f"{self.receiver.name}'s video is {last['frameWidth']}x{last['frameHeight']},"
            f" not {width} wide, after {timeout} s\n{await evidence(self.server, self.peers)}"
        )

    def longest_stall(self) -> float:
        """The longest time over which the samples show no new frame."""
        longest, changed_at, last = 0.0, None, None
        for when, frames in self.decoded:
            if frames != last:
                changed_at, last = when, frames
            elif frames and changed_at is not None:
                longest = max(longest, when - changed_at)
        return longest


async def router_knows(server: SignalingServer, object_ids: Iterable[str]) -> set[str]:
    """Which of `object_ids` the engine's `router.dump()` still mentions."""
    dump = json.dumps(await asyncio.wait_for(server.router.dump(), STEP_TIMEOUT))
    return {object_id for object_id in object_ids if object_id in dump}


# Failure evidence

_BROWSER_STAT_TYPES = {
    "inbound-rtp",
    "outbound-rtp",
    "remote-inbound-rtp",
    "remote-outbound-rtp",
    "candidate-pair",
    "transport",
    "local-candidate",
    "remote-candidate",
}
_BROWSER_STAT_FIELDS = {
    "type",
    "kind",
    "ssrc",
    "state",
    "nominated",
    "dtlsState",
    "iceState",
    "selectedCandidatePairId",
    "packetsSent",
    "bytesSent",
    "packetsReceived",
    "bytesReceived",
    "packetsLost",
    "framesDecoded",
    "framesEncoded",
    "keyFramesDecoded",
    "nackCount",
    "pliCount",
    "firCount",
    "targetBitrate",
    "availableOutgoingBitrate",
    "currentRoundTripTime",
    "qualityLimitationReason",
    "retransmittedPacketsSent",
    "address",
    "port",
    "candidateType",
    "responsesReceived",
    "requestsSent",
    "consentRequestsSent",
    "mid",
}


def _trim_browser_stats(full: dict[str, Any]) -> dict[str, Any]:
    trimmed: dict[str, Any] = {}
    for direction, transport in full.items():
        trimmed[direction] = {
            "connectionState": transport["connectionState"],
            "stats": [
                {key: value for key, value in stat.items() if key in _BROWSER_STAT_FIELDS}
                for stat in transport["stats"]
                if stat.get("type") in _BROWSER_STAT_TYPES
            ],
        }
    return trimmed


async def _gather(label: str, coroutine: Awaitable[Any]) -> tuple[str, Any]:
    try:
        return label, await asyncio.wait_for(coroutine, EVIDENCE_TIMEOUT)
    except Exception as exc:  # evidence must never hide the real failure
        return label, f"<{type(exc).__name__}: {exc}>"


async def evidence(server: SignalingServer, peers: Iterable[BrowserPeer] = ()) -> str:
    """What both sides know, as JSON, for an assertion message."""
    items: list[tuple[str, Awaitable[Any]]] = []
    for peer in peers:
        items.append((f"{peer.name}.stats", peer.call("stats", timeout=EVIDENCE_TIMEOUT)))
        full = peer.call("fullStats", timeout=EVIDENCE_TIMEOUT)
        items.append((f"{peer.name}.getStats", _trimmed(full)))
    if server.router is not None:
        items.append(("server.router.dump", server.router.dump()))
    for transport_id, transport in server.transports.items():
        items.append((f"server.transport[{transport_id}].get_stats", transport.get_stats()))
    for producer_id, producer in server.producers.items():
        items.append((f"server.producer[{producer_id}].get_stats", producer.get_stats()))
    for consumer_id, consumer in server.consumers.items():
        items.append((f"server.consumer[{consumer_id}].get_stats", consumer.get_stats()))
    gathered = [await _gather(label, coroutine) for label, coroutine in items]
    gathered.append(("server.events", server.events))
    gathered.extend((f"{peer.name}.console", peer.console[-30:]) for peer in peers)
    return "\n".join(f"{label}: {json.dumps(value, default=str)}" for label, value in gathered)


async def _trimmed(full: Awaitable[Any]) -> Any:
    return _trim_browser_stats(await full)
