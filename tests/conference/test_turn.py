"""TURN: time-limited credentials as coturn's `use-auth-secret` checks them, and where they go."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

import httpx
import pytest

from roomler.conference.turn import CREDENTIAL_TTL_SECS, ice_servers, turn_credentials
from roomler.config import TurnSettings
from tests.conference.conftest import MEDIA, Api, Team, media_client
from tests.realtime.conftest import LiveServer, add_tenant, register

SECRET = "coturn-shared-secret"
USER_ID = "6b07945b309ae69bfed55a37"


@pytest.mark.nodb
def test_credentials_match_an_independent_hmac() -> None:
    # The expected password was computed with OpenSSL, not with our code:
    #   printf '%s' "$username" | openssl dgst -sha1 -hmac "$secret" -binary | base64
    username, password = turn_credentials(SECRET, USER_ID, now=1700000000.7)
    assert username == f"{1700000000 + 86400}:{USER_ID}"
    assert password == "Q8V+vj70SiHhEOLZvTh8i2ZIk0M="


@pytest.mark.nodb
def test_credentials_are_rejected_with_another_secret_or_user() -> None:
    username, password = turn_credentials(SECRET, USER_ID, now=0)
    assert turn_credentials("other-secret", USER_ID, now=0)[1] != password
    assert turn_credentials(SECRET, "6b07945b309ae69bfed55a38", now=0)[1] != password
    with pytest.raises(ValueError, match="must not be empty"):
        turn_credentials("", USER_ID, now=0)
    with pytest.raises(ValueError, match="must be positive"):
        turn_credentials(SECRET, USER_ID, now=0, ttl=0)


@pytest.mark.nodb
def test_ice_servers_from_settings() -> None:
    assert ice_servers(TurnSettings(), USER_ID, now=0) == []
    static = TurnSettings(url="turn:turn.example.com:3478", username="u", password="p")
    assert ice_servers(static, USER_ID, now=0) == [
        {"urls": ["turn:turn.example.com:3478"], "username": "u", "credential": "p"}
    ]
    both = TurnSettings(
        url="turn:a.example:3478, turns:a.example:5349?transport=tcp",
        username="u",
        password="p",
        secret=SECRET,
    )
    [server] = ice_servers(both, USER_ID, now=100)
    assert server["urls"] == ["turn:a.example:3478", "turns:a.example:5349?transport=tcp"]
    assert server["username"] == f"{100 + CREDENTIAL_TTL_SECS}:{USER_ID}"  # the secret wins
    assert ice_servers(TurnSettings(url="stun:stun.example"), USER_ID, now=0) == [
        {"urls": ["stun:stun.example"]}
    ]


def _check(server: dict[str, object], user_id: str, before: float, after: float) -> None:
    username = str(server["username"])
    expiry, _, who = username.partition(":")
    assert who == user_id
    assert before + CREDENTIAL_TTL_SECS - 1 <= int(expiry) <= after + CREDENTIAL_TTL_SECS
    digest = hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()
    assert server["credential"] == base64.b64encode(digest).decode()


@pytest.fixture
def turn_server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server(mediasoup=MEDIA, turn={"url": "turn:127.0.0.1:3478", "secret": SECRET})


async def test_turn_endpoint_and_transports_carry_credentials(
    turn_server: LiveServer, db: object
) -> None:
    async with httpx.AsyncClient(base_url=turn_server.http_url, timeout=5) as http:
        alice = await register(http, "alice")
        unauthenticated = await http.get("/api/turn")
        assert unauthenticated.status_code == 401
        before = time.time()
        response = await http.get("/api/turn", headers=alice.headers)
        after = time.time()
        assert response.status_code == 200
        [server] = response.json()["ice_servers"]
        assert server["urls"] == ["turn:127.0.0.1:3478"]
        _check(server, alice.id, before, after)

        tenant_id = await add_tenant(db, alice)  # type: ignore[arg-type]
        team_api = Api(http, tenant_id)
        conference_id = await team_api.started(alice)
        client = await media_client(turn_server, alice, conference_id)
        joined = await client.join()
        [server] = joined.ice_servers
        _check(server, alice.id, before, time.time())
        await client.close()


async def test_without_turn_the_endpoint_lists_nothing(team: Team) -> None:
    response = await team.api.http.get("/api/turn", headers=team.alice.headers)
    assert response.json() == {"ice_servers": []}
