"""Serving the built client at `/`: files, the client-side routing fallback, API 404s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from roomler.api.errors import install_error_handlers
from roomler.web import mount_web_client

pytestmark = pytest.mark.nodb

INDEX = "<!doctype html><title>Roomler</title><script src='/assets/main-ABC.js'></script>"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "main-ABC.js").write_text("console.log('hi')")
    (root / "robots.txt").write_text("User-agent: *")
    (tmp_path / "secret.txt").write_text("outside dist")
    return root


def web_app(dist: Path) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/api/thing")
    async def thing() -> dict[str, bool]:
        return {"ok": True}

    mount_web_client(app, dist)
    return app


@pytest.fixture
async def client(dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=web_app(dist))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_root_and_client_routes_get_index_html(client: httpx.AsyncClient) -> None:
    for path in ("/", "/login", "/t/6b07945b309ae69bfed55a38/c/6b07945b309ae69bfed55a39"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.text == INDEX
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["cache-control"] == "no-cache"


async def test_files_are_served_and_hashed_bundles_cached_for_good(
    client: httpx.AsyncClient,
) -> None:
    bundle = await client.get("/assets/main-ABC.js")
    assert bundle.status_code == 200 and bundle.text == "console.log('hi')"
    assert "javascript" in bundle.headers["content-type"]
    assert bundle.headers["cache-control"] == "public, max-age=31536000, immutable"
    robots = await client.get("/robots.txt")
    assert robots.text == "User-agent: *" and robots.headers["cache-control"] == "no-cache"
    head = await client.head("/assets/main-ABC.js")
    assert head.status_code == 200


async def test_api_routes_win_and_unknown_api_paths_are_json_404s(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/api/thing")).json() == {"ok": True}
    for method, path in [("GET", "/api/nowhere"), ("POST", "/api/nowhere"), ("GET", "/api")]:
        response = await client.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"error": "not_found", "message": "Not Found"}
    # A plain HTTP request for the WebSocket path is not the client either.
    ws = await client.get("/ws")
    assert ws.status_code == 404 and ws.json()["error"] == "not_found"
    # A known route with the wrong method still says so.
    wrong = await client.delete("/api/thing")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"


async def test_paths_outside_dist_are_never_served(client: httpx.AsyncClient) -> None:
    for path in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt"):
        response = await client.get(path)
        assert "outside dist" not in response.text, path


async def test_other_methods_on_client_paths_are_405(client: httpx.AsyncClient) -> None:
    response = await client.post("/login")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


async def test_without_a_build_the_page_says_how_to_build(tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=web_app(tmp_path / "missing"))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/")
        assert response.status_code == 503
        assert "make web" in response.text
        assert (await http.get("/t/whatever")).status_code == 503
        assert (await http.get("/api/nowhere")).json()["error"] == "not_found"
