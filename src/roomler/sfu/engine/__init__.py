"""The media engine that runs inside an SFU worker process.

``WorkerHandler`` (``handler.py``) answers the channel requests of the web
process; it owns Routers (``router.py``), each with WebRtcTransports
(``transport.py``: UDP + ICE-lite + DTLS + SRTP) carrying Producers
(``producer.py``) and Consumers (``consumer.py``). The helpers are sans-I/O:
``rewrite.py`` (the per-consumer packet builder), ``nack.py`` (retransmission
buffer, NACK generator), ``rtp_stats.py`` (RTCP report counters), ``bwe.py``
(transport-wide-cc feedback, REMB fallback).
"""

from __future__ import annotations

from .consumer import Consumer
from .handler import WorkerHandler
from .producer import Producer
from .router import Router
from .settings import EngineSettings
from .transport import WebRtcTransport

__all__ = [
    "Consumer",
    "EngineSettings",
    "Producer",
    "Router",
    "WebRtcTransport",
    "WorkerHandler",
]
