"""A hot segment: recent rows in memory, made durable by an append-only Arrow IPC log.

Each signal of a segment has its own log file, ``hot/seg-<N>.<signal>.arrows``: an Arrow IPC
stream, zstd-compressed, fdatasync'ed at every group commit. The same rows stay in memory
(resource and scope columns dictionary-encoded, which halves them) and are what queries read
until the segment is sealed into Parquet and its logs deleted.

A crash can leave a torn record at the end of a log; it was never acknowledged (the answer
waits for the fdatasync), so reading stops there and drops it. Reading also stops at the
first commit it cannot read; the store decides from ``LogRead`` and ``damage.ending``
whether that was a torn tail or damage to quarantine.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from otterscope.durable import fsync_path
from otterscope.otlp.schema import SCHEMAS
from otterscope.store.embedded.idempotency import CommittedKey, from_metadata, to_metadata

# Repeated on every row but with few distinct values per batch: dictionary-encoded in memory.
DICTIONARY_COLUMNS = (
    "tenant",
    "service_name",
    "resource_attributes",
    "resource_entity_refs",
    "resource_schema_url",
    "scope_name",
    "scope_version",
    "scope_attributes",
    "scope_schema_url",
)
_WRITE_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")


def compact(table: pa.Table) -> pa.Table:
    """A signal's table in hot form: the repeated columns dictionary-encoded, one chunk."""
    for name in DICTIONARY_COLUMNS:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pc.dictionary_encode(table.column(i)))
    return table.combine_chunks()


def is_hot(table: pa.Table) -> bool:
    """Whether ``table`` is in hot form already (``compact`` ran on it)."""
    return bool(pa.types.is_dictionary(table.schema.field("tenant").type))


def all_rows(segments: list[Segment], signal: str) -> pa.Table:
    """Every hot row of a signal across segments, zero-copy."""
    batches = [b for seg in segments for b in seg.batches[signal]]
    return pa.Table.from_batches(batches, schema=HOT_SCHEMAS[signal])


@dataclass
class _Log:
    file: io.FileIO
    writer: pa.ipc.RecordBatchStreamWriter


@dataclass
class Segment:
    number: int
    hot: Path
    batches: dict[str, list[pa.RecordBatch]] = field(
        default_factory=lambda: {signal: [] for signal in SCHEMAS}
    )
    rows: int = 0
    nbytes: int = 0  # memory the rows take
    keys: list[CommittedKey] = field(default_factory=list)  # idempotency keys committed here
    _logs: dict[str, _Log] = field(default_factory=dict)
    _marks: dict[str, int] = field(default_factory=dict)  # log sizes before this commit

    def path(self, signal: str) -> Path:
        return self.hot / f"seg-{self.number:06d}.{signal}.arrows"

    def append(self, signal: str, table: pa.Table, keys: Sequence[CommittedKey] = ()) -> None:
        """Write rows (in hot form: the log holds them as memory does, dictionaries and all)
        to the signal's log; ``sync`` makes them durable, ``rollback`` undoes everything
        appended since the last ``sync``. ``keys`` ride in the same record as the rows."""
        log = self._logs.get(signal)
        if log is None:
            path = self.path(signal)
            # Unbuffered: what was written is in the file, so a rollback can cut it off.
            f = open(path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the segment
            log = _Log(f, pa.ipc.new_stream(f, HOT_SCHEMAS[signal], options=_WRITE_OPTIONS))
            self._logs[signal] = log
            os.fsync(f.fileno())
            fsync_path(self.hot)
        self._marks.setdefault(signal, os.fstat(log.file.fileno()).st_size)
        if not keys:
            log.writer.write_table(table)
            return
        # One record (the table is one chunk in hot form) holds the rows and their keys.
        *head, last = table.to_batches()
        for batch in head:
            log.writer.write_batch(batch)
        log.writer.write_batch(last, custom_metadata=to_metadata(keys))

    def rollback(self) -> None:
        """Cut each log back to where it was before the current commit began."""
        for signal, size in self._marks.items():
            os.ftruncate(self._logs[signal].file.fileno(), size)
        self._marks.clear()

    def sync(self) -> None:
        for log in self._logs.values():
            os.fdatasync(log.file.fileno())
        self._marks.clear()

    def publish(self, signal: str, table: pa.Table, keys: Sequence[CommittedKey] = ()) -> None:
        """Make durable rows (in hot form) visible to queries."""
        self.keys.extend(keys)
        batches = table.to_batches()
        self.batches[signal].extend(batches)
        self.rows += table.num_rows
        self.nbytes += sum(b.nbytes for b in batches)

    def close_logs(self) -> None:
        """Close every log (each one even if another fails); raise the first failure."""
        logs, self._logs = list(self._logs.values()), {}
        first: OSError | None = None
        for log in logs:
            try:
                log.writer.close()
                os.fdatasync(log.file.fileno())
            except OSError as exc:
                first = first or exc
            finally:
                log.file.close()
        if first is not None:
            raise first

    def table(self, signal: str) -> pa.Table:
        return pa.Table.from_batches(self.batches[signal], schema=HOT_SCHEMAS[signal])

    @classmethod
    def load(cls, number: int, hot: Path) -> tuple[Segment, list[LogRead]]:
        """Read a segment's logs back after a restart, each up to its first unreadable
        commit; say for each log how far that was."""
        segment = cls(number, hot)
        reads = []
        for signal in SCHEMAS:
            path = segment.path(signal)
            if not path.exists():
                continue
            commits, read = read_log(path, signal)
            reads.append(read)
            for batch, keys in commits:
                segment.publish(signal, pa.Table.from_batches([batch]), keys)
        return segment, reads


@dataclass(frozen=True, slots=True)
class LogRead:
    """How far a log was read back: its commits (one record batch each) up to byte
    ``good``, of ``size``, and what stopped the reader there (None: the end)."""

    path: Path
    signal: str
    commits: int
    rows: int
    good: int
    size: int
    failure: str | None


def read_log(
    path: Path, signal: str
) -> tuple[list[tuple[pa.RecordBatch, list[CommittedKey]]], LogRead]:
    """The log's readable commits, each with the idempotency keys committed with it."""
    batches: list[tuple[pa.RecordBatch, list[CommittedKey]]] = []
    good = 0
    failure = None
    with pa.OSFile(str(path), "rb") as f:
        try:
            reader = pa.ipc.open_stream(f)
            good = f.tell()
            while True:
                batch, meta = reader.read_next_batch_with_custom_metadata()
                batches.append((batch, from_metadata(signal, meta)))
                # The reader takes one message at a time: this is where the commit ends.
                good = f.tell()
        except StopIteration:
            pass
        except (OSError, ValueError, pa.ArrowException) as exc:
            failure = str(exc)  # a torn tail or damage: the caller tells which
        size = f.size()
    rows = sum(b.num_rows for b, _ in batches)
    return batches, LogRead(path, signal, len(batches), rows, good, size, failure)


def _hot_schema(schema: pa.Schema) -> pa.Schema:
    for name in DICTIONARY_COLUMNS:
        i = schema.get_field_index(name)
        schema = schema.set(i, pa.field(name, pa.dictionary(pa.int32(), pa.string())))
    return schema


# What hot rows look like in memory: the signal's schema with the dictionary columns.
HOT_SCHEMAS = {signal: _hot_schema(schema) for signal, schema in SCHEMAS.items()}
