"""Send-side bandwidth estimation toward one receiver: Google Congestion Control, sans-I/O.

The receiver (a browser) reports when each packet we sent arrived, in
transport-wide congestion control feedback
(draft-holmer-rmcat-transport-wide-cc-extensions-01; parsed by
:class:`roomler.sfu.rtcp.TransportFeedback`).  From those reports
:class:`GccEstimator` keeps the estimate of what the path to that receiver
carries, following Google Congestion Control as described in
draft-ietf-rmcat-gcc-02 and as libwebrtc's ``modules/congestion_controller/
goog_cc`` implements it (the constants below are libwebrtc's):

- **delay-based** (draft section 5): packets are grouped by send time
  (5 ms bursts); the change in one-way delay between groups is accumulated,
  smoothed, and a least-squares line through the last 20 values gives the
  delay *trend* (libwebrtc's TrendlineEstimator, which replaced the draft's
  Kalman filter).  An over-use detector compares the trend with an adaptive
  threshold (draft section 5.4) and says over-using, under-using or normal;
- **AIMD rate control** (draft section 5.5): over-use cuts the rate to 85 %
  of what the receiver acknowledged; normal grows it, by 8 % a second far
  from the last known link capacity, additively (about a packet per
  response time) near it; the rate never runs ahead of 1.5x the acknowledged
  throughput;
- **loss-based** (draft section 6): the loss fraction over at least
  ``_LOSS_MIN_PACKETS`` packets (libwebrtc's kLimitNumPackets: a feedback
  message covering two packets, one of them lost, is no 50 % loss) and at
  least the shortest gap between two cuts; over 10 % cuts the rate by half the
  loss fraction, under 2 % lets it grow by 8 % a second; it never exceeds the
  delay-based rate (libwebrtc's SendSideBandwidthEstimation), so a cut bites;
- **probes**: a burst sent at a higher rate (:class:`Prober`), whose
  acknowledged receive rate -- when the delay did not grow -- lifts the
  estimate at once (libwebrtc's ProbeBitrateEstimator, with its validity
  checks: at least 80 % of the planned packets and bytes reported, received
  at no more than twice the rate sent -- a burst that passed a shaper's token
  bucket whole says nothing about the rate behind it); this is how the
  estimate climbs back fast after the capacity returns;
- **REMB** (draft-alvestrand-rmcat-remb-03), when the receiver sends it,
  caps the estimate, and stands in for it when there is no transport-cc
  feedback at all.

The estimate is :attr:`GccEstimator.target_bitrate` (bps), the least of the
delay-based, loss-based and REMB figures.  Times are seconds (``now``).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from typing import NamedTuple

from roomler.sfu.rtcp import TransportFeedback

__all__ = ["BandwidthUsage", "GccEstimator", "PacketResult", "Prober", "SendHistory"]

# libwebrtc goog_cc constants (see the module docstring).
_BURST_SEND_INTERVAL = 0.005
_TRENDLINE_WINDOW = 20
_TRENDLINE_SMOOTHING = 0.9
_TRENDLINE_GAIN = 4.0
_THRESHOLD_INITIAL_MS = 12.5
_THRESHOLD_K_UP = 0.0087
_THRESHOLD_K_DOWN = 0.039
_THRESHOLD_MIN_MS, _THRESHOLD_MAX_MS = 6.0, 600.0
_OVERUSE_TIME_MS = 10.0
_BETA = 0.85
_MULTIPLICATIVE_INCREASE = 1.08  # per second
_LOSS_LOW, _LOSS_HIGH = 0.02, 0.10
_LOSS_DECREASE_INTERVAL = 0.3
_LOSS_MIN_PACKETS = 20
_LOSS_UPDATE_INTERVAL = _LOSS_DECREASE_INTERVAL
_ACKED_WINDOW = 0.5
_PROBE_MIN_PACKETS = 5
_PROBE_MIN_RECEIVED_RATIO = 0.8
_PROBE_MAX_VALID_RATIO = 2.0
_PROBE_MAX_AGE = 1.0
_PROBE_UNSATURATED_RATIO = 0.9
_PROBE_TARGET_UTILIZATION = 0.95
_PROBE_QUIET_AFTER_DECREASE = 2.0
_PROBE_SUCCESS_RATIO = 0.9
_RTT_SMOOTHING = 0.8


class BandwidthUsage(enum.Enum):
    NORMAL = "normal"
    OVERUSING = "overusing"
    UNDERUSING = "underusing"


class PacketResult(NamedTuple):
    """One sent packet as the receiver reported it (``arrival`` None: lost)."""

    send_time: float
    arrival: float | None  # seconds on the receiver's clock (only differences mean anything)
    size: int
    probe_cluster: int | None


class SendHistory:
    """The packets sent on one transport, by transport-wide sequence number.

    A ring of ``capacity`` slots indexed by the extended sequence number: recording a
    packet is a tuple stored in a list (it runs once per packet sent), and a slot
    reused by a newer packet simply forgets the older one.
    """

    __slots__ = ("_last_ext", "_mask", "_slots")

    def __init__(self, capacity: int = 8192) -> None:
        if capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two, got {capacity}")
        self._slots: list[tuple[int, float, int, int | None] | None] = [None] * capacity
        self._mask = capacity - 1
        self._last_ext: int | None = None

    def _extend(self, seq: int) -> int:
        if self._last_ext is None:
            return seq
        delta = (seq - self._last_ext) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        return self._last_ext + delta

    def record(self, seq: int, size: int, now: float, probe_cluster: int | None = None) -> None:
        last = self._last_ext
        if last is None:
            ext = seq & 0xFFFF
        else:
            delta = (seq - last) & 0xFFFF
            ext = last + (delta - 0x10000 if delta >= 0x8000 else delta)
        if last is None or ext > last:
            self._last_ext = ext
        self._slots[ext & self._mask] = (ext, now, size, probe_cluster)

    def results(self, feedback: TransportFeedback) -> list[PacketResult]:
        """The reported packets we still know, in sequence order (each reported once)."""
        out: list[PacketResult] = []
        slots, mask = self._slots, self._mask
        for seq, arrival_us in feedback.arrivals():
            ext = self._extend(seq)
            sent = slots[ext & mask]
            if sent is None or sent[0] != ext:
                continue  # unknown, overwritten or already reported
            slots[ext & mask] = None
            arrival = None if arrival_us is None else arrival_us / 1_000_000
            out.append(PacketResult(sent[1], arrival, sent[2], sent[3]))
        return out


class _InterArrival:
    """Deltas between consecutive send-time groups (draft-ietf-rmcat-gcc-02 section 5.2)."""

    __slots__ = ("_current", "_previous")

    def __init__(self) -> None:
        self._current: list[float] | None = None  # [first send, last send, last arrival]
        self._previous: list[float] | None = None

    def add(self, send: float, arrival: float) -> tuple[float, float, float] | None:
        """(send delta, arrival delta, arrival) in seconds when a group completes."""
        current = self._current
        if current is None:
            self._current = [send, send, arrival]
            return None
        if send - current[0] <= _BURST_SEND_INTERVAL:
            current[1] = max(current[1], send)
            current[2] = max(current[2], arrival)
            return None
        previous, self._previous = self._previous, current
        self._current = [send, send, arrival]
        if previous is None:
            return None
        arrival_delta = current[2] - previous[2]
        if arrival_delta < 0:
            return None  # reordered across groups: no usable delta
        return current[1] - previous[1], arrival_delta, current[2]


class _Trendline:
    """libwebrtc's TrendlineEstimator with the draft's adaptive threshold (section 5.4)."""

    def __init__(self) -> None:
        self.usage = BandwidthUsage.NORMAL
        self._deltas = 0
        self._accumulated = 0.0
        self._smoothed = 0.0
        self._first_arrival: float | None = None
        self._history: deque[tuple[float, float]] = deque(maxlen=_TRENDLINE_WINDOW)
        self._trend = 0.0
        self._previous_trend = 0.0
        self.threshold = _THRESHOLD_INITIAL_MS
        self._last_threshold_update: float | None = None
        self._overuse_time = -1.0
        self._overuse_count = 0

    def update(self, send_delta: float, arrival_delta: float, arrival: float) -> None:
        delta_ms = (arrival_delta - send_delta) * 1000
        self._deltas = min(self._deltas + 1, 1000)
        self._accumulated += delta_ms
        self._smoothed = (
            _TRENDLINE_SMOOTHING * self._smoothed + (1 - _TRENDLINE_SMOOTHING) * self._accumulated
        )
        if self._first_arrival is None:
            self._first_arrival = arrival
        self._history.append(((arrival - self._first_arrival) * 1000, self._smoothed))
        if len(self._history) == _TRENDLINE_WINDOW:
            self._trend = _slope(self._history)
        self._detect(send_delta * 1000, arrival * 1000)

    def _detect(self, send_delta_ms: float, now_ms: float) -> None:
        if self._deltas < 2:
            self.usage = BandwidthUsage.NORMAL
            return
        modified = min(self._deltas, 60) * self._trend * _TRENDLINE_GAIN
        if modified > self.threshold:
            if self._overuse_time < 0:
                self._overuse_time = send_delta_ms / 2
            else:
                self._overuse_time += send_delta_ms
            self._overuse_count += 1
            if (
                self._overuse_time > _OVERUSE_TIME_MS
                and self._overuse_count > 1
                and self._trend >= self._previous_trend
            ):
                self._overuse_time, self._overuse_count = 0.0, 0
                self.usage = BandwidthUsage.OVERUSING
        elif modified < -self.threshold:
            self._overuse_time, self._overuse_count = -1.0, 0
            self.usage = BandwidthUsage.UNDERUSING
        else:
            self._overuse_time, self._overuse_count = -1.0, 0
            self.usage = BandwidthUsage.NORMAL
        self._previous_trend = self._trend
        self._update_threshold(modified, now_ms)

    def _update_threshold(self, modified: float, now_ms: float) -> None:
        last = self._last_threshold_update
        self._last_threshold_update = now_ms
        if last is None or abs(modified) > self.threshold + 15:
            return  # a spike (e.g. a route change) must not drag the threshold along
        k = _THRESHOLD_K_DOWN if abs(modified) < self.threshold else _THRESHOLD_K_UP
        elapsed = min(now_ms - last, 100.0)
        self.threshold += k * (abs(modified) - self.threshold) * elapsed
        self.threshold = min(max(self.threshold, _THRESHOLD_MIN_MS), _THRESHOLD_MAX_MS)


def _slope(points: deque[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (ms of delay per ms of time)."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    numerator = sum((x - mean_x) * (y - mean_y) for x, y in points)
    denominator = sum((x - mean_x) ** 2 for x, _ in points)
    return numerator / denominator if denominator else 0.0


class _AckedBitrate:
    """Throughput the receiver acknowledged, over the last half second of arrivals."""

    __slots__ = ("_samples", "_bytes")

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()
        self._bytes = 0

    def add(self, arrival: float, size: int) -> None:
        self._samples.append((arrival, size))
        self._bytes += size
        while self._samples and self._samples[0][0] < arrival - _ACKED_WINDOW:
            self._bytes -= self._samples.popleft()[1]

    def bitrate(self) -> float | None:
        if len(self._samples) < 2:
            return None
        span = self._samples[-1][0] - self._samples[0][0]
        if span < _ACKED_WINDOW / 2:
            return None
        return self._bytes * 8 / _ACKED_WINDOW


class _Aimd:
    """AIMD rate control (draft-ietf-rmcat-gcc-02 section 5.5, libwebrtc AimdRateControl)."""

    def __init__(self, start: float, minimum: float, maximum: float) -> None:
        self.bitrate = start
        self.minimum, self.maximum = minimum, maximum
        self._increasing = True
        self._last_update: float | None = None
        self._capacity: float | None = None  # acked rate at the last over-use (mean)
        self._capacity_var = 0.4
        self.rtt = 0.1
        self.last_decrease = -math.inf

    def update(self, usage: BandwidthUsage, acked: float | None, now: float) -> None:
        elapsed = 0.0 if self._last_update is None else min(now - self._last_update, 1.0)
        self._last_update = now
        if usage is BandwidthUsage.OVERUSING:
            self._decrease(acked)
            self.last_decrease = now
        elif usage is BandwidthUsage.UNDERUSING:
            self._increasing = False  # hold: let the queues drain
        elif not self._increasing:
            self._increasing = True
        else:
            self._increase(acked, elapsed)

    def _decrease(self, acked: float | None) -> None:
        measured = acked if acked is not None else self.bitrate
        target = _BETA * measured
        self.bitrate = max(self.minimum, min(self.bitrate, target))
        self._remember_capacity(measured)
        self._increasing = False

    def _remember_capacity(self, measured: float) -> None:
        if self._capacity is None:
            self._capacity = measured
            return
        error = self._capacity - measured
        norm = max(self._capacity, 1.0)
        if abs(error) > 3 * math.sqrt(self._capacity_var * norm):
            self._capacity, self._capacity_var = measured, 0.4  # the link changed
            return
        self._capacity = 0.95 * self._capacity + 0.05 * measured
        self._capacity_var = min(max(0.95 * self._capacity_var + 0.05 * error**2 / norm, 0.4), 2.5)

    def _increase(self, acked: float | None, elapsed: float) -> None:
        near_capacity = self._capacity is not None and self.bitrate <= self._capacity + 3 * (
            math.sqrt(self._capacity_var * self._capacity)
        )
        if self._capacity is not None and not near_capacity:
            self._capacity = None  # above what we knew: search multiplicatively again
        if near_capacity:
            increase = self._near_capacity_rate() * elapsed
        else:
            increase = max(self.bitrate * (_MULTIPLICATIVE_INCREASE**elapsed - 1), 1000 * elapsed)
        bitrate = self.bitrate + increase
        if acked is not None:
            bitrate = min(bitrate, max(self.bitrate, 1.5 * acked + 10_000))
        self.bitrate = min(max(bitrate, self.minimum), self.maximum)

    def _near_capacity_rate(self) -> float:
        # About one packet more per response time (libwebrtc
        # GetNearMaxIncreaseRateBpsPerSecond), at least 4 kbps per second.
        frame_bits = self.bitrate / 30
        packets = math.ceil(frame_bits / (1200 * 8))
        response_time = 2 * (self.rtt + 0.1)
        return max(4000.0, frame_bits / packets / response_time)

    def set_estimate(self, bitrate: float, now: float) -> None:
        self.bitrate = min(max(bitrate, self.minimum), self.maximum)
        self._last_update = now


class _LossBased:
    """Loss-based control (draft-ietf-rmcat-gcc-02 section 6), on the loss fraction of
    at least ``_LOSS_MIN_PACKETS`` packets over at least ``_LOSS_UPDATE_INTERVAL``."""

    def __init__(self, start: float, minimum: float, maximum: float) -> None:
        self.bitrate = start
        self.minimum, self.maximum = minimum, maximum
        self.last_decrease = -math.inf
        self._last_update: float | None = None
        self._lost = 0
        self._expected = 0
        self._window_start: float | None = None
        #: The loss fraction of the last complete window (None before the first).
        self.fraction: float | None = None

    def add(self, lost: int, total: int, now: float, ceiling: float) -> None:
        """Count a feedback message's packets; update once the window is complete."""
        self._lost += lost
        self._expected += total
        if self._window_start is None:
            self._window_start = now
        if (
            self._expected >= _LOSS_MIN_PACKETS
            and now - self._window_start >= _LOSS_UPDATE_INTERVAL
        ):
            self.update(self._lost, self._expected, now, ceiling)
            self._lost = self._expected = 0
            self._window_start = now
        else:
            self.bitrate = min(self.bitrate, ceiling)

    def update(self, lost: int, total: int, now: float, ceiling: float) -> None:
        if total == 0:
            return
        elapsed = 0.0 if self._last_update is None else min(now - self._last_update, 1.0)
        self._last_update = now
        loss = lost / total
        self.fraction = loss
        if loss > _LOSS_HIGH:
            if now - self.last_decrease >= _LOSS_DECREASE_INTERVAL:
                self.bitrate *= 1 - 0.5 * loss
                self.last_decrease = now
        elif loss < _LOSS_LOW:
            self.bitrate *= _MULTIPLICATIVE_INCREASE**elapsed
        # Never above what the delay-based side allows (libwebrtc's
        # SendSideBandwidthEstimation keeps its target under the delay-based limit):
        # a loss-free period builds up no rate the link never showed, and a cut for
        # loss bites at once.
        self.bitrate = min(max(self.bitrate, self.minimum), self.maximum, ceiling)


