"""The OpenAPI document: refusals in the error shape, cross-field rules, OPTIONS and Allow."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest

from tests.api.test_channels import make_tenant
from tests.conftest import Account

ERROR_REF = {"$ref": "#/components/schemas/Error"}


def error_schema_of(operation: dict[str, Any], status: str) -> Any:
    return operation["responses"][status]["content"]["application/json"]["schema"]


async def test_refusals_are_documented_in_the_error_shape(app: Any) -> None:
    spec = app.openapi()
    paths = spec["paths"]
    assert set(spec["components"]["schemas"]["Error"]["required"]) == {"error", "message"}
    me = paths["/api/auth/me"]["get"]
    assert error_schema_of(me, "401") == ERROR_REF and "403" not in me["responses"]
    channel = paths["/api/tenant/{tid}/channel/{cid}"]["get"]
    for status in ("401", "403", "404", "422"):
        assert error_schema_of(channel, status) == ERROR_REF, status
    listing = paths["/api/tenant/{tid}/channel"]["get"]
    assert {"401", "403"} <= set(listing["responses"]) and "404" not in listing["responses"]
    login = paths["/api/auth/login"]["post"]
    assert "401" not in login["responses"] or error_schema_of(login, "401") == ERROR_REF
    assert error_schema_of(login, "422") == ERROR_REF
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    # Every operation that needs a caller documents the 401.
    for path, operations in paths.items():
        for method, operation in operations.items():
            if operation.get("security") or path.startswith("/api/tenant"):
                assert "401" in operation["responses"], (method, path)


CROSS_FIELD = [
    ("LoginIn", {"password": "x"}, False),
    ("LoginIn", {"username": None, "password": "x"}, False),
    ("LoginIn", {"email": "a@b.example", "password": "x"}, True),
    (
        "RegisterIn",
        {
            "email": "a@b.c",
            "username": "abc",
            "display_name": "A",
            "password": "12345678",
            "tenant_name": "T",
        },
        False,
    ),
    (
        "RegisterIn",
        {
            "email": "a@b.c",
            "username": "abc",
            "display_name": "A",
            "password": "12345678",
            "tenant_name": "T",
            "tenant_slug": "t1",
        },
        True,
    ),
    ("ConferenceIn", {"subject": "S", "conference_type": "scheduled"}, False),
    (
        "ConferenceIn",
        {"subject": "S", "conference_type": "scheduled", "scheduled_at": "2030-01-01T10:00:00Z"},
        True,
    ),
    ("ConferenceIn", {"subject": "S"}, True),
    ("MemberIn", {"username": "bob", "email": "bob@example.com"}, False),
    ("MemberIn", {}, False),
    ("MemberIn", {"username": "bob", "role": "admin"}, True),
    ("MeUpdate", {}, False),
    ("MeUpdate", {"avatar": "https://a.example/x.png"}, True),
]


@pytest.mark.parametrize(("model", "body", "valid"), CROSS_FIELD)
async def test_cross_field_rules_are_in_the_schema(
    app: Any, client: httpx.AsyncClient, model: str, body: dict[str, Any], valid: bool
) -> None:
    spec = app.openapi()
    names = [n for n in spec["components"]["schemas"] if n.split("__")[-1] == model]
    # Two models are called MemberIn: the tenant's (user_id, username or email) is meant.
    name = next((n for n in names if "tenants" in n), names[0])
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    errors = list(jsonschema_rs.Draft202012Validator(schema).iter_errors(body))
    assert (errors == []) is valid, (model, body, [e.message for e in errors])


@pytest.fixture
async def owner(app: Any, make_user: Any) -> tuple[Account, str]:
    return await make_tenant(app, make_user, "opt", "options-land")


async def test_options_lists_the_documented_methods_of_a_path(
    client: httpx.AsyncClient, owner: tuple[Account, str]
) -> None:
    _, tid = owner
    cid = "0" * 24
    expected = {
        f"/api/tenant/{tid}/channel": "GET, OPTIONS, POST",
        f"/api/tenant/{tid}/channel/{cid}": "DELETE, GET, OPTIONS, PUT",
        "/api/auth/me": "GET, OPTIONS, PUT",
        "/api/auth/login": "OPTIONS, POST",
    }
    for path, allow in expected.items():
        response = await client.options(path)
        assert response.status_code == 204, path
        assert response.headers["allow"] == allow, path
        wrong = await client.patch(path)
        assert wrong.status_code == 405, path
        assert wrong.headers["allow"] == allow, path
        assert wrong.json()["error"] == "method_not_allowed"
    assert (await client.options("/api/nowhere")).status_code == 404
