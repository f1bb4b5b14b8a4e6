"""One access-log line per HTTP request, with its status, duration and request id.

It replaces uvicorn's access log (`roomler serve` turns that off), which has no duration.
The request id is the client's `X-Request-ID` when it is a sane token (a proxy's), else a
new one; it is answered in `X-Request-ID` and carried by every line logged for the
request (roomler.logs). `/ws` never reaches this middleware (app.RoomlerApp): a
WebSocket's upgrade is logged by uvicorn and its life by roomler.realtime.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roomler.logs import log_context

logger = logging.getLogger("roomler.access")

REQUEST_ID_HEADER = "x-request-id"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            given: str = value.decode("latin-1")
            if _SANE_REQUEST_ID.match(given):
                return given
    return uuid.uuid4().hex


ResponseObserver = Callable[[Scope, int, float], None]


class AccessLogMiddleware:
    """`on_response(scope, status, seconds)` is told of each response too (the metrics)."""

    def __init__(self, app: ASGIApp, on_response: ResponseObserver | None = None) -> None:
        self.app = app
        self.on_response = on_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                log_request(scope, status, seconds)
                if self.on_response is not None:
                    self.on_response(scope, status, seconds)


def log_request(scope: Scope, status: int, seconds: float) -> None:
    path = scope.get("root_path", "") + scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    target = f"{path}?{query}" if query else path
    client = scope.get("client")
    address = f"{client[0]}:{client[1]}" if client else "-"
    duration_ms = round(seconds * 1000, 1)
    logger.info(
        '%s "%s %s HTTP/%s" %d %.1f ms',
        address,
        scope["method"],
        target,
        scope.get("http_version", "1.1"),
        status,
        duration_ms,
        extra={
            "client": address,
            "method": scope["method"],
            "path": target,
            "status": status,
            "duration_ms": duration_ms,
        },
    )
