"""What stored span and log rows look like to the outside world.

This module owns every conversion from a stored row (column name -> value, as a store hands
it out; see ``otterscope.otlp.schema`` and the encodings ``otterscope.otlp.rows`` writes)
to an answer:

- the native JSON shapes of SPEC §5: ``span_to_api`` and ``log_to_api``;
- OTLP protobuf messages rebuilt from rows (``spans_to_otlp`` -> ``TracesData``,
  ``logs_to_otlp`` -> ``LogsData``), rows grouped back under their resource and scope;
- OTLP/JSON (``spans_to_otlp_json``, ``logs_to_otlp_json``): the protobuf JSON mapping
  (lowerCamelCase, 64-bit integers as strings, enums as integers, ``"NaN"``/``"Infinity"``
  for non-finite doubles, bytes as base64) with trace and span ids as lowercase hex, as the
  OTLP/JSON encoding requires.

It knows nothing of any store and does no I/O.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from otterscope.otlp.anyvalue import from_json, to_api

Row = Mapping[str, Any]

__all__ = [
    "log_to_api",
    "logs_to_otlp",
    "logs_to_otlp_json",
    "span_to_api",
    "spans_to_otlp",
    "spans_to_otlp_json",
]

SPAN_KINDS = (
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
)
STATUS_CODES = ("STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR")

# The columns that tell one resource (and then one scope) from another when rows are grouped
# back into OTLP. JSON columns are compared as stored text: rows from one request carry the
# very same text, so they always regroup together.
_RESOURCE_KEY = (
    "resource_attributes",
    "resource_dropped_attributes_count",
    "resource_schema_url",
    "resource_entity_refs",
)
_SCOPE_KEY = (
    "scope_name",
    "scope_version",
    "scope_attributes",
    "scope_dropped_attributes_count",
    "scope_schema_url",
)


# -- small helpers ---------------------------------------------------------------------------


def _loads(text: Any, default: Any) -> Any:
    """A JSON column's value; ``default`` when the column is NULL."""
    if text is None:
        return default
    return orjson.loads(text)


def _enum_name(names: tuple[str, ...], value: Any) -> str | int:
    """The OTLP enum name; a value this version does not know stays a number (as in JSON)."""
    n = int(value or 0)
    return names[n] if 0 <= n < len(names) else n


def _hex(value: Any) -> str:
    return bytes(value).hex() if value else ""


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def _str(value: Any) -> str:
    return str(value) if value is not None else ""


def _attrs_api(attrs: Mapping[str, Any]) -> dict[str, Any]:
    # Per key, so a one-key attribute set is never mistaken for a tagged value.
    return {k: to_api(v) for k, v in attrs.items()}


def _column_attrs_api(text: Any) -> dict[str, Any]:
    return _attrs_api(_loads(text, {}))


# -- native API shapes (SPEC §5) -------------------------------------------------------------


