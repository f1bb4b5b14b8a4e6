"""`WorkerPool`: N SFU worker processes, round-robin router placement, replacement on death.

Each worker is ``python -m roomler.sfu.worker`` with its own event loop, its
routers and its UDP sockets; the web process talks to it over a socketpair
(`roomler.sfu.channel`). Workers occupy fixed *slots*:

- Slot i owns a fixed, disjoint share of ``rtc_min_port..rtc_max_port``
  (`split_port_range`: equal shares, the first ``total % N`` slots one port
  larger), so no two workers ever try to bind the same port, and a
  replacement inherits its predecessor's share (the kernel released those
  sockets when the process died).
- When a worker process exits without being asked to, the pool fails its
  pending requests with ``"worker <pid> died: <reason>"``, closes its proxies,
  calls every `on_worker_died` listener with ``(worker, reason, router_ids)``
  and starts a replacement in the same slot. The other workers carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from roomler.sfu.channel import (
    DEFAULT_REQUEST_TIMEOUT,
    Channel,
    ChannelClosedError,
    ChannelError,
)
from roomler.sfu.proxies import InvalidStateError, Router, Worker
from roomler.sfu.validation import JsonObject
from roomler.sfu.worker import DEFAULT_HANDLER

__all__ = ["WorkerPool", "WorkerPoolSettings", "describe_exit", "split_port_range"]

logger = logging.getLogger(__name__)

WORKER_MODULE = "roomler.sfu.worker"
# After the channel drops, how long to wait for the exit status that explains it.
EXIT_GRACE = 2.0
RESPAWN_BACKOFF_MAX = 10.0

DiedListener = Callable[[Worker, str, list[str]], Any]


def split_port_range(port_min: int, port_max: int, count: int) -> list[tuple[int, int]]:
    """Cut ``port_min..port_max`` (inclusive) into `count` disjoint, contiguous shares."""
    if count < 1:
        raise ValueError(f"number of workers must be at least 1, got {count}")
    if not 1 <= port_min <= port_max <= 65535:
        raise ValueError(f"RTC port range {port_min}-{port_max} is not a valid UDP port range")
    total = port_max - port_min + 1
    if total < count:
        raise ValueError(
            f"RTC port range {port_min}-{port_max} has {total} ports, fewer than {count} workers"
        )
    size, extra = divmod(total, count)
    shares = []
    start = port_min
    for index in range(count):
        end = start + size - 1 + (1 if index < extra else 0)
        shares.append((start, end))
        start = end + 1
    return shares


def describe_exit(returncode: int) -> str:
    """``"killed by signal 9 (SIGKILL)"`` or ``"exited with code 1"``."""
    if returncode < 0:
        number = -returncode
        try:
            name = signal.Signals(number).name
        except ValueError:
            return f"killed by signal {number}"
        return f"killed by signal {number} ({name})"
    return f"exited with code {returncode}"


@dataclass(frozen=True)
class WorkerPoolSettings:
    """Where the workers listen: the SFU's own settings type (the caller maps its config to it)."""

    num_workers: int = 2
    listen_ip: str = "0.0.0.0"
    # The address put in ICE candidates when listen_ip is not reachable as such (NAT, 0.0.0.0).
    announced_ip: str | None = None
    rtc_min_port: int = 40000
    rtc_max_port: int = 49999
    # Where pipe transports toward another host's workers listen, and the address that
    # host sends to when that one is not reachable as such (cluster: rooms over nodes).
    pipe_listen_ip: str = "127.0.0.1"
    pipe_announced_ip: str | None = None


@dataclass
class _Process:
    worker: Worker
    channel: Channel
    process: asyncio.subprocess.Process
    # Set when we kill a worker ourselves, e.g. after a protocol error.
    kill_reason: str | None = None
    watcher: asyncio.Task[None] | None = None


@dataclass
class _Slot:
    index: int
    port_min: int
    port_max: int
    running: _Process | None = None
    respawn: asyncio.Task[None] | None = None

    @property
    def live_worker(self) -> Worker | None:
        if self.running is None or self.running.worker.closed:
            return None
        return self.running.worker


