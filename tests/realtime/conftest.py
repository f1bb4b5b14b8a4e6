"""A real uvicorn server on a free loopback port, WebSocket clients, and database helpers.

`start_server(**overrides)` runs `create_app(settings)` under `uvicorn.Server` in a
background thread with its own event loop; `server.call(fn)` runs `fn` on that loop (to
publish or inspect the real-time layer). Every receive in these helpers has a timeout.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from roomler.app import create_app
from roomler.config import Settings
from roomler.db.engine import create_engine
from roomler.db.models import Base, Channel, ChannelMember, TenantMember
from roomler.ids import new_id
from roomler.realtime.keepalive import uvicorn_websocket_options
from roomler.realtime.layer import Realtime
from tests.conftest import TEST_JWT_SECRET

RECEIVE_TIMEOUT = 3.0
# A REST call of the set-up (registration hashes a password with argon2): a deadline, not a
# wait; 3 s was missed by 3 of 1,200 tests in one CI run, late in a long pytest process.
HTTP_TIMEOUT = 10.0
ALLOWED_ORIGIN = "http://allowed.example"


class LiveServer:
    """`create_app(settings)` served by uvicorn on 127.0.0.1 in a thread of its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_config=None, lifespan="on", **uvicorn_websocket_options(settings.ws)
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name="live-server", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            await self.server.serve(sockets=[self.sock])

        asyncio.run(main())

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def realtime(self) -> Realtime:
        return self.app.server.realtime

    async def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn()` (awaiting it if it is a coroutine function) on the server's loop."""
        assert self.loop is not None

        async def run() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                return await result
            return result

        future = asyncio.run_coroutine_threadsafe(run(), self.loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), RECEIVE_TIMEOUT)

    async def connection_count(self) -> int:
        count: int = await self.call(lambda: self.realtime.storage.connection_count())
        return count

    async def wait_connections(self, count: int, timeout: float = RECEIVE_TIMEOUT) -> None:
        """Poll until the server holds `count` connections, closed ones fully cleaned up."""

        def counts() -> tuple[int, int]:
            return self.realtime.storage.connection_count(), self.realtime.live_sessions

        deadline = time.monotonic() + timeout
        while (current := await self.call(counts)) != (count, count):
            assert time.monotonic() < deadline, f"{current} connections, expected {count}"
            await asyncio.sleep(0.01)


def make_settings(database_url: str, data_dir: Any, **overrides: dict[str, Any]) -> Settings:
    sections: dict[str, dict[str, Any]] = {
        "database": {"url": database_url},
        "app": {"data_dir": data_dir, "cors_origins": [ALLOWED_ORIGIN]},
        "jwt": {"secret": TEST_JWT_SECRET},
        "typing": {"timeout_secs": 8.0},
        "ws": {},
    }
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    return Settings.model_validate(sections)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the test loop; every table is emptied after the test."""
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        async with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(table.delete())
        await engine.dispose()


@pytest.fixture
def start_server(database_url: str, tmp_path: Any, db: AsyncEngine) -> Iterator[Any]:
    """`start_server(ws={...}, typing={...}, jwt={...})` → a running `LiveServer`."""
    servers: list[LiveServer] = []

    def start(**overrides: dict[str, Any]) -> LiveServer:
        settings = make_settings(database_url, tmp_path / "data", **overrides)
        server = LiveServer(settings)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server()


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=HTTP_TIMEOUT) as client:
        yield client


# --- accounts, tenants, channels -------------------------------------------------------------


@dataclass
class User:
    id: str
    username: str
    token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register(http: httpx.AsyncClient, username: str, **extra: Any) -> User:
    body = {
        "email": f"{username}@example.com",
        "username": username,
        "display_name": username.title(),
        "password": "correct horse battery",
        **extra,
    }
    response = await http.post("/api/auth/register", json=body)
    assert response.status_code == 201, response.text
    http.cookies.clear()
    payload = response.json()
    return User(payload["user"]["id"], username, payload["access_token"], payload["refresh_token"])


async def add_tenant(engine: AsyncEngine, owner: User, *members: User) -> str:
    """A tenant owned by `owner` with `members`; returns its id."""
    from roomler.db.models import Tenant

    tenant_id = new_id()
    async with engine.begin() as connection:
        await connection.execute(
            insert(Tenant).values(id=tenant_id, name="T", slug=f"t-{tenant_id}", owner_id=owner.id)
        )
        for user, role in [(owner, "owner"), *((m, "member") for m in members)]:
            await connection.execute(
                insert(TenantMember).values(
                    id=new_id(), tenant_id=tenant_id, user_id=user.id, role=role
                )
            )
    return tenant_id


async def add_channel(engine: AsyncEngine, tenant_id: str, creator: User, *members: User) -> str:
    """A public text channel in the tenant whose members are `creator` and `members`."""
    channel_id = new_id()
    everyone = [creator, *members]
    async with engine.begin() as connection:
        await connection.execute(
            insert(Channel).values(
                id=channel_id,
                tenant_id=tenant_id,
                name=f"c{channel_id}",
                path=f"c{channel_id}",
                channel_type="text",
                is_private=False,
                member_count=len(everyone),
                created_by=creator.id,
            )
        )
        for user in everyone:
            await connection.execute(
                insert(ChannelMember).values(
                    id=new_id(), tenant_id=tenant_id, channel_id=channel_id, user_id=user.id
                )
            )
    return channel_id


# --- WebSocket clients -----------------------------------------------------------------------


@dataclass
class Client:
    """A real `websockets` client that already read its `connected` frame."""

    ws: ClientConnection
    user_id: str
    connection_id: str
    _counter: int = field(default=0)
    # Events of a `batch` frame not handed out yet (docs/protocol.md, Batches).
    _batched: list[dict[str, Any]] = field(default_factory=list)
    # How many `batch` frames arrived (each with two or more events).
    batches: int = field(default=0)

    async def send(self, event_type: str, data: Any = None, **extra: Any) -> None:
        frame: dict[str, Any] = {"type": event_type, "data": {} if data is None else data}
        frame.update(extra)
        await self.ws.send(json.dumps(frame))

    async def recv(self, timeout: float = RECEIVE_TIMEOUT) -> dict[str, Any]:
        """The next event: a `batch` frame's events are handed out one by one, in order,
        as a client handles them."""
        if self._batched:
            return self._batched.pop(0)
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame: dict[str, Any] = json.loads(raw)
        if frame["type"] == "batch":
            events = frame["data"]["events"]
            assert len(events) >= 2, frame  # one event goes as itself
            self.batches += 1
            self._batched = events[1:]
            first: dict[str, Any] = events[0]
            return first
        return frame

    async def expect(self, event_type: str, timeout: float = RECEIVE_TIMEOUT) -> dict[str, Any]:
        """The next frame, which must be of `event_type`."""
        frame = await self.recv(timeout)
        assert frame["type"] == event_type, frame
        return frame

    async def drain(self) -> list[dict[str, Any]]:
        """Everything queued for this client before now: ping, collect frames up to the pong.

        The server handles a connection's frames in order and queues its replies in order,
        so any event queued before the ping arrives before the pong.
        """
        self._counter += 1
        marker = f"drain-{self._counter}"
        await self.send("ping", request_id=marker)
        frames: list[dict[str, Any]] = []
        while True:
            frame = await self.recv()
            if frame["type"] == "pong" and frame.get("request_id") == marker:
                return frames
            frames.append(frame)

    async def close(self) -> None:
        await self.ws.close()


async def open_client(server: LiveServer, user: User, **kwargs: Any) -> Client:
    """Connect as `user`; returns once the server has announced the arrival to peers."""
    ws = await connect(
        f"{server.ws_url}?token={user.token}", open_timeout=RECEIVE_TIMEOUT, **kwargs
    )
    first = json.loads(await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT))
    assert first["type"] == "connected" and first["user_id"] == user.id, first
    client = Client(ws, user.id, first["connection_id"])
    assert await client.drain() == []
    return client


async def drain_all(*clients: Client) -> list[list[dict[str, Any]]]:
    return [await client.drain() for client in clients]


class RawClient:
    """A WebSocket client over a bare socket that only reads and answers when told to.

    It never answers Pings on its own and, with a small receive buffer, lets the
    server's send buffers fill: a peer that stopped reading.
    """

    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self.sock = sock
        self.protocol = protocol
        self.loop = asyncio.get_running_loop()
        self.response: Response | None = None
        self.frames: list[Frame] = []
        self.eof = False

    @classmethod
    async def open(cls, url: str, receive_buffer: int | None = None) -> RawClient:
        uri = parse_uri(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, (uri.host, uri.port)), RECEIVE_TIMEOUT)
        client = cls(sock, ClientProtocol(uri, max_size=None))
        client.protocol.send_request(client.protocol.connect())
        await client.flush()
        while client.response is None:
            await client.read_some()
        assert client.response.status_code == 101, client.response.status_code
        return client

    async def flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                await self.loop.sock_sendall(self.sock, chunk)

    async def read_some(self, timeout: float = RECEIVE_TIMEOUT) -> None:
        data = await asyncio.wait_for(self.loop.sock_recv(self.sock, 65536), timeout)
        if data:
            self.protocol.receive_data(data)
        else:
            self.eof = True
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                self.response = event
            elif isinstance(event, Frame):
                self.frames.append(event)

    async def read_until_closed(self, timeout: float) -> None:
        """Read (without answering pings) until the server's close frame or EOF."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.eof and not any(f.opcode is Opcode.CLOSE for f in self.frames):
            remaining = deadline - asyncio.get_running_loop().time()
            assert remaining > 0, "the server did not close the connection"
            await self.read_some(remaining)

    async def send_json(self, frame: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(frame).encode())
        await self.flush()

    def text_frames(self) -> list[dict[str, Any]]:
        return [json.loads(bytes(f.data)) for f in self.frames if f.opcode is Opcode.TEXT]

    def pings(self) -> int:
        return sum(1 for f in self.frames if f.opcode is Opcode.PING)

    def close_code(self) -> int | None:
        received = self.protocol.close_rcvd
        return received.code if received is not None else None

    def close(self) -> None:
        self.sock.close()
