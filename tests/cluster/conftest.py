"""Several real `roomler serve` processes sharing one PostgreSQL database and one Redis.

- `cluster_database`: a throw-away PostgreSQL database for this module (PostgreSQL is
  required: SQLite cannot be shared by processes the way a cluster shares its database).
  The server comes from `ROOMLER_TEST_DATABASE` when that is a PostgreSQL URL, else the
  machine's `postgresql+asyncpg://postgres@127.0.0.1:5432/test`. Unreachable: skipped loudly.
- `shared_redis`: the machine's Redis at 127.0.0.1:6379, with a key prefix of the test's
  own (its keys are deleted afterwards). Unreachable: skipped loudly.
- `PrivateRedis`: a `redis-server` of the test's own on a free port, which the test may
  stop and start again; always killed at the end.
- `start_nodes(n, redis_url, ...)`: n server processes on free loopback ports, started in
  parallel; each stopped (or killed) at the end, its log printed when a test fails.

Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import connect

from roomler.db.engine import create_engine
from roomler.db.migrate import upgrade
from tests.conftest import TEST_JWT_SECRET, _create_postgres_database, _drop_postgres_database
from tests.realtime.conftest import Client, User

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SHARED_REDIS = "redis://127.0.0.1:6379/0"
NODE_START_SECS = 60.0
FRAME_TIMEOUT = 5.0
# After the frames a test expects, how long no further (duplicate) frame may arrive.
QUIET_SECS = 0.4


def loud_skip(reason: str) -> None:
    banner = "!" * 20
    print(f"\n{banner} {reason}: the cluster tests are SKIPPED {banner}", file=sys.stderr)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), 2).close()
    except OSError:
        return False
    return True


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_database() -> Iterator[str]:
    backend = os.environ.get("ROOMLER_TEST_DATABASE", "")
    server_url = backend if backend.startswith("postgresql") else DEFAULT_POSTGRES
    url = make_url(server_url)
    if not reachable(url.host or "127.0.0.1", url.port or 5432):
        loud_skip(f"PostgreSQL is not answering at {url.host}:{url.port or 5432}")
    name = f"roomler_cluster_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_create_postgres_database(server_url, name))
    database_url = url.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(database_url)
        yield database_url
    finally:
        asyncio.run(_drop_postgres_database(server_url, name))


@pytest.fixture
async def cluster_db(cluster_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(cluster_database)
    try:
        yield engine
    finally:
        await engine.dispose()


# --- Redis -----------------------------------------------------------------------------------


@dataclass
class RedisTarget:
    url: str
    prefix: str


@pytest.fixture
def shared_redis() -> Iterator[RedisTarget]:
    if not reachable("127.0.0.1", 6379):
        loud_skip("Redis is not answering at 127.0.0.1:6379")
    target = RedisTarget(SHARED_REDIS, f"roomler-test-{secrets.token_hex(4)}:")
    yield target
    forget_keys(target)


def forget_keys(target: RedisTarget) -> None:
    """Delete every key under the target's prefix."""
    client = Redis.from_url(target.url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{target.prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class PrivateRedis:
    """`redis-server` on a free port with no persistence: a restart starts it empty."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            loud_skip("redis-server is not installed")
        assert binary is not None
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while not self._answers():
            assert self.process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def _answers(self) -> bool:
        client = Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except Exception:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def cpu_seconds(self) -> float:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


# --- server processes ------------------------------------------------------------------------


class Node:
    """`python -m roomler serve` as one node of the cluster."""

    def __init__(self, workdir: Path, env: dict[str, str], node_id: str) -> None:
        self.workdir = workdir
        self.env = env
        self.node_id = node_id
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "serve.log"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def spawn(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        command = [sys.executable, "-m", "roomler", "serve", "--host", "127.0.0.1"]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + NODE_START_SECS
        with httpx.Client(timeout=2) as http:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"{self.node_id} exited:\n{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if http.get(f"{self.http_url}/health").status_code == 200:
                        return
                assert time.monotonic() < deadline, f"{self.node_id} did not start"
                time.sleep(0.1)

    def kill(self) -> None:
        """kill -9: no cleanup at all, as when a machine dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def log_lines(self, needle: str) -> list[str]:
        text = self.log_path.read_text(errors="replace")
        return [line for line in text.splitlines() if needle in line]


def launch(
    count: int,
    redis: RedisTarget,
    database_url: str,
    workdir: Path,
    first: int = 1,
    per_node: Callable[[int], dict[str, str]] | None = None,
    **extra: str,
) -> list[Node]:
    """Start `count` nodes named n<first>, n<first+1>, ... in parallel; wait until they answer.

    `per_node(number)` adds settings of that node's own (its UDP port range, ...).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMLER__")}
    env.update(
        {
            "ROOMLER__DATABASE__URL": database_url,
            "ROOMLER__JWT__SECRET": TEST_JWT_SECRET,
            "ROOMLER__REDIS__URL": redis.url,
            "ROOMLER__REDIS__KEY_PREFIX": redis.prefix,
            **extra,
        }
    )
    nodes = []
    for number in range(first, first + count):
        node_id = f"n{number}"
        own = {"ROOMLER__REDIS__NODE_ID": node_id, **(per_node(number) if per_node else {})}
        node = Node(workdir / node_id, {**env, **own}, node_id)
        node.spawn()
        nodes.append(node)
    try:
        for node in nodes:
            node.wait_ready()
    except BaseException:
        stop_all(nodes)
        raise
    return nodes


def stop_all(nodes: list[Node], failed: bool = False) -> None:
    for node in nodes:
        node.stop()
    if failed:
        for node in nodes:
            print(f"--- log of {node.node_id} ---\n{node.log_tail()}")


StartNodes = Callable[..., list[Node]]


@pytest.fixture
def start_nodes(
    cluster_database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[StartNodes]:
    """`start_nodes(n, redis, per_node=..., ROOMLER__X__Y="...")` -> n running nodes."""
    nodes: list[Node] = []

    def start(
        count: int,
        redis: RedisTarget,
        per_node: Callable[[int], dict[str, str]] | None = None,
        **extra: str,
    ) -> list[Node]:
        first = len(nodes) + 1
        started = launch(count, redis, cluster_database, tmp_path, first, per_node, **extra)
        nodes.extend(started)
        return started

    yield start
    report = getattr(request.node, "rep_call", None)
    stop_all(nodes, report is not None and report.failed)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# --- users and WebSocket clients -------------------------------------------------------------


async def register_on(node: Node, username: str) -> User:
    body = {
        "email": f"{username}@example.com",
        "username": username,
        "display_name": username.title(),
        "password": "correct horse battery",
    }
    async with httpx.AsyncClient(base_url=node.http_url, timeout=FRAME_TIMEOUT) as http:
        response = await http.post("/api/auth/register", json=body)
    assert response.status_code == 201, response.text
    payload = response.json()
    return User(payload["user"]["id"], username, payload["access_token"], payload["refresh_token"])


async def make_users(node: Node, *names: str) -> list[User]:
    tag = secrets.token_hex(3)
    return list(await asyncio.gather(*(register_on(node, f"{name}_{tag}") for name in names)))


@dataclass
class Tab:
    """A WebSocket client on one node; `node` says where it is connected."""

    client: Client
    node: Node
    frames: list[dict[str, Any]] = field(default_factory=list)

    @property
    def connection_id(self) -> str:
        return self.client.connection_id

    async def send(self, event_type: str, data: Any = None, **extra: Any) -> None:
        await self.client.send(event_type, data, **extra)

    async def next(self, timeout: float = FRAME_TIMEOUT) -> dict[str, Any]:
        return await self.client.recv(timeout)

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = FRAME_TIMEOUT
    ) -> dict[str, Any]:
        """The first frame matching `predicate`, among the frames kept in `frames` first;
        the frames read before it are kept there."""
        for index, frame in enumerate(self.frames):
            if predicate(frame):
                return self.frames.pop(index)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            assert remaining > 0, f"no matching frame within {timeout} s; got {self.frames}"
            frame = await self.client.recv(remaining)
            if predicate(frame):
                return frame
            self.frames.append(frame)

    async def quiet(self, secs: float = QUIET_SECS) -> list[dict[str, Any]]:
        """Every frame arriving within `secs` (a duplicate would show up here)."""
        frames = []
        with contextlib.suppress(TimeoutError):
            while True:
                frames.append(await self.client.recv(secs))
        return frames

    async def close(self) -> None:
        await self.client.close()


async def open_tab(node: Node, user: User) -> Tab:
    """Connect `user` to `node`; returns once the arrival was announced."""
    ws = await connect(f"{node.ws_url}?token={user.token}", open_timeout=FRAME_TIMEOUT)
    first = json.loads(await asyncio.wait_for(ws.recv(), FRAME_TIMEOUT))
    assert first["type"] == "connected" and first["user_id"] == user.id, first
    client = Client(ws, user.id, first["connection_id"])
    return Tab(client, node, await client.drain())


async def settle(*tabs: Tab) -> None:
    """Let in-flight frames (presence of the tabs just opened) arrive, then forget them."""
    await asyncio.gather(*(tab.quiet() for tab in tabs))
    for tab in tabs:
        tab.frames.clear()


def is_type(event_type: str, **data: Any) -> Callable[[dict[str, Any]], bool]:
    def matches(frame: dict[str, Any]) -> bool:
        if frame.get("type") != event_type:
            return False
        body = frame.get("data") or {}
        return all(body.get(k) == v for k, v in data.items())

    return matches


def media_settings(number: int) -> dict[str, str]:
    """Node n's SFU: one worker on 127.0.0.1, UDP ports 47000 + 500 (n-1) onwards."""
    low = 47000 + 500 * (number - 1)
    return {
        "ROOMLER__MEDIASOUP__LISTEN_IP": "127.0.0.1",
        "ROOMLER__MEDIASOUP__NUM_WORKERS": "1",
        "ROOMLER__MEDIASOUP__RTC_MIN_PORT": str(low),
        "ROOMLER__MEDIASOUP__RTC_MAX_PORT": str(low + 499),
    }


def port_range(number: int) -> range:
    settings = media_settings(number)
    low = int(settings["ROOMLER__MEDIASOUP__RTC_MIN_PORT"])
    return range(low, int(settings["ROOMLER__MEDIASOUP__RTC_MAX_PORT"]) + 1)
