"""TraceQL evaluated by the embedded store against a brute-force reference written here.

Spans go in through the store's normal write path; each query's results (traces, and per
spanset its group and the ids of all its spans) must equal what the reference finds by
walking every span in Python. A table of queries over a fixed random fixture (hot rows and
sealed files), a property test over random traces and random queries, and the result
details the reference does not model (order, limit, spss, values returned)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from otterscope.errors import BadRequest
from otterscope.query.model import TraceQLResult, TraceQLSearch
from otterscope.query.traceql import ast
from otterscope.query.traceql.parser import parse
from otterscope.store.embedded.store import EmbeddedStore
from tests.test_store_embedded import MS, T0, kvs, resource, write_spans

WINDOW = (T0 - 10**12, T0 + 10**12)
SERVICES = ["api", "db", "web"]
NAMES = ["GET /a", "GET /b", "query", "send"]
ATTR_VALUES: list[Any] = [0, 1, 2, 1.5, "x", "y", "GET /a", True, False]


@dataclass
class RSpan:
    """A span as the reference sees it."""

    trace: bytes
    id: bytes
    parent: bytes
    name: str
    kind: int
    status: int
    message: str
    start: int
    duration: int
    service: str
    attrs: dict[str, Any] = field(default_factory=dict)
    res: dict[str, Any] = field(default_factory=dict)


def random_traces(rng: random.Random, traces: int, max_spans: int = 6) -> list[RSpan]:
    out: list[RSpan] = []
    for t in range(traces):
        tid = rng.randbytes(15) + bytes([t])
        start = T0 + rng.randrange(0, 600) * 1000 * MS
        spans: list[RSpan] = []
        for i in range(rng.randint(1, max_spans)):
            if i == 0 or rng.random() < 0.1:
                parent = b"" if rng.random() < 0.8 else rng.randbytes(8)  # root, or orphan
            else:
                parent = rng.choice(spans).id
            attrs = {k: rng.choice(ATTR_VALUES) for k in ("a", "b") if rng.random() < 0.6}
            res = {k: rng.choice(ATTR_VALUES) for k in ("a", "r") if rng.random() < 0.4}
            spans.append(
                RSpan(
                    tid,
                    rng.randbytes(7) + bytes([i]),
                    parent,
                    rng.choice(NAMES),
                    rng.randrange(0, 6),
                    rng.randrange(0, 3),
                    rng.choice(["", "boom", "timeout"]),
                    start + rng.randrange(0, 50) * MS,
                    rng.choice([1, 5, 20, 100]) * MS,
                    rng.choice(SERVICES),
                    attrs,
                    res,
                )
            )
        out += spans
    return out


def write(store: EmbeddedStore, spans: list[RSpan]) -> None:
    groups = []
    for s in spans:
        proto = Span(
            trace_id=s.trace,
            span_id=s.id,
            parent_span_id=s.parent,
            name=s.name,
            kind=s.kind,  # type: ignore[arg-type]
            start_time_unix_nano=s.start,
            end_time_unix_nano=s.start + s.duration,
            status=Status(code=s.status, message=s.message),  # type: ignore[arg-type]
            attributes=kvs(s.attrs),
        )
        groups.append((resource(s.service, **s.res), [proto]))
    write_spans(store, groups)


# -- the reference ---------------------------------------------------------------------------


def _kind_of(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    return "string" if isinstance(v, str) else "other"


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


class Reference:
    def __init__(self, spans: list[RSpan]) -> None:
        self.traces: dict[bytes, list[RSpan]] = {}
        for s in spans:
            self.traces.setdefault(s.trace, []).append(s)

    def value(self, s: RSpan, f: ast.Field) -> Any:
        if isinstance(f, ast.Attribute):
            if f.scope == "span":
                return s.attrs.get(f.name)
            if f.scope == "resource":
                return {"service.name": s.service, **s.res}.get(f.name)
            if f.name in s.attrs:
                return s.attrs[f.name]
            return {"service.name": s.service, **s.res}.get(f.name)
        spans = self.traces[s.trace]
        roots = [x for x in spans if x.parent == b""]
        return {
            "name": s.name,
            "status": s.status,
            "statusMessage": s.message,
            "kind": s.kind,
            "duration": s.duration,
            "nestedSetParent": -1 if s.parent == b"" else 1,
            "traceDuration": max(x.start + x.duration for x in spans) - min(x.start for x in spans),
            "rootName": min(roots, key=lambda x: (x.start, x.id)).name if roots else None,
            "rootServiceName": min(roots, key=lambda x: (x.start, x.id)).service if roots else None,
        }[f.name]

    def shown(self, s: RSpan, f: ast.Field) -> Any:
        """A field's value as results show it: status and kind by their TraceQL words."""
        v = self.value(s, f)
        if isinstance(f, ast.Intrinsic) and f.name in ("status", "kind"):
            words = ast.STATUSES if f.name == "status" else ast.KINDS
            return next(w for w, n in words.items() if n == v)
        return v

    def holds(self, s: RSpan, c: ast.Condition) -> bool:
        if isinstance(c, ast.Logic):
            if c.op == "&&":
                return self.holds(s, c.left) and self.holds(s, c.right)
            return self.holds(s, c.left) or self.holds(s, c.right)
        v, lit = self.value(s, c.field), c.value
        if lit.kind == "nil":
            return (v is None) == (c.op == "=")
        if v is None:
            return False
        if isinstance(c.field, ast.Attribute):
            want = {"string": "string", "int": "number", "float": "number", "bool": "bool"}
            if _kind_of(v) != want[lit.kind]:
                return False
        if c.op in ("=~", "!~"):
            return (re.fullmatch(str(lit.value), v) is not None) == (c.op == "=~")
        return _OPS[c.op](v, lit.value)

    def spanset(self, spans: list[RSpan], e: ast.SpansetExpr) -> list[RSpan]:
        if isinstance(e, ast.SpansetFilter):
            return [s for s in spans if e.condition is None or self.holds(s, e.condition)]
        a, b = self.spanset(spans, e.left), self.spanset(spans, e.right)
        ids = {s.id for s in a}
        by_id = {s.id: s for s in spans}
        if e.op == "||":
            return _union(a, b)
        if e.op == "&&":
            return _union(a, b) if a and b else []
        if e.op == ">":
            return [s for s in b if s.parent in ids]
        if e.op == "~":
            return [
                s for s in b if s.parent and any(x.parent == s.parent and x.id != s.id for x in a)
            ]
        out = []
        for s in b:  # >>: walk up the parents, each span once (cycles end the walk)
            seen, up = set(), s.parent
            while up in by_id and up not in seen:
                if up in ids:
                    out.append(s)
                    break
                seen.add(up)
                up = by_id[up].parent
            else:
                if up in ids:
                    out.append(s)
        return out

    def run(self, q: ast.Query) -> dict[bytes, dict[Any, set[bytes]]]:
        out = {}
        for tid, spans in self.traces.items():
            groups: dict[Any, list[RSpan]] = {None: self.spanset(spans, q.spansets)}
            for stage in q.stages:
                if isinstance(stage, ast.GroupBy):
                    regrouped: dict[Any, list[RSpan]] = {}
                    for ss in groups.values():
                        for s in ss:
                            regrouped.setdefault(_key(self.shown(s, stage.field)), []).append(s)
                    groups = regrouped
                elif isinstance(stage, ast.FilterStage):
                    cond = stage.condition
                    groups = {k: [s for s in v if self.holds(s, cond)] for k, v in groups.items()}
                elif isinstance(stage, ast.AggregateFilter):
                    groups = {k: v for k, v in groups.items() if self.aggregate(v, stage)}
            found = {k: {s.id for s in v} for k, v in groups.items() if v}
            if found:
                out[tid] = found
        return out

    def aggregate(self, spans: list[RSpan], a: ast.AggregateFilter) -> bool:
        if a.field is None:
            value: Any = len(spans)
        else:
            nums = [self.value(s, a.field) for s in spans]
            nums = [n for n in nums if _kind_of(n) == "number"]
            if not nums:
                return False
            value = {"avg": lambda: sum(nums) / len(nums), "sum": lambda: sum(nums)}.get(
                a.name, lambda: min(nums) if a.name == "min" else max(nums)
            )()
        return _OPS[a.op](value, a.value.value)


