"""The local channel between the web process and an SFU worker process.

A frame is a 4-byte big-endian payload length followed by that many bytes of
UTF-8 JSON holding one message:

- request  ``{"id": int, "method": str, "data": {...}}``
- response ``{"id": int, "ok": true, "data": {...}}`` or
  ``{"id": int, "ok": false, "error": str}``
- event    ``{"event": str, "target": str, "data": {...}}``

The message dataclasses and `FrameDecoder` are sans-I/O; a decoded message's
envelope is checked by pydantic models (`roomler.sfu.validation`). `Channel` is the thin
asyncio adapter: it numbers requests and matches responses to them, dispatches
events, answers requests one at a time (worker side), and fails every pending
request with ``"<name> died: <reason>"`` when the peer goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from pydantic import Field, model_validator

from roomler.sfu.validation import JsonObject as JsonObject
from roomler.sfu.validation import Text, WireModel

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "MAX_FRAME_SIZE",
    "Channel",
    "ChannelClosedError",
    "ChannelError",
    "Event",
    "FrameDecoder",
    "Message",
    "Request",
    "RequestFailedError",
    "RequestTimeoutError",
    "Response",
    "WorkerLink",
    "decode_frame",
    "encode_frame",
    "parse_message",
]

logger = logging.getLogger(__name__)

HEADER = struct.Struct("!I")
# Large enough for a dump of a busy router, small enough that a corrupt length
# cannot make us buffer gigabytes.
MAX_FRAME_SIZE = 8 * 1024 * 1024
DEFAULT_REQUEST_TIMEOUT = 10.0
_READ_CHUNK = 256 * 1024

EventCallback = Callable[[str, str, JsonObject], None]
RequestHandler = Callable[[str, JsonObject], Awaitable[JsonObject | None]]


class WorkerLink(Protocol):
    """What a `Worker` proxy needs of the way to its worker: `Channel` for a local one,
    or a relay through another node (`roomler.cluster.remote_workers`)."""

    def on_event(self, callback: EventCallback) -> None: ...

    async def request(
        self, method: str, data: JsonObject | None = None, *, timeout: float | None = None
    ) -> JsonObject: ...


class ChannelError(RuntimeError):
    """A request over the channel did not produce a result."""


class ChannelClosedError(ChannelError):
    """The channel is closed, or the peer went away (`"worker 123 died: ..."`)."""


class RequestFailedError(ChannelError):
    """The peer answered a request with ``ok: false``."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"{method} failed: {error}")
        self.method = method
        self.error = error


class RequestTimeoutError(ChannelError, TimeoutError):
    """The peer did not answer a request in time."""


@dataclass(frozen=True)
class Request:
    id: int
    method: str
    data: JsonObject = field(default_factory=dict)

    def serialize(self) -> JsonObject:
        return {"id": self.id, "method": self.method, "data": self.data}


@dataclass(frozen=True)
class Response:
    id: int
    ok: bool
    data: JsonObject = field(default_factory=dict)
    error: str | None = None

    def serialize(self) -> JsonObject:
        if self.ok:
            return {"id": self.id, "ok": True, "data": self.data}
        return {"id": self.id, "ok": False, "error": self.error or "unknown error"}


@dataclass(frozen=True)
class Event:
    event: str
    target: str
    data: JsonObject = field(default_factory=dict)

    def serialize(self) -> JsonObject:
        return {"event": self.event, "target": self.target, "data": self.data}


Message = Request | Response | Event


class _RequestEnvelope(WireModel):
    id: Annotated[int, Field(ge=0)]
    method: Text
    data: JsonObject = {}


class _ResponseEnvelope(WireModel):
    id: Annotated[int, Field(ge=0)]
    ok: bool
    data: JsonObject = {}
    error: Text | None = None

    @model_validator(mode="after")
    def _failure_says_why(self) -> _ResponseEnvelope:
        if not self.ok and self.error is None:
            raise ValueError("a failed response needs a non-empty 'error' string")
        return self


class _EventEnvelope(WireModel):
    event: Text
    target: str = ""
    data: JsonObject = {}


