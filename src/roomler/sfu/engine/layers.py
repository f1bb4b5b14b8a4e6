"""Per-consumer simulcast and SVC layer switching, sans-I/O.

A simulcast or SVC consumer forwards, of everything its producer receives,
the layers its target allows, and the receiver must never notice a switch:

- the spatial layer changes only on a keyframe of the target layer (the
  other layer's pictures cannot be decoded from what was sent before), and
  the switcher asks for that keyframe (:class:`KeyframeNeeded`, sent by the
  caller as PLI or FIR on that layer's SSRC);
- temporal layers above the target are dropped by their id; a higher one is
  taken up only at a switching-up point (VP8 Y bit, VP9 U bit), a lower one
  at once;
- sequence numbers stay gap-free and timestamps increase across switches:
  each simulcast encoding has its own SSRC, numbering and timestamp origin.

Timestamps follow mediasoup's SimulcastConsumer: the first forwarded
encoding is the reference; another encoding's timestamps are mapped onto the
reference's timeline with both encodings' last sender reports (RFC 3550
section 6.4.1: an SR pairs an NTP time with an RTP timestamp).  Without
those reports, the switch point is placed where the reference's timeline is
now (last forwarded timestamp plus the wall-clock time since it was sent).
If the mapped keyframe would not be later than what was already sent, it is
moved to one frame (33 ms) after it; when that needs more than 75 ms (lip
sync suffers), one more keyframe is asked for first.

VP8 PictureID / TL0PICIDX / KEYIDX are renumbered (:class:`Vp8Rewriter`), so
the receiver sees one picture sequence (RFC 7741 section 4.2).

The caller builds one :class:`LayerPacket` per incoming packet (shared by
all consumers), feeds each consumer's switcher, and drains its events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from roomler.sfu.engine.seq_manager import SeqManager
from roomler.sfu.payload import describe
from roomler.sfu.payload.av1 import DependencyDescriptor
from roomler.sfu.payload.vp8 import Vp8Descriptor, parse_vp8, rewrite_vp8
from roomler.sfu.payload.vp9 import parse_vp9

__all__ = [
    "Forward",
    "KeyframeNeeded",
    "LayerPacket",
    "LayersChanged",
    "SimulcastSwitcher",
    "SvcSwitcher",
    "Vp8Rewriter",
    "layer_packet",
]

_TS_MASK = 0xFFFFFFFF
# mediasoup's figures: one frame at 30 fps, and the most A/V skew to accept.
_FRAME_GAP_MS = 33
_MAX_EXTRA_OFFSET_MS = 75


class LayerPacket(NamedTuple):
    """What switching needs from one incoming RTP packet.

    ``spatial`` is the simulcast encoding index, or the SVC spatial id;
    ``layer_sync`` marks a temporal switching-up point (True when the codec
    has no such notion); ``end_of_layer_frame`` is VP9's E bit (the last
    packet of this spatial layer's frame); ``intra`` that the layer frame
    does not refer to earlier pictures (VP9's P=0: every layer of a
    keyframe), which is where K-SVC layers may depend on each other;
    ``begins_layer_frame`` is VP9's B bit (the first packet of a layer frame).
    """

    spatial: int
    temporal: int
    sequence_number: int
    timestamp: int
    marker: bool
    keyframe: bool
    layer_sync: bool
    end_of_layer_frame: bool
    payload: bytes
    vp8: Vp8Descriptor | None = None
    intra: bool = False
    begins_layer_frame: bool = True


def layer_packet(
    mime_type: str,
    spatial: int,
    sequence_number: int,
    timestamp: int,
    marker: bool,
    payload: bytes,
    dependency_descriptor: DependencyDescriptor | None = None,
) -> LayerPacket:
    """Read ``payload`` of codec ``mime_type``; ValueError if it is malformed.

    For VP9, the spatial id comes from the descriptor, for AV1 from the
    dependency descriptor when there is one (else its OBU extension).
    """
    codec = mime_type.rpartition("/")[2].lower()
    if not payload:  # padding only (probing): layer-less, never a keyframe
        return LayerPacket(spatial, 0, sequence_number, timestamp, marker, False, True, True, b"")
    if codec == "vp8":
        d = parse_vp8(payload)
        return LayerPacket(
            spatial,
            d.temporal_layer,
            sequence_number,
            timestamp,
            marker,
            d.keyframe,
            d.layer_sync or d.tid is None,
            marker,
            payload,
            d,
            intra=d.keyframe,
        )
    if codec == "vp9":
        v = parse_vp9(payload)
        return LayerPacket(
            v.sid,
            v.tid,
            sequence_number,
            timestamp,
            marker,
            v.keyframe,
            v.switching_up,
            v.ends_frame,
            payload,
            intra=not v.inter_picture,
            begins_layer_frame=v.begins_frame,
        )
    info = describe(payload, mime_type)
    if dependency_descriptor is not None:
        spatial, temporal = dependency_descriptor.spatial_id, dependency_descriptor.temporal_id
        end = dependency_descriptor.end_of_frame
    else:
        spatial = info.spatial_layer if codec == "av1" else spatial
        temporal, end = info.temporal_layer, marker
    return LayerPacket(
        spatial,
        temporal,
        sequence_number,
        timestamp,
        marker,
        info.keyframe,
        True,
        end,
        payload,
        intra=info.keyframe,
    )


class Forward(NamedTuple):
    """A packet to send: the consumer's sequence number, timestamp, marker and payload."""

    sequence_number: int
    timestamp: int
    marker: bool
    payload: bytes


