"""The embedded store's read side: every query, run against one consistent snapshot.

A query takes the read side of the sources lock (sealing and retention cannot change the set
of files under it), snapshots the hot rows and the last visible ingest sequence number
together (so a pin never names rows the query could not see), registers them with its own
DuckDB cursor, and runs one statement from ``sql`` under a watchdog that interrupts it at
``query_timeout``. Results come back as plain rows; shaping them is the API's business.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from otterscope.errors import QueryTimeout, StoreError
from otterscope.otlp.anyvalue import to_api
from otterscope.quarantine import Quarantine
from otterscope.query.model import FetchQuery, LogQuery, Page, TraceQuery, TraceSummary
from otterscope.store.base import MetricAggregates, Row, SqlSandboxSpec
from otterscope.store.embedded import damage, hourly, metric_sql, sandbox_sql, service_sql, sql
from otterscope.store.embedded.deletes import Tombstones
from otterscope.store.embedded.layout import HOUR_NS, SealedFile
from otterscope.store.embedded.rwlock import RWLock
from otterscope.store.embedded.seal import TIME_COLUMN
from otterscope.store.embedded.segment import Segment, all_rows

# How far past a search window a trace's other spans are looked for (its summary counts
# spans up to this far outside the window).
TRACE_MARGIN_NS = HOUR_NS
# The fewest matching spans a trace search's first scan takes. Small on purpose: files are
# read newest first, and once a top-N of this size is full its threshold skips every older
# row group, so a small first scan often reads only the newest files (measured with 10M
# spans: 4096 doubled the time of searches matching ~0.5% of spans).
FIRST_SCAN = 256
# How long after a dependency window a child span is still looked for (a call that starts
# in the window may reach its callee a little later).
DEPENDENCY_MARGIN_NS = 5 * 60 * 1_000_000_000


class _Snapshot:
    """What one query reads: the files and hot rows of a signal as of one moment, the
    Arrow tables to register, and the pin (the last ingest number it can see)."""

    def __init__(
        self,
        signal: str,
        files: list[SealedFile],
        tables: dict[str, pa.Table],
        pin: int,
        deletes: bool,
    ) -> None:
        self.signal = signal
        self.files = files
        self.tables = tables
        self.pin = pin
        self.deletes = deletes

    def within(self, start_ns: int | None = None, end_ns: int | None = None) -> str:
        """SQL for the rows, reading only files whose hour overlaps the window."""
        files = [
            str(f.path)
            for f in self.files
            if (start_ns is None or f.hour_start_ns + HOUR_NS > start_ns)
            and (end_ns is None or f.hour_start_ns <= end_ns)
        ]
        return sql.source(self.signal, True, files, self.deletes)

    @property
    def source(self) -> str:
        return self.within()


def _rows(names: list[str], rows: list[tuple[Any, ...]]) -> list[Row]:
    return [dict(zip(names, r, strict=True)) for r in rows]


class Reader:
    """Mixed into the store, whose state it reads (set up by the store's constructor)."""

    _sources_lock: RWLock
    _publish_lock: threading.Lock
    _files: list[SealedFile]
    _retired: list[Segment]
    _active: Segment
    _visible_seq: int
    _con: duckdb.DuckDBPyConnection
    _deletes: Tombstones
    _resource_sets: dict[str, frozenset[str]]  # sealed file -> its resource attribute sets
    _resource_lock: threading.Lock
    _hour_cache: hourly.HourCache  # calls and activity of settled hours
    query_timeout_s: float
    quarantine: Quarantine
    # Checks the sealed files a failed read named, and quarantines a damaged one (the store).
    _quarantine_damaged: Callable[[Sequence[SealedFile]], bool]

    # -- plumbing ------------------------------------------------------------------------

    def _snapshot(
        self,
        signal: str,
        tenant: str | None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        pin: int | None = None,
    ) -> _Snapshot:
        """The caller holds the read side of the sources lock."""
        # Newest first: a top-N by time then finds its threshold in the first files read
        # and skips older row groups by their statistics.
        files = [
            f
            for f in sorted(self._files, key=lambda f: (f.hour_start_ns, f.segment), reverse=True)
            if f.signal == signal
            and (tenant is None or f.tenant == tenant)
            and (start_ns is None or f.hour_start_ns + HOUR_NS > start_ns)
            and (end_ns is None or f.hour_start_ns <= end_ns)
        ]
        with self._publish_lock:
            hot = all_rows([*self._retired, self._active], signal)
            visible = self._visible_seq
        tables = {sql.hot_view(signal): hot}
        deletes = signal == "traces" and any(
            tenant is None or t.tenant == tenant for t in self._deletes.items
        )
        if deletes:
            traces, spans = self._deletes.tables(tenant)
            tables[sql.DELETED_TRACES] = traces
            tables[sql.DELETED_SPANS] = spans
        return _Snapshot(
            signal, files, tables, visible if pin is None else min(pin, visible), deletes
        )

    def _run(
        self, statement: str, params: Sequence[Any], tables: dict[str, pa.Table]
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = self._con.cursor()
        # A query holds the sources lock, which sealing needs: none may run unbounded.
        done = threading.Event()

        def watchdog() -> None:
            # Past the deadline, keep interrupting: one that lands between two statements
            # (or before the first) would otherwise be lost.
            if done.wait(self.query_timeout_s):
                return
            while True:
                cur.interrupt()
                if done.wait(0.01):
                    return

        timer = threading.Thread(target=watchdog, name="otterscope-query-watchdog", daemon=True)
        timer.start()
        try:
            for name, table in tables.items():
                cur.register(name, table)
            cur.execute(statement, list(params))
            names = [d[0] for d in cur.description or ()]
            return names, cur.fetchall()
        except duckdb.InterruptException:
            raise QueryTimeout(
                f"query took longer than {self.query_timeout_s:g}s; "
                "narrow the time window or the conditions"
            ) from None
        except duckdb.Error as exc:
            damage.raise_if_named(self._files, exc, "query failed", statement)
            raise StoreError(f"query failed: {exc}") from exc
        finally:
            done.set()
            timer.join()
            cur.close()

    def last_seq(self) -> int:
        with self._publish_lock:
            return self._visible_seq

    def _file_resources(self, path: str) -> frozenset[str]:
        with self._resource_lock:
            known = self._resource_sets.get(path)
        if known is None:
            # Dictionary-encoded in the file: reading the column is cheap, and files never
            # gain resources (a rewrite only drops rows), so the answer can be kept.
            try:
                column = pq.read_table(path, columns=["resource_attributes"]).column(0)
            except (OSError, ValueError, pa.ArrowException) as exc:
                named = [f for f in self._files if str(f.path) == path]
                raise damage.DamagedFiles(named, f"reading {path} failed: {exc}") from exc
            known = frozenset(v for v in pc.unique(column).to_pylist() if v is not None)
            with self._resource_lock:
                self._resource_sets[path] = known
        return known

    def _resource_matches(
        self, snap: _Snapshot, attrs: Sequence[tuple[str, str]]
    ) -> list[list[str]] | None:
        """Per attribute condition, the resource attribute sets in the snapshot that meet
        it (None when there is no condition)."""
        if not attrs:
            return None
        stored: set[str] = set()
        for f in snap.files:
            stored |= self._file_resources(str(f.path))
        hot = snap.tables[sql.hot_view(snap.signal)].column("resource_attributes")
        stored.update(v for v in pc.unique(hot.cast(pa.string())).to_pylist() if v is not None)
        if not stored:
            return [[] for _ in attrs]
        listed = sorted(stored)
        out = []
        for key, value in attrs:
            _, rows = self._run(
                sql.matching_resources(len(listed)), [*listed, sql.json_path(key), value], {}
            )
            out.append([r[0] for r in rows])
        return out

    # -- traces --------------------------------------------------------------------------

    def get_trace(self, tenant: str, trace_id: bytes) -> list[Row]:
        return self.get_traces(tenant, [trace_id])

    @damage.retried_past_damage
    def get_traces(self, tenant: str, trace_ids: Sequence[bytes]) -> list[Row]:
        """Every span of the traces (duplicates once), by trace, then start time."""
        if not trace_ids:
            return []
        with self._sources_lock.read():
            snap = self._snapshot("traces", tenant)
            statement = sql.spans_of_traces(snap.source, len(trace_ids))
            names, rows = self._run(statement, [tenant, snap.pin, *trace_ids], snap.tables)
        return _rows(names, rows)

    @damage.retried_past_damage
    def search_traces(self, tenant: str, query: TraceQuery) -> Page[TraceSummary]:
        """Traces with a span matching every condition, newest trace start first.

        Exact without aggregating every matching trace. One scan takes the newest matching
        spans (newest first); the traces of a prefix of them are summarised, and a trace is
        kept when it starts after the last span of the prefix: a trace with no span in the
        prefix starts no later than that, so none can be missed. Too few kept: a longer
        prefix, and only when the scan's spans run out, a longer scan. A trace summary
        counts the spans within an hour (TRACE_MARGIN_NS) of its matching spans.
        """
        want = query.limit + 1
        count = max(4 * want, FIRST_SCAN)
        with self._sources_lock.read():
            snap = self._snapshot(
                "traces",
                tenant,
                query.start_ns - TRACE_MARGIN_NS,
                query.end_ns + TRACE_MARGIN_NS,
                query.pin_seq,
            )
            matching = snap.within(query.start_ns, query.end_ns)
            resources = self._resource_matches(snap, query.attributes)
            spans: list[tuple[Any, ...]] = []
            known: dict[bytes, TraceSummary] = {}
            before: int | None = None
            while True:
                statement, params = sql.trace_candidates(
                    matching, tenant, query, snap.pin, count, resources, before
                )
                _, more = self._run(statement, params, snap.tables)
                exhausted = len(more) < count
                # A rescan reads only what is older than the last one's newest-N cut (ties
                # at the cut come again; they change nothing).
                spans += more
                traces = 2 * want
                while True:
                    prefix = _prefix(spans, traces)
                    complete = len(prefix) == len(spans)
                    fresh = [r for r in prefix if r[0] not in known]
                    known.update((t.trace_id, t) for t in self._summaries(snap, tenant, fresh))
                    every = complete and exhausted
                    floor = int(prefix[-1][1]) if prefix else 0
                    kept = sorted(
                        (
                            t
                            for t in known.values()
                            if _wanted(t, query) and (every or t.start_ns > floor)
                        ),
                        key=lambda t: (-t.start_ns, t.trace_id),
                    )
                    if len(kept) >= want or every:
                        return Page(kept[: query.limit], snap.pin, len(kept) > query.limit)
                    if complete:
                        break
                    traces *= 2
                before = int(spans[-1][1])
                count *= 8

    def _summaries(
        self, snap: _Snapshot, tenant: str, spans: list[tuple[Any, ...]]
    ) -> list[TraceSummary]:
        if not spans:
            return []
        ids = list(dict.fromkeys(r[0] for r in spans))
        starts = [int(r[1]) for r in spans]
        # The traces' other spans lie near their matching ones: read only those hours.
        source = snap.within(min(starts) - TRACE_MARGIN_NS, max(starts) + TRACE_MARGIN_NS)
        _, rows = self._run(
            sql.trace_summaries(source, len(ids)), [tenant, snap.pin, *ids], snap.tables
        )
        return [
            TraceSummary(
                trace_id=r[0],
                root_service=r[1],
                root_name=r[2],
                root_span_missing=bool(r[3]),
                start_ns=int(r[4]),
                end_ns=int(r[5]),
                span_count=int(r[6]),
                error_count=int(r[7]),
                services=tuple(r[8]),
            )
            for r in rows
        ]

    @damage.retried_past_damage
    def recent_traces(self, tenant: str, limit: int, before_ns: int, window_ns: int) -> list[Row]:
        """Spans of the ``limit`` traces that ended last, up to ``before_ns``."""
        with self._sources_lock.read():
            snap = self._snapshot("traces", tenant, before_ns - window_ns, before_ns)
            _, ids = self._run(
                sql.recent_traces(snap.source, limit),
                [tenant, snap.pin, before_ns - window_ns, before_ns],
                snap.tables,
            )
            if not ids:
                return []
            order = {r[0]: i for i, r in enumerate(ids)}
            statement = sql.spans_of_traces(snap.source, len(ids))
            names, rows = self._run(statement, [tenant, snap.pin, *order], snap.tables)
        spans = _rows(names, rows)
        spans.sort(key=lambda r: order[r["trace_id"]])
        return spans

    @damage.retried_past_damage
    def recent_spans(self, tenant: str, limit: int) -> list[Row]:
        with self._sources_lock.read():
            snap = self._snapshot("traces", tenant)
            names, rows = self._run(
                sql.recent_spans(snap.source, limit), [tenant, snap.pin], snap.tables
            )
        return _rows(names, rows)

    @damage.retried_past_damage
    def operations(
        self, tenant: str, service: str, start_ns: int, end_ns: int
    ) -> list[tuple[str, int, int]]:
        """(span name, kind, span count) of one service in a window."""
        with self._sources_lock.read():
            snap = self._snapshot("traces", tenant, start_ns, end_ns)
            _, rows = self._run(
                sql.operations(snap.source),
                [tenant, snap.pin, service, start_ns, end_ns],
                snap.tables,
            )
        return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]

    # -- services ----------------------------------------------------------------------------

    @damage.retried_past_damage
    def service_activity(self, tenant: str, start_ns: int, end_ns: int) -> dict[str, list[Row]]:
        """Per signal, per service: items, first and last time, latest resource (spans:
        also errors and p99 duration). Whole settled hours come from the cache."""
        out = {}
        first_hour, last_hour = start_ns // HOUR_NS, end_ns // HOUR_NS
        with self._sources_lock.read():
            pin: int | None = None
            for signal in ("traces", "logs", "metrics"):
                snap = self._snapshot(
                    signal, tenant, first_hour * HOUR_NS, (last_hour + 1) * HOUR_NS, pin
                )
                pin = snap.pin
                hot_hours = _hot_hours(snap, tenant)
                rows: list[Row] = []
                for hour in _hours_with_data(snap, hot_hours, first_hour, last_hour):
                    lo, hi = max(start_ns, hour * HOUR_NS), min(end_ns, (hour + 1) * HOUR_NS - 1)
                    whole = (lo, hi) == (hour * HOUR_NS, (hour + 1) * HOUR_NS - 1)
                    if not whole or snap.deletes or hour in hot_hours:
                        rows += self._activity_rows(snap, tenant, lo, hi)
                        continue
                    files = tuple(
                        (str(f.path), f.size) for f in snap.files if f.hour_start_ns == lo
                    )
                    key = ("activity", tenant, signal, hour, files)
                    cached = self._hour_cache.get(key)
                    if cached is None:
                        cached = self._activity_rows(snap, tenant, lo, hi)
                        self._hour_cache.put(key, cached)
                    rows += cached
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
        return _rows(names, rows)[0]

    def _activity_rows(self, snap: _Snapshot, tenant: str, lo: int, hi: int) -> list[Row]:
        names, rows = self._run(
            service_sql.service_activity(snap.within(lo, hi), snap.signal),
            [tenant, snap.pin, lo, hi],
            snap.tables,
        )
        return _rows(names, rows)

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
                key = _settled_key(snap, tenant, hour, hot_hours)
                if key is None:  # only the part in the window, every time
                    lo, hi = max(start_ns, hour * HOUR_NS), min(end_ns, (hour + 1) * HOUR_NS - 1)
                    rows += self._dependency_rows(snap, tenant, lo, hi)
                else:
                    rows += self._cached_hour(snap, tenant, hour, key)
        return hourly.merge_calls(rows, start_ns, end_ns)

    @damage.retried_past_damage
    def warm_dependencies(self, limit: int) -> int:
        """Compute the calls of up to ``limit`` settled hours not cached yet, newest first
        (the maintenance thread does, so that the service map is answered from the cache);
        return how many."""
        done = 0
        tenants = {f.tenant for f in self._files if f.signal == "traces"}
        for tenant in sorted(tenants):
            with self._sources_lock.read():
                snap = self._snapshot("traces", tenant)
                hot_hours = _hot_hours(snap, tenant)
                hours = sorted({f.hour_start_ns // HOUR_NS for f in snap.files}, reverse=True)
                for hour in hours:
                    key = _settled_key(snap, tenant, hour, hot_hours)
                    if key is None or self._hour_cache.get(key) is not None:
                        continue
                    self._cached_hour(snap, tenant, hour, key)
                    done += 1
                    if done >= limit:
                        return done
        return done

    def _cached_hour(self, snap: _Snapshot, tenant: str, hour: int, key: Hashable) -> list[Row]:
        cached = self._hour_cache.get(key)
        if cached is None:
            cached = self._dependency_rows(snap, tenant, hour * HOUR_NS, (hour + 1) * HOUR_NS - 1)
            self._hour_cache.put(key, cached)
        return cached

    def _dependency_rows(self, snap: _Snapshot, tenant: str, lo: int, hi: int) -> list[Row]:
        """Per-minute calls of the calling spans that start in [lo, hi]."""
        read_end = hi + DEPENDENCY_MARGIN_NS
        names, rows = self._run(
            service_sql.dependencies(snap.within(lo, read_end)),
            [tenant, snap.pin, lo, read_end, hi, hi],
            snap.tables,
        )
        return _rows(names, rows)

    # -- the SQL sandbox ---------------------------------------------------------------------

    def export_for_sql(self, tenant: str, directory: Path) -> SqlSandboxSpec:
        """The tenant's data for a SQL sandbox, in ``directory`` (on the data dir's file
        system): its Parquet files hard-linked (retention may delete the originals
        meanwhile), its hot rows and pending deletes as Arrow IPC files, and the views."""
        directory.mkdir(parents=True)
        tables: dict[str, str] = {}
        files: list[str] = []
        views: list[str] = []
        with self._sources_lock.read():
            pin: int | None = None
            for signal in ("traces", "logs", "metrics"):
                snap = self._snapshot(signal, tenant, pin=pin)
                pin = snap.pin
                linked = []
                for i, f in enumerate(snap.files):
                    target = directory / f"{signal}-{i}.parquet"
                    os.link(f.path, target)
                    linked.append(str(target))
                files += linked
                for name, table in snap.tables.items():
                    if name == sql.hot_view(signal):
                        table = table.filter(pc.equal(table.column("tenant"), tenant))
                        table = table.filter(pc.less_equal(table.column("ingest_seq"), snap.pin))
                    path = directory / f"{name}.arrow"
                    with (
                        pa.OSFile(str(path), "wb") as sink,
                        pa.ipc.new_stream(sink, table.schema) as w,
                    ):
                        w.write_table(table)
                    tables[name] = str(path)
                views.append(
                    sandbox_sql.view(signal, sql.source(signal, True, linked, snap.deletes))
                )
        return SqlSandboxSpec(views, tables, files)

    # -- logs and every signal -------------------------------------------------------------

    @damage.retried_past_damage
    def search_logs(self, tenant: str, query: LogQuery) -> Page[Row]:
        with self._sources_lock.read():
            snap = self._snapshot("logs", tenant, query.start_ns, query.end_ns, query.pin_seq)
            resources = self._resource_matches(snap, query.attributes)
            statement, params = sql.search_logs(snap.source, tenant, query, snap.pin, resources)
            names, rows = self._run(statement, params, snap.tables)
        found = _rows(names, rows)
        return Page(found[: query.limit], snap.pin, len(found) > query.limit)

    @damage.retried_past_damage
    def fetch(self, tenant: str, query: FetchQuery) -> Page[Row]:
        with self._sources_lock.read():
            snap = self._snapshot(query.signal, tenant, query.start_ns, query.end_ns, query.pin_seq)
            statement, params = sql.fetch(snap.source, tenant, query, snap.pin)
            names, rows = self._run(statement, params, snap.tables)
        found = _rows(names, rows)
        if query.signal == "traces":
            # Copies of one span sort next to each other, the first stored first.
            unique: list[Row] = []
            for row in found:
                if unique and _span_key(unique[-1]) == _span_key(row):
                    continue
                unique.append(row)
            more = len(found) > query.limit
            found = unique
        else:
            more = len(found) > query.limit
        return Page(found[: query.limit], snap.pin, more)

    @damage.retried_past_damage
    def metric_aggregates(self, after_seq: int, excluded: Sequence[str] = ()) -> MetricAggregates:
        """What was committed after ``after_seq``, folded per series: metric points (and
        the summed bucket counts of delta histograms) and the spans' RED figures."""
        patch = orjson.dumps(dict.fromkeys(excluded)).decode()
        with self._sources_lock.read():
            snap = self._snapshot("metrics", None)
            params = [patch, after_seq, snap.pin]
            names, rows = self._run(metric_sql.metric_aggregates(snap.source), params, snap.tables)
            bnames, brows = self._run(
                metric_sql.delta_bucket_sums(snap.source), params, snap.tables
            )
            enames, erows = self._run(
                metric_sql.exponential_points(snap.source), params, snap.tables
            )
            spans = self._snapshot("traces", None, pin=snap.pin)
            rnames, rrows = self._run(metric_sql.span_red(spans.source), params[1:], spans.tables)
        return MetricAggregates(
            snap.pin,
            _rows(names, rows),
            _rows(bnames, brows),
            _rows(rnames, rrows),
            _rows(enames, erows),
        )

    @damage.retried_past_damage
    def metric_steps(
        self,
        tenant: str,
        names: Sequence[str],
        window: tuple[int, int, int],
        step_ns: int,
        limit: int,
        origin_ns: int = 0,
        needles: Sequence[str] = (),
    ) -> list[Row]:
        with self._sources_lock.read():
            snap = self._snapshot("metrics", tenant, window[0], window[2])
            statement, params = metric_sql.metric_steps(
                snap.source, tenant, snap.pin, names, window, step_ns, limit, origin_ns, needles
            )
            names_, rows = self._run(statement, params, snap.tables)
        return _rows(names_, rows)

    @damage.retried_past_damage
    def span_red_steps(
        self, tenant: str, window: tuple[int, int], step_ns: int, limit: int, origin_ns: int = 0
    ) -> list[Row]:
        with self._sources_lock.read():
            # A span is filed under its start hour; one that ends in the window may have
            # started up to an hour (the trace margin) before it.
            snap = self._snapshot("traces", tenant, window[0] - TRACE_MARGIN_NS, window[1])
            statement, params = metric_sql.span_red_steps(
                snap.source, tenant, snap.pin, window, step_ns, limit, origin_ns
            )
            names, rows = self._run(statement, params, snap.tables)
        return _rows(names, rows)

    @damage.retried_past_damage
    def attribute_keys(
        self, tenant: str, signal: str, prefix: str, start_ns: int, end_ns: int, limit: int
    ) -> list[str]:
        with self._sources_lock.read():
            snap = self._snapshot(signal, tenant, start_ns, end_ns)
            _, rows = self._run(
                sql.attribute_keys(snap.source, signal, limit),
                [tenant, snap.pin, start_ns, end_ns, prefix],
                snap.tables,
            )
        return [str(r[0]) for r in rows]

    @damage.retried_past_damage
    def attribute_values(
        self,
        tenant: str,
        signal: str,
        key: str,
        prefix: str,
        start_ns: int,
        end_ns: int,
        limit: int,
    ) -> list[Any]:
        """Distinct values of one attribute key, as API values (typed)."""
        path = sql.json_path(key)
        with self._sources_lock.read():
            snap = self._snapshot(signal, tenant, start_ns, end_ns)
            _, rows = self._run(
                sql.attribute_values(snap.source, signal, limit),
                [path, path, tenant, snap.pin, start_ns, end_ns, prefix],
                snap.tables,
            )
        return [to_api(orjson.loads(r[0])) for r in rows]


def _prefix(spans: list[tuple[Any, ...]], traces: int) -> list[tuple[Any, ...]]:
    """The leading spans that belong to the first ``traces`` distinct traces."""
    seen: set[bytes] = set()
    for i, row in enumerate(spans):
        if row[0] not in seen:
            if len(seen) == traces:
                return spans[:i]
            seen.add(row[0])
    return spans


def _wanted(t: TraceSummary, q: TraceQuery) -> bool:
    """The whole-trace conditions, and the page's place in the order (start desc, id)."""
    duration = t.end_ns - t.start_ns
    if q.min_trace_duration_ns is not None and duration < q.min_trace_duration_ns:
        return False
    if q.max_trace_duration_ns is not None and duration > q.max_trace_duration_ns:
        return False
    if q.after is not None:
        start, trace_id = q.after
        return t.start_ns < start or (t.start_ns == start and t.trace_id > trace_id)
    return True


def _span_key(row: Row) -> tuple[Any, ...]:
    return (row["start_time_unix_nano"], row["trace_id"], row["span_id"])


def _hot_hours(snap: _Snapshot, tenant: str) -> set[int]:
    """The hours the tenant's hot rows of the snapshot's signal are filed under."""
    hot = snap.tables[sql.hot_view(snap.signal)]
    mine = hot.filter(pc.equal(hot.column("tenant"), tenant))
    hours = pc.unique(pc.divide(mine.column(TIME_COLUMN[snap.signal]), HOUR_NS))
    return {int(h) for h in hours.to_pylist()}


def _settled_key(snap: _Snapshot, tenant: str, hour: int, hot_hours: set[int]) -> Hashable | None:
    """What an hour's calls depend on once it is settled (no hot spans in it or the next
    hour, no pending delete): the two hours' files. None while it is not."""
    if snap.deletes or {hour, hour + 1} & hot_hours:
        return None
    bounds = (hour * HOUR_NS, (hour + 1) * HOUR_NS)
    files = tuple((str(f.path), f.size) for f in snap.files if f.hour_start_ns in bounds)
    return (tenant, hour, files)


def _hours_with_data(snap: _Snapshot, hot_hours: set[int], first: int, last: int) -> list[int]:
    """The hours in [first, last] that have a file or hot rows: a window of years reads
    only those."""
    filed = {f.hour_start_ns // HOUR_NS for f in snap.files}
    return sorted(h for h in filed | hot_hours if first <= h <= last)
