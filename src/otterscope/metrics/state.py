"""The accumulated metrics: brought up to date from the store, and kept across restarts.

The accumulator's state is a pure function of the committed points, and those are durable
in the same group commit that acknowledges them, so the state needs no transaction of its
own and costs the ingest path nothing. ``refresh`` folds in every point committed since the
last fold (the store aggregates them per series); a scrape refreshes first, so it sees every
acknowledged point. ``<data-dir>/metrics-state.json`` holds a snapshot and the ingest
sequence number it covers (written atomically by the maintenance thread every
``metrics.snapshot_interval`` and at shutdown); start-up loads it and folds the points
numbered after it. A crash between snapshots only means a longer fold: nothing is counted
twice or lost. Retention keeps points for days, far longer than the snapshot interval.
A snapshot that cannot be read, or that covers rows the store no longer has, is set aside
and the state rebuilt from every stored point. The service graph is folded a
``metrics.service_graph_wait`` behind (its own number, ``graph_seq``, in the snapshot).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import orjson

from otterscope.durable import write_durably
from otterscope.metrics.accumulator import Accumulator, Series
from otterscope.metrics.servicegraph import Lag
from otterscope.quarantine import Quarantine
from otterscope.store.base import Store

FILE = "metrics-state.json"
_VERSION = 1
log = logging.getLogger("otterscope.metrics")


class MetricsState:
    def __init__(
        self,
        data_dir: Path,
        accumulator: Accumulator,
        store: Store,
        quarantine: Quarantine | None = None,
        graph_lag: Lag | None = None,
    ) -> None:
        self.path = data_dir / FILE
        self._quarantine = quarantine or Quarantine(data_dir)
        self.accumulator = accumulator
        self._store = store
        self._graph_lag = graph_lag or Lag(0)
        # One fold at a time: two would both take the points after the same number.
        self._fold_lock = threading.Lock()

    def load(self) -> int:
        """Restore the snapshot (if any), then fold the later points; return their count.

        An unreadable snapshot is quarantined and the state rebuilt from every stored point:
        only what retention already deleted is missing from the totals."""
        if self.path.exists():
            try:
                doc = orjson.loads(self.path.read_bytes())
                if doc.get("version") != _VERSION:
                    raise ValueError(f"unknown version {doc.get('version')!r}")
                seq, series = int(doc["seq"]), [Series.from_json(s) for s in doc["series"]]
                graph_seq = int(doc.get("graph_seq", seq))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self._quarantine.move(
                    self.path,
                    "metrics_state",
                    f"unreadable snapshot ({exc}); rebuilding it from the stored points",
                    "the part of the accumulated totals whose points retention already deleted",
                )
            else:
                if seq <= self._store.last_seq():
                    self.accumulator.restore(seq, series, graph_seq)
                else:
                    # Rows it covers are gone (a damaged hot log, or retention took the
                    # newest rows): the store numbers new rows from below its seq again,
                    # and folding only after it would skip them.
                    log.warning(
                        "%s covers ingest numbers up to %d, but the store's newest row is %d "
                        "(later rows were lost or deleted since): the accumulated metrics are "
                        "rebuilt from the stored points",
                        FILE,
                        seq,
                        self._store.last_seq(),
                    )
        folded = self.refresh()
        if folded:
            log.info("metrics state: %d points folded in after the snapshot", folded)
        return folded

    def refresh(self) -> int:
        """Fold in every metric point committed since the last fold."""
        with self._fold_lock:
            return self._fold()

    def _fold(self) -> int:
        acc = self.accumulator
        # Spans are paired into service graph requests a wait behind the newest commit.
        folded = self._store.metric_aggregates(
            acc.seq, tuple(acc.excluded), (acc.graph_seq, self._graph_lag.upto())
        )
        self._graph_lag.reached(folded.upto)
        return acc.fold(folded)

    def save(self) -> int:
        """Fold, then write the snapshot durably; return the sequence number it covers."""
        with self._fold_lock:
            self._fold()
            seq, graph_seq = self.accumulator.seq, self.accumulator.graph_seq
            with self.accumulator.reading() as series:
                # orjson writes the dataclasses itself: no copy of every series first.
                body = orjson.dumps(
                    {
                        "version": _VERSION,
                        "seq": seq,
                        "graph_seq": graph_seq,
                        "series": list(series),
                    }
                )
        write_durably(self.path, body)
        return seq