class WorkerPool:
    """N worker processes; `create_router()` places routers round-robin over the live ones."""

    def __init__(
        self,
        num_workers: int = 2,
        listen_ip: str = "0.0.0.0",
        announced_ip: str | None = None,
        rtc_min_port: int = 40000,
        rtc_max_port: int = 49999,
        *,
        pipe_listen_ip: str = "127.0.0.1",
        pipe_announced_ip: str | None = None,
        handler: str = DEFAULT_HANDLER,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        start_timeout: float = 20.0,
        log_level: str | None = None,
    ) -> None:
        shares = split_port_range(rtc_min_port, rtc_max_port, num_workers)
        self.num_workers = num_workers
        self.listen_ip = listen_ip
        self.announced_ip = announced_ip
        self.pipe_listen_ip = pipe_listen_ip
        self.pipe_announced_ip = pipe_announced_ip
        self.handler = handler
        self.request_timeout = request_timeout
        self.start_timeout = start_timeout
        self._log_level = log_level
        self._slots = [_Slot(index, low, high) for index, (low, high) in enumerate(shares)]
        self._listeners: list[DiedListener] = []
        self._cursor = 0
        self._state = "new"
        self._changed = asyncio.Event()
        self._callbacks: set[asyncio.Task[Any]] = set()

    @classmethod
    def from_settings(cls, settings: WorkerPoolSettings, **options: Any) -> WorkerPool:
        """A pool listening where `settings` say; `options` are the keyword-only arguments."""
        return cls(**asdict(settings), **options)

    @property
    def workers(self) -> list[Worker]:
        """The live workers, in slot order."""
        return [worker for slot in self._slots if (worker := slot.live_worker) is not None]

    async def worker_metrics(self, timeout: float) -> list[tuple[int, JsonObject | None]]:
        """Each slot's ``worker.get_metrics`` figures, asked of all workers at once.

        None for a slot whose worker is down, or did not answer within `timeout`.
        """

        async def ask(slot: _Slot) -> tuple[int, JsonObject | None]:
            worker = slot.live_worker
            if worker is None:
                return slot.index, None
            try:
                return slot.index, await worker.request("worker.get_metrics", timeout=timeout)
            except Exception as exc:  # a busy or dying worker: reported as not alive
                logger.warning("%r gave no metrics: %s", worker, exc)
                return slot.index, None

        return list(await asyncio.gather(*(ask(slot) for slot in self._slots)))

    def on_worker_died(self, callback: DiedListener) -> None:
        """Call `callback(worker, reason, router_ids)` when a worker process dies."""
        self._listeners.append(callback)

    async def start(self) -> None:
        """Start every worker; if one cannot start, stop the others and raise RuntimeError."""
        if self._state != "new":
            raise RuntimeError(f"WorkerPool cannot start: it is {self._state}")
        self._state = "running"
        results = await asyncio.gather(
            *(self._start_slot(slot) for slot in self._slots), return_exceptions=True
        )
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            await self.close()
            raise failures[0]

    async def get_worker(self) -> Worker:
        """The next live worker in round-robin order (waits for a replacement if none is live)."""
        if self._state != "running":
            raise RuntimeError(f'WorkerPool is {self._state}; cannot call "get_worker"')
        try:
            async with asyncio.timeout(self.start_timeout):
                while (worker := self._next_live()) is None:
                    if not any(slot.respawn for slot in self._slots):
                        raise RuntimeError("WorkerPool has no live worker")
                    self._changed.clear()
                    await self._changed.wait()
                    if self._state != "running":
                        raise RuntimeError(f"WorkerPool is {self._state}")
        except TimeoutError:
            raise RuntimeError(
                f"WorkerPool has no live worker after {self.start_timeout:g} s"
            ) from None
        return worker

    async def create_router(
        self, media_codecs: list[dict[str, Any]] | None = None, app_data: Any = None
    ) -> Router:
        """A router on the next worker (round-robin).

        A worker that dies before the router exists holds nothing of it, so the
        router is placed on the next live worker instead.
        """
        for _ in range(len(self._slots)):
            worker = await self.get_worker()
            try:
                return await worker.create_router(media_codecs, app_data)
            except (ChannelClosedError, InvalidStateError) as exc:
                if not worker.closed:
                    raise
                logger.warning("router placement moved off a dead worker: %s", exc)
        worker = await self.get_worker()
        return await worker.create_router(media_codecs, app_data)

    async def close(self, timeout: float = 5.0) -> None:
        """Stop every worker (SIGTERM, then SIGKILL after `timeout`) and wait for it to exit."""
        if self._state == "closed":
            return
        self._state = "closed"
        self._changed.set()
        respawns = [slot.respawn for slot in self._slots if slot.respawn is not None]
        for task in respawns:
            task.cancel()
        await asyncio.gather(*respawns, return_exceptions=True)
        await asyncio.gather(*(self._stop_slot(slot, timeout) for slot in self._slots))
        if self._callbacks:
            # Loss handlers end once their process is reaped; listeners get a moment.
            await asyncio.wait(set(self._callbacks), timeout=1.0)

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _next_live(self) -> Worker | None:
        count = len(self._slots)
        for step in range(count):
            slot = self._slots[(self._cursor + step) % count]
            if (worker := slot.live_worker) is not None:
                self._cursor = (slot.index + 1) % count
                return worker
        return None

    async def _start_slot(self, slot: _Slot) -> None:
        running = await self._spawn(slot)
        if self._state != "running":
            await self._stop_process(running, 1.0)
            raise RuntimeError("WorkerPool closed while a worker was starting")
        slot.running = running
        self._changed.set()

    async def _spawn(self, slot: _Slot) -> _Process:
        parent_sock, child_sock = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command(child_sock.fileno()),
                pass_fds=(child_sock.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            parent_sock.close()
            raise
        finally:
            child_sock.close()
        return await self._connect(slot, process, parent_sock)

    def _command(self, fd: int) -> list[str]:
        level = self._log_level or logging.getLevelName(
            logging.getLogger("roomler.sfu").getEffectiveLevel()
        )
        return [
            sys.executable, "-m", WORKER_MODULE,
            "--fd", str(fd), "--handler", self.handler, "--log-level", str(level),
        ]  # fmt: skip

    async def _connect(
        self, slot: _Slot, process: asyncio.subprocess.Process, sock: socket.socket
    ) -> _Process:
        running: _Process | None = None

        def lost(reason: str) -> None:
            if running is not None:
                self._spawn_task(self._on_channel_lost(running, reason))

        channel = await Channel.connect(
            sock, name=f"worker {process.pid}", request_timeout=self.request_timeout, on_lost=lost
        )
        worker = Worker(
            channel,
            pid=process.pid,
            slot=slot.index,
            listen_ip=self.listen_ip,
            announced_ip=self.announced_ip,
            port_min=slot.port_min,
            port_max=slot.port_max,
            pipe_listen_ip=self.pipe_listen_ip,
            pipe_announced_ip=self.pipe_announced_ip,
        )
        running = _Process(worker, channel, process)
        running.watcher = asyncio.create_task(self._watch(slot, running))
        channel.start()
        try:
            await worker.request("worker.dump", timeout=self.start_timeout)
        except (ChannelError, asyncio.CancelledError) as exc:
            await self._stop_process(running, 1.0)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise RuntimeError(f"SFU worker {process.pid} failed to start: {exc}") from exc
        logger.info("SFU worker %d started (slot %d)", process.pid, slot.index)
        return running

    async def _on_channel_lost(self, running: _Process, reason: str) -> None:
        # When the peer hung up, its exit status explains why better than the
        # socket does. A worker that sent garbage is broken: it is not waited for.
        process = running.process
        if running.channel.protocol_error is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EXIT_GRACE):
                    await process.wait()
                    return  # _watch reports it
        if running.kill_reason is None:
            running.kill_reason = reason
        logger.error("SFU worker %d: %s; killing it", process.pid, reason)
        with contextlib.suppress(ProcessLookupError):
            process.kill()

    async def _watch(self, slot: _Slot, running: _Process) -> None:
        returncode = await running.process.wait()
        worker = running.worker
        reason = running.kill_reason or describe_exit(returncode)
        running.channel.fail(reason)
        if worker.closed or slot.running is not running or self._state != "running":
            return  # closed on purpose, or it died during start-up (_spawn reports that)
        router_ids = worker.router_ids
        logger.error(
            "SFU worker %d died: %s (routers: %s); starting a replacement",
            worker.pid,
            reason,
            ", ".join(router_ids) or "none",
        )
        worker._mark_died(reason)
        self._changed.set()
        for callback in list(self._listeners):
            self._call_listener(callback, worker, reason, router_ids)
        slot.respawn = asyncio.create_task(self._respawn(slot))

    def _call_listener(
        self, callback: DiedListener, worker: Worker, reason: str, router_ids: list[str]
    ) -> None:
        try:
            result = callback(worker, reason, router_ids)
        except Exception:
            logger.exception("worker-died listener %r failed", callback)
            return
        if inspect.iscoroutine(result):
            self._spawn_task(result)

    async def _respawn(self, slot: _Slot) -> None:
        delay = 0.1
        try:
            while self._state == "running":
                try:
                    await self._start_slot(slot)
                    return
                except (RuntimeError, OSError) as exc:
                    logger.error("SFU worker slot %d: replacement failed: %s", slot.index, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESPAWN_BACKOFF_MAX)
        finally:
            slot.respawn = None
            self._changed.set()

    async def _stop_slot(self, slot: _Slot, timeout: float) -> None:
        running, slot.running = slot.running, None
        if running is not None:
            await self._stop_process(running, timeout)

    async def _stop_process(self, running: _Process, timeout: float) -> None:
        running.worker._mark_closed()
        process = running.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(timeout):
                    await process.wait()
            except TimeoutError:
                logger.warning("SFU worker %d ignored SIGTERM; killing it", process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await running.channel.close()
        if running.watcher is not None:
            await asyncio.gather(running.watcher, return_exceptions=True)

    def _spawn_task(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)
