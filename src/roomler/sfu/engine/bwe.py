"""Congestion feedback toward browsers that send to us, sans-I/O.

Chrome estimates its own send bandwidth (send-side BWE, "goog-cc") from
transport-wide congestion control feedback: every RTP packet it sends carries
a transport-wide sequence number, and the receiver reports when each one
arrived (draft-holmer-rmcat-transport-wide-cc-extensions-01).
:class:`TransportCcRecorder` collects those arrivals for one transport and
turns them into feedback packets every ``feedback_interval``.

When a producer negotiated REMB but not transport-cc, :class:`RembEstimator`
is a deliberately simple receive-side estimate: it reports 1.5x the measured
incoming bitrate (at least ``floor``), so the sender ramps up by up to half
again each report while there is no sign of loss; fraction lost above 10 %
holds it at the measured rate (draft-alvestrand-rmcat-remb-03 leaves the
algorithm to the receiver).
"""

from __future__ import annotations

from roomler.sfu.rtcp import TransportFeedback, TransportFeedbackBuilder

__all__ = ["RembEstimator", "TransportCcRecorder"]


class TransportCcRecorder:
    """Arrival times of one transport's transport-wide sequence numbers."""

    __slots__ = ("_builder", "_epoch", "received")

    def __init__(self, sender_ssrc: int, epoch: float, max_packet_size: int = 1200) -> None:
        # Arrival times go out as µs since ``epoch`` (a 24-bit count of 64 ms
        # reference ticks holds 12 days).
        self._builder = TransportFeedbackBuilder(sender_ssrc, 0, max_packet_size)
        self._epoch = epoch
        self.received = 0

    def add(self, sequence_number: int, now: float) -> None:
        self.received += 1
        self._builder.add(sequence_number, int((now - self._epoch) * 1_000_000))

    def feedback(self, media_ssrc: int) -> list[TransportFeedback]:
        """Feedback for every arrival since the last call (maybe none)."""
        self._builder.media_ssrc = media_ssrc
        return self._builder.build()


class RembEstimator:
    """A receive-side bitrate to advertise with REMB (see the module docstring)."""

    __slots__ = ("ceiling", "floor")

    def __init__(self, floor: int = 500_000, ceiling: int = 10_000_000) -> None:
        self.floor = floor
        self.ceiling = ceiling

    def estimate(self, incoming_bps: int, fraction_lost: float) -> int:
        factor = 1.0 if fraction_lost > 0.1 else 1.5
        return max(self.floor, min(self.ceiling, int(incoming_bps * factor)))
