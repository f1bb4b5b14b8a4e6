"""A user who lost access hears nothing more over the WebSocket they keep open.

Who gets a channel's messages and typing, and a user's presence, is worked out from the
database for each event, not when the connection opened: once Bob has left the channel
or the workspace, the same open connections no longer receive what he lost.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.realtime.conftest import Client, LiveServer, drain_all
from tests.realtime.test_scoping import Room, make_room, typing


@pytest.fixture
async def room(server: LiveServer, http: httpx.AsyncClient, db: AsyncEngine) -> Room:
    """Alice and Bob share a private channel (two tabs each); Carol is outside it."""
    room = await make_room(server, http, db)
    path = f"/api/tenant/{room.tenant_id}/channel/{room.channel_id}"
    response = await http.put(path, json={"is_private": True}, headers=room.alice.headers)
    assert response.status_code == 200 and response.json()["is_private"] is True
    # Set-up's own events: the members see the change, Carol sees the channel go from view.
    for member in (room.a1, room.a2, room.b1, room.b2):
        assert (await member.expect("channel:updated"))["data"]["is_private"] is True
    removed = await room.c1.expect("channel:removed")
    assert removed["data"]["channel_ids"] == [room.channel_id]
    return room


async def post(room: Room, http: httpx.AsyncClient, content: str) -> dict[str, Any]:
    response = await http.post(
        room.message_url(), json={"content": content}, headers=room.alice.headers
    )
    assert response.status_code == 201, response.text
    return {"type": "message:create", "data": response.json()}


async def refused_typing(client: Client, channel_id: str) -> None:
    await client.send("typing:start", {"channel_id": channel_id}, request_id="t")
    error = await client.expect("error")
    assert error["data"]["code"] == "forbidden", error


async def test_after_leaving_a_channel_its_messages_and_typing_stop(
    room: Room, http: httpx.AsyncClient
) -> None:
    before = await post(room, http, "before")
    assert await drain_all(room.b1, room.b2) == [[before], [before]]
    path = f"/api/tenant/{room.tenant_id}/channel/{room.channel_id}/leave"
    assert (await http.post(path, headers=room.bob.headers)).status_code == 200

    await post(room, http, "after")
    await room.a1.send("typing:start", {"channel_id": room.channel_id})
    await room.a1.send("typing:stop", {"channel_id": room.channel_id})
    await room.a1.drain()  # handled, in order, before the pong
    assert await drain_all(room.b1, room.b2) == [[], []]
    await refused_typing(room.b1, room.channel_id)
    assert await drain_all(room.a1, room.a2) == [[], []]


async def test_after_removal_from_the_workspace_nothing_of_it_arrives(
    room: Room, http: httpx.AsyncClient
) -> None:
    await room.a1.send("typing:start", {"channel_id": room.channel_id})
    await room.a1.drain()  # handled, in order, before the pong
    started = typing("typing:start", room.channel_id, room.alice)
    assert await drain_all(room.b1, room.b2) == [[started], [started]]
    path = f"/api/tenant/{room.tenant_id}/member/{room.bob.id}"
    assert (await http.delete(path, headers=room.alice.headers)).status_code == 200
    removed = {
        "type": "tenant:member_removed",
        "data": {"tenant_id": room.tenant_id, "user_id": room.bob.id},
    }
    assert await drain_all(*room.everyone) == [[removed]] * 5

    message = await post(room, http, "after")
    await room.a1.send("typing:start", {"channel_id": room.channel_id})
    await room.a1.send("presence:update", {"presence": "dnd"})
    await room.a1.drain()
    away = {"type": "presence:update", "data": {"user_id": room.alice.id, "presence": "dnd"}}
    assert await drain_all(room.c1) == [[away]]  # Carol, still in the workspace, hears it
    assert await drain_all(room.b1, room.b2) == [[], []]
    await refused_typing(room.b2, room.channel_id)
    assert message["data"]["content"] == "after"
