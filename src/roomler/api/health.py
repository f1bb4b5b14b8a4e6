"""`GET /health` (liveness: the process answers) and `GET /ready` (readiness: roomler.readiness)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from roomler import __version__
from roomler.readiness import Readiness

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get(
    "/ready",
    responses={503: {"description": "Not ready: the reason of each failing check, or draining"}},
)
async def ready(request: Request) -> JSONResponse:
    readiness: Readiness = request.app.state.readiness
    is_ready, checks = await readiness.report()
    body: dict[str, Any] = {**checks, "version": __version__}
    return JSONResponse(body, status_code=200 if is_ready else 503)
