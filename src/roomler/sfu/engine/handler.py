"""WorkerHandler: the worker's side of the channel contract.

The worker process (``roomler.sfu.worker``) builds one handler with
``WorkerHandler(emit=..., loop=...)`` and awaits :meth:`WorkerHandler.handle`
for every request. The method names and data fields are those of
``notes/sfu-contract.md``; each returns the response ``data`` object.

Errors: a bad request (missing or malformed field, unknown id, id already in
use, unsupported parameters, no free port) raises ``ValueError`` whose message
names the problem (the fields of each request's ``data`` are pydantic models
below, checked strictly: ``data.port_min: Input should be a valid integer``);
the worker turns it into ``{"ok": false, "error": ...}``.
Nothing a request carries can leave the engine half-changed: objects are
registered only once they are complete.

Events go out through ``emit(event, target_id, data)``; see the contract for
the list. Beyond it: ``transport.close {reason}`` when a transport closed
itself (DTLS failed), and the methods ``worker.close`` (close every router),
``transport.restart_ice`` (new ICE credentials, ``{ice_parameters}``) and
``worker.get_metrics`` (object counts and packet totals, ``engine/metrics.py``).
``transport.connect`` answers ``{dtls_local_role}``; ``transport.produce``
answers ``{type: "simulcast"}`` for a producer with several encodings, and
its consumers are simulcast consumers: ``consumer.set_preferred_layers
{consumer_id, spatial_layer, temporal_layer?}`` answers ``{preferredLayers,
currentLayers, allowedSpatialLayer}`` and ``consumer.layerschange {spatial_layer,
temporal_layer}`` tells what one forwards (the transport's bandwidth estimate caps
it, see ``engine/bandwidth.py``). ``consumer.set_priority {consumer_id, priority}``
(1..255, mediasoup's) answers ``{priority}``: above 1 a video consumer is served
before other video when the estimate is short. Every consumer emits ``consumer.score
{score, producer_score, producer_scores}`` (0..10, from the loss its receiver reports and
the loss the SFU sees on each producer encoding) when it changes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import Field

from roomler.sfu.validation import Id, JsonObject, Text, WireModel

from .consumer import Consumer
from .metrics import worker_metrics
from .pipe_transport import PipeTransport
from .producer import Producer
from .router import AnyTransport, Emit, Router, WorkerObjects
from .settings import EngineSettings
from .simulcast_consumer import SimulcastConsumer
from .transport import WebRtcTransport

__all__ = ["WorkerHandler"]

logger = logging.getLogger(__name__)

Data = dict[str, Any]
Method = Callable[[Data], Data | Awaitable[Data]]


# -- the requests' data (pydantic, roomler.sfu.validation) -----------------------------


class RouterRef(WireModel):
    router_id: Id


class TransportRef(WireModel):
    transport_id: Id


class ProducerRef(WireModel):
    producer_id: Id


class ConsumerRef(WireModel):
    consumer_id: Id


class ConsumerPreferredLayers(ConsumerRef):
    spatial_layer: int
    temporal_layer: int | None = None


class ConsumerPriority(ConsumerRef):
    priority: int


class RouterCreate(RouterRef):
    # Checked by ortc.generate_router_rtp_capabilities, which names what is wrong.
    media_codecs: Any = None


class RouterCanConsume(RouterRef):
    producer_id: Id
    rtp_capabilities: JsonObject


class RouterEnableAudioLevels(RouterRef):
    interval_ms: int = Field(ge=20, le=10_000)
    threshold: float = Field(ge=-127, le=0)  # dBov
    switch_intervals: int = Field(ge=1, le=100)


class CreateWebRtcTransport(RouterRef):
    transport_id: Id
    listen_ip: Text
    announced_ip: str | None = None
    port_min: int
    port_max: int


class CreatePipeTransport(RouterRef):
    transport_id: Id
    listen_ip: Text
    announced_ip: str | None = None
    port_min: int
    port_max: int
    enable_rtx: bool = False
    enable_srtp: bool = False


class PipeConnect(TransportRef):
    ip: Text
    port: int
    srtp_parameters: JsonObject | None = None


class PipeConsume(TransportRef):
    consumer_id: Id
    producer_id: Id
    paused: bool = False


class TransportConnect(TransportRef):
    dtls_parameters: JsonObject


class TransportProduce(TransportRef):
    producer_id: Id
    kind: Text
    rtp_parameters: JsonObject
    paused: bool = False


class TransportConsume(TransportRef):
    consumer_id: Id
    producer_id: Id
    rtp_capabilities: JsonObject
    paused: bool = False


class WorkerHandler:
    """Dispatches channel requests to the engine objects of this worker."""

    def __init__(
        self,
        emit: Emit,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        settings: EngineSettings | None = None,
    ) -> None:
        self._emit = emit
        self._loop = loop
        self.settings = settings or EngineSettings()
        self.objects = WorkerObjects()
        self._methods: dict[str, Method] = {
            "worker.dump": self._worker_dump,
            "worker.close": self._worker_close,
            "worker.get_metrics": self._worker_get_metrics,
            "router.create": self._router_create,
            "router.close": self._router_close,
            "router.dump": lambda d: self._router(d).dump(),
            "router.can_consume": self._router_can_consume,
            "router.enable_audio_levels": self._router_enable_audio_levels,
            "router.create_webrtc_transport": self._create_webrtc_transport,
            "router.create_pipe_transport": self._create_pipe_transport,
            "transport.connect": self._transport_connect,
            "transport.close": self._transport_close,
            "transport.dump": lambda d: self._transport(d).dump(),
            "transport.get_stats": lambda d: self._transport(d).get_stats(),
            "transport.restart_ice": lambda d: {"ice_parameters": self._webrtc(d).restart_ice()},
            "transport.produce": self._transport_produce,
            "transport.consume": self._transport_consume,
            "producer.pause": self._producer_pause,
            "producer.resume": self._producer_resume,
            "producer.close": self._producer_close,
            "producer.dump": lambda d: self._producer(d).dump(),
            "producer.get_stats": lambda d: self._producer(d).get_stats(),
            "consumer.pause": self._consumer_pause,
            "consumer.resume": self._consumer_resume,
            "consumer.close": self._consumer_close,
            "consumer.dump": lambda d: self._consumer(d).dump(),
            "consumer.get_stats": lambda d: self._consumer(d).get_stats(),
            "consumer.request_key_frame": self._consumer_request_key_frame,
            "consumer.set_preferred_layers": self._consumer_set_preferred_layers,
            "consumer.set_priority": self._consumer_set_priority,
        }

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    async def handle(self, method: str, data: Data) -> Data:
        """Run one request; ValueError describes a bad one."""
        handler = self._methods.get(method)
        if handler is None:
            raise ValueError(f"unknown method {method!r}")
        if not isinstance(data, dict):
            raise ValueError(f"{method}: data must be an object")
        result = handler(data)
        if isinstance(result, Awaitable):
            result = await result
        return result

    async def close(self) -> None:
        """Close every router (and so every transport and its port)."""
        self._worker_close({})

    # -- lookups ------------------------------------------------------------------

    def _router(self, data: Data) -> Router:
        router_id = RouterRef.parse(data, "data").router_id
        router = self.objects.routers.get(router_id)
        if router is None:
            raise ValueError(f"router {router_id!r} not found")
        return router

    def _transport(self, data: Data) -> AnyTransport:
        transport_id = TransportRef.parse(data, "data").transport_id
        transport = self.objects.transports.get(transport_id)
        if transport is None:
            raise ValueError(f"transport {transport_id!r} not found")
        return transport

    def _webrtc(self, data: Data) -> WebRtcTransport:
        transport = self._transport(data)
        if not isinstance(transport, WebRtcTransport):
            raise ValueError(f"transport {transport.id!r} is a pipe transport, not a WebRTC one")
        return transport

    def _producer(self, data: Data) -> Producer:
        producer_id = ProducerRef.parse(data, "data").producer_id
        producer = self.objects.producers.get(producer_id)
        if producer is None:
            raise ValueError(f"producer {producer_id!r} not found")
        return producer

    def _consumer(self, data: Data) -> Consumer:
        consumer_id = ConsumerRef.parse(data, "data").consumer_id
        consumer = self.objects.consumers.get(consumer_id)
        if consumer is None:
            raise ValueError(f"consumer {consumer_id!r} not found")
        return consumer

    # -- worker and routers ---------------------------------------------------------

    def _worker_dump(self, data: Data) -> Data:
        objects = self.objects
        return {
            "pid": os.getpid(),
            "routers": list(objects.routers),
            "transports": len(objects.transports),
            "producers": len(objects.producers),
            "consumers": len(objects.consumers),
            "ports": sorted(objects.ports),
        }

    def _worker_get_metrics(self, data: Data) -> Data:
        objects = self.objects
        return worker_metrics(
            objects.retired,
            len(objects.routers),
            objects.transports,
            objects.producers,
            objects.consumers,
        )

    def _worker_close(self, data: Data) -> Data:
        for router in tuple(self.objects.routers.values()):
            router.close()
        return {}

    def _router_create(self, data: Data) -> Data:
        request = RouterCreate.parse(data, "data")
        router_id = request.router_id
        self.objects.check_free("router", router_id)
        router = Router(
            router_id,
            request.media_codecs,
            objects=self.objects,
            emit=self._emit,
            loop=self.loop,
            settings=self.settings,
        )
        self.objects.routers[router_id] = router
        logger.info("%r created", router)
        return {"rtp_capabilities": router.rtp_capabilities}

    def _router_close(self, data: Data) -> Data:
        self._router(data).close()
        return {}

    def _router_enable_audio_levels(self, data: Data) -> Data:
        request = RouterEnableAudioLevels.parse(data, "data")
        self._router(data).enable_audio_levels(
            interval=request.interval_ms / 1000,
            threshold=request.threshold,
            switch_intervals=request.switch_intervals,
        )
        return {}

    def _router_can_consume(self, data: Data) -> Data:
        request = RouterCanConsume.parse(data, "data")
        router = self._router(data)
        return {"can_consume": router.can_consume(request.producer_id, request.rtp_capabilities)}

    def _create_webrtc_transport(self, data: Data) -> Data:
        request = CreateWebRtcTransport.parse(data, "data")
        router = self._router(data)
        transport = router.create_webrtc_transport(
            request.transport_id,
            listen_ip=request.listen_ip,
            announced_ip=request.announced_ip or None,
            port_min=request.port_min,
            port_max=request.port_max,
        )
        return {
            "id": transport.id,
            "ice_parameters": transport.ice_parameters,
            "ice_candidates": transport.ice_candidates,
            "dtls_parameters": transport.dtls_parameters,
        }

    def _create_pipe_transport(self, data: Data) -> Data:
        request = CreatePipeTransport.parse(data, "data")
        router = self._router(data)
        transport = router.create_pipe_transport(
            request.transport_id,
            listen_ip=request.listen_ip,
            announced_ip=request.announced_ip or None,
            port_min=request.port_min,
            port_max=request.port_max,
            enable_rtx=request.enable_rtx,
            enable_srtp=request.enable_srtp,
        )
        return {
            "id": transport.id,
            "tuple": transport.tuple,
            "srtp_parameters": transport.srtp_parameters,
        }

    # -- transports -----------------------------------------------------------------

    def _pipe(self, data: Data) -> PipeTransport | None:
        """The pipe transport the request names, if it names one (its data differ)."""
        transport = self.objects.transports.get(TransportRef.parse(data, "data").transport_id)
        return transport if isinstance(transport, PipeTransport) else None

    def _transport_connect(self, data: Data) -> Data:
        pipe_transport = self._pipe(data)
        if pipe_transport is not None:
            pipe = PipeConnect.parse(data, "data")
            pipe_transport.connect(pipe.ip, pipe.port, pipe.srtp_parameters)
            return {"tuple": pipe_transport.tuple}
        request = TransportConnect.parse(data, "data")
        role = self._webrtc(data).connect(request.dtls_parameters)
        return {"dtls_local_role": role}

    def _transport_close(self, data: Data) -> Data:
        self._transport(data).close()
        return {}

    def _transport_produce(self, data: Data) -> Data:
        request = TransportProduce.parse(data, "data")
        transport = self._transport(data)
        self.objects.check_free("producer", request.producer_id)
        producer = transport.produce(
            request.producer_id,
            request.kind,
            request.rtp_parameters,
            paused=request.paused,
        )
        return {"type": producer.type}

    def _transport_consume(self, data: Data) -> Data:
        pipe_transport = self._pipe(data)
        consumer: Consumer
        if pipe_transport is not None:
            pipe = PipeConsume.parse(data, "data")
            self.objects.check_free("consumer", pipe.consumer_id)
            producer = pipe_transport.router.get_producer(pipe.producer_id)
            consumer = pipe_transport.consume(pipe.consumer_id, producer, paused=pipe.paused)
        else:
            request = TransportConsume.parse(data, "data")
            transport = self._webrtc(data)
            self.objects.check_free("consumer", request.consumer_id)
            producer = transport.router.get_producer(request.producer_id)
            consumer = transport.consume(
                request.consumer_id,
                producer,
                request.rtp_capabilities,
                paused=request.paused,
            )
        return {
            "kind": consumer.kind,
            "rtp_parameters": consumer.rtp_parameters,
            "type": consumer.type,
            "producer_paused": consumer.producer_paused,
        }

    # -- producers and consumers ----------------------------------------------------

    def _producer_pause(self, data: Data) -> Data:
        self._producer(data).pause()
        return {}

    def _producer_resume(self, data: Data) -> Data:
        self._producer(data).resume()
        return {}

    def _producer_close(self, data: Data) -> Data:
        self._producer(data).close()
        return {}

    def _consumer_pause(self, data: Data) -> Data:
        self._consumer(data).pause()
        return {}

    def _consumer_resume(self, data: Data) -> Data:
        self._consumer(data).resume()
        return {}

    def _consumer_close(self, data: Data) -> Data:
        self._consumer(data).close()
        return {}

    def _consumer_request_key_frame(self, data: Data) -> Data:
        self._consumer(data).request_key_frame()
        return {}

    def _consumer_set_preferred_layers(self, data: Data) -> Data:
        request = ConsumerPreferredLayers.parse(data, "data")
        consumer = self._consumer(data)
        if not isinstance(consumer, SimulcastConsumer):
            raise ValueError(f"consumer {consumer.id!r} is {consumer.type}: it has no layers")
        consumer.set_preferred_layers(request.spatial_layer, request.temporal_layer)
        return consumer.layers()

    def _consumer_set_priority(self, data: Data) -> Data:
        request = ConsumerPriority.parse(data, "data")
        consumer = self._consumer(data)
        consumer.set_priority(request.priority)
        return {"priority": consumer.priority}
