"""`GET /metrics`: Prometheus's text format (roomler.metrics); 404 unless enabled.

With `ROOMLER__METRICS__TOKEN` set, a scrape must carry `Authorization: Bearer <token>`
(Prometheus: `authorization: {credentials: ...}` in the scrape config).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from roomler.api.errors import not_found, unauthorized
from roomler.metrics import ServerMetrics

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    collected: ServerMetrics | None = request.app.state.metrics
    if collected is None:
        raise not_found("Metrics are off (ROOMLER__METRICS__ENABLED)")
    token = request.app.state.ctx.settings.metrics.token
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise unauthorized("A bearer token is required for /metrics")
    await collected.refresh()  # the SFU workers' figures, asked over their channels
    return Response(generate_latest(collected.registry), media_type=CONTENT_TYPE_LATEST)
