"""The server restarts under the pages: the banner, the reconnect, and the catch-up (issue 6)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.web.conftest import NewUser
from tests.web.harness import ServerProcess, alice_and_bob_in_general

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# What Chromium itself logs while the server is away; the app logs nothing.
OUTAGE_ERRORS = [
    re.compile(r"^WebSocket connection to 'ws://127\.0\.0\.1:\d+/ws\?token=[^']*' failed"),
    re.compile(r"^Failed to load resource: net::ERR_(CONNECTION_REFUSED|INTERNET_DISCONNECTED)$"),
]


async def test_banner_reconnect_and_catch_up_after_a_server_restart(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await alice.send("Before the restart")
    await expect(bob.messages("Before the restart")).to_have_count(1)
    for user in (alice, bob):
        user.allowed += OUTAGE_ERRORS

    server.stop()
    banner_a = alice.page.get_by_role("status").filter(has_text="Reconnecting…")
    banner_b = bob.page.get_by_role("status").filter(has_text="Reconnecting…")
    await expect(banner_a).to_be_visible()
    await expect(banner_b).to_be_visible()
    await alice.screenshot("reconnect", "banner")

    # Alice's browser stays cut off while the server comes back and Bob writes.
    await alice.context.set_offline(True)
    server.start()
    await expect(banner_b).to_be_hidden()
    await bob.send("Sent while you were away")
    await expect(bob.page.locator(".message.sending, .message.failed")).to_have_count(0)
    await expect(bob.messages("Sent while you were away")).to_have_count(1)
    await expect(banner_a).to_be_visible()
    assert await alice.messages("Sent while you were away").count() == 0

    # Back online: the banner clears and the history fills the gap.
    await alice.context.set_offline(False)
    await expect(banner_a).to_be_hidden()
    await expect(alice.messages("Sent while you were away")).to_have_count(1)
    await expect(alice.messages("Before the restart")).to_have_count(1)

    # And live delivery works again both ways.
    await alice.send("Welcome back")
    await expect(bob.messages("Welcome back")).to_have_count(1)
