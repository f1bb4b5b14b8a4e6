"""Who receives what: typing indicators and REST message events, with users on several tabs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from roomler.ids import new_id
from tests.realtime.conftest import (
    Client,
    LiveServer,
    User,
    add_channel,
    add_tenant,
    drain_all,
    open_client,
    register,
)


@dataclass
class Room:
    """Alice and Bob share a channel; Carol is in the tenant but not the channel."""

    tenant_id: str
    channel_id: str
    alice: User
    bob: User
    carol: User
    a1: Client
    a2: Client
    b1: Client
    b2: Client
    c1: Client

    @property
    def everyone(self) -> list[Client]:
        return [self.a1, self.a2, self.b1, self.b2, self.c1]

    def message_url(self, suffix: str = "") -> str:
        return f"/api/tenant/{self.tenant_id}/channel/{self.channel_id}/message{suffix}"


async def make_room(server: LiveServer, http: httpx.AsyncClient, db: AsyncEngine) -> Room:
    alice, bob, carol = [await register(http, name) for name in ("alice", "bob", "carol")]
    tenant_id = await add_tenant(db, alice, bob, carol)
    channel_id = await add_channel(db, tenant_id, alice, bob)
    clients = [await open_client(server, u) for u in (alice, alice, bob, bob, carol)]
    room = Room(tenant_id, channel_id, alice, bob, carol, *clients)
    await drain_all(*room.everyone)  # presence events of the connects
    return room


@pytest.fixture
async def room(server: LiveServer, http: httpx.AsyncClient, db: AsyncEngine) -> Room:
    return await make_room(server, http, db)


def typing(event_type: str, channel_id: str, user: User) -> dict[str, Any]:
    return {"type": event_type, "data": {"channel_id": channel_id, "user_id": user.id}}


async def test_typing_goes_to_every_tab_of_the_other_members_only(room: Room) -> None:
    await room.a1.send("typing:start", {"channel_id": room.channel_id})
    assert await room.a1.drain() == []
    start = typing("typing:start", room.channel_id, room.alice)
    assert await drain_all(room.a2, room.b1, room.b2, room.c1) == [[], [start], [start], []]

    await room.a2.send("typing:stop", {"channel_id": room.channel_id})
    assert await room.a2.drain() == []
    stop = typing("typing:stop", room.channel_id, room.alice)
    assert await drain_all(room.a1, room.b1, room.b2, room.c1) == [[], [stop], [stop], []]


async def test_only_members_may_send_typing(room: Room) -> None:
    for kind in ("typing:start", "typing:stop"):
        for channel_id in (room.channel_id, new_id()):
            await room.c1.send(kind, {"channel_id": channel_id}, request_id="t")
            error = await room.c1.expect("error")
            assert error["request_id"] == "t"
            assert error["data"]["code"] == "forbidden"
            assert error["data"]["request_type"] == kind
    assert await drain_all(*room.everyone) == [[], [], [], [], []]


async def test_typing_stops_when_the_typer_posts_a_message(
    room: Room, http: httpx.AsyncClient
) -> None:
    await room.b1.send("typing:start", {"channel_id": room.channel_id})
    assert await room.a1.expect("typing:start")
    response = await http.post(
        room.message_url(), json={"content": "hello"}, headers=room.bob.headers
    )
    assert response.status_code == 201, response.text
    created = await room.a1.expect("message:create")
    assert created["data"] == response.json()
    assert (await room.a1.recv())["type"] == "typing:stop"
    assert await room.a2.drain() == [
        typing("typing:start", room.channel_id, room.bob),
        {"type": "message:create", "data": response.json()},
        typing("typing:stop", room.channel_id, room.bob),
    ]


async def test_typing_stops_when_the_typing_connection_closes(room: Room) -> None:
    await room.b1.send("typing:start", {"channel_id": room.channel_id})
    assert await room.a1.expect("typing:start")
    await room.b1.close()
    assert await room.a1.expect("typing:stop") == typing("typing:stop", room.channel_id, room.bob)
    # Bob's other tab keeps him online: no presence change for Alice.
    assert await room.a1.drain() == []


async def test_typing_stops_by_itself_after_the_timeout(start_server: Any, db: AsyncEngine) -> None:
    server = start_server(typing={"timeout_secs": 0.4})
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        room = await make_room(server, http, db)
    loop = asyncio.get_running_loop()
    await room.a1.send("typing:start", {"channel_id": room.channel_id})
    assert await room.b1.expect("typing:start")
    await asyncio.sleep(0.2)
    await room.a1.send("typing:start", {"channel_id": room.channel_id})  # renews the timer
    assert await room.b1.expect("typing:start")
    renewed = loop.time()
    stop = await room.b1.expect("typing:stop", timeout=2.0)
    assert stop == typing("typing:stop", room.channel_id, room.alice)
    assert loop.time() - renewed >= 0.35
    assert await room.b2.drain() == [
        typing("typing:start", room.channel_id, room.alice),
        typing("typing:start", room.channel_id, room.alice),
        typing("typing:stop", room.channel_id, room.alice),
    ]
    assert await drain_all(room.a1, room.a2, room.c1) == [[], [], []]


async def test_message_create_skips_the_sender_and_non_members(
    room: Room, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        room.message_url(), json={"content": "hi"}, headers=room.alice.headers
    )
    assert response.status_code == 201
    event = {"type": "message:create", "data": response.json()}
    assert event["data"]["content"] == "hi" and event["data"]["author_id"] == room.alice.id
    assert await drain_all(*room.everyone) == [[], [], [event], [event], []]


async def test_connection_header_skips_only_that_tab(room: Room, http: httpx.AsyncClient) -> None:
    headers = {**room.alice.headers, "X-Connection-Id": room.a1.connection_id}
    response = await http.post(room.message_url(), json={"content": "hi"}, headers=headers)
    event = {"type": "message:create", "data": response.json()}
    assert await drain_all(*room.everyone) == [[], [event], [event], [event], []]


async def test_someone_elses_connection_id_does_not_unmute_the_sender(
    room: Room, http: httpx.AsyncClient
) -> None:
    for foreign in (room.b1.connection_id, "not-a-connection"):
        headers = {**room.alice.headers, "X-Connection-Id": foreign}
        response = await http.post(room.message_url(), json={"content": "x"}, headers=headers)
        event = {"type": "message:create", "data": response.json()}
        assert await drain_all(*room.everyone) == [[], [], [event], [event], []]


async def test_update_and_delete_reach_every_member_tab(
    room: Room, http: httpx.AsyncClient
) -> None:
    created = await http.post(
        room.message_url(), json={"content": "v1"}, headers=room.alice.headers
    )
    message_id = created.json()["id"]
    await drain_all(*room.everyone)
    edited = await http.put(
        room.message_url(f"/{message_id}"), json={"content": "v2"}, headers=room.alice.headers
    )
    assert edited.status_code == 200
    update = {"type": "message:update", "data": edited.json()}
    assert await drain_all(*room.everyone) == [[update], [update], [update], [update], []]
    deleted = await http.delete(room.message_url(f"/{message_id}"), headers=room.alice.headers)
    assert deleted.status_code == 200
    frames = await drain_all(*room.everyone)
    assert [len(f) for f in frames] == [1, 1, 1, 1, 0]
    assert frames[0][0]["type"] == "message:delete"
    assert frames[0][0]["data"]["message_id"] == message_id
    assert all(f == frames[0] for f in frames[:4])


async def test_publish_serializes_once_and_honours_exclusions(
    room: Room, server: LiveServer
) -> None:
    users = [room.alice.id, room.bob.id, room.carol.id]
    await server.call(
        lambda: server.realtime.publish(
            users,
            "custom",
            {"n": 1},
            exclude_user=room.bob.id,
            exclude_connection=room.b2.connection_id,
        )
    )
    event = {"type": "custom", "data": {"n": 1}}
    assert await drain_all(*room.everyone) == [[event], [event], [event], [], [event]]
    await server.call(
        lambda: server.realtime.publish(
            users, "custom", {"n": 1}, exclude_connection=room.a2.connection_id
        )
    )
    assert await drain_all(*room.everyone) == [[event], [], [event], [event], [event]]
