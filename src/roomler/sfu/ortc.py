"""ORTC negotiation between browsers (mediasoup-client) and the SFU's Router.

Everything here speaks mediasoup's JSON wire shapes (camelCase keys), because
browsers send `rtpParameters` / `rtpCapabilities` exactly as mediasoup-client
builds them and expect the same shapes back.  The flow for one media stream:

1. `generate_router_rtp_capabilities(media_codecs)` once per Router; the
   browser loads the result with `Device.load({ routerRtpCapabilities })`.
2. A browser produces: `get_producer_rtp_parameters_mapping()` maps the
   browser's payload types and SSRCs/RIDs to the Router's, and
   `get_consumable_rtp_parameters()` describes the stream in Router terms.
3. Another browser consumes: `can_consume()` and
   `get_consumer_rtp_parameters()` cut the consumable description down to what
   that browser can receive, with a fresh SSRC.

Header-extension ids are negotiated per session (RFC 8285 section 5): a
producer's packets carry the browser's ids, consumers get the Router's ids, so
`get_header_extension_id_mapping()` tells the forwarder how to rewrite them.

Every function validates its inputs and raises `ValueError` (or its subclass
`UnsupportedError`) naming the offending field; inputs are never mutated.
"""

from __future__ import annotations

import copy
import re
import secrets
from dataclasses import dataclass
from typing import Any, Final, NotRequired, TypedDict

from roomler.sfu.codecs import (
    ABS_SEND_TIME_URI,
    MID_URI,
    SUPPORTED_RTP_CAPABILITIES,
    TRANSPORT_CC_URI,
)

ParameterValue = str | int | float


class UnsupportedError(ValueError):
    """The input is well formed but asks for something the SFU cannot do."""


class RtcpFeedback(TypedDict):
    type: str
    parameter: str


class RtpCodecCapability(TypedDict):
    kind: str
    mimeType: str
    preferredPayloadType: NotRequired[int]
    clockRate: int
    channels: NotRequired[int]
    parameters: dict[str, ParameterValue]
    rtcpFeedback: list[RtcpFeedback]


class RtpHeaderExtension(TypedDict):
    kind: str
    uri: str
    preferredId: int
    preferredEncrypt: bool
    direction: str


class RtpCapabilities(TypedDict):
    codecs: list[RtpCodecCapability]
    headerExtensions: list[RtpHeaderExtension]


class RtpCodecParameters(TypedDict):
    mimeType: str
    payloadType: int
    clockRate: int
    channels: NotRequired[int]
    parameters: dict[str, ParameterValue]
    rtcpFeedback: list[RtcpFeedback]


class RtpHeaderExtensionParameters(TypedDict):
    uri: str
    id: int
    encrypt: bool
    parameters: dict[str, ParameterValue]


class RtxParameters(TypedDict):
    ssrc: int


class RtpEncodingParameters(TypedDict, total=False):
    # Browsers may add further RTCRtpEncodingParameters fields; they are kept.
    ssrc: int
    rid: str
    codecPayloadType: int
    rtx: RtxParameters
    dtx: bool
    scalabilityMode: str
    maxBitrate: int


class RtcpParameters(TypedDict, total=False):
    cname: str
    reducedSize: bool
    mux: bool


class RtpParameters(TypedDict):
    mid: NotRequired[str]
    codecs: list[RtpCodecParameters]
    headerExtensions: list[RtpHeaderExtensionParameters]
    encodings: list[RtpEncodingParameters]
    rtcp: RtcpParameters


@dataclass(frozen=True)
class CodecMapping:
    payload_type: int  # as the producer sends it
    mapped_payload_type: int  # the Router's preferredPayloadType


@dataclass(frozen=True)
class EncodingMapping:
    mapped_ssrc: int
    ssrc: int | None = None
    rid: str | None = None
    scalability_mode: str | None = None


@dataclass(frozen=True)
class RtpMapping:
    """How one producer's payload types and streams map onto the Router's."""

    codecs: tuple[CodecMapping, ...]
    encodings: tuple[EncodingMapping, ...]

    def mapped_payload_type(self, payload_type: int) -> int | None:
        for entry in self.codecs:
            if entry.payload_type == payload_type:
                return entry.mapped_payload_type
        return None

    def to_json(self) -> dict[str, Any]:
        """mediasoup's `RtpMapping` JSON shape."""
        encodings: list[dict[str, Any]] = []
        for enc in self.encodings:
            item: dict[str, Any] = {"mappedSsrc": enc.mapped_ssrc}
            if enc.ssrc is not None:
                item["ssrc"] = enc.ssrc
            if enc.rid is not None:
                item["rid"] = enc.rid
            if enc.scalability_mode is not None:
                item["scalabilityMode"] = enc.scalability_mode
            encodings.append(item)
        return {
            "codecs": [
                {"payloadType": c.payload_type, "mappedPayloadType": c.mapped_payload_type}
                for c in self.codecs
            ],
            "encodings": encodings,
        }


# mediasoup's allocation order for dynamic payload types (RFC 3551 section 6: 96-127).
DYNAMIC_PAYLOAD_TYPES: Final[tuple[int, ...]] = (*range(100, 128), *range(96, 100))

_MIME_TYPE_RE: Final = re.compile(r"^(audio|video)/(.+)$", re.IGNORECASE)
_DIRECTIONS: Final = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})
_MAX_SSRC: Final = 0xFFFFFFFF
_MAX_PAYLOAD_TYPE: Final = 127
_MAX_EXTENSION_ID: Final = 255  # RFC 8285 two-byte header; one-byte ids stop at 14


