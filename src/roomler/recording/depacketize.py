"""RTP payloads back into codec frames: VP8 (RFC 7741), VP9 (RFC 9628), Opus (RFC 7587).

A depacketizer reads one RTP payload and returns a `Fragment`: the codec bytes with the
payload descriptor removed, whether it begins a frame, and (on a frame's first fragment)
whether that frame is a keyframe. `FrameAssembler` joins the fragments of one frame (one
RTP timestamp, first fragment to marker bit, no sequence number missing) in order.
Nothing here does I/O or decodes anything: the frames go to the muxer as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Depacketizer",
    "Fragment",
    "Frame",
    "FrameAssembler",
    "depacketizer_for",
    "opus_fragment",
    "vp8_dimensions",
    "vp8_fragment",
    "vp9_fragment",
]


@dataclass(frozen=True, slots=True)
class Fragment:
    data: bytes
    start: bool
    keyframe: bool = False


@dataclass(frozen=True, slots=True)
class Frame:
    data: bytes
    # The RTP timestamp, unwrapped past 2**32 (a frame's presentation time).
    timestamp: int
    keyframe: bool


class Depacketizer(Protocol):
    def __call__(self, payload: bytes) -> Fragment: ...


def vp8_fragment(payload: bytes) -> Fragment:
    """RFC 7741 section 4.2: strip the VP8 payload descriptor."""
    if not payload:
        raise ValueError("VP8 payload is empty")
    first = payload[0]
    pos = 1
    if first & 0x80:  # X: an extension byte follows
        if len(payload) < 2:
            raise ValueError("VP8 payload descriptor is truncated")
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: PictureID, 7 or 15 bits (M)
            if len(payload) <= pos:
                raise ValueError("VP8 payload descriptor is truncated")
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            pos += 1
    if pos >= len(payload):
        raise ValueError("VP8 payload has no data after its descriptor")
    # S and PID 0: the first packet of partition 0, i.e. of the frame.
    start = bool(first & 0x10) and (first & 0x07) == 0
    data = payload[pos:]
    # RFC 7741 section 4.3 / RFC 6386 section 9.1: P bit 0 in the frame tag is a keyframe.
    return Fragment(data, start, keyframe=start and (data[0] & 0x01) == 0)


def vp8_dimensions(keyframe: bytes) -> tuple[int, int]:
    """Width and height of a VP8 keyframe (RFC 6386 section 9.1: after the start code)."""
    if len(keyframe) < 10 or keyframe[3:6] != b"\x9d\x01\x2a":
        raise ValueError("VP8 keyframe has no start code")
    width = int.from_bytes(keyframe[6:8], "little") & 0x3FFF
    height = int.from_bytes(keyframe[8:10], "little") & 0x3FFF
    return width, height


def vp9_fragment(payload: bytes) -> Fragment:
    """RFC 9628 section 4.2: strip the VP9 payload descriptor (one spatial layer)."""
    if not payload:
        raise ValueError("VP9 payload is empty")
    first = payload[0]
    inter_picture = bool(first & 0x40)  # P
    layers = bool(first & 0x20)  # L
    flexible = bool(first & 0x10)  # F
    begins = bool(first & 0x08)  # B
    has_ss = bool(first & 0x02)  # V
    pos = 1
    spatial_id = 0
    try:
        if first & 0x80:  # I: PictureID
            pos += 2 if payload[pos] & 0x80 else 1
        if layers:
            spatial_id = (payload[pos] >> 1) & 0x07
            pos += 1 if flexible else 2  # TL0PICIDX in non-flexible mode
        if flexible and inter_picture:
            while payload[pos] & 0x01:  # N: another P_DIFF follows
                pos += 1
            pos += 1
        if has_ss:
            pos = _skip_scalability_structure(payload, pos)
    except IndexError:
        raise ValueError("VP9 payload descriptor is truncated") from None
    if pos >= len(payload):
        raise ValueError("VP9 payload has no data after its descriptor")
    keyframe = begins and not inter_picture and spatial_id == 0
    return Fragment(payload[pos:], begins, keyframe)


def _skip_scalability_structure(payload: bytes, pos: int) -> int:
    """RFC 9628 section 4.2.1: N_S, Y, G, then the sizes and the picture group."""
    header = payload[pos]
    pos += 1
    spatial_layers = (header >> 5) + 1
    if header & 0x10:  # Y: a width and height per spatial layer
        pos += 4 * spatial_layers
    if header & 0x08:  # G: N_G pictures, each with R reference diffs
        pictures = payload[pos]
        pos += 1
        for _ in range(pictures):
            references = (payload[pos] >> 2) & 0x03
            pos += 1 + references
    return pos


def opus_fragment(payload: bytes) -> Fragment:
    """RFC 7587 section 4.2: the payload is one Opus packet, every one a frame start."""
    if not payload:
        raise ValueError("Opus payload is empty")
    return Fragment(payload, start=True, keyframe=True)


_DEPACKETIZERS: dict[str, Depacketizer] = {
    "video/vp8": vp8_fragment,
    "video/vp9": vp9_fragment,
    "audio/opus": opus_fragment,
}


def depacketizer_for(mime_type: str) -> Depacketizer:
    try:
        return _DEPACKETIZERS[mime_type.lower()]
    except KeyError:
        raise ValueError(f"no depacketizer for {mime_type}") from None


class _Unwrapper:
    """A wrapping counter (RTP sequence number or timestamp) made monotonic (RFC 3550 A.1)."""

    def __init__(self, bits: int) -> None:
        self._modulus = 1 << bits
        self._half = 1 << (bits - 1)
        self._last: int | None = None

    def __call__(self, value: int) -> int:
        if self._last is None:
            self._last = value
            return value
        delta = (value - self._last) % self._modulus
        if delta >= self._half:
            delta -= self._modulus
        unwrapped = self._last + delta
        self._last = max(self._last, unwrapped)
        return unwrapped


@dataclass(slots=True)
class _Pending:
    fragments: dict[int, Fragment]
    first: int | None = None  # sequence number of the frame's first fragment
    last: int | None = None  # sequence number of the marker packet

    def complete(self) -> bool:
        if self.first is None or self.last is None:
            return False
        return all(seq in self.fragments for seq in range(self.first, self.last + 1))


class FrameAssembler:
    """Frames from the RTP packets of one stream, in timestamp order.

    Packets may arrive reordered. A frame is given out once complete; an incomplete one is
    given up (``dropped`` counts it) when ``window`` newer frames have completed -- the
    caller then asks for a keyframe. A single-packet codec (audio) passes
    ``single_packet=True``: every packet is a frame.
    """

    def __init__(self, *, single_packet: bool = False, window: int = 4) -> None:
        self.single_packet = single_packet
        self.window = window
        self.dropped = 0
        self._seq = _Unwrapper(16)
        self._ts = _Unwrapper(32)
        self._pending: dict[int, _Pending] = {}
        self._last_out: int | None = None
        # The sequence number after the last frame given out.
        self._next_seq: int | None = None

    def push(self, seq: int, timestamp: int, marker: bool, fragment: Fragment) -> list[Frame]:
        ext_seq = self._seq(seq)
        ext_ts = self._ts(timestamp)
        if self._last_out is not None and ext_ts <= self._last_out:
            return []  # a late or repeated packet of a frame already given out
        if self.single_packet:
            self._last_out = ext_ts
            return [Frame(fragment.data, ext_ts, fragment.keyframe)]
        pending = self._pending.setdefault(ext_ts, _Pending({}))
        pending.fragments[ext_seq] = fragment
        if fragment.start:
            pending.first = ext_seq
        if marker:
            pending.last = ext_seq
        return self._ready()

    def _ready(self) -> list[Frame]:
        """Complete frames that follow the last one given out without a sequence gap; a
        gap (a frame lost, or late) is given up once `window` frames after it completed."""
        frames: list[Frame] = []
        for ext_ts in sorted(self._pending):
            pending = self._pending.get(ext_ts)
            if pending is None:
                continue
            if pending.complete() and self._next_seq in (None, pending.first):
                frames.append(self._take(ext_ts, pending))
                continue
            complete_from_here = sum(
                1 for ts, p in self._pending.items() if ts >= ext_ts and p.complete()
            )
            if complete_from_here < self.window:
                break  # wait: what is missing may still come
            self.dropped += 1
            if pending.complete():
                frames.append(self._take(ext_ts, pending))
            else:
                del self._pending[ext_ts]
        return frames

    def _take(self, ext_ts: int, pending: _Pending) -> Frame:
        del self._pending[ext_ts]
        for stale in [ts for ts in self._pending if ts < ext_ts]:
            del self._pending[stale]
            self.dropped += 1
        self._last_out = ext_ts
        assert pending.first is not None and pending.last is not None
        self._next_seq = pending.last + 1
        parts = [pending.fragments[seq] for seq in range(pending.first, pending.last + 1)]
        return Frame(b"".join(p.data for p in parts), ext_ts, parts[0].keyframe)
