"""uvicorn's sans-I/O WebSocket protocol, plus a synchronous write of ready-made frames.

A broadcast queues one encoded event on hundreds of connections. Through ASGI, each of
them then costs a task wake-up of its writer, Starlette's and uvicorn's `send` chain and
a fresh frame built by websockets: about 20 µs per recipient (docs/performance.md). A
server-to-client text frame is the same bytes for every recipient (RFC 6455 §5.1: the
server does not mask, and without permessage-deflate nothing else differs), so it can
be framed once and written to each idle connection's transport directly.

`RoomlerWebSocketProtocol` offers that as an ASGI scope extension, `roomler.write_frame`:
`scope["extensions"]["roomler.write_frame"]["write"](wire)` writes one complete frame
now and returns True, or returns False when it may not (a close was sent, the transport
is closing, or its buffer is over its high-water mark); the caller then sends through
ASGI as usual, which waits for the buffer. `Connection` (realtime/connection.py) writes
directly only while its own queue is empty and its writer idle, so frames keep their
order. A connection that negotiated permessage-deflate, or one under another ASGI
server, has no extension and everything goes through ASGI.
"""

from __future__ import annotations

from collections.abc import Callable

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State

EXTENSION = "roomler.write_frame"

WriteFrame = Callable[[bytes], bool]


class RoomlerWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # A compressing connection frames each message itself: it gets no direct write.
        if self.response.status_code == 101 and not self.conn.extensions:
            # The application's task is created but has not run: it sees the extension.
            self.scope["extensions"][EXTENSION] = {"write": self.write_frame}

    def write_frame(self, wire: bytes) -> bool:
        """Write one whole frame from `TextFrames.wire` now, if the connection may take it.

        Not once a close was sent (websockets' state is then CLOSING) or the transport is
        going, nor while its buffer is over the high-water mark (uvicorn's `writable`).
        """
        if (
            self.conn.state is not State.OPEN
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(wire)
        return True


class TextFrames:
    """Frames text messages for `write_frame`, once for all the recipients of a broadcast.

    A broadcast hands the same `str` object to each recipient in turn, so remembering
    the last one framed makes every recipient after the first free.
    """

    def __init__(self) -> None:
        self._text: str | None = None
        self._wire = b""

    def wire(self, text: str) -> bytes:
        if text is not self._text:
            self._wire = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
            self._text = text
        return self._wire