def _union(a: list[RSpan], b: list[RSpan]) -> list[RSpan]:
    return list({s.id: s for s in a + b}.values())


def _key(v: Any) -> Any:
    # Group values as the store returns them: 1 and 1.0 are one group only when stored alike.
    return (_kind_of(v), v) if v is not None else None


def evaluated(store: EmbeddedStore, q: ast.Query) -> dict[bytes, dict[Any, set[bytes]]]:
    found = store.search_traceql("default", TraceQLSearch(q, *WINDOW, limit=1000, spss=1000))
    out: dict[bytes, dict[Any, set[bytes]]] = {}
    for r in found:
        groups = {}
        for ss in r.spansets:
            assert ss.matched == len(ss.spans)
            key = None if ss.group is None or ss.group[1] is None else _key(ss.group[1])
            groups[key] = {s.span_id for s in ss.spans}
        out[r.summary.trace_id] = groups
    return out


# -- a table of queries over a fixed fixture ---------------------------------------------------

QUERIES = [
    "{}",
    '{ resource.service.name = "api" }',
    '{ resource.service.name = "api" && duration > 10ms }',
    '{ resource.service.name != "api" }',
    '{ resource.service.name =~ "a.*|w.b" }',
    '{ resource.service.name !~ "a.*" }',
    '{ .service.name = "db" }',
    "{ span.a = 1 }",
    "{ span.a = 1.0 }",
    "{ span.a != 1 }",
    "{ span.a > 0 }",
    "{ span.a >= 1.5 }",
    "{ span.a < 2 }",
    "{ span.a <= 0 }",
    '{ span.a = "x" }',
    '{ span.a != "x" }',
    '{ span.a > "x" }',
    '{ span.a =~ "x|y" }',
    '{ span.a !~ "x" }',
    '{ span.a =~ "GET.*" }',
    "{ span.a = true }",
    "{ span.a != false }",
    "{ span.a = nil }",
    "{ span.a != nil }",
    "{ resource.a = 1 }",
    "{ resource.a != nil }",
    "{ resource.r = nil }",
    '{ resource.r = "y" }',
    "{ .a = 1 }",
    "{ .a = nil }",
    "{ .a != nil }",
    '{ .a = "x" || .b = "y" }',
    "{ .a = 2 && .b = 2 }",
    "{ .a = 0 || .b = 0 && .r = 1 }",
    "{ .a = 0 || (.b = 0 && .r = 1) }",
    '{ name = "query" }',
    '{ name != "query" }',
    '{ name =~ "GET /.*" }',
    '{ name !~ "GET .*" }',
    '{ name > "GET /a" }',
    "{ status = error }",
    "{ status = ok }",
    "{ status = unset }",
    "{ status != error }",
    '{ statusMessage = "boom" }',
    '{ statusMessage =~ "t.*" }',
    "{ kind = server }",
    "{ kind = client }",
    "{ kind = internal }",
    "{ kind = producer }",
    "{ kind = consumer }",
    "{ kind = unspecified }",
    "{ kind != server }",
    "{ duration > 5ms }",
    "{ duration >= 5ms }",
    "{ duration < 5ms }",
    "{ duration <= 1ms }",
    "{ duration = 20ms }",
    "{ duration != 20ms }",
    "{ traceDuration > 40ms }",
    "{ traceDuration <= 30ms }",
    '{ rootName = "query" }',
    '{ rootServiceName = "web" }',
    '{ rootServiceName = "web" && status = error }',
    "{ nestedSetParent = -1 }",
    "{ nestedSetParent != -1 }",
    "{ nestedSetParent < 0 }",
    "{ nestedSetParent > 0 }",
    '{ name = "query" } && { status = error }',
    '{ name = "query" } || { status = error }',
    '{ name = "query" } > { status = error }',
    '{ name = "query" } >> { status = error }',
    '{ name = "query" } ~ { status = error }',
    "{ nestedSetParent = -1 } > {}",
    "{ nestedSetParent = -1 } >> { .a = 1 }",
    "{} ~ {}",
    "{ kind = server } > { kind = client } > {}",
    "{ kind = server } && { kind = client } || { .a = 2 }",
    "({ .a = 1 } || { .b = 1 }) >> { duration > 5ms }",
    "{ .a = 1 } > ({ .b = 1 } && { status = ok })",
    "{} | count() > 3",
    "{} | count() = 1",
    "{ status = error } | count() >= 2",
    "{} | avg(duration) > 30ms",
    "{} | min(duration) >= 5ms",
    "{} | max(duration) < 20ms",
    "{} | sum(duration) > 100ms",
    "{} | avg(span.a) > 1",
    "{} | max(traceDuration) > 40ms",
    "{} | by(resource.service.name)",
    "{} | by(.a) | count() > 1",
    "{} | by(name) | avg(duration) > 10ms",
    "{} | by(kind) | { status != unset }",
    '{} | { name = "query" } | count() > 1',
    "{} | select(.a, span.b, resource.r, name, status, kind, duration)",
    '{ resource.service.name = "api" } | select(rootName, traceDuration)',
    '{ rootServiceName = "api" } > { .a != nil } | by(resource.service.name) | count() > 0',
]


