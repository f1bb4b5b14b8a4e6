"""Depacketizers (VP8 RFC 7741, VP9 RFC 9628, Opus RFC 7587), frame assembly, and the
WebM writer: real VP8 from libvpx, packetized, reordered, and decoded back by PyAV."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import av
import pytest

from roomler.recording.depacketize import (
    Fragment,
    FrameAssembler,
    depacketizer_for,
    opus_fragment,
    vp8_dimensions,
    vp8_fragment,
    vp9_fragment,
)
from roomler.recording.writer import TrackWriter

# A VP8 keyframe's first bytes: frame tag (P bit 0), start code, 320x240.
VP8_KEY = bytes([0x50, 0x2A, 0x00, 0x9D, 0x01, 0x2A, 0x40, 0x01, 0xF0, 0x00, 0xAA])
VP8_DELTA = bytes([0x31, 0x02, 0x00, 0xBB])


def test_vp8_minimal_descriptor() -> None:
    fragment = vp8_fragment(bytes([0x10]) + VP8_KEY)  # S=1, PID=0
    assert fragment == Fragment(VP8_KEY, start=True, keyframe=True)
    assert vp8_fragment(bytes([0x10]) + VP8_DELTA).keyframe is False
    middle = vp8_fragment(bytes([0x00]) + b"\x01\x02")  # S=0: a continuation
    assert middle.start is False and middle.data == b"\x01\x02"


def test_vp8_extended_descriptor_with_15_bit_picture_id() -> None:
    # X; I, L, T; PictureID M=1 (2 bytes); TL0PICIDX; TID/Y/KEYIDX -- what Chrome sends.
    descriptor = bytes([0x90, 0xE0, 0x80 | 0x12, 0x34, 0x05, 0x20])
    fragment = vp8_fragment(descriptor + VP8_KEY)
    assert fragment.data == VP8_KEY and fragment.start and fragment.keyframe


def test_vp8_start_needs_partition_zero() -> None:
    assert vp8_fragment(bytes([0x11]) + VP8_DELTA).start is False  # S=1 but PID=1


def test_vp8_rejects_truncated_payloads() -> None:
    for payload in (b"", bytes([0x90]), bytes([0x90, 0x80]), bytes([0x10])):
        with pytest.raises(ValueError):
            vp8_fragment(payload)


def test_vp8_dimensions() -> None:
    assert vp8_dimensions(VP8_KEY) == (320, 240)
    with pytest.raises(ValueError, match="start code"):
        vp8_dimensions(VP8_DELTA + bytes(8))


def test_vp9_descriptors() -> None:
    # I (7-bit id), B, E; non-flexible with L: layer byte + TL0PICIDX; keyframe (P=0).
    key = vp9_fragment(bytes([0x80 | 0x20 | 0x08 | 0x04, 0x05, 0x00, 0x07]) + b"key")
    assert key == Fragment(b"key", start=True, keyframe=True)
    # P=1, flexible, two P_DIFFs (N bit set on the first).
    delta = vp9_fragment(bytes([0x40 | 0x10 | 0x08, 0x03, 0x04]) + b"delta")
    assert delta == Fragment(b"delta", start=True, keyframe=False)
    # B=0: a continuation.
    assert vp9_fragment(bytes([0x04]) + b"rest").start is False


def test_vp9_scalability_structure_is_skipped() -> None:
    # V: N_S=0 (one layer), Y (one size), G with one picture of one reference.
    ss = bytes([0x18, 0x01, 0x40, 0x00, 0xF0, 0x01, 0x04 | 0x00, 0x01])
    fragment = vp9_fragment(bytes([0x08 | 0x02]) + ss + b"frame")
    assert fragment.data == b"frame" and fragment.keyframe


def test_vp9_rejects_truncated_payloads() -> None:
    with pytest.raises(ValueError):
        vp9_fragment(bytes([0x80]))
    with pytest.raises(ValueError):
        vp9_fragment(bytes([0x08]))


def test_opus_payload_is_the_frame() -> None:
    assert opus_fragment(b"\xfc\x01") == Fragment(b"\xfc\x01", start=True, keyframe=True)
    with pytest.raises(ValueError):
        opus_fragment(b"")
    assert depacketizer_for("audio/OPUS") is opus_fragment
    with pytest.raises(ValueError, match="H264"):
        depacketizer_for("video/H264")


def frag(data: bytes, start: bool, key: bool = False) -> Fragment:
    return Fragment(data, start, key)


def test_assembler_joins_reordered_fragments_across_wraparound() -> None:
    assembler = FrameAssembler()
    assert assembler.push(65535, 100, False, frag(b"a", True, True)) == []
    assert assembler.push(1, 100, True, frag(b"c", False)) == []
    (frame,) = assembler.push(0, 100, False, frag(b"b", False))
    assert (frame.data, frame.timestamp, frame.keyframe) == (b"abc", 100, True)
    # A late duplicate of a frame already given out is ignored.
    assert assembler.push(0, 100, False, frag(b"b", False)) == []


def test_assembler_gives_up_an_incomplete_frame() -> None:
    assembler = FrameAssembler(window=2)
    assembler.push(10, 1000, False, frag(b"x", True))  # its marker packet never comes
    out = []
    for index in range(3):
        out += assembler.push(12 + index, 2000 + index * 3000, True, frag(b"y", True))
    assert assembler.dropped == 1
    assert [f.timestamp for f in out] == [2000, 5000, 8000]


def test_assembler_timestamps_unwrap() -> None:
    assembler = FrameAssembler(single_packet=True)
    first = assembler.push(1, 2**32 - 960, True, frag(b"1", True))
    second = assembler.push(2, 0, True, frag(b"2", True))
    assert second[0].timestamp - first[0].timestamp == 960


# --- end to end: libvpx frames -> RTP -> assembler -> WebM -> decoder -----------------------


def vp8_frames(count: int) -> list[bytes]:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 160, 120, "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.options = {"g": "10"}
    frames: list[bytes] = []
    for index in range(count):
        picture = av.VideoFrame(160, 120, "yuv420p")
        for plane in picture.planes:
            plane.update(bytes([(index * 7 + plane.line_size) % 256]) * plane.buffer_size)
        picture.pts = index
        frames += [bytes(p) for p in encoder.encode(picture)]
    frames += [bytes(p) for p in encoder.encode(None)]
    return frames


def packetize_vp8(frame: bytes, size: int = 300) -> list[bytes]:
    """RFC 7741: a one-byte descriptor, S on the first packet of the frame."""
    chunks = [frame[i : i + size] for i in range(0, len(frame), size)]
    return [bytes([0x10 if i == 0 else 0x00]) + chunk for i, chunk in enumerate(chunks)]


def test_vp8_through_rtp_into_webm_decodes(tmp_path: Path) -> None:
    encoded = vp8_frames(60)
    packets = []
    seq = 65000  # wraps
    for index, frame in enumerate(encoded):
        parts = packetize_vp8(frame)
        for part_index, payload in enumerate(parts):
            last = part_index == len(parts) - 1
            packets.append((seq % 65536, index * 3000, last, payload))
            seq += 1
    # Reorder neighbours, as a network may.
    rng = random.Random(7)
    for i in range(2, len(packets) - 1, 2):  # the first arrives first
        if rng.random() < 0.5:
            packets[i], packets[i + 1] = packets[i + 1], packets[i]
    assembler = FrameAssembler()
    writer = TrackWriter(tmp_path / "v.webm", "video/VP8")
    for seq_number, timestamp, marker, payload in packets:
        for frame in assembler.push(seq_number, timestamp, marker, vp8_fragment(payload)):
            writer.write(frame)
    written = writer.close()
    assert written is not None and assembler.dropped == 0
    with av.open(str(written.path), "r") as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (160, 120)
        decoded = sum(1 for _ in container.decode(stream))
    assert decoded == written.frames == len(encoded)
    assert written.duration_secs == pytest.approx((len(encoded) - 1) / 30)


def test_video_file_starts_at_a_keyframe(tmp_path: Path) -> None:
    encoded = vp8_frames(12)  # keyframes at 0 and 10
    writer = TrackWriter(tmp_path / "v.webm", "video/VP8")
    assembler = FrameAssembler()
    for index, frame in enumerate(encoded[1:], start=1):
        for part in assembler.push(index, index * 3000, True, vp8_fragment(b"\x10" + frame)):
            writer.write(part)
    written = writer.close()
    assert written is not None and written.frames == 2  # frames 10 and 11


def test_nothing_written_is_no_file(tmp_path: Path) -> None:
    writer = TrackWriter(tmp_path / "v.webm", "video/VP8")
    assert writer.close() is None
    assert not (tmp_path / "v.webm").exists()
    with pytest.raises(ValueError, match="only VP8, VP9 and Opus"):
        TrackWriter(tmp_path / "h.mp4", "video/H264")


def test_opus_into_webm_decodes(tmp_path: Path) -> None:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    encoder.time_base = Fraction(1, 48000)
    payloads: list[bytes] = []
    for index in range(50):  # 50 x 20 ms
        samples = av.AudioFrame(format="s16", layout="stereo", samples=960)
        samples.planes[0].update(bytes(samples.planes[0].buffer_size))
        samples.sample_rate, samples.pts = 48000, index * 960
        payloads += [bytes(p) for p in encoder.encode(samples)]
    assembler = FrameAssembler(single_packet=True)
    writer = TrackWriter(tmp_path / "a.webm", "audio/opus")
    for index, payload in enumerate(payloads):
        for frame in assembler.push(index, 5000 + index * 960, True, opus_fragment(payload)):
            writer.write(frame)
    written = writer.close()
    assert written is not None
    with av.open(str(written.path), "r") as container:
        seconds = sum(f.samples for f in container.decode(audio=0)) / 48000
    assert seconds == pytest.approx(len(payloads) * 0.02, abs=0.03)
