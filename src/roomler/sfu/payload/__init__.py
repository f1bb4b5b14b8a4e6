"""Video RTP payload formats, sans-I/O: keyframes and layer ids per codec.

One module per payload format: :mod:`.vp8` (RFC 7741, read and rewrite the
descriptor), :mod:`.vp9` (RFC 9628), :mod:`.h264` (RFC 6184), :mod:`.av1`
(AOM's AV1 RTP specification and its dependency descriptor).
:func:`describe` gives what layer switching needs from any of them.
"""

from __future__ import annotations

from typing import NamedTuple

from roomler.sfu.payload.av1 import av1_keyframe, av1_obu_layers
from roomler.sfu.payload.h264 import h264_keyframe
from roomler.sfu.payload.vp8 import parse_vp8, vp8_keyframe
from roomler.sfu.payload.vp9 import parse_vp9, vp9_keyframe

__all__ = ["PayloadInfo", "describe", "is_keyframe"]


class PayloadInfo(NamedTuple):
    keyframe: bool
    spatial_layer: int
    temporal_layer: int


def _vp8(payload: bytes | bytearray) -> PayloadInfo:
    descriptor = parse_vp8(payload)
    return PayloadInfo(descriptor.keyframe, 0, descriptor.temporal_layer)


def _vp9(payload: bytes | bytearray) -> PayloadInfo:
    descriptor = parse_vp9(payload)
    return PayloadInfo(descriptor.keyframe, descriptor.sid, descriptor.tid)


def _h264(payload: bytes | bytearray) -> PayloadInfo:
    return PayloadInfo(h264_keyframe(payload), 0, 0)


def _av1(payload: bytes | bytearray) -> PayloadInfo:
    layers = av1_obu_layers(payload) or (0, 0)
    return PayloadInfo(av1_keyframe(payload), *layers)


_DESCRIBERS = {"vp8": _vp8, "vp9": _vp9, "h264": _h264, "av1": _av1}


def describe(payload: bytes | bytearray, mime_type: str) -> PayloadInfo:
    """Keyframe flag and layer ids of one packet of ``mime_type`` ("video/VP8", ...).

    Layer ids are the payload's own (VP8 TID, VP9 SID/TID, an AV1 OBU
    extension header); AV1 streams that signal layers with the dependency
    descriptor need :class:`roomler.sfu.payload.av1.DependencyDescriptorReader`.
    ValueError for an unknown codec or a malformed payload.
    """
    describer = _DESCRIBERS.get(mime_type.rpartition("/")[2].lower())
    if describer is None:
        raise ValueError(f"no payload reader for {mime_type!r}")
    return describer(payload)


# Keyframe checks run on every incoming video packet: no descriptor objects.
_KEYFRAME_CHECKS = {
    "vp8": vp8_keyframe,
    "vp9": vp9_keyframe,
    "h264": h264_keyframe,
    "av1": av1_keyframe,
}


def is_keyframe(payload: bytes | bytearray, mime_type: str) -> bool:
    """True when ``payload`` starts a keyframe; False for other codecs or malformed input."""
    check = _KEYFRAME_CHECKS.get(mime_type.rpartition("/")[2].lower())
    return check is not None and check(payload)
