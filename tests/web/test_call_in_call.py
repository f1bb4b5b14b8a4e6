"""In the call (issue 14 item 5), in Debian's Chromium: the participant list with live mute
state, raised hands, the organizer muting and removing someone, the network indicator on
the tiles, the channel's chat beside the call, and joining by meeting code.

Alice owns the workspace and starts the calls (the organizer); Bob is a member.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Locator, expect

from tests.web.conftest import NewUser
from tests.web.harness import DEBUG_NOW, BrowserUser, ServerProcess, alice_and_bob_in_general
from tests.web.test_call import assert_video_plays, remote_tile
from tests.web.test_contrast import assert_readable

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The server reads the network figures every 2 s; the first score needs two readings.
SCORE_TIMEOUT_MS = 15_000


def person(user: BrowserUser, username: str) -> Locator:
    """`username`'s entry in `user`'s participant list."""
    return user.page.locator(f'.call-panel li.participant[data-user="{username}"]')


async def in_a_call(alice: BrowserUser, bob: BrowserUser) -> None:
    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)
    await bob.page.get_by_role("button", name="Join call").click()
    await assert_video_plays(alice, "bob")
    await assert_video_plays(bob, "alice")


async def open_people(user: BrowserUser) -> None:
    await user.page.get_by_role("button", name=re.compile(r"^People \(\d+\)$")).click()
    await expect(user.page.get_by_role("heading", name="People")).to_be_visible()


async def test_participants_hands_network_and_the_organizers_mute(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await in_a_call(alice, bob)
    await open_people(alice)
    await open_people(bob)
    await expect(alice.page.get_by_role("button", name="People (2)")).to_be_visible()
    for user in (alice, bob):
        for username in ("alice", "bob"):
            await expect(person(user, username)).to_have_attribute("data-mic", "on")
            await expect(person(user, username)).to_have_attribute("data-camera", "on")

    # Mute state is live: Bob mutes himself and stops his camera, Alice's list follows.
    await bob.page.get_by_role("button", name="Mute", exact=True).click()
    await expect(person(alice, "bob")).to_have_attribute("data-mic", "off")
    await expect(person(alice, "bob").get_by_label("Microphone muted")).to_be_visible()
    await bob.page.get_by_role("button", name="Stop camera").click()
    await expect(person(alice, "bob")).to_have_attribute("data-camera", "off")
    await bob.page.get_by_role("button", name="Unmute").click()
    await bob.page.get_by_role("button", name="Start camera").click()
    await expect(person(alice, "bob")).to_have_attribute("data-mic", "on")
    await expect(person(alice, "bob")).to_have_attribute("data-camera", "on")

    # Bob raises his hand: Alice sees it on his tile and at the top of her list.
    await bob.page.get_by_role("button", name="Raise hand").click()
    await expect(remote_tile(alice, "bob").get_by_label("Hand raised")).to_be_visible()
    await expect(person(alice, "bob")).to_have_attribute("data-hand", "raised")
    await expect(alice.page.locator(".call-panel li.participant").nth(1)).to_have_attribute(
        "data-user", "bob"
    )
    await expect(
        bob.page.locator('.tile[data-local="true"]').get_by_label("Hand raised")
    ).to_be_visible()
    await bob.screenshot("in-call", "hand-raised")

    # The network indicator on each tile, from the SFU's figures (loopback: good).
    for viewer, tile in (
        (alice, remote_tile(alice, "bob")),
        (alice, alice.page.locator('.tile[data-local="true"]')),
        (bob, remote_tile(bob, "alice")),
    ):
        indicator = tile.locator(".net-score")
        await expect(indicator).to_have_attribute("data-quality", "good", timeout=SCORE_TIMEOUT_MS)
        score = int(await indicator.get_attribute("data-score") or -1)
        assert 7 <= score <= 10, f"{viewer.username} shows a score of {score} on loopback"
        assert re.search(r"\d+/10", await indicator.get_attribute("title") or ""), viewer.username

    await assert_readable(alice, "the call with the people panel (organizer)")
    await assert_readable(bob, "the call with the people panel, hand raised")

    # Bob is no organizer: he has no moderation buttons and the server refuses him.
    await expect(person(bob, "alice").get_by_role("button")).to_have_count(0)
    for user in (alice, bob):
        await user.page.evaluate(DEBUG_NOW)  # window.roomlerCall
    alice_id = await alice.page.evaluate("window.roomlerCall.userId")
    refused = await bob.page.evaluate(
        "(id) => window.roomlerCall.muteParticipant(id).then(() => 'muted', (e) => e.message)",
        alice_id,
    )
    assert refused == "only the organizer or a workspace owner/admin may mute others in this call"

    # Alice lowers his hand, then mutes him; he sees who did, and may unmute himself.
    await person(alice, "bob").get_by_role("button", name="Lower Bob's hand").click()
    await expect(remote_tile(alice, "bob").get_by_label("Hand raised")).to_have_count(0)
    await expect(bob.page.get_by_role("button", name="Raise hand")).to_be_visible()
    await alice.page.get_by_role("button", name="Mute Bob").click()
    await expect(bob.page.get_by_role("status").filter(has_text="Alice muted you")).to_be_visible()
    await expect(bob.page.get_by_role("button", name="Unmute")).to_be_visible()
    await expect(person(alice, "bob")).to_have_attribute("data-mic", "off")
    await expect(remote_tile(alice, "bob")).to_have_attribute("data-muted", "true")
    await bob.screenshot("in-call", "muted-by-organizer")
    await bob.page.get_by_role("button", name="Unmute").click()
    await expect(person(alice, "bob")).to_have_attribute("data-mic", "on")
    await expect(remote_tile(alice, "bob")).to_have_attribute("data-muted", "false")

    # A raised hand goes with its participant: Bob leaves with his hand up and comes back.
    await bob.page.get_by_role("button", name="Raise hand").click()
    await expect(person(alice, "bob")).to_have_attribute("data-hand", "raised")
    await bob.page.get_by_role("button", name="Leave call").click()
    await expect(person(alice, "bob")).to_have_count(0)
    await bob.page.get_by_role("button", name="Join call").click()
    await assert_video_plays(alice, "bob")
    await expect(person(alice, "bob")).to_have_attribute("data-hand", "down")
    await alice.screenshot("in-call", "people", readme="call-people")


async def test_the_organizer_removes_a_participant_who_cannot_come_back(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await in_a_call(alice, bob)
    await open_people(alice)
    await alice.page.get_by_role("button", name="Remove Bob").click()
    await expect(bob.page.get_by_text("The organizer removed you from this call.")).to_be_visible()
    await expect(remote_tile(alice, "bob")).to_have_count(0)
    await expect(person(alice, "bob")).to_have_count(0)
    await expect(bob.page.locator(".tile")).to_have_count(0)
    await assert_readable(bob, "removed from the call")

    # The call goes on for Alice; Bob's way back in is refused, clearly.
    bob.allowed.append(re.compile(r"status of 403 \(Forbidden\)"))  # the refused join
    await bob.page.go_back()
    await expect(bob.channel_heading("general")).to_be_visible()
    await bob.page.get_by_role("button", name="Join call").click()
    await expect(
        bob.page.get_by_text(
            "Could not join the call: You were removed from this call by its organizer"
        )
    ).to_be_visible()
    await expect(remote_tile(alice, "bob")).to_have_count(0)


async def test_the_channels_chat_beside_the_call(server: ServerProcess, new_user: NewUser) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)
    await bob.send("before the call panel opened")
    await alice.page.get_by_role("button", name="Chat", exact=True).click()
    panel = alice.page.locator(".call-panel")
    await expect(
        panel.locator(".message-content").filter(has_text="before the call panel opened")
    ).to_be_visible()

    # Live both ways: Bob writes in #general, Alice answers from the call.
    await bob.send("can you hear me?")
    await expect(
        panel.locator(".message-content").filter(has_text="can you hear me?")
    ).to_be_visible()
    await alice.composer().fill("yes, from the call")
    await alice.composer().press("Enter")
    await expect(bob.messages("yes, from the call")).to_have_count(1)
    await expect(alice.page.locator('.tile[data-local="true"] video')).to_have_count(1)
    await assert_readable(alice, "the call with the chat panel")
    await alice.screenshot("in-call", "chat", readme="call-chat")
    await alice.page.get_by_role("button", name="Close chat").click()
    await expect(panel).to_have_count(0)


async def test_join_with_a_meeting_code(server: ServerProcess, new_user: NewUser) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await alice.page.get_by_role("button", name="Start call").click()
    heading = alice.page.get_by_text(re.compile(r"^Meeting code \d{3}-\d{3}-\d{3}$"))
    await expect(heading).to_be_visible()
    code = (await heading.inner_text()).removeprefix("Meeting code ")

    await bob.page.get_by_role("link", name="Calls").click()
    # The browser logs the two wrong codes' 404 answers.
    bob.allowed.append(re.compile(r"status of 404 \(Not Found\)"))
    field = bob.page.get_by_label("Join with a code")
    wrong = "000-000-000" if code != "000-000-000" else "111-111-111"
    await field.fill(wrong)
    await bob.page.get_by_role("button", name="Join meeting").click()
    await expect(
        bob.page.get_by_text(f"No meeting in this workspace has the code {wrong}")
    ).to_be_visible()
    await field.fill("12345")
    await bob.page.get_by_role("button", name="Join meeting").click()
    await expect(
        bob.page.get_by_text("A meeting code is nine digits, like 123-456-789")
    ).to_be_visible()
    await assert_readable(bob, "the calls page with a wrong meeting code")

    await field.fill(code.replace("-", " "))
    await bob.page.get_by_role("button", name="Join meeting").click()
    await expect(bob.page.get_by_text(f"Meeting code {code}")).to_be_visible()
    await assert_video_plays(alice, "bob")
    await assert_video_plays(bob, "alice")
