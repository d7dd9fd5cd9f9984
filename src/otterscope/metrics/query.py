"""The metrics query API's arithmetic: series of points per step from stored points and spans.

The store hands back, per stored series and step, what the series added in that step
(cumulative points already turned into reset-aware differences, see
``store.embedded.metric_sql.metric_steps``). This module filters those rows by label, groups
them, and aggregates each group per step:

- counters (monotonic sums): each series' increase in the step; ``increase`` and ``sum``
  add them up, ``rate`` divides that by the step in seconds, ``avg``/``min``/``max`` are
  over the series, ``count`` counts the series;
- gauges and up-down counters: each series' latest value in the step (for a delta up-down
  counter, its change in the step), then ``sum``/``avg``/``min``/``max``/``count`` over the
  series;
- histograms (classic and exponential) and summaries: ``count`` and ``sum`` of the
  observations in the step, ``avg`` = sum / count, ``rate`` = count per second,
  ``increase`` = count, ``min``/``max`` from the points' min and max; ``p50``..``p99`` from
  the merged bucket counts, interpolated within a bucket as Prometheus's
  ``histogram_quantile`` does (a summary answers a percentile only when it reports that
  quantile: the largest reported value among the group's series).

A series' identity is its resource, scope, name and attributes; for delta points the
per-invocation resource attributes (``metrics.exclude_resource_attributes``) are left out,
as on ``/metrics``. A step with no point of a group has no entry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from otterscope.errors import BadRequest, NotFound
from otterscope.metrics.accumulator import (
    DELTA,
    EXP_HISTOGRAM,
    GAUGE,
    HISTOGRAM,
    RED_BOUNDS_MS,
    RED_CALLS,
    RED_DURATION,
    SUM,
    Series,
    red_buckets,
    red_identity,
)
from otterscope.metrics.exponential import add as add_exponential
from otterscope.metrics.exponential import classic_buckets
from otterscope.metrics.exposition import label_value, prometheus_labels, prometheus_name
from otterscope.store.base import Store

Row = dict[str, Any]

PERCENTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
AGGREGATIONS = ("sum", "avg", "min", "max", "count", "rate", "increase", *PERCENTILES)
# Steps a default picks from: round numbers, about 120 points over the window.
NICE_STEPS_S = (1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
DEFAULT_POINTS = 120
MAX_POINTS = 11_000  # per series, as Prometheus's range queries
# Series x steps one query may read: bounds the memory a query takes.
MAX_CELLS = 200_000
# How far before the window a cumulative series' previous point is looked for (at least
# one step): the baseline its first increase in the window is measured from.
LOOKBACK_NS = 5 * 60 * 1_000_000_000

_COUNTER, _LEVEL, _DISTRIBUTION = "counter", "level", "distribution"


@dataclass(frozen=True, slots=True)
class MetricQuery:
    name: str  # OTLP or Prometheus name, as asked
    agg: str
    start_ns: int
    end_ns: int
    step_ns: int
    labels: tuple[tuple[str, str], ...] = ()
    group_by: tuple[str, ...] = ()
    origin_ns: int = 0  # steps start here (0: aligned to the epoch)

    @property
    def read_window(self) -> tuple[int, int, int]:
        """(read start, start, end): the read starts a lookback before the window."""
        return (
            max(0, self.start_ns - max(self.step_ns, LOOKBACK_NS)),
            self.start_ns,
            self.end_ns,
        )


def default_step(start_ns: int, end_ns: int) -> int:
    want = (end_ns - start_ns) / DEFAULT_POINTS / 1e9
    for step in NICE_STEPS_S:
        if step >= want:
            return step * 1_000_000_000
    return max(NICE_STEPS_S[-1], math.ceil(want)) * 1_000_000_000


def check_steps(start_ns: int, end_ns: int, step_ns: int) -> None:
    if step_ns <= 0:
        raise BadRequest("step must be positive")
    if (end_ns - start_ns) // step_ns + 1 > MAX_POINTS:
        raise BadRequest(
            f"step is too small for the window: more than {MAX_POINTS} points per series"
        )


def resolve(name: str, metrics: Iterable[tuple[str, str, int, bool]]) -> tuple[str, ...]:
    """The OTLP names ``name`` stands for (itself, or those with that Prometheus name),
    among (name, unit, kind, monotonic) of the metrics known."""
    found: set[str] = set()
    for otlp, unit, kind, monotonic in metrics:
        if otlp == name:
            return (name,)
        if prometheus_name(otlp, unit, kind, monotonic) == name:
            found.add(otlp)
    if not found:
        raise NotFound(f"no metric named {name!r} (GET /api/metrics lists them)")
    return tuple(sorted(found))


def run(
    store: Store,
    metrics: Iterable[tuple[str, str, int, bool]],
    tenant: str,
    query: MetricQuery,
    excluded: frozenset[str],
) -> list[dict[str, Any]]:
    """Answer a query: resolve the name, read the steps from the store, aggregate."""
    names = resolve(query.name, metrics)
    raw = read(store, tenant, names, query, needles(query.labels))
    check_cells(raw)
    return evaluate(as_rows(raw, names), query, excluded)


def red_name(names: Sequence[str]) -> str | None:
    """The RED metric among resolved names (computed from spans), if any."""
    return next((n for n in names if n in (RED_CALLS, RED_DURATION)), None)


def read(
    store: Store, tenant: str, names: Sequence[str], query: MetricQuery, needles: Sequence[str]
) -> list[Row]:
    """What the store holds for ``names`` over the query's window in its steps, as the
    store answers it (``as_rows`` makes them the rows ``evaluate`` takes). A RED metric is
    read from the spans, whatever its name (both RED metrics come from the same rows);
    ``needles`` pre-filter the points of other metrics (see ``needles``)."""
    if red_name(names) is not None:
        return store.span_red_steps(
            tenant, (query.start_ns, query.end_ns), query.step_ns, MAX_CELLS + 1, query.origin_ns
        )
    return store.metric_steps(
        tenant, names, query.read_window, query.step_ns, MAX_CELLS + 1, query.origin_ns, needles
    )


def check_cells(raw: Sequence[Row]) -> None:
    if len(raw) > MAX_CELLS:
        raise BadRequest(
            f"the query reads more than {MAX_CELLS} series x steps; "
            "use a larger step, a shorter window or another metric"
        )


def as_rows(raw: list[Row], names: Sequence[str]) -> list[Row]:
    red = red_name(names)
    return raw if red is None else red_rows(raw, red)


# Label values that are written the same in the stored JSON as in a label: a point whose
# attributes and resource do not contain one as text cannot match (``job`` is built from two
# attributes, so it gives none).
_PLAIN = re.compile(r"[A-Za-z0-9_.:/@ -]+")


def needles(labels: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """Texts the store may pre-filter points on for these label filters."""
    return tuple(v for k, v in labels if k != "job" and _PLAIN.fullmatch(v))


def red_rows(rows: Iterable[Row], name: str) -> list[Row]:
    """Per-step span figures as the rows ``evaluate`` takes, for one RED metric."""
    out = []
    calls = name == RED_CALLS
    for row in rows:
        resource, attrs = red_identity(row)
        n = int(row["calls"])
        out.append(
            {
                "step": int(row["step"]),
                "metric_name": name,
                "resource_attributes": resource,
                "scope_name": "",
                "scope_version": "",
                "attributes": attrs,
                "metric_type": SUM if calls else HISTOGRAM,
                "aggregation_temporality": DELTA,
                "is_monotonic": True,
                "explicit_bounds": None if calls else [float(b) for b in RED_BOUNDS_MS],
                "time_last": int(row["time_last"]),
                "value_last": None,
                "inc_value": float(n) if calls else None,
                "inc_count": None if calls else float(n),
                "inc_sum": None if calls else float(row["sum_ms"] or 0.0),
                "min": None if calls else row["min_ms"],
                "max": None if calls else row["max_ms"],
                "buckets": None if calls else [red_buckets(row)],
                "quantiles": None,
                "exp_points": None,
            }
        )
    return out


@dataclass(slots=True)
class _Cell:
    """One series in one step."""

    family: str
    time: int
    value: float | None  # latest value (levels), or the increase (counters)
    count: float | None = None
    total: float | None = None
    low: float | None = None
    high: float | None = None
    bounds: tuple[float, ...] = ()
    buckets: list[int] | None = None
    quantiles: dict[float, float] = field(default_factory=dict)


def _family(row: Row) -> str:
    kind = int(row["metric_type"])
    if kind == SUM and row["is_monotonic"]:
        return _COUNTER
    if kind in (GAUGE, SUM):
        return _LEVEL
    return _DISTRIBUTION


def _check(agg: str, row: Row, family: str, name: str) -> None:
    if (
        agg in PERCENTILES
        and int(row["metric_type"]) == EXP_HISTOGRAM
        and row["aggregation_temporality"] != DELTA
    ):
        raise BadRequest(
            f"{agg} of a cumulative exponential histogram is not supported; "
            "export it with delta temporality or as an explicit-bucket histogram"
        )
    if agg in ("rate", "increase") and family == _LEVEL:
        raise BadRequest(f"{agg} needs a counter or a histogram; {name!r} is a gauge")
    if agg in PERCENTILES and family != _DISTRIBUTION:
        raise BadRequest(f"{agg} needs a histogram; {name!r} is not one")


def _canonical(text: str | None, drop: frozenset[str] = frozenset()) -> dict[str, Any]:
    attrs = orjson.loads(text or "{}")
    return {k: attrs[k] for k in sorted(attrs) if k not in drop}


def _add(a: float | None, b: float | None) -> float | None:
    return b if a is None else (a if b is None else a + b)


def _sum_lists(lists: Iterable[Sequence[int]]) -> list[int] | None:
    """Element-wise sums of the lists as long as the first (others are left out)."""
    given = list(lists)
    if not given:
        return None
    width = len(given[0])
    return [int(sum(column)) for column in zip(*(c for c in given if len(c) == width), strict=True)]


def _distribution(row: Row) -> tuple[tuple[float, ...], list[int] | None]:
    """Bucket bounds and per-bucket counts of what a row's series added in the step."""
    if int(row["metric_type"]) == EXP_HISTOGRAM:
        points = row["exp_points"] or []
        if not points:
            return (), None
        merged = Series("", "{}", "", "", "", EXP_HISTOGRAM, False, "{}")
        for i, point in enumerate(points):
            add_exponential(merged, point, i == 0)
        pairs = classic_buckets(merged)
        return tuple(b for b, _ in pairs[:-1]), [c for _, c in pairs]
    bounds = tuple(float(b) for b in row["explicit_bounds"] or ())
    return bounds, _sum_lists(row["buckets"] or [])


