"""Exemplars kept per accumulated series, for the OpenMetrics exposition.

An exemplar links a metric sample to the trace that produced it (its trace and span id).
A series keeps, per histogram bucket, the newest exemplar whose value falls in it, and for
other series the newest exemplar; exemplars come from the stored points' ``exemplars``
column (the newest point of a fold that has any). Exemplars with a non-finite value or
without a trace id are not kept: they could not link anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from otterscope.otlp.anyvalue import to_api

# Exponential histograms' buckets move with their scale: keep this many newest exemplars and
# place them in buckets when exposing.
MAX_UNBUCKETED = 16


@dataclass(frozen=True, slots=True)
class Exemplar:
    value: float
    time_ns: int
    trace_id: str  # hex
    span_id: str  # hex
    attributes: dict[str, Any]  # filtered attributes, as the query API shows them

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Exemplar:
        return cls(
            float(doc["value"]),
            int(doc["time_ns"]),
            str(doc["trace_id"]),
            str(doc["span_id"]),
            dict(doc["attributes"]),
        )


def parse(text: str | None) -> list[Exemplar]:
    """The stored exemplars JSON of one point (the typed storage form)."""
    out = []
    for item in orjson.loads(text or "[]"):
        raw = item.get("asDouble", item.get("asInt"))
        if raw is None or isinstance(raw, dict) or not item.get("traceId"):
            continue
        value = float(raw)
        if not math.isfinite(value):
            continue
        attributes = {k: to_api(v) for k, v in (item.get("filteredAttributes") or {}).items()}
        out.append(
            Exemplar(
                value,
                int(item.get("timeUnixNano") or 0),
                str(item["traceId"]),
                str(item.get("spanId") or ""),
                attributes,
            )
        )
    return out


def bucket_of(value: float, bounds: Sequence[float]) -> int:
    """The index of the bucket (upper bounds inclusive, the last one +Inf) a value falls in."""
    for i, bound in enumerate(bounds):
        if value <= bound:
            return i
    return len(bounds)


def merge(
    kept: list[Exemplar], new: list[Exemplar], bounds: Sequence[float] | None
) -> list[Exemplar]:
    """The exemplars a series keeps: per bucket of ``bounds`` the newest, or (without
    bounds) the newest one; with ``bounds`` empty (exponential), the newest few."""
    if not new:
        return kept
    everything = sorted([*kept, *new], key=lambda e: e.time_ns, reverse=True)
    if bounds is None:
        return everything[:1]
    if not bounds:
        return everything[:MAX_UNBUCKETED]
    newest: dict[int, Exemplar] = {}
    for ex in everything:
        newest.setdefault(bucket_of(ex.value, bounds), ex)
    return sorted(newest.values(), key=lambda e: e.value)


def in_bucket(exemplars: list[Exemplar], lower: float, upper: float) -> Exemplar | None:
    """The newest exemplar whose value is in (lower, upper]."""
    best = None
    for ex in exemplars:
        if lower < ex.value <= upper and (best is None or ex.time_ns > best.time_ns):
            best = ex
    return best
