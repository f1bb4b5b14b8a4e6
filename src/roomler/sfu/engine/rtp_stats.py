"""Counters behind the RTCP reports and the stats the engine exposes, sans-I/O.

- :class:`ReceiveStats` -- one incoming SSRC: extended highest sequence number,
  cumulative and interval loss (RFC 3550 appendix A.3), interarrival jitter
  (appendix A.8) and the last Sender Report (for LSR/DLSR, section 6.4.1).
- :class:`RateMeter` -- bits per second over the last second, fed per packet.
- :class:`CounterRate` -- bits per second of a byte counter sampled at any cadence.
"""

from __future__ import annotations

from collections import deque

from roomler.sfu.rtcp import ReportBlock, ntp_middle_32

__all__ = ["CounterRate", "RateMeter", "ReceiveStats", "score_from_loss"]


def score_from_loss(fraction_lost: int) -> int:
    """A stream's quality 0..10 (mediasoup's score range) from an RTCP fraction lost
    (x/256): 10 without loss, one point less per 2 % lost, 0 from 20 %."""
    return max(0, 10 - round(fraction_lost * 100 / 256 / 2))


class ReceiveStats:
    """Reception statistics of one SSRC, for Receiver Report blocks."""

    __slots__ = (
        "_base",
        "_expected_prior",
        "_highest",
        "_jitter",
        "_received_prior",
        "_transit",
        "bytes",
        "clock_rate",
        "last_fraction_lost",
        "last_sr_ntp",
        "last_sr_rtp",
        "last_sr_time",
        "packets",
        "ssrc",
    )

    def __init__(self, ssrc: int, clock_rate: int) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.packets = 0
        self.bytes = 0
        self._base: int | None = None
        self._highest = 0
        self._expected_prior = 0
        self._received_prior = 0
        self._jitter = 0.0
        self._transit: float | None = None
        self.last_sr_ntp = 0
        self.last_sr_rtp = 0
        self.last_sr_time: float | None = None
        #: Fraction lost (x/256) of the last report block made (RFC 3550 A.3).
        self.last_fraction_lost = 0

    def update(self, seq: int, timestamp: int, size: int, now: float, *, jitter: bool) -> None:
        """Count one (non-duplicate) packet; ``jitter`` False for retransmissions."""
        self.packets += 1
        self.bytes += size
        if self._base is None:
            self._base = self._highest = seq
        else:
            delta = ((seq - self._highest + 0x8000) & 0xFFFF) - 0x8000
            if delta > 0:
                self._highest += delta
        if jitter:
            self._update_jitter(timestamp, now)

    def _update_jitter(self, timestamp: int, now: float) -> None:
        # RFC 3550 appendix A.8, in timestamp units; wrap-safe on 32 bits.
        transit = now * self.clock_rate - timestamp
        previous = self._transit
        self._transit = transit
        if previous is None:
            return
        d = (transit - previous) % (1 << 32)
        if d >= 1 << 31:
            d = (1 << 32) - d
        self._jitter += (d - self._jitter) / 16

    @property
    def expected(self) -> int:
        return 0 if self._base is None else self._highest - self._base + 1

    @property
    def lost(self) -> int:
        """Cumulative number of packets lost (negative with duplicates), RFC 3550 A.3."""
        return self.expected - self.packets

    @property
    def jitter(self) -> int:
        return int(self._jitter)

    @property
    def highest_sequence(self) -> int:
        """Extended highest sequence number received (cycles << 16 | seq)."""
        return self._highest & 0xFFFFFFFF

    def on_sender_report(self, ntp: int, rtp_timestamp: int, now: float) -> None:
        self.last_sr_ntp = ntp
        self.last_sr_rtp = rtp_timestamp
        self.last_sr_time = now

    def report_block(self, now: float) -> ReportBlock:
        """The reception report for this SSRC; starts a new loss interval (A.3)."""
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self.packets - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.packets
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min((lost_interval << 8) // expected_interval, 255)
        self.last_fraction_lost = fraction
        lsr = dlsr = 0
        if self.last_sr_time is not None:
            lsr = ntp_middle_32(self.last_sr_ntp)
            dlsr = int((now - self.last_sr_time) * 65536) & 0xFFFFFFFF
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            packets_lost=self.lost,
            highest_sequence=self.highest_sequence,
            jitter=self.jitter,
            lsr=lsr,
            dlsr=dlsr,
        )


class RateMeter:
    """Bits per second over a sliding window, kept in ``buckets`` time slots."""

    __slots__ = ("_buckets", "_newest", "_step", "_window")

    def __init__(self, window: float = 1.0, buckets: int = 10) -> None:
        self._window = window
        self._step = window / buckets
        self._buckets = [0] * buckets
        self._newest: int | None = None

    def _advance(self, now: float) -> int:
        index = int(now / self._step)
        newest = self._newest
        if newest is None or index - newest >= len(self._buckets):
            self._buckets = [0] * len(self._buckets)
        elif index > newest:
            for stale in range(newest + 1, index + 1):
                self._buckets[stale % len(self._buckets)] = 0
        if newest is None or index > newest:
            self._newest = index
        return index

    def add(self, size: int, now: float) -> None:
        index = self._advance(now)
        self._buckets[index % len(self._buckets)] += size

    def rate(self, now: float) -> int:
        self._advance(now)
        return int(sum(self._buckets) * 8 / self._window)


class CounterRate:
    """Bits per second of a growing byte counter, from samples taken when convenient.

    :meth:`rate` averages since the newest sample at least ``window`` old (or
    the oldest one kept): sampling once a second is as good as ten times,
    which lets a transport with nothing else to do tick once a second.
    """

    __slots__ = ("_samples", "_window")

    def __init__(self, window: float = 1.0) -> None:
        self._window = window
        self._samples: deque[tuple[float, int]] = deque()

    def sample(self, total: int, now: float) -> None:
        samples = self._samples
        samples.append((now, total))
        # Keep a single sample older than the window: the base of the next rate.
        while len(samples) > 2 and samples[1][0] <= now - self._window:
            samples.popleft()

    def rate(self, total: int, now: float) -> int:
        start = now - self._window
        base: tuple[float, int] | None = None
        for sample in self._samples:
            if base is not None and sample[0] > start:
                break
            base = sample
        if base is None or now <= base[0]:
            return 0
        return int((total - base[1]) * 8 / (now - base[0]))
