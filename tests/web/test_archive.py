"""Archiving a channel in the web app (issue 18 item 10): Alice, the workspace's owner,
archives #general from its settings; Bob's page, without a reload, shows the banner
instead of the composer, lists the channel under "Archived" and offers no edit on his
own message, which he can still read. Unarchived, Bob posts again and Alice sees it."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.web.conftest import NewUser
from tests.web.harness import ServerProcess, alice_and_bob_in_general

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def test_an_archived_channel_is_read_only_in_every_tab_until_unarchived(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await bob.send("Shipping notes are in the doc")
    await expect(alice.messages("Shipping notes are in the doc")).to_be_visible()
    banner = bob.page.get_by_role("status").filter(has_text="This channel is archived")
    archived_list = bob.page.locator(".archived-list")
    await expect(banner).to_have_count(0)

    await alice.page.get_by_role("button", name="Channel settings").click()
    dialog = alice.page.get_by_role("dialog", name="Channel settings")
    await dialog.get_by_role("button", name="Archive channel").click()
    await expect(dialog).to_have_count(0)
    await expect(
        alice.page.get_by_role("status").filter(has_text="This channel is archived")
    ).to_be_visible()

    # Bob's tab hears it live: the banner replaces the composer, history stays.
    await expect(banner).to_be_visible()
    await expect(bob.composer()).to_have_count(0)
    await expect(bob.messages("Shipping notes are in the doc")).to_be_visible()
    await expect(archived_list.get_by_role("link", name="general")).to_be_visible()
    own = bob.page.locator(".message").filter(has_text="Shipping notes are in the doc")
    await own.hover()
    await expect(own.get_by_role("button", name="Edit")).to_have_count(0)
    await expect(own.get_by_role("button", name="Delete")).to_have_count(0)
    await bob.screenshot("archive", "archived", readme="archived-channel")

    await alice.page.get_by_role("button", name="Channel settings").click()
    await dialog.get_by_role("button", name="Unarchive channel").click()
    await expect(banner).to_have_count(0)
    await expect(archived_list).to_have_count(0)
    await bob.send("Back in business")
    await expect(alice.messages("Back in business")).to_be_visible()
