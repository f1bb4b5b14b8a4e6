"""The OpenAPI document says what the API answers when it refuses, and which methods exist.

FastAPI documents each route's success and a 422 in its own `detail` shape. Ours differ:
every failure is `{"error", "message"}` (api/errors.py), and which failures a route can
give follows from its dependencies — a caller (`get_current_user`) means 401, a tenant
membership (`get_tenant_member`) 403, a path id that names a thing 404. `install_openapi`
adds those answers to every operation, in the error shape, plus the ones a route declares.

`AllowedMethods` answers `OPTIONS` with `Allow` listing the path's documented methods
(RFC 9110 section 9.3.7), and puts the same list on a 405 (section 15.5.6): Starlette would
name only the methods of the first route that matched the path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.routing import compile_path, get_route_path  # type: ignore[attr-defined]
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roomler.api.deps import get_current_user, get_tenant_member

ERROR_SCHEMA = "Error"
DESCRIPTIONS = {
    401: "No token, or an invalid, expired or wrong-type one",
    403: "Not allowed; also any tenant the caller is not a member of",
    404: "No such thing (or it belongs to another tenant)",
    409: "Already taken",
    422: "A field is missing or ill-formed; the message names it",
    429: "Too many attempts; Retry-After says when to try again",
    503: "Busy; Retry-After says when to try again",
}
# Path parameters that only select the tenant: a wrong one is a 403, never a 404.
TENANT_PARAMS = frozenset({"tid"})


class ErrorOut(BaseModel):
    """Every failure: `error` is the kind (`unauthorized`, `validation`, ...)."""

    error: str
    message: str


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's own refusals; documented in the error shape."""
    return {status: {"description": DESCRIPTIONS.get(status, "Refused")} for status in statuses}


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def error_statuses(route: APIRoute, path: str) -> set[int]:
    """The refusals a route served at `path` can give, from what it depends on."""
    calls = {d.call for d in _dependencies(route.dependant)}
    statuses: set[int] = set()
    if get_current_user in calls or get_tenant_member in calls:
        statuses.add(401)
    if get_tenant_member in calls:
        statuses.add(403)
    if set(re.findall(r"{(\w+)", path)) - TENANT_PARAMS:
        statuses.add(404)
    params = route.dependant.query_params or route.dependant.path_params
    if params or route.body_field is not None:
        statuses.add(422)
    return statuses


def _error_response(status: int, description: str | None = None) -> dict[str, Any]:
    return {
        "description": description or DESCRIPTIONS.get(status, "Refused"),
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}
        },
    }


def api_routes(app: FastAPI) -> Iterator[tuple[APIRoute, str, set[str]]]:
    """Every API route with the full path and methods it is served at."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.include_in_schema and context.path_format:
            yield route, context.path_format, set(context.methods or ())


def document_errors(app: FastAPI, schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components[ERROR_SCHEMA] = ErrorOut.model_json_schema()
    for route, path, methods in api_routes(app):
        if not path.startswith("/api/"):  # /health, /ready, /docs answer in shapes of their own
            continue
        for method in methods:
            operation = schema["paths"].get(path, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation["responses"]
            statuses = error_statuses(route, path)
            if "422" in responses:  # FastAPI's, in its own `detail` shape: ours instead
                statuses.add(422)
            for status in sorted(statuses):
                responses[str(status)] = _error_response(status)
            for code, declared in (route.responses or {}).items():
                if str(code).isdigit() and int(str(code)) >= 400:
                    responses[str(code)] = _error_response(
                        int(str(code)), declared.get("description")
                    )
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def install_openapi(app: FastAPI) -> None:
    """Build the document once, with the error answers, when it is first asked for."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            document_errors(app, schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def documented_methods(app: FastAPI, path: str) -> set[str]:
    """The methods the OpenAPI document lists for the path template `path` matches."""
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(app.state, "allow_table", None)
    if table is None:
        table = [
            (compile_path(template)[0], {method.upper() for method in operations})
            for template, operations in app.openapi()["paths"].items()
        ]
        app.state.allow_table = table
    return {method for regex, methods in table if regex.match(path) for method in methods}


def allow_header(methods: set[str]) -> str:
    return ", ".join(sorted(methods | {"OPTIONS"}))


class AllowedMethods:
    """`OPTIONS` → 204 with `Allow`; a 405 gets the path's full `Allow` list."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        methods = documented_methods(self.api, get_route_path(scope))
        if not methods:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and not _is_cors_preflight(scope):
            response = Response(status_code=204, headers={"Allow": allow_header(methods)})
            await response(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                MutableHeaders(scope=message)["allow"] = allow_header(methods)
            await send(message)

        await self.app(scope, receive, send_with_allow)


def _is_cors_preflight(scope: Scope) -> bool:
    headers = {k.lower(): v for k, v in scope.get("headers", [])}
    return b"origin" in headers and b"access-control-request-method" in headers
