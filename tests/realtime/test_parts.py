"""The parts on their own: wire format, storage, dispatcher, rate limiter, queue, origins."""

from __future__ import annotations

import asyncio
import json

import pytest

from roomler.realtime.connection import Connection
from roomler.realtime.dispatcher import LocalDispatcher
from roomler.realtime.handshake import (
    HandshakeRejected,
    allowed_origins,
    handshake_token,
    normalize_origin,
)
from roomler.realtime.protocol import BadRequest, ClientMessage, encode, encode_error, frame_type
from roomler.realtime.ratelimit import MessageRateLimiter, Verdict
from roomler.realtime.storage import WsStorage

# --- wire format -----------------------------------------------------------------------------


def test_parse_reads_type_data_and_request_id() -> None:
    message = ClientMessage.parse(
        '{"type":"typing:start","data":{"channel_id":"x"},"request_id":"7"}'
    )
    assert message == ClientMessage("typing:start", {"channel_id": "x"}, "7")
    assert ClientMessage.parse('{"type":"ping"}') == ClientMessage("ping", {}, None)
    assert ClientMessage.parse('{"type":"ping","data":null}').data == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "frame is not valid JSON: Expecting value"),
        ("{", "frame is not valid JSON"),
        ("[" * 100000 + "]" * 100000, "frame is not valid JSON: nested too deeply"),
        ("null", "frame must be a JSON object"),
        ("{}", "type is required"),
        ('{"type": null}', "type is required"),
        ('{"type": ["ping"]}', "type must be a non-empty string"),
        ('{"type": "ping", "data": "x"}', "data must be a JSON object"),
        ('{"type": "ping", "request_id": ""}', None),
        ('{"type": "ping", "request_id": {"a": 1}}', "request_id must be a string of at most 64"),
    ],
)
def test_parse_rejects_bad_frames_precisely(text: str, message: str | None) -> None:
    if message is None:
        assert ClientMessage.parse(text).request_id == ""
        return
    with pytest.raises(BadRequest) as caught:
        ClientMessage.parse(text)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)


def test_bad_request_keeps_what_could_be_read() -> None:
    with pytest.raises(BadRequest) as caught:
        ClientMessage.parse('{"type": "media:join", "data": 5, "request_id": "r"}')
    assert (caught.value.request_type, caught.value.request_id) == ("media:join", "r")


def test_encode_is_compact_json_and_echoes_request_ids() -> None:
    assert encode("pong", {}) == '{"type":"pong","data":{}}'
    assert json.loads(encode("pong", {}, "q")) == {"type": "pong", "data": {}, "request_id": "q"}
    assert json.loads(encode("x", {"text": "héllo"})) == {"type": "x", "data": {"text": "héllo"}}
    error = json.loads(encode_error("bad_request", "no", request_type="ping"))
    assert error == {
        "type": "error",
        "data": {"code": "bad_request", "message": "no", "request_type": "ping"},
    }


# --- storage and dispatcher ------------------------------------------------------------------


async def _nowhere(_frame: str) -> None:
    raise AssertionError("nothing is written in these tests")


def conn(user_id: str, connection_id: str, limit: int = 8) -> Connection:
    return Connection(user_id, connection_id, _nowhere, limit)


def test_storage_indexes_by_user_and_by_connection() -> None:
    storage = WsStorage()
    a1, a2, b1 = conn("a", "1"), conn("a", "2"), conn("b", "3")
    for c in (a1, a2, b1):
        storage.add(c.user_id, c.connection_id, c)
    assert storage.get_senders("a") == (a1, a2)
    assert storage.get_sender_by_connection("3") is b1
    assert sorted(storage.all_user_ids()) == ["a", "b"]
    assert storage.connection_count() == 3
    with pytest.raises(ValueError, match="already registered"):
        storage.add("a", "1", a1)


def test_storage_removes_by_identity_only() -> None:
    storage = WsStorage()
    a1, a2 = conn("a", "1"), conn("a", "2")
    storage.add("a", "1", a1)
    storage.add("a", "2", a2)
    impostor = conn("a", "1")
    assert storage.remove("a", "1", impostor) is False
    assert storage.get_senders("a") == (a1, a2)
    assert storage.remove("a", "1", a1) is True
    assert storage.remove("a", "1", a1) is False
    assert storage.get_senders("a") == (a2,)
    assert storage.remove("a", "2", a2) is True
    assert storage.all_user_ids() == [] and storage.connection_count() == 0
    assert storage.get_senders("a") == ()


class Recorder:
    """A `WsSender` that keeps what it was given."""

    def __init__(self, user_id: str, connection_id: str) -> None:
        self.user_id = user_id
        self.connection_id = connection_id
        self.frames: list[str] = []

    def send(self, frame: str) -> bool:
        self.frames.append(frame)
        return True


