"""The team-chat features of issue 18 through the web client: limits said out loud,
reactions, pins, threads and direct messages, with two people in their own browsers."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.web.conftest import NewUser
from tests.web.harness import ServerProcess, alice_and_bob_in_general

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def test_a_message_over_the_limit_is_refused_before_sending(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    composer = alice.composer()
    await composer.fill("y" * 10_001)
    # Nothing is cut: the whole paste stays in the box, and the limit is said.
    assert await composer.evaluate("(box) => box.value.length") == 10_001
    alert = alice.page.locator("#composer-limit")
    await expect(alert).to_have_text(
        "Too long: 10,001 characters, the limit is 10,000. Remove 1 to send."
    )
    await expect(alice.page.get_by_role("button", name="Send")).to_be_disabled()
    await composer.press("Enter")
    await expect(alice.page.locator(".message")).to_have_count(0)
    # One character fewer and it goes, whole.
    await composer.press("End")
    await composer.press("Backspace")
    await expect(alert).to_have_count(0)
    await composer.press("Enter")
    sent = bob.page.locator(".message-content", has_text="y" * 100)
    await expect(sent).to_have_count(1)
    assert await sent.evaluate("(p) => p.textContent.length") == 10_000


async def test_a_reaction_is_seen_live_with_who_gave_it(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await alice.send("Release notes are up")
    message = bob.page.locator(".message").filter(has=bob.messages("Release notes are up"))
    await message.hover()
    await message.get_by_role("button", name="React").click()
    picker = bob.page.get_by_role("group", name="Pick a reaction")
    await picker.get_by_role("button", name="🎉 party").click()
    await expect(picker).to_have_count(0)

    # Alice sees it at once, with who gave it; she adds hers by clicking the same pill.
    on_alice = alice.page.locator(".message").filter(has=alice.messages("Release notes are up"))
    pill = on_alice.get_by_role("button", name="🎉 1: Bob")
    await expect(pill).to_have_attribute("aria-pressed", "false")
    await pill.click()
    await expect(on_alice.get_by_role("button", name="🎉 2: Bob and you")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(message.get_by_role("button", name="🎉 2: you and Alice")).to_be_visible()
    # A second emoji from the pill row's own button.
    await on_alice.get_by_role("button", name="Add reaction").click()
    await (
        alice.page.get_by_role("group", name="Pick a reaction")
        .get_by_role("button", name="👀 eyes")
        .click()
    )
    await expect(message.get_by_role("button", name="👀 1: Alice")).to_be_visible()
    await bob.screenshot("chat-team", "reactions", readme="reactions")

    # Bob takes his back; both see the count drop; it survives a reload.
    await message.get_by_role("button", name="🎉 2: you and Alice").click()
    await expect(on_alice.get_by_role("button", name="🎉 1: you")).to_be_visible()
    await alice.page.reload()
    await expect(on_alice.get_by_role("button", name="🎉 1: you")).to_be_visible()
    await expect(on_alice.get_by_role("button", name="👀 1: you")).to_be_visible()


async def test_a_pin_shows_live_in_the_other_browser_and_in_the_pinned_list(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await alice.send("The deploy checklist is in the wiki")
    await alice.send("Something else")
    message = bob.page.locator(".message").filter(
        has=bob.messages("The deploy checklist is in the wiki")
    )
    await message.hover()
    await message.get_by_role("button", name="Pin", exact=True).click()
    on_alice = alice.page.locator(".message").filter(
        has=alice.messages("The deploy checklist is in the wiki")
    )
    await expect(on_alice.locator(".pinned-note")).to_have_text("📌 Pinned by Bob")
    pinned_button = alice.page.get_by_role("button", name="Pinned (1)")
    await pinned_button.click()
    panel = alice.page.get_by_role("complementary", name="Pinned messages")
    await expect(panel.locator(".pin-content")).to_have_text("The deploy checklist is in the wiki")
    await panel.get_by_role("button", name="Jump").click()
    await alice.screenshot("chat-team", "pins", readme="pins")
    await panel.get_by_role("button", name="Unpin").click()
    await expect(panel.get_by_text("Nothing is pinned in #general yet.")).to_be_visible()
    await expect(bob.page.get_by_role("button", name="Pinned (0)")).to_be_visible()
    await expect(message.locator(".pinned-note")).to_have_count(0)


async def test_a_thread_with_a_reply_seen_live_by_its_follower(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await alice.send("Who can review PR 42?")
    root_on_bob = bob.page.locator(".timeline .message").filter(
        has=bob.messages("Who can review PR 42?")
    )
    await root_on_bob.hover()
    await root_on_bob.get_by_role("button", name="Thread").click()
    bob_panel = bob.page.get_by_role("complementary", name="Thread")
    await expect(bob_panel.get_by_role("button", name="Follow")).to_be_visible()
    await bob_panel.get_by_label("Reply in thread").fill("I can, after lunch")
    await bob_panel.get_by_role("button", name="Reply", exact=True).click()
    await expect(bob_panel.locator(".message-content")).to_have_text(
        ["Who can review PR 42?", "I can, after lunch"]
    )
    # Replying made Bob follow.
    await expect(bob_panel.get_by_role("button", name="Following")).to_have_attribute(
        "aria-pressed", "true"
    )

    # Alice started the thread, so she follows it: the count and a "new" mark reach her.
    root_on_alice = alice.page.locator(".timeline .message").filter(
        has=alice.messages("Who can review PR 42?")
    )
    summary = root_on_alice.locator(".thread-summary")
    await expect(summary).to_contain_text("1 reply (new) · last reply")
    # The reply lives in the thread, not in the channel's timeline.
    await expect(alice.page.locator(".timeline .message-content")).to_have_text(
        ["Who can review PR 42?"]
    )
    await summary.click()
    alice_panel = alice.page.get_by_role("complementary", name="Thread")
    await expect(alice_panel.locator(".message-content")).to_have_text(
        ["Who can review PR 42?", "I can, after lunch"]
    )
    await expect(summary).to_contain_text("1 reply · last reply")
    await expect(alice_panel.get_by_role("button", name="Following")).to_be_visible()
    await alice_panel.get_by_label("Reply in thread").fill("Thanks!")
    await alice_panel.get_by_label("Reply in thread").press("Enter")
    await expect(bob_panel.locator(".message-content")).to_have_text(
        ["Who can review PR 42?", "I can, after lunch", "Thanks!"]
    )
    await expect(root_on_bob.locator(".thread-summary")).to_contain_text("2 replies")
    await alice.screenshot("chat-team", "thread", readme="thread")

    # Alice stops following; after a reload the thread is still there.
    await alice_panel.get_by_role("button", name="Following").click()
    await expect(alice_panel.get_by_role("button", name="Follow")).to_have_attribute(
        "aria-pressed", "false"
    )
    await alice.page.reload()
    await expect(root_on_alice.locator(".thread-summary")).to_contain_text("2 replies")


async def test_a_direct_conversation_between_two_members(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    # Alice finds Bob by part of his name and starts a conversation.
    await alice.page.get_by_role("button", name="New direct message").click()
    dialog = alice.page.get_by_role("dialog", name="New direct message")
    await dialog.get_by_label("Find a member").fill("bo")
    await dialog.get_by_label("Bob @bob").check()
    await dialog.get_by_role("button", name="Start conversation").click()
    await expect(alice.channel_heading("Bob")).to_be_visible()
    await expect(
        alice.page.get_by_role("heading", name="Your conversation with Bob")
    ).to_be_visible()
    # It is a place for calls too.
    await expect(alice.page.get_by_role("button", name="Start call")).to_be_visible()
    await expect(alice.page.get_by_role("button", name="Leave channel")).to_have_count(0)

    # Bob, still in #general, sees it appear and light up when Alice writes.
    bob_link = bob.page.locator(".direct-list").get_by_role("link", name="Alice")
    await expect(bob_link).to_be_visible()
    await alice.send("Hi Bob, a private word")
    await expect(bob_link.get_by_label("unread messages")).to_be_visible()
    await bob_link.click()
    await expect(bob.channel_heading("Alice")).to_be_visible()
    await expect(bob.messages("Hi Bob, a private word")).to_have_count(1)
    await expect(bob_link.get_by_label("unread messages")).to_have_count(0)

    # Typing and answers, as in a channel; #general sees none of it.
    await bob.composer().press_sequentially("Sure, go a")
    await expect(alice.page.locator(".typing-line")).to_have_text("Bob is typing…")
    await bob.composer().press_sequentially("head")
    await bob.composer().press("Enter")
    await expect(alice.messages("Sure, go ahead")).to_have_count(1)
    await alice.screenshot("chat-team", "direct", readme="direct-messages")
    await alice.page.locator(".channel-tree").get_by_role("link", name="general").click()
    await expect(alice.channel_heading("general")).to_be_visible()
    await expect(alice.messages("Sure, go ahead")).to_have_count(0)

    # Starting it again from Bob's side opens the same conversation; it survives a reload.
    await bob.page.get_by_role("button", name="New direct message").click()
    dialog = bob.page.get_by_role("dialog", name="New direct message")
    await dialog.get_by_label("Find a member").fill("Ali")
    await dialog.get_by_label("Alice @alice").check()
    url = bob.page.url
    await dialog.get_by_role("button", name="Start conversation").click()
    await expect(dialog).to_have_count(0)
    assert bob.page.url == url
    await bob.page.reload()
    await expect(bob.messages("Hi Bob, a private word")).to_have_count(1)
    await expect(bob.messages("Sure, go ahead")).to_have_count(1)
