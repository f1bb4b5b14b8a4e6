"""Bad frames get an `error` on that connection only and it stays open; limits close it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.realtime.conftest import (
    RECEIVE_TIMEOUT,
    Client,
    LiveServer,
    open_client,
    register,
)


@pytest.fixture
async def pair(server: LiveServer, http: httpx.AsyncClient) -> tuple[Client, Client]:
    alice = await register(http, "alice")
    return await open_client(server, alice), await open_client(server, alice)


async def test_ping_gets_pong_echoing_the_request_id(pair: tuple[Client, Client]) -> None:
    client, other = pair
    await client.send("ping")
    assert await client.recv() == {"type": "pong", "data": {}}
    await client.send("ping", request_id="r-1")
    assert await client.recv() == {"type": "pong", "data": {}, "request_id": "r-1"}
    assert await other.drain() == []  # the pong went to the sender's connection only


async def test_protocol_ping_frames_get_pong_frames(pair: tuple[Client, Client]) -> None:
    client, _ = pair
    pong = await client.ws.ping(b"are you there")
    await asyncio.wait_for(pong, RECEIVE_TIMEOUT)


BAD_FRAMES: list[tuple[str, str, str | None, str | None]] = [
    # (frame, words in the message, request_type, request_id)
    ("{not json", "not valid JSON", None, None),
    ("[1, 2]", "must be a JSON object", None, None),
    ('"ping"', "must be a JSON object", None, None),
    ('{"data": {}, "request_id": "q1"}', "type is required", None, "q1"),
    ('{"type": 7, "data": {}}', "type must be a non-empty string", None, None),
    ('{"type": "", "data": {}}', "type must be a non-empty string", None, None),
    (
        '{"type": "nope", "data": {}, "request_id": "q2"}',
        "unknown message type 'nope'",
        "nope",
        "q2",
    ),
    ('{"type": "ping", "data": [1]}', "data must be a JSON object", "ping", None),
    ('{"type": "ping", "request_id": 5}', "request_id must be a string", "ping", None),
    # Python refuses to convert an integer of more than 4300 digits (a ValueError that
    # is not a JSONDecodeError): still bad_request, for every place a number can be.
    ('{"type": "ping", "request_id": ' + "9" * 60_000 + "}", "a number is too long", None, None),
    ('{"type": "ping", "data": {"n": -' + "1" * 5000 + "}}", "a number is too long", None, None),
    ('{"type": "ping", "request_id": "' + "x" * 65 + '"}', "at most 64", "ping", None),
    (
        '{"type": "typing:start", "data": {}, "request_id": "q3"}',
        "data.channel_id is required",
        "typing:start",
        "q3",
    ),
    (
        '{"type": "typing:start", "data": {"channel_id": "abc"}}',
        "data.channel_id must be a 24",
        "typing:start",
        None,
    ),
    (
        '{"type": "typing:stop", "data": {"channel_id": 12}}',
        "data.channel_id must be a 24",
        "typing:stop",
        None,
    ),
    (
        '{"type": "presence:update", "data": {}}',
        "data.presence is required",
        "presence:update",
        None,
    ),
    (
        '{"type": "presence:update", "data": {"presence": "away"}}',
        "must be one of online|idle|dnd|offline|invisible",
        "presence:update",
        None,
    ),
    (
        '{"type": "presence:update", "data": {"presence": ["online"]}}',
        "must be one of",
        "presence:update",
        None,
    ),
]


async def test_each_bad_frame_is_answered_with_bad_request_and_the_socket_stays_open(
    pair: tuple[Client, Client],
) -> None:
    client, other = pair
    for frame, words, request_type, request_id in BAD_FRAMES:
        await client.ws.send(frame)
        error = await client.expect("error")
        data = error["data"]
        assert data["code"] == "bad_request", frame
        assert words in data["message"], (frame, data)
        assert data.get("request_type") == request_type, frame
        assert error.get("request_id") == request_id, frame
        assert await client.drain() == [], frame  # still open and answering
    assert await other.drain() == []


async def test_binary_frames_are_refused(pair: tuple[Client, Client]) -> None:
    client, _ = pair
    await client.ws.send(b'{"type": "ping", "data": {}}')
    error = await client.expect("error")
    assert error["data"]["code"] == "bad_request"
    assert "binary" in error["data"]["message"]
    assert await client.drain() == []


async def test_long_unknown_type_is_not_echoed_whole(pair: tuple[Client, Client]) -> None:
    client, _ = pair
    await client.send("x" * 5000)
    error = await client.expect("error")
    assert error["data"]["request_type"] == "x" * 64
    assert len(error["data"]["message"]) < 200


async def test_frame_over_64_kib_closes_with_1009(
    pair: tuple[Client, Client], server: LiveServer
) -> None:
    client, other = pair
    await client.ws.send(json.dumps({"type": "ping", "data": {"pad": "x" * 60000}}))
    assert await client.expect("pong")
    await client.ws.send(json.dumps({"type": "ping", "data": {"pad": "x" * 70000}}))
    with pytest.raises(ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert await other.drain() == []  # the other tab is unaffected
    await server.wait_connections(1)


async def collect(client: Client, count: int) -> list[dict[str, Any]]:
    return [await client.recv() for _ in range(count)]


async def test_more_than_the_burst_is_rate_limited_then_recovers(
    pair: tuple[Client, Client],
) -> None:
    client, _ = pair
    for i in range(150):
        await client.ws.send(json.dumps({"type": "ping", "data": {}, "request_id": f"p{i}"}))
    replies = await collect(client, 150)
    pongs = [r for r in replies if r["type"] == "pong"]
    limited = [r for r in replies if r["type"] == "error"]
    # The burst of 100 (less the ping `open_client` sent) plus what refilled at 50/s.
    assert 99 <= len(pongs) < 130
    assert len(pongs) + len(limited) == 150
    assert {r["data"]["code"] for r in limited} == {"rate_limited"}
    assert all(r["data"]["request_type"] == "ping" for r in limited)
    # Replies keep the order of the requests, and each echoes its own request id.
    assert [r["request_id"] for r in replies] == [f"p{i}" for i in range(150)]
    await asyncio.sleep(0.1)  # 5 tokens come back at 50/s
    assert await client.drain() == []


async def test_a_connection_that_keeps_flooding_is_closed_with_1008(
    start_server: Any,
) -> None:
    server = start_server(ws={"rate_per_sec": 20, "rate_burst": 5, "flood_close_secs": 0.5})
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        alice = await register(http, "alice")
    client = await open_client(server, alice)
    observer = await open_client(server, alice)
    loop = asyncio.get_running_loop()

    async def read_until_closed() -> ConnectionClosed:
        try:
            while True:
                await client.ws.recv()
        except ConnectionClosed as exc:
            return exc

    reader = asyncio.create_task(read_until_closed())
    started = loop.time()
    for _ in range(1000):  # a bounded flood: ~5 ms apart, 200/s against 20/s allowed
        if reader.done():
            break
        with contextlib.suppress(ConnectionClosed):
            await client.send("ping")
        await asyncio.sleep(0.005)
    closed = await asyncio.wait_for(reader, RECEIVE_TIMEOUT)
    elapsed = loop.time() - started
    assert closed.rcvd is not None and closed.rcvd.code == 1008
    assert 0.5 <= elapsed < 3.0
    assert await observer.drain() == []
