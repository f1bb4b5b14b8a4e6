"""Classify a UDP datagram arriving on a WebRTC port (sans-I/O).

One port carries STUN, DTLS and SRTP/SRTCP; RFC 7983 section 7 tells them
apart by the first byte, and RFC 5761 section 4 tells RTP from RTCP by the
second byte (the RTP payload type / RTCP packet type).
"""

from __future__ import annotations

import enum

__all__ = ["PacketKind", "classify", "is_rtcp"]


class PacketKind(enum.Enum):
    """What a datagram is, by RFC 7983 section 7."""

    STUN = "stun"
    DTLS = "dtls"
    RTP = "rtp"
    RTCP = "rtcp"
    UNKNOWN = "unknown"


def _first_byte_table() -> tuple[PacketKind, ...]:
    # RFC 7983 section 7: [0..3] STUN, [20..63] DTLS, [128..191] RTP/RTCP.
    # 16..19 (ZRTP) and 64..79 (TURN channels) are not used by WebRTC here.
    table = [PacketKind.UNKNOWN] * 256
    for byte in range(0, 4):
        table[byte] = PacketKind.STUN
    for byte in range(20, 64):
        table[byte] = PacketKind.DTLS
    for byte in range(128, 192):
        table[byte] = PacketKind.RTP
    return tuple(table)


_BY_FIRST_BYTE = _first_byte_table()


def is_rtcp(data: bytes) -> bool:
    """True when an RTP-range datagram is RTCP (RFC 5761 section 4).

    RTCP packet types 192..223 collide with RTP payload types 64..95 once the
    marker bit is set, so those payload types are never used for RTP.
    """
    return len(data) >= 2 and 192 <= data[1] <= 223


def classify(data: bytes) -> PacketKind:
    """Return the kind of ``data`` from its first two bytes (RFC 7983 section 7).

    An empty datagram, or an RTP-range datagram shorter than an RTP/RTCP
    fixed header would need to be split (2 bytes), is ``UNKNOWN``.
    """
    if not data:
        return PacketKind.UNKNOWN
    kind = _BY_FIRST_BYTE[data[0]]
    if kind is not PacketKind.RTP:
        return kind
    if len(data) < 2:
        return PacketKind.UNKNOWN
    return PacketKind.RTCP if 192 <= data[1] <= 223 else PacketKind.RTP
