"""``GET /openapi.json``: an OpenAPI 3.1 description of every route on the HTTP port.

The document is a plain dict built once at import; it is public (it holds no data).
``tests/test_openapi.py`` checks it against the registered routes and the real answers, and
fuzzes the server with it. Two conventions shape it:

- JSON API errors share the ``Error`` schema (``{"error": {"code", "message"}}``); errors of
  the OTLP export (``POST /v1/*``) are a ``google.rpc.Status`` in the request's encoding
  (SPEC §2), schema ``RpcStatus``.
- ``attr.<key>`` filters cannot be OpenAPI parameters (their names are a pattern), so the
  operations that take them say so in their description.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otterscope import __version__
from otterscope.api.logs import SEVERITIES
from otterscope.api.openapi_jaeger import JAEGER
from otterscope.api.openapi_jaeger import SCHEMAS as JAEGER_SCHEMAS
from otterscope.api.openapi_parts import (
    _ERRORS,
    ANY_SPAN_ID,
    ANY_TRACE_ID,
    ATTR_TEXT,
    AUTOCOMPLETE,
    CURSOR_OUT,
    DURATION_TEXT,
    FOUND,
    OBJECT,
    PAGE,
    PROTOBUF,
    SCHEMAS,
    SERVICE,
    SPAN_KIND,
    STRING,
    TIME,
    TIME_TEXT,
    TRACE_PATH,
    UINT,
    WINDOW,
    Schema,
    _error,
    array,
    duration,
    json_content,
    limit,
    obj,
    ok,
    op,
    path_param,
    query,
    ref,
    tagged,
)
from otterscope.api.openapi_sections import ALERTS, METRICS, SERVICES, SQL, UI
from otterscope.api.openapi_tempo import SCHEMAS as TEMPO_SCHEMAS
from otterscope.api.openapi_tempo import TEMPO
from otterscope.api.state import api_endpoint
from otterscope.query import log_volume as lv
from otterscope.query import params as p

# -- paths -----------------------------------------------------------------------------------

SPANS = array(ref("Span"))
DELETED = {"description": "Deleted from every later query (nothing to delete is no error)."}


def json_or_protobuf(schema: Schema) -> dict[str, Any]:
    return json_content(schema) | {"application/x-protobuf": {"schema": PROTOBUF}}


def _otlp_export(signal: str, data: str) -> dict[str, Any]:
    answers, status = json_or_protobuf(ref("ExportResponse")), json_or_protobuf(ref("RpcStatus"))
    message = f"Export{data[:-4].replace('Traces', 'Trace')}ServiceRequest"
    encoding = {"type": "string", "enum": ["gzip", "deflate", "zstd", "identity"]}
    key = {
        "name": "Idempotency-Key",
        "in": "header",
        "schema": {"type": "string", "pattern": "^[!-~]{1,256}$"},
        "description": "Names the request (per tenant and signal): once its data is "
        "committed, the same key within `ingest.idempotency_ttl` stores nothing and is "
        "answered 200 with `Idempotency-Replayed: true`; a request whose key is being "
        "processed waits for that outcome.",
    }
    replayed = {
        "description": "`true` when the key was already committed: nothing was stored.",
        "schema": {"type": "string", "enum": ["true"]},
    }
    return op(
        f"export_{signal}",
        f"OTLP/HTTP export of {signal}",
        {
            "description": "Committed; `partialSuccess` says what was rejected.",
            "content": answers,
            "headers": {"Idempotency-Replayed": replayed},
        },
        text=f"An `{message}` as protobuf (`application/x-protobuf`, also `application/protobuf`) "
        "or OTLP/JSON, answered in the same encoding once committed. Errors are a "
        "`google.rpc.Status`, in protobuf for protobuf requests and in JSON otherwise; other "
        "methods on the path are a 405. The path with a trailing slash is served the same. "
        "Needs the `ingest` scope.",
        params=[{"name": "Content-Encoding", "in": "header", "schema": encoding}, key],
        requestBody={"required": True, "content": json_or_protobuf(ref(data))},
        errs=(),
        more={str(s): _error(s, status) for s in (400, 401, 403, 413, 415, 429, 500, 503)},
    )


def _fetch(signal: str, data: str, key: str) -> dict[str, Any]:
    paged = {"properties": {"nextCursor": CURSOR_OUT}, "required": [key, "nextCursor"]}
    answer = ok(f"OTLP/JSON `{data}` and `nextCursor`.", ref(data) | paged)
    text = "Paging with `cursor` returns every item stored before the first page exactly once."
    return {
        "post": op(
            f"fetch_{signal}",
            f"{signal.title()} as OTLP/JSON, oldest first (oteleport compatible, for replay)",
            answer,
            text=text + " The body is at most 64 KiB.",
            requestBody={"required": True, "content": json_content(ref("FetchRequest"))},
        )
    }


WS_TEXT = """A WebSocket (a plain HTTP request is not served). Authenticate with `Authorization:
Bearer <token>` or, from browsers, the subprotocol `otterscope.bearer.<base64url token>` (echoed
back). Needs the `read` scope. Server messages, JSON text sent after commit:
`{"type": "spanAdded", "details": {"newSpans": [[traceIdHex, spanIdHex], ...], "spans": [Span]}}`,
`{"type": "logAdded", "details": {"newLogs": [Log]}}`,
`{"type": "metricAdded", "details": {"newMetrics": [{"name", "service", "type", "points"}]}}`,
and the replies `{"type": "subscribed", "details": {"signals", "service"}}` and
`{"type": "error", "details": {"message"}}`. The client may send
`{"type": "subscribe", "signals": ["traces", "logs", "metrics"], "service": "..."}`. A client that
falls behind is closed with 1013; a refused handshake is an HTTP error or a close with 1008."""
SEARCH_TRACES_TEXT = (
    "`service`, `operation`, `status`, `minDuration`/`maxDuration` and every `attr.*` are "
    "conditions on one and the same span; `minTraceDuration`/`maxTraceDuration` bound the whole "
    "trace." + ATTR_TEXT
)
OTLP_TRACE = {"required": ["resourceSpans"]}
OPERATION = obj({"name": STRING, "spanKind": SPAN_KIND, "spanCount": UINT})
SEVERITY = {"type": "string", "enum": [*SEVERITIES, *(str(n) for n in range(1, 25))]}

INGEST = {
    "/v1/traces": {"post": _otlp_export("traces", "TracesData")},
    "/v1/metrics": {"post": _otlp_export("metrics", "MetricsData")},
    "/v1/logs": {"post": _otlp_export("logs", "LogsData")},
}
TRACES = {
    "/api/traces": {
        "get": op(
            "search_traces",
            "Search traces, newest first",
            ok("Traces.", obj({"traces": array(ref("TraceSummary")), "nextCursor": CURSOR_OUT})),
            text=SEARCH_TRACES_TEXT,
            params=[
                SERVICE,
                query("operation", STRING, "Case-insensitive substring of the span name."),
                query("status", {"enum": ["ok", "error", "unset"]}, "Span status."),
                duration("minDuration", "Shortest span"),
                duration("maxDuration", "Longest span"),
                duration("minTraceDuration", "Shortest trace"),
                duration("maxTraceDuration", "Longest trace"),
                *WINDOW,
                *PAGE,
            ],
        )
    },
    "/api/traces/{traceId}": {
        "parameters": [TRACE_PATH],
        "get": op(
            "get_trace",
            "Every span of one trace",
            ok("Native, or OTLP/JSON.", {"anyOf": [ref("Trace"), ref("TracesData") | OTLP_TRACE]}),
            params=[query("format", {"enum": ["native", "otlp"]}, "Default: native.")],
            errs=FOUND,
        ),
    },
    "/api/services/{service}/operations": {
        "parameters": [path_param("service", STRING)],
        "get": op(
            "service_operations",
            "A service's span names and kinds",
            ok("Operations.", obj({"operations": array(OPERATION)})),
            params=WINDOW,
        ),
    },
}
LOG_FILTERS = [
    SERVICE,
    query("severity", SEVERITY, "Minimum severity, by name (any case) or number."),
    query("q", STRING, "Case-insensitive substring of the body."),
    query("traceId", ANY_TRACE_ID, "Trace id."),
    query("spanId", ANY_SPAN_ID, "Span id."),
    *WINDOW,
]
LOG_VOLUME_TEXT = (
    "How many records `GET /api/logs` would find with the same filters, per time bucket and "
    "severity class (by `severityNumber`: 1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, "
    "17-20 ERROR, 21-24 FATAL; 0 or a number outside 1-24 UNSPECIFIED). Buckets are `step` "
    "long and aligned to the epoch; every bucket from the one holding `start` to the one "
    "holding `end` is answered, empty ones included. `startUnixMs` is the first bucket's "
    "start, `endUnixMs` the window's end. A `step` giving more than "
    f"{lv.MAX_BUCKETS} buckets is a 400." + ATTR_TEXT
)
COUNTS_BY_SEVERITY = obj(dict.fromkeys(lv.ORDER, UINT))
LOG_BUCKET = obj({"timeUnixMs": UINT, "counts": COUNTS_BY_SEVERITY, "total": UINT})
LOG_VOLUME = obj(
    {
        "stepMs": {"type": "integer", "minimum": 1},
        "startUnixMs": UINT,
        "endUnixMs": UINT,
        "buckets": array(LOG_BUCKET) | {"minItems": 1, "maxItems": lv.MAX_BUCKETS},
        "total": UINT,
    }
)
LOGS = {
    "/api/logs": {
        "get": op(
            "search_logs",
            "Search log records, newest first",
            ok("Log records.", obj({"logs": array(ref("Log")), "nextCursor": CURSOR_OUT})),
            text="Every condition applies to the same record." + ATTR_TEXT,
            params=[*LOG_FILTERS, *PAGE],
        )
    },
    "/api/logs/volume": {
        "get": op(
            "log_volume",
            "Log records counted per time bucket and severity (a histogram)",
            ok("Every bucket of the window.", LOG_VOLUME),
            text=LOG_VOLUME_TEXT,
            params=[
                *LOG_FILTERS,
                duration(
                    "step",
                    "Bucket length, a whole number of milliseconds. Default: about "
                    f"{lv.DEFAULT_BUCKETS} buckets over the window, rounded up to 1s, 2s, 5s, "
                    "10s, 15s, 30s, 1m, 2m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h, 12h or 1 day "
                    "(whole days past that)",
                ),
            ],
        )
    },
}
FETCH = {
    "/api/traces/fetch": _fetch("traces", "TracesData", "resourceSpans"),
    "/api/metrics/fetch": _fetch("metrics", "MetricsData", "resourceMetrics"),
    "/api/logs/fetch": _fetch("logs", "LogsData", "resourceLogs"),
}
COMPAT = {
    "/v1/traces": {
        "get": op(
            "list_recent_traces",
            "Recent traces with their spans (otel-worker compatible)",
            ok("Traces by their last span's end, newest first.", array(ref("Trace"))),
            params=[limit(20), query("time", TIME, f"Traces that ended by then. {TIME_TEXT}")],
        )
    },
    "/v1/traces/{traceId}": {
        "parameters": [TRACE_PATH],
        "get": op("get_trace_compat", "One trace", ok("The trace.", ref("Trace")), errs=FOUND),
        "delete": op("delete_trace", "Delete a trace (`admin`)", DELETED, status="204"),
    },
    "/v1/traces/{traceId}/spans": {
        "parameters": [TRACE_PATH],
        "get": op("get_trace_spans", "A trace's spans", ok("Spans.", SPANS), errs=FOUND),
    },
    "/v1/traces/{traceId}/spans/{spanId}": {
        "parameters": [TRACE_PATH, path_param("spanId", ANY_SPAN_ID)],
        "get": op("get_span", "One span", ok("The span.", ref("Span")), errs=FOUND),
        "delete": op("delete_span", "Delete a span (`admin`)", DELETED, status="204"),
    },
    "/spans": {
        "get": op(
            "recent_spans",
            "The most recent spans (storage-engine compatible)",
            ok("Spans, most recent first.", SPANS),
            params=[limit()],
        )
    },
}
ATTRIBUTES = {
    "/api/attributes": {
        "get": op(
            "attribute_keys",
            "Attribute keys in use, most used first",
            ok("Keys.", obj({"keys": array(STRING)})),
            params=AUTOCOMPLETE,
        )
    },
    "/api/attributes/{key}/values": {
        "parameters": [path_param("key", STRING)],
        "get": op(
            "attribute_values",
            "Values of one attribute key, most used first",
            ok("Typed values.", obj({"values": array(ref("AttributeValue"))})),
            params=AUTOCOMPLETE,
        ),
    },
}
LIVE = {
    "/api/ws": {
        "get": op(
            "live_feed",
            "Live feed (WebSocket)",
            {"description": "Switching Protocols: the WebSocket is open."},
            text=WS_TEXT,
            status="101",
            errs=(400, 401, 403, 503),
        )
    }
}
HEALTH = {
    "/health": {
        "get": op(
            "health",
            "Health; counters need a `read` token",
            ok("Health.", ref("Health")),
            security=[{}, {"bearerAuth": []}],
            errs=(400, 403, 500),
        )
    },
    "/ready": {
        "get": op(
            "ready",
            "Whether the store is open and the receivers listen",
            ok("Ready.", ref("Ready")),
            security=[],
            errs=(403,),
            more={"503": ok("Starting, draining, or the disk is full.", ref("Ready"))},
        )
    },
    "/metrics": {
        "get": op(
            "self_metrics",
            "Prometheus text exposition (format 0.0.4), or OpenMetrics 1.0 when `Accept` "
            "prefers it",
            {
                "description": "Metrics.",
                "content": {
                    "text/plain": {"schema": STRING},
                    "application/openmetrics-text": {"schema": STRING},
                },
            },
        )
    },
    "/openapi.json": {
        "get": op(
            "openapi", "This document", ok("OpenAPI 3.1.", OBJECT), security=[], errs=(400, 403)
        )
    },
}
_SECTIONS: dict[str, dict[str, Any]] = {
    "ingest": INGEST,
    "traces": TRACES,
    "logs": LOGS,
    "fetch": FETCH,
    "compat": COMPAT,
    "attributes": ATTRIBUTES,
    "metrics": METRICS,
    "services": SERVICES,
    "jaeger": JAEGER,
    "tempo": TEMPO,
    "sql": SQL,
    "alerts": ALERTS,
    "live": LIVE,
    "health": HEALTH,
    "ui": UI,
}


def _paths() -> dict[str, Any]:
    """Every section's paths, tagged; a path in two sections (``/v1/traces``) is merged."""
    paths: dict[str, Any] = {}
    for tag, section in _SECTIONS.items():
        for path, item in tagged(tag, section).items():
            paths[path] = paths.get(path, {}) | item
    return paths


