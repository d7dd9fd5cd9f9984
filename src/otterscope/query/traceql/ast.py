"""The typed syntax tree of a TraceQL query, as the parser hands it to the store.

Every node is a frozen dataclass. A tree that reaches the store is already checked: every
comparison holds a field on its left and a literal of a type that field can be compared
with on its right (``parser.py`` refuses the rest), so lowering never has to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal as Lit

# The status and kind enums by their OTLP numbers, as stored.
STATUSES = {"unset": 0, "ok": 1, "error": 2}
KINDS = {"unspecified": 0, "internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}

# Intrinsics of one span, and those of its whole trace.
SPAN_INTRINSICS = ("name", "status", "statusMessage", "kind", "duration", "nestedSetParent")
TRACE_INTRINSICS = ("traceDuration", "rootName", "rootServiceName")

Scope = Lit["span", "resource", "any"]
CmpOp = Lit["=", "!=", "=~", "!~", ">", ">=", "<", "<="]
LogicOp = Lit["&&", "||"]
SpansetOpName = Lit["&&", "||", ">", ">>", "~"]
AggregateName = Lit["count", "avg", "min", "max", "sum"]
StaticKind = Lit["string", "int", "float", "duration", "bool", "status", "kind", "nil"]


@dataclass(frozen=True, slots=True)
class Attribute:
    """``span.x``, ``resource.x`` or ``.x`` (``any``: the span's, else the resource's)."""

    scope: Scope
    name: str


@dataclass(frozen=True, slots=True)
class Intrinsic:
    name: str  # one of SPAN_INTRINSICS or TRACE_INTRINSICS

    @property
    def trace_level(self) -> bool:
        return self.name in TRACE_INTRINSICS


Field = Attribute | Intrinsic


@dataclass(frozen=True, slots=True)
class Static:
    """A literal: durations in nanoseconds, statuses and kinds by their OTLP numbers."""

    kind: StaticKind
    value: str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Comparison:
    field: Field
    op: CmpOp
    value: Static


@dataclass(frozen=True, slots=True)
class Logic:
    op: LogicOp
    left: Condition
    right: Condition


Condition = Comparison | Logic


@dataclass(frozen=True, slots=True)
class SpansetFilter:
    """``{ condition }``; ``{}`` (condition None) matches every span."""

    condition: Condition | None


@dataclass(frozen=True, slots=True)
class SpansetOp:
    """``&&``: both sides have spans in the trace (the result holds both sides' spans);
    ``||``: either; ``>``, ``>>``, ``~``: the right side's spans whose parent, an
    ancestor, or a sibling is among the left side's."""

    op: SpansetOpName
    left: SpansetExpr
    right: SpansetExpr


SpansetExpr = SpansetFilter | SpansetOp


@dataclass(frozen=True, slots=True)
class AggregateFilter:
    """``| count() > 2``, ``| avg(duration) > 1s``: keeps the spansets meeting it."""

    name: AggregateName
    field: Field | None  # None for count()
    op: CmpOp
    value: Static


@dataclass(frozen=True, slots=True)
class GroupBy:
    """``| by(field)``: splits each spanset by the field's value."""

    field: Field


@dataclass(frozen=True, slots=True)
class Select:
    """``| select(a, b)``: the fields returned with every span."""

    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class FilterStage:
    """``| { condition }``: keeps the spans of each spanset meeting it."""

    condition: Condition


Stage = AggregateFilter | GroupBy | Select | FilterStage


@dataclass(frozen=True, slots=True)
class Query:
    spansets: SpansetExpr
    stages: tuple[Stage, ...] = ()

    @property
    def selected(self) -> tuple[Field, ...]:
        return tuple(f for s in self.stages if isinstance(s, Select) for f in s.fields)

    @property
    def group(self) -> Field | None:
        for s in self.stages:
            if isinstance(s, GroupBy):
                return s.field
        return None


def conditions(e: SpansetExpr) -> list[Condition]:
    """The filters' conditions of a spanset expression, left to right."""
    if isinstance(e, SpansetFilter):
        return [] if e.condition is None else [e.condition]
    return conditions(e.left) + conditions(e.right)


def fields_of(c: Condition) -> list[Field]:
    if isinstance(c, Comparison):
        return [c.field]
    return fields_of(c.left) + fields_of(c.right)


def touched(q: Query) -> list[Field]:
    """Every field the query's conditions, groups and selections name, once, in order:
    what a result span carries (as Tempo returns them)."""
    out: list[Field] = []
    conds = conditions(q.spansets) + [s.condition for s in q.stages if isinstance(s, FilterStage)]
    for c in conds:
        out += fields_of(c)
    for s in q.stages:
        if isinstance(s, AggregateFilter | GroupBy) and s.field is not None:
            out.append(s.field)
        elif isinstance(s, Select):
            out += s.fields
    return list(dict.fromkeys(out))
