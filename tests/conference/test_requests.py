"""The `media:*` request types (conference/requests.py): fields read, the first fault named."""

from __future__ import annotations

from typing import Any

import pytest

from roomler.conference.requests import ConnectTransport, Consume, ConsumerAction, Join, Produce
from roomler.ids import new_id

CONFERENCE = new_id()
RTP = {"codecs": [], "encodings": [{"ssrc": 1}]}

pytestmark = pytest.mark.nodb


def test_a_request_keeps_the_sfu_objects_as_given() -> None:
    produce = Produce.parse(
        {"conference_id": CONFERENCE, "kind": "video", "rtp_parameters": RTP, "app_data": {}}
    )
    assert (produce.kind, produce.rtp_parameters, produce.app_data) == ("video", RTP, {})
    assert Produce.parse({"conference_id": CONFERENCE, "kind": "audio", "rtp_parameters": RTP})
    assert Join.parse({"conference_id": CONFERENCE, "other": 1}) == Join(conference_id=CONFERENCE)


@pytest.mark.parametrize(
    ("parse", "data", "message"),
    [
        (Join.parse, {}, "data.conference_id is required"),
        (Join.parse, {"conference_id": "x"}, "must be a 24-character lowercase hex id"),
        (
            Produce.parse,
            {"conference_id": CONFERENCE, "kind": "text", "rtp_parameters": RTP},
            "data.kind must be one of audio|video",
        ),
        (
            Produce.parse,
            {"conference_id": CONFERENCE, "kind": "audio", "rtp_parameters": []},
            "data.rtp_parameters must be an object",
        ),
        (
            Produce.parse,
            {"conference_id": CONFERENCE, "kind": "audio", "rtp_parameters": RTP, "app_data": "x"},
            "data.app_data must be an object",
        ),
        (
            Produce.parse,
            {
                "conference_id": CONFERENCE,
                "kind": "audio",
                "rtp_parameters": RTP,
                "app_data": {"x": "y" * 4096},
            },
            "data.app_data must be at most 4096 bytes as JSON, got 4104",
        ),
        (
            Produce.parse,
            {
                "conference_id": CONFERENCE,
                "kind": "audio",
                "rtp_parameters": RTP,
                "app_data": {"label": "\ud800"},
            },
            "data.app_data must not contain lone surrogates",
        ),
        (
            Consume.parse,
            {"conference_id": CONFERENCE, "producer_id": "p"},
            "data.rtp_capabilities is required",
        ),
        (
            Consume.parse,
            {"conference_id": CONFERENCE, "producer_id": 7, "rtp_capabilities": {}},
            "data.producer_id must be a non-empty string of at most 64 characters",
        ),
        (
            ConnectTransport.parse,
            {"conference_id": CONFERENCE, "transport_id": "x" * 65, "dtls_parameters": {}},
            "data.transport_id must be a non-empty string of at most 64 characters",
        ),
        (ConsumerAction.parse, {"conference_id": CONFERENCE}, "data.consumer_id is required"),
    ],
)
def test_the_first_fault_is_named(parse: Any, data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse(data)
    assert message in str(raised.value)
