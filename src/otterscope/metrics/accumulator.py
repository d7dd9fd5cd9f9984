"""Delta-to-cumulative accumulation: the current value of every metric series.

Stateless senders (functions, batch jobs) push each invocation's contribution as a DELTA
point; Prometheus wants cumulative series it can scrape. This module keeps, per series, what
a scrape shows.

A series is (tenant, resource attributes, scope name and version, metric name, kind, point
attributes). For DELTA points the per-invocation resource attributes
(``metrics.exclude_resource_attributes``, by default ``service.instance.id``) are left out,
so concurrent invocations of one function add to one series; a cumulative series keeps
them, because each instance counts on its own.

The state is folded from the committed points, never on the ingest path: ``Accumulator.fold``
takes the points numbered after the last fold, aggregated per stored series by the store
(vectorised), and merges them. Rules:
- delta sums and delta histograms: added, never de-duplicated (two invocations may send
  identical points), whatever their time, so points that arrive late are not lost; a delta
  histogram whose bucket bounds differ from the series' restarts it (counted as a reset);
- cumulative sums, histograms, summaries and gauges: the point with the latest time wins;
  points older than the one kept are ignored; a cumulative start time that moves forward is
  a reset (the new start is kept);
- exponential histograms: deltas are added bucket by bucket after bringing both to the
  coarser scale; cumulative ones take the latest; exposed as classic buckets.

Spans are folded the same way into request, error and duration metrics named as the
OpenTelemetry Collector's spanmetrics connector names them: ``traces_span_metrics_calls_total``
and the ``traces_span_metrics_duration_milliseconds`` histogram, labelled ``service_name``,
``span_name``, ``span_kind`` and ``status_code``, with its default buckets; and into the
service graph metrics (see ``servicegraph``).

Cardinality is bounded: a metric holds at most ``metrics.max_series_per_metric`` series per
tenant; points of further series go to one overflow series (attributes
``{"otel.metric.overflow": true}``, as the OpenTelemetry SDKs do) and are counted in
``otterscope_metric_overflow_points_total``. Nothing is dropped and memory stays bounded.
"""

from __future__ import annotations

import collections
import functools
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from otterscope.metrics import exponential, servicegraph
from otterscope.metrics.exemplars import Exemplar
from otterscope.metrics.exemplars import merge as merge_exemplars
from otterscope.metrics.exemplars import parse as parse_exemplars
from otterscope.query.shapes import SPAN_KINDS, STATUS_CODES
from otterscope.store.base import (
    SERVICE_GRAPH_BOUNDS_S,
    SPAN_DURATION_BOUNDS_MS,
    MetricAggregates,
)

GAUGE, SUM, HISTOGRAM, EXP_HISTOGRAM, SUMMARY = 1, 2, 3, 4, 5
DELTA, CUMULATIVE = 1, 2

DEFAULT_EXCLUDED = ("service.instance.id",)

SeriesKey = tuple[str, str, str, str, str, int, bool]
Row = dict[str, Any]


@dataclass(slots=True)
class Series:
    """What a scrape shows of one series, and what the rules need to update it."""

    tenant: str
    resource: str  # JSON object (keys sorted)
    scope_name: str
    scope_version: str
    name: str
    kind: int  # GAUGE, SUM, HISTOGRAM, SUMMARY
    monotonic: bool
    attributes: str  # JSON object (keys sorted)
    unit: str = ""
    description: str = ""
    start_ns: int = 0
    time_ns: int = 0
    value: float = 0.0
    count: int = 0
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    bounds: tuple[float, ...] = ()
    buckets: list[int] = field(default_factory=list)
    quantiles: list[tuple[float, float]] = field(default_factory=list)
    # Exponential histograms: scale, zero bucket, and the positive and negative buckets.
    scale: int = 0
    zero_count: int = 0
    zero_threshold: float = 0.0
    pos_offset: int = 0
    pos: list[int] = field(default_factory=list)
    neg_offset: int = 0
    neg: list[int] = field(default_factory=list)
    resets: int = 0
    # The newest exemplars (per bucket for histograms), for the OpenMetrics exposition.
    exemplars: list[Exemplar] = field(default_factory=list)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Series:
        doc = dict(doc)
        doc["bounds"] = tuple(doc.get("bounds", ()))
        doc["buckets"] = list(doc.get("buckets", []))
        doc["quantiles"] = [tuple(q) for q in doc.get("quantiles", [])]
        doc["exemplars"] = [Exemplar.from_json(e) for e in doc.get("exemplars", [])]
        return cls(**doc)

    @property
    def key(self) -> SeriesKey:
        return (
            self.tenant,
            self.resource,
            self.scope_name + "\0" + self.scope_version,
            self.name,
            self.attributes,
            self.kind,
            self.monotonic,
        )


