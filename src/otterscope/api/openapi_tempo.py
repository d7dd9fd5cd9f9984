"""``/openapi.json`` paths of Tempo's HTTP API under ``/tempo``.

The answers are Tempo's ``tempopb`` messages (``pkg/tempopb/tempo.proto`` in grafana/tempo)
in protobuf's JSON mapping, a trace also in protobuf; errors are plain text, as Tempo's.
"""

from __future__ import annotations

from typing import Any

from otterscope.api.openapi_parts import (
    STRING,
    UINT,
    Schema,
    _error,
    array,
    obj,
    ok,
    op,
    path_param,
    query,
    ref,
)

_ERRS = (400, 401, 403, 500, 503)
_SECONDS = {"type": "string", "pattern": "^[0-9]{1,10}$"}
_COUNT = {"type": "string", "pattern": "^[0-9]{1,10}$"}
_GO_DURATION = {"type": "string", "pattern": r"^(0|([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+)$"}
_U64 = {"type": "string", "pattern": "^[0-9]{1,20}$"}
_WINDOW = [
    query("start", _SECONDS, "Unix seconds."),
    query("end", _SECONDS, "Unix seconds (its whole second included)."),
]
_TAG_WINDOW = [
    *_WINDOW,
    query("limit", _COUNT, "At most this many (up to 1000)."),
    query("q", STRING, "TraceQL; accepted, not yet narrowing the list."),
]
_SPAN = obj(
    {
        "spanID": STRING,
        "name": STRING,
        "startTimeUnixNano": _U64,
        "durationNanos": _U64,
        "attributes": array({"type": "object"}),
    },
    required=["spanID"],
)
# protobuf JSON leaves out zero values: no field is always there
_SPANSET = obj({"spans": array(_SPAN), "matched": UINT}, required=[])
SCHEMAS: dict[str, Schema] = {
    "TempoSearchResponse": obj(
        {
            "traces": array(
                obj(
                    {
                        "traceID": STRING,
                        "rootServiceName": STRING,
                        "rootTraceName": STRING,
                        "startTimeUnixNano": _U64,
                        "durationMs": UINT,
                        "spanSet": _SPANSET,
                        "spanSets": array(_SPANSET),
                    },
                    required=["traceID"],
                )
            ),
            "metrics": {"type": "object", "additionalProperties": False},
        }
    ),
    "TempoTrace": obj({"resourceSpans": array({"type": "object"})}),
    # v1's JSON names the list as the message's old field did (Tempo's MarshalToJSONV1)
    "TempoTraceV1": obj({"batches": array({"type": "object"})}),
}
_TRACE_ANSWER = {
    "description": "`tempopb.Trace`: protobuf when `Accept` names `application/protobuf`, "
    "else JSON (the list named `batches`, as Tempo's v1 JSON names it).",
    "content": {
        "application/json": {"schema": ref("TempoTraceV1")},
        "application/protobuf": {"schema": {"type": "string", "format": "binary"}},
    },
}
_V2_TRACE_ANSWER = {
    "description": "`tempopb.TraceByIDResponse`: protobuf when `Accept` names "
    "`application/protobuf`, else JSON.",
    "content": {
        "application/json": {"schema": obj({"trace": ref("TempoTrace")})},
        "application/protobuf": {"schema": {"type": "string", "format": "binary"}},
    },
}


def _get(
    op_id: str, summary: str, answer: dict[str, Any], found: bool = False, **kw: Any
) -> dict[str, Any]:
    text = {"text/plain": {"schema": STRING}}
    errs = {str(s): _error(s, text) for s in (*_ERRS, *((404,) if found else ()))}
    return {"get": op(op_id, summary, answer, errs=(), more=errs, **kw)}


_TRACE_ID = path_param("trace_id", {"type": "string", "pattern": "^[0-9a-fA-F]{1,32}$"})
_TAG = path_param("tag", STRING)

TEMPO: dict[str, Any] = {
    "/tempo/api/echo": _get(
        "tempo_echo",
        "Grafana's health check",
        {"description": "`echo`.", "content": {"text/plain": {"schema": STRING}}},
    ),
    "/tempo/api/status/buildinfo": _get(
        "tempo_buildinfo",
        "Build information",
        ok(
            "Prometheus' build information shape.",
            obj({k: STRING for k in ("version", "revision", "branch")})
            | {"additionalProperties": STRING},
        ),
    ),
    "/tempo/api/traces/{trace_id}": _get(
        "tempo_trace", "One trace (Tempo v1)", _TRACE_ANSWER, True, params=[_TRACE_ID, *_WINDOW]
    ),
    "/tempo/api/v2/traces/{trace_id}": _get(
        "tempo_trace_v2",
        "One trace (Tempo v2)",
        _V2_TRACE_ANSWER,
        True,
        params=[_TRACE_ID, *_WINDOW],
    ),
    "/tempo/api/search": _get(
        "tempo_search",
        "Search traces (Tempo)",
        ok("`tempopb.SearchResponse`.", ref("TempoSearchResponse")),
        params=[
            query("q", STRING, "TraceQL; `{}` for every trace (others: not yet)."),
            query("tags", STRING, 'logfmt (`service.name=x name="GET /"`); not with `q`.'),
            query("minDuration", _GO_DURATION, "Go duration."),
            query("maxDuration", _GO_DURATION, "Go duration."),
            query("limit", _COUNT, "Traces, default 20 (up to 1000)."),
            query("spss", _COUNT, "Spans per spanset, default 3."),
            *_WINDOW,
        ],
    ),
    "/tempo/api/search/tags": _get(
        "tempo_tags",
        "Tag names (Tempo v1)",
        ok("`tempopb.SearchTagsResponse`.", obj({"tagNames": array(STRING)})),
        params=[query("scope", STRING, "resource, span, intrinsic, or none."), *_TAG_WINDOW],
    ),
    "/tempo/api/v2/search/tags": _get(
        "tempo_tags_v2",
        "Tag names by scope (Tempo v2)",
        ok(
            "`tempopb.SearchTagsV2Response`.",
            obj({"scopes": array(obj({"name": STRING, "tags": array(STRING)}, ["name"]))}),
        ),
        params=[query("scope", STRING, "resource, span, intrinsic, or none."), *_TAG_WINDOW],
    ),
    "/tempo/api/search/tag/{tag}/values": _get(
        "tempo_tag_values",
        "Values of a tag (Tempo v1)",
        ok("`tempopb.SearchTagValuesResponse`.", obj({"tagValues": array(STRING)})),
        params=[_TAG, *_TAG_WINDOW],
    ),
    "/tempo/api/v2/search/tag/{tag}/values": _get(
        "tempo_tag_values_v2",
        "Typed values of a scoped tag (Tempo v2)",
        ok(
            "`tempopb.SearchTagValuesV2Response`.",
            obj({"tagValues": array(obj({"type": STRING, "value": STRING}))}),
        ),
        params=[_TAG, *_TAG_WINDOW],
    ),
}
