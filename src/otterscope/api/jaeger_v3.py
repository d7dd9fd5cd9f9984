"""Jaeger's api_v3 over HTTP under ``/jaeger/api/v3`` (its ``http_gateway``): services,
operations, traces by id and by search as OTLP/JSON inside ``{"result": ...}``, and trace
summaries. Answers are protobuf JSON as Jaeger writes it: camelCase names, 64-bit numbers as
strings, enums as numbers, fields at their zero value left out, except the lists of
services, operations and summaries, which are there even when empty: the Jaeger UI's
api_v3 client requires ``services`` and ``operations``. Errors are
``{"error": {"httpCode", "message"}}``; a search or id that finds nothing is Jaeger's 404
"No traces found". Parameters take api_v3's camelCase names and their older snake_case
spelling (``query.serviceName`` / ``query.service_name``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otterscope.api.jaeger import (
    Reader,
    in_window,
    jaeger_endpoint,
    lookback,
    narrowed_search,
    operations,
    search_traces,
    service_names,
)
from otterscope.errors import BadRequest, NotFound, OtterscopeError
from otterscope.query import jaeger_params as jp
from otterscope.query.jaeger_shapes import Row, trace_summary
from otterscope.query.model import TraceQuery
from otterscope.query.shapes import spans_to_otlp_json
from otterscope.store.base import Store

_BOOLS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}
NO_TRACES = "No traces found"
_OPERATION = ("query.operationName", "query.operation_name", "query.spanName", "query.span_name")


def _error(exc: OtterscopeError) -> dict[str, Any]:
    return {"error": {"httpCode": exc.status, "message": exc.message}}


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _check_bool(q: Mapping[str, str], *names: str) -> None:
    """``rawTraces``: otterscope never adjusts a trace, so raw and adjusted are the same;
    only a malformed value is refused, as Jaeger refuses it."""
    value, name = jp.first(q, *names)
    if value and value.lower() not in _BOOLS:
        raise BadRequest(f"malformed parameter {name}: {value[:20]!r} is not a boolean")


def _otlp(rows: list[Row]) -> bytes | None:
    return orjson.dumps({"result": spans_to_otlp_json(rows)}) if rows else None


def _search_query(q: QueryParams) -> TraceQuery | None:
    if q.get("query.filter"):
        raise BadRequest("malformed parameter query.filter: filter expressions are not supported")
    low_text, low_name = jp.first(q, "query.startTimeMin", "query.start_time_min")
    high_text, high_name = jp.first(q, "query.startTimeMax", "query.start_time_max")
    if not low_text or not high_text:
        raise BadRequest("query.startTimeMin and query.startTimeMax are required")
    start, end = jp.rfc3339(low_name, low_text), jp.rfc3339(high_name, high_text)
    if start >= end:
        raise BadRequest("query.startTimeMin must be before query.startTimeMax")
    depth, depth_name = jp.first(q, "query.searchDepth", "query.search_depth", "query.num_traces")
    low, high = jp.durations(
        q, ("query.durationMin", "query.duration_min"), ("query.durationMax", "query.duration_max")
    )
    _check_bool(q, "query.rawTraces", "query.raw_traces")
    tags = jp.parse_tags(q.getlist("query.attributes"), [], "query.attributes", False)
    query = TraceQuery(
        start_ns=start,
        end_ns=end,
        limit=jp.limit(depth or None, depth_name),
        service=jp.first(q, "query.serviceName", "query.service_name")[0] or None,
        # The Jaeger UI's api_v3 client names the operation query.span_name.
        operation=jp.first(q, *_OPERATION)[0] or None,
        operation_exact=True,
        min_duration_ns=low,
        max_duration_ns=high,
    )
    return narrowed_search(query, tags)


def _traces_body(store: Store, tenant: str, query: TraceQuery | None) -> bytes | None:
    found = [] if query is None else search_traces(store, tenant, query)
    return _otlp([row for _, rows in found for row in rows])


def _summaries_body(store: Store, tenant: str, query: TraceQuery | None) -> bytes:
    found = [] if query is None else search_traces(store, tenant, query)
    summaries = [trace_summary(t, rows) for t, rows in found]
    return orjson.dumps({"summaries": summaries})


@jaeger_endpoint(_error)
async def find_traces(request: Request, read: Reader) -> Response:
    body = await read(_traces_body, _search_query(request.query_params))
    if body is None:
        raise NotFound(NO_TRACES)
    return Response(body, media_type="application/json")


@jaeger_endpoint(_error)
async def trace_summaries(request: Request, read: Reader) -> Response:
    body = await read(_summaries_body, _search_query(request.query_params))
    return Response(body, media_type="application/json")


def _trace_body(
    store: Store, tenant: str, trace_id: bytes, window: tuple[int | None, int | None]
) -> bytes | None:
    return _otlp(in_window(store.get_trace(tenant, trace_id), *window))


@jaeger_endpoint(_error)
async def get_trace(request: Request, read: Reader) -> Response:
    q = request.query_params
    trace_id = jp.trace_id(request.path_params["trace_id"])
    bounds: list[int | None] = []
    for names in (("startTime", "start_time"), ("endTime", "end_time")):
        value, name = jp.first(q, *names)
        bounds.append(jp.rfc3339(name, value) if value else None)
    _check_bool(q, "rawTraces", "raw_traces")
    body = await read(_trace_body, trace_id, (bounds[0], bounds[1]))
    if body is None:
        raise NotFound(NO_TRACES)
    return Response(body, media_type="application/json")


@jaeger_endpoint(_error)
async def services(request: Request, read: Reader) -> Response:
    names = await read(service_names, lookback(request))
    return _json({"services": names})


@jaeger_endpoint(_error)
async def get_operations(request: Request, read: Reader) -> Response:
    q = request.query_params
    if not q.get("service"):
        raise BadRequest("parameter 'service' is required")
    kind = jp.first(q, "spanKind", "span_kind")[0] or None
    found = await read(operations, q["service"], kind, lookback(request))
    # api_v3 names an operation without a kind "internal", as Jaeger's gateway does.
    data = [{"name": name, "spanKind": named or "internal"} for name, named in found]
    return _json({"operations": data})


ROUTES = [
    Route("/jaeger/api/v3/services", services, methods=["GET"]),
    Route("/jaeger/api/v3/operations", get_operations, methods=["GET"]),
    Route("/jaeger/api/v3/traces", find_traces, methods=["GET"]),
    Route("/jaeger/api/v3/traces/{trace_id}", get_trace, methods=["GET"]),
    Route("/jaeger/api/v3/trace-summaries", trace_summaries, methods=["GET"]),
]
