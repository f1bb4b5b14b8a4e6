"""The WebSocket upgrade's origin and token checks (realtime/handshake.py)."""

from __future__ import annotations

import pytest

from roomler.realtime.handshake import (
    HandshakeRejected,
    allowed_origins,
    handshake_token,
    normalize_origin,
)


def test_origins_are_normalized() -> None:
    assert normalize_origin("HTTP://Example.COM:80") == "http://example.com"
    assert normalize_origin("https://example.com:8443/") == "https://example.com:8443"
    assert normalize_origin("http://[::1]:3000") == "http://[::1]:3000"
    for bad in ("null", "", "ftp://x", "http://", "http://x:99999"):
        assert normalize_origin(bad) is None


def test_allowed_origins_include_our_own_public_and_cors() -> None:
    allowed = allowed_origins(
        "wss", "chat.example:443", "https://public.example/app", ["http://a.b"]
    )
    assert allowed == {"https://chat.example", "https://public.example", "http://a.b"}


def test_token_parameter_then_cookie_with_origin() -> None:
    allowed = frozenset({"http://ok.example"})
    assert handshake_token({"token": "t"}, {"access_token": "c"}, None, allowed) == "t"
    assert handshake_token({}, {"access_token": "c"}, "http://ok.example", allowed) == "c"
    cases = [
        ({"token": ""}, {}, None, 401),
        ({}, {}, "http://ok.example", 401),
        ({}, {"access_token": "c"}, None, 403),
        ({}, {"access_token": "c"}, "http://evil.example", 403),
    ]
    for query, cookies, origin, status in cases:
        with pytest.raises(HandshakeRejected) as caught:
            handshake_token(query, cookies, origin, allowed)
        assert caught.value.status == status
