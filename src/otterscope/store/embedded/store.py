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
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from otterscope.durable import fsync_path, out_of_space
from otterscope.durable import write_durably as _write_durably
from otterscope.errors import StoreError
from otterscope.otlp.rows import Batch
from otterscope.otlp.schema import SCHEMAS
from otterscope.quarantine import Quarantine
from otterscope.store.base import KeyIdent, StoreStats
from otterscope.store.embedded import (
    attrindex,
    damage,
    engine,
    hour_files,
    hourly,
    seal,
    sql,
)
from otterscope.store.embedded.backfill import Backfill
from otterscope.store.embedded.deletes import Tombstone, Tombstones, keep_mask
from otterscope.store.embedded.idempotency import CommittedKey, KeyIndex
from otterscope.store.embedded.layout import HOUR_NS, Layout, SealedFile, hour_key
from otterscope.store.embedded.rwlock import RWLock
from otterscope.store.embedded.segment import Segment, compact, is_hot
from otterscope.store.embedded.traceql_reader import TraceQLReader

SIGNALS = tuple(SCHEMAS)
# Free space that counts as "room again" after a full disk (a group commit of the default
# size takes well under this).
MIN_FREE_BYTES = 4 * 1024 * 1024

log = logging.getLogger("otterscope.store")


@dataclass(frozen=True, slots=True)
class EmbeddedOptions:
    memory_limit: str = "512MB"
    threads: int = 2
    # The maintenance thread's own DuckDB (the services cache of settled hours): one thread.
    maintenance_memory_limit: str = "128MB"
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
    # Memory the rows of every hot segment together may take (0: no bound but the above).
    # The active segment is retired at half of it, so it fills while the one before is
    # sealed; writes wait while retired and active segments take all of it.
    hot_bytes_budget: int = 0
    unsealed_wait_s: float = 30.0
    query_timeout_s: float = 30.0
    idempotency_ttl_s: float = 86400.0
    idempotency_max_keys: int = 100_000


