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
is a link between servers. The socket, the sending protocol, RTCP routing and the
periodic RTCP are the base class's, :class:`~.media_transport.MediaTransport`, as
on a WebRTC transport; what is the pipe's own is the fixed far address, the SRTP
keys exchanged through the web process, and the far side's RTCP naming a pipe
consumer's stream by any of its encodings' SSRCs.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import secrets
import socket
from typing import Any

from roomler.sfu import ortc
from roomler.sfu.demux import PacketKind, classify
from roomler.sfu.rtp import read_extensions, read_header
from roomler.sfu.srtp import SrtpContext, SrtpKeys, SrtpProfile

from .consumer import Consumer
from .media_transport import MediaTransport, SocketAddress, TransportOwner
from .pipe_consumer import PipeConsumer
from .producer import Producer
from .rtp_listener import RtpBinding

__all__ = ["PIPE_SRTP_SUITES", "PipeTransport", "PipeTransportOwner"]

logger = logging.getLogger(__name__)

#: mediasoup's names of the SRTP suites a pipe can use, and ours.
PIPE_SRTP_SUITES = {
    "AEAD_AES_128_GCM": SrtpProfile.AEAD_AES_128_GCM,
    "AES_CM_128_HMAC_SHA1_80": SrtpProfile.AES128_CM_SHA1_80,
}
DEFAULT_SRTP_SUITE = "AEAD_AES_128_GCM"

#: What a PipeTransport needs of its Router: what any transport does.
PipeTransportOwner = TransportOwner


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


def _plain(packet: bytes) -> bytes:
    return packet


class PipeTransport(MediaTransport):
    """Plain (or SRTP) RTP/RTCP on one UDP port, toward one other router's pipe transport."""

    kind = "pipe"
    stats_type = "pipe-transport"

    def __init__(
        self,
        router: TransportOwner,
        transport_id: str,
        sock: socket.socket,
        *,
        listen_ip: str,
        announced_ip: str | None,
        enable_rtx: bool = False,
        enable_srtp: bool = False,
    ) -> None:
        super().__init__(router, transport_id, sock, listen_ip=listen_ip, announced_ip=announced_ip)
        self.enable_rtx = enable_rtx
        self.remote: tuple[str, int] | None = None
        self._srtp_suite = DEFAULT_SRTP_SUITE if enable_srtp else None
        self._srtp_local = b""
        if enable_srtp:
            profile = PIPE_SRTP_SUITES[DEFAULT_SRTP_SUITE]
            self._srtp_local = secrets.token_bytes(profile.key_length + profile.salt_length)
        self._srtp: SrtpContext | None = None
        # The far side's RTCP names a pipe consumer's stream by the SSRC we send it with.
        self._consumer_streams: dict[int, PipeConsumer] = {}

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
            self._protect_rtp = _plain
        else:
            if srtp_parameters is None:
                raise ValueError("srtp_parameters are required: this pipe was made with SRTP")
            self._srtp = SrtpContext(
                _srtp_keys(self._srtp_suite, self._srtp_local, srtp_parameters)
            )
            self._protect_rtp = self._srtp.protect_rtp
        self.remote = (ip, port)
        if not self.closed:
            self.media_destination = self.remote
            self.can_send = True
        self._notify_connected()
        logger.info("%r connected to %s:%d", self, ip, port)

    # -- receiving ------------------------------------------------------------------

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
        extensions = read_extensions(data, header) if header.extension_profile else {}
        self._receive_rtp(data, header, extensions, now)

    def _learn_ssrc(self, ssrc: int, extensions: dict[int, bytes]) -> RtpBinding | None:
        return None  # a pipe producer's SSRCs are all signalled

    def _on_rtcp(self, data: bytes, now: float) -> None:
        if self._srtp is not None:
            data = self._srtp.unprotect_rtcp(data)
        self._receive_rtcp(data, now)

    def _consumer_sending(self, ssrc: int) -> Consumer | None:
        return self._consumer_streams.get(ssrc)

    def _on_nack(self, ssrc: int, lost: list[int], now: float) -> None:
        consumer = self._consumer_streams.get(ssrc)
        if consumer is not None:
            consumer.on_stream_nack(ssrc, lost, now)

    def _on_key_frame_request(self, ssrc: int, kind: str, now: float) -> None:
        consumer = self._consumer_streams.get(ssrc)
        if consumer is not None:
            consumer.on_stream_key_frame_request(ssrc, kind, now)

    # -- sending ----------------------------------------------------------------------

    def _protect_rtcp(self, data: bytes) -> bytes | None:
        return data if self._srtp is None else self._srtp.protect_rtcp(data)

    # -- producers and consumers ------------------------------------------------------------

    def produce(
        self, producer_id: str, kind: str, rtp_parameters: object, *, paused: bool = False
    ) -> Producer:
        """A pipe producer: the far pipe consumer's parameters, the source producer's id."""
        producer = self._new_producer(producer_id, kind, rtp_parameters, paused)
        if not producer.ssrc_bindings():
            raise ValueError("a pipe producer needs rtpParameters.encodings[].ssrc")
        self._attach_producer(producer)
        return producer

    def consume(self, consumer_id: str, producer: Producer, *, paused: bool = False) -> Consumer:
        """A pipe consumer of ``producer``: all its encodings, toward the far router."""
        params = ortc.get_pipe_consumer_rtp_parameters(
            producer.consumable_rtp_parameters, enable_rtx=self.enable_rtx
        )
        consumer = PipeConsumer(consumer_id, producer, params, **self._consumer_args(paused))
        if any(ssrc in self._consumer_streams for ssrc in consumer.ssrcs):
            raise ValueError("pipe consumer SSRC collides, try again")
        for ssrc in consumer.ssrcs:
            self._consumer_streams[ssrc] = consumer
        self._attach_consumer(consumer)
        if consumer.active and self.can_send:
            consumer.request_key_frame()
        logger.info("%r pipes %r as %r", self, producer, consumer)
        return consumer

    def _remove_consumer(self, consumer: Consumer) -> None:
        for ssrc in [s for s, c in self._consumer_streams.items() if c is consumer]:
            del self._consumer_streams[ssrc]
        super()._remove_consumer(consumer)

    # -- introspection ------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            **super().dump(),
            "tuple": self.tuple,
            "rtx": self.enable_rtx,
            "srtpParameters": self.srtp_parameters,
        }

    def get_stats(self) -> dict[str, Any]:
        return {**super().get_stats(), "tuple": self.tuple}