@pytest.fixture(scope="module", params=["hot", "sealed"])
def fixture_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[EmbeddedStore, Reference]]:
    spans = random_traces(random.Random(13), 60)
    store = EmbeddedStore(tmp_path_factory.mktemp("tql") / "data")
    for i in range(0, len(spans), 50):
        write(store, spans[i : i + 50])
    if request.param == "sealed":
        store.seal_now()
    yield store, Reference(spans)
    store.close()


@pytest.mark.parametrize("text", QUERIES)
def test_table_against_reference(fixture_store: tuple[EmbeddedStore, Reference], text: str) -> None:
    store, ref = fixture_store
    q = parse(text)
    assert evaluated(store, q) == ref.run(q)


def test_table_is_not_trivial(fixture_store: tuple[EmbeddedStore, Reference]) -> None:
    """Most queries find something and most leave something out, or the table proves little."""
    _, ref = fixture_store
    sizes = [len(ref.run(parse(t))) for t in QUERIES]
    assert len(QUERIES) >= 80
    assert sum(0 < n < len(ref.traces) for n in sizes) >= 0.7 * len(QUERIES)


# -- random traces and random queries ---------------------------------------------------------

_FIELDS = st.sampled_from(
    [
        ("span.a", "attr"),
        ("resource.a", "attr"),
        (".a", "attr"),
        (".b", "attr"),
        ("name", "string"),
        ("statusMessage", "string"),
        ("status", "status"),
        ("kind", "kind"),
        ("duration", "duration"),
        ("traceDuration", "duration"),
        ("rootServiceName", "string"),
        ("nestedSetParent", "nsp"),
    ]
)