class EmbeddedStore(TraceQLReader, Backfill):
    def __init__(
        self,
        data_dir: Path,
        options: EmbeddedOptions | None = None,
        quarantine: Quarantine | None = None,
    ) -> None:
        self.layout = Layout(data_dir)
        self.options = options or EmbeddedOptions()
        self.quarantine = quarantine or Quarantine(data_dir)
        # Sealed files a failed read named that were then read whole without a fault.
        self._intact: set[tuple[Path, int]] = set()
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
        self._seq = 0  # the last ingest sequence number written (writer thread)
        self._visible_seq = 0  # the last one queries can see (under the publish lock)
        self._closed = False
        # Set when a commit or a seal ran out of space, cleared by the next complete seal
        # pass: meanwhile writes are refused at once instead of waiting for sealing.
        self._disk_full: str | None = None
        self.query_timeout_s = self.options.query_timeout_s
        self.layout.open()
        self._deletes = Tombstones(data_dir, self.quarantine)
        self._keys = KeyIndex(
            data_dir, self.options.idempotency_ttl_s, self.options.idempotency_max_keys
        )
        self._resource_sets = {}
        self._resource_lock = threading.Lock()
        self._attr_indexes = attrindex.IndexCache(data_dir)
        self._hour_cache = hourly.HourCache(hour_files.HourFiles(data_dir, self.quarantine))
        tmp = data_dir / "duckdb-tmp"
        self._con = engine.connect(self.options.memory_limit, self.options.threads, tmp)
        # A folder of its own: two DuckDBs would name their spill files alike. Made here:
        # DuckDB creates a spill folder but not its parent, so a spill there failed until
        # the queries' DuckDB had spilled once.
        (tmp / "maintenance").mkdir(parents=True, exist_ok=True)
        self._maintenance_con = engine.connect(
            self.options.maintenance_memory_limit, 1, tmp / "maintenance"
        )
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
            segment, reads = Segment.load(number, self.layout.hot)
            damage.settle_segment(reads, number == max(logged), self.quarantine)
            self._retired.append(segment)
        self._keys.load()
        for segment in self._retired:
            self._keys.add(segment.keys)
        self._files = damage.checked_files(self.layout, self.quarantine)
        last = max([*(s.number for s in self._retired), *(f.segment for f in self._files), 0])
        self._active_since = time.monotonic()
        self._seq = self._visible_seq = self._max_seq()
        return Segment(last + 1, self.layout.hot)

    @damage.retried_past_damage
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
                    try:
                        value = cur.execute(sql.max_seq(signal, src)).fetchone()
                    except duckdb.Error as exc:
                        damage.raise_if_named(
                            self._files, exc, "reading the last ingest number", src
                        )
                        raise
                    if value and value[0] is not None:
                        best = max(best, int(value[0]))
        return best

    def _quarantine_damaged(self, named: Sequence[SealedFile]) -> bool:
        """Check in full the files a failed read named, up to the first damaged one, and
        take that out of use and into the quarantine. True when there was one (the read is
        worth retrying: the retry finds the next, if any)."""
        for f in named:
            if (f.path, f.size) in self._intact:
                continue
            problem = damage.parquet_problem(f.path, f.signal, pages=True)
            if problem is None:
                # Read whole once: a failure that keeps naming it is not worth another read.
                self._intact.add((f.path, f.size))
                continue
            with self._sources_lock.write():
                if any(g.path == f.path for g in self._files):  # not found by another read
                    self._files = [g for g in self._files if g.path != f.path]
                    damage.quarantine_file(f, problem, self.quarantine)
            with self._resource_lock:
                self._resource_sets.pop(str(f.path), None)
            return True
        return False

    # -- writing (the ingest writer thread only) -------------------------------------------

    def write(self, batches: Sequence[Batch], keys: Sequence[KeyIdent] = ()) -> int:
        self._wait_for_sealing()
        budget = self.options.hot_bytes_budget
        with self._write_lock:
            if self._closed:
                raise StoreError("store is closed")
            seq = self._seq
            active = self._active
            tables: dict[str, pa.Table] = {}
            now = time.time()
            committed: dict[str, list[CommittedKey]] = {signal: [] for signal in SIGNALS}
            for tenant, signal, key in keys:
                committed[signal].append(CommittedKey(tenant, signal, key, now))
            for signal in SIGNALS:
                parts = [b.table for b in batches if b.signal == signal and b.table.num_rows]
                if not parts:
                    continue
                table = _one_table(parts)
                table = table.set_column(1, "ingest_seq", _seq_range(seq, table.num_rows))
                seq += table.num_rows
                tables[signal] = table.combine_chunks()
            try:
                for signal, table in tables.items():
                    active.append(signal, table, committed[signal])
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
                if out_of_space(exc):
                    self._set_disk_full(f"a commit failed: {exc.strerror}")
                raise StoreError(f"commit failed: {exc}") from exc
            self._seq = seq
            with self._publish_lock:
                for signal, table in tables.items():
                    active.publish(signal, table, committed[signal])
                self._visible_seq = seq
            # A key whose signal stored no row stays uncommitted: a retry stores nothing either.
            self._keys.add(k for signal in tables for k in committed[signal])
            if (
                active.rows >= self.options.seal_rows
                or active.nbytes >= self.options.seal_bytes
                or time.monotonic() - self._active_since >= self.options.seal_interval_s
                or (budget and active.nbytes >= budget // 2)
            ):
                self._rotate()
            return seq

    def _over_budget(self) -> bool:
        """Whether the hot rows take all of ``hot_bytes_budget`` (under the publish lock).
        Only retired segments free memory by being sealed: without one, the active segment
        is below half of the budget (``write`` retires it there)."""
        budget = self.options.hot_bytes_budget
        if not budget or not self._retired:
            return False
        return sum(seg.nbytes for seg in [*self._retired, self._active]) >= budget

    def key_committed(self, tenant: str, signal: str, key: str) -> bool:
        return self._keys.committed(tenant, signal, key, time.time())

    def _wait_for_sealing(self) -> None:
        """Backpressure: hold writes while too many retired segments wait to be sealed or
        the hot rows take their whole budget; refuse them at once while the disk is full
        (waiting would not help)."""
        limit = self.options.max_unsealed
        deadline = time.monotonic() + self.options.unsealed_wait_s
        with self._sealed:
            while True:
                if self._disk_full is not None:
                    raise StoreError(
                        f"the disk of the data directory is full ({self._disk_full}); "
                        "writes resume by themselves once space is freed"
                    )
                behind = bool(limit) and len(self._retired) >= limit
                if self._closed or not (behind or self._over_budget()):
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreError(
                        f"sealing is behind: {len(self._retired)} segments wait to be sealed"
                    )
                self._sealed.wait(left)

    @property
    def disk_full(self) -> str | None:
        return self._disk_full

    def _set_disk_full(self, reason: str) -> None:
        with self._sealed:
            first = self._disk_full is None
            self._disk_full = reason
            self._sealed.notify_all()  # writes waiting for sealing give up now
        if first:
            log.error(
                "the disk of %s is full (%s): refusing writes (503) until space is freed; "
                "nothing acknowledged is lost",
                self.layout.root,
                reason,
            )

    def _clear_disk_full(self) -> None:
        with self._sealed:
            was = self._disk_full
            self._disk_full = None
        if was is not None:
            log.warning("the disk of %s has room again: accepting writes", self.layout.root)

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
            while retired:
                # Popped, so a sealed segment's rows are freed before the next is sealed.
                segment = retired.pop(0)
                try:
                    self._seal(segment)
                except OSError as exc:
                    if not out_of_space(exc):
                        raise
                    # What this attempt wrote is incomplete: give its space back now.
                    self.layout.remove_partial_parquet(segment.number)
                    marker = self.layout.sealed_marker(segment.number)
                    marker.with_name(marker.name + ".tmp").unlink(missing_ok=True)
                    self._set_disk_full(f"sealing segment {segment.number}: {exc.strerror}")
                    return  # tried again on the next pass, after retention below
            # Every retired segment is sealed. That alone does not prove room: after a
            # failed commit the retired segment is empty and its seal writes only a marker,
            # which fits where no commit does; the state would flip every pass.
            if self._disk_full is None or self.layout.free_bytes() >= MIN_FREE_BYTES:
                self._clear_disk_full()
            self._apply_deletes()
            self._keys.compact(time.time())
            # A few hours per pass: sealed hours get their services and calls cached
            # without the maintenance thread stalling on a backlog.
            self.warm_service_cache()
            self._keep_summaries()
            self._keep_filters()
        finally:
            # Retention frees disk space, which is what a failed seal (disk full) may need.
            if retention:
                self._enforce_retention(now_ns)
            self.prune_service_cache()

    def seal_now(self) -> None:
        """Retire the active segment and seal everything (tests, shutdown tooling)."""
        with self._write_lock:
            if self._active.rows:
                self._rotate()
            retired = list(self._retired)
        while retired:
            self._seal(retired.pop(0))

    def _seal(self, segment: Segment) -> None:
        written: list[SealedFile] = []
        for signal in SIGNALS:
            table = segment.table(signal)
            if signal == "traces" and table.num_rows:
                keep = keep_mask(table, self._deletes.items)
                if keep is not None:
                    table = table.filter(keep)
            if table.num_rows:
                self._write_files(segment.number, signal, table, written)
        # The keys must outlive the logs that hold them, which go once the marker is written.
        self._keys.persist(segment.keys)
        _write_durably(self.layout.sealed_marker(segment.number), b"sealed\n")
        with self._sources_lock.write():
            self._files.extend(written)
            with self._sealed:
                self._retired.remove(segment)
                self._sealed.notify_all()
        self.layout.remove_segment_files(segment.number)
        # Sealing's working set was freed on this thread (the segment's rows go when the
        # caller drops it); Arrow's allocator would keep it for this thread's next seal
        # while the writer and queries grow their own: give it back now.
        pa.default_memory_pool().release_unused()

    def _write_files(
        self, number: int, signal: str, table: pa.Table, written: list[SealedFile]
    ) -> None:
        """One sorted Parquet file per (tenant, hour) of a segment's signal, each durable."""
        for tenant, hour, rows in seal.partitions(signal, table):
            path = self.layout.parquet_path(signal, tenant, hour_key(hour * HOUR_NS), number)
            self.layout.make_dirs(path.parent)
            tmp = path.with_name(path.name + ".tmp")
            ident = seal.write_sorted(signal, rows, tmp, self._index_at(path))
            tmp.replace(path)
            self._attr_indexes.forget(path, keep=ident)  # and any a crashed seal left behind
            fsync_path(path.parent)
            # Distinct first, then as text: casting the dictionary column first spelled out
            # every row's resource JSON (0.56 s for 250,000 spans) to find a few dozen.
            resources = pc.unique(rows.column("resource_attributes"))
            if pa.types.is_dictionary(resources.type):
                resources = resources.cast(pa.string())
            with self._resource_lock:
                self._resource_sets[str(path)] = frozenset(
                    v for v in resources.to_pylist() if v is not None
                )
            written.append(
                SealedFile(path, signal, tenant, hour * HOUR_NS, number, path.stat().st_size)
            )

    # -- deletes ---------------------------------------------------------------------------

    def delete(self, tenant: str, trace_id: bytes, span_id: bytes | None = None) -> int:
        """Delete a trace (or one span of it) for every later query; return spans deleted."""
        spans = [
            r
            for r in self.get_trace(tenant, trace_id)
            if span_id is None or r["span_id"] == span_id
        ]
        if spans:
            self._deletes.add(Tombstone(tenant, trace_id, span_id, self.last_seq()))
            self._work.set()  # maintenance rewrites the files that still hold them
        return len(spans)

    def _hot_floor(self) -> int:
        """The smallest ingest sequence number still in a hot segment (or the next one)."""
        with self._publish_lock:
            floor = self._visible_seq + 1
            for seg in [*self._retired, self._active]:
                for signal in SIGNALS:
                    for batch in seg.batches[signal][:1]:
                        floor = min(floor, int(pc.min(batch.column("ingest_seq")).as_py()))
        return floor

    @damage.retried_past_damage
    def _apply_deletes(self) -> None:
        """Rewrite sealed span files without deleted rows; forget finished tombstones."""
        pending = self._deletes.items
        if not pending:
            return
        floor = self._hot_floor()  # before rewriting: later seals filter by themselves
        files = [f for f in self._files if f.signal == "traces"]
        if files:
            with self._con.cursor() as cur:
                statement = sql.files_holding_traces([str(f.path) for f in files], len(pending))
                try:
                    hit = cur.execute(statement, [t.trace_id for t in pending]).fetchall()
                except duckdb.Error as exc:
                    damage.raise_if_named(files, exc, "finding deleted spans", statement)
                    raise
            for (name,) in hit:
                self._rewrite_without(Path(name), pending)
        self._deletes.drop(t for t in pending if t.seq < floor)

    def _rewrite_without(self, path: Path, tombstones: Sequence[Tombstone]) -> None:
        try:
            table = pq.read_table(path)
        except (OSError, ValueError, pa.ArrowException) as exc:
            named = [f for f in self._files if f.path == path]
            raise damage.DamagedFiles(named, f"reading {path} failed: {exc}") from exc
        keep = keep_mask(table, tombstones)
        if keep is None or pc.all(keep).as_py():
            return
        rows = table.filter(keep)
        tmp = path.with_name(path.name + ".tmp")
        ident = seal.write_sorted("traces", rows, tmp, self._index_at(path))
        with self._sources_lock.write():
            if rows.num_rows:
                tmp.replace(path)
            else:
                tmp.unlink()
                path.unlink()
            self._attr_indexes.forget(path, keep=ident if rows.num_rows else None)
            fsync_path(path.parent)
            self._files = [
                f if f.path != path else replace(f, size=path.stat().st_size)
                for f in self._files
                if f.path != path or rows.num_rows
            ]

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
        with self._resource_lock:
            for path in gone:
                self._resource_sets.pop(str(path), None)
        for f in doomed:
            f.path.unlink(missing_ok=True)
            self._attr_indexes.forget(f.path)
            for parent in (f.path.parent, f.path.parent.parent):
                try:
                    parent.rmdir()
                except OSError:
                    break  # not empty: other files still live there

    def hot_bytes(self) -> int:
        """Memory the rows of every hot segment take (active and waiting to be sealed)."""
        with self._publish_lock:
            return sum(seg.nbytes for seg in [*self._retired, self._active])

    def duckdb_memory_bytes(self) -> int:
        """Memory the store's two DuckDBs hold (queries and their Parquet metadata cache;
        the maintenance thread's)."""
        total = 0
        for con in (self._con, self._maintenance_con):
            with con.cursor() as cur:
                row = cur.execute(sql.memory_in_use()).fetchone()
            total += int(row[0]) if row else 0
        return total

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
                self._maintenance_con.close()


def _one_table(parts: list[pa.Table]) -> pa.Table:
    """A signal's tables of one group commit as one table in hot form.

    Concatenating first keeps the per-request cost of a group commit to a pointer copy.
    Large requests arrive in hot form already (``compact`` ran in a decode worker, off the
    writer thread); the others are brought into it here, and dictionaries of different
    parts are unified when the chunks are combined.
    """
    if not any(is_hot(t) for t in parts):
        return compact(pa.concat_tables(parts) if len(parts) > 1 else parts[0])
    return pa.concat_tables([t if is_hot(t) else compact(t) for t in parts])


def _seq_range(last: int, n: int) -> pa.Array:
    """The ingest sequence numbers of ``n`` new rows after ``last``: one per row, so a row's
    number identifies it and orders it by arrival, which cursors rely on."""
    ones = pa.repeat(pa.scalar(1, pa.int64()), n)
    return pc.add(pc.cumulative_sum(ones), pa.scalar(last, pa.int64()))
