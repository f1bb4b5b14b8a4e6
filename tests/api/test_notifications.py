"""Notifications (issue 18 item 4): who a message notifies (`@username`, `@channel`,
`@here`, direct conversations, muted channels), the bell's list and unread count, marking
read, and `notification:new` / `notification:read` / `channel:muted` to the user's tabs."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_direct import start
from tests.api.test_messages import RecordingPublisher, Room, post
from tests.api.test_messages import recorder as recorder  # noqa: F401 (fixture)
from tests.api.test_messages import room as room  # noqa: F401 (fixture)
from tests.conftest import Account


async def bell(client: httpx.AsyncClient, room: Room, who: Account) -> dict[str, Any]:
    response = await client.get(f"/api/tenant/{room.tid}/notification", headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def told(recorder: RecordingPublisher, event_type: str) -> list[tuple[list[str], Any]]:
    return [(p.user_ids, p.data) for p in recorder.published if p.event_type == event_type]


async def test_a_mention_notifies_the_named_member_only(
    client: httpx.AsyncClient, room: Room, recorder: RecordingPublisher
) -> None:
    message = await post(client, room, room.alice, "@bob, and not @bobby nor @carol")
    [(to, event)] = told(recorder, "notification:new")
    assert to == [room.bob.id] and event["unread_count"] == 1
    note = event["notification"]
    assert note == {
        "id": note["id"],
        "tenant_id": room.tid,
        "kind": "mention",
        "channel_id": room.cid,
        "message_id": message["id"],
        "thread_id": None,
        "actor_id": room.alice.id,
        "excerpt": "@bob, and not @bobby nor @carol",
        "created_at": message["created_at"],
        "read": False,
    }
    listed = await bell(client, room, room.bob)
    assert listed["items"] == [note] and listed["unread_count"] == 1 and listed["total"] == 1
    # Carol is named but not in the channel; Alice wrote it.
    for other in (room.carol, room.alice):
        assert (await bell(client, room, other))["items"] == []
    # Naming yourself notifies nobody.
    recorder.published.clear()
    await post(client, room, room.bob, "note to @bob")
    assert told(recorder, "notification:new") == []


async def test_a_thread_reply_naming_someone_notifies_them_with_its_thread(
    client: httpx.AsyncClient, room: Room
) -> None:
    root = await post(client, room, room.bob, "a question")
    reply = await post(client, room, room.bob, "@alice what do you think?", thread_id=root["id"])
    [note] = (await bell(client, room, room.alice))["items"]
    assert (note["message_id"], note["thread_id"]) == (reply["id"], root["id"])


async def test_at_channel_notifies_every_member_and_at_here_those_present(
    client: httpx.AsyncClient, room: Room, recorder: RecordingPublisher
) -> None:
    await post(client, room, room.alice, "@channel standup in 5, @bob bring coffee")
    kinds = {tuple(to): e["notification"]["kind"] for to, e in told(recorder, "notification:new")}
    # The owner created the channel (a member); Alice wrote; Carol is not in it.
    assert kinds == {(room.owner.id,): "channel", (room.bob.id,): "mention"}
    recorder.published.clear()
    # Nobody is connected: @here reaches no one (the WebSocket test sends to those present).
    await post(client, room, room.alice, "anyone @here?")
    assert told(recorder, "notification:new") == []
    assert (await bell(client, room, room.owner))["unread_count"] == 1


async def test_every_message_in_a_direct_conversation_notifies_the_others(
    client: httpx.AsyncClient, room: Room
) -> None:
    dm = await start(client, room.tid, room.alice, room.bob, room.carol)
    url = f"/api/tenant/{room.tid}/channel/{dm['id']}/message"
    sent = await client.post(url, headers=room.alice.headers, json={"content": "lunch?"})
    assert sent.status_code == 201
    for who in (room.bob, room.carol):
        [note] = (await bell(client, room, who))["items"]
        assert (note["kind"], note["channel_id"]) == ("direct", dm["id"])
    assert (await bell(client, room, room.alice))["items"] == []


async def test_a_muted_channel_notifies_only_by_name(
    client: httpx.AsyncClient, room: Room, recorder: RecordingPublisher
) -> None:
    mute_url = f"/api/tenant/{room.tid}/channel/{room.cid}/mute"
    muted = await client.put(mute_url, headers=room.bob.headers)
    assert muted.json() == {"tenant_id": room.tid, "channel_id": room.cid, "muted": True}
    assert told(recorder, "channel:muted") == [([room.bob.id], muted.json())]
    listed = await client.get(f"/api/tenant/{room.tid}/mute", headers=room.bob.headers)
    assert listed.json() == [room.cid]
    # Muting again changes nothing and tells nobody.
    recorder.published.clear()
    assert (await client.put(mute_url, headers=room.bob.headers)).status_code == 200
    assert told(recorder, "channel:muted") == []

    await post(client, room, room.alice, "@channel all hands")
    assert [to for to, _ in told(recorder, "notification:new")] == [[room.owner.id]]
    recorder.published.clear()
    await post(client, room, room.alice, "but @bob, you too")
    assert [to for to, _ in told(recorder, "notification:new")] == [[room.bob.id]]

    unmuted = await client.delete(mute_url, headers=room.bob.headers)
    assert unmuted.json()["muted"] is False
    listed = await client.get(f"/api/tenant/{room.tid}/mute", headers=room.bob.headers)
    assert listed.json() == []
    # Only a member of the channel mutes it.
    carol = await client.put(mute_url, headers=room.carol.headers)
    assert carol.status_code == 403


async def test_reading_one_all_or_the_channel_clears_the_bell(
    client: httpx.AsyncClient, room: Room, recorder: RecordingPublisher
) -> None:
    first = await post(client, room, room.alice, "@bob one")
    await post(client, room, room.alice, "@bob two")
    third = await post(client, room, room.alice, "@bob three")
    notes = (await bell(client, room, room.bob))["items"]
    assert [n["message_id"] for n in notes][::2] == [third["id"], first["id"]]
    base = f"/api/tenant/{room.tid}/notification"

    recorder.published.clear()
    one = await client.put(f"{base}/{notes[0]['id']}/read", headers=room.bob.headers)
    expected = {"tenant_id": room.tid, "notification_ids": [notes[0]["id"]], "unread_count": 2}
    assert one.status_code == 200 and one.json() == expected
    assert told(recorder, "notification:read") == [([room.bob.id], expected)]
    assert [n["read"] for n in (await bell(client, room, room.bob))["items"]] == [
        True,
        False,
        False,
    ]
    # Again: nothing changes, nothing is sent; another's notification is not found.
    recorder.published.clear()
    again = await client.put(f"{base}/{notes[0]['id']}/read", headers=room.bob.headers)
    assert again.json()["notification_ids"] == [] and told(recorder, "notification:read") == []
    theirs = await client.put(f"{base}/{notes[1]['id']}/read", headers=room.alice.headers)
    assert theirs.status_code == 404
    assert (await client.put(f"{base}/nonsense/read", headers=room.bob.headers)).status_code == 404

    # Reading the channel up to the first message reads its notification.
    read = await client.put(
        f"/api/tenant/{room.tid}/channel/{room.cid}/read",
        headers=room.bob.headers,
        json={"message_id": first["id"]},
    )
    assert read.status_code == 200
    [(_, event)] = told(recorder, "notification:read")
    assert event == {"tenant_id": room.tid, "notification_ids": [notes[2]["id"]], "unread_count": 1}

    recorder.published.clear()
    every = await client.put(f"{base}/read", headers=room.bob.headers)
    assert every.json() == {
        "tenant_id": room.tid,
        "notification_ids": [notes[1]["id"]],
        "unread_count": 0,
    }
    assert len(told(recorder, "notification:read")) == 1
    assert (await bell(client, room, room.bob))["unread_count"] == 0


async def test_a_deleted_message_or_a_lost_channel_takes_its_notification_away(
    client: httpx.AsyncClient, room: Room
) -> None:
    gone = await post(client, room, room.alice, "@bob oops")
    await post(client, room, room.alice, "@bob stays")
    assert (await bell(client, room, room.bob))["unread_count"] == 2
    deleted = await client.delete(f"{room.url}/{gone['id']}", headers=room.alice.headers)
    assert deleted.status_code == 200
    listed = await bell(client, room, room.bob)
    assert [n["excerpt"] for n in listed["items"]] == ["@bob stays"]
    assert listed["unread_count"] == 1
    left = await client.post(
        f"/api/tenant/{room.tid}/channel/{room.cid}/leave", headers=room.bob.headers
    )
    assert left.status_code == 200
    assert (await bell(client, room, room.bob)) | {"page": 1} == {
        "items": [],
        "total": 0,
        "page": 1,
        "per_page": 25,
        "total_pages": 0,
        "unread_count": 0,
    }
