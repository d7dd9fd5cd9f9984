"""The embedded store's read side: traces, logs, metrics, attributes and the SQL sandbox.

Every query takes the read side of the sources lock, reads one snapshot (``snapshot.py``:
the files and hot rows as of one moment, and the pin), and runs statements from ``sql`` and
``metric_sql`` against it. Services and the calls between them are ``service_reader.py``'s.
Results come back as plain rows; shaping them is the API's business.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from otterscope.errors import StoreError
from otterscope.otlp.anyvalue import to_api
from otterscope.query.model import FetchQuery, LogQuery, Page, TraceQuery, TraceSummary
from otterscope.store.base import MetricAggregates, Row, SqlSandboxSpec
from otterscope.store.embedded import (
    attrindex,
    damage,
    metric_sql,
    sandbox_sql,
    sql,
    summary_sql,
)
from otterscope.store.embedded.layout import HOUR_NS, SealedFile
from otterscope.store.embedded.service_reader import ServiceReader
from otterscope.store.embedded.snapshot import Snapshot, rows_of

# How far past a search window a trace's other spans are looked for (its summary counts
# spans up to this far outside the window).
TRACE_MARGIN_NS = HOUR_NS
# The fewest matching spans a trace search's first scan takes. Small on purpose: files are
# read newest first, and once a top-N of this size is full its threshold skips every older
# row group, so a small first scan often reads only the newest files (measured with 10M
# spans: 4096 doubled the time of searches matching ~0.5% of spans).
FIRST_SCAN = 256
INDEXED_FIRST_SCAN = 4096


class Reader(ServiceReader):
    """Mixed into the store, whose state it reads (set up by the store's constructor)."""

    _resource_sets: dict[str, frozenset[str]]  # sealed file -> its resource attribute sets
    _attr_indexes: attrindex.IndexCache
    _resource_lock: threading.Lock

    # -- resource conditions -----------------------------------------------------------------

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
        self, snap: Snapshot, attrs: Sequence[tuple[str, str]]
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
        return rows_of(names, rows)

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
            resources = self._resource_matches(snap, query.attributes)
            matching, indexed, tables = self._attribute_plan(snap, query, resources)
            window = snap.files_within(query.start_ns, query.end_ns)
            pin, tables = self._pin_condition(snap, window, tables)
            if indexed is not None:
                # Files the index answers cost about the same to read whatever the count,
                # so one scan takes enough for a page (a rare value with a few spans per
                # trace took a second scan and a second round of summaries).
                count = max(count, INDEXED_FIRST_SCAN)
            spans: list[tuple[Any, ...]] = []
            known: dict[bytes, TraceSummary] = {}
            before: int | None = None
            while True:
                statement, params = sql.trace_candidates(
                    matching, tenant, query, pin, count, resources, before, indexed
                )
                _, more = self._run(statement, params, tables)
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

    def _pin_condition(
        self, snap: Snapshot, files: Sequence[SealedFile], tables: dict[str, pa.Table]
    ) -> tuple[int | None, dict[str, pa.Table]]:
        """The pin as a condition of a search, or None with the hot rows cut at it when
        none of ``files`` holds a row past it (the usual case: comparing every row's ingest
        number cost a quarter of a search that reads the whole window)."""
        for f in files:
            try:
                top = self._attr_indexes.max_seq(f.path)
            except (OSError, ValueError, pa.ArrowException) as exc:
                raise damage.DamagedFiles([f], f"reading {f.path} failed: {exc}") from exc
            if top is None or top > snap.pin:
                return snap.pin, tables
        name = sql.hot_view(snap.signal)
        hot = tables[name]
        seq = hot.column("ingest_seq")
        if hot.num_rows and pc.max(seq).as_py() > snap.pin:
            hot = hot.filter(pc.less_equal(seq, snap.pin))
        return None, {**tables, name: hot}

    def _kept_summaries(self, f: SealedFile) -> attrindex.KeptSummaries | None:
        try:
            return self._attr_indexes.summaries(f.path)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise damage.DamagedFiles([f], f"reading {f.path} failed: {exc}") from exc

    def _attribute_plan(
        self, snap: Snapshot, query: TraceQuery, resources: Sequence[Sequence[str]] | None
    ) -> tuple[str, str | None, dict[str, pa.Table]]:
        """Where a search's attribute conditions are answered: (the rows read as before —
        hot rows and the files scanned —, the files the attribute index answers, the
        tables to register).

        A file is answered by its index when it has one and every condition's value is
        listed in it as rare or not at all; one with a condition that neither its index
        nor its resources can meet is not read at all. Values the index cannot name
        (doubles, arrays, kvlists: more than one spelling) and frequent values are scanned.
        """
        files = snap.files_within(query.start_ns, query.end_ns)
        attrs = query.attributes
        if not attrs or resources is None or not all(sql.attribute_needles(*a) for a in attrs):
            return (
                sql.source("traces", True, [str(f.path) for f in files], snap.deletes),
                None,
                snap.tables,
            )
        scanned: list[str] = []
        answered: list[str] = []
        hits: dict[str, list[pa.Array]] = {"c": [], "f": [], "r": []}
        wanted = [frozenset(r) for r in resources]
        for f in files:
            path = str(f.path)
            found = self._indexed_rows(f, attrs)
            if found is None:
                scanned.append(path)
                continue
            own = self._file_resources(path)
            if any(len(r) == 0 and not own & w for r, w in zip(found, wanted, strict=True)):
                continue  # a condition no span and no resource of the file meets
            answered.append(path)
            for i, rows in enumerate(found):
                hits["c"].append(pa.array([i] * len(rows), pa.int32()))
                hits["f"].append(pa.array([path] * len(rows), pa.string()))
                hits["r"].append(pc.cast(rows, pa.int64()))
        src = sql.source("traces", True, scanned, snap.deletes)
        if not answered:
            return src, None, snap.tables
        table = pa.table(
            {
                k: pa.chunked_array(v, hits_type)
                for (k, v), hits_type in zip(
                    hits.items(), (pa.int32(), pa.string(), pa.int64()), strict=True
                )
            }
        )
        return src, sql.indexed_spans(answered, snap.deletes), {**snap.tables, sql.ATTR_HITS: table}

    def _indexed_rows(
        self, f: SealedFile, attrs: Sequence[tuple[str, str]]
    ) -> list[pa.Array] | None:
        """Per condition, the file's rows whose span attributes meet it; None when the file
        must be scanned (no index, or a value frequent in it)."""
        try:
            index = self._attr_indexes.get(f.path)
            if index is None:
                return None
            found = [index.rows(k, v) for k, v in attrs]
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise damage.DamagedFiles([f], f"reading {f.path} failed: {exc}") from exc
        return [r for r in found if r is not None] if all(r is not None for r in found) else None

    def _summaries(
        self, snap: Snapshot, tenant: str, spans: list[tuple[Any, ...]]
    ) -> list[TraceSummary]:
        """The summaries of the traces of ``spans`` (trace id, start), counting their spans
        within TRACE_MARGIN_NS of those. A trace whose spans the window holds in one file
        only gets the summary sealing kept for it (tracesummary.py); the others are
        summarised from their spans, reading only the files that hold them."""
        if not spans:
            return []
        ids = list(dict.fromkeys(r[0] for r in spans))
        starts = [int(r[1]) for r in spans]
        files = snap.files_within(min(starts) - TRACE_MARGIN_NS, max(starts) + TRACE_MARGIN_NS)
        kept: dict[str, SealedFile] = {}
        unsummarised: list[str] = []
        for f in files:
            found = self._kept_summaries(f)
            if found is not None and found.max_seq <= snap.pin:
                kept[str(found.path)] = f
            else:
                unsummarised.append(str(f.path))
        holders: dict[bytes, list[tuple[Any, ...]]] = {}
        if kept:
            try:
                _, rows = self._run(summary_sql.kept_summaries(list(kept), len(ids)), ids, {})
            except StoreError:
                if not self._quarantine_summaries(kept):
                    raise
                return self._summaries(snap, tenant, spans)  # without the damaged ones
            for r in rows:
                holders.setdefault(r[1], []).append(r)
        # A trace may also have hot rows or a tombstone; with files the summaries cannot
        # answer for, any trace may have spans there.
        _, hot = self._run(
            summary_sql.traces_in(sql.source("traces", True, []), len(ids)),
            [tenant, snap.pin, *ids],
            snap.tables,
        )
        mixed = {r[0] for r in hot}
        if snap.deletes:
            for name in (sql.DELETED_TRACES, sql.DELETED_SPANS):
                mixed.update(snap.tables[name].column("trace_id").to_pylist())
        out: list[TraceSummary] = []
        rest: list[bytes] = []
        for i in ids:
            found_in = holders.get(i, [])
            if len(found_in) == 1 and i not in mixed and not unsummarised:
                out.append(_summary(found_in[0][1:]))
            else:
                rest.append(i)
        if rest:
            read = {str(kept[r[0]].path) for i in rest for r in holders.get(i, [])}
            source = sql.source("traces", True, sorted(read) + unsummarised, snap.deletes)
            _, rows = self._run(
                summary_sql.trace_summaries(source, len(rest)),
                [tenant, snap.pin, *rest],
                snap.tables,
            )
            out += [_summary(r) for r in rows]
        return out

    def _quarantine_summaries(self, kept: dict[str, SealedFile]) -> bool:
        """Move the unreadable ones of ``kept`` (summary file -> its data file) into the
        quarantine; True when there was one. Their traces are summarised from their spans
        until maintenance has written them again."""
        moved = False
        for path, f in kept.items():
            try:
                pq.read_table(path)
            except (OSError, ValueError, pa.ArrowException) as exc:
                with contextlib.suppress(FileNotFoundError):  # a rewrite took it meanwhile
                    self.quarantine.move(
                        Path(path),
                        "trace_summaries",
                        f"unreadable trace summaries of {f.path} ({exc})",
                        "nothing: its traces are summarised from their spans, and "
                        "maintenance writes the summaries again",
                    )
                self._attr_indexes.drop(f.path)
                moved = True
        return moved

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
        spans = rows_of(names, rows)
        spans.sort(key=lambda r: order[r["trace_id"]])
        return spans

    @damage.retried_past_damage
    def recent_spans(self, tenant: str, limit: int) -> list[Row]:
        with self._sources_lock.read():
            snap = self._snapshot("traces", tenant)
            names, rows = self._run(
                sql.recent_spans(snap.source, limit), [tenant, snap.pin], snap.tables
            )
        return rows_of(names, rows)

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
            pin, tables = self._pin_condition(snap, snap.files, snap.tables)
            statement, params = sql.search_logs(snap.source, tenant, query, pin, resources)
            names, rows = self._run(statement, params, tables)
        found = rows_of(names, rows)
        return Page(found[: query.limit], snap.pin, len(found) > query.limit)

    @damage.retried_past_damage
    def log_volume(self, tenant: str, query: LogQuery, step_ns: int) -> list[Row]:
        with self._sources_lock.read():
            snap = self._snapshot("logs", tenant, query.start_ns, query.end_ns, query.pin_seq)
            resources = self._resource_matches(snap, query.attributes)
            statement, params = sql.log_volume(
                snap.source, tenant, query, snap.pin, step_ns, resources
            )
            names, rows = self._run(statement, params, snap.tables)
        return rows_of(names, rows)

    @damage.retried_past_damage
    def fetch(self, tenant: str, query: FetchQuery) -> Page[Row]:
        with self._sources_lock.read():
            snap = self._snapshot(query.signal, tenant, query.start_ns, query.end_ns, query.pin_seq)
            statement, params = sql.fetch(snap.source, tenant, query, snap.pin)
            names, rows = self._run(statement, params, snap.tables)
        found = rows_of(names, rows)
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
            rows_of(names, rows),
            rows_of(bnames, brows),
            rows_of(rnames, rrows),
            rows_of(enames, erows),
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
        return rows_of(names_, rows)

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
        return rows_of(names, rows)

    @damage.retried_past_damage
    def attribute_keys(
        self,
        tenant: str,
        signal: str,
        prefix: str,
        start_ns: int,
        end_ns: int,
        limit: int,
        scope: str | None = None,
    ) -> list[str]:
        columns = sql.SCOPE_COLUMNS[scope]
        with self._sources_lock.read():
            snap = self._snapshot(signal, tenant, start_ns, end_ns)
            _, rows = self._run(
                sql.attribute_keys(snap.source, signal, limit, columns),
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
        scope: str | None = None,
    ) -> list[Any]:
        """Distinct values of one attribute key, as API values (typed)."""
        path = sql.json_path(key)
        columns = sql.SCOPE_COLUMNS[scope]
        with self._sources_lock.read():
            snap = self._snapshot(signal, tenant, start_ns, end_ns)
            _, rows = self._run(
                sql.attribute_values(snap.source, signal, limit, columns),
                [*(path for _ in columns), tenant, snap.pin, start_ns, end_ns, prefix],
                snap.tables,
            )
        return [to_api(orjson.loads(r[0])) for r in rows]


def _summary(r: Sequence[Any]) -> TraceSummary:
    return TraceSummary(
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
