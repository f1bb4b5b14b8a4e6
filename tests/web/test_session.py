"""The session: short-lived access tokens refreshed silently, sign out and back in (issue 6)."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import WebSocket, expect

from tests.web.conftest import NewUser, StartServer
from tests.web.harness import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ACCESS_TTL = 3  # seconds: the server closes the socket with 4001 when it runs out


async def test_expired_access_token_is_refreshed_and_the_socket_reconnects(
    start_server: StartServer, new_user: NewUser
) -> None:
    server = start_server({"ROOMLER__JWT__ACCESS_TOKEN_TTL_SECS": str(ACCESS_TTL)})
    alice = await new_user("Alice", "alice")
    sockets: list[WebSocket] = []
    alice.page.on("websocket", lambda socket: sockets.append(socket))
    await alice.sign_up(server.base)
    await alice.create_workspace("Acme")
    first = await alice.page.evaluate("JSON.parse(localStorage.getItem('roomler.session'))")

    # Outlive two access tokens; the page never shows the banner meanwhile.
    banner = alice.page.get_by_role("status").filter(has_text="Reconnecting…")
    for _ in range(ACCESS_TTL * 2 * 5 + 5):
        assert await banner.count() == 0
        await asyncio.sleep(0.2)

    await alice.send("Still here")
    await expect(alice.page.locator(".message.sending, .message.failed")).to_have_count(0)
    await expect(alice.messages("Still here")).to_have_count(1)
    after = await alice.page.evaluate("JSON.parse(localStorage.getItem('roomler.session'))")
    assert after["accessToken"] != first["accessToken"]
    assert len(sockets) >= 2, "the WebSocket never reconnected after its token expired"
    assert not sockets[-1].is_closed()
    token_urls = {socket.url.split("token=", 1)[1] for socket in sockets}
    assert len(token_urls) == len(sockets), "a reconnect reused an expired token"


async def test_sign_out_and_back_in(start_server: StartServer, new_user: NewUser) -> None:
    server = start_server({})
    alice = await new_user("Alice", "alice")
    await alice.sign_up(server.base)
    await alice.create_workspace("Acme")
    await alice.send("Before signing out")

    await alice.page.get_by_role("button", name="Sign out").click()
    await expect(alice.page.get_by_role("heading", name="Sign in")).to_be_visible()
    await alice.page.reload()
    await expect(alice.page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await alice.page.evaluate("localStorage.getItem('roomler.session')") is None

    await alice.page.get_by_label("Username or email").fill("alice")
    await alice.page.get_by_label("Password").fill(PASSWORD)
    await alice.page.get_by_role("button", name="Sign in").click()
    await expect(alice.channel_heading("general")).to_be_visible()
    await expect(alice.messages("Before signing out")).to_have_count(1)
