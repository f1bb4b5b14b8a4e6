"""Frames written straight to an idle connection's socket (realtime/uvicorn_protocol.py).

What a client must notice: nothing but the frames, whole and in order, whichever way
each one went out: directly, or queued behind a full socket buffer, or compressed.
The server-side checks say which way a frame went: a direct write leaves nothing queued.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from roomler.realtime.wire import encode
from tests.realtime.conftest import RECEIVE_TIMEOUT, LiveServer, open_client, register

BIG = "x" * 32_000  # 200 of these overflow the socket buffers of a client that stops reading
BACKLOG = 200


def send_on_the_only_connection(server: LiveServer, user_id: str, frames: list[str]) -> int:
    """Queue `frames` on the user's connection, then return how many are still queued."""
    [sender] = server.realtime.storage.get_senders(user_id)
    for frame in frames:
        assert sender.send(frame)
    return sender.queued()


def numbered(count: int, start: int = 0, pad: str = "") -> list[str]:
    return [encode("test:n", {"n": n, "pad": pad}) for n in range(start, start + count)]


async def test_an_idle_connection_gets_a_frame_written_at_once(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    alice = await register(http, "alice")
    client = await open_client(server, alice)

    queued = await server.call(lambda: send_on_the_only_connection(server, alice.id, numbered(1)))

    assert queued == 0, "the frame waited for the writer task instead of being written"
    assert (await client.expect("test:n"))["data"]["n"] == 0
    await client.close()


async def test_a_reader_that_falls_behind_gets_every_frame_in_order(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    alice = await register(http, "alice")
    client = await open_client(server, alice)

    # The client reads nothing meanwhile: the socket's buffers fill and the rest queue.
    queued = await server.call(
        lambda: send_on_the_only_connection(server, alice.id, numbered(BACKLOG, pad=BIG))
    )
    assert 0 < queued < BACKLOG, queued
    # Sent while the backlog drains: they must come after it, not jump ahead.
    await asyncio.sleep(0.05)
    await server.call(lambda: send_on_the_only_connection(server, alice.id, numbered(5, BACKLOG)))

    numbers = [(await client.expect("test:n"))["data"]["n"] for _ in range(BACKLOG + 5)]
    assert numbers == list(range(BACKLOG + 5))
    # Drained: the next frame is direct again.
    await asyncio.sleep(0.1)
    queued = await server.call(
        lambda: send_on_the_only_connection(server, alice.id, numbered(1, BACKLOG + 5))
    )
    assert queued == 0
    assert (await client.expect("test:n"))["data"]["n"] == BACKLOG + 5
    await client.close()


async def test_a_compressing_connection_gets_its_frames_through_websockets(
    start_server: Any,
) -> None:
    server = start_server(ws={"per_message_deflate": True})
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        alice = await register(http, "alice")
    client = await open_client(server, alice, compression="deflate")
    assert client.ws.protocol.extensions, "the client did not negotiate permessage-deflate"

    frames = numbered(3, pad="compressible " * 100)
    queued = await server.call(lambda: send_on_the_only_connection(server, alice.id, frames))

    assert queued == 3  # never written raw: the writer compresses them
    for n in range(3):
        raw = await asyncio.wait_for(client.ws.recv(), RECEIVE_TIMEOUT)
        assert json.loads(raw)["data"]["n"] == n
    await client.close()


async def test_a_closing_connection_takes_no_frame(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    alice = await register(http, "alice")
    client = await open_client(server, alice)

    def close_then_send() -> bool:
        [sender] = server.realtime.storage.get_senders(alice.id)
        sender.close(1000, "bye")
        return bool(sender.send(numbered(1)[0]))

    assert await server.call(close_then_send) is False
    await client.ws.wait_closed()
    assert client.ws.close_code == 1000
