"""The columnar shape of stored telemetry: one Arrow schema per signal.

These schemas are the contract between the OTLP decoder (which builds batches of them) and
every storage backend (which must keep every column). ``FIELD_HOMES`` says, for every field
of the OTLP protos, which column keeps it; a test walks the proto descriptors and fails when
a field has no home.
"""

from __future__ import annotations

import pyarrow as pa

# JSON columns hold UTF-8 JSON text written by orjson (see ``anyvalue`` for the typed form).
JSON = pa.string()

_RESOURCE_SCOPE: list[tuple[str, pa.DataType]] = [
    ("service_name", pa.string()),
    ("resource_attributes", JSON),
    ("resource_dropped_attributes_count", pa.uint32()),
    ("resource_entity_refs", JSON),
    ("resource_schema_url", pa.string()),
    ("scope_name", pa.string()),
    ("scope_version", pa.string()),
    ("scope_attributes", JSON),
    ("scope_dropped_attributes_count", pa.uint32()),
    ("scope_schema_url", pa.string()),
]

# Columns every signal starts with. ``ingest_seq`` numbers every stored row in the order it
# was committed (the writer stamps it; no two rows share one); cursors pin a point in it.
_HEAD: list[tuple[str, pa.DataType]] = [
    ("tenant", pa.string()),
    ("ingest_seq", pa.int64()),
]

SPANS = pa.schema(
    _HEAD
    + [
        ("trace_id", pa.binary()),
        ("span_id", pa.binary()),
        ("parent_span_id", pa.binary()),
        ("trace_state", pa.string()),
        ("flags", pa.uint32()),
        ("name", pa.string()),
        ("kind", pa.int8()),
        ("start_time_unix_nano", pa.int64()),
        ("end_time_unix_nano", pa.int64()),
        ("duration_nano", pa.int64()),
        ("status_code", pa.int8()),
        ("status_message", pa.string()),
        ("attributes", JSON),
        ("dropped_attributes_count", pa.uint32()),
        ("events", JSON),
        ("dropped_events_count", pa.uint32()),
        ("links", JSON),
        ("dropped_links_count", pa.uint32()),
    ]
    + _RESOURCE_SCOPE
)

LOGS = pa.schema(
    _HEAD
    + [
        ("time_unix_nano", pa.int64()),
        ("observed_time_unix_nano", pa.int64()),
        # The time the record is filed under: time if set, else observed time.
        ("timestamp_unix_nano", pa.int64()),
        ("severity_number", pa.int8()),
        ("severity_text", pa.string()),
        ("body", JSON),
        # The body as plain text for substring search (strings as they are, others as JSON).
        ("body_text", pa.string()),
        ("attributes", JSON),
        ("dropped_attributes_count", pa.uint32()),
        ("flags", pa.uint32()),
        ("trace_id", pa.binary()),
        ("span_id", pa.binary()),
        ("event_name", pa.string()),
    ]
    + _RESOURCE_SCOPE
)

