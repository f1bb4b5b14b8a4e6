"""The browser client: the files `web/` builds into `dist/`, served at `/` on the API's origin.

`mount_web_client(app)` must be the last registration: its catch-all route answers only
what no API route, `/ws`, `/health` or `/docs` has claimed. A file of `dist/` is served
as it is; any other path not under `/api` or `/ws` gets `index.html`, so the client's
own router can draw `/t/<tenant>/c/<channel>` after a reload. Unknown `/api/...` paths
keep the API's JSON error shape.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Match, Route
from starlette.types import Scope

DIST = Path(__file__).resolve().parent / "dist"

# The bundles under assets/ carry a content hash in their names, so they never change.
IMMUTABLE = "public, max-age=31536000, immutable"
# index.html names the current bundles: always ask the server again.
REVALIDATE = "no-cache"

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Roomler</title></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 4rem auto">
<h1>Roomler</h1>
<p>The server is running, but the web client has not been built.
Run <code>make web</code> (or <code>make serve</code>) in the repository and reload.</p>
<p>The API is at <a href="/docs">/docs</a>.</p>
</body></html>
"""

_SERVER_PREFIXES = ("api", "ws")


def is_server_path(path: str) -> bool:
    """Whether `path` (without the leading `/`) belongs to the API or the WebSocket."""
    first = path.split("/", 1)[0]
    return first in _SERVER_PREFIXES


def resolve_file(dist: Path, path: str) -> Path | None:
    """The file of `dist` that `path` names, or None (also for anything outside `dist`)."""
    if not path or "\x00" in path:
        return None
    root = dist.resolve()
    candidate = (root / path).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def web_response(dist: Path, path: str) -> Response:
    """What `GET /<path>` answers once no other route has matched."""
    index = dist / "index.html"
    if not index.is_file():
        return HTMLResponse(NOT_BUILT, status_code=503, headers={"Cache-Control": REVALIDATE})
    found = resolve_file(dist, path)
    if found is None or found == index.resolve():
        return FileResponse(index, headers={"Cache-Control": REVALIDATE})
    immutable = found.parent.name == "assets"
    return FileResponse(found, headers={"Cache-Control": IMMUTABLE if immutable else REVALIDATE})


class WebClientRoute(Route):
    """`GET /{path}` for every path outside `/api` and `/ws`.

    Server paths never match, so an unknown `/api/...` stays the router's JSON 404
    whatever the method, and a known one called with the wrong method stays a 405.
    """

    def __init__(self, dist: Path) -> None:
        async def web_client(request: Request) -> Response:
            return web_response(dist, request.path_params["path"])

        super().__init__("/{path:path}", web_client, methods=["GET", "HEAD"])

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and is_server_path(scope["path"].lstrip("/")):
            return Match.NONE, {}
        return super().matches(scope)


def mount_web_client(app: FastAPI, dist: Path = DIST) -> None:
    """Serve the built client at `/`; call it after every other route is registered."""
    app.router.routes.append(WebClientRoute(dist))
