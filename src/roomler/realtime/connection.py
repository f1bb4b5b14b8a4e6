"""One accepted WebSocket: a bounded outgoing queue drained by a writer task.

`send()` never waits: it appends to the queue, and a writer task writes frames to the
socket in order. A peer that stops reading fills its queue; the next `send()` then
requests a close with 1013 instead of growing memory or stalling the broadcaster.

When the server offers a direct write of ready-made frames (realtime/uvicorn_protocol.py) and
no writer is busy, `send()` writes the frame at once instead: no task wake-up, no ASGI
call, and a broadcast's frame is built once for all recipients.

The writer task exists only while frames wait in the queue (a peer whose socket buffer is
full, or no direct write): it is started by the `send()` that queues and ends when the
queue is empty. An idle connection holds no task of its own, which is ~1 KB less per
connection and fewer objects for the garbage collector (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from roomler.realtime.counters import WsCounters
from roomler.realtime.uvicorn_protocol import TextFrames, WriteFrame
from roomler.realtime.wire import CLOSE_TRY_AGAIN_LATER, Coalescable, encode_batch

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


class Batcher:
    """Ends the batching tick of a node's connections (`ROOMLER__WS__BATCH_MS`).

    The first coalescable event held by any connection starts the tick; when it ends,
    every connection holding events writes them, one frame each (`Connection.write_held`).
    An event waits at most one tick; a connection that got nothing costs nothing.
    """

    __slots__ = ("tick_secs", "_holding", "_timer")

    def __init__(self, tick_secs: float) -> None:
        self.tick_secs = tick_secs
        self._holding: list[Connection] = []
        self._timer: asyncio.TimerHandle | None = None

    def hold(self, connection: Connection) -> None:
        """`connection` holds events now: it writes them when the tick ends."""
        self._holding.append(connection)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.tick_secs, self.flush)

    def flush(self) -> None:
        self._timer = None
        holding, self._holding = self._holding, []
        batches: dict[tuple[str, ...], str] = {}
        for connection in holding:
            connection.write_held(batches)


class Connection:
    """Implements `WsSender` for one WebSocket of `user_id`."""

    __slots__ = (
        "user_id",
        "connection_id",
        "max_queued",
        "close_code",
        "close_reason",
        "close_hooks",
        "counters",
        "_send_text",
        "_write_frame",
        "_queue",
        "_writer",
        "_close_when_written",
        "_done",
        "_batcher",
        "_held",
    )

    def __init__(
        self,
        user_id: str,
        connection_id: str,
        send_text: SendText,
        max_queued: int,
        write_frame: WriteFrame | None = None,
        counters: WsCounters | None = None,
        batcher: Batcher | None = None,
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
        # The task writing queued frames, while there are some.
        self._writer: asyncio.Task[None] | None = None
        # A close asked for once the queue is written (`close_after_queued`).
        self._close_when_written: tuple[int, str] | None = None
        # From `start_writer()`: cancelled on close, the writer's error if it failed.
        self._done: asyncio.Future[None] | None = None
        # The node's counters (plain integers: one addition per frame, see counters.py).
        self.counters = counters or WsCounters()
        # Coalescable events wait here for the batcher's tick (None: nothing held).
        self._batcher = batcher
        self._held: list[str] | None = None

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
        held = self._held
        if type(frame) is Coalescable and self._batcher is not None:
            # Held until the batcher's tick ends (or another frame comes first).
            self.counters.deliveries += 1
            if held is None:
                self._held = [frame]
                self._batcher.hold(self)
            elif len(held) < self.max_queued:
                held.append(frame)
            else:
                self._write_held()
                self._held = [frame]
                self._batcher.hold(self)
            return True
        if held is not None:
            self._write_held()  # what was held goes first: frames keep their order
            if self.close_code is not None:
                return False
        self.counters.deliveries += 1
        return self._write(frame)

    def write_held(self, batches: dict[tuple[str, ...], str]) -> None:
        """Write the events held for this connection, several as one `batch` frame.

        `batches` maps events to the batch frame already built for them in this tick, so
        the connections that got the same events share one string (and its framing).
        """
        held = self._held
        if held is None or len(held) == 1:
            self._write_held()
            return
        self._held = None
        key = tuple(held)
        text = batches.get(key)
        if text is None:
            text = batches[key] = encode_batch(held)
        self._write(text)

    def _write_held(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._write(held[0] if len(held) == 1 else encode_batch(held))

    def _write(self, frame: str) -> bool:
        if len(self._queue) >= self.max_queued:
            logger.info("%r stopped reading; its send queue is full", self)
            self.close(CLOSE_TRY_AGAIN_LATER, "send queue full")
            return False
        counters = self.counters
        # Written only while `start_writer()`'s future is pending: not before it, and not
        # after a write failed (the read loop is being stopped; the frame just waits).
        done = self._done
        writable = self._writer is None and done is not None and not done.done()
        # Directly only with nothing queued and no writer busy: frames keep their order.
        if writable and self._write_frame is not None and self._write_frame(_frames.wire(frame)):
            counters.frames_out += 1
            return True
        self._queue.append(frame)
        if writable:
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        return True

    def close(self, code: int, reason: str = "") -> None:
        """Ask for the connection to be closed; the first request's code wins."""
        if self.close_code is not None:
            return
        self.close_code = code
        self.close_reason = reason
        self._queue.clear()
        self._held = None
        # The writer may be stuck in a send to a peer that stopped reading: stop it there.
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
        if self._done is not None and not self._done.done():
            self._done.cancel()

    def close_after_queued(self, code: int, reason: str = "") -> None:
        """Close once the frames queued now have been written (a server shutdown: the
        last events, `media:room_closed` among them, still reach the client). A peer that
        stopped reading is closed by `close` when the shutdown's time runs out."""
        if self.close_code is not None:
            return
        self._write_held()
        if not self._queue and self._writer is None:
            self.close(code, reason)
            return
        # The writer closes when the queue is empty (or, not started yet, once it is).
        self._close_when_written = (code, reason)

    def on_close(self, hook: CloseHook) -> None:
        """Run `hook(connection)` once when the connection has gone (media cleanup, ...)."""
        self.close_hooks.append(hook)

    def start_writer(self) -> asyncio.Future[None]:
        """Write queued frames from now on (until then they only queue).

        Returns a future that is cancelled when a close is requested, done when the writer
        closed after the queued frames (`close_after_queued`), and fails with the writer's
        error if a write to the socket fails: the connection is over in every case.
        """
        if self._done is not None:
            raise RuntimeError(f"{self!r} already has a writer")
        self._done = done = asyncio.get_running_loop().create_future()
        if self.close_code is not None:
            done.cancel()
        elif self._queue:
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        return done

    async def _write_loop(self) -> None:
        """Write queued frames in order, then end; a failed write ends the connection."""
        queue = self._queue
        try:
            while queue and self.close_code is None:
                await self._send_text(queue.popleft())
                self.counters.frames_out += 1
            if self.close_code is None and self._close_when_written is not None:
                done = self._done
                if done is not None and not done.done():
                    done.set_result(None)  # ended as asked, after the queue: not cancelled
                self.close(*self._close_when_written)
        except Exception as exc:
            done = self._done
            if done is not None and not done.done():
                done.set_exception(exc)
        finally:
            self._writer = None