METRIC_POINTS = pa.schema(
    _HEAD
    + [
        ("metric_name", pa.string()),
        ("metric_description", pa.string()),
        ("metric_unit", pa.string()),
        ("metric_metadata", JSON),
        # 1 gauge, 2 sum, 3 histogram, 4 exponential histogram, 5 summary (METRIC_TYPES).
        ("metric_type", pa.int8()),
        ("aggregation_temporality", pa.int8()),
        ("is_monotonic", pa.bool_()),
        ("attributes", JSON),
        ("start_time_unix_nano", pa.int64()),
        ("time_unix_nano", pa.int64()),
        ("flags", pa.uint32()),
        ("value_double", pa.float64()),
        ("value_int", pa.int64()),
        ("count", pa.uint64()),
        ("sum", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("bucket_counts", pa.list_(pa.uint64())),
        ("explicit_bounds", pa.list_(pa.float64())),
        ("scale", pa.int32()),
        ("zero_count", pa.uint64()),
        ("zero_threshold", pa.float64()),
        ("positive_offset", pa.int32()),
        ("positive_bucket_counts", pa.list_(pa.uint64())),
        ("negative_offset", pa.int32()),
        ("negative_bucket_counts", pa.list_(pa.uint64())),
        ("quantile_values", JSON),
        ("exemplars", JSON),
    ]
    + _RESOURCE_SCOPE
)

SCHEMAS: dict[str, pa.Schema] = {"traces": SPANS, "logs": LOGS, "metrics": METRIC_POINTS}
TABLES: dict[str, str] = {"traces": "spans", "logs": "logs", "metrics": "metric_points"}

METRIC_TYPES = {"gauge": 1, "sum": 2, "histogram": 3, "exponential_histogram": 4, "summary": 5}

_RS = {
    "Resource.attributes": "resource_attributes",
    "Resource.dropped_attributes_count": "resource_dropped_attributes_count",
    "Resource.entity_refs": "resource_entity_refs",
    "EntityRef.schema_url": "resource_entity_refs",
    "EntityRef.type": "resource_entity_refs",
    "EntityRef.id_keys": "resource_entity_refs",
    "EntityRef.description_keys": "resource_entity_refs",
    "InstrumentationScope.name": "scope_name",
    "InstrumentationScope.version": "scope_version",
    "InstrumentationScope.attributes": "scope_attributes",
    "InstrumentationScope.dropped_attributes_count": "scope_dropped_attributes_count",
    "KeyValue.key": "attributes",
    "KeyValue.value": "attributes",
    "AnyValue.string_value": "attributes",
    "AnyValue.bool_value": "attributes",
    "AnyValue.int_value": "attributes",
    "AnyValue.double_value": "attributes",
    "AnyValue.array_value": "attributes",
    "AnyValue.kvlist_value": "attributes",
    "AnyValue.bytes_value": "attributes",
    "ArrayValue.values": "attributes",
    "KeyValueList.values": "attributes",
}

# Fields that have no meaning in the three signals stored here, with the reason.
NOT_APPLICABLE = {
    # Indexes into a profiles dictionary; traces, metrics and logs never set them.
    "AnyValue.string_value_strindex": "profiles-only dictionary index",
    "KeyValue.key_strindex": "profiles-only dictionary index",
}

# OTLP field (Message.field, by proto short name) -> (signal, column) that keeps it.
FIELD_HOMES: dict[str, dict[str, str]] = {
    "traces": {
        **_RS,
        "ResourceSpans.resource": "resource_attributes",
        "ResourceSpans.scope_spans": "scope_name",
        "ResourceSpans.schema_url": "resource_schema_url",
        "ScopeSpans.scope": "scope_name",
        "ScopeSpans.spans": "span_id",
        "ScopeSpans.schema_url": "scope_schema_url",
        "Span.trace_id": "trace_id",
        "Span.span_id": "span_id",
        "Span.trace_state": "trace_state",
        "Span.parent_span_id": "parent_span_id",
        "Span.flags": "flags",
        "Span.name": "name",
        "Span.kind": "kind",
        "Span.start_time_unix_nano": "start_time_unix_nano",
        "Span.end_time_unix_nano": "end_time_unix_nano",
        "Span.attributes": "attributes",
        "Span.dropped_attributes_count": "dropped_attributes_count",
        "Span.events": "events",
        "Span.dropped_events_count": "dropped_events_count",
        "Span.links": "links",
        "Span.dropped_links_count": "dropped_links_count",
        "Span.status": "status_code",
        "Event.time_unix_nano": "events",
        "Event.name": "events",
        "Event.attributes": "events",
        "Event.dropped_attributes_count": "events",
        "Link.trace_id": "links",
        "Link.span_id": "links",
        "Link.trace_state": "links",
        "Link.attributes": "links",
        "Link.dropped_attributes_count": "links",
        "Link.flags": "links",
        "Status.message": "status_message",
        "Status.code": "status_code",
    },
    "logs": {
        **_RS,
        "ResourceLogs.resource": "resource_attributes",
        "ResourceLogs.scope_logs": "scope_name",
        "ResourceLogs.schema_url": "resource_schema_url",
        "ScopeLogs.scope": "scope_name",
        "ScopeLogs.log_records": "time_unix_nano",
        "ScopeLogs.schema_url": "scope_schema_url",
        "LogRecord.time_unix_nano": "time_unix_nano",
        "LogRecord.observed_time_unix_nano": "observed_time_unix_nano",
        "LogRecord.severity_number": "severity_number",
        "LogRecord.severity_text": "severity_text",
        "LogRecord.body": "body",
        "LogRecord.attributes": "attributes",
        "LogRecord.dropped_attributes_count": "dropped_attributes_count",
        "LogRecord.flags": "flags",
        "LogRecord.trace_id": "trace_id",
        "LogRecord.span_id": "span_id",
        "LogRecord.event_name": "event_name",
    },
    "metrics": {
        **_RS,
        "ResourceMetrics.resource": "resource_attributes",
        "ResourceMetrics.scope_metrics": "scope_name",
        "ResourceMetrics.schema_url": "resource_schema_url",
        "ScopeMetrics.scope": "scope_name",
        "ScopeMetrics.metrics": "metric_name",
        "ScopeMetrics.schema_url": "scope_schema_url",
        "Metric.name": "metric_name",
        "Metric.description": "metric_description",
        "Metric.unit": "metric_unit",
        "Metric.metadata": "metric_metadata",
        "Metric.gauge": "metric_type",
        "Metric.sum": "metric_type",
        "Metric.histogram": "metric_type",
        "Metric.exponential_histogram": "metric_type",
        "Metric.summary": "metric_type",
        "Gauge.data_points": "value_double",
        "Sum.data_points": "value_double",
        "Sum.aggregation_temporality": "aggregation_temporality",
        "Sum.is_monotonic": "is_monotonic",
        "Histogram.data_points": "bucket_counts",
        "Histogram.aggregation_temporality": "aggregation_temporality",
        "ExponentialHistogram.data_points": "scale",
        "ExponentialHistogram.aggregation_temporality": "aggregation_temporality",
        "Summary.data_points": "quantile_values",
        "NumberDataPoint.attributes": "attributes",
        "NumberDataPoint.start_time_unix_nano": "start_time_unix_nano",
        "NumberDataPoint.time_unix_nano": "time_unix_nano",
        "NumberDataPoint.as_double": "value_double",
        "NumberDataPoint.as_int": "value_int",
        "NumberDataPoint.exemplars": "exemplars",
        "NumberDataPoint.flags": "flags",
        "Exemplar.filtered_attributes": "exemplars",
        "Exemplar.time_unix_nano": "exemplars",
        "Exemplar.as_double": "exemplars",
        "Exemplar.as_int": "exemplars",
        "Exemplar.span_id": "exemplars",
        "Exemplar.trace_id": "exemplars",
        "HistogramDataPoint.attributes": "attributes",
        "HistogramDataPoint.start_time_unix_nano": "start_time_unix_nano",
        "HistogramDataPoint.time_unix_nano": "time_unix_nano",
        "HistogramDataPoint.count": "count",
        "HistogramDataPoint.sum": "sum",
        "HistogramDataPoint.bucket_counts": "bucket_counts",
        "HistogramDataPoint.explicit_bounds": "explicit_bounds",
        "HistogramDataPoint.exemplars": "exemplars",
        "HistogramDataPoint.flags": "flags",
        "HistogramDataPoint.min": "min",
        "HistogramDataPoint.max": "max",
        "ExponentialHistogramDataPoint.attributes": "attributes",
        "ExponentialHistogramDataPoint.start_time_unix_nano": "start_time_unix_nano",
        "ExponentialHistogramDataPoint.time_unix_nano": "time_unix_nano",
        "ExponentialHistogramDataPoint.count": "count",
        "ExponentialHistogramDataPoint.sum": "sum",
        "ExponentialHistogramDataPoint.scale": "scale",
        "ExponentialHistogramDataPoint.zero_count": "zero_count",
        "ExponentialHistogramDataPoint.positive": "positive_bucket_counts",
        "ExponentialHistogramDataPoint.negative": "negative_bucket_counts",
        "ExponentialHistogramDataPoint.flags": "flags",
        "ExponentialHistogramDataPoint.exemplars": "exemplars",
        "ExponentialHistogramDataPoint.min": "min",
        "ExponentialHistogramDataPoint.max": "max",
        "ExponentialHistogramDataPoint.zero_threshold": "zero_threshold",
        "Buckets.offset": "positive_offset",
        "Buckets.bucket_counts": "positive_bucket_counts",
        "SummaryDataPoint.attributes": "attributes",
        "SummaryDataPoint.start_time_unix_nano": "start_time_unix_nano",
        "SummaryDataPoint.time_unix_nano": "time_unix_nano",
        "SummaryDataPoint.count": "count",
        "SummaryDataPoint.sum": "sum",
        "SummaryDataPoint.quantile_values": "quantile_values",
        "SummaryDataPoint.flags": "flags",
        "ValueAtQuantile.quantile": "quantile_values",
        "ValueAtQuantile.value": "quantile_values",
    },
}
