"""Layer switching on synthetic simulcast and SVC packet sequences.

A synthetic sender encodes three VP8 (or H.264) encodings of one camera at
30 fps, each with its own sequence numbers, RTP timestamp origin, PictureIDs
and TL0PICIDX, temporal layers L1T3 (TIDs 0,2,1,2 ...), two packets a frame;
it sends sender reports and keyframes when asked.  The checks are what a
receiver's decoder would notice: gaps in sequence numbers or PictureIDs,
timestamps going back, a spatial switch that is not on a keyframe.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from roomler.sfu.engine.layers import (
    Forward,
    KeyframeNeeded,
    LayerPacket,
    LayersChanged,
    SimulcastSwitcher,
    SvcSwitcher,
    Vp8Rewriter,
    layer_packet,
)
from roomler.sfu.payload.vp8 import parse_vp8

CLOCK = 90_000
FPS = 30
TIDS = (0, 2, 1, 2)


def vp8_payload(picture_id: int, tl0: int, tid: int, sync: bool, key: bool, first: bool) -> bytes:
    start = 0x10 if first else 0x00
    descriptor = bytes(
        [
            0x80 | start,
            0xE0,
            0x80 | (picture_id >> 8),
            picture_id & 0xFF,
            tl0,
            (tid << 6) | (0x20 if sync else 0),
        ]
    )
    header = bytes([0x10 if key else 0x11, 0x02, 0x00]) if first else b"\x55\x55"
    return descriptor + header


@dataclass
class Encoding:
    index: int
    rng: random.Random
    mime_type: str = "video/VP8"
    seq: int = 0
    ts0: int = 0
    picture_id: int = 0
    tl0: int = 0
    frames: int = 0
    key_pending: bool = True
    sent: list[LayerPacket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.seq = self.rng.randrange(65536)
        self.ts0 = self.rng.randrange(2**32)
        self.picture_id = self.rng.randrange(32768)
        self.tl0 = self.rng.randrange(256)

    def timestamp(self, t: float) -> int:
        return (self.ts0 + round(t * CLOCK)) & 0xFFFFFFFF

    def frame(self, t: float) -> list[LayerPacket]:
        key = self.key_pending
        self.key_pending = False
        if key:
            self.frames = 0
        tid = TIDS[self.frames % len(TIDS)]
        if tid == 0:
            self.tl0 = (self.tl0 + 1) & 0xFF
        # Y: the frame refers only to TL0 (the first TID 1 / 2 after a TID 0 frame).
        sync = tid == 0 or self.frames % len(TIDS) in (1, 2)
        packets = []
        for part in range(2):
            if self.mime_type == "video/VP8":
                payload = vp8_payload(self.picture_id, self.tl0, tid, sync, key, part == 0)
            else:  # H.264: IDR or non-IDR slice as FU-A fragments
                nal = 5 if key else 1
                payload = bytes([0x7C, (0x80 if part == 0 else 0x40) | nal, 0x88])
            packets.append(
                layer_packet(
                    self.mime_type, self.index, self.seq, self.timestamp(t), part == 1, payload
                )
            )
            self.seq = (self.seq + 1) & 0xFFFF
        self.picture_id = (self.picture_id + 1) & 0x7FFF
        self.frames += 1
        self.sent.extend(packets)
        return packets

    def sender_report(self, t: float) -> tuple[float, int]:
        return 1_000_000.0 + t, self.timestamp(t)


class Receiver:
    """What one consumer sent, and what its decoder would complain about."""

    def __init__(self) -> None:
        self.out: list[tuple[float, int, Forward]] = []  # (time, spatial, packet)

    def add(self, now: float, spatial: int, forward: Forward | None) -> None:
        if forward is not None:
            self.out.append((now, spatial, forward))

    def assert_continuous(self, *, allowed_skips: int = 0) -> None:
        seqs = [f.sequence_number for _, _, f in self.out]
        steps = [(b - a) & 0xFFFF for a, b in zip(seqs, seqs[1:], strict=False)]
        assert set(steps) <= {1, 2}, steps
        assert steps.count(2) <= allowed_skips
        stamps = [f.timestamp for _, _, f in self.out]
        for a, b in zip(stamps, stamps[1:], strict=False):
            assert (b - a) & 0xFFFFFFFF < 0x80000000, "timestamp went back"

    def pictures(self) -> list[int]:
        ids = []
        for _, _, f in self.out:
            d = parse_vp8(f.payload)
            if d.begins_frame:
                ids.append(d.picture_id)
        return ids


def run(
    switcher: SimulcastSwitcher,
    encodings: list[Encoding],
    seconds: float,
    *,
    start: float = 0.0,
    receiver: Receiver | None = None,
    reports: bool = True,
    events: list[object] | None = None,
) -> Receiver:
    """Send ``seconds`` of all encodings through ``switcher``, honouring its keyframe requests."""
    receiver = receiver or Receiver()
    frames = round(seconds * FPS)
    for n in range(frames):
        t = start + n / FPS
        if reports and n % FPS == 0:
            for enc in encodings:
                switcher.on_sender_report(enc.index, *enc.sender_report(t))
        for enc in encodings:
            for packet in enc.frame(t):
                receiver.add(t, enc.index, switcher.forward(packet, t))
        for event in switcher.pop_events():
            if events is not None:
                events.append(event)
            if isinstance(event, KeyframeNeeded):
                encodings[event.spatial_layer].key_pending = True
    return receiver


def simulcast(seed: int, mime_type: str = "video/VP8") -> tuple[SimulcastSwitcher, list[Encoding]]:
    rng = random.Random(seed)
    encodings = [Encoding(i, rng, mime_type) for i in range(3)]
    rewriter = Vp8Rewriter() if mime_type == "video/VP8" else None
    return SimulcastSwitcher(3, 3, CLOCK, rewriter=rewriter, initial_sequence_number=7), encodings


def test_starts_on_a_keyframe_of_the_top_layer_and_forwards_only_it() -> None:
    switcher, encodings = simulcast(1)
    for enc in encodings:
        enc.key_pending = False  # joined mid-stream: no keyframe yet
    events: list[object] = []
    receiver = run(switcher, encodings, 0.5, events=events)
    assert receiver.out == []  # nothing until a keyframe
    encodings[2].key_pending = True  # the consumer's creation asks for one
    run(switcher, encodings, 1.0, start=0.5, receiver=receiver, events=events)
    assert {spatial for _, spatial, _ in receiver.out} == {2}
    first = receiver.out[0][2]
    assert first.sequence_number == 7 and parse_vp8(first.payload).keyframe
    assert LayersChanged(2, 0) in events and LayersChanged(2, 2) in events
    assert (switcher.current_spatial, switcher.current_temporal) == (2, 2)
    receiver.assert_continuous()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_switching_down_and_up_is_invisible_to_the_decoder(seed: int) -> None:
    switcher, encodings = simulcast(seed)
    events: list[object] = []
    receiver = run(switcher, encodings, 1.0, events=events)
    t = 1.0
    for target in (0, 1, 2, 0, 2):
        switcher.set_target(target)
        assert KeyframeNeeded(target) in switcher.pop_events()
        encodings[target].key_pending = True
        run(switcher, encodings, 1.0, start=t, receiver=receiver, events=events)
        t += 1.0
        assert switcher.current_spatial == target
    receiver.assert_continuous(allowed_skips=5)
    pictures = receiver.pictures()
    assert all((b - a) & 0x7FFF == 1 for a, b in zip(pictures, pictures[1:], strict=False))
    # Every change of encoding starts with a keyframe of the new one.
    for (_, before, _), (_, after, forward) in zip(receiver.out, receiver.out[1:], strict=False):
        if after != before:
            assert parse_vp8(forward.payload).keyframe
    changes = [
        e.spatial_layer for e in events if isinstance(e, LayersChanged) and e.temporal_layer == 0
    ]
    assert changes == [2, 0, 1, 2, 0, 2]


def test_timestamps_follow_the_sender_reports_across_switches() -> None:
    switcher, encodings = simulcast(5)
    receiver = run(switcher, encodings, 1.0)
    switcher.set_target(0)
    encodings[0].key_pending = True
    run(switcher, encodings, 1.0, start=1.0, receiver=receiver)
    reference = encodings[2]
    # After the switch, each packet carries the reference encoding's timestamp
    # for its capture time: the decoder's clock does not jump.
    for now, spatial, forward in receiver.out:
        assert forward.timestamp == reference.timestamp(now), (now, spatial)


def test_without_sender_reports_the_timeline_continues_from_the_last_packet() -> None:
    switcher, encodings = simulcast(6)
    receiver = run(switcher, encodings, 1.0, reports=False)
    last_time, _, last = receiver.out[-1]
    switcher.set_target(1)
    encodings[1].key_pending = True
    run(switcher, encodings, 1.0, start=1.0, receiver=receiver, reports=False)
    after = [(now, f) for now, spatial, f in receiver.out if spatial == 1]
    now, first = after[0]
    expected = (last.timestamp + round((now - last_time) * CLOCK)) & 0xFFFFFFFF
    assert first.timestamp == expected
    receiver.assert_continuous(allowed_skips=1)


def test_a_keyframe_that_maps_before_what_was_sent_is_moved_one_frame_later() -> None:
    switcher, encodings = simulcast(7)
    receiver = run(switcher, encodings, 1.0)
    # Encoding 0's report says its timestamps run 40 ms ahead of its capture
    # times: its keyframe maps to before the last frame sent.
    switcher.on_sender_report(0, 1_000_000.0 + 1.0, encodings[0].timestamp(1.0 + 0.040))
    switcher.set_target(0)
    encodings[0].key_pending = True
    run(switcher, encodings, 0.5, start=1.0, receiver=receiver, reports=False)
    receiver.assert_continuous(allowed_skips=1)
    sent_before = [f for _, s, f in receiver.out if s == 2]
    first_after = next(f for _, s, f in receiver.out if s == 0)
    assert (first_after.timestamp - sent_before[-1].timestamp) & 0xFFFFFFFF == 33 * CLOCK // 1000


def test_a_keyframe_far_behind_asks_for_another_before_switching() -> None:
    switcher, encodings = simulcast(8)
    receiver = run(switcher, encodings, 1.0)
    switcher.on_sender_report(0, 1_000_000.0 + 1.0, encodings[0].timestamp(1.0 + 0.5))
    switcher.set_target(0)
    switcher.pop_events()
    encodings[0].key_pending = True
    events: list[object] = []
    run(switcher, encodings, 0.5, start=1.0, receiver=receiver, reports=False, events=events)
    # The first keyframe would need 500 ms of extra offset: one more is requested,
    # and the switch happens on that one (then shifted as needed).
    assert events.count(KeyframeNeeded(0)) == 1
    assert switcher.current_spatial == 0
    since_target = encodings[0].timestamp(1.0)
    keyframes_of_0 = [p.timestamp for p in encodings[0].sent if p.keyframe]
    assert len([ts for ts in keyframes_of_0 if ts >= since_target]) == 2
    first_forwarded = next(f for _, s, f in receiver.out if s == 0)
    receiver.assert_continuous(allowed_skips=1)
    assert parse_vp8(first_forwarded.payload).keyframe


def test_temporal_layers_are_dropped_by_tid_without_gaps() -> None:
    switcher, encodings = simulcast(9)
    switcher.set_target(2, 0)
    receiver = run(switcher, encodings, 1.0)
    assert {parse_vp8(f.payload).tid for _, _, f in receiver.out} == {0}
    assert len({parse_vp8(f.payload).picture_id for _, _, f in receiver.out}) == FPS // 4 + 1
    receiver.assert_continuous()
    pictures = receiver.pictures()
    assert all((b - a) & 0x7FFF == 1 for a, b in zip(pictures, pictures[1:], strict=False))
    tl0 = [parse_vp8(f.payload).tl0picidx for _, _, f in receiver.out]
    assert all((b - a) & 0xFF in (0, 1) for a, b in zip(tl0, tl0[1:], strict=False))
    # Going up waits for a frame with the Y bit, and needs no keyframe.
    switcher.set_target(2, 2)
    assert not any(isinstance(e, KeyframeNeeded) for e in switcher.pop_events())
    run(switcher, encodings, 1.0, start=1.0, receiver=receiver)
    assert switcher.current_temporal == 2
    receiver.assert_continuous()
    pictures = receiver.pictures()
    assert all((b - a) & 0x7FFF == 1 for a, b in zip(pictures, pictures[1:], strict=False))


def test_a_higher_temporal_layer_is_taken_only_at_a_layer_sync() -> None:
    switcher = SimulcastSwitcher(1, 3, CLOCK, rewriter=Vp8Rewriter())
    switcher.set_target(0, 0)

    def packet(seq: int, pid: int, tid: int, sync: bool, key: bool = False) -> LayerPacket:
        payload = vp8_payload(pid, 1, tid, sync, key, True)
        return layer_packet("video/VP8", 0, seq, pid * 3000, True, payload)

    first = switcher.forward(packet(1, 1, 0, True, key=True), 0.0)
    assert first is not None
    switcher.set_target(0, 2)
    assert switcher.forward(packet(2, 2, 2, False), 0.03) is None  # no Y: refers to a TID 1 frame
    forwarded = switcher.forward(packet(3, 3, 1, True), 0.06)
    assert forwarded is not None and forwarded.sequence_number == first.sequence_number + 1
    picture_ids = [parse_vp8(f.payload).picture_id for f in (first, forwarded)]
    assert picture_ids[1] == picture_ids[0] + 1  # type: ignore[operator]
    assert switcher.current_temporal == 1


def test_old_packets_of_the_new_encoding_are_not_sent_after_the_switch() -> None:
    switcher, encodings = simulcast(10)
    receiver = run(switcher, encodings, 0.5)
    switcher.set_target(1)
    encodings[1].key_pending = True
    run(switcher, encodings, 0.2, start=0.5, receiver=receiver)
    stale = next(p for p in encodings[1].sent if not p.keyframe)  # from before the keyframe
    assert switcher.forward(stale, 0.8) is None
    receiver.assert_continuous(allowed_skips=1)


def test_h264_simulcast_switches_without_payload_rewriting() -> None:
    switcher, encodings = simulcast(11, "video/H264")
    receiver = run(switcher, encodings, 1.0)
    switcher.set_target(0)
    encodings[0].key_pending = True
    run(switcher, encodings, 1.0, start=1.0, receiver=receiver)
    assert switcher.current_spatial == 0
    receiver.assert_continuous(allowed_skips=1)
    sent = {p.payload for enc in encodings for p in enc.sent}
    assert all(f.payload in sent for _, _, f in receiver.out)


def test_padding_of_the_current_encoding_is_dropped_without_a_gap() -> None:
    switcher, encodings = simulcast(12)
    receiver = run(switcher, encodings, 0.2)
    enc = encodings[2]
    padding = layer_packet("video/VP8", 2, enc.seq, enc.timestamp(0.2), False, b"")
    enc.seq = (enc.seq + 1) & 0xFFFF
    assert switcher.forward(padding, 0.2) is None
    run(switcher, encodings, 0.2, start=0.2, receiver=receiver)
    receiver.assert_continuous()


def test_targets_are_clamped_to_the_stream() -> None:
    switcher = SimulcastSwitcher(3, 3, CLOCK)
    switcher.set_target(12, 9)
    assert (switcher.target_spatial, switcher.target_temporal) == (2, 2)
    switcher.set_target(-1, -5)
    assert (switcher.target_spatial, switcher.target_temporal) == (0, 0)
    with pytest.raises(ValueError, match="at least one"):
        SimulcastSwitcher(0, 1, CLOCK)


# --- SVC -------------------------------------------------------------------------------


def vp9_picture(
    seq: int, ts: int, spatial_layers: int, *, key: bool, tid: int = 0, sync: bool = True
) -> list[LayerPacket]:
    """One VP9 picture, one packet per spatial layer (non-flexible mode)."""
    packets = []
    for sid in range(spatial_layers):
        inter = 0 if key else 0x40
        first = 0x20 | inter | 0x08 | 0x04  # L, P?, B, E
        layers = (tid << 5) | (0x10 if sync else 0) | (sid << 1) | (1 if sid else 0)
        payload = bytes([first, layers, 0x00, 0xAA])
        last = sid == spatial_layers - 1
        packets.append(layer_packet("video/VP9", 0, seq + sid, ts, last, payload))
    return packets


def test_full_svc_forwards_layers_up_to_the_target_and_lowers_at_the_next_picture() -> None:
    switcher = SvcSwitcher(3, 1)
    out: list[Forward] = []
    seq = 100
    for n in range(6):
        if n == 3:
            switcher.set_target(1)
            assert switcher.pop_events().count(KeyframeNeeded(1)) == 0
        for packet in vp9_picture(seq, n * 3000, 3, key=n == 0):
            forwarded = switcher.forward(packet, n / 30)
            if forwarded is not None:
                out.append(forwarded)
        seq += 3
    assert len(out) == 3 * 3 + 3 * 2
    seqs = [f.sequence_number for f in out]
    assert seqs == list(range(len(out)))
    # The receiver's pictures end with the highest layer it gets.
    assert [f.marker for f in out[9:]] == [False, True] * 3


def test_k_svc_waits_for_a_keyframe_in_both_directions() -> None:
    switcher = SvcSwitcher(3, 1, ksvc=True)
    got: list[tuple[int, bool]] = []
    seq = 0
    for n in range(8):
        if n == 2:
            switcher.set_target(0)
            assert KeyframeNeeded(0) in switcher.pop_events()
        for packet in vp9_picture(seq, n * 3000, 3, key=n in (0, 5)):
            if switcher.forward(packet, n / 30) is not None:
                got.append((n, packet.spatial))
        seq += 3
    # Keyframe: all three layers; then only layer 2 until the next keyframe,
    # after which only layer 0.
    assert got[:3] == [(0, 0), (0, 1), (0, 2)]
    assert [s for n, s in got if 1 <= n < 5] == [2, 2, 2, 2]
    assert [s for n, s in got if n >= 5] == [0, 0, 0]


def test_svc_joins_on_a_keyframe_only() -> None:
    switcher = SvcSwitcher(2, 1)
    assert all(switcher.forward(p, 0) is None for p in vp9_picture(0, 0, 2, key=False))
    assert all(switcher.forward(p, 0) is not None for p in vp9_picture(2, 3000, 2, key=True))
    assert switcher.forward(vp9_picture(4, 6000, 2, key=False)[0], 0).sequence_number == 2  # type: ignore[union-attr]


def test_full_svc_climbs_at_a_spatial_switching_up_point_without_a_keyframe() -> None:
    """An upper layer frame with P=0 after its forwarded lower layer (same picture) joins."""
    switcher = SvcSwitcher(2, 1)
    switcher.set_target(0)
    got: list[tuple[int, bool]] = []
    for n in range(4):
        packets = vp9_picture(10 + 2 * n, n * 3000, 2, key=n == 0)
        if n == 2:
            switcher.pop_events()
            switcher.set_target(1)
            assert switcher.pop_events() == [KeyframeNeeded(1)]
            # Layer 1 of this picture refers only to layer 0 of it (P=0, D=1).
            payload = bytes([0x20 | 0x08 | 0x04, 0x10 | (1 << 1) | 1, 0x00, 0xAA])
            packets[1] = layer_packet("video/VP9", 0, 10 + 2 * n + 1, n * 3000, True, payload)
        for packet in packets:
            forwarded = switcher.forward(packet, n / 30)
            if forwarded is not None:
                got.append((packet.spatial, forwarded.marker))
    # Layer 0 ends its pictures (marker) until layer 1 joins at picture 2 -- its layer 0
    # had already gone out as the picture's end (as in mediasoup: the switch is seen only
    # at the upper layer's packet), then layer 1 ends the pictures.
    assert got == [(0, True), (0, True), (0, True), (1, True), (0, False), (1, True)]
    assert switcher.current_spatial == 1


def test_svc_does_not_climb_on_an_inter_picture_upper_layer() -> None:
    switcher = SvcSwitcher(2, 1)
    switcher.set_target(0)
    for packet in vp9_picture(0, 0, 2, key=True):
        switcher.forward(packet, 0)
    switcher.set_target(1)
    forwarded = [switcher.forward(p, 0.1) for p in vp9_picture(2, 3000, 2, key=False)]
    assert forwarded[1] is None and switcher.current_spatial == 0


def test_svc_drops_temporal_layers_by_tid_and_numbers_without_gaps() -> None:
    switcher = SvcSwitcher(1, 3)
    switcher.set_target(0, 0)
    seq, out = 500, []
    for n in range(8):
        tid = TIDS[n % 4]
        for packet in vp9_picture(seq, n * 3000, 1, key=n == 0, tid=tid):
            forwarded = switcher.forward(packet, n / 30)
            if forwarded is not None:
                out.append((tid, forwarded.sequence_number))
        seq += 1
    assert [tid for tid, _ in out] == [0, 0]
    assert [s for _, s in out] == [0, 1]  # six pictures left out, no gap


def test_svc_restart_waits_for_a_keyframe_and_numbers_on() -> None:
    switcher = SvcSwitcher(1, 1, initial_sequence_number=65534)
    sent = [switcher.forward(p, 0) for p in vp9_picture(100, 0, 1, key=True)]
    switcher.restart()
    assert switcher.pop_events()[-1] == LayersChanged(None, None)
    assert switcher.forward(vp9_picture(900, 3000, 1, key=False)[0], 0.1) is None
    resumed = switcher.forward(vp9_picture(901, 6000, 1, key=True)[0], 0.2)
    assert sent[0] is not None and resumed is not None
    assert (sent[0].sequence_number, resumed.sequence_number) == (65534, 65535)