class _ProbeCluster:
    __slots__ = ("received", "sent")

    def __init__(self) -> None:
        self.sent: list[PacketResult] = []
        self.received: list[PacketResult] = []


def _probe_bitrate(
    results: list[PacketResult], min_packets: int = _PROBE_MIN_PACKETS, min_bytes: int = 0
) -> float | None:
    """A probe cluster's measured rate (libwebrtc ProbeBitrateEstimator), None while the
    reports do not cover enough of it or the measurement is not credible."""
    received = sorted((r for r in results if r.arrival is not None), key=lambda r: r.arrival or 0.0)
    received_bytes = sum(r.size for r in received)
    if (
        len(received) < max(_PROBE_MIN_PACKETS, _PROBE_MIN_RECEIVED_RATIO * min_packets)
        or received_bytes < _PROBE_MIN_RECEIVED_RATIO * min_bytes
    ):
        return None
    sent = sorted(received, key=lambda r: r.send_time)
    send_span = sent[-1].send_time - sent[0].send_time
    first_arrival, last_arrival = received[0].arrival, received[-1].arrival
    assert first_arrival is not None and last_arrival is not None
    receive_span = last_arrival - first_arrival
    if not 0 < send_span <= _PROBE_MAX_AGE or not 0 < receive_span <= _PROBE_MAX_AGE:
        return None
    # The last packet's size belongs after the send span, the first's before the receive span.
    send_rate = (received_bytes - sent[-1].size) * 8 / send_span
    receive_rate = (received_bytes - received[0].size) * 8 / receive_span
    if receive_rate > _PROBE_MAX_VALID_RATIO * send_rate:
        return None  # arrived faster than sent: a burst let through whole, not a rate
    if receive_rate < _PROBE_UNSATURATED_RATIO * send_rate:
        return _PROBE_TARGET_UTILIZATION * receive_rate  # the link saturated: that is its rate
    return min(send_rate, receive_rate)


