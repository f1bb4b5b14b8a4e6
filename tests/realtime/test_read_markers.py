"""`channel:read` over real WebSockets: a read on one tab of a user clears the channel on
their other tabs, and reaches nobody else."""

from __future__ import annotations

from typing import Any

import httpx

from tests.realtime.conftest import drain_all
from tests.realtime.test_chat_events import post
from tests.realtime.test_scoping import Room
from tests.realtime.test_scoping import room as room  # noqa: F401 (fixture)


async def test_reading_on_one_tab_clears_the_channel_on_the_others(
    room: Room, http: httpx.AsyncClient
) -> None:
    first = await post(http, room, room.alice, "@bob, a question")
    second = await post(http, room, room.alice, "and another")
    await drain_all(*room.everyone)
    read_url = f"/api/tenant/{room.tenant_id}/channel/{room.channel_id}/read"

    async def read(mid: str) -> Any:
        response = await http.put(read_url, json={"message_id": mid}, headers=room.bob.headers)
        assert response.status_code == 200, response.text
        return response.json()

    answer = await read(first["id"])
    assert (answer["unread_count"], answer["mention_count"]) == (1, 0)
    event = {"type": "channel:read", "data": answer}
    # Reading past the message that named Bob marks its notification read, on his tabs only.
    frames = await drain_all(*room.everyone)
    assert (frames[0], frames[1], frames[4]) == ([], [], [])
    assert frames[2] == frames[3]
    assert frames[2][0] == event
    assert [f["type"] for f in frames[2][1:]] == ["notification:read"]
    notices = frames[2][1]["data"]
    assert (len(notices["notification_ids"]), notices["unread_count"]) == (1, 0)
    answer = await read(second["id"])
    assert (answer["message_id"], answer["unread_count"]) == (second["id"], 0)
    cleared = {"type": "channel:read", "data": answer}
    assert await drain_all(*room.everyone) == [[], [], [cleared], [cleared], []]
    # Nothing moved, nothing sent.
    await read(first["id"])
    assert await drain_all(*room.everyone) == [[], [], [], [], []]
