"""The web client on a phone-sized window, and by keyboard alone (issue 6)."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.web.conftest import NewUser
from tests.web.harness import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
MAX_TABS = 60  # bounded walk through the page's focus order


async def test_narrow_window_uses_drawers_and_never_scrolls_sideways(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice = await new_user("Alice", "alice")
    await alice.page.set_viewport_size(PHONE)
    await alice.sign_up(server.base)
    await alice.create_workspace("Acme")
    page = alice.page
    sidebar = page.get_by_role("navigation", name="Workspace")
    await expect(sidebar).to_be_hidden()
    await alice.send("Hello from a phone")
    await expect(alice.messages("Hello from a phone")).to_be_in_viewport()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    await page.get_by_role("button", name="Open menu").click()
    await expect(sidebar).to_be_visible()
    await sidebar.get_by_role("link", name="Explore channels").click()
    await expect(page.get_by_role("heading", name="Explore channels")).to_be_visible()
    await expect(sidebar).to_be_hidden()
    await page.get_by_role("button", name="Open menu").click()
    await sidebar.get_by_role("link", name="general").click()
    await expect(alice.channel_heading("general")).to_be_visible()
    await expect(sidebar).to_be_hidden()

    members = page.get_by_role("complementary", name="Members — 1")
    await expect(members).to_be_hidden()
    await page.get_by_role("button", name="Members").click()
    await expect(members).to_be_visible()
    await expect(alice.member("alice")).to_have_attribute("data-presence", "online")
    await alice.screenshot("layout", "phone-members")
    await members.get_by_role("button", name="Close members").click()
    await expect(members).to_be_hidden()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_keyboard_alone_reaches_the_composer_and_edits_a_message(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice = await new_user("Alice", "alice")
    await alice.sign_up(server.base)
    await alice.create_workspace("Acme")
    page = alice.page
    await alice.send("Typed without a mouse")
    await expect(alice.page.locator(".message.sending")).to_have_count(0)

    await page.locator("body").focus()
    for _ in range(MAX_TABS):
        if await alice.composer().evaluate("(el) => el === document.activeElement"):
            break
        await page.keyboard.press("Tab")
    await expect(alice.composer()).to_be_focused()

    # Backwards from the composer: its Attach files button, then the last message's actions,
    # revealed by focus.
    await page.keyboard.press("Shift+Tab")
    await expect(page.get_by_role("button", name="Attach files")).to_be_focused()
    await page.keyboard.press("Shift+Tab")
    delete = page.locator(".message").last.get_by_role("button", name="Delete")
    await expect(delete).to_be_focused()
    await page.keyboard.press("Shift+Tab")
    edit = page.locator(".message").last.get_by_role("button", name="Edit")
    await expect(edit).to_be_focused()
    assert await edit.evaluate("(el) => getComputedStyle(el.parentElement).opacity") == "1"
    await page.keyboard.press("Enter")
    editor = page.get_by_label("Edit message")
    await expect(editor).to_be_focused()
    await page.keyboard.press("End")
    await page.keyboard.type(", edited")
    await page.keyboard.press("Enter")
    await expect(alice.messages("Typed without a mouse, edited")).to_have_count(1)
