"""Jaeger's query API under ``/jaeger``: what the Jaeger UI and Grafana's Jaeger data source
call (v1, ``/jaeger/api/...``), with Jaeger's parameters and answers.

Every answer is Jaeger's envelope ``{"data", "total", "limit", "offset", "errors"}``, errors
included (``{"data": null, ..., "errors": [{"code": <status>, "msg"}]}``, with Jaeger's
status codes). Tokens and tenants are those of ``/api``. The shapes are built in
``query.jaeger_shapes``, the parameters read in ``query.jaeger_params``; api_v3 is in
``jaeger_v3``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otterscope.api.errors import error_headers
from otterscope.api.state import Endpoint, app_state, principal
from otterscope.errors import BadRequest, NotFound, OtterscopeError
from otterscope.query import jaeger_params as jp
from otterscope.query.jaeger_shapes import (
    SPAN_KINDS,
    Row,
    dependency_links,
    group_by_trace,
    trace_id_text,
    trace_to_jaeger,
)
from otterscope.query.model import TraceQuery, TraceSummary
from otterscope.store.base import Store

ErrorBody = Callable[[OtterscopeError], dict[str, Any]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Reader:
    """The store, for the caller's tenant: each read runs off the event loop (a large trace
    takes a while to read and shape, and the loop must keep answering everyone else)."""

    store: Store
    tenant: str

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        return await run_in_threadpool(fn, self.store, self.tenant, *args)


JaegerRoute = Callable[[Request, Reader], Awaitable[Response]]


def _v1_error(exc: OtterscopeError) -> dict[str, Any]:
    return envelope(None, errors=[{"code": exc.status, "msg": exc.message}])


def jaeger_endpoint(body: ErrorBody) -> Callable[[JaegerRoute], Endpoint]:
    """A route that reads with the ``read`` scope, as on ``/api``; its errors (the token's
    first) in a Jaeger error shape (``body``), with their status and headers
    (``WWW-Authenticate``, ``Retry-After``)."""

    def decorate(fn: JaegerRoute) -> Endpoint:
        @wraps(fn)
        async def wrapped(request: Request) -> Response:
            try:
                who = principal(request, "read")
                return await fn(request, Reader(app_state(request).store, who.tenant))
            except OtterscopeError as exc:
                return Response(
                    orjson.dumps(body(exc)),
                    status_code=exc.status,
                    media_type="application/json",
                    headers=error_headers(exc),
                )

        return wrapped

    return decorate


def envelope(
    data: Any, total: int = 0, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


# -- what the search form's dropdowns list ----------------------------------------------------


def lookback(request: Request) -> tuple[int, int]:
    """Jaeger lists every service and operation it stores: the window is trace retention,
    and the hour more that retention, which deletes whole hours, may still keep."""
    now = time.time_ns()
    kept = int((app_state(request).settings["retention.traces"] + 3600) * 1e9)
    return max(0, now - kept), now


def service_names(store: Store, tenant: str, window: tuple[int, int]) -> list[str]:
    rows = store.service_activity(tenant, *window)["traces"]
    return sorted({str(r["service_name"]) for r in rows if r.get("service_name")})


def operations(
    store: Store, tenant: str, service: str, kind: str | None, window: tuple[int, int]
) -> list[tuple[str, str]]:
    """(name, Jaeger span kind) of a service's spans, of one kind when ``kind`` is given."""
    out = []
    for name, number, _ in store.operations(tenant, service, *window):
        found = SPAN_KINDS[number] if 0 <= number < len(SPAN_KINDS) else ""
        if kind is None or kind.lower() == found:
            out.append((name, found))
    return out


# -- searches --------------------------------------------------------------------------------


def search_traces(
    store: Store, tenant: str, query: TraceQuery
) -> list[tuple[TraceSummary, list[Row]]]:
    """The matching traces, newest first, each with every stored span of it."""
    found = store.search_traces(tenant, query).items
    rows = group_by_trace(store.get_traces(tenant, [t.trace_id for t in found]))
    return [(t, rows[t.trace_id]) for t in found if t.trace_id in rows]


def in_window(rows: Sequence[Row], start_ns: int | None, end_ns: int | None) -> list[Row]:
    """The spans starting in the window (Jaeger's optional bounds of a trace by id)."""
    return [
        r
        for r in rows
        if (start_ns is None or r["start_time_unix_nano"] >= start_ns)
        and (end_ns is None or r["start_time_unix_nano"] <= end_ns)
    ]


def narrowed_search(query: TraceQuery, tags: dict[str, str]) -> TraceQuery | None:
    """``query`` with Jaeger tags applied; None when they contradict each other."""
    try:
        return jp.apply_tags(query, tags)
    except jp.NoMatch:
        return None


