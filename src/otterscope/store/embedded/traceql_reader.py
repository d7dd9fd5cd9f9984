"""TraceQL search in the embedded store: which traces match, newest first, and their
spansets. The statements are ``traceql_sql``'s; trace summaries are the reader's.

Two statements per search (more only when the first comes up short). The first takes the
newest matched spans (a top-N by start, so a simple filter reads only the newest row
groups); the traces of a prefix of them are summarised, and a trace is kept when it starts
after the last span of the prefix: a trace none of whose matches is in the prefix has every
match, and so its start, no later than that, so none can be missed. Too few kept: a longer
prefix, and when the top-N runs out, a longer top-N. Too few kept: a longer top-N.
The second statement evaluates the query again for the kept traces only and returns their
spansets: matched counts and the first ``spss`` spans of each.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pyarrow as pa

from otterscope.errors import BadRequest, StoreError
from otterscope.otlp.anyvalue import to_api
from otterscope.query.model import (
    MatchedSpan,
    Spanset,
    TraceQLResult,
    TraceQLSearch,
    TraceQuery,
    TraceSummary,
)
from otterscope.query.traceql import ast
from otterscope.store.embedded import damage, sql, traceql_sql
from otterscope.store.embedded.reader import Reader
from otterscope.store.embedded.snapshot import Snapshot
from otterscope.store.embedded.trace_search import FIRST_SCAN, TRACE_MARGIN_NS, _Plan, _prefix

# How many candidate traces the exact query checks one by one (in growing batches) before
# the candidates are taken from the exact query over the whole window instead.
CHECK_BUDGET = 1000
# (rows scanned, files the attribute index answers, its comparisons, tables to register)
_IndexPlan = tuple[str, str, list[ast.Comparison], dict[str, pa.Table]]
_STATUS_WORDS = {v: k for k, v in ast.STATUSES.items()}
_KIND_WORDS = {v: k for k, v in ast.KINDS.items()}


class TraceQLReader(Reader):
    @damage.retried_past_damage
    def search_traceql(self, tenant: str, search: TraceQLSearch) -> list[TraceQLResult]:
        with self._sources_lock.read():
            snap = self._snapshot(
                "traces",
                tenant,
                search.start_ns - TRACE_MARGIN_NS,
                search.end_ns + TRACE_MARGIN_NS,
                search.pin_seq,
            )
            for pattern in traceql_sql.regexes(search.query):
                self._check_regex(pattern)
            return self._newest(snap, tenant, search)

    def _index_plan(self, snap: Snapshot, search: TraceQLSearch, q: ast.Query) -> _IndexPlan | None:
        """Where the attribute index answers a simple query's span attribute conditions:
        the rows still scanned, the files answered by it, their comparisons and the tables
        to register (the reader's plan for trace search; a condition no span of a file
        meets leaves the file out, resources never meeting a span-scoped one)."""
        comparisons = traceql_sql.indexable(q)
        if not comparisons:
            return None
        attrs = tuple(
            (c.field.name, str(c.value.value))
            for c in comparisons
            if isinstance(c.field, ast.Attribute)
        )
        query = TraceQuery(search.start_ns, search.end_ns, attributes=attrs)
        # Never cut by counting: the query has conditions the index does not see.
        plan = _Plan(query, [[] for _ in attrs], snap.pin, snap.tables, countable=False)
        scanned, indexed, tables = self._attribute_plan(snap, plan, 0, None)
        if indexed is None:
            return None
        return sql.source("traces", True, scanned, snap.deletes), indexed, comparisons, tables

    def _newest(self, snap: Snapshot, tenant: str, search: TraceQLSearch) -> list[TraceQLResult]:
        """The ``limit`` newest matching traces with their spansets.

        Candidates come from the relaxed query first (``traceql_sql.relaxed``: a superset
        of the matches, for most queries one filter read newest first off the source); the
        traces kept by the prefix rule are checked by the exact query, restricted to their
        ids and hours, which also yields their spansets. When more than CHECK_BUDGET traces
        were checked without filling the page (a pipeline few traces pass), the candidates
        come from the exact query over the window instead."""
        checked: dict[bytes, list[Spanset]] = {}
        known: dict[bytes, TraceSummary] = {}
        loose = traceql_sql.relaxed(search.query)
        if loose != search.query:
            found = self._pass(snap, tenant, search, loose, known, checked, CHECK_BUDGET)
            if found is not None:
                return found
        found = self._pass(snap, tenant, search, search.query, known, checked, None)
        assert found is not None
        return found

    def _pass(
        self,
        snap: Snapshot,
        tenant: str,
        search: TraceQLSearch,
        loose: ast.Query,
        known: dict[bytes, TraceSummary],
        checked: dict[bytes, list[Spanset]],
        budget: int | None,
    ) -> list[TraceQLResult] | None:
        """One search with candidates from ``loose``; None once ``budget`` traces were
        checked without filling the page."""
        want = search.limit
        win = traceql_sql.Window(
            snap.within(search.start_ns, search.end_ns),
            tenant,
            snap.pin,
            search.start_ns,
            search.end_ns,
        )
        tables = snap.tables
        indexed: tuple[str, list[ast.Comparison]] | None = None
        plan = self._index_plan(snap, search, loose)
        if plan is not None:
            src, indexed_src, comparisons, tables = plan
            win = replace(win, src=src)
            indexed = (indexed_src, comparisons)
        count = max(4 * (want + 1), FIRST_SCAN)
        batch = 2 * want
        spent = 0
        while True:
            statement, params = traceql_sql.candidates(loose, win, count, indexed)
            _, spans = self._run(statement, params, tables)
            exhausted = len(spans) < count
            # One trace more than the page: the last one of a prefix is never kept (it
            # starts no later than its own match), the others usually are.
            traces = want + 1
            while True:
                # Summaries cost by the hours they span: summarise the traces of the newest
                # matches first, and more only when those do not fill the page.
                prefix = _prefix(spans, traces)
                complete = len(prefix) == len(spans)
                fresh = [r for r in prefix if r[0] not in known]
                known.update((t.trace_id, t) for t in self._summaries(snap, tenant, fresh))
                floor = None if complete and exhausted else int(prefix[-1][1])
                candidates = sorted(
                    (
                        known[tid]
                        for tid in dict.fromkeys(r[0] for r in prefix)
                        if tid in known and (floor is None or known[tid].start_ns > floor)
                    ),
                    key=lambda t: (-t.start_ns, t.trace_id),
                )
                todo = [t for t in candidates if t.trace_id not in checked]
                checked.update(self._exact(snap, tenant, search, todo[:batch]))
                spent += len(todo[:batch])
                kept = [t for t in candidates if checked.get(t.trace_id)]
                if len(kept) >= want or (floor is None and len(todo) <= batch):
                    return [TraceQLResult(t, tuple(checked[t.trace_id])) for t in kept[:want]]
                if budget is not None and spent > budget:
                    return None
                if len(todo) > batch:
                    batch *= 4
                    continue
                if complete:
                    break
                traces *= 4
            count *= 8

    def _exact(
        self, snap: Snapshot, tenant: str, search: TraceQLSearch, traces: list[TraceSummary]
    ) -> dict[bytes, list[Spanset]]:
        """The spansets of the query in each of ``traces`` (empty: no match). Every span of
        a trace lies between its summary's start and end: only those hours are read."""
        if not traces:
            return {}
        lo = max(search.start_ns, min(t.start_ns for t in traces))
        hi = min(search.end_ns, max(t.end_ns for t in traces))
        ids = [t.trace_id for t in traces]
        window = traceql_sql.Window(snap.within(lo, hi), tenant, snap.pin, lo, hi, ids)
        statement, params = traceql_sql.spansets(search.query, window, search.spss)
        _, rows = self._run(statement, params, snap.tables)
        found = _spansets(search.query, rows)
        return {tid: found.get(tid, []) for tid in ids}

    def _check_regex(self, pattern: str) -> None:
        """A regular expression DuckDB (RE2) cannot compile is the user's mistake."""
        try:
            self._run(traceql_sql.REGEX_CHECK, [pattern], {})
        except StoreError as exc:
            raise BadRequest(f"TraceQL: bad regular expression {pattern!r}: {exc}") from None


