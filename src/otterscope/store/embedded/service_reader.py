"""The embedded store's services and calls between them, by the hour.

What each service sent per signal (``service_activity``), the figures of its entry spans,
and the calls between services (``dependencies``). A settled hour (no hot rows in it or in
the hour after, no pending delete) is computed once and kept in ``hourly.py``'s cache, keyed
by the hour's files; the maintenance thread fills that cache ahead (``warm_service_cache``),
and the rest of a window is computed every time. The cache's files outlive the process
(``hour_files``): after a restart an hour is read back instead of computed, as long as its
files are the ones it was computed from.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import duckdb
import pyarrow.compute as pc

from otterscope.store.base import Row
from otterscope.store.embedded import damage, hourly, service_sql, sql
from otterscope.store.embedded.hour_files import HourKey
from otterscope.store.embedded.layout import HOUR_NS
from otterscope.store.embedded.seal import TIME_COLUMN
from otterscope.store.embedded.service_sql import DEPENDENCY_MARGIN_NS
from otterscope.store.embedded.snapshot import Snapshot, SnapshotReader, rows_of

SIGNALS = ("traces", "logs", "metrics")


class ServiceReader(SnapshotReader):
    """Mixed into the store, through ``Reader``."""

    _hour_cache: hourly.HourCache  # calls and activity of settled hours

    # -- services ----------------------------------------------------------------------------

    @damage.retried_past_damage
    def service_activity(self, tenant: str, start_ns: int, end_ns: int) -> dict[str, list[Row]]:
        """Per signal, per service: items, first and last time, latest resource (spans:
        also errors and p99 duration). Whole settled hours come from the cache."""
        out = {}
        first_hour, last_hour = start_ns // HOUR_NS, end_ns // HOUR_NS
        with self._sources_lock.read():
            pin: int | None = None
            for signal in SIGNALS:
                snap = self._snapshot(
                    signal, tenant, first_hour * HOUR_NS, (last_hour + 1) * HOUR_NS, pin
                )
                pin = snap.pin
                hot_hours = _hot_hours(snap, tenant)
                rows: list[Row] = []
                for hour in _hours_with_data(snap, hot_hours, first_hour, last_hour):
                    lo, hi = max(start_ns, hour * HOUR_NS), min(end_ns, (hour + 1) * HOUR_NS - 1)
                    whole = (lo, hi) == (hour * HOUR_NS, (hour + 1) * HOUR_NS - 1)
                    key = self._activity_key(snap, tenant, hour, hot_hours) if whole else None
                    compute = functools.partial(self._activity_rows, snap, tenant, lo, hi)
                    rows += compute() if key is None else self._hour_cache.rows(key, compute)
                out[signal] = hourly.merge_activity(rows)
        return out

    @damage.retried_past_damage
    def entry_span_figures(
        self, tenant: str, service: str | None, start_ns: int, end_ns: int
    ) -> Row:
        """requests, errors and p99_ns of the entry spans in the window."""
        with self._sources_lock.read():
            snap = self._snapshot("traces", tenant, start_ns, end_ns)
            names, rows = self._run(
                service_sql.entry_span_figures(snap.source),
                [tenant, snap.pin, start_ns, end_ns, service, service],
                snap.tables,
            )
        return rows_of(names, rows)[0]

    def _activity_key(
        self, snap: Snapshot, tenant: str, hour: int, hot_hours: set[int]
    ) -> HourKey | None:
        """What an hour's activity of the snapshot's signal depends on once it is settled
        (no hot rows in it, no pending delete): its files. None while it is not."""
        if snap.deletes or hour in hot_hours:
            return None
        files = [f for f in snap.files if f.hour_start_ns == hour * HOUR_NS]
        return self._hour_cache.disk.key(snap.signal, tenant, hour, files)

    @damage.retried_past_damage
    def entry_span_figures_by_service(
        self, tenant: str, services: Sequence[str] | None, start_ns: int, end_ns: int
    ) -> list[Row]:
        """``entry_span_figures`` of each service (None: of every service, and of all of
        them together) from one read of the window's spans."""
        every = services is None
        params: list[object] = [tenant, 0, start_ns, end_ns]
        if services is not None:
            params.append(list(services))
        with self._sources_lock.read():
            snap = self._snapshot("traces", tenant, start_ns, end_ns)
            params[1] = snap.pin
            names, rows = self._run(
                service_sql.entry_span_figures_by_service(snap.source, every), params, snap.tables
            )
        return rows_of(names, rows)

    def _activity_rows(
        self,
        snap: Snapshot,
        tenant: str,
        lo: int,
        hi: int,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> list[Row]:
        names, rows = self._run(
            service_sql.service_activity(snap.within(lo, hi), snap.signal),
            [tenant, snap.pin, lo, hi],
            snap.tables,
            con,
        )
        return rows_of(names, rows)

    @damage.retried_past_damage
    def dependencies(self, tenant: str, start_ns: int, end_ns: int) -> list[Row]:
        """Calls between services (and to virtual nodes) whose calling span starts in the
        window: source, target, target_type, calls, errors, p99_ns (see ``dependencies``)."""
        rows: list[Row] = []
        first_hour, last_hour = start_ns // HOUR_NS, end_ns // HOUR_NS
        with self._sources_lock.read():
            snap = self._snapshot("traces", tenant, first_hour * HOUR_NS, (last_hour + 2) * HOUR_NS)
            hot_hours = _hot_hours(snap, tenant)
            for hour in _hours_with_data(snap, hot_hours, first_hour, last_hour):
                key = self._settled_key(snap, tenant, hour, hot_hours)
                if key is None:  # only the part in the window, every time
                    lo, hi = max(start_ns, hour * HOUR_NS), min(end_ns, (hour + 1) * HOUR_NS - 1)
                    rows += self._dependency_rows(snap, tenant, lo, hi)
                else:
                    rows += self._cached_hour(snap, tenant, hour, key)
        return hourly.merge_calls(rows, start_ns, end_ns)

    def warm_service_cache(self, calls: int = 2, activity: int = 6) -> None:
        """Compute ahead what the per-hour cache lacks (the maintenance thread does, so
        that services and the map are answered from it)."""
        self.warm_dependencies(calls)
        self.warm_activity(activity)

    def prune_service_cache(self) -> None:
        """Delete the cache files of hours no longer stored (after retention)."""
        self._hour_cache.disk.prune(
            {(f.tenant, f.hour_start_ns // HOUR_NS, f.signal) for f in self._files}
        )

    @damage.retried_past_damage
    def warm_dependencies(self, limit: int) -> int:
        """Compute the calls of up to ``limit`` settled hours not cached yet, newest first;
        return how many."""
        return self._warm(limit, calls=True)

    @damage.retried_past_damage
    def warm_activity(self, limit: int) -> int:
        """Compute what each service sent in up to ``limit`` settled (signal, hour)s not
        cached yet, newest first; return how many."""
        return self._warm(limit, calls=False)

    def _warm(self, limit: int, calls: bool) -> int:
        done = 0
        key_of = self._settled_key if calls else self._activity_key
        compute = self._dependency_rows if calls else self._activity_rows
        kinds = {(f.tenant, f.signal) for f in self._files if not calls or f.signal == "traces"}
        for tenant, signal in sorted(kinds):
            with self._sources_lock.read():
                snap = self._snapshot(signal, tenant)
                hot_hours = _hot_hours(snap, tenant)
                hours = sorted({f.hour_start_ns // HOUR_NS for f in snap.files}, reverse=True)
                for hour in hours:
                    key = key_of(snap, tenant, hour, hot_hours)
                    if key is None or self._hour_cache.get(key) is not None:
                        continue
                    lo, hi = hour * HOUR_NS, (hour + 1) * HOUR_NS - 1
                    # On the maintenance DuckDB: an hour of spans took ~340 MB of the
                    # queries' DuckDB at 10 million spans, on top of hot rows and sealing.
                    work = functools.partial(compute, snap, tenant, lo, hi, self._maintenance_con)
                    self._hour_cache.rows(key, work)
                    done += 1
                    if done >= limit:
                        return done
        return done

    def _cached_hour(self, snap: Snapshot, tenant: str, hour: int, key: HourKey) -> list[Row]:
        lo, hi = hour * HOUR_NS, (hour + 1) * HOUR_NS - 1
        return self._hour_cache.rows(
            key, functools.partial(self._dependency_rows, snap, tenant, lo, hi)
        )

    def _settled_key(
        self, snap: Snapshot, tenant: str, hour: int, hot_hours: set[int]
    ) -> HourKey | None:
        """What an hour's calls depend on once it is settled (no hot spans in it or the
        next hour, no pending delete): the two hours' files. None while it is not."""
        if snap.deletes or {hour, hour + 1} & hot_hours:
            return None
        bounds = (hour * HOUR_NS, (hour + 1) * HOUR_NS)
        files = [f for f in snap.files if f.hour_start_ns in bounds]
        return self._hour_cache.disk.key("calls", tenant, hour, files)

    def _dependency_rows(
        self,
        snap: Snapshot,
        tenant: str,
        lo: int,
        hi: int,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> list[Row]:
        """Per-minute calls of the calling spans that start in [lo, hi]."""
        read_end = hi + DEPENDENCY_MARGIN_NS
        names, rows = self._run(
            service_sql.dependencies(snap.within(lo, read_end)),
            [tenant, snap.pin, lo, read_end, hi, hi],
            snap.tables,
            con,
        )
        return rows_of(names, rows)


def _hot_hours(snap: Snapshot, tenant: str) -> set[int]:
    """The hours the tenant's hot rows of the snapshot's signal are filed under."""
    hot = snap.tables[sql.hot_view(snap.signal)]
    # The time column alone: filtering the table copied every hot row (attribute JSON and
    # all, ~100 MB per segment) on each maintenance pass.
    times = pc.filter(hot.column(TIME_COLUMN[snap.signal]), pc.equal(hot.column("tenant"), tenant))
    hours = pc.unique(pc.divide(times, HOUR_NS))
    return {int(h) for h in hours.to_pylist()}


def _hours_with_data(snap: Snapshot, hot_hours: set[int], first: int, last: int) -> list[int]:
    """The hours in [first, last] that have a file or hot rows: a window of years reads
    only those."""
    filed = {f.hour_start_ns // HOUR_NS for f in snap.files}
    return sorted(h for h in filed | hot_hours if first <= h <= last)