@st.composite
def comparisons(draw: st.DrawFn) -> str:
    name, kind = draw(_FIELDS)
    if kind == "attr":
        lit = draw(st.sampled_from(['"x"', '"GET /a"', "0", "1", "1.5", "2", "true", "nil"]))
        ops = ["=", "!="] if lit in ("true", "nil") else ["=", "!=", ">", "<=", ">=", "<"]
        if lit.startswith('"'):
            ops += ["=~", "!~"]
        return f"{name} {draw(st.sampled_from(ops))} {lit}"
    if kind == "string":
        op = draw(st.sampled_from(["=", "!=", "=~", "!~", ">"]))
        lit = draw(st.sampled_from(['"query"', '"GET /a"', '"GET.*"', '"boom"', '"api"', '""']))
        return f"{name} {op} {lit}"
    if kind in ("status", "kind"):
        words = list(ast.STATUSES if kind == "status" else ast.KINDS)
        return f"{name} {draw(st.sampled_from(['=', '!=']))} {draw(st.sampled_from(words))}"
    if kind == "duration":
        op = draw(st.sampled_from(["=", "!=", ">", "<=", ">=", "<"]))
        return f"{name} {op} {draw(st.sampled_from(['1ms', '5ms', '20ms', '50ms']))}"
    return f"nestedSetParent {draw(st.sampled_from(['=', '!=', '<', '>']))} {draw(st.sampled_from(['-1', '0']))}"


