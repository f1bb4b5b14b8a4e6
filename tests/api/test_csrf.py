"""Cookie-authenticated requests that change state must come from our own pages (CSRF).

`SameSite=Lax` keeps the cookie off cross-site POSTs, but not off requests from a sibling
origin of the same site (another subdomain, another port); the Origin check does.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from roomler.config import Settings
from tests.api.test_channels import create_channel, make_tenant
from tests.conftest import Account

OWN = "http://testserver"
ALLOWED = "http://allowed.example"  # in the test settings' CORS_ORIGINS
EVIL = "https://evil.example"


@pytest.fixture
async def cookie_user(
    app: Any, make_user: Any, client: httpx.AsyncClient
) -> tuple[Account, str, str]:
    owner, tid = await make_tenant(app, make_user, "cookie", "cookie-land")
    general = await create_channel(client, owner, tid, "general")
    client.cookies.set("access_token", owner.access_token)
    return owner, tid, general["id"]


def _state_changes(tid: str, cid: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"/api/tenant/{tid}/channel", {"json": {"name": "planted"}}),
        (f"/api/tenant/{tid}/channel/{cid}/leave", {"data": {"x": "1"}}),  # a form post
        (f"/api/tenant/{tid}/conference", {"json": {"subject": "planted"}}),
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "null"},
        {"Referer": f"{EVIL}/page"},
        {},  # neither Origin nor Referer: no proof the request comes from our page
    ],
)
async def test_cookie_requests_from_elsewhere_are_refused(
    client: httpx.AsyncClient, cookie_user: tuple[Account, str, str], headers: dict[str, str]
) -> None:
    _, tid, cid = cookie_user
    for path, body in _state_changes(tid, cid):
        response = await client.post(path, headers=headers, **body)
        assert response.status_code == 403, (path, headers, response.text)
        assert response.json()["error"] == "forbidden"
        assert "Origin" in response.json()["message"]
    listed = await client.get(f"/api/tenant/{tid}/channel", headers=headers)
    assert [c["name"] for c in listed.json()] == ["general"]  # reading is not a change


@pytest.mark.parametrize(
    "headers", [{"Origin": OWN}, {"Origin": ALLOWED}, {"Referer": f"{OWN}/t/x/c/y"}]
)
async def test_cookie_requests_from_our_pages_work(
    client: httpx.AsyncClient, cookie_user: tuple[Account, str, str], headers: dict[str, str]
) -> None:
    _, tid, _ = cookie_user
    response = await client.post(
        f"/api/tenant/{tid}/channel", headers=headers, json={"name": "fine"}
    )
    assert response.status_code == 201, response.text


async def test_bearer_requests_are_not_affected(
    client: httpx.AsyncClient, cookie_user: tuple[Account, str, str]
) -> None:
    owner, tid, _ = cookie_user
    client.cookies.clear()
    response = await client.post(
        f"/api/tenant/{tid}/channel",
        headers={**owner.headers, "Origin": EVIL},
        json={"name": "scripted"},
    )
    assert response.status_code == 201, response.text


async def test_logout_from_elsewhere_does_not_end_the_session(
    client: httpx.AsyncClient, cookie_user: tuple[Account, str, str]
) -> None:
    owner, _, _ = cookie_user
    await client.post("/api/auth/logout", headers={"Origin": EVIL})
    refreshed = await client.post("/api/auth/refresh", json={"refresh_token": owner.refresh_token})
    assert refreshed.status_code == 200


async def test_the_cookie_is_secure_when_the_public_url_is_https(settings: Settings) -> None:
    from roomler.app import create_app

    for public_url, secure in [("", False), ("https://chat.example.com", True)]:
        settings.app.public_url = public_url
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url=OWN) as http:
                body = {
                    "email": f"s{int(secure)}@example.com",
                    "username": f"secure{int(secure)}",
                    "display_name": "S",
                    "password": "correct horse battery",
                }
                response = await http.post("/api/auth/register", json=body)
        assert response.status_code == 201, response.text
        cookie = response.headers["set-cookie"]
        assert ("; Secure" in cookie) is secure, cookie
