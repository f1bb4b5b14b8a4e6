"""Two people chatting through the web client, each in their own browser (issue 6)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import expect

from tests.web.conftest import NewUser
from tests.web.harness import ServerProcess, alice_and_bob_in_general

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HISTORY = 120  # messages: more than two pages of the client's 50


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


async def test_replies_deletions_new_channels_and_unread_markers(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await alice.send("Deploy at 5?")
    question = bob.page.locator(".message").filter(has=bob.messages("Deploy at 5?"))
    await question.hover()
    await question.get_by_role("button", name="Reply").click()
    await expect(bob.page.get_by_text("Replying to Alice")).to_be_visible()
    await bob.send("Yes, after the review")
    answer = alice.page.locator(".message").filter(has=alice.messages("Yes, after the review"))
    await expect(answer.locator(".reply-quote")).to_have_text("↪ Alice Deploy at 5?")

    await bob.send("oops, wrong channel")
    await expect(alice.messages("oops, wrong channel")).to_have_count(1)
    mistake = bob.page.locator(".message").filter(has=bob.messages("oops, wrong channel"))
    await mistake.hover()
    await mistake.get_by_role("button", name="Delete").click()
    await (
        mistake.get_by_role("group", name="Confirm deletion")
        .get_by_role("button", name="Delete")
        .click()
    )
    await expect(alice.messages("oops, wrong channel")).to_have_count(0)
    await expect(bob.messages("oops, wrong channel")).to_have_count(0)

    # Alice moves to a channel of her own; Bob's next message marks #general unread.
    await alice.page.get_by_role("button", name="Create channel", exact=True).click()
    dialog = alice.page.get_by_role("dialog", name="Create channel")
    await dialog.get_by_label("Name").fill("design")
    await dialog.get_by_label("Purpose (optional)").fill("Mockups and reviews")
    await dialog.get_by_role("button", name="Create").click()
    await expect(alice.channel_heading("design")).to_be_visible()
    general = alice.page.locator(".channel-tree").get_by_role("link", name="general")
    await expect(general.get_by_label("unread messages")).to_have_count(0)
    await bob.send("Standup in 5 minutes")
    await expect(general.get_by_label("unread messages")).to_be_visible()
    await general.click()
    await expect(alice.messages("Standup in 5 minutes")).to_have_count(1)
    await expect(general.get_by_label("unread messages")).to_have_count(0)

    await bob.composer().press_sequentially("Sounds g")
    await expect(alice.page.locator(".typing-line")).to_have_text("Bob is typing…")
    await alice.screenshot("chat", "unread-and-replies", readme="chat")


async def test_history_scrolls_back_to_the_first_message(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice = await new_user("Alice", "alice")
    await alice.sign_up(server.base)
    await alice.create_workspace("Acme")
    match = re.search(r"/t/([0-9a-f]{24})/c/([0-9a-f]{24})$", alice.page.url)
    assert match, alice.page.url
    token = await alice.page.evaluate(
        "JSON.parse(localStorage.getItem('roomler.session')).accessToken"
    )
    url = f"/api/tenant/{match[1]}/channel/{match[2]}/message"
    async with httpx.AsyncClient(base_url=server.base) as http:
        for n in range(1, HISTORY + 1):
            response = await http.post(
                url, json={"content": f"message {n}"}, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 201, response.text

    await alice.page.reload()
    await expect(alice.messages(f"message {HISTORY}")).to_have_count(1)
    await expect(alice.messages("message 1")).to_have_count(0)
    timeline = alice.page.locator(".timeline")
    for _ in range(HISTORY // 10):  # bounded: each scroll loads a page of 50
        if await alice.messages("message 1").count():
            break
        await timeline.evaluate("(box) => { box.scrollTop = 0; }")
        await alice.page.wait_for_timeout(200)
    await expect(alice.messages("message 1")).to_have_count(1)
    await expect(alice.page.get_by_role("heading", name="Welcome to #general")).to_be_visible()
    assert await alice.page.locator(".message").count() == HISTORY
