"""ORTC negotiation against what Chrome's mediasoup-client really sends.

The chrome_*.json fixtures were captured by fixtures/capture_chrome_params.py
(headless Chromium + mediasoup-client loaded with our Router capabilities).
"""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from roomler.sfu.codecs import DEFAULT_MEDIA_CODECS, SUPPORTED_RTP_CAPABILITIES
from roomler.sfu.ortc import (
    DYNAMIC_PAYLOAD_TYPES,
    RtpMapping,
    UnsupportedError,
    can_consume,
    generate_router_rtp_capabilities,
    get_consumable_rtp_parameters,
    get_consumer_rtp_parameters,
    get_header_extension_id_mapping,
    get_producer_rtp_parameters_mapping,
    validate_rtp_capabilities,
    validate_rtp_parameters,
)

FIXTURES = Path(__file__).parent / "fixtures"
TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def router_caps() -> dict[str, Any]:
    return dict(generate_router_rtp_capabilities(DEFAULT_MEDIA_CODECS))


@pytest.fixture
def chrome_caps() -> dict[str, Any]:
    return load("chrome_device_rtp_capabilities.json")  # type: ignore[no-any-return]


def router_codec(caps: dict[str, Any], mime_type: str, **params: Any) -> dict[str, Any]:
    for codec in caps["codecs"]:
        if codec["mimeType"].lower() == mime_type.lower() and all(
            codec["parameters"].get(k) == v for k, v in params.items()
        ):
            return codec  # type: ignore[no-any-return]
    raise AssertionError(f"router has no {mime_type} {params}")


def router_rtx_pt(caps: dict[str, Any], media_pt: int) -> int:
    return next(  # type: ignore[no-any-return]
        c["preferredPayloadType"]
        for c in caps["codecs"]
        if c["mimeType"] == "video/rtx" and c["parameters"]["apt"] == media_pt
    )


def consumable_for(name: str, kind: str, caps: dict[str, Any]) -> tuple[Any, RtpMapping]:
    params = load(name)
    mapping = get_producer_rtp_parameters_mapping(params, caps)
    return get_consumable_rtp_parameters(kind, params, caps, mapping), mapping


# --- Router capabilities -----------------------------------------------------


def test_fixtures_were_captured_with_the_current_router_capabilities(router_caps: Any) -> None:
    captured = load("chrome_capture_info.json")["routerRtpCapabilities"]
    assert captured == json.loads(json.dumps(router_caps)), (
        "router capabilities changed: re-run tests/sfu/fixtures/capture_chrome_params.py"
    )


def test_router_capabilities_pass_every_device_load_check(router_caps: Any) -> None:
    # The checks of mediasoup-client's validateAndNormalizeRtpCapabilities().
    mime_re = re.compile(r"^(audio|video)/(.+)$", re.IGNORECASE)
    for codec in router_caps["codecs"]:
        kind = mime_re.match(codec["mimeType"]).group(1).lower()  # type: ignore[union-attr]
        assert codec["kind"] == kind
        assert type(codec["preferredPayloadType"]) is int
        assert type(codec["clockRate"]) is int
        if kind == "audio":
            assert type(codec["channels"]) is int
        else:
            assert "channels" not in codec
        assert isinstance(codec["parameters"], dict)
        for key, value in codec["parameters"].items():
            assert isinstance(value, str | int) and not isinstance(value, bool), key
        if "apt" in codec["parameters"]:
            assert type(codec["parameters"]["apt"]) is int
        for fb in codec["rtcpFeedback"]:
            assert isinstance(fb["type"], str) and fb["type"]
            assert isinstance(fb["parameter"], str)
    for ext in router_caps["headerExtensions"]:
        assert ext["kind"] in ("audio", "video")
        assert isinstance(ext["uri"], str) and ext["uri"]
        assert type(ext["preferredId"]) is int
        assert ext["preferredEncrypt"] is False
        assert ext["direction"] in ("sendrecv", "sendonly", "recvonly", "inactive")
    pts = [c["preferredPayloadType"] for c in router_caps["codecs"]]
    assert len(pts) == len(set(pts))
    assert set(pts) <= set(DYNAMIC_PAYLOAD_TYPES)


def test_router_capabilities_survive_json(router_caps: Any) -> None:
    assert json.loads(json.dumps(router_caps)) == router_caps


def test_every_video_codec_is_followed_by_its_rtx(router_caps: Any) -> None:
    codecs = router_caps["codecs"]
    media = [c for c in codecs if c["mimeType"].lower() != "video/rtx"]
    assert [c["mimeType"] for c in media] == [c["mimeType"] for c in DEFAULT_MEDIA_CODECS]
    for index, codec in enumerate(codecs):
        if codec["kind"] == "video" and codec["mimeType"] != "video/rtx":
            rtx = codecs[index + 1]
            assert rtx["mimeType"] == "video/rtx"
            assert rtx["clockRate"] == codec["clockRate"]
            assert rtx["parameters"] == {"apt": codec["preferredPayloadType"]}
    assert not any(c["mimeType"] == "audio/rtx" for c in codecs)


