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

What every transport of a router does -- the socket, the sending protocol
producers and consumers know it by (:class:`~.interfaces.MediaSender`), RTCP
routed by the :class:`~.rtp_listener.RtpListener`, the periodic RTCP of the
:class:`~.rtcp_scheduler.RtcpScheduler` -- is the base class,
:class:`~.media_transport.MediaTransport`; the DTLS handshake's timers are the
:class:`~.dtls_driver.DtlsDriver`'s. This module is the WebRTC shell around them:
ICE, DTLS, SRTP, and the bandwidth estimate.

What the transport sends is fitted to the receiver's link by its
:class:`~.bandwidth.TransportBandwidth`: each packet sent with a transport-wide
sequence number (handed out just before by ``next_transport_sequence``) is
recorded, :meth:`WebRtcTransport._on_receiver_feedback` passes the receiver's
transport-cc feedback and REMB on, and a :class:`~.bandwidth_timer.BandwidthTimer`
(every 100 ms while the transport has consumers, every few ms while a probe
runs; the RTCP timer of a transport with only consumers beats once a second)
shares the estimate among the consumers and sends the probes' padding.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from roomler.sfu import ortc
from roomler.sfu.certificate import DTLS_ROLES, DtlsParameters, worker_certificate
from roomler.sfu.codecs import TRANSPORT_CC_URI
from roomler.sfu.demux import PacketKind, classify
from roomler.sfu.dtls import DtlsEndpoint, DtlsState
from roomler.sfu.ice import IceLiteServer
from roomler.sfu.rtcp import Remb, TransportFeedback
from roomler.sfu.rtp import read_extensions, read_header
from roomler.sfu.srtp import SrtpContext

from .bandwidth import TransportBandwidth
from .bandwidth_timer import BandwidthTimer
from .consumer import Consumer
from .dtls_driver import DtlsDriver
from .ice_path import Address, IcePath
from .media_transport import MediaTransport, SocketAddress, TransportOwner
from .producer import Producer
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

#: ICE priority of our host candidate: type preference 126 (host), local
#: preference 65535, component 1 (RFC 8445 section 5.1.2.1).
CANDIDATE_PRIORITY = (126 << 24) | (65535 << 8) | 255


def _local_dtls_role(remote: object) -> str:
    """Our DTLS role from the peer's (mediasoup: we are ICE-controlled, "auto" -> client)."""
    if remote is None:
        remote = "auto"
    if remote not in DTLS_ROLES:
        raise ValueError(
            f"dtls_parameters.role must be one of {', '.join(DTLS_ROLES)}, got {remote!r}"
        )
    return "server" if remote == "client" else "client"