class GccEstimator:
    """The bandwidth estimate toward one receiver (see the module docstring)."""

    def __init__(
        self,
        start_bitrate: float = 600_000,
        min_bitrate: float = 30_000,
        max_bitrate: float = 20_000_000,
    ) -> None:
        self.history = SendHistory()
        self._inter_arrival = _InterArrival()
        self._trendline = _Trendline()
        self._aimd = _Aimd(start_bitrate, min_bitrate, max_bitrate)
        self._loss = _LossBased(start_bitrate, min_bitrate, max_bitrate)
        self._acked = _AckedBitrate()
        self._remb: float | None = None
        self._transport_cc_seen = False
        self._probes: dict[int, list[PacketResult]] = {}
        self._probe_sent: dict[int, list[int]] = {}  # cluster -> [packets, bytes] sent
        self._sending_cluster: int | None = None  # the cluster of the last packet sent
        #: Measured rate (bps) of each finished probe cluster, by cluster id.
        self.probe_results: dict[int, float] = {}
        self.feedback_count = 0
        #: Feedback messages that found the delay over-using (each one a cut), for stats.
        self.overuse_count = 0
        #: Smoothed time from sending a packet to hearing of its arrival (s), queueing
        #: included: how long a retransmission takes to make a difference.
        self.feedback_rtt: float | None = None

    # -- inputs ---------------------------------------------------------------------------

    def on_packet_sent(
        self, transport_seq: int, size: int, now: float, probe_cluster: int | None = None
    ) -> None:
        """A packet carrying transport-wide sequence number ``transport_seq`` left."""
        self.history.record(transport_seq, size, now, probe_cluster)
        if probe_cluster is not None:
            sent = self._probe_sent.get(probe_cluster)
            if sent is None:
                for old in [c for c in self._probe_sent if c < probe_cluster - 8]:
                    del self._probe_sent[old]  # never reported: all lost
                self._probe_sent[probe_cluster] = [1, size]
            else:
                sent[0] += 1
                sent[1] += size
        self._sending_cluster = probe_cluster

    def on_transport_feedback(self, feedback: TransportFeedback, now: float) -> None:
        results = self.history.results(feedback)
        if not results:
            return
        self._transport_cc_seen = True
        self.feedback_count += 1
        lost = 0
        newest_sent: float | None = None
        for result in sorted(results, key=lambda r: r.send_time):
            if result.arrival is None:
                lost += 1
                continue
            newest_sent = result.send_time
            self._acked.add(result.arrival, result.size)
            group = self._inter_arrival.add(result.send_time, result.arrival)
            if group is not None:
                self._trendline.update(*group)
            if result.probe_cluster is not None:
                self._probes.setdefault(result.probe_cluster, []).append(result)
        if newest_sent is not None:
            rtt = now - newest_sent
            previous = self.feedback_rtt
            self.feedback_rtt = (
                rtt if previous is None else _RTT_SMOOTHING * previous + (1 - _RTT_SMOOTHING) * rtt
            )
        acked = self._acked.bitrate()
        self._apply_probes(now)
        if self._trendline.usage is BandwidthUsage.OVERUSING:
            self.overuse_count += 1
        self._aimd.update(self._trendline.usage, acked, now)
        self._loss.add(lost, len(results), now, self._aimd.bitrate)

    def _apply_probes(self, now: float) -> None:
        """Measure each probe cluster once it is sent whole and mostly reported."""
        for cluster, results in list(self._probes.items()):
            if now - results[-1].send_time > 2.0 or cluster not in self._probe_sent:
                del self._probes[cluster]  # reports of a cluster come within a second
                self._probe_sent.pop(cluster, None)
                continue
            if cluster == self._sending_cluster:
                continue  # not before it is whole: its first packets may pass in a burst
            packets, size = self._probe_sent[cluster]
            measured = _probe_bitrate(results, packets, size)
            if measured is None:
                continue
            del self._probes[cluster], self._probe_sent[cluster]
            self.probe_results[cluster] = measured
            usage = self._trendline.usage
            if usage is not BandwidthUsage.OVERUSING and measured > self._aimd.bitrate:
                self._aimd.set_estimate(measured, now)
                self._loss.bitrate = max(self._loss.bitrate, measured)

    def on_remb(self, bitrate: float) -> None:
        """The receiver's REMB value (bps): a cap, or the estimate without transport-cc."""
        self._remb = bitrate

    def on_rtt(self, rtt: float) -> None:
        self._aimd.rtt = rtt

    # -- outputs --------------------------------------------------------------------------

    def probe_allowed(self, now: float) -> bool:
        """Whether a probe now would tell something, and not hurt: not while queues drain
        after a cut, nor while the last loss window saw loss."""
        fraction = self._loss.fraction
        return (
            self._trendline.usage is BandwidthUsage.NORMAL
            and now - self._aimd.last_decrease >= _PROBE_QUIET_AFTER_DECREASE
            and now - self._loss.last_decrease >= _PROBE_QUIET_AFTER_DECREASE
            and (fraction is None or fraction < _LOSS_LOW)
        )

    @property
    def loss_fraction(self) -> float | None:
        """The loss fraction of the last complete loss window."""
        return self._loss.fraction

    @property
    def acknowledged_bitrate(self) -> float | None:
        """What the receiver acknowledged over the last half second (bps), if known."""
        return self._acked.bitrate()

    @property
    def delay_based_bitrate(self) -> float:
        return self._aimd.bitrate

    @property
    def loss_based_bitrate(self) -> float:
        return self._loss.bitrate

    @property
    def usage(self) -> BandwidthUsage:
        return self._trendline.usage

    @property
    def threshold(self) -> float:
        """The over-use detector's adaptive threshold (ms)."""
        return self._trendline.threshold

    @property
    def target_bitrate(self) -> float:
        """The estimate to share among the transport's consumers (bps)."""
        if not self._transport_cc_seen:
            return self._remb if self._remb is not None else self._aimd.bitrate
        estimate = min(self._aimd.bitrate, self._loss.bitrate)
        return estimate if self._remb is None else min(estimate, self._remb)