def test_router_codec_parameters_merge_supported_and_requested(router_caps: Any) -> None:
    h264 = router_codec(router_caps, "video/H264", **{"profile-level-id": "4d001f"})
    assert h264["parameters"]["packetization-mode"] == 1
    assert h264["parameters"]["level-asymmetry-allowed"] == 1
    assert router_codec(router_caps, "video/VP9")["parameters"]["profile-id"] == 0


def test_explicit_preferred_payload_type_is_kept_and_not_reused() -> None:
    codecs = copy.deepcopy(DEFAULT_MEDIA_CODECS)
    codecs[1]["preferredPayloadType"] = 100  # VP8 asks for the first dynamic PT
    caps = generate_router_rtp_capabilities(codecs)
    assert router_codec(dict(caps), "video/VP8")["preferredPayloadType"] == 100
    assert router_codec(dict(caps), "audio/opus")["preferredPayloadType"] != 100


def test_duplicate_preferred_payload_type_is_rejected() -> None:
    codecs = copy.deepcopy(DEFAULT_MEDIA_CODECS[:2])
    codecs[0]["preferredPayloadType"] = 111
    codecs[1]["preferredPayloadType"] = 111
    with pytest.raises(ValueError, match=r"mediaCodecs\[1\]\.preferredPayloadType 111"):
        generate_router_rtp_capabilities(codecs)


def test_generation_leaves_module_constants_alone() -> None:
    before = copy.deepcopy((DEFAULT_MEDIA_CODECS, SUPPORTED_RTP_CAPABILITIES))
    caps = generate_router_rtp_capabilities(DEFAULT_MEDIA_CODECS)
    caps["codecs"][0]["parameters"]["mutated"] = 1
    caps["headerExtensions"][0]["preferredId"] = 99
    assert (DEFAULT_MEDIA_CODECS, SUPPORTED_RTP_CAPABILITIES) == before


@pytest.mark.parametrize(
    "codec",
    [
        {"kind": "video", "mimeType": "video/H265", "clockRate": 90000},
        {"kind": "audio", "mimeType": "audio/G729", "clockRate": 8000},
        {"kind": "audio", "mimeType": "audio/opus", "clockRate": 44100, "channels": 2},
    ],
)
def test_unsupported_media_codec_is_rejected_with_its_mime_type(codec: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedError, match=re.escape(codec["mimeType"])):
        generate_router_rtp_capabilities([*DEFAULT_MEDIA_CODECS, codec])


def test_media_codecs_must_be_a_list() -> None:
    with pytest.raises(ValueError, match="mediaCodecs must be an array"):
        generate_router_rtp_capabilities({"mimeType": "audio/opus"})


# --- Chrome's device capabilities -----------------------------------------------


def test_chrome_loaded_our_capabilities_with_router_payload_types(
    router_caps: Any, chrome_caps: Any
) -> None:
    # device.rtpCapabilities carries the Router's PTs for what Chrome can receive.
    router_pts = {c["preferredPayloadType"]: c for c in router_caps["codecs"]}
    assert chrome_caps["codecs"]
    for codec in chrome_caps["codecs"]:
        assert codec["preferredPayloadType"] in router_pts
        assert (
            codec["mimeType"].lower()
            == router_pts[codec["preferredPayloadType"]]["mimeType"].lower()
        )
    validated = validate_rtp_capabilities(chrome_caps)
    assert len(validated["codecs"]) == len(chrome_caps["codecs"])


# --- Producer mapping --------------------------------------------------------------


def test_chrome_audio_payload_type_maps_to_router_opus(router_caps: Any) -> None:
    params = load("chrome_produce_audio.json")
    mapping = get_producer_rtp_parameters_mapping(params, router_caps)
    chrome_pt = params["codecs"][0]["payloadType"]
    router_pt = router_codec(router_caps, "audio/opus")["preferredPayloadType"]
    assert chrome_pt != router_pt  # Chrome really uses its own numbering
    assert mapping.mapped_payload_type(chrome_pt) == router_pt
    assert [(e.ssrc, e.rid) for e in mapping.encodings] == [(params["encodings"][0]["ssrc"], None)]
    assert mapping.encodings[0].mapped_ssrc != params["encodings"][0]["ssrc"]


def test_chrome_video_and_rtx_payload_types_map_to_router(router_caps: Any) -> None:
    params = load("chrome_produce_video.json")
    mapping = get_producer_rtp_parameters_mapping(params, router_caps)
    vp8, rtx = params["codecs"]
    router_pt = router_codec(router_caps, vp8["mimeType"])["preferredPayloadType"]
    assert mapping.mapped_payload_type(vp8["payloadType"]) == router_pt
    assert mapping.mapped_payload_type(rtx["payloadType"]) == router_rtx_pt(router_caps, router_pt)
    assert mapping.to_json()["codecs"] == [
        {"payloadType": vp8["payloadType"], "mappedPayloadType": router_pt},
        {
            "payloadType": rtx["payloadType"],
            "mappedPayloadType": router_rtx_pt(router_caps, router_pt),
        },
    ]


