"""Roles and channel administration in the web app (issue 18 item 10): the owner makes Bob
an admin from the member list; Bob's page, without a reload, lets him manage the channel;
he renames it and sets its topic, and Alice's page shows both at once."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.web.conftest import NewUser
from tests.web.harness import ServerProcess, alice_and_bob_in_general

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def test_a_member_made_admin_renames_a_channel_that_others_see_renamed(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    settings = bob.page.get_by_role("button", name="Channel settings")
    await expect(bob.channel_heading("general")).to_be_visible()
    await expect(settings).to_have_count(0)  # a member manages nothing
    await expect(bob.page.get_by_label("Role of Alice")).to_have_count(0)

    role = alice.page.get_by_label("Role of Bob")
    await expect(role).to_have_value("member")
    await role.select_option("admin")
    await expect(role).to_have_value("admin")
    # Bob's own page learns his new role live: he may now manage the channel and roles,
    # but not the owner's.
    await expect(settings).to_be_visible()
    await expect(bob.page.get_by_label("Role of Bob")).to_have_value("admin")
    await expect(bob.page.get_by_label("Role of Alice")).to_be_disabled()

    await settings.click()
    dialog = bob.page.get_by_role("dialog", name="Channel settings")
    await dialog.get_by_label("Name").fill("team")
    await dialog.get_by_label("Topic").fill("Plans and news of the team")
    await bob.screenshot("admin", "channel-settings", readme="channel-settings")
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog).to_have_count(0)
    await expect(bob.channel_heading("team")).to_be_visible()

    # Alice, on the same channel, sees the new name and topic without a reload.
    await expect(alice.channel_heading("team")).to_be_visible()
    await expect(
        alice.page.locator(".purpose", has_text="Plans and news of the team")
    ).to_be_visible()
    sidebar = alice.page.locator(".channel-tree")
    await expect(sidebar.get_by_role("link", name="team")).to_be_visible()
    await expect(sidebar.get_by_role("link", name="general")).to_have_count(0)
    await alice.screenshot("admin", "renamed", readme="roles")

    # Demoted again, Bob manages nothing any more.
    await role.select_option("member")
    await expect(settings).to_have_count(0)
