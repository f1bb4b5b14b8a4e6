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
- when a consumer wanted more than fits, a padding probe at the allocator's
  ``probe_bitrate`` is planned (:class:`~.gcc.Prober`); the padding sizes
  :meth:`padding_due` returns are sent by the transport as RTX padding
  packets, tagged with the cluster so the estimator measures it.  Without
  probes a receiver dropped to a low layer would stay there: the estimate
  only grows up to 1.5x what the receiver acknowledges.

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


class TransportBandwidth:
    """Estimator, allocator and prober of one transport (see the module docstring)."""

    def __init__(self, start_bitrate: float = 600_000) -> None:
        self.estimator = GccEstimator(start_bitrate=start_bitrate)
        self.allocator = BitrateAllocator()
        self.prober = Prober(packet_size=PADDING_SIZE)
        self.allocation: Allocation | None = None
        self.limiting = False
        self._next_allocation = 0.0
        self._probed: tuple[float, float] | None = None  # (measured bps, when)

    # -- inputs ---------------------------------------------------------------------------

    def on_packet_sent(self, transport_seq: int, size: int, now: float) -> None:
        prober = self.prober
        cluster = prober.cluster if prober.active else None
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

    def allocation_due(self, now: float) -> bool:
        return now >= self._next_allocation

    def allocate(self, demands: list[Demand], now: float) -> Allocation:
        """Share the estimate among ``demands``; plans a probe when someone wants more."""
        self._next_allocation = now + ALLOCATION_INTERVAL
        allocation = self.allocator.allocate(
            self.estimator.target_bitrate, demands, now, self._upgrade_limit(now)
        )
        self.allocation = allocation
        probe = allocation.probe_bitrate
        # Only transport-cc feedback measures a probe: a REMB-only receiver is not probed.
        measured = self.estimator.feedback_count > 0
        if probe is not None and measured and self.estimator.probe_allowed(now):
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

    @property
    def probing(self) -> bool:
        return self.prober.active
