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

Consumers whose headers differ only in sequence number, timestamp, SSRC and
transport-wide sequence number (same extensions copied, same MID, same
abs-send-time id) share one :class:`HeaderTemplate` per packet through the
packet's ``cache``: each then builds its whole header with one
``struct.pack`` (:func:`header_template`, :func:`template_key`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple

__all__ = [
    "HeaderTemplate",
    "RtpForward",
    "build_rtp_packet",
    "extension_block",
    "header_template",
    "one_byte_block",
    "one_byte_elements",
    "template_key",
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
    what several consumers derive alike from this packet; ``layer`` is the
    producer's encoding it came on (simulcast; 0 otherwise).
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
    layer: int = 0


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


class HeaderTemplate(NamedTuple):
    """A consumer's RTP header for one packet, less its per-consumer numbers.

    ``pack(first, second, sequence_number, timestamp, ssrc, middle[, twcc])``
    returns the whole header: fixed part, CSRCs and a one-byte-form extension
    block whose last element is the transport-wide sequence number when
    ``twcc`` (RFC 3550 section 5.1, RFC 8285 section 4.2).
    """

    pack: Callable[..., bytes]
    first: int
    second: int
    middle: bytes
    twcc: bool


_PACKERS: dict[str, Callable[..., bytes]] = {}
_TEMPLATE_KEYS: dict[Hashable, int] = {}


def template_key(layout: Hashable) -> int:
    """A small int naming ``layout`` (what makes two consumers' headers alike).

    Cache lookups with it hash an int instead of a nested tuple per packet.
    """
    return _TEMPLATE_KEYS.setdefault(layout, len(_TEMPLATE_KEYS))


def header_template(packet: RtpForward, elements: bytes, twcc_id: int | None) -> HeaderTemplate:
    """The template for ``packet`` with one-byte ``elements`` and, last, TWCC ``twcc_id``."""
    value_size = 0
    if twcc_id is not None:
        elements += bytes(((twcc_id << 4) | 1,))
        value_size = 2
    size = len(elements) + value_size
    padding = -size % 4
    if size:
        block_header = _BLOCK_HEADER.pack(_ONE_BYTE_PROFILE, (size + padding) >> 2)
        middle = packet.csrc + block_header + elements
        first = packet.first_byte | 0x10
    else:
        middle = packet.csrc
        first = packet.first_byte & 0xEF
    second = (0x80 if packet.marker else 0) | packet.payload_type
    layout = f"!BBHII{len(middle)}s{'H' if value_size else ''}{padding}x"
    pack = _PACKERS.get(layout)
    if pack is None:
        pack = _PACKERS[layout] = struct.Struct(layout).pack
    return HeaderTemplate(pack, first, second, middle, value_size != 0)
