"""Tempo's HTTP API under ``/tempo``: what Grafana's Tempo data source calls (its health
check's ``/api/echo``, trace by id v1 and v2, search, tags and tag values v1 and v2), with
Tempo's paths, parameters and answers.

A trace by id is protobuf when ``Accept`` names ``application/protobuf`` (as Grafana
sends it), else JSON, as Tempo decides. Errors are Tempo's: the status with the message as
plain text. Tokens and tenants are those of ``/api``. The shapes are built in
``query.tempo_shapes``, the parameters read in ``query.tempo_params``.

A search with ``q=`` is TraceQL, evaluated by the store (``Store.search_traceql``); one
with ``tags=`` (or neither) is the trace search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otterscope import __version__
from otterscope.api.errors import error_headers
from otterscope.api.jaeger import Reader, in_window, service_names
from otterscope.api.state import Endpoint, app_state, principal
from otterscope.errors import BadRequest, NotFound, OtterscopeError
from otterscope.query import jaeger_params as jp
from otterscope.query import tempo_params as tp
from otterscope.query import tempo_shapes as ts
from otterscope.query.jaeger_shapes import Row
from otterscope.query.model import MatchedSpan, TraceQLSearch, TraceQuery
from otterscope.query.traceql import parser as traceql
from otterscope.store.base import Store

PROTOBUF = "application/protobuf"
TempoRoute = Callable[[Request, Reader], Any]


def tempo_endpoint(fn: TempoRoute) -> Endpoint:
    """A route that reads with the ``read`` scope, as on ``/api``; its errors (the token's
    first) as Tempo's: plain text, with their status and headers."""

    @wraps(fn)
    async def wrapped(request: Request) -> Response:
        try:
            who = principal(request, "read")
            response: Response = await fn(request, Reader(app_state(request).store, who.tenant))
            return response
        except OtterscopeError as exc:
            return Response(
                exc.message + "\n",
                status_code=exc.status,
                media_type="text/plain",
                headers=error_headers(exc),
            )

    return wrapped


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@tempo_endpoint
async def echo(request: Request, read: Reader) -> Response:
    return Response("echo", media_type="text/plain")


@tempo_endpoint
async def buildinfo(request: Request, read: Reader) -> Response:
    """Prometheus' build information shape, as Tempo answers it; the version is
    otterscope's."""
    return _json(
        {
            "version": __version__,
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        }
    )


# -- trace by id ------------------------------------------------------------------------------


def _trace_rows(
    store: Store, tenant: str, trace_id: bytes, window: tuple[int | None, int | None]
) -> list[dict[str, Any]]:
    """The whole trace when one of its spans starts in the window, else nothing: Tempo
    reads a trace from the blocks of the window and answers all of it that they hold."""
    rows = store.get_trace(tenant, trace_id)
    return rows if in_window(rows, *window) else []


def _trace_body(rows: Sequence[Row], protobuf: bool, v2: bool) -> Response:
    if protobuf:
        trace = ts.trace_proto(rows)
        body = ts.by_id_response_proto(trace) if v2 else trace
        return Response(body, media_type=PROTOBUF)
    return _json({"trace": ts.trace_json(rows)} if v2 else ts.trace_json(rows, v1=True))


async def _trace(request: Request, read: Reader, v2: bool) -> Response:
    trace_id = jp.trace_id(request.path_params["trace_id"])
    window = tp.trace_window(request.query_params)
    rows = await read(_trace_rows, trace_id, window)
    if not rows:
        raise NotFound("trace not found")
    protobuf = PROTOBUF in request.headers.get("accept", "")
    return _trace_body(rows, protobuf, v2)


@tempo_endpoint
async def trace_v1(request: Request, read: Reader) -> Response:
    return await _trace(request, read, v2=False)


@tempo_endpoint
async def trace_v2(request: Request, read: Reader) -> Response:
    return await _trace(request, read, v2=True)


# -- search -----------------------------------------------------------------------------------


def _search_traces(store: Store, tenant: str, query: TraceQuery) -> list[dict[str, Any]]:
    return [ts.trace_metadata(t) for t in store.search_traces(tenant, query).items]


def _hit(span: MatchedSpan) -> ts.SpanHit:
    # Tempo names a spanset span's values by the attribute's bare name or the intrinsic's
    values = tuple((field.name, value) for field, value in span.attributes)
    return ts.SpanHit(span.span_id, span.name, span.start_ns, span.duration_ns, values)


def _traceql_traces(store: Store, tenant: str, search: TraceQLSearch) -> list[dict[str, Any]]:
    return [
        ts.trace_metadata(
            found.summary,
            [ts.spanset(s.matched, [_hit(h) for h in s.spans]) for s in found.spansets],
        )
        for found in store.search_traceql(tenant, search)
    ]


@tempo_endpoint
async def search(request: Request, read: Reader) -> Response:
    found = tp.search(request.query_params)
    query = found.query
    if query is None:
        return _json(ts.search_response([]))
    if found.traceql is None:
        return _json(ts.search_response(await read(_search_traces, query)))
    parsed = traceql.parse(found.traceql or "{}")
    search = TraceQLSearch(parsed, query.start_ns, query.end_ns, query.limit, found.spss)
    return _json(ts.search_response(await read(_traceql_traces, search)))


