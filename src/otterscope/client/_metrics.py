"""Metric accumulation between flushes, and its OTLP/JSON form.

This module owns what a recording does to the buffer and what a flush sends:

- a series is (instrument kind, name, attribute set) — plus the bucket boundaries for a
  histogram, so a recording with other boundaries is a second point, never a wrong merge;
- counters and up-down counters are DELTA sums (monotonic or not): recordings add up;
  integers stay integers (``asInt``) until a float is added (``asDouble``);
- gauges keep the last value recorded in the interval;
- histograms are DELTA explicit-bucket histograms: count, sum, min, max and bucket counts
  add up; a value goes in the first bucket whose upper bound is >= the value (upper bounds
  inclusive, as in the OpenTelemetry SDK);
- measurements the OpenTelemetry SDK ignores are ignored the same way (and reported):
  non-finite values, negative counter increments and negative histogram values;
- the buffer holds at most ``max_series`` series; a new series beyond it drops the oldest;
- a recording made inside a span leaves an exemplar (the value, time, trace and span id):
  counters keep their newest one, histograms the newest per bucket, so a scrape links a
  sample to the trace behind it.

A metric (one OTLP ``Metric``) is (kind, name, monotonicity); its unit and description are
the first ones recorded in the interval. Standard library only, no I/O, no locking (the
caller holds the lock).
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from otterscope.client._encode import Attributes, attributes, double

__all__ = ["DEFAULT_BOUNDARIES", "MetricBuffer"]

DEFAULT_BOUNDARIES: tuple[float, ...] = (
    0.0,
    5.0,
    10.0,
    25.0,
    50.0,
    75.0,
    100.0,
    250.0,
    500.0,
    750.0,
    1000.0,
    2500.0,
    5000.0,
    7500.0,
    10000.0,
)

DELTA = 1  # opentelemetry.proto.metrics.v1.AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA

# (kind, name, monotonic): kind is "sum", "gauge" or "histogram".
_MetricKey = tuple[str, str, bool]
# Where a recording was made: (time ns, trace id hex, span id hex).
Origin = tuple[int, str, str]


@dataclass
class _Meta:
    unit: str
    description: str


def _exemplar(value: float, origin: Origin) -> dict[str, Any]:
    return {
        "timeUnixNano": str(origin[0]),
        "asDouble": double(float(value)),
        "traceId": origin[1],
        "spanId": origin[2],
    }


@dataclass
class _Number:
    value: int | float
    exemplar: dict[str, Any] | None = None


@dataclass
class _Histogram:
    bounds: tuple[float, ...]
    counts: list[int]
    count: int = 0
    sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    exemplars: dict[int, dict[str, Any]] = field(default_factory=dict)

    def record(self, value: float, origin: Origin | None = None) -> None:
        bucket = bisect_left(self.bounds, value)
        self.counts[bucket] += 1
        if origin is not None:
            self.exemplars[bucket] = _exemplar(value, origin)
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def absorb(self, other: _Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.exemplars.update(other.exemplars)  # ``other`` is the newer interval


@dataclass
class _Series:
    metric: _MetricKey
    attributes: list[dict[str, Any]]
    point: _Number | _Histogram


@dataclass
class MetricBuffer:
    """The recordings of one interval, merged per series."""

    max_series: int = 10_000
    series: dict[tuple[Any, ...], _Series] = field(default_factory=dict)
    meta: dict[_MetricKey, _Meta] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.series)

    def record(
        self,
        kind: str,
        name: str,
        value: Any,
        attrs: Attributes | None,
        *,
        monotonic: bool = False,
        unit: str = "",
        description: str = "",
        boundaries: Sequence[float] | None = None,
        origin: Origin | None = None,
    ) -> tuple[str | None, int]:
        """Add one measurement: ``(problem or None, series dropped to make room)``."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{name}: value {value!r} is not a number", 0
        if not math.isfinite(value):
            return f"{name}: value {value!r} is not finite", 0
        if value < 0 and (monotonic or kind == "histogram"):
            what = "counter increment" if monotonic else "histogram value"
            return f"{name}: negative {what} {value!r} ignored", 0
        bounds: tuple[float, ...] = ()
        if kind == "histogram":
            bounds = DEFAULT_BOUNDARIES if boundaries is None else _bounds(boundaries)
            if not bounds and boundaries is not None and len(boundaries) > 0:
                return f"{name}: boundaries must be increasing finite numbers", 0
        metric: _MetricKey = (kind, name, monotonic)
        encoded = sorted(attributes(attrs), key=lambda kv: str(kv["key"]))
        key = (metric, json.dumps(encoded, sort_keys=True), bounds)
        self.meta.setdefault(metric, _Meta(unit, description))
        found = self.series.get(key)
        dropped = 0
        if found is None:
            dropped = self._make_room(1)
            point: _Number | _Histogram
            if kind == "histogram":
                point = _Histogram(bounds, [0] * (len(bounds) + 1))
            else:
                point = _Number(0)
            found = self.series[key] = _Series(metric, encoded, point)
        if isinstance(found.point, _Histogram):
            found.point.record(value, origin)
        elif kind == "gauge":
            found.point.value = value
        else:
            found.point.value += value
            if origin is not None and monotonic:
                found.point.exemplar = _exemplar(value, origin)
        return None, dropped

    def _make_room(self, needed: int) -> int:
        dropped = 0
        while self.series and len(self.series) + needed > self.max_series:
            del self.series[next(iter(self.series))]
            dropped += 1
        return dropped

    def take(self) -> MetricBuffer:
        """Everything recorded so far; this buffer starts empty."""
        taken = MetricBuffer(self.max_series, self.series, self.meta)
        self.series, self.meta = {}, {}
        return taken

    def restore(self, older: MetricBuffer) -> int:
        """Put back an interval that could not be sent (it is older than what is here).

        Sums and histograms add up; a gauge keeps the newer value. Returns the number of
        series dropped to stay within ``max_series`` (the oldest go first).
        """
        merged = dict(older.series)
        for key, newer in self.series.items():
            old = merged.get(key)
            if old is None:
                merged[key] = newer
            elif isinstance(old.point, _Histogram) and isinstance(newer.point, _Histogram):
                old.point.absorb(newer.point)
            elif isinstance(old.point, _Number) and isinstance(newer.point, _Number):
                if old.metric[0] == "gauge":
                    old.point.value = newer.point.value
                else:
                    old.point.value += newer.point.value
                old.point.exemplar = newer.point.exemplar or old.point.exemplar
        meta = dict(older.meta)
        for metric, m in self.meta.items():
            meta.setdefault(metric, m)
        self.series, self.meta = merged, meta
        return self._make_room(0)

    def to_json(self, start_ns: int, end_ns: int) -> list[dict[str, Any]]:
        """The OTLP/JSON ``Metric`` objects, in order of first recording."""
        out: dict[_MetricKey, dict[str, Any]] = {}
        for series in self.series.values():
            kind, name, monotonic = series.metric
            metric = out.get(series.metric)
            if metric is None:
                meta = self.meta.get(series.metric, _Meta("", ""))
                metric = {"name": name}
                if meta.description:
                    metric["description"] = meta.description
                if meta.unit:
                    metric["unit"] = meta.unit
                data: dict[str, Any] = {"dataPoints": []}
                if kind != "gauge":
                    data["aggregationTemporality"] = DELTA
                if kind == "sum":
                    data["isMonotonic"] = monotonic
                metric[kind] = data
                out[series.metric] = metric
            point: dict[str, Any] = {
                "attributes": series.attributes,
                "startTimeUnixNano": str(start_ns),
                "timeUnixNano": str(end_ns),
            }
            if isinstance(series.point, _Histogram):
                h = series.point
                point.update(
                    count=str(h.count),
                    sum=double(float(h.sum)),
                    bucketCounts=[str(c) for c in h.counts],
                    explicitBounds=[double(b) for b in h.bounds],
                    min=double(float(h.min)),
                    max=double(float(h.max)),
                )
                if h.exemplars:
                    point["exemplars"] = [h.exemplars[b] for b in sorted(h.exemplars)]
            else:
                if isinstance(series.point.value, int) and -(2**63) <= series.point.value < 2**63:
                    point["asInt"] = str(series.point.value)
                else:
                    point["asDouble"] = double(float(series.point.value))
                if series.point.exemplar is not None:
                    point["exemplars"] = [series.point.exemplar]
            metric[kind]["dataPoints"].append(point)
        return list(out.values())


def _bounds(boundaries: Sequence[float]) -> tuple[float, ...]:
    """The boundaries as floats, or () when they are not strictly increasing and finite."""
    try:
        bounds = tuple(float(b) for b in boundaries)
    except (TypeError, ValueError):
        return ()
    if not all(math.isfinite(b) for b in bounds):
        return ()
    if any(a >= b for a, b in pairwise(bounds)):
        return ()
    return bounds
