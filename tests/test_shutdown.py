"""SIGTERM under `roomler serve`: the node drains, then exits in bounded time (one node).

A real `roomler serve` with its SFU worker, a participant in a call over a real
WebSocket: after SIGTERM `/ready` answers 503 `draining`, a new WebSocket is refused with
503, the participant hears `media:room_closed {reason: "server_shutdown"}` and then its
socket closes with 1001 (going away), and the process exits 0 within
`ROOMLER__APP__SHUTDOWN_TIMEOUT_SECS`. The same across two nodes: tests/cluster/test_drain.py.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.test_serve import RoomlerProcess

SHUTDOWN_TIMEOUT_SECS = 12.0  # the drain delay may use half of 70 % of it
DRAIN_DELAY_SECS = 4.0
FRAME_TIMEOUT = 15.0  # the first media:join starts the SFU worker
MEDIA_ENV = {
    "ROOMLER__MEDIASOUP__LISTEN_IP": "127.0.0.1",
    "ROOMLER__MEDIASOUP__NUM_WORKERS": "1",
    "ROOMLER__MEDIASOUP__RTC_MIN_PORT": "44200",
    "ROOMLER__MEDIASOUP__RTC_MAX_PORT": "44299",
    "ROOMLER__APP__SHUTDOWN_TIMEOUT_SECS": str(SHUTDOWN_TIMEOUT_SECS),
    "ROOMLER__APP__DRAIN_DELAY_SECS": str(DRAIN_DELAY_SECS),
}


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[RoomlerProcess]:
    process = RoomlerProcess(tmp_path, database_url)
    process.env.update(MEDIA_ENV)
    try:
        process.start()  # a start that times out leaves no process behind either
        yield process
    finally:
        if process.process is not None and process.process.poll() is None:
            process.process.kill()
            process.process.wait(timeout=10)


async def call_in_progress(base: str) -> tuple[str, str]:
    """A user, a workspace and a started conference: (access token, conference id)."""
    name = f"drain-{secrets.token_hex(3)}"
    async with httpx.AsyncClient(base_url=base, timeout=FRAME_TIMEOUT) as http:
        registered = await http.post(
            "/api/auth/register",
            json={
                "email": f"{name}@example.com",
                "username": name,
                "display_name": "Drain",
                "password": "correct horse battery",
            },
        )
        assert registered.status_code == 201, registered.text
        token = registered.json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        tenant = await http.post("/api/tenant", json={"name": "Drain", "slug": name})
        assert tenant.status_code == 201, tenant.text
        base_path = f"/api/tenant/{tenant.json()['id']}/conference"
        conference = await http.post(base_path, json={"subject": "Until SIGTERM"})
        assert conference.status_code == 201, conference.text
        conference_id = conference.json()["id"]
        started = await http.post(f"{base_path}/{conference_id}/start")
        assert started.status_code == 200, started.text
    return token, conference_id


async def frame_of_type(ws: ClientConnection, wanted: str) -> dict[str, Any]:
    async with asyncio.timeout(FRAME_TIMEOUT):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame["type"] == wanted:
                return frame


def ws_url(base: str, token: str) -> str:
    return base.replace("http://", "ws://") + f"/ws?token={token}"


async def test_sigterm_drains_then_exits(server: RoomlerProcess) -> None:
    token, conference_id = await call_in_progress(server.base)
    ws = await connect(ws_url(server.base, token), open_timeout=FRAME_TIMEOUT)
    await frame_of_type(ws, "connected")
    await ws.send(
        json.dumps(
            {"type": "media:join", "data": {"conference_id": conference_id}, "request_id": "j1"}
        )
    )
    await frame_of_type(ws, "media:transport_created")
    assert httpx.get(f"{server.base}/ready", timeout=10).status_code == 200

    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()

    # Draining: not ready, and a new WebSocket is refused (a proxy tries another node),
    # while the node still answers requests.
    ready = httpx.get(f"{server.base}/ready", timeout=10)
    while ready.status_code == 200:  # the signal's handler may not have run yet
        assert time.monotonic() - signalled < DRAIN_DELAY_SECS, ready.text
        time.sleep(0.05)
        ready = httpx.get(f"{server.base}/ready", timeout=10)
    assert ready.status_code == 503 and ready.json()["status"] == "draining", ready.text
    with pytest.raises(InvalidStatus) as refused:
        await connect(ws_url(server.base, token), open_timeout=FRAME_TIMEOUT)
    assert refused.value.response.status_code == 503
    assert refused.value.response.headers["retry-after"] == "1"
    assert httpx.get(f"{server.base}/health", timeout=10).status_code == 200

    # The participant is told why its call stopped, then asked to reconnect.
    closed = await frame_of_type(ws, "media:room_closed")
    assert closed["data"] == {"conference_id": conference_id, "reason": "server_shutdown"}
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(FRAME_TIMEOUT):
            while True:
                await ws.recv()
    assert ws.close_code == 1001, (ws.close_code, ws.close_reason)
    assert ws.close_reason == "server shutting down"
    assert time.monotonic() - signalled >= DRAIN_DELAY_SECS * 0.9

    # Gone within the bound, and cleanly.
    returncode = server.process.wait(timeout=SHUTDOWN_TIMEOUT_SECS + 5)
    took = time.monotonic() - signalled
    log = (server.cwd / "serve.log").read_text(errors="replace")
    assert returncode == 0, log[-3000:]
    assert took < SHUTDOWN_TIMEOUT_SECS, f"exited {took:.1f} s after SIGTERM"
    assert "shut down in" in log, log[-3000:]