# -- tags and their values --------------------------------------------------------------------

_ATTRIBUTE_SCOPES = {"span": "item", "resource": "resource"}


def _keys(store: Store, tenant: str, scope: str | None, q: Any) -> list[str]:
    start, end = tp.window_or_default(q)
    return store.attribute_keys(tenant, "traces", "", start, end, tp.tag_limit(q), scope)


def _v1_tags(store: Store, tenant: str, scope: str, q: Any) -> list[str]:
    if scope == "intrinsic":
        return list(ts.INTRINSICS)
    if scope and scope not in _ATTRIBUTE_SCOPES:
        return []
    return _keys(store, tenant, _ATTRIBUTE_SCOPES.get(scope), q)


def _v2_scopes(store: Store, tenant: str, scope: str, q: Any) -> list[dict[str, Any]]:
    out = []
    for name in ("resource", "span"):
        if scope in ("", name):
            tags = _keys(store, tenant, _ATTRIBUTE_SCOPES[name], q)
            if tags:
                out.append({"name": name, "tags": tags})
    if scope in ("", "intrinsic"):
        out.append({"name": "intrinsic", "tags": list(ts.INTRINSICS)})
    return out


@tempo_endpoint
async def tags_v1(request: Request, read: Reader) -> Response:
    q = request.query_params
    names = await read(_v1_tags, tp.scope(q), q)
    return _json({"tagNames": names})


@tempo_endpoint
async def tags_v2(request: Request, read: Reader) -> Response:
    q = request.query_params
    scopes = await read(_v2_scopes, tp.scope(q), q)
    return _json({"scopes": scopes})


def _span_names(store: Store, tenant: str, window: tuple[int, int], limit: int) -> list[str]:
    names: set[str] = set()
    for service in service_names(store, tenant, window):
        names.update(name for name, _, _ in store.operations(tenant, service, *window))
    return sorted(names)[:limit]


# Intrinsics whose values are listed: the TraceQL words of status and kind, the stored span
# and service names.
_KEYWORDS = {
    "status": ts.STATUS_WORDS,
    "span:status": ts.STATUS_WORDS,
    "kind": ts.KIND_WORDS,
    "span:kind": ts.KIND_WORDS,
}
_NAMES = ("name", "span:name", "rootName", "trace:rootName")
_SERVICES = ("rootServiceName", "trace:rootService")


def _tag_values(store: Store, tenant: str, tag: str, q: Any) -> list[dict[str, str]]:
    """Typed values of a tag named as TraceQL names it: ``resource.x``, ``span.x``,
    ``.x`` (either), an intrinsic, or (v1) a bare attribute name."""
    window = tp.window_or_default(q)
    limit = tp.tag_limit(q)
    if tag in _KEYWORDS:
        return ts.tag_values_v2(_KEYWORDS[tag], "keyword")
    if tag in _NAMES:
        return ts.tag_values_v2(_span_names(store, tenant, window, limit))
    if tag in _SERVICES:
        return ts.tag_values_v2(service_names(store, tenant, window)[:limit])
    if tag in ts.INTRINSICS:
        return []
    scope, key = None, tag
    for prefix, named in (("resource.", "resource"), ("span.", "item"), (".", None)):
        if tag.startswith(prefix):
            scope, key = named, tag[len(prefix) :]
            break
    if not key:
        raise BadRequest(f"please provide a valid tagName: {tag[:80]!r}")
    values = store.attribute_values(tenant, "traces", key, "", *window, limit, scope)
    return ts.tag_values_v2(values)


def _tag(request: Request) -> str:
    tag = str(request.path_params["tag"])
    if not tag:
        raise BadRequest("please provide a non-empty tagName")
    return tag


@tempo_endpoint
async def tag_values_v1(request: Request, read: Reader) -> Response:
    found = await read(_tag_values, _tag(request), request.query_params)
    return _json({"tagValues": [v["value"] for v in found]})


@tempo_endpoint
async def tag_values_v2(request: Request, read: Reader) -> Response:
    found = await read(_tag_values, _tag(request), request.query_params)
    return _json({"tagValues": found})


ROUTES = [
    Route("/tempo/api/echo", echo, methods=["GET"]),
    Route("/tempo/api/status/buildinfo", buildinfo, methods=["GET"]),
    Route("/tempo/api/traces/{trace_id}", trace_v1, methods=["GET"]),
    Route("/tempo/api/v2/traces/{trace_id}", trace_v2, methods=["GET"]),
    Route("/tempo/api/search", search, methods=["GET"]),
    Route("/tempo/api/search/tags", tags_v1, methods=["GET"]),
    Route("/tempo/api/v2/search/tags", tags_v2, methods=["GET"]),
    Route("/tempo/api/search/tag/{tag:path}/values", tag_values_v1, methods=["GET"]),
    Route("/tempo/api/v2/search/tag/{tag:path}/values", tag_values_v2, methods=["GET"]),
]
