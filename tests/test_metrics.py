"""`GET /metrics` of a real `roomler serve`: the counters move with what users do."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from roomler.app import create_app
from roomler.config import Settings
from tests.conftest import TEST_JWT_SECRET
from tests.test_ready import MEDIA_ENV, redis_port, start_redis  # noqa: F401  (fixture)
from tests.test_serve import RoomlerProcess

TOKEN = "metrics-" + secrets.token_hex(16)
RECEIVE_TIMEOUT = 10
SCRAPE_TIMEOUT = 10.0
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[RoomlerProcess]:
    process = RoomlerProcess(tmp_path, database_url)
    process.env["ROOMLER__METRICS__ENABLED"] = "true"
    process.env["ROOMLER__METRICS__TOKEN"] = TOKEN
    process.start()
    try:
        yield process
    finally:
        process.stop()


def scrape(base: str) -> Samples:
    response = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def scrape_until(base: str, name: str, expected: float, **labels: str) -> Samples:
    deadline = time.monotonic() + SCRAPE_TIMEOUT
    while (value(samples := scrape(base), name, **labels)) != expected:
        assert time.monotonic() < deadline, (name, labels, value(samples, name, **labels))
        time.sleep(0.1)
    return samples


async def test_metrics_follow_requests_and_websockets(server: RoomlerProcess) -> None:
    base = server.base
    assert httpx.get(f"{base}/metrics").status_code == 401
    wrong = {"Authorization": "Bearer " + "x" * 40}
    assert httpx.get(f"{base}/metrics", headers=wrong).status_code == 401

    name = f"metrics_{secrets.token_hex(4)}"
    body = {
        "email": f"{name}@example.com",
        "username": name,
        "display_name": "M",
        "password": "correct horse battery",
    }
    registered = httpx.post(f"{base}/api/auth/register", json=body)
    assert registered.status_code == 201
    token = registered.json()["access_token"]
    for _ in range(2):
        me = httpx.get(f"{base}/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
    samples = scrape(base)
    me_labels = {"method": "GET", "route": "/api/auth/me"}
    assert value(samples, "roomler_http_requests_total", status="200", **me_labels) == 2
    assert value(samples, "roomler_http_request_duration_seconds_count", **me_labels) == 2
    register = {"method": "POST", "route": "/api/auth/register", "status": "201"}
    assert value(samples, "roomler_http_requests_total", **register) == 1
    assert value(samples, "roomler_event_loop_lag_seconds") is not None
    assert value(samples, "roomler_db_pool_connections_in_use") is not None
    assert value(samples, "roomler_websocket_connections") == 0
    assert value(samples, "roomler_sfu_workers_alive") == 0  # no call yet: no worker
    assert value(samples, "roomler_redis_link_up") is None  # one process, no Redis

    ws_url = base.replace("http://", "ws://") + f"/ws?token={token}"
    async with connect(ws_url, max_size=None) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT))["type"] == "connected"
        scrape_until(base, "roomler_websocket_connections", 1)
        await ws.send("x" * (64 * 1024 + 1))  # over ROOMLER__WS__MAX_FRAME_BYTES: 1009
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    scrape_until(base, "roomler_websocket_closes_total", 1, code="1009")

    async with connect(ws_url) as ws:  # closed by the client: 1000
        await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT)
    samples = scrape_until(base, "roomler_websocket_closes_total", 1, code="1000")
    assert value(samples, "roomler_websocket_connections") == 0


async def test_metrics_are_off_by_default(tmp_path: Path, database_url: str) -> None:
    settings = Settings(
        database={"url": database_url}, jwt={"secret": TEST_JWT_SECRET}, app={"data_dir": tmp_path}
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/metrics")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytest.fixture
def cluster_node(
    tmp_path: Path,
    database_url: str,
    redis_port: int,  # noqa: F811
) -> Iterator[RoomlerProcess]:
    process = RoomlerProcess(tmp_path, database_url)
    process.env.update(MEDIA_ENV)
    process.env["ROOMLER__METRICS__ENABLED"] = "true"
    process.env["ROOMLER__METRICS__TOKEN"] = TOKEN
    process.env["ROOMLER__REDIS__URL"] = f"redis://127.0.0.1:{redis_port}/0"
    process.env["ROOMLER__REDIS__KEY_PREFIX"] = f"metrics{redis_port}:"
    yield process
    process.stop()


def test_sfu_workers_and_the_redis_link(
    cluster_node: RoomlerProcess,
    redis_port: int,  # noqa: F811
    tmp_path: Path,
) -> None:
    redis = start_redis(redis_port, tmp_path)
    try:
        cluster_node.start()
        scrape_until(cluster_node.base, "roomler_redis_link_up", 1)
        # /ready starts the worker pool (roomler.readiness): the gauge follows.
        httpx.get(f"{cluster_node.base}/ready")
        samples = scrape_until(cluster_node.base, "roomler_sfu_workers_alive", 1)
        assert value(samples, "roomler_redis_pending_commands") is not None
    finally:
        redis.terminate()
        redis.wait(timeout=10)
    scrape_until(cluster_node.base, "roomler_redis_link_up", 0)
