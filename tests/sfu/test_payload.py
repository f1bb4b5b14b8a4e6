"""Video payload formats: VP8 descriptor read/rewrite, H.264, VP9 and AV1 keyframes and layers."""

from __future__ import annotations

import random

import pytest

from roomler.sfu.payload import describe, is_keyframe
from roomler.sfu.payload.av1 import (
    DependencyDescriptorReader,
    av1_keyframe,
    av1_obu_layers,
    parse_av1_aggregation_header,
)
from roomler.sfu.payload.h264 import h264_keyframe, h264_nal_types
from roomler.sfu.payload.vp8 import parse_vp8, rewrite_vp8
from roomler.sfu.payload.vp9 import parse_vp9

VP8_KEY_HEADER = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A])  # P=0, then the start code
VP8_DELTA_HEADER = bytes([0x11, 0x02, 0x00])  # P=1


def vp8(
    *,
    picture_id: int | None = None,
    long_id: bool = True,
    tl0: int | None = None,
    tid: int | None = None,
    sync: bool = False,
    keyidx: int | None = None,
    start: bool = True,
    partition: int = 0,
    key: bool = False,
) -> bytes:
    """An RFC 7741 descriptor followed by a VP8 payload header."""
    first = (0x10 if start else 0) | partition
    ext = 0
    fields = b""
    if picture_id is not None:
        ext |= 0x80
        if long_id:
            fields += bytes([0x80 | (picture_id >> 8), picture_id & 0xFF])
        else:
            fields += bytes([picture_id])
    if tl0 is not None:
        ext |= 0x40
        fields += bytes([tl0])
    if tid is not None or keyidx is not None:
        octet = 0
        if tid is not None:
            ext |= 0x20
            octet |= (tid << 6) | (0x20 if sync else 0)
        if keyidx is not None:
            ext |= 0x10
            octet |= keyidx
        fields += bytes([octet])
    head = bytes([first | 0x80, ext]) + fields if ext else bytes([first])
    return head + (VP8_KEY_HEADER if key else VP8_DELTA_HEADER)


# --- VP8 -------------------------------------------------------------------------------


def test_vp8_descriptor_with_every_field() -> None:
    payload = vp8(picture_id=0x1234, tl0=200, tid=2, sync=True, keyidx=17, key=True)
    d = parse_vp8(payload)
    assert (d.picture_id, d.picture_id_15bit, d.tl0picidx) == (0x1234, True, 200)
    assert (d.tid, d.layer_sync, d.keyidx) == (2, True, 17)
    assert d.keyframe and d.begins_frame
    assert d.size == 6
    assert payload[d.size :] == VP8_KEY_HEADER


def test_vp8_seven_bit_picture_id_and_no_extension() -> None:
    d = parse_vp8(vp8(picture_id=0x55, long_id=False, tid=1))
    assert (d.picture_id, d.picture_id_15bit, d.tid, d.tl0picidx) == (0x55, False, 1, None)
    bare = parse_vp8(vp8(key=True))
    assert bare.picture_id is None and bare.temporal_layer == 0 and bare.keyframe
    assert bare.size == 1


@pytest.mark.parametrize(
    ("payload", "keyframe"),
    [
        (vp8(picture_id=1, key=True), True),
        (vp8(picture_id=1), False),  # P=1: interframe
        (vp8(picture_id=1, key=True, start=False), False),  # not the start of a partition
        (vp8(picture_id=1, key=True, partition=1), False),  # partition 1 has no payload header
        (vp8(picture_id=1)[:4], False),  # descriptor only
    ],
)
def test_vp8_keyframe_detection(payload: bytes, keyframe: bool) -> None:
    assert parse_vp8(payload).keyframe is keyframe
    assert is_keyframe(payload, "video/VP8") is keyframe


@pytest.mark.parametrize(
    "payload",
    [b"", bytes([0x90]), bytes([0x90, 0x80]), bytes([0x90, 0x80, 0x81]), bytes([0x90, 0x40])],
)
def test_vp8_truncated_descriptor_is_a_value_error(payload: bytes) -> None:
    with pytest.raises(ValueError, match="VP8 payload descriptor truncated"):
        parse_vp8(payload)
    assert is_keyframe(payload, "video/VP8") is False


def test_vp8_rewrite_changes_only_the_named_fields() -> None:
    payload = vp8(picture_id=0x7FFE, tl0=255, tid=1, sync=True, keyidx=3, key=True)
    d = parse_vp8(payload)
    out = rewrite_vp8(payload, d, picture_id=0x8001, tl0picidx=0x101, keyidx=0x25)
    assert len(out) == len(payload)
    r = parse_vp8(out)
    # 15-bit PictureID and 8-bit TL0PICIDX wrap; KEYIDX is 5 bits.
    assert (r.picture_id, r.tl0picidx, r.keyidx) == (1, 1, 5)
    assert (r.tid, r.layer_sync, r.keyframe) == (1, True, True)
    assert out[r.size :] == payload[d.size :]


