"""A Consumer: one producer's track sent to one browser (mediasoup's Consumer).

Each consumer rewrites the producer's packets into its own stream: its SSRC
(and RTX SSRC), the Router's payload types, the extension ids it negotiated
(others dropped), its own MID, and the transport-wide sequence number of the
transport it is sent on.

Continuity. Output sequence numbers and timestamps are the input ones plus
offsets. Whenever the stream (re)starts -- creation, resume, producer resume
-- the consumer waits for a keyframe (video) and re-bases the offsets so the
output continues right after the last packet it sent: the next sequence
number, and a timestamp advanced by the wall time that passed. Packets older
than that restart point are not forwarded.

Loss repair. Sent packets are kept in a :class:`~.nack.RetransmissionBuffer`
(1..2 s); a receiver's NACK is answered over RTX when negotiated (RFC 4588),
else by resending the exact SRTP packet sent the first time (SRTP must not
protect one packet index twice, see ``roomler.sfu.srtp``).

Sender Reports map the NTP wall clock to the consumer's RTP timeline: from
the producer's own last Sender Report when there is one (so audio and video
of one sender stay in sync at the receiver), else from the last packet sent.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
import time
from collections.abc import Callable
from typing import Any

from roomler.sfu import ortc
from roomler.sfu.codecs import ABS_SEND_TIME_URI, MID_URI, TRANSPORT_CC_URI
from roomler.sfu.rtcp import (
    ReportBlock,
    RtcpPacket,
    Sdes,
    SdesChunk,
    SenderReport,
    ntp_from_unix,
    round_trip_time,
)
from roomler.sfu.rtp import (
    RtpPacket,
    encode_abs_send_time,
    read_header,
    wrap_rtx,
    write_transport_sequence_number,
)

from .allocation import Demand, Layers, Priority
from .interfaces import Emit, MediaSender
from .nack import RetransmissionBuffer
from .producer import Producer
from .rewrite import (
    HeaderTemplate,
    RtpForward,
    build_rtp_packet,
    extension_block,
    header_template,
    one_byte_elements,
    template_key,
)
from .rtp_stats import ReceiveStats, score_from_loss
from .settings import EngineSettings

__all__ = ["Consumer"]

logger = logging.getLogger(__name__)

_U16 = struct.Struct("!H")
_SDES_CNAME = 1
#: A probe copies the biggest of the last few packets sent.
PROBE_LOOKBACK = 4
#: A padding-only packet's size at most: 255 bytes of padding and a header.
_MAX_PADDING_PACKET = 300
_MISSING: Any = object()
# Input packets this far behind the newest one are never forwarded.
_SYNC_WINDOW = 0x4000


def _is_rtx(codec: ortc.RtpCodecParameters) -> bool:
    return codec["mimeType"].lower().endswith("/rtx")


class Consumer:
    """One producer's track as sent to one browser over one WebRtcTransport.

    It knows its transport only as a :class:`~.interfaces.MediaSender`; ``on_close``
    tells the transport it is gone. This one passes on the producer's first
    encoding; :class:`~.simulcast_consumer.SimulcastConsumer` (and the SVC consumer
    to come) choose which of the producer's streams ``forward`` passes on.
    """

    #: mediasoup's consumer type.
    type = "simple"

    def __init__(
        self,
        consumer_id: str,
        producer: Producer,
        rtp_parameters: ortc.RtpParameters,
        *,
        sender: MediaSender,
        loop: asyncio.AbstractEventLoop,
        settings: EngineSettings,
        emit: Emit,
        on_close: Callable[[Consumer], None],
        paused: bool = False,
    ) -> None:
        self.id = consumer_id
        self.sender = sender
        self.loop = loop
        self._emit = emit
        self._on_close = on_close
        self.producer = producer
        self.kind = producer.kind
        self.rtp_parameters = rtp_parameters
        self.paused = paused
        self.producer_paused = producer.paused
        self.closed = False
        #: mediasoup's consumer priority (1..255): above 1, video is served as a speaker's.
        self.priority = 1
        self.clock_rate = producer.clock_rate
        self._init_codecs(rtp_parameters)
        self._init_extensions(rtp_parameters)
        encoding = rtp_parameters["encodings"][0]
        self.ssrc: int = encoding["ssrc"]
        self.rtx_ssrc: int | None = encoding.get("rtx", {}).get("ssrc") if self._rtx_pt else None
        self.cname = rtp_parameters["rtcp"].get("cname", "")
        self._buffer = (
            RetransmissionBuffer(settings.retransmission_packets, settings.retransmission_age)
            if self.nack_enabled
            else None
        )
        self._init_sequence_state()
        self._init_counters()

    def _init_codecs(self, params: ortc.RtpParameters) -> None:
        media = [c for c in params["codecs"] if not _is_rtx(c)]
        self._payload_types = frozenset(c["payloadType"] for c in media)
        first = media[0]
        self.mime_type = first["mimeType"]
        rtx = next(
            (
                c
                for c in params["codecs"]
                if _is_rtx(c) and c["parameters"].get("apt") == first["payloadType"]
            ),
            None,
        )
        self._rtx_pt: int | None = rtx["payloadType"] if rtx else None
        feedback = {(fb["type"], fb["parameter"]) for fb in first["rtcpFeedback"]}
        self.nack_enabled = ("nack", "") in feedback

    def _init_extensions(self, params: ortc.RtpParameters) -> None:
        ids = {ext["uri"]: ext["id"] for ext in params["headerExtensions"]}
        self._mid_id = ids.pop(MID_URI, None)
        self._twcc_id = ids.pop(TRANSPORT_CC_URI, None)
        self._abs_send_time_id = ids.pop(ABS_SEND_TIME_URI, None)
        self.mid: str | None = params.get("mid")
        self._mid_value = self.mid.encode("ascii") if self.mid and self._mid_id else None
        # Router ids copied from the producer's packets, in a stable order.
        self._forward_ids = tuple(sorted(ids.values()))
        # Our own elements, pre-encoded in the one-byte form when they fit it.
        own = [i for i in (self._mid_id, self._twcc_id, self._abs_send_time_id) if i is not None]
        self._one_byte = all(i <= 14 for i in (*own, *self._forward_ids)) and (
            self._mid_value is None or len(self._mid_value) <= 16
        )
        self._mid_element = b""
        if self._one_byte and self._mid_value is not None and self._mid_id is not None:
            self._mid_element = one_byte_elements([(self._mid_id, self._mid_value)]) or b""
        self._template_key = template_key(
            (self._forward_ids, self._mid_element, self._abs_send_time_id, self._twcc_id)
        )

    def _init_sequence_state(self) -> None:
        self._sync_required = True
        self._sync_seq = 0
        self._seq_offset = 0
        self._ts_offset = 0
        self._max_seq: int | None = None
        self._max_ts = 0
        self._max_time = 0.0
        self._rtx_seq = secrets.randbelow(0x10000)

    def _init_counters(self) -> None:
        self.packets_sent = 0
        self.bytes_sent = 0
        self.payload_bytes_sent = 0
        self.retransmitted_packets = 0
        #: NACKed packets not resent: the link's budget was spent (see TransportBandwidth).
        self.retransmissions_withheld = 0
        self.padding_packets_sent = 0
        self.probe_packets_sent = 0
        self.nack_count = 0
        self.nack_packets = 0
        self.pli_count = 0
        self.fir_count = 0
        self.report: ReportBlock | None = None
        self.round_trip_time: float | None = None
        self._score = 10
        self._last_score_event: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Consumer({self.id[:8]}, {self.kind}, ssrc={self.ssrc})"

    @property
    def active(self) -> bool:
        return not (self.paused or self.producer_paused or self.closed)

    # -- forwarding (hot path) ------------------------------------------------

    def producer_streams(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The producer's encodings this consumer is handed every packet of, and those it
        is handed keyframes of (Producer.subscribe): the first encoding."""
        return (0,), ()

    def forward(self, packet: RtpForward, now: float) -> None:
        if self.paused or self.producer_paused or self.closed:
            return
        if packet.payload_type not in self._payload_types or packet.layer:
            return  # a simple consumer passes on the first encoding only
        sender = self.sender
        if not sender.can_send:
            return
        if self._sync_required:
            if self.kind == "video" and not packet.keyframe:
                return
            self._sync(packet.sequence_number, packet.timestamp, now)
        else:
            delta = (packet.sequence_number - self._sync_seq) & 0xFFFF
            if delta & 0x8000:
                return  # older than the restart point
            if delta > _SYNC_WINDOW:
                # Slide the reference along so it never wraps around us.
                self._sync_seq = (packet.sequence_number - _SYNC_WINDOW) & 0xFFFF
        seq = (packet.sequence_number + self._seq_offset) & 0xFFFF
        timestamp = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        self._send(packet, seq, timestamp, packet.body, now)

    def _send(
        self,
        packet: RtpForward,
        seq: int,
        timestamp: int,
        body: bytes,
        now: float,
        marker: bool | None = None,
    ) -> None:
        """Send ``packet`` with our numbers and ``body`` (its own, or a rewritten one);
        ``marker`` replaces its marker bit (an SVC consumer ends pictures where it drops)."""
        sender = self.sender
        template = packet.cache.get(self._template_key, _MISSING)
        if template is _MISSING:
            template = packet.cache[self._template_key] = self._header_template(packet, now)
        if template is None:
            data = build_rtp_packet(
                packet,
                payload_type=packet.payload_type,
                sequence_number=seq,
                timestamp=timestamp,
                ssrc=self.ssrc,
                block=extension_block(self._extension_items(packet.extensions, now)),
            )
            if body is not packet.body:
                data = data[: len(data) - len(packet.body)] + body
            if marker is not None and marker != packet.marker:
                data = data[:1] + bytes(((data[1] & 0x7F) | (0x80 if marker else 0),)) + data[2:]
        else:
            pack, first, second, middle, twcc = template
            if marker is not None:
                second = (second & 0x7F) | (0x80 if marker else 0)
            if twcc:
                twcc_seq = sender.next_transport_sequence()
                head = pack(first, second, seq, timestamp, self.ssrc, middle, twcc_seq)
            else:
                head = pack(first, second, seq, timestamp, self.ssrc, middle)
            data = head + body
        protected = sender.send_rtp(data)
        if protected is None:
            return
        if self._buffer is not None:
            self._buffer.store(seq, data if self._rtx_pt is not None else protected, now)
        self.packets_sent += 1
        self.bytes_sent += len(data)
        self.payload_bytes_sent += len(body)
        if self._max_seq is None or not (seq - self._max_seq) & 0x8000:
            self._max_seq = seq
            self._max_ts = timestamp
            self._max_time = now

    def _header_template(self, packet: RtpForward, now: float) -> HeaderTemplate | None:
        """Our one-byte-form header for ``packet``; None when an element does not fit it.

        Consumers with the same template key share the result through the packet's cache.
        """
        if not self._one_byte:
            return None
        values = packet.extensions
        shared = one_byte_elements([(i, values[i]) for i in self._forward_ids if i in values])
        if shared is None:  # a forwarded value too long for the one-byte form
            return None
        elements = shared + self._mid_element
        if self._abs_send_time_id is not None:
            head = bytes(((self._abs_send_time_id << 4) | 2,))
            elements += head + encode_abs_send_time(now)
        return header_template(packet, elements, self._twcc_id)

    def _extension_items(self, values: dict[int, bytes], now: float) -> list[tuple[int, bytes]]:
        """The same elements as (id, value) pairs, for the general (two-byte) path."""
        items = [(ext_id, values[ext_id]) for ext_id in self._forward_ids if ext_id in values]
        if self._mid_value is not None:
            items.append((self._mid_id, self._mid_value))  # type: ignore[arg-type]
        if self._abs_send_time_id is not None:
            items.append((self._abs_send_time_id, encode_abs_send_time(now)))
        if self._twcc_id is not None:
            items.append((self._twcc_id, _U16.pack(self.sender.next_transport_sequence())))
        return items

    def _sync(self, seq: int, timestamp: int, now: float) -> None:
        """Re-base the offsets so this packet follows the last one sent."""
        self._sync_required = False
        self._sync_seq = seq
        if self._max_seq is None:
            return
        self._seq_offset = (self._max_seq + 1 - seq) & 0xFFFF
        elapsed = max(1, int((now - self._max_time) * self.clock_rate))
        self._ts_offset = (self._max_ts + elapsed - timestamp) & 0xFFFFFFFF
        logger.debug("%r resynced at input seq %d", self, seq)

    # -- feedback from the receiver ---------------------------------------------

    def on_nack(self, lost: list[int], now: float) -> None:
        """Resend what the receiver is missing (RFC 4585 section 6.2.1)."""
        self.nack_count += 1
        self.nack_packets += len(lost)
        if self._buffer is None:
            return
        sender = self.sender
        interval = sender.resend_interval
        for seq in lost:
            if not sender.retransmission_allowed(now):
                # Resending into a link that is already full only lengthens its queue and
                # loses more (libwebrtc caps retransmissions by its estimate too).
                self.retransmissions_withheld += 1
                continue
            stored = self._buffer.get(seq, now, interval)
            if stored is None:
                continue
            if self._rtx_pt is None:
                self.sender.send_protected(stored)
            else:
                self._send_rtx(stored)
            self.retransmitted_packets += 1

    def _send_rtx(self, packet: bytes) -> None:
        assert self._rtx_pt is not None and self.rtx_ssrc is not None
        header = read_header(packet)
        rtx = wrap_rtx(
            packet,
            header,
            ssrc=self.rtx_ssrc,
            payload_type=self._rtx_pt,
            sequence_number=self._rtx_seq,
        )
        self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        if self._twcc_id is not None:
            seq = self.sender.next_transport_sequence()
            rtx = write_transport_sequence_number(rtx, read_header(rtx), self._twcc_id, seq)
        self.sender.send_rtp(rtx)

    def on_key_frame_request(self, kind: str, now: float) -> None:
        if kind == "fir":
            self.fir_count += 1
        else:
            self.pli_count += 1
        if self.active:
            self.producer.request_key_frame(now)

    def on_report_block(self, block: ReportBlock, arrival_ntp: int) -> None:
        self.report = block
        if block.lsr:
            rtt = round_trip_time(arrival_ntp, block.lsr, block.dlsr)
            if rtt < 60:
                self.round_trip_time = rtt
        self._update_score(score_from_loss(block.fraction_lost))

    # -- score (mediasoup's consumer.score: 0..10 for what the receiver and the producer get)

    def _forwarded_layer(self) -> int:
        """The producer encoding this consumer passes on."""
        return 0

    def producer_scores(self, now: float) -> list[int]:
        """Each producer encoding's score from the loss the SFU saw on it (0: not flowing)."""
        return [
            score_from_loss(stream.stats.last_fraction_lost) if stream.rate.rate(now) else 0
            for stream in self.producer.streams
        ]

    def score(self, now: float) -> dict[str, Any]:
        producer_scores = self.producer_scores(now)
        layer = min(self._forwarded_layer(), len(producer_scores) - 1)
        return {
            "score": self._score,
            "producer_score": producer_scores[layer],
            "producer_scores": producer_scores,
        }

    def _update_score(self, score: int) -> None:
        """Emit ``consumer.score`` when the score or the producer's changed."""
        self._score = score
        current = self.score(self.loop.time())
        if current != self._last_score_event:
            self._last_score_event = current
            self._emit("consumer.score", self.id, current)

    def sender_report(self, now: float) -> list[RtcpPacket]:
        """SR + SDES CNAME for this stream (RFC 3550 section 6.4.1), once it has sent."""
        if self._max_seq is None:
            return []
        ntp = ntp_from_unix(time.time())
        stream, ts_offset = self._clock_source()
        if stream.last_sr_time is not None:
            rtp_now = stream.last_sr_rtp + int((now - stream.last_sr_time) * self.clock_rate)
            rtp_now += ts_offset
        else:
            rtp_now = self._max_ts + int((now - self._max_time) * self.clock_rate)
        report = SenderReport(
            ssrc=self.ssrc,
            ntp_timestamp=ntp,
            rtp_timestamp=rtp_now & 0xFFFFFFFF,
            packet_count=self.packets_sent & 0xFFFFFFFF,
            octet_count=self.payload_bytes_sent & 0xFFFFFFFF,
        )
        sdes = Sdes([SdesChunk(self.ssrc, [(_SDES_CNAME, self.cname.encode()[:255])])])
        return [report, sdes]

    def _clock_source(self) -> tuple[ReceiveStats, int]:
        """The producer stream whose SRs map our timeline, and the offset added to it."""
        return self.producer.forwarded_stream.stats, self._ts_offset

    # -- bandwidth (the transport's allocator, engine/bandwidth.py) ------------------

    def _priority_class(self) -> Priority:
        if self.kind == "audio":
            return Priority.AUDIO
        return Priority.SPEAKER if self.priority > 1 else Priority.VIDEO

    def demand(self, now: float) -> Demand:
        """What this consumer would send, for the transport's allocator: one stream,
        at the bitrate the producer receives it."""
        if not self.active:
            return Demand(self.id, self._priority_class(), {}, paused=True)
        bitrate = float(self.producer.forwarded_stream.rate.rate(now))
        return Demand(self.id, self._priority_class(), {(0, 0): bitrate})

    def apply_layers(self, layers: Layers | None, now: float) -> None:
        """The allocator's share for this consumer: a simple consumer has nothing to drop."""

    def send_probe(self, size: int) -> int:
        """Send about ``size`` bytes of bandwidth probe; the bytes sent (0: cannot).

        As libwebrtc does, a probe is preferably a copy of a media packet sent a moment
        ago, on the RTX stream (the receiver drops it as a duplicate): a packet as big as
        media, so a probe is a few packets where padding (at most 255 bytes a packet)
        would take many -- on a bottleneck whose queue counts packets, and whose token
        bucket lets a small burst through at once, only a probe of full-size packets
        measures a rate. Copies are sent until they make up ``size``; without a stored
        packet bigger than padding can be, padding-only packets do.
        """
        sent = 0
        if self._buffer is not None and self._rtx_pt is not None and self._max_seq is not None:
            best: bytes | None = None
            for back in range(PROBE_LOOKBACK):
                stored = self._buffer.peek((self._max_seq - back) & 0xFFFF)
                if stored is not None and (best is None or len(stored) > len(best)):
                    best = stored
            if (
                best is not None
                and len(best) > _MAX_PADDING_PACKET
                and self.active
                and self._twcc_id is not None
            ):
                while sent < size:
                    self._send_rtx(best)
                    self.probe_packets_sent += 1
                    sent += len(best)
                return sent
        while sent < size and self.send_padding(min(255, size - sent)):
            sent += min(255, size - sent)
        return sent

    def send_padding(self, size: int) -> bool:
        """Send an RTX padding-only packet of ``size`` padding bytes (a bandwidth probe).

        Padding goes on the RTX stream so the media stream's numbering is untouched
        (libwebrtc probes the same way); it needs RTX, transport-cc and a stream started.
        """
        if self._rtx_pt is None or self.rtx_ssrc is None or self._twcc_id is None:
            return False
        if self._max_seq is None or not self.active:
            return False
        extensions = {self._twcc_id: _U16.pack(self.sender.next_transport_sequence())}
        if self._mid_value is not None and self._mid_id is not None:
            extensions[self._mid_id] = self._mid_value
        packet = RtpPacket(
            payload_type=self._rtx_pt,
            sequence_number=self._rtx_seq,
            timestamp=self._max_ts,
            ssrc=self.rtx_ssrc,
            extensions=extensions,
            padding_size=size,
        )
        self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        self.padding_packets_sent += 1
        return self.sender.send_rtp(packet.serialize()) is not None

    def set_priority(self, priority: int) -> None:
        """mediasoup's setPriority: 1..255, 1 the default."""
        if not 1 <= priority <= 255:
            raise ValueError(f"priority must be 1..255, got {priority}")
        self.priority = priority

    # -- control ------------------------------------------------------------------

    def _restart(self) -> None:
        """The stream restarts: wait for a keyframe, then continue the numbering."""
        self._sync_required = True
        if self.active:
            self.producer.request_key_frame(self.loop.time())

    def on_transport_connected(self) -> None:
        self._restart()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        self._restart()

    def request_key_frame(self) -> None:
        self.producer.request_key_frame(self.loop.time())

    def on_producer_pause(self) -> None:
        if self.producer_paused:
            return
        self.producer_paused = True
        self._emit("consumer.producerpause", self.id, {})

    def on_producer_resume(self) -> None:
        if not self.producer_paused:
            return
        self.producer_paused = False
        self._sync_required = True
        self._emit("consumer.producerresume", self.id, {})

    def close(self, *, producer_closed: bool = False, transport_closed: bool = False) -> None:
        """Close; the event tells the web process why when it did not ask for it."""
        if self.closed:
            return
        self.closed = True
        self.producer.remove_consumer(self)
        self._on_close(self)
        if self._buffer is not None:
            self._buffer.clear()
        if producer_closed:
            self._emit("consumer.producerclose", self.id, {})
        elif transport_closed:
            self._emit("consumer.transportclose", self.id, {})
        logger.debug("%r closed", self)

    # -- introspection ------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "type": self.type,
            "producerId": self.producer.id,
            "transportId": self.sender.id,
            "paused": self.paused,
            "producerPaused": self.producer_paused,
            "priority": self.priority,
            "rtpParameters": self.rtp_parameters,
        }

    def get_stats(self) -> dict[str, Any]:
        report = self.report
        return {
            "type": "outbound-rtp",
            "kind": self.kind,
            "mimeType": self.mime_type,
            "ssrc": self.ssrc,
            "rtxSsrc": self.rtx_ssrc,
            "paused": self.paused,
            "producerPaused": self.producer_paused,
            "packetCount": self.packets_sent,
            "byteCount": self.bytes_sent,
            "retransmittedPackets": self.retransmitted_packets,
            "retransmissionsWithheld": self.retransmissions_withheld,
            "paddingPacketsSent": self.padding_packets_sent,
            "probePacketsSent": self.probe_packets_sent,
            "priority": self.priority,
            "nackCount": self.nack_count,
            "nackPacketCount": self.nack_packets,
            "pliCount": self.pli_count,
            "firCount": self.fir_count,
            "packetsLost": report.packets_lost if report else 0,
            "fractionLost": report.fraction_lost if report else 0,
            "jitter": report.jitter if report else 0,
            "roundTripTime": self.round_trip_time,
            "score": self.score(self.loop.time()),
        }
