"""The on-disk layout of a data dir, and its version.

    <data_dir>/otterscope.json                      layout version (refused when newer)
    <data_dir>/hot/seg-000042.<signal>.arrows       hot segments: the group-committed rows
                                                    of each signal, an Arrow IPC stream
    <data_dir>/hot/seg-000042.sealed                written once every Parquet file of
                                                    segment 42 is durable
    <data_dir>/parquet/<signal>/tenant=<t>/hour=<YYYY-MM-DDTHH>/seg-000042.parquet
    <data_dir>/deletes.jsonl                        deleted traces and spans not yet
                                                    rewritten out of the files (deletes.py)
    <data_dir>/cache/services/tenant=<t>/<YYYY-MM-DDTHH>.<kind>.json
                                                    the per-hour cache of services and calls
                                                    of settled hours (hour_files.py)
    <data_dir>/quarantine/...                       damaged or stray files taken out of use,
                                                    under their path in the data dir
                                                    (otterscope/quarantine.py)
    <data_dir>/cursor.key                           the paging cursors' key, when none is
                                                    configured (query/cursor.py)

Sealed files are plain Parquet partitioned Hive-style, so DuckDB, ClickHouse, Trino or Spark
read them without otterscope.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from otterscope import __version__
from otterscope.durable import make_dirs, write_durably
from otterscope.errors import LayoutTooNew, StoreError

LAYOUT_VERSION = 1
_SEG_RE = re.compile(r"seg-(\d{6,})\.(?:traces|logs|metrics)\.arrows$")
_FILE_RE = re.compile(
    r"parquet/(?P<signal>[a-z]+)/tenant=(?P<tenant>[^/]+)/hour=(?P<hour>\d{4}-\d\d-\d\dT\d\d)/seg-(?P<seg>\d+)\.parquet$"
)


@dataclass(frozen=True, slots=True)
class SealedFile:
    path: Path
    signal: str
    tenant: str
    hour_start_ns: int
    segment: int
    size: int


def hour_key(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H")


def hour_start_ns(key: str) -> int:
    dt = datetime.strptime(key, "%Y-%m-%dT%H").replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000


HOUR_NS = 3600 * 1_000_000_000


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.hot = root / "hot"
        self.parquet = root / "parquet"

    def open(self) -> None:
        """Create or check the data dir; refuse one written by a newer layout."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.hot.mkdir(exist_ok=True)
            self.parquet.mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create data dir {self.root}: {exc.strerror}") from None
        marker = self.root / "otterscope.json"
        if marker.exists():
            try:
                found = int(json.loads(marker.read_text())["layout_version"])
            except (ValueError, KeyError, TypeError) as exc:
                # Not quarantined and rewritten: the version decides how every file is read.
                raise StoreError(
                    f"{marker} is damaged ({exc}); it must hold the data dir's layout version: "
                    f"if otterscope {__version__} or an older one made it, write "
                    f'{{"layout_version": {LAYOUT_VERSION}}} into it'
                ) from None
            if found > LAYOUT_VERSION:
                raise LayoutTooNew(
                    f"data dir {self.root} has layout version {found}, written by a newer "
                    f"otterscope; this is {__version__} (layout {LAYOUT_VERSION}). "
                    "Upgrade otterscope or point --data-dir elsewhere."
                )
        else:
            body = {"layout_version": LAYOUT_VERSION, "created_by": __version__}
            write_durably(marker, json.dumps(body).encode())

    def sealed_marker(self, number: int) -> Path:
        return self.hot / f"seg-{number:06d}.sealed"

    def segments(self) -> list[int]:
        found = {int(m.group(1)) for p in self.hot.iterdir() if (m := _SEG_RE.search(p.name))}
        return sorted(found)

    def make_dirs(self, folder: Path) -> None:
        """Create ``folder`` and its parents, each new entry durable in its parent."""
        make_dirs(folder)

    def marked_segments(self) -> set[int]:
        return {
            int(m.group(1))
            for p in self.hot.iterdir()
            if (m := re.fullmatch(r"seg-(\d{6,})\.sealed", p.name))
        }

    def parquet_path(self, signal: str, tenant: str, hour: str, segment: int) -> Path:
        return (
            self.parquet
            / signal
            / f"tenant={tenant}"
            / f"hour={hour}"
            / f"seg-{segment:06d}.parquet"
        )

    def sealed_files(self) -> list[SealedFile]:
        out = []
        for path in self.parquet.rglob("*.parquet"):
            m = _FILE_RE.search(path.as_posix())
            if not m:
                continue
            out.append(
                SealedFile(
                    path,
                    m.group("signal"),
                    m.group("tenant"),
                    hour_start_ns(m.group("hour")),
                    int(m.group("seg")),
                    path.stat().st_size,
                )
            )
        return out

    def stray_files(self) -> list[Path]:
        """Files in the Parquet tree that are not sealed files of this layout."""
        return [
            p for p in self.parquet.rglob("*") if p.is_file() and not _FILE_RE.search(p.as_posix())
        ]

    def remove_segment_files(self, number: int) -> None:
        """The segment's logs first, its sealed marker last (the marker guards the logs)."""
        for p in self.hot.glob(f"seg-{number:06d}.*.arrows"):
            p.unlink()
        self.sealed_marker(number).unlink(missing_ok=True)

    def remove_partial_parquet(self, number: int) -> None:
        for path in self.parquet.rglob(f"seg-{number:06d}.parquet*"):
            path.unlink()

    def free_bytes(self) -> int:
        """Bytes the data dir's file system still has for this (unprivileged or not) user."""
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def disk_bytes(self) -> int:
        total = 0
        for p in self.root.rglob("*"):
            try:
                if p.is_file():
                    total += p.stat().st_size
            except FileNotFoundError:
                continue  # sealed or deleted while we looked
        return total