# Points of one series share these texts: a fold of many points parses each once.
@functools.lru_cache(maxsize=1 << 18)
def _canonical(text: str | None, drop: frozenset[str] = frozenset()) -> str:
    attrs = orjson.loads(text or "{}")
    return orjson.dumps({k: attrs[k] for k in sorted(attrs) if k not in drop}).decode()


# RED metrics from spans, named as the OpenTelemetry Collector's spanmetrics connector names
# them (with its default buckets), so dashboards built for it work unchanged.
RED_CALLS = "traces.span.metrics.calls"
RED_DURATION = "traces.span.metrics.duration"
RED_BOUNDS_MS = SPAN_DURATION_BOUNDS_MS


def red_identity(row: Row) -> tuple[str, str]:
    """The resource and attributes (JSON) of the RED series of a row of span figures
    (``service_name``, ``name``, ``kind``, ``status_code``)."""
    service = row["service_name"] or "unknown_service"
    kind = int(row["kind"] or 0)
    status = int(row["status_code"] or 0)
    attrs = {
        "service.name": service,
        "span.kind": SPAN_KINDS[kind] if 0 <= kind < len(SPAN_KINDS) else str(kind),
        "span.name": row["name"] or "",
        "status.code": STATUS_CODES[status] if 0 <= status < 3 else str(status),
    }
    return orjson.dumps({"service.name": service}).decode(), orjson.dumps(attrs).decode()


def red_buckets(row: Row) -> list[int]:
    """Per-bucket span counts from a row's cumulative ``le_i`` counts and ``calls``."""
    cumulative = [int(row[f"le_{i}"]) for i in range(len(RED_BOUNDS_MS))] + [int(row["calls"])]
    return [cumulative[0]] + [b - a for a, b in itertools.pairwise(cumulative)]


OVERFLOW_ATTRIBUTES = orjson.dumps({"otel.metric.overflow": True}).decode()
OverflowListener = Callable[[str, str, int], None]


