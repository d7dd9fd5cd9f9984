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
from otterscope.store.embedded import attrindex, damage, filters, sql, summary_sql
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


_NONE = pa.array([], pa.uint32())


class _Plan:
    """What a trace search's plans share: its query and resource matches, the tables to
    register (hot rows cut at the pin), the hashes of its attribute conditions and each
    file's index answer (looked up once per search)."""

    def __init__(
        self,
        query: TraceQuery,
        resources: list[list[str]] | None,
        pin: int,
        tables: dict[str, pa.Table],
        countable: bool = True,
    ) -> None:
        self.query = query
        self.resources = resources
        self.pin = pin
        self.tables = tables
        self.hashes: list[int] | None = None
        self.found: dict[str, list[pa.Array | None] | None] = {}
        q = query
        # Only then is a span listed by the index for the one condition a match.
        self.countable = (
            countable
            and len(q.attributes) == 1
            and all(
                c is None
                for c in (
                    q.service,
                    q.operation,
                    q.status,
                    q.kind,
                    q.min_duration_ns,
                    q.max_duration_ns,
                )
            )
        )


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
            window = snap.files_within(query.start_ns, query.end_ns)
            pin, hot = self._pin_condition(snap, window, snap.tables)
            plan = _Plan(query, resources, snap.pin, hot)
            matching, indexed, tables = self._attribute_plan(snap, plan, count, None)
            if indexed is not None and not plan.countable and count < INDEXED_FIRST_SCAN:
                # Files the index answers cost about the same to read whatever the count,
                # so one scan takes enough for a page (a rare value with a few spans per
                # trace took a second scan and a second round of summaries). Not when the
                # count decides how many files are read (a plan that can count its
                # matches): at 100M spans 4096 read ~30 times the files 256 did.
                count = INDEXED_FIRST_SCAN
                matching, indexed, tables = self._attribute_plan(snap, plan, count, None)
            spans: list[tuple[Any, ...]] = []
            known: dict[bytes, TraceSummary] = {}
            before: int | None = None
            while True:
                if before is not None:
                    matching, indexed, tables = self._attribute_plan(snap, plan, count, before)
                statement, params = sql.trace_candidates(
                    sql.source("traces", True, matching, snap.deletes),
                    tenant,
                    query,
                    pin,
                    count,
                    resources,
                    before,
                    indexed,
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
                if plan.countable and indexed is not None:
                    # The count decides how many files are read (the plan's cut): take
                    # about what the spans per trace so far say a page needs (at least
                    # twice as many).
                    per_trace = len(spans) / max(1, len({r[0] for r in spans}))
                    count = max(2 * count, int(per_trace * 3 * want))
                else:
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
        self, snap: Snapshot, plan: _Plan, count: int, before: int | None
    ) -> tuple[list[str], str | None, dict[str, pa.Table]]:
        """Where a search's span conditions are answered: (the files scanned as before,
        beside the hot rows; the files the attribute index answers; the tables to
        register), for the newest ``count`` matches starting no later than ``before``.

        A file is answered by its index when it has one and every condition's value is
        listed in it as rare or not at all; one with a condition that neither its index
        nor its resources can meet is not read at all, and a value its membership filter
        rules out is not even looked up. Values the index cannot name (doubles, arrays,
        kvlists: more than one spelling) and frequent values are scanned.

        Files are consulted latest last start first (Parquet statistics). Once the files
        consulted hold at least ``count`` spans certain to match (``_certain``), the files
        left are left out when none may start a span as late as the earliest start of the
        files counted: none of their spans can be among the newest ``count`` matches.
        """
        query = plan.query
        files = [
            f
            for f in snap.files_within(query.start_ns, query.end_ns)
            if (before is None or self._starts(f)[0] <= before)
            and (query.service is None or self._may_meet(f, query.service, query))
        ]
        attrs = query.attributes
        resources = plan.resources
        if not attrs or resources is None or not all(sql.attribute_needles(*a) for a in attrs):
            return [str(f.path) for f in files], None, plan.tables
        if plan.hashes is None:
            plan.hashes = filters.attribute_hashes(self._con, list(attrs))
        scanned: list[str] = []
        answered: list[str] = []
        hits: dict[str, list[pa.Array]] = {"c": [], "f": [], "r": []}
        wanted = [frozenset(r) for r in resources]
        # Newest last start first; ``later[i]``: the latest start any file from i on may
        # hold. ``floor``: the earliest start of a file that counted certain matches.
        spans = [self._starts(f) for f in files]
        order = sorted(range(len(files)), key=lambda i: -spans[i][1])
        later = [s[1] for s in (spans[i] for i in order)]
        for i in range(len(later) - 2, -1, -1):
            later[i] = max(later[i], later[i + 1])
        certain = 0
        floor = None
        for at, i in enumerate(order):
            if plan.countable and certain >= count and floor is not None and later[at] < floor:
                break  # the files left start no span as late as the certain ones
            f = files[i]
            path = str(f.path)
            if path not in plan.found:
                plan.found[path] = self._indexed_rows(f, attrs, plan.hashes)
            found = plan.found[path]
            if found is None or any(r is None for r in found):
                scanned.append(path)
                sure = 0 if found is None else self._certain(snap, plan, f, before, None)
            else:
                listed = [r for r in found if r is not None]
                own = self._file_resources(path)
                if any(len(r) == 0 and not own & w for r, w in zip(listed, wanted, strict=True)):
                    continue  # a condition no span and no resource of the file meets
                answered.append(path)
                sure = self._certain(snap, plan, f, before, listed[0])
                for c, rows in enumerate(listed):
                    hits["c"].append(pa.array([c] * len(rows), pa.int32()))
                    hits["f"].append(pa.array([path] * len(rows), pa.string()))
                    hits["r"].append(pc.cast(rows, pa.int64()))
            if sure:
                certain += sure
                floor = spans[i][0] if floor is None else min(floor, spans[i][0])
        if not answered:
            return scanned, None, plan.tables
        table = pa.table(
            {
                k: pa.chunked_array(v, hits_type)
                for (k, v), hits_type in zip(
                    hits.items(), (pa.int32(), pa.string(), pa.int64()), strict=True
                )
            }
        )
        return (
            scanned,
            sql.indexed_spans(answered, snap.deletes),
            {**plan.tables, sql.ATTR_HITS: table},
        )

    def _certain(
        self,
        snap: Snapshot,
        plan: _Plan,
        f: SealedFile,
        before: int | None,
        rows: pa.Array | None,
    ) -> int:
        """How many spans of ``f`` certainly match a search with one attribute condition
        and no other span condition: the rows its index lists (``rows``), or, for a value
        frequent in it (None), more than the index's rare limit. 0 when that is not certain:
        other conditions, pending deletes, rows past the pin, or spans not all inside the
        window (and before ``before``)."""
        q = plan.query
        last = q.end_ns if before is None else min(q.end_ns, before)
        first, final = self._starts(f)
        if not plan.countable or snap.deletes or first < q.start_ns or final > last:
            return 0
        try:
            top = self._attr_indexes.max_seq(f.path)
            size = self._attr_indexes.rows(f.path)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise damage.DamagedFiles([f], f"reading {f.path} failed: {exc}") from exc
        if top is None or top > snap.pin:
            return 0
        if rows is not None:
            return len(rows)
        # The limit sealing listed values up to (attrindex.build): a frequent value is on
        # more rows than that.
        return max(attrindex.MIN_RARE, size // attrindex.RARE_DIVISOR) + 1

    def _starts(self, f: SealedFile) -> tuple[int, int]:
        """The first and last span start ``f`` may hold: from its statistics, else its
        hour."""
        try:
            known = self._attr_indexes.starts(f.path)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise damage.DamagedFiles([f], f"reading {f.path} failed: {exc}") from exc
        return known if known is not None else (f.hour_start_ns, f.hour_start_ns + HOUR_NS - 1)

    def _indexed_rows(
        self, f: SealedFile, attrs: Sequence[tuple[str, str]], hashes: Sequence[int]
    ) -> list[pa.Array | None] | None:
        """Per condition, the file's rows whose span attributes meet it, or None when the
        value is frequent in the file; None when the file has no usable index."""
        try:
            index = self._attr_indexes.get(f.path)
            if index is None:
                return None
            kept = self._filters(f)
            seen = kept.attributes if kept is not None else None
            return [
                _NONE if seen is not None and not seen.may_hold(h) else index.rows(k, v)
                for (k, v), h in zip(attrs, hashes, strict=True)
            ]
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise damage.DamagedFiles([f], f"reading {f.path} failed: {exc}") from exc

    def _filters(self, f: SealedFile) -> filters.Filters | None:
        try:
            return self._attr_indexes.filters(f.path)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise damage.DamagedFiles([f], f"reading {f.path} failed: {exc}") from exc

    def _may_meet(self, f: SealedFile, service: str, query: TraceQuery) -> bool:
        """Whether ``f`` may hold a span of ``service`` as long as the query asks (its
        filters know each service's longest span)."""
        kept = self._filters(f)
        return kept is None or kept.may_meet(service, query.min_duration_ns)

    def _files_holding(self, files: Sequence[SealedFile], trace_ids: Sequence[bytes]) -> list[str]:
        """The paths of ``files`` that may hold a span of ``trace_ids``: every one but those
        whose trace filter rules all of them out."""
        hashes = filters.trace_hashes(self._con, list(dict.fromkeys(trace_ids)))
        out = []
        for f in files:
            kept = self._filters(f)
            if kept is None or any(kept.traces.may_hold(h) for h in hashes):
                out.append(str(f.path))
        return out

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
