"""Stored span rows in the shapes of Jaeger's query service.

- v1 (``/jaeger/api/...``): Jaeger's UI JSON model (``uimodel`` in jaegertracing/jaeger):
  traces of spans with ``references``, typed ``tags``, ``logs`` and a ``processID`` into the
  trace's deduplicated ``processes``. OTLP fields become tags the way Jaeger's own OTLP
  translator names them (``otel.scope.name``, ``span.kind``, ``otel.status_code``,
  ``error``, ``otel.status_description``, ``w3c.tracestate``); a parent is a ``CHILD_OF``
  reference and every link a ``FOLLOWS_FROM`` one; an event is a log whose ``event`` field
  is the event's name.
- api_v3 (``/jaeger/api/v3/...``): trace summaries as ``jaeger.api_v3.TraceSummary`` in
  protobuf JSON (camelCase, 64-bit numbers as strings, zero values left out). The traces
  themselves are OTLP/JSON from ``shapes.spans_to_otlp_json``.

It knows nothing of any store and does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from otterscope.otlp.anyvalue import BYTES_TAG, DOUBLE_TAG, tagged, to_api
from otterscope.query.model import TraceSummary

Row = Mapping[str, Any]

# Jaeger's span kind names (its ``span.kind`` tag and operation ``spanKind``), by OTLP kind;
# an unspecified kind has none.
SPAN_KINDS = ("", "internal", "server", "client", "producer", "consumer")
_STATUS_NAMES = {1: "OK", 2: "ERROR"}
_JS_SAFE = 2**53 - 1


def trace_id_text(trace_id: bytes) -> str:
    """A trace id as Jaeger prints it: a 64-bit id (the high half zero) in 16 digits."""
    raw = bytes(trace_id)
    return raw[8:].hex() if len(raw) == 16 and not any(raw[:8]) else raw.hex()


def _kv(key: str, type_: str, value: Any) -> dict[str, Any]:
    return {"key": key, "type": type_, "value": value}


def tag(key: str, value: Any) -> dict[str, Any]:
    """One stored attribute as a typed Jaeger tag. Arrays and kvlists have no Jaeger type:
    they become their JSON text, as Jaeger's translator makes them strings."""
    if isinstance(value, bool):
        return _kv(key, "bool", value)
    if isinstance(value, int):
        # Past 2^53 a JavaScript number loses digits: Jaeger sends those as strings.
        return _kv(key, "int64", value if -_JS_SAFE <= value <= _JS_SAFE else str(value))
    if isinstance(value, float):
        return _kv(key, "float64", value)
    if isinstance(value, str):
        return _kv(key, "string", value)
    if isinstance(value, dict):
        found = tagged(value)
        if found is not None and found[0] == BYTES_TAG:
            return _kv(key, "binary", found[1])
        if found is not None and found[0] == DOUBLE_TAG:
            return _kv(key, "float64", found[1])
    return _kv(key, "string", orjson.dumps(to_api(value)).decode())


