"""Every SQL statement of the embedded store, and nothing else.

Statements are built from fixed text plus three kinds of inserts: table and file names the
store itself made, column names from the schemas, and ``?`` placeholders for every user
value. No user string is ever spliced into SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson
import pyarrow as pa

from otterscope.otlp.schema import SCHEMAS, TABLES
from otterscope.query.model import FetchQuery, LogQuery, TraceQuery

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


# The Arrow tables of deleted traces and spans a query registers (see deletes.py).
DELETED_TRACES = "deleted_traces"
DELETED_SPANS = "deleted_spans"


def source(signal: str, hot: bool, files: Sequence[str], deletes: bool = False) -> str:
    """A FROM-able union of the hot rows and the sealed files of one signal.

    With ``deletes``, spans named by a tombstone (up to its sequence number) are left out.
    """
    cols = column_list(signal)
    parts = [f"SELECT {cols} FROM {hot_view(signal)}"] if hot else []
    if files:
        listed = ", ".join(quote_literal(f) for f in files)
        parts.append(f"SELECT {cols} FROM read_parquet([{listed}])")
    if not parts:
        parts.append(f"SELECT {cols} FROM main.empty_{TABLES[signal]}")
    union = "(" + " UNION ALL ".join(parts) + ")"
    if not deletes or signal != "traces":
        return union
    return _without_deleted(union)


def _without_deleted(union: str) -> str:
    return (
        f"(SELECT * FROM {union} AS x WHERE NOT EXISTS (SELECT 1 FROM {DELETED_TRACES} d "
        "WHERE d.tenant = x.tenant AND d.trace_id = x.trace_id AND x.ingest_seq <= d.seq) "
        f"AND NOT EXISTS (SELECT 1 FROM {DELETED_SPANS} d WHERE d.tenant = x.tenant "
        "AND d.trace_id = x.trace_id AND d.span_id = x.span_id AND x.ingest_seq <= d.seq))"
    )


# The Arrow table of attribute index hits a search registers: (c: condition number,
# f: file, r: file row).
ATTR_HITS = "attr_hits"


def indexed_spans(files: Sequence[str], deletes: bool) -> str:
    """Sealed span files read with each row's file and row number, which the attribute
    index names (``file_name``, ``file_row``)."""
    listed = ", ".join(quote_literal(f) for f in files)
    union = (
        f"(SELECT {column_list('traces')}, filename AS file_name, file_row_number AS file_row "
        f"FROM read_parquet([{listed}], filename = true, file_row_number = true))"
    )
    return _without_deleted(union) if deletes else union


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

    def attributes(
        self,
        attrs: Sequence[tuple[str, str]],
        resources: Sequence[Sequence[str]] | None = None,
        indexed: bool = False,
    ) -> None:
        """Span (or record) or resource attribute ``key`` whose value's text is ``value``
        (typed values compare by their text: 500 = "500").

        ``resources``, when given, holds per condition the stored resource attribute sets
        that satisfy it: resources repeat, so they are tested once each beforehand and the
        rows are matched by plain string equality instead of parsing every row's JSON.
        ``indexed``: the rows come from ``indexed_spans`` and the span side of condition
        ``i`` is the rows the attribute index named for it (``ATTR_HITS``), so no row's
        attribute JSON is read.
        """
        for i, (key, value) in enumerate(attrs):
            path = json_path(key)
            needles = attribute_needles(key, value)
            if indexed:
                either = [
                    f"EXISTS (SELECT 1 FROM {ATTR_HITS} h WHERE h.c = {int(i)} "
                    "AND h.f = file_name AND h.r = file_row)"
                ]
            # A plain substring test first: far cheaper than parsing the JSON of every
            # row, and it only ever lets through rows the exact test then decides.
            elif needles:
                found = " OR ".join("contains(attributes, ?)" for _ in needles)
                either = [f"(({found}) AND json_extract_string(attributes, ?) = ?)"]
                self.params.extend([*needles, path, value])
            else:
                either = ["json_extract_string(attributes, ?) = ?"]
                self.params.extend([path, value])
            if resources is None:
                either.append("json_extract_string(resource_attributes, ?) = ?")
                self.params.extend([path, value])
            elif resources[i]:
                marks = ", ".join("?" for _ in resources[i])
                either.append(f"resource_attributes IN ({marks})")
                self.params.extend(resources[i])
            self.conditions.append("(" + " OR ".join(either) + ")")

    def sql(self) -> str:
        return " AND ".join(self.conditions)


def _pinned(src: str, tenant: str, pin: int) -> tuple[str, list[object]]:
    return f"SELECT * FROM {src} WHERE tenant = ? AND ingest_seq <= ?", [tenant, pin]


def _span_conditions(
    tenant: str,
    q: TraceQuery,
    pin: int | None,
    resources: Sequence[Sequence[str]] | None,
    indexed: bool = False,
) -> _Where:
    """Conditions on one and the same span (Jaeger's semantics), in the window; no pin
    when every row read is within it."""
    where = _Where(
        ("tenant = ?", tenant),
        ("ingest_seq <= ?", pin),
        ("start_time_unix_nano >= ?", q.start_ns),
        ("start_time_unix_nano <= ?", q.end_ns),
    )
    where.add("service_name = ?", q.service)
    if q.operation_exact:
        where.add("name = ?", q.operation)
    else:
        where.add("contains(lower(name), lower(?))", q.operation)
    where.add("status_code = ?", q.status)
    where.add("kind = ?", q.kind)
    where.add("duration_nano >= ?", q.min_duration_ns)
    where.add("duration_nano <= ?", q.max_duration_ns)
    where.attributes(q.attributes, resources, indexed)
    return where


def trace_candidates(
    src: str,
    tenant: str,
    q: TraceQuery,
    pin: int | None,
    count: int,
    resources: Sequence[Sequence[str]] | None = None,
    before_ns: int | None = None,
    indexed_src: str | None = None,
) -> tuple[str, list[object]]:
    """The newest ``count`` spans matching the span conditions (starting no later than
    ``before_ns``): (trace id, start). ``indexed_src`` (``indexed_spans``): files whose
    attribute conditions the attribute index answers, read beside ``src``."""
    where = _span_conditions(tenant, q, pin, resources)
    where.add("start_time_unix_nano <= ?", before_ns)
    top = f"ORDER BY start_time_unix_nano DESC LIMIT {int(count)}"
    sql = f"SELECT trace_id, start_time_unix_nano FROM {src} WHERE {where.sql()} {top}"
    if indexed_src is None:
        return sql, where.params
    other = _span_conditions(tenant, q, pin, resources, indexed=True)
    other.add("start_time_unix_nano <= ?", before_ns)
    # Each side keeps its own top-N, so each still skips row groups older than its cut.
    sql = (
        f"SELECT * FROM (({sql}) UNION ALL (SELECT trace_id, start_time_unix_nano FROM "
        f"{indexed_src} WHERE {other.sql()} {top})) {top}"
    )
    return sql, [*where.params, *other.params]


def _log_conditions(
    tenant: str, q: LogQuery, pin: int | None, resources: Sequence[Sequence[str]] | None
) -> _Where:
    """Conditions on one and the same log record, in the window; no pin when every row
    read is within it."""
    where = _Where(
        ("tenant = ?", tenant),
        ("ingest_seq <= ?", pin),
        ("timestamp_unix_nano >= ?", q.start_ns),
        ("timestamp_unix_nano <= ?", q.end_ns),
    )
    where.add("service_name = ?", q.service)
    where.add("severity_number >= ? AND severity_number > 0", q.min_severity)
    where.add("contains(lower(body_text), lower(?))", q.text)
    where.add("trace_id = ?", q.trace_id)
    where.add("span_id = ?", q.span_id)
    where.attributes(q.attributes, resources)
    return where


def search_logs(
    src: str,
    tenant: str,
    q: LogQuery,
    pin: int | None,
    resources: Sequence[Sequence[str]] | None = None,
) -> tuple[str, list[object]]:
    where = _log_conditions(tenant, q, pin, resources)
    if q.after is not None:
        ts, seq = q.after
        where.add("timestamp_unix_nano <= ?", ts)  # plain bound: prunes files and row groups
        where.conditions.append(
            "(timestamp_unix_nano < ? OR (timestamp_unix_nano = ? AND ingest_seq < ?))"
        )
        where.params.extend([ts, ts, seq])
    sql = (
        f"SELECT * FROM {src} WHERE {where.sql()} "
        f"ORDER BY timestamp_unix_nano DESC, ingest_seq DESC LIMIT {int(q.limit) + 1}"
    )
    return sql, where.params


def log_volume(
    src: str,
    tenant: str,
    q: LogQuery,
    pin: int,
    step_ns: int,
    resources: Sequence[Sequence[str]] | None = None,
) -> tuple[str, list[object]]:
    """Records matching ``q`` (its paging fields aside) counted per step (``step``: the
    record's time // ``step_ns``) and severity class (``severity_class``: 1 TRACE for
    severity numbers 1-4, ... 6 FATAL for 21-24; 0 for 0 and anything outside 1-24).

    Every stored record counts, as ``search_logs`` answers every one: log records carry no
    identity by which two copies could be told from two records.
    """
    where = _log_conditions(tenant, q, pin, resources)
    severity = (
        "CASE WHEN severity_number BETWEEN 1 AND 24 THEN (severity_number + 3) // 4 ELSE 0 END"
    )
    sql = (
        f"SELECT timestamp_unix_nano // ? AS step, {severity} AS severity_class, "
        f"count(*) AS records FROM {src} WHERE {where.sql()} "
        "GROUP BY step, severity_class ORDER BY step, severity_class"
    )
    return sql, [step_ns, *where.params]


# The time column each signal is fetched (exported, replayed) in the order of.
FETCH_TIME = {
    "traces": "start_time_unix_nano",
    "logs": "timestamp_unix_nano",
    "metrics": "time_unix_nano",
}


def fetch(src: str, tenant: str, q: FetchQuery, pin: int) -> tuple[str, list[object]]:
    """One page of a signal in (time, ids) order; the caller drops adjacent duplicates."""
    t = FETCH_TIME[q.signal]
    where = _Where(
        ("tenant = ?", tenant),
        ("ingest_seq <= ?", pin),
        (f"{t} >= ?", q.start_ns),
        (f"{t} <= ?", q.end_ns),
    )
    if q.signal == "traces":
        order = f"{t}, trace_id, span_id, ingest_seq"
        if q.after is not None:
            a: list[object] = list(q.after)  # (time, trace id, span id)
            where.add(f"{t} >= ?", a[0])
            where.conditions.append(
                f"({t} > ? OR ({t} = ? AND (trace_id > ? OR (trace_id = ? AND span_id > ?))))"
            )
            where.params.extend([a[0], a[0], a[1], a[1], a[2]])
    else:
        order = f"{t}, ingest_seq"
        if q.after is not None:
            b: list[object] = list(q.after)  # (time, ingest_seq)
            where.add(f"{t} >= ?", b[0])
            where.conditions.append(f"({t} > ? OR ({t} = ? AND ingest_seq > ?))")
            where.params.extend([b[0], b[0], b[1]])
    sql = f"SELECT * FROM {src} WHERE {where.sql()} ORDER BY {order} LIMIT {int(q.limit) + 1}"
    return sql, where.params


def spans_of_traces(src: str, count: int) -> str:
    """Every span of ``count`` traces (parameters: tenant, pin, then the trace ids)."""
    marks = ", ".join("?" for _ in range(count))
    return (
        f"SELECT * FROM {src} WHERE tenant = ? AND ingest_seq <= ? AND trace_id IN ({marks}) "
        "QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY ingest_seq) = 1 "
        "ORDER BY trace_id, start_time_unix_nano, span_id"
    )


def recent_traces(src: str, limit: int) -> str:
    """Trace ids by latest span end, newest first, ended by a time (tenant, pin, from, to)."""
    return (
        f"SELECT trace_id, max(end_time_unix_nano) AS end_ns FROM {src} "
        "WHERE tenant = ? AND ingest_seq <= ? AND end_time_unix_nano >= ? "
        "GROUP BY trace_id HAVING max(end_time_unix_nano) <= ? "
        f"ORDER BY end_ns DESC, trace_id LIMIT {int(limit)}"
    )


def recent_spans(src: str, limit: int) -> str:
    # Top-N first, then duplicates out of those few: a window over every row would not scale.
    return (
        f"WITH top AS (SELECT * FROM {src} WHERE tenant = ? AND ingest_seq <= ? "
        f"ORDER BY start_time_unix_nano DESC, ingest_seq LIMIT {2 * int(limit)}) "
        "SELECT * FROM top "
        "QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY ingest_seq) = 1 "
        f"ORDER BY start_time_unix_nano DESC, trace_id, span_id LIMIT {int(limit)}"
    )


def operations(src: str) -> str:
    """Span names and kinds of one service (tenant, pin, service, from, to)."""
    return (
        f"SELECT name, kind, count(*) AS spans FROM {src} "
        "WHERE tenant = ? AND ingest_seq <= ? AND service_name = ? "
        "AND start_time_unix_nano >= ? AND start_time_unix_nano <= ? "
        "GROUP BY name, kind ORDER BY name, kind"
    )


# Where each signal keeps attributes, and its time column, for autocomplete.
ATTRIBUTE_COLUMNS = ("attributes", "resource_attributes")
# The attribute columns of a scope of ``Store.attribute_keys`` (None: both).
SCOPE_COLUMNS: dict[str | None, tuple[str, ...]] = {
    None: ATTRIBUTE_COLUMNS,
    "item": ("attributes",),
    "resource": ("resource_attributes",),
}


def attribute_keys(
    src: str, signal: str, limit: int, columns: tuple[str, ...] = ATTRIBUTE_COLUMNS
) -> str:
    """Attribute keys in use (tenant, pin, from, to, prefix), most used first, of the
    ``columns`` (item attributes, resource attributes or both)."""
    t = FETCH_TIME[signal]
    union = " UNION ALL ".join(
        f"SELECT unnest(json_keys({col})) AS key FROM rows" for col in columns
    )
    return (
        f"WITH rows AS (SELECT {', '.join(columns)} FROM {src} "
        f"WHERE tenant = ? AND ingest_seq <= ? AND {t} >= ? AND {t} <= ?), "
        f"keys AS ({union}) "
        "SELECT key, count(*) AS n FROM keys WHERE starts_with(key, ?) "
        f"GROUP BY key ORDER BY n DESC, key LIMIT {int(limit)}"
    )


def attribute_values(
    src: str, signal: str, limit: int, columns: tuple[str, ...] = ATTRIBUTE_COLUMNS
) -> str:
    """Values of one key (the path once per column, tenant, pin, from, to, prefix), most
    used first, from the first of the ``columns`` that has the key.

    Values come back as stored (typed JSON text); the prefix is matched on their text.
    """
    t = FETCH_TIME[signal]
    found = ", ".join(f"json_extract({col}, ?)" for col in columns)
    return (
        f"WITH rows AS (SELECT coalesce({found}) AS v FROM {src} "
        f"WHERE tenant = ? AND ingest_seq <= ? AND {t} >= ? AND {t} <= ?) "
        "SELECT v::VARCHAR AS value, count(*) AS n FROM rows "
        "WHERE v IS NOT NULL AND starts_with(lower(json_extract_string(v, '$')), lower(?)) "
        f"GROUP BY value ORDER BY n DESC, value LIMIT {int(limit)}"
    )


_CANONICAL = re.compile(r"-?(0|[1-9][0-9]{0,17})|true|false")


def attribute_needles(key: str, value: str) -> list[str]:
    """Texts of which one must occur in a stored attribute set for ``key`` to have a value
    whose text is ``value``; empty when no such text can be named.

    Stored attribute JSON is written compactly (``"key":value``, orjson's escaping). A
    string value appears quoted; an integer or bool as its canonical literal. Doubles have
    more than one spelling, so a value that reads as one gets no needle.
    """
    if value[:1] in ("{", "["):
        return []  # arrays, kvlists and tagged values: JSON text has more than one spelling
    head = orjson.dumps(key).decode() + ":"
    needles = [head + orjson.dumps(value).decode()]
    if _CANONICAL.fullmatch(value):
        needles.append(head + value)
    elif _looks_numeric(value):
        return []
    return needles


def _looks_numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return value.strip().lower() in ("nan", "inf", "-inf", "infinity", "-infinity")
    return True


def json_path(key: str) -> str:
    """A JSON Pointer naming one top-level key, whatever characters it holds. (A quoted
    ``$."*"`` path is still DuckDB's wildcard: it would match every attribute.)"""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def files_holding_traces(files: Sequence[str], count: int) -> str:
    """Which of the Parquet files hold spans of ``count`` traces (parameters: the ids)."""
    listed = ", ".join(quote_literal(f) for f in files)
    marks = ", ".join("?" for _ in range(count))
    return (
        f"SELECT DISTINCT filename FROM read_parquet([{listed}], filename = true) "
        f"WHERE trace_id IN ({marks})"
    )


def matching_resources(count: int) -> str:
    """Which of ``count`` stored resource attribute sets have ``key`` at a value whose text
    is ``value`` (parameters: the sets, path, value): the same test rows would get."""
    marks = ", ".join("?" for _ in range(count))
    return (
        f"SELECT r FROM (SELECT unnest([{marks}]::VARCHAR[]) AS r) "
        "WHERE json_extract_string(r, ?) = ?"
    )


# -- the attribute index of sealed span files (attrindex.py) ---------------------------------


def attribute_index_keys() -> str:
    """The top-level attribute keys of the rows being sealed (table ``attrs``: a, r)."""
    return "SELECT DISTINCT unnest(json_keys(a)) AS k FROM attrs ORDER BY k"


def attribute_index() -> str:
    """Per (key number, value text): the file rows carrying it, or NULL when more than the
    rare limit do (parameters: the keys' JSON paths, the limit). The text is the one
    ``json_extract_string`` gives, which is what a search compares."""
    return (
        "WITH x AS (SELECT r, json_extract_string(a, ?::VARCHAR[]) AS vs FROM attrs), "
        "y AS (SELECT r, unnest(vs) AS v, generate_subscripts(vs, 1) - 1 AS k FROM x) "
        "SELECT k::USMALLINT AS k, v, "
        "CASE WHEN count(*) <= ? THEN list(r ORDER BY r) END AS rows "
        "FROM y WHERE v IS NOT NULL GROUP BY k, v ORDER BY k, v"
    )


def attribute_index_of_pairs() -> str:
    """``attribute_index`` from pairs read beforehand (table ``pairs``: r, k, v; parameter:
    the limit). Sorting each kept list afterwards cost half of ``list(r ORDER BY r)``."""
    return (
        "SELECT k::USMALLINT AS k, v::VARCHAR AS v, "
        "CASE WHEN count(*) <= ? THEN list_sort(list(r)) END AS rows "
        "FROM pairs GROUP BY k, v ORDER BY k, v"
    )


def memory_in_use() -> str:
    """Bytes DuckDB's buffer manager holds in memory right now (all its caches and
    operators), for the server's memory gauge."""
    return "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()"
