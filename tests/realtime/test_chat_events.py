"""The team-chat events of issue 18 over real WebSockets: who receives reactions, pins,
thread replies and direct messages, on every tab, and who does not."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from tests.realtime.conftest import drain_all
from tests.realtime.test_scoping import Room
from tests.realtime.test_scoping import room as room  # noqa: F401 (fixture)


async def post(http: httpx.AsyncClient, room: Room, who: Any, content: str, **extra: Any) -> Any:
    response = await http.post(
        room.message_url(), json={"content": content, **extra}, headers=who.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_reaction_reaches_every_tab_of_the_members_only(
    room: Room, http: httpx.AsyncClient
) -> None:
    message = await post(http, room, room.alice, "lunch?")
    await drain_all(*room.everyone)
    url = room.message_url(f"/{message['id']}/reaction/{quote('🍕')}")
    added = await http.put(url, headers=room.bob.headers)
    assert added.status_code == 200
    event = {"type": "message:reaction", "data": added.json()}
    assert event["data"]["reactions"] == [{"emoji": "🍕", "count": 1, "user_ids": [room.bob.id]}]
    # Bob's own tabs too (the other one must show it); Carol is not in the channel.
    assert await drain_all(*room.everyone) == [[event], [event], [event], [event], []]
    again = await http.put(url, headers=room.bob.headers)
    assert again.status_code == 200
    assert await drain_all(*room.everyone) == [[], [], [], [], []]
    removed = await http.delete(url, headers=room.bob.headers)
    gone = {"type": "message:reaction", "data": removed.json()}
    assert gone["data"]["added"] is False and gone["data"]["reactions"] == []
    assert await drain_all(*room.everyone) == [[gone], [gone], [gone], [gone], []]


async def test_a_pin_reaches_every_tab_of_the_members_only(
    room: Room, http: httpx.AsyncClient
) -> None:
    message = await post(http, room, room.bob, "the plan")
    await drain_all(*room.everyone)
    url = room.message_url(f"/{message['id']}/pin")
    pinned = await http.put(url, headers=room.alice.headers)
    assert pinned.status_code == 200
    event = {
        "type": "message:pinned",
        "data": {
            "message_id": message["id"],
            "channel_id": room.channel_id,
            "thread_id": None,
            "is_pinned": True,
            "user_id": room.alice.id,
            "message": pinned.json(),
        },
    }
    assert await drain_all(*room.everyone) == [[event], [event], [event], [event], []]
    assert (await http.put(url, headers=room.bob.headers)).status_code == 200
    assert await drain_all(*room.everyone) == [[], [], [], [], []]
    unpinned = await http.delete(url, headers=room.bob.headers)
    frames = await drain_all(*room.everyone)
    assert frames[4] == [] and all(len(f) == 1 for f in frames[:4])
    assert frames[0][0]["data"]["message"] == unpinned.json()
    assert frames[0][0]["data"]["is_pinned"] is False


async def test_a_thread_reply_reaches_the_channel_and_the_followers_tabs(
    room: Room, http: httpx.AsyncClient
) -> None:
    root = await post(http, room, room.alice, "who reviews?")
    await drain_all(*room.everyone)
    reply = await post(http, room, room.bob, "I do", thread_id=root["id"])
    created = {"type": "message:create", "data": reply}
    assert reply["thread_id"] == root["id"]
    counted = {
        "type": "message:thread",
        "data": {
            "message_id": root["id"],
            "channel_id": room.channel_id,
            "reply_count": 1,
            "last_reply_at": reply["created_at"],
        },
    }
    told = {
        "type": "thread:reply",
        "data": {"thread_id": root["id"], "channel_id": room.channel_id, "message": reply},
    }
    # Alice started the thread, so she follows it; Bob wrote the reply.
    assert await drain_all(*room.everyone) == [
        [created, counted, told],
        [created, counted, told],
        [counted],
        [counted],
        [],
    ]
    # Alice stops following: her tabs see the reply, but are not told of it.
    stop = await http.delete(room.message_url(f"/{root['id']}/follow"), headers=room.alice.headers)
    assert stop.status_code == 200
    second = await post(http, room, room.bob, "or not", thread_id=root["id"])
    frames = await drain_all(room.a1, room.a2)
    assert [[f["type"] for f in tab] for tab in frames] == [
        ["message:create", "message:thread"],
        ["message:create", "message:thread"],
    ]
    assert frames[0][0]["data"] == second


async def test_a_direct_conversation_is_heard_by_its_members_only(
    room: Room, http: httpx.AsyncClient
) -> None:
    started = await http.post(
        f"/api/tenant/{room.tenant_id}/dm",
        json={"user_ids": [room.carol.id]},
        headers=room.alice.headers,
    )
    assert started.status_code == 201, started.text
    dm = started.json()
    created = {"type": "channel:created", "data": {"tenant_id": room.tenant_id, "channel": dm}}
    assert await drain_all(*room.everyone) == [[created], [created], [], [], [created]]

    url = f"/api/tenant/{room.tenant_id}/channel/{dm['id']}/message"
    posted = await http.post(url, json={"content": "just us"}, headers=room.alice.headers)
    assert posted.status_code == 201
    message = {"type": "message:create", "data": posted.json()}
    # Alice's tabs have the HTTP reply; Bob is not in it. Carol is notified of it too.
    frames = await drain_all(*room.everyone)
    assert frames[:4] == [[], [], [], []]
    assert [f["type"] for f in frames[4]] == ["message:create", "notification:new"]
    assert frames[4][0] == message
    notified = frames[4][1]["data"]
    assert notified["unread_count"] == 1
    assert (notified["notification"]["kind"], notified["notification"]["message_id"]) == (
        "direct",
        message["data"]["id"],
    )

    await room.c1.send("typing:start", {"channel_id": dm["id"]})
    assert await room.c1.drain() == []  # handled: the typing went out before the pong
    start = {"type": "typing:start", "data": {"channel_id": dm["id"], "user_id": room.carol.id}}
    assert await drain_all(*room.everyone) == [[start], [start], [], [], []]
    # Bob cannot type into it.
    await room.b1.send("typing:start", {"channel_id": dm["id"]}, request_id="b")
    error = await room.b1.expect("error")
    assert error["data"]["code"] == "forbidden"
