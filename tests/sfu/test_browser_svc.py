"""VP9 SVC from headless Chromium through roomler.sfu (issue 13).

Page a produces its camera as one VP9 encoding of three spatial and three
temporal layers (mediasoup-client ``encodings: [{scalabilityMode}]``); page b
consumes it through an ``svc`` consumer, decodes the top layer's picture, and
once it asks for spatial layer 0 (``setPreferredLayers``) decodes the smaller
picture of that layer -- the SFU dropped the upper layers of one stream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.sfu.browser.harness import BrowserPeer, ReceivedVideo, evidence, poll
from tests.sfu.browser.signaling import SignalingServer

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
    received = ReceivedVideo(b, video, signaling, [a, b])

    await received.width_reaches(CAPTURE[0], TOP_TIMEOUT)
    # What Chromium says it encodes: one VP9 stream in the mode asked for.
    (sent,) = (await a.stats())["outbound"][a.producers["video"]]["encodings"]
    assert sent["scalabilityMode"] == mode, sent
    reply = await b.set_preferred_layers(video, 0)
    assert reply["preferredLayers"]["spatialLayer"] == 0
    await received.width_reaches(CAPTURE[0] // 4, SWITCH_TIMEOUT)
    frames = received.decoded[-1][1]
    ok, _ = await poll(received.stats, lambda s: s["framesDecoded"] >= frames + 30, SWITCH_TIMEOUT)
    assert ok, f"b stopped decoding on layer 0\n{await evidence(signaling, [a, b])}"
    await b.set_preferred_layers(video, 2)
    await received.width_reaches(CAPTURE[0], SWITCH_TIMEOUT)
    # The decoder never stalled across the switches (no new frame for over a second).
    assert received.longest_stall() < 1.0, received.decoded


async def test_svc_receiver_asking_for_temporal_layer_0_gets_a_quarter_of_the_frame_rate(
    open_peer: OpenPeer, signaling: SignalingServer
) -> None:
    """L1T3: one spatial layer, three temporal (TIDs 0,2,1,2): layer 0 is every fourth frame."""
    a, b = await open_peer("a"), await open_peer("b")
    await a.join(signaling.ws_url)
    await b.join(signaling.ws_url, send=False)
    await a.produce(width=640, height=360, svc="L1T3")
    video = (await b.consume(a.producers["video"]))["id"]
    assert signaling.consumers[video].type == "svc"

    async def frame_rates() -> tuple[float, float, int]:
        """(what a encodes, what b decodes, frames b decoded) per second."""
        sent = (await a.stats())["outbound"][a.producers["video"]]
        got = (await b.stats())["inbound"][video]
        return sent["framesPerSecond"] or 0, got["framesPerSecond"] or 0, got["framesDecoded"]

    ok, rates = await poll(frame_rates, lambda r: r[0] >= 10 and r[1] >= 0.8 * r[0], TOP_TIMEOUT)
    assert ok, f"b decodes {rates[1]} fps of a's {rates[0]}\n{await evidence(signaling, [a, b])}"
    (sent,) = (await a.stats())["outbound"][a.producers["video"]]["encodings"]
    assert sent["scalabilityMode"] == "L1T3", sent
    await b.set_preferred_layers(video, 0, 0)
    # Temporal layer 0 of L1T3 is a quarter of the frames; the decoder keeps going.
    ok, rates = await poll(
        frame_rates, lambda r: 0 < r[1] <= 0.4 * r[0] and r[2] > 0, SWITCH_TIMEOUT
    )
    assert ok, f"b decodes {rates[1]} fps of a's {rates[0]}\n{await evidence(signaling, [a, b])}"
    decoded = rates[2]
    ok, rates = await poll(frame_rates, lambda r: r[2] >= decoded + 10, SWITCH_TIMEOUT)
    assert ok, f"b stopped decoding at temporal layer 0\n{await evidence(signaling, [a, b])}"
    await b.set_preferred_layers(video, 0, 2)
    ok, rates = await poll(frame_rates, lambda r: r[1] >= 0.8 * r[0], SWITCH_TIMEOUT)
    assert ok, f"b decodes {rates[1]} fps of a's {rates[0]}\n{await evidence(signaling, [a, b])}"
