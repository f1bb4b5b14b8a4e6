"""Web-process proxies of the objects that live in SFU worker processes.

`Worker`, `Router`, `WebRtcTransport`, `Producer` and `Consumer` hold ids and
parameters and turn method calls into channel requests (``router.create``,
``transport.produce``, ... over `roomler.sfu.channel`); the engine in the
worker owns the real objects. Ids are uuid4 strings made here.

Closing is tracked locally and cascades the way the engine cascades, so a
closed proxy refuses calls at once with `InvalidStateError`:

- a router closes its transports (they emit ``routerclose``), a worker that
  dies or is closed closes its routers (``workerclose``);
- a transport closes its producers and consumers (``transportclose``);
- a producer that closes, for any reason, closes the consumers of it in the
  router (``producerclose``), and its pause/resume reach them as
  ``producerpause``/``producerresume``.

The engine sends the same notifications as events; a proxy applies a change
once, whichever copy comes first, so each listener hears it exactly once. Every
close, whatever the cause, ends with a ``close`` event.

Listener arguments: ``dtlsstatechange(state)``, ``icestatechange(state)``,
``iceselectedtuplechange(tuple_dict)``, ``died(reason)`` on a worker, no
argument for the close/pause notifications, ``(data)`` for any other event.
Listeners may be coroutine functions; they run as tasks.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from roomler.sfu.channel import ChannelError, JsonObject, WorkerLink

__all__ = [
    "Consumer",
    "InvalidStateError",
    "PipeToRouterResult",
    "PipeTransport",
    "Producer",
    "Router",
    "WebRtcTransport",
    "Worker",
]

logger = logging.getLogger(__name__)

Listener = Callable[..., Any]

MEDIA_KINDS = ("audio", "video")
_background: set[asyncio.Task[Any]] = set()


class InvalidStateError(RuntimeError):
    """A method was called on a closed proxy (or one whose worker died)."""


def _run_listener(callback: Listener, args: tuple[Any, ...]) -> None:
    try:
        result = callback(*args)
    except Exception:
        logger.exception("SFU listener %r failed", callback)
        return
    if inspect.iscoroutine(result):
        task = asyncio.get_running_loop().create_task(_guard(result))
        _background.add(task)
        task.add_done_callback(_background.discard)


async def _guard(coroutine: Coroutine[Any, Any, Any]) -> None:
    try:
        await coroutine
    except Exception:
        logger.exception("SFU listener coroutine failed")


class _EventSource:
    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}

    def on(self, event: str, callback: Listener) -> None:
        """Call `callback` each time `event` happens."""
        self._listeners.setdefault(event, []).append(callback)

    def off(self, event: str, callback: Listener) -> None:
        listeners = self._listeners.get(event, [])
        if callback in listeners:
            listeners.remove(callback)

    def _emit(self, event: str, *args: Any) -> None:
        for callback in list(self._listeners.get(event, ())):
            _run_listener(callback, args)


def _new_id() -> str:
    return str(uuid.uuid4())


class Worker(_EventSource):
    """One worker process as seen from the web process (made by `WorkerPool`, or for
    another node's worker by `roomler.cluster.remote_workers`).

    `port_min`..`port_max` is this worker's own share of the RTC port range. `host` names
    the machine or node the worker runs on ("" for this process's own): a pipe between
    workers on different hosts listens on each one's `pipe_listen_ip`, announces its
    `pipe_announced_ip`, and is always encrypted (SRTP).
    """

    def __init__(
        self,
        channel: WorkerLink,
        *,
        pid: int,
        slot: int = 0,
        listen_ip: str = "0.0.0.0",
        announced_ip: str | None = None,
        port_min: int = 40000,
        port_max: int = 49999,
        host: str = "",
        pipe_listen_ip: str = "127.0.0.1",
        pipe_announced_ip: str | None = None,
    ) -> None:
        super().__init__()
        self.channel = channel
        self.host = host
        self.pipe_listen_ip = pipe_listen_ip
        self.pipe_announced_ip = pipe_announced_ip
        self.pid = pid
        self.slot = slot
        self.listen_ip = listen_ip
        self.announced_ip = announced_ip
        self.port_min = port_min
        self.port_max = port_max
        self.routers: dict[str, Router] = {}
        self.closed = False
        self.died = False
        self.died_reason: str | None = None
        self._targets: dict[str, _Proxy] = {}
        channel.on_event(self._on_event)

    def __repr__(self) -> str:
        state = "died" if self.died else "closed" if self.closed else "live"
        return f"Worker(pid={self.pid}, slot={self.slot}, {state})"

    @property
    def router_ids(self) -> list[str]:
        return list(self.routers)

    async def request(
        self, method: str, data: JsonObject | None = None, *, timeout: float | None = None
    ) -> JsonObject:
        """Send one raw channel request to this worker."""
        if self.closed:
            what = f"died ({self.died_reason})" if self.died else "is closed"
            raise InvalidStateError(f'Worker {self.pid} {what}; cannot call "{method}"')
        return await self.channel.request(method, data, timeout=timeout)

    async def dump(self) -> JsonObject:
        return await self.request("worker.dump")

    async def create_router(
        self, media_codecs: list[JsonObject] | None = None, app_data: Any = None
    ) -> Router:
        router_id = _new_id()
        data: JsonObject = {"router_id": router_id}
        if media_codecs is not None:
            data["media_codecs"] = media_codecs
        reply = await self.request("router.create", data)
        if self.closed:
            raise InvalidStateError(f"Worker {self.pid} closed while a router was being created")
        router = Router(self, router_id, reply.get("rtp_capabilities", {}), app_data)
        self.routers[router_id] = router
        return router

    def _mark_died(self, reason: str) -> None:
        """The process exited unexpectedly: close everything locally, emit ``died``."""
        if self.closed:
            return
        self.died = True
        self.died_reason = reason
        self._mark_closed()
        self._emit("died", reason)

    def _mark_closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        for router in list(self.routers.values()):
            router._close_locally("workerclose")
        self._emit("close")

    def _register(self, proxy: _Proxy) -> None:
        self._targets[proxy.id] = proxy

    def _unregister(self, proxy: _Proxy) -> None:
        self._targets.pop(proxy.id, None)

    def _on_event(self, event: str, target: str, data: JsonObject) -> None:
        proxy = self._targets.get(target)
        if proxy is None:
            logger.debug("Worker %d: event %s for unknown target %s", self.pid, event, target)
            return
        proxy._on_event(event.rpartition(".")[2], data)


class _Proxy(_EventSource):
    _type = "object"
    _id_field = "id"

    def __init__(self, worker: Worker, object_id: str, app_data: Any) -> None:
        super().__init__()
        self.id = object_id
        self.app_data = app_data
        self.closed = False
        self._worker = worker
        worker._register(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id}{', closed' if self.closed else ''})"

    def _check_open(self, method: str) -> None:
        if self.closed:
            raise InvalidStateError(
                f'{type(self).__name__} {self.id} is closed; cannot call "{method}"'
            )

    async def _request(self, action: str, data: JsonObject | None = None) -> JsonObject:
        self._check_open(action)
        body = {self._id_field: self.id, **(data or {})}
        return await self._worker.request(f"{self._type}.{action}", body)

    async def _request_close(self) -> None:
        # Already closed locally; the worker may be gone or may have closed
        # the object itself, and neither makes close() fail.
        if self._worker.closed:
            return
        try:
            await self._worker.channel.request(f"{self._type}.close", {self._id_field: self.id})
        except ChannelError as exc:
            logger.debug("%r: close request failed: %s", self, exc)

    def _close_locally(self, cause: str | None) -> bool:
        """Mark closed, cascade, emit `cause` (if any) then ``close``; False if already closed."""
        if self.closed:
            return False
        self.closed = True
        self._worker._unregister(self)
        self._cascade()
        if cause is not None:
            self._emit(cause)
        self._emit("close")
        return True

    def _cascade(self) -> None:
        pass

    def _on_event(self, name: str, data: JsonObject) -> None:
        if name == "close":
            self._close_locally(None)
        elif name.endswith("close"):
            self._close_locally(name)
        else:
            self._emit(name, data)

    async def dump(self) -> JsonObject:
        return await self._request("dump")


class Router(_Proxy):
    """A router in a worker: one conference's media, placed by the pool."""

    _type = "router"
    _id_field = "router_id"

    def __init__(
        self, worker: Worker, router_id: str, rtp_capabilities: JsonObject, app_data: Any = None
    ) -> None:
        super().__init__(worker, router_id, app_data)
        self.rtp_capabilities = rtp_capabilities
        self.transports: dict[str, _Transport] = {}
        self._producers: dict[str, Producer] = {}
        # The pipe transport pair toward each other router (pipe_to_router), by its id:
        # {this router's id: ours, the other's id: theirs}, shared with the other router.
        self._pipe_pairs: dict[str, asyncio.Future[dict[str, PipeTransport]]] = {}

    @property
    def worker(self) -> Worker:
        return self._worker

    async def create_webrtc_transport(
        self,
        *,
        listen_ip: str | None = None,
        announced_ip: str | None = None,
        app_data: Any = None,
    ) -> WebRtcTransport:
        """A transport on a port from this worker's share of the RTC range."""
        worker = self._worker
        transport_id = _new_id()
        reply = await self._request(
            "create_webrtc_transport",
            {
                "transport_id": transport_id,
                "listen_ip": listen_ip or worker.listen_ip,
                "announced_ip": announced_ip if announced_ip is not None else worker.announced_ip,
                "port_min": worker.port_min,
                "port_max": worker.port_max,
            },
        )
        self._check_open("create_webrtc_transport")
        transport = WebRtcTransport(self, transport_id, reply, app_data)
        self.transports[transport_id] = transport
        return transport

    async def create_pipe_transport(
        self,
        *,
        listen_ip: str = "127.0.0.1",
        announced_ip: str | None = None,
        enable_rtx: bool = False,
        enable_srtp: bool = False,
        app_data: Any = None,
    ) -> PipeTransport:
        """A transport toward another router (engine/pipe_transport.py), on a port of this
        worker's share; `connect()` it to the other one's `tuple`. `announced_ip` is what
        the other side sends to (another host's pipe: this host's reachable address)."""
        worker = self._worker
        transport_id = _new_id()
        reply = await self._request(
            "create_pipe_transport",
            {
                "transport_id": transport_id,
                "listen_ip": listen_ip,
                "announced_ip": announced_ip,
                "port_min": worker.port_min,
                "port_max": worker.port_max,
                "enable_rtx": enable_rtx,
                "enable_srtp": enable_srtp,
            },
        )
        self._check_open("create_pipe_transport")
        transport = PipeTransport(self, transport_id, reply, app_data)
        self.transports[transport_id] = transport
        return transport

    async def pipe_to_router(
        self,
        *,
        producer_id: str,
        router: Router,
        listen_ip: str | None = None,
        enable_rtx: bool = False,
        enable_srtp: bool = False,
    ) -> PipeToRouterResult:
        """Make this router's producer consumable in `router` (mediasoup's pipeToRouter).

        One pipe transport pair joins two routers, made on first use and shared by every
        producer piped between them either way; a pipe consumer here sends the producer's
        every encoding to a pipe producer there, which has the producer's id. Pause and
        resume are carried to the pipe producer, a close either way closes the other, and
        closing either pipe transport (or its router, or its worker) closes its twin.
        The routers must be in different workers (a worker knows each producer id once).
        Each side listens on `listen_ip`, by default its worker's `pipe_listen_ip`; between
        workers on different hosts, each on its own and always with SRTP.
        """
        self._check_open("pipe_to_router")
        if router is self:
            raise ValueError("cannot pipe a router to itself")
        if router.worker is self.worker:
            raise ValueError("cannot pipe between two routers of the same worker")
        router._check_open("pipe_to_router")
        producer = self._producers.get(producer_id)
        if producer is None:
            raise ValueError(f"producer {producer_id} is not in router {self.id}")
        if producer_id in router._producers:
            raise ValueError(f"producer {producer_id} is already in router {router.id}")
        pair = await self._pipe_pair(router, listen_ip, enable_rtx, enable_srtp)
        local, remote = pair[self.id], pair[router.id]
        pipe_consumer: Consumer | None = None
        pipe_producer: Producer | None = None
        try:
            pipe_consumer = await local.consume(producer_id)
            pipe_producer = await remote.produce(
                pipe_consumer.kind,
                pipe_consumer.rtp_parameters,
                producer.app_data,
                paused=pipe_consumer.producer_paused,
                producer_id=producer.id,
            )
            if producer.closed:
                raise InvalidStateError(f"producer {producer_id} closed while it was piped")
            if pipe_producer.paused != producer.paused:
                await (pipe_producer.pause() if producer.paused else pipe_producer.resume())
        except BaseException:
            for made in (pipe_consumer, pipe_producer):
                if made is not None:
                    await made.close()
            raise
        _link_pipe(pipe_consumer, pipe_producer)
        return PipeToRouterResult(pipe_consumer, pipe_producer)

    async def _pipe_pair(
        self, router: Router, listen_ip: str | None, enable_rtx: bool, enable_srtp: bool
    ) -> dict[str, PipeTransport]:
        pending = self._pipe_pairs.get(router.id)
        if pending is None:
            pending = asyncio.ensure_future(
                self._create_pipe_pair(router, listen_ip, enable_rtx, enable_srtp)
            )
            self._pipe_pairs[router.id] = pending
            router._pipe_pairs[self.id] = pending
        try:
            return await asyncio.shield(pending)
        except BaseException:
            if pending.done():
                self._forget_pipe_pair(router, pending)
            raise

    async def _create_pipe_pair(
        self, router: Router, listen_ip: str | None, enable_rtx: bool, enable_srtp: bool
    ) -> dict[str, PipeTransport]:
        across_hosts = self._worker.host != router.worker.host
        made = await asyncio.gather(
            *(
                side.create_pipe_transport(
                    listen_ip=side.worker.pipe_listen_ip
                    if across_hosts or listen_ip is None
                    else listen_ip,
                    announced_ip=side.worker.pipe_announced_ip if across_hosts else None,
                    enable_rtx=enable_rtx,
                    enable_srtp=enable_srtp or across_hosts,
                )
                for side in (self, router)
            ),
            return_exceptions=True,
        )
        local, remote = made
        try:
            if not isinstance(local, PipeTransport):
                raise local
            if not isinstance(remote, PipeTransport):
                raise remote
            await asyncio.gather(local.connect_to(remote), remote.connect_to(local))
        except BaseException:
            for transport in made:
                if isinstance(transport, PipeTransport):
                    await transport.close()
            raise
        pair = {self.id: local, router.id: remote}

        def closed(other: PipeTransport) -> Callable[[], Any]:
            def on_close() -> Any:
                self._forget_pipe_pair(router, self._pipe_pairs.get(router.id))
                return other.close()

            return on_close

        local.on("close", closed(remote))
        remote.on("close", closed(local))
        return pair

    def _forget_pipe_pair(
        self, router: Router, pending: asyncio.Future[dict[str, PipeTransport]] | None
    ) -> None:
        if pending is None:
            return
        if self._pipe_pairs.get(router.id) is pending:
            del self._pipe_pairs[router.id]
        if router._pipe_pairs.get(self.id) is pending:
            del router._pipe_pairs[self.id]

    def pipe_transport_to(self, router: Router) -> PipeTransport | None:
        """This router's end of the pipe toward `router`, if one is up."""
        pending = self._pipe_pairs.get(router.id)
        if pending is None or not pending.done() or pending.exception() is not None:
            return None
        return pending.result()[self.id]

    async def enable_audio_levels(
        self, *, interval_ms: int = 300, threshold: float = -70.0, switch_intervals: int = 2
    ) -> None:
        """Have the worker report who is speaking (engine/audio_level.py): this router then
        emits ``audiolevels`` {volumes: [{producer_id, volume}]} every `interval_ms` while
        someone is above `threshold` dBov, ``silence`` once when nobody is any more, and
        ``dominantspeaker`` {producer_id} when the dominant speaker changes (after
        `switch_intervals` intervals as the loudest)."""
        await self._request(
            "enable_audio_levels",
            {
                "interval_ms": interval_ms,
                "threshold": threshold,
                "switch_intervals": switch_intervals,
            },
        )

    async def can_consume(self, producer_id: str, rtp_capabilities: JsonObject) -> bool:
        reply = await self._request(
            "can_consume", {"producer_id": producer_id, "rtp_capabilities": rtp_capabilities}
        )
        return bool(reply.get("can_consume"))

    async def close(self) -> None:
        if self._close_locally(None):
            await self._request_close()

    def _cascade(self) -> None:
        for transport in list(self.transports.values()):
            transport._close_locally("routerclose")
        self._worker.routers.pop(self.id, None)


class _Transport(_Proxy):
    """What WebRTC and pipe transports share: producing, consuming, closing."""

    _type = "transport"
    _id_field = "transport_id"

    def __init__(self, router: Router, transport_id: str, app_data: Any = None) -> None:
        super().__init__(router.worker, transport_id, app_data)
        self.router = router
        self.producers: dict[str, Producer] = {}
        self.consumers: dict[str, Consumer] = {}

    async def produce(
        self,
        kind: str,
        rtp_parameters: JsonObject,
        app_data: Any = None,
        *,
        paused: bool = False,
        producer_id: str | None = None,
    ) -> Producer:
        """`producer_id` is made here unless given (a pipe producer takes its source's)."""
        if kind not in MEDIA_KINDS:
            raise ValueError(f"producer kind must be 'audio' or 'video', got {kind!r}")
        if not isinstance(rtp_parameters, dict):
            raise ValueError("rtp_parameters must be an object")
        producer_id = producer_id or _new_id()
        reply = await self._request(
            "produce",
            {
                "producer_id": producer_id,
                "kind": kind,
                "rtp_parameters": rtp_parameters,
                "paused": paused,
            },
        )
        self._check_open("produce")
        producer = Producer(self, producer_id, kind, rtp_parameters, reply, paused, app_data)
        self.producers[producer_id] = producer
        self.router._producers[producer_id] = producer
        return producer

    async def _consume(
        self, producer_id: str, data: JsonObject, paused: bool, app_data: Any
    ) -> Consumer:
        self._check_open("consume")
        producer = self.router._producers.get(producer_id)
        if producer is None:
            raise ValueError(f"producer {producer_id} is not in router {self.router.id}")
        consumer_id = _new_id()
        reply = await self._request(
            "consume",
            {"consumer_id": consumer_id, "producer_id": producer_id, "paused": paused, **data},
        )
        self._check_open("consume")
        consumer = Consumer(self, consumer_id, producer, reply, paused, app_data)
        self.consumers[consumer_id] = consumer
        if producer.closed:
            # The producer closed while the request was in flight.
            consumer._close_locally("producerclose")
        else:
            producer._consumers[consumer_id] = consumer
        return consumer

    async def get_stats(self) -> JsonObject:
        return await self._request("get_stats")

    async def close(self) -> None:
        if self._close_locally(None):
            await self._request_close()

    def _cascade(self) -> None:
        for producer in list(self.producers.values()):
            producer._close_locally("transportclose")
        for consumer in list(self.consumers.values()):
            consumer._close_locally("transportclose")
        self.router.transports.pop(self.id, None)


class WebRtcTransport(_Transport):
    """A WebRTC transport: one UDP port with ICE-lite, DTLS and SRTP in the worker."""

    def __init__(
        self, router: Router, transport_id: str, params: JsonObject, app_data: Any = None
    ) -> None:
        super().__init__(router, transport_id, app_data)
        self.ice_parameters: JsonObject = params.get("ice_parameters", {})
        self.ice_candidates: list[JsonObject] = params.get("ice_candidates", [])
        self.dtls_parameters: JsonObject = params.get("dtls_parameters", {})
        self.dtls_state = "new"
        self.ice_state = "new"
        self.ice_selected_tuple: JsonObject | None = None

    async def connect(self, dtls_parameters: JsonObject) -> None:
        """Give the worker the browser's DTLS role and fingerprints."""
        if not isinstance(dtls_parameters, dict):
            raise ValueError("dtls_parameters must be an object")
        await self._request("connect", {"dtls_parameters": dtls_parameters})

    async def consume(
        self,
        producer_id: str,
        rtp_capabilities: JsonObject,
        paused: bool = False,
        app_data: Any = None,
    ) -> Consumer:
        return await self._consume(
            producer_id, {"rtp_capabilities": rtp_capabilities}, paused, app_data
        )

    async def restart_ice(self) -> JsonObject:
        """New ICE credentials (the browser's `transport.restartIce`); they are also kept."""
        reply = await self._request("restart_ice")
        ice_parameters: JsonObject = reply["ice_parameters"]
        self.ice_parameters = ice_parameters
        return ice_parameters

    def _on_event(self, name: str, data: JsonObject) -> None:
        if name == "dtlsstatechange":
            self.dtls_state = str(data.get("dtls_state", self.dtls_state))
            self._emit(name, self.dtls_state)
        elif name == "icestatechange":
            self.ice_state = str(data.get("ice_state", self.ice_state))
            self._emit(name, self.ice_state)
        elif name == "iceselectedtuplechange":
            selected = data.get("ice_selected_tuple")
            self.ice_selected_tuple = selected if isinstance(selected, dict) else data
            self._emit(name, self.ice_selected_tuple)
        else:
            super()._on_event(name, data)


class PipeTransport(_Transport):
    """A pipe transport: plain RTP/RTCP (or SRTP) over UDP toward another router's."""

    def __init__(
        self, router: Router, transport_id: str, params: JsonObject, app_data: Any = None
    ) -> None:
        super().__init__(router, transport_id, app_data)
        #: mediasoup's tuple: {localIp, localPort, protocol[, remoteIp, remotePort]}.
        self.tuple: JsonObject = params.get("tuple", {})
        self.srtp_parameters: JsonObject | None = params.get("srtp_parameters")

    async def connect(
        self, *, ip: str, port: int, srtp_parameters: JsonObject | None = None
    ) -> None:
        """Send to (and accept from) the other pipe transport at `ip`:`port`."""
        data: JsonObject = {"ip": ip, "port": port}
        if srtp_parameters is not None:
            data["srtp_parameters"] = srtp_parameters
        reply = await self._request("connect", data)
        self.tuple = reply.get("tuple", self.tuple)

    async def connect_to(self, other: PipeTransport) -> None:
        """Connect to `other`, as `pipe_to_router` does."""
        await self.connect(
            ip=str(other.tuple["localIp"]),
            port=int(other.tuple["localPort"]),
            srtp_parameters=other.srtp_parameters,
        )

    async def consume(
        self, producer_id: str, paused: bool = False, app_data: Any = None
    ) -> Consumer:
        """A pipe consumer: every encoding of the producer, toward the other router."""
        return await self._consume(producer_id, {}, paused, app_data)


@dataclass(frozen=True)
class PipeToRouterResult:
    """What `Router.pipe_to_router` made: the consumer here, the producer there."""

    pipe_consumer: Consumer
    pipe_producer: Producer


def _link_pipe(pipe_consumer: Consumer, pipe_producer: Producer) -> None:
    """Carry the source producer's pause, resume and close to the pipe producer, and a
    closed pipe producer back to its pipe consumer (mediasoup's pipeToRouter)."""

    async def pause() -> None:
        if not pipe_producer.closed:
            await pipe_producer.pause()

    async def resume() -> None:
        if not pipe_producer.closed:
            await pipe_producer.resume()

    pipe_consumer.on("producerpause", pause)
    pipe_consumer.on("producerresume", resume)
    pipe_consumer.on("close", pipe_producer.close)
    pipe_producer.on("close", pipe_consumer.close)


class Producer(_Proxy):
    """Media a browser sends into a router."""

    _type = "producer"
    _id_field = "producer_id"

    def __init__(
        self,
        transport: _Transport,
        producer_id: str,
        kind: str,
        rtp_parameters: JsonObject,
        reply: JsonObject,
        paused: bool,
        app_data: Any = None,
    ) -> None:
        super().__init__(transport.router.worker, producer_id, app_data)
        self.transport = transport
        self.kind = kind
        self.rtp_parameters = rtp_parameters
        self.type = str(reply.get("type", "simple"))
        self.paused = paused
        self._consumers: dict[str, Consumer] = {}

    async def pause(self) -> None:
        await self._request("pause")
        self.paused = True
        for consumer in list(self._consumers.values()):
            consumer._set_producer_paused(True)

    async def resume(self) -> None:
        await self._request("resume")
        self.paused = False
        for consumer in list(self._consumers.values()):
            consumer._set_producer_paused(False)

    async def get_stats(self) -> JsonObject:
        return await self._request("get_stats")

    async def close(self) -> None:
        if self._close_locally(None):
            await self._request_close()

    def _cascade(self) -> None:
        for consumer in list(self._consumers.values()):
            consumer._close_locally("producerclose")
        self.transport.producers.pop(self.id, None)
        self.transport.router._producers.pop(self.id, None)


class Consumer(_Proxy):
    """Media a router sends to a browser, from one producer."""

    _type = "consumer"
    _id_field = "consumer_id"

    def __init__(
        self,
        transport: _Transport,
        consumer_id: str,
        producer: Producer,
        reply: JsonObject,
        paused: bool,
        app_data: Any = None,
    ) -> None:
        super().__init__(transport.router.worker, consumer_id, app_data)
        self.transport = transport
        self.producer_id = producer.id
        self.kind = str(reply.get("kind", producer.kind))
        self.rtp_parameters: JsonObject = reply.get("rtp_parameters", {})
        self.type = str(reply.get("type", "simple"))
        self.paused = paused
        self.producer_paused = bool(reply.get("producer_paused", producer.paused))
        self.priority = 1
        #: The last ``score`` event ({score, producer_score, producer_scores}), mediasoup's.
        self.score: JsonObject | None = None
        #: The last ``layerschange`` event ({spatial_layer, temporal_layer}).
        self.current_layers: JsonObject | None = None
        self._producer = producer

    async def pause(self) -> None:
        await self._request("pause")
        self.paused = True

    async def resume(self) -> None:
        await self._request("resume")
        self.paused = False

    async def request_key_frame(self) -> None:
        await self._request("request_key_frame")

    async def set_preferred_layers(
        self, spatial_layer: int, temporal_layer: int | None = None
    ) -> JsonObject:
        """A simulcast consumer's most wanted layers (mediasoup's setPreferredLayers).

        Returns ``{"preferredLayers": ..., "currentLayers": ...}`` as the worker clamped them.
        """
        data: JsonObject = {"spatial_layer": spatial_layer}
        if temporal_layer is not None:
            data["temporal_layer"] = temporal_layer
        return await self._request("set_preferred_layers", data)

    async def set_priority(self, priority: int) -> None:
        """mediasoup's setPriority (1..255): above 1, served before other video."""
        reply = await self._request("set_priority", {"priority": priority})
        self.priority = int(reply["priority"])

    async def get_stats(self) -> JsonObject:
        return await self._request("get_stats")

    async def close(self) -> None:
        if self._close_locally(None):
            await self._request_close()

    def _cascade(self) -> None:
        self.transport.consumers.pop(self.id, None)
        self._producer._consumers.pop(self.id, None)

    def _set_producer_paused(self, paused: bool) -> None:
        if self.closed or self.producer_paused == paused:
            return
        self.producer_paused = paused
        self._emit("producerpause" if paused else "producerresume")

    def _on_event(self, name: str, data: JsonObject) -> None:
        if name == "producerpause":
            self._set_producer_paused(True)
        elif name == "producerresume":
            self._set_producer_paused(False)
        else:
            if name == "score":
                self.score = data
            elif name == "layerschange":
                self.current_layers = data
            super()._on_event(name, data)
