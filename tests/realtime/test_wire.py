"""The WebSocket wire format (realtime/wire.py): parsing client frames, encoding server frames."""

from __future__ import annotations

import json

import pytest

from roomler.realtime.wire import BadRequest, ClientMessage, encode, encode_error, frame_type


def test_parse_reads_type_data_and_request_id() -> None:
    message = ClientMessage.parse(
        '{"type":"typing:start","data":{"channel_id":"x"},"request_id":"7"}'
    )
    assert message == ClientMessage("typing:start", {"channel_id": "x"}, "7")
    assert ClientMessage.parse('{"type":"ping"}') == ClientMessage("ping", {}, None)
    assert ClientMessage.parse('{"type":"ping","data":null}').data == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "frame is not valid JSON: Expecting value"),
        ("{", "frame is not valid JSON"),
        ("[" * 100000 + "]" * 100000, "frame is not valid JSON: nested too deeply"),
        ("null", "frame must be a JSON object"),
        ("{}", "type is required"),
        ('{"type": null}', "type is required"),
        ('{"type": ["ping"]}', "type must be a non-empty string"),
        ('{"type": "ping", "data": "x"}', "data must be a JSON object"),
        ('{"type": "ping", "request_id": ""}', None),
        ('{"type": "ping", "request_id": {"a": 1}}', "request_id must be a string of at most 64"),
    ],
)
def test_parse_rejects_bad_frames_precisely(text: str, message: str | None) -> None:
    if message is None:
        assert ClientMessage.parse(text).request_id == ""
        return
    with pytest.raises(BadRequest) as caught:
        ClientMessage.parse(text)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)


def test_bad_request_keeps_what_could_be_read() -> None:
    with pytest.raises(BadRequest) as caught:
        ClientMessage.parse('{"type": "media:join", "data": 5, "request_id": "r"}')
    assert (caught.value.request_type, caught.value.request_id) == ("media:join", "r")


def test_encode_is_compact_json_and_echoes_request_ids() -> None:
    assert encode("pong", {}) == '{"type":"pong","data":{}}'
    assert json.loads(encode("pong", {}, "q")) == {"type": "pong", "data": {}, "request_id": "q"}
    assert json.loads(encode("x", {"text": "héllo"})) == {"type": "x", "data": {"text": "héllo"}}
    error = json.loads(encode_error("bad_request", "no", request_type="ping"))
    assert error == {
        "type": "error",
        "data": {"code": "bad_request", "message": "no", "request_type": "ping"},
    }


def test_frame_type_reads_the_type_whatever_the_key_order() -> None:
    assert frame_type(encode("media:room_closed", {"conference_id": "x"})) == "media:room_closed"
    assert frame_type('{"data":{},"type":"media:room_closed"}') == "media:room_closed"
    assert frame_type('{"data":{"type":"media:room_closed"},"type":"pong"}') == "pong"
    assert frame_type("not json") is None
    assert frame_type('["media:room_closed"]') is None
    assert frame_type('{"type":7}') is None
