"""Who is in a call, as the web client shows it: participants without media, shared screens.

Bob takes part from a plain WebSocket client speaking `media:*` (docs/protocol.md), so he
can be in the room without any media, then share a "screen" (a video producer whose
`app_data.source` is `screen`) with no camera beside it. A browser's own screen share
(`getDisplayMedia`, which Chromium's fake devices answer) is tested in
tests/conference/test_browser.py.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect
from websockets.asyncio.client import ClientConnection, connect

from tests.web.conftest import NewUser, StartServer
from tests.web.harness import BrowserUser, ServerProcess, alice_and_bob_in_general

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parents[1] / "sfu" / "fixtures"
FRAME_TIMEOUT = 10.0
VIDEO_OFF = re.compile(r"\bvideo-off\b")


class MediaSocket:
    """One WebSocket connection of a user, speaking `media:*` for one conference."""

    def __init__(self, ws: ClientConnection, conference_id: str) -> None:
        self.ws = ws
        self.conference_id = conference_id
        self.requests = 0

    @classmethod
    async def open(cls, server: ServerProcess, token: str, conference_id: str) -> MediaSocket:
        ws = await connect(f"ws://127.0.0.1:{server.port}/ws?token={token}")
        connected = json.loads(await asyncio.wait_for(ws.recv(), FRAME_TIMEOUT))
        assert connected["type"] == "connected", connected
        return cls(ws, conference_id)

    async def request(self, message_type: str, until: str, **data: Any) -> dict[str, Any]:
        """Send a media request; the data of its reply of type `until` (earlier ones skipped)."""
        self.requests += 1
        request_id = f"r{self.requests}"
        body = {"conference_id": self.conference_id, **data}
        await self.ws.send(
            json.dumps({"type": message_type, "data": body, "request_id": request_id})
        )
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), FRAME_TIMEOUT))
            if frame.get("request_id") != request_id:
                continue
            assert frame["type"] != "media:error", frame
            if frame["type"] == until:
                reply: dict[str, Any] = frame["data"]
                return reply


async def access_token(user: BrowserUser) -> str:
    token: str = await user.page.evaluate(
        "JSON.parse(localStorage.getItem('roomler.session')).accessToken"
    )
    return token


def call_tile(viewer: BrowserUser, username: str) -> Any:
    return viewer.page.locator(f'.tile[data-local="false"][data-user="{username}"]')


async def test_a_participant_without_media_gets_a_tile_and_a_shared_screen_is_labelled(
    start_server: StartServer, new_user: NewUser
) -> None:
    # A lost connection keeps its place this long before the others hear it left.
    server = start_server({"ROOMLER__CONFERENCE__REJOIN_GRACE_SECS": "2"})
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)
    await expect(alice.page.get_by_role("status").filter(has_text="Joining")).to_have_count(0)
    match = re.search(r"/call/([0-9a-f]{24})$", alice.page.url)
    assert match, alice.page.url

    bob_socket = await MediaSocket.open(server, await access_token(bob), match[1])
    try:
        joined = await bob_socket.request("media:join", "media:participants")
        assert [p["display_name"] for p in joined["participants"]] == ["Alice"]

        # Bob is in the call without camera or microphone: Alice sees his avatar and name.
        tile = call_tile(alice, "bob")
        await expect(tile).to_have_count(1)
        await expect(tile).to_have_class(VIDEO_OFF)
        await expect(tile.locator("figcaption")).to_have_text("Bob")

        # He shares a screen: its tile says so, and replaces the avatar.
        rtp_parameters = json.loads((FIXTURES / "chrome_produce_video.json").read_text())
        await bob_socket.request(
            "media:produce",
            "media:produce_result",
            kind="video",
            rtp_parameters=rtp_parameters,
            app_data={"source": "screen"},
        )
        await expect(tile).to_have_count(1)
        await expect(tile).to_have_class(re.compile(r"\bscreen\b"))
        await expect(tile.locator("figcaption")).to_have_text("Bob (screen)")
        await alice.screenshot("call-peers", "screen")
    finally:
        await bob_socket.ws.close()

    # His connection closes: his screen goes at once, he himself after the grace period.
    await expect(call_tile(alice, "bob")).not_to_have_class(re.compile(r"\bscreen\b"))
    await expect(call_tile(alice, "bob")).to_have_count(0)
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)
