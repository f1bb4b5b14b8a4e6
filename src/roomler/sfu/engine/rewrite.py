"""Build a consumer's copy of a forwarded RTP packet (the forwarding hot path).

The producer side reads each incoming packet once into an :class:`RtpForward`
tuple: the fields a consumer rewrites, the header-extension values keyed by
the *Router's* extension ids, and the payload (with any RTP padding) as one
bytes object. Every consumer then writes its own fixed header and a fresh
RFC 8285 extension block in front of that shared payload with
:func:`build_rtp_packet`: a ``struct.pack`` and a few joins, no dataclasses.

A fresh block (instead of patching the producer's block in place) lets a
consumer drop the extensions it did not negotiate, put its own MID there
(RFC 8843 section 15: receivers route by MID, so the producer's MID must not
leak) and add its transport's transport-wide sequence number.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["RtpForward", "build_rtp_packet", "extension_block"]

_FIXED = struct.Struct("!BBHII")
_BLOCK_HEADER = struct.Struct("!HH")
# RFC 8285 section 4.2 / 4.3.
_ONE_BYTE_PROFILE = 0xBEDE
_TWO_BYTE_PROFILE = 0x1000


class RtpForward(NamedTuple):
    """One incoming packet as every consumer of its producer needs it.

    ``first_byte`` keeps the version, padding bit and CSRC count of the
    original (its X bit is recomputed); ``payload_type`` is the Router's;
    ``extensions`` maps Router extension ids to values; ``body`` is the
    payload followed by the original padding, if any.
    """

    first_byte: int
    marker: bool
    payload_type: int
    sequence_number: int
    timestamp: int
    csrc: bytes
    extensions: dict[int, bytes]
    body: bytes
    keyframe: bool


def _fits_one_byte(items: Sequence[tuple[int, bytes]]) -> bool:
    for ext_id, value in items:
        if not (1 <= ext_id <= 14 and 1 <= len(value) <= 16):
            return False
    return True


def extension_block(items: Sequence[tuple[int, bytes]]) -> bytes:
    """An RFC 8285 extension block (with its 4-byte header) for ``(id, value)`` items.

    The one-byte form when every item fits it (section 4.2), else the
    two-byte form (section 4.3); padded with zero bytes to 32 bits.
    """
    if not items:
        return b""
    if _fits_one_byte(items):
        profile = _ONE_BYTE_PROFILE
        body = b"".join(
            bytes(((ext_id << 4) | (len(value) - 1),)) + value for ext_id, value in items
        )
    else:
        profile = _TWO_BYTE_PROFILE
        for ext_id, value in items:
            if not (1 <= ext_id <= 255 and len(value) <= 255):
                raise ValueError(f"RTP header extension {ext_id} does not fit the two-byte form")
        body = b"".join(bytes((ext_id, len(value))) + value for ext_id, value in items)
    padding = -len(body) % 4
    return _BLOCK_HEADER.pack(profile, (len(body) + padding) // 4) + body + bytes(padding)


def build_rtp_packet(
    packet: RtpForward,
    *,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    extensions: Sequence[tuple[int, bytes]],
) -> bytes:
    """A complete RTP packet (RFC 3550 section 5.1) carrying ``packet``'s payload."""
    block = extension_block(extensions)
    first = (packet.first_byte & 0xEF) | (0x10 if block else 0)
    second = (0x80 if packet.marker else 0) | payload_type
    fixed = _FIXED.pack(first, second, sequence_number, timestamp, ssrc)
    return fixed + packet.csrc + block + packet.body