conditions = st.recursive(
    comparisons(),
    lambda inner: st.tuples(inner, st.sampled_from(["&&", "||"]), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    ),
    max_leaves=3,
)
filters = st.one_of(st.just("{}"), conditions.map(lambda c: f"{{ {c} }}"))
spansets = st.recursive(
    filters,
    lambda inner: st.tuples(inner, st.sampled_from(["&&", "||", ">", ">>", "~"]), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    ),
    max_leaves=3,
)
stages = st.lists(
    st.sampled_from(
        [
            "| count() > 1",
            "| count() = 1",
            "| avg(duration) > 10ms",
            "| max(.a) >= 1",
            "| by(resource.service.name)",
            "| by(.a)",
            "| { status != error }",
            "| select(.b, name)",
        ]
    ),
    max_size=2,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32),
    queries=st.lists(st.tuples(spansets, stages), min_size=1, max_size=4),
)
def test_random_queries_match_reference(
    tmp_path: Path, seed: int, queries: list[tuple[str, list[str]]]
) -> None:
    spans = random_traces(random.Random(seed), 8, max_spans=5)
    directory = tmp_path / f"s{seed}"
    store = EmbeddedStore(directory)
    try:
        write(store, spans)
        ref = Reference(spans)
        for expr, pipeline in queries:
            text = " ".join([expr, *pipeline])
            try:
                q = parse(text)
            except BadRequest as exc:  # two by() stages: refused, which the parser tests cover
                assert "more than one by()" in exc.message
                continue
            assert evaluated(store, q) == ref.run(q), text
    finally:
        store.close()


# -- what the reference does not model ---------------------------------------------------------


def _search(store: EmbeddedStore, text: str, **kw: int) -> list[TraceQLResult]:
    return store.search_traceql("default", TraceQLSearch(parse(text), *WINDOW, **kw))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "data")
    yield s
    s.close()


def test_newest_first_and_limited(store: EmbeddedStore) -> None:
    spans = random_traces(random.Random(5), 40)
    write(store, spans)
    starts: dict[bytes, int] = {}
    for s in spans:
        starts[s.trace] = min(starts.get(s.trace, s.start), s.start)
    newest = sorted(starts, key=lambda t: (-starts[t], t))
    found = _search(store, "{}", limit=7)
    assert [r.summary.trace_id for r in found] == newest[:7]
    assert [r.summary.start_ns for r in found] == [starts[t] for t in newest[:7]]


def test_spss_caps_spans_but_not_matched(store: EmbeddedStore) -> None:
    spans = random_traces(random.Random(6), 1, max_spans=1)
    tid, root = spans[0].trace, spans[0]
    for i in range(5):
        spans.append(
            RSpan(tid, bytes([9, i]) * 4, root.id, "child", 1, 0, "", root.start + i, MS, "api")
        )
    write(store, spans)
    (found,) = _search(store, '{ name = "child" }', spss=2)
    (spanset,) = found.spansets
    assert spanset.matched == 5
    assert [s.span_id for s in spanset.spans] == [bytes([9, 0]) * 4, bytes([9, 1]) * 4]
    assert found.summary.span_count == 6
    assert found.summary.root_name == root.name


