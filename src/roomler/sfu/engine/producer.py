"""A Producer: one track a browser sends into a Router (mediasoup's Producer).

The transport hands over every decrypted RTP packet whose SSRC belongs to
this producer (signalled in ``rtpParameters.encodings``, or learned from the
MID / RID header extensions when the browser signals only RIDs). Here the
packet is

1. unwrapped if it came on the RTX SSRC (RFC 4588 section 4; padding-only
   RTX packets are bandwidth probes and end here),
2. checked for duplicates and gaps (:class:`~.nack.NackGenerator`) and
   counted for Receiver Reports,
3. read once into an :class:`~.rewrite.RtpForward` with the Router's payload
   type and extension ids, and handed to the consumers of its encoding.

Simulcast: every encoding is received, repaired (NACK), reported and
forwarded, tagged with its index (``RtpForward.layer``); keyframes are asked
for per encoding.  A simple consumer passes on encoding 0 only; a simulcast
consumer (:mod:`.simulcast_consumer`) picks among them.  SVC (one VP9
encoding of several layers): an SVC consumer (:mod:`.svc_consumer`) drops
layers by the ids in each packet.

Fan-out per encoding: each consumer tells the producer which encodings it
wants (:meth:`Producer.subscribe`; a simulcast consumer every packet of the
one it sends, and only the keyframes of the one it waits to switch to), and
each packet goes to its encoding's subscribers only -- a consumer never sees
the packets of encodings it drops, and an encoding nobody wants is received,
repaired and reported but not read for forwarding.  Whether an encoding (or an
SVC spatial layer) is flowing is tracked once, here (:class:`LayerActivity`),
and its listeners are told when the set of active ones changes.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

from roomler.sfu import ortc
from roomler.sfu.codecs import AUDIO_LEVEL_URI, TRANSPORT_CC_URI
from roomler.sfu.rtcp import Fir, GenericNack, Pli, ReportBlock, RtcpPacket
from roomler.sfu.rtp import RtpHeader, is_keyframe, read_header, unwrap_rtx

from .audio_level import AUDIO_LEVEL_MASK
from .interfaces import Emit, MediaSender, RtpSink
from .nack import NackGenerator
from .rewrite import RtpForward
from .rtp_stats import RateMeter, ReceiveStats
from .settings import EngineSettings

__all__ = ["ACTIVE_WINDOW", "LayerActivity", "Producer", "ProducerStream"]

logger = logging.getLogger(__name__)

KINDS = ("audio", "video")

#: A layer (encoding, or SVC spatial layer) without a packet for this long is inactive:
#: consumers do not choose it (the sender dropped it).
ACTIVE_WINDOW = 1.0
#: How often (at most) a layer going quiet is noticed, on the next packet of any layer.
_ACTIVITY_CHECK = 0.25


class LayerActivity:
    """When each layer of a producer last had a packet, and who is told when the set of
    active layers changes (``listeners``: ``callback(now)`` by consumer id).

    Simulcast: a layer per encoding, seen by the producer for every packet; SVC: a layer
    per spatial id, seen by whichever consumer reads a packet's ids first.  A layer
    becomes active with its first packet (listeners are told at once) and inactive
    ACTIVE_WINDOW after its last one (told on the next packet of any layer, within
    _ACTIVITY_CHECK): the consumers then choose their layers again -- only then, as no
    consumer sees the packets of the layers it does not send.
    """

    __slots__ = ("_active", "_next_check", "last_seen", "listeners")

    def __init__(self, layers: int) -> None:
        self.last_seen = [-math.inf] * layers
        self.listeners: dict[str, Callable[[float], None]] = {}
        self._active: tuple[int, ...] = ()
        self._next_check = 0.0

    def seen(self, layer: int, now: float) -> None:
        last = self.last_seen
        if layer >= len(last):
            last.extend([-math.inf] * (layer + 1 - len(last)))
        newly_active = now - last[layer] > ACTIVE_WINDOW
        last[layer] = now
        if newly_active or now >= self._next_check:
            self._check(now)

    def active(self, now: float) -> list[int]:
        """The layers that had a packet within ACTIVE_WINDOW."""
        return [index for index, seen in enumerate(self.last_seen) if now - seen <= ACTIVE_WINDOW]

    def _check(self, now: float) -> None:
        self._next_check = now + _ACTIVITY_CHECK
        active = tuple(self.active(now))
        if active != self._active:
            self._active = active
            for listener in tuple(self.listeners.values()):
                listener(now)


class ProducerStream:
    """One encoding of a producer: its SSRCs and receive-side state."""

    __slots__ = (
        "duplicates",
        "fanout",
        "index",
        "key_fanout",
        "key_request_handle",
        "key_sinks",
        "key_request_pending",
        "last_key_request",
        "mapped_ssrc",
        "nack",
        "nacked_packets",
        "rate",
        "retransmitted",
        "rid",
        "rtx_bytes",
        "rtx_packets",
        "rtx_ssrc",
        "sinks",
        "ssrc",
        "stats",
    )

    def __init__(
        self, index: int, encoding: dict[str, Any], mapped_ssrc: int, clock_rate: int,
        settings: EngineSettings,
    ) -> None:  # fmt: skip
        self.index = index
        self.ssrc: int | None = encoding.get("ssrc")
        rtx = encoding.get("rtx")
        self.rtx_ssrc: int | None = rtx.get("ssrc") if isinstance(rtx, dict) else None
        self.rid: str | None = encoding.get("rid")
        self.mapped_ssrc = mapped_ssrc
        self.stats = ReceiveStats(self.ssrc or 0, clock_rate)
        self.nack = NackGenerator(
            max_age=settings.nack_max_age,
            max_retries=settings.nack_max_retries,
            retry_interval=settings.nack_retry_interval,
        )
        self.rate = RateMeter()
        self.rtx_packets = 0
        self.rtx_bytes = 0
        self.retransmitted = 0
        self.duplicates = 0
        self.nacked_packets = 0
        self.last_key_request = -1e9
        self.key_request_pending = False
        self.key_request_handle: asyncio.TimerHandle | None = None
        #: The consumers this encoding's packets go to (Producer.subscribe), those that
        #: take its keyframes only, and both as tuples for the per-packet loop (None: to
        #: be rebuilt).
        self.sinks: dict[str, RtpSink] = {}
        self.key_sinks: dict[str, RtpSink] = {}
        self.fanout: tuple[RtpSink, ...] | None = ()
        self.key_fanout: tuple[RtpSink, ...] | None = ()

    def bind(self, ssrc: int, *, rtx: bool) -> None:
        if rtx:
            self.rtx_ssrc = ssrc
        else:
            self.ssrc = ssrc
            self.stats.ssrc = ssrc

    def to_json(self, now: float) -> dict[str, Any]:
        stats = self.stats
        return {
            "ssrc": self.ssrc,
            "rtxSsrc": self.rtx_ssrc,
            "rid": self.rid,
            "mappedSsrc": self.mapped_ssrc,
            "forwarded": True,
            "packetCount": stats.packets,
            "byteCount": stats.bytes,
            "packetsLost": stats.lost,
            "jitter": stats.jitter,
            "bitrate": self.rate.rate(now),
            "duplicatePackets": self.duplicates,
            "nackPacketCount": self.nacked_packets,
            "retransmittedPackets": self.retransmitted,
            "rtxPacketCount": self.rtx_packets,
            "rtxByteCount": self.rtx_bytes,
        }


def _check_codec_kinds(params: ortc.RtpParameters, kind: str) -> None:
    for index, codec in enumerate(params["codecs"]):
        codec_kind = codec["mimeType"].split("/", 1)[0].lower()
        if codec_kind != kind:
            raise ValueError(
                f"rtpParameters.codecs[{index}].mimeType {codec['mimeType']!r} "
                f"does not match kind {kind!r}"
            )


def _is_rtx(codec: ortc.RtpCodecParameters) -> bool:
    return codec["mimeType"].lower().endswith("/rtx")


def _set_member(sinks: dict[str, RtpSink], consumer: RtpSink, member: bool) -> bool:
    """Add or remove ``consumer``; whether that changed ``sinks``."""
    if member == (consumer.id in sinks):
        return False
    if member:
        sinks[consumer.id] = consumer
    else:
        del sinks[consumer.id]
    return True


class Producer:
    """A track sent by a browser over one WebRtcTransport.

    It knows its transport only as a :class:`~.interfaces.MediaSender` (keyframe
    requests and NACKs go out through it) and its consumers as
    :class:`~.interfaces.RtpSink`; ``on_close`` tells the transport it is gone.
    """

    mime_type: str
    clock_rate: int
    nack_enabled: bool
    remb_enabled: bool
    transport_cc_enabled: bool

    def __init__(
        self,
        producer_id: str,
        kind: str,
        rtp_parameters: object,
        *,
        router_capabilities: ortc.RtpCapabilities,
        sender: MediaSender,
        loop: asyncio.AbstractEventLoop,
        settings: EngineSettings,
        emit: Emit,
        on_close: Callable[[Producer], None],
        paused: bool = False,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be 'audio' or 'video', got {kind!r}")
        router_caps = router_capabilities
        params = ortc.validate_rtp_parameters(rtp_parameters)
        _check_codec_kinds(params, kind)
        mapping = ortc.get_producer_rtp_parameters_mapping(params, router_caps)
        self.id = producer_id
        self.kind = kind
        self.sender = sender
        self.loop = loop
        self.settings = settings
        self._emit = emit
        self._on_close = on_close
        self.rtp_parameters = params
        self.rtp_mapping = mapping
        self.consumable_rtp_parameters = ortc.get_consumable_rtp_parameters(
            kind, params, router_caps, mapping
        )
        self.mid: str | None = params.get("mid")
        self.paused = paused
        self.closed = False
        self.consumers: dict[str, RtpSink] = {}
        self._ext_map = ortc.get_header_extension_id_mapping(kind, params, router_caps)
        #: The browser's own extension ids, by URI (for SSRC learning and TWCC).
        self.extension_ids = {ext["uri"]: ext["id"] for ext in params["headerExtensions"]}
        # Where each packet's RFC 6464 audio level goes (the router's AudioLevels), if anywhere.
        self.audio_level_sink: Callable[[str, int], None] | None = None
        self._audio_level_id = self.extension_ids.get(AUDIO_LEVEL_URI)
        self._init_codecs(params)
        self.streams = [
            ProducerStream(
                index, dict(encoding), enc_map.mapped_ssrc, self.clock_rate, self.settings
            )
            for index, (encoding, enc_map) in enumerate(
                zip(params["encodings"], mapping.encodings, strict=True)
            )
        ]
        self._init_keyframe_state()
        self.dropped_packets = 0
        self.rate = RateMeter()
        #: SVC: bitrate per spatial layer id, counted by the consumers that read the ids.
        self.layer_rates: dict[int, RateMeter] = {}
        self._type = self._stream_type(params)
        #: Which layers are flowing: the producer sees its encodings' packets (simulcast);
        #: SVC spatial ids are seen by the consumers that read them.
        self.activity = LayerActivity(len(self.streams) if self._type == ortc.SIMULCAST else 0)
        self._track_streams = self._type == ortc.SIMULCAST

    def _init_codecs(self, params: ortc.RtpParameters) -> None:
        media = [c for c in params["codecs"] if not _is_rtx(c)]
        mapped = {c.payload_type: c.mapped_payload_type for c in self.rtp_mapping.codecs}
        self._pt_map = {c["payloadType"]: mapped[c["payloadType"]] for c in media}
        self._rtx_apt = {
            c["payloadType"]: int(c["parameters"]["apt"])
            for c in params["codecs"]
            if _is_rtx(c) and c["parameters"].get("apt") in self._pt_map
        }
        first = media[0]
        self.mime_type = first["mimeType"]
        self.clock_rate = first["clockRate"]
        feedback = {(fb["type"], fb["parameter"]) for fb in first["rtcpFeedback"]}
        self.nack_enabled = ("nack", "") in feedback
        self._use_fir = ("nack", "pli") not in feedback and ("ccm", "fir") in feedback
        self.remb_enabled = ("goog-remb", "") in feedback
        self.transport_cc_enabled = TRANSPORT_CC_URI in {
            ext["uri"] for ext in params["headerExtensions"]
        }

    def _init_keyframe_state(self) -> None:
        self._fir_seq = 0
        self.keyframe_requests = 0
        self.keyframes_received = 0

    def __repr__(self) -> str:
        return f"Producer({self.id[:8]}, {self.kind})"

    @property
    def type(self) -> str:
        """mediasoup's producer type: "simulcast" with several encodings, "svc" with one
        of several layers of a codec whose packets carry layer ids (VP9), else "simple"."""
        return self._type

    def _stream_type(self, params: ortc.RtpParameters) -> str:
        if len(self.streams) > 1:
            return ortc.SIMULCAST
        try:
            kind = ortc.get_producer_type(params)
        except ValueError:
            return ortc.SIMPLE
        # One VP8 (or H.264) encoding with temporal layers is "simulcast" of one spatial
        # layer, as in mediasoup's RtpParameters::GetType: the simulcast consumer drops
        # VP8 temporal layers by TID.  AV1 (no dependency descriptor reading yet) is
        # forwarded as it comes.
        if kind == ortc.SVC:
            return ortc.SVC if self.mime_type.lower() == "video/vp9" else ortc.SIMPLE
        return kind

    # -- SSRC table ------------------------------------------------------------

    @property
    def forwarded_stream(self) -> ProducerStream:
        return self.streams[0]

    def ssrc_bindings(self) -> list[tuple[int, ProducerStream, bool]]:
        """(ssrc, stream, is_rtx) for every SSRC signalled in the parameters."""
        result: list[tuple[int, ProducerStream, bool]] = []
        for stream in self.streams:
            if stream.ssrc is not None:
                result.append((stream.ssrc, stream, False))
            if stream.rtx_ssrc is not None:
                result.append((stream.rtx_ssrc, stream, True))
        return result

    def learn_ssrc(
        self, ssrc: int, rid: str | None, repaired_rid: str | None
    ) -> tuple[ProducerStream, bool] | None:
        """Bind an unknown SSRC that carried our MID (RFC 8852 / RFC 8843 rules).

        A RID names the encoding; a repaired RID names the encoding whose RTX
        stream this is. Without either, the SSRC is taken only by a
        single-encoding producer that has none signalled yet.
        """
        name, rtx = (repaired_rid, True) if repaired_rid is not None else (rid, False)
        if name is not None:
            stream = next((s for s in self.streams if s.rid == name), None)
        elif len(self.streams) == 1 and self.streams[0].ssrc is None:
            stream = self.streams[0]
        else:
            stream = None
        if stream is None or (stream.rtx_ssrc if rtx else stream.ssrc) not in (None, ssrc):
            return None
        if rtx and not self._rtx_apt:
            return None
        stream.bind(ssrc, rtx=rtx)
        if not rtx and (stream.key_request_pending or self.consumers):
            # Requests made before the SSRC was known could not be sent.
            self.request_key_frame(self.loop.time(), stream.index)
        logger.info(
            "%r: SSRC %d is %s of encoding %d", self, ssrc, "RTX" if rtx else "media", stream.index
        )
        return stream, rtx

    # -- RTP in ----------------------------------------------------------------------

    def receive_rtp(
        self,
        data: bytes,
        header: RtpHeader,
        extensions: dict[int, bytes],
        stream: ProducerStream,
        is_rtx: bool,
        now: float,
    ) -> None:
        if is_rtx:
            stream.rtx_packets += 1
            stream.rtx_bytes += len(data)
            media_pt = self._rtx_apt.get(header.payload_type)
            if media_pt is None or stream.ssrc is None:
                self.dropped_packets += 1
                return
            if header.payload_end - header.payload_start < 2:
                return  # padding-only: a bandwidth probe, already counted by TWCC
            data = unwrap_rtx(data, header, ssrc=stream.ssrc, payload_type=media_pt)
            header = read_header(data)
        if not stream.nack.receive(header.sequence_number, now):
            stream.duplicates += 1
            return
        if is_rtx:
            stream.retransmitted += 1
        stream.stats.update(
            header.sequence_number, header.timestamp, len(data), now, jitter=not is_rtx
        )
        stream.rate.add(len(data), now)
        self.rate.add(len(data), now)
        if self.audio_level_sink is not None and not self.paused:
            self._report_audio_level(extensions)
        self._forward(data, header, extensions, stream, now)

    def _report_audio_level(self, extensions: dict[int, bytes]) -> None:
        element = extensions.get(self._audio_level_id) if self._audio_level_id else None
        if element and self.audio_level_sink is not None:
            self.audio_level_sink(self.id, element[0] & AUDIO_LEVEL_MASK)

    def _forward(
        self,
        data: bytes,
        header: RtpHeader,
        extensions: dict[int, bytes],
        stream: ProducerStream,
        now: float,
    ) -> None:
        router_pt = self._pt_map.get(header.payload_type)
        if router_pt is None:
            self.dropped_packets += 1
            return
        keyframe = self.kind == "video" and is_keyframe(
            data[header.payload_start : header.payload_end], self.mime_type
        )
        if keyframe:
            self._on_keyframe(stream)
        if self._track_streams:
            self.activity.seen(stream.index, now)
        fanout = stream.fanout
        if fanout is None:
            fanout = stream.fanout = tuple(stream.sinks.values())
        if keyframe:
            keyframe_only = stream.key_fanout
            if keyframe_only is None:
                keyframe_only = stream.key_fanout = tuple(stream.key_sinks.values())
            fanout += keyframe_only
        if self.paused or not fanout:
            return
        ext_map = self._ext_map
        packet = RtpForward(
            data[0],
            header.marker,
            router_pt,
            header.sequence_number,
            header.timestamp,
            data[12 : 12 + (data[0] & 0x0F) * 4],
            {ext_map[i]: v for i, v in extensions.items() if i in ext_map},
            data[header.payload_start :],
            keyframe,
            {},
            stream.index,
        )
        for consumer in fanout:
            consumer.forward(packet, now)

    # -- keyframes -------------------------------------------------------------------

    def _on_keyframe(self, stream: ProducerStream) -> None:
        self.keyframes_received += 1
        stream.key_request_pending = False
        if stream.key_request_handle is not None:
            stream.key_request_handle.cancel()
            stream.key_request_handle = None

    def request_key_frame(self, now: float, layer: int = 0) -> None:
        """Ask the browser for a keyframe of encoding ``layer``: at once, or when the
        rate limit (per encoding) allows."""
        if self.kind != "video" or self.closed or not 0 <= layer < len(self.streams):
            return
        stream = self.streams[layer]
        interval = self.settings.keyframe_request_interval
        if now - stream.last_key_request >= interval:
            self._send_key_frame_request(stream, now)
            return
        if not stream.key_request_pending:
            stream.key_request_pending = True
            when = stream.last_key_request + interval
            stream.key_request_handle = self.loop.call_at(
                when, self._deferred_key_frame_request, stream
            )

    def _deferred_key_frame_request(self, stream: ProducerStream) -> None:
        stream.key_request_handle = None
        if stream.key_request_pending and not self.closed:
            self._send_key_frame_request(stream, self.loop.time())

    def _send_key_frame_request(self, stream: ProducerStream, now: float) -> None:
        ssrc = stream.ssrc
        if ssrc is None or not self.sender.can_send:
            # Sent once the SSRC is learned or the transport is connected.
            stream.key_request_pending = True
            return
        stream.key_request_pending = False
        stream.last_key_request = now
        self.keyframe_requests += 1
        sender = self.sender.rtcp_ssrc
        packet: RtcpPacket
        if self._use_fir:
            self._fir_seq = (self._fir_seq + 1) & 0xFF
            packet = Fir(sender, [(ssrc, self._fir_seq)])
        else:
            packet = Pli(sender, ssrc)
        logger.debug("%r requests a keyframe (%s)", self, type(packet).__name__)
        self.sender.send_rtcp([packet])

    def on_transport_connected(self) -> None:
        for stream in self.streams:
            if stream.key_request_pending:
                self.request_key_frame(self.loop.time(), stream.index)

    # -- RTCP ------------------------------------------------------------------------

    def on_sender_report(self, stream: ProducerStream, ntp: int, rtp_ts: int, now: float) -> None:
        stream.stats.on_sender_report(ntp, rtp_ts, now)

    def report_blocks(self, now: float) -> list[ReportBlock]:
        """Receiver Report blocks for the media SSRCs that received packets."""
        return [s.stats.report_block(now) for s in self.streams if s.ssrc and s.stats.packets]

    def nacks(self, now: float) -> list[RtcpPacket]:
        """NACKs for the gaps that are due (RFC 4585 section 6.2.1); keyframe if hopeless."""
        packets: list[RtcpPacket] = []
        for stream in self.streams:
            if stream.ssrc is None:
                continue
            if not self.nack_enabled:
                stream.nack.expire(now)
                continue
            lost = stream.nack.due(now)
            if lost:
                stream.nacked_packets += len(lost)
                packets.append(GenericNack(self.sender.rtcp_ssrc, stream.ssrc, lost))
            if stream.nack.keyframe_needed:
                stream.nack.keyframe_needed = False
                self.request_key_frame(now, stream.index)
        return packets

    # -- control ---------------------------------------------------------------------

    def add_consumer(self, consumer: RtpSink) -> None:
        self.consumers[consumer.id] = consumer
        self.subscribe(consumer, *consumer.producer_streams())

    def remove_consumer(self, consumer: RtpSink) -> None:
        self.consumers.pop(consumer.id, None)
        self.activity.listeners.pop(consumer.id, None)
        self._set_sinks(consumer, (), ())

    def subscribe(
        self, consumer: RtpSink, streams: Iterable[int], keyframes: Iterable[int] = ()
    ) -> None:
        """From the next packet on, hand ``consumer`` every packet of encodings ``streams``
        and the keyframe packets of encodings ``keyframes``, nothing else (ignored for a
        consumer not added, or removed)."""
        if self.consumers.get(consumer.id) is consumer:
            self._set_sinks(consumer, streams, keyframes)

    def _set_sinks(
        self, consumer: RtpSink, streams: Iterable[int], keyframes: Iterable[int]
    ) -> None:
        every, keys = frozenset(streams), frozenset(keyframes) - frozenset(streams)
        for stream in self.streams:
            if _set_member(stream.sinks, consumer, stream.index in every):
                stream.fanout = None
            if _set_member(stream.key_sinks, consumer, stream.index in keys):
                stream.key_fanout = None

    def pause(self) -> None:
        if self.paused:
            return
        self.paused = True
        for consumer in tuple(self.consumers.values()):
            consumer.on_producer_pause()

    def resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        for consumer in tuple(self.consumers.values()):
            consumer.on_producer_resume()
        if self.consumers:
            self.request_key_frame(self.loop.time())

    def close(self, *, from_inside: bool = False) -> None:
        """Close and close every consumer (``consumer.producerclose``).

        ``from_inside`` (the transport or router closed) also emits
        ``producer.close`` so the web process learns about it.
        """
        if self.closed:
            return
        self.closed = True
        for stream in self.streams:
            if stream.key_request_handle is not None:
                stream.key_request_handle.cancel()
                stream.key_request_handle = None
        for consumer in tuple(self.consumers.values()):
            consumer.close(producer_closed=True)
        self._on_close(self)
        if from_inside:
            self._emit("producer.close", self.id, {})
        logger.debug("%r closed", self)

    # -- introspection ---------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "type": self.type,
            "paused": self.paused,
            "transportId": self.sender.id,
            "rtpParameters": self.rtp_parameters,
            "rtpMapping": self.rtp_mapping.to_json(),
            "consumableRtpParameters": self.consumable_rtp_parameters,
            "consumerIds": list(self.consumers),
            "headerExtensionIdMapping": {str(k): v for k, v in self._ext_map.items()},
        }

    def get_stats(self) -> dict[str, Any]:
        now = self.loop.time()
        return {
            "type": "inbound-rtp",
            "kind": self.kind,
            "mimeType": self.mime_type,
            "paused": self.paused,
            "bitrate": self.rate.rate(now),
            "droppedPackets": self.dropped_packets,
            "keyFrameRequests": self.keyframe_requests,
            "keyFramesReceived": self.keyframes_received,
            "streams": [stream.to_json(now) for stream in self.streams],
        }
