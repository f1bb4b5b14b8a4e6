"""Peers that stop reading, miss pings or outlive their token are dropped and cleaned up."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode

from roomler.auth.tokens import TokenIssuer
from tests.conftest import TEST_JWT_SECRET
from tests.realtime.conftest import (
    LiveServer,
    RawClient,
    add_channel,
    add_tenant,
    open_client,
    register,
)


def presence(user_id: str, state: str) -> dict[str, Any]:
    return {"type": "presence:update", "data": {"user_id": user_id, "presence": state}}


async def test_a_slow_reader_is_closed_with_1013_and_others_get_everything(
    start_server: Any, db: AsyncEngine
) -> None:
    server: LiveServer = start_server(ws={"send_queue_frames": 16})
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        bob = await register(http, "bob")
        carol = await register(http, "carol")
    await add_tenant(db, bob, carol)
    fast = await open_client(server, bob, max_queue=None)  # reads as fast as frames come
    slow = await RawClient.open(f"{server.ws_url}?token={carol.token}", receive_buffer=4096)
    assert await fast.recv() == presence(carol.id, "online")

    def slow_connection() -> Any:
        return server.realtime.storage.get_senders(carol.id)

    async def publish_until_the_slow_reader_is_dropped() -> int:
        pad = "x" * 16000
        for seq in range(2000):  # bounded: ~32 MB at most
            if not slow_connection():
                return seq
            await server.realtime.publish([bob.id, carol.id], "blob", {"seq": seq, "pad": pad})
            await asyncio.sleep(0)  # let the writer tasks run, as between two requests
        raise AssertionError("the slow reader was never dropped")

    published: int = await server.call(publish_until_the_slow_reader_is_dropped)
    assert 16 < published < 2000

    # The fast reader got every frame, in order, and heard that carol left.
    frames = [await fast.recv() for _ in range(published + 1)]
    assert presence(carol.id, "offline") in frames
    blobs = [f["data"]["seq"] for f in frames if f["type"] == "blob"]
    assert blobs == list(range(published))
    assert await fast.drain() == []

    # The slow reader, once it reads again, finds a prefix of the stream and then 1013.
    await slow.read_until_closed(timeout=10)
    assert slow.close_code() == 1013
    received = [f["data"]["seq"] for f in slow.text_frames() if f["type"] == "blob"]
    assert received == list(range(len(received))) and len(received) < published
    await server.wait_connections(1)
    slow.close()


async def test_a_peer_that_misses_pings_is_dropped_and_cleaned_up(
    start_server: Any, db: AsyncEngine
) -> None:
    server: LiveServer = start_server(ws={"ping_interval_secs": 0.2, "ping_timeout_secs": 0.4})
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        bob = await register(http, "bob")
        carol = await register(http, "carol")
    tenant_id = await add_tenant(db, bob, carol)
    channel_id = await add_channel(db, tenant_id, bob, carol)
    # The websockets client answers protocol pings by itself (its own pings are off).
    answering = await open_client(server, bob, ping_interval=None)
    silent = await RawClient.open(f"{server.ws_url}?token={carol.token}")
    assert await answering.recv() == presence(carol.id, "online")
    await silent.send_json({"type": "typing:start", "data": {"channel_id": channel_id}})
    assert (await answering.recv())["type"] == "typing:start"

    loop = asyncio.get_running_loop()
    started = loop.time()
    await silent.read_until_closed(timeout=5)
    assert silent.pings() >= 1
    assert silent.close_code() == 1011 or (silent.eof and silent.close_code() is None)
    assert loop.time() - started >= 0.4
    stop = {"type": "typing:stop", "data": {"channel_id": channel_id, "user_id": carol.id}}
    assert [await answering.recv(), await answering.recv()] == [
        stop,
        presence(carol.id, "offline"),
    ]
    await server.wait_connections(1)
    # The peer that answers pings outlives many intervals.
    await asyncio.sleep(1.0)
    assert await answering.drain() == []
    silent.close()


async def test_raw_client_sees_server_pings(start_server: Any) -> None:
    server: LiveServer = start_server(ws={"ping_interval_secs": 0.1, "ping_timeout_secs": 5})
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        bob = await register(http, "bob")
    raw = await RawClient.open(f"{server.ws_url}?token={bob.token}")
    while raw.pings() == 0:
        await raw.read_some(timeout=2)
    ping = next(f for f in raw.frames if f.opcode is Opcode.PING)
    await raw.flush()  # the sans-I/O protocol queued the pong; send it
    assert raw.text_frames()[0]["type"] == "connected"
    assert len(ping.data) > 0
    raw.close()


async def test_an_expired_token_closes_the_connection_with_4001(
    start_server: Any, db: AsyncEngine
) -> None:
    server: LiveServer = start_server(jwt={"access_token_ttl_secs": 2})
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        bob = await register(http, "bob")
        carol = await register(http, "carol")
    await add_tenant(db, bob, carol)
    long_lived = TokenIssuer(TEST_JWT_SECRET, "roomler", access_ttl=3600, refresh_ttl=3600)
    bob.token = long_lived.issue(bob.id, "access")
    watcher = await open_client(server, bob)
    expiring = await open_client(server, carol)
    assert await watcher.recv() == presence(carol.id, "online")
    with pytest.raises(ConnectionClosed) as closed:
        await expiring.recv(timeout=4)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
    assert closed.value.rcvd.reason == "access token expired"
    assert await watcher.recv() == presence(carol.id, "offline")
    await server.wait_connections(1)
    assert await watcher.drain() == []


async def test_frames_are_json_text(server: LiveServer, http: httpx.AsyncClient) -> None:
    bob = await register(http, "bob")
    raw = await RawClient.open(f"{server.ws_url}?token={bob.token}")
    while not raw.frames:
        await raw.read_some()
    assert raw.frames[0].opcode is Opcode.TEXT
    assert json.loads(bytes(raw.frames[0].data))["type"] == "connected"
    raw.close()