@dataclass(frozen=True)
class KeyframeNeeded:
    """Ask the producer for a keyframe on this spatial layer (PLI / FIR)."""

    spatial_layer: int


@dataclass(frozen=True)
class LayersChanged:
    """What the receiver now gets (mediasoup's ``layerschange``); None: nothing."""

    spatial_layer: int | None
    temporal_layer: int | None


Event = KeyframeNeeded | LayersChanged


class Vp8Rewriter:
    """Renumbers VP8 pictures so that several encodings read as one stream."""

    __slots__ = ("_keyidx_last", "_keyidx_offset", "_picture_ids", "_sync", "_tl0")

    def __init__(self) -> None:
        self._picture_ids = SeqManager(15)
        self._tl0 = SeqManager(8)
        self._keyidx_offset = 0
        self._keyidx_last: int | None = None
        self._sync = False

    def sync(self) -> None:
        """The next packet comes from another encoding: continue its numbering."""
        self._picture_ids.sync()
        self._tl0.sync()
        self._sync = True

    def drop(self, d: Vp8Descriptor) -> None:
        """The picture of ``d`` is not forwarded: leave its numbers out."""
        if d.picture_id is not None:
            self._picture_ids.drop(d.picture_id)
        if d.tl0picidx is not None and d.temporal_layer == 0:
            self._tl0.drop(d.tl0picidx)

    def rewrite(self, payload: bytes, d: Vp8Descriptor) -> bytes | None:
        """The payload renumbered; None when its picture was dropped before."""
        picture_id = None if d.picture_id is None else self._picture_ids.input(d.picture_id)
        tl0 = None if d.tl0picidx is None else self._tl0.input(d.tl0picidx)
        if (d.picture_id is not None and picture_id is None) or (
            d.tl0picidx is not None and tl0 is None
        ):
            return None
        keyidx = None
        if d.keyidx is not None:
            if self._sync and self._keyidx_last is not None:
                self._keyidx_offset = (self._keyidx_last + 1 - d.keyidx) & 0x1F
            keyidx = (d.keyidx + self._keyidx_offset) & 0x1F
            self._keyidx_last = keyidx
        self._sync = False
        if picture_id is None and tl0 is None and keyidx is None:
            return payload
        return rewrite_vp8(payload, d, picture_id=picture_id, tl0picidx=tl0, keyidx=keyidx)


