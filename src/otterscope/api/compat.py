"""Endpoints in the paths and shapes of the tools users migrate from.

- otel-worker: ``GET /v1/traces?limit=&time=`` (recent traces, each with its spans),
  ``GET|DELETE /v1/traces/{traceId}``, ``GET /v1/traces/{traceId}/spans``,
  ``GET|DELETE /v1/traces/{traceId}/spans/{spanId}``. ``time`` keeps traces that ended at
  or before it; traces are ordered by their last span's end, newest first (as otel-worker).
- the Rust storage engine: ``GET /spans?limit=`` -> the most recent spans.

Spans are the native ``Span`` shape. Deletes need the ``admin`` scope and answer 204.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otterscope.api.responses import json_response
from otterscope.api.state import api_endpoint, app_state, principal
from otterscope.errors import NotFound
from otterscope.query import params as p
from otterscope.query.shapes import span_to_api, spans_to_api
from otterscope.store.base import Row

# otel-worker lists 20 traces unless told otherwise.
DEFAULT_TRACES = 20
# How far back the list looks for traces (it is a "what just happened" view).
LIST_WINDOW_NS = 24 * 3600 * 10**9


def _group(rows: list[Row]) -> list[dict[str, Any]]:
    traces: dict[bytes, list[dict[str, Any]]] = {}
    shared: dict[Any, dict[str, Any]] = {}
    for row in rows:
        traces.setdefault(row["trace_id"], []).append(span_to_api(row, shared))
    return [{"traceId": tid.hex(), "spans": spans} for tid, spans in traces.items()]


@api_endpoint
async def list_traces(request: Request) -> Response:
    who = principal(request, "read")
    q = request.query_params
    p.check_known(q, {"limit", "time"}, attributes=False)
    limit = p.parse_limit(q.get("limit"), DEFAULT_TRACES)
    before = p.parse_time("time", q["time"]) if q.get("time") else time.time_ns()
    rows = await run_in_threadpool(
        app_state(request).store.recent_traces, who.tenant, limit, before, LIST_WINDOW_NS
    )
    return json_response(_group(rows))


async def _spans(request: Request) -> tuple[bytes, list[Row]]:
    who = principal(request, "read")
    p.check_known(request.query_params, set(), attributes=False)
    trace_id = p.parse_trace_id(request.path_params["trace_id"])
    rows = await run_in_threadpool(app_state(request).store.get_trace, who.tenant, trace_id)
    if not rows:
        raise NotFound(f"trace {trace_id.hex()} not found")
    return trace_id, rows


async def _delete(request: Request) -> Response:
    who = principal(request, "admin")
    p.check_known(request.query_params, set(), attributes=False)
    trace_id = p.parse_trace_id(request.path_params["trace_id"])
    raw_span = request.path_params.get("span_id")
    span_id = p.parse_span_id(raw_span) if raw_span is not None else None
    await run_in_threadpool(app_state(request).store.delete, who.tenant, trace_id, span_id)
    return Response(status_code=204)


@api_endpoint
async def trace(request: Request) -> Response:
    if request.method == "DELETE":
        return await _delete(request)
    _, rows = await _spans(request)
    return json_response(_group(rows)[0])


@api_endpoint
async def trace_spans(request: Request) -> Response:
    _, rows = await _spans(request)
    return json_response(spans_to_api(rows))


@api_endpoint
async def span(request: Request) -> Response:
    if request.method == "DELETE":
        return await _delete(request)
    span_id = p.parse_span_id(request.path_params["span_id"])
    trace_id, rows = await _spans(request)
    found = [r for r in rows if r["span_id"] == span_id]
    if not found:
        raise NotFound(f"span {span_id.hex()} of trace {trace_id.hex()} not found")
    return json_response(span_to_api(found[0]))


@api_endpoint
async def recent_spans(request: Request) -> Response:
    who = principal(request, "read")
    q = request.query_params
    p.check_known(q, {"limit"}, attributes=False)
    rows = await run_in_threadpool(
        app_state(request).store.recent_spans, who.tenant, p.parse_limit(q.get("limit"))
    )
    return json_response(spans_to_api(rows))


ROUTES = [
    Route("/v1/traces/{trace_id}", trace, methods=["GET", "DELETE"]),
    Route("/v1/traces/{trace_id}/spans", trace_spans, methods=["GET"]),
    Route("/v1/traces/{trace_id}/spans/{span_id}", span, methods=["GET", "DELETE"]),
    Route("/spans", recent_spans, methods=["GET"]),
]
