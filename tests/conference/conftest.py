"""Conferences end to end: a real uvicorn server with real SFU worker processes.

The server, WebSocket clients and database helpers are the real-time tests' own
(`tests/realtime/conftest.py`); this adds a media configuration on 127.0.0.1, a
tenant with a few users, REST helpers and `MediaClient`, which speaks `media:*` on one
WebSocket connection with the RTP parameters Chrome really sends (tests/sfu/fixtures).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from roomler.conference.conference_media import ConferenceMedia
from roomler.sfu import Router
from tests.realtime.conftest import (  # noqa: F401  (fixtures used by the tests here)
    RECEIVE_TIMEOUT,
    Client,
    LiveServer,
    User,
    add_tenant,
    db,
    http,
    open_client,
    register,
    start_server,
)

FIXTURES = Path(__file__).resolve().parents[1] / "sfu" / "fixtures"
MEETING_CODE = re.compile(r"^\d{3}-\d{3}-\d{3}$")
# A conference call may start the SFU's worker processes (the first `start` of a server,
# or a join after a worker died): on a loaded machine that takes seconds, more than the
# REST client's default `RECEIVE_TIMEOUT`.
MEDIA_START_TIMEOUT = 20.0
# A port range of our own, away from the SFU unit tests' ranges.
MEDIA = {"listen_ip": "127.0.0.1", "num_workers": 1, "rtc_min_port": 46000, "rtc_max_port": 46999}


def fixture_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def chrome_rtp_parameters(kind: str) -> dict[str, Any]:
    return fixture_json(f"chrome_produce_{kind}.json")


def chrome_rtp_capabilities() -> dict[str, Any]:
    return fixture_json("chrome_device_rtp_capabilities.json")


@pytest.fixture
def server(start_server: Callable[..., LiveServer]) -> LiveServer:  # noqa: F811
    return start_server(mediasoup=MEDIA)


def media_service(server: LiveServer) -> ConferenceMedia:
    return server.app.server.media


async def room_router(server: LiveServer, conference_id: str) -> Router:
    def find() -> Router:
        room = media_service(server).rooms.get_room(conference_id)
        assert room is not None, f"conference {conference_id} has no room"
        return room.router

    router: Router = await server.call(find)
    return router


async def router_dump(server: LiveServer, conference_id: str) -> dict[str, Any]:
    """What the worker itself holds for the conference's router."""
    router = await room_router(server, conference_id)
    dump: dict[str, Any] = await server.call(router.dump)
    return dump


# --- a tenant with users, and REST calls --------------------------------------------------


