"""One accepted WebSocket: a bounded outgoing queue drained by its own writer task.

`send()` never waits: it appends to the queue, and the writer task writes frames to the
socket in order. A peer that stops reading fills its queue; the next `send()` then
requests a close with 1013 instead of growing memory or stalling the broadcaster.

When the server offers a direct write of ready-made frames (realtime/uvicorn_protocol.py) and
the writer is idle with nothing queued, `send()` writes the frame at once instead: no
task wake-up, no ASGI call, and a broadcast's frame is built once for all recipients.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from roomler.realtime.counters import WsCounters
from roomler.realtime.uvicorn_protocol import TextFrames, WriteFrame
from roomler.realtime.wire import CLOSE_TRY_AGAIN_LATER

logger = logging.getLogger(__name__)

SendText = Callable[[str], Awaitable[None]]
CloseHook = Callable[["Peer"], Awaitable[None]]


class Peer(Protocol):
    """A client connection as handlers and cleanup hooks see it.

    `Connection` (one WebSocket here) is one; the cluster's stand-in for a connection
    held by another node (`roomler.cluster.conference.RemoteConnection`) is another.
    """

    user_id: str
    connection_id: str
    close_hooks: list[CloseHook]

    @property
    def closing(self) -> bool: ...

    def send(self, frame: str) -> bool:
        """Queue `frame` without waiting; False when the connection is closing or full."""
        ...

    def close(self, code: int, reason: str = "") -> None:
        """Ask for the connection to be closed; the first request's code wins."""
        ...

    def on_close(self, hook: CloseHook) -> None:
        """Run `hook(peer)` once when the connection has gone."""
        ...


# Shared by every connection of the process (one event loop): see TextFrames.
_frames = TextFrames()


class Connection:
    """Implements `WsSender` for one WebSocket of `user_id`."""

    def __init__(
        self,
        user_id: str,
        connection_id: str,
        send_text: SendText,
        max_queued: int,
        write_frame: WriteFrame | None = None,
        counters: WsCounters | None = None,
    ) -> None:
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1")
        self.user_id = user_id
        self.connection_id = connection_id
        self.max_queued = max_queued
        self.close_code: int | None = None
        self.close_reason = ""
        self.close_hooks: list[CloseHook] = []
        self._send_text = send_text
        self._write_frame = write_frame
        self._queue: deque[str] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        # A close asked for once the queue is written (`close_after_queued`).
        self._close_when_written: tuple[int, str] | None = None
        # The node's counters (plain integers: one addition per frame, see counters.py).
        self.counters = counters or WsCounters()

    def __repr__(self) -> str:
        return f"Connection({self.connection_id}, user={self.user_id})"

    @property
    def closing(self) -> bool:
        return self.close_code is not None

    def queued(self) -> int:
        return len(self._queue)

    def send(self, frame: str) -> bool:
        if self.close_code is not None:
            return False
        if len(self._queue) >= self.max_queued:
            logger.info("%r stopped reading; its send queue is full", self)
            self.close(CLOSE_TRY_AGAIN_LATER, "send queue full")
            return False
        # The writer waits on `_wakeup` only with nothing queued and nothing in flight.
        wakeup = self._wakeup
        counters = self.counters
        counters.deliveries += 1
        if (
            self._write_frame is not None
            and wakeup is not None
            and not wakeup.done()
            and self._write_frame(_frames.wire(frame))
        ):
            counters.frames_out += 1
            return True
        self._queue.append(frame)
        self._wake()
        return True

    def close(self, code: int, reason: str = "") -> None:
        """Ask for the connection to be closed; the first request's code wins."""
        if self.close_code is not None:
            return
        self.close_code = code
        self.close_reason = reason
        self._queue.clear()
        # The writer may be stuck in a send to a peer that stopped reading: stop it there.
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()

    def close_after_queued(self, code: int, reason: str = "") -> None:
        """Close once the frames queued now have been written (a server shutdown: the
        last events, `media:room_closed` among them, still reach the client). A peer that
        stopped reading is closed by `close` when the shutdown's time runs out."""
        if self.close_code is not None:
            return
        if not self._queue and self._writer_idle():
            self.close(code, reason)
            return
        self._close_when_written = (code, reason)
        self._wake()

    def _writer_idle(self) -> bool:
        return self._writer is None or (self._wakeup is not None and not self._wakeup.done())

    def on_close(self, hook: CloseHook) -> None:
        """Run `hook(connection)` once when the connection has gone (media cleanup, ...)."""
        self.close_hooks.append(hook)

    def start_writer(self) -> asyncio.Task[None]:
        """Start the task that writes queued frames; it ends when a close is requested."""
        if self._writer is not None:
            raise RuntimeError(f"{self!r} already has a writer")
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        if self.close_code is not None:
            self._writer.cancel()
        return self._writer

    async def _write_loop(self) -> None:
        """Write queued frames in order; raises if the socket fails."""
        queue = self._queue
        loop = asyncio.get_running_loop()
        while self.close_code is None:
            if queue:
                await self._send_text(queue.popleft())
                self.counters.frames_out += 1
                continue
            if self._close_when_written is not None:
                self.close(*self._close_when_written)
                return
            self._wakeup = loop.create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