def test_chrome_h264_maps_to_the_router_codec_of_the_same_profile(router_caps: Any) -> None:
    params = load("chrome_produce_video_h264.json")
    mapping = get_producer_rtp_parameters_mapping(params, router_caps)
    h264 = params["codecs"][0]
    same_profile = router_codec(
        router_caps, "video/H264", **{"profile-level-id": h264["parameters"]["profile-level-id"]}
    )
    assert mapping.mapped_payload_type(h264["payloadType"]) == same_profile["preferredPayloadType"]


def test_simulcast_rids_get_consecutive_mapped_ssrcs(router_caps: Any) -> None:
    params = load("chrome_produce_video_simulcast.json")
    mapping = get_producer_rtp_parameters_mapping(params, router_caps)
    rids = [e["rid"] for e in params["encodings"]]
    assert [e.rid for e in mapping.encodings] == rids
    assert all(e.ssrc is None for e in mapping.encodings)
    first = mapping.encodings[0].mapped_ssrc
    assert [e.mapped_ssrc for e in mapping.encodings] == [first + i for i in range(len(rids))]
    assert [e.scalability_mode for e in mapping.encodings] == [
        e["scalabilityMode"] for e in params["encodings"]
    ]
    assert mapping.to_json()["encodings"][1] == {
        "mappedSsrc": first + 1,
        "rid": rids[1],
        "scalabilityMode": params["encodings"][1]["scalabilityMode"],
    }


@pytest.mark.parametrize("name", ["chrome_produce_audio.json", "chrome_produce_video.json"])
def test_chrome_header_extension_ids_map_to_router_ids(name: str, router_caps: Any) -> None:
    params = load(name)
    kind = params["codecs"][0]["mimeType"].split("/")[0]
    mapping = get_header_extension_id_mapping(kind, params, router_caps)
    router_ids = {
        e["uri"]: e["preferredId"] for e in router_caps["headerExtensions"] if e["kind"] == kind
    }
    expected = {e["id"]: router_ids[e["uri"]] for e in params["headerExtensions"]}
    assert mapping == expected
    assert any(chrome_id != router_id for chrome_id, router_id in mapping.items())


def test_unknown_producer_header_extension_is_left_out_of_the_id_mapping(router_caps: Any) -> None:
    params = load("chrome_produce_video.json")
    params["headerExtensions"].append({"uri": "urn:example:unknown", "id": 14})
    mapping = get_header_extension_id_mapping("video", params, router_caps)
    assert 14 not in mapping
    assert len(mapping) == len(params["headerExtensions"]) - 1


@pytest.mark.parametrize(
    ("name", "change", "mime_type"),
    [
        ("chrome_produce_audio.json", {"mimeType": "audio/PCMU", "clockRate": 8000}, "audio/PCMU"),
        ("chrome_produce_audio.json", {"clockRate": 16000}, "audio/opus"),
        ("chrome_produce_audio.json", {"channels": 1}, "audio/opus"),
        ("chrome_produce_video.json", {"mimeType": "video/AV1"}, "video/AV1"),
        # VP9 profile 2 (10-bit) is not what the Router offers (profile-id 0).
        (
            "chrome_produce_video.json",
            {"mimeType": "video/VP9", "parameters": {"profile-id": 2}},
            "video/VP9",
        ),
        # High profile, and packetization-mode 0, do not match the Router's H264 entries.
        (
            "chrome_produce_video_h264.json",
            {"parameters": {"packetization-mode": 1, "profile-level-id": "64001f"}},
            "video/H264",
        ),
        (
            "chrome_produce_video_h264.json",
            {"parameters": {"packetization-mode": 0, "profile-level-id": "42e01f"}},
            "video/H264",
        ),
    ],
)
def test_unsupported_producer_codec_is_rejected(
    name: str, change: dict[str, Any], mime_type: str, router_caps: Any
) -> None:
    params = load(name)
    params["codecs"][0].update(change)
    with pytest.raises(
        UnsupportedError, match=f"unsupported codec mimeType '{re.escape(mime_type)}'"
    ):
        get_producer_rtp_parameters_mapping(params, router_caps)


def test_h264_levels_do_not_block_a_match(router_caps: Any) -> None:
    params = load("chrome_produce_video_h264.json")
    params["codecs"][0]["parameters"]["profile-level-id"] = "4d0032"  # Main, level 5
    mapping = get_producer_rtp_parameters_mapping(params, router_caps)
    main = router_codec(router_caps, "video/H264", **{"profile-level-id": "4d001f"})
    assert (
        mapping.mapped_payload_type(params["codecs"][0]["payloadType"])
        == main["preferredPayloadType"]
    )


