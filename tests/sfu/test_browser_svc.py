"""VP9 SVC from headless Chromium through roomler.sfu (issue 13).

Page a produces its camera as one VP9 encoding of three spatial and three
temporal layers (mediasoup-client ``encodings: [{scalabilityMode}]``); page b
consumes it through an ``svc`` consumer, decodes the top layer's picture, and
once it asks for spatial layer 0 (``setPreferredLayers``) decodes the smaller
picture of that layer -- the SFU dropped the upper layers of one stream.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.sfu.browser.harness import BrowserPeer, evidence, poll
from tests.sfu.browser.signaling import SignalingServer
from tests.sfu.test_browser import longest_stall

pytest_plugins = ("tests.sfu.browser.fixtures",)
pytestmark = [pytest.mark.browser, pytest.mark.slow]

OpenPeer = Callable[[str], Awaitable[BrowserPeer]]

CAPTURE = (960, 540)  # three spatial layers: 240x135, 480x270, 960x540
TOP_TIMEOUT = 30.0  # Chromium turns its upper layers on as its estimate grows
SWITCH_TIMEOUT = 10.0


@pytest.mark.parametrize("mode", ["L3T3_KEY", "L3T3"])
async def test_svc_receiver_decodes_the_top_layer_then_the_smaller_one_it_prefers(
    open_peer: OpenPeer, signaling: SignalingServer, mode: str
) -> None:
    a, b = await open_peer("a"), await open_peer("b")
    await a.join(signaling.ws_url)
    await b.join(signaling.ws_url, send=False)
    await a.produce(width=CAPTURE[0], height=CAPTURE[1], svc=mode)
    consumed = await b.consume(a.producers["video"])
    video = consumed["id"]
    server_consumer = signaling.consumers[video]
    assert server_consumer.type == "svc"
    decoded: list[tuple[float, int]] = []

    async def inbound() -> dict[str, Any]:
        stats: dict[str, Any] = (await b.stats())["inbound"][video]
        decoded.append((time.monotonic(), stats["framesDecoded"]))
        return stats

    async def width_reaches(width: int, timeout: float) -> None:
        ok, last = await poll(inbound, lambda s: s["frameWidth"] == width, timeout)
        assert ok, (
            f"b's video is {last['frameWidth']}x{last['frameHeight']}, not {width} wide,"
            f" after {timeout} s\n{await evidence(signaling, [a, b])}"
        )

    await width_reaches(CAPTURE[0], TOP_TIMEOUT)
    # What Chromium says it encodes: one VP9 stream in the mode asked for.
    (sent,) = (await a.stats())["outbound"][a.producers["video"]]["encodings"]
    assert sent["scalabilityMode"] == mode, sent
    reply = await b.set_preferred_layers(video, 0)
    assert reply["preferredLayers"]["spatialLayer"] == 0
    await width_reaches(CAPTURE[0] // 4, SWITCH_TIMEOUT)
    frames = decoded[-1][1]
    ok, _ = await poll(inbound, lambda s: s["framesDecoded"] >= frames + 30, SWITCH_TIMEOUT)
    assert ok, f"b stopped decoding on layer 0\n{await evidence(signaling, [a, b])}"
    await b.set_preferred_layers(video, 2)
    await width_reaches(CAPTURE[0], SWITCH_TIMEOUT)
    # The decoder never stalled across the switches (no new frame for over a second).
    assert longest_stall(decoded) < 1.0, decoded
