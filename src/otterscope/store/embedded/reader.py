"""The embedded store's read side: every query, run against one consistent snapshot.

A query takes the read side of the sources lock (sealing and retention cannot change the set
of files under it), snapshots the hot rows and the last visible ingest sequence number
together (so a pin never names rows the query could not see), registers them with its own
DuckDB cursor, and runs one statement from ``sql`` under a watchdog that interrupts it at
``query_timeout``. Results come back as plain rows; shaping them is the API's business.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from otterscope.errors import QueryTimeout, StoreError
from otterscope.otlp.anyvalue import to_api
from otterscope.query.model import FetchQuery, LogQuery, Page, TraceQuery, TraceSummary
from otterscope.store.base import Row
from otterscope.store.embedded import sql
from otterscope.store.embedded.deletes import Tombstones
from otterscope.store.embedded.layout import HOUR_NS, SealedFile
from otterscope.store.embedded.rwlock import RWLock
from otterscope.store.embedded.segment import Segment, all_rows

# How far past a search window a trace's other spans are looked for (its summary counts
# spans up to this far outside the window).
TRACE_MARGIN_NS = HOUR_NS


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
    query_timeout_s: float

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
            raise StoreError(f"query failed: {exc}") from exc
        finally:
            done.set()
            timer.join()
            cur.close()

    def last_seq(self) -> int:
        with self._publish_lock:
            return self._visible_seq

    # -- traces --------------------------------------------------------------------------

    def get_trace(self, tenant: str, trace_id: bytes) -> list[Row]:
        return self.get_traces(tenant, [trace_id])

    def get_traces(self, tenant: str, trace_ids: Sequence[bytes]) -> list[Row]:
        """Every span of the traces (duplicates once), by trace, then start time."""
        if not trace_ids:
            return []
        with self._sources_lock.read():
            snap = self._snapshot("traces", tenant)
            statement = sql.spans_of_traces(snap.source, len(trace_ids))
            names, rows = self._run(statement, [tenant, snap.pin, *trace_ids], snap.tables)
        return _rows(names, rows)

    def search_traces(self, tenant: str, query: TraceQuery) -> Page[TraceSummary]:
        """Traces with a span matching every condition, newest trace start first.

        Exact without aggregating every matching trace: take the newest M matching spans,
        summarise their traces, and keep those that start at or after the M-th span's start
        (a trace that has no span among those M starts no later than it, so none can be
        missed); when fewer than a page remain, M grows. A trace summary counts the spans
        within an hour (TRACE_MARGIN_NS) of its matching spans.
        """
        want = query.limit + 1
        count = max(4 * want, 256)
        with self._sources_lock.read():
            snap = self._snapshot(
                "traces",
                tenant,
                query.start_ns - TRACE_MARGIN_NS,
                query.end_ns + TRACE_MARGIN_NS,
                query.pin_seq,
            )
            matching = snap.within(query.start_ns, query.end_ns)
            while True:
                statement, params = sql.trace_candidates(matching, tenant, query, snap.pin, count)
                _, spans = self._run(statement, params, snap.tables)
                exhausted = len(spans) < count
                floor = None if exhausted else int(spans[-1][1])
                found = self._summaries(snap, tenant, spans)
                kept = sorted(
                    (
                        t
                        for t in found
                        if _wanted(t, query) and (floor is None or t.start_ns >= floor)
                    ),
                    key=lambda t: (-t.start_ns, t.trace_id),
                )
                if len(kept) >= want or exhausted:
                    return Page(kept[: query.limit], snap.pin, len(kept) > query.limit)
                count *= 4

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

    def recent_spans(self, tenant: str, limit: int) -> list[Row]:
        with self._sources_lock.read():
            snap = self._snapshot("traces", tenant)
            names, rows = self._run(
                sql.recent_spans(snap.source, limit), [tenant, snap.pin], snap.tables
            )
        return _rows(names, rows)

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

    # -- logs and every signal -------------------------------------------------------------

    def search_logs(self, tenant: str, query: LogQuery) -> Page[Row]:
        with self._sources_lock.read():
            snap = self._snapshot("logs", tenant, query.start_ns, query.end_ns, query.pin_seq)
            statement, params = sql.search_logs(snap.source, tenant, query, snap.pin)
            names, rows = self._run(statement, params, snap.tables)
        found = _rows(names, rows)
        return Page(found[: query.limit], snap.pin, len(found) > query.limit)

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
