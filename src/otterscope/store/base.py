"""The storage interface.

A store hands out no connection: callers write batches and ask questions through these
methods only. Exactly one thread (the ingest writer) calls ``write``; query methods may be
called from any thread at any time and never see a half-written batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from otterscope.otlp.rows import Batch
from otterscope.query.model import (
    FetchQuery,
    LogQuery,
    Page,
    TraceQLResult,
    TraceQLSearch,
    TraceQuery,
    TraceSummary,
)

Row = dict[str, Any]
# An idempotency key as committed: (tenant, signal, the key the sender chose).
KeyIdent = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class StoreStats:
    disk_bytes: int
    hot_rows: dict[str, int]
    sealed_files: int
    last_seq: int


# The span duration buckets of the RED metrics: the OpenTelemetry Collector spanmetrics
# connector's defaults, in milliseconds.
SPAN_DURATION_BOUNDS_MS = (
    2,
    4,
    6,
    8,
    10,
    50,
    100,
    200,
    400,
    800,
    1000,
    1400,
    2000,
    5000,
    10000,
    15000,
)


@dataclass(frozen=True, slots=True)
class MetricAggregates:
    upto: int  # the last ingest sequence number folded in
    points: list[Row]  # per stored metric series (see sql.metric_aggregates)
    delta_buckets: list[Row]  # per delta histogram series, bucket counts added up
    spans: list[Row]  # per (tenant, service, span name, kind, status): calls, durations
    exp_points: list[Row] = field(default_factory=list)  # exponential histogram points


@dataclass(frozen=True, slots=True)
class SqlSandboxSpec:
    """What a SQL sandbox needs to show one tenant's data and nothing else."""

    views: list[str]  # CREATE VIEW statements: spans, logs, metric_points
    tables: dict[str, str]  # Arrow IPC stream files to register under these names first
    files: list[str]  # the Parquet files the views read (the only paths it may open)