@pytest.mark.parametrize(
    ("producer_params", "expected"),
    [
        # Both sides allow level asymmetry: the producer keeps its own level (5.2).
        ({"level-asymmetry-allowed": 1, "profile-level-id": "42e034"}, "42e034"),
        # No asymmetry: the lower of the two levels (3.0 against the Router's 3.1).
        ({"profile-level-id": "42e01e"}, "42e01e"),
        # Absent profile-level-id means Constrained Baseline 3.1 (RFC 6184 section 8.1).
        ({}, "42e01f"),
    ],
)
def test_consumable_h264_profile_level_id_follows_rfc_6184_answer_rules(
    producer_params: dict[str, Any], expected: str, router_caps: Any
) -> None:
    params = load("chrome_produce_video_h264.json")
    params["codecs"][0]["parameters"] = {"packetization-mode": 1, **producer_params}
    mapping = get_producer_rtp_parameters_mapping(params, router_caps)
    consumable = get_consumable_rtp_parameters("video", params, router_caps, mapping)
    assert consumable["codecs"][0]["parameters"]["profile-level-id"] == expected


def test_rtx_without_its_media_codec_is_rejected(router_caps: Any) -> None:
    params = load("chrome_produce_video.json")
    params["codecs"][1]["parameters"]["apt"] = 55
    with pytest.raises(ValueError, match=r"rtpParameters\.codecs\[1\].*apt 55"):
        get_producer_rtp_parameters_mapping(params, router_caps)


def test_producer_without_encodings_is_bound_by_its_mid(router_caps: Any) -> None:
    params = load("chrome_produce_audio.json")
    for encodings in ([], None, [{"maxBitrate": 1000}]):
        params["encodings"] = encodings
        mapping = get_producer_rtp_parameters_mapping(params, router_caps)
        [encoding] = mapping.encodings
        assert encoding.ssrc is None and encoding.rid is None


def test_producer_without_ssrc_rid_or_mid_is_rejected(router_caps: Any) -> None:
    params = load("chrome_produce_audio.json")
    del params["mid"]
    params["encodings"] = [{"maxBitrate": 1000}]
    with pytest.raises(ValueError, match=r"encodings\[0\] needs an ssrc or a rid"):
        get_producer_rtp_parameters_mapping(params, router_caps)
    params = load("chrome_produce_video_simulcast.json")
    del params["encodings"][1]["rid"]
    with pytest.raises(ValueError, match=r"encodings\[1\] needs an ssrc or a rid"):
        get_producer_rtp_parameters_mapping(params, router_caps)


# --- Consumable parameters -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [("chrome_produce_audio.json", "audio"), ("chrome_produce_video.json", "video")],
)
def test_consumable_parameters_speak_router_terms(name: str, kind: str, router_caps: Any) -> None:
    producer = load(name)
    consumable, mapping = consumable_for(name, kind, router_caps)
    router_pts = {c["preferredPayloadType"] for c in router_caps["codecs"]}
    assert [c["payloadType"] for c in consumable["codecs"]] == [
        mapping.mapped_payload_type(c["payloadType"]) for c in producer["codecs"]
    ]
    assert {c["payloadType"] for c in consumable["codecs"]} <= router_pts
    # Header extension ids are the Router's, not the ids Chrome put in its rtpParameters.
    router_ids = {
        (e["uri"], e["preferredId"]) for e in router_caps["headerExtensions"] if e["kind"] == kind
    }
    assert consumable["headerExtensions"]
    assert {(e["uri"], e["id"]) for e in consumable["headerExtensions"]} <= router_ids
    chrome_ids = {(e["uri"], e["id"]) for e in producer["headerExtensions"]}
    assert not {(e["uri"], e["id"]) for e in consumable["headerExtensions"]} & chrome_ids
    assert [e["ssrc"] for e in consumable["encodings"]] == [
        e.mapped_ssrc for e in mapping.encodings
    ]
    assert not any("rtx" in e or "rid" in e for e in consumable["encodings"])
    assert consumable["rtcp"] == {"cname": producer["rtcp"]["cname"], "reducedSize": True}


def test_consumable_audio_has_no_receive_only_extensions(router_caps: Any) -> None:
    consumable, _ = consumable_for("chrome_produce_audio.json", "audio", router_caps)
    # transport-cc is receive-only for audio in the Router: consumers never get it.
    assert TRANSPORT_CC not in {e["uri"] for e in consumable["headerExtensions"]}


def test_consumable_keeps_producer_codec_parameters(router_caps: Any) -> None:
    producer = load("chrome_produce_audio.json")
    consumable, _ = consumable_for("chrome_produce_audio.json", "audio", router_caps)
    assert consumable["codecs"][0]["parameters"] == producer["codecs"][0]["parameters"]
    assert consumable["codecs"][0]["channels"] == 2


def test_consumable_for_a_codec_without_rtx_in_producer_still_offers_router_rtx(
    router_caps: Any,
) -> None:
    params = load("chrome_produce_video.json")
    params["codecs"] = params["codecs"][:1]
    params["encodings"][0].pop("rtx")
    mapping = get_producer_rtp_parameters_mapping(params, router_caps)
    consumable = get_consumable_rtp_parameters("video", params, router_caps, mapping)
    assert [c["mimeType"] for c in consumable["codecs"]] == ["video/VP8", "video/rtx"]


