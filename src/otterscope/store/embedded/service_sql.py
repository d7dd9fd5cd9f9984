"""The embedded store's SQL for services and their dependencies.

The same rules as ``sql``: fixed text, column names from the schemas, and ``?`` placeholders
for every user value.
"""

from __future__ import annotations

from otterscope.store.base import SERVICE_GRAPH_BOUNDS_S

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


_ENTRY = "(kind IN (2, 5) OR octet_length(parent_span_id) = 0)"


def entry_span_figures(src: str) -> str:
    """Requests, errors and p99 duration of entry spans (SERVER, CONSUMER, or without a
    parent) starting in the window, of one service or all (parameters: tenant, pin, start,
    end, service, service)."""
    return (
        f"SELECT count(*) FILTER (WHERE {_ENTRY}) AS requests, "
        f"count(*) FILTER (WHERE {_ENTRY} AND status_code = 2) AS errors, "
        f"quantile_cont(duration_nano, 0.99) FILTER (WHERE {_ENTRY}) AS p99_ns "
        f"FROM {src} WHERE tenant = ? AND ingest_seq <= ? "
        "AND start_time_unix_nano >= ? AND start_time_unix_nano <= ? "
        "AND (service_name = ? OR ? IS NULL)"
    )


def entry_span_figures_by_service(src: str, every: bool) -> str:
    """``entry_span_figures`` of several services in one pass: one row per service with
    entry spans (``service``), and with ``every`` also the row of all services together
    (``service`` NULL, ``whole`` true). Parameters: tenant, pin, start, end, and without
    ``every`` the services' names as a list (only those are read)."""
    sets = "GROUPING SETS ((service_name), ())" if every else "service_name"
    only = "" if every else " AND list_contains(?::VARCHAR[], service_name)"
    return (
        "SELECT service_name AS service, grouping(service_name) = 1 AS whole, "
        "count(*) AS requests, count(*) FILTER (WHERE status_code = 2) AS errors, "
        "quantile_cont(duration_nano, 0.99) AS p99_ns "
        f"FROM {src} WHERE tenant = ? AND ingest_seq <= ? "
        f"AND start_time_unix_nano >= ? AND start_time_unix_nano <= ? AND {_ENTRY}{only} "
        f"GROUP BY {sets}"
    )


# Tempo's names for the callee of a client span whose callee sends no span (in its order),
# and for a database call's server: peer.service, server.address, network.peer.address, then
# the database's name or system.
_PEER = ("peer.service", "db.name", "db.system", "db.system.name")
_DB_NAME = ("db.namespace", "db.name", "db.system", "db.system.name")


# Every span attribute the service graph reads, extracted with one parse of a span's JSON
# (a json_extract_string per key parsed it up to twelve times: ~2 µs per span of a fold).
_GRAPH_KEYS = (
    *dict.fromkeys(
        [*_PEER, *_DB_NAME, "server.address", "network.peer.address", "network.peer.port"]
    ),
)


def _first(keys: tuple[str, ...], found: str, among: tuple[str, ...]) -> str:
    """The first of ``keys`` with a value in ``found`` (a list of the values of ``among``)."""
    return "coalesce(" + ", ".join(f"{found}[{among.index(k) + 1}]" for k in keys) + ")"


def _paths(keys: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'/{k}'" for k in keys) + "]"


def service_graph_bounds(src: str) -> str:
    """The start times of the calling and called spans numbered in (after, upto]: where
    ``service_graph`` looks for their other side (parameters: after, upto)."""
    return (
        "SELECT min(start_time_unix_nano) AS lo, max(start_time_unix_nano) AS hi "
        f"FROM {src} WHERE ingest_seq > ? AND ingest_seq <= ? AND kind IN (2, 3, 4, 5)"
    )


def graph_traces(src: str) -> str:
    """The traces with a calling or called span numbered in (after, upto] (parameters:
    after, upto): ``service_graph`` reads only files that hold one of them."""
    return (
        f"SELECT DISTINCT trace_id FROM {src} "
        "WHERE ingest_seq > ? AND ingest_seq <= ? AND kind IN (2, 3, 4, 5)"
    )


