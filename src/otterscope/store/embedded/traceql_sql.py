"""TraceQL lowered to the embedded store's SQL: every statement a TraceQL search runs.

A query becomes one statement of CTEs over the span source (``sql.source``) of the search
window, the tenant and the pin:

- each ``{ … }`` filter is a leaf: the keys (trace id, span id, parent id, start) of the
  spans meeting its condition, joined with ``tql_traces`` (per-trace intrinsics:
  traceDuration, rootName, rootServiceName) only when the query names one of those;
- ``&&`` keeps the spans of either side in traces that have both, ``||`` is their union
  (both ``UNION ALL``: keys may repeat until the full rows are read, once per span);
  ``>`` and ``~`` are semi-joins on the parent id; ``>>`` walks up from the right side's
  spans with a recursive CTE over the spans of the traces both sides occur in (``UNION``,
  not ``UNION ALL``, so a parent cycle in bad data ends the walk). A recursive walk rather
  than nested-set numbers, because spans arrive in any order and nested sets would have to
  be rebuilt per trace at every write;
- the pipeline runs on the matched spans' full rows (duplicates of a span once): ``by``
  sets the group, ``count()``/``avg()``/… are window aggregates per trace and group.

Typed comparisons follow Tempo: a value of another type, or no value, never matches (so
``!=`` needs the attribute, and ``.a > 1`` needs a number: numbers compare as doubles).
Unscoped ``.a`` is the span's attribute, else the resource's. Every literal and JSON path
is a parameter; the only other inserts are CTE names made here and the store's sources.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from otterscope.otlp.rows import UNKNOWN_SERVICE
from otterscope.query.traceql import ast
from otterscope.store.embedded.sql import ATTR_HITS, attribute_needles, json_path

_COLUMNS = {
    "name": "name",
    "statusMessage": "status_message",
    "status": "status_code",
    "kind": "kind",
    "duration": "duration_nano",
    "traceDuration": "tql_trace_duration",
    "rootName": "tql_root_name",
    "rootServiceName": "tql_root_service",
}
_NUMERIC = "('BIGINT', 'UBIGINT', 'DOUBLE')"
_KEYS = "trace_id, span_id, parent_span_id, start_time_unix_nano"
_ROOT = "parent_span_id = ''::BLOB"
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True, slots=True)
class Window:
    """What every row read must meet: tenant, pin, span start in the window, and (when
    given) one of the traces."""

    src: str
    tenant: str
    pin: int
    start_ns: int
    end_ns: int
    trace_ids: Sequence[bytes] | None = None

    def where(self) -> tuple[str, list[object]]:
        text = (
            "tenant = ? AND ingest_seq <= ? AND start_time_unix_nano >= ? "
            "AND start_time_unix_nano <= ?"
        )
        params: list[object] = [self.tenant, self.pin, self.start_ns, self.end_ns]
        if self.trace_ids is not None:
            text += f" AND trace_id IN ({', '.join('?' for _ in self.trace_ids)})"
            params += list(self.trace_ids)
        return text, params


@dataclass(slots=True)
class _With:
    """CTEs and their parameters, kept in text order."""

    ctes: list[str] = field(default_factory=list)
    params: list[object] = field(default_factory=list)
    recursive: bool = False

    def add(self, name: str, text: str, params: Sequence[object] = ()) -> str:
        self.ctes.append(f"{name} AS ({text})")
        self.params.extend(params)
        return name

    def statement(self, tail: str, params: Sequence[object] = ()) -> tuple[str, list[object]]:
        head = ("WITH RECURSIVE " if self.recursive else "WITH ") + ", ".join(self.ctes)
        return f"{head} {tail}", [*self.params, *params]


def trace_level(q: ast.Query) -> bool:
    """Whether the query names a per-trace intrinsic (and so needs ``tql_traces``)."""
    return any(isinstance(f, ast.Intrinsic) and f.trace_level for f in ast.touched(q))


def simple(q: ast.Query) -> bool:
    """One filter, no per-trace intrinsic, nothing in the pipeline but ``select``: its
    matches are single spans, read newest first straight from the source."""
    return (
        isinstance(q.spansets, ast.SpansetFilter)
        and not trace_level(q)
        and all(isinstance(s, ast.Select) for s in q.stages)
    )


# Compiles a pattern (parameter) the way the searches will, failing as they would.
REGEX_CHECK = "SELECT regexp_full_match('', ?)"


def relaxed(q: ast.Query) -> ast.Query:
    """A query matching a superset of ``q``'s spans, cheaper to read newest first: ``>>``
    becomes ``&&`` (its matches are right-side spans of traces holding both sides; the
    walk up the parents of a whole window's spans would not fit in memory) and the
    pipeline goes (it only removes spans). Its matches pick the candidate traces, which
    ``q`` itself then checks."""
    return ast.Query(_relax(q.spansets))


def _relax(e: ast.SpansetExpr) -> ast.SpansetExpr:
    if isinstance(e, ast.SpansetFilter):
        return e
    op: ast.SpansetOpName = "&&" if e.op == ">>" else e.op
    return ast.SpansetOp(op, _relax(e.left), _relax(e.right))


def regexes(q: ast.Query) -> list[str]:
    """The query's regular expressions, to be checked before the statement runs."""
    conds = ast.conditions(q.spansets) + [
        s.condition for s in q.stages if isinstance(s, ast.FilterStage)
    ]
    out: list[str] = []
    while conds:
        c = conds.pop()
        if isinstance(c, ast.Logic):
            conds += [c.left, c.right]
        elif c.op in ("=~", "!~"):
            out.append(str(c.value.value))
    return out


# -- values and conditions ---------------------------------------------------------------------


def _json(a: ast.Attribute) -> tuple[str, list[object]]:
    """The attribute's stored JSON value (SQL NULL when absent)."""
    path = json_path(a.name)
    if a.scope == "span":
        return "json_extract(attributes, ?)", [path]
    if a.scope == "resource":
        return "json_extract(resource_attributes, ?)", [path]
    return "coalesce(json_extract(attributes, ?), json_extract(resource_attributes, ?))", [
        path,
        path,
    ]


def _number(a: ast.Attribute) -> tuple[str, list[object]]:
    x, p = _json(a)
    return (
        f"CASE WHEN json_type({x}) IN {_NUMERIC} THEN "
        f"TRY_CAST(json_extract_string({x}, '$') AS DOUBLE) END",
        p + p,
    )


def _nested_set_parent(op: str, k: int) -> str:
    """Root spans have nestedSetParent -1; comparisons reaching here (``parser._check``)
    hold for every positive number alike, so 1 stands for every other span."""
    truth = _COMPARE[op]
    root, other = truth(-1, k), truth(1, k)
    if root and other:
        return "TRUE"
    if root:
        return _ROOT
    return "FALSE" if not other else f"NOT ({_ROOT})"


def condition(
    c: ast.Condition, answered: dict[ast.Comparison, str] | None = None
) -> tuple[str, list[object]]:
    """A condition on one span row as SQL and its parameters; ``answered`` holds the SQL
    of comparisons decided another way (the attribute index)."""
    if answered and isinstance(c, ast.Comparison) and c in answered:
        return answered[c], []
    if isinstance(c, ast.Logic):
        left, lp = condition(c.left, answered)
        right, rp = condition(c.right, answered)
        word = "AND" if c.op == "&&" else "OR"
        return f"({left} {word} {right})", lp + rp
    if isinstance(c.field, ast.Attribute):
        return _attribute_condition(c.field, c.op, c.value)
    name = c.field.name
    if name == "nestedSetParent":
        return _nested_set_parent(c.op, int(c.value.value or 0)), []
    column = _COLUMNS[name]
    if c.op in ("=~", "!~"):
        negate = "NOT " if c.op == "!~" else ""
        return f"{negate}regexp_full_match({column}, ?)", [c.value.value]
    return f"{column} {c.op} ?", [c.value.value]


def _attribute_condition(a: ast.Attribute, op: str, value: ast.Static) -> tuple[str, list[object]]:
    x, p = _json(a)
    if value.kind == "nil":
        return f"{x} {'IS' if op == '=' else 'IS NOT'} NULL", p
    if value.kind in ("int", "float"):
        number, np_ = _number(a)
        return f"{number} {op} ?", [*np_, value.value]
    if value.kind == "bool":
        return (
            f"(json_type({x}) = 'BOOLEAN' AND "
            f"TRY_CAST(json_extract_string({x}, '$') AS BOOLEAN) {op} ?)",
            [*p, *p, value.value],
        )
    text = f"json_extract_string({x}, '$')"
    if op in ("=~", "!~"):
        negate = "NOT " if op == "!~" else ""
        test = f"{negate}regexp_full_match({text}, ?)"
    else:
        test = f"{text} {op} ?"
    sql = f"(json_type({x}) = 'VARCHAR' AND {test})"
    params = [*p, *p, value.value]
    if op == "=" and a.scope != "any":
        s = str(value.value)
        if a.scope == "resource" and a.name == "service.name" and s != UNKNOWN_SERVICE:
            # The service_name column holds exactly this (ingest copies it), and is cheap:
            # dictionary-encoded and in the files' statistics.
            return "service_name = ?", [s]
        column = "attributes" if a.scope == "span" else "resource_attributes"
        # A substring test first: far cheaper than parsing every row's JSON.
        needle = attribute_needles(a.name, s)[:1]
        if needle:
            return f"(contains({column}, ?) AND {sql})", [*needle, *params]
    return sql, params


def _value(f: ast.Field) -> tuple[str, list[object]]:
    """A field's value on a matched row, as returned: attributes as their stored JSON text,
    intrinsics as their column."""
    if isinstance(f, ast.Attribute):
        x, p = _json(f)
        return f"{x}::VARCHAR", p
    if f.name == "nestedSetParent":
        return f"CASE WHEN {_ROOT} THEN -1 END", []
    return _COLUMNS[f.name], []


# -- spansets ------------------------------------------------------------------------------------


def _traces(w: _With, win: Window) -> None:
    where, params = win.where()
    order = "ORDER BY start_time_unix_nano, span_id"
    w.add(
        "tql_traces",
        "SELECT trace_id, max(end_time_unix_nano) - min(start_time_unix_nano) "
        f"AS tql_trace_duration, first(name {order}) FILTER (WHERE {_ROOT}) AS tql_root_name, "
        f"first(service_name {order}) FILTER (WHERE {_ROOT}) AS tql_root_service "
        f"FROM {win.src} WHERE {where} GROUP BY trace_id",
        params,
    )


def _spansets(w: _With, e: ast.SpansetExpr, win: Window, joined: bool) -> str:
    """The CTE holding the keys of the spans ``e`` matches."""
    name = f"tql_s{len(w.ctes)}"
    if isinstance(e, ast.SpansetFilter):
        where, params = win.where()
        if e.condition is not None:
            text, cp = condition(e.condition)
            where, params = f"{where} AND {text}", params + cp
        join = " JOIN tql_traces USING (trace_id)" if joined else ""
        return w.add(name, f"SELECT {_KEYS} FROM {win.src}{join} WHERE {where}", params)
    a = _spansets(w, e.left, win, joined)
    b = _spansets(w, e.right, win, joined)
    name = f"tql_s{len(w.ctes)}"
    # UNION ALL: a span on both sides comes twice, which nothing after minds (full rows
    # are read once per span), while deduplicating millions of keys would spill.
    if e.op == "||":
        return w.add(name, f"SELECT * FROM {a} UNION ALL SELECT * FROM {b}")
    if e.op == "&&":
        return w.add(
            name,
            f"SELECT * FROM {a} WHERE trace_id IN (SELECT trace_id FROM {b}) UNION ALL "
            f"SELECT * FROM {b} WHERE trace_id IN (SELECT trace_id FROM {a})",
        )
    if e.op == ">":
        related = "x.span_id = y.parent_span_id"
    elif e.op == "~":
        related = "x.parent_span_id = y.parent_span_id AND x.span_id <> y.span_id"
        related += " AND y.parent_span_id <> ''::BLOB"
    else:
        w.recursive = True
        where, params = win.where()
        # Only the traces both sides occur in are walked, and only their spans read.
        both = w.add(
            f"{name}_t",
            f"SELECT DISTINCT trace_id FROM {b} WHERE trace_id IN (SELECT trace_id FROM {a})",
        )
        spans = w.add(
            f"{name}_all",
            f"SELECT trace_id, span_id, parent_span_id FROM {win.src} WHERE {where} "
            f"AND trace_id IN (SELECT trace_id FROM {both})",
            params,
        )
        up = w.add(
            f"{name}_up",
            f"SELECT trace_id, span_id, parent_span_id AS up FROM {b} "
            f"WHERE trace_id IN (SELECT trace_id FROM {both}) UNION "
            f"SELECT u.trace_id, u.span_id, p.parent_span_id FROM {name}_up u "
            f"JOIN {spans} p ON p.trace_id = u.trace_id AND p.span_id = u.up",
        )
        return w.add(
            name,
            f"SELECT y.* FROM {b} y WHERE EXISTS (SELECT 1 FROM {up} u JOIN {a} x "
            "ON x.trace_id = u.trace_id AND x.span_id = u.up "
            "WHERE u.trace_id = y.trace_id AND u.span_id = y.span_id)",
        )
    return w.add(
        name,
        f"SELECT y.* FROM {b} y WHERE EXISTS (SELECT 1 FROM {a} x "
        f"WHERE x.trace_id = y.trace_id AND {related})",
    )


def _aggregate(s: ast.AggregateFilter) -> tuple[str, list[object]]:
    if s.field is None:
        return "count(*)", []
    if isinstance(s.field, ast.Intrinsic):
        return f"{s.name}({_COLUMNS[s.field.name]})", []
    number, p = _number(s.field)
    return f"{s.name}({number})", p


def _matched(q: ast.Query, win: Window, rows: bool) -> tuple[_With, str]:
    """The CTEs of the query's matches and the name of the last: span keys, or with
    ``rows`` (always when the pipeline needs them) full rows with their ``tql_group``."""
    w = _With()
    joined = trace_level(q)
    if joined:
        _traces(w, win)
    where, params = win.where()
    join = " JOIN tql_traces USING (trace_id)" if joined else ""
    if isinstance(q.spansets, ast.SpansetFilter):
        # One filter: its rows are read directly, without a second pass for the keys.
        if q.spansets.condition is not None:
            text, cp = condition(q.spansets.condition)
            where, params = f"{where} AND {text}", params + cp
        matched = ""
    else:
        keys = _spansets(w, q.spansets, win, joined)
        if not rows and all(isinstance(s, ast.Select) for s in q.stages):
            return w, keys
        matched = (
            f"AND EXISTS (SELECT 1 FROM {keys} k WHERE k.trace_id = s.trace_id "
            "AND k.span_id = s.span_id) "
        )
    last = w.add(
        "tql_rows",
        f"SELECT *, NULL::VARCHAR AS tql_group FROM {win.src} s{join} WHERE {where} "
        f"{matched}"
        "QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY ingest_seq) = 1",
        params,
    )
    for i, stage in enumerate(q.stages):
        name = f"tql_p{i}"
        if isinstance(stage, ast.GroupBy):
            value, vp = _value(stage.field)
            last = w.add(name, f"SELECT * REPLACE ({value} AS tql_group) FROM {last}", vp)
        elif isinstance(stage, ast.FilterStage):
            text, cp = condition(stage.condition)
            last = w.add(name, f"SELECT * FROM {last} WHERE {text}", cp)
        elif isinstance(stage, ast.AggregateFilter):
            agg, ap = _aggregate(stage)
            last = w.add(
                name,
                f"SELECT * EXCLUDE (tql_v) FROM (SELECT *, {agg} OVER "
                f"(PARTITION BY trace_id, tql_group) AS tql_v FROM {last}) "
                f"WHERE tql_v {stage.op} ?",
                [*ap, stage.value.value],
            )
    return w, last


# -- the statements --------------------------------------------------------------------------


def indexable(q: ast.Query) -> list[ast.Comparison]:
    """The comparisons of a simple query the attribute index can decide on its own: span
    attribute = a string, among the filter's top-level ``&&`` conjuncts. Only values whose
    text no number, bool, array or object has: the index lists texts, so a hit is then
    exactly a string of that value."""
    filt = q.spansets
    if not simple(q) or not isinstance(filt, ast.SpansetFilter) or filt.condition is None:
        return []
    out, todo = [], [filt.condition]
    while todo:
        c = todo.pop()
        if isinstance(c, ast.Logic):
            if c.op == "&&":
                todo += [c.right, c.left]
            continue
        text = str(c.value.value)
        if (
            isinstance(c.field, ast.Attribute)
            and c.field.scope == "span"
            and c.op == "="
            and c.value.kind == "string"
            and len(attribute_needles(c.field.name, text)) == 1
        ):
            out.append(c)
    return out


def candidates(
    q: ast.Query,
    win: Window,
    count: int,
    indexed: tuple[str, Sequence[ast.Comparison]] | None = None,
) -> tuple[str, list[object]]:
    """The newest ``count`` matched spans: (trace id, start), newest first. ``indexed``:
    files read beside ``win.src`` (``sql.indexed_spans``) whose rows meeting comparison
    ``i`` the attribute index named in ``sql.ATTR_HITS``."""
    top = f"ORDER BY start_time_unix_nano DESC LIMIT {int(count)}"
    if not simple(q):
        w, last = _matched(q, win, rows=False)
        return w.statement(f"SELECT trace_id, start_time_unix_nano FROM {last} {top}")
    filt = q.spansets
    assert isinstance(filt, ast.SpansetFilter)

    def select(src: str, answered: dict[ast.Comparison, str] | None) -> tuple[str, list[object]]:
        where, params = win.where()
        if filt.condition is not None:
            text, cp = condition(filt.condition, answered)
            where, params = f"{where} AND {text}", params + cp
        return f"SELECT trace_id, start_time_unix_nano FROM {src} WHERE {where} {top}", params

    sql, params = select(win.src, None)
    if indexed is None:
        return sql, params
    src, comparisons = indexed
    hits = {
        c: f"EXISTS (SELECT 1 FROM {ATTR_HITS} h WHERE h.c = {int(i)} "
        "AND h.f = file_name AND h.r = file_row)"
        for i, c in enumerate(comparisons)
    }
    other, other_params = select(src, hits)
    # Each side keeps its own top-N, so each still skips row groups older than its cut.
    return f"SELECT * FROM (({sql}) UNION ALL ({other})) {top}", params + other_params


def spansets(q: ast.Query, win: Window, spss: int) -> tuple[str, list[object]]:
    """Per trace (``win.trace_ids``) and group: ``tql_matched`` spans, and the first
    ``spss`` of them by start: span id, name, start, duration, then the values of
    ``ast.touched(q)``, then ``tql_group``'s. Ordered by trace, group, start."""
    w, last = _matched(q, win, rows=True)
    values = [_value(f) for f in ast.touched(q)]
    extra = "".join(f", {v} AS tql_f{i}" for i, (v, _) in enumerate(values))
    params = [p for _, vp in values for p in vp]
    return w.statement(
        "SELECT trace_id, tql_group, tql_matched, span_id, name, start_time_unix_nano, "
        f"duration_nano{''.join(f', tql_f{i}' for i in range(len(values)))} FROM ("
        "SELECT *, count(*) OVER w AS tql_matched, row_number() OVER "
        "(w ORDER BY start_time_unix_nano, span_id) AS tql_rank"
        f"{extra} FROM {last} WINDOW w AS (PARTITION BY trace_id, tql_group)) "
        f"WHERE tql_rank <= {int(spss)} "
        "ORDER BY trace_id, tql_group NULLS FIRST, tql_rank",
        params,
    )