def test_consumable_rejects_a_foreign_mapping(router_caps: Any) -> None:
    _, simulcast_mapping = consumable_for(
        "chrome_produce_video_simulcast.json", "video", router_caps
    )
    with pytest.raises(ValueError, match="mapping does not belong"):
        get_consumable_rtp_parameters(
            "video", load("chrome_produce_video.json"), router_caps, simulcast_mapping
        )


# --- can_consume ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("chrome_produce_audio.json", "audio"),
        ("chrome_produce_video.json", "video"),
        ("chrome_produce_video_h264.json", "video"),
        ("chrome_produce_video_simulcast.json", "video"),
    ],
)
def test_chrome_can_consume_what_chrome_produces(
    name: str, kind: str, router_caps: Any, chrome_caps: Any
) -> None:
    consumable, _ = consumable_for(name, kind, router_caps)
    assert can_consume(consumable, chrome_caps)


def test_cannot_consume_without_the_codec(router_caps: Any, chrome_caps: Any) -> None:
    consumable, _ = consumable_for("chrome_produce_video.json", "video", router_caps)
    no_vp8 = copy.deepcopy(chrome_caps)
    no_vp8["codecs"] = [c for c in no_vp8["codecs"] if c["mimeType"].lower() != "video/vp8"]
    assert not can_consume(consumable, no_vp8)
    audio, _ = consumable_for("chrome_produce_audio.json", "audio", router_caps)
    video_only = copy.deepcopy(chrome_caps)
    video_only["codecs"] = [c for c in video_only["codecs"] if c["kind"] == "video"]
    assert not can_consume(audio, video_only)
    assert can_consume(consumable, video_only)


def test_cannot_consume_with_only_rtx(router_caps: Any, chrome_caps: Any) -> None:
    consumable, _ = consumable_for("chrome_produce_video.json", "video", router_caps)
    rtx_only = copy.deepcopy(chrome_caps)
    rtx_only["codecs"] = [c for c in rtx_only["codecs"] if c["mimeType"] == "video/rtx"]
    assert not can_consume(consumable, rtx_only)


def test_can_consume_rejects_malformed_caps(router_caps: Any) -> None:
    consumable, _ = consumable_for("chrome_produce_audio.json", "audio", router_caps)
    with pytest.raises(ValueError, match=r"rtpCapabilities\.codecs\[0\]\.clockRate"):
        can_consume(consumable, {"codecs": [{"mimeType": "audio/opus", "clockRate": "48000"}]})


# --- Consumer parameters ------------------------------------------------------------------


def test_video_consumer_on_chrome_caps(router_caps: Any, chrome_caps: Any) -> None:
    consumable, _ = consumable_for("chrome_produce_video.json", "video", router_caps)
    consumer = get_consumer_rtp_parameters(consumable, chrome_caps)
    vp8_pt = router_codec(router_caps, "video/VP8")["preferredPayloadType"]
    assert [c["payloadType"] for c in consumer["codecs"]] == [
        vp8_pt,
        router_rtx_pt(router_caps, vp8_pt),
    ]
    [encoding] = consumer["encodings"]
    assert encoding["rtx"]["ssrc"] == encoding["ssrc"] + 1
    assert encoding["ssrc"] != consumable["encodings"][0]["ssrc"]
    assert consumer["rtcp"]["reducedSize"] is True
    assert consumer["rtcp"]["cname"] == consumable["rtcp"]["cname"]
    # transport-cc is negotiated, so REMB is dropped; NACK stays because RTX is on.
    feedback = {(fb["type"], fb["parameter"]) for fb in consumer["codecs"][0]["rtcpFeedback"]}
    assert ("goog-remb", "") not in feedback
    assert {("transport-cc", ""), ("nack", ""), ("nack", "pli"), ("ccm", "fir")} <= feedback
    assert "mid" not in consumer


def test_consumer_ssrcs_are_fresh_on_every_call(router_caps: Any, chrome_caps: Any) -> None:
    consumable, _ = consumable_for("chrome_produce_video.json", "video", router_caps)
    ssrcs = [
        get_consumer_rtp_parameters(consumable, chrome_caps)["encodings"][0]["ssrc"]
        for _ in range(5)
    ]
    assert len(set(ssrcs)) == 5
    assert all(0 < ssrc < 2**32 - 1 for ssrc in ssrcs)


def test_consumer_header_extensions_are_the_ones_chrome_can_receive(
    router_caps: Any, chrome_caps: Any
) -> None:
    consumable, _ = consumable_for("chrome_produce_video.json", "video", router_caps)
    consumer = get_consumer_rtp_parameters(consumable, chrome_caps)
    receivable = {(e["uri"], e["preferredId"]) for e in chrome_caps["headerExtensions"]}
    got = {(e["uri"], e["id"]) for e in consumer["headerExtensions"]}
    assert got and got <= receivable


def test_simulcast_reaches_the_consumer_as_one_encoding(router_caps: Any, chrome_caps: Any) -> None:
    producer = load("chrome_produce_video_simulcast.json")
    consumable, _ = consumable_for("chrome_produce_video_simulcast.json", "video", router_caps)
    consumer = get_consumer_rtp_parameters(consumable, chrome_caps)
    [encoding] = consumer["encodings"]
    temporal = producer["encodings"][0]["scalabilityMode"].split("T")[1]
    assert encoding["scalabilityMode"] == f"L{len(producer['encodings'])}T{temporal}"
    assert encoding["maxBitrate"] == max(e["maxBitrate"] for e in producer["encodings"])


