from __future__ import annotations

import time

import httpx
import jwt

from roomler.auth.tokens import TokenIssuer
from tests.conftest import TEST_JWT_SECRET, register


async def test_register_returns_tokens_user_and_sets_cookie(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register",
        json={
            "email": "Alice@Example.com",
            "username": "alice",
            "display_name": "Alice",
            "password": "correct horse battery",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "expires_in", "user"}
    assert body["expires_in"] == 900
    assert body["user"]["username"] == "alice"
    assert body["user"]["email"] == "alice@example.com"
    assert len(body["user"]["id"]) == 24 and int(body["user"]["id"], 16) >= 0
    cookie = response.headers["set-cookie"]
    assert "access_token=" in cookie and "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower() and "Path=/" in cookie
    claims = jwt.decode(
        body["access_token"], TEST_JWT_SECRET, algorithms=["HS256"], issuer="roomler"
    )
    assert claims["sub"] == body["user"]["id"] and claims["token_type"] == "access"
    assert claims["exp"] - claims["iat"] == 900


async def test_register_with_tenant_makes_user_owner(client: httpx.AsyncClient) -> None:
    account = await register(client, "owner1", tenant_name="Acme", tenant_slug="acme")
    tenants = (await client.get("/api/tenant", headers=account.headers)).json()
    assert [(t["slug"], t["role"], t["owner_id"]) for t in tenants] == [
        ("acme", "owner", account.id)
    ]


async def test_duplicate_email_or_username_conflicts(client: httpx.AsyncClient) -> None:
    await register(client, "bob")
    same_name = await client.post(
        "/api/auth/register",
        json={
            "email": "other@example.com",
            "username": "BOB",
            "display_name": "B",
            "password": "long enough pw",
        },
    )
    same_mail = await client.post(
        "/api/auth/register",
        json={
            "email": "bob@example.com",
            "username": "bobby",
            "display_name": "B",
            "password": "long enough pw",
        },
    )
    assert same_name.status_code == 409 and same_name.json()["error"] == "conflict"
    assert same_mail.status_code == 409 and "email" in same_mail.json()["message"]


async def test_register_validation_errors(client: httpx.AsyncClient) -> None:
    base = {
        "email": "v@example.com",
        "username": "valid_name",
        "display_name": "V",
        "password": "long enough pw",
    }
    for field, value in [
        ("email", "not-an-email"),
        ("password", "short"),
        ("username", "no spaces"),
        ("username", "ab"),
        ("username", "x" * 33),
    ]:
        response = await client.post("/api/auth/register", json={**base, field: value})
        assert response.status_code == 422, (field, value)
        assert response.json()["error"] == "validation"
        assert field in response.json()["message"]


async def test_malformed_json_and_missing_fields_are_422_in_error_shape(
    client: httpx.AsyncClient,
) -> None:
    malformed = await client.post(
        "/api/auth/register", content=b"{not json", headers={"content-type": "application/json"}
    )
    missing = await client.post("/api/auth/login", json={"password": "x"})
    wrong_type = await client.post("/api/auth/register", json={"email": 5})
    for response in (malformed, missing, wrong_type):
        assert response.status_code == 422
        assert response.json()["error"] == "validation" and response.json()["message"]


async def test_login_by_username_or_email_and_same_error_for_unknown(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client, "carol")
    by_name = await client.post(
        "/api/auth/login", json={"username": "carol", "password": account.password}
    )
    by_mail = await client.post(
        "/api/auth/login", json={"email": "CAROL@example.com", "password": account.password}
    )
    assert by_name.status_code == 200 and by_mail.status_code == 200
    assert by_name.json()["user"]["id"] == account.id
    wrong = await client.post(
        "/api/auth/login", json={"username": "carol", "password": "nope-nope"}
    )
    unknown = await client.post("/api/auth/login", json={"username": "nobody", "password": "x" * 9})
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {"error": "unauthorized", "message": "Invalid credentials"}
    )


async def test_eleventh_failed_login_in_a_minute_is_rate_limited(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client, "dave")
    for _ in range(10):
        response = await client.post(
            "/api/auth/login", json={"username": "dave", "password": "wrong-pass"}
        )
        assert response.status_code == 401
    limited = await client.post(
        "/api/auth/login", json={"username": "dave", "password": account.password}
    )
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert 0 < int(limited.headers["retry-after"]) <= 60


async def test_me_requires_a_valid_access_token(client: httpx.AsyncClient) -> None:
    account = await register(client, "erin")
    assert (await client.get("/api/auth/me", headers=account.headers)).json()["username"] == "erin"
    assert (await client.get("/api/auth/me")).status_code == 401
    garbage = await client.get("/api/auth/me", headers={"Authorization": "Bearer abc.def.ghi"})
    assert garbage.status_code == 401 and garbage.json()["error"] == "unauthorized"
    refresh_as_access = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {account.refresh_token}"}
    )
    assert refresh_as_access.status_code == 401
    issuer = TokenIssuer(TEST_JWT_SECRET, "roomler", 3600, 604800)
    expired = issuer.issue(account.id, "access", now=time.time() - 7200)
    response = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and "expired" in response.json()["message"].lower()
    other_issuer = TokenIssuer("another-secret-value-0123456789abcdef", "roomler", 3600, 1)
    forged = other_issuer.issue(account.id, "access")
    assert (
        await client.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"})
    ).status_code == 401


async def test_cookie_authenticates_when_no_header(client: httpx.AsyncClient) -> None:
    account = await register(client, "frank")
    client.cookies.set("access_token", account.access_token)
    try:
        assert (await client.get("/api/auth/me")).json()["id"] == account.id
    finally:
        client.cookies.clear()


async def test_refresh_gives_new_pair_and_rejects_access_token(client: httpx.AsyncClient) -> None:
    account = await register(client, "gina")
    response = await client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert response.status_code == 200
    fresh = response.json()
    assert fresh["access_token"] != account.access_token
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {fresh['access_token']}"}
    )
    assert me.json()["id"] == account.id
    wrong = await client.post("/api/auth/refresh", json={"refresh_token": account.access_token})
    assert wrong.status_code == 401


async def test_logout_clears_cookie(client: httpx.AsyncClient) -> None:
    account = await register(client, "hank")
    response = await client.post("/api/auth/logout", headers=account.headers)
    assert response.status_code == 200
    assert (
        'access_token=""' in response.headers["set-cookie"]
        or "Max-Age=0" in response.headers["set-cookie"]
    )


async def test_update_me(client: httpx.AsyncClient) -> None:
    account = await register(client, "iris")
    response = await client.put(
        "/api/auth/me",
        headers=account.headers,
        json={"display_name": "Iris W.", "avatar": "https://x/a.png"},
    )
    assert response.status_code == 200
    assert (
        response.json()["display_name"] == "Iris W."
        and response.json()["avatar"] == "https://x/a.png"
    )
    assert (await client.get("/api/auth/me", headers=account.headers)).json()[
        "display_name"
    ] == "Iris W."
    empty = await client.put("/api/auth/me", headers=account.headers, json={})
    assert empty.status_code == 422
