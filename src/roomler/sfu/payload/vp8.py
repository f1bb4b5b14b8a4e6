"""The VP8 RTP payload descriptor (RFC 7741 section 4.2), read and rewritten.

A simulcast consumer forwards several encodings (each with its own PictureID
and TL0PICIDX sequence) as one stream, so it rewrites those fields; it drops
temporal layers by TID.  The descriptor::

     X|R|N|S|R|PID        first octet (X: extension present, N: non-reference,
                          S: start of partition, PID: partition index)
     I|L|T|K|RSV          if X
     M|PictureID          if I: 7 bits, or 15 bits when M is set
     TL0PICIDX            if L
     TID|Y|KEYIDX         if T or K (TID 2 bits, Y layer sync, KEYIDX 5 bits)

followed, at the start of partition 0, by the VP8 payload header whose P bit
is 0 on a keyframe (RFC 7741 section 4.3, RFC 6386 section 9.1).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Vp8Descriptor", "parse_vp8", "rewrite_vp8", "vp8_keyframe"]


class Vp8Descriptor(NamedTuple):
    """One packet's descriptor; ``None`` for fields the packet does not carry.

    The ``*_offset`` fields index the payload where the field starts, so that
    :func:`rewrite_vp8` can change it in place; ``size`` is the descriptor's
    length (where the VP8 payload begins).
    """

    start_of_partition: bool
    partition_index: int
    non_reference: bool
    picture_id: int | None
    picture_id_15bit: bool
    tl0picidx: int | None
    tid: int | None
    layer_sync: bool
    keyidx: int | None
    keyframe: bool
    size: int
    picture_id_offset: int
    tl0picidx_offset: int
    tid_offset: int

    @property
    def temporal_layer(self) -> int:
        """The temporal layer (0 when the stream has none)."""
        return self.tid or 0

    @property
    def begins_frame(self) -> bool:
        return self.start_of_partition and self.partition_index == 0


def _need(payload: bytes | bytearray, size: int) -> None:
    if len(payload) < size:
        raise ValueError(f"VP8 payload descriptor truncated: {len(payload)} bytes, needs {size}")


def parse_vp8(payload: bytes | bytearray) -> Vp8Descriptor:
    """Read the descriptor at the start of an RTP payload; ValueError if truncated."""
    _need(payload, 1)
    first = payload[0]
    pos = 1
    picture_id = tl0 = tid = keyidx = None
    picture_15 = layer_sync = False
    picture_offset = tl0_offset = tid_offset = -1
    if first & 0x80:  # X
        _need(payload, 2)
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I
            _need(payload, pos + 1)
            picture_offset = pos
            picture_15 = bool(payload[pos] & 0x80)
            if picture_15:
                _need(payload, pos + 2)
                picture_id = ((payload[pos] & 0x7F) << 8) | payload[pos + 1]
                pos += 2
            else:
                picture_id = payload[pos] & 0x7F
                pos += 1
        if ext & 0x40:  # L
            _need(payload, pos + 1)
            tl0_offset = pos
            tl0 = payload[pos]
            pos += 1
        if ext & 0x30:  # T or K share one octet
            _need(payload, pos + 1)
            tid_offset = pos
            octet = payload[pos]
            if ext & 0x20:
                tid = octet >> 6
                layer_sync = bool(octet & 0x20)
            if ext & 0x10:
                keyidx = octet & 0x1F
            pos += 1
    start = bool(first & 0x10)
    partition = first & 0x07
    # RFC 7741 section 4.3: P (bit 0 of the payload header) is 0 on a keyframe.
    keyframe = start and partition == 0 and len(payload) > pos and not payload[pos] & 0x01
    return Vp8Descriptor(
        start,
        partition,
        bool(first & 0x20),
        picture_id,
        picture_15,
        tl0,
        tid,
        layer_sync,
        keyidx,
        keyframe,
        pos,
        picture_offset,
        tl0_offset,
        tid_offset,
    )


def rewrite_vp8(
    payload: bytes | bytearray,
    descriptor: Vp8Descriptor,
    *,
    picture_id: int | None = None,
    tl0picidx: int | None = None,
    keyidx: int | None = None,
) -> bytes:
    """A copy of ``payload`` with the given fields replaced, same size.

    Only fields the packet carries can be replaced (ValueError otherwise); a
    7-bit PictureID takes the new value modulo 128 (RFC 7741: it wraps).
    """
    out = bytearray(payload)
    if picture_id is not None:
        pos = descriptor.picture_id_offset
        if pos < 0:
            raise ValueError("VP8 packet has no PictureID to rewrite")
        if descriptor.picture_id_15bit:
            value = picture_id & 0x7FFF
            out[pos] = 0x80 | (value >> 8)
            out[pos + 1] = value & 0xFF
        else:
            out[pos] = picture_id & 0x7F
    if tl0picidx is not None:
        if descriptor.tl0picidx_offset < 0:
            raise ValueError("VP8 packet has no TL0PICIDX to rewrite")
        out[descriptor.tl0picidx_offset] = tl0picidx & 0xFF
    if keyidx is not None:
        if descriptor.keyidx is None:
            raise ValueError("VP8 packet has no KEYIDX to rewrite")
        pos = descriptor.tid_offset
        out[pos] = (out[pos] & 0xE0) | (keyidx & 0x1F)
    return bytes(out)


def vp8_keyframe(payload: bytes | bytearray) -> bool:
    """:attr:`Vp8Descriptor.keyframe` without building the descriptor (per-packet path)."""
    size = len(payload)
    if size == 0:
        return False
    first = payload[0]
    pos = 1
    if first & 0x80:  # X
        if size < 2:
            return False
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: 7- or 15-bit PictureID
            if size <= pos:
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        pos += 1 if ext & 0x40 else 0  # L
        pos += 1 if ext & 0x30 else 0  # T or K
    if not first & 0x10 or first & 0x07 or size <= pos:
        return False
    return not payload[pos] & 0x01
