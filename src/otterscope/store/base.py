"""The storage interface.

A store hands out no connection: callers write batches and ask questions through these
methods only. Exactly one thread (the ingest writer) calls ``write``; query methods may be
called from any thread at any time and never see a half-written batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from otterscope.otlp.rows import Batch
from otterscope.query.model import LogQuery, TraceQuery, TraceSummary

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoreStats:
    disk_bytes: int
    hot_rows: dict[str, int]
    sealed_files: int
    last_seq: int


class Store(Protocol):
    def write(self, batches: Sequence[Batch]) -> int:
        """Commit the batches in one transaction; return the ingest sequence number."""
        ...

    def get_trace(self, tenant: str, trace_id: bytes) -> list[Row]: ...

    def search_traces(self, tenant: str, query: TraceQuery) -> list[TraceSummary]: ...

    def search_logs(self, tenant: str, query: LogQuery) -> list[Row]: ...

    def stats(self) -> StoreStats: ...

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
