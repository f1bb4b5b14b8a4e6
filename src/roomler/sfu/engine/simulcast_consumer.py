"""A simulcast consumer: one of the producer's encodings at a time (mediasoup's SimulcastConsumer).

The producer forwards every encoding, each tagged with its index
(``RtpForward.layer``), to the consumers that subscribed to it
(:meth:`~.producer.Producer.subscribe`): this one takes the encoding it sends
and the one it switches to, no other.  It passes on one of them, chosen as
the highest *active* encoding (a packet within ``ACTIVE_WINDOW``, tracked by
the producer's :class:`~.producer.LayerActivity`, which tells this consumer
when the active set changes) not above the preferred spatial layer --
``consumer.set_preferred_layers`` from the web process -- and drops temporal
layers above the preferred temporal layer.
:class:`~.layers.SimulcastSwitcher` makes the switches invisible to the
receiver (keyframe-gated, gap-free numbering, VP8 descriptor rewriting,
timestamps mapped with the encodings' sender reports) and says when a
keyframe is needed on which encoding; the producer sends that PLI/FIR.

Events: ``consumer.layerschange`` ``{spatial_layer, temporal_layer}`` (both
None when nothing is forwarded), as mediasoup's ``layerschange``.

One VP8 (or H.264) encoding with temporal layers (L1T3) is a simulcast
producer of one spatial layer, as in mediasoup: this consumer then switches
its temporal layers only.  H.264 packets name no temporal layer: an H.264
consumer has one.

Bandwidth: once the receiver sends congestion feedback, the transport's
allocator (:mod:`.bandwidth`) caps the spatial layer every 100 ms
(:meth:`SimulcastConsumer.apply_layers`) from :meth:`SimulcastConsumer.demand`,
the bitrate of each active encoding up to the preferred one, measured at the
producer.  When even the lowest does not fit, the lowest is still sent: a
receiver that decodes something small is better off than a frozen one.
Temporal layers are not bandwidth steps (yet): the allocator upgrades only
within what the link was seen to carry, and a receiver held on temporal
layer 0 shows a quarter of the throughput, so it stayed there until probes
(tried: a benchmark's 60 receivers sat on layer 0 and probed all along).
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from typing import Any

from roomler.sfu import ortc
from roomler.sfu.rtcp import ntp_to_unix

from .allocation import Demand, Layers
from .consumer import Consumer
from .layers import (
    KeyframeNeeded,
    LayerPacket,
    LayersChanged,
    SimulcastSwitcher,
    SvcSwitcher,
    Vp8Rewriter,
    layer_packet,
)
from .producer import ACTIVE_WINDOW
from .rewrite import RtpForward
from .rtp_stats import ReceiveStats

__all__ = ["ACTIVE_WINDOW", "SimulcastConsumer"]

#: A keyframe asked for a switch that has not come after this long is asked again:
#: a browser ignores a request too soon after its last keyframe (libwebrtc: 300 ms).
KEYFRAME_RETRY = 1.0

_LAYER_PACKET = "simulcast.layer_packet"  # RtpForward.cache key
_MISSING: Any = object()


def _read(packet: RtpForward, mime_type: str) -> LayerPacket | None:
    body = packet.body
    padding = body[-1] if packet.first_byte & 0x20 and body else 0
    payload = body[: len(body) - padding] if padding else body
    try:
        return layer_packet(
            mime_type,
            packet.layer,
            packet.sequence_number,
            packet.timestamp,
            packet.marker,
            payload,
        )
    except ValueError:
        return None


class SimulcastConsumer(Consumer):
    type = "simulcast"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        mode = self._layers_of(
            ortc.parse_scalability_mode(self.rtp_parameters["encodings"][0].get("scalabilityMode"))
        )
        self.switcher = self._create_switcher(mode)
        spatial = self.switcher.spatial_layers
        self.preferred_spatial = spatial - 1
        self.preferred_temporal = mode.temporal_layers - 1
        #: The highest spatial layer the transport's bandwidth allows.
        self.allowed_spatial = spatial - 1
        self._sr_fed: list[float | None] = [None] * spatial
        # Asks again for the keyframe a pending switch waits for (_ask_keyframe).
        self._keyframe_retry: asyncio.TimerHandle | None = None
        # Simulcast encodings are separate streams: a packet of one that is neither sent
        # nor switched to is dropped (SVC layers of one stream depend on each other).
        self._one_encoding = isinstance(self.switcher, SimulcastSwitcher)
        #: (current, target) spatial layers as last subscribed to at the producer.
        self._subscribed: tuple[int | None, int] = (None, self.switcher.target_spatial)
        self.producer.activity.listeners[self.id] = self._on_activity
        self._choose_target(self.loop.time())

    def _layers_of(self, mode: ortc.ScalabilityMode) -> ortc.ScalabilityMode:
        """The layers this consumer can choose among: H.264 packets name no temporal
        layer (no frame-marking extension), so an H.264 stream is one temporal layer."""
        if self.mime_type.lower() == "video/vp8":
            return mode
        return dataclasses.replace(mode, temporal_layers=1)

    def _create_switcher(self, mode: ortc.ScalabilityMode) -> SimulcastSwitcher | SvcSwitcher:
        vp8 = self.mime_type.lower() == "video/vp8"
        return SimulcastSwitcher(
            len(self.producer.streams),
            mode.temporal_layers,
            self.clock_rate,
            rewriter=Vp8Rewriter() if vp8 else None,
            initial_sequence_number=secrets.randbelow(0x10000),
        )

    def _stream_of(self, spatial: int) -> int:
        """The producer stream (encoding) that carries spatial layer ``spatial``."""
        return spatial

    # -- forwarding -------------------------------------------------------------------

    def producer_streams(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Every packet of the encoding sent, the keyframes of the one switched to (a
        switch waits for one): the producer hands this consumer nothing else.  SVC: every
        packet of the one stream, whose layers depend on each other."""
        current, target = self._subscribed
        if not self._one_encoding:
            return (self._stream_of(target),), ()
        sent = () if current is None else (self._stream_of(current),)
        return sent, (self._stream_of(target),)

    def _resubscribe(self) -> None:
        switcher = self.switcher
        subscribed = (switcher.current_spatial, switcher.target_spatial)
        if subscribed != self._subscribed:
            self._subscribed = subscribed
            self.producer.subscribe(self, *self.producer_streams())

    def forward(self, packet: RtpForward, now: float) -> None:
        if self.paused or self.producer_paused or self.closed:
            return
        if packet.payload_type not in self._payload_types or not self.sender.can_send:
            return
        # Read once per packet, shared by the producer's simulcast consumers.
        incoming = packet.cache.get(_LAYER_PACKET, _MISSING)
        if incoming is _MISSING:
            incoming = packet.cache[_LAYER_PACKET] = _read(packet, self.mime_type)
            if incoming is not None:
                self._measure(incoming, len(packet.body), now)
        if incoming is None:
            return  # a malformed payload: nothing a receiver could decode
        switcher = self.switcher
        layer = incoming.spatial  # the encoding index, or an SVC spatial id
        current = switcher.current_spatial
        if layer != current:
            if layer >= switcher.spatial_layers:
                return
            if self._one_encoding and layer != switcher.target_spatial:
                return  # handed over before a resubscription took effect
            if incoming.keyframe:  # a switch maps this layer onto another: all reports
                self._feed_sender_reports()
        out = switcher.forward(incoming, now)
        if switcher.events:
            self._handle_events(now)
        if switcher.current_spatial != current:
            self._resubscribe()
        if out is None:
            return
        body = packet.body
        payload = incoming.payload
        if out.payload is not payload:
            body = out.payload + body[len(payload) :]
        marker = out.marker if out.marker != packet.marker else None
        self._send(packet, out.sequence_number, out.timestamp, body, now, marker)

    def _on_activity(self, now: float) -> None:
        """The producer's set of active layers changed: choose again."""
        self._choose_target(now)
        self._handle_events(now)

    def _active_layers(self, now: float) -> list[int]:
        """The active layers this consumer can choose among, lowest first."""
        seen = self.producer.activity.last_seen[: self.switcher.spatial_layers]
        return [index for index, last in enumerate(seen) if now - last <= ACTIVE_WINDOW]

    def _choose_target(self, now: float) -> None:
        active = [index for index in self._active_layers(now) if index <= self.preferred_spatial]
        if active:
            # The bandwidth cap, but never below the lowest active encoding.
            active = [index for index in active if index <= self.allowed_spatial] or [min(active)]
            switcher = self.switcher
            target = max(active)
            if (target, self.preferred_temporal) != (
                switcher.target_spatial,
                switcher.target_temporal,
            ):
                switcher.set_target(target, self.preferred_temporal)
        self._resubscribe()

    def _measure(self, incoming: LayerPacket, size: int, now: float) -> None:
        """Count a packet of the producer (once, by the first consumer that reads it).

        Simulcast encodings are measured by the producer, one stream each."""

    def _feed_sender_reports(self) -> None:
        """Give the switcher each encoding's latest sender report (it maps timestamps
        with them when it switches)."""
        for layer, fed in enumerate(self._sr_fed):
            stats = self.producer.streams[layer].stats
            if stats.last_sr_time is not None and stats.last_sr_time != fed:
                self._sr_fed[layer] = stats.last_sr_time
                self.switcher.on_sender_report(
                    layer, ntp_to_unix(stats.last_sr_ntp), stats.last_sr_rtp
                )

    def _ask_keyframe(self, layer: int, now: float) -> None:
        """Ask for a keyframe of ``layer``, and again every KEYFRAME_RETRY until the switch
        to the target is done (a timer: the consumer may see no packet meanwhile)."""
        if self._keyframe_retry is not None:
            self._keyframe_retry.cancel()
            self._keyframe_retry = None
        if self.active:
            self.producer.request_key_frame(now, self._stream_of(layer))
            self._keyframe_retry = self.loop.call_later(KEYFRAME_RETRY, self._retry_keyframe)

    def _retry_keyframe(self) -> None:
        self._keyframe_retry = None
        switcher = self.switcher
        if switcher.current_spatial != switcher.target_spatial:
            self._ask_keyframe(switcher.target_spatial, self.loop.time())

    def _switched(self) -> None:
        if self._keyframe_retry is not None:
            self._keyframe_retry.cancel()
            self._keyframe_retry = None

    def _handle_events(self, now: float) -> None:
        for event in self.switcher.pop_events():
            if isinstance(event, KeyframeNeeded):
                self._ask_keyframe(event.spatial_layer, now)
            elif isinstance(event, LayersChanged):
                if event.spatial_layer == self.switcher.target_spatial:
                    self._switched()
                self._emit(
                    "consumer.layerschange",
                    self.id,
                    {"spatial_layer": event.spatial_layer, "temporal_layer": event.temporal_layer},
                )

    def _clock_source(self) -> tuple[ReceiveStats, int]:
        layer = self._stream_of(self.switcher.current_spatial or 0)
        return self.producer.streams[layer].stats, -self.switcher.ts_offset

    def _forwarded_layer(self) -> int:
        current = self.switcher.current_spatial
        return self.switcher.target_spatial if current is None else current

    # -- bandwidth --------------------------------------------------------------------

    def demand(self, now: float) -> Demand:
        """Each active encoding up to the preferred one, at its measured bitrate."""
        if not self.active:
            return Demand(self.id, self._priority_class(), {}, paused=True)
        streams = self.producer.streams
        layers = {
            (index, self.preferred_temporal): float(streams[index].rate.rate(now))
            for index in self._active_layers(now)
            if index <= self.preferred_spatial
        }
        return Demand(self.id, self._priority_class(), layers)

    def apply_layers(self, layers: Layers | None, now: float) -> None:
        allowed = 0 if layers is None else layers[0]
        if allowed == self.allowed_spatial:
            return
        self.allowed_spatial = allowed
        self._choose_target(now)
        self._handle_events(now)

    # -- control ----------------------------------------------------------------------

    def set_preferred_layers(self, spatial: int, temporal: int | None = None) -> None:
        """The most the receiver wants (mediasoup's preferredLayers), clamped to the stream."""
        switcher = self.switcher
        self.preferred_spatial = max(0, min(spatial, switcher.spatial_layers - 1))
        top = switcher.temporal_layers - 1
        self.preferred_temporal = top if temporal is None else max(0, min(temporal, top))
        now = self.loop.time()
        self._choose_target(now)
        self._handle_events(now)

    def _restart(self) -> None:
        """The stream restarts (resume, transport connected): it waits for a keyframe of
        the target layer, so that is the one asked for -- and asked again every
        KEYFRAME_RETRY until it comes (a keyframe of encoding 0 alone left a receiver of
        the top encoding frozen after a resume)."""
        now = self.loop.time()
        self.switcher.restart()
        self._resubscribe()
        self._sync_required = True
        if self.active:
            self._ask_keyframe(self.switcher.target_spatial, now)
        self._handle_events(now)

    def on_producer_resume(self) -> None:
        super().on_producer_resume()
        self._restart()

    def close(self, *, producer_closed: bool = False, transport_closed: bool = False) -> None:
        self._switched()
        super().close(producer_closed=producer_closed, transport_closed=transport_closed)

    def on_key_frame_request(self, kind: str, now: float) -> None:
        if kind == "fir":
            self.fir_count += 1
        else:
            self.pli_count += 1
        if self.active:
            layer = self.switcher.current_spatial
            self.producer.request_key_frame(
                now, self._stream_of(self.switcher.target_spatial if layer is None else layer)
            )

    def request_key_frame(self) -> None:
        self.producer.request_key_frame(
            self.loop.time(), self._stream_of(self.switcher.target_spatial)
        )

    # -- introspection ----------------------------------------------------------------

    def layers(self) -> dict[str, Any]:
        switcher = self.switcher
        current = None
        if switcher.current_spatial is not None:
            current = {
                "spatialLayer": switcher.current_spatial,
                "temporalLayer": switcher.current_temporal,
            }
        return {
            "preferredLayers": {
                "spatialLayer": self.preferred_spatial,
                "temporalLayer": self.preferred_temporal,
            },
            "currentLayers": current,
            "allowedSpatialLayer": self.allowed_spatial,
        }

    def dump(self) -> dict[str, Any]:
        return {**super().dump(), **self.layers()}

    def get_stats(self) -> dict[str, Any]:
        return {**super().get_stats(), **self.layers()}
