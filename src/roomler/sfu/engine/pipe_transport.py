"""PipeTransport: plain RTP/RTCP over UDP between two routers (mediasoup's PipeTransport).

Two routers -- in two workers of one host, or on two hosts -- are joined by a pair of
pipe transports, each told the other's address (:meth:`PipeTransport.connect`). There
is no ICE and no DTLS: the pair trust each other's address, and a datagram from any
other address is dropped. With ``enable_srtp`` each side makes a random master key
(``srtp_parameters``, AEAD_AES_128_GCM) and is given the other's on connect.

What crosses a pipe:

- RTP of *pipe consumers* (:mod:`.pipe_consumer`: every encoding of a producer) one
  way, received by *pipe producers* on the other router (ordinary
  :class:`~.producer.Producer` objects made from the pipe consumer's parameters, with
  the source producer's id);
- RTCP back: keyframe requests (PLI, FIR) and, with ``enable_rtx``, NACKs from the
  pipe producer, answered by the pipe consumer over RTX; Receiver Reports;
- RTCP forward: each pipe consumer's Sender Reports, one per encoding, so the far
  router maps the encodings' timelines as the source router would.

No congestion control runs on a pipe (no transport-cc, no REMB), as in mediasoup: it
is a link between servers. The periodic RTCP is the :class:`~.rtcp_scheduler.RtcpScheduler`'s,
as on a WebRTC transport.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import random
import secrets
import socket
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol

from roomler.sfu import ortc
from roomler.sfu.demux import PacketKind, classify
from roomler.sfu.rtcp import (
    Fir,
    GenericNack,
    Pli,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SenderReport,
    ntp_from_unix,
    parse_rtcp,
    serialize_rtcp,
)
from roomler.sfu.rtp import read_extensions, read_header
from roomler.sfu.srtp import SrtpContext, SrtpKeys, SrtpProfile

from .consumer import Consumer
from .pipe_consumer import PipeConsumer
from .producer import Producer
from .rtcp_scheduler import RtcpScheduler
from .rtp_listener import RtpListener
from .rtp_stats import CounterRate
from .settings import EngineSettings

__all__ = ["PIPE_SRTP_SUITES", "PipeTransport", "PipeTransportOwner"]

logger = logging.getLogger(__name__)

RECV_SIZE = 4096
MAX_READS = 64
#: mediasoup's names of the SRTP suites a pipe can use, and ours.
PIPE_SRTP_SUITES = {
    "AEAD_AES_128_GCM": SrtpProfile.AEAD_AES_128_GCM,
    "AES_CM_128_HMAC_SHA1_80": SrtpProfile.AES128_CM_SHA1_80,
}
DEFAULT_SRTP_SUITE = "AEAD_AES_128_GCM"

Address = tuple[str, int]
#: What recvfrom gives (IPv6 adds flow info and scope id).
SocketAddress = tuple[Any, ...]


class PipeTransportOwner(Protocol):
    """What a PipeTransport needs of its Router (see transport.TransportOwner)."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def settings(self) -> EngineSettings: ...

    @property
    def rtp_capabilities(self) -> ortc.RtpCapabilities: ...

    def emit(self, event: str, target_id: str, data: dict[str, Any]) -> None: ...

    def get_producer(self, producer_id: str) -> Producer: ...

    def add_producer(self, producer: Producer) -> None: ...

    def remove_producer(self, producer: Producer) -> None: ...

    def add_consumer(self, consumer: Consumer) -> None: ...

    def remove_consumer(self, consumer: Consumer) -> None: ...

    def remove_transport(self, transport: PipeTransport) -> None: ...


