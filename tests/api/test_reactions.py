"""Reactions: one unicode emoji per user and emoji on a message, counts and who reacted."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from tests.api.test_messages import Published, RecordingPublisher, Room, page, post
from tests.api.test_messages import recorder as recorder  # noqa: F401 (fixture)
from tests.api.test_messages import room as room  # noqa: F401 (fixture)
from tests.conftest import Account


def reaction_url(room: Room, mid: str, emoji: str) -> str:
    return f"{room.url}/{mid}/reaction/{quote(emoji)}"


async def react(
    client: httpx.AsyncClient, room: Room, who: Account, mid: str, emoji: str, *, add: bool = True
) -> dict[str, Any]:
    method = "PUT" if add else "DELETE"
    response = await client.request(method, reaction_url(room, mid, emoji), headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_reactions_count_who_reacted_in_the_order_given(
    client: httpx.AsyncClient, room: Room
) -> None:
    message = await post(client, room, room.alice, "ship it?")
    assert message["reactions"] == []
    mid = message["id"]
    await react(client, room, room.bob, mid, "👍")
    await react(client, room, room.alice, mid, "🎉")
    answer = await react(client, room, room.alice, mid, "👍")
    expected = [
        {"emoji": "👍", "count": 2, "user_ids": [room.bob.id, room.alice.id]},
        {"emoji": "🎉", "count": 1, "user_ids": [room.alice.id]},
    ]
    assert answer["reactions"] == expected
    assert answer["message_id"] == mid and answer["added"] is True
    # The history and the thread list carry them too, for anyone who may read.
    assert (await page(client, room, room.carol))["items"][0]["reactions"] == expected
    # Reacting twice is once; taking back is per user.
    assert (await react(client, room, room.bob, mid, "👍"))["reactions"] == expected
    after = await react(client, room, room.bob, mid, "👍", add=False)
    assert after["added"] is False
    # Ordered by the first of those that remain: Alice's 👍 came after her 🎉.
    assert after["reactions"] == [
        {"emoji": "🎉", "count": 1, "user_ids": [room.alice.id]},
        {"emoji": "👍", "count": 1, "user_ids": [room.alice.id]},
    ]
    await react(client, room, room.alice, mid, "👍", add=False)
    await react(client, room, room.alice, mid, "🎉", add=False)
    assert (await page(client, room, room.bob))["items"][0]["reactions"] == []
    # Taking back what is not there is no error.
    assert (await react(client, room, room.alice, mid, "🎉", add=False))["reactions"] == []


async def test_only_single_unicode_emoji_are_reactions(
    client: httpx.AsyncClient, room: Room
) -> None:
    mid = (await post(client, room, room.alice, "pick one"))["id"]
    for emoji in ["👩‍💻", "👍🏽", "🇫🇷", "1️⃣", "❤️", "🏳️‍🌈"]:
        await react(client, room, room.bob, mid, emoji)
    for bad in ["a", "👍👍", "🏽", ":+1:", "🇫", "👍 ", "x" * 40]:
        response = await client.put(reaction_url(room, mid, bad), headers=room.bob.headers)
        assert response.status_code == 422, bad
        assert response.json()["message"].startswith("emoji: must be one unicode emoji")
    emoji = [r["emoji"] for r in (await page(client, room, room.bob))["items"][0]["reactions"]]
    assert emoji == ["👩‍💻", "👍🏽", "🇫🇷", "1️⃣", "❤️", "🏳️‍🌈"]


async def test_reacting_needs_membership_and_a_live_visible_message(
    client: httpx.AsyncClient, room: Room
) -> None:
    mid = (await post(client, room, room.alice, "hello"))["id"]
    # Carol may read #general but is not in it.
    refused = await client.put(reaction_url(room, mid, "👍"), headers=room.carol.headers)
    assert refused.status_code == 403
    for missing in ["0" * 24, "nope"]:
        response = await client.put(reaction_url(room, missing, "👍"), headers=room.bob.headers)
        assert response.status_code == 404
    await client.delete(f"{room.url}/{mid}", headers=room.alice.headers)
    gone = await client.put(reaction_url(room, mid, "👍"), headers=room.bob.headers)
    assert gone.status_code == 404
    assert (await client.put(reaction_url(room, mid, "👍"))).status_code == 401


async def test_a_message_holds_at_most_fifty_different_emoji(
    client: httpx.AsyncClient, room: Room
) -> None:
    mid = (await post(client, room, room.alice, "vote"))["id"]
    faces = [chr(0x1F600 + i) for i in range(50)]
    for face in faces:
        await react(client, room, room.alice, mid, face)
    refused = await client.put(reaction_url(room, mid, "🚀"), headers=room.bob.headers)
    assert refused.status_code == 409
    assert refused.json()["message"] == "A message holds at most 50 different reactions"
    # One already there may still be given by someone else.
    answer = await react(client, room, room.bob, mid, faces[7])
    assert answer["reactions"][7] == {
        "emoji": faces[7],
        "count": 2,
        "user_ids": [room.alice.id, room.bob.id],
    }


async def test_changes_reach_every_member_and_no_change_sends_nothing(
    client: httpx.AsyncClient, room: Room, recorder: RecordingPublisher
) -> None:
    root = await post(client, room, room.alice, "root")
    reply = await post(client, room, room.bob, "reply", thread_id=root["id"])
    recorder.published.clear()
    members = sorted([room.owner.id, room.alice.id, room.bob.id])
    added = await react(client, room, room.alice, reply["id"], "👀")
    await react(client, room, room.alice, reply["id"], "👀")  # already there
    removed = await react(client, room, room.alice, reply["id"], "👀", add=False)
    await react(client, room, room.alice, reply["id"], "👀", add=False)  # already gone
    assert [(p.event_type, p.user_ids, p.exclude_user) for p in recorder.published] == [
        ("message:reaction", members, None),
        ("message:reaction", members, None),
    ]
    assert recorder.published[0] == Published(members, "message:reaction", added, None, None, True)
    assert added == {
        "message_id": reply["id"],
        "channel_id": room.cid,
        "thread_id": root["id"],
        "user_id": room.alice.id,
        "emoji": "👀",
        "added": True,
        "reactions": [{"emoji": "👀", "count": 1, "user_ids": [room.alice.id]}],
    }
    assert recorder.published[1].data == removed and removed["reactions"] == []
