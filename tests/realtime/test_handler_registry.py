"""Features plug message handlers and close hooks into the live server (as media signaling will)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from roomler.realtime.builtin_handlers import ping
from roomler.realtime.connection import Peer
from roomler.realtime.handler_registry import HandlerRegistry, Refused, Request
from tests.realtime.conftest import LiveServer, open_client, register


def parse_text(data: dict[str, Any]) -> str:
    text = data.get("text")
    if not isinstance(text, str):
        raise ValueError("data.text must be a string")
    return text


async def test_a_plugged_in_handler_replies_publishes_and_cleans_up(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    closed: list[str] = []
    disconnected: list[str] = []

    async def echo(request: Request, text: str) -> None:
        request.reply("test:echoed", {"text": text, "connection_id": request.connection_id})
        await server.realtime.publish([request.user_id], "test:heard", {"text": text})

        async def forget(connection: Peer) -> None:
            closed.append(connection.connection_id)

        request.on_close(forget)

    async def refuse(request: Request, _data: dict[str, Any]) -> None:
        raise Refused("not_in_room", "Join the room first")

    async def crash(request: Request, _data: dict[str, Any]) -> None:
        raise RuntimeError("bug")

    async def on_disconnect(connection: Peer) -> None:
        disconnected.append(connection.connection_id)

    def install() -> None:
        server.realtime.registry.register("test:echo", echo, parse_text)
        server.realtime.registry.register("test:refuse", refuse)
        server.realtime.registry.register("test:crash", crash)
        server.realtime.on_disconnect(on_disconnect)

    await server.call(install)
    alice = await register(http, "alice")
    one = await open_client(server, alice)
    two = await open_client(server, alice)

    await one.send("test:echo", {"text": "hi"}, request_id="e1")
    assert await one.drain() == [
        {
            "type": "test:echoed",
            "data": {"text": "hi", "connection_id": one.connection_id},
            "request_id": "e1",
        },
        {"type": "test:heard", "data": {"text": "hi"}},
    ]
    assert await two.drain() == [{"type": "test:heard", "data": {"text": "hi"}}]

    await one.send("test:echo", {"text": 3}, request_id="e2")
    error = await one.expect("error")
    assert error["data"] == {
        "code": "bad_request",
        "message": "data.text must be a string",
        "request_type": "test:echo",
    }
    await one.send("test:refuse", request_id="r")
    error = await one.expect("error")
    assert error["request_id"] == "r" and error["data"]["code"] == "not_in_room"
    await one.send("test:crash")
    error = await one.expect("error")
    assert error["data"]["code"] == "internal" and "bug" not in error["data"]["message"]
    assert await one.drain() == []

    await one.close()
    await server.wait_connections(1)
    assert closed == [one.connection_id]
    assert disconnected == [one.connection_id]
    await two.close()
    await server.wait_connections(0)
    assert disconnected == [one.connection_id, two.connection_id]


def test_a_type_is_registered_once() -> None:
    registry = HandlerRegistry()
    registry.register("ping", ping)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("ping", ping)
    assert registry.types() == ["ping"]
    assert registry.get("nope") is None
