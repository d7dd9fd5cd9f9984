"""The embedded store's SQL for metrics: folding committed points for the accumulator,
and bucketing points and spans by step for the metrics query API.

The same rules as ``sql``: fixed text, column names from the schemas, and ``?`` placeholders
for every user value.
"""

from __future__ import annotations

from collections.abc import Sequence

from otterscope.store.base import SPAN_DURATION_BOUNDS_MS

# What identifies a metric series as stored (the accumulator narrows it further).
_SERIES = (
    "tenant, resource_attributes, scope_name, scope_version, metric_name, metric_type, "
    "aggregation_temporality, is_monotonic, attributes, explicit_bounds"
)


def _folded(src: str) -> str:
    """The metric points numbered in (after, upto], a delta point's resource without the
    per-invocation attributes, so the points of concurrent invocations group into one
    series here rather than in Python (parameters: a JSON merge patch setting those
    attributes to null, after, upto)."""
    return (
        "(SELECT * REPLACE (CASE WHEN aggregation_temporality = 1 "
        "THEN json_merge_patch(resource_attributes, ?::JSON)::VARCHAR "
        "ELSE resource_attributes END AS resource_attributes) "
        f"FROM {src} WHERE ingest_seq > ? AND ingest_seq <= ?)"
    )


def metric_aggregates(src: str) -> str:
    """Per stored series, the points numbered in (after, upto] folded together: sums of
    deltas, the latest of everything else (parameters: as ``_folded``).

    Exponential histograms are left out (not accumulated yet).
    """
    t = "time_unix_nano"
    v = "coalesce(value_double, value_int::DOUBLE)"
    return (
        f"SELECT {_SERIES}, any_value(metric_unit) AS unit, "
        "any_value(metric_description) AS description, count(*) AS points, "
        f"min(start_time_unix_nano) AS start_min, max({t}) AS time_max, "
        f"arg_max(start_time_unix_nano, {t}) AS start_last, "
        f"sum({v}) AS value_sum, arg_max({v}, {t}) AS value_last, "
        f"sum(count) AS count_sum, arg_max(count, {t}) AS count_last, "
        f"sum(sum) AS sum_sum, arg_max(sum, {t}) AS sum_last, "
        f"min(min) AS min_min, max(max) AS max_max, "
        f"arg_max(min, {t}) AS min_last, arg_max(max, {t}) AS max_last, "
        f"arg_max(bucket_counts, {t}) AS buckets_last, "
        f"arg_max(quantile_values, {t}) AS quantiles_last, "
        f"arg_max(exemplars, {t}) FILTER (WHERE exemplars <> '[]') AS exemplars_last "
        f"FROM {_folded(src)} WHERE metric_type != 4 "
        f"GROUP BY {_SERIES}"
    )


def delta_bucket_sums(src: str) -> str:
    """Per delta histogram series, its bucket counts added up element-wise over the points
    numbered in (after, upto] (parameters: as ``_folded``)."""
    return (
        f"SELECT {_SERIES}, list(total ORDER BY i) AS buckets FROM ("
        f"SELECT {_SERIES}, i, sum(c) AS total FROM ("
        f"SELECT {_SERIES}, unnest(bucket_counts) AS c, generate_subscripts(bucket_counts, 1) AS i "
        f"FROM {_folded(src)} WHERE metric_type = 3 AND aggregation_temporality = 1"
        f") GROUP BY {_SERIES}, i) GROUP BY {_SERIES}"
    )


