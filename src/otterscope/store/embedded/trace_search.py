"""Trace search in the embedded store: the newest traces with a span that meets every
condition, and their summaries.

Conditions on resource attributes are decided once per distinct resource; attribute
conditions are answered from the attribute index where a file has one (``attrindex.py``);
matching spans are taken newest first, and their traces summarised from the summaries
sealing kept (``tracesummary.py``) where those are the whole answer, else from their spans.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from otterscope.errors import QueryTimeout, StoreError
from otterscope.query.model import Page, TraceQuery, TraceSummary
from otterscope.store.embedded import attrindex, damage, sql, summary_sql
from otterscope.store.embedded.layout import HOUR_NS, SealedFile
from otterscope.store.embedded.service_reader import ServiceReader
from otterscope.store.embedded.snapshot import Snapshot

# How far past a search window a trace's other spans are looked for (its summary counts
# spans up to this far outside the window).
TRACE_MARGIN_NS = HOUR_NS
# The fewest matching spans a trace search's first scan takes. Small on purpose: files are
# read newest first, and once a top-N of this size is full its threshold skips every older
# row group, so a small first scan often reads only the newest files (measured with 10M
# spans: 4096 doubled the time of searches matching ~0.5% of spans).
FIRST_SCAN = 256
INDEXED_FIRST_SCAN = 4096


class TraceSearch(ServiceReader):
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
        # Distinct first, then as text (casting first spells out every hot row's resource).
        distinct = pc.unique(hot)
        if pa.types.is_dictionary(distinct.type):
            distinct = distinct.cast(pa.string())
        stored.update(v for v in distinct.to_pylist() if v is not None)
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

    # -- traces ------------------------------------------------------------------------

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
            except QueryTimeout:
                raise
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
