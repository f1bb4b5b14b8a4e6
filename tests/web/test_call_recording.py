"""Recording a two-page call through the web client (issue 17 item 4).

Alice (the organizer) presses Record; both pages show the indicator; 10 s later she
stops. Each producer became a WebM file: the test downloads them as Bob (a member) and
decodes them with PyAV -- at least 200 video frames per participant from a moving 30 fps
fake camera, and about 10 s of audio.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright, expect

from tests.web.conftest import NewUser
from tests.web.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    BrowserUser,
    ServerProcess,
    alice_and_bob_in_general,
)
from tests.web.test_call import assert_video_plays

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RECORD_SECS = 10.0
MIN_VIDEO_FRAMES = 200
WIDTH, HEIGHT, FPS = 320, 240, 30


def write_moving_y4m(path: Path, frames: int = 2 * FPS) -> None:
    """A clip whose every frame differs (a bar sweeping across), cheap to encode."""
    chroma = bytes([128]) * (WIDTH * HEIGHT // 2)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for index in range(frames):
            bar = index * WIDTH // frames
            row = bytes(235 if bar <= x < bar + 16 else 16 + x // 2 for x in range(WIDTH))
            out.write(b"FRAME\n" + row * HEIGHT + chroma)


@pytest_asyncio.fixture
async def chromium(tmp_path: Path) -> AsyncIterator[Browser]:
    """The web tests' Chromium, its fake camera playing a moving 30 fps clip."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"!!!!! {CHROMIUM} is missing: the recording browser test is SKIPPED !!!!!")
    clip = tmp_path / "moving.y4m"
    write_moving_y4m(clip)
    args = [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={clip}"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=args
        )
        try:
            yield browser
        finally:
            await browser.close()


async def api_of(server: ServerProcess, user: BrowserUser) -> tuple[httpx.AsyncClient, str]:
    """An HTTP client signed in as `user`, and the call's conference URL."""
    match = re.search(r"/t/([0-9a-f]{24})/call/([0-9a-f]{24})$", user.page.url)
    assert match, user.page.url
    token = await user.page.evaluate(
        "JSON.parse(localStorage.getItem('roomler.session')).accessToken"
    )
    client = httpx.AsyncClient(
        base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    return client, f"/api/tenant/{match[1]}/conference/{match[2]}"


def decoded(data: bytes) -> tuple[str, int, float]:
    """(kind, decoded frames, seconds from the first frame's start to the last's end)."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams[0]
        frames = 0
        first: float | None = None
        end = 0.0
        for frame in container.decode(stream):
            frames += 1
            start = float(frame.time or 0.0)
            first = start if first is None else first
            if isinstance(frame, av.AudioFrame):
                end = start + frame.samples / frame.sample_rate
            else:
                end = start
        return stream.type, frames, end - (first or 0.0)


async def test_organizer_records_a_call_of_two(server: ServerProcess, new_user: NewUser) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)
    await bob.page.get_by_role("button", name="Join call").click()
    await assert_video_plays(bob, "alice")
    await assert_video_plays(alice, "bob")
    # Bob is a member, not the organizer: no Record button, and the API refuses him.
    await expect(bob.page.get_by_role("button", name="Record")).to_have_count(0)
    bob_api, conference = await api_of(server, bob)
    refused = await bob_api.post(f"{conference}/recording/start")
    assert refused.status_code == 403, refused.text

    await alice.page.get_by_role("button", name="Record").click()
    started = time.monotonic()
    for page in (alice.page, bob.page):
        await expect(page.locator(".recording-indicator")).to_have_text("Recording")
    await asyncio.sleep(max(0.0, RECORD_SECS - (time.monotonic() - started)))
    await alice.page.get_by_role("button", name="Stop recording").click()
    for page in (alice.page, bob.page):
        await expect(page.locator(".recording-indicator")).to_have_count(0)
    recorded_secs = time.monotonic() - started

    try:
        listing = await bob_api.get(f"{conference}/recording")
        assert listing.status_code == 200, listing.text
        recordings: list[dict[str, Any]] = listing.json()["recordings"]
        by_user: dict[tuple[str, str], tuple[int, float]] = {}
        for recording in recordings:
            response = await bob_api.get(f"{conference}/recording/{recording['id']}")
            assert response.status_code == 200, response.text
            assert len(response.content) == recording["size"]
            kind, frames, seconds = decoded(response.content)
            assert kind == recording["kind"]
            by_user[(recording["user_id"], kind)] = (frames, seconds)
    finally:
        await bob_api.aclose()
    print(f"recorded for {recorded_secs:.2f} s: (frames, seconds) {by_user}")
    users = {user_id for user_id, _ in by_user}
    assert len(users) == 2 and len(by_user) == 4, f"expected audio+video of 2 users: {by_user}"
    for (user_id, kind), (frames, seconds) in by_user.items():
        if kind == "video":
            assert frames >= MIN_VIDEO_FRAMES, f"{user_id}: {frames} video frames decoded"
        else:
            # Recorded from the first packet after start until stop: within a second of it.
            assert recorded_secs - 1.5 <= seconds <= recorded_secs + 0.5, (
                f"{user_id}: {seconds:.2f} s of audio for {recorded_secs:.2f} s recorded"
            )
    await alice.screenshot("recording", "stopped")