def span_red(src: str) -> str:
    """Request, error and duration figures of the spans numbered in (after, upto], per
    tenant, service, span name, kind and status (parameters: after, upto). ``le_i`` counts
    the spans no longer than the i-th bound of SPAN_DURATION_BOUNDS_MS (cumulative)."""
    buckets = ", ".join(
        f"count(*) FILTER (WHERE duration_nano <= {int(ms) * 1_000_000}) AS le_{i}"
        for i, ms in enumerate(SPAN_DURATION_BOUNDS_MS)
    )
    return (
        "SELECT tenant, service_name, name, kind, status_code, count(*) AS calls, "
        "sum(duration_nano) / 1e6 AS sum_ms, min(start_time_unix_nano) AS start_min, "
        f"max(end_time_unix_nano) AS time_max, {buckets} "
        f"FROM {src} WHERE ingest_seq > ? AND ingest_seq <= ? "
        "GROUP BY tenant, service_name, name, kind, status_code"
    )


# What exponential.add and exponential.take read of one exponential histogram point.
_EXP_COLUMNS = (
    ("start_min", "start_time_unix_nano"),
    ("time_max", "time_unix_nano"),
    *(
        (c, c)
        for c in (
            "count",
            "sum",
            "min",
            "max",
            "scale",
            "zero_count",
            "zero_threshold",
            "positive_offset",
            "positive_bucket_counts",
            "negative_offset",
            "negative_bucket_counts",
        )
    ),
)
_EXP_SELECTED = ", ".join(f"{column} AS {name}" for name, column in _EXP_COLUMNS)
_EXP_FIELDS = ", ".join(f"{name} := {column}" for name, column in _EXP_COLUMNS)


def exponential_points(src: str) -> str:
    """Exponential histogram points numbered in (after, upto], in commit order (parameters:
    as ``_folded``); they are folded one by one (their buckets shift with the scale)."""
    return (
        "SELECT tenant, resource_attributes, scope_name, scope_version, metric_name, "
        "metric_type, aggregation_temporality, is_monotonic, attributes, "
        "metric_unit AS unit, metric_description AS description, "
        f"{_EXP_SELECTED}, exemplars "
        f"FROM {_folded(src)} WHERE metric_type = 4 "
        "ORDER BY ingest_seq"
    )


# A stored series when points are read back in time order (metric name included: one query
# may read several OTLP names that share a Prometheus name).
_QUERY_SERIES = (
    "metric_name, resource_attributes, scope_name, scope_version, attributes, metric_type, "
    "aggregation_temporality, is_monotonic, explicit_bounds"
)


