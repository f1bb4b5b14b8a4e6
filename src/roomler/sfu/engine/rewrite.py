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
leak) and add its transport's transport-wide sequence number. Consumers that
copy the same set of extensions share the encoded elements through the
packet's ``cache``; each only appends its MID and sequence number.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

__all__ = [
    "RtpForward",
    "build_rtp_packet",
    "extension_block",
    "one_byte_block",
    "one_byte_elements",
]

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
    payload followed by the original padding, if any; ``cache`` memoizes
    what several consumers derive alike from this packet.
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
    cache: dict[Any, Any]


def _fits_one_byte(items: Sequence[tuple[int, bytes]]) -> bool:
    for ext_id, value in items:
        if not (1 <= ext_id <= 14 and 1 <= len(value) <= 16):
            return False
    return True


def one_byte_elements(items: Sequence[tuple[int, bytes]]) -> bytes | None:
    """The elements in the one-byte form (RFC 8285 section 4.2), None if one does not fit."""
    if not _fits_one_byte(items):
        return None
    return b"".join(bytes(((ext_id << 4) | (len(value) - 1),)) + value for ext_id, value in items)


def one_byte_block(elements: bytes) -> bytes:
    """A one-byte-form block around already encoded ``elements``, padded to 32 bits."""
    if not elements:
        return b""
    padding = -len(elements) % 4
    words = (len(elements) + padding) >> 2
    return _BLOCK_HEADER.pack(_ONE_BYTE_PROFILE, words) + elements + bytes(padding)


def extension_block(items: Sequence[tuple[int, bytes]]) -> bytes:
    """An RFC 8285 extension block (with its 4-byte header) for ``(id, value)`` items.

    The one-byte form when every item fits it (section 4.2), else the
    two-byte form (section 4.3); padded with zero bytes to 32 bits.
    """
    if not items:
        return b""
    elements = one_byte_elements(items)
    if elements is not None:
        return one_byte_block(elements)
    for ext_id, value in items:
        if not (1 <= ext_id <= 255 and len(value) <= 255):
            raise ValueError(f"RTP header extension {ext_id} does not fit the two-byte form")
    body = b"".join(bytes((ext_id, len(value))) + value for ext_id, value in items)
    padding = -len(body) % 4
    words = (len(body) + padding) >> 2
    return _BLOCK_HEADER.pack(_TWO_BYTE_PROFILE, words) + body + bytes(padding)


def build_rtp_packet(
    packet: RtpForward,
    *,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    block: bytes,
) -> bytes:
    """A complete RTP packet (RFC 3550 section 5.1): fixed header, CSRCs, ``block``, payload."""
    first = (packet.first_byte & 0xEF) | (0x10 if block else 0)
    second = (0x80 if packet.marker else 0) | payload_type
    fixed = _FIXED.pack(first, second, sequence_number, timestamp, ssrc)
    return fixed + packet.csrc + block + packet.body
