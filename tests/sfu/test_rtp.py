from __future__ import annotations

import random
import struct

import pytest

from roomler.sfu.rtp import (
    ONE_BYTE_PROFILE,
    RtpPacket,
    decode_abs_send_time,
    encode_abs_send_time,
    get_extension,
    is_keyframe,
    read_extensions,
    read_header,
    set_extension,
    unwrap_rtx,
    wrap_rtx,
    write_transport_sequence_number,
)

# Chrome's video header extension ids (tests/sfu/fixtures/chrome_produce_video.json):
# abs-send-time 2, transport-wide-cc 3, mid 4.
ABS_SEND_TIME_ID = 2
TWCC_ID = 3
MID_ID = 4

# A VP8 keyframe start: descriptor X=1 S=1 PID=0, I=1, 15-bit PictureID 0x0101,
# then the VP8 payload header (P=0) and the keyframe start code 9d 01 2a.
VP8_KEYFRAME = bytes([0x90, 0x80, 0x81, 0x01, 0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A]) + bytes(20)


def chrome_packet(payload: bytes = VP8_KEYFRAME) -> bytes:
    """An RTP packet laid out by hand from RFC 3550 5.1 and RFC 8285 4.2."""
    fixed = bytes([0x90, 0x80 | 96]) + struct.pack("!HII", 0x1234, 0xDEADBEEF, 0x01020304)
    elements = (
        bytes([(MID_ID << 4) | 0]) + b"1"  # mid "1", 1 byte
        + bytes([(ABS_SEND_TIME_ID << 4) | 2]) + b"\x12\x34\x56"  # 3 bytes
        + bytes([(TWCC_ID << 4) | 1]) + b"\x00\x2a"  # seq 42, 2 bytes
    )  # fmt: skip
    assert len(elements) == 9
    block = struct.pack("!HH", 0xBEDE, 3) + elements + bytes(3)
    return fixed + block + payload


def test_chrome_packet_header_fields() -> None:
    data = chrome_packet()
    header = read_header(data)
    assert header.marker is True
    assert header.payload_type == 96
    assert header.sequence_number == 0x1234
    assert header.timestamp == 0xDEADBEEF
    assert header.ssrc == 0x01020304
    assert header.extension_profile == ONE_BYTE_PROFILE
    assert (header.extensions_start, header.extensions_end) == (16, 28)
    assert header.payload_start == 28
    assert header.payload_end == len(data)


def test_chrome_packet_extension_values() -> None:
    data = chrome_packet()
    header = read_header(data)
    assert get_extension(data, header, MID_ID) == b"1"
    assert get_extension(data, header, TWCC_ID) == b"\x00\x2a"
    assert decode_abs_send_time(get_extension(data, header, ABS_SEND_TIME_ID) or b"") == 0x123456
    assert get_extension(data, header, 9) is None
    assert read_extensions(data, header) == {4: b"1", 2: b"\x12\x34\x56", 3: b"\x00\x2a"}


def test_chrome_packet_full_parse_and_serialize_is_byte_identical() -> None:
    data = chrome_packet()
    packet = RtpPacket.parse(data)
    assert packet.payload == VP8_KEYFRAME
    assert packet.extensions[MID_ID] == b"1"
    assert packet.csrc == []
    assert packet.padding_size == 0
    assert packet.serialize() == data


def test_two_byte_extensions_rfc8285_section_4_3() -> None:
    fixed = bytes([0x90, 111]) + struct.pack("!HII", 7, 960, 0xCAFE)
    # id 20 with an empty value (allowed in this form), a padding byte, id 1 with 3 bytes.
    elements = bytes([20, 0]) + b"\x00" + bytes([1, 3]) + b"abc"
    block = struct.pack("!HH", 0x1000, 2) + elements + bytes(0)
    data = fixed + block + b"opus"
    header = read_header(data)
    assert read_extensions(data, header) == {20: b"", 1: b"abc"}
    packet = RtpPacket.parse(data)
    assert packet.extension_profile == 0x1000
    assert packet.payload == b"opus"
    again = RtpPacket.parse(packet.serialize())
    assert again.extensions == {20: b"", 1: b"abc"}


def test_one_byte_id_15_stops_parsing() -> None:
    fixed = bytes([0x90, 96]) + struct.pack("!HII", 1, 2, 3)
    elements = bytes([0x10]) + b"A" + bytes([0xF0]) + bytes([0x20]) + b"B"
    data = fixed + struct.pack("!HH", 0xBEDE, 2) + elements + bytes(3) + b"x"
    assert read_extensions(data, read_header(data)) == {1: b"A"}


