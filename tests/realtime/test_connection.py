"""Opening a connection: the handshake's 401/403 cases, the `connected` frame, registration."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from roomler.auth.tokens import TokenIssuer
from roomler.ids import new_id
from roomler.logs import install_token_redaction
from tests.conftest import TEST_JWT_SECRET
from tests.realtime.conftest import (
    ALLOWED_ORIGIN,
    RECEIVE_TIMEOUT,
    LiveServer,
    open_client,
    register,
)


async def rejected_status(url: str, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(url, open_timeout=RECEIVE_TIMEOUT, **kwargs):
            pass
    return caught.value.response.status_code


def issuer(**overrides: Any) -> TokenIssuer:
    values: dict[str, Any] = {
        "secret": TEST_JWT_SECRET,
        "issuer": "roomler",
        "access_ttl": 3600,
        "refresh_ttl": 7200,
    }
    values.update(overrides)
    return TokenIssuer(**values)


async def test_first_frame_is_connected_with_a_fresh_uuid(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    alice = await register(http, "alice")
    one = await open_client(server, alice)
    two = await open_client(server, alice)
    assert uuid.UUID(one.connection_id) and uuid.UUID(two.connection_id)
    assert one.connection_id != two.connection_id
    assert await server.connection_count() == 2
    senders = await server.call(lambda: server.realtime.storage.get_senders(alice.id))
    assert {s.connection_id for s in senders} == {one.connection_id, two.connection_id}
    await one.close()
    await two.close()


async def test_connected_frame_has_exactly_type_user_and_connection(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    import json

    alice = await register(http, "alice")
    async with connect(f"{server.ws_url}?token={alice.token}") as ws:
        frame = json.loads(await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT))
    assert set(frame) == {"type", "user_id", "connection_id"}
    assert frame["type"] == "connected" and frame["user_id"] == alice.id


async def test_bad_tokens_are_refused_with_401_before_the_upgrade(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    alice = await register(http, "alice")
    expired = issuer(access_ttl=1).issue(alice.id, "access", now=time.time() - 60)
    wrong_key = issuer(secret="another-secret-" + "y" * 32).issue(alice.id, "access")
    nobody = issuer().issue(new_id(), "access")
    for query in (
        "",
        "?token=",
        "?token=not-a-jwt",
        f"?token={expired}",
        f"?token={alice.refresh_token}",
        f"?token={wrong_key}",
        f"?token={nobody}",
    ):
        assert await rejected_status(server.ws_url + query) == 401, query
    assert await server.connection_count() == 0


async def test_denial_is_a_json_error_response(server: LiveServer) -> None:
    async with httpx.AsyncClient() as raw:
        response = await raw.get(
            f"{server.http_url}/ws?token=nope",
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


async def test_cookie_needs_an_allowed_origin(server: LiveServer, http: httpx.AsyncClient) -> None:
    alice = await register(http, "alice")
    cookie = {"Cookie": f"access_token={alice.token}"}
    for origin in (ALLOWED_ORIGIN, server.http_url):
        async with connect(
            server.ws_url,
            origin=Origin(origin),
            additional_headers=cookie,
        ) as ws:
            frame = await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT)
            assert '"connected"' in str(frame)
    for origin in ("http://evil.example", "https://allowed.example", "null"):
        status = await rejected_status(
            server.ws_url,
            origin=Origin(origin),
            additional_headers=cookie,
        )
        assert status == 403, origin
    assert await rejected_status(server.ws_url, additional_headers=cookie) == 403
    # A bad cookie from a good origin is still a 401.
    bad = {"Cookie": "access_token=garbage"}
    status = await rejected_status(
        server.ws_url,
        origin=Origin(ALLOWED_ORIGIN),
        additional_headers=bad,
    )
    assert status == 401


async def test_token_parameter_wins_over_the_cookie(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    alice = await register(http, "alice")
    cookie = {"Cookie": f"access_token={alice.token}"}
    status = await rejected_status(
        f"{server.ws_url}?token=bad",
        origin=Origin(ALLOWED_ORIGIN),
        additional_headers=cookie,
    )
    assert status == 401


async def test_logs_never_contain_the_token(
    server: LiveServer, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    install_token_redaction()
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    alice = await register(http, "alice")
    client = await open_client(server, alice)
    await client.close()
    await rejected_status(f"{server.ws_url}?token={alice.refresh_token}")
    await asyncio.sleep(0.05)  # let the server thread finish logging
    assert "WebSocket /ws?token=[redacted]" in caplog.text
    assert alice.token not in caplog.text and alice.refresh_token not in caplog.text


async def test_only_the_exact_ws_path_is_the_websocket(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    alice = await register(http, "alice")
    for path in ("/wsx", "/ws/more", "/api/ws"):
        status = await rejected_status(f"ws://127.0.0.1:{server.port}{path}?token={alice.token}")
        assert status == 403, (path, status)
    async with connect(f"{server.ws_url}?token={alice.token}") as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT))["type"] == "connected"
