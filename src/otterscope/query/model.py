"""Validated query requests, as the store receives them.

The API layer parses user input into these; stores only ever see well-formed values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TraceQuery:
    start_ns: int
    end_ns: int
    limit: int = 100
    service: str | None = None
    operation: str | None = None
    status: int | None = None  # OTLP status code: 0 unset, 1 ok, 2 error
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    min_trace_duration_ns: int | None = None
    max_trace_duration_ns: int | None = None


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
