"""Native trace endpoints: search, trace by id, a service's operations."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otterscope.api.paging import begin
from otterscope.api.responses import json_response
from otterscope.api.state import api_endpoint, app_state, principal
from otterscope.errors import BadRequest, NotFound
from otterscope.query import params as p
from otterscope.query.model import TraceQuery, TraceSummary
from otterscope.query.shapes import SPAN_KINDS, spans_to_api, spans_to_otlp_json
from otterscope.store.base import Store

_STATUS = {"unset": 0, "ok": 1, "error": 2}
_SEARCH_PARAMS = {
    "service",
    "operation",
    "status",
    "minDuration",
    "maxDuration",
    "minTraceDuration",
    "maxTraceDuration",
    "start",
    "end",
    "limit",
    "cursor",
}


def trace_query(request: Request) -> TraceQuery:
    q = request.query_params
    p.check_known(q, _SEARCH_PARAMS)
    start, end = p.time_window(q)
    status = q.get("status")
    if status is not None and status.lower() not in _STATUS:
        raise BadRequest("status must be one of ok, error, unset")

    def duration(name: str) -> int | None:
        value = q.get(name)
        return p.parse_duration(name, value) if value else None

    return TraceQuery(
        start_ns=start,
        end_ns=end,
        limit=p.parse_limit(q.get("limit")),
        service=q.get("service") or None,
        operation=q.get("operation") or None,
        status=_STATUS[status.lower()] if status is not None else None,
        min_duration_ns=duration("minDuration"),
        max_duration_ns=duration("maxDuration"),
        attributes=p.attribute_filters(q.multi_items()),
        min_trace_duration_ns=duration("minTraceDuration"),
        max_trace_duration_ns=duration("maxTraceDuration"),
    )


def summary_to_api(t: TraceSummary) -> dict[str, Any]:
    return {
        "traceId": t.trace_id.hex(),
        "rootService": t.root_service,
        "rootName": t.root_name,
        "rootSpanMissing": t.root_span_missing,
        "startTimeUnixNano": str(t.start_ns),
        "durationMs": (t.end_ns - t.start_ns) / 1e6,
        "spanCount": t.span_count,
        "errorCount": t.error_count,
        "services": list(t.services),
    }


@api_endpoint
async def search(request: Request) -> Response:
    who = principal(request, "read")
    state = app_state(request)
    query = trace_query(request)
    paging = begin(
        state.cursors,
        who,
        "traces",
        request.query_params.multi_items(),
        request.query_params.get("cursor"),
    )
    query = paging.resume(query, lambda a: (int(a[0]), bytes(a[1])))
    window = (query.start_ns, query.end_ns)
    page = await run_in_threadpool(state.store.search_traces, who.tenant, query)
    last = page.items[-1] if page.items else None
    return json_response(
        {
            "traces": [summary_to_api(t) for t in page.items],
            "nextCursor": paging.next_cursor(
                page.pin, window, page.more, (last.start_ns, last.trace_id) if last else None
            ),
        }
    )


@api_endpoint
async def by_id(request: Request) -> Response:
    who = principal(request, "read")
    p.check_known(request.query_params, {"format"}, attributes=False)
    trace_id = p.parse_trace_id(request.path_params["trace_id"])
    fmt = request.query_params.get("format", "native")
    if fmt not in ("native", "otlp"):
        raise BadRequest("format must be 'native' or 'otlp'")
    store = app_state(request).store
    body = await run_in_threadpool(_trace_body, store, who.tenant, trace_id, fmt)
    if body is None:
        raise NotFound(f"trace {trace_id.hex()} not found")
    return Response(body, media_type="application/json")


def _trace_body(store: Store, tenant: str, trace_id: bytes, fmt: str) -> bytes | None:
    """The answer's bytes, built off the event loop: a 50,000-span trace takes most of a
    second to shape and serialise, and the loop must keep answering everyone else."""
    rows = store.get_trace(tenant, trace_id)
    if not rows:
        return None
    if fmt == "otlp":
        return orjson.dumps(spans_to_otlp_json(rows))
    return orjson.dumps({"traceId": trace_id.hex(), "spans": spans_to_api(rows)})


@api_endpoint
async def operations(request: Request) -> Response:
    who = principal(request, "read")
    q = request.query_params
    p.check_known(q, {"start", "end"}, attributes=False)
    start, end = p.time_window(q)
    service = request.path_params["service"]
    found = await run_in_threadpool(
        app_state(request).store.operations, who.tenant, service, start, end
    )
    return json_response(
        {
            "operations": [
                {
                    "name": name,
                    "spanKind": SPAN_KINDS[kind] if 0 <= kind < 6 else kind,
                    "spanCount": n,
                }
                for name, kind, n in found
            ]
        }
    )


ROUTES = [
    Route("/api/traces", search, methods=["GET"]),
    Route("/api/traces/{trace_id}", by_id, methods=["GET"]),
    Route("/api/services/{service}/operations", operations, methods=["GET"]),
]
