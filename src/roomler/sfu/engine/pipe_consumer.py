"""A pipe consumer: every encoding of a producer, sent to another router (mediasoup's PipeConsumer).

A pipe consumer lives on a :class:`~.pipe_transport.PipeTransport`; the router at the
other end of the pipe receives its packets with a *pipe producer* built from this
consumer's RTP parameters (``ortc.get_pipe_consumer_rtp_parameters``: every codec and
encoding of the producer, each encoding with an SSRC of its own, no MID and no
congestion-control extensions). Unlike a browser's consumer it chooses nothing:

- every encoding of the producer goes through, each on its SSRC, so the far router
  switches simulcast layers itself;
- sequence numbers continue across a restart (creation, pause/resume, producer
  resume): each stream waits for a keyframe (video) and re-bases its offset on the
  last number it sent; timestamps are passed on unchanged -- the far producer sees the
  original timeline, and this consumer's Sender Reports map it with the producer's own;
- keyframe requests (PLI, FIR) from the far side name the stream by its SSRC and reach
  the producer for that encoding; NACKs are answered over RTX when the pipe was made
  with ``enable_rtx`` (else NACK is not negotiated and nothing is buffered).
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from roomler.sfu.rtcp import ReportBlock, RtcpPacket, Sdes, SdesChunk, SenderReport, ntp_from_unix
from roomler.sfu.rtp import read_header, wrap_rtx

from .allocation import Demand, Layers
from .consumer import Consumer
from .nack import RetransmissionBuffer
from .rewrite import RtpForward, build_rtp_packet, extension_block

__all__ = ["PipeConsumer", "PipeStream"]

logger = logging.getLogger(__name__)

_SDES_CNAME = 1
_MISSING: Any = object()
# Input packets this far behind the newest one are never forwarded.
_SYNC_WINDOW = 0x4000


class PipeStream:
    """One encoding as the pipe consumer sends it: its SSRCs and numbering."""

    __slots__ = (
        "buffer",
        "index",
        "max_seq",
        "max_time",
        "max_ts",
        "packets_sent",
        "payload_bytes_sent",
        "rtx_seq",
        "rtx_ssrc",
        "seq_offset",
        "ssrc",
        "sync_required",
        "sync_seq",
    )

    def __init__(
        self, index: int, ssrc: int, rtx_ssrc: int | None, buffer: RetransmissionBuffer | None
    ) -> None:
        self.index = index
        self.ssrc = ssrc
        self.rtx_ssrc = rtx_ssrc
        self.buffer = buffer
        self.sync_required = True
        self.sync_seq = 0
        self.seq_offset = 0
        self.max_seq: int | None = None
        self.max_ts = 0
        self.max_time = 0.0
        self.rtx_seq = secrets.randbelow(0x10000)
        self.packets_sent = 0
        self.payload_bytes_sent = 0


class PipeConsumer(Consumer):
    """Every encoding of one producer, toward the router at the other end of a pipe."""

    type = "pipe"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = kwargs["settings"]
        self._buffer = None  # each stream keeps its own
        self.streams: list[PipeStream] = []
        for index, encoding in enumerate(self.rtp_parameters["encodings"]):
            rtx = encoding.get("rtx") if self._rtx_pt is not None else None
            buffer = (
                RetransmissionBuffer(settings.retransmission_packets, settings.retransmission_age)
                if self.nack_enabled and self._rtx_pt is not None
                else None
            )
            rtx_ssrc = rtx["ssrc"] if isinstance(rtx, dict) else None
            self.streams.append(PipeStream(index, encoding["ssrc"], rtx_ssrc, buffer))
        self._by_ssrc = {stream.ssrc: stream for stream in self.streams}

    def __repr__(self) -> str:
        return f"PipeConsumer({self.id[:8]}, {self.kind}, {len(self.streams)} stream(s))"

    @property
    def ssrcs(self) -> list[int]:
        """The media SSRCs the far side's RTCP names (one per encoding)."""
        return [stream.ssrc for stream in self.streams]

    # -- forwarding (hot path) ------------------------------------------------

    def producer_streams(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return tuple(range(len(self.streams))), ()

    def forward(self, packet: RtpForward, now: float) -> None:
        if self.paused or self.producer_paused or self.closed:
            return
        if packet.payload_type not in self._payload_types or packet.layer >= len(self.streams):
            return
        if not self.sender.can_send:
            return
        stream = self.streams[packet.layer]
        if stream.sync_required:
            if self.kind == "video" and not packet.keyframe:
                return
            self._sync_stream(stream, packet.sequence_number)
        else:
            delta = (packet.sequence_number - stream.sync_seq) & 0xFFFF
            if delta & 0x8000:
                return  # older than the restart point
            if delta > _SYNC_WINDOW:
                stream.sync_seq = (packet.sequence_number - _SYNC_WINDOW) & 0xFFFF
        seq = (packet.sequence_number + stream.seq_offset) & 0xFFFF
        self._send_stream(stream, packet, seq, now)

    def _send_stream(self, stream: PipeStream, packet: RtpForward, seq: int, now: float) -> None:
        template = packet.cache.get(self._template_key, _MISSING)
        if template is _MISSING:
            template = packet.cache[self._template_key] = self._header_template(packet, now)
        if template is None:
            data = build_rtp_packet(
                packet,
                payload_type=packet.payload_type,
                sequence_number=seq,
                timestamp=packet.timestamp,
                ssrc=stream.ssrc,
                block=extension_block(self._extension_items(packet.extensions, now)),
            )
        else:
            pack, first, second, middle, _ = template
            data = pack(first, second, seq, packet.timestamp, stream.ssrc, middle) + packet.body
        if self.sender.send_rtp(data) is None:
            return
        if stream.buffer is not None:
            stream.buffer.store(seq, data, now)
        stream.packets_sent += 1
        stream.payload_bytes_sent += len(packet.body)
        self.packets_sent += 1
        self.bytes_sent += len(data)
        self.payload_bytes_sent += len(packet.body)
        if stream.max_seq is None or not (seq - stream.max_seq) & 0x8000:
            stream.max_seq = seq
            stream.max_ts = packet.timestamp
            stream.max_time = now

    def _sync_stream(self, stream: PipeStream, seq: int) -> None:
        stream.sync_required = False
        stream.sync_seq = seq
        if stream.max_seq is not None:
            stream.seq_offset = (stream.max_seq + 1 - seq) & 0xFFFF

    # -- feedback from the far router -------------------------------------------

    def on_stream_nack(self, ssrc: int, lost: list[int], now: float) -> None:
        """Resend over RTX what the far side is missing of the stream sent with ``ssrc``."""
        self.nack_count += 1
        self.nack_packets += len(lost)
        stream = self._by_ssrc.get(ssrc)
        if stream is None or stream.buffer is None or stream.rtx_ssrc is None:
            return
        assert self._rtx_pt is not None
        for seq in lost:
            stored = stream.buffer.get(seq, now)
            if stored is None:
                continue
            rtx = wrap_rtx(
                stored,
                read_header(stored),
                ssrc=stream.rtx_ssrc,
                payload_type=self._rtx_pt,
                sequence_number=stream.rtx_seq,
            )
            stream.rtx_seq = (stream.rtx_seq + 1) & 0xFFFF
            self.sender.send_rtp(rtx)
            self.retransmitted_packets += 1

    def on_nack(self, lost: list[int], now: float) -> None:
        self.on_stream_nack(self.ssrc, lost, now)

    def on_stream_key_frame_request(self, ssrc: int, kind: str, now: float) -> None:
        """A keyframe of the encoding sent with ``ssrc``, asked for by the far router."""
        if kind == "fir":
            self.fir_count += 1
        else:
            self.pli_count += 1
        stream = self._by_ssrc.get(ssrc)
        if stream is not None and self.active:
            self.producer.request_key_frame(now, stream.index)

    def on_key_frame_request(self, kind: str, now: float) -> None:
        self.on_stream_key_frame_request(self.ssrc, kind, now)

    def request_key_frame(self) -> None:
        now = self.loop.time()
        for stream in self.streams:
            self.producer.request_key_frame(now, stream.index)

    def on_report_block(self, block: ReportBlock, arrival_ntp: int) -> None:
        if block.ssrc == self.ssrc:  # the first encoding's report speaks for the pipe
            super().on_report_block(block, arrival_ntp)

    # -- reports ----------------------------------------------------------------

    def sender_report(self, now: float) -> list[RtcpPacket]:
        """One SR per stream that has sent, on the producer's own clock mapping (so the far
        router's simulcast consumers can align the encodings), and one SDES."""
        ntp = ntp_from_unix(time.time())
        packets: list[RtcpPacket] = []
        chunks: list[SdesChunk] = []
        for stream in self.streams:
            if stream.max_seq is None:
                continue
            stats = self.producer.streams[stream.index].stats
            if stats.last_sr_time is not None:
                rtp_now = stats.last_sr_rtp + int((now - stats.last_sr_time) * self.clock_rate)
            else:
                rtp_now = stream.max_ts + int((now - stream.max_time) * self.clock_rate)
            packets.append(
                SenderReport(
                    ssrc=stream.ssrc,
                    ntp_timestamp=ntp,
                    rtp_timestamp=rtp_now & 0xFFFFFFFF,
                    packet_count=stream.packets_sent & 0xFFFFFFFF,
                    octet_count=stream.payload_bytes_sent & 0xFFFFFFFF,
                )
            )
            chunks.append(SdesChunk(stream.ssrc, [(_SDES_CNAME, self.cname.encode()[:255])]))
        if packets:
            packets.append(Sdes(chunks))
        return packets

    # -- bandwidth: a pipe is not congestion-controlled (as in mediasoup) --------------

    def demand(self, now: float) -> Demand:
        return Demand(self.id, self._priority_class(), {}, paused=True)

    def apply_layers(self, layers: Layers | None, now: float) -> None:
        """Nothing to choose: every encoding goes through."""

    def send_padding(self, size: int) -> bool:
        return False

    # -- control ----------------------------------------------------------------------

    def _restart(self) -> None:
        for stream in self.streams:
            stream.sync_required = True
        if self.active:
            self.request_key_frame()

    def on_producer_resume(self) -> None:
        super().on_producer_resume()
        for stream in self.streams:
            stream.sync_required = True

    def close(self, *, producer_closed: bool = False, transport_closed: bool = False) -> None:
        for stream in self.streams:
            if stream.buffer is not None:
                stream.buffer.clear()
        super().close(producer_closed=producer_closed, transport_closed=transport_closed)

    # -- introspection ------------------------------------------------------------

    def score(self, now: float) -> dict[str, Any]:
        """mediasoup's pipe consumer score: the pipe's own, no producer scores."""
        return {"score": self._score, "producer_score": 10, "producer_scores": []}

    def get_stats(self) -> dict[str, Any]:
        stats = super().get_stats()
        stats["streams"] = [
            {"ssrc": s.ssrc, "rtxSsrc": s.rtx_ssrc, "packetCount": s.packets_sent}
            for s in self.streams
        ]
        return stats