def test_vp8_rewrite_keeps_a_seven_bit_picture_id_seven_bits() -> None:
    payload = vp8(picture_id=5, long_id=False, tl0=9)
    out = rewrite_vp8(payload, parse_vp8(payload), picture_id=130)
    r = parse_vp8(out)
    assert (r.picture_id, r.picture_id_15bit, r.tl0picidx, r.size) == (2, False, 9, 4)


def test_vp8_rewrite_of_an_absent_field_is_refused() -> None:
    payload = vp8(picture_id=5)
    d = parse_vp8(payload)
    with pytest.raises(ValueError, match="no TL0PICIDX"):
        rewrite_vp8(payload, d, tl0picidx=1)
    with pytest.raises(ValueError, match="no KEYIDX"):
        rewrite_vp8(payload, d, keyidx=1)
    bare = vp8()
    with pytest.raises(ValueError, match="no PictureID"):
        rewrite_vp8(bare, parse_vp8(bare), picture_id=1)


# --- H.264 -----------------------------------------------------------------------------


def stap_a(*nals: bytes) -> bytes:
    return bytes([0x78]) + b"".join(len(n).to_bytes(2, "big") + n for n in nals)


@pytest.mark.parametrize(
    ("payload", "types", "keyframe"),
    [
        (bytes([0x65, 0x88]), [5], True),  # IDR slice
        (bytes([0x41, 0x9A]), [1], False),  # non-IDR slice
        (bytes([0x67, 0x42]), [7], True),  # SPS alone
        (
            stap_a(bytes([0x67, 0x42, 0xE0]), bytes([0x68, 0xCE]), bytes([0x65, 0x88])),
            [7, 8, 5],
            True,
        ),
        (stap_a(bytes([0x06, 0x05]), bytes([0x41, 0x9A])), [6, 1], False),
        (bytes([0x7C, 0x85, 0x88]), [5], True),  # FU-A, S=1, IDR
        (bytes([0x7C, 0x05, 0x88]), [], False),  # FU-A continuation of an IDR
        (bytes([0x7C, 0x81, 0x9A]), [1], False),  # FU-A start of a non-IDR slice
    ],
)
def test_h264_nal_types_and_keyframes(payload: bytes, types: list[int], keyframe: bool) -> None:
    assert h264_nal_types(payload) == types
    assert h264_keyframe(payload) is keyframe
    info = describe(payload, "video/H264")
    assert (info.keyframe, info.spatial_layer, info.temporal_layer) == (keyframe, 0, 0)


@pytest.mark.parametrize(
    "payload",
    [b"", bytes([0x78, 0x00]), bytes([0x78, 0x00, 0x09, 0x65]), bytes([0x78, 0x00, 0x00]), b"\x7c"],
)
def test_malformed_h264_is_a_value_error_and_never_a_keyframe(payload: bytes) -> None:
    with pytest.raises(ValueError, match="H264"):
        h264_nal_types(payload)
    assert h264_keyframe(payload) is False


# --- VP9 -------------------------------------------------------------------------------


def test_vp9_non_flexible_keyframe_with_layers() -> None:
    # I (15-bit id), L, B, V; layer octet TID=0 U=0 SID=0 D=0; TL0PICIDX 7
    d = parse_vp9(bytes([0xAA, 0x81, 0x02, 0x00, 0x07, 0x00]))
    assert (d.picture_id, d.tid, d.sid, d.tl0picidx, d.flexible) == (0x102, 0, 0, 7, False)
    assert d.keyframe and d.begins_frame and not d.ends_frame


def test_vp9_upper_spatial_layer_of_a_keyframe_is_not_the_keyframe_start() -> None:
    # SID=1, D=1 (depends on layer 0): P=0 but not where a receiver can start.
    d = parse_vp9(bytes([0xA8, 0x05, (0 << 5) | (1 << 1) | 1, 0x07]))
    assert (d.sid, d.inter_layer_dependent, d.keyframe) == (1, True, False)


def test_vp9_flexible_mode_reads_layers_without_tl0picidx() -> None:
    # I, P, L, F, B, E; TID=2 U=1 SID=1 D=0; one P_DIFF follows.
    d = parse_vp9(bytes([0xFC, 0x10, (2 << 5) | 0x10 | (1 << 1), 0x02]))
    assert (d.flexible, d.tid, d.switching_up, d.sid, d.tl0picidx) == (True, 2, True, 1, None)
    assert d.inter_picture and not d.keyframe
    info = describe(bytes([0xFC, 0x10, (2 << 5) | 0x10 | (1 << 1), 0x02]), "video/VP9")
    assert (info.spatial_layer, info.temporal_layer) == (1, 2)


def test_vp9_without_layer_indices_is_layer_zero() -> None:
    d = parse_vp9(bytes([0x08, 0x00]))
    assert (d.tid, d.sid, d.keyframe, d.picture_id) == (0, 0, True, None)


@pytest.mark.parametrize("payload", [b"", bytes([0x80]), bytes([0x80, 0x80]), bytes([0x28])])
def test_vp9_truncated_descriptor_is_a_value_error(payload: bytes) -> None:
    with pytest.raises(ValueError, match="VP9 payload descriptor truncated"):
        parse_vp9(payload)


