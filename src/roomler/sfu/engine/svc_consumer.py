"""An SVC consumer: spatial and temporal layers of one stream (mediasoup's SvcConsumer).

A VP9 producer whose single encoding has a ``scalabilityMode`` of several
layers (L1T3, L3T3, L3T3_KEY ...) sends every layer in one RTP stream; each
packet's payload descriptor names its spatial and temporal layer (RFC 9628).
This consumer passes on the layers up to its target --
:class:`~.layers.SvcSwitcher` drops the others by id, gates spatial
up-switches (and, in K-SVC, down-switches too) on a keyframe, keeps the
numbering gap-free and sets the marker on the last packet of the chosen
spatial layer.  The API is the simulcast consumer's: ``preferredLayers``,
``currentLayers``, ``consumer.layerschange``, priority, score; the target is
the highest spatial layer seen within ``ACTIVE_WINDOW`` (the producer's
:class:`~.producer.LayerActivity`, fed by the consumer that reads a packet first) (the browser drops
upper layers when its own estimate falls) up to the preferred one and under
the transport allocator's cap.

Bandwidth: a layer's cost for the allocator is measured here, per spatial id
(:attr:`Producer.layer_rates`, counted once per packet by whichever consumer
reads it first): in full SVC a spatial layer costs itself and every layer
below it, in K-SVC (between keyframes) only itself.
"""

from __future__ import annotations

import secrets

from roomler.sfu import ortc

from .allocation import Demand
from .layers import LayerPacket, SvcSwitcher
from .rtp_stats import RateMeter
from .simulcast_consumer import SimulcastConsumer

__all__ = ["SvcConsumer"]


class SvcConsumer(SimulcastConsumer):
    type = "svc"

    def _layers_of(self, mode: ortc.ScalabilityMode) -> ortc.ScalabilityMode:
        return mode  # VP9 descriptors carry both ids

    def _create_switcher(self, mode: ortc.ScalabilityMode) -> SvcSwitcher:
        return SvcSwitcher(
            mode.spatial_layers,
            mode.temporal_layers,
            ksvc=mode.ksvc,
            initial_sequence_number=secrets.randbelow(0x10000),
        )

    def _stream_of(self, spatial: int) -> int:
        return 0  # one stream carries every layer: keyframes are asked for on it

    def _measure(self, incoming: LayerPacket, size: int, now: float) -> None:
        rates = self.producer.layer_rates
        meter = rates.get(incoming.spatial)
        if meter is None:
            meter = rates[incoming.spatial] = RateMeter()
        meter.add(size, now)
        self.producer.activity.seen(incoming.spatial, now)

    def _feed_sender_reports(self) -> None:
        """The switcher keeps the producer's timestamps: no reports to map with."""

    def _forwarded_layer(self) -> int:
        return 0

    def demand(self, now: float) -> Demand:
        """Each active spatial layer up to the preferred one, at what sending it costs."""
        if not self.active:
            return Demand(self.id, self._priority_class(), {}, paused=True)
        rates = self.producer.layer_rates
        ksvc = isinstance(self.switcher, SvcSwitcher) and self.switcher.ksvc
        layers = {}
        below = 0.0
        active = self._active_layers(now)
        for index in range(self.switcher.spatial_layers):
            meter = rates.get(index)
            own = float(meter.rate(now)) if meter is not None else 0.0
            if index <= self.preferred_spatial and index in active:
                layers[(index, self.preferred_temporal)] = own if ksvc else below + own
            below += own
        return Demand(self.id, self._priority_class(), layers)
