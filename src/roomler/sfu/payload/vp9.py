"""The VP9 RTP payload descriptor (RFC 9628 section 4.2), read.

An SVC consumer forwards one SSRC and drops spatial and temporal layers by
the ids in the descriptor.  The first octet is I|P|L|F|B|E|V|Z:

- I: a PictureID follows (7 bits, or 15 when its M bit is set);
- P: inter-picture predicted (0 on a keyframe's base layer);
- L: layer indices follow, TID(3)|U|SID(3)|D, and in non-flexible mode (F=0)
  a TL0PICIDX octet;
- F: flexible mode, up to three P_DIFF octets follow when P is set;
- B / E: first / last packet of a layer frame; V: scalability structure.

U marks a switching-up point for temporal layers; D that the layer frame
depends on the spatial layer below it.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Vp9Descriptor", "parse_vp9", "vp9_keyframe"]


class Vp9Descriptor(NamedTuple):
    picture_id: int | None
    inter_picture: bool
    flexible: bool
    begins_frame: bool
    ends_frame: bool
    tid: int
    sid: int
    switching_up: bool
    inter_layer_dependent: bool
    tl0picidx: int | None

    @property
    def keyframe(self) -> bool:
        """A keyframe starts here: the first packet of a spatial layer 0 intra frame."""
        return not self.inter_picture and self.begins_frame and self.sid == 0


def _need(payload: bytes | bytearray, size: int) -> None:
    if len(payload) < size:
        raise ValueError(f"VP9 payload descriptor truncated: {len(payload)} bytes, needs {size}")


def parse_vp9(payload: bytes | bytearray) -> Vp9Descriptor:
    """Read the descriptor's layer fields; ValueError if truncated."""
    _need(payload, 1)
    first = payload[0]
    pos = 1
    picture_id = None
    if first & 0x80:  # I
        _need(payload, 2)
        if payload[1] & 0x80:
            _need(payload, 3)
            picture_id = ((payload[1] & 0x7F) << 8) | payload[2]
            pos = 3
        else:
            picture_id = payload[1]
            pos = 2
    flexible = bool(first & 0x10)
    tid = sid = 0
    switching_up = dependent = False
    tl0 = None
    if first & 0x20:  # L
        _need(payload, pos + 1)
        layers = payload[pos]
        tid, switching_up = layers >> 5, bool(layers & 0x10)
        sid, dependent = (layers >> 1) & 0x07, bool(layers & 0x01)
        if not flexible:
            _need(payload, pos + 2)
            tl0 = payload[pos + 1]
    return Vp9Descriptor(
        picture_id,
        bool(first & 0x40),
        flexible,
        bool(first & 0x08),
        bool(first & 0x04),
        tid,
        sid,
        switching_up,
        dependent,
        tl0,
    )


def vp9_keyframe(payload: bytes | bytearray) -> bool:
    """:attr:`Vp9Descriptor.keyframe` without building the descriptor (per-packet path)."""
    try:
        return parse_vp9(payload).keyframe
    except ValueError:
        return False
