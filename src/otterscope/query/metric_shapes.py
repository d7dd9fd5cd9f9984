"""Stored metric point rows back to OTLP: ``MetricsData`` and its OTLP/JSON form.

This module owns the inverse of ``otterscope.otlp.rows.metrics_batch`` (and of the C
decoder, which writes the same rows): stored metric point rows (column name -> value, as a
store hands them out; see ``METRIC_POINTS`` in ``otterscope.otlp.schema``) grouped back
under their resource, then their scope, then one ``Metric`` per identity (name,
description, unit, type, temporality, monotonicity, metadata) in order of first appearance,
each with its data points:

- ``metrics_to_otlp`` -> ``MetricsData`` (protobuf);
- ``metrics_to_otlp_json`` -> OTLP/JSON ``MetricsData`` (``{"resourceMetrics": [...]}``):
  the protobuf JSON mapping with enums as integers and exemplar trace and span ids as
  lowercase hex, as the OTLP/JSON encoding requires.

What the rows cannot say is rebuilt the usual way: exponential histogram points always
carry their positive and negative buckets, even when those are empty.
Resource and scope rebuilding, attribute JSON and id conversion are ``shapes``' own.

It knows nothing of any store and does no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ScopeMetrics,
    SummaryDataPoint,
)

from otterscope.otlp.anyvalue import DOUBLE_TAG
from otterscope.otlp.schema import METRIC_TYPES
from otterscope.query.shapes import (
    _IDS,
    Row,
    _fill_attrs,
    _fill_resource,
    _fill_scope,
    _group,
    _ids_to_hex,
    _int,
    _loads,
    _str,
)

__all__ = ["metrics_to_otlp", "metrics_to_otlp_json"]

# metric_type column -> the Metric oneof field that holds the data.
_KINDS = {number: kind for kind, number in METRIC_TYPES.items()}

# The columns that tell one Metric from another within a scope (JSON compared as text).
_METRIC_KEY = (
    "metric_name",
    "metric_description",
    "metric_unit",
    "metric_type",
    "aggregation_temporality",
    "is_monotonic",
    "metric_metadata",
)

_POINT_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram")

_Point = NumberDataPoint | HistogramDataPoint | ExponentialHistogramDataPoint | SummaryDataPoint


def _float(value: Any) -> float:
    return float(value) if value is not None else 0.0


def _json_double(value: Any) -> float:
    # The inverse of anyvalue.to_json_double: finite doubles are native, the rest tagged.
    if isinstance(value, dict):
        return float(str(value[DOUBLE_TAG]).replace("Infinity", "inf"))
    return float(value)


def _new_metric(sm: ScopeMetrics, row: Row) -> Metric:
    metric = sm.metrics.add(
        name=_str(row.get("metric_name")),
        description=_str(row.get("metric_description")),
        unit=_str(row.get("metric_unit")),
    )
    _fill_attrs(metric.metadata, _loads(row.get("metric_metadata"), {}))
    mtype = _int(row.get("metric_type"))
    kind = _KINDS.get(mtype)
    if kind is None:
        raise ValueError(f"metric {metric.name!r}: unknown metric_type {mtype}")
    data = getattr(metric, kind)
    data.SetInParent()
    if kind in ("sum", "histogram", "exponential_histogram"):
        data.aggregation_temporality = AggregationTemporality.ValueType(
            _int(row.get("aggregation_temporality"))
        )
    if kind == "sum":
        data.is_monotonic = bool(row.get("is_monotonic"))
    return metric


def _fill_exemplars(point: Any, text: Any) -> None:
    for item in _loads(text, []):
        ex = point.exemplars.add(
            time_unix_nano=_int(item.get("timeUnixNano")),
            span_id=bytes.fromhex(_str(item.get("spanId"))),
            trace_id=bytes.fromhex(_str(item.get("traceId"))),
        )
        _fill_attrs(ex.filtered_attributes, item.get("filteredAttributes") or {})
        if "asInt" in item:
            ex.as_int = int(item["asInt"])
        elif "asDouble" in item:
            ex.as_double = _json_double(item["asDouble"])


def _fill_stats(point: HistogramDataPoint | ExponentialHistogramDataPoint, row: Row) -> None:
    # sum, min and max are optional: NULL in the row means the point did not have them.
    point.count = _int(row.get("count"))
    for name in ("sum", "min", "max"):
        value = row.get(name)
        if value is not None:
            setattr(point, name, float(value))


def _add_point(metric: Metric, row: Row) -> None:
    kind = metric.WhichOneof("data")
    assert kind is not None
    point: _Point = getattr(metric, kind).data_points.add()
    _fill_attrs(point.attributes, _loads(row.get("attributes"), {}))
    point.start_time_unix_nano = _int(row.get("start_time_unix_nano"))
    point.time_unix_nano = _int(row.get("time_unix_nano"))
    point.flags = _int(row.get("flags"))
    if isinstance(point, NumberDataPoint):
        if row.get("value_int") is not None:
            point.as_int = int(row["value_int"])
        elif row.get("value_double") is not None:
            point.as_double = float(row["value_double"])
    elif isinstance(point, HistogramDataPoint):
        _fill_stats(point, row)
        point.bucket_counts.extend(row.get("bucket_counts") or [])
        point.explicit_bounds.extend(row.get("explicit_bounds") or [])
    elif isinstance(point, ExponentialHistogramDataPoint):
        _fill_stats(point, row)
        point.scale = _int(row.get("scale"))
        point.zero_count = _int(row.get("zero_count"))
        point.zero_threshold = _float(row.get("zero_threshold"))
        for buckets, side in ((point.positive, "positive"), (point.negative, "negative")):
            buckets.SetInParent()
            buckets.offset = _int(row.get(f"{side}_offset"))
            buckets.bucket_counts.extend(row.get(f"{side}_bucket_counts") or [])
    else:
        point.count = _int(row.get("count"))
        point.sum = _float(row.get("sum"))
        for q in _loads(row.get("quantile_values"), []):
            point.quantile_values.add(
                # null: written before non-finite quantiles were tagged; NaN is all it says.
                quantile=math.nan if q.get("quantile") is None else _json_double(q["quantile"]),
                value=math.nan if q.get("value") is None else _json_double(q["value"]),
            )
        return
    _fill_exemplars(point, row.get("exemplars"))


def metrics_to_otlp(rows: Iterable[Row]) -> MetricsData:
    """Stored metric point rows as an OTLP ``MetricsData``, grouped by resource and scope."""
    data = MetricsData()
    for rfirst, scopes in _group(rows):
        rm = data.resource_metrics.add(schema_url=_str(rfirst.get("resource_schema_url")))
        _fill_resource(rm.resource, rfirst)
        for sfirst, members in scopes:
            sm = rm.scope_metrics.add(schema_url=_str(sfirst.get("scope_schema_url")))
            _fill_scope(sm.scope, sfirst)
            metrics: dict[tuple[Any, ...], Metric] = {}
            for row in members:
                key = tuple(row.get(c) for c in _METRIC_KEY)
                metric = metrics.get(key)
                if metric is None:
                    metric = metrics[key] = _new_metric(sm, row)
                _add_point(metric, row)
    return data


def metrics_to_otlp_json(rows: Iterable[Row]) -> dict[str, Any]:
    """Stored metric point rows as OTLP/JSON ``MetricsData`` (``{"resourceMetrics": [...]}``)."""
    out = MessageToDict(metrics_to_otlp(rows), use_integers_for_enums=True)
    resource_metrics: list[dict[str, Any]] = out.setdefault("resourceMetrics", [])
    for rm in resource_metrics:
        for sm in rm.get("scopeMetrics", ()):
            for metric in sm.get("metrics", ()):
                for kind in _POINT_KINDS:
                    for point in metric.get(kind, {}).get("dataPoints", ()):
                        for ex in point.get("exemplars", ()):
                            _ids_to_hex(ex, _IDS)
    return out