class _TemporalFilter:
    """Which temporal layers pass (shared by the simulcast and SVC switchers)."""

    __slots__ = ("current", "target")

    def __init__(self, target: int) -> None:
        self.target = target
        self.current: int | None = None

    def passes(self, packet: LayerPacket) -> bool:
        if packet.temporal > self.target:
            return False
        current = self.current
        if current is not None and packet.temporal > current and not packet.layer_sync:
            return False  # not a switching-up point: the decoder would miss references
        if current is None or packet.temporal > current:
            self.current = packet.temporal
        return True

    def lower_to_target(self) -> None:
        if self.current is not None and self.current > self.target:
            self.current = self.target


class _Switcher:
    """State and events shared by both switchers."""

    def __init__(self, spatial_layers: int, temporal_layers: int) -> None:
        if spatial_layers < 1 or temporal_layers < 1:
            raise ValueError("a stream has at least one spatial and one temporal layer")
        self.spatial_layers = spatial_layers
        self.temporal_layers = temporal_layers
        self.target_spatial = spatial_layers - 1
        self.current_spatial: int | None = None
        self._temporal = _TemporalFilter(temporal_layers - 1)
        #: Events not yet taken (pop_events); read per packet, so an attribute.
        self.events: list[Event] = []
        self._reported: tuple[int | None, int | None] = (None, None)

    @property
    def target_temporal(self) -> int:
        return self._temporal.target

    @property
    def current_temporal(self) -> int | None:
        return self._temporal.current if self.current_spatial is not None else None

    def pop_events(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    def set_target(self, spatial: int, temporal: int | None = None) -> None:
        """Target layers, clamped to what the stream has (mediasoup's preferredLayers)."""
        spatial = max(0, min(spatial, self.spatial_layers - 1))
        temporal = self.temporal_layers - 1 if temporal is None else temporal
        self._temporal.target = max(0, min(temporal, self.temporal_layers - 1))
        self._temporal.lower_to_target()
        changed = spatial != self.target_spatial
        self.target_spatial = spatial
        if changed and self._needs_keyframe(spatial):
            self.events.append(KeyframeNeeded(spatial))
        self._report_layers()

    def _needs_keyframe(self, spatial: int) -> bool:
        return spatial != self.current_spatial

    def _report_layers(self) -> None:
        layers = (self.current_spatial, self.current_temporal)
        if layers != self._reported:
            self._reported = layers
            self.events.append(LayersChanged(*layers))


class SimulcastSwitcher(_Switcher):
    """One consumer of a simulcast producer: picks an encoding, renumbers it.

    ``rewriter`` is a :class:`Vp8Rewriter` for VP8 (None for H.264).
    """

    def __init__(
        self,
        spatial_layers: int,
        temporal_layers: int,
        clock_rate: int,
        *,
        rewriter: Vp8Rewriter | None = None,
        initial_sequence_number: int = 0,
    ) -> None:
        super().__init__(spatial_layers, temporal_layers)
        self.clock_rate = clock_rate
        self.rewriter = rewriter
        self._seq = SeqManager(16, initial_sequence_number)
        self._ts_offset = 0
        self._ts_reference: int | None = None  # the encoding timestamps are mapped onto
        self._max_ts: int | None = None  # highest timestamp sent (consumer's timeline)
        self._max_ts_time = 0.0
        self._last_marker = True
        self._retried_keyframe = False
        self._sender_reports: dict[int, tuple[float, int]] = {}

    @property
    def ts_offset(self) -> int:
        """What is subtracted from the current encoding's timestamps (modulo 2**32)."""
        return self._ts_offset

    def restart(self) -> None:
        """The stream stops (pause): the next keyframe of the target starts it again,
        numbered on from what was sent."""
        self.current_spatial = None
        self._temporal.current = None
        self._report_layers()

    def on_sender_report(self, spatial: int, ntp_time: float, rtp_timestamp: int) -> None:
        """Encoding ``spatial``'s latest SR: ``ntp_time`` (seconds) and its RTP timestamp."""
        self._sender_reports[spatial] = (ntp_time, rtp_timestamp & _TS_MASK)

    def forward(self, packet: LayerPacket, now: float) -> Forward | None:
        """The packet as this consumer sends it, or None to drop it."""
        if packet.spatial != self.current_spatial:
            if (
                packet.spatial != self.target_spatial
                or not packet.keyframe
                or not self._switch_to(packet, now)
            ):
                return None
        elif not packet.payload:
            self._seq.drop(packet.sequence_number)  # padding of the current layer
            return None
        temporal = self._temporal
        current = temporal.current
        if current is not None and packet.temporal <= current:
            # The per-packet case: a layer already passing (current <= target), the
            # reported layers unchanged.
            return self._emit(packet, now, False)
        if not temporal.passes(packet):  # a keyframe (layer 0) always passes
            self._drop(packet)
            self._report_layers()
            return None
        return self._emit(packet, now, True)

    def _drop(self, packet: LayerPacket) -> None:
        self._seq.drop(packet.sequence_number)
        if self.rewriter is not None and packet.vp8 is not None:
            self.rewriter.drop(packet.vp8)

    def _switch_to(self, packet: LayerPacket, now: float) -> bool:
        offset = self._timestamp_offset(packet, now)
        if offset is None:
            return False
        self._ts_offset = offset
        if self._ts_reference is None:
            self._ts_reference = packet.spatial
        # An incomplete last frame (no marker yet) is told to the receiver by
        # skipping one sequence number (mediasoup issue 408).
        self._seq.sync(0 if self._last_marker else 1)
        if self.rewriter is not None:
            self.rewriter.sync()
        self.current_spatial = packet.spatial
        self._temporal.current = None
        self._retried_keyframe = False
        return True

    def _timestamp_offset(self, packet: LayerPacket, now: float) -> int | None:
        """The offset to subtract from this encoding's timestamps; None: wait for a keyframe."""
        offset = self._mapped_offset(packet, now)
        if self._max_ts is None:
            return offset
        ahead = (packet.timestamp - offset - self._max_ts) & _TS_MASK
        if 0 < ahead < 0x80000000:
            return offset  # later than anything sent: good as it is
        extra = (self._max_ts - (packet.timestamp - offset)) & _TS_MASK
        extra += _FRAME_GAP_MS * self.clock_rate // 1000
        if extra > _MAX_EXTRA_OFFSET_MS * self.clock_rate // 1000 and not self._retried_keyframe:
            # Too far behind to just shift; another keyframe will be later.
            self._retried_keyframe = True
            self.events.append(KeyframeNeeded(packet.spatial))
            return None
        return (offset - extra) & _TS_MASK

    def _mapped_offset(self, packet: LayerPacket, now: float) -> int:
        reference = self._ts_reference
        if reference is None or packet.spatial == reference:
            return 0
        ref_sr = self._sender_reports.get(reference)
        new_sr = self._sender_reports.get(packet.spatial)
        if ref_sr is not None and new_sr is not None:
            # Reference timestamp at the new encoding's SR instant, by NTP difference.
            diff = round((new_sr[0] - ref_sr[0]) * self.clock_rate)
            return (new_sr[1] - diff - ref_sr[1]) & _TS_MASK
        # No reports: continue the reference timeline from the last packet sent.
        if self._max_ts is None:
            return 0
        elapsed = round((now - self._max_ts_time) * self.clock_rate)
        return (packet.timestamp - self._max_ts - elapsed) & _TS_MASK

    def _emit(self, packet: LayerPacket, now: float, report: bool) -> Forward | None:
        """Number (and rewrite) a packet that passes; ``report``: the layers may have changed."""
        payload = packet.payload
        if self.rewriter is not None and packet.vp8 is not None:
            rewritten = self.rewriter.rewrite(payload, packet.vp8)
            if rewritten is None:
                self._seq.drop(packet.sequence_number)
                return None
            payload = rewritten
        seq_manager = self._seq
        seq = seq_manager.input(packet.sequence_number)
        if seq is None:
            return None  # older than the switch, or dropped before
        timestamp = (packet.timestamp - self._ts_offset) & _TS_MASK
        max_ts = self._max_ts
        if max_ts is None or 0 < ((timestamp - max_ts) & _TS_MASK) < 0x80000000:
            self._max_ts, self._max_ts_time = timestamp, now
        if seq == seq_manager.max_output:
            self._last_marker = packet.marker
        if report:
            self._report_layers()
        return Forward(seq, timestamp, packet.marker, payload)


class SvcSwitcher(_Switcher):
    """One consumer of an SVC producer (VP9): one stream, layers dropped by id.

    In full SVC (L3T3) a spatial layer is decoded with the ones below it, so
    all up to the current one pass, and a lower target applies from the next
    picture.  In K-SVC (``ksvc``, L3T3_KEY) layers depend on each other only
    in keyframes: between them only the current spatial layer passes, and a
    lower target waits for a keyframe too.  A higher target waits for a
    keyframe, or for a spatial switching-up point: a layer frame that does
    not refer to earlier pictures (P=0) and whose lower layer was forwarded
    in the same picture (RFC 9628 section 4.2: it may depend on that one).

    Sequence numbers stay gap-free over the dropped packets; timestamps are
    the producer's (one stream, one timeline).  The RTP marker is set on the
    last packet of the highest spatial layer forwarded in each picture: the
    receiver's picture ends there (mediasoup does the same).
    """

    ts_offset = 0

    def __init__(
        self,
        spatial_layers: int,
        temporal_layers: int,
        *,
        ksvc: bool = False,
        initial_sequence_number: int = 0,
    ) -> None:
        super().__init__(spatial_layers, temporal_layers)
        self.ksvc = ksvc
        self._seq = SeqManager(16, initial_sequence_number)
        self._picture: int | None = None  # timestamp of the picture being forwarded
        self._picture_top = -1  # highest spatial layer forwarded in that picture

    def restart(self) -> None:
        """The stream stops (pause): the next keyframe starts it again, numbered on."""
        self.current_spatial = None
        self._temporal.current = None
        self._picture = None
        self._seq.sync()
        self._report_layers()

    def on_sender_report(self, spatial: int, ntp_time: float, rtp_timestamp: int) -> None:
        """One stream keeps its own timeline: nothing to map."""

    def forward(self, packet: LayerPacket, now: float) -> Forward | None:
        """The packet as this consumer sends it, or None to drop it."""
        new_picture = packet.timestamp != self._picture
        if new_picture:
            self._picture_top = -1
        current = self.current_spatial
        if packet.keyframe:
            self.current_spatial = self.target_spatial
            self._temporal.current = None
        elif current is None:
            self._seq.drop(packet.sequence_number)
            return None
        elif self._switching_up_point(packet, current, new_picture):
            self.current_spatial = packet.spatial
        elif new_picture and not self.ksvc and self.target_spatial < current:
            self.current_spatial = self.target_spatial
        if not packet.payload or not self._passes(packet):
            self._seq.drop(packet.sequence_number)
            self._report_layers()
            return None
        seq = self._seq.input(packet.sequence_number)
        if seq is None:
            return None
        self._picture = packet.timestamp
        self._picture_top = max(self._picture_top, packet.spatial)
        # The receiver's picture ends with the highest spatial layer it gets.
        marker = packet.marker or (
            packet.end_of_layer_frame and packet.spatial == self.current_spatial
        )
        self._report_layers()
        return Forward(seq, packet.timestamp, marker, packet.payload)

    def _switching_up_point(self, packet: LayerPacket, current: int, new_picture: bool) -> bool:
        return (
            current < packet.spatial <= self.target_spatial
            and packet.intra
            and packet.begins_layer_frame
            and not new_picture
            and self._picture_top == packet.spatial - 1
        )

    def _needs_keyframe(self, spatial: int) -> bool:
        current = self.current_spatial
        return current is None or spatial > current or (self.ksvc and spatial != current)

    def _passes(self, packet: LayerPacket) -> bool:
        current = self.current_spatial
        assert current is not None
        if packet.spatial > current:
            return False
        if self.ksvc and packet.spatial < current and not packet.intra:
            return False
        return self._temporal.passes(packet)
