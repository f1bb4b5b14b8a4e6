"""The timer that applies a WebRTC transport's bandwidth estimate to its consumers.

:class:`~.bandwidth.TransportBandwidth` is sans-I/O: it estimates, shares and plans
probes when asked. :class:`BandwidthTimer` asks: every ``ALLOCATION_INTERVAL`` (100 ms)
while the transport has consumers and is connected -- every ``PROBE_TICK`` (5 ms) while a
probe cluster is being sent, its packets being spaced over 30 ms -- it shares the estimate
among the consumers' demands, applies the layers once the receiver has sent feedback
(:attr:`~.bandwidth.TransportBandwidth.limiting`), and sends the running probe's padding
on the RTX stream of the first video consumer that can carry it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from .bandwidth import ALLOCATION_INTERVAL, TransportBandwidth
from .consumer import Consumer

__all__ = ["PROBE_TICK", "BandwidthTimer"]

logger = logging.getLogger(__name__)

#: The timer's beat while a probe cluster is being sent (its packets are spaced over 30 ms).
PROBE_TICK = 0.005


class BandwidthTimer:
    """Runs a transport's :class:`~.bandwidth.TransportBandwidth` over its consumers."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        bandwidth: TransportBandwidth,
        consumers: Mapping[str, Consumer],
        *,
        owner: object,
        running: Callable[[], bool],
    ) -> None:
        self._loop = loop
        self._bandwidth = bandwidth
        self._consumers = consumers
        self._owner = owner  # named in the log
        self._running = running
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Beat from now on, if there is anything to share and the transport can send."""
        if self._handle is None and self._consumers and self._running():
            self._handle = self._loop.call_later(ALLOCATION_INTERVAL, self.on_tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def on_tick(self) -> None:
        """Share the estimate among the consumers; send the running probe's padding."""
        self._handle = None
        if not self._consumers or not self._running():
            return
        now = self._loop.time()
        bandwidth = self._bandwidth
        try:
            if bandwidth.allocation_due(now):
                self._allocate(now)
            sizes = bandwidth.padding_due(now)
            if sizes:
                self._send_probe(sizes)
        except Exception:
            logger.exception("%r bandwidth allocation failed", self._owner)
        delay = PROBE_TICK if bandwidth.probing else ALLOCATION_INTERVAL
        self._handle = self._loop.call_later(delay, self.on_tick)

    def _allocate(self, now: float) -> None:
        consumers = tuple(self._consumers.values())
        rtts = [c.round_trip_time for c in consumers if c.round_trip_time is not None]
        if rtts:
            self._bandwidth.on_rtt(min(rtts))
        allocation = self._bandwidth.allocate([c.demand(now) for c in consumers], now)
        if self._bandwidth.limiting:
            for consumer in consumers:
                consumer.apply_layers(allocation.layers.get(consumer.id), now)

    def _send_probe(self, sizes: list[int]) -> None:
        """The probe's packets, on the RTX stream of the first consumer that can carry them."""
        for consumer in self._consumers.values():
            if consumer.kind == "video" and consumer.send_probe(sizes[0]):
                for size in sizes[1:]:
                    consumer.send_probe(size)
                return