class WebRtcTransport(MediaTransport):
    """ICE-lite + DTLS + SRTP on one UDP port, carrying producers and consumers."""

    kind = "webrtc"
    stats_type = "webrtc-transport"

    def __init__(
        self,
        router: TransportOwner,
        transport_id: str,
        sock: socket.socket,
        *,
        listen_ip: str,
        announced_ip: str | None,
    ) -> None:
        self.dtls_state = "new"
        self.dtls_role: str | None = None
        self._ice = IceLiteServer()
        self._ice_path = IcePath()
        # The path's own dict of valid addresses, read once per datagram.
        self._valid = self._ice_path.valid
        self._srtp: SrtpContext | None = None
        super().__init__(router, transport_id, sock, listen_ip=listen_ip, announced_ip=announced_ip)
        self._dtls = DtlsDriver(
            self.loop, send=self._send_dtls, on_step=self._on_dtls_step, count_drop=self._drop
        )
        self._twcc = self._rtcp.transport_cc
        self.bandwidth = TransportBandwidth()
        self._bandwidth_timer = BandwidthTimer(
            self.loop,
            self.bandwidth,
            self.consumers,
            owner=self,
            running=lambda: self._srtp is not None and not self.closed,
        )
        self._next_mid = 0
        self.transport_cc_feedback_received = 0
        self.remb_received = 0
        self.available_outgoing_bitrate: int | None = None

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

    def datagram_received(self, data: bytes, addr: SocketAddress) -> None:
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
        self._notify_connected()
        self._bandwidth_timer.start()

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
        self._receive_rtp(plain, header, extensions, now)

    def _on_rtcp(self, data: bytes, now: float) -> None:
        srtp = self._srtp
        if srtp is None:
            self.drops["rtcp_before_dtls"] += 1
            return
        self._receive_rtcp(srtp.unprotect_rtcp(data), now)

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

    def _protect_rtcp(self, data: bytes) -> bytes | None:
        srtp = self._srtp
        return None if srtp is None else srtp.protect_rtcp(data)

    def _on_packet_sent(self, transport_seq: int, size: int, now: float) -> None:
        self.bandwidth.on_packet_sent(transport_seq, size, now)

    def retransmission_allowed(self, now: float) -> bool:
        """Whether the bandwidth budget leaves room to resend a packet now."""
        return self.bandwidth.retransmission_allowed(now)

    @property
    def resend_interval(self) -> float:
        """The least time between two retransmissions of one packet (a round trip)."""
        return self.bandwidth.resend_interval

    # -- periodic work --------------------------------------------------------

    def _on_reports_sent(self, now: float) -> None:
        """RFC 7675: no authenticated check for 30 s on the selected tuple."""
        state = self._ice_path.on_consent_check(self._ice.is_alive(now))
        if state is not None:
            logger.info("%r ICE consent expired", self)
            self._emit_ice_state(state)

    # -- producers and consumers ----------------------------------------------

    def produce(
        self, producer_id: str, kind: str, rtp_parameters: object, *, paused: bool = False
    ) -> Producer:
        producer = self._new_producer(producer_id, kind, rtp_parameters, paused)
        twcc = producer.extension_ids.get(TRANSPORT_CC_URI)
        self._attach_producer(producer)
        if twcc is not None and twcc not in self._twcc_ext_ids:
            self._twcc_ext_ids = (*self._twcc_ext_ids, twcc)
        return producer

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
        consumer = consumer_class(consumer_id, producer, params, **self._consumer_args(paused))
        self.rtp_listener.add_consumer(consumer)
        self._next_mid += 1
        self._attach_consumer(consumer)
        if consumer.active:
            producer.request_key_frame(self.loop.time())
        self._bandwidth_timer.start()
        logger.info("%r consumes %r as %r (mid %s)", self, producer, consumer, mid)
        return consumer

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
        super().close(reason)
        if from_inside:
            self.router.emit("transport.close", self.id, {"reason": reason})

    def _before_close(self) -> None:
        self._dtls.close()  # close_notify

    def _after_close(self) -> None:
        self._bandwidth_timer.stop()
        self._ice_path.close()
        if self.dtls_state != "failed":
            self.dtls_state = "closed"

    # -- introspection --------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            **super().dump(),
            "iceParameters": self.ice_parameters,
            "iceCandidates": self.ice_candidates,
            "iceState": self.ice_state,
            "iceSelectedTuple": self.selected_tuple,
            "dtlsParameters": self.dtls_parameters,
            "dtlsState": self.dtls_state,
            "dtlsRole": self.dtls_role,
            "port": self.port,
            "mapSsrcProducerId": self.rtp_listener.dump()["ssrcTable"],
        }

    def get_stats(self) -> dict[str, Any]:
        return {
            **super().get_stats(),
            "port": self.port,
            "iceState": self.ice_state,
            "iceSelectedTuple": self.selected_tuple,
            "dtlsState": self.dtls_state,
            "transportCcFeedbackSent": self._rtcp.transport_cc_feedback_sent,
            "transportCcFeedbackReceived": self.transport_cc_feedback_received,
            "transportCcPacketsReceived": self._twcc.received,
            "availableOutgoingBitrate": self.available_outgoing_bitrate,
            "rembReceived": self.remb_received,
            "bandwidthLimiting": self.bandwidth.limiting,
            "probeCluster": self.bandwidth.prober.cluster,
            "bandwidthEstimate": self.bandwidth.stats(),
        }
