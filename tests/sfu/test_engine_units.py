"""The engine's sans-I/O helpers: NACK state, report counters, packet building, BWE."""

from __future__ import annotations

import pytest

from roomler.sfu.engine.bwe import RembEstimator, TransportCcRecorder
from roomler.sfu.engine.nack import NackGenerator, RetransmissionBuffer
from roomler.sfu.engine.rewrite import (
    RtpForward,
    build_rtp_packet,
    extension_block,
    header_template,
    one_byte_elements,
    template_key,
)
from roomler.sfu.engine.rtp_stats import CounterRate, RateMeter, ReceiveStats
from roomler.sfu.rtcp import NOT_RECEIVED, ntp_from_unix, ntp_middle_32
from roomler.sfu.rtp import RtpPacket, read_extensions, read_header

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


# -- packet building -------------------------------------------------------------


def _forward(**changes: object) -> RtpForward:
    values: dict[str, object] = {
        "first_byte": 0x80,
        "marker": True,
        "payload_type": 101,
        "sequence_number": 7,
        "timestamp": 9,
        "csrc": b"",
        "extensions": {},
        "body": b"payload",
        "keyframe": False,
        "cache": {},
    }
    values.update(changes)
    return RtpForward(**values)  # type: ignore[arg-type]


def test_built_packets_parse_back() -> None:
    block = extension_block([(1, b"0"), (5, b"\x00\x07")])
    data = build_rtp_packet(
        _forward(), payload_type=101, sequence_number=500, timestamp=42, ssrc=99, block=block
    )

    packet = RtpPacket.parse(data)
    assert (packet.payload_type, packet.sequence_number, packet.timestamp) == (101, 500, 42)
    assert packet.ssrc == 99 and packet.marker and packet.payload == b"payload"
    assert packet.extensions == {1: b"0", 5: b"\x00\x07"}
    assert packet.extension_profile == 0xBEDE


def test_extension_block_falls_back_to_the_two_byte_form() -> None:
    block = extension_block([(1, b"x" * 17), (20, b"y")])
    data = build_rtp_packet(
        _forward(), payload_type=96, sequence_number=1, timestamp=1, ssrc=1, block=block
    )

    assert block[:2] == b"\x10\x00" and len(block) % 4 == 0
    assert read_extensions(data, read_header(data)) == {1: b"x" * 17, 20: b"y"}
    assert extension_block([]) == b""


def test_padding_and_csrcs_of_the_original_survive() -> None:
    original = RtpPacket(payload_type=96, csrc=[1, 2], payload=b"abc", padding_size=5)
    raw = original.serialize()
    header = read_header(raw)
    forward = _forward(
        first_byte=raw[0],
        csrc=raw[12:20],
        body=raw[header.payload_start :],
    )

    rebuilt = RtpPacket.parse(
        build_rtp_packet(
            forward, payload_type=96, sequence_number=3, timestamp=4, ssrc=5, block=b""
        )
    )

    assert rebuilt.csrc == [1, 2] and rebuilt.payload == b"abc" and rebuilt.padding_size == 5


@pytest.mark.parametrize("twcc_id", [3, None])
@pytest.mark.parametrize("elements", [[(1, b"0"), (5, b"\x00\x07\x09")], [(2, b"ab")], []])
def test_header_templates_build_what_build_rtp_packet_builds(
    twcc_id: int | None, elements: list[tuple[int, bytes]]
) -> None:
    original = RtpPacket(payload_type=96, csrc=[7], payload=b"abc", padding_size=3)
    raw = original.serialize()
    forward = _forward(
        first_byte=raw[0], csrc=raw[12:16], body=raw[read_header(raw).payload_start :]
    )
    encoded = one_byte_elements(elements)
    assert encoded is not None
    template = header_template(forward, encoded, twcc_id)
    pack, first, second, middle, twcc = template

    values = (first, second, 1000, 5, 0xABCD, middle) + ((0x0102,) if twcc else ())
    built = pack(*values) + forward.body

    items = elements + ([(twcc_id, b"\x01\x02")] if twcc_id else [])
    expected = build_rtp_packet(
        forward, payload_type=101, sequence_number=1000, timestamp=5, ssrc=0xABCD,
        block=extension_block(items),
    )  # fmt: skip
    assert built == expected
    parsed = RtpPacket.parse(built)
    assert parsed.csrc == [7] and parsed.payload == b"abc" and parsed.padding_size == 3


def test_template_keys_name_equal_layouts_alike() -> None:
    first = template_key(((1, 2), b"\x100", 2, 3))
    assert template_key(((1, 2), b"\x100", 2, 3)) == first
    assert template_key(((1, 2), b"\x101", 2, 3)) != first


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
