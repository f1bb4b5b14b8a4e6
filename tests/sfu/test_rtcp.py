from __future__ import annotations

import random
import struct

import pytest

from roomler.sfu.rtcp import (
    Bye,
    Fir,
    GenericNack,
    Pli,
    RawRtcp,
    ReceiverReport,
    Remb,
    ReportBlock,
    Sdes,
    SdesChunk,
    SenderReport,
    TransportFeedback,
    TransportFeedbackBuilder,
    ntp_from_unix,
    ntp_middle_32,
    ntp_to_unix,
    parse_rtcp,
    round_trip_time,
    serialize_rtcp,
)

SENDER = 0x11223344
MEDIA = 0x55667788


def header(count: int, packet_type: int, words: int, padding: bool = False) -> bytes:
    """The RTCP common header of RFC 3550 section 6.4.1, by hand."""
    return bytes([0x80 | (0x20 if padding else 0) | count, packet_type]) + struct.pack("!H", words)


# -- hand-built packets from the RFC bit diagrams ------------------------------


def test_remb_from_bytes() -> None:
    # draft-alvestrand-rmcat-remb-03 2.2: 'REMB', num ssrc 1, exp 3, mantissa 250000.
    data = (
        header(15, 206, 5)
        + struct.pack("!II", SENDER, 0)
        + b"REMB"
        + bytes([0x01, (3 << 2) | (250000 >> 16)])
        + struct.pack("!H", 250000 & 0xFFFF)
        + struct.pack("!I", MEDIA)
    )
    [remb] = parse_rtcp(data)
    assert remb == Remb(SENDER, 2_000_000, [MEDIA])
    assert remb.serialize() == data


def test_remb_bitrate_is_rounded_down_to_mantissa_precision() -> None:
    remb = Remb(SENDER, 123_456_789, [1, 2])
    [parsed] = parse_rtcp(remb.serialize())
    assert isinstance(parsed, Remb)
    assert parsed.bitrate <= 123_456_789
    assert parsed.bitrate > 123_456_789 * (1 - 2**-17)
    assert parsed.ssrcs == [1, 2]


def test_nack_with_blp_from_bytes() -> None:
    # RFC 4585 6.2.1: PID 100, BLP bits 0 and 2 => 100, 101, 103 lost.
    data = header(1, 205, 3) + struct.pack("!IIHH", SENDER, MEDIA, 100, 0b101)
    [nack] = parse_rtcp(data)
    assert nack == GenericNack(SENDER, MEDIA, [100, 101, 103])
    assert nack.serialize() == data


def test_nack_build_groups_and_wraps() -> None:
    nack = GenericNack(SENDER, MEDIA, [65534, 65535, 0, 14, 15, 40])
    data = nack.serialize()
    fci = data[12:]
    items = [struct.unpack_from("!HH", fci, i) for i in range(0, len(fci), 4)]
    # 65534 + 1, +2, +16 fit one item; 15 is 17 after 65534 and 40 is far.
    assert items == [(65534, 0b1000000000000011), (15, 0), (40, 0)]
    [parsed] = parse_rtcp(data)
    assert isinstance(parsed, GenericNack)
    assert sorted(parsed.lost) == sorted([65534, 65535, 0, 14, 15, 40])


def test_twcc_two_bit_status_vector_from_bytes() -> None:
    # draft-holmer-...-01 3.1: base 100, 5 statuses, reference 0x000102, fb count 7.
    # Chunk T=1 S=1: symbols 1 0 2 1 1 (0 0 unused) = 11 01 00 10 01 01 00 00.
    deltas = bytes([4]) + struct.pack("!h", -4) + bytes([255, 0])
    body = struct.pack("!IIHH", SENDER, MEDIA, 100, 5) + bytes([0x00, 0x01, 0x02, 7])
    body += struct.pack("!H", 0b1101001001010000) + deltas
    assert len(body) == 23
    data = header(15, 205, 6, padding=True) + body + b"\x01"
    [feedback] = parse_rtcp(data)
    assert isinstance(feedback, TransportFeedback)
    assert feedback.base_sequence == 100
    assert feedback.reference_time == 0x102
    assert feedback.feedback_count == 7
    assert feedback.statuses == [1, 0, 2, 1, 1]
    assert feedback.deltas == [4, -4, 255, 0]
    base = 0x102 * 64_000
    assert feedback.arrivals() == [
        (100, base + 1000),
        (101, None),
        (102, base),
        (103, base + 63_750),
        (104, base + 63_750),
    ]
    assert feedback.serialize() == data