def test_pipe_consumer_keeps_every_layer(router_caps: Any, chrome_caps: Any) -> None:
    consumable, _ = consumable_for("chrome_produce_video_simulcast.json", "video", router_caps)
    consumer = get_consumer_rtp_parameters(consumable, chrome_caps, pipe=True)
    ssrcs = [e["ssrc"] for e in consumer["encodings"]]
    assert len(ssrcs) == len(consumable["encodings"])
    assert ssrcs == [ssrcs[0] + i for i in range(len(ssrcs))]
    assert set(ssrcs).isdisjoint(e["ssrc"] for e in consumable["encodings"])
    assert all("rtx" in e for e in consumer["encodings"])


def test_audio_consumer_on_chrome_caps(router_caps: Any, chrome_caps: Any) -> None:
    consumable, _ = consumable_for("chrome_produce_audio.json", "audio", router_caps)
    consumer = get_consumer_rtp_parameters(consumable, chrome_caps, mid="3")
    opus_pt = router_codec(router_caps, "audio/opus")["preferredPayloadType"]
    assert [c["payloadType"] for c in consumer["codecs"]] == [opus_pt]
    assert "rtx" not in consumer["encodings"][0]
    assert consumer["mid"] == "3"
    assert consumer["rtcp"]["reducedSize"] is True


def test_audio_consumer_gets_extensions_chrome_lists_under_video(
    router_caps: Any, chrome_caps: Any
) -> None:
    # mediasoup-client keys the browser's extensions by id, so mid and abs-send-time,
    # shared by audio and video under one id, appear for video only: audio still uses them.
    audio_listed = {e["uri"] for e in chrome_caps["headerExtensions"] if e["kind"] == "audio"}
    assert "urn:ietf:params:rtp-hdrext:sdes:mid" not in audio_listed
    consumable, _ = consumable_for("chrome_produce_audio.json", "audio", router_caps)
    consumer = get_consumer_rtp_parameters(consumable, chrome_caps)
    router_ids = {
        e["uri"]: e["preferredId"] for e in router_caps["headerExtensions"] if e["kind"] == "audio"
    }
    got = {e["uri"]: e["id"] for e in consumer["headerExtensions"]}
    assert (
        got["urn:ietf:params:rtp-hdrext:sdes:mid"]
        == router_ids["urn:ietf:params:rtp-hdrext:sdes:mid"]
    )
    assert (
        got["urn:ietf:params:rtp-hdrext:ssrc-audio-level"]
        == router_ids["urn:ietf:params:rtp-hdrext:ssrc-audio-level"]
    )


@pytest.mark.parametrize("strip", ["audio", "all"])
def test_caps_without_audio_header_extensions_still_consume_audio(
    strip: str, router_caps: Any, chrome_caps: Any
) -> None:
    if strip == "audio":
        caps = load("chrome_device_rtp_capabilities_no_audio_ext.json")
        assert not [e for e in caps["headerExtensions"] if e["kind"] == "audio"]
    else:
        caps = {**chrome_caps, "headerExtensions": []}
    consumable, _ = consumable_for("chrome_produce_audio.json", "audio", router_caps)
    assert can_consume(consumable, caps)
    consumer = get_consumer_rtp_parameters(consumable, caps)
    assert consumer["codecs"][0]["mimeType"] == "audio/opus"
    assert len(consumer["encodings"]) == 1
    if strip == "all":
        assert consumer["headerExtensions"] == []
        # No transport-cc and no abs-send-time: no congestion feedback at all.
        assert consumer["codecs"][0]["rtcpFeedback"] == []


def test_without_transport_cc_the_consumer_falls_back_to_remb(
    router_caps: Any, chrome_caps: Any
) -> None:
    caps = copy.deepcopy(chrome_caps)
    caps["headerExtensions"] = [e for e in caps["headerExtensions"] if e["uri"] != TRANSPORT_CC]
    consumable, _ = consumable_for("chrome_produce_video.json", "video", router_caps)
    consumer = get_consumer_rtp_parameters(consumable, caps)
    types = {fb["type"] for fb in consumer["codecs"][0]["rtcpFeedback"]}
    assert "goog-remb" in types and "transport-cc" not in types


def test_consumer_without_rtx_support_gets_no_rtx(router_caps: Any, chrome_caps: Any) -> None:
    consumable, _ = consumable_for("chrome_produce_video.json", "video", router_caps)
    no_rtx = copy.deepcopy(chrome_caps)
    no_rtx["codecs"] = [c for c in no_rtx["codecs"] if c["mimeType"] != "video/rtx"]
    consumer = get_consumer_rtp_parameters(consumable, no_rtx)
    assert [c["mimeType"] for c in consumer["codecs"]] == ["video/VP8"]
    assert "rtx" not in consumer["encodings"][0]


