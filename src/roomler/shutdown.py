"""SIGTERM (or Ctrl-C) under `roomler serve`: drain the node, then stop, in bounded time.

uvicorn alone, on SIGTERM, closes its listening sockets, closes every WebSocket with
1012, waits for the requests in flight (without limit by default) and then runs the
application's lifespan shutdown. `GracefulServer` puts the application's drain first
(`RoomlerApp.drain`: not ready, no new WebSocket, conferences closed with
`media:room_closed {reason: "server_shutdown"}`, WebSockets closed with 1001 once their
queued frames are out) while the listening socket still serves requests, then lets
uvicorn do the rest with what is left of `ROOMLER__APP__SHUTDOWN_TIMEOUT_SECS`.

The whole takes at most that long: a watchdog thread started by the signal ends the
process (exit status 1) if anything hangs beyond it. The SFU worker processes exit with
the web process whatever happens (their channel closes, sfu/worker.py).
A process that stopped gracefully exits with status 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import threading
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn

logger = logging.getLogger(__name__)

# What the watchdog leaves for uvicorn's own steps after the drain (closing the listener,
# the lifespan shutdown: leaving the cluster, stopping the SFU workers).
STOP_SHARE = 0.3
EXIT_HUNG = 1

Drain = Callable[[float], Awaitable[None]]


class GracefulServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        drain: Drain,
        timeout_secs: float,
        on_signal: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.drain = drain
        self.timeout_secs = timeout_secs
        # Run in the signal handler: flags only (`/ready` 503 before the loop's next turn).
        self.on_signal = on_signal
        self._watchdog: threading.Timer | None = None
        self._deadline: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Timer(self.timeout_secs, _hung, (self.timeout_secs,))
            self._watchdog.daemon = True
            self._watchdog.start()
            if self.on_signal is not None:
                self.on_signal()
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        budget = self.timeout_secs * (1 - STOP_SHARE)
        try:
            async with asyncio.timeout(budget):
                await self.drain(budget)
        except TimeoutError:
            logger.warning("shutting down: the drain took over %.1f s; stopping anyway", budget)
        except Exception:
            logger.exception("shutting down: the drain failed; stopping anyway")
        # uvicorn waits this long for the requests still running, then cancels them.
        left = self.timeout_secs - (loop.time() - started)
        self.config.timeout_graceful_shutdown = max(1, int(left * (1 - STOP_SHARE)))
        await super().shutdown(sockets)
        logger.info("shut down in %.1f s", loop.time() - started)
        # A graceful stop exits 0, rather than by the signal uvicorn would raise again.
        self._captured_signals.clear()

    def cancel_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()


def _hung(timeout_secs: float) -> None:
    logger.error(
        "shutting down: still running %.1f s after the signal"
        " (ROOMLER__APP__SHUTDOWN_TIMEOUT_SECS); exiting now",
        timeout_secs,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_HUNG)
