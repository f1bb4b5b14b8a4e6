"""Mentions and notifications in the web client (issue 18 item 4): `@` autocomplete in the
composer, a mention that lights the bell and the tab title on both of Bob's tabs, one
desktop notification for the two, read on one tab and cleared on the other; Do not disturb
keeps it quiet; a muted channel notifies by name only."""

from __future__ import annotations

import pytest
from playwright.async_api import Locator, Page, expect

from tests.web.conftest import NewUser
from tests.web.harness import ServerProcess, alice_and_bob_in_general

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Desktop notifications recorded instead of shown (the browser under test has no desktop),
# and every tone the page starts counted (the chime is two).
RECORD_NOTIFICATIONS = """
window.shownNotifications = [];
window.Notification = class {
    static permission = 'granted';
    static async requestPermission() { return 'granted'; }
    constructor(title, options) { window.shownNotifications.push({ title, body: options?.body }); }
    close() {}
};
window.tonesStarted = 0;
const NativeAudioContext = window.AudioContext;
window.AudioContext = class extends NativeAudioContext {
    createOscillator() {
        const tone = super.createOscillator();
        const start = tone.start.bind(tone);
        tone.start = (...args) => { window.tonesStarted += 1; return start(...args); };
        return tone;
    }
};
"""
CHIME_TONES = 2


def bell(page: Page) -> Locator:
    return page.get_by_role("button", name="Notifications")


async def expect_bell(page: Page, unread: int) -> None:
    await expect(bell(page)).to_have_attribute("data-unread", str(unread))
    title = f"({unread}) Roomler" if unread else "Roomler"
    await expect(page).to_have_title(title)


async def shown(*pages: Page) -> list[dict[str, str]]:
    return [n for page in pages for n in await page.evaluate("window.shownNotifications")]


async def tones(*pages: Page) -> int:
    return sum([await page.evaluate("window.tonesStarted") for page in pages])


async def test_a_mention_lights_the_bell_on_every_tab_and_reading_clears_them(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await bob.context.add_init_script(RECORD_NOTIFICATIONS)
    second = await bob.context.new_page()
    bob.watch(second)
    explore = bob.page.get_by_role("link", name="Explore channels")
    await explore.click()
    await bob.page.reload()
    await expect(bob.page.get_by_role("heading", name="Explore channels")).to_be_visible()
    await second.goto(bob.page.url)
    await expect(second.get_by_role("heading", name="Explore channels")).to_be_visible()
    for page in (bob.page, second):
        await expect_bell(page, 0)

    # Alice types @bo: Bob is offered; Enter takes him, then Enter sends.
    composer = alice.composer()
    await composer.press_sequentially("@bo")
    option = alice.page.get_by_role("option", name="@bob Bob")
    await expect(option).to_be_visible()
    await expect(option).to_have_attribute("aria-selected", "true")
    await composer.press("Enter")
    await expect(composer).to_have_value("@bob ")
    await expect(alice.page.get_by_role("listbox")).to_have_count(0)
    await composer.press_sequentially("please review")
    await composer.press("Enter")
    await expect(alice.messages("@bob please review")).to_have_count(1)
    await expect(alice.page.locator(".message-content .mention", has_text="@bob")).to_have_count(1)

    for page in (bob.page, second):
        await expect_bell(page, 1)
    # One desktop notification for the two tabs (each alerts, or not, as it lights its bell).
    assert await shown(bob.page, second) == [
        {"title": "Alice mentioned you in #general", "body": "@bob please review"}
    ]
    assert await tones(bob.page, second) == CHIME_TONES  # one chime, from one tab
    await bell(bob.page).click()
    panel = bob.page.get_by_role("dialog", name="Notifications")
    await expect(panel.get_by_role("button", name="Unread: Alice mentioned you")).to_be_visible()
    await bob.screenshot("notifications", "bell", readme="notifications")
    await panel.get_by_role("button", name="Alice mentioned you in #general").click()
    await expect(bob.channel_heading("general")).to_be_visible()
    await expect(bob.page.locator(".mention.mention-me", has_text="@bob")).to_have_count(1)
    for page in (second, bob.page):
        await expect_bell(page, 0)

    # Do not disturb: the bell counts, nothing alerts. Bob's tab must have left #general
    # before the message comes: a tab showing the channel reads it at once.
    await bob.page.get_by_role("link", name="Explore channels").click()
    await expect(bob.page.get_by_role("heading", name="Explore channels")).to_be_visible()
    await bob.choose_status("Do not disturb")
    await alice.send("@channel standup in five")
    for page in (bob.page, second):
        await expect_bell(page, 1)
    assert len(await shown(bob.page, second)) == 1
    assert await tones(bob.page, second) == CHIME_TONES  # no second chime
    await bell(second).click()
    await second.get_by_role("button", name="Mark all read").click()
    for page in (bob.page, second):
        await expect_bell(page, 0)


async def test_a_muted_channel_notifies_only_by_name(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    second = await bob.context.new_page()
    bob.watch(second)
    await second.goto(bob.page.url)
    await expect(bob.channel_heading("general")).to_be_visible()
    await bob.page.get_by_role("button", name="Mute").click()
    await expect(bob.page.get_by_role("button", name="Muted")).to_have_attribute(
        "aria-pressed", "true"
    )
    general = second.locator(".channel-tree").get_by_role("link", name="general")
    await expect(general).to_have_class("channel-link channel-muted")
    # Neither of Bob's tabs shows the channel: a tab showing it would read what arrives,
    # and so mark its notifications read at once.
    await second.get_by_role("link", name="Explore channels").click()
    await bob.page.get_by_role("link", name="Explore channels").click()
    await expect(bob.page.get_by_role("heading", name="Explore channels")).to_be_visible()

    await alice.send("@channel is anyone there")
    await expect(general).to_have_attribute("data-unread", "1")
    await expect_bell(second, 0)
    await alice.send("@bob you are")
    await expect_bell(second, 1)
    await bob.page.locator(".channel-tree").get_by_role("link", name="general").click()
    await expect_bell(second, 0)  # read where it was shown
    await bob.page.get_by_role("button", name="Muted").click()
    await expect(second.locator(".channel-link.channel-muted")).to_have_count(0)
