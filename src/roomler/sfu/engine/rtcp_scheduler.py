"""RtcpScheduler: what RTCP a transport sends of its own accord, and when, sans-I/O.

The transport calls :meth:`RtcpScheduler.on_tick` from one timer and sends the
datagrams it returns (SRTCP-protected); :meth:`RtcpScheduler.next_delay` says
when to call again. Time is passed in, so tests drive it without a loop.

- Every ``feedback_interval`` while the transport has producers: transport-wide-cc
  feedback (the arrivals :attr:`RtcpScheduler.transport_cc` recorded) and the NACKs
  that are due, toward the sending browser. Chrome's send-side bandwidth estimate
  wants feedback every 50..100 ms.
- Every ~``rtcp_interval``, randomized to 0.5..1.5 times it (RFC 3550 section 6.2):
  Receiver Reports for the producers' streams with an SDES CNAME, REMB where a
  producer negotiated it instead of transport-cc, and a Sender Report + SDES per
  consumer that has sent.

A transport that only sends (consumers) has nothing to do between reports, so
its timer sleeps until the next one: at hundreds of receivers per worker,
twenty wake-ups a second each would cost more than the reports.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from roomler.sfu.rtcp import (
    ReceiverReport,
    Remb,
    ReportBlock,
    RtcpPacket,
    Sdes,
    SdesChunk,
    serialize_rtcp,
)

from .bwe import RembEstimator, TransportCcRecorder
from .consumer import Consumer
from .producer import Producer
from .settings import EngineSettings

__all__ = ["RTCP_MTU", "RtcpScheduler", "pack_compound"]

#: RTCP datagrams are filled up to this size (below the usual 1200-byte MTU).
RTCP_MTU = 1100
#: Report blocks per Receiver Report (its 5-bit count, RFC 3550 section 6.4.2).
MAX_REPORT_BLOCKS = 31
_SDES_CNAME = 1


def pack_compound(groups: Iterable[list[RtcpPacket]], mtu: int = RTCP_MTU) -> list[bytes]:
    """Serialized groups (each a valid compound start), several per datagram up to ``mtu``."""
    datagrams: list[bytes] = []
    batch = b""
    for group in groups:
        data = serialize_rtcp(group)
        if batch and len(batch) + len(data) > mtu:
            datagrams.append(batch)
            batch = b""
        batch += data
    if batch:
        datagrams.append(batch)
    return datagrams


class RtcpScheduler:
    """The periodic RTCP of one transport (see the module docstring)."""

    def __init__(
        self,
        settings: EngineSettings,
        rtcp_ssrc: int,
        cname: str,
        epoch: float,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.rtcp_ssrc = rtcp_ssrc
        self._sdes = Sdes([SdesChunk(rtcp_ssrc, [(_SDES_CNAME, cname.encode())])])
        #: Arrivals of transport-wide sequence numbers; the transport adds one per RTP packet.
        self.transport_cc = TransportCcRecorder(rtcp_ssrc, epoch)
        self._remb = RembEstimator()
        self._rng = rng or random.Random()
        self.next_report = float("inf")
        self.transport_cc_feedback_sent = 0

    def start(self, now: float) -> None:
        """The transport is connected: the first reports go out half an interval from now."""
        self.next_report = now + self.settings.rtcp_interval / 2

    def next_delay(self, now: float, *, has_producers: bool) -> float:
        """Seconds to the next tick: a feedback period with producers, else the next report."""
        delay = self.settings.feedback_interval
        if not has_producers:
            delay = max(delay, self.next_report - now)
        return delay

    def on_tick(
        self,
        now: float,
        producers: Sequence[Producer],
        consumers: Sequence[Consumer],
        *,
        transport_cc: bool,
    ) -> tuple[list[bytes], bool]:
        """The datagrams to send now, and whether this tick was a report tick."""
        datagrams = pack_compound(self.feedback(now, producers, transport_cc=transport_cc))
        if now < self.next_report:
            return datagrams, False
        interval = self.settings.rtcp_interval
        self.next_report = now + interval * self._rng.uniform(0.5, 1.5)
        datagrams += pack_compound(self.reports(now, producers, consumers))
        return datagrams, True

    def feedback(
        self, now: float, producers: Sequence[Producer], *, transport_cc: bool
    ) -> list[list[RtcpPacket]]:
        """Transport-wide-cc feedback and the NACKs due, each packet a group of its own."""
        groups: list[list[RtcpPacket]] = []
        if transport_cc:
            feedback = self.transport_cc.feedback(_feedback_media_ssrc(producers))
            self.transport_cc_feedback_sent += len(feedback)
            groups.extend([packet] for packet in feedback)
        for producer in producers:
            groups.extend([packet] for packet in producer.nacks(now))
        return groups

    def reports(
        self, now: float, producers: Sequence[Producer], consumers: Sequence[Consumer]
    ) -> list[list[RtcpPacket]]:
        """RR + SDES (+ REMB) for what we receive, SR + SDES per consumer that has sent."""
        groups: list[list[RtcpPacket]] = []
        blocks = [block for producer in producers for block in producer.report_blocks(now)]
        for start in range(0, len(blocks), MAX_REPORT_BLOCKS):
            chunk = blocks[start : start + MAX_REPORT_BLOCKS]
            groups.append([ReceiverReport(self.rtcp_ssrc, chunk), self._sdes])
        remb = self._remb_packet(now, producers, blocks)
        if remb is not None:
            if groups:
                groups[0].append(remb)
            else:
                groups.append([ReceiverReport(self.rtcp_ssrc), self._sdes, remb])
        for consumer in consumers:
            report = consumer.sender_report(now)
            if report:
                groups.append(report)
        return groups

    def _remb_packet(
        self, now: float, producers: Sequence[Producer], blocks: list[ReportBlock]
    ) -> Remb | None:
        """REMB for producers that negotiated it without transport-cc."""
        remb = [p for p in producers if p.remb_enabled and not p.transport_cc_enabled]
        ssrcs = [s.ssrc for p in remb for s in p.streams if s.ssrc is not None]
        if not ssrcs:
            return None
        incoming = sum(p.rate.rate(now) for p in remb)
        lost = max((b.fraction_lost / 256 for b in blocks if b.ssrc in ssrcs), default=0.0)
        return Remb(self.rtcp_ssrc, self._remb.estimate(incoming, lost), ssrcs)


def _feedback_media_ssrc(producers: Sequence[Producer]) -> int:
    for producer in producers:
        ssrc = producer.forwarded_stream.ssrc
        if ssrc is not None:
            return ssrc
    return 0