def test_disabled_rtx_drops_rtx_and_plain_nack(router_caps: Any, chrome_caps: Any) -> None:
    consumable, _ = consumable_for("chrome_produce_video.json", "video", router_caps)
    consumer = get_consumer_rtp_parameters(consumable, chrome_caps, enable_rtx=False)
    assert [c["mimeType"] for c in consumer["codecs"]] == ["video/VP8"]
    feedback = {(fb["type"], fb["parameter"]) for fb in consumer["codecs"][0]["rtcpFeedback"]}
    assert ("nack", "") not in feedback and ("nack", "pli") in feedback


def test_consumer_without_a_common_codec_is_unsupported(router_caps: Any, chrome_caps: Any) -> None:
    consumable, _ = consumable_for("chrome_produce_video.json", "video", router_caps)
    audio_only = {
        **chrome_caps,
        "codecs": [c for c in chrome_caps["codecs"] if c["kind"] == "audio"],
    }
    with pytest.raises(UnsupportedError, match="no compatible media codecs"):
        get_consumer_rtp_parameters(consumable, audio_only)


def test_consumer_parameters_validate_as_rtp_parameters(router_caps: Any, chrome_caps: Any) -> None:
    for name, kind in [
        ("chrome_produce_audio.json", "audio"),
        ("chrome_produce_video.json", "video"),
    ]:
        consumable, _ = consumable_for(name, kind, router_caps)
        consumer = get_consumer_rtp_parameters(consumable, chrome_caps, mid="0")
        round_tripped = json.loads(json.dumps(consumer))
        validated = validate_rtp_parameters(round_tripped)
        assert validated["codecs"] == round_tripped["codecs"]
        assert validated["headerExtensions"] == round_tripped["headerExtensions"]
        assert validated["encodings"] == [{**e, "dtx": False} for e in round_tripped["encodings"]]


# --- Validation ----------------------------------------------------------------------------


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    obj = copy.deepcopy(obj)
    target = obj
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return obj


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("codecs", 0, "payloadType"),
            "111",
            "rtpParameters.codecs[0].payloadType must be an integer",
        ),
        (
            ("codecs", 0, "payloadType"),
            True,
            "rtpParameters.codecs[0].payloadType must be an integer",
        ),
        (
            ("codecs", 0, "payloadType"),
            128,
            "rtpParameters.codecs[0].payloadType must be between 0 and 127",
        ),
        (("codecs", 0, "payloadType"), _DELETE, "rtpParameters.codecs[0].payloadType is required"),
        (
            ("codecs", 0, "clockRate"),
            48000.5,
            "rtpParameters.codecs[0].clockRate must be an integer",
        ),
        (("codecs", 0, "mimeType"), "opus", "rtpParameters.codecs[0].mimeType must look like"),
        (
            ("codecs", 0, "mimeType"),
            7,
            "rtpParameters.codecs[0].mimeType must be a non-empty string",
        ),
        (("codecs", 0, "parameters"), [], "rtpParameters.codecs[0].parameters must be an object"),
        (
            ("codecs", 0, "parameters", "useinbandfec"),
            [1],
            "rtpParameters.codecs[0].parameters.useinbandfec must be a string or a number",
        ),
        (
            ("codecs", 0, "rtcpFeedback"),
            "nack",
            "rtpParameters.codecs[0].rtcpFeedback must be an array",
        ),
        (
            ("codecs", 0, "rtcpFeedback", 0),
            {"parameter": "pli"},
            "rtpParameters.codecs[0].rtcpFeedback[0].type is required",
        ),
        (("codecs",), {}, "rtpParameters.codecs must be an array"),
        (("codecs",), _DELETE, "rtpParameters.codecs is required"),
        (("codecs", 0), "opus", "rtpParameters.codecs[0] must be an object"),
        (
            ("headerExtensions", 1, "id"),
            0,
            "rtpParameters.headerExtensions[1].id must be between 1 and 255",
        ),
        (
            ("headerExtensions", 1, "uri"),
            "",
            "rtpParameters.headerExtensions[1].uri must be a non-empty string",
        ),
        (
            ("headerExtensions", 1, "encrypt"),
            "no",
            "rtpParameters.headerExtensions[1].encrypt must be a boolean",
        ),
        (("headerExtensions", 1, "id"), 4, "rtpParameters.headerExtensions[1].id 4 is used twice"),
        (
            ("encodings", 0, "ssrc"),
            -1,
            "rtpParameters.encodings[0].ssrc must be between 0 and 4294967295",
        ),
        (("encodings", 0, "ssrc"), "1", "rtpParameters.encodings[0].ssrc must be an integer"),
        (("encodings", 0, "rid"), 5, "rtpParameters.encodings[0].rid must be a string"),
        (
            ("encodings", 0, "rtx"),
            {"ssrc": "x"},
            "rtpParameters.encodings[0].rtx.ssrc must be an integer",
        ),
        (("encodings", 0, "dtx"), "yes", "rtpParameters.encodings[0].dtx must be a boolean"),
        (("encodings",), "one", "rtpParameters.encodings must be an array"),
        (("rtcp",), "cname", "rtpParameters.rtcp must be an object"),
        (("rtcp", "cname"), 5, "rtpParameters.rtcp.cname must be a string"),
        (("mid",), 0.5, "rtpParameters.mid must be a string"),
    ],
)
def test_bad_rtp_parameters_name_the_field(path: tuple[Any, ...], value: Any, message: str) -> None:
    params = _set(load("chrome_produce_audio.json"), path, value)
    with pytest.raises(ValueError) as excinfo:
        validate_rtp_parameters(params)
    assert str(excinfo.value).startswith(message)


