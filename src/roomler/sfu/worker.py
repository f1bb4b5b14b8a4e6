"""An SFU worker process: ``python -m roomler.sfu.worker --fd N``.

The web process (`roomler.sfu.pool`) starts one per core it wants to use and
hands it one end of a socketpair as file descriptor N. The worker runs its own
event loop (uvloop when installed), builds the engine's request handler and
answers the web process's requests over that channel until

- the channel closes (the web process exited or was killed: no orphan stays), or
- SIGTERM arrives (graceful: the handler is closed first).

Both end the process with exit code 0. SIGINT is ignored: a Ctrl-C in a
terminal reaches the whole process group, and the web process decides when
its workers stop. Logs go to stderr prefixed ``sfu-worker[<pid>]``; stdout is
left alone.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from roomler.sfu.channel import Channel, JsonObject

__all__ = ["DEFAULT_HANDLER", "WorkerHost", "load_handler_factory", "main", "serve"]

# Named explicitly: under `python -m` this module is `__main__`.
logger = logging.getLogger("roomler.sfu.worker")

DEFAULT_HANDLER = "roomler.sfu.engine.handler:WorkerHandler"
# How long the engine may take to release its sockets on shutdown.
CLOSE_TIMEOUT = 3.0

Emit = Callable[[str, str, JsonObject], None]


class Handler(Protocol):
    """What the engine's `WorkerHandler` provides (an async `close()` is optional)."""

    async def handle(self, method: str, data: JsonObject) -> JsonObject: ...


HandlerFactory = Callable[..., Handler]


def load_handler_factory(spec: str) -> HandlerFactory:
    """Import ``"package.module:attribute"``; ValueError when it cannot be found."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"handler must look like 'package.module:Name', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import handler module {module_name!r}: {exc}") from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ValueError(f"handler {spec!r} is not a callable in {module_name!r}")
    return factory  # type: ignore[no-any-return]


class WorkerHost:
    """Routes requests to the engine's handler and answers ``worker.dump``.

    The dump describes the process (pid, event loop, uptime, requests served,
    routers created through it) and adds whatever the engine's own
    ``worker.dump`` reports, which wins where both speak.
    """

    def __init__(self, handler: Handler, handler_spec: str) -> None:
        self._handler = handler
        self._handler_spec = handler_spec
        self._routers: list[str] = []
        self._started = time.monotonic()
        self._requests = 0

    async def handle(self, method: str, data: JsonObject) -> JsonObject:
        self._requests += 1
        if method == "worker.dump":
            return {**self.dump(), **await self._engine_dump(data)}
        result = await self._handler.handle(method, data)
        self._track(method, data)
        return result

    def dump(self) -> JsonObject:
        loop = asyncio.get_running_loop()
        return {
            "pid": os.getpid(),
            "routers": list(self._routers),
            "handler": self._handler_spec,
            "event_loop": type(loop).__module__.split(".")[0],
            "uptime_secs": round(time.monotonic() - self._started, 3),
            "requests": self._requests,
        }

    async def _engine_dump(self, data: JsonObject) -> JsonObject:
        try:
            return await self._handler.handle("worker.dump", data)
        except ValueError:
            return {}  # the engine has no dump of its own

    async def close(self) -> None:
        close = getattr(self._handler, "close", None)
        if close is None:
            return
        result = close()
        if inspect.isawaitable(result):
            await result

    def _track(self, method: str, data: JsonObject) -> None:
        router_id = data.get("router_id")
        if method == "router.create" and isinstance(router_id, str):
            self._routers.append(router_id)
        elif method == "router.close" and router_id in self._routers:
            self._routers.remove(router_id)


async def serve(sock: socket.socket, factory: HandlerFactory, handler_spec: str) -> str:
    """Serve the channel on `sock` until it closes or SIGTERM; returns why it stopped."""
    loop = asyncio.get_running_loop()
    channel = await Channel.connect(sock, name="parent")
    handler = factory(emit=channel.emit, loop=loop)
    host = WorkerHost(handler, handler_spec)
    channel.serve(host.handle)
    channel.start()
    terminated = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, terminated.set)
    lost = asyncio.create_task(channel.wait_closed())
    stop = asyncio.create_task(terminated.wait())
    logger.info("serving %s", handler_spec)
    await asyncio.wait({lost, stop}, return_when=asyncio.FIRST_COMPLETED)
    reason = "SIGTERM" if terminated.is_set() else lost.result()
    stop.cancel()
    lost.cancel()
    logger.info("stopping: %s", reason)
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await host.close()
    except TimeoutError:
        logger.warning("handler did not close within %g s", CLOSE_TIMEOUT)
    await channel.close()
    return reason


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"sfu-worker[{os.getpid()}] %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m roomler.sfu.worker")
    parser.add_argument("--fd", type=int, required=True, help="channel socket file descriptor")
    parser.add_argument("--handler", default=DEFAULT_HANDLER, help="module:factory of the engine")
    parser.add_argument("--log-level", default="INFO", type=str.upper)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args: Any = _parse_args(argv)
    _configure_logging(args.log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        factory = load_handler_factory(args.handler)
    except ValueError as exc:
        logger.error("%s", exc)
        return 1
    try:
        sock = socket.socket(fileno=args.fd)
    except OSError as exc:
        logger.error("file descriptor %d is not a channel socket: %s", args.fd, exc)
        return 2
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(sock, factory, args.handler))
    return 0


if __name__ == "__main__":
    sys.exit(main())
