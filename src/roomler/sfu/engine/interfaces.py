"""What the engine's objects need of each other, as Protocols (mediasoup's listener interfaces).

The engine's objects are built top-down: a Router creates WebRtcTransports, a
transport creates Producers and Consumers. Each lower object is given what it
needs of the one above as a small interface, not its class, so the modules
import downward only (``router -> transport -> consumer -> producer``):

- :class:`MediaSender`: the sending side of a transport, as a Producer (RTCP
  toward its browser: keyframe requests) and a Consumer (RTP, retransmissions,
  transport-wide sequence numbers) use it;
- :class:`RtpSink`: what a Producer needs of each of its consumers (the
  forwarding hot path and the pause/close notifications);
- :data:`Emit`: the event channel to the web process.

(What a transport needs of its router, ``TransportOwner``, is in ``media_transport.py``.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from roomler.sfu.rtcp import RtcpPacket

from .rewrite import RtpForward

__all__ = ["Emit", "MediaSender", "RtpSink"]

#: ``emit(event, target_id, data)``: one event to the web process; never raises.
Emit = Callable[[str, str, dict[str, Any]], object]


class MediaSender(Protocol):
    """The sending side of the transport a producer or consumer lives on."""

    @property
    def id(self) -> str: ...

    @property
    def rtcp_ssrc(self) -> int:
        """The SSRC our own RTCP (reports, feedback, keyframe requests) is sent with."""
        ...

    @property
    def can_send(self) -> bool:
        """Whether SRTP is up and the peer has an address: read per packet, so an attribute."""
        ...

    def send_rtp(self, packet: bytes) -> bytes | None:
        """Protect and send one RTP packet; the SRTP bytes, or None when not sent."""
        ...

    def send_protected(self, data: bytes) -> None:
        """Send SRTP bytes as they are (a retransmission of the very packet sent before)."""
        ...

    def send_rtcp(self, packets: Iterable[RtcpPacket]) -> None:
        """Send packets as one compound SRTCP datagram."""
        ...

    def next_transport_sequence(self) -> int:
        """The transport-wide sequence number for the next RTP packet sent."""
        ...

    def retransmission_allowed(self, now: float) -> bool:
        """Whether the link's budget leaves room to resend a packet now."""
        ...

    @property
    def resend_interval(self) -> float:
        """The least time (s) between two retransmissions of one packet: a round trip."""
        ...


class RtpSink(Protocol):
    """What a Producer needs of each of its consumers."""

    @property
    def id(self) -> str: ...

    def forward(self, packet: RtpForward, now: float) -> None:
        """One packet of the producer, read once and shared by every consumer."""
        ...

    def producer_streams(self) -> tuple[Iterable[int], Iterable[int]]:
        """The producer's encodings (indexes) whose every packet ``forward`` wants now, and
        those whose keyframe packets only (Producer.subscribe)."""
        ...

    def on_producer_pause(self) -> None: ...

    def on_producer_resume(self) -> None: ...

    def close(self, *, producer_closed: bool = False, transport_closed: bool = False) -> None: ...
