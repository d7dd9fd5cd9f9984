"""The one JSON error shape of the API: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import math

import orjson
from starlette.responses import Response

from otterscope.errors import MethodNotAllowed, OtterscopeError, Unauthorized


def error_headers(exc: OtterscopeError) -> dict[str, str]:
    headers: dict[str, str] = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="otterscope"'
    if isinstance(exc, MethodNotAllowed):
        headers["Allow"] = ", ".join(exc.allow)
    return headers


def error_response(exc: OtterscopeError) -> Response:
    body = orjson.dumps({"error": {"code": exc.code, "message": exc.message}})
    return Response(
        body, status_code=exc.status, media_type="application/json", headers=error_headers(exc)
    )
