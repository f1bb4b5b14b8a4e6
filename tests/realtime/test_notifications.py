"""`notification:new`, `notification:read` and `channel:muted` over real WebSockets (issue
18 item 4): to every tab of the notified user, to nobody else."""

from __future__ import annotations

from typing import Any

import httpx

from tests.realtime.conftest import drain_all
from tests.realtime.test_chat_events import post
from tests.realtime.test_scoping import Room
from tests.realtime.test_scoping import room as room  # noqa: F401 (fixture)


def of_type(frames: list[list[dict[str, Any]]], event_type: str) -> list[list[Any]]:
    return [[f["data"] for f in tab if f["type"] == event_type] for tab in frames]


async def test_a_mention_lights_every_tab_and_reading_it_clears_them(
    room: Room, http: httpx.AsyncClient
) -> None:
    message = await post(http, room, room.alice, "@bob can you look?")
    frames = await drain_all(*room.everyone)
    new = of_type(frames, "notification:new")
    assert new[0] == new[1] == new[4] == []
    assert new[2] == new[3] and len(new[2]) == 1
    note = new[2][0]["notification"]
    assert (note["kind"], note["message_id"], new[2][0]["unread_count"]) == (
        "mention",
        message["id"],
        1,
    )

    url = f"/api/tenant/{room.tenant_id}/notification/{note['id']}/read"
    read = await http.put(url, headers=room.bob.headers)
    assert read.status_code == 200, read.text
    event = {"type": "notification:read", "data": read.json()}
    assert read.json()["unread_count"] == 0
    assert await drain_all(*room.everyone) == [[], [], [event], [event], []]


async def test_at_here_reaches_those_connected(room: Room, http: httpx.AsyncClient) -> None:
    await post(http, room, room.alice, "anyone @here?")
    new = of_type(await drain_all(*room.everyone), "notification:new")
    assert [len(tab) for tab in new] == [0, 0, 1, 1, 0]
    assert new[2][0]["notification"]["kind"] == "here"
    # Bob gone: @here finds nobody.
    await room.b1.close()
    await room.b2.close()
    while True:  # until the server has seen both go (each recv has its deadline)
        frame = await room.a1.recv()
        if frame["type"] == "presence:update" and frame["data"]["presence"] == "offline":
            break
    await drain_all(room.a1, room.a2, room.c1)
    await post(http, room, room.alice, "still @here?")
    assert of_type(await drain_all(room.a1, room.a2, room.c1), "notification:new") == [[], [], []]


async def test_muting_reaches_the_users_tabs(room: Room, http: httpx.AsyncClient) -> None:
    url = f"/api/tenant/{room.tenant_id}/channel/{room.channel_id}/mute"
    muted = await http.put(url, headers=room.bob.headers)
    assert muted.status_code == 200, muted.text
    event = {"type": "channel:muted", "data": muted.json()}
    assert await drain_all(*room.everyone) == [[], [], [event], [event], []]
    await post(http, room, room.alice, "@here, muted")
    assert of_type(await drain_all(*room.everyone), "notification:new") == [[], [], [], [], []]
