"""One transport's outgoing bandwidth: estimate, share, probe -- sans-I/O.

:class:`TransportBandwidth` is what a :class:`~.transport.WebRtcTransport`
runs for the receiver at the other end:

- every RTP packet it sends with a transport-wide sequence number is
  recorded (:meth:`on_packet_sent`); the receiver's transport-cc feedback
  and REMB (:meth:`on_transport_feedback`, :meth:`on_remb`) feed
  :class:`~.gcc.GccEstimator` (Google Congestion Control, see :mod:`.gcc`);
- every ``ALLOCATION_INTERVAL`` the estimate is shared among the
  consumers' demands by :class:`~.allocation.BitrateAllocator` (audio first,
  then screen shares, speakers, other video; each simulcast consumer gets
  the highest layer that fits);
- once the receiver's feedback can measure it, a first probe at
  ``INITIAL_PROBE_FACTOR`` times the estimate learns the link's capacity
  (libwebrtc's initial exponential probe);
- when a consumer wanted more than fits, a probe at the allocator's
  ``probe_bitrate`` is planned (:class:`~.gcc.Prober`) -- only when the link
  shows headroom: no over-use, no loss in the last window, not within 2 s of a
  cut, and the budget below not overdrawn; the sizes :meth:`padding_due`
  returns are sent by the transport as RTX copies of media just sent (padding
  packets if there is none), tagged with the cluster so the estimator
  measures it.  Without probes a receiver dropped to a low layer would stay
  there: the estimate only grows up to 1.5x what the receiver acknowledges.
- retransmissions are held to a budget (:meth:`retransmission_allowed`):
  what the transport sent, media included, over the last ``BUDGET_WINDOW``
  may not exceed the estimate, or what is sent whatever the estimate (audio
  and each video consumer's lowest layer) if that is more, as libwebrtc takes
  the least it must send as the estimate's floor -- behind a full queue a receiver NACKs
  every packet the queue dropped, again and again, and answering every NACK
  multiplies what is sent into the queue that is already overflowing (libwebrtc
  limits its retransmission rate by the estimate as well); and a packet is
  resent at most once per :attr:`resend_interval`, the feedback round trip
  (queueing included).

Upgrades need evidence: a consumer moves to a higher layer only when it fits
under what the link has been seen to carry -- the acknowledged throughput or a
probe measured within ``PROBE_VALID`` -- not under the estimate alone, which
climbs past a bottleneck between over-use detections (a receiver behind a
300 kbit/s link would otherwise be lifted to a layer it cannot take every few
seconds, and freeze each time).

Until the receiver has sent any feedback :attr:`limiting` is False and the
allocation is not applied (a peer that sends neither transport-cc nor REMB
gets what it prefers, as before the estimator existed).
"""

from __future__ import annotations

from typing import Any

from roomler.sfu.rtcp import TransportFeedback

from .allocation import Allocation, BitrateAllocator, Demand
from .gcc import GccEstimator, Prober

__all__ = ["ALLOCATION_INTERVAL", "PADDING_SIZE", "TransportBandwidth"]

#: How often the estimate is shared again (also the beat of the transport's timer).
ALLOCATION_INTERVAL = 0.1
#: How long a probe's measurement counts as evidence for upgrades (s).
PROBE_VALID = 5.0
#: Bytes of padding in one probe packet: an RTP padding count is one octet (RFC 3550 5.1).
PADDING_SIZE = 255
#: The nominal size of a probe packet (a copy of a media packet).
PROBE_PACKET_SIZE = 1200
#: The first probe, once the receiver's feedback can measure it, asks for this many times
#: the estimate (libwebrtc's first exponential probe is 3x the start bitrate).
INITIAL_PROBE_FACTOR = 3.0
#: Bytes the transport may send beyond the estimate in a burst, in seconds of the estimate
#: (libwebrtc's pacer budget window).
BUDGET_WINDOW = 0.5


