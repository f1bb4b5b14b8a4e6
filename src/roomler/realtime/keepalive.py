"""Protocol-level keepalive and frame limits, enforced by uvicorn's WebSocket layer.

An ASGI application cannot send Ping frames (ASGI has no such message), so the server
does it: with the options below uvicorn sends a Ping every `ping_interval_secs`, answers
the peer's Pings with Pongs (RFC 6455 section 5.5.2), and fails a connection whose Pong
has not come within `ping_timeout_secs` (default twice the interval: a peer that misses
two pings) with close code 1011. The application sees that as a disconnect and cleans up
(presence, typing, close hooks). Frames larger than `max_frame_bytes` are refused with
close code 1009 (RFC 6455 section 7.4.1).
"""

from __future__ import annotations

from typing import Any

from roomler.config import WsSettings
from roomler.realtime.uvicorn_protocol import RoomlerWebSocketProtocol

# uvicorn's implementation on websockets' sans-I/O core, plus the direct frame write.
UVICORN_WS_IMPL = RoomlerWebSocketProtocol


def uvicorn_websocket_options(ws: WsSettings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config`."""
    return {
        "ws": UVICORN_WS_IMPL,
        "ws_max_size": ws.max_frame_bytes,
        "ws_ping_interval": ws.ping_interval_secs,
        "ws_ping_timeout": ws.ping_timeout_secs,
        "ws_per_message_deflate": ws.per_message_deflate,
    }