class Accumulator:
    def __init__(
        self,
        excluded: Iterable[str] = DEFAULT_EXCLUDED,
        max_series_per_metric: int = 2000,
        on_overflow: OverflowListener | None = None,
    ) -> None:
        self._excluded = frozenset(excluded)
        self._series: dict[SeriesKey, Series] = {}
        # Series per (tenant, metric name): past the limit, new series go to one overflow
        # series, as the OpenTelemetry SDKs do, so memory stays bounded.
        self._per_metric: dict[tuple[str, str], int] = {}
        self._limit = max_series_per_metric
        self._on_overflow = on_overflow
        self._overflowed: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()
        self.seq = 0  # every point numbered up to this is folded in
        self.graph_seq = 0  # every service graph request completed up to this is counted

    @property
    def excluded(self) -> frozenset[str]:
        """The resource attributes a delta series' identity leaves out."""
        return self._excluded

    @contextmanager
    def reading(self) -> Iterator[Iterable[Series]]:
        """Every series, live and read-only, with folds held off while the block runs: a
        scrape of many series reads them in place instead of copying them all."""
        with self._lock:
            yield self._series.values()

    def metric_names(self, tenant: str) -> set[tuple[str, str, int, bool]]:
        """(name, unit, kind, monotonic) of every metric the tenant has series of, but the
        service graph's (exposed on /metrics only)."""
        with self._lock:
            return {
                (s.name, s.unit, s.kind, s.monotonic)
                for s in self._series.values()
                if s.tenant == tenant and s.resource != servicegraph.RESOURCE
            }

    def restore(self, seq: int, series: Iterable[Series], graph_seq: int | None = None) -> None:
        with self._lock:
            self.seq = seq
            self.graph_seq = seq if graph_seq is None else graph_seq
            self._series = {s.key: s for s in series}
            self._per_metric = {}
            for s in self._series.values():
                metric = (s.tenant, s.name)
                self._per_metric[metric] = self._per_metric.get(metric, 0) + 1

    def fold(self, folded: MetricAggregates) -> int:
        """Merge what was committed in (self.seq, folded.upto]; return the points and spans
        it held."""
        sums: dict[tuple[Any, ...], list[int]] = {
            _stored_key(r): list(r["buckets"] or []) for r in folded.delta_buckets
        }
        count = 0
        with self._lock:
            self._overflowed.clear()
            for row in folded.points:
                count += int(row["points"])
                self._merge(row, sums.get(_stored_key(row)))
            for row in folded.exp_points:
                count += 1
                self._merge_exponential(row)
            for row in folded.spans:
                count += int(row["calls"])
                self._merge_red(row)
            now_ns = time.time_ns()
            for row in folded.graph:
                self._merge_graph(row, now_ns)
            self.seq = max(self.seq, folded.upto)
            self.graph_seq = max(self.graph_seq, folded.graph_upto)
            # Counted once per metric, not per point: a fold can overflow 200,000 points.
            overflowed = list(self._overflowed.items())
        if self._on_overflow is not None:
            for (tenant, name), points in overflowed:
                self._on_overflow(tenant, name, points)
        return count

    def _merge_red(self, row: Row) -> None:
        """Spans as the spanmetrics connector's calls counter and duration histogram."""
        resource, attrs = red_identity(row)
        calls = int(row["calls"])
        buckets = red_buckets(row)
        for name, kind_ in ((RED_CALLS, SUM), (RED_DURATION, HISTOGRAM)):
            s = self._derived(row, resource, name, kind_, attrs, calls, "ms", RED_BOUNDS_MS)
            if kind_ == SUM:
                s.value += calls
            else:
                s.buckets = [a + b for a, b in zip(s.buckets, buckets, strict=True)]
                s.count += calls
                s.sum += float(row["sum_ms"] or 0.0)

    def _merge_graph(self, row: Row, now_ns: int) -> None:
        """A service graph edge's requests, failures and both duration histograms."""
        attrs = servicegraph.attributes(row)
        calls, failed = int(row["calls"]), int(row["failed"])
        resource = servicegraph.RESOURCE
        timed = {**row, "start_min": now_ns, "time_max": now_ns}
        self._derived(timed, resource, servicegraph.REQUESTS, SUM, attrs, calls).value += calls
        if failed:
            s = self._derived(timed, resource, servicegraph.FAILED, SUM, attrs, calls)
            s.value += failed
        for name, side in ((servicegraph.SERVER_SECONDS, "s"), (servicegraph.CLIENT_SECONDS, "c")):
            bounds = SERVICE_GRAPH_BOUNDS_S
            s = self._derived(timed, resource, name, HISTOGRAM, attrs, calls, "s", bounds)
            added = servicegraph.buckets(row, side)
            s.buckets = [a + b for a, b in zip(s.buckets, added, strict=True)]
            s.count += calls
            s.sum += float(row["server_sum" if side == "s" else "client_sum"] or 0.0)

    def _derived(
        self,
        row: Row,
        resource: str,
        name: str,
        kind: int,
        attrs: str,
        items: int,
        unit: str = "",
        bounds: tuple[float, ...] = (),
    ) -> Series:
        """The series of a metric derived from spans (created when new), or the metric's
        overflow series past the per-metric limit: span names can be as many as URLs, and
        edges as many as callers times callees."""
        tenant = row["tenant"]
        key = (tenant, resource, "\0", name, attrs, kind, True)
        s = self._series.get(key)
        if s is None and self._per_metric.get((tenant, name), 0) >= self._limit:
            attrs = OVERFLOW_ATTRIBUTES
            key = (tenant, resource, "\0", name, attrs, kind, True)
            s = self._series.get(key)
            self._overflowed[(tenant, name)] += items
        if s is None:
            s = Series(
                tenant=tenant,
                resource=resource,
                scope_name="",
                scope_version="",
                name=name,
                kind=kind,
                monotonic=True,
                attributes=attrs,
                unit=unit if kind == HISTOGRAM else "",
                start_ns=int(row["start_min"] or 0),
                bounds=tuple(float(b) for b in bounds),
                buckets=[0] * (len(bounds) + 1),
            )
            self._series[s.key] = s
            self._per_metric[(tenant, name)] = self._per_metric.get((tenant, name), 0) + 1
        s.time_ns = max(s.time_ns, int(row["time_max"] or 0))
        return s

    def _series_for(self, row: Row, points: int) -> tuple[Series, bool]:
        """The series a stored series' row folds into (created when new: True)."""
        delta = row["aggregation_temporality"] == DELTA
        drop = self._excluded if delta else frozenset()
        incoming = Series(
            tenant=row["tenant"],
            resource=_canonical(row["resource_attributes"], drop),
            scope_name=row["scope_name"] or "",
            scope_version=row["scope_version"] or "",
            name=row["metric_name"],
            kind=int(row["metric_type"]),
            monotonic=bool(row["is_monotonic"]),
            attributes=_canonical(row["attributes"]),
            unit=row["unit"] or "",
            description=row["description"] or "",
        )
        s = self._series.get(incoming.key)
        if s is None and self._per_metric.get((incoming.tenant, incoming.name), 0) >= self._limit:
            incoming.attributes = OVERFLOW_ATTRIBUTES
            s = self._series.get(incoming.key)
            self._overflowed[(incoming.tenant, incoming.name)] += points
        if s is not None:
            s.unit = incoming.unit or s.unit
            s.description = incoming.description or s.description
            return s, False
        s = self._series[incoming.key] = incoming
        s.start_ns = int(row["start_min"] or row["time_max"] or 0)
        metric = (s.tenant, s.name)
        self._per_metric[metric] = self._per_metric.get(metric, 0) + 1
        return s, True

    def _merge(self, row: Row, delta_buckets: list[int] | None) -> None:
        kind = int(row["metric_type"])
        delta = row["aggregation_temporality"] == DELTA
        s, fresh = self._series_for(row, int(row["points"]))
        time = int(row["time_max"] or 0)
        if kind in (GAUGE, SUM) and delta:
            s.value += float(row["value_sum"] or 0.0)
            s.time_ns = max(s.time_ns, time)
        elif kind == HISTOGRAM and delta:
            _add_histogram(s, row, delta_buckets or [], fresh)
        elif fresh or time >= s.time_ns:
            _take_latest(s, row, kind, fresh)
        if row.get("exemplars_last"):
            bounds = s.bounds if kind == HISTOGRAM else None
            s.exemplars = merge_exemplars(
                s.exemplars, parse_exemplars(row["exemplars_last"]), bounds
            )

    def _merge_exponential(self, row: Row) -> None:
        s, fresh = self._series_for(row, 1)
        if row["aggregation_temporality"] == DELTA:
            exponential.add(s, row, fresh)
        elif fresh or int(row["time_max"] or 0) >= s.time_ns:
            exponential.take(s, row, fresh)
        if row.get("exemplars"):
            s.exemplars = merge_exemplars(s.exemplars, parse_exemplars(row["exemplars"]), ())