class Store(Protocol):
    def write(self, batches: Sequence[Batch], keys: Sequence[KeyIdent] = ()) -> int:
        """Commit the batches in one transaction; return the ingest sequence number.
        ``keys`` are committed with the rows of their signal, in the same transaction."""
        ...

    def key_committed(self, tenant: str, signal: str, key: str) -> bool:
        """Whether rows were committed under this idempotency key within its lifetime."""
        ...

    def last_seq(self) -> int:
        """The last ingest sequence number queries can see (what a new cursor pins)."""
        ...

    def get_trace(self, tenant: str, trace_id: bytes) -> list[Row]: ...

    def get_traces(self, tenant: str, trace_ids: Sequence[bytes]) -> list[Row]: ...

    def search_traces(self, tenant: str, query: TraceQuery) -> Page[TraceSummary]: ...

    def search_traceql(self, tenant: str, search: TraceQLSearch) -> list[TraceQLResult]:
        """Traces with spans matching a TraceQL query among those starting in the window,
        newest trace start first, each with its spansets (see ``TraceQLSearch``)."""
        ...

    def recent_traces(
        self, tenant: str, limit: int, before_ns: int, window_ns: int
    ) -> list[Row]: ...

    def recent_spans(self, tenant: str, limit: int) -> list[Row]: ...

    def operations(
        self, tenant: str, service: str, start_ns: int, end_ns: int
    ) -> list[tuple[str, int, int]]: ...

    def search_logs(self, tenant: str, query: LogQuery) -> Page[Row]: ...

    def log_volume(self, tenant: str, query: LogQuery, step_ns: int) -> list[Row]:
        """How many records ``search_logs`` would find (paging aside) per step and severity
        class: rows ``step`` (time // ``step_ns``), ``severity_class`` (0 for a severity
        number outside 1-24, else 1 TRACE .. 6 FATAL by fours) and ``records``."""
        ...

    def fetch(self, tenant: str, query: FetchQuery) -> Page[Row]: ...

    def attribute_keys(
        self,
        tenant: str,
        signal: str,
        prefix: str,
        start_ns: int,
        end_ns: int,
        limit: int,
        scope: str | None = None,
    ) -> list[str]:
        """Attribute keys in use, most used first: of the items (``scope`` "item"), of
        their resources ("resource") or of both (None)."""
        ...

    def attribute_values(
        self,
        tenant: str,
        signal: str,
        key: str,
        prefix: str,
        start_ns: int,
        end_ns: int,
        limit: int,
        scope: str | None = None,
    ) -> list[Any]:
        """Distinct values of one key (typed API values), most used first; ``scope`` as
        for ``attribute_keys``."""
        ...

    def metric_aggregates(self, after_seq: int, excluded: Sequence[str] = ()) -> MetricAggregates:
        """What was committed after ``after_seq``, folded per series (metric points, and
        the spans' request, error and duration figures). A delta point's resource is
        grouped without the ``excluded`` attributes."""
        ...

    def metric_steps(
        self,
        tenant: str,
        names: Sequence[str],
        window: tuple[int, int, int],
        step_ns: int,
        limit: int,
        origin_ns: int = 0,
        needles: Sequence[str] = (),
    ) -> list[Row]:
        """What each series of the ``names`` metrics added per step (steps counted from
        ``origin_ns``) in the window (read start, start, end): see
        ``embedded.metric_sql.metric_steps`` for the rows. Only points whose attributes or
        resource contain every needle. At most ``limit`` rows."""
        ...

    def span_red_steps(
        self, tenant: str, window: tuple[int, int], step_ns: int, limit: int, origin_ns: int = 0
    ) -> list[Row]:
        """The spans' calls and duration buckets per step, service, span name, kind and
        status. At most ``limit`` rows."""
        ...

    def service_activity(self, tenant: str, start_ns: int, end_ns: int) -> dict[str, list[Row]]:
        """Per signal (traces, logs, metrics), per service in the window: ``items``,
        ``first_ns``, ``last_ns``, the latest ``resource``; spans also ``errors`` and
        ``p99_ns``."""
        ...

    def dependencies(self, tenant: str, start_ns: int, end_ns: int) -> list[Row]:
        """Calls whose calling span starts in the window, per ``source``, ``target`` and
        ``target_type`` (service, database, messaging, external): ``calls``, ``errors``,
        ``p99_ns``."""
        ...

    def entry_span_figures(
        self, tenant: str, service: str | None, start_ns: int, end_ns: int
    ) -> Row:
        """``requests``, ``errors`` and ``p99_ns`` of the entry spans (SERVER, CONSUMER or
        root) of one service (None: all) starting in the window."""
        ...

    def entry_span_figures_by_service(
        self, tenant: str, services: Sequence[str] | None, start_ns: int, end_ns: int
    ) -> list[Row]:
        """``entry_span_figures`` of several services from one read: a row per service that
        has entry spans in the window (``service``; only the ``services`` named, or every
        one when None) and, when None, the row of all services together (``whole`` true).
        A service without entry spans has no row."""
        ...

    def export_for_sql(self, tenant: str, directory: Path) -> SqlSandboxSpec:
        """Put what a SQL sandbox needs to read the tenant's data in ``directory`` (which
        the caller removes afterwards); the export is one consistent snapshot."""
        ...

    def delete(self, tenant: str, trace_id: bytes, span_id: bytes | None = None) -> int:
        """Hide a trace (or one span) from every later query; return the spans deleted."""
        ...

    def stats(self) -> StoreStats: ...

    @property
    def disk_full(self) -> str | None:
        """Why writes are refused while the data dir's disk is full; None while it is not."""
        ...

    def maintain(self, now_ns: int, retention: bool = True) -> None:
        """Seal and enforce retention; called periodically from one background thread."""
        ...

    def wait_for_work(self, timeout: float) -> None:
        """Block until there is maintenance to do, or ``timeout`` seconds."""
        ...

    def wake(self) -> None:
        """Make ``wait_for_work`` return now (shutdown)."""
        ...

    def close(self) -> None: ...
