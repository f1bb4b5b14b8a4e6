"""The media engine that runs inside an SFU worker process.

``WorkerHandler`` (``handler.py``) answers the channel requests of the web
process; it owns Routers (``router.py``), each with WebRtcTransports
(``transport.py``: ICE-lite (``ice_path.py``: valid and selected addresses, ICE
state) + DTLS (``dtls_driver.py``: the endpoint's timer and held datagrams) +
SRTP + the bandwidth estimate (``bandwidth_timer.py``)) and PipeTransports
(``pipe_transport.py``), both ``MediaTransport``s (``media_transport.py``: the
UDP socket (``udp.py``), the sending protocol, RTCP routing, periodic RTCP)
carrying Producers (``producer.py``) and Consumers (``consumer.py``).

Modules import downward only: ``handler -> router -> transport / pipe_transport
-> media_transport -> rtp_listener / rtcp_scheduler -> consumer -> producer ->
interfaces``. A lower
object is given what it needs of a higher one as a Protocol
(``interfaces.py``: ``MediaSender``, ``RtpSink``; ``media_transport.TransportOwner``)
and callbacks, never its class (tests/sfu/engine/test_imports.py holds this).

The helpers are sans-I/O: ``rtp_listener.py`` (SSRC / MID / RID -> producer,
RTCP -> producer or consumer), ``rtcp_scheduler.py`` (what RTCP a transport
sends of its own accord, and when), ``rewrite.py`` (the per-consumer packet
builder), ``nack.py`` (retransmission buffer, NACK generator),
``rtp_stats.py`` (RTCP report counters), ``bwe.py`` (transport-wide-cc
feedback, REMB fallback).
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