# ---------------------------------------------------------------------------
# Field readers: each names the full JSON path of what it rejects.


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _object(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{path} must be an object")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{path} must be an array")
    return value


def _optional_list(obj: dict[str, Any], key: str, path: str) -> list[Any]:
    value = obj.get(key)
    return [] if value is None else _list(value, f"{path}.{key}")


def _int(obj: dict[str, Any], key: str, path: str, low: int, high: int) -> int:
    value = obj.get(key)
    if value is None:
        raise ValueError(f"{path}.{key} is required")
    if not _is_int(value):
        raise ValueError(f"{path}.{key} must be an integer")
    if not low <= value <= high:
        raise ValueError(f"{path}.{key} must be between {low} and {high}, got {value}")
    return int(value)


def _optional_int(obj: dict[str, Any], key: str, path: str, low: int, high: int) -> int | None:
    return None if obj.get(key) is None else _int(obj, key, path, low, high)


def _str(obj: dict[str, Any], key: str, path: str) -> str:
    value = obj.get(key)
    if value is None:
        raise ValueError(f"{path}.{key} is required")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{path}.{key} must be a non-empty string")
    return value


def _optional_str(obj: dict[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{path}.{key} must be a string")
    return value


def _optional_bool(obj: dict[str, Any], key: str, path: str, default: bool) -> bool:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValueError(f"{path}.{key} must be a boolean")
    return value


def _kind_of_mime_type(mime_type: str, path: str) -> str:
    match = _MIME_TYPE_RE.match(mime_type)
    if match is None:
        raise ValueError(
            f"{path} must look like 'audio/<name>' or 'video/<name>', got {mime_type!r}"
        )
    return match.group(1).lower()


def _parameters(obj: dict[str, Any], path: str) -> dict[str, ParameterValue]:
    """Codec/extension `parameters`: string keys, string or number values."""
    raw = obj.get("parameters")
    if raw is None:
        return {}
    source = _object(raw, f"{path}.parameters")
    result: dict[str, ParameterValue] = {}
    for key, value in source.items():
        if value is None:
            value = ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"{path}.parameters.{key} must be a string or a number")
        result[key] = value
    if "apt" in result and not _is_int(result["apt"]):
        raise ValueError(f"{path}.parameters.apt must be an integer")
    return result


def _rtcp_feedback(obj: dict[str, Any], path: str) -> list[RtcpFeedback]:
    result: list[RtcpFeedback] = []
    for index, item in enumerate(_optional_list(obj, "rtcpFeedback", path)):
        fb_path = f"{path}.rtcpFeedback[{index}]"
        fb = _object(item, fb_path)
        parameter = _optional_str(fb, "parameter", fb_path) or ""
        result.append({"type": _str(fb, "type", fb_path), "parameter": parameter})
    return result


# ---------------------------------------------------------------------------
# Validation (returns normalized copies, defaults filled the way mediasoup does).


def _validate_codec_capability(value: object, path: str) -> RtpCodecCapability:
    obj = _object(value, path)
    mime_type = _str(obj, "mimeType", path)
    kind = _kind_of_mime_type(mime_type, f"{path}.mimeType")  # mediasoup derives kind
    codec: RtpCodecCapability = {
        "kind": kind,
        "mimeType": mime_type,
        "clockRate": _int(obj, "clockRate", path, 1, 2**32 - 1),
        "parameters": _parameters(obj, path),
        "rtcpFeedback": _rtcp_feedback(obj, path),
    }
    preferred = _optional_int(obj, "preferredPayloadType", path, 0, _MAX_PAYLOAD_TYPE)
    if preferred is not None:
        codec["preferredPayloadType"] = preferred
    if kind == "audio":
        codec["channels"] = _optional_int(obj, "channels", path, 1, 255) or 1
    return codec


def _validate_header_extension(value: object, path: str) -> RtpHeaderExtension:
    obj = _object(value, path)
    kind = obj.get("kind")
    if kind not in ("audio", "video"):
        raise ValueError(f"{path}.kind must be 'audio' or 'video'")
    direction = _optional_str(obj, "direction", path) or "sendrecv"
    if direction not in _DIRECTIONS:
        raise ValueError(f"{path}.direction must be one of {sorted(_DIRECTIONS)}")
    return {
        "kind": kind,
        "uri": _str(obj, "uri", path),
        "preferredId": _int(obj, "preferredId", path, 1, _MAX_EXTENSION_ID),
        "preferredEncrypt": _optional_bool(obj, "preferredEncrypt", path, False),
        "direction": direction,
    }


def validate_rtp_capabilities(caps: object, path: str = "rtpCapabilities") -> RtpCapabilities:
    """Check the shape of RtpCapabilities and return a normalized copy."""
    obj = _object(caps, path)
    return {
        "codecs": [
            _validate_codec_capability(item, f"{path}.codecs[{index}]")
            for index, item in enumerate(_optional_list(obj, "codecs", path))
        ],
        "headerExtensions": [
            _validate_header_extension(item, f"{path}.headerExtensions[{index}]")
            for index, item in enumerate(_optional_list(obj, "headerExtensions", path))
        ],
    }


def _validate_codec_parameters(value: object, path: str) -> RtpCodecParameters:
    obj = _object(value, path)
    mime_type = _str(obj, "mimeType", path)
    kind = _kind_of_mime_type(mime_type, f"{path}.mimeType")
    codec: RtpCodecParameters = {
        "mimeType": mime_type,
        "payloadType": _int(obj, "payloadType", path, 0, _MAX_PAYLOAD_TYPE),
        "clockRate": _int(obj, "clockRate", path, 1, 2**32 - 1),
        "parameters": _parameters(obj, path),
        "rtcpFeedback": _rtcp_feedback(obj, path),
    }
    if kind == "audio":
        codec["channels"] = _optional_int(obj, "channels", path, 1, 255) or 1
    return codec


def _validate_header_extension_parameters(value: object, path: str) -> RtpHeaderExtensionParameters:
    obj = _object(value, path)
    return {
        "uri": _str(obj, "uri", path),
        "id": _int(obj, "id", path, 1, _MAX_EXTENSION_ID),
        "encrypt": _optional_bool(obj, "encrypt", path, False),
        "parameters": _parameters(obj, path),
    }


def _validate_encoding(value: object, path: str) -> RtpEncodingParameters:
    obj = _object(value, path)
    encoding: RtpEncodingParameters = copy.deepcopy(obj)  # type: ignore[assignment]
    for key in ("ssrc", "rid", "codecPayloadType", "rtx", "scalabilityMode", "maxBitrate"):
        encoding.pop(key, None)  # type: ignore[misc]
    ssrc = _optional_int(obj, "ssrc", path, 0, _MAX_SSRC)
    if ssrc is not None:
        encoding["ssrc"] = ssrc
    rid = _optional_str(obj, "rid", path)
    if rid is not None:
        encoding["rid"] = rid
    codec_pt = _optional_int(obj, "codecPayloadType", path, 0, _MAX_PAYLOAD_TYPE)
    if codec_pt is not None:
        encoding["codecPayloadType"] = codec_pt
    if obj.get("rtx") is not None:
        rtx = _object(obj["rtx"], f"{path}.rtx")
        encoding["rtx"] = {"ssrc": _int(rtx, "ssrc", f"{path}.rtx", 0, _MAX_SSRC)}
    encoding["dtx"] = _optional_bool(obj, "dtx", path, False)
    mode = _optional_str(obj, "scalabilityMode", path)
    if mode is not None:
        encoding["scalabilityMode"] = mode
    max_bitrate = _optional_int(obj, "maxBitrate", path, 0, 2**53)
    if max_bitrate is not None:
        encoding["maxBitrate"] = max_bitrate
    return encoding


def _validate_rtcp(obj: dict[str, Any], path: str) -> RtcpParameters:
    raw = obj.get("rtcp")
    rtcp_obj = {} if raw is None else _object(raw, f"{path}.rtcp")
    rtcp: RtcpParameters = {}
    cname = _optional_str(rtcp_obj, "cname", f"{path}.rtcp")
    if cname is not None:
        rtcp["cname"] = cname
    rtcp["reducedSize"] = _optional_bool(rtcp_obj, "reducedSize", f"{path}.rtcp", True)
    if rtcp_obj.get("mux") is not None:
        rtcp["mux"] = _optional_bool(rtcp_obj, "mux", f"{path}.rtcp", True)
    return rtcp


def _reject_duplicates(values: list[int], path: str, what: str) -> None:
    seen: set[int] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise ValueError(f"{path}[{index}].{what} {value} is used twice")
        seen.add(value)


def validate_rtp_parameters(params: object, path: str = "rtpParameters") -> RtpParameters:
    """Check the shape of RtpParameters and return a normalized copy."""
    obj = _object(params, path)
    if obj.get("codecs") is None:
        raise ValueError(f"{path}.codecs is required")
    codecs = [
        _validate_codec_parameters(item, f"{path}.codecs[{index}]")
        for index, item in enumerate(_list(obj["codecs"], f"{path}.codecs"))
    ]
    _reject_duplicates([c["payloadType"] for c in codecs], f"{path}.codecs", "payloadType")
    extensions = [
        _validate_header_extension_parameters(item, f"{path}.headerExtensions[{index}]")
        for index, item in enumerate(_optional_list(obj, "headerExtensions", path))
    ]
    _reject_duplicates([e["id"] for e in extensions], f"{path}.headerExtensions", "id")
    encodings = [
        _validate_encoding(item, f"{path}.encodings[{index}]")
        for index, item in enumerate(_optional_list(obj, "encodings", path))
    ]
    result: RtpParameters = {
        "codecs": codecs,
        "headerExtensions": extensions,
        # Absent or empty: one stream, as mediasoup's Transport.produce() reads it
        # (its SSRC is then learned from the MID, see _map_encodings).
        "encodings": encodings or [{"dtx": False}],
        "rtcp": _validate_rtcp(obj, path),
    }
    mid = _optional_str(obj, "mid", path)
    if mid is not None:
        result["mid"] = mid
    return result


# ---------------------------------------------------------------------------
# H264 profile-level-id (RFC 6184 section 8.1), compared the way WebRTC does.

_H264_CONSTRAINED_BASELINE: Final = "constrained-baseline"
_H264_BASELINE: Final = "baseline"
_H264_MAIN: Final = "main"
_H264_CONSTRAINED_HIGH: Final = "constrained-high"
_H264_HIGH: Final = "high"
_H264_PREDICTIVE_HIGH_444: Final = "predictive-high-444"

# (profile_idc, profile-iop bit pattern with 'x' = don't care, profile)
_H264_PROFILE_PATTERNS: Final = (
    (0x42, "x1xx0000", _H264_CONSTRAINED_BASELINE),
    (0x4D, "1xxx0000", _H264_CONSTRAINED_BASELINE),
    (0x58, "11xx0000", _H264_CONSTRAINED_BASELINE),
    (0x42, "x0xx0000", _H264_BASELINE),
    (0x58, "10xx0000", _H264_BASELINE),
    (0x4D, "0x0x0000", _H264_MAIN),
    (0x64, "00000000", _H264_HIGH),
    (0x64, "00001100", _H264_CONSTRAINED_HIGH),
    (0xF4, "00000000", _H264_PREDICTIVE_HIGH_444),
)
_H264_PROFILE_IDC_IOP: Final = {
    _H264_CONSTRAINED_BASELINE: "42e0",
    _H264_BASELINE: "4200",
    _H264_MAIN: "4d00",
    _H264_CONSTRAINED_HIGH: "640c",
    _H264_HIGH: "6400",
    _H264_PREDICTIVE_HIGH_444: "f400",
}
_H264_LEVEL_1B: Final = 0  # level_idc 11 with constraint_set3_flag (RFC 6184 section 8.1)
_H264_LEVELS: Final = frozenset({10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52})
_H264_DEFAULT: Final = (_H264_CONSTRAINED_BASELINE, 31)  # absent profile-level-id: 42e01f-like


def _iop_matches(pattern: str, iop: int) -> bool:
    for bit, char in enumerate(pattern):
        value = (iop >> (7 - bit)) & 1
        if char != "x" and value != int(char):
            return False
    return True


def _parse_profile_level_id(text: str) -> tuple[str, int] | None:
    if len(text) != 6:
        return None
    try:
        numeric = int(text, 16)
    except ValueError:
        return None
    if numeric == 0:
        return None
    profile_idc, iop, level_idc = numeric >> 16, (numeric >> 8) & 0xFF, numeric & 0xFF
    if level_idc == 11 and iop & 0x10:
        level = _H264_LEVEL_1B
    elif level_idc in _H264_LEVELS:
        level = level_idc
    else:
        return None
    for idc, pattern, profile in _H264_PROFILE_PATTERNS:
        if idc == profile_idc and _iop_matches(pattern, iop):
            return profile, level
    return None


def _profile_level_id_of(params: dict[str, ParameterValue]) -> tuple[str, int] | None:
    value = params.get("profile-level-id")
    if value in (None, ""):
        return _H264_DEFAULT
    return _parse_profile_level_id(str(value))


def _profile_level_id_string(profile: str, level: int) -> str | None:
    if level == _H264_LEVEL_1B:
        return {
            _H264_CONSTRAINED_BASELINE: "42f00b",
            _H264_BASELINE: "42100b",
            _H264_MAIN: "4d100b",
        }.get(profile)
    return f"{_H264_PROFILE_IDC_IOP[profile]}{level:02x}"


def _h264_level_less(a: int, b: int) -> bool:
    # Level 1b sits between level 1 (10) and level 1.1 (11).
    if a == _H264_LEVEL_1B:
        return b not in (10, _H264_LEVEL_1B)
    if b == _H264_LEVEL_1B:
        return a == 10
    return a < b


def _level_asymmetry_allowed(params: dict[str, ParameterValue]) -> bool:
    return params.get("level-asymmetry-allowed") in (1, "1")


def _h264_answer_profile_level_id(
    local: dict[str, ParameterValue], remote: dict[str, ParameterValue]
) -> str | None:
    """RFC 6184 section 8.2.2 answer; None when neither side states one."""
    if local.get("profile-level-id") in (None, "") and remote.get("profile-level-id") in (None, ""):
        return None
    local_pli, remote_pli = _profile_level_id_of(local), _profile_level_id_of(remote)
    if local_pli is None or remote_pli is None or local_pli[0] != remote_pli[0]:
        raise ValueError("H264 profile mismatch")
    if _level_asymmetry_allowed(local) and _level_asymmetry_allowed(remote):
        level = local_pli[1]
    else:
        level = remote_pli[1] if _h264_level_less(remote_pli[1], local_pli[1]) else local_pli[1]
    return _profile_level_id_string(local_pli[0], level)


# ---------------------------------------------------------------------------
# Codec matching.


def _is_rtx(codec: RtpCodecCapability | RtpCodecParameters) -> bool:
    return codec["mimeType"].lower().endswith("/rtx")


def _int_parameter(params: dict[str, ParameterValue], key: str) -> ParameterValue:
    value = params.get(key, 0)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def _match_codecs(
    a: RtpCodecCapability | RtpCodecParameters,
    b: RtpCodecCapability | RtpCodecParameters,
    *,
    strict: bool,
) -> bool:
    """Same codec? `strict` also compares the codec-specific format parameters."""
    mime_type = a["mimeType"].lower()
    if mime_type != b["mimeType"].lower() or a["clockRate"] != b["clockRate"]:
        return False
    if a.get("channels") != b.get("channels"):
        return False
    if not strict:
        return True
    pa, pb = a["parameters"], b["parameters"]
    if mime_type == "video/h264":
        # RFC 6184 section 8.2.2: packetization-mode and profile must agree.
        if _int_parameter(pa, "packetization-mode") != _int_parameter(pb, "packetization-mode"):
            return False
        try:
            _h264_answer_profile_level_id(pa, pb)
        except ValueError:
            return False
        profile_a, profile_b = _profile_level_id_of(pa), _profile_level_id_of(pb)
        return profile_a is not None and profile_b is not None and profile_a[0] == profile_b[0]
    if mime_type == "video/vp9":
        # draft-ietf-payload-vp9 section 6: profile-id defaults to 0.
        return _int_parameter(pa, "profile-id") == _int_parameter(pb, "profile-id")
    return True


def _describe(codec: RtpCodecCapability | RtpCodecParameters) -> str:
    return f"mimeType {codec['mimeType']!r}, clockRate {codec['clockRate']}"


# ---------------------------------------------------------------------------
# Router capabilities.


def generate_router_rtp_capabilities(media_codecs: object) -> RtpCapabilities:
    """Router capabilities for `media_codecs`, with payload types and RTX assigned."""
    supported = validate_rtp_capabilities(SUPPORTED_RTP_CAPABILITIES, "supportedRtpCapabilities")
    codecs_in = _list(media_codecs, "mediaCodecs")
    free_pts = list(DYNAMIC_PAYLOAD_TYPES)
    wanted = [
        _validate_codec_capability(item, f"mediaCodecs[{index}]")
        for index, item in enumerate(codecs_in)
    ]
    # Explicit preferred payload types are reserved before any is handed out.
    for codec in wanted:
        if codec.get("preferredPayloadType") in free_pts:
            free_pts.remove(codec["preferredPayloadType"])
    result: list[RtpCodecCapability] = []
    for index, media_codec in enumerate(wanted):
        result.extend(_router_codec(media_codec, supported, free_pts, index, result))
    return {"codecs": result, "headerExtensions": supported["headerExtensions"]}


def _take_payload_type(free_pts: list[int]) -> int:
    if not free_pts:
        raise ValueError("cannot allocate more dynamic payload types")
    return free_pts.pop(0)


def _router_codec(
    media_codec: RtpCodecCapability,
    supported: RtpCapabilities,
    free_pts: list[int],
    index: int,
    taken: list[RtpCodecCapability],
) -> list[RtpCodecCapability]:
    match = next(
        (c for c in supported["codecs"] if _match_codecs(media_codec, c, strict=False)), None
    )
    if match is None:
        raise UnsupportedError(
            f"mediaCodecs[{index}]: media codec not supported ({_describe(media_codec)})"
        )
    pt = media_codec.get("preferredPayloadType", match.get("preferredPayloadType"))
    if pt is None:
        pt = _take_payload_type(free_pts)
    # Keys in mediasoup's order, so the JSON reads the same as a mediasoup Router's.
    codec: RtpCodecCapability = {
        "kind": match["kind"],
        "mimeType": match["mimeType"],
        "preferredPayloadType": pt,
        "clockRate": match["clockRate"],
        "parameters": {**match["parameters"], **media_codec["parameters"]},
        "rtcpFeedback": copy.deepcopy(match["rtcpFeedback"]),
    }
    if "channels" in match:
        codec["channels"] = match["channels"]
    if any(other.get("preferredPayloadType") == pt for other in taken):
        raise ValueError(f"mediaCodecs[{index}].preferredPayloadType {pt} is used twice")
    if codec["kind"] != "video":
        return [codec]
    # RFC 4588: one retransmission payload type per video payload type.
    rtx: RtpCodecCapability = {
        "kind": "video",
        "mimeType": "video/rtx",
        "preferredPayloadType": _take_payload_type(free_pts),
        "clockRate": codec["clockRate"],
        "parameters": {"apt": pt},
        "rtcpFeedback": [],
    }
    return [codec, rtx]


# ---------------------------------------------------------------------------
# Scalability modes and stream types.

# W3C webrtc-svc section 4 names ("L1T3", "L3T3_KEY", "S2T2"); a prefix match
# like mediasoup's, so suffixes such as "_SHIFT" are tolerated.
_SCALABILITY_MODE_RE: Final = re.compile(r"^[LS]([1-9]\d?)T([1-9]\d?)(_KEY)?")

#: mediasoup's RtpParameters types: what kind of stream a producer sends and
#: so which Consumer class forwards it ("pipe" is for consumers only).
SIMPLE: Final = "simple"
SIMULCAST: Final = "simulcast"
SVC: Final = "svc"
PIPE: Final = "pipe"

# Codecs the SFU can switch layers of.  Simulcast: one SSRC per encoding, the
# VP8 descriptor is rewritten so they look like one stream (RFC 7741), H.264
# has no descriptor to rewrite.  SVC: one SSRC whose packets carry spatial and
# temporal ids (VP9 descriptor, RFC 9628; AV1 dependency descriptor) -- AV1 is
# not in mediasoup's list.
_SIMULCAST_CODECS: Final = frozenset({"video/vp8", "video/h264"})
_SVC_CODECS: Final = frozenset({"video/vp9", "video/av1"})


@dataclass(frozen=True)
class ScalabilityMode:
    spatial_layers: int = 1
    temporal_layers: int = 1
    ksvc: bool = False  # "_KEY": spatial layers depend on each other only at keyframes


def parse_scalability_mode(mode: str | None) -> ScalabilityMode:
    """Layers of a `scalabilityMode`; absent or unknown means one of each."""
    match = _SCALABILITY_MODE_RE.match(mode or "")
    if match is None:
        return ScalabilityMode()
    return ScalabilityMode(int(match.group(1)), int(match.group(2)), match.group(3) is not None)


def get_producer_type(rtp_parameters: object) -> str:
    """ "simple", "simulcast" or "svc", decided as mediasoup's worker does.

    Several encodings are simulcast.  One encoding with several spatial or
    temporal layers is SVC for a codec whose packets carry layer ids, else
    simulcast (a VP8 L1T3 stream is switched by temporal layer like simulcast);
    a codec that can do neither with layers is unsupported.
    """
    params = validate_rtp_parameters(rtp_parameters)
    encodings = params["encodings"]
    if len(encodings) > 1:
        return SIMULCAST
    mode = parse_scalability_mode(encodings[0].get("scalabilityMode"))
    if mode.spatial_layers == 1 and mode.temporal_layers == 1:
        return SIMPLE
    mime_type = _codec_of_encoding(params, encodings[0])["mimeType"].lower()
    if mime_type in _SVC_CODECS:
        return SVC
    if mime_type in _SIMULCAST_CODECS:
        return SIMULCAST
    raise UnsupportedError(
        f"scalabilityMode {encodings[0].get('scalabilityMode')!r} is not supported for {mime_type}"
    )


def _codec_of_encoding(
    params: RtpParameters, encoding: RtpEncodingParameters
) -> RtpCodecParameters:
    media = [c for c in params["codecs"] if not _is_rtx(c)]
    if not media:
        raise UnsupportedError("rtpParameters.codecs has no media codec")
    pt = encoding.get("codecPayloadType")
    if pt is None:
        return media[0]
    codec = next((c for c in media if c["payloadType"] == pt), None)
    if codec is None:
        raise ValueError(f"encoding codecPayloadType {pt} names no media codec")
    return codec


def get_consumer_type(producer_type: str, *, pipe: bool = False) -> str:
    """`consumer.type` as mediasoup reports it: the producer's type, or "pipe"."""
    if producer_type not in (SIMPLE, SIMULCAST, SVC):
        raise ValueError(f"producer type must be simple, simulcast or svc, got {producer_type!r}")
    return PIPE if pipe else producer_type


# ---------------------------------------------------------------------------
# Producer side.


def _random_ssrc() -> int:
    # Same range as mediasoup: leaves room for +N offsets below 2**32.
    return 100_000_000 + secrets.randbelow(900_000_000)


def get_producer_rtp_parameters_mapping(
    producer_rtp_parameters: object, router_caps: object
) -> RtpMapping:
    """Map a producer's payload types to the Router's and give each encoding an SSRC."""
    params = validate_rtp_parameters(producer_rtp_parameters)
    caps = validate_rtp_capabilities(router_caps, "routerRtpCapabilities")
    return RtpMapping(
        codecs=tuple(_map_codecs(params, caps)),
        encodings=tuple(_map_encodings(params)),
    )


def _map_codecs(params: RtpParameters, caps: RtpCapabilities) -> list[CodecMapping]:
    media_to_router: dict[int, RtpCodecCapability] = {}
    for codec in params["codecs"]:
        if _is_rtx(codec):
            continue
        match = next((c for c in caps["codecs"] if _match_codecs(codec, c, strict=True)), None)
        if match is None or _is_rtx(match):
            raise UnsupportedError(
                f"unsupported codec mimeType {codec['mimeType']!r} "
                f"(payloadType {codec['payloadType']}, clockRate {codec['clockRate']})"
            )
        media_to_router[codec["payloadType"]] = match
    if not media_to_router:
        raise UnsupportedError("rtpParameters.codecs has no media codec")
    mapping = [
        CodecMapping(pt, router["preferredPayloadType"]) for pt, router in media_to_router.items()
    ]
    for index, codec in enumerate(params["codecs"]):
        if _is_rtx(codec):
            mapping.append(_map_rtx_codec(codec, index, media_to_router, caps))
    return mapping


def _map_rtx_codec(
    codec: RtpCodecParameters,
    index: int,
    media_to_router: dict[int, RtpCodecCapability],
    caps: RtpCapabilities,
) -> CodecMapping:
    apt = codec["parameters"].get("apt")
    router_media = media_to_router.get(apt) if isinstance(apt, int) else None
    if router_media is None:
        raise ValueError(
            f"rtpParameters.codecs[{index}] (RTX payloadType {codec['payloadType']}) "
            f"has apt {apt!r}, which names no media codec"
        )
    media_pt = router_media["preferredPayloadType"]
    router_rtx = next(
        (c for c in caps["codecs"] if _is_rtx(c) and c["parameters"].get("apt") == media_pt), None
    )
    if router_rtx is None:
        raise UnsupportedError(f"no RTX codec in the Router for payloadType {media_pt}")
    return CodecMapping(codec["payloadType"], router_rtx["preferredPayloadType"])


def _map_encodings(params: RtpParameters) -> list[EncodingMapping]:
    encodings = params["encodings"]
    base = _random_ssrc()
    result: list[EncodingMapping] = []
    for index, encoding in enumerate(encodings):
        if "ssrc" not in encoding and "rid" not in encoding:
            # One stream without ssrc or rid is bound by its MID when its first
            # packet arrives (RFC 8843 section 15), as in mediasoup.
            if len(encodings) > 1 or "mid" not in params:
                raise ValueError(
                    f"rtpParameters.encodings[{index}] needs an ssrc or a rid "
                    "(or a mid, when it is the only encoding)"
                )
        result.append(
            EncodingMapping(
                mapped_ssrc=base + index,
                ssrc=encoding.get("ssrc"),
                rid=encoding.get("rid"),
                scalability_mode=encoding.get("scalabilityMode"),
            )
        )
    return result


def get_header_extension_id_mapping(
    kind: str, producer_rtp_parameters: object, router_caps: object
) -> dict[int, int]:
    """Producer's extension id -> the Router's preferredId, for URIs both know.

    Extensions the Router does not know are absent: the forwarder drops them.
    """
    _check_kind(kind)
    params = validate_rtp_parameters(producer_rtp_parameters)
    caps = validate_rtp_capabilities(router_caps, "routerRtpCapabilities")
    router_ids = {
        ext["uri"]: ext["preferredId"] for ext in caps["headerExtensions"] if ext["kind"] == kind
    }
    return {
        ext["id"]: router_ids[ext["uri"]]
        for ext in params["headerExtensions"]
        if ext["uri"] in router_ids
    }


def _check_kind(kind: object) -> None:
    if kind not in ("audio", "video"):
        raise ValueError(f"kind must be 'audio' or 'video', got {kind!r}")


def get_consumable_rtp_parameters(
    kind: str, producer_params: object, router_caps: object, mapping: RtpMapping
) -> RtpParameters:
    """The producer's stream described with the Router's payload types, ids and SSRCs."""
    _check_kind(kind)
    params = validate_rtp_parameters(producer_params)
    caps = validate_rtp_capabilities(router_caps, "routerRtpCapabilities")
    if len(mapping.encodings) != len(params["encodings"]):
        raise ValueError("mapping does not belong to these rtpParameters (encodings differ)")
    codecs: list[RtpCodecParameters] = []
    for codec in params["codecs"]:
        if not _is_rtx(codec):
            codecs.extend(_consumable_codecs(codec, caps, mapping))
    extensions: list[RtpHeaderExtensionParameters] = [
        {
            "uri": ext["uri"],
            "id": ext["preferredId"],
            "encrypt": ext["preferredEncrypt"],
            "parameters": {},
        }
        for ext in caps["headerExtensions"]
        if ext["kind"] == kind and ext["direction"] in ("sendrecv", "sendonly")
    ]
    encodings: list[RtpEncodingParameters] = []
    for encoding, mapped in zip(params["encodings"], mapping.encodings, strict=True):
        consumable = copy.deepcopy(encoding)
        for key in ("rid", "rtx", "codecPayloadType"):
            consumable.pop(key, None)  # type: ignore[misc]
        consumable["ssrc"] = mapped.mapped_ssrc
        encodings.append(consumable)
    cname = params["rtcp"].get("cname") or secrets.token_hex(8)
    return {
        "codecs": codecs,
        "headerExtensions": extensions,
        "encodings": encodings,
        "rtcp": {"cname": cname, "reducedSize": True},
    }


def _consumable_codecs(
    codec: RtpCodecParameters, caps: RtpCapabilities, mapping: RtpMapping
) -> list[RtpCodecParameters]:
    pt = mapping.mapped_payload_type(codec["payloadType"])
    router = next((c for c in caps["codecs"] if c.get("preferredPayloadType") == pt), None)
    if pt is None or router is None:
        raise ValueError(f"mapping has no Router codec for payloadType {codec['payloadType']}")
    parameters = dict(codec["parameters"])  # the producer's format parameters travel on
    if codec["mimeType"].lower() == "video/h264":
        answer = _h264_answer_profile_level_id(parameters, router["parameters"])
        if answer is not None:
            parameters["profile-level-id"] = answer
    result: RtpCodecParameters = {
        "mimeType": router["mimeType"],
        "payloadType": pt,
        "clockRate": router["clockRate"],
        "parameters": parameters,
        "rtcpFeedback": copy.deepcopy(router["rtcpFeedback"]),
    }
    if "channels" in router:
        result["channels"] = router["channels"]
    out = [result]
    rtx = next((c for c in caps["codecs"] if _is_rtx(c) and c["parameters"].get("apt") == pt), None)
    if rtx is not None:
        out.append(
            {
                "mimeType": rtx["mimeType"],
                "payloadType": rtx["preferredPayloadType"],
                "clockRate": rtx["clockRate"],
                "parameters": dict(rtx["parameters"]),
                "rtcpFeedback": [],
            }
        )
    return out


# ---------------------------------------------------------------------------
# Consumer side.


def can_consume(consumable_params: object, consumer_caps: object) -> bool:
    """Whether a receiver with `consumer_caps` can decode this stream's first media codec."""
    params = validate_rtp_parameters(consumable_params, "consumableRtpParameters")
    caps = validate_rtp_capabilities(consumer_caps)
    matching = [
        codec
        for codec in params["codecs"]
        if any(_match_codecs(cap, codec, strict=True) for cap in caps["codecs"])
    ]
    return bool(matching) and not _is_rtx(matching[0])


def get_consumer_rtp_parameters(
    consumable_params: object,
    consumer_caps: object,
    pipe: bool = False,
    *,
    enable_rtx: bool | None = None,
    mid: str | None = None,
) -> RtpParameters:
    """RtpParameters for one consumer, cut down to what `consumer_caps` can receive.

    `enable_rtx` defaults to True when the stream is video.  `mid` is assigned
    by the transport that carries the consumer; it can be given here or set later.
    """
    params = validate_rtp_parameters(consumable_params, "consumableRtpParameters")
    caps = validate_rtp_capabilities(consumer_caps)
    if not params["codecs"]:
        raise ValueError("consumableRtpParameters.codecs must not be empty")
    if enable_rtx is None:
        enable_rtx = params["codecs"][0]["mimeType"].lower().startswith("video/")
    codecs = _consumer_codecs(params["codecs"], caps, enable_rtx)
    rtx_supported = any(_is_rtx(c) for c in codecs)
    extensions = _consumer_header_extensions(params, caps)
    _reduce_congestion_feedback(codecs, extensions)
    result: RtpParameters = {
        "codecs": codecs,
        "headerExtensions": extensions,
        "encodings": (
            _pipe_encodings(params, rtx_supported)
            if pipe
            else [_single_encoding(params, rtx_supported)]
        ),
        "rtcp": copy.deepcopy(params["rtcp"]),
    }
    if mid is not None:
        result["mid"] = mid
    return result


def _consumer_codecs(
    consumable: list[RtpCodecParameters], caps: RtpCapabilities, enable_rtx: bool
) -> list[RtpCodecParameters]:
    chosen: list[RtpCodecParameters] = []
    for codec in consumable:
        if _is_rtx(codec) and not enable_rtx:
            continue
        cap = next((c for c in caps["codecs"] if _match_codecs(c, codec, strict=True)), None)
        if cap is None:
            continue
        out = copy.deepcopy(codec)
        # The receiver's feedback set; plain NACK only makes sense with retransmission.
        out["rtcpFeedback"] = [
            dict(fb)  # type: ignore[misc]
            for fb in cap["rtcpFeedback"]
            if enable_rtx or fb["type"] != "nack" or fb["parameter"]
        ]
        chosen.append(out)
    media_pts = {c["payloadType"] for c in chosen if not _is_rtx(c)}
    chosen = [c for c in chosen if not _is_rtx(c) or c["parameters"].get("apt") in media_pts]
    if not chosen or _is_rtx(chosen[0]):
        raise UnsupportedError("no compatible media codecs")
    return chosen


def _consumer_header_extensions(
    params: RtpParameters, caps: RtpCapabilities
) -> list[RtpHeaderExtensionParameters]:
    # Matched on (uri, id) whatever the kind, as mediasoup does: mediasoup-client
    # indexes the browser's extensions by id, so an extension that audio and
    # video share under one id (mid, abs-send-time) is listed for video only.
    receivable = {
        (ext["uri"], ext["preferredId"])
        for ext in caps["headerExtensions"]
        if ext["direction"] in ("sendrecv", "recvonly")
    }
    return [
        copy.deepcopy(ext)
        for ext in params["headerExtensions"]
        if (ext["uri"], ext["id"]) in receivable
    ]


def _reduce_congestion_feedback(
    codecs: list[RtpCodecParameters], extensions: list[RtpHeaderExtensionParameters]
) -> None:
    """Use transport-cc if negotiated, else REMB with abs-send-time, else neither."""
    uris = {ext["uri"] for ext in extensions}
    if TRANSPORT_CC_URI in uris:
        dropped = {"goog-remb"}
    elif ABS_SEND_TIME_URI in uris:
        dropped = {"transport-cc"}
    else:
        dropped = {"transport-cc", "goog-remb"}
    for codec in codecs:
        codec["rtcpFeedback"] = [fb for fb in codec["rtcpFeedback"] if fb["type"] not in dropped]


def _single_encoding(params: RtpParameters, rtx_supported: bool) -> RtpEncodingParameters:
    """One encoding to the receiver: the SFU picks among simulcast layers itself."""
    ssrc = _random_ssrc()
    encoding: RtpEncodingParameters = {"ssrc": ssrc}
    if rtx_supported:
        encoding["rtx"] = {"ssrc": ssrc + 1}
    layers = params["encodings"]
    mode = next((e["scalabilityMode"] for e in layers if "scalabilityMode" in e), None)
    if len(layers) > 1:
        # Simulcast shows to the receiver as spatial layers of one stream.
        mode = f"L{len(layers)}T{parse_scalability_mode(mode).temporal_layers}"
    if mode is not None:
        encoding["scalabilityMode"] = mode
    max_bitrate = max((e.get("maxBitrate", 0) for e in layers), default=0)
    if max_bitrate:
        encoding["maxBitrate"] = max_bitrate
    return encoding


def _pipe_encodings(params: RtpParameters, rtx_supported: bool) -> list[RtpEncodingParameters]:
    """Pipe consumers (SFU to SFU) keep every layer, each with a fresh SSRC."""
    base, rtx_base = _random_ssrc(), _random_ssrc()
    result: list[RtpEncodingParameters] = []
    for index, layer in enumerate(params["encodings"]):
        encoding = copy.deepcopy(layer)
        encoding["ssrc"] = base + index
        encoding.pop("rtx", None)
        if rtx_supported:
            encoding["rtx"] = {"ssrc": rtx_base + index}
        result.append(encoding)
    return result


# Extensions a pipe consumer (SFU to SFU over a PipeTransport) leaves out: no
# MID routing and no congestion control between SFUs, as in mediasoup.
_PIPE_DROPPED_EXTENSIONS: Final = frozenset({MID_URI, ABS_SEND_TIME_URI, TRANSPORT_CC_URI})


def get_pipe_consumer_rtp_parameters(
    consumable_params: object, *, enable_rtx: bool = False
) -> RtpParameters:
    """RtpParameters for a pipe consumer: every codec and layer, no BWE feedback.

    Keyframe requests (PLI, FIR) stay; NACK and RTX only when `enable_rtx`.
    """
    params = validate_rtp_parameters(consumable_params, "consumableRtpParameters")
    codecs: list[RtpCodecParameters] = []
    for codec in params["codecs"]:
        if _is_rtx(codec) and not enable_rtx:
            continue
        out = copy.deepcopy(codec)
        out["rtcpFeedback"] = [
            fb
            for fb in out["rtcpFeedback"]
            if (fb["type"], fb["parameter"]) in (("nack", "pli"), ("ccm", "fir"))
            or (enable_rtx and fb["type"] == "nack" and not fb["parameter"])
        ]
        codecs.append(out)
    base, rtx_base = _random_ssrc(), _random_ssrc()
    encodings: list[RtpEncodingParameters] = []
    for index, layer in enumerate(params["encodings"]):
        encoding = copy.deepcopy(layer)
        encoding["ssrc"] = base + index
        encoding.pop("rtx", None)
        if enable_rtx:
            encoding["rtx"] = {"ssrc": rtx_base + index}
        encodings.append(encoding)
    return {
        "codecs": codecs,
        "headerExtensions": [
            copy.deepcopy(ext)
            for ext in params["headerExtensions"]
            if ext["uri"] not in _PIPE_DROPPED_EXTENSIONS
        ],
        "encodings": encodings,
        "rtcp": copy.deepcopy(params["rtcp"]),
    }
