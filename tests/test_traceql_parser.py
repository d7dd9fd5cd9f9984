"""The TraceQL parser: every supported construct gives its tree, everything else a 400
that names the construct."""

from __future__ import annotations

import pytest

from otterscope.errors import BadRequest
from otterscope.query.traceql import ast
from otterscope.query.traceql.ast import (
    AggregateFilter,
    Attribute,
    Comparison,
    FilterStage,
    GroupBy,
    Intrinsic,
    Logic,
    Query,
    Select,
    SpansetFilter,
    SpansetOp,
    Static,
)
from otterscope.query.traceql.parser import parse

MS = 1_000_000
SVC = Attribute("resource", "service.name")


def one(c: ast.Condition) -> Query:
    return Query(SpansetFilter(c))


def cmp(field: ast.Field, op: ast.CmpOp, kind: ast.StaticKind, value: object) -> Comparison:
    return Comparison(field, op, Static(kind, value))  # type: ignore[arg-type]


X = SpansetFilter(cmp(Attribute("any", "x"), "=", "int", 1))
Y = SpansetFilter(cmp(Attribute("any", "y"), "=", "int", 2))
Z = SpansetFilter(cmp(Attribute("any", "z"), "=", "int", 3))

PARSED = [
    ("{}", Query(SpansetFilter(None))),
    ("{ }", Query(SpansetFilter(None))),
    ('{ resource.service.name = "x" }', one(cmp(SVC, "=", "string", "x"))),
    (
        '{ span.http.method = "GET" }',
        one(cmp(Attribute("span", "http.method"), "=", "string", "GET")),
    ),
    ('{ .http.method = "GET" }', one(cmp(Attribute("any", "http.method"), "=", "string", "GET"))),
    ('{ span."my key" = "v" }', one(cmp(Attribute("span", "my key"), "=", "string", "v"))),
    ("{ .a = `raw\\d` }", one(cmp(Attribute("any", "a"), "=", "string", "raw\\d"))),
    ('{ .a = "q\\"uote" }', one(cmp(Attribute("any", "a"), "=", "string", 'q"uote'))),
    ("{ .a != 5 }", one(cmp(Attribute("any", "a"), "!=", "int", 5))),
    ("{ .a > -2 }", one(cmp(Attribute("any", "a"), ">", "int", -2))),
    ("{ .a >= 1.5 }", one(cmp(Attribute("any", "a"), ">=", "float", 1.5))),
    ("{ .a < 1e3 }", one(cmp(Attribute("any", "a"), "<", "float", 1000.0))),
    ("{ .a <= 0 }", one(cmp(Attribute("any", "a"), "<=", "int", 0))),
    ('{ .a =~ "x.*" }', one(cmp(Attribute("any", "a"), "=~", "string", "x.*"))),
    ('{ .a !~ "x.*" }', one(cmp(Attribute("any", "a"), "!~", "string", "x.*"))),
    ("{ .a = true }", one(cmp(Attribute("any", "a"), "=", "bool", True))),
    ("{ .a != false }", one(cmp(Attribute("any", "a"), "!=", "bool", False))),
    ("{ .a = nil }", one(cmp(Attribute("any", "a"), "=", "nil", None))),
    ("{ .a != nil }", one(cmp(Attribute("any", "a"), "!=", "nil", None))),
    ('{ name = "GET /" }', one(cmp(Intrinsic("name"), "=", "string", "GET /"))),
    ('{ span:name = "x" }', one(cmp(Intrinsic("name"), "=", "string", "x"))),
    ("{ status = error }", one(cmp(Intrinsic("status"), "=", "status", 2))),
    ("{ status != ok }", one(cmp(Intrinsic("status"), "!=", "status", 1))),
    ("{ status = unset }", one(cmp(Intrinsic("status"), "=", "status", 0))),
    (
        '{ statusMessage =~ "time.*" }',
        one(cmp(Intrinsic("statusMessage"), "=~", "string", "time.*")),
    ),
    ("{ kind = server }", one(cmp(Intrinsic("kind"), "=", "kind", 2))),
    ("{ kind = client }", one(cmp(Intrinsic("kind"), "=", "kind", 3))),
    ("{ kind = producer }", one(cmp(Intrinsic("kind"), "=", "kind", 4))),
    ("{ kind = consumer }", one(cmp(Intrinsic("kind"), "=", "kind", 5))),
    ("{ kind = internal }", one(cmp(Intrinsic("kind"), "=", "kind", 1))),
    ("{ kind != unspecified }", one(cmp(Intrinsic("kind"), "!=", "kind", 0))),
    ("{ duration > 100ms }", one(cmp(Intrinsic("duration"), ">", "duration", 100 * MS))),
    ("{ duration >= 1.5s }", one(cmp(Intrinsic("duration"), ">=", "duration", 1500 * MS))),
    ("{ duration < 1h30m }", one(cmp(Intrinsic("duration"), "<", "duration", 5400 * 10**9))),
    ("{ duration <= 10us }", one(cmp(Intrinsic("duration"), "<=", "duration", 10_000))),
    ("{ duration = 10µs }", one(cmp(Intrinsic("duration"), "=", "duration", 10_000))),
    ("{ duration != 7ns }", one(cmp(Intrinsic("duration"), "!=", "duration", 7))),
    ("{ traceDuration > 2m }", one(cmp(Intrinsic("traceDuration"), ">", "duration", 120 * 10**9))),
    ("{ trace:duration > 2m }", one(cmp(Intrinsic("traceDuration"), ">", "duration", 120 * 10**9))),
    ('{ rootName = "r" }', one(cmp(Intrinsic("rootName"), "=", "string", "r"))),
    ('{ rootServiceName = "s" }', one(cmp(Intrinsic("rootServiceName"), "=", "string", "s"))),
    ('{ trace:rootService = "s" }', one(cmp(Intrinsic("rootServiceName"), "=", "string", "s"))),
    ("{ nestedSetParent = -1 }", one(cmp(Intrinsic("nestedSetParent"), "=", "int", -1))),
    ("{ nestedSetParent < 0 }", one(cmp(Intrinsic("nestedSetParent"), "<", "int", 0))),
    ("{ 100ms < duration }", one(cmp(Intrinsic("duration"), ">", "duration", 100 * MS))),
    (
        '{ resource.service.name = "x" && duration > 100ms }',
        one(
            Logic(
                "&&",
                cmp(SVC, "=", "string", "x"),
                cmp(Intrinsic("duration"), ">", "duration", 100 * MS),
            )
        ),
    ),
    # && and || share one precedence, left to right (as in Tempo's grammar).
    (
        "{ .x = 1 || .y = 2 && .z = 3 }",
        one(
            Logic(
                "&&",
                Logic("||", X.condition, Y.condition),  # type: ignore[arg-type]
                Z.condition,  # type: ignore[arg-type]
            )
        ),
    ),
    (
        "{ .x = 1 || (.y = 2 && .z = 3) }",
        one(Logic("||", X.condition, Logic("&&", Y.condition, Z.condition))),  # type: ignore[arg-type]
    ),
    ("{ .x = 1 } && { .y = 2 }", Query(SpansetOp("&&", X, Y))),
    ("{ .x = 1 } || { .y = 2 }", Query(SpansetOp("||", X, Y))),
    ("{ .x = 1 } > { .y = 2 }", Query(SpansetOp(">", X, Y))),
    ("{ .x = 1 } >> { .y = 2 }", Query(SpansetOp(">>", X, Y))),
    ("{ .x = 1 } ~ { .y = 2 }", Query(SpansetOp("~", X, Y))),
    # Structural operators bind tighter than && and ||.
    ("{ .x = 1 } && { .y = 2 } > { .z = 3 }", Query(SpansetOp("&&", X, SpansetOp(">", Y, Z)))),
    ("({ .x = 1 } && { .y = 2 }) > { .z = 3 }", Query(SpansetOp(">", SpansetOp("&&", X, Y), Z))),
    ("{ .x = 1 } > { .y = 2 } > { .z = 3 }", Query(SpansetOp(">", SpansetOp(">", X, Y), Z))),
    (
        "{} | count() > 2",
        Query(SpansetFilter(None), (AggregateFilter("count", None, ">", Static("int", 2)),)),
    ),
    (
        "{} | avg(duration) > 20ms",
        Query(
            SpansetFilter(None),
            (AggregateFilter("avg", Intrinsic("duration"), ">", Static("duration", 20 * MS)),),
        ),
    ),
    (
        "{} | min(duration) <= 1s | max(traceDuration) >= 2s",
        Query(
            SpansetFilter(None),
            (
                AggregateFilter("min", Intrinsic("duration"), "<=", Static("duration", 10**9)),
                AggregateFilter(
                    "max", Intrinsic("traceDuration"), ">=", Static("duration", 2 * 10**9)
                ),
            ),
        ),
    ),
    (
        "{} | sum(span.bytes) = 10.5",
        Query(
            SpansetFilter(None),
            (AggregateFilter("sum", Attribute("span", "bytes"), "=", Static("float", 10.5)),),
        ),
    ),
    (
        "{} | select(span.a, .b, name, status)",
        Query(
            SpansetFilter(None),
            (
                Select(
                    (
                        Attribute("span", "a"),
                        Attribute("any", "b"),
                        Intrinsic("name"),
                        Intrinsic("status"),
                    )
                ),
            ),
        ),
    ),
    ("{} | by(resource.service.name)", Query(SpansetFilter(None), (GroupBy(SVC),))),
    (
        "{} | by(.a) | count() > 1 | { status = error }",
        Query(
            SpansetFilter(None),
            (
                GroupBy(Attribute("any", "a")),
                AggregateFilter("count", None, ">", Static("int", 1)),
                FilterStage(cmp(Intrinsic("status"), "=", "status", 2)),
            ),
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), PARSED, ids=[t for t, _ in PARSED])
def test_parses(text: str, expected: Query) -> None:
    assert parse(text) == expected


UNSUPPORTED = [
    ("{} | rate()", "rate() (metrics queries are not supported) at column 6"),
    ("{} | count_over_time() by (resource.service.name)", "count_over_time()"),
    ("{} | quantile_over_time(duration, 0.9)", "quantile_over_time()"),
    ("{} | histogram_over_time(duration)", "histogram_over_time()"),
    ("{} | coalesce()", "pipeline function coalesce()"),
    ("{} | topk(5)", "topk()"),
    ("{} &>> {}", "structural operator '&>>' at column 4"),
    ("{} !> {}", "structural operator '!>'"),
    ("{} !>> {}", "structural operator '!>>'"),
    ("{} !~ {}", "structural operator '!~'"),
    ("{} < {}", "structural operator '<'"),
    ("{} << {}", "structural operator '<<'"),
    ("{} &~ {}", "structural operator '&~'"),
    ("{ !(.a = 1) }", "negation with '!'"),
    ("{ .a }", "a field or literal without a comparison"),
    ("{ true }", "a field or literal without a comparison"),
    ("{} | select()", "select() without a field"),
    ("{} | select(1)", "select() takes fields, not literals"),
    ("{} | select(.a) > 2", "select() compared with a value"),
    ("{} | by(.a, .b)", "by() with more than one field"),
    ("{} | by(.a) | by(.b)", "more than one by()"),
    ("{} | count()", "count() without a comparison"),
    ("{} | count(.a) > 1", "count() with an argument"),
    ("{} | count() > 1s", "count() compared with a duration literal"),
    ("{} | avg(name) > 1", "avg(name)"),
    ("{} | avg(duration) > 5", "avg(duration) compared with a int literal"),
    ("{} | avg(.a) > 5ms", "avg() of an attribute compared with a duration literal"),
    ("{} | avg(duration) =~ 5ms", "avg() =~"),
    ("{} | {}", "an empty filter {} in a pipeline"),
    ("({} | count() > 1) && {}", "a pipeline inside parentheses"),
    ("{ event.name = 1 }", "attribute scope 'event.'"),
    ("{ link.x = 1 }", "attribute scope 'link.'"),
    ("{ instrumentation.x = 1 }", "attribute scope 'instrumentation.'"),
    ("{ parent.x = 1 }", "attribute scope 'parent.'"),
    ("{ childCount > 1 }", "intrinsic 'childCount'"),
    ("{ span:id = 1 }", "intrinsic 'span:id'"),
    ("{ event:name = 1 }", "intrinsic 'event:name'"),
    ("{ nestedSetLeft > 1 }", "intrinsic 'nestedSetLeft'"),
    ("{ nestedSetParent = 3 }", "nestedSetParent = 3"),
    ("{ foo = 1 }", "unknown name 'foo'"),
    ("{ .a = 1 + 2 }", "unexpected character '+' at column 10"),
    ("{ .a = .b }", "a comparison of two fields"),
    ("{ 1 = 1 }", "a comparison of two literals"),
    ('{ "x" =~ .a }', "a regular expression on the left"),
    ("{ .a =~ 3 }", "=~ with a int literal"),
    ("{ .a > true }", "> with a bool literal"),
    ("{ .a = error }", "an attribute compared with a status literal"),
    ("{ .a = 5ms }", "an attribute compared with a duration literal"),
    ("{ .a > nil }", "> with a nil literal"),
    ("{ status = server }", "status = kind literal"),
    ("{ status > error }", "status > status literal"),
    ("{ kind = 2 }", "kind = int literal"),
    ("{ duration > 100 }", "duration > int literal"),
    ('{ duration =~ "1" }', "duration =~ string literal"),
    ("{ name = 1 }", "name = int literal"),
    ("{ name = nil }", "name = nil literal"),
    ('{ .a = "unterminated }', "unexpected"),
    ("{ .a = 1", "unexpected end of query"),
    ("", "unexpected end of query"),
    ('{ .a = "\\q" }', "bad string literal"),
    ("{ .a = 1 } {}", "unexpected '{' at column 12"),
    ("x" * 10_001, "longer than"),
]


@pytest.mark.parametrize(("text", "named"), UNSUPPORTED, ids=[t[:40] for t, _ in UNSUPPORTED])
def test_refused_by_name(text: str, named: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse(text)
    assert info.value.status == 400
    assert named in info.value.message


def test_touched_fields_in_order_once() -> None:
    q = parse(
        '{ .a = 1 && name = "x" } > { .a = 2 } | by(.g) | avg(duration) > 1s | select(.b, .a)'
    )
    assert ast.touched(q) == [
        Attribute("any", "a"),
        Intrinsic("name"),
        Attribute("any", "g"),
        Intrinsic("duration"),
        Attribute("any", "b"),
    ]


def test_grammar_ships_as_package_data() -> None:
    from importlib import resources

    text = resources.files("otterscope.query.traceql").joinpath("traceql.lark").read_text()
    assert "spanset_expr" in text


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{}" + " && {}" * 1000, "more than 16 spanset operators"),
        ("{}" + " >> {}" * 17, "more than 16 spanset operators"),
        ("{ " + " || ".join(f".a = {i}" for i in range(200)) + " }", "more than 128 conditions"),
    ],
)
def test_queries_too_big_to_run_are_refused(text: str, named: str) -> None:
    """Each operator and condition becomes its own part of the SQL: hundreds ran the
    store's DuckDB out of memory, a thousand nested ones overflowed the converter."""
    with pytest.raises(BadRequest, match=named):
        parse(text)


def test_the_largest_allowed_query_parses() -> None:
    assert parse("{}" + " >> {}" * 16).stages == ()
    assert parse("{ " + " || ".join(f".a = {i}" for i in range(128)) + " }").stages == ()
