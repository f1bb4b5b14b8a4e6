"""Rooms over nodes: the node hosting a conference drives SFU workers of other nodes.

A conference's room is run by one node, its *host* (cluster/conference.py), but a
participant's transports are made on the node their WebSocket is on, so their media
goes to the nearest SFU; the room's routers on the different nodes are piped to each
other (`Router.pipe_to_router` over the nodes' pipe addresses, always with SRTP).

The host drives another node's worker through an ordinary `Worker` proxy whose channel
is relayed over Redis instead of a local socket:

- the host *leases* a worker of the other node (`lease` request): that node picks its
  least loaded worker and answers with what the proxy needs (pid, addresses, ports);
- every request of the proxy (`router.create`, `transport.consume`, ...) goes to that
  node as a `w` envelope (targets: the host, the lease), is run there on the local
  worker's channel, and its answer comes back as a `y` envelope (target: the lease);
- the worker's events for objects the lease made (their ids appeared in its requests)
  go back the same way; so the proxy sees exactly what a local one would.

When one side dies the other cleans up after it:

- the serving node's worker dies: the host's proxy dies with it (`died`), and the
  conference layer drops the participants on it, as for a local worker;
- the serving node stops its heartbeat: the host's proxies of its workers die the same
  way; only the pipes to it close, the rest of the room carries on, and its
  participants join again through another node;
- the host stops its heartbeat: the serving node closes the routers it made for it.

`RemoteWorkers` is both sides (a `NodeService`). `CrossNodeWorkers` is what the
conference layer asks (`NodeWorkers`): the node of a participant's connection, and a
worker there.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from roomler.cluster.node import ClusterNode, EnvelopeHandler
from roomler.cluster.wire import WORKER_MESSAGE, WORKER_REQUEST, Envelope
from roomler.conference.placement import worker_consumers
from roomler.sfu import Worker, WorkerPool
from roomler.sfu.channel import (
    DEFAULT_REQUEST_TIMEOUT,
    ChannelClosedError,
    EventCallback,
    JsonObject,
    RequestFailedError,
    RequestTimeoutError,
)
from roomler.tasks import BackgroundTasks

logger = logging.getLogger(__name__)

LEASE = "lease"
# What a host may ask of a leased worker: its own objects, never the worker itself.
RELAYED_PREFIXES = ("router.", "transport.", "producer.", "consumer.")

DiedListener = Callable[[Worker, str, list[str]], Any]
PoolSource = Callable[[], Awaitable[WorkerPool]]


class RelayedChannel:
    """The host's end of a leased worker's channel (a `WorkerLink`): requests published
    to the serving node, answers and events delivered by `receive`."""

    def __init__(
        self,
        name: str,
        send: Callable[[JsonObject], bool],
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        self.name = name
        self.request_timeout = request_timeout
        self._send = send
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[JsonObject]]] = {}
        self._callbacks: list[EventCallback] = []
        self._error: str | None = None

    def __repr__(self) -> str:
        return f"RelayedChannel({self.name})"

    @property
    def closed(self) -> bool:
        return self._error is not None

    def on_event(self, callback: EventCallback) -> None:
        self._callbacks.append(callback)

    async def request(
        self, method: str, data: JsonObject | None = None, *, timeout: float | None = None
    ) -> JsonObject:
        if self._error is not None:
            raise ChannelClosedError(self._error)
        request_id = next(self._ids)
        future: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (method, future)
        limit = self.request_timeout if timeout is None else timeout
        try:
            if not self._send({"id": request_id, "method": method, "data": data or {}}):
                raise ChannelClosedError(f"{self.name}: Redis is unreachable")
            async with asyncio.timeout(limit):
                return await future
        except TimeoutError:
            raise RequestTimeoutError(
                f"{self.name} did not answer {method} (request {request_id}) within {limit:g} s"
            ) from None
        finally:
            self._pending.pop(request_id, None)

    def receive(self, message: JsonObject) -> None:
        """An answer or an event from the serving node."""
        if "event" in message:
            for callback in list(self._callbacks):
                callback(str(message["event"]), str(message.get("target", "")), message["data"])
            return
        pending = self._pending.get(int(message.get("id", -1)))
        if pending is None or pending[1].done():
            return  # timed out meanwhile
        method, future = pending
        if message.get("ok"):
            future.set_result(message.get("data") or {})
        else:
            future.set_exception(RequestFailedError(method, str(message.get("error"))))

    def fail(self, reason: str) -> None:
        """The far side is gone: every waiting and later request fails with `reason`."""
        if self._error is None:
            self._error = f"{self.name} died: {reason}"
        for _, future in self._pending.values():
            if not future.done():
                future.set_exception(ChannelClosedError(self._error))


@dataclass(eq=False)
class Lease:
    """On the serving node: one host's use of one local worker."""

    lease_id: str
    host: str
    worker: Worker
    # Ids of every object the host's requests named (events for them go to the host).
    ids: set[str] = field(default_factory=set)
    # Routers the host made and has not closed (closed here if the host dies).
    routers: set[str] = field(default_factory=set)


