"""Search in the web client: Ctrl+K finds a message by a word and jumps to it, far back in
its channel, highlighted; a message of a channel the searcher is not in is never listed;
people and channels are in the same box."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import expect

from tests.web.conftest import NewUser
from tests.web.harness import PASSWORD, ServerProcess, alice_and_bob_in_general
from tests.web.test_contrast import assert_readable

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# More than the client's first page (50), so the jump has to load older history.
LATER_MESSAGES = 70


async def post_as_alice(server: ServerProcess, tid: str, cid: str, texts: list[str]) -> None:
    """Alice posts `texts` into channel `cid` through the API (quicker than typing them), a
    reply in the thread of the first, and a message into a private channel of hers,
    `secret`, that Bob is not in."""
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        login = await http.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        channels = f"/api/tenant/{tid}/channel"
        ids = []
        for text in texts:
            posted = await http.post(
                f"{channels}/{cid}/message", headers=headers, json={"content": text}
            )
            assert posted.status_code == 201, posted.text
            ids.append(posted.json()["id"])
        # A reply in the thread of the oldest of them.
        reply = {"content": "An answer about the walrus", "thread_id": ids[0]}
        posted = await http.post(f"{channels}/{cid}/message", headers=headers, json=reply)
        assert posted.status_code == 201, posted.text
        secret = await http.post(
            channels, headers=headers, json={"name": "secret", "is_private": True}
        )
        assert secret.status_code == 201, secret.text
        hidden = {"content": "The pineapple password is hidden here"}
        posted = await http.post(
            f"{channels}/{secret.json()['id']}/message", headers=headers, json=hidden
        )
        assert posted.status_code == 201, posted.text


async def test_ctrl_k_finds_a_message_by_a_word_and_jumps_to_it(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    tid, cid = re.findall(r"[0-9a-f]{24}", alice.page.url)
    await alice.send("Remember the pineapple meeting at ten")
    await expect(alice.messages("Remember the pineapple meeting at ten")).to_have_count(1)
    later = [f"Later message number {i}" for i in range(LATER_MESSAGES)]
    await post_as_alice(server, tid, cid, later)

    # Bob is elsewhere; Ctrl+K opens the box.
    page = bob.page
    await page.get_by_role("link", name="Explore channels").click()
    await expect(page.get_by_role("heading", name="Explore channels")).to_be_visible()
    await page.keyboard.press("Control+k")
    box = page.get_by_role("dialog", name="Search")
    await expect(box).to_be_visible()
    field = box.get_by_label("Search messages, people and channels")
    await expect(field).to_be_focused()

    # A word typed half finds the message; the private channel's is not there.
    await field.fill("pineap")
    found = box.locator(".search-choice.message")
    await expect(found).to_have_count(1)
    await expect(found).to_contain_text("Remember the pineapple meeting at ten")
    await expect(found).to_contain_text("Alice")
    await expect(found).to_contain_text("#general")
    await expect(found.locator("mark")).to_have_text("pineapple")
    await bob.screenshot("search", "results", readme="search")
    await assert_readable(bob, "search results")

    # People and channels by name, in the same box.
    await field.fill("ali")
    await expect(box.locator(".search-choice.person")).to_contain_text("Alice")
    await field.fill("gener")
    await expect(box.locator(".search-choice.channel")).to_contain_text("general")
    await expect(box.locator(".search-choice.channel")).to_have_count(1)  # not #secret

    # Enter on the result opens #general scrolled to the message, highlighted.
    await field.fill("pineapple meeting")
    await expect(box.locator(".search-choice.message")).to_have_count(1)
    await expect(box.locator('.search-choice.message[aria-selected="true"]')).to_have_count(1)
    await field.press("Enter")
    await expect(box).to_have_count(0)
    await expect(bob.channel_heading("general")).to_be_visible()
    target = page.locator(".message.focused")
    await expect(target).to_have_count(1)
    await expect(target.locator(".message-content")).to_have_text(
        "Remember the pineapple meeting at ten"
    )
    await expect(target).to_be_in_viewport()
    # The newest messages are out of view: the timeline was scrolled back to it.
    await expect(bob.messages(later[-1])).not_to_be_in_viewport()
    await bob.screenshot("search", "jumped", readme="search-jump")
    await assert_readable(bob, "a message a search result opened")

    # Ctrl+K again, Escape closes without moving.
    await page.keyboard.press("Control+k")
    await expect(box).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(box).to_have_count(0)
    await expect(target).to_be_in_viewport()

    # A thread reply opens in its thread, beside its top-level message.
    await page.keyboard.press("Control+k")
    await field.fill("walrus")
    await expect(box.locator(".search-choice.message")).to_contain_text("(thread)")
    await box.locator(".search-choice.message").click()
    await expect(box).to_have_count(0)
    thread = page.get_by_role("complementary", name="Thread")
    await expect(thread).to_contain_text("An answer about the walrus")
    await expect(target.locator(".message-content")).to_have_text(later[0])
    await expect(target).to_be_in_viewport()
