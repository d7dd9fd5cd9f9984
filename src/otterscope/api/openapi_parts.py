"""The building blocks of ``/openapi.json``: schema helpers, the shared schemas, the
parameters and the error responses. ``openapi`` assembles the paths from them."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
CLOSED: Schema = {"additionalProperties": False}

# -- schema helpers --------------------------------------------------------------------------


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    """A closed object; every property is required unless ``required`` says otherwise."""
    need = list(properties) if required is None else required
    return {"type": "object", "properties": properties, "required": need} | CLOSED


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def string(pattern: str, description: str | None = None) -> Schema:
    schema: Schema = {"type": "string", "pattern": pattern}
    return schema | {"description": description} if description else schema


def enum_or_int(*names: str) -> Schema:
    described = "OTLP enum name; a value this version does not know stays an integer."
    return {"anyOf": [{"type": "string", "enum": list(names)}, INT], "description": described}


STRING: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
UINT: Schema = {"type": "integer", "minimum": 0}
NUMBER: Schema = {"type": "number"}
OBJECT: Schema = {"type": "object"}
INT64: Schema = {"type": ["string", "integer"], "description": "OTLP/JSON int64: usually a string."}
NANOS = string("^[0-9]+$", "Unix nanoseconds as a decimal string.")
TRACE_ID, SPAN_ID = string("^[0-9a-f]{32}$"), string("^[0-9a-f]{16}$")
ANY_TRACE_ID = string("^([0-9a-fA-F]{32}|[0-9a-fA-F]{16})$", "32 hex digits, or 16 (zero-padded).")
ANY_SPAN_ID = string("^[0-9a-fA-F]{16}$", "16 hex characters.")
ATTRS: Schema = {"type": "object", "additionalProperties": ref("AttributeValue")}
CURSOR_OUT: Schema = {"type": ["string", "null"], "description": "null on the last page."}
HEX = string("^[0-9a-f]*$")
DROPPABLE = {"attributes": ATTRS, "droppedAttributesCount": UINT}
LINK = obj({"traceId": HEX, "spanId": HEX, "traceState": STRING, **DROPPABLE, "flags": UINT})
COUNTS = obj({"traces": UINT, "logs": UINT, "metrics": UINT})
LIMIT: Schema = {"type": "integer", "minimum": 1, "maximum": 1000}
TIME: Schema = {"anyOf": [{"type": "string", "format": "date-time"}, string("^[0-9]+$")]}
_NUM = r"([0-9]+(\.[0-9]*)?|\.[0-9]+)"
DURATION = string(f"^({_NUM}|({_NUM}(ns|us|µs|ms|s|m|h))+)$")
KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
SPAN_KIND = enum_or_int(*(f"SPAN_KIND_{k}" for k in KINDS))
STATUS_CODE = enum_or_int("STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR")
PROTOBUF: Schema = {"type": "string", "contentMediaType": "application/x-protobuf"}

TIME_TEXT = (
    "RFC 3339 (`2024-05-01T12:00:00Z`) or a unix integer whose unit follows from its size: "
    "< 10^11 seconds, < 10^14 milliseconds, < 10^17 microseconds, else nanoseconds; "
    "from 1970 to 2262."
)
DURATION_TEXT = "Go syntax (`250ms`, `1.5s`, `2m`, `1h30m`) or a plain number of milliseconds."
ATTR_TEXT = (
    "\n\n`attr.<key>=<value>` (repeatable): the item's or its resource's attribute `<key>` "
    "equals `<value>`, compared typed (`attr.http.response.status_code=500` matches the integer "
    '500 and the string "500"). OpenAPI cannot list parameters whose name is a pattern, so '
    "these are described here only. Any other unknown parameter is a 400."
)


def _otlp_data(name: str, key: str) -> Schema:
    described = f"OTLP/JSON `{name}`: hex ids, 64-bit integers as strings, enums as integers."
    return {"type": "object", "description": described, "properties": {key: array(OBJECT)}}


QUEUE_FIELDS = ("rejectedItems", "queueItems", "queueBytes", "budgetBytes")
SCHEMAS: dict[str, Schema] = {
    "Error": obj({"error": obj({"code": string("^[a-z][a-z0-9_]*$"), "message": STRING})}),
    "RpcStatus": {
        "type": "object",
        "description": "`google.rpc.Status` as OTLP/JSON; `code` is a gRPC status code.",
        "properties": {"code": INT, "message": STRING, "details": array(OBJECT)},
    },
    "AttributeValue": {
        "description": "A JSON value of the attribute's type: bool, number (integers beyond "
        "±2^53 as decimal strings), string, bytes as base64, array, kvlist as an object."
    },
    "Span": obj(
        {
            "traceId": TRACE_ID,
            "spanId": SPAN_ID,
            "parentSpanId": string("^([0-9a-f]{16})?$"),
            "traceState": STRING,
            "flags": UINT,
            "service": STRING,
            "name": STRING,
            "kind": SPAN_KIND,
            "startTimeUnixNano": NANOS,
            "endTimeUnixNano": NANOS,
            "durationMs": NUMBER,
            "status": obj({"code": STATUS_CODE, "message": STRING}),
            "attributes": ATTRS,
            "resource": ATTRS,
            "scope": obj({"name": STRING, "version": STRING, "attributes": ATTRS}),
            "events": array(obj({"timeUnixNano": NANOS, "name": STRING, **DROPPABLE})),
            "links": array(LINK),
            "droppedAttributesCount": UINT,
            "droppedEventsCount": UINT,
            "droppedLinksCount": UINT,
        }
    ),
    "Log": obj(
        {
            "timeUnixNano": NANOS,
            "observedTimeUnixNano": NANOS,
            "service": STRING,
            "severityNumber": INT,
            "severityText": STRING,
            "body": ref("AttributeValue"),
            "eventName": STRING,
            "attributes": ATTRS,
            "resource": ATTRS,
            "scope": obj({"name": STRING, "version": STRING}),
            "traceId": string("^([0-9a-f]{32})?$"),
            "spanId": string("^([0-9a-f]{16})?$"),
            "flags": UINT,
        }
    ),
    "TraceSummary": obj(
        {
            "traceId": TRACE_ID,
            "rootService": STRING,
            "rootName": STRING,
            "rootSpanMissing": {"type": "boolean"},
            "startTimeUnixNano": NANOS,
            "durationMs": NUMBER,
            "spanCount": UINT,
            "errorCount": UINT,
            "services": array(STRING),
        }
    ),
    "Trace": obj({"traceId": TRACE_ID, "spans": array(ref("Span"))}),
    "TracesData": _otlp_data("TracesData", "resourceSpans"),
    "LogsData": _otlp_data("LogsData", "resourceLogs"),
    "MetricsData": _otlp_data("MetricsData", "resourceMetrics"),
    "FetchRequest": obj(
        {
            "startTimeUnixNano": {
                "anyOf": [*TIME["anyOf"], UINT],
                "description": "Unix nanoseconds (string or integer, whatever its size) or RFC 3339.",
            },
            "endTimeUnixNano": {"anyOf": [*TIME["anyOf"], UINT, {"type": "null"}]},
            "limit": {"anyOf": [LIMIT, string("^(1000|[1-9][0-9]{0,2})$")], "default": 100},
            "cursor": {"type": ["string", "null"]},
        },
        required=["startTimeUnixNano"],
    ),
    "ExportResponse": {
        "type": "object",
        "description": "`Export*ServiceResponse`: empty, or `partialSuccess` when items were rejected.",
        "properties": {
            "partialSuccess": {
                "type": "object",
                "properties": {f"rejected{n}": INT64 for n in ("Spans", "LogRecords", "DataPoints")}
                | {"errorMessage": STRING},
            }
        },
    },
    "Health": obj(
        {
            "status": {"type": "string", "enum": ["ok", "starting", "draining", "disk_full"]},
            "version": STRING,
            "uptimeSeconds": NUMBER,
            "tenant": STRING,
            "ingest": obj(
                {
                    "receivedItems": COUNTS,
                    **dict.fromkeys(QUEUE_FIELDS, UINT),
                    "lastCommitSeconds": NUMBER,
                }
            ),
            "store": obj(
                {
                    "diskBytes": UINT,
                    "hotRows": COUNTS,
                    "sealedFiles": UINT,
                    "lastIngestSeq": INT,
                    # Why writes are refused while the disk is full; null otherwise.
                    "diskFull": {"type": ["string", "null"]},
                }
            ),
        },
        # The rest needs a `read` token (or anonymous mode); the queue fields and `store`
        # are server-wide, for an `admin` token only.
        required=["status"],
    ),
    "Ready": obj(
        {
            "status": {"type": "string", "enum": ["ready", "not ready"]},
            # With "not ready": starting, draining, or why the disk is full.
            "reason": STRING,
        },
        required=["status"],
    ),
}

# -- parameters ------------------------------------------------------------------------------


def query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def path_param(name: str, schema: Schema) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def limit(default: int = 100) -> dict[str, Any]:
    return query("limit", LIMIT | {"default": default}, f"1..1000, default {default}.")


def duration(name: str, what: str) -> dict[str, Any]:
    return query(name, DURATION, f"{what}. {DURATION_TEXT}")


WINDOW = [
    query("start", TIME, f"{TIME_TEXT} Default: `end` minus 24 hours."),
    query("end", TIME, f"{TIME_TEXT} Default: now."),
]
PAGE = [limit(), query("cursor", STRING, "The previous page's `nextCursor`.")]
SERVICE = query("service", STRING, "Service name (`service.name` of the resource).")
TRACE_PATH = path_param("traceId", ANY_TRACE_ID)
AUTOCOMPLETE = [
    query("signal", {"enum": ["traces", "logs", "metrics"], "default": "traces"}, "Signal."),
    query("prefix", STRING, "Only keys (values: whose text) start with this."),
    *WINDOW,
    limit(),
]

# -- responses -------------------------------------------------------------------------------

_ERRORS = {
    400: ("BadRequest", "A parameter or the body is invalid (`bad_request`)."),
    401: ("Unauthorized", "Missing or unknown token (`unauthorized`)."),
    403: ("Forbidden", "Token without the needed scope, or a refused `Host` / `Origin`."),
    404: ("NotFound", "Nothing with that id (`not_found`)."),
    405: ("MethodNotAllowed", "The path does not take this method (`method_not_allowed`)."),
    413: ("PayloadTooLarge", "Body over the limit after decompression (`payload_too_large`)."),
    415: ("UnsupportedMediaType", "Content type or encoding not supported."),
    429: (
        "Overloaded",
        "The ingest memory budget is spent, or `sql.max_concurrent` SQL queries are running "
        "(`overloaded`); retry after `Retry-After`.",
    ),
    500: ("InternalError", "Unexpected server error (`internal_error`)."),
    503: ("Unavailable", "Draining, the store cannot commit, or a query timed out."),
}
_HEADERS = {401: "WWW-Authenticate", 405: "Allow", 429: "Retry-After", 503: "Retry-After"}
READ = (400, 401, 403, 500, 503)
FOUND = (*READ, 404)  # the errors of a read by id


def _error(status: int, content: dict[str, Any]) -> dict[str, Any]:
    response = {"description": _ERRORS[status][1], "content": content}
    if status in _HEADERS:
        name = _HEADERS[status]
        response["headers"] = {name: {"$ref": f"#/components/headers/{name.replace('-', '')}"}}
    return response


def errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{_ERRORS[s][0]}"} for s in statuses}


def json_content(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def ok(description: str, schema: Schema) -> dict[str, Any]:
    return {"description": description, "content": json_content(schema)}


def op(
    op_id: str,
    summary: str,
    answer: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    errs: tuple[int, ...] = READ,
    text: str | None = None,
    status: str = "200",
    more: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One operation: its answer, the shared error responses ``errs`` and ``more``."""
    out: dict[str, Any] = {"operationId": op_id, "summary": summary}
    out |= {"description": text} if text else {}
    out |= {"parameters": params} if params else {}
    return out | extra | {"responses": {status: answer, **errors(*errs), **(more or {})}}


def tagged(tag: str, paths: dict[str, Any]) -> dict[str, Any]:
    """``paths`` with ``tag`` on each of their operations."""
    for item in paths.values():
        for key, operation in item.items():
            if key != "parameters":
                operation["tags"] = [tag]
    return paths
