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


class _Where:
    """A WHERE clause and its parameters, built together so they cannot drift apart."""

    def __init__(self, *always: tuple[str, object]) -> None:
        self.conditions: list[str] = []
        self.params: list[object] = []
        for condition, value in always:
            self.add(condition, value)

    def add(self, condition: str, value: object) -> None:
        """Add ``condition`` (one ``?``) unless ``value`` is None."""
        if value is not None:
            self.conditions.append(condition)
            self.params.append(value)

    def attributes(self, attrs: Sequence[tuple[str, str]]) -> None:
        # Span or resource attribute; typed values compare by their text (500 = "500").
        for key, value in attrs:
            path = "$." + '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
            self.conditions.append(
                "(json_extract_string(attributes, ?) = ? "
                "OR json_extract_string(resource_attributes, ?) = ?)"
            )
            self.params.extend([path, value, path, value])

    def sql(self) -> str:
        return " AND ".join(self.conditions)


def search_traces(src: str, tenant: str, q: TraceQuery) -> tuple[str, list[object]]:
    where = _Where(
        ("start_time_unix_nano >= ?", q.start_ns), ("start_time_unix_nano <= ?", q.end_ns)
    )
    where.add("service_name = ?", q.service)
    where.add("contains(lower(name), lower(?))", q.operation)
    where.add("status_code = ?", q.status)
    where.add("duration_nano >= ?", q.min_duration_ns)
    where.add("duration_nano <= ?", q.max_duration_ns)
    where.attributes(q.attributes)
    trace_filter = q.min_trace_duration_ns is not None or q.max_trace_duration_ns is not None
    # Without a whole-trace condition the newest matches decide the page, so the limit can
    # be applied before the (more costly) aggregation over every span of those traces.
    match_limit = "" if trace_filter else f"ORDER BY last_match DESC LIMIT {int(q.limit)}"
    having = _Where()
    having.add("(end_ns - start_ns) >= ?", q.min_trace_duration_ns)
    having.add("(end_ns - start_ns) <= ?", q.max_trace_duration_ns)
    sql = (
        f"WITH src AS (SELECT * FROM {src} WHERE tenant = ?), "
        f"matches AS (SELECT trace_id, max(start_time_unix_nano) AS last_match FROM src "
        f"WHERE {where.sql()} GROUP BY trace_id {match_limit}), "
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
        + (f" WHERE {having.sql()}" if having.conditions else "")
        + f" ORDER BY start_ns DESC, trace_id LIMIT {int(q.limit)}"
    )
    return sql, [tenant, *where.params, *having.params]


def search_logs(src: str, tenant: str, q: LogQuery) -> tuple[str, list[object]]:
    where = _Where(
        ("tenant = ?", tenant),
        ("timestamp_unix_nano >= ?", q.start_ns),
        ("timestamp_unix_nano <= ?", q.end_ns),
    )
    where.add("service_name = ?", q.service)
    where.add("severity_number >= ? AND severity_number > 0", q.min_severity)
    where.add("contains(lower(body_text), lower(?))", q.text)
    where.add("trace_id = ?", q.trace_id)
    where.add("span_id = ?", q.span_id)
    where.attributes(q.attributes)
    sql = (
        f"SELECT * FROM {src} WHERE {where.sql()} "
        f"ORDER BY timestamp_unix_nano DESC, ingest_seq DESC LIMIT {int(q.limit)}"
    )
    return sql, where.params
