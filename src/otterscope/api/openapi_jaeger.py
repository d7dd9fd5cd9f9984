"""``/openapi.json`` paths of the Jaeger query API under ``/jaeger`` (v1 and api_v3).

Their answers and errors are Jaeger's shapes, not the native ones: v1 wraps everything in
``{"data", "total", "limit", "offset", "errors"}``, api_v3 errors are
``{"error": {"httpCode", "message"}}``.
"""

from __future__ import annotations

from typing import Any

from otterscope.api.openapi_parts import (
    NANOS,
    STRING,
    UINT,
    Schema,
    _error,
    array,
    json_content,
    obj,
    ok,
    op,
    path_param,
    query,
    ref,
)

_NULLABLE_STRINGS: Schema = {"type": ["array", "null"], "items": STRING}
_ERRS = (400, 401, 403, 500, 503)
_US = {"type": "string", "pattern": "^[0-9]{1,17}$"}
_MS = {"type": "string", "pattern": "^[0-9]{1,13}$"}
_GO_DURATION = {"type": "string", "pattern": r"^(0|([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+)$"}
_RFC3339 = {"type": "string", "format": "date-time"}
_KIND = {"type": "string", "enum": ["", "internal", "server", "client", "producer", "consumer"]}
_TRACE_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{1,32}$"}
_TAG = obj(
    {
        "key": STRING,
        "type": {"type": "string", "enum": ["string", "bool", "int64", "float64", "binary"]},
        "value": {"type": ["string", "boolean", "integer", "number"]},
    }
)
_SPAN = obj(
    {
        "traceID": STRING,
        "spanID": STRING,
        "flags": UINT,
        "operationName": STRING,
        "references": array(
            obj(
                {
                    "refType": {"type": "string", "enum": ["CHILD_OF", "FOLLOWS_FROM"]},
                    "traceID": STRING,
                    "spanID": STRING,
                }
            )
        ),
        "startTime": UINT,
        "duration": UINT,
        "tags": array(_TAG),
        "logs": array(obj({"timestamp": UINT, "fields": array(_TAG)})),
        "processID": STRING,
        "warnings": _NULLABLE_STRINGS,
    },
    required=["traceID", "spanID", "operationName", "references", "startTime", "duration"]
    + ["tags", "logs", "processID", "warnings"],
)
SCHEMAS: dict[str, Schema] = {
    "JaegerTrace": obj(
        {
            "traceID": STRING,
            "spans": array(_SPAN),
            "processes": {
                "type": "object",
                "additionalProperties": obj({"serviceName": STRING, "tags": array(_TAG)}),
            },
            "warnings": _NULLABLE_STRINGS,
        }
    ),
    "JaegerError": obj(
        {
            "data": {"type": "null"},
            "total": UINT,
            "limit": UINT,
            "offset": UINT,
            "errors": array(obj({"code": UINT, "msg": STRING})),
        }
    ),
    "JaegerV3Error": obj({"error": obj({"httpCode": UINT, "message": STRING})}),
}


def _envelope(data: Schema) -> Schema:
    errors = obj({"msg": STRING, "traceID": STRING}, required=["msg"])
    return obj(
        {
            "data": data,
            "total": UINT,
            "limit": UINT,
            "offset": UINT,
            "errors": {"type": ["array", "null"], "items": errors},
        }
    )


def _jaeger_op(
    op_id: str, summary: str, answer: dict[str, Any], error: str, found: bool = False, **kw: Any
) -> dict[str, Any]:
    content = json_content(ref(error))
    errs = {str(s): _error(s, content) for s in (*_ERRS, *((404,) if found else ()))}
    return op(op_id, summary, answer, errs=(), more=errs, **kw)


def _v1(op_id: str, summary: str, data: Schema, found: bool = False, **kw: Any) -> dict[str, Any]:
    answer = ok("Jaeger's envelope.", _envelope(data))
    return {"get": _jaeger_op(op_id, summary, answer, "JaegerError", found, **kw)}


def _v3(op_id: str, summary: str, answer: Schema, found: bool = False, **kw: Any) -> dict[str, Any]:
    return {
        "get": _jaeger_op(op_id, summary, ok("api_v3 JSON.", answer), "JaegerV3Error", found, **kw)
    }


