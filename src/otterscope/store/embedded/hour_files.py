"""The per-hour cache of services and calls on disk, so that a restart does not compute
every settled hour again.

    <data_dir>/cache/services/tenant=<t>/<YYYY-MM-DDTHH>.<kind>.json

``kind`` is ``calls`` (the hour's per-minute calls) or a signal (what each service sent in
the hour). A file holds the rows ``hourly.HourCache`` keeps for one settled hour, under the
key they were computed for: the Parquet files they were read from (path inside the data
dir, size, modification time) and a digest of the statements that computed them. A file
is used only when both match: a late span (a new file), an applied delete (a rewritten
file), retention (a file gone) or another version of the SQL changes the key; the hour is
then computed again and its file replaced. A file is written whole (temporary file, fsync,
rename) by one thread at a time, so a crash leaves the old content or the new. One that
cannot be parsed is quarantined (kind ``service_cache``) and computed again: a cache never
stops the server, and failing to write one only costs the next restart its time.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from otterscope.durable import make_dirs, write_durably
from otterscope.quarantine import Quarantine
from otterscope.store.base import Row
from otterscope.store.embedded import service_sql
from otterscope.store.embedded.layout import HOUR_NS, SealedFile, hour_key, hour_start_ns

FOLDER = Path("cache") / "services"
_FORMAT = 1
_NAME_RE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d)\.(calls|traces|logs|metrics)\.json")

# The columns of each kind's rows, as the statements return them: a loaded file must have
# exactly these (and these types), so that adding rows up never meets a foreign shape.
_INT, _TEXT, _HISTOGRAM = "int", "text", "histogram"
_ACTIVITY = (
    ("service_name", _TEXT),
    ("items", _INT),
    ("first_ns", _INT),
    ("last_ns", _INT),
    ("resource", _TEXT),
)
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "calls": (
        ("minute", _INT),
        ("source", _TEXT),
        ("target", _TEXT),
        ("target_type", _TEXT),
        ("calls", _INT),
        ("errors", _INT),
        ("durations", _HISTOGRAM),
    ),
    "traces": (*_ACTIVITY, ("errors", _INT), ("durations", _HISTOGRAM)),
    "logs": _ACTIVITY,
    "metrics": _ACTIVITY,
}

# What the cached rows depend on besides the files: the statements (their text holds the
# duration buckets and the attributes virtual nodes are named from) and the read margin.
CODE = hashlib.sha256(
    "\n".join(
        [
            str(_FORMAT),
            service_sql.dependencies("src"),
            str(service_sql.DEPENDENCY_MARGIN_NS),
            *(service_sql.service_activity("src", s) for s in ("traces", "logs", "metrics")),
        ]
    ).encode()
).hexdigest()[:32]

log = logging.getLogger("otterscope.store")

# A stored file as a key holds it: path inside the data dir, size, modification time (ns).
FileStamp = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class HourKey:
    """What one cached hour's rows depend on."""

    kind: str  # "calls", or the signal whose activity it is
    tenant: str
    hour: int  # hours since the epoch
    files: tuple[FileStamp, ...]


class Damaged(ValueError):
    """A cache file that is not what this module writes."""


