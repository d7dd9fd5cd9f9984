"""Services and the calls between them: computed by query, cached per settled hour.

A service's activity in hour H (items, first and last time, latest resource, errors and
durations) only changes when a file of H is added, rewritten or a delete applies; the
cache keeps it under the hour's files while H has no hot rows. Windows add up whole cached
hours and compute their partial first and last hours.

The calls whose calling span starts in hour H are read from the spans of H and of the
first minutes of H+1 (a callee may start a little after its caller). Once neither hour has
hot rows, those spans only change when a file is added (late spans, sealed later) or a
delete applies, so the hour's per-minute calls are cached under the list of the two hours'
files; a query adds up cached hours and computes the rest (hours with hot rows, and every
hour while the tenant has pending deletes). Windows are counted in whole minutes.

Both are kept in memory and in one file per hour and kind (``hour_files``), so that a
restarted server reads what the last one computed.

Durations are kept as histograms (``service_sql.DURATION_STEPS_PER_OCTAVE`` buckets per
doubling) so that minutes and hours add up; the p99 is read from the merged histogram.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from otterscope.store.embedded.hour_files import HourFiles, HourKey
from otterscope.store.embedded.service_sql import DURATION_STEPS_PER_OCTAVE, MINUTE_NS

Row = dict[str, Any]


class HourCache:
    """Rows of settled hours by ``HourKey``: in memory, least recently used first out, and
    on disk (``hour_files``) for the next process."""

    def __init__(self, disk: HourFiles, max_hours: int = 4096) -> None:
        self.disk = disk
        self._rows: OrderedDict[HourKey, list[Row]] = OrderedDict()
        self._max = max_hours
        self._lock = threading.Lock()
        # Hours computed by a statement, and hours read back from a file (for tests and
        # benchmarks: a restart should read, not compute).
        self.computed = 0
        self.loaded = 0

    def get(self, key: HourKey) -> list[Row] | None:
        with self._lock:
            rows = self._rows.get(key)
            if rows is not None:
                self._rows.move_to_end(key)
                return rows
        rows = self.disk.load(key)
        if rows is not None:
            with self._lock:
                self.loaded += 1
            self._remember(key, rows)
        return rows

    def rows(self, key: HourKey, compute: Callable[[], list[Row]]) -> list[Row]:
        """The hour's rows from memory, else from its file, else computed and kept in both."""
        rows = self.get(key)
        if rows is None:
            rows = compute()
            with self._lock:
                self.computed += 1
            self._remember(key, rows)
            self.disk.save(key, rows)
        return rows

    def _remember(self, key: HourKey, rows: list[Row]) -> None:
        with self._lock:
            self._rows[key] = rows
            self._rows.move_to_end(key)
            while len(self._rows) > self._max:
                self._rows.popitem(last=False)


def percentile(durations: dict[int, int], q: float) -> float | None:
    """The q-quantile (ns) of a duration histogram, at the geometric middle of its bucket."""
    total = sum(durations.values())
    if total <= 0:
        return None
    rank = q * total
    running = 0
    for bucket in sorted(durations):
        running += durations[bucket]
        if running >= rank:
            return float(math.pow(2.0, (bucket + 0.5) / DURATION_STEPS_PER_OCTAVE))
    return None


def merge_calls(rows: Iterable[Row], start_ns: int, end_ns: int) -> list[Row]:
    """Per (source, target, target type): calls, errors and p99_ns of the minutes in the
    window."""
    first, last = start_ns // MINUTE_NS, end_ns // MINUTE_NS
    edges: dict[tuple[str, str, str], Row] = {}
    for row in rows:
        if not first <= int(row["minute"]) <= last:
            continue
        key = (row["source"], row["target"], row["target_type"])
        edge = edges.setdefault(
            key,
            {"source": key[0], "target": key[1], "target_type": key[2], "calls": 0, "errors": 0},
        )
        edge["calls"] += int(row["calls"])
        edge["errors"] += int(row["errors"])
        durations: dict[int, int] = edge.setdefault("durations", {})
        for bucket, count in row["durations"].items():
            durations[int(bucket)] = durations.get(int(bucket), 0) + int(count)
    for edge in edges.values():
        edge["p99_ns"] = percentile(edge.pop("durations"), 0.99)
    return [edges[k] for k in sorted(edges)]


def merge_activity(rows: Iterable[Row]) -> list[Row]:
    """Per service: the hours' items and errors added up, the first and last times, the
    resource of the latest hour, and p99_ns from the merged durations."""
    services: dict[str, Row] = {}
    for row in rows:
        name = row["service_name"]
        seen = services.get(name)
        if seen is None:
            services[name] = seen = {**row, "durations": dict(row.get("durations") or {})}
            continue
        seen["items"] += row["items"]
        seen["first_ns"] = min(seen["first_ns"], row["first_ns"])
        if row["last_ns"] > seen["last_ns"]:
            seen["last_ns"], seen["resource"] = row["last_ns"], row["resource"]
        if "errors" in row:
            seen["errors"] += row["errors"]
            for bucket, count in (row["durations"] or {}).items():
                seen["durations"][bucket] = seen["durations"].get(bucket, 0) + count
    for service in services.values():
        durations = service.pop("durations")
        if "errors" in service:
            service["p99_ns"] = percentile(durations, 0.99)
    return [services[k] for k in sorted(services, key=str)]