def parse_message(obj: object) -> Message:
    """Turn one decoded JSON value into a message; `ValueError` says what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"channel message must be a JSON object, got {type(obj).__name__}")
    if "method" in obj and "id" in obj:
        request = _RequestEnvelope.parse(obj, "channel request")
        return Request(request.id, request.method, request.data)
    if "ok" in obj and "id" in obj:
        response = _ResponseEnvelope.parse(obj, "channel response")
        if response.ok:
            return Response(response.id, True, response.data)
        return Response(response.id, False, error=response.error)
    if "event" in obj:
        event = _EventEnvelope.parse(obj, "channel event")
        return Event(event.event, event.target, event.data)
    keys = sorted(str(key) for key in obj)
    raise ValueError(f"channel message is not a request, response or event (keys: {keys})")


def encode_frame(message: Message, max_frame_size: int = MAX_FRAME_SIZE) -> bytes:
    """Serialize a message into one length-prefixed frame."""
    try:
        text = json.dumps(message.serialize(), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"channel message is not JSON-serializable: {exc}") from exc
    payload = text.encode()
    if len(payload) > max_frame_size:
        raise ValueError(
            f"channel message of {len(payload)} bytes exceeds the {max_frame_size}-byte frame limit"
        )
    return HEADER.pack(len(payload)) + payload


def _decode_payload(payload: bytes) -> Message:
    try:
        obj = json.loads(payload.decode())
    except UnicodeDecodeError as exc:
        raise ValueError(f"channel frame is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"channel frame is not valid JSON: {exc.msg} at position {exc.pos}"
        ) from None
    return parse_message(obj)


def decode_frame(frame: bytes, max_frame_size: int = MAX_FRAME_SIZE) -> Message:
    """Parse exactly one complete frame (header included)."""
    decoder = FrameDecoder(max_frame_size)
    decoder.feed(frame)
    message = decoder.next_message()
    if message is None:
        raise ValueError(f"channel frame is truncated: {len(frame)} bytes")
    if decoder.buffered:
        raise ValueError(f"channel frame has {decoder.buffered} bytes of trailing data")
    return message


class FrameDecoder:
    """Reassembles messages from a byte stream cut at arbitrary points.

    After a `ValueError` the stream position is lost; the caller must drop the
    connection.
    """

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self._max_frame_size = max_frame_size
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_message(self) -> Message | None:
        """The next complete message, or None until more bytes arrive."""
        if len(self._buffer) < HEADER.size:
            return None
        (length,) = HEADER.unpack_from(self._buffer)
        if length == 0:
            raise ValueError("channel frame has an empty payload")
        if length > self._max_frame_size:
            raise ValueError(
                f"channel frame length {length} exceeds the {self._max_frame_size}-byte limit"
            )
        end = HEADER.size + length
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[HEADER.size : end])
        del self._buffer[:end]
        return _decode_payload(payload)


def _describe_exception(exc: BaseException) -> str:
    # ValueError is how bad input is reported across the project: its message
    # is meant for the caller. Anything else is a bug; name its type.
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Channel:
    """Requests, responses and events over one stream connection.

    `name` names the peer in errors (`"worker 4242"`). When the peer goes away
    the reason is handed to `on_lost` if given, so the owner can find a better
    one (the exit status) before calling `fail()`; otherwise `fail()` is called
    at once (`protocol_error` tells a peer that sent garbage, and is still
    running, from one that hung up). Incoming requests are answered one at a
    time, in order.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        name: str = "peer",
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_frame_size: int = MAX_FRAME_SIZE,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.request_timeout = request_timeout
        self._reader = reader
        self._writer = writer
        self._max_frame_size = max_frame_size
        self._decoder = FrameDecoder(max_frame_size)
        self._on_lost = on_lost
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[JsonObject]]] = {}
        self._event_callbacks: list[EventCallback] = []
        self._handler: RequestHandler | None = None
        self._incoming: asyncio.Queue[Request] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._error: ChannelClosedError | None = None
        self._lost_reason: str | None = None
        self.protocol_error: str | None = None
        self._finished = asyncio.get_running_loop().create_future()

    @classmethod
    async def connect(cls, sock: socket.socket, **options: Any) -> Channel:
        """A channel over a connected Unix stream socket (one end of a socketpair)."""
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=_READ_CHUNK)
        return cls(reader, writer, **options)

    @property
    def closed(self) -> bool:
        return self._error is not None

    def on_event(self, callback: EventCallback) -> None:
        """Call `callback(event, target, data)` for each event the peer sends."""
        self._event_callbacks.append(callback)

    def serve(self, handler: RequestHandler) -> None:
        """Answer the peer's requests with `await handler(method, data)`."""
        self._handler = handler

    def start(self) -> None:
        if self._tasks:
            raise RuntimeError(f"Channel({self.name}) is already started")
        self._tasks.append(asyncio.create_task(self._read_loop(), name=f"{self.name} reader"))
        self._tasks.append(asyncio.create_task(self._serve_loop(), name=f"{self.name} server"))

    async def request(
        self, method: str, data: JsonObject | None = None, *, timeout: float | None = None
    ) -> JsonObject:
        """Send a request and wait for its response data."""
        if self._error is not None:
            raise ChannelClosedError(str(self._error))
        request_id = next(self._ids)
        frame = encode_frame(Request(request_id, method, data or {}), self._max_frame_size)
        future: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (method, future)
        limit = self.request_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                # Once the peer is lost, `fail()` fails `future` for us.
                if self._lost_reason is None:
                    self._writer.write(frame)
                    with contextlib.suppress(ConnectionError):
                        await self._writer.drain()
                return await future
        except TimeoutError:
            raise RequestTimeoutError(
                f"{self.name} did not answer {method} (request {request_id}) within {limit:g} s"
            ) from None
        finally:
            self._pending.pop(request_id, None)

    def emit(self, event: str, target: str, data: JsonObject | None = None) -> None:
        """Send an event; dropped (with a debug log) once the channel is closed."""
        frame = encode_frame(Event(event, target, data or {}), self._max_frame_size)
        if self._error is not None or self._lost_reason is not None:
            logger.debug("Channel(%s) dropped event %s: channel closed", self.name, event)
            return
        self._writer.write(frame)

    def fail(self, reason: str) -> None:
        """The peer is gone: fail pending and future requests with `"<name> died: <reason>"`."""
        self._shutdown(ChannelClosedError(f"{self.name} died: {reason}"), reason)

    async def close(self) -> None:
        """Close our end; pending requests fail with a "channel closed" error."""
        self._shutdown(ChannelClosedError(f"channel to {self.name} is closed"), "closed locally")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(1.0):
                await self._writer.wait_closed()

    async def wait_closed(self) -> str:
        """Wait until the channel is finished; returns why ("peer closed the channel", ...)."""
        return await asyncio.shield(self._finished)

    def _shutdown(self, error: ChannelClosedError, reason: str) -> None:
        if self._error is not None:
            return
        self._error = error
        pending, self._pending = self._pending, {}
        for _method, future in pending.values():
            if not future.done():
                future.set_exception(ChannelClosedError(str(error)))
        self._writer.close()
        if not self._finished.done():
            self._finished.set_result(reason)

    async def _read_loop(self) -> None:
        try:
            reason = await self._read_until_lost()
        except asyncio.CancelledError:
            return
        logger.debug("Channel(%s) lost: %s", self.name, reason)
        if self._error is not None:
            return
        self._lost_reason = reason
        if self._on_lost is not None:
            self._on_lost(reason)
        else:
            self.fail(reason)

    async def _read_until_lost(self) -> str:
        while True:
            try:
                data = await self._reader.read(_READ_CHUNK)
            except ConnectionResetError:
                # A peer that exits with our data unread resets the connection.
                return "peer closed the channel"
            except ConnectionError as exc:
                return f"channel connection lost ({exc})"
            if not data:
                if self._decoder.buffered:
                    return f"peer closed the channel mid-frame ({self._decoder.buffered} bytes)"
                return "peer closed the channel"
            self._decoder.feed(data)
            try:
                while (message := self._decoder.next_message()) is not None:
                    self._dispatch(message)
            except ValueError as exc:
                self.protocol_error = str(exc)
                return f"protocol error: {exc}"

    def _dispatch(self, message: Message) -> None:
        if isinstance(message, Response):
            self._resolve(message)
        elif isinstance(message, Event):
            self._deliver(message)
        else:
            self._incoming.put_nowait(message)

    def _resolve(self, response: Response) -> None:
        entry = self._pending.pop(response.id, None)
        if entry is None or entry[1].done():
            # Usually the answer to a request that already timed out.
            logger.debug("Channel(%s) ignored response to request %d", self.name, response.id)
            return
        method, future = entry
        if response.ok:
            future.set_result(response.data)
        else:
            future.set_exception(RequestFailedError(method, response.error or "unknown error"))

    def _deliver(self, event: Event) -> None:
        for callback in list(self._event_callbacks):
            try:
                callback(event.event, event.target, event.data)
            except Exception:
                logger.exception("Channel(%s) event callback failed for %s", self.name, event.event)

    async def _serve_loop(self) -> None:
        while True:
            request = await self._incoming.get()
            response = await self._answer(request)
            self._send_response(response)

    async def _answer(self, request: Request) -> Response:
        if self._handler is None:
            return Response(request.id, False, error=f"{request.method}: no handler for requests")
        try:
            result = await self._handler(request.method, request.data)
        except Exception as exc:
            if not isinstance(exc, ValueError):
                logger.exception("Channel(%s) request %s failed", self.name, request.method)
            return Response(request.id, False, error=_describe_exception(exc))
        if result is None:
            result = {}
        if not isinstance(result, dict):
            error = f"{request.method} returned {type(result).__name__}, not a JSON object"
            return Response(request.id, False, error=error)
        return Response(request.id, True, result)

    def _send_response(self, response: Response) -> None:
        if self._error is not None or self._lost_reason is not None:
            return
        try:
            frame = encode_frame(response, self._max_frame_size)
        except ValueError as exc:
            frame = encode_frame(Response(response.id, False, error=f"bad response: {exc}"))
        self._writer.write(frame)
