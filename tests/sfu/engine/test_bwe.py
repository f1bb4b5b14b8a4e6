"""Congestion feedback toward sending browsers: transport-cc arrivals, the REMB estimate."""

from __future__ import annotations

from roomler.sfu.engine.bwe import RembEstimator, TransportCcRecorder
from roomler.sfu.rtcp import NOT_RECEIVED

# -- congestion feedback -----------------------------------------------------------


def test_transport_cc_recorder_reports_arrivals_relative_to_its_epoch() -> None:
    recorder = TransportCcRecorder(sender_ssrc=1, epoch=100.0)
    recorder.add(10, 100.010)
    recorder.add(12, 100.030)

    [feedback] = recorder.feedback(media_ssrc=77)

    assert feedback.media_ssrc == 77 and feedback.base_sequence == 10
    assert feedback.statuses[1] == NOT_RECEIVED
    arrivals = dict(feedback.arrivals())
    first, third = arrivals[10], arrivals[12]
    assert first is not None and third is not None
    assert third - first == 20_000  # µs
    assert recorder.feedback(media_ssrc=77) == []


def test_remb_estimate_grows_with_the_incoming_rate_unless_lossy() -> None:
    remb = RembEstimator(floor=300_000, ceiling=2_000_000)
    assert remb.estimate(100_000, 0.0) == 300_000
    assert remb.estimate(1_000_000, 0.0) == 1_500_000
    assert remb.estimate(1_000_000, 0.2) == 1_000_000
    assert remb.estimate(5_000_000, 0.0) == 2_000_000
