"""Logs: text or JSON lines, an access line per request, and never a token or a password.

The end-to-end tests read the stderr of a real `roomler serve` (uvicorn's own lines
included); the unit tests pin the redaction rules and the context fields.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from roomler.logs import JsonFormatter, TextFormatter, log_context, redact
from tests.test_serve import RoomlerProcess

PASSWORD = "correct horse battery staple"
WRONG_PASSWORD = "wrong-horse-password-1234"
RECEIVE_TIMEOUT = 10
LOG_TIMEOUT = 10


# --- against a real server ------------------------------------------------------------------


@pytest.fixture(params=["text", "json"])
def logged_server(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> Iterator[RoomlerProcess]:
    process = RoomlerProcess(tmp_path, database_url)
    process.env["ROOMLER__LOG__FORMAT"] = request.param
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def exercise(base: str) -> dict[str, Any]:
    """What a user does that puts credentials on the wire; returns those credentials."""
    username = f"log_{secrets.token_hex(4)}"  # the PostgreSQL database outlives this test
    async with httpx.AsyncClient(base_url=base) as http:
        registered = await http.post(
            "/api/auth/register",
            json={
                "email": f"{username}@example.com",
                "username": username,
                "display_name": "Logs",
                "password": PASSWORD,
            },
        )
        assert registered.status_code == 201, registered.text
        tokens = registered.json()
        access, refresh = tokens["access_token"], tokens["refresh_token"]
        me = await http.get(
            "/api/auth/me",
            headers={"Authorization": f"Bearer {access}", "X-Request-ID": "probe-123"},
        )
        assert me.status_code == 200 and me.headers["x-request-id"] == "probe-123"
        query = {"access_token": access, "password": PASSWORD}
        assert (await http.get("/api/nowhere", params=query)).status_code == 404
        wrong = {"username": username, "password": WRONG_PASSWORD}
        assert (await http.post("/api/auth/login", json=wrong)).status_code == 401

    ws_base = base.replace("http://", "ws://")
    # %74 is 't': the server reads this parameter as `token` (issue 12 item 6).
    async with connect(f"{ws_base}/ws?%74oken={access}") as ws:
        connected = json.loads(await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT))
        assert connected["type"] == "connected"
    with pytest.raises(InvalidStatus):
        async with connect(f"{ws_base}/ws?%74oken={refresh}"):
            pass
    return {
        "secrets": [access, refresh, PASSWORD, WRONG_PASSWORD, *access.split(".")[1:]],
        "user_id": me.json()["id"],
        "connection_id": connected["connection_id"],
    }


def server_log(server: RoomlerProcess, wanted: str) -> str:
    """The server's output once `wanted` appears in it (lines are written as they happen)."""
    path = server.cwd / "serve.log"
    deadline = time.monotonic() + LOG_TIMEOUT
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace")
        if wanted in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{wanted!r} never appeared in the log:\n{path.read_text()[-3000:]}")


async def test_logs_carry_context_and_never_a_credential(logged_server: RoomlerProcess) -> None:
    seen = await exercise(logged_server.base)
    log = server_log(logged_server, "WebSocket closed by")
    for secret in seen["secrets"]:
        assert secret not in log
    assert "%74oken=[redacted]" in log  # uvicorn's upgrade line, redacted on the decoded name

    if logged_server.env["ROOMLER__LOG__FORMAT"] == "json":
        check_json_lines(log, seen)
    else:
        check_text_lines(log, seen)


def check_json_lines(log: str, seen: dict[str, Any]) -> None:
    entries = [json.loads(line) for line in log.splitlines() if line.strip()]
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
    (me,) = [e for e in entries if e.get("request_id") == "probe-123"]
    assert me["logger"] == "roomler.access" and me["status"] == 200
    assert me["path"] == "/api/auth/me" and me["method"] == "GET"
    assert isinstance(me["duration_ms"], float) and me["user_id"] == seen["user_id"]
    (nowhere,) = [e for e in entries if e.get("path", "").startswith("/api/nowhere")]
    assert nowhere["path"] == "/api/nowhere?access_token=[redacted]&password=[redacted]"
    assert nowhere["status"] == 404
    (closed,) = [e for e in entries if e["message"].startswith("WebSocket closed by")]
    assert closed["user_id"] == seen["user_id"]
    assert closed["connection_id"] == seen["connection_id"]


def check_text_lines(log: str, seen: dict[str, Any]) -> None:
    access = re.compile(
        r'roomler\.access: 127\.0\.0\.1:\d+ "GET /api/auth/me HTTP/1\.1" 200 [\d.]+ ms '
        rf"\[request_id=probe-123 user_id={seen['user_id']}\]"
    )
    assert access.search(log), log[-3000:]
    closed = re.compile(
        rf"WebSocket closed by the client after [\d.]+ s .*\[user_id={seen['user_id']} "
        rf"connection_id={seen['connection_id']}\]"
    )
    assert closed.search(log), log[-3000:]


# --- the rules ------------------------------------------------------------------------------


JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlLWJ5dGVz"


@pytest.mark.nodb
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /ws?token=abc HTTP/1.1", "GET /ws?token=[redacted] HTTP/1.1"),
        ("/ws?%74oken=abc&x=1", "/ws?%74oken=[redacted]&x=1"),
        ("/ws?x=1&%74%6F%6B%65%6E=abc", "/ws?x=1&%74%6F%6B%65%6E=[redacted]"),
        ("/a?refresh_token=r&Password=p", "/a?refresh_token=[redacted]&Password=[redacted]"),
        ('"WebSocket /ws?access_token=a" 403', '"WebSocket /ws?access_token=[redacted]" 403'),
        ("/a?tokens=kept&q=what", "/a?tokens=kept&q=what"),
        ("redis://:hunter2@redis:6379/0", "redis://:[redacted]@redis:6379/0"),
        (
            "postgresql+asyncpg://app:pw@db/roomler",
            "postgresql+asyncpg://app:[redacted]@db/roomler",
        ),
        (f"Bearer {JWT} refused", "Bearer [redacted] refused"),
        ("is it? yes", "is it? yes"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    entry = logging.LogRecord("roomler.test", logging.INFO, __file__, 1, message, args, None)
    entry.__dict__.update(extra)
    return entry


@pytest.mark.nodb
def test_json_lines_carry_the_context_of_the_work_in_progress() -> None:
    with log_context(request_id="r1", user_id="u1"), log_context(conference_id="c1"):
        line = JsonFormatter().format(record("joined %s", f"/ws?token={JWT}", status=200))
    entry = json.loads(line)
    assert entry["message"] == "joined /ws?token=[redacted]"
    assert entry["request_id"] == "r1" and entry["user_id"] == "u1"
    assert entry["conference_id"] == "c1" and entry["status"] == 200
    assert "connection_id" not in entry
    outside = json.loads(JsonFormatter().format(record("idle")))
    assert "request_id" not in outside and outside["level"] == "INFO"


@pytest.mark.nodb
def test_text_lines_name_the_context_and_redact_tracebacks() -> None:
    try:
        raise ValueError(f"bad /ws?token={JWT}")
    except ValueError:
        failed = record("failed")
        failed.exc_info = sys.exc_info()
    with log_context(connection_id="k1"):
        line = TextFormatter().format(failed)
    first, _, traceback = line.partition("\n")
    assert first.endswith("roomler.test: failed [connection_id=k1]")
    assert "ValueError: bad /ws?token=[redacted]" in traceback and JWT not in line
