"""Receiver statistics for RTCP reports and the rate meters, sans-I/O."""

from __future__ import annotations

import pytest

from roomler.sfu.engine.rtp_stats import CounterRate, RateMeter, ReceiveStats
from roomler.sfu.rtcp import ntp_from_unix, ntp_middle_32

# -- ReceiveStats ----------------------------------------------------------------


def test_receive_stats_loss_intervals_and_extended_sequence() -> None:
    stats = ReceiveStats(ssrc=5, clock_rate=90000)
    for seq in (65534, 65535, 2, 3):  # 0 and 1 lost, across the wrap
        stats.update(seq, 0, 100, 0.0, jitter=False)

    block = stats.report_block(0.0)
    assert block.ssrc == 5
    assert block.highest_sequence == (1 << 16) | 3
    assert block.packets_lost == 2
    assert block.fraction_lost == 2 * 256 // 6
    stats.update(4, 0, 100, 0.0, jitter=False)
    assert stats.report_block(0.0).fraction_lost == 0  # nothing lost since


def test_receive_stats_jitter_and_sender_report_echo() -> None:
    stats = ReceiveStats(ssrc=1, clock_rate=90000)
    for index in range(20):  # perfectly paced: 30 fps, 3000 ticks apart
        stats.update(index, index * 3000, 100, index / 30, jitter=True)
    assert stats.jitter == 0
    stats.update(20, 20 * 3000, 100, 20 / 30 + 0.1, jitter=True)  # 100 ms late
    assert stats.jitter == 9000 // 16

    ntp = ntp_from_unix(1_700_000_000.0)
    stats.on_sender_report(ntp, 1234, now=10.0)
    block = stats.report_block(10.5)
    assert block.lsr == ntp_middle_32(ntp)
    assert block.dlsr == 65536 // 2


def test_rate_meter_counts_the_last_window() -> None:
    meter = RateMeter(window=1.0, buckets=10)
    for tick in range(10):
        meter.add(1000, tick * 0.1)
    assert meter.rate(0.95) == 80_000
    assert meter.rate(1.45) == 40_000  # half the window has rolled off
    assert meter.rate(5.0) == 0


@pytest.mark.parametrize("period", [0.05, 0.5, 1.3])
def test_counter_rate_is_right_whatever_the_sampling_period(period: float) -> None:
    rate = CounterRate(window=1.0)
    assert rate.rate(0, 0.0) == 0
    total, now = 0, 0.0
    while now < 5:  # 125 kB/s = 1 Mbit/s
        rate.sample(total, now)
        now += period
        total = int(now * 125_000)
    assert rate.rate(total, now) == pytest.approx(1_000_000, rel=0.01)
    # Nothing more arrives: the rate falls to zero once the window has passed.
    rate.sample(total, now)
    assert rate.rate(total, now + 3 * period + 1.0) == pytest.approx(0, abs=1)
