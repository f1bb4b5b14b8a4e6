"""Two people chatting through the web client, each in their own browser (issue 6)."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.web.conftest import NewUser
from tests.web.harness import BrowserUser, ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def alice_and_bob_in_general(
    server: ServerProcess, new_user: NewUser
) -> tuple[BrowserUser, BrowserUser]:
    """Both sign up; Alice creates a workspace and adds Bob; both open #general."""
    alice = await new_user("Alice", "alice")
    bob = await new_user("Bob", "bob")
    await bob.sign_up(server.base)
    await expect(bob.page.get_by_text("you are not in any workspace yet")).to_be_visible()
    await alice.sign_up(server.base)
    await alice.create_workspace("Acme")
    await alice.add_member("bob")
    await bob.open_workspace_and_join("Acme", "general")
    return alice, bob


async def test_typing_messages_edits_and_presence_reach_the_other_browser(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await expect(alice.member("bob")).to_have_attribute("data-presence", "online")

    # Alice types: Bob sees it under his composer, and it ends when she sends.
    await alice.composer().press_sequentially("Hello B")
    typing = bob.page.locator(".typing-line")
    await expect(typing).to_have_text("Alice is typing…")
    await alice.composer().press_sequentially("ob")
    await alice.composer().press("Enter")
    await expect(bob.messages("Hello Bob")).to_have_count(1)
    await expect(typing).to_have_text("")
    # Alice's own message is shown once, stored (not pending), and stays once.
    await expect(alice.page.locator(".message.sending")).to_have_count(0)
    await expect(alice.messages("Hello Bob")).to_have_count(1)

    # Bob answers, then corrects himself: Alice sees the edit live.
    await bob.send("Hi Alice!")
    await expect(alice.messages("Hi Alice!")).to_have_count(1)
    # Events arrive in order: any echo of "Hello Bob" would have come before this reply.
    for user in (alice, bob):
        assert await user.messages("Hello Bob").count() == 1
    bob_message = bob.page.locator(".message").filter(has=bob.messages("Hi Alice!"))
    await bob_message.hover()
    await bob_message.get_by_role("button", name="Edit").click()
    editor = bob.page.get_by_label("Edit message")
    await editor.fill("Hi Alice, good morning!")
    await editor.press("Enter")
    await expect(alice.messages("Hi Alice, good morning!")).to_have_count(1)
    edited = alice.page.locator(".message", has_text="Hi Alice, good morning!")
    await expect(edited).to_contain_text("(edited)")
    await expect(alice.messages("Hi Alice!")).to_have_count(0)
    await alice.screenshot("chat", "conversation")

    # Presence: invisible looks offline to Alice, back online, then Bob closes his tab.
    await bob.choose_status("Invisible")
    await expect(alice.member("bob")).to_have_attribute("data-presence", "offline")
    await bob.choose_status("Online")
    await expect(alice.member("bob")).to_have_attribute("data-presence", "online")
    await bob.page.close()
    await expect(alice.member("bob")).to_have_attribute("data-presence", "offline")

    # Alice's session and history survive a reload.
    await alice.page.reload()
    await expect(alice.channel_heading("general")).to_be_visible()
    await expect(alice.messages("Hello Bob")).to_have_count(1)
    await expect(alice.messages("Hi Alice, good morning!")).to_have_count(1)