def _spansets(q: ast.Query, rows: list[tuple[Any, ...]]) -> dict[bytes, list[Spanset]]:
    """The rows of ``traceql_sql.spansets`` as spansets per trace."""
    fields = ast.touched(q)
    group = q.group
    out: dict[bytes, list[Spanset]] = {}
    current: tuple[bytes, Any] | None = None
    spans: list[MatchedSpan] = []
    for r in rows:
        key = (r[0], r[1])
        if key != current:
            spans = []
            matched = int(r[2])
            grouped = None if group is None else (group, _api(group, r[1]))
            out.setdefault(r[0], []).append(Spanset(matched, (), grouped))
            current = key
        values = [(f, _api(f, v)) for f, v in zip(fields, r[7:], strict=True) if v is not None]
        spans.append(MatchedSpan(r[3], r[4], int(r[5]), int(r[6]), tuple(values)))
        last = out[r[0]][-1]
        out[r[0]][-1] = Spanset(last.matched, tuple(spans), last.group)
    return out


def _api(f: ast.Field, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(f, ast.Attribute):
        return to_api(orjson.loads(value))
    if f.name == "status":
        return _STATUS_WORDS.get(int(value), str(value))
    if f.name == "kind":
        return _KIND_WORDS.get(int(value), str(value))
    return value
