"""The channel between the web process and workers: framing and the asyncio Channel."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from roomler.sfu.channel import (
    MAX_FRAME_SIZE,
    Channel,
    ChannelClosedError,
    Event,
    FrameDecoder,
    Message,
    Request,
    RequestFailedError,
    RequestTimeoutError,
    Response,
    decode_frame,
    encode_frame,
    parse_message,
)

MESSAGES: list[Message] = [
    Request(1, "router.create", {"router_id": "r-1", "media_codecs": [{"mimeType": "audio/opus"}]}),
    Response(1, True, {"rtp_capabilities": {"codecs": [], "headerExtensions": []}}),
    Response(2, False, error="unknown router r-9"),
    Event("transport.dtlsstatechange", "t-1", {"dtls_state": "connected"}),
    Request(3, "worker.dump", {}),
    Event("consumer.producerclose", "c-1", {"text": "ünïcødé ✓"}),
]


def _frame(payload: bytes) -> bytes:
    return struct.pack("!I", len(payload)) + payload


# --- framing -------------------------------------------------------------------------------


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_frame_round_trip(message: Message) -> None:
    frame = encode_frame(message)
    assert struct.unpack("!I", frame[:4])[0] == len(frame) - 4
    assert decode_frame(frame) == message


def test_wire_format_is_the_contracts_json() -> None:
    frame = encode_frame(Response(7, False, error="boom"))
    assert json.loads(frame[4:]) == {"id": 7, "ok": False, "error": "boom"}
    frame = encode_frame(Event("producer.close", "p-1"))
    assert json.loads(frame[4:]) == {"event": "producer.close", "target": "p-1", "data": {}}


def test_decoder_reassembles_a_stream_cut_anywhere() -> None:
    stream = b"".join(encode_frame(message) for message in MESSAGES)
    rng = random.Random(7)
    for _ in range(20):
        decoder = FrameDecoder()
        received: list[Message] = []
        position = 0
        while position < len(stream):
            step = rng.randint(1, 40)
            decoder.feed(stream[position : position + step])
            position += step
            while (message := decoder.next_message()) is not None:
                received.append(message)
        assert received == MESSAGES
        assert decoder.buffered == 0


def test_decoder_waits_for_a_partial_frame() -> None:
    frame = encode_frame(MESSAGES[0])
    decoder = FrameDecoder()
    decoder.feed(frame[:-1])
    assert decoder.next_message() is None
    decoder.feed(frame[-1:])
    assert decoder.next_message() == MESSAGES[0]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b'{"hello": 1}', "not a request, response or event"),
        (b'{"id": "7", "method": "x"}', "channel request.id: .*valid integer, got '7'"),
        (b'{"id": -1, "method": "x"}', "channel request.id: .*greater than or equal to 0"),
        (b'{"id": true, "ok": true}', "channel response.id: .*valid integer, got True"),
        (b'{"id": 1, "method": ""}', "channel request.method: .*at least 1 character"),
        (b'{"id": 1, "method": "x", "data": [1]}', "channel request.data: .*valid dict"),
        (b'{"id": 1, "ok": "yes"}', "channel response.ok: .*valid boolean"),
        (b'{"id": 1, "ok": false}', "channel response: .*needs a non-empty 'error'"),
        (b'{"event": "x", "target": 5}', "channel event.target: .*valid string, got 5"),
    ],
)
def test_garbage_payload_raises_a_precise_value_error(payload: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        decode_frame(_frame(payload))


def test_frame_length_limits() -> None:
    decoder = FrameDecoder(max_frame_size=1024)
    decoder.feed(struct.pack("!I", 1025))
    with pytest.raises(ValueError, match="frame length 1025 exceeds the 1024-byte limit"):
        decoder.next_message()
    with pytest.raises(ValueError, match="empty payload"):
        decode_frame(struct.pack("!I", 0))
    with pytest.raises(ValueError, match="truncated"):
        decode_frame(encode_frame(MESSAGES[0])[:-3])
    with pytest.raises(ValueError, match="trailing data"):
        decode_frame(encode_frame(MESSAGES[0]) + b"\x00")


def test_encoding_rejects_what_cannot_cross_the_channel() -> None:
    with pytest.raises(ValueError, match="not JSON-serializable"):
        encode_frame(Request(1, "x", {"raw": b"bytes"}))
    with pytest.raises(ValueError, match="not JSON-serializable"):
        encode_frame(Request(1, "x", {"nan": float("nan")}))
    big = Request(1, "x", {"blob": "a" * 2000})
    with pytest.raises(ValueError, match="exceeds the 1000-byte frame limit"):
        encode_frame(big, max_frame_size=1000)
    assert len(encode_frame(big)) < MAX_FRAME_SIZE


def test_parse_message_from_objects() -> None:
    assert parse_message({"id": 4, "method": "worker.dump"}) == Request(4, "worker.dump", {})
    assert parse_message({"event": "e", "target": "t"}) == Event("e", "t", {})


# --- asyncio Channel over a socketpair -----------------------------------------------------


async def _pair(**options: Any) -> tuple[Channel, Channel, socket.socket]:
    left, right = socket.socketpair()
    client = await Channel.connect(left, name="worker 42", **options)
    server = await Channel.connect(right, name="parent")
    return client, server, right


@pytest.fixture
async def channels() -> AsyncIterator[tuple[Channel, Channel]]:
    client, server, _ = await _pair()
    client.start()
    server.start()
    yield client, server
    await client.close()
    await server.close()


async def test_request_response_and_error(channels: tuple[Channel, Channel]) -> None:
    client, server = channels
    seen: list[tuple[str, dict[str, Any]]] = []

    async def handler(method: str, data: dict[str, Any]) -> dict[str, Any]:
        seen.append((method, data))
        if method == "router.close":
            raise ValueError(f"unknown router {data['router_id']}")
        if method == "bug":
            raise KeyError("missing")
        return {"echo": data, "method": method}

    server.serve(handler)
    async with asyncio.timeout(5):
        reply = await client.request("router.dump", {"router_id": "r-1"})
        assert reply == {"echo": {"router_id": "r-1"}, "method": "router.dump"}
        with pytest.raises(RequestFailedError, match="router.close failed: unknown router r-7"):
            await client.request("router.close", {"router_id": "r-7"})
        with pytest.raises(RequestFailedError, match="KeyError: 'missing'"):
            await client.request("bug")
        # Concurrent requests each get their own answer.
        replies = await asyncio.gather(*(client.request("n", {"i": i}) for i in range(50)))
    assert [reply["echo"]["i"] for reply in replies] == list(range(50))
    assert seen[0] == ("router.dump", {"router_id": "r-1"})


async def test_request_timeout_then_channel_still_works(
    channels: tuple[Channel, Channel],
) -> None:
    client, server = channels
    release = asyncio.Event()

    async def handler(method: str, data: dict[str, Any]) -> dict[str, Any]:
        if method == "slow":
            await release.wait()
        return {"method": method}

    server.serve(handler)
    async with asyncio.timeout(5):
        with pytest.raises(RequestTimeoutError, match=r"worker 42 did not answer slow .* 0.05 s"):
            await client.request("slow", timeout=0.05)
        release.set()
        # The late answer to "slow" is dropped; the next request gets its own.
        assert await client.request("fast") == {"method": "fast"}


async def test_timeout_error_is_a_timeout_error(channels: tuple[Channel, Channel]) -> None:
    client, server = channels

    async def never(method: str, data: dict[str, Any]) -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    server.serve(never)
    with pytest.raises(TimeoutError):
        await client.request("x", timeout=0.02)


async def test_events_reach_callbacks(channels: tuple[Channel, Channel]) -> None:
    client, server = channels
    received: asyncio.Queue[tuple[str, str, dict[str, Any]]] = asyncio.Queue()

    def broken(event: str, target: str, data: dict[str, Any]) -> None:
        raise RuntimeError("listener bug")

    client.on_event(broken)  # a failing callback does not stop the others
    client.on_event(lambda event, target, data: received.put_nowait((event, target, data)))
    server.emit("transport.dtlsstatechange", "t-1", {"dtls_state": "connected"})
    server.emit("consumer.producerclose", "c-1")
    async with asyncio.timeout(5):
        assert await received.get() == (
            "transport.dtlsstatechange",
            "t-1",
            {"dtls_state": "connected"},
        )
        assert await received.get() == ("consumer.producerclose", "c-1", {})


async def test_handler_returning_non_object_is_an_error(
    channels: tuple[Channel, Channel],
) -> None:
    client, server = channels

    async def handler(method: str, data: dict[str, Any]) -> Any:
        return {"raw": b"x"} if method == "bytes" else [1, 2]

    server.serve(handler)
    async with asyncio.timeout(5):
        with pytest.raises(RequestFailedError, match="returned list, not a JSON object"):
            await client.request("list")
        with pytest.raises(RequestFailedError, match="bad response: .*not JSON-serializable"):
            await client.request("bytes")


async def test_peer_going_away_fails_pending_and_later_requests() -> None:
    client, server, _ = await _pair()
    client.start()
    server.start()
    entered = asyncio.Event()

    async def handler(method: str, data: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        await asyncio.Event().wait()
        return {}

    server.serve(handler)
    async with asyncio.timeout(5):
        pending = asyncio.create_task(client.request("transport.connect", timeout=30))
        await entered.wait()
        await server.close()
        with pytest.raises(ChannelClosedError, match="worker 42 died: peer closed the channel"):
            await pending
        assert client.closed
        assert await client.wait_closed() == "peer closed the channel"
        with pytest.raises(ChannelClosedError, match="worker 42 died"):
            await client.request("anything")
    client.emit("late.event", "x")  # dropped quietly
    await client.close()


async def test_garbage_from_the_peer_is_a_protocol_error() -> None:
    client, server, raw = await _pair()
    client.start()
    async with asyncio.timeout(5):
        pending = asyncio.create_task(client.request("x", timeout=30))
        await asyncio.sleep(0)
        raw.sendall(_frame(b"[not, json"))
        with pytest.raises(ChannelClosedError, match="worker 42 died: protocol error: .*JSON"):
            await pending
    await client.close()
    await server.close()


async def test_owner_can_supply_the_reason_of_a_loss() -> None:
    lost: list[str] = []
    client, server, _ = await _pair(on_lost=lost.append)
    client.start()
    server.start()
    async with asyncio.timeout(5):
        pending = asyncio.create_task(client.request("x", timeout=30))
        await asyncio.sleep(0)
        await server.close()
        while not lost:
            await asyncio.sleep(0.005)
        assert lost == ["peer closed the channel"]
        assert not pending.done()  # waits for the owner's verdict
        client.fail("killed by signal 9 (SIGKILL)")
        with pytest.raises(ChannelClosedError, match=r"worker 42 died: killed by signal 9"):
            await pending
    await client.close()


async def test_closing_our_end_fails_pending_requests() -> None:
    client, server, _ = await _pair()
    client.start()
    server.start()
    server.serve(lambda method, data: asyncio.Event().wait())  # type: ignore[arg-type,return-value]
    pending = asyncio.create_task(client.request("x", timeout=30))
    await asyncio.sleep(0.01)
    await client.close()
    with pytest.raises(ChannelClosedError, match="channel to worker 42 is closed"):
        await pending
    async with asyncio.timeout(5):
        assert await server.wait_closed() == "peer closed the channel"
    await server.close()
