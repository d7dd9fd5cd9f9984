"""What maintenance writes beside span files sealed before it was kept: trace summaries
(``tracesummary.py``) and membership filters (``filters.py``), a bounded amount per pass.

Each is read and computed outside the sources lock and written under its read side, only
if the file is still the one read (a rewrite gives it a new id), so a rewrite can never be
given the sidecars of the rows it replaced.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from otterscope.quarantine import Quarantine
from otterscope.store.embedded import attrindex, damage, filters, tracesummary
from otterscope.store.embedded.layout import Layout, SealedFile
from otterscope.store.embedded.rwlock import RWLock

# Seconds of one maintenance pass spent on filters (~0.1 s per file of 230,000 spans):
# sealing, which shares the thread, waits no longer than this.
FILTER_SECONDS = 2.0


class Backfill:
    """Mixed into the store, whose state it reads (set up by the store's constructor)."""

    _files: list[SealedFile]
    _attr_indexes: attrindex.IndexCache
    _sources_lock: RWLock
    layout: Layout
    quarantine: Quarantine
    _quarantine_damaged: Callable[[Sequence[SealedFile]], bool]

    def _index_at(self, data_file: Path) -> Callable[[str], Path]:
        return lambda ident: attrindex.index_path(self.layout.root, data_file, ident)

    @damage.retried_past_damage
    def _keep_summaries(self, budget: int = 4) -> None:
        """Span files sealed with an attribute index but before trace summaries were kept
        get them, a few per pass."""
        for f in [f for f in self._files if f.signal == "traces"]:
            if budget == 0:
                return
            try:
                ident = self._attr_indexes.ident(f.path)
                if ident is None or self._attr_indexes.summaries(f.path) is not None:
                    continue  # sealed before any index (scanned as it is), or kept already
                rows = pq.read_table(f.path, columns=tracesummary.columns())
            except FileNotFoundError:
                continue  # retention or the quarantine took it meanwhile
            except (OSError, ValueError, pa.ArrowException) as exc:
                raise damage.DamagedFiles([f], f"reading {f.path} failed: {exc}") from exc
            summaries, max_seq = tracesummary.build(rows), tracesummary.max_seq(rows)
            target = attrindex.summary_path(self._index_at(f.path)(ident))
            write = partial(
                tracesummary.write, summaries, target, ident, attrindex.ID_META, max_seq
            )
            if self._put_beside(f, ident, write):
                budget -= 1

    @damage.retried_past_damage
    def _keep_filters(self, seconds: float = FILTER_SECONDS) -> None:
        """Span files with kept summaries but no usable membership filters get them (from
        the summaries' trace ids and the attribute index), for up to ``seconds``."""
        deadline = time.monotonic() + seconds
        for f in [f for f in self._files if f.signal == "traces"]:
            if time.monotonic() >= deadline:
                return
            try:
                ident = self._attr_indexes.ident(f.path)
                kept = self._attr_indexes.summaries(f.path)
                if ident is None or kept is None:
                    continue  # summaries come first (_keep_summaries)
                target = filters.filter_path(self._index_at(f.path)(ident))
                if filters.current(target, ident):
                    continue  # done already (a torn one is ignored by queries, not redone)
            except FileNotFoundError:
                continue
            except (OSError, ValueError, pa.ArrowException) as exc:
                raise damage.DamagedFiles([f], f"reading {f.path} failed: {exc}") from exc
            # The sidecars' pages are read here for the first time: one that is damaged
            # behind an intact footer is moved aside (the data file itself is fine).
            ids = self._sidecar_column(f, kept.path, "trace_summaries", ["trace_id"])
            if ids is None:
                continue  # _keep_summaries writes them again, then this file's turn comes
            index = None
            keys = None
            if self._attr_indexes.get(f.path) is not None:
                at = self._index_at(f.path)(ident)
                index = self._sidecar_column(f, at, "attribute_index", ["k", "v"])
                if index is None:
                    continue
                keys = attrindex.keys_of(index)
            ids = ids.column(0)
            try:
                spans = pq.read_table(f.path, columns=["service_name", "duration_nano"])
            except FileNotFoundError:
                continue
            except (OSError, ValueError, pa.ArrowException) as exc:
                raise damage.DamagedFiles([f], f"reading {f.path} failed: {exc}") from exc
            durations = filters.durations_of(spans.column(0), spans.column(1))
            made = filters.build(ids, index, keys, durations)
            self._put_beside(f, ident, partial(filters.write, made, target, ident))

    def _sidecar_column(
        self, f: SealedFile, path: Path, kind: str, columns: list[str]
    ) -> pa.Table | None:
        """``columns`` of a sidecar of ``f``; None when it is gone or unreadable, and an
        unreadable one is moved into the quarantine."""
        try:
            return pq.read_table(path, columns=columns)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, pa.ArrowException) as exc:
            with contextlib.suppress(FileNotFoundError):  # a rewrite took it meanwhile
                self.quarantine.move(
                    path,
                    kind,
                    f"unreadable {kind.replace('_', ' ')} of {f.path} ({exc})",
                    "nothing: the file is read without it (slower, same answers)",
                )
            self._attr_indexes.drop(f.path)
            return None

    def _put_beside(self, f: SealedFile, ident: str, write: Callable[[], None]) -> bool:
        """Run ``write`` if ``f`` is still the file of id ``ident``; True when it ran."""
        with self._sources_lock.read():
            self._attr_indexes.drop(f.path)
            if f not in self._files or self._attr_indexes.ident(f.path) != ident:
                return False
            write()
        self._attr_indexes.drop(f.path)
        return True
