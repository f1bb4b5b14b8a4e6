"""Read markers and unread counts: `PUT .../channel/{cid}/read`, `GET /tenant/{tid}/unread`,
and `channel:read` to the reader's own connections."""

from __future__ import annotations

from typing import Any

import httpx

from roomler.db.reads import mention_pattern
from tests.api.test_channels import create_channel
from tests.api.test_messages import RecordingPublisher, Room, post
from tests.api.test_messages import recorder as recorder  # noqa: F401 (fixture)
from tests.api.test_messages import room as room  # noqa: F401 (fixture)
from tests.conftest import Account


def read_url(room: Room, cid: str | None = None) -> str:
    return f"/api/tenant/{room.tid}/channel/{cid or room.cid}/read"


async def unread(client: httpx.AsyncClient, room: Room, who: Account) -> dict[str, Any]:
    response = await client.get(f"/api/tenant/{room.tid}/unread", headers=who.headers)
    assert response.status_code == 200, response.text
    return {c["channel_id"]: c for c in response.json()}


async def read(client: httpx.AsyncClient, room: Room, who: Account, mid: str) -> dict[str, Any]:
    response = await client.put(read_url(room), headers=who.headers, json={"message_id": mid})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def counts(state: dict[str, Any]) -> tuple[int, int]:
    return state["unread_count"], state["mention_count"]


async def test_unread_counts_others_messages_after_the_marker(
    client: httpx.AsyncClient, room: Room
) -> None:
    assert counts((await unread(client, room, room.bob))[room.cid]) == (0, 0)
    first = await post(client, room, room.alice, "hello @bob")
    await post(client, room, room.alice, "@bobby is someone else, and so is @bob.b")
    third = await post(client, room, room.alice, "ask @Bob.")
    await post(client, room, room.bob, "my own message is read")
    await post(client, room, room.alice, "in a thread, @bob", thread_id=first["id"])
    gone = await post(client, room, room.alice, "deleted @bob")
    await client.delete(f"{room.url}/{gone['id']}", headers=room.alice.headers)
    state = (await unread(client, room, room.bob))[room.cid]
    assert state["message_id"] is None
    assert counts(state) == (3, 2)
    # Alice wrote them all; her state is her own.
    assert counts((await unread(client, room, room.alice))[room.cid]) == (1, 0)

    answer = await read(client, room, room.bob, first["id"])
    assert answer == {
        "tenant_id": room.tid,
        "channel_id": room.cid,
        "message_id": first["id"],
        "unread_count": 2,
        "mention_count": 1,
    }
    assert (await unread(client, room, room.bob))[room.cid] == {
        k: v for k, v in answer.items() if k != "tenant_id"
    }
    # Up to the newest: nothing unread; reading an older one again does not move it back.
    assert counts(await read(client, room, room.bob, third["id"])) == (0, 0)
    back = await read(client, room, room.bob, first["id"])
    assert back["message_id"] == third["id"] and counts(back) == (0, 0)
    fourth = await post(client, room, room.alice, "one more")
    assert counts((await unread(client, room, room.bob))[room.cid]) == (1, 0)
    assert counts(await read(client, room, room.bob, fourth["id"])) == (0, 0)


async def test_a_member_who_joins_later_has_read_what_came_before(
    client: httpx.AsyncClient, room: Room
) -> None:
    await post(client, room, room.alice, "before carol, @carol")
    joined = await client.post(
        f"/api/tenant/{room.tid}/channel/{room.cid}/join", headers=room.carol.headers
    )
    assert joined.status_code == 200
    assert counts((await unread(client, room, room.carol))[room.cid]) == (0, 0)
    await post(client, room, room.alice, "after, @carol")
    assert counts((await unread(client, room, room.carol))[room.cid]) == (1, 1)


async def test_unread_lists_only_the_callers_channels(
    client: httpx.AsyncClient, room: Room
) -> None:
    secret = await create_channel(client, room.alice, room.tid, "secret", is_private=True)
    alices = await unread(client, room, room.alice)
    assert set(alices) == {room.cid, secret["id"]}
    assert set(await unread(client, room, room.bob)) == {room.cid}
    assert await unread(client, room, room.carol) == {}
    assert (await client.get(f"/api/tenant/{room.tid}/unread")).status_code == 401


async def test_marking_read_needs_membership_and_a_top_level_message_of_the_channel(
    client: httpx.AsyncClient, room: Room
) -> None:
    root = await post(client, room, room.alice, "root")
    reply = await post(client, room, room.bob, "reply", thread_id=root["id"])
    body = {"message_id": root["id"]}
    refused = await client.put(read_url(room), headers=room.carol.headers, json=body)
    assert refused.status_code == 403
    for missing in ["0" * 24, "bad"]:
        response = await client.put(
            read_url(room), headers=room.bob.headers, json={"message_id": missing}
        )
        assert response.status_code == 404
    threaded = await client.put(
        read_url(room), headers=room.bob.headers, json={"message_id": reply["id"]}
    )
    assert threaded.status_code == 422
    # A message of another channel is not found in this one.
    other = await create_channel(client, room.alice, room.tid, "other")
    elsewhere = await client.put(read_url(room, other["id"]), headers=room.alice.headers, json=body)
    assert elsewhere.status_code == 404
    secret = await create_channel(client, room.alice, room.tid, "secret", is_private=True)
    hidden = await client.put(read_url(room, secret["id"]), headers=room.bob.headers, json=body)
    assert hidden.status_code == 404
    assert (await client.put(read_url(room), json=body)).status_code == 401


async def test_a_move_is_told_to_the_reader_only(
    client: httpx.AsyncClient, room: Room, recorder: RecordingPublisher
) -> None:
    message = await post(client, room, room.alice, "news")
    recorder.published.clear()
    answer = await read(client, room, room.bob, message["id"])
    [told] = recorder.published
    assert (told.user_ids, told.event_type, told.data) == ([room.bob.id], "channel:read", answer)
    assert told.exclude_user is None
    # Reading what is read moves nothing and tells nobody.
    await read(client, room, room.bob, message["id"])
    assert len(recorder.published) == 1


def test_a_mention_is_the_whole_name() -> None:
    pattern = mention_pattern("al.ice")
    for named in ["@al.ice", "hi @AL.ICE!", "(@al.ice)", "@al.ice.", "@al.ice, and", "x\n@al.ice"]:
        assert pattern.search(named), named
    for other in ["@al.ice2", "@al.ice_b", "@al.ice.b", "mail@al.ice", "@@al.ice", "@alxice"]:
        assert not pattern.search(other), other
