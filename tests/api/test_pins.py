"""Pins: a member pins or unpins a message; the channel's pinned list; `message:pinned`."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_channels import create_channel
from tests.api.test_messages import RecordingPublisher, Room, page, post
from tests.api.test_messages import recorder as recorder  # noqa: F401 (fixture)
from tests.api.test_messages import room as room  # noqa: F401 (fixture)
from tests.conftest import Account


def pins_url(room: Room) -> str:
    return f"/api/tenant/{room.tid}/channel/{room.cid}/pins"


async def pin(
    client: httpx.AsyncClient, room: Room, who: Account, mid: str, *, on: bool = True
) -> dict[str, Any]:
    method = "PUT" if on else "DELETE"
    response = await client.request(method, f"{room.url}/{mid}/pin", headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def pinned(client: httpx.AsyncClient, room: Room, who: Account) -> list[str]:
    response = await client.get(pins_url(room), headers=who.headers)
    assert response.status_code == 200, response.text
    return [m["content"] for m in response.json()]


async def test_pins_are_listed_most_recently_pinned_first(
    client: httpx.AsyncClient, room: Room
) -> None:
    first, second, third = [await post(client, room, room.alice, f"m{i}") for i in range(3)]
    assert first["is_pinned"] is False and first["pinned_at"] is None
    answer = await pin(client, room, room.bob, second["id"])
    assert answer["is_pinned"] is True and answer["pinned_by"] == room.bob.id
    assert answer["pinned_at"].endswith("Z") and answer["content"] == "m1"
    await pin(client, room, room.alice, first["id"])
    # A thread reply may be pinned too.
    reply = await post(client, room, room.bob, "in a thread", thread_id=third["id"])
    await pin(client, room, room.alice, reply["id"])
    assert await pinned(client, room, room.carol) == ["in a thread", "m0", "m1"]
    # The history shows which are pinned.
    items = {m["content"]: m for m in (await page(client, room, room.bob))["items"]}
    assert items["m0"]["is_pinned"] and items["m1"]["is_pinned"]
    assert not items["m2"]["is_pinned"]
    # Pinning again keeps the first pin; unpinning clears who and when.
    again = await pin(client, room, room.alice, second["id"])
    assert (again["pinned_by"], again["pinned_at"]) == (room.bob.id, answer["pinned_at"])
    undone = await pin(client, room, room.alice, second["id"], on=False)
    assert undone["is_pinned"] is False
    assert undone["pinned_by"] is None and undone["pinned_at"] is None
    assert (await pin(client, room, room.alice, second["id"], on=False))["is_pinned"] is False
    # A deleted message leaves the list.
    await client.delete(f"{room.url}/{first['id']}", headers=room.alice.headers)
    assert await pinned(client, room, room.bob) == ["in a thread"]


async def test_pinning_needs_membership_and_reading_needs_visibility(
    client: httpx.AsyncClient, room: Room
) -> None:
    mid = (await post(client, room, room.alice, "hello"))["id"]
    refused = await client.put(f"{room.url}/{mid}/pin", headers=room.carol.headers)
    assert refused.status_code == 403
    for missing in ["0" * 24, "bad"]:
        response = await client.put(f"{room.url}/{missing}/pin", headers=room.bob.headers)
        assert response.status_code == 404
    secret = await create_channel(client, room.alice, room.tid, "secret", is_private=True)
    hidden = f"/api/tenant/{room.tid}/channel/{secret['id']}/pins"
    assert (await client.get(hidden, headers=room.bob.headers)).status_code == 404
    assert (await client.get(hidden, headers=room.alice.headers)).json() == []
    assert (await client.get(pins_url(room))).status_code == 401


async def test_a_channel_holds_at_most_a_hundred_pins(
    client: httpx.AsyncClient, room: Room, app: Any
) -> None:
    from roomler.api import pins

    original = pins.MAX_PINS
    pins.MAX_PINS = 3
    try:
        ids = [(await post(client, room, room.alice, f"m{i}"))["id"] for i in range(4)]
        for mid in ids[:3]:
            await pin(client, room, room.alice, mid)
        refused = await client.put(f"{room.url}/{ids[3]}/pin", headers=room.alice.headers)
        assert refused.status_code == 409
        assert refused.json()["message"] == (
            "A channel holds at most 3 pinned messages; unpin one first"
        )
        await pin(client, room, room.alice, ids[0], on=False)
        await pin(client, room, room.alice, ids[3])
    finally:
        pins.MAX_PINS = original
    assert original == 100


async def test_a_change_is_published_to_every_member_and_no_change_sends_nothing(
    client: httpx.AsyncClient, room: Room, recorder: RecordingPublisher
) -> None:
    mid = (await post(client, room, room.alice, "remember this"))["id"]
    recorder.published.clear()
    members = sorted([room.owner.id, room.alice.id, room.bob.id])
    pinned_message = await pin(client, room, room.bob, mid)
    await pin(client, room, room.bob, mid)
    unpinned_message = await pin(client, room, room.alice, mid, on=False)
    await pin(client, room, room.alice, mid, on=False)
    assert [(p.event_type, p.user_ids, p.exclude_user) for p in recorder.published] == [
        ("message:pinned", members, None),
        ("message:pinned", members, None),
    ]
    assert recorder.published[0].data == {
        "message_id": mid,
        "channel_id": room.cid,
        "thread_id": None,
        "is_pinned": True,
        "user_id": room.bob.id,
        "message": pinned_message,
    }
    assert recorder.published[1].data["is_pinned"] is False
    assert recorder.published[1].data["user_id"] == room.alice.id
    assert recorder.published[1].data["message"] == unpinned_message