def test_values_returned_for_conditions_and_select(store: EmbeddedStore) -> None:
    tid = b"\x01" * 16
    write(
        store,
        [
            RSpan(tid, b"\x02" * 8, b"", "GET /a", 2, 2, "boom", T0, 30 * MS, "api", {"a": 1}),
            RSpan(tid, b"\x03" * 8, b"\x02" * 8, "query", 3, 0, "", T0, 5 * MS, "db", {"b": "x"}),
        ],
    )
    (found,) = _search(store, "{ status = error } | select(span.a, .b, kind, rootServiceName)")
    (span,) = found.spansets[0].spans
    assert (span.name, span.start_ns, span.duration_ns) == ("GET /a", T0, 30 * MS)
    assert dict(span.attributes) == {
        ast.Intrinsic("status"): "error",
        ast.Attribute("span", "a"): 1,
        ast.Intrinsic("kind"): "server",
        ast.Intrinsic("rootServiceName"): "api",
    }
    (grouped,) = _search(store, "{} | by(resource.service.name)")
    assert [(ss.group, ss.matched) for ss in grouped.spansets] == [
        ((ast.Attribute("resource", "service.name"), "api"), 1),
        ((ast.Attribute("resource", "service.name"), "db"), 1),
    ]


def test_window_tenant_and_bad_regex(store: EmbeddedStore) -> None:
    spans = random_traces(random.Random(7), 3)
    write(store, spans)
    assert _search(store, "{}") != []
    late = max(s.start for s in spans) + 1
    assert store.search_traceql("default", TraceQLSearch(parse("{}"), late, late + MS)) == []
    assert store.search_traceql("other", TraceQLSearch(parse("{}"), *WINDOW)) == []
    with pytest.raises(BadRequest, match="bad regular expression"):
        _search(store, '{ name =~ "(" }')


def test_values_are_parameters_not_sql(store: EmbeddedStore) -> None:
    tid = b"\x04" * 16
    nasty = "x'); DROP TABLE spans; --"
    write(store, [RSpan(tid, b"\x05" * 8, b"", nasty, 1, 0, "", T0, MS, "api", {"k'\"": nasty})])
    (found,) = _search(store, '{ name = "x\'); DROP TABLE spans; --" && span."k\'\\"" != nil }')
    assert found.spansets[0].spans[0].name == nasty


def test_attribute_index_answers_sealed_files(store: EmbeddedStore) -> None:
    """Span attribute = string is answered by the sealed files' attribute index, with the
    results a scan gives; strings a number or bool could spell are scanned."""
    spans = random_traces(random.Random(13), 60)
    write(store, spans)
    store.seal_now()
    ref = Reference(spans)
    for text, indexed in [
        ('{ span.a = "x" }', True),
        ('{ span.a = "x" && duration > 5ms }', True),
        ('{ span.b = "GET /a" && span.a = "y" }', True),
        ('{ span.a = "1" }', False),
        ('{ span.a = "x" || duration > 5ms }', False),
        ('{ .a = "x" }', False),
    ]:
        q = parse(text)
        search = TraceQLSearch(q, *WINDOW)
        with store._sources_lock.read():
            snap = store._snapshot("traces", "default", *WINDOW)
            assert (store._index_plan(snap, search, q) is not None) == indexed, text
        assert evaluated(store, q) == ref.run(q), text


def test_exact_candidates_after_check_budget(
    fixture_store: tuple[EmbeddedStore, Reference], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queries few traces pass (checked one batch at a time) switch to candidates from the
    exact query; results stay those of the reference."""
    from otterscope.store.embedded import traceql_reader

    monkeypatch.setattr(traceql_reader, "CHECK_BUDGET", 2)
    store, ref = fixture_store
    for text in [
        "{} | count() > 3",
        "{ status = error } | count() >= 2",
        '{ name = "query" } >> { status = error }',
        "{} | by(.a) | count() > 1",
    ]:
        q = parse(text)
        assert evaluated(store, q) == ref.run(q), text
        found = store.search_traceql("default", TraceQLSearch(q, *WINDOW, limit=3, spss=1000))
        assert [r.summary.trace_id for r in found] == sorted(
            ref.run(q), key=lambda t: (-min(s.start for s in ref.traces[t]), t)
        )[:3], text