def test_rtx_apt_must_be_an_integer() -> None:
    params = _set(load("chrome_produce_video.json"), ("codecs", 1, "parameters", "apt"), "96")
    with pytest.raises(
        ValueError, match=r"rtpParameters\.codecs\[1\]\.parameters\.apt must be an integer"
    ):
        validate_rtp_parameters(params)


def test_duplicate_payload_types_are_rejected() -> None:
    params = _set(load("chrome_produce_video.json"), ("codecs", 1, "payloadType"), 96)
    with pytest.raises(
        ValueError, match=r"rtpParameters\.codecs\[1\]\.payloadType 96 is used twice"
    ):
        validate_rtp_parameters(params)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("codecs", 0, "clockRate"),
            "48000",
            "rtpCapabilities.codecs[0].clockRate must be an integer",
        ),
        (
            ("codecs", 0, "preferredPayloadType"),
            "100",
            "rtpCapabilities.codecs[0].preferredPayloadType must be an integer",
        ),
        (
            ("headerExtensions", 0, "kind"),
            "data",
            "rtpCapabilities.headerExtensions[0].kind must be 'audio' or 'video'",
        ),
        (
            ("headerExtensions", 0, "preferredId"),
            _DELETE,
            "rtpCapabilities.headerExtensions[0].preferredId is required",
        ),
        (
            ("headerExtensions", 0, "direction"),
            "both",
            "rtpCapabilities.headerExtensions[0].direction must be one of",
        ),
        (("headerExtensions",), {}, "rtpCapabilities.headerExtensions must be an array"),
    ],
)
def test_bad_rtp_capabilities_name_the_field(
    path: tuple[Any, ...], value: Any, message: str, chrome_caps: Any
) -> None:
    with pytest.raises(ValueError) as excinfo:
        validate_rtp_capabilities(_set(chrome_caps, path, value))
    assert str(excinfo.value).startswith(message)


def test_validation_fills_mediasoup_defaults_without_touching_input() -> None:
    params = {
        "codecs": [
            {"mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000},
            {
                "mimeType": "video/VP8",
                "payloadType": 96,
                "clockRate": 90000,
                "channels": 2,
                "rtcpFeedback": [{"type": "nack"}],
            },
        ],
        "encodings": [{"ssrc": 1234}],
    }
    before = copy.deepcopy(params)
    result = validate_rtp_parameters(params)
    assert params == before
    opus, vp8 = result["codecs"]
    assert opus["channels"] == 1 and opus["parameters"] == {} and opus["rtcpFeedback"] == []
    assert "channels" not in vp8  # channels only mean something for audio
    assert vp8["rtcpFeedback"] == [{"type": "nack", "parameter": ""}]
    assert result["headerExtensions"] == []
    assert result["encodings"] == [{"ssrc": 1234, "dtx": False}]
    assert result["rtcp"] == {"reducedSize": True}
    caps = validate_rtp_capabilities(
        {"headerExtensions": [{"kind": "audio", "uri": "urn:x", "preferredId": 3}]}
    )
    assert caps == {
        "codecs": [],
        "headerExtensions": [
            {
                "kind": "audio",
                "uri": "urn:x",
                "preferredId": 3,
                "preferredEncrypt": False,
                "direction": "sendrecv",
            }
        ],
    }


def test_kind_must_be_audio_or_video(router_caps: Any) -> None:
    params = load("chrome_produce_audio.json")
    mapping = get_producer_rtp_parameters_mapping(params, router_caps)
    with pytest.raises(ValueError, match="kind must be 'audio' or 'video'"):
        get_consumable_rtp_parameters("data", params, router_caps, mapping)


_GARBAGE = [None, True, 0, -1, 2**40, 1.5, "", "x", [], {}, [1], {"a": None}]


def _mutations(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [path]
    items = (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    )
    for key, value in items:
        paths.extend(_mutations(value, (*path, key)))
    return paths


@pytest.mark.parametrize(
    "name", ["chrome_produce_video.json", "chrome_produce_video_simulcast.json"]
)
def test_garbage_anywhere_is_a_value_error_never_a_crash(name: str, router_caps: Any) -> None:
    params = load(name)
    rng = random.Random(1234)
    for path in _mutations(params)[1:]:
        for value in rng.sample(_GARBAGE, 4):
            mutated = _set(params, path, value)
            try:
                mapping = get_producer_rtp_parameters_mapping(mutated, router_caps)
                get_consumable_rtp_parameters("video", mutated, router_caps, mapping)
            except ValueError:
                pass