class TransportBandwidth:
    """Estimator, allocator and prober of one transport (see the module docstring)."""

    def __init__(self, start_bitrate: float = 600_000) -> None:
        self.estimator = GccEstimator(start_bitrate=start_bitrate)
        self.allocator = BitrateAllocator()
        self.prober = Prober(packet_size=PROBE_PACKET_SIZE)
        self.allocation: Allocation | None = None
        self.limiting = False
        self._next_allocation = 0.0
        self._probed: tuple[float, float] | None = None  # (measured bps, when)
        self._probed_initially = False
        self._floor = 0.0  # bps sent whatever the estimate: audio, the lowest layers
        self._bytes_sent = 0  # everything recorded by on_packet_sent
        self._budget = 0.0  # bytes the estimate still allows (negative: overdrawn)
        self._budget_time: float | None = None
        self._budget_sent = 0

    # -- inputs ---------------------------------------------------------------------------

    def on_packet_sent(self, transport_seq: int, size: int, now: float) -> None:
        prober = self.prober
        cluster = prober.cluster if prober.active else None
        self._bytes_sent += size
        self.estimator.on_packet_sent(transport_seq, size, now, cluster)

    def on_transport_feedback(self, feedback: TransportFeedback, now: float) -> None:
        estimator = self.estimator
        estimator.on_transport_feedback(feedback, now)
        self.limiting = True
        measured = estimator.probe_results.pop(self.prober.cluster, None)
        if measured is not None:
            self.prober.on_result(measured)
            self._probed = (measured, now)
        estimator.probe_results.clear()  # older clusters: nobody asks any more

    def on_remb(self, bitrate: float) -> None:
        self.estimator.on_remb(bitrate)
        self.limiting = True

    def on_rtt(self, rtt: float) -> None:
        self.estimator.on_rtt(rtt)

    # -- outputs --------------------------------------------------------------------------

    @property
    def target_bitrate(self) -> float:
        return self.estimator.target_bitrate

    @property
    def resend_interval(self) -> float:
        """The least time between two retransmissions of one packet (s): the feedback
        round trip once known."""
        return self.estimator.feedback_rtt or 0.0

    def retransmission_allowed(self, now: float) -> bool:
        """Whether what was sent lately leaves room under the estimate for a retransmission."""
        if not self.limiting:
            return True
        return self._refill_budget(now) > 0

    def _refill_budget(self, now: float) -> float:
        """The budget now: the estimate accrues, everything sent since the last look is
        charged, within +-``BUDGET_WINDOW`` seconds of the estimate."""
        rate = max(self.estimator.target_bitrate, self._floor) / 8
        last = self._budget_time
        elapsed = 0.0 if last is None else max(0.0, now - last)
        sent = self._bytes_sent - self._budget_sent
        self._budget_time, self._budget_sent = now, self._bytes_sent
        limit = rate * BUDGET_WINDOW
        self._budget = max(-limit, min(limit, self._budget + elapsed * rate - sent))
        return self._budget

    def allocation_due(self, now: float) -> bool:
        return now >= self._next_allocation

    def allocate(self, demands: list[Demand], now: float) -> Allocation:
        """Share the estimate among ``demands``; plans a probe when someone wants more."""
        self._next_allocation = now + ALLOCATION_INTERVAL
        self._floor = sum(d.layers[min(d.layers)] for d in demands if d.layers and not d.paused)
        allocation = self.allocator.allocate(
            self.estimator.target_bitrate, demands, now, self._upgrade_limit(now)
        )
        self.allocation = allocation
        probe = allocation.probe_bitrate
        # Only transport-cc feedback measures a probe: a REMB-only receiver is not probed.
        measured = self.estimator.feedback_count > 0
        headroom = self._refill_budget(now) >= 0
        if not (measured and headroom and self.estimator.probe_allowed(now)):
            return allocation
        if not self._probed_initially:
            # libwebrtc's initial probe (ProbeController's exponential probing): the link's
            # capacity, learnt at once, not only what the media happens to use -- a
            # receiver already on the top layer is otherwise never probed, and its
            # estimate, never above 1.5x what it acknowledged, leaves no room for a
            # keyframe or a burst of the encoding it holds.
            target = max(probe or 0.0, INITIAL_PROBE_FACTOR * self.estimator.target_bitrate)
            self._probed_initially = self.prober.start(target, now, allocation.allocated)
        elif probe is not None:
            self.prober.start(probe, now, allocation.allocated)
        return allocation

    def _upgrade_limit(self, now: float) -> float | None:
        """What the link has been seen to carry (None: no transport-cc, no evidence to ask)."""
        if self.estimator.feedback_count == 0:
            return None
        seen = self.estimator.acknowledged_bitrate or 0.0
        if self._probed is not None and now - self._probed[1] <= PROBE_VALID:
            seen = max(seen, self._probed[0])
        return seen

    def padding_due(self, now: float) -> list[int]:
        """Padding sizes (bytes) to send now for the running probe."""
        return self.prober.due(now)

    def stats(self) -> dict[str, Any]:
        """The estimate's parts and the last allocation, for get_stats() and test evidence."""
        estimator = self.estimator
        allocation = self.allocation
        return {
            "target": int(estimator.target_bitrate),
            "delayBased": int(estimator.delay_based_bitrate),
            "lossBased": int(estimator.loss_based_bitrate),
            "acknowledged": estimator.acknowledged_bitrate,
            "lossFraction": estimator.loss_fraction,
            "usage": estimator.usage.value,
            "overuseCount": estimator.overuse_count,
            "threshold": estimator.threshold,
            "probeCluster": self.prober.cluster,
            "probed": self._probed,
            "allocated": None if allocation is None else int(allocation.allocated),
            "layers": None if allocation is None else dict(allocation.layers),
        }

    @property
    def probing(self) -> bool:
        return self.prober.active