def _tags(attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [tag(k, v) for k, v in attrs.items()]


def _json(text: Any, default: Any) -> Any:
    return default if text is None else orjson.loads(text)


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def _span_tags(row: Row) -> list[dict[str, Any]]:
    out = []
    if row.get("scope_name"):
        out.append(_kv("otel.scope.name", "string", row["scope_name"]))
    if row.get("scope_version"):
        out.append(_kv("otel.scope.version", "string", row["scope_version"]))
    out += _tags(_json(row.get("attributes"), {}))
    kind = _int(row.get("kind"))
    if 0 < kind < len(SPAN_KINDS):
        out.append(_kv("span.kind", "string", SPAN_KINDS[kind]))
    status = _int(row.get("status_code"))
    if status in _STATUS_NAMES:
        out.append(_kv("otel.status_code", "string", _STATUS_NAMES[status]))
    if status == 2:
        out.append(_kv("error", "bool", True))
    if row.get("status_message"):
        out.append(_kv("otel.status_description", "string", row["status_message"]))
    if row.get("trace_state"):
        out.append(_kv("w3c.tracestate", "string", row["trace_state"]))
    return out


def _references(row: Row, trace_id: str) -> list[dict[str, Any]]:
    refs = []
    if row.get("parent_span_id"):
        refs.append(
            {
                "refType": "CHILD_OF",
                "traceID": trace_id,
                "spanID": bytes(row["parent_span_id"]).hex(),
            }
        )
    for link in _json(row.get("links"), []):
        link_trace = bytes.fromhex(str(link.get("traceId") or ""))
        refs.append(
            {
                "refType": "FOLLOWS_FROM",
                "traceID": trace_id_text(link_trace),
                "spanID": str(link.get("spanId") or ""),
            }
        )
    return refs


def _logs(row: Row) -> list[dict[str, Any]]:
    out = []
    for event in _json(row.get("events"), []):
        fields = [_kv("event", "string", event["name"])] if event.get("name") else []
        out.append(
            {
                "timestamp": _int(event.get("timeUnixNano")) // 1000,
                "fields": fields + _tags(event.get("attributes") or {}),
            }
        )
    return out


def _warnings(row: Row) -> list[str] | None:
    """What the span lost to limits at its sender or here, which the Jaeger UI shows as the
    span's warnings; None (Jaeger's ``null``) when it lost nothing."""
    lost = [
        (row.get("dropped_attributes_count"), "attributes"),
        (row.get("dropped_events_count"), "events"),
        (row.get("dropped_links_count"), "links"),
    ]
    found = [f"{_int(n)} {what} dropped or truncated" for n, what in lost if _int(n)]
    return found or None


class _Processes:
    """Jaeger's ``processes`` of one trace: one entry per distinct service and resource,
    named p1, p2, ... in the order the spans first use them."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, str], str] = {}
        self.table: dict[str, dict[str, Any]] = {}

    def key(self, row: Row) -> str:
        service = str(row.get("service_name") or "")
        resource = row.get("resource_attributes")
        text = resource.decode() if isinstance(resource, bytes) else str(resource or "{}")
        found = self.ids.get((service, text))
        if found is None:
            found = self.ids[(service, text)] = f"p{len(self.ids) + 1}"
            attrs = {k: v for k, v in _json(resource, {}).items() if k != "service.name"}
            self.table[found] = {"serviceName": service, "tags": _tags(attrs)}
        return found


def trace_to_jaeger(rows: Sequence[Row]) -> dict[str, Any]:
    """The spans of one trace as a Jaeger ``Trace``."""
    processes = _Processes()
    trace_id = trace_id_text(rows[0]["trace_id"]) if rows else ""
    spans = []
    for row in rows:
        start = _int(row.get("start_time_unix_nano"))
        end = _int(row.get("end_time_unix_nano"))
        span: dict[str, Any] = {
            "traceID": trace_id,
            "spanID": bytes(row["span_id"]).hex(),
            "operationName": str(row.get("name") or ""),
            "references": _references(row, trace_id),
            "startTime": start // 1000,
            "duration": max(end - start, 0) // 1000,
            "tags": _span_tags(row),
            "logs": _logs(row),
            "processID": processes.key(row),
            "warnings": _warnings(row),
        }
        flags = _int(row.get("flags")) & 0xFF  # the W3C trace flags; the rest is OTLP's own
        if flags:
            span["flags"] = flags
        spans.append(span)
    return {"traceID": trace_id, "spans": spans, "processes": processes.table, "warnings": None}


def group_by_trace(rows: Iterable[Row]) -> dict[bytes, list[Row]]:
    """Rows per trace id, in the order of first appearance."""
    out: dict[bytes, list[Row]] = {}
    for row in rows:
        out.setdefault(bytes(row["trace_id"]), []).append(row)
    return out


def dependency_links(rows: Iterable[Row], service: str | None = None) -> list[dict[str, Any]]:
    """Jaeger's ``DependencyLink``s from ``Store.dependencies``: calls between services only
    (Jaeger knows no database or external nodes), one link per parent and child, those of
    ``service`` alone when given."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        if row.get("target_type") != "service":
            continue
        pair = (str(row["source"]), str(row["target"]))
        if service and service not in pair:
            continue
        counts[pair] = counts.get(pair, 0) + _int(row.get("calls"))
    return [
        {"parent": parent, "child": child, "callCount": n}
        for (parent, child), n in sorted(counts.items())
    ]


def _omit_zero(fields: dict[str, Any]) -> dict[str, Any]:
    """Protobuf JSON leaves out fields at their zero value."""
    return {k: v for k, v in fields.items() if v not in (0, "", "0", [], None)}


def trace_summary(summary: TraceSummary, rows: Sequence[Row]) -> dict[str, Any]:
    """An api_v3 ``TraceSummary`` of one trace: root from the search's summary, counts from
    every stored span of the trace."""
    ids = {bytes(r["span_id"]) for r in rows}
    per_service: dict[str, list[int]] = {}
    errors = orphans = 0
    for row in rows:
        error = _int(row.get("status_code")) == 2
        errors += error
        parent = bytes(row.get("parent_span_id") or b"")
        orphans += bool(parent) and parent not in ids
        counts = per_service.setdefault(str(row.get("service_name") or ""), [0, 0])
        counts[0] += 1
        counts[1] += error
    starts = [_int(r.get("start_time_unix_nano")) for r in rows] or [summary.start_ns]
    ends = [_int(r.get("end_time_unix_nano")) for r in rows] or [summary.end_ns]
    return _omit_zero(
        {
            "traceId": summary.trace_id.hex(),
            "rootServiceName": summary.root_service,
            "rootOperationName": summary.root_name,
            "minStartTimeUnixNano": str(min(starts)),
            "maxEndTimeUnixNano": str(max(ends)),
            "spanCount": len(rows),
            "errorSpanCount": errors,
            "orphanSpanCount": orphans,
            "services": [
                # the name stays even when empty: it is the one field a client requires
                {"name": name} | _omit_zero({"spanCount": n, "errorSpanCount": e})
                for name, (n, e) in sorted(per_service.items())
            ],
        }
    )
