"""The SQL of trace summaries: the one summary statement, and the per-file summaries that
sealing keeps beside each span file (``tracesummary.py``).

A summary is (trace id, root service, root name, root missing, start, end, span count,
error count, services). The same statement computes it at sealing for every trace of a
file and at query time for the traces the kept ones cannot answer, so both agree.
"""

from __future__ import annotations

from collections.abc import Sequence

from otterscope.store.embedded.sql import quote_literal

# The Arrow table of the rows being sealed, as sealing registers it.
SEALING = "sealing_spans"


def _summaries(spans: str) -> str:
    """Summaries of every trace in ``spans`` (a CTE body with the summary's columns).

    Duplicates of a span count once; they are the same span, so any copy will do. The
    summary's root is the span without a parent; when it has not arrived, the topmost span
    stands in for it: the earliest of the spans whose parent is not in the trace. Ties on
    the start time are common (a Cloudflare Worker's clock is frozen within a request, so
    every span of one invocation starts at the same instant), and are broken by the longer
    span, then the span id, so a child never stands in for the parent it tied with.
    """
    order = "ORDER BY start_time_unix_nano, end_time_unix_nano DESC, span_id"
    return (
        f"WITH spans AS ({spans}), "
        "marked AS (SELECT s.*, s.parent_span_id = ''::BLOB AS is_root, "
        "p.span_id IS NULL AS is_top FROM spans s LEFT JOIN (SELECT trace_id, span_id FROM "
        "spans) p ON p.trace_id = s.trace_id AND p.span_id = s.parent_span_id), "
        "agg AS (SELECT trace_id, "
        "min(start_time_unix_nano) AS start_ns, max(end_time_unix_nano) AS end_ns, "
        "count(*) AS span_count, count(*) FILTER (WHERE status_code = 2) AS error_count, "
        "list(DISTINCT service_name ORDER BY service_name) AS services, "
        "count(*) FILTER (WHERE is_root) AS roots, "
        f"first(service_name {order}) FILTER (WHERE is_root) AS root_service, "
        f"first(name {order}) FILTER (WHERE is_root) AS root_name, "
        f"first(service_name {order}) FILTER (WHERE is_top) AS top_service, "
        f"first(name {order}) FILTER (WHERE is_top) AS top_name, "
        f"first(service_name {order}) AS first_service, "
        f"first(name {order}) AS first_name "
        "FROM marked GROUP BY trace_id) "
        "SELECT trace_id, coalesce(root_service, top_service, first_service) AS root_service, "
        "coalesce(root_name, top_name, first_name) AS root_name, "
        "roots = 0 AS root_missing, start_ns, end_ns, span_count, error_count, services "
        "FROM agg"
    )


_SPAN_COLUMNS = (
    "trace_id, span_id, parent_span_id, service_name, name, start_time_unix_nano, "
    "end_time_unix_nano, status_code"
)


# Copies of one span may differ (a resend with other content): the one ingested first
# counts, as everywhere else, whatever order the rows are read in.
# (DISTINCT ON with ORDER BY was not reliable inside the CTE: a window is explicit.)
_FIRST_COPY = "QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY ingest_seq) = 1"


def trace_summaries(src: str, count: int) -> str:
    """Summaries of ``count`` traces (parameters: tenant, pin, the trace ids)."""
    marks = ", ".join("?" for _ in range(count))
    return _summaries(
        f"SELECT {_SPAN_COLUMNS} FROM {src} "
        f"WHERE tenant = ? AND ingest_seq <= ? AND trace_id IN ({marks}) {_FIRST_COPY}"
    )


def sealing_has_copies() -> str:
    """Whether the rows being sealed hold a span more than once (then the summaries must
    pick the first copy: a window over every row, ~40% of their cost, needed only then)."""
    return f"SELECT EXISTS (SELECT 1 FROM {SEALING} GROUP BY trace_id, span_id HAVING count(*) > 1)"


def sealing_summaries(copies: bool = True) -> str:
    """Summaries of every trace in the rows being sealed (one tenant, table ``SEALING``),
    oldest first, with the end kept as the trace's duration (smaller to store) and the
    services as JSON text (a dictionary of the few combinations there are: decoding a list
    column for every trace cost more than the rest of the summary together)."""
    first = _FIRST_COPY if copies else ""
    inner = _summaries(f"SELECT {_SPAN_COLUMNS} FROM {SEALING} {first}")
    return (
        f"SELECT trace_id, root_service, root_name, root_missing, start_ns::BIGINT AS start_ns, "
        "(end_ns - start_ns)::BIGINT AS duration_ns, span_count::INTEGER AS span_count, "
        "error_count::INTEGER AS error_count, to_json(services)::VARCHAR AS services "
        f"FROM ({inner}) ORDER BY start_ns, trace_id"
    )


def kept_summaries(files: Sequence[str], count: int) -> str:
    """The kept summaries of ``count`` traces in the summary files ``files`` (parameters:
    the trace ids), each with the file it came from."""
    listed = ", ".join(quote_literal(f) for f in files)
    marks = ", ".join("?" for _ in range(count))
    return (
        "SELECT filename, trace_id, root_service, root_name, root_missing, start_ns, "
        "start_ns + duration_ns, span_count, error_count, "
        "from_json(services, '[\"VARCHAR\"]') "
        f"FROM read_parquet([{listed}], filename = true) WHERE trace_id IN ({marks})"
    )


def traces_in(src: str, count: int) -> str:
    """Which of ``count`` traces have a row in ``src`` (parameters: tenant, pin, the ids)."""
    marks = ", ".join("?" for _ in range(count))
    return (
        f"SELECT DISTINCT trace_id FROM {src} "
        f"WHERE tenant = ? AND ingest_seq <= ? AND trace_id IN ({marks})"
    )