def spans_to_api(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """Stored spans as native API ``Span``s. The spans of one trace share a few resources
    and scopes: each distinct one is decoded once and its dict shared by every span."""
    shared: dict[Any, dict[str, Any]] = {}
    return [span_to_api(row, shared) for row in rows]


def _shared_attrs_api(text: Any, shared: dict[Any, dict[str, Any]] | None) -> dict[str, Any]:
    if shared is None or not isinstance(text, (str, bytes)):
        return _column_attrs_api(text)
    found = shared.get(text)
    if found is None:
        found = shared[text] = _column_attrs_api(text)
    return found


def span_to_api(row: Row, shared: dict[Any, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One stored span as the native API ``Span``; ``shared``: see :func:`spans_to_api`."""
    start = _int(row["start_time_unix_nano"])
    end = _int(row["end_time_unix_nano"])
    duration = row.get("duration_nano")
    if duration is None:
        duration = max(end - start, 0)
    events = [
        {
            "timeUnixNano": str(_int(ev.get("timeUnixNano"))),
            "name": _str(ev.get("name")),
            "attributes": _attrs_api(ev.get("attributes") or {}),
            "droppedAttributesCount": _int(ev.get("droppedAttributesCount")),
        }
        for ev in _loads(row.get("events"), [])
    ]
    links = [
        {
            "traceId": _str(lk.get("traceId")),
            "spanId": _str(lk.get("spanId")),
            "traceState": _str(lk.get("traceState")),
            "attributes": _attrs_api(lk.get("attributes") or {}),
            "droppedAttributesCount": _int(lk.get("droppedAttributesCount")),
            "flags": _int(lk.get("flags")),
        }
        for lk in _loads(row.get("links"), [])
    ]
    return {
        "traceId": _hex(row["trace_id"]),
        "spanId": _hex(row["span_id"]),
        "parentSpanId": _hex(row.get("parent_span_id")),
        "traceState": _str(row.get("trace_state")),
        "flags": _int(row.get("flags")),
        "service": _str(row.get("service_name")),
        "name": _str(row.get("name")),
        "kind": _enum_name(SPAN_KINDS, row.get("kind")),
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "durationMs": int(duration) / 1_000_000,
        "status": {
            "code": _enum_name(STATUS_CODES, row.get("status_code")),
            "message": _str(row.get("status_message")),
        },
        "attributes": _column_attrs_api(row.get("attributes")),
        "resource": _shared_attrs_api(row.get("resource_attributes"), shared),
        "scope": {
            "name": _str(row.get("scope_name")),
            "version": _str(row.get("scope_version")),
            "attributes": _shared_attrs_api(row.get("scope_attributes"), shared),
        },
        "events": events,
        "links": links,
        "droppedAttributesCount": _int(row.get("dropped_attributes_count")),
        "droppedEventsCount": _int(row.get("dropped_events_count")),
        "droppedLinksCount": _int(row.get("dropped_links_count")),
    }


def log_to_api(row: Row) -> dict[str, Any]:
    """One stored log record as the native API log shape."""
    body = _loads(row.get("body"), None)
    return {
        "timeUnixNano": str(_int(row.get("time_unix_nano"))),
        "observedTimeUnixNano": str(_int(row.get("observed_time_unix_nano"))),
        "service": _str(row.get("service_name")),
        "severityNumber": _int(row.get("severity_number")),
        "severityText": _str(row.get("severity_text")),
        "body": to_api(body),
        "eventName": _str(row.get("event_name")),
        "attributes": _column_attrs_api(row.get("attributes")),
        "resource": _column_attrs_api(row.get("resource_attributes")),
        "scope": {"name": _str(row.get("scope_name")), "version": _str(row.get("scope_version"))},
        "traceId": _hex(row.get("trace_id")),
        "spanId": _hex(row.get("span_id")),
        "flags": _int(row.get("flags")),
    }


# -- OTLP protobuf -------------------------------------------------------------------------


def _fill_attrs(
    target: RepeatedCompositeFieldContainer[KeyValue], attrs: Mapping[str, Any]
) -> None:
    for key, value in attrs.items():
        kv = target.add(key=key)
        kv.value.SetInParent()  # a KeyValue always has its value, even an empty one
        from_json(value, kv.value)


def _fill_resource(resource: Resource, row: Row) -> None:
    resource.SetInParent()
    _fill_attrs(resource.attributes, _loads(row.get("resource_attributes"), {}))
    resource.dropped_attributes_count = _int(row.get("resource_dropped_attributes_count"))
    for ref in _loads(row.get("resource_entity_refs"), []):
        resource.entity_refs.add(
            schema_url=_str(ref.get("schemaUrl")),
            type=_str(ref.get("type")),
            id_keys=ref.get("idKeys") or [],
            description_keys=ref.get("descriptionKeys") or [],
        )


def _fill_scope(scope: InstrumentationScope, row: Row) -> None:
    scope.SetInParent()
    scope.name = _str(row.get("scope_name"))
    scope.version = _str(row.get("scope_version"))
    _fill_attrs(scope.attributes, _loads(row.get("scope_attributes"), {}))
    scope.dropped_attributes_count = _int(row.get("scope_dropped_attributes_count"))


_Scopes = dict[tuple[Any, ...], tuple[Row, list[Row]]]


def _group(rows: Iterable[Row]) -> list[tuple[Row, list[tuple[Row, list[Row]]]]]:
    """Rows grouped by resource, then by scope, each group in order of first appearance.

    Every group comes with its first row, which carries the resource and scope columns.
    """
    resources: dict[tuple[Any, ...], tuple[Row, _Scopes]] = {}
    for row in rows:
        rkey = tuple(row.get(c) for c in _RESOURCE_KEY)
        entry = resources.get(rkey)
        if entry is None:
            entry = resources[rkey] = (row, {})
        scopes = entry[1]
        skey = tuple(row.get(c) for c in _SCOPE_KEY)
        group = scopes.get(skey)
        if group is None:
            group = scopes[skey] = (row, [])
        group[1].append(row)
    return [(first, list(scopes.values())) for first, scopes in resources.values()]


def _fill_span(span: Span, row: Row) -> None:
    span.trace_id = bytes(row["trace_id"])
    span.span_id = bytes(row["span_id"])
    span.parent_span_id = bytes(row.get("parent_span_id") or b"")
    span.trace_state = _str(row.get("trace_state"))
    span.flags = _int(row.get("flags"))
    span.name = _str(row.get("name"))
    span.kind = Span.SpanKind.ValueType(_int(row.get("kind")))
    span.start_time_unix_nano = _int(row.get("start_time_unix_nano"))
    span.end_time_unix_nano = _int(row.get("end_time_unix_nano"))
    _fill_attrs(span.attributes, _loads(row.get("attributes"), {}))
    span.dropped_attributes_count = _int(row.get("dropped_attributes_count"))
    for ev in _loads(row.get("events"), []):
        event = span.events.add(
            time_unix_nano=_int(ev.get("timeUnixNano")),
            name=_str(ev.get("name")),
            dropped_attributes_count=_int(ev.get("droppedAttributesCount")),
        )
        _fill_attrs(event.attributes, ev.get("attributes") or {})
    span.dropped_events_count = _int(row.get("dropped_events_count"))
    for lk in _loads(row.get("links"), []):
        link = span.links.add(
            trace_id=bytes.fromhex(_str(lk.get("traceId"))),
            span_id=bytes.fromhex(_str(lk.get("spanId"))),
            trace_state=_str(lk.get("traceState")),
            dropped_attributes_count=_int(lk.get("droppedAttributesCount")),
            flags=_int(lk.get("flags")),
        )
        _fill_attrs(link.attributes, lk.get("attributes") or {})
    span.dropped_links_count = _int(row.get("dropped_links_count"))
    span.status.SetInParent()
    span.status.code = Status.StatusCode.ValueType(_int(row.get("status_code")))
    span.status.message = _str(row.get("status_message"))


def spans_to_otlp(rows: Iterable[Row]) -> TracesData:
    """Stored span rows as an OTLP ``TracesData``, grouped by resource and scope."""
    data = TracesData()
    for rfirst, scopes in _group(rows):
        rs = data.resource_spans.add(schema_url=_str(rfirst.get("resource_schema_url")))
        _fill_resource(rs.resource, rfirst)
        for sfirst, members in scopes:
            ss = rs.scope_spans.add(schema_url=_str(sfirst.get("scope_schema_url")))
            _fill_scope(ss.scope, sfirst)
            for row in members:
                _fill_span(ss.spans.add(), row)
    return data


def _fill_log(rec: LogRecord, row: Row) -> None:
    rec.time_unix_nano = _int(row.get("time_unix_nano"))
    rec.observed_time_unix_nano = _int(row.get("observed_time_unix_nano"))
    rec.severity_number = SeverityNumber.ValueType(_int(row.get("severity_number")))
    rec.severity_text = _str(row.get("severity_text"))
    body = row.get("body")
    if body is not None:  # NULL: no body; the JSON text "null": a body with no value
        rec.body.SetInParent()
        from_json(orjson.loads(body), rec.body)
    _fill_attrs(rec.attributes, _loads(row.get("attributes"), {}))
    rec.dropped_attributes_count = _int(row.get("dropped_attributes_count"))
    rec.flags = _int(row.get("flags"))
    rec.trace_id = bytes(row.get("trace_id") or b"")
    rec.span_id = bytes(row.get("span_id") or b"")
    rec.event_name = _str(row.get("event_name"))


def logs_to_otlp(rows: Iterable[Row]) -> LogsData:
    """Stored log rows as an OTLP ``LogsData``, grouped by resource and scope."""
    data = LogsData()
    for rfirst, scopes in _group(rows):
        rl = data.resource_logs.add(schema_url=_str(rfirst.get("resource_schema_url")))
        _fill_resource(rl.resource, rfirst)
        for sfirst, members in scopes:
            sl = rl.scope_logs.add(schema_url=_str(sfirst.get("scope_schema_url")))
            _fill_scope(sl.scope, sfirst)
            for row in members:
                _fill_log(sl.log_records.add(), row)
    return data


# -- OTLP/JSON -----------------------------------------------------------------------------


def _ids_to_hex(obj: dict[str, Any], keys: tuple[str, ...]) -> None:
    # The protobuf JSON mapping writes bytes as base64; OTLP/JSON wants ids as hex.
    for key in keys:
        value = obj.get(key)
        if value is not None:
            obj[key] = base64.b64decode(value).hex()


_IDS = ("traceId", "spanId")
_SPAN_IDS = ("traceId", "spanId", "parentSpanId")


def spans_to_otlp_json(rows: Iterable[Row]) -> dict[str, Any]:
    """Stored span rows as OTLP/JSON ``TracesData`` (``{"resourceSpans": [...]}``)."""
    out = MessageToDict(spans_to_otlp(rows), use_integers_for_enums=True)
    resource_spans: list[dict[str, Any]] = out.setdefault("resourceSpans", [])
    for rs in resource_spans:
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                _ids_to_hex(span, _SPAN_IDS)
                for link in span.get("links", ()):
                    _ids_to_hex(link, _IDS)
    return out


def logs_to_otlp_json(rows: Iterable[Row]) -> dict[str, Any]:
    """Stored log rows as OTLP/JSON ``LogsData`` (``{"resourceLogs": [...]}``)."""
    out = MessageToDict(logs_to_otlp(rows), use_integers_for_enums=True)
    resource_logs: list[dict[str, Any]] = out.setdefault("resourceLogs", [])
    for rl in resource_logs:
        for sl in rl.get("scopeLogs", ()):
            for rec in sl.get("logRecords", ()):
                _ids_to_hex(rec, _IDS)
    return out