def _components() -> dict[str, Any]:
    headers = {
        "WWWAuthenticate": ('`Bearer realm="otterscope"`.', STRING),
        "Allow": ("The methods the path takes.", STRING),
        "RetryAfter": ("Seconds to wait before retrying.", {"type": "integer", "minimum": 1}),
    }
    json_error = json_content(ref("Error"))
    return {
        "schemas": SCHEMAS | JAEGER_SCHEMAS | TEMPO_SCHEMAS,
        "responses": {name: _error(status, json_error) for status, (name, _) in _ERRORS.items()},
        "headers": {k: {"description": d, "schema": s} for k, (d, s) in headers.items()},
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "A configured token; anonymous mode (no token configured) needs none.",
            }
        },
    }


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "otterscope",
        "version": __version__,
        "description": "OTLP/HTTP ingest and the JSON query API of otterscope. Times in query "
        f"strings: {TIME_TEXT} Durations: {DURATION_TEXT} An unknown query parameter is a 400. "
        'Errors are `{"error": {"code", "message"}}` (a `google.rpc.Status` on `POST /v1/*`); '
        "a method a path does not take is a 405 with `Allow`, an unknown path a 404. Browser "
        "preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) are answered "
        "204 on every path.",
    },
    "security": [{"bearerAuth": []}],
    "tags": [{"name": tag} for tag in _SECTIONS],
    "paths": _paths(),
    "components": _components(),
}
_BODY = orjson.dumps(DOCUMENT)


@api_endpoint
async def openapi(request: Request) -> Response:
    p.check_known(request.query_params, set(), attributes=False)
    return Response(_BODY, media_type="application/json")


ROUTES = [Route("/openapi.json", openapi, methods=["GET"])]
