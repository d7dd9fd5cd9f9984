"""``GET /api/logs`` and ``GET /api/logs/volume`` (the same filters, counted per step)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otterscope.api.paging import begin
from otterscope.api.responses import json_response
from otterscope.api.state import api_endpoint, app_state, principal
from otterscope.errors import BadRequest
from otterscope.query import log_volume as lv
from otterscope.query import params as p
from otterscope.query.model import LogQuery
from otterscope.query.shapes import log_to_api

SEVERITIES = {
    "TRACE": 1,
    "DEBUG": 5,
    "INFO": 9,
    "WARN": 13,
    "WARNING": 13,
    "ERROR": 17,
    "FATAL": 21,
}
_FILTERS = {"service", "severity", "q", "traceId", "spanId", "start", "end"}
_PARAMS = _FILTERS | {"limit", "cursor"}
_VOLUME_PARAMS = _FILTERS | {"step"}


def parse_severity(value: str) -> int:
    text = value.strip().upper()
    if text in SEVERITIES:
        return SEVERITIES[text]
    if text.isdigit() and 1 <= int(text) <= 24:
        return int(text)
    raise BadRequest("severity must be TRACE, DEBUG, INFO, WARN, ERROR, FATAL or a number 1-24")


def log_query(request: Request, known: set[str] = _PARAMS) -> LogQuery:
    q = request.query_params
    p.check_known(q, known)
    start, end = p.time_window(q)
    return LogQuery(
        start_ns=start,
        end_ns=end,
        limit=p.parse_limit(q.get("limit")),
        service=q.get("service") or None,
        min_severity=parse_severity(q["severity"]) if q.get("severity") else None,
        text=q.get("q") or None,
        trace_id=p.parse_trace_id(q["traceId"]) if q.get("traceId") else None,
        span_id=p.parse_span_id(q["spanId"]) if q.get("spanId") else None,
        attributes=p.attribute_filters(q.multi_items()),
    )


@api_endpoint
async def search(request: Request) -> Response:
    who = principal(request, "read")
    state = app_state(request)
    query = log_query(request)
    q = request.query_params
    paging = begin(state.cursors, who, "logs", q.multi_items(), q.get("cursor"))
    query = paging.resume(query, lambda a: (int(a[0]), int(a[1])))
    page = await run_in_threadpool(state.store.search_logs, who.tenant, query)
    last = page.items[-1] if page.items else None
    key = (last["timestamp_unix_nano"], last["ingest_seq"]) if last else None
    window = (query.start_ns, query.end_ns)
    return json_response(
        {
            "logs": [log_to_api(r) for r in page.items],
            "nextCursor": paging.next_cursor(page.pin, window, page.more, key),
        }
    )


@api_endpoint
async def volume(request: Request) -> Response:
    who = principal(request, "read")
    state = app_state(request)
    query = log_query(request, _VOLUME_PARAMS)
    start, end = query.start_ns, query.end_ns
    step = request.query_params.get("step")
    step_ns = lv.parse_step(step, start, end) if step else lv.default_step_ns(start, end)
    rows = await run_in_threadpool(state.store.log_volume, who.tenant, query, step_ns)
    return json_response(lv.volume_to_api(rows, start, end, step_ns))


ROUTES = [
    Route("/api/logs", search, methods=["GET"]),
    Route("/api/logs/volume", volume, methods=["GET"]),
]
