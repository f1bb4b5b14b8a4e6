"""`/ready`: 503 until the database, the SFU workers and (several nodes) Redis are usable.

Real parts: a `roomler serve` subprocess, its SFU worker processes, a redis-server this
test starts and stops, a database left at an older migration.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from roomler.app import create_app
from roomler.config import Settings
from roomler.db.engine import create_engine
from roomler.db.migrate import upgrade
from roomler.readiness import database_check
from tests.conftest import TEST_JWT_SECRET
from tests.test_serve import RoomlerProcess, free_port

READY_TIMEOUT = 30.0
MEDIA_ENV = {
    "ROOMLER__MEDIASOUP__LISTEN_IP": "127.0.0.1",
    "ROOMLER__MEDIASOUP__NUM_WORKERS": "1",
    "ROOMLER__MEDIASOUP__RTC_MIN_PORT": "44000",
    "ROOMLER__MEDIASOUP__RTC_MAX_PORT": "44099",
}


def ready(base: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{base}/ready", timeout=10)
    return response.status_code, response.json()


def wait_for(base: str, status: int, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        code, body = ready(base)
        if code == status:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"/ready stayed {code}: {body}")
        time.sleep(0.2)


@pytest.fixture
def start(tmp_path: Path, database_url: str) -> Iterator[Any]:
    started: list[RoomlerProcess] = []

    def start_server(extra: dict[str, str]) -> RoomlerProcess:
        cwd = tmp_path / f"node{len(started)}"
        cwd.mkdir()
        process = RoomlerProcess(cwd, database_url)
        process.env.update(MEDIA_ENV)
        process.env.update(extra)
        started.append(process)
        process.start()
        return process

    try:
        yield start_server
    finally:
        for process in started:
            process.stop()


def test_ready_once_the_sfu_workers_run(start: Any) -> None:
    server = start({})
    # Liveness answers at once; readiness waits for the lazily started worker pool.
    assert httpx.get(f"{server.base}/health").status_code == 200
    code, body = ready(server.base)
    assert code == 503, body
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["sfu"] == "starting the SFU workers"
    body = wait_for(server.base, 200)
    assert body["status"] == "ready"
    assert body["checks"] == {"database": "ok", "sfu": "ok"}


@pytest.fixture
def redis_port() -> Iterator[int]:
    if shutil.which("redis-server") is None:
        pytest.skip(
            "!!!!! redis-server is not installed: the Redis readiness test is SKIPPED !!!!!"
        )
    yield free_port()


def start_redis(port: int, cwd: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process


def test_a_cluster_node_is_ready_only_while_redis_answers(
    start: Any, redis_port: int, tmp_path: Path
) -> None:
    redis = start_redis(redis_port, tmp_path)
    try:
        server = start(
            {
                "ROOMLER__REDIS__URL": f"redis://127.0.0.1:{redis_port}/0",
                "ROOMLER__REDIS__KEY_PREFIX": f"ready{redis_port}:",
            }
        )
        assert wait_for(server.base, 200)["checks"]["redis"] == "ok"
    finally:
        redis.terminate()
        redis.wait(timeout=10)
    body = wait_for(server.base, 503)
    assert body["checks"]["redis"] == "Redis is unreachable; reconnecting"
    assert body["checks"]["sfu"] == "ok"  # only the lost part is reported
    redis = start_redis(redis_port, tmp_path)
    try:
        wait_for(server.base, 200)
    finally:
        redis.terminate()
        redis.wait(timeout=10)


def test_not_ready_while_migrations_are_pending(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")  # Alembic runs its own event loop: this test is synchronous
    assert asyncio.run(check_database(url)).startswith("migrations pending: at 0001")
    upgrade(url)
    assert asyncio.run(check_database(url)) == "ok"


async def check_database(url: str) -> str:
    engine = create_engine(url)
    try:
        return await database_check(engine)() or "ok"
    finally:
        await engine.dispose()


async def test_not_ready_when_the_database_does_not_answer() -> None:
    closed_port = free_port()
    engine = create_engine(f"postgresql+asyncpg://roomler@127.0.0.1:{closed_port}/none")
    try:
        assert await database_check(engine)() == "unreachable: ConnectionRefusedError"
    finally:
        await engine.dispose()


async def test_not_ready_while_draining(tmp_path: Path, database_url: str) -> None:
    settings = Settings(
        database={"url": database_url},
        jwt={"secret": TEST_JWT_SECRET},
        app={"data_dir": tmp_path},
    )
    app = create_app(settings)
    app.state.readiness.checks.pop("sfu")  # no worker processes for this one
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert (await http.get("/ready")).status_code == 200
        app.state.readiness.drain()
        response = await http.get("/ready")
        assert response.status_code == 503
        assert response.json()["status"] == "draining"
        assert (await http.get("/health")).status_code == 200