def _srtp_keys(suite: str, local: bytes, remote_parameters: object) -> SrtpKeys:
    """Our keys for `suite` from our master key+salt and the far side's srtp_parameters."""
    if not isinstance(remote_parameters, dict):
        raise ValueError("srtp_parameters must be an object with cryptoSuite and keyBase64")
    remote_suite = remote_parameters.get("cryptoSuite")
    if remote_suite != suite:
        raise ValueError(
            f"srtp_parameters.cryptoSuite must be {suite!r} (this pipe's), got {remote_suite!r}"
        )
    encoded = remote_parameters.get("keyBase64")
    if not isinstance(encoded, str):
        raise ValueError("srtp_parameters.keyBase64 must be a string")
    try:
        remote = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise ValueError("srtp_parameters.keyBase64 is not base64") from None
    profile = PIPE_SRTP_SUITES[suite]
    size = profile.key_length + profile.salt_length
    if len(remote) != size:
        raise ValueError(f"srtp_parameters.keyBase64 must hold {size} bytes for {suite}")
    cut = profile.key_length
    return SrtpKeys(profile, local[:cut], local[cut:], remote[:cut], remote[cut:])


class PipeTransport:
    """Plain (or SRTP) RTP/RTCP on one UDP port, toward one other router's pipe transport."""

    def __init__(
        self,
        router: PipeTransportOwner,
        transport_id: str,
        sock: socket.socket,
        *,
        listen_ip: str,
        announced_ip: str | None,
        enable_rtx: bool = False,
        enable_srtp: bool = False,
    ) -> None:
        self.router = router
        self.id = transport_id
        self.loop = router.loop
        self.settings = router.settings
        self.listen_ip = listen_ip
        self.port: int = sock.getsockname()[1]
        self.announced_address = announced_ip or _reachable(listen_ip)
        self.enable_rtx = enable_rtx
        self.closed = False
        self.rtcp_ssrc = random.randint(1, 0xFFFFFFFF)
        self.cname = secrets.token_hex(8)
        self.producers: dict[str, Producer] = {}
        self.consumers: dict[str, Consumer] = {}
        self.remote: Address | None = None
        #: Whether RTP can be sent (`MediaSender.can_send`): once connected.
        self.can_send = False
        self._sock = sock
        self._fd = sock.fileno()
        self._srtp_suite = DEFAULT_SRTP_SUITE if enable_srtp else None
        self._srtp_local = b""
        if enable_srtp:
            profile = PIPE_SRTP_SUITES[DEFAULT_SRTP_SUITE]
            self._srtp_local = secrets.token_bytes(profile.key_length + profile.salt_length)
        self._srtp: SrtpContext | None = None
        self.rtp_listener = RtpListener()
        self._ssrc_table = self.rtp_listener.ssrc_table
        # The far side's RTCP names a pipe consumer's stream by the SSRC we send it with.
        self._consumer_streams: dict[int, PipeConsumer] = {}
        self._rtcp = RtcpScheduler(self.settings, self.rtcp_ssrc, self.cname, self.loop.time())
        self._tick_handle: asyncio.TimerHandle | None = None
        self.packets_received = 0
        self.bytes_received = 0
        self.packets_sent = 0
        self.bytes_sent = 0
        self.rtp_packets_received = 0
        self.rtcp_packets_received = 0
        self.rtcp_packets_sent = 0
        self.drops: Counter[str] = Counter()
        self._recv_rate = CounterRate()
        self._send_rate = CounterRate()
        self.loop.add_reader(self._fd, self._on_readable)
        logger.info("%r listening on %s:%d", self, listen_ip, self.port)

    def __repr__(self) -> str:
        return f"PipeTransport({self.id[:8]})"

    # -- parameters ---------------------------------------------------------------

    @property
    def tuple(self) -> dict[str, Any]:
        """mediasoup's ``tuple``: our address, and the far side's once connected."""
        result: dict[str, Any] = {
            "localIp": self.announced_address,
            "localAddress": self.announced_address,
            "localPort": self.port,
            "protocol": "udp",
        }
        if self.remote is not None:
            result["remoteIp"], result["remotePort"] = self.remote
        return result

    @property
    def srtp_parameters(self) -> dict[str, str] | None:
        if self._srtp_suite is None:
            return None
        return {
            "cryptoSuite": self._srtp_suite,
            "keyBase64": base64.b64encode(self._srtp_local).decode("ascii"),
        }

    def connect(self, ip: str, port: int, srtp_parameters: object = None) -> None:
        """Send to (and accept only from) the far pipe transport at ``ip``:``port``."""
        if self.remote is not None:
            raise ValueError(f"{self!r}: connect() was already called")
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(f"ip {ip!r} is not an IP address") from None
        if not 1 <= port <= 65535:
            raise ValueError(f"port must be 1..65535, got {port}")
        if self._srtp_suite is None:
            if srtp_parameters is not None:
                raise ValueError("srtp_parameters given but this pipe was made without SRTP")
        else:
            if srtp_parameters is None:
                raise ValueError("srtp_parameters are required: this pipe was made with SRTP")
            self._srtp = SrtpContext(
                _srtp_keys(self._srtp_suite, self._srtp_local, srtp_parameters)
            )
        self.remote = (ip, port)
        self.can_send = True
        now = self.loop.time()
        self._rtcp.start(now)
        self._schedule_tick(now)
        for producer in tuple(self.producers.values()):
            producer.on_transport_connected()
        for consumer in tuple(self.consumers.values()):
            consumer.on_transport_connected()
        logger.info("%r connected to %s:%d", self, ip, port)

    # -- receiving ------------------------------------------------------------------

    def _on_readable(self) -> None:
        sock = self._sock
        for _ in range(MAX_READS):
            if self.closed:
                return
            try:
                data, addr = sock.recvfrom(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.drops["socket_error"] += 1
                logger.debug("%r recvfrom failed: %s", self, exc)
                continue
            self.datagram_received(data, addr)

    def datagram_received(self, data: bytes, addr: SocketAddress) -> None:
        """One datagram from the far pipe transport; never raises."""
        now = self.loop.time()
        self.packets_received += 1
        self.bytes_received += len(data)
        if self.remote is None or (addr[0], addr[1]) != self.remote:
            self.drops["unknown_address"] += 1
            return
        kind = classify(data)
        try:
            if kind is PacketKind.RTP:
                self._on_rtp(data, now)
            elif kind is PacketKind.RTCP:
                self._on_rtcp(data, now)
            else:
                self.drops["not_rtp"] += 1
        except ValueError as exc:
            self.drops[f"invalid_{kind.value}"] += 1
            logger.debug("%r dropped a %s datagram: %s", self, kind.value, exc)
        except Exception:
            self.drops["error"] += 1
            logger.exception("%r failed on a datagram", self)

    def _on_rtp(self, data: bytes, now: float) -> None:
        if self._srtp is not None:
            data = self._srtp.unprotect_rtp(data)
        header = read_header(data)
        self.rtp_packets_received += 1
        binding = self._ssrc_table.get(header.ssrc)
        if binding is None:
            self.drops["unknown_ssrc"] += 1
            return
        extensions = read_extensions(data, header) if header.extension_profile else {}
        producer, stream, is_rtx = binding
        producer.receive_rtp(data, header, extensions, stream, is_rtx, now)

    def _on_rtcp(self, data: bytes, now: float) -> None:
        if self._srtp is not None:
            data = self._srtp.unprotect_rtcp(data)
        packets = parse_rtcp(data)
        self.rtcp_packets_received += 1
        arrival_ntp = ntp_from_unix(time.time())
        for packet in packets:
            self._dispatch_rtcp(packet, now, arrival_ntp)

    def _dispatch_rtcp(self, packet: RtcpPacket, now: float, arrival_ntp: int) -> None:
        streams = self._consumer_streams
        blocks: list[ReportBlock] = []
        if isinstance(packet, SenderReport):
            stream = self.rtp_listener.media_stream(packet.ssrc)
            if stream is not None:
                stream[0].on_sender_report(
                    stream[1], packet.ntp_timestamp, packet.rtp_timestamp, now
                )
            blocks = packet.reports
        elif isinstance(packet, ReceiverReport):
            blocks = packet.reports
        elif isinstance(packet, GenericNack):
            consumer = streams.get(packet.media_ssrc)
            if consumer is not None:
                consumer.on_stream_nack(packet.media_ssrc, packet.lost, now)
        elif isinstance(packet, Pli):
            consumer = streams.get(packet.media_ssrc)
            if consumer is not None:
                consumer.on_stream_key_frame_request(packet.media_ssrc, "pli", now)
        elif isinstance(packet, Fir):
            for ssrc, _ in packet.entries:
                consumer = streams.get(ssrc)
                if consumer is not None:
                    consumer.on_stream_key_frame_request(ssrc, "fir", now)
        for block in blocks:
            consumer = streams.get(block.ssrc)
            if consumer is not None:
                consumer.on_report_block(block, arrival_ntp)

    # -- sending (MediaSender) ----------------------------------------------------------

    def next_transport_sequence(self) -> int:
        return 0  # no transport-wide congestion control on a pipe

    def retransmission_allowed(self, now: float) -> bool:
        return True  # no bandwidth estimate to budget by

    resend_interval = 0.0

    def send_rtp(self, packet: bytes) -> bytes | None:
        remote = self.remote
        if remote is None or self.closed:
            return None
        if self._srtp is not None:
            try:
                packet = self._srtp.protect_rtp(packet)
            except ValueError as exc:
                self.drops["srtp_protect"] += 1
                logger.debug("%r cannot protect RTP: %s", self, exc)
                return None
        self._sendto(packet, remote)
        return packet

    def send_protected(self, data: bytes) -> None:
        if self.remote is not None:
            self._sendto(data, self.remote)

    def send_rtcp(self, packets: Iterable[RtcpPacket]) -> None:
        self._send_rtcp_bytes(serialize_rtcp(packets))

    def _send_rtcp_bytes(self, data: bytes) -> None:
        remote = self.remote
        if remote is None:
            return
        if self._srtp is not None:
            try:
                data = self._srtp.protect_rtcp(data)
            except ValueError as exc:
                self.drops["srtcp_protect"] += 1
                logger.debug("%r cannot protect RTCP: %s", self, exc)
                return
        self.rtcp_packets_sent += 1
        self._sendto(data, remote)

    def _sendto(self, data: bytes, addr: Address) -> None:
        if self.closed:
            return
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.drops["send_buffer_full"] += 1
            return
        except OSError as exc:
            self.drops["send_error"] += 1
            logger.debug("%r sendto %s failed: %s", self, addr, exc)
            return
        self.packets_sent += 1
        self.bytes_sent += len(data)

    # -- periodic RTCP --------------------------------------------------------------------

    def _on_tick(self) -> None:
        self._tick_handle = None
        if self.closed:
            return
        now = self.loop.time()
        self._recv_rate.sample(self.bytes_received, now)
        self._send_rate.sample(self.bytes_sent, now)
        try:
            datagrams, _ = self._rtcp.on_tick(
                now,
                tuple(self.producers.values()),
                tuple(self.consumers.values()),
                transport_cc=False,
            )
            for datagram in datagrams:
                self._send_rtcp_bytes(datagram)
        except Exception:
            logger.exception("%r periodic RTCP failed", self)
        self._schedule_tick(now)

    def _schedule_tick(self, now: float) -> None:
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        delay = self._rtcp.next_delay(now, has_producers=bool(self.producers))
        self._tick_handle = self.loop.call_later(delay, self._on_tick)

    # -- producers and consumers ------------------------------------------------------------

    def produce(
        self, producer_id: str, kind: str, rtp_parameters: object, *, paused: bool = False
    ) -> Producer:
        """A pipe producer: the far pipe consumer's parameters, the source producer's id."""
        producer = Producer(
            producer_id,
            kind,
            rtp_parameters,
            router_capabilities=self.router.rtp_capabilities,
            sender=self,
            loop=self.loop,
            settings=self.settings,
            emit=self.router.emit,
            on_close=self._remove_producer,
            paused=paused,
        )
        if not producer.ssrc_bindings():
            raise ValueError("a pipe producer needs rtpParameters.encodings[].ssrc")
        self.rtp_listener.add_producer(producer)
        self.producers[producer.id] = producer
        self.router.add_producer(producer)
        if len(self.producers) == 1 and self._tick_handle is not None:
            self._schedule_tick(self.loop.time())  # NACKs from now on
        logger.info("%r produces %r (%s)", self, producer, producer.mime_type)
        return producer

    def _remove_producer(self, producer: Producer) -> None:
        self.producers.pop(producer.id, None)
        self.rtp_listener.remove_producer(producer)
        self.router.remove_producer(producer)

    def consume(self, consumer_id: str, producer: Producer, *, paused: bool = False) -> Consumer:
        """A pipe consumer of ``producer``: all its encodings, toward the far router."""
        params = ortc.get_pipe_consumer_rtp_parameters(
            producer.consumable_rtp_parameters, enable_rtx=self.enable_rtx
        )
        consumer = PipeConsumer(
            consumer_id,
            producer,
            params,
            sender=self,
            loop=self.loop,
            settings=self.settings,
            emit=self.router.emit,
            on_close=self._remove_consumer,
            paused=paused,
        )
        if any(ssrc in self._consumer_streams for ssrc in consumer.ssrcs):
            raise ValueError("pipe consumer SSRC collides, try again")
        for ssrc in consumer.ssrcs:
            self._consumer_streams[ssrc] = consumer
        self.consumers[consumer.id] = consumer
        producer.add_consumer(consumer)
        self.router.add_consumer(consumer)
        if consumer.active and self.can_send:
            consumer.request_key_frame()
        logger.info("%r pipes %r as %r", self, producer, consumer)
        return consumer

    def _remove_consumer(self, consumer: Consumer) -> None:
        self.consumers.pop(consumer.id, None)
        for ssrc in [s for s, c in self._consumer_streams.items() if c is consumer]:
            del self._consumer_streams[ssrc]
        self.router.remove_consumer(consumer)

    # -- lifecycle ------------------------------------------------------------------------

    def close(self, reason: str | None = None) -> None:
        """Close the pipe consumers (``consumer.transportclose``) and pipe producers
        (``producer.close``), and release the port."""
        if self.closed:
            return
        for consumer in tuple(self.consumers.values()):
            consumer.close(transport_closed=True)
        for producer in tuple(self.producers.values()):
            producer.close(from_inside=True)
        self.closed = True
        self.can_send = False
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        self.loop.remove_reader(self._fd)
        self._sock.close()
        self.router.remove_transport(self)
        logger.info("%r closed%s", self, f": {reason}" if reason else "")

    # -- introspection ------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "pipe",
            "tuple": self.tuple,
            "rtx": self.enable_rtx,
            "srtpParameters": self.srtp_parameters,
            "producerIds": list(self.producers),
            "consumerIds": list(self.consumers),
            "rtpListener": self.rtp_listener.dump(),
        }

    def get_stats(self) -> dict[str, Any]:
        now = self.loop.time()
        return {
            "type": "pipe-transport",
            "transportId": self.id,
            "timestamp": time.time(),
            "tuple": self.tuple,
            "bytesReceived": self.bytes_received,
            "bytesSent": self.bytes_sent,
            "packetsReceived": self.packets_received,
            "packetsSent": self.packets_sent,
            "recvBitrate": self._recv_rate.rate(self.bytes_received, now),
            "sendBitrate": self._send_rate.rate(self.bytes_sent, now),
            "rtpPacketsReceived": self.rtp_packets_received,
            "rtcpPacketsReceived": self.rtcp_packets_received,
            "rtcpPacketsSent": self.rtcp_packets_sent,
            "droppedPackets": sum(self.drops.values()),
            "dropReasons": dict(self.drops),
        }


def _reachable(listen_ip: str) -> str:
    ip = ipaddress.ip_address(listen_ip)
    if ip.is_unspecified:
        return "::1" if ip.version == 6 else "127.0.0.1"
    return listen_ip
