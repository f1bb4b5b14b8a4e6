from __future__ import annotations

import pytest
from aioice import stun

from roomler.sfu.demux import PacketKind, classify, is_rtcp


@pytest.mark.parametrize(
    ("first", "kind"),
    [
        (0, PacketKind.STUN),
        (1, PacketKind.STUN),
        (3, PacketKind.STUN),
        (4, PacketKind.UNKNOWN),
        (19, PacketKind.UNKNOWN),
        (20, PacketKind.DTLS),
        (22, PacketKind.DTLS),
        (63, PacketKind.DTLS),
        (64, PacketKind.UNKNOWN),
        (127, PacketKind.UNKNOWN),
        (192, PacketKind.UNKNOWN),
        (255, PacketKind.UNKNOWN),
    ],
)
def test_first_byte_ranges_of_rfc7983(first: int, kind: PacketKind) -> None:
    assert classify(bytes([first, 0, 0, 0])) is kind


@pytest.mark.parametrize("second", [0, 96, 111, 127, 0x80 | 96, 0x80 | 111, 224, 255])
def test_rtp_payload_types_and_marker(second: int) -> None:
    assert classify(bytes([0x80, second]) + bytes(10)) is PacketKind.RTP


@pytest.mark.parametrize("packet_type", [192, 200, 201, 202, 203, 205, 206, 207, 223])
def test_rtcp_packet_types_rfc5761(packet_type: int) -> None:
    data = bytes([0x81, packet_type, 0, 1]) + bytes(4)
    assert classify(data) is PacketKind.RTCP
    assert is_rtcp(data)


def test_real_stun_request_and_dtls_record() -> None:
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    assert classify(bytes(request)) is PacketKind.STUN
    # DTLS 1.2 handshake record header: content type 22, version 0xfefd.
    assert classify(bytes([22, 0xFE, 0xFD]) + bytes(10)) is PacketKind.DTLS


def test_empty_and_one_byte_rtp_range_are_unknown() -> None:
    assert classify(b"") is PacketKind.UNKNOWN
    assert classify(b"\x80") is PacketKind.UNKNOWN
    assert not is_rtcp(b"\x80")
