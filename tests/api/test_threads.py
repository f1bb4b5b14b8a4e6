"""Threads: the reply count and last reply time on the root, following, and their events."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.api.test_messages import RecordingPublisher, Room, page, post
from tests.api.test_messages import recorder as recorder  # noqa: F401 (fixture)
from tests.api.test_messages import room as room  # noqa: F401 (fixture)
from tests.conftest import Account


async def root_of(client: httpx.AsyncClient, room: Room, mid: str) -> dict[str, Any]:
    items = (await page(client, room, room.bob))["items"]
    return next(m for m in items if m["id"] == mid)


async def following(client: httpx.AsyncClient, room: Room, who: Account, mid: str) -> bool:
    response = await client.get(f"{room.url}/{mid}/follow", headers=who.headers)
    assert response.status_code == 200, response.text
    return bool(response.json()["following"])


async def test_the_root_counts_its_live_replies_and_knows_the_last_one(
    client: httpx.AsyncClient, room: Room
) -> None:
    root = await post(client, room, room.alice, "root")
    assert (root["reply_count"], root["last_reply_at"]) == (0, None)
    replies = [
        await post(client, room, who, f"r{i}", thread_id=root["id"])
        for i, who in enumerate([room.bob, room.alice, room.bob])
    ]
    assert all(r["reply_count"] == 0 for r in replies)
    listed = await root_of(client, room, root["id"])
    assert listed["reply_count"] == 3 and listed["last_reply_at"] == replies[2]["created_at"]
    # Deleting the newest reply recounts and moves the last reply time back.
    await client.delete(f"{room.url}/{replies[2]['id']}", headers=room.bob.headers)
    listed = await root_of(client, room, root["id"])
    assert listed["reply_count"] == 2 and listed["last_reply_at"] == replies[1]["created_at"]
    for reply in replies[:2]:
        await client.delete(f"{room.url}/{reply['id']}", headers=room.admin.headers)
    listed = await root_of(client, room, root["id"])
    assert (listed["reply_count"], listed["last_reply_at"]) == (0, None)


async def test_replies_posted_at_once_are_all_counted(
    client: httpx.AsyncClient, room: Room
) -> None:
    root = await post(client, room, room.alice, "poll")
    await asyncio.gather(
        *(post(client, room, room.bob, f"vote {i}", thread_id=root["id"]) for i in range(8))
    )
    assert (await root_of(client, room, root["id"]))["reply_count"] == 8


async def test_repliers_and_the_starter_follow_and_anyone_may_stop(
    client: httpx.AsyncClient, room: Room
) -> None:
    root = await post(client, room, room.alice, "who is on call?")
    mid = root["id"]
    assert not await following(client, room, room.alice, mid)
    await post(client, room, room.bob, "me", thread_id=mid)
    assert await following(client, room, room.alice, mid)
    assert await following(client, room, room.bob, mid)
    assert not await following(client, room, room.owner, mid)
    follow = await client.put(f"{room.url}/{mid}/follow", headers=room.owner.headers)
    assert follow.json() == {"thread_id": mid, "following": True}
    again = await client.put(f"{room.url}/{mid}/follow", headers=room.owner.headers)
    assert again.status_code == 200
    stop = await client.delete(f"{room.url}/{mid}/follow", headers=room.alice.headers)
    assert stop.json() == {"thread_id": mid, "following": False}
    assert not await following(client, room, room.alice, mid)
    # A later reply does not make her follow again; her own reply does.
    await post(client, room, room.bob, "and me", thread_id=mid)
    assert not await following(client, room, room.alice, mid)
    await post(client, room, room.alice, "thanks", thread_id=mid)
    assert await following(client, room, room.alice, mid)


async def test_following_needs_a_top_level_message_and_membership(
    client: httpx.AsyncClient, room: Room
) -> None:
    root = await post(client, room, room.alice, "root")
    reply = await post(client, room, room.bob, "reply", thread_id=root["id"])
    nested = await client.put(f"{room.url}/{reply['id']}/follow", headers=room.bob.headers)
    assert nested.status_code == 422
    refused = await client.put(f"{room.url}/{root['id']}/follow", headers=room.carol.headers)
    assert refused.status_code == 403
    for missing in ["0" * 24, "bad"]:
        response = await client.put(f"{room.url}/{missing}/follow", headers=room.bob.headers)
        assert response.status_code == 404


async def test_a_reply_tells_the_channel_its_count_and_the_followers_of_the_reply(
    client: httpx.AsyncClient, room: Room, recorder: RecordingPublisher
) -> None:
    root = await post(client, room, room.alice, "root")
    # Bob follows without replying; the owner neither follows nor replies.
    await client.put(f"{room.url}/{root['id']}/follow", headers=room.bob.headers)
    recorder.published.clear()
    await client.post(f"/api/tenant/{room.tid}/channel/{room.cid}/join", headers=room.admin.headers)
    reply = await post(client, room, room.admin, "adam in a thread", thread_id=root["id"])
    members = sorted([room.owner.id, room.alice.id, room.bob.id, room.admin.id])
    assert [(p.event_type, p.user_ids, p.exclude_user) for p in recorder.published] == [
        ("message:create", members, room.admin.id),
        ("message:thread", members, None),
        # The starter, Bob, and the replier himself (skipped as the author).
        ("thread:reply", sorted([room.alice.id, room.bob.id, room.admin.id]), room.admin.id),
    ]
    assert recorder.published[0].data["thread_id"] == root["id"]
    assert recorder.published[1].data == {
        "message_id": root["id"],
        "channel_id": room.cid,
        "reply_count": 1,
        "last_reply_at": reply["created_at"],
    }
    assert recorder.published[2].data == {
        "thread_id": root["id"],
        "channel_id": room.cid,
        "message": reply,
    }
    # A follower who left the channel is told no more.
    await client.post(f"/api/tenant/{room.tid}/channel/{room.cid}/leave", headers=room.bob.headers)
    recorder.published.clear()
    await post(client, room, room.alice, "bob left", thread_id=root["id"])
    told = [p for p in recorder.published if p.event_type == "thread:reply"]
    assert [p.user_ids for p in told] == [sorted([room.alice.id, room.admin.id])]
