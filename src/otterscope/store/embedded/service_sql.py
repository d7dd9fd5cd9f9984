"""The embedded store's SQL for services and their dependencies.

The same rules as ``sql``: fixed text, column names from the schemas, and ``?`` placeholders
for every user value.
"""

from __future__ import annotations

MINUTE_NS = 60_000_000_000
# How long after a dependency window a child span is still looked for (a call that starts
# in the window may reach its callee a little later).
DEPENDENCY_MARGIN_NS = 5 * 60 * 1_000_000_000
# Duration histogram buckets per doubling: a bucket is 9% wide, so a percentile read from
# it is within about 5% of the exact one.
DURATION_STEPS_PER_OCTAVE = 8
_DURATION_BUCKET = f"CAST(floor(log2(greatest({{d}}, 1)) * {DURATION_STEPS_PER_OCTAVE}) AS INTEGER)"

# The time column each signal is filed under.
_TIME = {
    "traces": "start_time_unix_nano",
    "logs": "timestamp_unix_nano",
    "metrics": "time_unix_nano",
}


def service_activity(src: str, signal: str) -> str:
    """Per service, what one signal holds of it in the window: items, first and last time,
    the latest resource; for spans also errors and their durations as a histogram (as in
    ``dependencies``) (parameters: tenant, pin, start, end)."""
    t = _TIME[signal]
    spans = (
        ", count(*) FILTER (WHERE status_code = 2) AS errors, "
        f"histogram({_DURATION_BUCKET.format(d='duration_nano')}) AS durations"
        if signal == "traces"
        else ""
    )
    return (
        f"SELECT service_name, count(*) AS items, min({t}) AS first_ns, max({t}) AS last_ns, "
        f"arg_max(resource_attributes, {t}) AS resource{spans} "
        f"FROM {src} WHERE tenant = ? AND ingest_seq <= ? AND {t} >= ? AND {t} <= ? "
        "GROUP BY service_name"
    )


# A virtual node's name and type, from a calling span's attributes (old and new semantic
# conventions), most specific first.
_VIRTUAL = (
    ("peer.service", "service"),
    ("db.system.name", "database"),
    ("db.system", "database"),
    ("messaging.system", "messaging"),
    ("server.address", "external"),
    ("net.peer.name", "external"),
)


def dependencies(src: str) -> str:
    """Calls between services per minute (of the calling span's start) and (source, target,
    target type): count, failures, and the calling spans' durations as a histogram of
    ``floor(log2(ns) * DURATION_STEPS_PER_OCTAVE)`` (parameters: tenant, pin, window
    start, read end, window end, window end: spans are read a little past the window, so a
    call that starts in it finds a callee that starts just after it).

    Three kinds of call:
    - a SERVER or CONSUMER span (a service's entry) whose parent belongs to another service
      (the parent starts in the window);
    - a CLIENT or PRODUCER span with no SERVER or CONSUMER child (the callee does not
      report): the target is a virtual node named from ``peer.service``, ``db.system``,
      ``messaging.system`` or ``server.address``; spans with none of them are left out;
    - a CONSUMER span linked to a span of another service (messaging), unless that span is
      already its parent.
    One join of every span with the entry spans finds the first two. A call fails when
    either side has status ERROR.
    """
    name = ", ".join(f"json_extract_string(attributes, '/{key}')" for key, _ in _VIRTUAL)
    kind = " ".join(
        f"WHEN json_extract_string(attributes, '/{key}') IS NOT NULL THEN '{what}'"
        for key, what in _VIRTUAL
    )
    return (
        "WITH s AS ("
        "SELECT trace_id, span_id, parent_span_id, service_name AS service, kind, "
        "status_code, duration_nano, start_time_unix_nano AS st, links, "
        # Only calling spans need the (costly) attribute lookups.
        f"CASE WHEN kind IN (3, 4) THEN coalesce({name}) END AS vname, "
        f"CASE WHEN kind IN (3, 4) THEN CASE {kind} END END AS vtype "
        f"FROM {src} WHERE tenant = ? AND ingest_seq <= ? "
        "AND start_time_unix_nano >= ? AND start_time_unix_nano <= ?"
        "), entries AS (SELECT * FROM s WHERE kind IN (2, 5)"
        "), direct AS ("
        "SELECT p.st, p.service AS source, coalesce(c.service, p.vname) AS target, "
        "CASE WHEN c.service IS NULL THEN p.vtype ELSE 'service' END AS target_type, "
        "p.status_code = 2 OR coalesce(c.status_code = 2, false) AS failed, "
        "CASE WHEN p.kind IN (3, 4) OR c.duration_nano IS NULL THEN p.duration_nano "
        "ELSE c.duration_nano END AS d "
        "FROM s AS p LEFT JOIN entries AS c "
        "ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id "
        "WHERE p.st <= ? AND ((c.service IS NOT NULL AND c.service <> p.service) "
        "OR (c.service IS NULL AND p.vname IS NOT NULL))"
        "), linked AS ("
        "SELECT c.st, c.service AS target, c.status_code, c.duration_nano, c.parent_span_id, "
        "c.trace_id AS own_trace, "
        "unhex(json_extract_string(l, '$.traceId')) AS link_trace, "
        "unhex(json_extract_string(l, '$.spanId')) AS link_span "
        "FROM s AS c, unnest(CAST(c.links AS JSON[])) AS u(l) "
        "WHERE c.kind = 5 AND c.st <= ? AND c.links <> '[]'"
        "), links AS ("
        "SELECT l.st, p.service AS source, l.target, 'service' AS target_type, "
        "p.status_code = 2 OR l.status_code = 2 AS failed, l.duration_nano AS d "
        "FROM linked AS l JOIN s AS p ON p.trace_id = l.link_trace AND p.span_id = l.link_span "
        "WHERE p.service <> l.target "
        "AND NOT (l.own_trace = l.link_trace AND l.parent_span_id = l.link_span)"
        ") "
        f"SELECT st // {MINUTE_NS} AS minute, source, target, target_type, count(*) AS calls, "
        "count(*) FILTER (WHERE failed) AS errors, "
        f"histogram({_DURATION_BUCKET.format(d='d')}) AS durations "
        "FROM (SELECT * FROM direct UNION ALL SELECT * FROM links) "
        "GROUP BY minute, source, target, target_type"
    )


def entry_span_figures(src: str) -> str:
    """Requests, errors and p99 duration of entry spans (SERVER, CONSUMER, or without a
    parent) starting in the window, of one service or all (parameters: tenant, pin, start,
    end, service, service)."""
    entry = "(kind IN (2, 5) OR octet_length(parent_span_id) = 0)"
    return (
        f"SELECT count(*) FILTER (WHERE {entry}) AS requests, "
        f"count(*) FILTER (WHERE {entry} AND status_code = 2) AS errors, "
        f"quantile_cont(duration_nano, 0.99) FILTER (WHERE {entry}) AS p99_ns "
        f"FROM {src} WHERE tenant = ? AND ingest_seq <= ? "
        "AND start_time_unix_nano >= ? AND start_time_unix_nano <= ? "
        "AND (service_name = ? OR ? IS NULL)"
    )
