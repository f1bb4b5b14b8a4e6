"""The WebSocket wire format, without I/O: parsing client frames, encoding server frames.

Every frame is a JSON text frame `{"type": ..., "data": {...}}`; a client frame may add
`request_id` (a string of at most 64 characters) which the direct reply echoes. The one
exception is the first server frame, `{"type": "connected", "user_id", "connection_id"}`.
`docs/protocol.md` describes every message type.

`ClientMessage.parse` reads the frame by hand: it runs for every frame a client sends, and
checks only the envelope. The fields of a message's `data` are checked by the handler's
`RequestData` model (`request_data.py`), with pydantic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_REQUEST_ID_LENGTH = 64
# Echoed types are cut to this length so an error never reflects a huge string back.
MAX_ECHOED_TYPE_LENGTH = 64

PRESENCE_STATES = ("online", "idle", "dnd", "offline", "invisible")

# Close codes (RFC 6455 section 7.4.1; 4000-4999 are for applications).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_TOKEN_EXPIRED = 4001

# Error codes carried in `{"type": "error", "data": {"code": ...}}`.
ERROR_BAD_REQUEST = "bad_request"
ERROR_FORBIDDEN = "forbidden"
ERROR_CHANNEL_ARCHIVED = "channel_archived"
ERROR_RATE_LIMITED = "rate_limited"
ERROR_INTERNAL = "internal"

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class BadRequest(ValueError):
    """A client frame that cannot be handled; the message says what was wrong.

    `request_type` and `request_id` are what could be read before the fault, so the
    error reply can name the request it answers.
    """

    def __init__(
        self, message: str, *, request_type: str | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.request_type = request_type
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class ClientMessage:
    type: str
    data: dict[str, Any]
    request_id: str | None = None

    @classmethod
    def parse(cls, text: str) -> ClientMessage:
        """Parse one client text frame; raises `BadRequest` naming the first fault."""
        try:
            frame = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"frame is not valid JSON: {exc.msg}") from None
        except RecursionError:
            raise BadRequest("frame is not valid JSON: nested too deeply") from None
        except ValueError:
            # An integer literal longer than Python's int/str conversion limit
            # (sys.get_int_max_str_digits(), 4300 digits by default) is valid JSON that
            # json.loads refuses with a plain ValueError.
            raise BadRequest("frame is not valid JSON: a number is too long") from None
        if not isinstance(frame, dict):
            raise BadRequest("frame must be a JSON object")
        kind = frame.get("type")
        request_type = kind[:MAX_ECHOED_TYPE_LENGTH] if isinstance(kind, str) else None
        request_id = _parse_request_id(frame.get("request_id"), request_type)
        if kind is None:
            raise BadRequest("type is required", request_id=request_id)
        if not isinstance(kind, str) or not kind:
            raise BadRequest("type must be a non-empty string", request_id=request_id)
        data = frame.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise BadRequest(
                "data must be a JSON object", request_type=request_type, request_id=request_id
            )
        return cls(kind, data, request_id)


def _parse_request_id(value: Any, request_type: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_REQUEST_ID_LENGTH:
        raise BadRequest(
            f"request_id must be a string of at most {MAX_REQUEST_ID_LENGTH} characters",
            request_type=request_type,
        )
    return value


def encode(event_type: str, data: dict[str, Any], request_id: str | None = None) -> str:
    """One server frame as text; encode once and hand the same string to every recipient."""
    frame: dict[str, Any] = {"type": event_type, "data": data}
    if request_id is not None:
        frame["request_id"] = request_id
    return _encoder.encode(frame)


class Coalescable(str):
    """An encoded event that may wait up to one batching tick and travel with others.

    Events that many connections get at once and no reply waits for (a peer's presence,
    a participant joining a call) are encoded as this `str`. A connection holds them
    until the tick ends, then writes them as one frame (`encode_batch`); any other frame
    sent to it first writes what it holds, so the order of events never changes. A frame
    that crosses to another node arrives there as a plain `str`: written at once.
    """

    __slots__ = ()


def encode_coalescable(event_type: str, data: dict[str, Any]) -> Coalescable:
    """`encode(event_type, data)` marked as one that may be batched (a broadcast event)."""
    return Coalescable(encode(event_type, data))


BATCH = "batch"
_BATCH_OPEN = '{"type":"batch","data":{"events":['
_BATCH_CLOSE = "]}}"


def encode_batch(events: list[str]) -> str:
    """`{"type": "batch", "data": {"events": [event, ...]}}` of encoded events, in order."""
    return _BATCH_OPEN + ",".join(events) + _BATCH_CLOSE


def frame_type(frame: str) -> str | None:
    """The `type` of an encoded server frame (read by parsing it, never by its text)."""
    try:
        decoded = json.loads(frame)
    except (json.JSONDecodeError, RecursionError):
        return None
    kind = decoded.get("type") if isinstance(decoded, dict) else None
    return kind if isinstance(kind, str) else None


def encode_connected(user_id: str, connection_id: str) -> str:
    return _encoder.encode(
        {"type": "connected", "user_id": user_id, "connection_id": connection_id}
    )


def encode_error(
    code: str,
    message: str,
    *,
    request_type: str | None = None,
    request_id: str | None = None,
) -> str:
    data: dict[str, Any] = {"code": code, "message": message}
    if request_type is not None:
        data["request_type"] = request_type
    return encode("error", data, request_id)
