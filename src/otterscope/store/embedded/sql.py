"""Every SQL statement of the embedded store, and nothing else.

Statements are built from fixed text plus three kinds of inserts: table and file names the
store itself made, column names from the schemas, and ``?`` placeholders for every user
value. No user string is ever spliced into SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from otterscope.otlp.schema import SCHEMAS, TABLES
from otterscope.query.model import LogQuery, TraceQuery

_TYPES = {
    pa.string(): "VARCHAR",
    pa.binary(): "BLOB",
    pa.int8(): "TINYINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.uint32(): "UINTEGER",
    pa.uint64(): "UBIGINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.list_(pa.uint64()): "UBIGINT[]",
    pa.list_(pa.float64()): "DOUBLE[]",
}

HOUR_NS = 3_600_000_000_000


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ddl(fields: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{name} {kind}" for name, kind in fields)


def create_empty_table(signal: str) -> str:
    """A table of the full schema with no rows: the source when nothing is stored yet."""
    fields = [(f.name, _TYPES[f.type]) for f in SCHEMAS[signal]]
    return f"CREATE TABLE IF NOT EXISTS main.empty_{TABLES[signal]} ({_ddl(fields)})"


def column_list(signal: str) -> str:
    return ", ".join(f.name for f in SCHEMAS[signal])


def hot_view(signal: str) -> str:
    """The name under which a query sees the hot rows of a signal (an Arrow table)."""
    return f"hot_{TABLES[signal]}"


def source(signal: str, hot: bool, files: Sequence[str]) -> str:
    """A FROM-able union of the hot rows and the sealed files of one signal."""
    cols = column_list(signal)
    parts = [f"SELECT {cols} FROM {hot_view(signal)}"] if hot else []
    if files:
        listed = ", ".join(quote_literal(f) for f in files)
        parts.append(f"SELECT {cols} FROM read_parquet([{listed}])")
    if not parts:
        parts.append(f"SELECT {cols} FROM main.empty_{TABLES[signal]}")
    return "(" + " UNION ALL ".join(parts) + ")"


def max_seq(signal: str, src: str) -> str:
    return f"SELECT max(ingest_seq) FROM {src}"


def trace_spans(src: str) -> str:
    # Duplicates (a span sent twice) are answered once: the first one stored wins.
    return (
        f"SELECT * FROM {src} WHERE tenant = ? AND trace_id = ? "
        "QUALIFY row_number() OVER (PARTITION BY span_id ORDER BY ingest_seq) = 1 "
        "ORDER BY start_time_unix_nano, span_id"
    )


def _attr_conditions(attrs: Sequence[tuple[str, str]], params: list[object]) -> list[str]:
    out = []
    for key, value in attrs:
        path = "$." + '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(
            "(json_extract_string(attributes, ?) = ? OR json_extract_string(resource_attributes, ?) = ?)"
        )
        params.extend([path, value, path, value])
    return out


def search_traces(src: str, tenant: str, q: TraceQuery) -> tuple[str, list[object]]:
    params: list[object] = [tenant, q.start_ns, q.end_ns]
    where = ["start_time_unix_nano >= ?", "start_time_unix_nano <= ?"]
    if q.service is not None:
        where.append("service_name = ?")
        params.append(q.service)
    if q.operation is not None:
        where.append("contains(lower(name), lower(?))")
        params.append(q.operation)
    if q.status is not None:
        where.append("status_code = ?")
        params.append(q.status)
    if q.min_duration_ns is not None:
        where.append("duration_nano >= ?")
        params.append(q.min_duration_ns)
    if q.max_duration_ns is not None:
        where.append("duration_nano <= ?")
        params.append(q.max_duration_ns)
    where.extend(_attr_conditions(q.attributes, params))
    trace_filter = q.min_trace_duration_ns is not None or q.max_trace_duration_ns is not None
    # Without a whole-trace condition the newest matches decide the page, so the limit can
    # be applied before the (more costly) aggregation over every span of those traces.
    match_limit = "" if trace_filter else f"ORDER BY last_match DESC LIMIT {int(q.limit)}"
    having = []
    if q.min_trace_duration_ns is not None:
        having.append("(end_ns - start_ns) >= ?")
    if q.max_trace_duration_ns is not None:
        having.append("(end_ns - start_ns) <= ?")
    sql = (
        f"WITH src AS (SELECT * FROM {src} WHERE tenant = ?), "
        f"matches AS (SELECT trace_id, max(start_time_unix_nano) AS last_match FROM src "
        f"WHERE {' AND '.join(where)} GROUP BY trace_id {match_limit}), "
        "spans AS (SELECT * FROM src WHERE trace_id IN (SELECT trace_id FROM matches) "
        "QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY ingest_seq) = 1), "
        "agg AS (SELECT trace_id, "
        "min(start_time_unix_nano) AS start_ns, max(end_time_unix_nano) AS end_ns, "
        "count(*) AS span_count, count(*) FILTER (WHERE status_code = 2) AS error_count, "
        "list(DISTINCT service_name ORDER BY service_name) AS services, "
        "arg_min(service_name, start_time_unix_nano) FILTER (WHERE parent_span_id = ''::BLOB) AS root_service, "
        "arg_min(name, start_time_unix_nano) FILTER (WHERE parent_span_id = ''::BLOB) AS root_name, "
        "arg_min(service_name, start_time_unix_nano) AS first_service, "
        "arg_min(name, start_time_unix_nano) AS first_name "
        "FROM spans GROUP BY trace_id) "
        "SELECT trace_id, coalesce(root_service, first_service), coalesce(root_name, first_name), "
        "root_service IS NULL, start_ns, end_ns, span_count, error_count, services FROM agg"
        + (f" WHERE {' AND '.join(having)}" if having else "")
        + f" ORDER BY start_ns DESC, trace_id LIMIT {int(q.limit)}"
    )
    all_params = params
    if q.min_trace_duration_ns is not None:
        all_params.append(q.min_trace_duration_ns)
    if q.max_trace_duration_ns is not None:
        all_params.append(q.max_trace_duration_ns)
    return sql, all_params


def search_logs(src: str, tenant: str, q: LogQuery) -> tuple[str, list[object]]:
    params: list[object] = [tenant, q.start_ns, q.end_ns]
    where = ["tenant = ?", "timestamp_unix_nano >= ?", "timestamp_unix_nano <= ?"]
    if q.service is not None:
        where.append("service_name = ?")
        params.append(q.service)
    if q.min_severity is not None:
        where.append("severity_number >= ? AND severity_number > 0")
        params.append(q.min_severity)
    if q.text is not None:
        where.append("contains(lower(body_text), lower(?))")
        params.append(q.text)
    if q.trace_id is not None:
        where.append("trace_id = ?")
        params.append(q.trace_id)
    if q.span_id is not None:
        where.append("span_id = ?")
        params.append(q.span_id)
    where.extend(_attr_conditions(q.attributes, params))
    sql = (
        f"SELECT * FROM {src} WHERE {' AND '.join(where)} "
        f"ORDER BY timestamp_unix_nano DESC, ingest_seq DESC LIMIT {int(q.limit)}"
    )
    return sql, params