def test_twcc_run_length_and_one_bit_chunks_from_bytes() -> None:
    # 20 received small deltas as one run length chunk (T=0 S=01 run 20), then a
    # one-bit status vector chunk (T=1 S=0) 01010101010101.
    statuses = [1] * 20 + [0, 1] * 7
    chunks = struct.pack("!HH", 0x2014, 0x9555)
    deltas = bytes(range(27))
    body = struct.pack("!IIHH", SENDER, MEDIA, 65530, 34) + bytes([0, 0, 1, 0]) + chunks + deltas
    data = header(15, 205, (len(body) + 1) // 4, padding=True) + body + b"\x01"
    [feedback] = parse_rtcp(data)
    assert isinstance(feedback, TransportFeedback)
    assert feedback.statuses == statuses
    assert feedback.deltas == list(range(27))
    assert [seq for seq, _ in feedback.arrivals()][5:7] == [65535, 0]
    assert feedback.serialize() == data


def test_twcc_rejects_reserved_status_and_short_deltas() -> None:
    # Run length chunk T=0 S=11 (reserved) run 3, then 2 bytes of zero padding.
    body = struct.pack("!IIHH", SENDER, MEDIA, 1, 3) + bytes(4) + struct.pack("!HH", 0x6003, 0)
    with pytest.raises(ValueError, match="reserved packet status"):
        parse_rtcp(header(15, 205, len(body) // 4) + body)
    body = struct.pack("!IIHH", SENDER, MEDIA, 1, 3) + bytes(4) + struct.pack("!HH", 0x2003, 0)
    with pytest.raises(ValueError, match="receive delta is truncated"):
        parse_rtcp(header(15, 205, len(body) // 4) + body)


def test_sender_report_from_bytes() -> None:
    ntp = ntp_from_unix(1_700_000_000.25)
    block = struct.pack("!IIIIII", MEDIA, (64 << 24) | 0xFFFFFE, 70000, 33, 0xAABBCCDD, 0x10000)
    data = header(1, 200, 12) + struct.pack("!IQIII", SENDER, ntp, 90000, 10, 1200) + block
    [sr] = parse_rtcp(data)
    assert sr == SenderReport(
        SENDER, ntp, 90000, 10, 1200, [ReportBlock(MEDIA, 64, -2, 70000, 33, 0xAABBCCDD, 0x10000)]
    )
    assert sr.serialize() == data


def test_chrome_like_compound_rr_sdes_and_unknown_xr() -> None:
    rr = header(0, 201, 1) + struct.pack("!I", SENDER)
    cname = b"abcdEFGH1234"
    # SDES chunk: SSRC, CNAME item (type 1, length 12), null octet, pad to 32 bits.
    sdes = header(1, 202, 5) + struct.pack("!I", SENDER) + bytes([1, 12]) + cname + bytes(2)
    xr = header(0, 207, 2) + struct.pack("!I", SENDER) + bytes([4, 0, 0, 2])
    packets = parse_rtcp(rr + sdes + xr)
    assert packets[0] == ReceiverReport(SENDER, [])
    assert isinstance(packets[1], Sdes)
    assert packets[1].chunks[0].cname == "abcdEFGH1234"
    assert packets[2] == RawRtcp(207, 0, struct.pack("!I", SENDER) + bytes([4, 0, 0, 2]))
    assert serialize_rtcp(packets) == rr + sdes + xr


def test_pli_and_fir_from_bytes() -> None:
    pli = header(1, 206, 2) + struct.pack("!II", SENDER, MEDIA)
    fir = header(4, 206, 4) + struct.pack("!II", SENDER, 0) + struct.pack("!IB3x", MEDIA, 9)
    packets = parse_rtcp(pli + fir)
    assert packets == [Pli(SENDER, MEDIA), Fir(SENDER, [(MEDIA, 9)])]
    assert serialize_rtcp(packets) == pli + fir


def test_bye_with_reason_round_trip() -> None:
    bye = Bye([1, 2], b"left")
    data = bye.serialize()
    assert data[:4] == header(2, 203, 4)
    assert data[12:] == b"\x04left\x00\x00\x00"
    assert parse_rtcp(data) == [bye]


def test_other_feedback_formats_are_raw() -> None:
    sli = header(2, 206, 3) + struct.pack("!III", SENDER, MEDIA, 0x12345678)
    afb = header(15, 206, 3) + struct.pack("!II", SENDER, 0) + b"XYZW"
    assert [type(p) for p in parse_rtcp(sli + afb)] == [RawRtcp, RawRtcp]


def test_sdes_round_trip_with_several_items() -> None:
    sdes = Sdes([SdesChunk(1, [(1, b"cname"), (6, b"tool")]), SdesChunk(2, [(1, b"x" * 3)])])
    assert parse_rtcp(sdes.serialize()) == [sdes]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x80\xc8\x00", "less than 4 bytes"),
        (b"\x40\xc8\x00\x00", "invalid version"),
        (b"\x80\xc8\x00\x06" + bytes(8), "truncated"),
        (b"\xa0\xc9\x00\x01" + bytes(4), "invalid padding"),
        (b"\x81\xc9\x00\x01" + bytes(4), "RR report block is truncated"),
        (b"\x81\xcd\x00\x02" + bytes(8), "invalid FCI length"),
        (b"\x81\xca\x00\x02" + bytes(4) + b"\x01\x05ab", "SDES item is truncated"),
        (b"\x8f\xce\x00\x04" + bytes(8) + b"REMB" + b"\x02\x00\x00\x00", "REMB SSRC list"),
    ],
)
def test_malformed_packets_raise_precise_errors(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rtcp(data)


def test_random_bytes_only_raise_value_error() -> None:
    rng = random.Random(99)
    valid = serialize_rtcp(
        [
            SenderReport(SENDER, 1, 2, 3, 4, [ReportBlock(MEDIA)]),
            Sdes([SdesChunk(SENDER, [(1, b"cname")])]),
            GenericNack(SENDER, MEDIA, [1, 5]),
            Remb(SENDER, 1_000_000, [MEDIA]),
            TransportFeedback(SENDER, MEDIA, 5, 1, 0, [1, 0, 2], [3, -300]),
        ]
    )
    for i in range(5000):
        if i % 2:
            data = bytearray(valid)
            for _ in range(rng.randrange(1, 5)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        else:
            data = bytearray(bytes([0x80 | rng.randrange(64), rng.randrange(192, 210)]))
            data += rng.randbytes(rng.randrange(60))
        try:
            parse_rtcp(bytes(data))
        except ValueError:
            pass


# -- the TWCC feedback builder -------------------------------------------------


def _reported(packets: list[TransportFeedback]) -> dict[int, int | None]:
    """Parse what the builder sent, as a receiver (Chrome) would."""
    result: dict[int, int | None] = {}
    wire = serialize_rtcp(packets)
    for packet in parse_rtcp(wire):
        assert isinstance(packet, TransportFeedback)
        result.update(packet.arrivals())
    return result


def test_builder_reports_arrivals_and_losses_across_wraparound() -> None:
    builder = TransportFeedbackBuilder(SENDER, MEDIA)
    arrivals = {65533: 1_000_000, 65534: 1_003_100, 0: 1_004_000, 1: 1_200_000, 3: 1_150_000}
    for seq, at in arrivals.items():
        builder.add(seq, at)
    builder.add(0, 1_999_999)  # duplicate: first arrival wins
    reported = _reported(builder.build())
    assert reported[65535] is None and reported[2] is None
    origin = reported[65533]
    assert origin is not None
    for seq, at in arrivals.items():
        got = reported[seq]
        assert got is not None
        # Quantized to 250 µs without drift: every time is within one tick.
        assert abs((got - origin) - (at - 1_000_000)) <= 125


def test_builder_continues_from_last_report_and_counts_feedback() -> None:
    builder = TransportFeedbackBuilder(SENDER)
    builder.add(10, 5_000)
    first = builder.build()
    builder.add(13, 9_000)
    builder.add(9, 9_500)  # already reported as lost or received: ignored
    second = builder.build()
    assert [p.feedback_count for p in first + second] == [0, 1]
    assert second[0].base_sequence == 11
    assert second[0].statuses == [0, 0, 1]
    assert builder.build() == []


def test_builder_splits_on_delta_overflow_and_size() -> None:
    builder = TransportFeedbackBuilder(SENDER, max_packet_size=100)
    builder.add(0, 0)
    builder.add(1, 10_000_000)  # 10 s later: more than a 16-bit delta
    for seq in range(2, 300):
        builder.add(seq, 10_000_000 + seq * 1000)
    packets = builder.build()
    assert len(packets) > 2
    assert all(len(p.serialize()) <= 100 + 8 for p in packets)
    reported = _reported(packets)
    assert sorted(reported) == list(range(300))
    assert all(at is not None for at in reported.values())


# -- NTP -------------------------------------------------------------------------


def test_ntp_helpers_and_rtt() -> None:
    assert ntp_from_unix(0) == 2_208_988_800 << 32
    ntp = ntp_from_unix(1_700_000_000.5)
    assert ntp & 0xFFFFFFFF == 1 << 31
    assert ntp_to_unix(ntp) == 1_700_000_000.5
    assert ntp_middle_32(0x0123456789ABCDEF) == 0x456789AB
    # SR sent at t, answered after 0.25 s, arriving at t + 0.35 s: RTT 0.1 s.
    lsr = ntp_middle_32(ntp_from_unix(1000.0))
    rtt = round_trip_time(ntp_from_unix(1000.35), lsr, int(0.25 * 65536))
    assert rtt == pytest.approx(0.1, abs=1e-4)
    with pytest.raises(ValueError):
        round_trip_time(ntp, 0, 0)
