"""`RequestData` (realtime/request_data.py): a message's fields, and the error that names one."""

from __future__ import annotations

from typing import Any

import pytest

from roomler.ids import new_id
from roomler.realtime.builtin_handlers import parse_channel_id, parse_presence

CHANNEL = new_id()


def test_fields_are_read_and_unknown_keys_ignored() -> None:
    assert parse_channel_id({"channel_id": CHANNEL, "extra": [1]}) == CHANNEL
    assert parse_presence({"presence": "dnd"}) == "dnd"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "data.channel_id is required"),
        ({"channel_id": None}, "data.channel_id is required"),
        ({"channel_id": 7}, "data.channel_id must be a 24-character lowercase hex id"),
        (
            {"channel_id": CHANNEL.upper()},
            "data.channel_id must be a 24-character lowercase hex id",
        ),
        ({"channel_id": [CHANNEL]}, "data.channel_id must be a 24-character lowercase hex id"),
    ],
)
def test_a_bad_channel_id_is_named(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_channel_id(data)
    assert str(raised.value) == message


def test_a_choice_outside_the_list_is_named_with_the_list() -> None:
    for value in ("away", 1, True):
        with pytest.raises(ValueError) as raised:
            parse_presence({"presence": value})
        assert str(raised.value) == "data.presence must be one of online|idle|dnd|offline|invisible"
