"""Autocomplete: attribute keys in use, and the values of one key.

``GET /api/attributes?signal=&prefix=&start=&end=&limit=`` -> ``{"keys": [...]}`` and
``GET /api/attributes/{key}/values?signal=&prefix=&start=&end=&limit=`` ->
``{"values": [...]}`` (typed values). Item and resource attributes both count; the most
used come first.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otterscope.api.responses import json_response
from otterscope.api.state import api_endpoint, app_state, principal
from otterscope.errors import BadRequest
from otterscope.query import params as p

SIGNALS = ("traces", "logs", "metrics")
_PARAMS = {"signal", "prefix", "start", "end", "limit"}


def _signal(request: Request) -> str:
    signal = request.query_params.get("signal", "traces")
    if signal not in SIGNALS:
        raise BadRequest(f"signal must be one of {', '.join(SIGNALS)}")
    return signal


@api_endpoint
async def keys(request: Request) -> Response:
    who = principal(request, "read")
    q = request.query_params
    p.check_known(q, _PARAMS, attributes=False)
    start, end = p.time_window(q)
    found = await run_in_threadpool(
        app_state(request).store.attribute_keys,
        who.tenant,
        _signal(request),
        q.get("prefix", ""),
        start,
        end,
        p.parse_limit(q.get("limit")),
    )
    return json_response({"keys": found})


@api_endpoint
async def values(request: Request) -> Response:
    who = principal(request, "read")
    q = request.query_params
    p.check_known(q, _PARAMS, attributes=False)
    start, end = p.time_window(q)
    found = await run_in_threadpool(
        app_state(request).store.attribute_values,
        who.tenant,
        _signal(request),
        request.path_params["key"],
        q.get("prefix", ""),
        start,
        end,
        p.parse_limit(q.get("limit")),
    )
    return json_response({"values": found})


ROUTES = [
    Route("/api/attributes", keys, methods=["GET"]),
    Route("/api/attributes/{key}/values", values, methods=["GET"]),
]
