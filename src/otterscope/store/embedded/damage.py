"""Finding damaged files of the embedded store, and telling damage from a crash.

Sealed Parquet files are checked at start-up by their footer and schema (cheap: no data
page is read); a file whose pages turn out to be damaged is found by the query that reads
it, checked in full here, and quarantined by the store.

A hot log is an Arrow IPC stream with one dictionary-and-record-batch group per commit and
no checksum. A crash during a commit can leave that commit's messages cut short at the end
of the log: ``ending`` calls that *torn* (never acknowledged, dropped). Anything a crash
cannot leave is *damaged*: a message that is complete but unreadable, bytes that are not a
message, data after the end-of-stream marker. A log cut short inside a commit looks like a
torn tail to the format; ``settle_segment`` tells the two apart when it can, by whether the
segment had been closed. A log cut exactly between two commits reads as whole.
"""

from __future__ import annotations

import functools
import logging
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from otterscope.errors import StoreError
from otterscope.otlp.schema import SCHEMAS
from otterscope.quarantine import Quarantine
from otterscope.store.embedded.layout import Layout, SealedFile, hour_key
from otterscope.store.embedded.segment import LogRead

log = logging.getLogger("otterscope.store")
_CONTINUATION = 0xFFFFFFFF
# Read in slices when a whole file is checked: bounded memory whatever its size.
_CHECK_BATCH_ROWS = 65_536