class Prober:
    """Bursts at a given total rate, to measure capacity above what media uses.

    :meth:`start` plans one cluster: for ``duration`` the transport sends at
    ``bitrate`` in all, media (tagged with :attr:`cluster` while
    :attr:`active`) plus the padding :meth:`due` returns -- but within
    ``max_span`` at most, so a step of a few kbps above the media is still a
    burst that measures something.  A probe that the
    link did not carry (:meth:`on_result` below 90 % of its rate) doubles the
    wait before the next one, from ``interval`` up to ``max_interval``: on a
    steady link probing costs little, and a capacity that returns is found
    within ``max_interval``.
    """

    def __init__(
        self,
        packet_size: int = 1200,
        duration: float = 0.03,
        interval: float = 1.0,
        max_interval: float = 4.0,
        max_span: float = 0.2,
    ) -> None:
        self.packet_size = packet_size
        self.duration = duration
        self.max_span = max_span
        self.base_interval = interval
        self.interval = interval
        self.max_interval = max_interval
        self.cluster = 0
        self.target = 0.0
        #: Packets in the current (or last) cluster.
        self.packets = 0
        self._remaining = 0
        self._spacing = 0.0
        self._next_send = 0.0
        self._last_start = -math.inf

    @property
    def active(self) -> bool:
        return self._remaining > 0

    def start(self, bitrate: float, now: float, media_bitrate: float = 0.0) -> bool:
        """Plan a cluster at ``bitrate`` if none runs and the wait since the last is over.

        The padding goes out at ``bitrate - media_bitrate``: for ``duration``, or as long
        as its least number of packets takes at that rate.
        """
        padding = bitrate - media_bitrate
        if self.active or now - self._last_start < self.interval or padding <= 0:
            return False
        packets = max(
            _PROBE_MIN_PACKETS + 1, math.ceil(padding * self.duration / (8 * self.packet_size))
        )
        self.cluster += 1
        self.target = bitrate
        self.packets = packets
        self._remaining = packets
        # A small step above the media would space the packets so far apart that the
        # cluster outlives what a measurement may span (``_PROBE_MAX_AGE``, and media sent
        # meanwhile is tagged with it): it is sent within ``max_span`` whatever the step,
        # faster than asked -- a link that carries more carries the step.
        rate = max(padding, (packets - 1) * self.packet_size * 8 / self.max_span)
        self._spacing = self.packet_size * 8 / rate
        self._next_send = now
        self._last_start = now
        return True

    def due(self, now: float) -> list[int]:
        """Sizes of the padding packets to send now."""
        sizes: list[int] = []
        while self._remaining and self._next_send <= now:
            sizes.append(self.packet_size)
            self._remaining -= 1
            self._next_send += self._spacing
        return sizes

    def on_result(self, measured: float) -> None:
        """The estimator's measurement of the last cluster."""
        if measured >= _PROBE_SUCCESS_RATIO * self.target:
            self.interval = self.base_interval
        else:
            self.interval = min(self.interval * 2, self.max_interval)