def _cell(row: Row, family: str) -> _Cell:
    time = int(row["time_last"])
    if family == _COUNTER:
        return _Cell(family, time, row["inc_value"])
    if family == _LEVEL:
        delta = row["aggregation_temporality"] == DELTA
        return _Cell(family, time, row["inc_value"] if delta else row["value_last"])
    bounds, buckets = _distribution(row)
    # Non-finite quantiles are stored tagged (objects); they answer no percentile.
    quantiles = {
        float(q["quantile"]): float(q["value"])
        for q in orjson.loads(row["quantiles"] or "[]")
        if not isinstance(q.get("quantile"), dict) and not isinstance(q.get("value"), dict)
    }
    return _Cell(
        family,
        time,
        None,
        row["inc_count"],
        row["inc_sum"],
        row["min"],
        row["max"],
        bounds,
        buckets,
        quantiles,
    )


def _merge(a: _Cell, b: _Cell) -> _Cell:
    """Two rows of one series in one step (stored with attributes in another order)."""
    if a.family == _LEVEL:
        return a if a.time >= b.time else b
    a.value = _add(a.value, b.value)
    a.count = _add(a.count, b.count)
    a.total = _add(a.total, b.total)
    a.low = b.low if a.low is None else (a.low if b.low is None else min(a.low, b.low))
    a.high = b.high if a.high is None else (a.high if b.high is None else max(a.high, b.high))
    if b.buckets is not None:
        a.bounds, a.buckets = _merge_histograms([(a.bounds, a.buckets), (b.bounds, b.buckets)])
    a.quantiles = a.quantiles if a.time >= b.time else b.quantiles
    a.time = max(a.time, b.time)
    return a


