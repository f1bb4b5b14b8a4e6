"""The envelope nodes send each other (cluster/wire.py)."""

from __future__ import annotations

import pytest

from roomler.cluster.wire import CONNECTION, USERS, Envelope

pytestmark = pytest.mark.nodb


def test_envelope_round_trip_keeps_a_body_with_newlines() -> None:
    envelope = Envelope(USERS, ("u1", "u2"), "conn-9", '{"a":"x\\ny"}\nsecond line')
    text = envelope.serialize()
    assert text == 'u\nu1,u2\nconn-9\n{"a":"x\\ny"}\nsecond line'
    assert Envelope.parse(text) == envelope
    assert Envelope.parse("c\nconn-1\n\n{}") == Envelope(CONNECTION, ("conn-1",), "", "{}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("u\nu1\n", "cluster envelope has fewer than four fields"),
        ("", "cluster envelope has fewer than four fields"),
        ("z\nu1\n\n{}", "cluster envelope has unknown kind 'z'"),
        ("u\n\n\n{}", "cluster envelope has no targets"),
    ],
)
def test_envelope_parse_rejects_garbage_precisely(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        Envelope.parse(text)


def test_envelope_refuses_targets_that_would_change_its_meaning() -> None:
    with pytest.raises(ValueError, match="has a comma or newline"):
        Envelope(USERS, ("a,b",), "", "{}").serialize()
    with pytest.raises(ValueError, match="no targets"):
        Envelope(USERS, (), "", "{}").serialize()
