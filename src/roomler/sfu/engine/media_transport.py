"""MediaTransport: what every transport of a router shares (mediasoup's Transport base class).

A router has two kinds of transport: a :class:`~.transport.WebRtcTransport` toward a
browser (ICE-lite, DTLS, SRTP) and a :class:`~.pipe_transport.PipeTransport` toward
another router (plain RTP or SRTP with exchanged keys). Both carry producers and
consumers over one UDP socket, and all of that is here:

- the socket: a plain non-blocking UDP socket watched with ``loop.add_reader``
  (:mod:`.udp` says why), up to ``MAX_READS`` datagrams per readiness callback,
  the byte/packet counters and the ``drops`` by reason (nothing a peer sends raises
  out of :meth:`MediaTransport.datagram_received`);
- the sending protocol producers and consumers know the transport by
  (:class:`~.interfaces.MediaSender`): ``send_rtp`` (the forwarding hot path: the
  destination and the protect function are cached), ``send_protected``,
  ``send_rtcp``, ``next_transport_sequence``, the retransmission budget;
- incoming RTCP, routed by the :class:`~.rtp_listener.RtpListener` to the producer
  a Sender Report is about and to the consumer a NACK, PLI, FIR or report block is
  about;
- the periodic RTCP of the :class:`~.rtcp_scheduler.RtcpScheduler` (one timer per
  connected transport);
- attaching and detaching producers and consumers, closing, the common stats.

A subclass says how a datagram is told apart and unprotected, where media goes
(:attr:`media_destination`, None while it cannot be sent) and what protects it, and
adds its own parameters, stats and feedback handling through the hooks named
``_on_*`` / ``_*_hook`` below.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from roomler.sfu import ortc
from roomler.sfu.rtcp import (
    Fir,
    GenericNack,
    Pli,
    ReceiverReport,
    Remb,
    ReportBlock,
    RtcpPacket,
    SenderReport,
    TransportFeedback,
    ntp_from_unix,
    parse_rtcp,
    serialize_rtcp,
)
from roomler.sfu.rtp import RtpHeader

from .consumer import Consumer
from .producer import Producer
from .rtcp_scheduler import RtcpScheduler
from .rtp_listener import RtpBinding, RtpListener
from .rtp_stats import CounterRate
from .settings import EngineSettings

__all__ = ["Address", "MediaTransport", "TransportOwner", "announced_address"]

logger = logging.getLogger(__name__)

#: Largest datagram read; WebRTC keeps packets below ~1200 bytes.
RECV_SIZE = 4096
#: Datagrams handled per readiness callback before yielding to the loop.
MAX_READS = 64

Address = tuple[str, int]
#: What recvfrom gives (IPv6 adds flow info and scope id).
SocketAddress = tuple[Any, ...]


class TransportOwner(Protocol):
    """What a transport needs of the Router that created it (mediasoup's
    Transport::Listener): the loop, settings and codecs, the producers of the
    router, the worker-wide object tables and the event channel."""

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

    def remove_transport(self, transport: MediaTransport) -> None: ...


def announced_address(listen_ip: str, announced_ip: str | None) -> str:
    """What the transport tells its peer to send to: announced_ip, else listen_ip.

    A wildcard listen address is not reachable as such; without an announced
    address we announce loopback, which suits a single-host development setup
    (configure ``announced_ip`` for anything else).
    """
    if announced_ip:
        return announced_ip
    ip = ipaddress.ip_address(listen_ip)
    if ip.is_unspecified:
        return "::1" if ip.version == 6 else "127.0.0.1"
    return listen_ip


class MediaTransport:
    """One UDP port carrying producers and consumers; the base of both transport kinds."""

    #: The ``type`` of dump() and the ``type`` of get_stats().
    kind = "media"
    stats_type = "media-transport"

    def __init__(
        self,
        router: TransportOwner,
        transport_id: str,
        sock: socket.socket,
        *,
        listen_ip: str,
        announced_ip: str | None,
    ) -> None:
        self.router = router
        self.id = transport_id
        self.loop = router.loop
        self.settings = router.settings
        self.listen_ip = listen_ip
        self.port: int = sock.getsockname()[1]
        self.announced_address = announced_address(listen_ip, announced_ip)
        self.closed = False
        self.rtcp_ssrc = random.randint(1, 0xFFFFFFFF)
        self.cname = secrets.token_hex(8)
        self.producers: dict[str, Producer] = {}
        self.consumers: dict[str, Consumer] = {}
        #: Where RTP goes; None while it cannot be sent (set by the subclass, None on close).
        self.media_destination: Address | None = None
        #: Whether it can be sent (`MediaSender.can_send`), kept with media_destination.
        self.can_send = False
        #: What protects an RTP packet on its way out (raises ValueError when it cannot).
        self._protect_rtp: Callable[[bytes], bytes] = _not_connected
        self._sock = sock
        self._fd = sock.fileno()
        self.rtp_listener = RtpListener()
        # The listener's own dict, read once per RTP packet.
        self._ssrc_table = self.rtp_listener.ssrc_table
        #: The extension ids producers send the transport-wide sequence number with.
        self._twcc_ext_ids: tuple[int, ...] = ()
        self._twcc_out_seq = 0
        # The transport-wide number handed out for the packet about to be sent.
        self._twcc_pending: int | None = None
        self._rtcp = RtcpScheduler(self.settings, self.rtcp_ssrc, self.cname, self.loop.time())
        self._tick_handle: asyncio.TimerHandle | None = None
        self._init_counters()
        self.loop.add_reader(self._fd, self._on_readable)
        logger.info("%r listening on %s:%d", self, listen_ip, self.port)

    def _init_counters(self) -> None:
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

    # -- receiving ------------------------------------------------------------

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
                # e.g. an ICMP error queued for an earlier send
                self.drops["socket_error"] += 1
                logger.debug("%r recvfrom failed: %s", self, exc)
                continue
            self.datagram_received(data, addr)

    def datagram_received(self, data: bytes, addr: SocketAddress) -> None:
        raise NotImplementedError

    def _drop(self, reason: str) -> None:
        self.drops[reason] += 1

    def _receive_rtp(
        self, plain: bytes, header: RtpHeader, extensions: dict[int, bytes], now: float
    ) -> None:
        """Hand one unprotected RTP packet to the producer its SSRC (or MID/RID) names."""
        binding = self._ssrc_table.get(header.ssrc)
        if binding is None:
            binding = self._learn_ssrc(header.ssrc, extensions)
            if binding is None:
                self.drops["unknown_ssrc"] += 1
                return
        producer, stream, is_rtx = binding
        producer.receive_rtp(plain, header, extensions, stream, is_rtx, now)

    def _learn_ssrc(self, ssrc: int, extensions: dict[int, bytes]) -> RtpBinding | None:
        """Bind an SSRC not signalled, by the MID or RID the packet names."""
        return self.rtp_listener.learn(ssrc, extensions)

    def _receive_rtcp(self, plain: bytes, now: float) -> None:
        """One unprotected (compound) RTCP datagram, packet by packet."""
        packets = parse_rtcp(plain)
        self.rtcp_packets_received += 1
        arrival_ntp = ntp_from_unix(time.time())
        for packet in packets:
            self._dispatch_rtcp(packet, now, arrival_ntp)

    def _dispatch_rtcp(self, packet: RtcpPacket, now: float, arrival_ntp: int) -> None:
        """Hand one RTCP packet to the producer or consumer it is about."""
        blocks: list[ReportBlock] = []
        if isinstance(packet, SenderReport):
            stream = self.rtp_listener.media_stream(packet.ssrc)
            if stream is not None:
                producer, producer_stream = stream
                producer.on_sender_report(
                    producer_stream, packet.ntp_timestamp, packet.rtp_timestamp, now
                )
            blocks = packet.reports
        elif isinstance(packet, ReceiverReport):
            blocks = packet.reports
        elif isinstance(packet, GenericNack):
            self._on_nack(packet.media_ssrc, packet.lost, now)
        elif isinstance(packet, Pli):
            self._on_key_frame_request(packet.media_ssrc, "pli", now)
        elif isinstance(packet, Fir):
            for ssrc, _ in packet.entries:
                self._on_key_frame_request(ssrc, "fir", now)
        elif isinstance(packet, TransportFeedback | Remb):
            self._on_receiver_feedback(packet, now)
        for block in blocks:
            consumer = self._consumer_sending(block.ssrc)
            if consumer is not None:
                consumer.on_report_block(block, arrival_ntp)

    def _consumer_sending(self, ssrc: int) -> Consumer | None:
        """The consumer we send with ``ssrc``, as the far side's RTCP names it."""
        return self.rtp_listener.consumer(ssrc)

    def _on_nack(self, ssrc: int, lost: list[int], now: float) -> None:
        consumer = self._consumer_sending(ssrc)
        if consumer is not None:
            consumer.on_nack(lost, now)

    def _on_key_frame_request(self, ssrc: int, kind: str, now: float) -> None:
        consumer = self._consumer_sending(ssrc)
        if consumer is not None:
            consumer.on_key_frame_request(kind, now)

    def _on_receiver_feedback(self, packet: TransportFeedback | Remb, now: float) -> None:
        """Congestion feedback from the receiver; ignored where none is run."""

    # -- sending (MediaSender) --------------------------------------------------

    def next_transport_sequence(self) -> int:
        """The next transport-wide sequence number of what we send on this transport."""
        seq = self._twcc_out_seq
        self._twcc_out_seq = (seq + 1) & 0xFFFF
        self._twcc_pending = seq  # recorded by send_rtp, which comes next
        return seq

    def retransmission_allowed(self, now: float) -> bool:
        """Whether the link's budget leaves room to resend a packet now (no budget here)."""
        return True

    @property
    def resend_interval(self) -> float:
        """The least time between two retransmissions of one packet (none here)."""
        return 0.0

    def _on_packet_sent(self, transport_seq: int, size: int, now: float) -> None:
        """A packet with a transport-wide sequence number went out (for an estimator)."""

    def send_rtp(self, packet: bytes) -> bytes | None:
        """Protect and send one RTP packet; returns the bytes sent (None if not protected).

        The forwarding hot path: `_sendto` inlined, the destination cached.
        """
        pending = self._twcc_pending
        self._twcc_pending = None
        destination = self.media_destination
        if destination is None:
            return None
        try:
            protected = self._protect_rtp(packet)
        except ValueError as exc:
            self.drops["srtp_protect"] += 1
            logger.debug("%r cannot protect RTP: %s", self, exc)
            return None
        if pending is not None:
            # Recorded even if the socket refuses it: the receiver will report it lost.
            self._on_packet_sent(pending, len(protected), self.loop.time())
        try:
            self._sock.sendto(protected, destination)
        except (BlockingIOError, InterruptedError):
            self.drops["send_buffer_full"] += 1
            return protected
        except OSError as exc:
            self.drops["send_error"] += 1
            logger.debug("%r sendto %s failed: %s", self, destination, exc)
            return protected
        self.packets_sent += 1
        self.bytes_sent += len(protected)
        return protected

    def send_protected(self, data: bytes) -> None:
        """Send protected bytes as they are (a plain retransmission)."""
        destination = self._destination()
        if destination is not None:
            self._sendto(data, destination)

    def send_rtcp(self, packets: Iterable[RtcpPacket]) -> None:
        """Send packets as one (compound) RTCP datagram."""
        self._send_rtcp_bytes(serialize_rtcp(packets))

    def _send_rtcp_bytes(self, data: bytes) -> None:
        destination = self._destination()
        if destination is None:
            return
        try:
            protected = self._protect_rtcp(data)
        except ValueError as exc:
            self.drops["srtcp_protect"] += 1
            logger.debug("%r cannot protect RTCP: %s", self, exc)
            return
        if protected is None:
            return
        self.rtcp_packets_sent += 1
        self._sendto(protected, destination)

    def _destination(self) -> Address | None:
        """Where anything we send goes now (None: nowhere yet)."""
        return self.media_destination

    def _protect_rtcp(self, data: bytes) -> bytes | None:
        """RTCP as it goes on the wire; None while it cannot be sent."""
        return data

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

    # -- periodic RTCP ------------------------------------------------------------

    def _start_rtcp(self, now: float) -> None:
        self._rtcp.start(now)
        self._schedule_tick(now)

    def _on_tick(self) -> None:
        self._tick_handle = None
        if self.closed:
            return
        now = self.loop.time()
        # The bitrates are sampled per tick rather than per packet.
        self._recv_rate.sample(self.bytes_received, now)
        self._send_rate.sample(self.bytes_sent, now)
        try:
            datagrams, reported = self._rtcp.on_tick(
                now,
                tuple(self.producers.values()),
                tuple(self.consumers.values()),
                transport_cc=bool(self._twcc_ext_ids),
            )
            for datagram in datagrams:
                self._send_rtcp_bytes(datagram)
            if reported:
                self._on_reports_sent(now)
        except Exception:
            logger.exception("%r periodic RTCP failed", self)
        self._schedule_tick(now)

    def _on_reports_sent(self, now: float) -> None:
        """The periodic reports went out (a WebRTC transport checks ICE consent then)."""

    def _schedule_tick(self, now: float) -> None:
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        delay = self._rtcp.next_delay(now, has_producers=bool(self.producers))
        self._tick_handle = self.loop.call_later(delay, self._on_tick)

    def _notify_connected(self) -> None:
        """Media can flow: the periodic RTCP starts, producers and consumers are told."""
        self._start_rtcp(self.loop.time())
        for producer in tuple(self.producers.values()):
            producer.on_transport_connected()
        for consumer in tuple(self.consumers.values()):
            consumer.on_transport_connected()

    # -- producers and consumers ----------------------------------------------

    def _new_producer(
        self, producer_id: str, kind: str, rtp_parameters: object, paused: bool
    ) -> Producer:
        return Producer(
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

    def _attach_producer(self, producer: Producer) -> None:
        self.rtp_listener.add_producer(producer)
        self.producers[producer.id] = producer
        self.router.add_producer(producer)
        if len(self.producers) == 1 and self._tick_handle is not None:
            self._schedule_tick(self.loop.time())  # feedback from now on
        logger.info("%r produces %r (%s)", self, producer, producer.mime_type)

    def _remove_producer(self, producer: Producer) -> None:
        self.producers.pop(producer.id, None)
        self.rtp_listener.remove_producer(producer)
        self.router.remove_producer(producer)

    def _consumer_args(self, paused: bool) -> dict[str, Any]:
        """What every Consumer subclass is built with on this transport."""
        return {
            "sender": self,
            "loop": self.loop,
            "settings": self.settings,
            "emit": self.router.emit,
            "on_close": self._remove_consumer,
            "paused": paused,
        }

    def _attach_consumer(self, consumer: Consumer) -> None:
        self.consumers[consumer.id] = consumer
        consumer.producer.add_consumer(consumer)
        self.router.add_consumer(consumer)

    def _remove_consumer(self, consumer: Consumer) -> None:
        self.consumers.pop(consumer.id, None)
        self.rtp_listener.remove_consumer(consumer)
        self.router.remove_consumer(consumer)

    # -- lifecycle ----------------------------------------------------------------

    def close(self, reason: str | None = None) -> None:
        """Close consumers (``consumer.transportclose``) and producers (``producer.close``),
        and release the port at once."""
        if self.closed:
            return
        for consumer in tuple(self.consumers.values()):
            consumer.close(transport_closed=True)
        for producer in tuple(self.producers.values()):
            producer.close(from_inside=True)
        self._before_close()
        self.closed = True
        self.media_destination = None
        self.can_send = False
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        self.loop.remove_reader(self._fd)
        self._sock.close()
        self._after_close()
        self.router.remove_transport(self)
        logger.info("%r closed%s", self, f": {reason}" if reason else "")

    def _before_close(self) -> None:
        """Last words to the peer, while the socket is open."""

    def _after_close(self) -> None:
        """Release what the subclass holds besides the socket and the RTCP timer."""

    # -- introspection ------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.kind,
            "producerIds": list(self.producers),
            "consumerIds": list(self.consumers),
            "rtpListener": self.rtp_listener.dump(),
        }

    def get_stats(self) -> dict[str, Any]:
        now = self.loop.time()
        return {
            "type": self.stats_type,
            "transportId": self.id,
            "timestamp": time.time(),
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


def _not_connected(packet: bytes) -> bytes:
    raise ValueError("the transport is not connected yet")
