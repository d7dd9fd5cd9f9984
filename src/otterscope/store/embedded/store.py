"""The embedded store: hot segments for writes, sealed Parquet files for the rest.

Who does what (see ARCHITECTURE.md):
- the ingest writer thread calls ``write``: the only writer of the active hot segment (its
  Arrow IPC logs, fdatasync'ed per group commit, and its rows in memory);
- the maintenance thread calls ``maintain``: it seals segments the writer has retired into
  Parquet and deletes files past retention;
- any thread may query: DuckDB reads the hot rows (Arrow, zero-copy) and the Parquet files
  together. A query holds the read side of ``_sources_lock`` so the set of segments and files
  it reads cannot change under it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from otterscope.errors import QueryTimeout, StoreError
from otterscope.otlp.rows import Batch
from otterscope.otlp.schema import SCHEMAS
from otterscope.query.model import LogQuery, TraceQuery, TraceSummary
from otterscope.store.base import Row, StoreStats
from otterscope.store.embedded import seal, sql
from otterscope.store.embedded.layout import HOUR_NS, Layout, SealedFile, fsync_path, hour_key
from otterscope.store.embedded.layout import write_durably as _write_durably
from otterscope.store.embedded.rwlock import RWLock
from otterscope.store.embedded.segment import Segment, all_rows, compact

SIGNALS = tuple(SCHEMAS)
log = logging.getLogger("otterscope.store")


@dataclass(frozen=True, slots=True)
class EmbeddedOptions:
    memory_limit: str = "512MB"
    threads: int = 2
    seal_interval_s: float = 3600.0
    seal_rows: int = 250_000
    seal_bytes: int = 128 * 1024 * 1024
    retention_s: tuple[tuple[str, float], ...] = (
        ("traces", 7 * 86400.0),
        ("logs", 7 * 86400.0),
        ("metrics", 7 * 86400.0),
    )
    max_bytes: int = 0
    # Retired segments waiting to be sealed before writes wait (0: never wait). Each holds
    # up to seal_rows rows in memory, so this bounds hot memory when sealing falls behind.
    max_unsealed: int = 0
    unsealed_wait_s: float = 30.0
    query_timeout_s: float = 30.0


class EmbeddedStore:
    def __init__(self, data_dir: Path, options: EmbeddedOptions | None = None) -> None:
        self.layout = Layout(data_dir)
        self.options = options or EmbeddedOptions()
        self._sources_lock = RWLock()
        self._write_lock = threading.Lock()
        # Guards the segment list and each segment's in-memory batches: held only to append
        # or to take a snapshot, never while a query runs.
        self._publish_lock = threading.Lock()
        self._sealed = threading.Condition(self._publish_lock)
        self._work = threading.Event()
        self._retired: list[Segment] = []  # no longer written, waiting to be sealed
        self._files: list[SealedFile] = []
        self._active_since = time.monotonic()
        self._seq = 0
        self._closed = False
        self.layout.open()
        self._con = duckdb.connect(
            ":memory:",
            config={
                "memory_limit": self.options.memory_limit,
                "threads": self.options.threads,
                "enable_external_access": True,
            },
        )
        self._con.execute("SET parquet_metadata_cache = true")
        for signal in SIGNALS:
            self._con.execute(sql.create_empty_table(signal))
        self._active = self._recover()

    # -- start-up -----------------------------------------------------------------------

    def _recover(self) -> Segment:
        logged = set(self.layout.segments())
        for number in self.layout.marked_segments() - logged:
            # A crash after the logs of a sealed segment were deleted, before its marker was:
            # the marker must go, or it would condemn a later segment of the same number.
            self.layout.sealed_marker(number).unlink()
        for number in sorted(logged):
            if self.layout.sealed_marker(number).exists():
                # Sealed before a crash, not yet deleted: the Parquet files are complete.
                self.layout.remove_segment_files(number)
                continue
            # Not sealed: any Parquet file of it is partial and will be written again.
            self.layout.remove_partial_parquet(number)
            self._retired.append(Segment.load(number, self.layout.hot))
        self._files = self.layout.sealed_files()
        last = max([*(s.number for s in self._retired), *(f.segment for f in self._files), 0])
        self._active_since = time.monotonic()
        self._seq = self._max_seq()
        return Segment(last + 1, self.layout.hot)

    def _max_seq(self) -> int:
        best = 0
        for seg in self._retired:
            for signal in SIGNALS:
                for batch in seg.batches[signal]:
                    value = pc.max(batch.column("ingest_seq")).as_py()
                    if value is not None:
                        best = max(best, int(value))
        files = [str(f.path) for f in self._files]
        if files:
            with self._con.cursor() as cur:
                for signal in SIGNALS:
                    src = sql.source(
                        signal, False, [str(f.path) for f in self._files if f.signal == signal]
                    )
                    value = cur.execute(sql.max_seq(signal, src)).fetchone()
                    if value and value[0] is not None:
                        best = max(best, int(value[0]))
        return best

    # -- writing (the ingest writer thread only) -------------------------------------------

    def write(self, batches: Sequence[Batch]) -> int:
        self._wait_for_sealing()
        with self._write_lock:
            if self._closed:
                raise StoreError("store is closed")
            seq = self._seq
            active = self._active
            tables: dict[str, pa.Table] = {}
            # One table per signal: concatenating first keeps the per-request cost of a
            # group commit to a pointer copy.
            for signal in SIGNALS:
                parts = [b.table for b in batches if b.signal == signal and b.table.num_rows]
                if not parts:
                    continue
                table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
                table = table.set_column(1, "ingest_seq", _seq_range(seq, table.num_rows))
                seq += table.num_rows
                tables[signal] = compact(table)
            try:
                for signal, table in tables.items():
                    active.append(signal, table)
                active.sync()
            except OSError as exc:
                # Cut off what this commit wrote (it is answered 503 and will be retried), and
                # never write to these logs again.
                try:
                    active.rollback()
                except OSError as again:
                    log.error(
                        "cutting back the logs of segment %d failed: %s", active.number, again
                    )
                try:
                    self._rotate()
                except OSError as again:
                    log.error("closing the logs of segment %d failed too: %s", active.number, again)
                raise StoreError(f"commit failed: {exc}") from exc
            self._seq = seq
            with self._publish_lock:
                for signal, table in tables.items():
                    active.publish(signal, table)
            if (
                active.rows >= self.options.seal_rows
                or active.nbytes >= self.options.seal_bytes
                or time.monotonic() - self._active_since >= self.options.seal_interval_s
            ):
                self._rotate()
            return seq

    def _wait_for_sealing(self) -> None:
        """Backpressure: hold writes while too many retired segments wait to be sealed."""
        limit = self.options.max_unsealed
        if not limit:
            return
        deadline = time.monotonic() + self.options.unsealed_wait_s
        with self._sealed:
            while len(self._retired) >= limit and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreError(
                        f"sealing is behind: {len(self._retired)} segments wait to be sealed"
                    )
                self._sealed.wait(left)

    def wait_for_work(self, timeout: float) -> None:
        """Block until a segment is retired (sealing to do) or ``timeout`` passes."""
        self._work.wait(timeout)
        self._work.clear()

    def wake(self) -> None:
        self._work.set()

    def _rotate(self) -> None:
        old = self._active
        try:
            old.close_logs()
        finally:
            with self._publish_lock:
                self._retired.append(old)
                self._active = Segment(old.number + 1, self.layout.hot)
            self._active_since = time.monotonic()
            self._work.set()

    # -- maintenance (one background thread) ---------------------------------------------

    def maintain(self, now_ns: int, retention: bool = True) -> None:
        with self._write_lock:
            # A young active segment is rotated here when no write has come to do it.
            if (
                self._active.rows
                and time.monotonic() - self._active_since >= self.options.seal_interval_s
            ):
                self._rotate()
            retired = list(self._retired)
        try:
            for segment in retired:
                self._seal(segment)
        finally:
            # Retention frees disk space, which is what a failed seal (disk full) may need.
            if retention:
                self._enforce_retention(now_ns)

    def seal_now(self) -> None:
        """Retire the active segment and seal everything (tests, shutdown tooling)."""
        with self._write_lock:
            if self._active.rows:
                self._rotate()
            retired = list(self._retired)
        for segment in retired:
            self._seal(segment)

    def _seal(self, segment: Segment) -> None:
        written: list[SealedFile] = []
        for signal in SIGNALS:
            table = segment.table(signal)
            if table.num_rows:
                self._write_files(segment.number, signal, table, written)
        _write_durably(self.layout.sealed_marker(segment.number), b"sealed\n")
        with self._sources_lock.write():
            self._files.extend(written)
            with self._sealed:
                self._retired.remove(segment)
                self._sealed.notify_all()
        self.layout.remove_segment_files(segment.number)

    def _write_files(
        self, number: int, signal: str, table: pa.Table, written: list[SealedFile]
    ) -> None:
        """One sorted Parquet file per (tenant, hour) of a segment's signal, each durable."""
        for tenant, hour, rows in seal.partitions(signal, table):
            path = self.layout.parquet_path(signal, tenant, hour_key(hour * HOUR_NS), number)
            self.layout.make_dirs(path.parent)
            tmp = path.with_name(path.name + ".tmp")
            seal.write_sorted(signal, rows, tmp)
            tmp.replace(path)
            fsync_path(path.parent)
            written.append(
                SealedFile(path, signal, tenant, hour * HOUR_NS, number, path.stat().st_size)
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
    ) -> tuple[str, pa.Table]:
        """SQL for the signal's rows, and the hot rows it reads (as of now)."""
        files = [
            str(f.path)
            for f in self._files
            if f.signal == signal
            and (tenant is None or f.tenant == tenant)
            and (start_ns is None or f.hour_start_ns + HOUR_NS > start_ns)
            and (end_ns is None or f.hour_start_ns <= end_ns)
        ]
        with self._publish_lock:
            hot = all_rows([*self._retired, self._active], signal)
        return sql.source(signal, True, files), hot

    def _fetch(
        self, signal: str, statement: str, params: Sequence[Any], hot: pa.Table
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = self._con.cursor()
        # A query holds the sources lock, which sealing needs: none may run unbounded.
        done = threading.Event()

        def watchdog() -> None:
            # Past the deadline, keep interrupting: one that lands between two statements
            # (or before the first) would otherwise be lost.
            if done.wait(self.options.query_timeout_s):
                return
            while not done.wait(0.01):
                cur.interrupt()

        timer = threading.Thread(target=watchdog, name="otterscope-query-watchdog", daemon=True)
        timer.start()
        try:
            cur.register(sql.hot_view(signal), hot)
            cur.execute(statement, list(params))
            names = [d[0] for d in cur.description or ()]
            return names, cur.fetchall()
        except duckdb.InterruptException:
            raise QueryTimeout(
                f"query took longer than {self.options.query_timeout_s:g}s; "
                "narrow the time window or the conditions"
            ) from None
        except duckdb.Error as exc:
            raise StoreError(f"query failed: {exc}") from exc
        finally:
            done.set()
            timer.join()
            cur.close()

    def get_trace(self, tenant: str, trace_id: bytes) -> list[Row]:
        with self._sources_lock.read():
            src, hot = self._source("traces", tenant)
            names, rows = self._fetch("traces", sql.trace_spans(src), [tenant, trace_id], hot)
        return [dict(zip(names, r, strict=True)) for r in rows]

    def search_traces(self, tenant: str, query: TraceQuery) -> list[TraceSummary]:
        with self._sources_lock.read():
            src, hot = self._source("traces", tenant)
            statement, params = sql.search_traces(src, tenant, query)
            _, rows = self._fetch("traces", statement, params, hot)
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
            src, hot = self._source("logs", tenant, query.start_ns, query.end_ns)
            statement, params = sql.search_logs(src, tenant, query)
            names, rows = self._fetch("logs", statement, params, hot)
        return [dict(zip(names, r, strict=True)) for r in rows]

    def stats(self) -> StoreStats:
        with self._sources_lock.read():
            with self._publish_lock:
                segments = [*self._retired, self._active]
                hot = {
                    signal: sum(b.num_rows for seg in segments for b in seg.batches[signal])
                    for signal in SIGNALS
                }
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
            with self._sealed:
                self._sealed.notify_all()
            try:
                self._active.close_logs()
            finally:
                self._con.close()


def _seq_range(last: int, n: int) -> pa.Array:
    """The ingest sequence numbers of ``n`` new rows after ``last``: one per row, so a row's
    number identifies it and orders it by arrival, which cursors rely on."""
    ones = pa.repeat(pa.scalar(1, pa.int64()), n)
    return pc.add(pc.cumulative_sum(ones), pa.scalar(last, pa.int64()))
