"""A tiny signaling server for the roomler.sfu browser tests.

It serves the test page and its mediasoup-client bundle, and speaks a JSON-RPC
over one WebSocket per peer whose methods map 1:1 onto the roomler.sfu proxy
API (`Router.create_webrtc_transport`, `WebRtcTransport.connect/produce/
consume/close`, `Consumer.resume`, ...).  Every peer shares one Router, like
the participants of one room.

Wire format, one JSON object per WebSocket text message:

- request       ``{"id": 1, "method": "produce", "params": {...}}``
- response      ``{"id": 1, "result": {...}}`` or ``{"id": 1, "error": "<message>"}``
- notification  ``{"notification": "consumerClosed", "data": {...}}`` (server to peer)

A page that no test drives (Firefox, which Playwright's bundled builds would
replace) runs on its own (``/?autostart=...``, see entry.js) and POSTs what it
did and its ``getStats()`` to ``/report/<name>``; the test reads
``SignalingServer.reports``.

The server keeps every proxy it created in dictionaries keyed by id so that the
tests can look at the server side (`dump()`, `get_stats()`) of what a page did.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from roomler.sfu.pool import WorkerPool

logger = logging.getLogger(__name__)

INDEX_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>roomler.sfu test page</title></head>
<body><script src="/bundle.js"></script></body></html>
"""
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

Params = dict[str, Any]


def _require(params: Params, name: str) -> Any:
    if name not in params:
        raise ValueError(f"missing parameter {name!r}")
    return params[name]


