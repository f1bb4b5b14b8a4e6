"""Batches (docs/protocol.md): presence and call-participant events held for one tick.

The connection-level rules without a socket (a `Batcher` whose tick is ended by hand),
then on a live server: peers' presence changes within one tick reach a connection as one
`batch` frame, and a frame sent meanwhile never overtakes what was held.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from roomler.realtime.connection import Batcher, Connection
from roomler.realtime.wire import encode, encode_coalescable
from tests.realtime.conftest import (
    Client,
    LiveServer,
    User,
    add_tenant,
    open_client,
    register,
)


def presence(user_id: str, state: str) -> dict[str, Any]:
    return {"type": "presence:update", "data": {"user_id": user_id, "presence": state}}


async def _connection(batcher: Batcher | None) -> tuple[Connection, list[dict[str, Any]]]:
    written: list[dict[str, Any]] = []

    async def send_text(frame: str) -> None:
        written.append(json.loads(frame))

    connection = Connection("u", "c", send_text, 16, batcher=batcher)
    connection.start_writer()
    return connection, written


async def test_held_events_go_as_one_batch_frame_when_the_tick_ends() -> None:
    batcher = Batcher(3600.0)  # ended by hand below
    connection, written = await _connection(batcher)
    assert connection.send(encode_coalescable("presence:update", presence("a", "online")["data"]))
    assert connection.send(encode_coalescable("presence:update", presence("b", "idle")["data"]))
    await asyncio.sleep(0)
    assert written == []  # held
    batcher.flush()
    await asyncio.sleep(0)
    assert written == [
        {"type": "batch", "data": {"events": [presence("a", "online"), presence("b", "idle")]}}
    ]
    # A single held event goes as itself.
    connection.send(encode_coalescable("presence:update", presence("a", "dnd")["data"]))
    batcher.flush()
    await asyncio.sleep(0)
    assert written[1:] == [presence("a", "dnd")]


async def test_another_frame_writes_what_was_held_first() -> None:
    batcher = Batcher(3600.0)
    connection, written = await _connection(batcher)
    connection.send(encode_coalescable("presence:update", presence("a", "online")["data"]))
    connection.send(encode("pong", {}))
    batcher.flush()  # nothing left to write
    await asyncio.sleep(0)
    assert written == [presence("a", "online"), {"type": "pong", "data": {}}]


async def test_without_a_batcher_and_after_close_nothing_is_held() -> None:
    connection, written = await _connection(None)  # ROOMLER__WS__BATCH_MS=0
    connection.send(encode_coalescable("presence:update", presence("a", "online")["data"]))
    await asyncio.sleep(0)
    assert written == [presence("a", "online")]
    batcher = Batcher(3600.0)
    closing, later = await _connection(batcher)
    closing.send(encode_coalescable("presence:update", presence("a", "online")["data"]))
    closing.close(1000)
    batcher.flush()
    await asyncio.sleep(0)
    assert later == []


async def _three_connected(
    server: LiveServer, http: httpx.AsyncClient, db: AsyncEngine
) -> tuple[User, User, tuple[Client, Client, Client]]:
    """Alice, Bob and Carol in one workspace; Carol connects first, then Alice, then Bob."""
    alice, bob, carol = [await register(http, n) for n in ("alice", "bob", "carol")]
    await add_tenant(db, alice, bob, carol)
    watcher = await open_client(server, carol)
    return alice, bob, (watcher, await open_client(server, alice), await open_client(server, bob))


async def test_peers_presence_within_one_tick_arrives_as_one_batch_in_order(
    start_server: Any, http: httpx.AsyncClient, db: AsyncEngine
) -> None:
    server: LiveServer = start_server(ws={"batch_ms": 1000})
    alice, bob, (watcher, a, b) = await _three_connected(server, http, db)
    # Both arrivals were held for Carol; her ping writes them first, as one frame.
    assert await watcher.drain() == [presence(alice.id, "online"), presence(bob.id, "online")]
    assert watcher.batches == 1
    await asyncio.gather(
        a.send("presence:update", {"presence": "dnd"}),
        b.send("presence:update", {"presence": "idle"}),
    )
    # Nothing else is sent to Carol: the tick ends and writes both, in one frame.
    first = await watcher.recv(5.0)
    second = await watcher.recv(5.0)
    assert sorted([first, second], key=lambda f: f["data"]["user_id"] == bob.id) == [
        presence(alice.id, "dnd"),
        presence(bob.id, "idle"),
    ]
    assert watcher.batches == 2
    for client in (watcher, a, b):
        await client.close()


async def test_batching_off_sends_each_event_in_its_own_frame(
    start_server: Any, http: httpx.AsyncClient, db: AsyncEngine
) -> None:
    server: LiveServer = start_server(ws={"batch_ms": 0})
    alice, bob, (watcher, a, b) = await _three_connected(server, http, db)
    assert await watcher.drain() == [presence(alice.id, "online"), presence(bob.id, "online")]
    assert watcher.batches == 0
    for client in (watcher, a, b):
        await client.close()
