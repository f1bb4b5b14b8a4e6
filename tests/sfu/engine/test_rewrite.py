"""The per-consumer packet builder and the header templates alike consumers share."""

from __future__ import annotations

import pytest

from roomler.sfu.engine.rewrite import (
    RtpForward,
    build_rtp_packet,
    extension_block,
    header_template,
    one_byte_elements,
    template_key,
)
from roomler.sfu.rtp import RtpPacket, read_extensions, read_header

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