def service_graph(src: str) -> str:
    """The service graph's requests completed by the spans numbered in (after, upto], per
    tenant, client, server and connection type: calls, failed calls, the client's and the
    server's durations (sums and cumulative ``cle_i``/``sle_i`` counts per
    SERVICE_GRAPH_BOUNDS_S). Parameters: after, upto, pin, lo, hi (start times, margin
    included), then after, upto four times.

    As Tempo pairs them: a CLIENT (or PRODUCER, ``messaging_system``) span and the SERVER
    (CONSUMER) span whose parent it is make one request, counted when the later of the two
    is numbered in the range; it failed when either side has status ERROR. A client span
    naming a database (``db.namespace``/``db.name``/``db.system``) is a ``database`` request
    at once, its server named by peer.service, server.address, network.peer.address or the
    database. A client span with no server span numbered up to ``pin`` (the caller lags
    ``upto`` behind ``pin`` by ``metrics.service_graph_wait``) whose ``peer.service`` (or
    database attribute) names its callee is a ``virtual_node`` request to it; a SERVER span
    without a parent is a ``virtual_node`` request from its ``peer.service`` or ``user``.
    """
    cb = ", ".join(
        f"count(*) FILTER (WHERE cd <= {int(b * 1e9)}) AS cle_{i}"
        for i, b in enumerate(SERVICE_GRAPH_BOUNDS_S)
    )
    sb = ", ".join(
        f"count(*) FILTER (WHERE sd <= {int(b * 1e9)}) AS sle_{i}"
        for i, b in enumerate(SERVICE_GRAPH_BOUNDS_S)
    )
    keys = _GRAPH_KEYS
    address = (
        f"{_first(('network.peer.address',), 'x', keys)} || "
        f"coalesce(':' || {_first(('network.peer.port',), 'x', keys)}, '')"
    )
    db_name = f"coalesce({_first(_DB_NAME, 'y', _DB_NAME)}, {_first(_DB_NAME, 'x', keys)})"
    server_of_db = (
        f"coalesce({_first(('peer.service',), 'x', keys)}, "
        f"{_first(('server.address',), 'x', keys)}, {address})"
    )
    in_range = "seq > ? AND seq <= ?"
    return (
        # Only the traces of the spans in the range: the other side of a request is in
        # the same trace, and most spans in the time window are not.
        "WITH fresh AS (SELECT DISTINCT tenant, trace_id FROM "
        f"{src} WHERE ingest_seq > ? AND ingest_seq <= ? AND kind IN (2, 3, 4, 5)"
        "), near AS ("
        "SELECT tenant, trace_id, span_id, parent_span_id, service, kind, err, d, seq, "
        f"CASE WHEN kind IN (3, 4) THEN {db_name} END AS dbname, "
        f"{_first(_PEER, 'x', keys)} AS peer, {server_of_db} AS dbserver FROM ("
        "SELECT tenant, trace_id, span_id, parent_span_id, service_name AS service, kind, "
        "status_code = 2 AS err, duration_nano AS d, ingest_seq AS seq, "
        # Read only where used: a client's callee or database, a root server's caller.
        "CASE WHEN kind IN (3, 4) OR octet_length(parent_span_id) = 0 THEN "
        f"json_extract_string(attributes, {_paths(keys)}) END AS x, "
        "CASE WHEN kind IN (3, 4) THEN "
        f"json_extract_string(resource_attributes, {_paths(_DB_NAME)}) END AS y "
        f"FROM {src} WHERE ingest_seq <= ? AND kind IN (2, 3, 4, 5) "
        "AND start_time_unix_nano >= ? AND start_time_unix_nano <= ? "
        "AND (tenant, trace_id) IN (SELECT tenant, trace_id FROM fresh))"
        "), callers AS (SELECT * FROM near WHERE kind IN (3, 4) AND dbname IS NULL"
        "), callees AS (SELECT * FROM near WHERE kind IN (2, 5)"
        "), calls AS ("
        "SELECT p.tenant, p.service AS client, c.service AS server, "
        "CASE WHEN p.kind = 4 OR c.kind = 5 THEN 'messaging_system' ELSE '' END AS ctype, "
        "p.err OR c.err AS failed, p.d AS cd, c.d AS sd "
        "FROM callers AS p JOIN callees AS c ON c.tenant = p.tenant "
        "AND c.trace_id = p.trace_id AND c.parent_span_id = p.span_id "
        "WHERE greatest(p.seq, c.seq) > ? AND greatest(p.seq, c.seq) <= ? "
        "UNION ALL "
        "SELECT tenant, service, coalesce(dbserver, dbname), 'database', err, d, d FROM near "
        f"WHERE kind IN (3, 4) AND dbname IS NOT NULL AND {in_range} "
        "UNION ALL "
        "SELECT p.tenant, p.service, p.peer, 'virtual_node', p.err, p.d, 0 FROM callers AS p "
        f"WHERE p.peer IS NOT NULL AND p.{in_range} AND NOT EXISTS (SELECT 1 FROM callees AS c "
        "WHERE c.tenant = p.tenant AND c.trace_id = p.trace_id "
        "AND c.parent_span_id = p.span_id) "
        "UNION ALL "
        "SELECT tenant, coalesce(peer, 'user'), service, 'virtual_node', err, 0, d FROM callees "
        f"WHERE octet_length(parent_span_id) = 0 AND {in_range}"
        ") "
        "SELECT tenant, client, server, ctype AS connection_type, count(*) AS calls, "
        "count(*) FILTER (WHERE failed) AS failed, sum(cd) / 1e9 AS client_sum, "
        f"sum(sd) / 1e9 AS server_sum, {cb}, {sb} "
        "FROM calls GROUP BY tenant, client, server, ctype"
    )
