"""mediasoup's own RTP-parameter expectations, checked against roomler.sfu.ortc.

The cases follow versatica/mediasoup's node/src/test/test-ortc.ts and the
parameter parts of test-Producer.ts / test-Consumer.ts (what a Router, a
produce() and a consume() compute from RTP parameters and capabilities; the
worker-side dumps, stats and events are not covered here).  Where mediasoup
throws ``TypeError`` for malformed input we raise ``ValueError``;
``UnsupportedError`` is the same class name in both.

Knowingly absent, so asserted differently from mediasoup:
- the ``toffset`` header extension (RFC 5450): the SFU does not offer it, so
  a consumer never gets it;
- ``codecPayloadType`` filled into a producer's encodings by mediasoup's
  worker (its dump), which we do not report.

Consumer types as the engine creates them: ``simulcast`` (several encodings,
SimulcastConsumer) and ``svc`` (one VP9 encoding of several layers,
SvcConsumer) as mediasoup; knowingly absent: an AV1 producer with layers is
``svc`` to ``get_producer_type`` but the engine's Producer reports it
``simple`` and forwards it whole (no dependency-descriptor switching yet),
and a VP8/H.264 producer of one encoding with temporal layers only
(``L1T3``, mediasoup's ``simulcast`` consumer of one stream) is forwarded
whole by a simple consumer.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from roomler.sfu.codecs import ABS_SEND_TIME_URI, MID_URI, VIDEO_ORIENTATION_URI
from roomler.sfu.ortc import (
    UnsupportedError,
    can_consume,
    generate_router_rtp_capabilities,
    get_consumable_rtp_parameters,
    get_consumer_rtp_parameters,
    get_consumer_type,
    get_pipe_consumer_rtp_parameters,
    get_producer_rtp_parameters_mapping,
    get_producer_type,
    parse_scalability_mode,
)

TOFFSET_URI = "urn:ietf:params:rtp-hdrext:toffset"
VIDEO_FEEDBACK = [
    {"type": "nack", "parameter": ""},
    {"type": "nack", "parameter": "pli"},
    {"type": "ccm", "parameter": "fir"},
    {"type": "goog-remb", "parameter": ""},
    {"type": "transport-cc", "parameter": ""},
]


def h264(profile_level_id: str, **extra: Any) -> dict[str, Any]:
    parameters = {"packetization-mode": 1, "profile-level-id": profile_level_id, **extra}
    return {"kind": "video", "mimeType": "video/H264", "clockRate": 90000, "parameters": parameters}


OPUS = {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2}
VP8 = {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000}


def producing(kind: str, params: dict[str, Any], caps: Any) -> dict[str, Any]:
    """What a Transport.produce() derives: mapping, consumable parameters, type."""
    mapping = get_producer_rtp_parameters_mapping(params, caps)
    consumable = get_consumable_rtp_parameters(kind, params, caps, mapping)
    return {"mapping": mapping, "consumable": consumable, "type": get_producer_type(params)}


# --- test-ortc.ts ----------------------------------------------------------------------


def test_router_capabilities_from_media_codecs() -> None:
    media_codecs = [
        {**OPUS, "parameters": {"useinbandfec": 1, "foo": "bar"}},
        {**VP8, "preferredPayloadType": 125},
        {
            "kind": "video",
            "mimeType": "video/H264",
            "clockRate": 90000,
            "parameters": {
                "level-asymmetry-allowed": 1,
                "profile-level-id": "42e01f",
                "foo": "bar",
            },
            "rtcpFeedback": [],  # ignored: the Router's feedback is the SFU's
        },
    ]
    caps = generate_router_rtp_capabilities(media_codecs)
    assert [c["mimeType"] for c in caps["codecs"]] == [
        "audio/opus",
        "video/VP8",
        "video/rtx",
        "video/H264",
        "video/rtx",
    ]
    opus, vp8, vp8_rtx, h264_codec, h264_rtx = caps["codecs"]
    assert opus == {
        "kind": "audio",
        "mimeType": "audio/opus",
        "preferredPayloadType": 100,
        "clockRate": 48000,
        "channels": 2,
        "parameters": {"useinbandfec": 1, "foo": "bar"},
        "rtcpFeedback": [
            {"type": "nack", "parameter": ""},
            {"type": "transport-cc", "parameter": ""},
        ],
    }
    assert vp8["preferredPayloadType"] == 125
    assert vp8["parameters"] == {}
    assert vp8["rtcpFeedback"] == VIDEO_FEEDBACK
    assert vp8_rtx == {
        "kind": "video",
        "mimeType": "video/rtx",
        "preferredPayloadType": 101,
        "clockRate": 90000,
        "parameters": {"apt": 125},
        "rtcpFeedback": [],
    }
    assert h264_codec["preferredPayloadType"] == 102
    # packetization-mode was not asked for, and its default (0) is not added.
    assert h264_codec["parameters"] == {
        "level-asymmetry-allowed": 1,
        "profile-level-id": "42e01f",
        "foo": "bar",
    }
    assert h264_codec["rtcpFeedback"] == VIDEO_FEEDBACK
    assert h264_rtx["preferredPayloadType"] == 103
    assert h264_rtx["parameters"] == {"apt": 102}


@pytest.mark.parametrize(
    "codec",
    [
        {"kind": "audio", "mimeType": "audio/chicken", "clockRate": 8000, "channels": 4},
        {**OPUS, "channels": 1},
    ],
)
def test_router_capabilities_with_unsupported_codecs(codec: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedError):
        generate_router_rtp_capabilities([codec])


def test_router_capabilities_with_too_many_codecs() -> None:
    with pytest.raises(ValueError, match="cannot allocate"):
        generate_router_rtp_capabilities([dict(OPUS) for _ in range(100)])


@pytest.fixture
def h264_router() -> Any:
    return generate_router_rtp_capabilities(
        [OPUS, h264("4d0032", **{"level-asymmetry-allowed": 1, "bar": "lalala"})]
    )


@pytest.fixture
def h264_simulcast() -> dict[str, Any]:
    return {
        "codecs": [
            {
                "mimeType": "video/H264",
                "payloadType": 111,
                "clockRate": 90000,
                "parameters": {"foo": 1234, "packetization-mode": 1, "profile-level-id": "4d0032"},
                "rtcpFeedback": [
                    {"type": "nack", "parameter": ""},
                    {"type": "nack", "parameter": "pli"},
                    {"type": "goog-remb", "parameter": ""},
                ],
            },
            {
                "mimeType": "video/rtx",
                "payloadType": 112,
                "clockRate": 90000,
                "parameters": {"apt": 111},
                "rtcpFeedback": [],
            },
        ],
        "headerExtensions": [
            {"uri": MID_URI, "id": 1},
            {"uri": VIDEO_ORIENTATION_URI, "id": 2},
        ],
        "encodings": [
            {"ssrc": 11111111, "rtx": {"ssrc": 11111112}, "maxBitrate": 111111},
            {"ssrc": 21111111, "rtx": {"ssrc": 21111112}, "maxBitrate": 222222},
            {"rid": "high", "maxBitrate": 333333},
        ],
        "rtcp": {"cname": "qwerty1234"},
    }


def remote_caps() -> dict[str, Any]:
    def ext(kind: str, uri: str, preferred_id: int) -> dict[str, Any]:
        return {"kind": kind, "uri": uri, "preferredId": preferred_id, "direction": "sendrecv"}

    return {
        "codecs": [
            {**OPUS, "preferredPayloadType": 100, "parameters": {}, "rtcpFeedback": []},
            {
                **h264("4d0032", baz="LOLOLO"),
                "preferredPayloadType": 101,
                "rtcpFeedback": [
                    {"type": "nack", "parameter": ""},
                    {"type": "nack", "parameter": "pli"},
                    {"type": "foo", "parameter": "FOO"},
                ],
            },
            {
                "kind": "video",
                "mimeType": "video/rtx",
                "preferredPayloadType": 102,
                "clockRate": 90000,
                "parameters": {"apt": 101},
            },
        ],
        "headerExtensions": [
            ext("audio", MID_URI, 1),
            ext("video", MID_URI, 1),
            ext("video", "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", 2),
            ext("audio", "urn:ietf:params:rtp-hdrext:ssrc-audio-level", 8),
            ext("video", VIDEO_ORIENTATION_URI, 11),
            ext("video", TOFFSET_URI, 12),
        ],
    }


@pytest.mark.parametrize("mode", ["L1T3", None])
def test_producer_mapping_consumable_consumer_and_pipe_parameters(
    h264_router: Any, h264_simulcast: dict[str, Any], mode: str | None
) -> None:
    if mode is not None:
        for encoding in h264_simulcast["encodings"]:
            encoding["scalabilityMode"] = mode
    produced = producing("video", h264_simulcast, h264_router)
    mapping = produced["mapping"]
    assert mapping.to_json()["codecs"] == [
        {"payloadType": 111, "mappedPayloadType": 101},
        {"payloadType": 112, "mappedPayloadType": 102},
    ]
    assert [(e.ssrc, e.rid) for e in mapping.encodings] == [
        (11111111, None),
        (21111111, None),
        (None, "high"),
    ]
    mapped = [e.mapped_ssrc for e in mapping.encodings]
    assert all(isinstance(ssrc, int) for ssrc in mapped)

    consumable = produced["consumable"]
    media, rtx = consumable["codecs"]
    assert (media["mimeType"], media["payloadType"], media["clockRate"]) == (
        "video/H264",
        101,
        90000,
    )
    assert media["parameters"] == {
        "foo": 1234,
        "packetization-mode": 1,
        "profile-level-id": "4d0032",
    }
    assert (rtx["mimeType"], rtx["payloadType"], rtx["parameters"]) == (
        "video/rtx",
        102,
        {"apt": 101},
    )
    layer = {} if mode is None else {"scalabilityMode": mode}
    expected = [
        {"ssrc": ssrc, "maxBitrate": bitrate, "dtx": False, **layer}
        for ssrc, bitrate in zip(mapped, (111111, 222222, 333333), strict=True)
    ]
    assert consumable["encodings"] == expected
    assert consumable["rtcp"] == {"cname": "qwerty1234", "reducedSize": True}
    assert produced["type"] == "simulcast"

    consumer = get_consumer_rtp_parameters(consumable, remote_caps(), enable_rtx=True)
    assert consumer["codecs"] == [
        {
            "mimeType": "video/H264",
            "payloadType": 101,
            "clockRate": 90000,
            "parameters": {"foo": 1234, "packetization-mode": 1, "profile-level-id": "4d0032"},
            "rtcpFeedback": [
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
                {"type": "foo", "parameter": "FOO"},
            ],
        },
        {
            "mimeType": "video/rtx",
            "payloadType": 102,
            "clockRate": 90000,
            "parameters": {"apt": 101},
            "rtcpFeedback": [],
        },
    ]
    [encoding] = consumer["encodings"]
    assert isinstance(encoding["ssrc"], int) and isinstance(encoding["rtx"]["ssrc"], int)
    # Three simulcast encodings reach the consumer as three spatial layers.
    assert encoding["scalabilityMode"] == ("L3T3" if mode else "L3T1")
    assert encoding["maxBitrate"] == 333333
    # mediasoup's list also has toffset (id 12), which the SFU does not offer.
    assert consumer["headerExtensions"] == [
        {"uri": MID_URI, "id": 1, "encrypt": False, "parameters": {}},
        {"uri": VIDEO_ORIENTATION_URI, "id": 11, "encrypt": False, "parameters": {}},
    ]
    assert consumer["rtcp"] == {"cname": "qwerty1234", "reducedSize": True}

    pipe = get_pipe_consumer_rtp_parameters(consumable, enable_rtx=False)
    [pipe_codec] = pipe["codecs"]
    assert pipe_codec["payloadType"] == 101
    assert pipe_codec["parameters"] == media["parameters"]
    assert pipe_codec["rtcpFeedback"] == [
        {"type": "nack", "parameter": "pli"},
        {"type": "ccm", "parameter": "fir"},
    ]
    assert len(pipe["encodings"]) == 3
    for pipe_encoding in pipe["encodings"]:
        assert isinstance(pipe_encoding["ssrc"], int)
        assert "rtx" not in pipe_encoding
        assert isinstance(pipe_encoding["maxBitrate"], int)
        assert pipe_encoding.get("scalabilityMode") == mode
    assert {e["uri"] for e in pipe["headerExtensions"]}.isdisjoint({MID_URI, ABS_SEND_TIME_URI})
    assert pipe["rtcp"] == {"cname": "qwerty1234", "reducedSize": True}


def test_pipe_consumer_with_rtx_keeps_nack_and_gives_each_layer_an_rtx_ssrc(
    h264_router: Any, h264_simulcast: dict[str, Any]
) -> None:
    consumable = producing("video", h264_simulcast, h264_router)["consumable"]
    pipe = get_pipe_consumer_rtp_parameters(consumable, enable_rtx=True)
    assert [c["mimeType"] for c in pipe["codecs"]] == ["video/H264", "video/rtx"]
    assert {"type": "nack", "parameter": ""} in pipe["codecs"][0]["rtcpFeedback"]
    rtx = [e["rtx"]["ssrc"] for e in pipe["encodings"]]
    assert rtx == [rtx[0] + i for i in range(3)]


def test_producer_with_an_incompatible_codec_is_unsupported() -> None:
    caps = generate_router_rtp_capabilities([OPUS, h264("640032")])
    params = {
        "codecs": [
            {
                "mimeType": "video/VP8",
                "payloadType": 120,
                "clockRate": 90000,
                "rtcpFeedback": [{"type": "nack"}, {"type": "nack", "parameter": "fir"}],
            }
        ],
        "encodings": [{"ssrc": 11111111}],
        "rtcp": {"cname": "qwerty1234"},
    }
    with pytest.raises(UnsupportedError):
        get_producer_rtp_parameters_mapping(params, caps)


# --- test-Producer.ts (parameters) -------------------------------------------------------


@pytest.fixture
def producer_router() -> Any:
    return generate_router_rtp_capabilities(
        [
            {**OPUS, "parameters": {"foo": "111"}},
            VP8,
            {**h264("4d0032", **{"level-asymmetry-allowed": 1, "foo": "bar"}), "rtcpFeedback": []},
        ]
    )


def opus_params(**rtp: Any) -> dict[str, Any]:
    codec = {
        "mimeType": "audio/opus",
        "payloadType": 0,
        "clockRate": 48000,
        "channels": 2,
        "parameters": {"useinbandfec": 1, "usedtx": 1, "foo": 222.222, "bar": "333"},
    }
    return {"codecs": [codec], **rtp}


def h264_params(encodings: list[dict[str, Any]], **rtp: Any) -> dict[str, Any]:
    return {
        "codecs": [
            {
                "mimeType": "video/h264",
                "payloadType": 112,
                "clockRate": 90000,
                "parameters": {"packetization-mode": 1, "profile-level-id": "4d0032"},
                "rtcpFeedback": [
                    {"type": "nack"},
                    {"type": "nack", "parameter": "pli"},
                    {"type": "goog-remb"},
                ],
            },
            {
                "mimeType": "video/rtx",
                "payloadType": 113,
                "clockRate": 90000,
                "parameters": {"apt": 112},
            },
        ],
        "headerExtensions": [
            {"uri": MID_URI, "id": 10},
            {"uri": VIDEO_ORIENTATION_URI, "id": 13},
        ],
        "encodings": encodings,
        **rtp,
    }


FOUR_SSRC_ENCODINGS = [
    {"ssrc": 22222222, "rtx": {"ssrc": 22222223}, "scalabilityMode": "L1T3"},
    {"ssrc": 22222224, "rtx": {"ssrc": 22222225}},
    {"ssrc": 22222226, "rtx": {"ssrc": 22222227}},
    {"ssrc": 22222228, "rtx": {"ssrc": 22222229}},
]


def test_audio_producer_without_encodings_is_simple_and_bound_by_mid(producer_router: Any) -> None:
    params = opus_params(
        mid="AUDIO",
        headerExtensions=[
            {"uri": MID_URI, "id": 10},
            {"uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id": 12},
        ],
        rtcp={"cname": "audio-1"},
    )
    produced = producing("audio", params, producer_router)
    assert produced["type"] == "simple"
    [encoding] = produced["mapping"].encodings
    assert (encoding.ssrc, encoding.rid) == (None, None)
    assert produced["consumable"]["codecs"][0]["parameters"] == params["codecs"][0]["parameters"]


def test_audio_producer_without_header_extensions_and_rtcp(producer_router: Any) -> None:
    produced = producing("audio", opus_params(mid="AUDIO2"), producer_router)
    assert produced["type"] == "simple"
    assert produced["consumable"]["rtcp"]["reducedSize"] is True


def test_video_producer_with_four_ssrc_encodings_is_simulcast(producer_router: Any) -> None:
    params = h264_params(copy.deepcopy(FOUR_SSRC_ENCODINGS), mid="VIDEO", rtcp={"cname": "v"})
    produced = producing("video", params, producer_router)
    assert produced["type"] == "simulcast"
    assert [e.ssrc for e in produced["mapping"].encodings] == [22222222 + 2 * i for i in range(4)]
    mapped = [e.mapped_ssrc for e in produced["mapping"].encodings]
    assert mapped == [mapped[0] + i for i in range(4)]


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="no codecs"),
        pytest.param(
            {"codecs": [], "encodings": [{"ssrc": "1111"}], "rtcp": {"cname": "q"}},
            id="ssrc not a number",
        ),
        pytest.param(
            h264_params([{"ssrc": 6666, "rtx": {"ssrc": 6667}}])
            | {
                "codecs": [
                    h264_params([])["codecs"][0],
                    {
                        "mimeType": "video/rtx",
                        "payloadType": 113,
                        "clockRate": 90000,
                        "parameters": {"apt": 111},
                    },
                ]
            },
            id="rtx apt names no codec",
        ),
        pytest.param(h264_params([]), id="empty encodings and no mid"),
    ],
)
def test_producer_with_wrong_parameters_is_rejected(
    producer_router: Any, params: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 -- mediasoup's TypeError
        producing("video", params, producer_router)


def test_producer_of_an_unknown_kind_is_rejected(producer_router: Any) -> None:
    with pytest.raises(ValueError, match="kind must be 'audio' or 'video'"):
        producing("chicken", opus_params(mid="A"), producer_router)


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        (
            "audio",
            {
                "codecs": [{"mimeType": "audio/ISAC", "payloadType": 108, "clockRate": 32000}],
                "encodings": [{"ssrc": 1111}],
            },
        ),
        (
            "video",
            h264_params([{"ssrc": 6666, "rtx": {"ssrc": 6667}}])
            | {
                "codecs": [
                    {
                        "mimeType": "video/h264",
                        "payloadType": 112,
                        "clockRate": 90000,
                        "parameters": {"packetization-mode": 1, "profile-level-id": "CHICKEN"},
                    },
                    {
                        "mimeType": "video/rtx",
                        "payloadType": 113,
                        "clockRate": 90000,
                        "parameters": {"apt": 112},
                    },
                ]
            },
        ),
    ],
)
def test_producer_with_unsupported_codecs_is_unsupported(
    producer_router: Any, kind: str, params: dict[str, Any]
) -> None:
    with pytest.raises(UnsupportedError):
        producing(kind, params, producer_router)


def test_producer_without_mid_and_a_bare_encoding_is_rejected(producer_router: Any) -> None:
    params = opus_params(encodings=[{}])
    params["codecs"][0]["payloadType"] = 111
    with pytest.raises(ValueError, match=r"encodings\[0\] needs an ssrc or a rid"):
        producing("audio", params, producer_router)


# --- test-Consumer.ts (parameters) -------------------------------------------------------


@pytest.fixture
def consumer_router() -> Any:
    return generate_router_rtp_capabilities(
        [
            {**OPUS, "parameters": {"foo": "bar"}},
            VP8,
            h264("4d0032", **{"level-asymmetry-allowed": 1, "foo": "bar"}),
        ]
    )


def device_caps() -> dict[str, Any]:
    def ext(kind: str, uri: str, preferred_id: int) -> dict[str, Any]:
        return {"kind": kind, "uri": uri, "preferredId": preferred_id, "preferredEncrypt": False}

    return {
        "codecs": [
            {**OPUS, "preferredPayloadType": 100, "rtcpFeedback": [{"type": "nack"}]},
            {
                **h264("4d0032", **{"level-asymmetry-allowed": 1}),
                "preferredPayloadType": 101,
                "rtcpFeedback": VIDEO_FEEDBACK[:4],
            },
            {
                "kind": "video",
                "mimeType": "video/rtx",
                "preferredPayloadType": 102,
                "clockRate": 90000,
                "parameters": {"apt": 101},
                "rtcpFeedback": [],
            },
        ],
        "headerExtensions": [
            ext("audio", MID_URI, 1),
            ext("video", MID_URI, 1),
            ext("video", "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", 2),
            ext("audio", ABS_SEND_TIME_URI, 4),
            ext("video", ABS_SEND_TIME_URI, 4),
            ext("audio", "urn:ietf:params:rtp-hdrext:ssrc-audio-level", 10),
            ext("video", VIDEO_ORIENTATION_URI, 11),
            ext("video", TOFFSET_URI, 12),
        ],
    }


@pytest.fixture
def audio_producer(consumer_router: Any) -> dict[str, Any]:
    params = opus_params(mid="AUDIO", encodings=[{"ssrc": 11111111}], rtcp={"cname": "FOOBAR"})
    params["codecs"][0]["payloadType"] = 111
    return producing("audio", params, consumer_router)


@pytest.fixture
def video_producer(consumer_router: Any) -> dict[str, Any]:
    encodings = [
        {"ssrc": 22222222 + 2 * i, "scalabilityMode": "L1T5", "rtx": {"ssrc": 22222223 + 2 * i}}
        for i in range(4)
    ]
    params = h264_params(encodings, mid="VIDEO", rtcp={"cname": "FOOBAR"})
    return producing("video", params, consumer_router)


def test_audio_consumer_is_simple_without_nack_unless_rtx_is_enabled(
    audio_producer: dict[str, Any],
) -> None:
    consumable = audio_producer["consumable"]
    assert can_consume(consumable, device_caps())
    consumer = get_consumer_rtp_parameters(consumable, device_caps(), mid="0")
    assert consumer["mid"] == "0"
    assert consumer["codecs"] == [
        {
            "mimeType": "audio/opus",
            "payloadType": 100,
            "clockRate": 48000,
            "channels": 2,
            "parameters": {"useinbandfec": 1, "usedtx": 1, "foo": 222.222, "bar": "333"},
            "rtcpFeedback": [],
        }
    ]
    assert get_consumer_type(audio_producer["type"]) == "simple"
    with_rtx = get_consumer_rtp_parameters(consumable, device_caps(), enable_rtx=True)
    assert with_rtx["codecs"][0]["rtcpFeedback"] == [{"type": "nack", "parameter": ""}]


def test_video_consumer_of_four_encodings_is_simulcast(video_producer: dict[str, Any]) -> None:
    consumable = video_producer["consumable"]
    assert can_consume(consumable, device_caps())
    consumer = get_consumer_rtp_parameters(consumable, device_caps(), mid="1")
    assert consumer["codecs"] == [
        {
            "mimeType": "video/H264",
            "payloadType": 103,
            "clockRate": 90000,
            "parameters": {"packetization-mode": 1, "profile-level-id": "4d0032"},
            "rtcpFeedback": VIDEO_FEEDBACK[:4],
        },
        {
            "mimeType": "video/rtx",
            "payloadType": 104,
            "clockRate": 90000,
            "parameters": {"apt": 103},
            "rtcpFeedback": [],
        },
    ]
    assert consumer["encodings"][0]["scalabilityMode"] == "L4T5"
    assert get_consumer_type(video_producer["type"]) == "simulcast"
    assert get_consumer_type(video_producer["type"], pipe=True) == "pipe"


def test_pipe_consumer_of_a_simulcast_producer(video_producer: dict[str, Any]) -> None:
    consumable = video_producer["consumable"]
    pipe = get_consumer_rtp_parameters(consumable, device_caps(), pipe=True)
    assert "mid" not in pipe
    assert [c["payloadType"] for c in pipe["codecs"]] == [103, 104]
    assert len(pipe["encodings"]) == 4


@pytest.mark.parametrize(
    "codecs",
    [
        [
            {
                "kind": "audio",
                "mimeType": "audio/ISAC",
                "preferredPayloadType": 100,
                "clockRate": 32000,
                "channels": 1,
            }
        ],
        [],
    ],
)
def test_consumer_with_incompatible_capabilities_is_unsupported(
    audio_producer: dict[str, Any], codecs: list[dict[str, Any]]
) -> None:
    caps = {"codecs": codecs, "headerExtensions": []}
    consumable = audio_producer["consumable"]
    assert not can_consume(consumable, caps)
    with pytest.raises(UnsupportedError):
        get_consumer_rtp_parameters(consumable, caps)


# --- types and scalability modes -------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "layers"),
    [
        ("L1T3", (1, 3, False)),
        ("L3T3_KEY", (3, 3, True)),
        ("S2T1", (2, 1, False)),
        ("L2T2_KEY_SHIFT", (2, 2, True)),
        ("L10T12", (10, 12, False)),
        (None, (1, 1, False)),
        ("", (1, 1, False)),
        ("foo", (1, 1, False)),
        ("L0T1", (1, 1, False)),
    ],
)
def test_scalability_modes(mode: str | None, layers: tuple[int, int, bool]) -> None:
    parsed = parse_scalability_mode(mode)
    assert (parsed.spatial_layers, parsed.temporal_layers, parsed.ksvc) == layers


@pytest.mark.parametrize(
    ("mime_type", "mode", "expected"),
    [
        ("video/VP8", None, "simple"),
        ("video/VP8", "L1T3", "simulcast"),
        ("video/H264", "L1T2", "simulcast"),
        ("video/VP9", "L3T3_KEY", "svc"),
        ("video/VP9", "L1T3", "svc"),
        ("video/AV1", "L1T3", "svc"),
        ("video/VP9", "L1T1", "simple"),
    ],
)
def test_producer_type_of_one_encoding(mime_type: str, mode: str | None, expected: str) -> None:
    encoding: dict[str, Any] = {"ssrc": 1}
    if mode:
        encoding["scalabilityMode"] = mode
    params = {
        "codecs": [{"mimeType": mime_type, "payloadType": 96, "clockRate": 90000}],
        "encodings": [encoding],
    }
    assert get_producer_type(params) == expected


def test_layered_audio_is_unsupported() -> None:
    params = {
        "codecs": [{"mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000}],
        "encodings": [{"ssrc": 1, "scalabilityMode": "L1T2"}],
    }
    with pytest.raises(UnsupportedError, match="L1T2"):
        get_producer_type(params)


def test_consumer_type_rejects_an_unknown_producer_type() -> None:
    with pytest.raises(ValueError, match="producer type"):
        get_consumer_type("pipe")