async def test_broadcast_shares_one_frame_and_applies_exclusions() -> None:
    storage = WsStorage()
    senders = [Recorder("a", "a1"), Recorder("a", "a2"), Recorder("b", "b1"), Recorder("c", "c1")]
    for s in senders:
        storage.add(s.user_id, s.connection_id, s)
    dispatcher = LocalDispatcher(storage)
    frame = encode("x", {})

    def received() -> list[int]:
        counts = [len(s.frames) for s in senders]
        for s in senders:
            s.frames.clear()
        return counts

    assert await dispatcher.broadcast(["a", "b", "a", "nobody"], frame) == 3
    assert all(f is frame for s in senders for f in s.frames)  # the same object: encoded once
    assert received() == [1, 1, 1, 0]
    await dispatcher.broadcast(["a", "b", "c"], frame, exclude_user="a")
    assert received() == [0, 0, 1, 1]
    await dispatcher.broadcast(["a", "b", "c"], frame, exclude_user="a", exclude_connection="a2")
    assert received() == [1, 0, 1, 1]
    # Another user's connection id does not narrow the sender's exclusion.
    await dispatcher.broadcast(["a", "b", "c"], frame, exclude_user="a", exclude_connection="b1")
    assert received() == [0, 0, 1, 1]
    await dispatcher.broadcast(["a", "b", "c"], frame, exclude_connection="c1")
    assert received() == [1, 1, 1, 0]
    assert await dispatcher.send_to_user("a", frame) == 2
    assert await dispatcher.send_to_connection("b1", frame) is True
    assert await dispatcher.send_to_connection("gone", frame) is False
    assert received() == [1, 1, 1, 0]


# --- outgoing queue --------------------------------------------------------------------------


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


# --- rate limiter ----------------------------------------------------------------------------


def test_bucket_allows_the_burst_then_the_rate() -> None:
    limiter = MessageRateLimiter(rate=50, burst=100, flood_close_secs=10, now=0.0)
    assert [limiter.check(0.0) for _ in range(100)] == [Verdict.ALLOW] * 100
    assert limiter.check(0.0) is Verdict.LIMIT
    assert limiter.check(0.02) is Verdict.ALLOW  # one token per 20 ms
    assert limiter.check(0.02) is Verdict.LIMIT
    assert [limiter.check(10.0) for _ in range(100)] == [Verdict.ALLOW] * 100  # refilled


def test_ten_seconds_of_flooding_closes() -> None:
    limiter = MessageRateLimiter(rate=50, burst=100, flood_close_secs=10, now=0.0)
    now = 0.0
    verdicts = []
    while now < 12.0:  # 200 messages a second
        verdicts.append((now, limiter.check(now)))
        now = round(now + 0.005, 3)
    first_close = next(t for t, v in verdicts if v is Verdict.CLOSE)
    first_limit = next(t for t, v in verdicts if v is Verdict.LIMIT)
    assert first_limit == pytest.approx(0.665, abs=0.01)
    assert first_close == pytest.approx(first_limit + 10, abs=0.01)


def test_a_quiet_second_ends_the_flood() -> None:
    def verdicts(times: list[float]) -> list[Verdict]:
        limiter = MessageRateLimiter(rate=0.001, burst=1, flood_close_secs=3, now=0.0)
        assert limiter.check(0.0) is Verdict.ALLOW  # every later message is limited
        return [limiter.check(t) for t in times]

    # Limited messages at most 1 s apart form one flood, closed after 3 s.
    assert verdicts([0.5, 1.4, 2.3, 3.2, 3.6]) == [Verdict.LIMIT] * 4 + [Verdict.CLOSE]
    # A gap of more than a second starts a new flood at 2.5.
    assert verdicts([0.5, 1.4, 2.5, 3.4, 4.3, 5.2, 5.4]) == [Verdict.LIMIT] * 7


def test_limiter_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        MessageRateLimiter(rate=0, burst=1, flood_close_secs=1, now=0)


# --- handshake -------------------------------------------------------------------------------


def test_origins_are_normalized() -> None:
    assert normalize_origin("HTTP://Example.COM:80") == "http://example.com"
    assert normalize_origin("https://example.com:8443/") == "https://example.com:8443"
    assert normalize_origin("http://[::1]:3000") == "http://[::1]:3000"
    for bad in ("null", "", "ftp://x", "http://", "http://x:99999"):
        assert normalize_origin(bad) is None


def test_allowed_origins_include_our_own_public_and_cors() -> None:
    allowed = allowed_origins(
        "wss", "chat.example:443", "https://public.example/app", ["http://a.b"]
    )
    assert allowed == {"https://chat.example", "https://public.example", "http://a.b"}


def test_token_parameter_then_cookie_with_origin() -> None:
    allowed = frozenset({"http://ok.example"})
    assert handshake_token({"token": "t"}, {"access_token": "c"}, None, allowed) == "t"
    assert handshake_token({}, {"access_token": "c"}, "http://ok.example", allowed) == "c"
    cases = [
        ({"token": ""}, {}, None, 401),
        ({}, {}, "http://ok.example", 401),
        ({}, {"access_token": "c"}, None, 403),
        ({}, {"access_token": "c"}, "http://evil.example", 403),
    ]
    for query, cookies, origin, status in cases:
        with pytest.raises(HandshakeRejected) as caught:
            handshake_token(query, cookies, origin, allowed)
        assert caught.value.status == status


def test_frame_type_reads_the_type_whatever_the_key_order() -> None:
    assert frame_type(encode("media:room_closed", {"conference_id": "x"})) == "media:room_closed"
    assert frame_type('{"data":{},"type":"media:room_closed"}') == "media:room_closed"
    assert frame_type('{"data":{"type":"media:room_closed"},"type":"pong"}') == "pong"
    assert frame_type("not json") is None
    assert frame_type('["media:room_closed"]') is None
    assert frame_type('{"type":7}') is None