def parquet_problem(path: Path, signal: str, pages: bool = False) -> str | None:
    """Why ``path`` cannot serve as a sealed file of ``signal`` (None: it can). The footer
    and schema always; with ``pages``, every data page too.

    ``StoreError`` when the file cannot be read for a reason outside it (no file
    descriptors left, permissions, an I/O error): a healthy file must never be quarantined
    because the process or the machine had a bad moment.
    """
    _readable(path)
    try:
        file = pq.ParquetFile(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        _not_environmental(path, exc)
        return f"not a readable Parquet file ({exc})"
    try:
        names = set(file.schema_arrow.names)
        missing = [f.name for f in SCHEMAS[signal] if f.name not in names]
        if missing:
            return f"not a {signal} file of otterscope (no column {', '.join(missing[:3])})"
        if pages:
            for _ in file.iter_batches(batch_size=_CHECK_BATCH_ROWS):
                pass
    except (OSError, ValueError, pa.ArrowException) as exc:
        _not_environmental(path, exc)
        return f"unreadable Parquet data ({exc})"
    finally:
        file.close()
    return None


# What pyarrow says when the trouble is the process or the machine, not the file's bytes.
_ENVIRONMENTAL = (
    "Too many open files",
    "Permission denied",
    "Input/output error",
    "Cannot allocate memory",
    "No such file or directory",
)


def _readable(path: Path) -> None:
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _not_environmental(path: Path, exc: BaseException) -> None:
    text = str(exc)
    if any(reason in text for reason in _ENVIRONMENTAL):
        raise StoreError(f"cannot read {path}: {text}") from exc


def parquet_rows(path: Path) -> str:
    """What a damaged file held, as far as its footer still says."""
    try:
        return f"{pq.read_metadata(path).num_rows} rows"
    except (OSError, ValueError, pa.ArrowException):
        return "its rows (count unknown: the footer is unreadable)"


@dataclass(frozen=True, slots=True)
class LogEnding:
    """How a hot log ends after its last readable commit."""

    kind: str  # "clean" (nothing left over), "torn" or "damaged"
    detail: str
    closed: bool  # the log ends with the end-of-stream marker its writer's close() adds


def ending(path: Path, good: int, failure: str | None) -> LogEnding:
    """Classify what follows byte ``good`` (the end of the last commit read back) of the log
    at ``path``; ``failure`` is what stopped the reader there (None: it saw the end)."""
    with open(path, "rb") as f:
        f.seek(good)
        tail = f.read()
    if not tail:
        return LogEnding("clean", "", False)
    at = 0
    batches = 0  # complete record batches after ``good``: the reader should have read them
    cut = ""
    while at < len(tail):
        if len(tail) - at < 8:
            cut = "a message header"
            break
        marker, length = struct.unpack_from("<Ii", tail, at)
        if marker != _CONTINUATION:
            return LogEnding("damaged", f"no message starts at byte {good + at}", False)
        if length == 0:
            if at or len(tail) != 8:
                return LogEnding("damaged", f"data around the end marker at byte {good + at}", True)
            return LogEnding("clean", "", True)
        if length < 0 or length % 8:
            return LogEnding("damaged", f"an impossible message length at byte {good + at}", False)
        if at + 8 + length > len(tail):
            cut = "a message's metadata"
            break
        body = _body_length(tail[at + 8 : at + 8 + length])
        if body is None:
            return LogEnding("damaged", f"unreadable message metadata at byte {good + at}", False)
        end = at + 8 + length + body
        if end > len(tail):
            cut = "a message's body"
            break
        try:
            message = pa.ipc.read_message(pa.py_buffer(tail[at:end]))
        except (OSError, ValueError, pa.ArrowException) as exc:
            return LogEnding("damaged", f"an unreadable message at byte {good + at} ({exc})", False)
        batches += message.type == "record batch"
        at = end
    if batches or (failure is not None and not cut):
        # A whole commit is there, yet the reader stopped before it.
        why = f" ({failure})" if failure is not None else ""
        return LogEnding("damaged", f"a complete commit at byte {good} is unreadable{why}", False)
    if cut:
        later = _whole_message_after(tail, at + 1)
        if later is not None:
            # A torn message is the last thing in its log: this one's length is garbage.
            return LogEnding(
                "damaged",
                f"a message at byte {good + at} claims more bytes than follow it, "
                f"yet a whole message starts at byte {good + later}",
                False,
            )
        return LogEnding("torn", f"{cut} is cut short at the end", False)
    if at:
        return LogEnding("torn", "a commit ends before its record batch", False)
    return LogEnding("clean", "", False)


def _whole_message_after(tail: bytes, start: int) -> int | None:
    """Where the first complete, readable message at or after ``start`` begins."""
    at = tail.find(b"\xff\xff\xff\xff", start)
    while at >= 0:
        if len(tail) - at >= 8:
            length = struct.unpack_from("<i", tail, at + 4)[0]
            if length > 0 and length % 8 == 0 and at + 8 + length <= len(tail):
                body = _body_length(tail[at + 8 : at + 8 + length])
                if body is not None and at + 8 + length + body <= len(tail):
                    try:
                        pa.ipc.read_message(pa.py_buffer(tail[at : at + 8 + length + body]))
                    except (OSError, ValueError, pa.ArrowException):
                        pass
                    else:
                        return at
        at = tail.find(b"\xff\xff\xff\xff", at + 1)
    return None


def _body_length(meta: bytes) -> int | None:
    """The ``bodyLength`` of an IPC message from its flatbuffer (field 3 of ``Message``);
    None when the flatbuffer does not hold together."""
    try:
        root = struct.unpack_from("<I", meta, 0)[0]
        vtable = root - struct.unpack_from("<i", meta, root)[0]
        vtable_size = struct.unpack_from("<H", meta, vtable)[0]
        if vtable_size <= 10:
            return 0
        offset = struct.unpack_from("<H", meta, vtable + 10)[0]
        if not offset:
            return 0
        value = int(struct.unpack_from("<q", meta, root + offset)[0])
    except struct.error:
        return None
    return value if value >= 0 else None


def settle_segment(reads: list[LogRead], newest: bool, quarantine: Quarantine) -> None:
    """Report what reading a segment's logs back left out, keep damaged logs in the
    quarantine, and cut each log back to its readable commits (so they stay durable until
    the segment is sealed, and the next start reads them cleanly).

    A torn tail is what a crash during a commit leaves, in the segment being written then:
    the newest one, whose logs were never closed. In a closed segment (an older one, or one
    whose other logs end with the end marker) the same cut removed acknowledged commits."""
    endings = [(read, ending(read.path, read.good, read.failure)) for read in reads]
    closed = not newest or any(end.closed for _, end in endings)
    for read, end in endings:
        if end.kind == "clean":
            continue
        dropped = read.size - read.good
        if end.kind == "torn" and not closed:
            log.warning(
                "hot log %s: %s; dropped its last %d bytes, the commit being written when the "
                "process stopped (never acknowledged); %d commits (%d rows) were read back. A "
                "log cut short by other means looks the same: if this file was truncated, the "
                "commits cut off are lost",
                read.path.name,
                end.detail,
                dropped,
                read.commits,
                read.rows,
            )
        else:
            why = end.detail
            if end.kind == "torn":
                why += " of a log that had been closed, so acknowledged commits were cut off"
            quarantine.copy(
                read.path,
                "hot_log",
                why,
                f"every {read.signal} commit after the first {read.commits} ({read.rows} rows, "
                f"kept): the last {dropped} of the {read.size} bytes found could not be read",
            )
        with open(read.path, "r+b") as f:
            f.truncate(read.good)
            os.fsync(f.fileno())


def checked_files(layout: Layout, quarantine: Quarantine) -> list[SealedFile]:
    """The sealed files found at start-up, after taking out the ones that cannot be read
    (footer or schema) and any file of the Parquet tree that is not a sealed file."""
    for path in layout.stray_files():
        if path.name.endswith(".parquet.tmp"):
            # A rewrite that a crash interrupted: the original is still in place.
            path.unlink()
            continue
        quarantine.move(
            path,
            "stray",
            "not a sealed file of this data dir (its name or folder does not fit the layout)",
            "nothing: otterscope never read it",
        )
    good = []
    for f in layout.sealed_files():
        problem = parquet_problem(f.path, f.signal)
        if problem is None:
            good.append(f)
        else:
            quarantine_file(f, problem, quarantine)
    return good


def quarantine_file(f: SealedFile, problem: str, quarantine: Quarantine) -> None:
    quarantine.move(
        f.path,
        "parquet",
        problem,
        f"{parquet_rows(f.path)} of {f.signal}, tenant {f.tenant}, hour {hour_key(f.hour_start_ns)}",
    )


class DamagedFiles(StoreError):
    """A read failed on sealed files it names: maybe damaged, to be checked."""

    def __init__(self, files: Sequence[SealedFile], message: str) -> None:
        super().__init__(message)
        self.files = tuple(files)


def raise_if_named(
    files: Sequence[SealedFile], exc: Exception, doing: str, statement: str = ""
) -> None:
    """Raise ``DamagedFiles`` when a failed read may be the fault of files of ``files``: the
    ones its error names, else (for the errors DuckDB gives on undecodable Parquet metadata,
    which name no file) the ones its ``statement`` reads."""
    text = str(exc)
    named = [f for f in files if str(f.path) in text]
    if not named and statement and _maybe_damage(exc):
        named = [f for f in files if str(f.path) in statement]
    if named:
        raise DamagedFiles(named, f"{doing} failed: {exc}") from exc


def _maybe_damage(exc: Exception) -> bool:
    # A Thrift decoding error of a page header comes as the bare base class.
    return type(exc) is duckdb.Error or isinstance(
        exc, duckdb.IOException | duckdb.InvalidInputException
    )


class _Heals(Protocol):
    def _quarantine_damaged(self, named: Sequence[SealedFile]) -> bool: ...


S = TypeVar("S", bound=_Heals)
P = ParamSpec("P")
R = TypeVar("R")
# Each retry has taken at least one file out of use, so this bounds only a pathological run.
_RETRIES = 8


def retried_past_damage(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Run a read; when it fails on a sealed file that turns out to be damaged, quarantine
    the file and run the read again (without it), instead of failing every later read too.
    Only for methods that take the sources lock themselves: quarantining takes its write
    side."""

    @functools.wraps(method)
    def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        for _ in range(_RETRIES):
            try:
                return method(self, *args, **kwargs)
            except DamagedFiles as exc:
                if not self._quarantine_damaged(exc.files):
                    raise StoreError(str(exc)) from None
        return method(self, *args, **kwargs)

    return run
