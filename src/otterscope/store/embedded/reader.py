"""The embedded store's read side: traces, logs, metrics, attributes and the SQL sandbox.

Every query takes the read side of the sources lock, reads one snapshot (``snapshot.py``:
the files and hot rows as of one moment, and the pin), and runs statements from ``sql`` and
``metric_sql`` against it. Trace search is ``trace_search.py``'s, services and the calls
between them ``service_reader.py``'s.
Results come back as plain rows; shaping them is the API's business.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from otterscope.otlp.anyvalue import to_api
from otterscope.query.model import FetchQuery, LogQuery, Page
from otterscope.store.base import MetricAggregates, Row, SqlSandboxSpec
from otterscope.store.embedded import (
    damage,
    metric_sql,
    sandbox_sql,
    service_sql,
    sql,
)
from otterscope.store.embedded.layout import SealedFile
from otterscope.store.embedded.snapshot import Snapshot, rows_of
from otterscope.store.embedded.trace_search import TRACE_MARGIN_NS, TraceSearch


class Reader(TraceSearch):
    """Mixed into the store, whose state it reads (set up by the store's constructor)."""

    # -- traces --------------------------------------------------------------------------

    def get_trace(self, tenant: str, trace_id: bytes) -> list[Row]:
        return self.get_traces(tenant, [trace_id])

    @damage.retried_past_damage
    def get_traces(self, tenant: str, trace_ids: Sequence[bytes]) -> list[Row]:
        """Every span of the traces (duplicates once), by trace, then start time; only the
        files whose trace filters may hold one are read."""
        if not trace_ids:
            return []
        with self._sources_lock.read():
            snap = self._snapshot("traces", tenant)
            files = self._files_holding(snap.files, trace_ids)
            src = sql.source("traces", True, files, snap.deletes)
            statement = sql.spans_of_traces(src, len(trace_ids))
            names, rows = self._run(statement, [tenant, snap.pin, *trace_ids], snap.tables)
        return rows_of(names, rows)

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
            files = self._files_holding(snap.files, list(order))
            src = sql.source("traces", True, files, snap.deletes)
            statement = sql.spans_of_traces(src, len(ids))
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
    def metric_aggregates(
        self,
        after_seq: int,
        excluded: Sequence[str] = (),
        graph: tuple[int, int | None] | None = None,
    ) -> MetricAggregates:
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
            graph_rows, graph_upto = [], after_seq
            if graph is not None:
                graph_upto = snap.pin if graph[1] is None else min(graph[1], snap.pin)
                graph_rows = self._service_graph(spans, graph[0], graph_upto)
        return MetricAggregates(
            snap.pin,
            rows_of(names, rows),
            rows_of(bnames, brows),
            rows_of(rnames, rrows),
            rows_of(enames, erows),
            graph_rows,
            max(graph_upto, graph[0]) if graph is not None else 0,
        )

    def _service_graph(self, spans: Snapshot, after: int, upto: int) -> list[Row]:
        """The service graph requests the spans numbered in (after, upto] complete (the
        caller holds the sources lock)."""
        if upto <= after:
            return []
        _, bounds = self._run(
            service_sql.service_graph_bounds(spans.source), [after, upto], spans.tables
        )
        lo, hi = bounds[0] if bounds else (None, None)
        if lo is None or hi is None:
            return []
        margin = service_sql.DEPENDENCY_MARGIN_NS
        files = self._graph_files(spans, after, upto, lo - margin, hi + margin)
        source = sql.source("traces", True, [str(f.path) for f in files], spans.deletes)
        params = [after, upto, spans.pin, lo - margin, hi + margin, *([after, upto] * 4)]
        # On the maintenance DuckDB (storage.maintenance_memory_limit): on the queries' one
        # the pairing of a fold's spans with their traces took all of its 512 MB (+507 MiB
        # of RSS for 265,000 spans read back from sealed files, at full ingest load the
        # server's peak), at 128 MB +138 MiB and 0.5 s longer.
        names, rows = self._run(
            service_sql.service_graph(source), params, spans.tables, self._maintenance_con
        )
        return rows_of(names, rows)

    def _graph_files(
        self, spans: Snapshot, after: int, upto: int, lo: int, hi: int
    ) -> list[SealedFile]:
        """The span files in [lo, hi] that may hold a span of a trace with a client or
        server span numbered in (after, upto]: the other side of a request is in the same
        trace. A file's kept trace summaries list every trace it holds, so a file whose
        summaries name none of them is left out; files without usable ones are read.
        (Reading every file of the ten minutes around the range grew with the ingest rate:
        at 100,000 spans/s a fold read tens of millions of spans for a few new traces.)"""
        files = spans.files_within(lo, hi)
        if not files:
            return files
        _, rows = self._run(service_sql.graph_traces(spans.source), [after, upto], spans.tables)
        fresh = pa.array([r[0] for r in rows], pa.binary())
        kept = []
        for f in files:
            summaries = self._kept_summaries(f)
            if summaries is None or _names_any(summaries.path, fresh):
                kept.append(f)
        return kept

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


def _span_key(row: Row) -> tuple[Any, ...]:
    return (row["start_time_unix_nano"], row["trace_id"], row["span_id"])


def _names_any(summaries: Path, traces: pa.Array) -> bool:
    """Whether the kept summaries at ``summaries`` name any of ``traces``; True when they
    cannot be read (the span file is then read as if it had none: a damaged summary file
    is trace search's and maintenance's to quarantine, and costs a fold only time)."""
    try:
        ids = pq.read_table(summaries, columns=["trace_id"]).column("trace_id")
    except (OSError, ValueError, pa.ArrowException):
        return True
    return bool(pc.any(pc.is_in(ids, value_set=traces)).as_py())
