"""Unread state kept by the server, in the web client: counts and mentions in the sidebar
for two tabs of one person, read on one tab and cleared on the other, and after reloads."""

from __future__ import annotations

import pytest
from playwright.async_api import Locator, Page, expect

from tests.web.conftest import NewUser
from tests.web.harness import ServerProcess, alice_and_bob_in_general

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def general_link(page: Page) -> Locator:
    return page.locator(".channel-tree").get_by_role("link", name="general")


async def expect_counts(page: Page, unread: int, mentions: int) -> None:
    link = general_link(page)
    await expect(link).to_have_attribute("data-unread", str(unread))
    await expect(link).to_have_attribute("data-mentions", str(mentions))
    if unread:
        await expect(link.get_by_label("unread messages")).to_have_text(str(unread))
    else:
        await expect(link.get_by_label("unread messages")).to_have_count(0)
    if mentions:
        await expect(link.get_by_label("mentions of you")).to_have_text(f"@{mentions}")
    else:
        await expect(link.get_by_label("mentions of you")).to_have_count(0)


async def test_unread_counts_follow_the_reader_across_tabs_and_reloads(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    # Bob has a second tab; both look at the channel list, not at #general.
    second = await bob.context.new_page()
    bob.watch(second)
    explore = bob.page.get_by_role("link", name="Explore channels")
    await explore.click()
    await expect(bob.page.get_by_role("heading", name="Explore channels")).to_be_visible()
    await second.goto(bob.page.url)
    await expect(second.get_by_role("heading", name="Explore channels")).to_be_visible()
    await expect_counts(second, 0, 0)

    await alice.send("@bob can you look at the release?")
    await alice.send("It ships on Friday")
    await alice.send("cc @bobby, not you")
    for page in (bob.page, second):
        await expect_counts(page, 3, 1)
    await bob.screenshot("unread", "sidebar-counts", readme="unread")
    # The server knows: a reload shows the same.
    await second.reload()
    await expect_counts(second, 3, 1)

    # Reading on one tab clears the channel on the other, live and after a reload.
    await general_link(bob.page).click()
    await expect(bob.messages("cc @bobby, not you")).to_have_count(1)
    await expect_counts(bob.page, 0, 0)
    await expect_counts(second, 0, 0)
    await second.reload()
    await expect(second.get_by_role("heading", name="Explore channels")).to_be_visible()
    await expect_counts(second, 0, 0)

    # What arrives while Bob reads #general is read; on the other tab it counts no more.
    await alice.send("One more thing")
    await expect(bob.messages("One more thing")).to_have_count(1)
    await expect_counts(second, 0, 0)
    await second.reload()
    await expect(second.get_by_role("heading", name="Explore channels")).to_be_visible()
    await expect_counts(second, 0, 0)
