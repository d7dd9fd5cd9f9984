"""OTLP export requests -> columnar batches (one Arrow table per request).

This is the per-item hot path of ingest: it runs once for every span, log record and data
point received, so it builds plain Python column lists and converts them to Arrow once.
Items that cannot be stored (malformed ids, metrics without data) are rejected here and
reported back through ``partial_success``; everything else is kept whole, with attribute
limits applied the OpenTelemetry way. A value no column can hold (an enum outside int8, a
dropped count beyond uint32) refuses the whole request with a ``BadRequest``, as the C
decoder does for protobuf, in the same words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otterscope.errors import BadRequest
from otterscope.otlp import anyvalue
from otterscope.otlp.anyvalue import LimitCounter, Limits
from otterscope.otlp.schema import LOGS, METRIC_POINTS, METRIC_TYPES, SPANS

_dumps = orjson.dumps
_EMPTY_OBJ = "{}"
_EMPTY_LIST = "[]"
_ZERO16 = bytes(16)
_ZERO8 = bytes(8)
UNKNOWN_SERVICE = "unknown_service"
_UINT32_MAX = 0xFFFFFFFF
# What one row of each signal's table is called in messages.
ITEMS = {"traces": "span", "logs": "log record", "metrics": "metric point"}


def unstorable(items: str, detail: object) -> BadRequest:
    """The request holds a value a column cannot keep: it is refused whole."""
    return BadRequest(f"request holds a value the {items} table cannot store: {detail}")


def _out_of_int8(items: str, field: str, value: int) -> BadRequest | None:
    if -128 <= value <= 127:
        return None
    return unstorable(items, f"{field} {value} is out of range")


def column_array(items: str, field: pa.Field, values: list[Any]) -> pa.Array:
    """``values`` as ``field``'s Arrow array; a value out of its type's range is a 400."""
    try:
        return pa.array(values, field.type)
    except (pa.ArrowInvalid, OverflowError) as exc:
        raise unstorable(items, f"{field.name}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Batch:
    """One decoded request, ready for the store."""

    signal: str
    table: pa.Table
    accepted: int
    rejected: int
    reject_message: str
    dropped_attributes: int
    truncated_attributes: int


class _Rejects:
    __slots__ = ("count", "first")

    def __init__(self) -> None:
        self.count = 0
        self.first = ""

    def add(self, message: str) -> None:
        self.count += 1
        if not self.first:
            self.first = message

    def message(self) -> str:
        if not self.count:
            return ""
        more = f" (and {self.count - 1} more)" if self.count > 1 else ""
        return f"{self.count} item(s) rejected: {self.first}{more}"


def _attrs(kvs: Iterable[KeyValue], limits: Limits, counter: LimitCounter) -> tuple[str, int]:
    d, affected = anyvalue.attributes_to_json(kvs, limits, counter)
    return (_dumps(d).decode() if d else _EMPTY_OBJ), affected


def _resource_scope_values(
    resource: Resource, resource_schema_url: str, limits: Limits, counter: LimitCounter
) -> list[Any]:
    service = UNKNOWN_SERVICE
    for kv in resource.attributes:
        if kv.key == "service.name" and kv.value.WhichOneof("value") == "string_value":
            service = kv.value.string_value
            break
    attrs, affected = _attrs(resource.attributes, limits, counter)
    refs = (
        _dumps(
            [
                {
                    "schemaUrl": r.schema_url,
                    "type": r.type,
                    "idKeys": list(r.id_keys),
                    "descriptionKeys": list(r.description_keys),
                }
                for r in resource.entity_refs
            ]
        ).decode()
        if len(resource.entity_refs)
        else _EMPTY_LIST
    )
    return [
        service,
        attrs,
        resource.dropped_attributes_count + affected,
        refs,
        resource_schema_url,
    ]


def _scope_values(scope: Any, schema_url: str, limits: Limits, counter: LimitCounter) -> list[Any]:
    attrs, affected = _attrs(scope.attributes, limits, counter)
    return [scope.name, attrs, scope.version, scope.dropped_attributes_count + affected, schema_url]


_RS_COLUMNS = [
    "service_name",
    "resource_attributes",
    "resource_dropped_attributes_count",
    "resource_entity_refs",
    "resource_schema_url",
]
_SCOPE_COLUMNS = [
    "scope_name",
    "scope_attributes",
    "scope_version",
    "scope_dropped_attributes_count",
    "scope_schema_url",
]


def _table(
    signal: str, schema: pa.Schema, cols: dict[str, list[Any]], n: int, tenant: str
) -> pa.Table:
    arrays = []
    for field in schema:
        if field.name == "tenant":
            arrays.append(pa.array([tenant] * n, field.type))
        elif field.name == "ingest_seq":
            arrays.append(pa.nulls(n, field.type))
        else:
            arrays.append(column_array(ITEMS[signal], field, cols[field.name]))
    return pa.Table.from_arrays(arrays, schema=schema)


def _batch(
    signal: str,
    schema: pa.Schema,
    cols: dict[str, list[Any]],
    n: int,
    tenant: str,
    rejects: _Rejects,
    counter: LimitCounter,
) -> Batch:
    return Batch(
        signal,
        _table(signal, schema, cols, n, tenant),
        n,
        rejects.count,
        rejects.message(),
        counter.dropped,
        counter.truncated,
    )


def _repeat(cols: dict[str, list[Any]], names: list[str], values: list[Any], n: int) -> None:
    for name, value in zip(names, values, strict=True):
        cols[name].extend([value] * n)


def _hex(b: bytes) -> str:
    return b.hex()


def spans_batch(req: ExportTraceServiceRequest, tenant: str, limits: Limits) -> Batch:
    cols: dict[str, list[Any]] = {f.name: [] for f in SPANS}
    counter = LimitCounter()
    rejects = _Rejects()
    n = 0
    for rs in req.resource_spans:
        rvals = _resource_scope_values(rs.resource, rs.schema_url, limits, counter)
        for ss in rs.scope_spans:
            svals = _scope_values(ss.scope, ss.schema_url, limits, counter)
            before = n
            for span in ss.spans:
                tid = span.trace_id
                sid = span.span_id
                pid = span.parent_span_id
                if len(tid) != 16 or tid == _ZERO16:
                    rejects.add(f"span {span.name!r}: trace_id must be 16 bytes, not all zero")
                    continue
                if len(sid) != 8 or sid == _ZERO8:
                    rejects.add(f"span {span.name!r}: span_id must be 8 bytes, not all zero")
                    continue
                if pid and len(pid) != 8:
                    rejects.add(f"span {span.name!r}: parent_span_id must be empty or 8 bytes")
                    continue
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                if start >= 1 << 63 or end >= 1 << 63:
                    rejects.add(f"span {span.name!r}: timestamp beyond the year 2262")
                    continue
                attrs, affected = _attrs(span.attributes, limits, counter)
                dropped = span.dropped_attributes_count + affected
                if dropped > _UINT32_MAX:
                    raise unstorable(
                        "span", "span dropped_attributes_count exceeds the uint32 range"
                    )
                status = span.status
                bad = _out_of_int8("span", "span kind", span.kind) or _out_of_int8(
                    "span", "span status code", status.code
                )
                if bad:
                    raise bad
                cols["trace_id"].append(tid)
                cols["span_id"].append(sid)
                cols["parent_span_id"].append(pid)
                cols["trace_state"].append(span.trace_state)
                cols["flags"].append(span.flags)
                cols["name"].append(span.name)
                cols["kind"].append(span.kind)
                cols["start_time_unix_nano"].append(start)
                cols["end_time_unix_nano"].append(end)
                cols["duration_nano"].append(end - start if end > start else 0)
                cols["status_code"].append(status.code)
                cols["status_message"].append(status.message)
                cols["attributes"].append(attrs)
                cols["dropped_attributes_count"].append(dropped)
                if len(span.events):
                    evs = []
                    for ev in span.events:
                        ea, eaff = anyvalue.attributes_to_json(ev.attributes, limits, counter)
                        evs.append(
                            {
                                "timeUnixNano": ev.time_unix_nano,
                                "name": ev.name,
                                "attributes": ea,
                                "droppedAttributesCount": ev.dropped_attributes_count + eaff,
                            }
                        )
                    cols["events"].append(_dumps(evs).decode())
                else:
                    cols["events"].append(_EMPTY_LIST)
                cols["dropped_events_count"].append(span.dropped_events_count)
                if len(span.links):
                    lks = []
                    for lk in span.links:
                        la, laff = anyvalue.attributes_to_json(lk.attributes, limits, counter)
                        lks.append(
                            {
                                "traceId": _hex(lk.trace_id),
                                "spanId": _hex(lk.span_id),
                                "traceState": lk.trace_state,
                                "attributes": la,
                                "droppedAttributesCount": lk.dropped_attributes_count + laff,
                                "flags": lk.flags,
                            }
                        )
                    cols["links"].append(_dumps(lks).decode())
                else:
                    cols["links"].append(_EMPTY_LIST)
                cols["dropped_links_count"].append(span.dropped_links_count)
                n += 1
            _repeat(cols, _RS_COLUMNS, rvals, n - before)
            _repeat(cols, _SCOPE_COLUMNS, svals, n - before)
    return _batch("traces", SPANS, cols, n, tenant, rejects, counter)


def _body_text(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    return _dumps(anyvalue.to_api(body)).decode()


def logs_batch(req: ExportLogsServiceRequest, tenant: str, limits: Limits) -> Batch:
    cols: dict[str, list[Any]] = {f.name: [] for f in LOGS}
    counter = LimitCounter()
    rejects = _Rejects()
    n = 0
    for rl in req.resource_logs:
        rvals = _resource_scope_values(rl.resource, rl.schema_url, limits, counter)
        for sl in rl.scope_logs:
            svals = _scope_values(sl.scope, sl.schema_url, limits, counter)
            before = n
            for rec in sl.log_records:
                tid = rec.trace_id
                sid = rec.span_id
                if tid and len(tid) != 16:
                    rejects.add("log record: trace_id must be empty or 16 bytes")
                    continue
                if sid and len(sid) != 8:
                    rejects.add("log record: span_id must be empty or 8 bytes")
                    continue
                t = rec.time_unix_nano
                ot = rec.observed_time_unix_nano
                if t >= 1 << 63 or ot >= 1 << 63:
                    rejects.add("log record: timestamp beyond the year 2262")
                    continue
                attrs, affected = _attrs(rec.attributes, limits, counter)
                dropped = rec.dropped_attributes_count + affected
                if dropped > _UINT32_MAX:
                    raise unstorable(
                        "log record", "log record dropped_attributes_count exceeds the uint32 range"
                    )
                bad = _out_of_int8("log record", "log severity_number", rec.severity_number)
                if bad:
                    raise bad
                cols["time_unix_nano"].append(t)
                cols["observed_time_unix_nano"].append(ot)
                cols["timestamp_unix_nano"].append(t or ot)
                cols["severity_number"].append(rec.severity_number)
                cols["severity_text"].append(rec.severity_text)
                if rec.HasField("body"):
                    body = anyvalue.to_json(rec.body, limits.attribute_value_length)
                    cols["body"].append(_dumps(body).decode())
                    cols["body_text"].append(_body_text(body))
                else:
                    cols["body"].append(None)
                    cols["body_text"].append("")
                cols["attributes"].append(attrs)
                cols["dropped_attributes_count"].append(dropped)
                cols["flags"].append(rec.flags)
                cols["trace_id"].append(tid)
                cols["span_id"].append(sid)
                cols["event_name"].append(rec.event_name)
                n += 1
            _repeat(cols, _RS_COLUMNS, rvals, n - before)
            _repeat(cols, _SCOPE_COLUMNS, svals, n - before)
    return _batch("logs", LOGS, cols, n, tenant, rejects, counter)


def _exemplars(exs: Any, limits: Limits, counter: LimitCounter) -> str:
    if not len(exs):
        return _EMPTY_LIST
    out = []
    for ex in exs:
        fa, _ = anyvalue.attributes_to_json(ex.filtered_attributes, limits, counter)
        item: dict[str, Any] = {
            "filteredAttributes": fa,
            "timeUnixNano": ex.time_unix_nano,
            "spanId": _hex(ex.span_id),
            "traceId": _hex(ex.trace_id),
        }
        which = ex.WhichOneof("value")
        if which == "as_int":
            item["asInt"] = ex.as_int
        elif which == "as_double":
            item["asDouble"] = anyvalue.to_json_double(ex.as_double)
        out.append(item)
    return _dumps(out).decode()


_POINT_DEFAULTS: dict[str, Any] = {
    "value_double": None,
    "value_int": None,
    "count": None,
    "sum": None,
    "min": None,
    "max": None,
    "bucket_counts": None,
    "explicit_bounds": None,
    "scale": None,
    "zero_count": None,
    "zero_threshold": None,
    "positive_offset": None,
    "positive_bucket_counts": None,
    "negative_offset": None,
    "negative_bucket_counts": None,
    "quantile_values": None,
}


def _point(cols: dict[str, list[Any]], values: dict[str, Any]) -> None:
    for name, default in _POINT_DEFAULTS.items():
        cols[name].append(values.get(name, default))


def metrics_batch(req: ExportMetricsServiceRequest, tenant: str, limits: Limits) -> Batch:
    cols: dict[str, list[Any]] = {f.name: [] for f in METRIC_POINTS}
    counter = LimitCounter()
    rejects = _Rejects()
    n = 0
    for rm in req.resource_metrics:
        rvals = _resource_scope_values(rm.resource, rm.schema_url, limits, counter)
        for sm in rm.scope_metrics:
            svals = _scope_values(sm.scope, sm.schema_url, limits, counter)
            before = n
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if not metric.name:
                    rejects.add("metric without a name")
                    continue
                if kind is None:
                    rejects.add(f"metric {metric.name!r} has no data")
                    continue
                data = getattr(metric, kind)
                meta, _ = _attrs(metric.metadata, limits, counter)
                temporality = getattr(data, "aggregation_temporality", 0)
                monotonic = getattr(data, "is_monotonic", None) if kind == "sum" else None
                mtype = METRIC_TYPES[kind]
                for dp in data.data_points:
                    t = dp.time_unix_nano
                    st = dp.start_time_unix_nano
                    if t >= 1 << 63 or st >= 1 << 63:
                        rejects.add(f"metric {metric.name!r}: timestamp beyond the year 2262")
                        continue
                    # Checked per stored point, as the C decoder does: a metric without
                    # points stores nothing, so nothing to refuse.
                    bad = _out_of_int8(
                        "metric point", "metric aggregation_temporality", temporality
                    )
                    if bad:
                        raise bad
                    cols["metric_name"].append(metric.name)
                    cols["metric_description"].append(metric.description)
                    cols["metric_unit"].append(metric.unit)
                    cols["metric_metadata"].append(meta)
                    cols["metric_type"].append(mtype)
                    cols["aggregation_temporality"].append(temporality)
                    cols["is_monotonic"].append(monotonic)
                    attrs, _ = _attrs(dp.attributes, limits, counter)
                    cols["attributes"].append(attrs)
                    cols["start_time_unix_nano"].append(st)
                    cols["time_unix_nano"].append(t)
                    cols["flags"].append(dp.flags)
                    cols["exemplars"].append(
                        _exemplars(dp.exemplars, limits, counter) if kind != "summary" else "[]"
                    )
                    if mtype <= 2:
                        which = dp.WhichOneof("value")
                        _point(
                            cols,
                            {
                                "value_double": dp.as_double if which == "as_double" else None,
                                "value_int": dp.as_int if which == "as_int" else None,
                            },
                        )
                    elif kind == "histogram":
                        _point(
                            cols,
                            {
                                "count": dp.count,
                                "sum": dp.sum if dp.HasField("sum") else None,
                                "min": dp.min if dp.HasField("min") else None,
                                "max": dp.max if dp.HasField("max") else None,
                                "bucket_counts": list(dp.bucket_counts),
                                "explicit_bounds": list(dp.explicit_bounds),
                            },
                        )
                    elif kind == "exponential_histogram":
                        _point(
                            cols,
                            {
                                "count": dp.count,
                                "sum": dp.sum if dp.HasField("sum") else None,
                                "min": dp.min if dp.HasField("min") else None,
                                "max": dp.max if dp.HasField("max") else None,
                                "scale": dp.scale,
                                "zero_count": dp.zero_count,
                                "zero_threshold": dp.zero_threshold,
                                "positive_offset": dp.positive.offset,
                                "positive_bucket_counts": list(dp.positive.bucket_counts),
                                "negative_offset": dp.negative.offset,
                                "negative_bucket_counts": list(dp.negative.bucket_counts),
                            },
                        )
                    else:
                        _point(
                            cols,
                            {
                                "count": dp.count,
                                "sum": dp.sum,
                                "quantile_values": _dumps(
                                    [
                                        {
                                            "quantile": anyvalue.to_json_double(q.quantile),
                                            "value": anyvalue.to_json_double(q.value),
                                        }
                                        for q in dp.quantile_values
                                    ]
                                ).decode(),
                            },
                        )
                    n += 1
            _repeat(cols, _RS_COLUMNS, rvals, n - before)
            _repeat(cols, _SCOPE_COLUMNS, svals, n - before)
    return _batch("metrics", METRIC_POINTS, cols, n, tenant, rejects, counter)
