"""NackGenerator (receive side) and RetransmissionBuffer (send side), sans-I/O."""

from __future__ import annotations

import pytest

from roomler.sfu.engine.nack import MIN_RESEND_INTERVAL, NackGenerator, RetransmissionBuffer

# -- NackGenerator -------------------------------------------------------------


def test_nack_generator_reports_gaps_once_per_retry_interval() -> None:
    nack = NackGenerator(retry_interval=0.1)
    for seq in (10, 11, 14):
        assert nack.receive(seq, 0.0)

    assert nack.due(0.0) == [12, 13]
    assert nack.due(0.05) == []  # too soon to ask again
    assert nack.due(0.11) == [12, 13]
    assert nack.receive(12, 0.12)  # repaired: forwarded
    assert nack.due(0.3) == [13]


def test_nack_generator_drops_duplicates_and_stale_packets() -> None:
    nack = NackGenerator()
    assert nack.receive(100, 0.0)
    assert not nack.receive(100, 0.0)  # duplicate
    assert nack.receive(102, 0.0)
    assert not nack.receive(99, 0.0)  # older than anything awaited
    assert nack.receive(101, 0.0)  # was missing
    assert not nack.receive(101, 0.0)  # and now a duplicate


def test_nack_generator_follows_sequence_wraparound() -> None:
    nack = NackGenerator()
    nack.receive(65534, 0.0)
    nack.receive(1, 0.0)

    assert nack.due(0.0) == [65535, 0]  # in sending order across the wrap
    assert nack.missing_count == 2


def test_nack_generator_gives_up_and_asks_for_a_keyframe() -> None:
    nack = NackGenerator(max_age=0.5, max_retries=3, max_missing=50)
    nack.receive(1, 0.0)
    nack.receive(3, 0.0)
    assert nack.due(0.0) == [2]
    assert nack.due(0.6) == []  # too old now
    assert nack.keyframe_needed

    jump = NackGenerator(max_missing=50)
    jump.receive(1, 0.0)
    jump.receive(200, 0.0)  # a gap too large to repair
    assert jump.missing_count == 0 and jump.keyframe_needed


# -- RetransmissionBuffer --------------------------------------------------------


def test_retransmission_buffer_returns_recent_packets_only() -> None:
    buffer = RetransmissionBuffer(size=4, max_age=1.0)
    for seq in range(10):
        buffer.store(seq, bytes([seq]), now=seq * 0.1)

    assert buffer.get(9, 1.0) == b"\x09"
    assert buffer.get(5, 1.0) is None  # overwritten by 9 (slot 1)
    assert buffer.get(9, 1.01) is None  # just resent
    assert buffer.get(9, 1.1) == b"\x09"
    assert buffer.get(6, 2.0) is None  # too old
    with pytest.raises(ValueError, match="at least 1"):
        RetransmissionBuffer(size=0, max_age=1.0)


def test_a_packet_is_resent_at_most_once_per_round_trip() -> None:
    """Behind a long queue the receiver NACKs again before the first copy can arrive: the
    caller's round trip, not the short minimum, spaces the copies of one packet."""
    buffer = RetransmissionBuffer(size=8, max_age=5.0)
    buffer.store(1, b"one", 0.0)
    assert buffer.get(1, 0.1, resend_interval=0.8) == b"one"
    assert buffer.get(1, 0.5, resend_interval=0.8) is None
    assert buffer.get(1, 0.95, resend_interval=0.8) == b"one"
    # Without a known round trip, the minimum interval still applies.
    buffer.store(2, b"two", 1.0)
    assert buffer.get(2, 1.0) == b"two"
    assert buffer.get(2, 1.0 + MIN_RESEND_INTERVAL / 2) is None
    # peek() hands out a copy to probe with and does not count as a resend.
    buffer.store(3, b"three", 2.0)
    assert buffer.peek(3) == b"three" and buffer.peek(4) is None
    assert buffer.get(3, 2.0) == b"three"