def test_padding_and_csrcs() -> None:
    # V=2 P=1 X=0 CC=2; 4 bytes of padding whose last octet is the count.
    fixed = bytes([0xA2, 0]) + struct.pack("!HII", 65535, 1, 2)
    data = fixed + struct.pack("!II", 0x11, 0x22) + b"hello" + b"\x00\x00\x00\x04"
    packet = RtpPacket.parse(data)
    assert packet.csrc == [0x11, 0x22]
    assert packet.payload == b"hello"
    assert packet.padding_size == 4
    assert packet.serialize() == data
    header = read_header(data)
    assert data[header.payload_start : header.payload_end] == b"hello"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x60" + bytes(9), "less than 12 bytes"),
        (b"\x40\x60" + bytes(10), "invalid version"),
        (b"\x81\x60" + bytes(10), "truncated CSRC"),
        (b"\x90\x60" + bytes(10) + b"\xbe\xde", "truncated extension header"),
        (b"\x90\x60" + bytes(10) + b"\xbe\xde\x00\x02" + bytes(4), "truncated extension"),
        (b"\xa0\x60" + bytes(10) + b"ab\x00", "invalid padding"),
        (b"\xa0\x60" + bytes(10) + b"ab\x09", "invalid padding"),
    ],
)
def test_malformed_headers_raise_precise_errors(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RtpPacket.parse(data)


def test_truncated_one_byte_element_raises() -> None:
    fixed = bytes([0x90, 96]) + struct.pack("!HII", 1, 2, 3)
    data = fixed + struct.pack("!HH", 0xBEDE, 1) + bytes([0x1F, 1, 2, 3])
    with pytest.raises(ValueError, match="extension 1 is truncated"):
        read_extensions(data, read_header(data))


def test_serialize_picks_two_byte_form_for_large_ids() -> None:
    packet = RtpPacket(payload_type=96, extensions={1: b"a", 15: b"b"}, payload=b"p")
    data = packet.serialize()
    assert data[12:14] == b"\x10\x00"
    assert RtpPacket.parse(data).extensions == {1: b"a", 15: b"b"}


def test_random_packets_round_trip() -> None:
    rng = random.Random(7)
    for _ in range(300):
        packet = RtpPacket(
            payload_type=rng.randrange(128),
            sequence_number=rng.randrange(1 << 16),
            timestamp=rng.randrange(1 << 32),
            ssrc=rng.randrange(1 << 32),
            marker=rng.random() < 0.5,
            csrc=[rng.randrange(1 << 32) for _ in range(rng.randrange(4))],
            extensions={
                rng.randrange(1, 30): rng.randbytes(rng.randrange(1, 17))
                for _ in range(rng.randrange(4))
            },
            payload=rng.randbytes(rng.randrange(50)),
            padding_size=rng.choice([0, 1, 4, 255]),
        )
        parsed = RtpPacket.parse(packet.serialize())
        parsed.extension_profile = None
        assert parsed == packet


# -- setting one element ---------------------------------------------------------


def test_transport_cc_goes_into_a_padding_gap_between_elements() -> None:
    data = bytearray(chrome_packet())
    data[18:22] = bytes(4)  # abs-send-time (4 bytes at offset 18) is now padding
    out = write_transport_sequence_number(bytes(data), read_header(data), 6, 65537)
    assert len(out) == len(data)
    header = read_header(out)
    assert read_extensions(out, header) == {MID_ID: b"1", 6: b"\x00\x01", TWCC_ID: b"\x00\x2a"}
    assert out[header.payload_start :] == VP8_KEYFRAME


def test_transport_cc_overwrites_existing_element() -> None:
    data = chrome_packet()
    out = write_transport_sequence_number(data, read_header(data), TWCC_ID, 0xBEEF)
    assert len(out) == len(data)
    assert get_extension(out, read_header(out), TWCC_ID) == b"\xbe\xef"


def test_transport_cc_inserted_into_packet_without_extensions() -> None:
    data = RtpPacket(payload_type=111, sequence_number=9, payload=b"audio").serialize()
    out = write_transport_sequence_number(data, read_header(data), TWCC_ID, 300)
    header = read_header(out)
    assert len(out) == len(data) + 8  # 4-byte block header, 3-byte element, 1 pad
    assert get_extension(out, header, TWCC_ID) == (300).to_bytes(2, "big")
    assert out[header.payload_start :] == b"audio"
    assert header.sequence_number == 9


def test_set_extension_grows_block_when_no_gap() -> None:
    data = chrome_packet()
    out = set_extension(data, read_header(data), 7, b"\x01\x02\x03\x04")
    header = read_header(out)
    assert read_extensions(out, header)[7] == b"\x01\x02\x03\x04"
    assert read_extensions(out, header)[MID_ID] == b"1"
    assert out[header.payload_start :] == VP8_KEYFRAME


def test_abs_send_time_encoding() -> None:
    value = encode_abs_send_time(1.5)
    assert value == (3 << 17).to_bytes(3, "big")
    assert decode_abs_send_time(value) / (1 << 18) == 1.5
    assert encode_abs_send_time(64.0) == b"\x00\x00\x00"  # wraps every 64 s
    with pytest.raises(ValueError):
        decode_abs_send_time(b"\x01\x02")


# -- RTX (RFC 4588) ------------------------------------------------------------


def test_rtx_wrap_puts_osn_first_and_unwrap_restores() -> None:
    data = chrome_packet()
    rtx = wrap_rtx(data, read_header(data), ssrc=0x5555, payload_type=97, sequence_number=3)
    header = read_header(rtx)
    assert (header.ssrc, header.payload_type, header.sequence_number) == (0x5555, 97, 3)
    assert header.timestamp == 0xDEADBEEF
    assert rtx[header.payload_start : header.payload_start + 2] == b"\x12\x34"
    assert rtx[header.payload_start + 2 :] == VP8_KEYFRAME
    original = unwrap_rtx(rtx, header, ssrc=0x01020304, payload_type=96)
    assert original == data


def test_rtx_wrap_drops_padding() -> None:
    packet = RtpPacket(payload_type=96, sequence_number=10, payload=b"xy", padding_size=6)
    data = packet.serialize()
    rtx = wrap_rtx(data, read_header(data), ssrc=1, payload_type=97, sequence_number=1)
    assert RtpPacket.parse(rtx).payload == b"\x00\x0axy"
    assert RtpPacket.parse(rtx).padding_size == 0


def test_padding_only_rtx_has_no_osn() -> None:
    probe = RtpPacket(payload_type=97, padding_size=200).serialize()
    with pytest.raises(ValueError, match="no original sequence number"):
        unwrap_rtx(probe, read_header(probe), ssrc=1, payload_type=96)


# -- keyframes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (VP8_KEYFRAME, True),
        (bytes([0x10, 0x10, 0, 0]), True),  # no X, S=1, keyframe
        (bytes([0x10, 0x11, 0, 0]), False),  # P=1: interframe
        (bytes([0x00, 0x10, 0, 0]), False),  # S=0: not the partition start
        (bytes([0x11, 0x10, 0, 0]), False),  # PID=1
        (bytes([0x90, 0xE0, 0x05, 0x07, 0x20, 0x10]), True),  # I (7 bit), L, T
        (bytes([0x90, 0xE0, 0x05, 0x07, 0x20, 0x11]), False),  # same, P=1
        (bytes([0x90, 0x80]), False),  # truncated
        (b"", False),
    ],
)
def test_vp8_keyframes_rfc7741(payload: bytes, expected: bool) -> None:
    assert is_keyframe(payload, "video/VP8") is expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (bytes([0x65, 0x88]), True),  # IDR slice
        (bytes([0x67, 0x42]), True),  # SPS
        (bytes([0x41, 0x9A]), False),  # non-IDR slice
        (bytes([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE]), True),  # STAP-A
        (bytes([0x78, 0x00, 0x02, 0x06, 0x05, 0x00, 0x02, 0x41, 0x9A]), False),  # STAP-A SEI+P
        (bytes([0x78, 0x00, 0x09, 0x67]), False),  # STAP-A with a size past the end
        (bytes([0x7C, 0x85, 0xB8]), True),  # FU-A start of IDR
        (bytes([0x7C, 0x05, 0xB8]), False),  # FU-A continuation
        (bytes([0x7C, 0x81, 0xB8]), False),  # FU-A start of non-IDR
    ],
)
def test_h264_keyframes_rfc6184(payload: bytes, expected: bool) -> None:
    assert is_keyframe(payload, "video/H264") is expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (bytes([0x8A, 0x05, 0x00]), True),  # I, B, V; P=0
        (bytes([0xCA, 0x05, 0x00]), False),  # P=1
        (bytes([0x82, 0x05, 0x00]), False),  # B=0: not the frame start
        # Non-flexible mode (F=0) with L: the layer octet and TL0PICIDX (RFC 9628 4.2).
        (bytes([0xA8, 0x85, 0x01, 0x00, 0x07]), True),  # 15-bit picture id, L, SID=0
        (bytes([0xA8, 0x05, 0x02, 0x07]), False),  # SID=1
        (bytes([0xA8, 0x85, 0x01, 0x00]), False),  # TL0PICIDX missing: malformed
    ],
)
def test_vp9_keyframes(payload: bytes, expected: bool) -> None:
    assert is_keyframe(payload, "video/vp9") is expected


def test_unknown_codec_is_never_a_keyframe() -> None:
    assert is_keyframe(bytes([0x65]), "audio/opus") is False


# -- garbage -------------------------------------------------------------------


def _everything(data: bytes) -> None:
    header = read_header(data)
    read_extensions(data, header)
    RtpPacket.parse(data)
    write_transport_sequence_number(data, header, 5, 1)
    set_extension(data, header, 20, b"two-byte form")
    for mime in ("video/VP8", "video/H264", "video/VP9"):
        is_keyframe(data[header.payload_start :], mime)


def _mutate(rng: random.Random, valid: bytes) -> bytes:
    data = bytearray(valid)
    for _ in range(rng.randrange(1, 5)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def test_random_bytes_only_raise_value_error() -> None:
    rng = random.Random(1234)
    valid = chrome_packet()
    for i in range(5000):
        if i % 2:
            data = _mutate(rng, valid)
        else:
            data = bytes([0x80 | rng.randrange(64)]) + rng.randbytes(rng.randrange(40))
        try:
            _everything(data)
        except ValueError:
            pass
