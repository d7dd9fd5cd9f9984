"""The embedded store: hot DuckDB segments for writes, sealed Parquet files for the rest.

Who does what (see ARCHITECTURE.md):
- the ingest writer thread calls ``write``: the only writer of the active hot segment;
- the maintenance thread calls ``maintain``: it rotates nothing, it seals segments the writer
  has retired into Parquet and deletes files past retention;
- any thread may query; a query holds the read side of ``_sources_lock`` so the list of
  segments and files it reads cannot change under it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from otterscope.errors import StoreError
from otterscope.otlp.rows import Batch
from otterscope.otlp.schema import SCHEMAS
from otterscope.query.model import LogQuery, TraceQuery, TraceSummary
from otterscope.store.base import Row, StoreStats
from otterscope.store.embedded import normalize, sql
from otterscope.store.embedded.layout import HOUR_NS, Layout, SealedFile, fsync_path, hour_key
from otterscope.store.embedded.layout import write_durably as _write_durably
from otterscope.store.embedded.rwlock import RWLock

SIGNALS = tuple(SCHEMAS)


@dataclass(frozen=True, slots=True)
class EmbeddedOptions:
    memory_limit: str = "512MB"
    threads: int = 2
    seal_interval_s: float = 3600.0
    seal_rows: int = 500_000
    retention_s: tuple[tuple[str, float], ...] = (
        ("traces", 7 * 86400.0),
        ("logs", 7 * 86400.0),
        ("metrics", 7 * 86400.0),
    )
    max_bytes: int = 0


def _alias(number: int) -> str:
    return f"seg_{number:06d}"


class EmbeddedStore:
    def __init__(self, data_dir: Path, options: EmbeddedOptions | None = None) -> None:
        self.layout = Layout(data_dir)
        self.options = options or EmbeddedOptions()
        self._sources_lock = RWLock()
        self._write_lock = threading.Lock()
        self._segments: list[int] = []  # attached, oldest first; the last one is active
        self._retired: list[int] = []  # attached, no longer written, waiting to be sealed
        self._files: list[SealedFile] = []
        self._active_rows = 0
        self._active_since = time.monotonic()
        # Content ids of the resources and scopes already in the active segment.
        self._known_resources: set[int] = set()
        self._known_scopes: set[int] = set()
        self._seq = 0
        self._closed = False
        self.layout.open()
        self._con = duckdb.connect(
            ":memory:",
            config={
                "memory_limit": self.options.memory_limit,
                "threads": self.options.threads,
                "enable_external_access": True,
                # Hot segments are sealed into Parquet and deleted, usually before DuckDB's
                # own checkpoint would pay off: writing every row a second time (compressed,
                # into the segment file) only costs ingest throughput. The WAL alone is
                # what makes a commit durable; storage.seal_rows bounds how much of it there is.
                "checkpoint_threshold": "16GB",
                "checkpoint_on_detach": "DISABLED",
            },
        )
        self._con.execute("SET parquet_metadata_cache = true")
        for signal in SIGNALS:
            self._con.execute(sql.create_empty_table(signal))
        self._recover()

    # -- start-up -----------------------------------------------------------------------

    def _recover(self) -> None:
        for number in self.layout.segments():
            if self.layout.sealed_marker(number).exists():
                # Sealed before a crash, not yet deleted: the Parquet files are complete.
                self.layout.remove_segment_files(number)
                continue
            # Not sealed: any Parquet file of it is partial and will be written again.
            self.layout.remove_partial_parquet(number)
            self._attach(number)
            self._retired.append(number)
        self._files = self.layout.sealed_files()
        last = max([*self._retired, *(f.segment for f in self._files), 0])
        self._attach(last + 1)
        self._active_since = time.monotonic()
        self._seq = self._max_seq()

    def _attach(self, number: int) -> None:
        alias = _alias(number)
        path = self.layout.segment_path(number)
        try:
            self._con.execute(sql.attach(str(path), alias))
            for statement in sql.create_hot_tables(alias):
                self._con.execute(statement)
        except duckdb.Error as exc:
            raise StoreError(f"cannot open hot segment {path}: {exc}") from exc
        self._segments.append(number)

    def _max_seq(self) -> int:
        best = 0
        with self._con.cursor() as cur:
            for signal in SIGNALS:
                value = cur.execute(sql.max_seq(signal, self._source(signal, None))).fetchone()
                if value and value[0] is not None:
                    best = max(best, int(value[0]))
        return best

    # -- writing (the ingest writer thread only) -------------------------------------------

    def write(self, batches: Sequence[Batch]) -> int:
        with self._write_lock:
            if self._closed:
                raise StoreError("store is closed")
            self._seq += 1
            seq = self._seq
            alias = _alias(self._segments[-1])
            con = self._con
            rows = 0
            known = (set(self._known_resources), set(self._known_scopes))
            try:
                con.execute("BEGIN TRANSACTION")
                # One INSERT per signal: concatenating first keeps the per-request cost
                # of a group commit to a pointer copy.
                for signal in SIGNALS:
                    tables = [b.table for b in batches if b.signal == signal and b.table.num_rows]
                    if not tables:
                        continue
                    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
                    table = table.set_column(1, "ingest_seq", _const_seq(seq, table.num_rows))
                    parts = normalize.split(table, self._known_resources, self._known_scopes)
                    if parts.resources.num_rows:
                        _insert(
                            con,
                            sql.insert_resources(alias, "batch_resources"),
                            "batch_resources",
                            parts.resources,
                        )
                    if parts.scopes.num_rows:
                        _insert(
                            con,
                            sql.insert_scopes(alias, "batch_scopes"),
                            "batch_scopes",
                            parts.scopes,
                        )
                    _insert(
                        con, sql.insert_rows(alias, signal, "batch_rows"), "batch_rows", parts.rows
                    )
                    rows += table.num_rows
                con.execute("COMMIT")
            except duckdb.Error as exc:
                self._seq -= 1
                self._known_resources, self._known_scopes = known
                # The transaction may already be gone; the original error is what matters.
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise StoreError(f"commit failed: {exc}") from exc
            self._active_rows += rows
            if (
                self._active_rows >= self.options.seal_rows
                or time.monotonic() - self._active_since >= self.options.seal_interval_s
            ):
                self._rotate()
            return seq

    def _rotate(self) -> None:
        number = self._segments[-1] + 1
        with self._sources_lock.write():
            self._retired.append(self._segments[-1])
            self._attach(number)
        self._known_resources = set()
        self._known_scopes = set()
        self._active_rows = 0
        self._active_since = time.monotonic()

    # -- maintenance (one background thread) ---------------------------------------------

    def maintain(self, now_ns: int, retention: bool = True) -> None:
        with self._write_lock:
            # A retired segment may also be time-expired; a young active one is rotated here
            # when no write has come to do it.
            if (
                self._active_rows
                and time.monotonic() - self._active_since >= self.options.seal_interval_s
            ):
                self._rotate()
            retired = list(self._retired)
        for number in retired:
            self._seal(number)
        if retention:
            self._enforce_retention(now_ns)

    def seal_now(self) -> None:
        """Retire the active segment and seal everything (tests, shutdown tooling)."""
        with self._write_lock:
            if self._active_rows:
                self._rotate()
            retired = list(self._retired)
        for number in retired:
            self._seal(number)

    def _seal(self, number: int) -> None:
        alias = _alias(number)
        written: list[SealedFile] = []
        with self._con.cursor() as cur:
            self._write_files(cur, alias, number, written)
        _write_durably(self.layout.sealed_marker(number), b"sealed\n")
        # The writer uses ``self._con`` itself (not a cursor) and DuckDB refuses a second
        # call on a busy connection: DETACH waits for the write lock. It goes first, so a
        # failure leaves the segment retired, to be sealed again.
        with self._write_lock, self._sources_lock.write():
            self._con.execute(sql.detach(alias))
            self._files.extend(written)
            self._retired.remove(number)
            self._segments.remove(number)
        self.layout.remove_segment_files(number)

    def _write_files(
        self, cur: duckdb.DuckDBPyConnection, alias: str, number: int, written: list[SealedFile]
    ) -> None:
        """One sorted Parquet file per (signal, tenant, hour) of a segment, each durable."""
        for signal in SIGNALS:
            groups = cur.execute(sql.seal_groups(alias, signal)).fetchall()
            for tenant, hour in groups:
                key = hour_key(int(hour) * HOUR_NS)
                path = self.layout.parquet_path(signal, tenant, key, number)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.name + ".tmp")
                cur.execute(sql.seal_copy(alias, signal, str(tmp)), [tenant, int(hour)])
                fsync_path(tmp)
                tmp.replace(path)
                fsync_path(path.parent)
                written.append(
                    SealedFile(
                        path, signal, tenant, int(hour) * HOUR_NS, number, path.stat().st_size
                    )
                )

    def _enforce_retention(self, now_ns: int) -> None:
        limits = dict(self.options.retention_s)
        doomed = [
            f
            for f in self._files
            if f.hour_start_ns + HOUR_NS <= now_ns - int(limits[f.signal] * 1e9)
        ]
        if self.options.max_bytes:
            keep = sorted(
                (f for f in self._files if f not in doomed), key=lambda f: f.hour_start_ns
            )
            total = sum(f.size for f in keep)
            while keep and total > self.options.max_bytes:
                oldest = keep.pop(0)
                total -= oldest.size
                doomed.append(oldest)
        if not doomed:
            return
        with self._sources_lock.write():
            gone = {f.path for f in doomed}
            self._files = [f for f in self._files if f.path not in gone]
        for f in doomed:
            f.path.unlink(missing_ok=True)
            for parent in (f.path.parent, f.path.parent.parent):
                try:
                    parent.rmdir()
                except OSError:
                    break  # not empty: other files still live there

    # -- reading (any thread) -----------------------------------------------------------

    def _source(
        self,
        signal: str,
        tenant: str | None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> str:
        files = [
            str(f.path)
            for f in self._files
            if f.signal == signal
            and (tenant is None or f.tenant == tenant)
            and (start_ns is None or f.hour_start_ns + HOUR_NS > start_ns)
            and (end_ns is None or f.hour_start_ns <= end_ns)
        ]
        return sql.source(signal, [_alias(n) for n in self._segments], files)

    def _fetch(
        self, statement: str, params: Sequence[Any]
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = self._con.cursor()
        try:
            cur.execute(statement, list(params))
            names = [d[0] for d in cur.description or ()]
            return names, cur.fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"query failed: {exc}") from exc
        finally:
            cur.close()

    def get_trace(self, tenant: str, trace_id: bytes) -> list[Row]:
        with self._sources_lock.read():
            names, rows = self._fetch(
                sql.trace_spans(self._source("traces", tenant)), [tenant, trace_id]
            )
        return [dict(zip(names, r, strict=True)) for r in rows]

    def search_traces(self, tenant: str, query: TraceQuery) -> list[TraceSummary]:
        with self._sources_lock.read():
            statement, params = sql.search_traces(self._source("traces", tenant), tenant, query)
            _, rows = self._fetch(statement, params)
        return [
            TraceSummary(
                trace_id=r[0],
                root_service=r[1],
                root_name=r[2],
                root_span_missing=bool(r[3]),
                start_ns=int(r[4]),
                end_ns=int(r[5]),
                span_count=int(r[6]),
                error_count=int(r[7]),
                services=tuple(r[8]),
            )
            for r in rows
        ]

    def search_logs(self, tenant: str, query: LogQuery) -> list[Row]:
        with self._sources_lock.read():
            src = self._source("logs", tenant, query.start_ns, query.end_ns)
            statement, params = sql.search_logs(src, tenant, query)
            names, rows = self._fetch(statement, params)
        return [dict(zip(names, r, strict=True)) for r in rows]

    def stats(self) -> StoreStats:
        with self._sources_lock.read():
            hot: dict[str, int] = {}
            for signal in SIGNALS:
                total = 0
                for number in self._segments:
                    _, rows = self._fetch(sql.count_rows(_alias(number), signal), [])
                    total += int(rows[0][0])
                hot[signal] = total
            files = len(self._files)
        return StoreStats(
            disk_bytes=self.layout.disk_bytes(),
            hot_rows=hot,
            sealed_files=files,
            last_seq=self._seq,
        )

    def close(self) -> None:
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._con.execute("CHECKPOINT")
            finally:
                self._con.close()


def _insert(con: duckdb.DuckDBPyConnection, statement: str, view: str, table: pa.Table) -> None:
    con.register(view, table)
    try:
        con.execute(statement)
    finally:
        con.unregister(view)


def _const_seq(seq: int, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(seq, pa.int64()), n)
