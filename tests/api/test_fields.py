"""One rule for text on every database: a NUL character is refused with 422 everywhere.

PostgreSQL cannot store U+0000 in `text` (asyncpg raises at bind time, a 500), SQLite can:
the API refuses it before any route runs, through the shared `Text` type (api/fields.py).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_channels import create_channel, make_tenant
from tests.conftest import Account

NUL = "a\x00b"


def _requests(tid: str, cid: str) -> list[tuple[str, str, dict[str, Any] | None, str]]:
    """(method, path, JSON body, field) for every text field the issue named, and more."""
    user = {"email": "nul@example.com", "username": "nuller", "password": "long enough pw"}
    channel = f"/api/tenant/{tid}/channel"
    message = f"{channel}/{cid}/message"
    return [
        ("POST", "/api/auth/login", {"username": NUL, "password": "x"}, "username"),
        ("POST", "/api/auth/login", {"email": NUL, "password": "x"}, "email"),
        ("POST", "/api/auth/login", {"username": "owner", "password": NUL}, "password"),
        ("POST", "/api/auth/register", {**user, "display_name": NUL}, "display_name"),
        (
            "POST",
            "/api/auth/register",
            {**user, "display_name": "N", "tenant_name": NUL, "tenant_slug": "nul"},
            "tenant_name",
        ),
        ("POST", "/api/auth/refresh", {"refresh_token": NUL}, "refresh_token"),
        ("PUT", "/api/auth/me", {"display_name": NUL}, "display_name"),
        ("PUT", "/api/auth/me", {"avatar": NUL}, "avatar"),
        ("POST", "/api/tenant", {"name": NUL, "slug": "nul-tenant"}, "name"),
        ("POST", f"/api/tenant/{tid}/member", {"username": NUL}, "username"),
        ("POST", channel, {"name": NUL}, "name"),
        ("POST", channel, {"name": "ok", "purpose": NUL}, "purpose"),
        ("POST", channel, {"name": "ok", "parent_id": NUL}, "parent_id"),
        ("PUT", f"{channel}/{cid}", {"purpose": NUL}, "purpose"),
        ("POST", f"{channel}/{cid}/member", {"user_id": NUL}, "user_id"),
        ("POST", message, {"content": NUL}, "content"),
        ("POST", message, {"content": "hi", "nonce": NUL}, "nonce"),
        ("POST", message, {"content": "hi", "thread_id": NUL}, "thread_id"),
        ("POST", f"/api/tenant/{tid}/conference", {"subject": NUL}, "subject"),
        ("GET", f"{channel}/explore?q=a%00b", None, "q"),
        ("GET", f"{message}?before=a%00b", None, "before"),
    ]


@pytest.fixture
async def workspace(
    app: Any, make_user: Any, client: httpx.AsyncClient
) -> tuple[Account, str, str]:
    owner, tid = await make_tenant(app, make_user, "owner", "nul-room")
    general = await create_channel(client, owner, tid, "general")
    return owner, tid, general["id"]


async def test_a_nul_in_any_text_field_is_refused_with_422_in_the_error_shape(
    client: httpx.AsyncClient, workspace: tuple[Account, str, str]
) -> None:
    owner, tid, cid = workspace
    for method, path, body, field in _requests(tid, cid):
        response = await client.request(method, path, json=body, headers=owner.headers)
        assert response.status_code == 422, (method, path, field, response.text)
        error = response.json()
        assert error["error"] == "validation", (path, field)
        assert field in error["message"] and "NUL" in error["message"], (path, error)
    # Nothing was stored half-way: the names are still free and the server still answers.
    me = await client.get("/api/auth/me", headers=owner.headers)
    assert me.json()["display_name"] == "Owner"


def _string_schemas(schema: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The string schemas inside `schema`, following `$ref`, `anyOf` and properties."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _string_schemas(spec["components"]["schemas"][name], spec)
    found = [schema] if schema.get("type") == "string" else []
    for option in schema.get("anyOf", []) + schema.get("allOf", []):
        found += _string_schemas(option, spec)
    for prop in schema.get("properties", {}).values():
        found += _string_schemas(prop, spec)
    return found


async def test_every_text_field_of_the_api_carries_the_rule(app: Any) -> None:
    """A field added later as a plain `str` fails here instead of 500ing on PostgreSQL."""
    spec = app.openapi()
    unguarded = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            schemas = [
                (p["name"], p["schema"])
                for p in operation.get("parameters", [])
                if p["in"] == "query"
            ]
            body = operation.get("requestBody", {}).get("content", {})
            for content in body.values():
                schemas.append(("body", content["schema"]))
            for name, schema in schemas:
                for string in _string_schemas(schema, spec):
                    # An enum, a format (email, date-time) or a pattern excludes NUL.
                    if not ({"pattern", "enum", "format", "const"} & string.keys()):
                        unguarded.append(f"{method.upper()} {path} {name}: {string}")
    assert unguarded == []