def _stored_key(row: Row) -> tuple[Any, ...]:
    return (
        row["tenant"],
        row["resource_attributes"],
        row["scope_name"],
        row["scope_version"],
        row["metric_name"],
        row["metric_type"],
        row["aggregation_temporality"],
        row["is_monotonic"],
        row["attributes"],
        tuple(row["explicit_bounds"] or ()),
    )


def _add_histogram(s: Series, row: Row, buckets: list[int], fresh: bool) -> None:
    bounds = tuple(float(b) for b in row["explicit_bounds"] or ())
    if len(buckets) != len(bounds) + 1:
        buckets = [0] * len(bounds) + [int(row["count_sum"] or 0)]
    if not fresh and bounds != s.bounds:
        s.resets += 1  # another bucket layout: the series starts again
        fresh = True
    if fresh:
        s.bounds, s.buckets, s.count, s.sum, s.min, s.max = (
            bounds,
            [0] * len(buckets),
            0,
            0.0,
            None,
            None,
        )
    s.buckets = [a + int(b) for a, b in zip(s.buckets, buckets, strict=True)]
    s.count += int(row["count_sum"] or 0)
    s.sum += float(row["sum_sum"] or 0.0)
    lo, hi = row["min_min"], row["max_max"]
    s.min = lo if s.min is None else (s.min if lo is None else min(s.min, lo))
    s.max = hi if s.max is None else (s.max if hi is None else max(s.max, hi))
    s.time_ns = max(s.time_ns, int(row["time_max"] or 0))


def _take_latest(s: Series, row: Row, kind: int, fresh: bool) -> None:
    start = int(row["start_last"] or 0)
    if not fresh and kind != GAUGE and start > s.start_ns:
        s.resets += 1
        s.start_ns = start
    s.time_ns = int(row["time_max"] or 0)
    if kind in (GAUGE, SUM):
        s.value = float(row["value_last"] or 0.0)
    elif kind == HISTOGRAM:
        s.bounds = tuple(float(b) for b in row["explicit_bounds"] or ())
        s.buckets = [int(c) for c in row["buckets_last"] or ()]
        if len(s.buckets) != len(s.bounds) + 1:
            s.buckets = [0] * len(s.bounds) + [int(row["count_last"] or 0)]
        s.count = int(row["count_last"] or 0)
        s.sum = float(row["sum_last"] or 0.0)
        s.min, s.max = row["min_last"], row["max_last"]
    elif kind == SUMMARY:
        s.count = int(row["count_last"] or 0)
        s.sum = float(row["sum_last"] or 0.0)
        s.quantiles = [
            (float(q["quantile"]), float(q["value"]))
            for q in orjson.loads(row["quantiles_last"] or "[]")
            if not isinstance(q.get("quantile"), dict) and not isinstance(q.get("value"), dict)
        ]
