"""TraceQL text -> the checked syntax tree of ``ast.py``.

The grammar (``traceql.lark``, parsed by Lark's LALR parser) accepts a little more than
otterscope evaluates, so that the constructs it does not evaluate (other structural
operators, ``!``, metrics functions, ``coalesce()``, other scopes and intrinsics) are refused
by name and position instead of as a bare syntax error. Every refusal is a ``BadRequest``.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import cast

import lark

from otterscope.errors import BadRequest
from otterscope.query.traceql import ast

MAX_QUERY_CHARS = 10_000

_INTRINSICS = {name: name for name in ast.SPAN_INTRINSICS + ast.TRACE_INTRINSICS}
# Tempo's scoped spellings of the same intrinsics.
_INTRINSICS.update(
    {
        "span:name": "name",
        "span:status": "status",
        "span:statusMessage": "statusMessage",
        "span:kind": "kind",
        "span:duration": "duration",
        "trace:duration": "traceDuration",
        "trace:rootName": "rootName",
        "trace:rootService": "rootServiceName",
    }
)
_STRING_INTRINSICS = ("name", "statusMessage", "rootName", "rootServiceName")
_DURATION_INTRINSICS = ("duration", "traceDuration")
_WORDS: dict[str, ast.Static] = {
    "true": ast.Static("bool", True),
    "false": ast.Static("bool", False),
    "nil": ast.Static("nil", None),
    **{k: ast.Static("status", v) for k, v in ast.STATUSES.items()},
    **{k: ast.Static("kind", v) for k, v in ast.KINDS.items()},
}
_AGGREGATES = ("count", "avg", "min", "max", "sum")
_METRICS = (
    "rate",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "avg_over_time",
    "sum_over_time",
    "quantile_over_time",
    "histogram_over_time",
    "compare",
    "topk",
    "bottomk",
)
_ORDERED = ("=", "!=", ">", ">=", "<", "<=")
_FLIPPED = {"=": "=", "!=": "!=", ">": "<", ">=": "<=", "<": ">", "<=": ">="}
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_UNITS["h"] = 3600 * 10**9
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


@functools.cache
def _parser() -> lark.Lark:
    grammar = resources.files(__package__).joinpath("traceql.lark").read_text("utf-8")
    return lark.Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
    )


# Bounds on one query's size beyond its length (see _check_size).
MAX_SPANSET_OPS = 16
MAX_CONDITIONS = 128


def parse(text: str) -> ast.Query:
    """The checked tree of a TraceQL query; ``BadRequest`` naming what is wrong or not
    supported, and where."""
    if len(text) > MAX_QUERY_CHARS:
        raise BadRequest(f"TraceQL query longer than {MAX_QUERY_CHARS} characters")
    try:
        tree = _parser().parse(text)
    except lark.UnexpectedCharacters as exc:
        raise BadRequest(
            f"TraceQL syntax error: unexpected character {text[exc.pos_in_stream or 0]!r} "
            f"at column {exc.column}"
        ) from None
    except lark.UnexpectedToken as exc:
        found = "end of query" if exc.token.type == "$END" else repr(str(exc.token))
        raise BadRequest(
            f"TraceQL syntax error: unexpected {found} at column {exc.column}"
        ) from None
    except lark.UnexpectedEOF:
        raise BadRequest("TraceQL syntax error: unexpected end of query") from None
    _check_size(tree)
    spansets = _spanset(_node(tree.children[0]))
    stages = [_stage(_node(c)) for c in tree.children[1:]]
    if sum(isinstance(s, ast.GroupBy) for s in stages) > 1:
        raise BadRequest("unsupported TraceQL: more than one by() in a query")
    return ast.Query(spansets, tuple(stages))


def _check_size(tree: lark.Tree[lark.Token]) -> None:
    """Refuse a query whose SQL would be too big to run: each spanset operator and each
    condition becomes its own part of the statement (hundreds ran the store's DuckDB out
    of memory; a thousand nested ones overflowed the converter's recursion)."""
    counts = {"spanset operators": 0, "conditions": 0}
    for sub in tree.iter_subtrees():  # not recursive
        if sub.data in ("spanset_logic", "spanset_structural"):
            counts["spanset operators"] += 1
        elif sub.data in ("comparison", "bare"):
            counts["conditions"] += 1
    for what, limit in (("spanset operators", MAX_SPANSET_OPS), ("conditions", MAX_CONDITIONS)):
        if counts[what] > limit:
            raise BadRequest(f"TraceQL query with more than {limit} {what}: narrow it")


def _unsupported(what: str, where: lark.Tree[lark.Token] | lark.Token) -> BadRequest:
    column = where.column if isinstance(where, lark.Token) else where.meta.column
    return BadRequest(f"unsupported TraceQL: {what} at column {column}")


def _node(x: object) -> lark.Tree[lark.Token]:
    return cast("lark.Tree[lark.Token]", x)


def _token(x: object) -> lark.Token:
    return cast(lark.Token, x)


def _spanset(t: lark.Tree[lark.Token]) -> ast.SpansetExpr:
    if t.data == "filter":
        body = t.children[1]
        return ast.SpansetFilter(None if body is None else _condition(_node(body)))
    if t.data == "wrapped_pipeline":
        raise _unsupported("a pipeline inside parentheses", t)
    left, op, right = t.children
    token = _token(op)
    if t.data == "spanset_structural" and str(token) not in (">", ">>", "~"):
        raise _unsupported(f"structural operator {str(token)!r}", token)
    name = cast(ast.SpansetOpName, str(token))
    return ast.SpansetOp(name, _spanset(_node(left)), _spanset(_node(right)))


def _condition(t: lark.Tree[lark.Token]) -> ast.Condition:
    if t.data == "field_logic":
        left, word, right = t.children
        logic: ast.LogicOp = "&&" if str(word) == "&&" else "||"
        return ast.Logic(logic, _condition(_node(left)), _condition(_node(right)))
    if t.data == "field_not":
        raise _unsupported("negation with '!'", _token(t.children[0]))
    if t.data == "bare":
        raise _unsupported("a field or literal without a comparison", t)
    left, op_tree, right = (_node(c) for c in t.children)
    op = cast(ast.CmpOp, str(op_tree.children[0]))
    lhs, rhs = _operand(left), _operand(right)
    if isinstance(lhs, ast.Static):
        if isinstance(rhs, ast.Static):
            raise _unsupported("a comparison of two literals", t)
        if op not in _FLIPPED:
            raise _unsupported("a regular expression on the left of =~ or !~", t)
        lhs, rhs, op = rhs, lhs, cast(ast.CmpOp, _FLIPPED[op])
    if not isinstance(rhs, ast.Static):
        raise _unsupported("a comparison of two fields", t)
    _check(lhs, op, rhs, t)
    return ast.Comparison(lhs, op, rhs)


def _check(field: ast.Field, op: str, value: ast.Static, t: lark.Tree[lark.Token]) -> None:
    """Refuse comparisons whose types can never match (Tempo finds them false; a query
    that holds one is a mistake worth naming)."""
    kind = value.kind
    if op in ("=~", "!~") and kind != "string":
        raise _unsupported(f"{op} with a {kind} literal (it takes a string literal)", t)
    if isinstance(field, ast.Attribute):
        allowed = {
            "string": None,
            "int": _ORDERED,
            "float": _ORDERED,
            "bool": ("=", "!="),
            "nil": ("=", "!="),
        }
        if kind not in allowed:
            raise _unsupported(f"an attribute compared with a {kind} literal", t)
        ops = allowed[kind]
        if ops is not None and op not in ops:
            raise _unsupported(f"{op} with a {kind} literal", t)
        return
    name = field.name
    if name in _STRING_INTRINSICS:
        ok = kind == "string"
    elif name in ("status", "kind"):
        ok = kind == name and op in ("=", "!=")
    elif name in _DURATION_INTRINSICS:
        ok = kind == "duration" and op in _ORDERED
    else:  # nestedSetParent: otterscope keeps no nested set numbers, only "root or not"
        ok = kind == "int" and op in _ORDERED and isinstance(value.value, int) and value.value < 1
        if kind == "int" and not ok:
            raise _unsupported(
                f"nestedSetParent {op} {value.value} (only comparisons true or false "
                "for every non-root span, such as = -1 or > 0, are supported)",
                t,
            )
    if not ok:
        raise _unsupported(f"{name} {op} {kind} literal", t)


def _operand(t: lark.Tree[lark.Token]) -> ast.Field | ast.Static:
    token = _token(t.children[0])
    text = str(token)
    if t.data == "attribute":
        return _attribute(token)
    if t.data == "name":
        if text in _INTRINSICS:
            return ast.Intrinsic(_INTRINSICS[text])
        if text in _WORDS:
            return _WORDS[text]
        if ":" in text or text in ("childCount", "parent", "nestedSetLeft", "nestedSetRight"):
            raise _unsupported(f"intrinsic {text!r}", token)
        raise BadRequest(
            f"TraceQL: unknown name {text!r} at column {token.column} (an attribute needs "
            f"a scope: span.{text}, resource.{text} or .{text})"
        )
    if t.data == "string":
        if text.startswith("`"):
            return ast.Static("string", text[1:-1])
        try:
            return ast.Static("string", str(json.loads(text)))
        except ValueError:
            raise BadRequest(
                f"TraceQL: bad string literal {text} at column {token.column}"
            ) from None
    if t.data == "duration":
        sign = -1 if text.startswith("-") else 1
        total = sum(float(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(text.lstrip("-")))
        return ast.Static("duration", sign * round(total))
    if re.fullmatch(r"-?\d+", text):
        return ast.Static("int", int(text))
    return ast.Static("float", float(text))


def _attribute(token: lark.Token) -> ast.Attribute:
    text = str(token)
    scope, _, name = text.partition(".")
    if name.startswith('"'):
        try:
            name = str(json.loads(name))
        except ValueError:
            raise BadRequest(
                f"TraceQL: bad quoted attribute name {text} at column {token.column}"
            ) from None
    if scope in ("", "span", "resource"):
        return ast.Attribute(cast(ast.Scope, scope or "any"), name)
    raise _unsupported(f"attribute scope '{scope}.'", token)


def _fields(call: lark.Tree[lark.Token], what: str) -> list[ast.Field]:
    args = call.children[1:]
    out = []
    for a in args:
        if a is None:
            continue
        for operand in _node(a).children if _node(a).data == "args" else [a]:
            value = _operand(_node(operand))
            if isinstance(value, ast.Static):
                raise _unsupported(f"{what} takes fields, not literals", call)
            out.append(value)
    return out


def _stage(t: lark.Tree[lark.Token]) -> ast.Stage:
    if t.data == "stage":
        condition = _node(t.children[1]).children[1]
        if condition is None:
            raise _unsupported("an empty filter {} in a pipeline", t)
        return ast.FilterStage(_condition(_node(condition)))
    calls = [_node(c) for c in t.children[1:] if isinstance(c, lark.Tree) and c.data == "call"]
    op_tree, literal = t.children[-2], t.children[-1]
    first = calls[0]
    name = str(first.children[0])
    if name in _METRICS:
        raise _unsupported(f"{name}() (metrics queries are not supported)", first)
    if name not in (*_AGGREGATES, "select", "by"):
        raise _unsupported(f"pipeline function {name}()", first)
    if len(calls) > 1:
        raise _unsupported(f"{name}() followed by {calls[1].children[0]}()", calls[1])
    fields = _fields(first, f"{name}()")
    if name in ("select", "by"):
        if op_tree is not None:
            raise _unsupported(f"{name}() compared with a value", first)
        if not fields:
            raise _unsupported(f"{name}() without a field", first)
        if name == "select":
            return ast.Select(tuple(fields))
        if len(fields) > 1:
            raise _unsupported("by() with more than one field", first)
        return ast.GroupBy(fields[0])
    if op_tree is None:
        raise _unsupported(f"{name}() without a comparison (as in {name}() > 2)", first)
    op = str(_node(op_tree).children[0])
    value = _operand(_node(literal))
    if not isinstance(value, ast.Static):
        raise _unsupported(f"{name}() compared with a field", first)
    if op not in _ORDERED:
        raise _unsupported(f"{name}() {op}", first)
    return _aggregate(name, fields, cast(ast.CmpOp, op), value, first)


def _aggregate(
    name: str, fields: list[ast.Field], op: ast.CmpOp, value: ast.Static, t: lark.Tree[lark.Token]
) -> ast.AggregateFilter:
    agg = cast(ast.AggregateName, name)
    if name == "count":
        if fields:
            raise _unsupported("count() with an argument", t)
        if value.kind not in ("int", "float"):
            raise _unsupported(f"count() compared with a {value.kind} literal", t)
        return ast.AggregateFilter(agg, None, op, value)
    if len(fields) != 1:
        raise _unsupported(f"{name}() needs exactly one field", t)
    field = fields[0]
    if isinstance(field, ast.Intrinsic):
        if field.name not in _DURATION_INTRINSICS:
            raise _unsupported(f"{name}({field.name})", t)
        if value.kind != "duration":
            raise _unsupported(f"{name}({field.name}) compared with a {value.kind} literal", t)
    elif value.kind not in ("int", "float"):
        raise _unsupported(f"{name}() of an attribute compared with a {value.kind} literal", t)
    return ast.AggregateFilter(agg, field, op, value)