def lookup(labels: dict[str, Any], prom: dict[str, str], key: str) -> str | None:
    """A label's text by its OTLP key (point attributes, then resource) or Prometheus name."""
    if key in labels:
        return label_value(labels[key])
    return prom.get(key)


@dataclass(frozen=True, slots=True)
class Prepared:
    """One row read for what every query over it needs, whatever its labels or
    aggregation: several queries over the same rows decode them once."""

    row: Row
    family: str
    labels: dict[str, Any]
    prom: dict[str, str]
    identity: tuple[Any, ...]
    step: int
    cell: _Cell  # never changed: merging works on a copy


def prepare(rows: Iterable[Row], excluded: frozenset[str]) -> list[Prepared]:
    out = []
    for row in rows:
        family = _family(row)
        delta = row["aggregation_temporality"] == DELTA
        resource = _canonical(row["resource_attributes"], excluded if delta else frozenset())
        attrs = _canonical(row["attributes"])
        identity = (
            row["metric_name"],
            orjson.dumps(resource),
            row["scope_name"],
            row["scope_version"],
            orjson.dumps(attrs),
            int(row["metric_type"]),
        )
        labels = {**resource, **attrs}
        prom = prometheus_labels(resource, attrs)
        out.append(
            Prepared(row, family, labels, prom, identity, int(row["step"]), _cell(row, family))
        )
    return out


def evaluate(
    rows: Iterable[Row], query: MetricQuery, excluded: frozenset[str]
) -> list[dict[str, Any]]:
    """``{"labels", "points"}`` per group, ordered by labels; points ``[unixMs, value]``."""
    return evaluate_prepared(prepare(rows, excluded), query)


