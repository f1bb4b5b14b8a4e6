"""The web client's camera is simulcast; each tile asks for the layer its size needs (issue 13).

Alice's fake camera gives 1280x720, so the web client sends three encodings (320, 640 and
1280 wide). Bob's tile of Alice asks the SFU for the layer that suits its height
(`media:set_preferred_layers` on resize): a small window gets a small picture, a big one
the full one; a hidden tile pauses its consumer; the `?debug` overlay shows the received
resolution. The sender's encoder may scale every layer down when the machine is busy, so
sizes are compared with each other, not with fixed numbers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.web.conftest import NewUser
from tests.web.harness import ServerProcess, alice_and_bob_in_general
from tests.web.test_call import assert_video_plays, remote_tile

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SWITCH_TIMEOUT = 30.0  # the top encoding starts as the sender's estimate grows

PLAYBACK = """(video) => ({
    width: video.videoWidth,
    frames: video.getVideoPlaybackQuality().totalVideoFrames,
})"""


async def poll_width(
    video: Any, predicate: Any, timeout: float, before: Callable[[], Awaitable[None]] | None = None
) -> int:
    """The received width once `predicate` holds, the tile kept in view meanwhile.

    A tile out of view pauses its consumer (frozen at its last picture, by design): on a
    small window the tile can fall below the fold, e.g. when the speaker layout moves the
    dominant speaker's tile first.
    """
    deadline = time.monotonic() + timeout
    while True:
        if before is not None:
            await before()
        await video.scroll_into_view_if_needed()
        width: int = (await video.evaluate(PLAYBACK))["width"]
        if predicate(width):
            return width
        assert time.monotonic() < deadline, f"received width stayed {width} for {timeout} s"
        await asyncio.sleep(0.3)


# The widest encoding the sender is sending now (framesPerSecond > 0), from its stats.
SENDER_TOP_WIDTH = """async () => {
    const stats = await window.roomlerCall.producers.video.getStats();
    let top = 0;
    stats.forEach((s) => {
        if (s.type === 'outbound-rtp' && s.framesPerSecond > 0) {
            top = Math.max(top, s.frameWidth || 0);
        }
    });
    return top;
}"""


async def test_tiles_ask_for_the_layer_their_size_needs_and_hidden_tiles_pause(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    # What Bob's page sends on its WebSocket (the page reloaded so the socket is seen).
    sent: list[dict[str, Any]] = []
    bob.page.on(
        "websocket",
        lambda ws: ws.on(
            "framesent", lambda payload: sent.append(json.loads(payload)) if payload else None
        ),
    )
    await bob.page.reload()

    def sent_data(message_type: str) -> list[dict[str, Any]]:
        return [f["data"] for f in sent if f.get("type") == message_type]

    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)
    await alice.page.evaluate("history.replaceState(null, '', location.pathname + '?debug')")
    await bob.page.get_by_role("button", name="Join call").click()
    await bob.page.evaluate("history.replaceState(null, '', location.pathname + '?debug')")
    await assert_video_plays(bob, "alice")
    tile = remote_tile(bob, "alice")
    video = tile.locator("video")

    # Alice sends three encodings of her 720p camera.
    settings = await alice.page.evaluate(
        """() => [...document.querySelectorAll('.tile[data-local="true"] video')]
            .map((v) => v.srcObject.getVideoTracks()[0].getSettings())[0]"""
    )
    assert settings["height"] == 720, settings

    # A big window: the tile is tall, Bob gets the top layer (1280 wide, or what the
    # sender's encoder makes of it when the machine is busy).
    # When the machine is so busy that the sender's bandwidth estimate keeps its top
    # encoding off, Bob gets the widest one it does send.
    await bob.page.set_viewport_size({"width": 1920, "height": 1400})
    sender_top = 1280

    async def top_now() -> None:
        nonlocal sender_top
        sender_top = await alice.page.evaluate(SENDER_TOP_WIDTH) or sender_top

    big = await poll_width(
        video, lambda w: w >= min(960, sender_top * 3 // 4) and w >= 600, SWITCH_TIMEOUT, top_now
    )
    layer_big = sent_data("media:set_preferred_layers")[-1]["spatial_layer"]
    # A small window: the tile asks for a lower layer and gets a smaller picture.
    # (tiles are 16:9 and at most the grid's width: under 300 px wide, under 170 tall)
    await bob.page.set_viewport_size({"width": 300, "height": 400})
    small = await poll_width(video, lambda w: 0 < w <= big // 2, SWITCH_TIMEOUT)
    layer_small = sent_data("media:set_preferred_layers")[-1]["spatial_layer"]
    assert (layer_big, layer_small) == (2, 0)
    await expect(tile.get_by_test_id("tile-debug")).to_contain_text(f"{small}×")
    await expect(tile.get_by_test_id("tile-debug")).to_contain_text(f"S{layer_small}")
    # Big again: back up.
    await bob.page.set_viewport_size({"width": 1920, "height": 1400})
    await poll_width(video, lambda w: w >= big, SWITCH_TIMEOUT)

    # The tile hidden: its consumer is paused at the SFU; shown again: resumed, frames flow.
    resumes = len(sent_data("media:consumer_resume"))
    await tile.evaluate("(el) => { el.style.display = 'none'; }")
    await expect_sent(lambda: sent_data("media:consumer_pause"))
    await tile.evaluate("(el) => { el.style.display = ''; }")
    await expect_sent(lambda: len(sent_data("media:consumer_resume")) > resumes)
    await assert_video_plays(bob, "alice")


async def expect_sent(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the page did not send it"
        await asyncio.sleep(0.1)