def metric_steps(
    src: str,
    tenant: str,
    pin: int,
    names: Sequence[str],
    window: tuple[int, int, int],
    step_ns: int,
    limit: int,
    origin_ns: int = 0,
    needles: Sequence[str] = (),
) -> tuple[str, list[object]]:
    """Points of the ``names`` metrics turned into what each series added in each step.

    ``needles`` are texts a point's attributes or resource must contain (a cheap test the
    caller derives from its label filters: it never drops a point the filters keep).

    ``window`` is (read start, start, end): points from the read start on are read, so a
    cumulative series has a baseline before the start; only steps from the start on are
    answered. Rows: one per stored series and step (``(time - origin_ns) // step_ns``).

    Cumulative points become differences from the series' previous point. A later start
    time, or a monotonic value or a count that drops, is a reset: the point counts in full.
    A series' first point counts in full only when the series started inside the window;
    otherwise it is only a baseline (its ``inc_*`` are NULL). Delta points count as they
    are. Gauges and summaries keep their latest value and quantiles per step.
    """
    read_start, start, end = window
    marks = ", ".join("?" for _ in names)
    filters = "".join(
        " AND contains(coalesce(attributes, '') || coalesce(resource_attributes, ''), ?)"
        for _ in needles
    )
    base = "(aggregation_temporality = 2 AND pst IS NOT NULL AND NOT reset)"
    full = "(aggregation_temporality = 1 OR (aggregation_temporality = 2 AND (reset OR fresh)))"
    statement = (
        "WITH pts AS ("
        f"SELECT {_QUERY_SERIES}, start_time_unix_nano AS st, time_unix_nano AS ti, "
        "coalesce(value_double, value_int::DOUBLE) AS v, count::DOUBLE AS c, sum AS s, "
        "min AS lo, max AS hi, bucket_counts AS bc, quantile_values, "
        "CASE WHEN metric_type = 4 AND aggregation_temporality = 1 "
        f"THEN struct_pack({_EXP_FIELDS}) END AS exp "
        f"FROM {src} WHERE tenant = ? AND ingest_seq <= ? AND metric_name IN ({marks}) "
        f"AND time_unix_nano >= ? AND time_unix_nano <= ?{filters}"
        "), lagged AS ("
        "SELECT *, lag(st) OVER w AS pst, lag(v) OVER w AS pv, lag(c) OVER w AS pc, "
        "lag(s) OVER w AS ps, lag(bc) OVER w AS pbc "
        f"FROM pts WINDOW w AS (PARTITION BY {_QUERY_SERIES} ORDER BY ti, st)"
        "), flagged AS ("
        "SELECT *, coalesce(st > pst OR (is_monotonic AND v < pv) OR c < pc, false) AS reset, "
        "(pst IS NULL AND st >= ?) AS fresh FROM lagged"
        "), steps AS ("
        "SELECT *, (ti - ?) // ? AS step, "
        f"CASE WHEN {base} THEN v - pv WHEN {full} THEN v END AS dv, "
        f"CASE WHEN {base} THEN c - pc WHEN {full} THEN c END AS dc, "
        f"CASE WHEN {base} THEN s - ps WHEN {full} THEN s END AS ds, "
        f"CASE WHEN {base} AND len(bc) = len(pbc) THEN list_transform(list_zip(bc, pbc), "
        f"lambda x: x[1]::BIGINT - x[2]::BIGINT) WHEN {full} THEN bc::BIGINT[] END AS dbc "
        "FROM flagged WHERE ti >= ?"
        ") "
        f"SELECT step, {_QUERY_SERIES}, max(ti) AS time_last, arg_max(v, ti) AS value_last, "
        "sum(dv) AS inc_value, sum(dc) AS inc_count, sum(ds) AS inc_sum, "
        "min(lo) AS min, max(hi) AS max, list(dbc) FILTER (WHERE dbc IS NOT NULL) AS buckets, "
        "arg_max(quantile_values, ti) AS quantiles, "
        "list(exp) FILTER (WHERE exp IS NOT NULL) AS exp_points, count(*) AS points "
        f"FROM steps GROUP BY step, {_QUERY_SERIES} LIMIT {int(limit)}"
    )
    params: list[object] = [
        tenant,
        pin,
        *names,
        read_start,
        end,
        *needles,
        start,
        origin_ns,
        step_ns,
        start,
    ]
    return statement, params


def span_red_steps(
    src: str,
    tenant: str,
    pin: int,
    window: tuple[int, int],
    step_ns: int,
    limit: int,
    origin_ns: int = 0,
) -> tuple[str, list[object]]:
    """The spans' RED figures per step (by end time), service, span name, kind and status.
    ``le_i`` as in ``span_red``."""
    buckets = ", ".join(
        f"count(*) FILTER (WHERE duration_nano <= {int(ms) * 1_000_000}) AS le_{i}"
        for i, ms in enumerate(SPAN_DURATION_BOUNDS_MS)
    )
    statement = (
        "SELECT (end_time_unix_nano - ?) // ? AS step, service_name, name, kind, status_code, "
        "count(*) AS calls, sum(duration_nano) / 1e6 AS sum_ms, "
        "min(duration_nano) / 1e6 AS min_ms, max(duration_nano) / 1e6 AS max_ms, "
        f"max(end_time_unix_nano) AS time_last, {buckets} "
        f"FROM {src} WHERE tenant = ? AND ingest_seq <= ? "
        "AND end_time_unix_nano >= ? AND end_time_unix_nano <= ? "
        f"GROUP BY step, service_name, name, kind, status_code LIMIT {int(limit)}"
    )
    return statement, [origin_ns, step_ns, tenant, pin, window[0], window[1]]