def evaluate_prepared(rows: Iterable[Prepared], query: MetricQuery) -> list[dict[str, Any]]:
    """``evaluate`` over prepared rows. Only the rows the label filters keep are checked
    against the aggregation, so the answer does not depend on what else was read."""
    cells: dict[tuple[Any, ...], _Cell] = {}
    groups: dict[tuple[Any, ...], tuple[tuple[str, str], ...]] = {}
    for p in rows:
        if any(lookup(p.labels, p.prom, k) != v for k, v in query.labels):
            continue
        _check(query.agg, p.row, p.family, query.name)
        groups[p.identity] = tuple(
            (g, text) for g in query.group_by if (text := lookup(p.labels, p.prom, g)) is not None
        )
        key = (p.identity, p.step)
        seen = cells.get(key)
        cells[key] = p.cell if seen is None else _merge(replace(seen), p.cell)
    per_group: dict[tuple[tuple[str, str], ...], dict[int, list[_Cell]]] = {}
    for (identity, step), cell in cells.items():
        per_group.setdefault(groups[identity], {}).setdefault(step, []).append(cell)
    out = []
    for group, steps in sorted(per_group.items()):
        points = []
        for step, members in sorted(steps.items()):
            value = _aggregate(query, members)
            if value is not None and math.isfinite(value):
                points.append([(query.origin_ns + step * query.step_ns) // 1_000_000, value])
        if points:
            out.append({"labels": dict(group), "points": points})
    return out


def _aggregate(query: MetricQuery, cells: list[_Cell]) -> float | None:
    agg, step_s = query.agg, query.step_ns / 1e9
    family = cells[0].family
    if any(c.family != family for c in cells):
        raise BadRequest(f"{query.name!r} has points of several types; query one OTLP name")
    if family != _DISTRIBUTION:
        values = [c.value for c in cells if c.value is not None]
        if not values:
            return None
        if agg in ("sum", "increase"):
            return math.fsum(values)
        if agg == "rate":
            return math.fsum(values) / step_s
        if agg == "avg":
            return math.fsum(values) / len(values)
        if agg == "count":
            return float(len(values))
        return min(values) if agg == "min" else max(values)
    counts = [c.count for c in cells if c.count is not None]
    if agg in PERCENTILES:
        return _percentile(PERCENTILES[agg], cells)
    if agg in ("min", "max"):
        ends = [c.low if agg == "min" else c.high for c in cells]
        known = [v for v in ends if v is not None]
        if not known:
            return None
        return min(known) if agg == "min" else max(known)
    if not counts:
        return None
    count = math.fsum(counts)
    total = math.fsum(c.total for c in cells if c.total is not None)
    if agg in ("count", "increase"):
        return count
    if agg == "rate":
        return count / step_s
    if agg == "sum":
        return total
    return total / count if count else None


def _percentile(q: float, cells: list[_Cell]) -> float | None:
    hists = [(c.bounds, c.buckets) for c in cells if c.buckets is not None]
    if hists:
        bounds, counts = _merge_histograms(hists)
        return histogram_quantile(q, bounds, counts)
    reported = [c.quantiles[q] for c in cells if q in c.quantiles]
    return max(reported) if reported else None


def _merge_histograms(
    hists: Sequence[tuple[tuple[float, ...], list[int] | None]],
) -> tuple[tuple[float, ...], list[int]]:
    """Per-bucket counts added up; histograms with other bounds are first re-bucketed onto
    the union of the bounds (each count stays at or below its own bound's place)."""
    present = [(b, c) for b, c in hists if c is not None]
    if not present:
        return (), []
    first = present[0][0]
    if all(b == first and len(c) == len(present[0][1]) for b, c in present):
        return first, [sum(col) for col in zip(*(c for _, c in present), strict=True)]
    union = tuple(sorted({x for b, _ in present for x in b}))
    merged = [0] * (len(union) + 1)
    for bounds, counts in present:
        for i, count in enumerate(counts):
            upper = bounds[i] if i < len(bounds) else math.inf
            slot = next((j for j, u in enumerate(union) if u >= upper), len(union))
            merged[slot] += count
    return union, merged


def histogram_quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float | None:
    """The q-quantile of per-bucket counts (the last bucket is +Inf), interpolated linearly
    within its bucket; in the +Inf bucket, the highest finite bound."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    running = 0.0
    for i, count in enumerate(counts):
        if count > 0 and running + count >= rank:
            if i >= len(bounds):
                return bounds[-1] if bounds else None
            upper = bounds[i]
            lower = (0.0 if upper > 0 else upper) if i == 0 else bounds[i - 1]
            return lower + (upper - lower) * (rank - running) / count
        running += count
    return bounds[-1] if bounds else None
