"""RTP packets (RFC 3550) with RFC 8285 header extensions, sans-I/O.

Two layers:

* :class:`RtpPacket` -- a full dataclass with ``parse()`` / ``serialize()``,
  for tests, tools and the rare packet the SFU originates.
* The per-packet readers -- :func:`read_header` reads only the fixed fields
  and the offsets of the extension block and payload into a small tuple,
  :func:`read_extensions` the RFC 8285 elements into a dict; :func:`set_extension`
  / :func:`wrap_rtx` / :func:`unwrap_rtx` produce a rewritten copy of one
  datagram (RTX, retransmissions). A new element goes into a run of padding
  bytes inside the block when one is long enough (RFC 8285 section 4.2 / 4.3
  allows zero bytes between elements), else the block is rebuilt.

The forwarding path itself builds each consumer's packet from a shared header
template (:mod:`roomler.sfu.engine.rewrite`), not from these functions.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

# Keyframe detection per codec lives with the payload formats; re-exported here.
from roomler.sfu.payload import is_keyframe

__all__ = [
    "ONE_BYTE_PROFILE",
    "TWO_BYTE_PROFILE",
    "RtpHeader",
    "RtpPacket",
    "decode_abs_send_time",
    "encode_abs_send_time",
    "get_extension",
    "is_keyframe",
    "read_extensions",
    "read_header",
    "set_extension",
    "unwrap_rtx",
    "wrap_rtx",
    "write_transport_sequence_number",
]

RTP_VERSION = 2
RTP_HEADER_SIZE = 12
# RFC 8285 section 4.2: one-byte header form, "defined by profile" = 0xBEDE.
ONE_BYTE_PROFILE = 0xBEDE
# RFC 8285 section 4.3: two-byte header form, 0x100 followed by 4 appbits.
TWO_BYTE_PROFILE = 0x1000
TWO_BYTE_PROFILE_MASK = 0xFFF0

_FIXED = struct.Struct("!BBHII")
_SEQ_TS_SSRC = struct.Struct("!HII")
_EXT_HEADER = struct.Struct("!HH")
_U16 = struct.Struct("!H")

# (id, element start, value start, value end) of one RFC 8285 element.
_Element = tuple[int, int, int, int]


class RtpHeader(NamedTuple):
    """The fields the forwarder needs, read without copying (RFC 3550 section 5.1).

    Offsets index the datagram that was read. ``extensions_start`` /
    ``extensions_end`` delimit the extension elements (after the 4-byte block
    header); without an extension block both equal ``payload_start`` and
    ``extension_profile`` is 0. ``payload_end`` excludes RTP padding.
    """

    marker: bool
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    extension_profile: int
    extensions_start: int
    extensions_end: int
    payload_start: int
    payload_end: int


def read_header(data: bytes | bytearray) -> RtpHeader:
    """Validate and read the RTP header of ``data`` (RFC 3550 section 5.1, 5.3.1)."""
    size = len(data)
    if size < RTP_HEADER_SIZE:
        raise ValueError("RTP packet length is less than 12 bytes")
    first, second, seq, timestamp, ssrc = _FIXED.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        raise ValueError("RTP packet has invalid version")
    pos = RTP_HEADER_SIZE + (first & 0x0F) * 4
    if pos > size:
        raise ValueError("RTP packet has truncated CSRC list")
    profile = 0
    ext_start = ext_end = pos
    if first & 0x10:
        if pos + 4 > size:
            raise ValueError("RTP packet has truncated extension header")
        profile, words = _EXT_HEADER.unpack_from(data, pos)
        ext_start = pos + 4
        ext_end = pos = ext_start + words * 4
        if ext_end > size:
            raise ValueError("RTP packet has truncated extension")
    end = size
    if first & 0x20:
        # RFC 3550 section 5.1: the last octet counts the padding, itself included.
        padding = data[-1]
        if padding == 0 or pos + padding > size:
            raise ValueError("RTP packet has invalid padding length")
        end -= padding
    return RtpHeader(
        bool(second & 0x80), second & 0x7F, seq, timestamp, ssrc,
        profile, ext_start, ext_end, pos, end,
    )  # fmt: skip


# -- RFC 8285 extension elements ---------------------------------------------


def _is_two_byte(profile: int) -> bool:
    return profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE


def _elements(data: bytes | bytearray, header: RtpHeader) -> list[_Element]:
    """List the elements of an RFC 8285 block; other profiles have none."""
    if header.extension_profile == ONE_BYTE_PROFILE:
        return _one_byte_elements(data, header.extensions_start, header.extensions_end)
    if _is_two_byte(header.extension_profile):
        return _two_byte_elements(data, header.extensions_start, header.extensions_end)
    return []


def _one_byte_elements(data: bytes | bytearray, pos: int, end: int) -> list[_Element]:
    """RFC 8285 section 4.2: 4-bit id, 4-bit length-1; id 0 pads, id 15 stops."""
    found: list[_Element] = []
    while pos < end:
        byte = data[pos]
        if byte == 0:
            pos += 1
            continue
        ext_id = byte >> 4
        if ext_id == 15:
            break
        value_end = pos + 2 + (byte & 0x0F)
        if value_end > end:
            raise ValueError(f"RTP header extension {ext_id} is truncated")
        found.append((ext_id, pos, pos + 1, value_end))
        pos = value_end
    return found


def _two_byte_elements(data: bytes | bytearray, pos: int, end: int) -> list[_Element]:
    """RFC 8285 section 4.3: 8-bit id, 8-bit length; id 0 pads."""
    found: list[_Element] = []
    while pos < end:
        ext_id = data[pos]
        if ext_id == 0:
            pos += 1
            continue
        if pos + 2 > end:
            raise ValueError(f"RTP header extension {ext_id} is truncated")
        value_end = pos + 2 + data[pos + 1]
        if value_end > end:
            raise ValueError(f"RTP header extension {ext_id} is truncated")
        found.append((ext_id, pos, pos + 2, value_end))
        pos = value_end
    return found


def read_extensions(data: bytes | bytearray, header: RtpHeader) -> dict[int, bytes]:
    """All RFC 8285 extension values of a packet as ``{id: value}``."""
    return {ext_id: bytes(data[start:end]) for ext_id, _, start, end in _elements(data, header)}


def get_extension(data: bytes | bytearray, header: RtpHeader, ext_id: int) -> bytes | None:
    """The value of extension ``ext_id`` (RFC 8285), or None when absent."""
    for found_id, _, start, end in _elements(data, header):
        if found_id == ext_id:
            return bytes(data[start:end])
    return None


def _extension_block(extensions: Mapping[int, bytes], profile: int | None = None) -> bytes:
    """Serialize an RFC 8285 block (with its 4-byte header), padded to 32 bits.

    ``profile`` None picks the one-byte form when every element fits it
    (RFC 8285 section 4.1.2), else the two-byte form.
    """
    if not extensions:
        return b""
    if profile is None:
        profile = ONE_BYTE_PROFILE if _fits_one_byte(extensions) else TWO_BYTE_PROFILE
    if profile == ONE_BYTE_PROFILE:
        body = _one_byte_body(extensions)
    elif _is_two_byte(profile):
        body = _two_byte_body(extensions)
    else:
        raise ValueError(f"RTP extension profile 0x{profile:04x} is not RFC 8285")
    body += bytes(-len(body) % 4)
    return _EXT_HEADER.pack(profile, len(body) // 4) + body


def _fits_one_byte(extensions: Mapping[int, bytes]) -> bool:
    return all(1 <= i <= 14 and 1 <= len(v) <= 16 for i, v in extensions.items())


def _one_byte_body(extensions: Mapping[int, bytes]) -> bytes:
    if not _fits_one_byte(extensions):
        raise ValueError("RTP one-byte extensions need ids 1..14 and values of 1..16 bytes")
    return b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in extensions.items())


def _two_byte_body(extensions: Mapping[int, bytes]) -> bytes:
    if not all(1 <= i <= 255 and len(v) <= 255 for i, v in extensions.items()):
        raise ValueError("RTP two-byte extensions need ids 1..255 and values up to 255 bytes")
    return b"".join(bytes([i, len(v)]) + v for i, v in extensions.items())


# -- typed extension values ---------------------------------------------------


def decode_abs_send_time(value: bytes) -> int:
    """The 24-bit 6.18 fixed-point seconds of the abs-send-time extension (webrtc.org)."""
    if len(value) != 3:
        raise ValueError("RTP abs-send-time extension is not 3 bytes")
    return int.from_bytes(value, "big")


def encode_abs_send_time(seconds: float) -> bytes:
    """Encode a time in seconds as abs-send-time (6.18 fixed point, wraps every 64 s)."""
    return (int(seconds * (1 << 18)) & 0xFFFFFF).to_bytes(3, "big")


# -- setting one element (RTX and retransmissions; forwarding is engine/rewrite.py) ----


def _rebuild(
    data: bytes | bytearray, header: RtpHeader, extensions: Mapping[int, bytes]
) -> bytearray:
    """A copy of the packet with a freshly serialized extension block."""
    csrc_end = RTP_HEADER_SIZE + (data[0] & 0x0F) * 4
    block = _extension_block(extensions)
    out = bytearray(data[:csrc_end])
    out[0] = (out[0] & 0xEF) | (0x10 if block else 0)
    out += block
    out += data[header.payload_start :]
    return out


def set_extension(data: bytes | bytearray, header: RtpHeader, ext_id: int, value: bytes) -> bytes:
    """A copy of ``data`` with extension ``ext_id`` set to ``value`` (RFC 8285).

    The value is written in place when an element with that id and length
    exists, or into a run of padding bytes inside the block; otherwise the
    extension block is rebuilt (the packet grows).
    """
    return bytes(_set_in(bytearray(data), header, _elements(data, header), ext_id, value))


def write_transport_sequence_number(
    data: bytes | bytearray, header: RtpHeader, ext_id: int, sequence_number: int
) -> bytes:
    """A copy of ``data`` carrying transport-wide seq ``sequence_number`` in ``ext_id``."""
    return set_extension(data, header, ext_id, _U16.pack(sequence_number & 0xFFFF))


def _set_in(
    buf: bytearray, header: RtpHeader, elements: list[_Element], ext_id: int, value: bytes
) -> bytearray:
    present = False
    for found_id, _, start, end in elements:
        if found_id == ext_id:
            if end - start == len(value):
                buf[start:end] = value
                return buf
            present = True
    if not present and _insert_in_gap(buf, header, elements, ext_id, value):
        return buf
    extensions = {e[0]: bytes(buf[e[2] : e[3]]) for e in elements}
    extensions[ext_id] = value
    return _rebuild(buf, header, extensions)


def _insert_in_gap(
    buf: bytearray, header: RtpHeader, elements: list[_Element], ext_id: int, value: bytes
) -> bool:
    """Write a new element into a run of zero padding bytes, if one is long enough."""
    if header.extension_profile == ONE_BYTE_PROFILE:
        if not (1 <= ext_id <= 14 and 1 <= len(value) <= 16):
            return False
        element = bytes([(ext_id << 4) | (len(value) - 1)]) + value
    elif _is_two_byte(header.extension_profile):
        element = bytes([ext_id, len(value)]) + value
    else:
        return False
    gap = _find_gap(buf, header, elements, len(element))
    if gap < 0:
        return False
    buf[gap : gap + len(element)] = element
    return True


def _find_gap(buf: bytearray, header: RtpHeader, elements: list[_Element], size: int) -> int:
    """Offset of ``size`` consecutive padding bytes between elements, or -1.

    Bytes between elements are padding by construction (the walk skips only
    zeros); after the last element they are checked, since a one-byte id 15
    ends the walk early.
    """
    pos = header.extensions_start
    for _, start, _, end in elements:
        if start - pos >= size:
            return pos
        pos = end
    tail = header.extensions_end
    if tail - pos >= size and not any(buf[pos:tail]):
        return pos
    return -1


# -- RTX (RFC 4588) ------------------------------------------------------------


def _write_fixed(
    buf: bytearray,
    header: RtpHeader,
    ssrc: int | None,
    payload_type: int | None,
    sequence_number: int | None,
    timestamp: int | None,
) -> None:
    if payload_type is not None:
        buf[1] = (buf[1] & 0x80) | (payload_type & 0x7F)
    _SEQ_TS_SSRC.pack_into(
        buf, 2,
        header.sequence_number if sequence_number is None else sequence_number & 0xFFFF,
        header.timestamp if timestamp is None else timestamp & 0xFFFFFFFF,
        header.ssrc if ssrc is None else ssrc,
    )  # fmt: skip


def wrap_rtx(
    data: bytes | bytearray,
    header: RtpHeader,
    *,
    ssrc: int,
    payload_type: int,
    sequence_number: int,
) -> bytes:
    """Wrap a packet for retransmission (RFC 4588 section 4).

    The RTX payload is the original sequence number (OSN) followed by the
    original payload; header and extensions are kept, padding is dropped.
    """
    out = bytearray(data[: header.payload_start])
    out[0] &= 0xDF
    _write_fixed(out, header, ssrc, payload_type, sequence_number, None)
    out += _U16.pack(header.sequence_number)
    out += data[header.payload_start : header.payload_end]
    return bytes(out)


def unwrap_rtx(
    data: bytes | bytearray, header: RtpHeader, *, ssrc: int, payload_type: int
) -> bytes:
    """Restore the original packet from an RTX packet (RFC 4588 section 4).

    ``ssrc`` / ``payload_type`` are the original stream's (from the SDP
    ``apt`` association). Padding-only RTX packets (bandwidth probes) have no
    OSN and raise ValueError.
    """
    if header.payload_end - header.payload_start < 2:
        raise ValueError("RTX packet has no original sequence number")
    (osn,) = _U16.unpack_from(data, header.payload_start)
    out = bytearray(data[: header.payload_start])
    out[0] &= 0xDF
    _write_fixed(out, header, ssrc, payload_type, osn, None)
    out += data[header.payload_start + 2 : header.payload_end]
    return bytes(out)


# -- the full packet -----------------------------------------------------------


@dataclass
class RtpPacket:
    """An RTP packet (RFC 3550 section 5.1).

    ``extensions`` holds RFC 8285 elements. ``extension_profile`` is the
    block's profile: None picks a form when serializing; 0xBEDE / 0x100X force
    one; any other value is a non-RFC 8285 block whose body is
    ``extension_data``.
    """

    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    extensions: dict[int, bytes] = field(default_factory=dict)
    payload: bytes = b""
    padding_size: int = 0
    extension_profile: int | None = None
    extension_data: bytes = b""

    @classmethod
    def parse(cls, data: bytes | bytearray) -> RtpPacket:
        header = read_header(data)
        count = data[0] & 0x0F
        profile = header.extension_profile if data[0] & 0x10 else None
        raw = b""
        if profile is not None and profile != ONE_BYTE_PROFILE and not _is_two_byte(profile):
            raw = bytes(data[header.extensions_start : header.extensions_end])
        return cls(
            payload_type=header.payload_type,
            sequence_number=header.sequence_number,
            timestamp=header.timestamp,
            ssrc=header.ssrc,
            marker=header.marker,
            csrc=list(struct.unpack_from(f"!{count}I", data, RTP_HEADER_SIZE)),
            extensions=read_extensions(data, header),
            payload=bytes(data[header.payload_start : header.payload_end]),
            padding_size=len(data) - header.payload_end,
            extension_profile=profile,
            extension_data=raw,
        )

    def serialize(self) -> bytes:
        if len(self.csrc) > 15:
            raise ValueError("RTP packet cannot carry more than 15 CSRCs")
        if not 0 <= self.padding_size <= 255:
            raise ValueError("RTP padding size must be 0..255")
        block = self._serialize_block()
        first = (RTP_VERSION << 6) | len(self.csrc)
        first |= (0x20 if self.padding_size else 0) | (0x10 if block else 0)
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        out = _FIXED.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)
        out += struct.pack(f"!{len(self.csrc)}I", *self.csrc) + block + self.payload
        if self.padding_size:
            out += bytes(self.padding_size - 1) + bytes([self.padding_size])
        return out

    def _serialize_block(self) -> bytes:
        profile = self.extension_profile
        if profile is None or profile == ONE_BYTE_PROFILE or _is_two_byte(profile):
            return _extension_block(self.extensions, profile)
        if len(self.extension_data) % 4:
            raise ValueError("RTP extension data must be a multiple of 4 bytes")
        return _EXT_HEADER.pack(profile, len(self.extension_data) // 4) + self.extension_data