def _search_query(request: Request) -> TraceQuery | None:
    q = request.query_params
    start, end = jp.search_window(q)
    low, high = jp.durations(q, ("minDuration",), ("maxDuration",))
    query = TraceQuery(
        start_ns=start,
        end_ns=end,
        limit=jp.limit(q.get("limit")),
        service=q.get("service") or None,
        operation=q.get("operation") or None,
        operation_exact=True,
        min_duration_ns=low,
        max_duration_ns=high,
    )
    return narrowed_search(query, jp.parse_tags(q.getlist("tags"), q.getlist("tag")))


def _search_body(store: Store, tenant: str, query: TraceQuery | None) -> bytes:
    found = [] if query is None else search_traces(store, tenant, query)
    return orjson.dumps(envelope([trace_to_jaeger(rows) for _, rows in found]))


def _by_ids_body(store: Store, tenant: str, ids: list[bytes]) -> bytes:
    rows = group_by_trace(store.get_traces(tenant, ids))
    unique = list(dict.fromkeys(ids))
    missing = [
        {"msg": "trace not found", "traceID": trace_id_text(t)} for t in unique if t not in rows
    ]
    data = [trace_to_jaeger(rows[t]) for t in unique if t in rows]
    return orjson.dumps(envelope(data, errors=missing or None))


@jaeger_endpoint(_v1_error)
async def search(request: Request, read: Reader) -> Response:
    ids = request.query_params.getlist("traceID")
    if ids:
        body = await read(_by_ids_body, [jp.trace_id(i) for i in ids])
    else:
        body = await read(_search_body, _search_query(request))
    return Response(body, media_type="application/json")


def _trace_body(
    store: Store, tenant: str, trace_id: bytes, window: tuple[int | None, int | None]
) -> bytes | None:
    rows = in_window(store.get_trace(tenant, trace_id), *window)
    return orjson.dumps(envelope([trace_to_jaeger(rows)])) if rows else None


@jaeger_endpoint(_v1_error)
async def trace(request: Request, read: Reader) -> Response:
    q = request.query_params
    trace_id = jp.trace_id(request.path_params["trace_id"])
    start = jp.micros("start", q.get("start"), -1) if q.get("start") else None
    end = jp.micros("end", q.get("end"), -1) if q.get("end") else None
    body = await read(_trace_body, trace_id, (start, end))
    if body is None:
        raise NotFound("trace not found")
    return Response(body, media_type="application/json")


# -- services, operations, dependencies ------------------------------------------------------


@jaeger_endpoint(_v1_error)
async def services(request: Request, read: Reader) -> Response:
    names = await read(service_names, lookback(request))
    return _json(envelope(names, total=len(names)))


@jaeger_endpoint(_v1_error)
async def service_operations(request: Request, read: Reader) -> Response:
    """The legacy list the Jaeger UI and Grafana fill their operation dropdown from: names
    of every kind, once each."""
    found = await read(operations, request.path_params["service"], None, lookback(request))
    names = sorted({name for name, _ in found})
    return _json(envelope(names, total=len(names)))


@jaeger_endpoint(_v1_error)
async def operations_by_kind(request: Request, read: Reader) -> Response:
    q = request.query_params
    if not q.get("service"):
        raise BadRequest("parameter 'service' is required")
    kind = q.get("spanKind") or None
    found = await read(operations, q["service"], kind, lookback(request))
    data = [{"name": name, "spanKind": named} for name, named in found]
    return _json(envelope(data, total=len(data)))


def _dependencies(store: Store, tenant: str, start: int, end: int) -> Sequence[Row]:
    return store.dependencies(tenant, start, end)


@jaeger_endpoint(_v1_error)
async def dependencies(request: Request, read: Reader) -> Response:
    q = request.query_params
    end_ms = jp.millis("endTs", q.get("endTs"), time.time_ns() // 10**6)
    back_ms = jp.millis("lookback", q.get("lookback"), jp.DEPENDENCY_LOOKBACK_MS)
    end = end_ms * 10**6
    rows = await read(_dependencies, max(0, end - back_ms * 10**6), end)
    return _json(envelope(dependency_links(rows, q.get("service") or None)))


ROUTES = [
    Route("/jaeger/api/services", services, methods=["GET"]),
    Route("/jaeger/api/services/{service}/operations", service_operations, methods=["GET"]),
    Route("/jaeger/api/operations", operations_by_kind, methods=["GET"]),
    Route("/jaeger/api/traces", search, methods=["GET"]),
    Route("/jaeger/api/traces/{trace_id}", trace, methods=["GET"]),
    Route("/jaeger/api/dependencies", dependencies, methods=["GET"]),
]
