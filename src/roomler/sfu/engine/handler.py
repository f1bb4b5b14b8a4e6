"""WorkerHandler: the worker's side of the channel contract.

The worker process (``roomler.sfu.worker``) builds one handler with
``WorkerHandler(emit=..., loop=...)`` and awaits :meth:`WorkerHandler.handle`
for every request. The method names and data fields are those of
``notes/sfu-contract.md``; each returns the response ``data`` object.

Errors: a bad request (missing or malformed field, unknown id, id already in
use, unsupported parameters, no free port) raises ``ValueError`` whose message
names the problem; the worker turns it into ``{"ok": false, "error": ...}``.
Nothing a request carries can leave the engine half-changed: objects are
registered only once they are complete.

Events go out through ``emit(event, target_id, data)``; see the contract for
the list. Beyond it: ``transport.close {reason}`` when a transport closed
itself (DTLS failed), and the methods ``worker.close`` (close every router)
and ``transport.restart_ice`` (new ICE credentials, ``{ice_parameters}``).
``transport.connect`` answers ``{dtls_local_role}``; ``transport.produce``
answers ``{type: "simulcast"}`` for a producer with several encodings.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from .consumer import Consumer
from .producer import Producer
from .router import Emit, Router, WorkerObjects
from .settings import EngineSettings
from .transport import WebRtcTransport

__all__ = ["WorkerHandler"]

logger = logging.getLogger(__name__)

Data = dict[str, Any]
Method = Callable[[Data], Data | Awaitable[Data]]


def _field(data: Data, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = data.get(key)
    if value is None:
        raise ValueError(f"data.{key} is required")
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise ValueError(f"data.{key} must be {what}")
    return value


def _str(data: Data, key: str) -> str:
    value: str = _field(data, key, str, "a non-empty string")
    if not value:
        raise ValueError(f"data.{key} must be a non-empty string")
    return value


def _optional_str(data: Data, key: str) -> str | None:
    return None if data.get(key) in (None, "") else _str(data, key)


def _int(data: Data, key: str) -> int:
    value: int = _field(data, key, int, "an integer")
    return value


def _bool(data: Data, key: str, default: bool = False) -> bool:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValueError(f"data.{key} must be a boolean")
    return value


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
            "router.create": self._router_create,
            "router.close": self._router_close,
            "router.dump": lambda d: self._router(d).dump(),
            "router.can_consume": self._router_can_consume,
            "router.create_webrtc_transport": self._create_webrtc_transport,
            "transport.connect": self._transport_connect,
            "transport.close": self._transport_close,
            "transport.dump": lambda d: self._transport(d).dump(),
            "transport.get_stats": lambda d: self._transport(d).get_stats(),
            "transport.restart_ice": lambda d: {"ice_parameters": self._transport(d).restart_ice()},
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
        router_id = _str(data, "router_id")
        router = self.objects.routers.get(router_id)
        if router is None:
            raise ValueError(f"router {router_id!r} not found")
        return router

    def _transport(self, data: Data) -> WebRtcTransport:
        transport_id = _str(data, "transport_id")
        transport = self.objects.transports.get(transport_id)
        if transport is None:
            raise ValueError(f"transport {transport_id!r} not found")
        return transport

    def _producer(self, data: Data) -> Producer:
        producer_id = _str(data, "producer_id")
        producer = self.objects.producers.get(producer_id)
        if producer is None:
            raise ValueError(f"producer {producer_id!r} not found")
        return producer

    def _consumer(self, data: Data) -> Consumer:
        consumer_id = _str(data, "consumer_id")
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

    def _worker_close(self, data: Data) -> Data:
        for router in tuple(self.objects.routers.values()):
            router.close()
        return {}

    def _router_create(self, data: Data) -> Data:
        router_id = _str(data, "router_id")
        self.objects.check_free("router", router_id)
        router = Router(
            router_id,
            data.get("media_codecs"),
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

    def _router_can_consume(self, data: Data) -> Data:
        router = self._router(data)
        producer_id = _str(data, "producer_id")
        caps = _field(data, "rtp_capabilities", dict, "an object")
        return {"can_consume": router.can_consume(producer_id, caps)}

    def _create_webrtc_transport(self, data: Data) -> Data:
        router = self._router(data)
        transport = router.create_webrtc_transport(
            _str(data, "transport_id"),
            listen_ip=_str(data, "listen_ip"),
            announced_ip=_optional_str(data, "announced_ip"),
            port_min=_int(data, "port_min"),
            port_max=_int(data, "port_max"),
        )
        return {
            "id": transport.id,
            "ice_parameters": transport.ice_parameters,
            "ice_candidates": transport.ice_candidates,
            "dtls_parameters": transport.dtls_parameters,
        }

    # -- transports -----------------------------------------------------------------

    def _transport_connect(self, data: Data) -> Data:
        transport = self._transport(data)
        role = transport.connect(_field(data, "dtls_parameters", dict, "an object"))
        return {"dtls_local_role": role}

    def _transport_close(self, data: Data) -> Data:
        self._transport(data).close()
        return {}

    def _transport_produce(self, data: Data) -> Data:
        transport = self._transport(data)
        producer_id = _str(data, "producer_id")
        self.objects.check_free("producer", producer_id)
        producer = transport.produce(
            producer_id,
            _str(data, "kind"),
            _field(data, "rtp_parameters", dict, "an object"),
            paused=_bool(data, "paused"),
        )
        return {"type": producer.type}

    def _transport_consume(self, data: Data) -> Data:
        transport = self._transport(data)
        consumer_id = _str(data, "consumer_id")
        self.objects.check_free("consumer", consumer_id)
        producer = transport.router.get_producer(_str(data, "producer_id"))
        consumer = transport.consume(
            consumer_id,
            producer,
            _field(data, "rtp_capabilities", dict, "an object"),
            paused=_bool(data, "paused"),
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
