"""What one query of the embedded store reads, and how its one statement runs.

A query takes the read side of the sources lock (sealing and retention cannot change the set
of files under it), snapshots the hot rows and the last visible ingest sequence number
together (so a pin never names rows the query could not see), registers them with its own
DuckDB cursor, and runs one statement under a watchdog that interrupts it at
``query_timeout``. A failure that names a sealed file is raised as damage, so that the
read is retried without the file (``damage.retried_past_damage``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from otterscope.errors import QueryTimeout, StoreError
from otterscope.quarantine import Quarantine
from otterscope.store.base import Row
from otterscope.store.embedded import damage, sql
from otterscope.store.embedded.deletes import Tombstones
from otterscope.store.embedded.layout import HOUR_NS, SealedFile
from otterscope.store.embedded.rwlock import RWLock
from otterscope.store.embedded.segment import Segment, all_rows


class Snapshot:
    """What one query reads: the files and hot rows of a signal as of one moment, the
    Arrow tables to register, and the pin (the last ingest number it can see)."""

    def __init__(
        self,
        signal: str,
        files: list[SealedFile],
        tables: dict[str, pa.Table],
        pin: int,
        deletes: bool,
    ) -> None:
        self.signal = signal
        self.files = files
        self.tables = tables
        self.pin = pin
        self.deletes = deletes

    def files_within(self, start_ns: int | None, end_ns: int | None) -> list[SealedFile]:
        """The files whose hour overlaps the window."""
        return [
            f
            for f in self.files
            if (start_ns is None or f.hour_start_ns + HOUR_NS > start_ns)
            and (end_ns is None or f.hour_start_ns <= end_ns)
        ]

    def within(self, start_ns: int | None = None, end_ns: int | None = None) -> str:
        """SQL for the rows, reading only files whose hour overlaps the window."""
        files = [str(f.path) for f in self.files_within(start_ns, end_ns)]
        return sql.source(self.signal, True, files, self.deletes)

    @property
    def source(self) -> str:
        return self.within()


def rows_of(names: list[str], rows: list[tuple[Any, ...]]) -> list[Row]:
    return [dict(zip(names, r, strict=True)) for r in rows]


class SnapshotReader:
    """The store's state every query reads (set up by the store's constructor), taking a
    snapshot of it, and running one statement against one."""

    _sources_lock: RWLock
    _publish_lock: threading.Lock
    _files: list[SealedFile]
    _retired: list[Segment]
    _active: Segment
    _visible_seq: int
    _con: duckdb.DuckDBPyConnection
    # The maintenance thread's own DuckDB (services cache): small memory, one thread.
    _maintenance_con: duckdb.DuckDBPyConnection
    _deletes: Tombstones
    query_timeout_s: float
    quarantine: Quarantine
    # Checks the sealed files a failed read named, and quarantines a damaged one (the store).
    _quarantine_damaged: Callable[[Sequence[SealedFile]], bool]

    def _snapshot(
        self,
        signal: str,
        tenant: str | None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        pin: int | None = None,
    ) -> Snapshot:
        """The caller holds the read side of the sources lock."""
        # Newest first: a top-N by time then finds its threshold in the first files read
        # and skips older row groups by their statistics.
        files = [
            f
            for f in sorted(self._files, key=lambda f: (f.hour_start_ns, f.segment), reverse=True)
            if f.signal == signal
            and (tenant is None or f.tenant == tenant)
            and (start_ns is None or f.hour_start_ns + HOUR_NS > start_ns)
            and (end_ns is None or f.hour_start_ns <= end_ns)
        ]
        with self._publish_lock:
            hot = all_rows([*self._retired, self._active], signal)
            visible = self._visible_seq
        tables = {sql.hot_view(signal): hot}
        deletes = signal == "traces" and any(
            tenant is None or t.tenant == tenant for t in self._deletes.items
        )
        if deletes:
            traces, spans = self._deletes.tables(tenant)
            tables[sql.DELETED_TRACES] = traces
            tables[sql.DELETED_SPANS] = spans
        return Snapshot(
            signal, files, tables, visible if pin is None else min(pin, visible), deletes
        )

    def _run(
        self,
        statement: str,
        params: Sequence[Any],
        tables: dict[str, pa.Table],
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = (con or self._con).cursor()
        # A query holds the sources lock, which sealing needs: none may run unbounded.
        done = threading.Event()

        def watchdog() -> None:
            # Past the deadline, keep interrupting: one that lands between two statements
            # (or before the first) would otherwise be lost.
            if done.wait(self.query_timeout_s):
                return
            while True:
                cur.interrupt()
                if done.wait(0.01):
                    return

        timer = threading.Thread(target=watchdog, name="otterscope-query-watchdog", daemon=True)
        timer.start()
        try:
            for name, table in tables.items():
                cur.register(name, table)
            cur.execute(statement, list(params))
            names = [d[0] for d in cur.description or ()]
            return names, cur.fetchall()
        except duckdb.InterruptException:
            raise QueryTimeout(
                f"query took longer than {self.query_timeout_s:g}s; "
                "narrow the time window or the conditions"
            ) from None
        except duckdb.Error as exc:
            damage.raise_if_named(self._files, exc, "query failed", statement)
            raise StoreError(f"query failed: {exc}") from exc
        finally:
            done.set()
            timer.join()
            cur.close()

    def last_seq(self) -> int:
        with self._publish_lock:
            return self._visible_seq