@dataclass
class Api:
    http: httpx.AsyncClient
    tenant_id: str

    def url(self, path: str = "") -> str:
        return f"/api/tenant/{self.tenant_id}/conference{path}"

    async def call(
        self, user: User, method: str, path: str = "", body: Any = None, **params: Any
    ) -> httpx.Response:
        return await self.http.request(
            method,
            self.url(path),
            json=body,
            headers=user.headers,
            params=params or None,
            timeout=MEDIA_START_TIMEOUT,
        )

    async def ok(self, user: User, method: str, path: str = "", body: Any = None) -> Any:
        response = await self.call(user, method, path, body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    async def create(self, user: User, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.ok(user, "POST", "", {"subject": "Standup", **body})
        return result

    async def started(self, user: User, **body: Any) -> str:
        """A new conference, started; returns its id."""
        conference = await self.create(user, **body)
        await self.ok(user, "POST", f"/{conference['id']}/start")
        return str(conference["id"])


@dataclass
class Team:
    """A tenant: `owner` (its owner), `alice` and `bob` (members); `eve` is outside it."""

    api: Api
    owner: User
    alice: User
    bob: User
    eve: User


@pytest.fixture
async def team(http: httpx.AsyncClient, db: AsyncEngine) -> Team:  # noqa: F811
    owner, alice, bob, eve = [
        await register(http, name) for name in ("owner", "alice", "bob", "eve")
    ]
    tenant_id = await add_tenant(db, owner, alice, bob)
    await add_tenant(db, eve)
    return Team(Api(http, tenant_id), owner, alice, bob, eve)


# --- media:* on one WebSocket connection -----------------------------------------------------


@dataclass
class Joined:
    rtp_capabilities: dict[str, Any]
    send_transport: dict[str, Any]
    recv_transport: dict[str, Any]
    ice_servers: list[Any]
    producers: list[dict[str, Any]]
    participants: list[dict[str, Any]]


@dataclass
class MediaClient:
    client: Client
    conference_id: str = ""
    _ids: int = field(default=0)

    @property
    def user_id(self) -> str:
        return self.client.user_id

    @property
    def connection_id(self) -> str:
        return self.client.connection_id

    def next_id(self) -> str:
        self._ids += 1
        return f"r{self._ids}"

    async def send(self, message_type: str, request_id: str | None = None, **data: Any) -> str:
        """Send a media request for this client's conference; returns its request id."""
        request_id = request_id or self.next_id()
        body = {"conference_id": self.conference_id, **data}
        await self.client.send(message_type, body, request_id=request_id)
        return request_id

    async def next_media(self) -> dict[str, Any]:
        """The next `media:*` frame (presence and the like are skipped)."""
        while True:
            frame = await self.client.recv()
            if is_media(frame):
                return frame

    async def reply(self, event_type: str, request_id: str) -> dict[str, Any]:
        """The next media frame, which must be `event_type` answering `request_id`."""
        frame = await self.next_media()
        assert frame["type"] == event_type, frame
        assert frame.get("request_id") == request_id, frame
        data: dict[str, Any] = frame["data"]
        return data

    async def request(self, message_type: str, reply_type: str, **data: Any) -> dict[str, Any]:
        request_id = await self.send(message_type, **data)
        return await self.reply(reply_type, request_id)

    async def error(self, message_type: str, **data: Any) -> dict[str, Any]:
        """Send a request that must fail: the `media:error` data."""
        request_id = await self.send(message_type, **data)
        error = await self.reply("media:error", request_id)
        assert error["request_type"] == message_type, error
        assert error["request_id"] == request_id, error
        assert error["message"], error
        return error

    async def join(self, conference_id: str | None = None, *, concurrent: bool = False) -> Joined:
        """`media:join`: its replies in order. `concurrent`: others join at the same time, so
        their `media:peer_joined` may come before, between or after this join's replies."""
        if conference_id is not None:
            self.conference_id = conference_id
        request_id = await self.send("media:join")
        frames: list[dict[str, Any]] = []
        while not frames or frames[-1]["type"] != "media:participants":
            frame = await self.next_media()
            if concurrent and frame["type"] == "media:peer_joined" and "request_id" not in frame:
                continue
            assert frame.get("request_id") == request_id, frame
            frames.append(frame)
        # Capabilities, transports, the producers already there, then the participants.
        types = [frame["type"] for frame in frames]
        assert types[:2] == ["media:router_capabilities", "media:transport_created"], types
        assert set(types[2:-1]) <= {"media:new_producer"}, types
        capabilities, transports = frames[0]["data"], frames[1]["data"]
        participants = frames[-1]["data"]
        assert participants["conference_id"] == self.conference_id, participants
        if not concurrent:
            assert await self.drain() == []
        return Joined(
            capabilities["rtp_capabilities"],
            transports["send_transport"],
            transports["recv_transport"],
            transports["ice_servers"],
            [frame["data"] for frame in frames[2:-1]],
            participants["participants"],
        )

    async def produce(self, kind: str, **extra: Any) -> str:
        result = await self.request(
            "media:produce",
            "media:produce_result",
            kind=kind,
            rtp_parameters=chrome_rtp_parameters(kind),
            **extra,
        )
        return str(result["id"])

    async def consume(self, producer_id: str) -> dict[str, Any]:
        return await self.request(
            "media:consume",
            "media:consumer_created",
            producer_id=producer_id,
            rtp_capabilities=chrome_rtp_capabilities(),
        )

    async def drain(self) -> list[dict[str, Any]]:
        """The media frames queued for this connection before now."""
        return [frame for frame in await self.client.drain() if is_media(frame)]

    async def close(self) -> None:
        await self.client.close()


# Sent to a room's connections every couple of seconds while media flows, whatever the
# test is doing (conference/quality.py): skipped like presence; tests/conference/
# test_in_call.py reads it on purpose.
PERIODIC_MEDIA = frozenset({"media:score"})


def is_media(frame: dict[str, Any]) -> bool:
    kind = str(frame.get("type", ""))
    return kind.startswith("media:") and kind not in PERIODIC_MEDIA


async def media_client(server: LiveServer, user: User, conference_id: str = "") -> MediaClient:
    return MediaClient(await open_client(server, user), conference_id)


def peer_joined(conference_id: str, user: User, joiner: MediaClient) -> dict[str, Any]:
    """The `media:peer_joined` the others hear when `joiner` (a connection of `user`) joins."""
    return {
        "type": "media:peer_joined",
        "data": {
            "conference_id": conference_id,
            "user_id": user.id,
            "display_name": user.username.title(),  # as `register` names them
            "connection_id": joiner.connection_id,
        },
    }


async def join_all(*clients: MediaClient) -> list[Joined]:
    """Join one after the other; each hears `media:peer_joined` of every later one."""
    joined = []
    for index, client in enumerate(clients):
        joined.append(await client.join())
        for earlier in clients[:index]:
            frame = await earlier.next_media()
            assert frame["type"] == "media:peer_joined", frame
            assert frame["data"]["connection_id"] == client.connection_id, frame
    return joined