class HourFiles:
    def __init__(self, data_dir: Path, quarantine: Quarantine) -> None:
        self.root = data_dir
        self.folder = data_dir / FOLDER
        self._quarantine = quarantine
        # One writer (or pruner) at a time: they share the temporary file's name.
        self._lock = threading.Lock()
        self._write_failed = False
        self._pruned_for: frozenset[tuple[str, int, str]] | None = None

    def key(self, kind: str, tenant: str, hour: int, files: Iterable[SealedFile]) -> HourKey | None:
        """The key of an hour computed from ``files``; None when one cannot be looked at
        (the read that follows finds out why)."""
        stamps = []
        for f in sorted(files, key=lambda f: str(f.path)):
            try:
                st = os.stat(f.path)
            except OSError:
                return None
            stamps.append((self._inside(f.path), st.st_size, st.st_mtime_ns))
        return HourKey(kind, tenant, hour, tuple(stamps))

    def load(self, key: HourKey) -> list[Row] | None:
        """The rows stored for ``key``; None when there is no file, or it was computed
        from other files or by other statements (stale), or it is damaged (quarantined)."""
        path = self._path(key)
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read %s (%s): computing the hour instead", path, exc.strerror)
            return None
        try:
            return _decode(body, key)
        except Damaged as exc:
            # Pruned or replaced meanwhile: nothing left to keep.
            with self._lock, contextlib.suppress(FileNotFoundError):
                self._quarantine.move(
                    path,
                    "service_cache",
                    f"unreadable cache of services and calls ({exc}); computing it again",
                    "nothing: the hour is computed again from the stored spans",
                )
            return None

    def save(self, key: HourKey, rows: list[Row]) -> None:
        body = _encode(key, rows)
        path = self._path(key)
        with self._lock:
            try:
                make_dirs(path.parent)
                write_durably(path, body)
            except OSError as exc:
                if not self._write_failed:
                    log.warning(
                        "cannot write the services cache file %s (%s): the hours are kept in "
                        "memory only until writing works again",
                        path,
                        exc.strerror,
                    )
                self._write_failed = True
                return
            self._write_failed = False

    def prune(self, stored: Iterable[tuple[str, int, str]]) -> int:
        """Delete the files of hours no longer stored (retention) and temporary files a
        crash left; return how many. Looks at the folder only when ``stored`` (tenant,
        hour, signal) changed since the last call."""
        live = frozenset(stored)
        if live == self._pruned_for:
            return 0
        removed = 0
        with self._lock:
            if not self.folder.is_dir():
                self._pruned_for = live
                return 0
            for folder in self.folder.iterdir():
                tenant = folder.name.removeprefix("tenant=")
                if not folder.is_dir() or tenant == folder.name:
                    continue
                for path in folder.iterdir():
                    m = _NAME_RE.fullmatch(path.name)
                    if m:  # calls are read from spans
                        signal = "traces" if m.group(2) == "calls" else m.group(2)
                        hour = hour_start_ns(m.group(1)) // HOUR_NS
                        doomed = (tenant, hour, signal) not in live
                    else:
                        doomed = path.name.endswith(".tmp")
                    if doomed:
                        path.unlink(missing_ok=True)
                        removed += 1
                with contextlib.suppress(OSError):  # not empty: hours still cached
                    folder.rmdir()
            self._pruned_for = live
        return removed

    def _path(self, key: HourKey) -> Path:
        return (
            self.folder / f"tenant={key.tenant}" / f"{hour_key(key.hour * HOUR_NS)}.{key.kind}.json"
        )

    def _inside(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def _encode(key: HourKey, rows: list[Row]) -> bytes:
    columns = COLUMNS[key.kind]
    names = [name for name, _ in columns]
    body: list[list[Any]] = []
    for row in rows:
        if list(row) != names:
            raise ValueError(f"{key.kind} rows have columns {list(row)}, expected {names}")
        body.append(
            [
                sorted(row[name].items())
                if kind == _HISTOGRAM and row[name] is not None
                else row[name]
                for name, kind in columns
            ]
        )
    return orjson.dumps(
        {
            "format": _FORMAT,
            "code": CODE,
            "kind": key.kind,
            "tenant": key.tenant,
            "hour": key.hour,
            "files": key.files,
            "columns": names,
            "rows": body,
        }
    )


def _decode(body: bytes, key: HourKey) -> list[Row] | None:
    """The rows of a file written for ``key``; None when it was written for another key
    (stale); ``Damaged`` when it is not a file this module writes."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Damaged(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("format"), int):
        raise Damaged("no format number")
    if doc["format"] != _FORMAT or doc.get("code") != CODE:
        return None  # written by another version: stale, replaced once computed again
    files = doc.get("files")
    if not isinstance(files, list) or not all(isinstance(f, list) and len(f) == 3 for f in files):
        raise Damaged("no list of files")
    stored = (doc.get("kind"), doc.get("tenant"), doc.get("hour"), [tuple(f) for f in files])
    if stored != (key.kind, key.tenant, key.hour, list(key.files)):
        return None  # the hour's files changed since: stale
    columns = COLUMNS[key.kind]
    if doc.get("columns") != [name for name, _ in columns]:
        raise Damaged(f"columns {doc.get('columns')!r} are not those of {key.kind}")
    rows = doc.get("rows")
    if not isinstance(rows, list):
        raise Damaged("no rows")
    return [_row(values, columns) for values in rows]


def _row(values: object, columns: tuple[tuple[str, str], ...]) -> Row:
    if not isinstance(values, list) or len(values) != len(columns):
        raise Damaged("a row of the wrong length")
    row: Row = {}
    for (name, kind), value in zip(columns, values, strict=True):
        if kind == _INT and type(value) is not int:
            raise Damaged(f"{name} is not an integer")
        if kind == _TEXT and value is not None and type(value) is not str:
            raise Damaged(f"{name} is not text")
        if kind == _HISTOGRAM and value is not None:
            if not isinstance(value, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(type(v) is int for v in p)
                for p in value
            ):
                raise Damaged(f"{name} is not a histogram")
            value = {bucket: count for bucket, count in value}
        row[name] = value
    return row