_TRACES = array(ref("JaegerTrace"))
_SEARCH = [
    query("service", STRING, "Service name."),
    query("operation", STRING, "Span name (exact)."),
    query("tags", STRING, 'A JSON object of strings, or logfmt (`error=true k="v"`).'),
    query("tag", STRING, "`key:value`; may repeat."),
    query("minDuration", _GO_DURATION, "Go duration (`100ms`, `1.2s`)."),
    query("maxDuration", _GO_DURATION, "Go duration."),
    query(
        "limit", {"type": "string", "pattern": "^[0-9]{1,9}$"}, "Traces, default 100 (up to 1000)."
    ),
    query("start", _US, "Unix microseconds; default `end` minus 2 days."),
    query("end", _US, "Unix microseconds; default now."),
    query("traceID", _TRACE_ID, "Read these traces instead of searching."),
]
_V3_SEARCH = [
    query("query.serviceName", STRING, "Service name (also `query.service_name`)."),
    query("query.operationName", STRING, "Span name, exact (also `query.operation_name`)."),
    query("query.startTimeMin", _RFC3339, "Required (or `query.start_time_min`)."),
    query("query.startTimeMax", _RFC3339, "Required (or `query.start_time_max`)."),
    query(
        "query.searchDepth", {"type": "string", "pattern": "^[0-9]{1,9}$"}, "Traces, default 100."
    ),
    query("query.durationMin", _GO_DURATION, "Go duration (also `query.duration_min`)."),
    query("query.durationMax", _GO_DURATION, "Go duration (also `query.duration_max`)."),
    query("query.attributes", STRING, "A JSON object of strings."),
]
_OTLP_RESULT = obj({"result": ref("TracesData")})
_SUMMARY = obj(
    {
        "traceId": STRING,
        "rootServiceName": STRING,
        "rootOperationName": STRING,
        "minStartTimeUnixNano": NANOS,
        "maxEndTimeUnixNano": NANOS,
        "spanCount": UINT,
        "errorSpanCount": UINT,
        "orphanSpanCount": UINT,
        "services": array(obj({"name": STRING, "spanCount": UINT, "errorSpanCount": UINT}, [])),
    },
    required=[],
)
_SERVICE = path_param("service", STRING)
_ID = path_param("trace_id", STRING)

JAEGER = {
    "/jaeger/api/services": _v1("jaeger_services", "Service names (Jaeger v1)", array(STRING)),
    "/jaeger/api/services/{service}/operations": _v1(
        "jaeger_service_operations", "A service's span names", array(STRING), params=[_SERVICE]
    ),
    "/jaeger/api/operations": _v1(
        "jaeger_operations",
        "A service's operations with their span kind",
        array(obj({"name": STRING, "spanKind": _KIND})),
        params=[
            query("service", STRING, "Required."),
            query("spanKind", _KIND, "Only this kind."),
        ],
    ),
    "/jaeger/api/traces": _v1(
        "jaeger_search", "Search traces (Jaeger v1)", _TRACES, params=_SEARCH
    ),
    "/jaeger/api/traces/{trace_id}": _v1(
        "jaeger_trace",
        "One trace in Jaeger's UI model",
        _TRACES,
        found=True,
        params=[
            _ID,
            query("start", _US, "Unix µs (or ms, s by size)."),
            query("end", _US, "Unix µs."),
        ],
    ),
    "/jaeger/api/dependencies": _v1(
        "jaeger_dependencies",
        "Calls between services",
        array(obj({"parent": STRING, "child": STRING, "callCount": UINT})),
        params=[
            query("endTs", _MS, "Unix milliseconds; default now."),
            query("lookback", _MS, "Milliseconds; default one day."),
            query("service", STRING, "Only links of this service."),
        ],
    ),
    "/jaeger/api/v3/services": _v3(
        "jaeger_v3_services", "Service names (api_v3)", obj({"services": array(STRING)})
    ),
    "/jaeger/api/v3/operations": _v3(
        "jaeger_v3_operations",
        "A service's operations (api_v3)",
        obj({"operations": array(obj({"name": STRING, "spanKind": STRING}))}),
        params=[
            query("service", STRING, "Required."),
            query("spanKind", STRING, "Only this kind (also `span_kind`)."),
        ],
    ),
    "/jaeger/api/v3/traces": _v3(
        "jaeger_v3_find_traces", "Search traces (api_v3)", _OTLP_RESULT, True, params=_V3_SEARCH
    ),
    "/jaeger/api/v3/traces/{trace_id}": _v3(
        "jaeger_v3_trace",
        "One trace as OTLP/JSON (api_v3)",
        _OTLP_RESULT,
        True,
        params=[
            _ID,
            query("startTime", _RFC3339, "Also `start_time`."),
            query("endTime", _RFC3339, "Also `end_time`."),
        ],
    ),
    "/jaeger/api/v3/trace-summaries": _v3(
        "jaeger_v3_trace_summaries",
        "Search traces, summarised (api_v3)",
        obj({"summaries": array(_SUMMARY)}),
        params=_V3_SEARCH,
    ),
}
