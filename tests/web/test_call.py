"""A call between two browsers through the web client and roomler.sfu (issue 6)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, expect

from tests.web.conftest import NewUser
from tests.web.harness import BrowserUser, ServerProcess, alice_and_bob_in_general

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MEDIA_TIMEOUT = 15.0  # from joining to decoded frames on the other side
FRAME_GAP = 1.0  # frames must keep coming over this interval
VIDEO_OFF = re.compile(r"\bvideo-off\b")

PLAYBACK = """(video) => ({
    width: video.videoWidth,
    frames: video.getVideoPlaybackQuality().totalVideoFrames,
})"""


def remote_tile(user: BrowserUser, username: str) -> Locator:
    return user.page.locator(f'.tile[data-local="false"][data-user="{username}"]')


async def assert_video_plays(viewer: BrowserUser, username: str) -> None:
    """`viewer` decodes `username`'s camera: a size, and a frame count that keeps rising."""
    video = remote_tile(viewer, username).locator("video")
    await expect(video).to_have_count(1, timeout=MEDIA_TIMEOUT * 1000)
    deadline = time.monotonic() + MEDIA_TIMEOUT
    state = await video.evaluate(PLAYBACK)
    while state["width"] == 0 or state["frames"] == 0:
        assert time.monotonic() < deadline, (
            f"{viewer.username} decoded no video of {username} in {MEDIA_TIMEOUT} s: {state}"
        )
        await asyncio.sleep(0.2)
        state = await video.evaluate(PLAYBACK)
    await asyncio.sleep(FRAME_GAP)
    later = await video.evaluate(PLAYBACK)
    assert later["frames"] > state["frames"], (
        f"{viewer.username}'s video of {username} froze at frame {state['frames']}"
    )


async def participants(server: ServerProcess, user: BrowserUser) -> list[dict[str, Any]]:
    """The call's participant records, read through the REST API as `user`."""
    match = re.search(r"/t/([0-9a-f]{24})/call/([0-9a-f]{24})$", user.page.url)
    assert match, user.page.url
    token = await user.page.evaluate(
        "JSON.parse(localStorage.getItem('roomler.session')).accessToken"
    )
    async with httpx.AsyncClient(base_url=server.base) as http:
        response = await http.get(
            f"/api/tenant/{match[1]}/conference/{match[2]}/participant",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()
    return records


async def test_two_browsers_see_hear_mute_and_leave(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)

    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.get_by_role("heading", name="#general")).to_be_visible()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)

    # Bob's #general learns of the call and offers to join it.
    join = bob.page.get_by_role("button", name="Join call")
    await join.click()
    await expect(bob.page.get_by_role("heading", name="#general")).to_be_visible()

    await assert_video_plays(alice, "bob")
    await assert_video_plays(bob, "alice")
    for user, other in ((alice, "Bob"), (bob, "Alice")):
        await expect(remote_tile(user, other.lower())).to_contain_text(other)
        await expect(remote_tile(user, other.lower())).to_have_attribute("data-muted", "false")
    await alice.screenshot("call", "both", readme="call")

    await alice.page.get_by_role("button", name="Mute").click()
    await expect(remote_tile(bob, "alice")).to_have_attribute("data-muted", "true")
    await expect(remote_tile(bob, "alice").get_by_label("Microphone muted")).to_be_visible()

    # Alice's camera off and on again: Bob sees her avatar, then her video moving again.
    await alice.page.get_by_role("button", name="Stop camera").click()
    await expect(remote_tile(bob, "alice")).to_have_class(VIDEO_OFF)
    await alice.page.get_by_role("button", name="Start camera").click()
    await expect(remote_tile(bob, "alice")).not_to_have_class(VIDEO_OFF)
    await assert_video_plays(bob, "alice")

    # The device picker offers the (fake) microphone and camera.
    await bob.page.get_by_role("button", name="Devices").click()
    for picker in ("microphone", "camera"):
        options = bob.page.locator(f'.device-picker select[name="{picker}"] option')
        await expect(options).not_to_have_count(0)

    await bob.page.get_by_role("button", name="Leave call").click()
    await expect(bob.channel_heading("general")).to_be_visible()
    await expect(remote_tile(alice, "bob")).to_have_count(0)
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)

    # Bob comes back, then closes his tab: the call lets him go all the same.
    await bob.page.get_by_role("button", name="Join call").click()
    await assert_video_plays(alice, "bob")
    await bob.page.close()
    await expect(remote_tile(alice, "bob")).to_have_count(0)
    deadline = time.monotonic() + MEDIA_TIMEOUT
    while any(
        r["is_present"] for r in await participants(server, alice) if r["display_name"] == "Bob"
    ):
        assert time.monotonic() < deadline, "Bob is still recorded as present after closing his tab"
        await asyncio.sleep(0.2)
