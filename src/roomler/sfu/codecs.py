"""What the SFU can forward, in mediasoup's RtpCapabilities JSON shape.

`SUPPORTED_RTP_CAPABILITIES` is everything the media layer understands;
`DEFAULT_MEDIA_CODECS` is what a Router enables when it is created without an
explicit list.  `roomler.sfu.ortc.generate_router_rtp_capabilities()` turns a
list of media codecs into the Router's capabilities, which browsers load with
mediasoup-client's `Device.load({ routerRtpCapabilities })`.

The header-extension ids are the ones mediasoup uses, so that captures and
logs line up with mediasoup deployments.
"""

from __future__ import annotations

from typing import Any, Final

# Header extension URIs (RFC 8285 negotiates them by URI, the id is per session).
MID_URI: Final = "urn:ietf:params:rtp-hdrext:sdes:mid"  # RFC 8843 section 15
RID_URI: Final = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"  # RFC 8852 section 3.3
REPAIRED_RID_URI: Final = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
ABS_SEND_TIME_URI: Final = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TRANSPORT_CC_URI: Final = (
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
)
AUDIO_LEVEL_URI: Final = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"  # RFC 6464
VIDEO_ORIENTATION_URI: Final = "urn:3gpp:video-orientation"  # 3GPP TS 26.114

# RTCP feedback (RFC 4585 nack/pli, RFC 5104 ccm fir, REMB and transport-cc drafts).
_VIDEO_RTCP_FEEDBACK: Final[list[dict[str, str]]] = [
    {"type": "nack", "parameter": ""},
    {"type": "nack", "parameter": "pli"},
    {"type": "ccm", "parameter": "fir"},
    {"type": "goog-remb", "parameter": ""},
    {"type": "transport-cc", "parameter": ""},
]
# Opus offers NACK like mediasoup: the browser retransmits audio (without RTX,
# RFC 4588 is not used for audio) when the SFU asks.
_AUDIO_RTCP_FEEDBACK: Final[list[dict[str, str]]] = [
    {"type": "nack", "parameter": ""},
    {"type": "transport-cc", "parameter": ""},
]


def _video_codec(mime_type: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "video",
        "mimeType": mime_type,
        "clockRate": 90000,
        "parameters": parameters,
        "rtcpFeedback": [dict(fb) for fb in _VIDEO_RTCP_FEEDBACK],
    }


def _header_extension(kind: str, uri: str, preferred_id: int, direction: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "uri": uri,
        "preferredId": preferred_id,
        "preferredEncrypt": False,
        "direction": direction,
    }


# Directions are seen from the SFU: "recvonly" means only producers send it to us.
SUPPORTED_RTP_CAPABILITIES: Final[dict[str, Any]] = {
    "codecs": [
        {
            "kind": "audio",
            "mimeType": "audio/opus",
            "clockRate": 48000,
            "channels": 2,  # RFC 7587 section 7: always 2 in SDP
            "parameters": {},
            "rtcpFeedback": [dict(fb) for fb in _AUDIO_RTCP_FEEDBACK],
        },
        _video_codec("video/VP8", {}),
        _video_codec("video/VP9", {}),
        _video_codec("video/H264", {"level-asymmetry-allowed": 1}),
        # Forwarded as one stream (keyframes from the aggregation header's N bit,
        # roomler.sfu.payload.av1); not in DEFAULT_MEDIA_CODECS, so a Router
        # offers it only when created with it.
        _video_codec("video/AV1", {}),
    ],
    "headerExtensions": [
        _header_extension("audio", MID_URI, 1, "sendrecv"),
        _header_extension("video", MID_URI, 1, "sendrecv"),
        # Simulcast layers are told apart by RID when the browser signals no SSRCs.
        _header_extension("video", RID_URI, 2, "recvonly"),
        _header_extension("video", REPAIRED_RID_URI, 3, "recvonly"),
        _header_extension("audio", ABS_SEND_TIME_URI, 4, "sendrecv"),
        _header_extension("video", ABS_SEND_TIME_URI, 4, "sendrecv"),
        # Audio only feeds transport-wide congestion control on the way in.
        _header_extension("audio", TRANSPORT_CC_URI, 5, "recvonly"),
        _header_extension("video", TRANSPORT_CC_URI, 5, "sendrecv"),
        _header_extension("audio", AUDIO_LEVEL_URI, 10, "sendrecv"),
        _header_extension("video", VIDEO_ORIENTATION_URI, 11, "sendrecv"),
    ],
}

# What a Router enables by default, in the order browsers should prefer them.
DEFAULT_MEDIA_CODECS: Final[list[dict[str, Any]]] = [
    {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2},
    {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000},
    {"kind": "video", "mimeType": "video/VP9", "clockRate": 90000, "parameters": {"profile-id": 0}},
    {
        "kind": "video",
        "mimeType": "video/H264",
        "clockRate": 90000,
        "parameters": {
            "packetization-mode": 1,
            "level-asymmetry-allowed": 1,
            "profile-level-id": "42e01f",  # Constrained Baseline, level 3.1
        },
    },
    {
        "kind": "video",
        "mimeType": "video/H264",
        "clockRate": 90000,
        "parameters": {
            "packetization-mode": 1,
            "level-asymmetry-allowed": 1,
            "profile-level-id": "4d001f",  # Main, level 3.1
        },
    },
]
