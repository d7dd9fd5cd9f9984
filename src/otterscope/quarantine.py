"""The quarantine: damaged files taken out of the way, kept, reported and counted.

A file otterscope cannot read (a Parquet file without its footer or with garbage pages, a
stray file in the Parquet tree, a hot log whose commits cannot all be read back, an
unreadable metrics snapshot or alert state) must neither stop the server nor vanish in
silence. It is moved to ``<data-dir>/quarantine/<its path inside the data dir>`` (copied
instead when the readable part must stay where it is), one ERROR line says which file, why,
what was lost and where it is kept, and ``otterscope_quarantined_files_total{kind}`` counts
it. Nothing ever reads the quarantine back: it is for the operator, who may inspect, repair
and restore a file while the server is stopped, or delete it.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path

from otterscope.durable import fsync_path, make_dirs
from otterscope.selfmetrics import Counter, SelfMetrics

FOLDER = "quarantine"
log = logging.getLogger("otterscope.quarantine")


class Quarantine:
    def __init__(self, data_dir: Path, counter: Counter | None = None) -> None:
        self.root = data_dir
        self.folder = data_dir / FOLDER
        # Without the server's self-metrics (a store opened by a tool), counted on its own.
        self.counter = counter or SelfMetrics().quarantined_files
        self._lock = threading.Lock()

    def move(self, path: Path, kind: str, reason: str, lost: str) -> Path:
        """Move ``path`` into the quarantine, report and count it; return where it went."""
        with self._lock:
            target = self._target(path)
            os.replace(path, target)
            fsync_path(target.parent)
            fsync_path(path.parent)
        self._report(path, target, kind, reason, lost)
        return target

    def copy(self, path: Path, kind: str, reason: str, lost: str) -> Path:
        """Keep a durable copy of ``path`` (whose readable part stays in use) in the
        quarantine, report and count it; return the copy's path."""
        with self._lock:
            target = self._target(path)
            shutil.copyfile(path, target)
            fsync_path(target)
            fsync_path(target.parent)
        self._report(path, target, kind, reason, lost)
        return target

    def _target(self, path: Path) -> Path:
        """The file's place in the quarantine: its path inside the data dir, so an operator
        sees where it came from, with a time suffix when an earlier one holds the name."""
        try:
            inside = path.resolve().relative_to(self.root.resolve())
        except ValueError:
            inside = Path(path.name)
        target = self.folder / inside
        if target.exists():
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            target = target.with_name(f"{target.name}.{stamp}")
            n = 1
            while target.exists():
                target = target.with_name(f"{path.name}.{stamp}.{n}")
                n += 1
        make_dirs(target.parent)
        return target

    def _report(self, path: Path, target: Path, kind: str, reason: str, lost: str) -> None:
        self.counter.inc(kind=kind)
        log.error(
            "quarantined %s as %s: %s; lost: %s",
            self._shown(path),
            self._shown(target),
            reason,
            lost,
        )

    def _shown(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)
