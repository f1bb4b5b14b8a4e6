"""WebRtcTransport: one browser PeerConnection on one UDP port (mediasoup's WebRtcTransport).

Everything for the peer arrives on one socket and is told apart by its first
byte (RFC 7983 section 7, :mod:`roomler.sfu.demux`):

- STUN goes to the ICE-lite agent (:mod:`roomler.sfu.ice`). An address that
  sent an authenticated Binding request becomes *valid*; a nominating one
  (USE-CANDIDATE) is *selected* and receives everything we send
  (:class:`~.ice_path.IcePath` keeps those addresses and the ICE state).
- DTLS, SRTP and SRTCP are accepted from valid addresses only; anything from
  another address, anything that does not decrypt (garbage, replays) and
  anything unclassifiable is dropped and counted in ``drops`` by reason.
  Nothing a peer sends can raise out of :meth:`datagram_received`.
- DTLS runs in the role the peer leaves us (mediasoup's rule: the peer says
  "client" -> we are server; "server" or "auto" -> we are client) with the
  worker's certificate; a fingerprint mismatch fails and closes the
  transport. Its SRTP keys build the :class:`~roomler.sfu.srtp.SrtpContext`.

The socket is a plain non-blocking UDP socket watched with ``loop.add_reader``
(:mod:`.udp` says why).

The parts that are not I/O live apart: which producer a packet is for and
which producer or consumer an RTCP packet is about is the
:class:`~.rtp_listener.RtpListener`; what RTCP the transport sends of its own
accord, and when, the :class:`~.rtcp_scheduler.RtcpScheduler` (one timer per
connected transport runs it). Producers and consumers see the transport only
as a :class:`~.interfaces.MediaSender`; the transport sees its router only as
a :class:`TransportOwner`.

What the transport sends is fitted to the receiver's link by its
:class:`~.bandwidth.TransportBandwidth`: :meth:`WebRtcTransport.send_rtp`
records each packet that carries a transport-wide sequence number (handed
out just before by :meth:`WebRtcTransport.next_transport_sequence`),
:meth:`WebRtcTransport._on_receiver_feedback` passes the receiver's
transport-cc feedback and REMB on, and a timer of its own (every 100 ms
while the transport has consumers, every few ms while a probe runs; the
RTCP timer of a transport with only consumers beats once a second) shares
the estimate among the consumers and sends the probes' padding.
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
from roomler.sfu.certificate import DTLS_ROLES, DtlsParameters, worker_certificate
from roomler.sfu.codecs import TRANSPORT_CC_URI
from roomler.sfu.demux import PacketKind, classify
from roomler.sfu.dtls import DtlsEndpoint, DtlsState
from roomler.sfu.ice import IceLiteServer
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
from roomler.sfu.rtp import read_extensions, read_header
from roomler.sfu.srtp import SrtpContext

from .bandwidth import ALLOCATION_INTERVAL, TransportBandwidth
from .consumer import Consumer
from .dtls_driver import DtlsDriver
from .ice_path import Address, IcePath
from .producer import Producer
from .rtcp_scheduler import RtcpScheduler
from .rtp_listener import RtpListener
from .rtp_stats import CounterRate
from .settings import EngineSettings
from .simulcast_consumer import SimulcastConsumer
from .svc_consumer import SvcConsumer
from .udp import bind_udp_socket

__all__ = ["TransportOwner", "WebRtcTransport", "bind_udp_socket"]

logger = logging.getLogger(__name__)

# A producer of several encodings, or of several layers in one, gets a consumer
# that switches among them (mediasoup's consumer types).
_CONSUMER_CLASSES: dict[str, type[Consumer]] = {
    "simulcast": SimulcastConsumer,
    "svc": SvcConsumer,
}

#: Largest datagram read; WebRTC keeps packets below ~1200 bytes.
RECV_SIZE = 4096
#: Datagrams handled per readiness callback before yielding to the loop.
MAX_READS = 64
#: The bandwidth timer's beat while a probe cluster is being sent (its packets are spaced
#: over 30 ms).
PROBE_TICK = 0.005
#: ICE priority of our host candidate: type preference 126 (host), local
#: preference 65535, component 1 (RFC 8445 section 5.1.2.1).
CANDIDATE_PRIORITY = (126 << 24) | (65535 << 8) | 255


class TransportOwner(Protocol):
    """What a WebRtcTransport needs of the Router that created it (mediasoup's
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

    def remove_transport(self, transport: WebRtcTransport) -> None: ...


def _announced_address(listen_ip: str, announced_ip: str | None) -> str:
    """What the candidate announces: announced_ip, else listen_ip.

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


def _local_dtls_role(remote: object) -> str:
    """Our DTLS role from the peer's (mediasoup: we are ICE-controlled, "auto" -> client)."""
    if remote is None:
        remote = "auto"
    if remote not in DTLS_ROLES:
        raise ValueError(
            f"dtls_parameters.role must be one of {', '.join(DTLS_ROLES)}, got {remote!r}"
        )
    return "server" if remote == "client" else "client"


class WebRtcTransport:
    """ICE-lite + DTLS + SRTP on one UDP port, carrying producers and consumers."""

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
        self.announced_address = _announced_address(listen_ip, announced_ip)
        self.closed = False
        self.dtls_state = "new"
        self.dtls_role: str | None = None
        self.rtcp_ssrc = random.randint(1, 0xFFFFFFFF)
        self.cname = secrets.token_hex(8)
        self.producers: dict[str, Producer] = {}
        self.consumers: dict[str, Consumer] = {}
        self._sock = sock
        self._fd = sock.fileno()
        self._ice = IceLiteServer()
        self._ice_path = IcePath()
        # The path's own dict of valid addresses, read once per datagram.
        self._valid = self._ice_path.valid
        self._dtls = DtlsDriver(
            self.loop, send=self._send_dtls, on_step=self._on_dtls_step, count_drop=self._drop
        )
        self._srtp: SrtpContext | None = None
        self._protect_rtp: Callable[[bytes], bytes] = _not_connected
        #: Where RTP goes (see _update_media_destination); None while it cannot be sent.
        self.media_destination: Address | None = None
        #: Whether it can be sent (`MediaSender.can_send`), kept with media_destination.
        self.can_send = False
        self._init_media_tables()
        self._init_counters()
        self._tick_handle: Any = None
        self.loop.add_reader(self._fd, self._on_readable)
        logger.info("%r listening on %s:%d", self, listen_ip, self.port)

    def _init_media_tables(self) -> None:
        self.rtp_listener = RtpListener()
        # The listener's own dict, read once per RTP packet.
        self._ssrc_table = self.rtp_listener.ssrc_table
        self._twcc_ext_ids: tuple[int, ...] = ()
        self._rtcp = RtcpScheduler(self.settings, self.rtcp_ssrc, self.cname, self.loop.time())
        self._twcc = self._rtcp.transport_cc
        self._twcc_out_seq = 0
        # The transport-wide number handed out for the packet about to be sent.
        self._twcc_pending: int | None = None
        self.bandwidth = TransportBandwidth()
        self._bandwidth_handle: asyncio.TimerHandle | None = None
        self._next_mid = 0

    def _init_counters(self) -> None:
        self.packets_received = 0
        self.bytes_received = 0
        self.packets_sent = 0
        self.bytes_sent = 0
        self.rtp_packets_received = 0
        self.rtcp_packets_received = 0
        self.rtcp_packets_sent = 0
        self.transport_cc_feedback_received = 0
        self.remb_received = 0
        self.available_outgoing_bitrate: int | None = None
        self.drops: Counter[str] = Counter()
        self._recv_rate = CounterRate()
        self._send_rate = CounterRate()

    def __repr__(self) -> str:
        return f"WebRtcTransport({self.id[:8]})"

    @property
    def ice_state(self) -> str:
        return self._ice_path.state

    # -- parameters -----------------------------------------------------------

    @property
    def ice_parameters(self) -> dict[str, Any]:
        return self._ice.ice_parameters()

    @property
    def ice_candidates(self) -> list[dict[str, Any]]:
        address = self.announced_address
        return [
            {
                "foundation": "udpcandidate",
                "priority": CANDIDATE_PRIORITY,
                "ip": address,
                "address": address,
                "port": self.port,
                "type": "host",
                "protocol": "udp",
            }
        ]

    @property
    def dtls_parameters(self) -> DtlsParameters:
        return worker_certificate().dtls_parameters("auto")

    @property
    def selected_tuple(self) -> dict[str, Any] | None:
        selected = self._ice_path.selected
        if selected is None:
            return None
        return {
            "localIp": self.announced_address,
            "localPort": self.port,
            "remoteIp": selected[0],
            "remotePort": selected[1],
            "protocol": "udp",
        }

    # -- connect ----------------------------------------------------------------

    def connect(self, dtls_parameters: object) -> str:
        """Start DTLS with the peer's parameters; returns our DTLS role."""
        if self._dtls.endpoint is not None:
            raise ValueError(f"{self!r}: connect() was already called")
        if not isinstance(dtls_parameters, dict):
            raise ValueError("dtls_parameters must be an object")
        role = _local_dtls_role(dtls_parameters.get("role"))
        fingerprints = dtls_parameters.get("fingerprints")
        if not isinstance(fingerprints, list) or not fingerprints:
            raise ValueError("dtls_parameters.fingerprints must be a non-empty array")
        self._dtls.create(worker_certificate(), role, fingerprints)
        self.dtls_role = role
        self._set_dtls_state("connecting")
        self._dtls.start()
        logger.info("%r connecting as DTLS %s", self, role)
        return role

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

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """Demultiplex one datagram (RFC 7983); never raises."""
        now = self.loop.time()
        self.packets_received += 1
        self.bytes_received += len(data)
        source: Address = (addr[0], addr[1])
        try:
            kind = classify(data)
            if kind is PacketKind.STUN:
                self._on_stun(data, source, now)
            elif kind is PacketKind.UNKNOWN:
                self.drops["garbage"] += 1
            elif source not in self._valid:
                self.drops["unknown_address"] += 1
            elif kind is PacketKind.RTP:
                self._on_rtp(data, now)
            elif kind is PacketKind.RTCP:
                self._on_rtcp(data, now)
            else:
                self._dtls.receive(data, now)
        except ValueError as exc:
            self.drops[f"invalid_{kind.value}"] += 1
            logger.debug("%r dropped a %s datagram: %s", self, kind.value, exc)
        except Exception:
            self.drops["error"] += 1
            logger.exception("%r failed on a datagram from %s", self, source)

    def _on_stun(self, data: bytes, source: Address, now: float) -> None:
        result = self._ice.receive_stun(data, source, now)
        if result.response is not None:
            self._sendto(result.response, source)
        if result.error is not None:
            self.drops["stun_refused" if result.response else "stun_ignored"] += 1
            logger.debug("%r STUN from %s: %s", self, source, result.error)
            return
        self._on_valid_check(source, result.selected_changed, now)

    def _on_valid_check(self, source: Address, selected_changed: bool, now: float) -> None:
        change = self._ice_path.on_check(source, selected_changed, now)
        if change.state is not None:
            self._emit_ice_state(change.state)
        if change.selected:
            logger.info("%r selected tuple %s:%d", self, *source)
            self.router.emit(
                "transport.iceselectedtuplechange",
                self.id,
                {"ice_selected_tuple": self.selected_tuple},
            )
        self._update_media_destination()
        self._dtls.flush_held()

    def _send_dtls(self, datagram: bytes) -> bool:
        destination = self._destination()
        if destination is None:
            return False  # held until ICE validates an address
        self._sendto(datagram, destination)
        return True

    def _drop(self, reason: str) -> None:
        self.drops[reason] += 1

    def _on_dtls_step(self, dtls: DtlsEndpoint) -> None:
        """The DTLS endpoint moved: SRTP once connected, close when it failed."""
        if dtls.state is DtlsState.CONNECTED and self._srtp is None:
            self._on_dtls_connected(dtls)
        elif dtls.state is DtlsState.FAILED:
            self._on_dtls_failed(dtls.failure_reason or "DTLS failed")
        elif dtls.state is DtlsState.CLOSED and self.dtls_state != "closed":
            logger.info("%r DTLS closed by the peer", self)
            self._set_dtls_state("closed")

    def _on_dtls_connected(self, dtls: DtlsEndpoint) -> None:
        assert dtls.srtp_keys is not None
        self._srtp = SrtpContext(dtls.srtp_keys)
        self._protect_rtp = self._srtp.protect_rtp
        self._update_media_destination()
        logger.info("%r DTLS connected (%s)", self, dtls.srtp_keys.profile.value)
        self._set_dtls_state("connected")
        self._rtcp.start(self.loop.time())
        self._schedule_tick(self.loop.time())
        for producer in tuple(self.producers.values()):
            producer.on_transport_connected()
        for consumer in tuple(self.consumers.values()):
            consumer.on_transport_connected()
        self._start_bandwidth_timer()

    def _on_dtls_failed(self, reason: str) -> None:
        logger.warning("%r DTLS failed: %s", self, reason)
        self._set_dtls_state("failed", reason)
        self.close(reason=reason, from_inside=True)

    def _on_rtp(self, data: bytes, now: float) -> None:
        srtp = self._srtp
        if srtp is None:
            self.drops["rtp_before_dtls"] += 1
            return
        plain = srtp.unprotect_rtp(data)
        header = read_header(plain)
        self.rtp_packets_received += 1
        extensions = read_extensions(plain, header) if header.extension_profile else {}
        for ext_id in self._twcc_ext_ids:
            value = extensions.get(ext_id)
            if value is not None and len(value) == 2:
                self._twcc.add((value[0] << 8) | value[1], now)
                break
        binding = self._ssrc_table.get(header.ssrc) or self.rtp_listener.learn(
            header.ssrc, extensions
        )
        if binding is None:
            self.drops["unknown_ssrc"] += 1
            return
        producer, stream, is_rtx = binding
        producer.receive_rtp(plain, header, extensions, stream, is_rtx, now)

    def _on_rtcp(self, data: bytes, now: float) -> None:
        srtp = self._srtp
        if srtp is None:
            self.drops["rtcp_before_dtls"] += 1
            return
        packets = parse_rtcp(srtp.unprotect_rtcp(data))
        self.rtcp_packets_received += 1
        arrival_ntp = ntp_from_unix(time.time())
        for packet in packets:
            self._dispatch_rtcp(packet, now, arrival_ntp)

    def _dispatch_rtcp(self, packet: RtcpPacket, now: float, arrival_ntp: int) -> None:
        """Hand one RTCP packet to the producer or consumer it is about (the listener finds it)."""
        listener = self.rtp_listener
        blocks: list[ReportBlock] = []
        if isinstance(packet, SenderReport):
            stream = listener.media_stream(packet.ssrc)
            if stream is not None:
                producer, producer_stream = stream
                producer.on_sender_report(
                    producer_stream, packet.ntp_timestamp, packet.rtp_timestamp, now
                )
            blocks = packet.reports
        elif isinstance(packet, ReceiverReport):
            blocks = packet.reports
        elif isinstance(packet, GenericNack):
            consumer = listener.consumer(packet.media_ssrc)
            if consumer is not None:
                consumer.on_nack(packet.lost, now)
        elif isinstance(packet, Pli):
            consumer = listener.consumer(packet.media_ssrc)
            if consumer is not None:
                consumer.on_key_frame_request("pli", now)
        elif isinstance(packet, Fir):
            for ssrc, _ in packet.entries:
                consumer = listener.consumer(ssrc)
                if consumer is not None:
                    consumer.on_key_frame_request("fir", now)
        elif isinstance(packet, TransportFeedback | Remb):
            self._on_receiver_feedback(packet, now)
        for block in blocks:
            consumer = listener.consumer(block.ssrc)
            if consumer is not None:
                consumer.on_report_block(block, arrival_ntp)

    def _on_receiver_feedback(self, packet: TransportFeedback | Remb, now: float) -> None:
        """Congestion feedback from the receiving browser, for the bandwidth estimate."""
        if isinstance(packet, TransportFeedback):
            self.transport_cc_feedback_received += 1
            self.bandwidth.on_transport_feedback(packet, now)
        else:
            self.remb_received += 1
            self.bandwidth.on_remb(packet.bitrate)
        self.available_outgoing_bitrate = int(self.bandwidth.target_bitrate)

    # -- sending ----------------------------------------------------------------

    def _destination(self) -> Address | None:
        return self._ice_path.destination()

    def _update_media_destination(self) -> None:
        """Cache where RTP goes, for the per-packet path: None until SRTP is up and ICE
        validated an address, and after close; else `_destination()`. It changes only on
        ICE checks, DTLS connection and close."""
        ready = self._srtp is not None and not self.closed
        self.media_destination = self._destination() if ready else None
        self.can_send = self.media_destination is not None

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

    def next_transport_sequence(self) -> int:
        """The next transport-wide sequence number of what we send on this transport."""
        seq = self._twcc_out_seq
        self._twcc_out_seq = (seq + 1) & 0xFFFF
        self._twcc_pending = seq  # recorded by send_rtp, which comes next
        return seq

    def retransmission_allowed(self, now: float) -> bool:
        """Whether the bandwidth budget leaves room to resend a packet now."""
        return self.bandwidth.retransmission_allowed(now)

    @property
    def resend_interval(self) -> float:
        """The least time between two retransmissions of one packet (a round trip)."""
        return self.bandwidth.resend_interval

    def send_rtp(self, packet: bytes) -> bytes | None:
        """Protect and send one RTP packet; returns the SRTP bytes (None if not protected).

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
            self.bandwidth.on_packet_sent(pending, len(protected), self.loop.time())
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
        """Send SRTP bytes as they are (a plain retransmission)."""
        destination = self._destination()
        if destination is not None:
            self._sendto(data, destination)

    def send_rtcp(self, packets: Iterable[RtcpPacket]) -> None:
        """Send packets as one (compound) SRTCP datagram."""
        self._send_rtcp_bytes(serialize_rtcp(packets))

    def _send_rtcp_bytes(self, data: bytes) -> None:
        srtp = self._srtp
        destination = self._destination()
        if srtp is None or destination is None:
            return
        try:
            protected = srtp.protect_rtcp(data)
        except ValueError as exc:
            self.drops["srtcp_protect"] += 1
            logger.debug("%r cannot protect RTCP: %s", self, exc)
            return
        self.rtcp_packets_sent += 1
        self._sendto(protected, destination)

    # -- periodic work --------------------------------------------------------

    def _on_tick(self) -> None:
        self._tick_handle = None
        if self.closed:
            return
        now = self.loop.time()
        self._meter_rates(now)
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
                self._check_consent(now)
        except Exception:
            logger.exception("%r periodic RTCP failed", self)
        self._schedule_tick(now)

    def _schedule_tick(self, now: float) -> None:
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        delay = self._rtcp.next_delay(now, has_producers=bool(self.producers))
        self._tick_handle = self.loop.call_later(delay, self._on_tick)

    def _start_bandwidth_timer(self) -> None:
        if self._bandwidth_handle is None and self.consumers and self._srtp is not None:
            self._bandwidth_handle = self.loop.call_later(
                ALLOCATION_INTERVAL, self._on_bandwidth_tick
            )

    def _on_bandwidth_tick(self) -> None:
        """Share the estimate among the consumers; send the running probe's padding."""
        self._bandwidth_handle = None
        if self.closed or not self.consumers:
            return
        now = self.loop.time()
        bandwidth = self.bandwidth
        try:
            if bandwidth.allocation_due(now):
                self._allocate(now)
            sizes = bandwidth.padding_due(now)
            if sizes:
                self._send_probe(sizes)
        except Exception:
            logger.exception("%r bandwidth allocation failed", self)
        delay = PROBE_TICK if bandwidth.probing else ALLOCATION_INTERVAL
        self._bandwidth_handle = self.loop.call_later(delay, self._on_bandwidth_tick)

    def _allocate(self, now: float) -> None:
        consumers = tuple(self.consumers.values())
        rtts = [c.round_trip_time for c in consumers if c.round_trip_time is not None]
        if rtts:
            self.bandwidth.on_rtt(min(rtts))
        allocation = self.bandwidth.allocate([c.demand(now) for c in consumers], now)
        if self.bandwidth.limiting:
            for consumer in consumers:
                consumer.apply_layers(allocation.layers.get(consumer.id), now)

    def _send_probe(self, sizes: list[int]) -> None:
        """The probe's packets, on the RTX stream of the first consumer that can carry them."""
        for consumer in self.consumers.values():
            if consumer.kind == "video" and consumer.send_probe(sizes[0]):
                for size in sizes[1:]:
                    consumer.send_probe(size)
                return

    def _meter_rates(self, now: float) -> None:
        """Sample the byte counters for the bitrates, per tick rather than per packet."""
        self._recv_rate.sample(self.bytes_received, now)
        self._send_rate.sample(self.bytes_sent, now)

    def _check_consent(self, now: float) -> None:
        """RFC 7675: no authenticated check for 30 s on the selected tuple."""
        state = self._ice_path.on_consent_check(self._ice.is_alive(now))
        if state is not None:
            logger.info("%r ICE consent expired", self)
            self._emit_ice_state(state)

    # -- producers and consumers ----------------------------------------------

    def produce(
        self, producer_id: str, kind: str, rtp_parameters: object, *, paused: bool = False
    ) -> Producer:
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
        self.rtp_listener.add_producer(producer)
        twcc = producer.extension_ids.get(TRANSPORT_CC_URI)
        if twcc is not None and twcc not in self._twcc_ext_ids:
            self._twcc_ext_ids = (*self._twcc_ext_ids, twcc)
        self.producers[producer.id] = producer
        self.router.add_producer(producer)
        if len(self.producers) == 1 and self._tick_handle is not None:
            self._schedule_tick(self.loop.time())  # feedback from now on
        logger.info("%r produces %r (%s)", self, producer, producer.mime_type)
        return producer

    def _remove_producer(self, producer: Producer) -> None:
        self.producers.pop(producer.id, None)
        self.rtp_listener.remove_producer(producer)
        self.router.remove_producer(producer)

    def consume(
        self,
        consumer_id: str,
        producer: Producer,
        rtp_capabilities: object,
        *,
        paused: bool = False,
    ) -> Consumer:
        if not ortc.can_consume(producer.consumable_rtp_parameters, rtp_capabilities):
            raise ortc.UnsupportedError(
                f"cannot consume producer {producer.id}: no codec in rtp_capabilities matches"
            )
        mid = str(self._next_mid)
        params = ortc.get_consumer_rtp_parameters(
            producer.consumable_rtp_parameters, rtp_capabilities, mid=mid
        )
        consumer_class = _CONSUMER_CLASSES.get(producer.type, Consumer)
        consumer = consumer_class(
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
        self.rtp_listener.add_consumer(consumer)
        self._next_mid += 1
        self.consumers[consumer.id] = consumer
        producer.add_consumer(consumer)
        self.router.add_consumer(consumer)
        if consumer.active:
            producer.request_key_frame(self.loop.time())
        self._start_bandwidth_timer()
        logger.info("%r consumes %r as %r (mid %s)", self, producer, consumer, mid)
        return consumer

    def _remove_consumer(self, consumer: Consumer) -> None:
        self.consumers.pop(consumer.id, None)
        self.rtp_listener.remove_consumer(consumer)
        self.router.remove_consumer(consumer)

    # -- state --------------------------------------------------------------------

    def _emit_ice_state(self, state: str) -> None:
        self.router.emit("transport.icestatechange", self.id, {"ice_state": state})

    def _set_dtls_state(self, state: str, reason: str | None = None) -> None:
        if state == self.dtls_state:
            return
        self.dtls_state = state
        data: dict[str, Any] = {"dtls_state": state}
        if reason is not None:
            data["reason"] = reason
        self.router.emit("transport.dtlsstatechange", self.id, data)

    def restart_ice(self) -> dict[str, Any]:
        return self._ice.restart()

    def close(self, reason: str | None = None, *, from_inside: bool = False) -> None:
        """Close producers (``producer.close``) and consumers (``consumer.transportclose``),
        say goodbye to DTLS, and release the port at once.

        ``from_inside`` (DTLS failed) also emits ``transport.close`` with the reason, as
        the web process did not ask for it.
        """
        if self.closed:
            return
        for consumer in tuple(self.consumers.values()):
            consumer.close(transport_closed=True)
        for producer in tuple(self.producers.values()):
            producer.close(from_inside=True)
        self._dtls.close()  # close_notify
        self.closed = True
        self._update_media_destination()
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        if self._bandwidth_handle is not None:
            self._bandwidth_handle.cancel()
            self._bandwidth_handle = None
        self.loop.remove_reader(self._fd)
        self._sock.close()
        self._ice_path.close()
        if self.dtls_state != "failed":
            self.dtls_state = "closed"
        self.router.remove_transport(self)
        logger.info("%r closed%s", self, f": {reason}" if reason else "")
        if from_inside:
            self.router.emit("transport.close", self.id, {"reason": reason})

    # -- introspection --------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "webrtc",
            "iceParameters": self.ice_parameters,
            "iceCandidates": self.ice_candidates,
            "iceState": self.ice_state,
            "iceSelectedTuple": self.selected_tuple,
            "dtlsParameters": self.dtls_parameters,
            "dtlsState": self.dtls_state,
            "dtlsRole": self.dtls_role,
            "port": self.port,
            "producerIds": list(self.producers),
            "consumerIds": list(self.consumers),
            "mapSsrcProducerId": self.rtp_listener.dump()["ssrcTable"],
            "rtpListener": self.rtp_listener.dump(),
        }

    def get_stats(self) -> dict[str, Any]:
        now = self.loop.time()
        return {
            "type": "webrtc-transport",
            "transportId": self.id,
            "timestamp": time.time(),
            "port": self.port,
            "iceState": self.ice_state,
            "iceSelectedTuple": self.selected_tuple,
            "dtlsState": self.dtls_state,
            "bytesReceived": self.bytes_received,
            "bytesSent": self.bytes_sent,
            "packetsReceived": self.packets_received,
            "packetsSent": self.packets_sent,
            "recvBitrate": self._recv_rate.rate(self.bytes_received, now),
            "sendBitrate": self._send_rate.rate(self.bytes_sent, now),
            "rtpPacketsReceived": self.rtp_packets_received,
            "rtcpPacketsReceived": self.rtcp_packets_received,
            "rtcpPacketsSent": self.rtcp_packets_sent,
            "transportCcFeedbackSent": self._rtcp.transport_cc_feedback_sent,
            "transportCcFeedbackReceived": self.transport_cc_feedback_received,
            "transportCcPacketsReceived": self._twcc.received,
            "availableOutgoingBitrate": self.available_outgoing_bitrate,
            "rembReceived": self.remb_received,
            "bandwidthLimiting": self.bandwidth.limiting,
            "probeCluster": self.bandwidth.prober.cluster,
            "droppedPackets": sum(self.drops.values()),
            "dropReasons": dict(self.drops),
        }


def _not_connected(packet: bytes) -> bytes:
    raise ValueError("SRTP is not up yet")