# --- AV1 -------------------------------------------------------------------------------


def test_av1_aggregation_header_and_keyframe() -> None:
    header = parse_av1_aggregation_header(bytes([0x18, 0x0A]))  # W=1, N=1
    assert header == (False, False, 1, True)
    assert av1_keyframe(bytes([0x18])) and is_keyframe(bytes([0x18, 0x0A]), "video/AV1")
    assert not av1_keyframe(bytes([0x10]))  # N=0
    assert not av1_keyframe(bytes([0x98]))  # Z=1: cannot start a sequence mid-OBU
    assert not av1_keyframe(b"")


def test_av1_obu_extension_header_gives_layers() -> None:
    # W=1 (one element, no length); OBU header: type 6 (frame), extension flag, has_size;
    # extension: temporal_id 2, spatial_id 1.
    payload = bytes([0x10, (6 << 3) | 0x04 | 0x02, (2 << 5) | (1 << 3), 0x00])
    assert av1_obu_layers(payload) == (1, 2)
    assert describe(payload, "video/AV1")[1:] == (1, 2)
    # W=0: the element is length-prefixed (LEB128), the OBU has no extension.
    assert av1_obu_layers(bytes([0x00, 0x02, (6 << 3) | 0x02, 0x00])) is None
    assert av1_obu_layers(bytes([0x80, 0x00])) is None  # continuation


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def write(self, value: int, count: int) -> BitWriter:
        self.bits.extend((value >> (count - 1 - i)) & 1 for i in range(count))
        return self

    def bytes(self) -> bytes:
        padded = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, padded[i : i + 8])), 2) for i in range(0, len(padded), 8))


def dependency_descriptor(
    template_id: int, frame: int, *, structure: list[int] | None = None, offset: int = 0
) -> bytes:
    """start/end of frame set; ``structure`` is the next_layer_idc list (ending with 3)."""
    w = BitWriter().write(1, 1).write(1, 1).write(template_id, 6).write(frame, 16)
    if structure is not None:
        w.write(1, 1).write(0, 4)  # structure present; no other optional fields
        w.write(offset, 6).write(2, 5)  # template_id_offset, dt_cnt_minus_one
        for idc in structure:
            w.write(idc, 2)
    return w.bytes()


L1T3 = [0, 1, 1, 3]  # templates (s0,t0) (s0,t0) (s0,t1) (s0,t2)
L3T3 = [1, 1, 2, 1, 1, 2, 1, 1, 3]  # three spatial layers of three temporal layers each


def test_dependency_descriptor_resolves_templates_of_l1t3() -> None:
    reader = DependencyDescriptorReader()
    key = reader.read(dependency_descriptor(0, 100, structure=L1T3))
    assert key.structure_attached and (key.spatial_id, key.temporal_id) == (0, 0)
    layers = [reader.read(dependency_descriptor(t, 101 + t)) for t in (1, 2, 3)]
    assert [(d.spatial_id, d.temporal_id) for d in layers] == [(0, 0), (0, 1), (0, 2)]
    assert (reader.max_spatial_id, reader.max_temporal_id) == (0, 2)
    assert layers[0].frame_number == 102 and layers[0].start_of_frame


def test_dependency_descriptor_of_l3t3_with_a_template_offset() -> None:
    reader = DependencyDescriptorReader()
    reader.read(dependency_descriptor(60, 1, structure=L3T3, offset=60))
    ids = [reader.read(dependency_descriptor((60 + i) % 64, 2 + i)) for i in range(9)]
    assert [(d.spatial_id, d.temporal_id) for d in ids] == [
        (s, t) for s in range(3) for t in range(3)
    ]
    assert (reader.max_spatial_id, reader.max_temporal_id) == (2, 2)


def test_dependency_descriptor_errors() -> None:
    reader = DependencyDescriptorReader()
    with pytest.raises(ValueError, match="before any template structure"):
        reader.read(dependency_descriptor(0, 1))
    with pytest.raises(ValueError, match="needs 3"):
        reader.read(b"\x00\x00")
    reader.read(dependency_descriptor(0, 1, structure=L1T3))
    with pytest.raises(ValueError, match="unknown template 9"):
        reader.read(dependency_descriptor(9, 2))
    with pytest.raises(ValueError, match="truncated"):
        reader.read(dependency_descriptor(0, 1, structure=L1T3)[:5])


def test_describe_refuses_an_unknown_codec() -> None:
    with pytest.raises(ValueError, match="no payload reader for 'audio/opus'"):
        describe(b"\x00", "audio/opus")
    assert is_keyframe(b"\x65", "audio/opus") is False


def test_the_per_packet_keyframe_checks_agree_with_the_parsers() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        payload = bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
        for parse, mime in ((parse_vp8, "video/VP8"), (parse_vp9, "video/VP9")):
            try:
                expected = parse(payload).keyframe
            except ValueError:
                expected = False
            assert is_keyframe(payload, mime) is expected, (mime, payload.hex())
