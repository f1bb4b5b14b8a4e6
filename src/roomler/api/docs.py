"""`/docs` (Swagger UI) and `/redoc` served with no network: the assets come from Roomler.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so an offline or locked-down
install gets a blank page. The `fastapi-offline` package ships both bundles; we serve its
files under `/docs/assets/` and point FastAPI's page builders at them.

ReDoc's bundle still names one outside address: the Redocly logo in its side menu. The
pages carry a Content-Security-Policy that allows this origin only (plus the inline
script and styles FastAPI's pages and the bundles use), so the browser never fetches it:
the image is refused, ReDoc drops it, and nothing leaves the install.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
# W3C CSP Level 3: this origin only; data: and blob: for the images and workers the bundles
# make themselves.
SAME_ORIGIN_ONLY = "default-src 'self' 'unsafe-inline' data: blob:"


def docs_assets_dir() -> Path:
    """The directory of the Swagger UI and ReDoc bundles installed with `fastapi-offline`."""
    return Path(str(files("fastapi_offline") / "static"))


def install_api_docs(app: FastAPI) -> None:
    """Add `/docs`, `/redoc` and their assets; `app` is built with docs_url=redoc_url=None."""
    app.mount(ASSETS_URL, StaticFiles(directory=docs_assets_dir()), name="docs-assets")

    def openapi_url(request: Request) -> str:
        return f"{request.scope.get('root_path', '')}{app.openapi_url}"

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSETS_URL}/{name}"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_js_url=asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset(request, "swagger-ui.css"),
            swagger_favicon_url=asset(request, "favicon.png"),
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        return same_origin_only(page)

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - ReDoc",
            redoc_js_url=asset(request, "redoc.standalone.js"),
            redoc_favicon_url=asset(request, "favicon.png"),
            with_google_fonts=False,
        )
        return same_origin_only(page)


def same_origin_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = SAME_ORIGIN_ONLY
    return page
