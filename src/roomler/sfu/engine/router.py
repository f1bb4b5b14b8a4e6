"""Router: one room's media scope inside a worker (mediasoup's Router).

A router owns its WebRTC transports; producers and consumers live on those
transports, and a consumer may only take a producer of the same router. The
:class:`WorkerObjects` (every live object of the worker by id, and the ports
it holds) is shared by every router of the worker so that requests naming only
a producer or consumer id find it directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from roomler.sfu import ortc
from roomler.sfu.codecs import DEFAULT_MEDIA_CODECS

from .audio_level import AudioLevels
from .consumer import Consumer
from .media_transport import MediaTransport
from .metrics import RetiredCounts
from .pipe_transport import PipeTransport
from .producer import Producer
from .settings import EngineSettings
from .transport import WebRtcTransport
from .udp import bind_udp_socket

__all__ = ["AnyTransport", "Emit", "WorkerObjects", "Router"]

logger = logging.getLogger(__name__)

Emit = Callable[[str, str, dict[str, Any]], object]
#: A router's transports: browsers' (WebRTC) and other routers' (pipes).
AnyTransport = WebRtcTransport | PipeTransport


@dataclass
class WorkerObjects:
    """Every live engine object of one worker, by id, and the ports it holds."""

    routers: dict[str, Router] = field(default_factory=dict)
    transports: dict[str, AnyTransport] = field(default_factory=dict)
    producers: dict[str, Producer] = field(default_factory=dict)
    consumers: dict[str, Consumer] = field(default_factory=dict)
    ports: set[int] = field(default_factory=set)
    # The counts of closed objects, for worker.get_metrics (engine/metrics.py).
    retired: RetiredCounts = field(default_factory=RetiredCounts)

    def check_free(self, kind: str, object_id: str) -> None:
        table: dict[str, Any] = getattr(self, f"{kind}s")
        if object_id in table:
            raise ValueError(f"{kind} id {object_id!r} is already in use")


class Router:
    """The media codecs of a room and the transports that use them."""

    def __init__(
        self,
        router_id: str,
        media_codecs: object,
        *,
        objects: WorkerObjects,
        emit: Emit,
        loop: asyncio.AbstractEventLoop,
        settings: EngineSettings,
    ) -> None:
        codecs = DEFAULT_MEDIA_CODECS if media_codecs is None else media_codecs
        self.rtp_capabilities = ortc.generate_router_rtp_capabilities(codecs)
        self.id = router_id
        self.objects = objects
        self.loop = loop
        self.settings = settings
        self.closed = False
        self.transports: dict[str, AnyTransport] = {}
        self.producers: dict[str, Producer] = {}
        self._emit = emit
        # Who is speaking (enable_audio_levels); None until the web process asks.
        self.audio_levels: AudioLevels | None = None
        self._levels_timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"Router({self.id[:8]})"

    def emit(self, event: str, target_id: str, data: dict[str, Any]) -> None:
        """Send an event to the web process; a failing emitter must not break the engine."""
        try:
            self._emit(event, target_id, data)
        except Exception:
            logger.exception("%r could not emit %s for %s", self, event, target_id)

    # -- transports -------------------------------------------------------------

    def create_webrtc_transport(
        self,
        transport_id: str,
        *,
        listen_ip: str,
        announced_ip: str | None,
        port_min: int,
        port_max: int,
    ) -> WebRtcTransport:
        self.objects.check_free("transport", transport_id)
        sock = bind_udp_socket(listen_ip, port_min, port_max, self.objects.ports)
        try:
            transport = WebRtcTransport(
                self, transport_id, sock, listen_ip=listen_ip, announced_ip=announced_ip
            )
        except BaseException:
            sock.close()
            raise
        self.transports[transport_id] = transport
        self.objects.transports[transport_id] = transport
        self.objects.ports.add(transport.port)
        return transport

    def create_pipe_transport(
        self,
        transport_id: str,
        *,
        listen_ip: str,
        announced_ip: str | None,
        port_min: int,
        port_max: int,
        enable_rtx: bool = False,
        enable_srtp: bool = False,
    ) -> PipeTransport:
        """A transport toward another router (pipe_transport.py)."""
        self.objects.check_free("transport", transport_id)
        sock = bind_udp_socket(listen_ip, port_min, port_max, self.objects.ports)
        try:
            transport = PipeTransport(
                self,
                transport_id,
                sock,
                listen_ip=listen_ip,
                announced_ip=announced_ip,
                enable_rtx=enable_rtx,
                enable_srtp=enable_srtp,
            )
        except BaseException:
            sock.close()
            raise
        self.transports[transport_id] = transport
        self.objects.transports[transport_id] = transport
        self.objects.ports.add(transport.port)
        return transport

    def remove_transport(self, transport: MediaTransport) -> None:
        self.transports.pop(transport.id, None)
        if self.objects.transports.get(transport.id) is transport:
            del self.objects.transports[transport.id]
            self.objects.retired.add_transport(transport)
            self.objects.ports.discard(transport.port)

    # -- producers and consumers ------------------------------------------------

    def add_producer(self, producer: Producer) -> None:
        self.producers[producer.id] = producer
        self.objects.producers[producer.id] = producer
        self._observe_levels(producer)

    def remove_producer(self, producer: Producer) -> None:
        if self.audio_levels is not None:
            self.audio_levels.remove_producer(producer.id)
        self.producers.pop(producer.id, None)
        if self.objects.producers.get(producer.id) is producer:
            del self.objects.producers[producer.id]
            self.objects.retired.add_producer(producer)

    def add_consumer(self, consumer: Consumer) -> None:
        self.objects.consumers[consumer.id] = consumer

    def remove_consumer(self, consumer: Consumer) -> None:
        if self.objects.consumers.get(consumer.id) is consumer:
            del self.objects.consumers[consumer.id]
            self.objects.retired.add_consumer(consumer)

    def get_producer(self, producer_id: str) -> Producer:
        producer = self.producers.get(producer_id)
        if producer is None:
            raise ValueError(f"producer {producer_id!r} not found in router {self.id!r}")
        return producer

    def can_consume(self, producer_id: str, rtp_capabilities: object) -> bool:
        """Whether a device with ``rtp_capabilities`` can receive the producer."""
        producer = self.get_producer(producer_id)
        return ortc.can_consume(producer.consumable_rtp_parameters, rtp_capabilities)

    # -- who is speaking ---------------------------------------------------------

    def enable_audio_levels(
        self, *, interval: float, threshold: float, switch_intervals: int
    ) -> None:
        """Every `interval` s, emit ``router.audiolevels`` {volumes: [{producer_id, volume}]}
        (or once ``router.silence``) and ``router.dominantspeaker`` {producer_id} when the
        dominant speaker changes (audio_level.py). Its audio producers, now and later,
        report their levels."""
        if self.audio_levels is not None:
            raise ValueError(f"{self!r} reports audio levels already")
        self.audio_levels = AudioLevels(threshold=threshold, switch_intervals=switch_intervals)
        for producer in self.producers.values():
            self._observe_levels(producer)
        self._levels_timer = self.loop.call_later(interval, self._report_levels, interval)

    def _observe_levels(self, producer: Producer) -> None:
        if self.audio_levels is not None and producer.kind == "audio":
            self.audio_levels.add_producer(producer.id)
            producer.audio_level_sink = self.audio_levels.add_level

    def _report_levels(self, interval: float) -> None:
        self._levels_timer = self.loop.call_later(interval, self._report_levels, interval)
        if self.audio_levels is None:
            return
        report = self.audio_levels.report()
        if report.volumes:
            volumes = [{"producer_id": v.producer_id, "volume": v.volume} for v in report.volumes]
            self.emit("router.audiolevels", self.id, {"volumes": volumes})
        elif report.silence:
            self.emit("router.silence", self.id, {})
        if report.dominant is not None:
            self.emit("router.dominantspeaker", self.id, {"producer_id": report.dominant})

    # -- lifecycle --------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._levels_timer is not None:
            self._levels_timer.cancel()
        for transport in tuple(self.transports.values()):
            transport.close(reason="router closed")
        self.objects.routers.pop(self.id, None)
        logger.info("%r closed", self)

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rtpCapabilities": self.rtp_capabilities,
            "transportIds": list(self.transports),
            "producerIds": list(self.producers),
            "consumerIds": [c for t in self.transports.values() for c in t.consumers],
            "mapProducerIdConsumerIds": {p.id: list(p.consumers) for p in self.producers.values()},
        }
