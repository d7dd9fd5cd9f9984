"""Validated query requests, as the store receives them.

The API layer parses user input into these; stores only ever see well-formed values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from otterscope.query.traceql import ast as tql

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TraceQuery:
    start_ns: int
    end_ns: int
    limit: int = 100
    service: str | None = None
    operation: str | None = None
    # Jaeger names one operation exactly; the native API takes a case-insensitive substring.
    operation_exact: bool = False
    status: int | None = None  # OTLP status code: 0 unset, 1 ok, 2 error
    kind: int | None = None  # OTLP span kind of the matching span (Jaeger's span.kind tag)
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    min_trace_duration_ns: int | None = None
    max_trace_duration_ns: int | None = None
    # Paging: only rows with ingest_seq <= pin_seq; only traces after ``after`` in the order
    # of the results (start time descending, then trace id): (start_ns, trace_id).
    pin_seq: int | None = None
    after: tuple[int, bytes] | None = None


@dataclass(frozen=True, slots=True)
class LogQuery:
    start_ns: int
    end_ns: int
    limit: int = 100
    service: str | None = None
    min_severity: int | None = None
    text: str | None = None
    trace_id: bytes | None = None
    span_id: bytes | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    pin_seq: int | None = None
    # (timestamp_unix_nano, ingest_seq) of the last record of the previous page.
    after: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class FetchQuery:
    """Everything of one signal in a time window, oldest first, for export and replay.

    The order is (time, trace id, span id) for spans, so duplicates of a span sit together
    and are answered once, and (time, ingest_seq) for log records and metric points.
    """

    signal: str
    start_ns: int
    end_ns: int
    limit: int = 1000
    pin_seq: int | None = None
    after: tuple[int, bytes, bytes] | tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Items of one page; ``pin`` is the ingest point they were read at; ``more`` says
    whether items follow."""

    items: list[T]
    pin: int
    more: bool


@dataclass(frozen=True, slots=True)
class TraceSummary:
    trace_id: bytes
    root_service: str
    root_name: str
    root_span_missing: bool
    start_ns: int
    end_ns: int
    span_count: int
    error_count: int
    services: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TraceQLSearch:
    """A parsed TraceQL query and its window: traces with a match among the spans that
    start in [start_ns, end_ns], at most ``limit``, newest trace first; at most ``spss``
    spans per spanset."""

    query: tql.Query
    start_ns: int
    end_ns: int
    limit: int = 20
    spss: int = 3
    pin_seq: int | None = None


@dataclass(frozen=True, slots=True)
class MatchedSpan:
    """One span of a spanset with the values of the fields the query names (conditions,
    ``by`` and ``select``): attributes as API values, ``status`` and ``kind`` as their
    TraceQL words, durations in nanoseconds. Fields the span has no value of are left out."""

    span_id: bytes
    name: str
    start_ns: int
    duration_ns: int
    attributes: tuple[tuple[tql.Field, Any], ...]


@dataclass(frozen=True, slots=True)
class Spanset:
    matched: int  # spans in the spanset; ``spans`` holds at most spss of them
    spans: tuple[MatchedSpan, ...]
    group: tuple[tql.Field, Any] | None = None  # by(): the field and this spanset's value


@dataclass(frozen=True, slots=True)
class TraceQLResult:
    summary: TraceSummary
    spansets: tuple[Spanset, ...]
