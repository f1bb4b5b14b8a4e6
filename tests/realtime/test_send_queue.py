"""A connection's outgoing queue and writer (realtime/connection.py), without a socket."""

from __future__ import annotations

import asyncio
import json

import pytest

from roomler.realtime.connection import Connection
from tests.realtime.senders import conn


async def test_a_full_queue_closes_with_1013_and_refuses_more() -> None:
    connection = conn("a", "1", limit=3)
    assert [connection.send(str(i)) for i in range(3)] == [True, True, True]
    assert connection.send("overflow") is False
    assert connection.close_code == 1013 and connection.close_reason == "send queue full"
    assert connection.queued() == 0
    assert connection.send("later") is False
    connection.close(1000)  # the first code wins
    assert connection.close_code == 1013


async def test_the_writer_sends_in_order_and_stops_on_close() -> None:
    written: list[str] = []
    release = asyncio.Event()

    async def send_text(frame: str) -> None:
        if frame == "block":
            await release.wait()  # a peer that stopped reading
        written.append(frame)

    connection = Connection("a", "1", send_text, 10)
    writer = connection.start_writer()
    for frame in ("1", "2", "3"):
        connection.send(frame)
    await asyncio.sleep(0)
    assert written == ["1", "2", "3"]
    connection.send("block")
    connection.send("4")
    await asyncio.sleep(0)
    connection.close(4001, "access token expired")
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(writer, 1)
    assert written == ["1", "2", "3"]


async def test_direct_writes_only_while_the_writer_is_idle_so_frames_keep_their_order() -> None:
    """A frame is written directly only when nothing is queued or in flight; a refused
    direct write queues, and what follows waits behind it."""
    delivered: list[str] = []
    release = asyncio.Event()
    socket_full = False

    async def send_text(frame: str) -> None:  # the ASGI path, slow while the peer lags
        await release.wait()
        delivered.append(frame)

    def write_frame(wire: bytes) -> bool:  # the server's direct write
        if socket_full:
            return False
        delivered.append(json.loads(wire[2:])["n"])
        return True

    connection = Connection("a", "1", send_text, 10, write_frame)
    writer = connection.start_writer()
    await asyncio.sleep(0)  # the writer is idle

    def frame(n: str) -> str:
        return json.dumps({"n": n})

    assert connection.send(frame("direct")) and connection.queued() == 0
    socket_full = True
    assert connection.send(frame("queued")) and connection.queued() == 1
    await asyncio.sleep(0)  # the writer took it and waits on the socket
    socket_full = False
    assert connection.send(frame("after")) and connection.queued() == 1  # not direct
    release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert delivered == ["direct", frame("queued"), frame("after")]
    assert connection.send(frame("idle again")) and connection.queued() == 0
    assert delivered[-1] == "idle again"
    connection.close(1000)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(writer, 1)


async def test_a_shutdown_close_comes_after_the_queued_frames() -> None:
    """`close_after_queued` (a server shutdown): what is queued, `media:room_closed`
    among it, is written before the connection closes with 1001; new frames are refused."""
    written: list[str] = []
    release = asyncio.Event()

    async def send_text(frame: str) -> None:
        await release.wait()
        written.append(frame)

    connection = Connection("a", "1", send_text, 10)
    writer = connection.start_writer()
    for frame in ("1", "room_closed"):
        connection.send(frame)
    await asyncio.sleep(0)
    connection.close_after_queued(1001, "server shutting down")
    assert connection.close_code is None  # not yet: two frames to go
    release.set()
    await asyncio.wait_for(writer, 1)
    assert written == ["1", "room_closed"]
    assert (connection.close_code, connection.close_reason) == (1001, "server shutting down")
    assert connection.send("later") is False

    idle = Connection("b", "2", send_text, 10)
    idle_writer = idle.start_writer()
    await asyncio.sleep(0)
    idle.close_after_queued(1001, "server shutting down")
    assert idle.close_code == 1001  # nothing to wait for
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(idle_writer, 1)
