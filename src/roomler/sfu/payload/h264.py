"""H.264 RTP payloads (RFC 6184): which NAL units a packet starts, keyframes.

Packetization mode 1 carries a single NAL unit (types 1-23), an aggregation
packet STAP-A (type 24, section 5.7.1: 16-bit size + NAL unit, repeated) or a
fragment FU-A (type 28, section 5.8: the FU header's S bit marks the first
fragment and its type field names the fragmented NAL unit).  A keyframe is an
IDR slice (type 5), with the SPS (7) that precedes it; WebRTC sends the SPS
and PPS in a STAP-A ahead of the IDR slice.  H.264 as WebRTC sends it has no
temporal layers: every packet is temporal layer 0.
"""

from __future__ import annotations

from typing import Final

__all__ = ["IDR", "SPS", "h264_keyframe", "h264_nal_types"]

IDR: Final = 5
SPS: Final = 7
_STAP_A: Final = 24
_FU_A: Final = 28
_KEY_NALS: Final = frozenset({IDR, SPS})


def h264_nal_types(payload: bytes | bytearray) -> list[int]:
    """The NAL unit types this packet starts (a FU-A fragment only if its first).

    ValueError on a STAP-A whose sizes run past the payload.
    """
    if not payload:
        raise ValueError("H264 payload is empty")
    nal_type = payload[0] & 0x1F
    if nal_type == _STAP_A:
        return _stap_a_types(payload)
    if nal_type == _FU_A:
        if len(payload) < 2:
            raise ValueError("H264 FU-A has no FU header")
        return [payload[1] & 0x1F] if payload[1] & 0x80 else []
    return [nal_type]


def _stap_a_types(payload: bytes | bytearray) -> list[int]:
    types: list[int] = []
    pos = 1
    while pos < len(payload):
        if pos + 2 >= len(payload):
            raise ValueError("H264 STAP-A ends inside a NAL unit size")
        size = (payload[pos] << 8) | payload[pos + 1]
        if size == 0 or pos + 2 + size > len(payload):
            raise ValueError(f"H264 STAP-A NAL unit of {size} bytes runs past the payload")
        types.append(payload[pos + 2] & 0x1F)
        pos += 2 + size
    return types


def h264_keyframe(payload: bytes | bytearray) -> bool:
    """True when the packet starts an IDR slice or an SPS (malformed: False)."""
    try:
        return not _KEY_NALS.isdisjoint(h264_nal_types(payload))
    except ValueError:
        return False