def parse_request(text: str) -> tuple[int, str, Params]:
    """The (id, method, params) of one JSON-RPC request; ValueError if malformed."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"request is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ValueError("request must be a JSON object")
    request_id = message.get("id")
    method = message.get("method")
    params = message.get("params", {})
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        raise ValueError("request id must be an integer")
    if not isinstance(method, str):
        raise ValueError("request method must be a string")
    if not isinstance(params, dict):
        raise ValueError("request params must be an object")
    return request_id, method, params


@dataclass
class Peer:
    """One WebSocket connection: the objects it created, closed when it leaves."""

    websocket: WebSocket
    transport_ids: list[str] = field(default_factory=list)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.websocket.send_text(json.dumps(message))

    async def notify(self, name: str, data: dict[str, Any]) -> None:
        try:
            await self.send({"notification": name, "data": data})
        except (RuntimeError, WebSocketDisconnect):
            logger.info("Peer: notification %s after the WebSocket closed", name)


class SignalingServer:
    """Starlette + uvicorn on a free 127.0.0.1 port, one Router from `pool`."""

    def __init__(self, pool: WorkerPool, static_dir: Path) -> None:
        self.pool = pool
        self.static_dir = static_dir
        self.router: Any = None
        self.transports: dict[str, Any] = {}
        self.producers: dict[str, Any] = {}
        self.consumers: dict[str, Any] = {}
        # Every notification sent, in order, as (consumer or transport id, name).
        self.events: list[tuple[str, str]] = []
        # What driverless pages (Firefox) POST to /report, newest per page name.
        self.reports: dict[str, dict[str, Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: uvicorn.Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self.port = 0
        self.app = Starlette(
            routes=[
                Route("/", self._index),
                Route("/bundle.js", self._bundle),
                Route("/favicon.ico", self._no_content),
                Route("/report/{name}", self._report, methods=["POST"]),
                WebSocketRoute("/ws", self._websocket),
            ]
        )
        self._methods: dict[str, Callable[[Peer, Params], Awaitable[Any]]] = {
            "getRouterRtpCapabilities": self._get_router_rtp_capabilities,
            "createWebRtcTransport": self._create_webrtc_transport,
            "connectWebRtcTransport": self._connect_webrtc_transport,
            "produce": self._produce,
            "consume": self._consume,
            "resumeConsumer": self._resume_consumer,
            "setPreferredLayers": self._set_preferred_layers,
            "pauseConsumer": self._pause_consumer,
            "closeConsumer": self._close_consumer,
            "closeProducer": self._close_producer,
            "closeTransport": self._close_transport,
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def start(self) -> None:
        self.router = await self.pool.create_router()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            ws="websockets-sansio",
            ws_ping_interval=None,
        )
        self._server = uvicorn.Server(config)
        self._serve_task = asyncio.create_task(self._server.serve(sockets=[sock]))
        async with asyncio.timeout(START_TIMEOUT):
            while not self._server.started:
                if self._serve_task.done():
                    self._serve_task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        if self._server is not None and self._serve_task is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(self._serve_task, STOP_TIMEOUT)
            except TimeoutError:
                self._server.force_exit = True
                await asyncio.wait_for(self._serve_task, STOP_TIMEOUT)
        for task in list(self._tasks):
            task.cancel()
        if self.router is not None:
            await self.router.close()

    # HTTP

    async def _index(self, request: Request) -> Response:
        return HTMLResponse(INDEX_HTML)

    async def _no_content(self, request: Request) -> Response:
        return Response(status_code=204)

    async def _report(self, request: Request) -> Response:
        """A page without a driver reports its state (getStats(), errors) here."""
        try:
            report = json.loads(await request.body())
        except json.JSONDecodeError:
            return Response("report is not JSON", status_code=400)
        if not isinstance(report, dict):
            return Response("report must be a JSON object", status_code=400)
        self.reports[request.path_params["name"]] = report
        return Response(status_code=204)

    async def _bundle(self, request: Request) -> Response:
        return FileResponse(self.static_dir / "bundle.js", media_type="text/javascript")

    # WebSocket JSON-RPC

    async def _websocket(self, websocket: WebSocket) -> None:
        await websocket.accept()
        peer = Peer(websocket)
        try:
            while True:
                text = await websocket.receive_text()
                await peer.send(await self._answer(peer, text))
        except WebSocketDisconnect:
            pass
        finally:
            await self._forget_peer(peer)

    async def _answer(self, peer: Peer, text: str) -> dict[str, Any]:
        try:
            request_id, method, params = parse_request(text)
        except ValueError as exc:
            return {"id": None, "error": str(exc)}
        handler = self._methods.get(method)
        if handler is None:
            return {"id": request_id, "error": f"unknown method {method!r}"}
        try:
            return {"id": request_id, "result": await handler(peer, params)}
        except Exception as exc:  # the peer gets the reason; the server carries on
            logger.warning("SignalingServer: %s failed: %r", method, exc)
            return {"id": request_id, "error": f"{method}: {exc}"}

    async def _forget_peer(self, peer: Peer) -> None:
        for transport_id in peer.transport_ids:
            transport = self.transports.pop(transport_id, None)
            if transport is None:
                continue
            try:
                await transport.close()
            except Exception as exc:  # closing what the engine may already have closed
                logger.info("SignalingServer: closing transport %s: %r", transport_id, exc)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lookup(self, table: dict[str, Any], params: Params, name: str) -> Any:
        object_id = _require(params, name)
        if object_id not in table:
            raise ValueError(f"unknown {name} {object_id!r}")
        return table[object_id]

    # Methods: one proxy call each.

    async def _get_router_rtp_capabilities(self, peer: Peer, params: Params) -> Any:
        return self.router.rtp_capabilities

    async def _create_webrtc_transport(self, peer: Peer, params: Params) -> Any:
        transport = await self.router.create_webrtc_transport()
        self.transports[transport.id] = transport
        peer.transport_ids.append(transport.id)
        transport.on(
            "dtlsstatechange",
            lambda *args: self.events.append((transport.id, f"dtlsstatechange {args!r}")),
        )
        return {
            "id": transport.id,
            "iceParameters": transport.ice_parameters,
            "iceCandidates": transport.ice_candidates,
            "dtlsParameters": transport.dtls_parameters,
        }

    async def _connect_webrtc_transport(self, peer: Peer, params: Params) -> Any:
        transport = self._lookup(self.transports, params, "transportId")
        await transport.connect(_require(params, "dtlsParameters"))
        return {}

    async def _produce(self, peer: Peer, params: Params) -> Any:
        transport = self._lookup(self.transports, params, "transportId")
        producer = await transport.produce(
            _require(params, "kind"),
            _require(params, "rtpParameters"),
            app_data=params.get("appData"),
        )
        self.producers[producer.id] = producer
        return {"id": producer.id}

    async def _consume(self, peer: Peer, params: Params) -> Any:
        transport = self._lookup(self.transports, params, "transportId")
        producer_id = _require(params, "producerId")
        rtp_capabilities = _require(params, "rtpCapabilities")
        can_consume = self.router.can_consume(producer_id, rtp_capabilities)
        if inspect.isawaitable(can_consume):
            can_consume = await can_consume
        if not can_consume:
            raise ValueError(f"cannot consume producer {producer_id!r}")
        consumer = await transport.consume(producer_id, rtp_capabilities, paused=True)
        self.consumers[consumer.id] = consumer
        self._watch_consumer(peer, consumer)
        return {
            "id": consumer.id,
            "producerId": producer_id,
            "kind": consumer.kind,
            "rtpParameters": consumer.rtp_parameters,
        }

    def _watch_consumer(self, peer: Peer, consumer: Any) -> None:
        def closed(reason: str) -> Callable[..., None]:
            def callback(*args: Any) -> None:
                self.events.append((consumer.id, reason))
                self.consumers.pop(consumer.id, None)
                data = {"consumerId": consumer.id, "reason": reason}
                self._spawn(peer.notify("consumerClosed", data))

            return callback

        def forward(name: str) -> Callable[..., None]:
            def callback(*args: Any) -> None:
                self.events.append((consumer.id, name))
                self._spawn(peer.notify(name, {"consumerId": consumer.id}))

            return callback

        consumer.on("producerclose", closed("producerclose"))
        consumer.on("transportclose", closed("transportclose"))
        consumer.on("producerpause", forward("consumerPaused"))
        consumer.on("producerresume", forward("consumerResumed"))

    async def _resume_consumer(self, peer: Peer, params: Params) -> Any:
        await self._lookup(self.consumers, params, "consumerId").resume()
        return {}

    async def _set_preferred_layers(self, peer: Peer, params: Params) -> Any:
        consumer = self._lookup(self.consumers, params, "consumerId")
        return await consumer.set_preferred_layers(
            _require(params, "spatialLayer"), params.get("temporalLayer")
        )

    async def _pause_consumer(self, peer: Peer, params: Params) -> Any:
        await self._lookup(self.consumers, params, "consumerId").pause()
        return {}

    async def _close_consumer(self, peer: Peer, params: Params) -> Any:
        await self._lookup(self.consumers, params, "consumerId").close()
        self.consumers.pop(params["consumerId"], None)
        return {}

    async def _close_producer(self, peer: Peer, params: Params) -> Any:
        await self._lookup(self.producers, params, "producerId").close()
        self.producers.pop(params["producerId"], None)
        return {}

    async def _close_transport(self, peer: Peer, params: Params) -> Any:
        await self._lookup(self.transports, params, "transportId").close()
        self.transports.pop(params["transportId"], None)
        peer.transport_ids.remove(params["transportId"])
        return {}