@dataclass(eq=False)
class Borrowed:
    """On the host: a worker of another node, behind its relayed channel."""

    node_id: str
    lease_id: str
    channel: RelayedChannel
    worker: Worker | None = None


class RemoteWorkers:
    """Leasing workers to hosts, and driving leased ones (see the module docstring)."""

    def __init__(self, node: ClusterNode, local_pool: PoolSource, on_died: DiedListener) -> None:
        self.node = node
        self.node_id = node.node_id
        self._local_pool = local_pool
        self._on_died = on_died
        # Host side: lease id -> the worker borrowed; node id -> its current lease.
        self.borrowed: dict[str, Borrowed] = {}
        self._by_node: dict[str, asyncio.Future[Worker]] = {}
        # Serving side: lease id -> lease.
        self.leases: dict[str, Lease] = {}
        self._relaying: set[int] = set()  # ids of the local workers whose events we watch
        self._tasks = BackgroundTasks(logger, "a relayed worker request failed")

    # --- NodeService ---------------------------------------------------------------------------

    def envelope_handlers(self) -> dict[str, EnvelopeHandler]:
        return {WORKER_REQUEST: self._on_request, WORKER_MESSAGE: self._on_message}

    def connection_frame(self, connection_id: str, frame: str) -> None:
        pass

    async def tick(self) -> None:
        for node_id in {b.node_id for b in self.borrowed.values()}:
            if not await self.node.node_alive(node_id):
                self._lose_node(node_id, f"node {node_id} stopped its heartbeat")
        for host in {lease.host for lease in self.leases.values()}:
            if not await self.node.node_alive(host):
                await self._host_lost(host)

    async def resynced(self) -> None:
        pass

    def stopping(self) -> None:
        self._tasks.cancel_all()

    # --- the host: borrowing a worker of another node ------------------------------------------

    async def worker_on(self, node_id: str) -> Worker:
        """A worker proxy of `node_id` (leased on first use, again after it died)."""
        pending = self._by_node.get(node_id)
        if pending is not None and pending.done():
            if pending.exception() is None and not pending.result().closed:
                return pending.result()
            pending = None
        if pending is None:
            pending = asyncio.ensure_future(self._lease(node_id))
            self._by_node[node_id] = pending
        try:
            return await asyncio.shield(pending)
        except BaseException:
            if pending.done() and self._by_node.get(node_id) is pending:
                del self._by_node[node_id]
            raise

    async def _lease(self, node_id: str) -> Worker:
        lease_id = secrets.token_hex(8)

        def send(message: JsonObject) -> bool:
            body = json.dumps(message, separators=(",", ":"))
            envelope = Envelope(WORKER_REQUEST, (self.node_id, lease_id), "", body)
            return self.node.publish_to(node_id, envelope)

        channel = RelayedChannel(f"node {node_id} worker (lease {lease_id})", send)
        borrowed = Borrowed(node_id, lease_id, channel)
        self.borrowed[lease_id] = borrowed
        try:
            info = await channel.request(LEASE)
        except BaseException:
            self.borrowed.pop(lease_id, None)
            raise
        worker = Worker(
            channel,
            pid=int(info["pid"]),
            slot=int(info["slot"]),
            listen_ip=str(info["listen_ip"]),
            announced_ip=info.get("announced_ip"),
            port_min=int(info["port_min"]),
            port_max=int(info["port_max"]),
            host=node_id,
            pipe_listen_ip=str(info["pipe_listen_ip"]),
            pipe_announced_ip=info.get("pipe_announced_ip"),
        )
        borrowed.worker = worker
        logger.info("leased worker %d of node %s (lease %s)", worker.pid, node_id, lease_id)
        return worker

    def _on_message(self, envelope: Envelope) -> None:
        borrowed = self.borrowed.get(envelope.targets[0])
        if borrowed is None:
            return  # a lease we gave up (its node died)
        message = json.loads(envelope.body)
        if not isinstance(message, dict):
            raise ValueError("a relayed worker message is not an object")
        if "died" in message:
            self._lose(borrowed, f"worker of node {borrowed.node_id} died: {message['died']}")
        else:
            borrowed.channel.receive(message)

    def _lose_node(self, node_id: str, reason: str) -> None:
        logger.warning("%s: its workers' routers here close, with the pipes to them", reason)
        for borrowed in [b for b in self.borrowed.values() if b.node_id == node_id]:
            self._lose(borrowed, reason)

    def _lose(self, borrowed: Borrowed, reason: str) -> None:
        self.borrowed.pop(borrowed.lease_id, None)
        borrowed.channel.fail(reason)
        worker = borrowed.worker
        if worker is None or worker.closed:
            return
        router_ids = worker.router_ids
        worker._mark_died(reason)
        result = self._on_died(worker, reason, router_ids)
        if asyncio.iscoroutine(result):
            self._tasks.spawn(result)

    # --- the serving node: lending a local worker ---------------------------------------------

    def _on_request(self, envelope: Envelope) -> None:
        if len(envelope.targets) != 2:
            raise ValueError("a relayed worker request names the host and the lease")
        host, lease_id = envelope.targets
        message = json.loads(envelope.body)
        if not isinstance(message, dict) or not isinstance(message.get("id"), int):
            raise ValueError("a relayed worker request has no id")
        self._tasks.spawn(self._answer(host, lease_id, message))

    async def _answer(self, host: str, lease_id: str, message: JsonObject) -> None:
        request_id, method = message["id"], str(message.get("method", ""))
        data = message.get("data") or {}
        try:
            if method == LEASE:
                reply = await self._lend(host, lease_id)
            else:
                reply = await self._relay(lease_id, method, data)
            answer: JsonObject = {"id": request_id, "ok": True, "data": reply}
        except Exception as exc:  # told to the host, whose proxy raises it
            answer = {"id": request_id, "ok": False, "error": str(exc) or type(exc).__name__}
        self._send_to(host, lease_id, answer)

    async def _lend(self, host: str, lease_id: str) -> JsonObject:
        pool = await self._local_pool()
        workers = pool.workers
        if not workers:
            raise RuntimeError(f"node {self.node_id} has no live SFU worker")
        worker = min(workers, key=lambda w: (worker_consumers(w), len(w.routers), w.slot))
        self.leases[lease_id] = Lease(lease_id, host, worker)
        if id(worker) not in self._relaying:
            self._relaying.add(id(worker))
            worker.channel.on_event(lambda e, t, d: self._relay_event(worker, e, t, d))
            worker.on("died", lambda reason: self._local_worker_died(worker, reason))
        logger.info("node %s leases our worker %d (lease %s)", host, worker.pid, lease_id)
        return {
            "pid": worker.pid,
            "slot": worker.slot,
            "listen_ip": worker.listen_ip,
            "announced_ip": worker.announced_ip,
            "port_min": worker.port_min,
            "port_max": worker.port_max,
            "pipe_listen_ip": worker.pipe_listen_ip,
            "pipe_announced_ip": worker.pipe_announced_ip,
        }

    async def _relay(self, lease_id: str, method: str, data: JsonObject) -> JsonObject:
        lease = self.leases.get(lease_id)
        if lease is None:
            raise RuntimeError(f"no lease {lease_id} on node {self.node_id}")
        if not method.startswith(RELAYED_PREFIXES):
            raise ValueError(f"{method!r} is not relayed to a leased worker")
        lease.ids.update(v for k, v in data.items() if k.endswith("_id") and isinstance(v, str))
        if method == "router.create":
            lease.routers.add(str(data.get("router_id")))
        elif method == "router.close":
            lease.routers.discard(str(data.get("router_id")))
        return await lease.worker.request(method, data)

    def _relay_event(self, worker: Worker, event: str, target: str, data: JsonObject) -> None:
        for lease in self.leases.values():
            if lease.worker is worker and target in lease.ids:
                message = {"event": event, "target": target, "data": data}
                self._send_to(lease.host, lease.lease_id, message)

    def _local_worker_died(self, worker: Worker, reason: str) -> None:
        for lease in [lease for lease in self.leases.values() if lease.worker is worker]:
            del self.leases[lease.lease_id]
            self._send_to(lease.host, lease.lease_id, {"died": reason})

    async def _host_lost(self, host: str) -> None:
        """The host died: close what it made on our workers (its routers, all in them)."""
        for lease in [lease for lease in self.leases.values() if lease.host == host]:
            del self.leases[lease.lease_id]
            logger.warning(
                "node %s died: closing its %d router(s) on our worker %d",
                host,
                len(lease.routers),
                lease.worker.pid,
            )
            for router_id in lease.routers:
                try:
                    await lease.worker.request("router.close", {"router_id": router_id})
                except Exception as exc:
                    logger.info("closing router %s of dead node %s: %s", router_id, host, exc)

    def _send_to(self, host: str, lease_id: str, message: JsonObject) -> None:
        body = json.dumps(message, separators=(",", ":"))
        self.node.publish_to(host, Envelope(WORKER_MESSAGE, (lease_id,), "", body))


class CrossNodeWorkers:
    """The conference layer's `NodeWorkers`: a joiner's node, and a worker there."""

    def __init__(self, workers: RemoteWorkers, edge_of: Callable[[str], str | None]) -> None:
        self._workers = workers
        self._edge_of = edge_of

    def node_of(self, connection_id: str) -> str | None:
        """The other node a connection is on (None: this one)."""
        return self._edge_of(connection_id)

    async def worker_on(self, node_id: str) -> Worker:
        return await self._workers.worker_on(node_id)
