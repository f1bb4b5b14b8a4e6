"""The one shape of every HTTP error body, `{"error": kind, "message": text}`.

Both the REST API (`roomler.api.errors`) and the WebSocket upgrade's denial
(`roomler.realtime.endpoint`) answer with it; neither layer imports the other for it.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

KIND_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation",
    429: "rate_limited",
    503: "unavailable",
}


def error_kind(status: int) -> str:
    return KIND_BY_STATUS.get(status, "internal" if status >= 500 else "bad_request")


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": error_kind(status), "message": message}, status_code=status, headers=headers
    )
