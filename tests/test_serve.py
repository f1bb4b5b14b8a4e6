"""End to end: a real `roomler serve` process started the way the README says."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import roomler


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_health(base: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"roomler serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("roomler serve did not answer /health in time")


class RoomlerProcess:
    """`python -m roomler serve` in a working directory, as a user would start it."""

    def __init__(self, cwd: Path, database_url: str) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMLER__")}
        if not database_url.startswith("sqlite"):
            self.env["ROOMLER__DATABASE__URL"] = database_url
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.cwd / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "roomler",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for_health(self.base, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[RoomlerProcess]:
    process = RoomlerProcess(tmp_path, database_url)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_serve_migrates_and_answers(server: RoomlerProcess) -> None:
    base = server.base
    assert httpx.get(f"{base}/health").json() == {"status": "ok", "version": roomler.__version__}
    assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "Roomler"
    assert "swagger" in httpx.get(f"{base}/docs").text.lower()
    unknown = httpx.get(f"{base}/api/nowhere")
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"


def test_tokens_survive_a_restart_with_a_generated_secret(server: RoomlerProcess) -> None:
    body = {
        "email": "e2e@example.com",
        "username": "e2e_user",
        "display_name": "E2E",
        "password": "correct horse battery",
    }
    response = httpx.post(f"{server.base}/api/auth/register", json=body)
    assert response.status_code == 201, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    secret_file = server.cwd / "data" / "jwt_secret"
    assert secret_file.exists() and oct(secret_file.stat().st_mode)[-3:] == "600"
    server.stop()
    server.start()
    me = httpx.get(f"{server.base}/api/auth/me", headers=headers)
    assert me.status_code == 200 and me.json()["username"] == "e2e_user"
