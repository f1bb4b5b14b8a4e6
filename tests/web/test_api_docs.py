"""`/docs` and `/redoc` render with no network: every request goes to the server itself."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, Route, expect

from tests.web.conftest import NewUser
from tests.web.harness import ServerProcess

pytestmark = pytest.mark.browser


async def open_offline(
    new_user: NewUser, server: ServerProcess, path: str
) -> tuple[Page, list[str], list[str]]:
    """Load `path` with every request to another origin refused.

    Returns the page, the URLs it asked the server for and those it asked anyone else for.
    """
    reader = await new_user("Reader", "reader")
    # ReDoc's bundle names the Redocly logo on a CDN; the page's CSP refuses it (api/docs.py).
    reader.allowed.append(re.compile(r"image 'https://cdn\.redoc\.ly/.*Content Security Policy"))
    own: list[str] = []
    elsewhere: list[str] = []

    async def same_origin_only(route: Route) -> None:
        url = route.request.url
        if url.startswith(f"{server.base}/"):
            own.append(url)
            await route.continue_()
        elif url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            elsewhere.append(url)
            await route.abort()

    await reader.context.route("**/*", same_origin_only)
    await reader.page.goto(f"{server.base}{path}")
    return reader.page, own, elsewhere


async def test_swagger_ui_renders_from_the_servers_own_assets(
    server: ServerProcess, new_user: NewUser
) -> None:
    page, own, elsewhere = await open_offline(new_user, server, "/docs")
    # Swagger UI drew the API's title and the operations of /openapi.json.
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Roomler")
    await expect(page.locator(".opblock-summary-path", has_text="/api/auth/login")).to_be_visible()
    assert f"{server.base}/openapi.json" in own
    assert any(url.endswith("/swagger-ui-bundle.js") for url in own)
    assert elsewhere == []


async def test_redoc_renders_from_the_servers_own_assets(
    server: ServerProcess, new_user: NewUser
) -> None:
    page, own, elsewhere = await open_offline(new_user, server, "/redoc")
    await expect(page.locator(".api-info h1")).to_contain_text("Roomler")
    await expect(page.get_by_text("/api/auth/login").first).to_be_attached()
    assert f"{server.base}/openapi.json" in own
    assert any(url.endswith("/redoc.standalone.js") for url in own)
    assert elsewhere == []
