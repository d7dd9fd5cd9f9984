"""Deleted traces and spans (tombstones), until the rows themselves are gone.

A delete cannot touch the hot segments' logs nor rewrite Parquet files while queries run,
so it is recorded first: one durable line per delete in ``deletes.jsonl`` naming the
tenant, trace, optionally the span, and the ingest sequence number the delete saw. Rows
numbered up to it are hidden from every query from then on (spans sent again later are new
rows and show). Sealing leaves tombstoned rows out of the Parquet it writes; maintenance
rewrites sealed files that hold them, and drops a tombstone once no hot segment and no file
can hold its rows any more.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from otterscope.durable import write_durably
from otterscope.quarantine import Quarantine

FILE = "deletes.jsonl"


@dataclass(frozen=True, slots=True)
class Tombstone:
    tenant: str
    trace_id: bytes
    span_id: bytes | None  # None: the whole trace
    seq: int  # rows numbered up to this are deleted


def _line(t: Tombstone) -> bytes:
    doc = {
        "tenant": t.tenant,
        "traceId": t.trace_id.hex(),
        "spanId": t.span_id.hex() if t.span_id is not None else None,
        "seq": t.seq,
    }
    return orjson.dumps(doc) + b"\n"


def _parse(line: bytes) -> Tombstone:
    doc = orjson.loads(line)
    span = doc.get("spanId")
    return Tombstone(
        doc["tenant"],
        bytes.fromhex(doc["traceId"]),
        bytes.fromhex(span) if span else None,
        doc["seq"],
    )


class Tombstones:
    def __init__(self, data_dir: Path, quarantine: Quarantine | None = None) -> None:
        self._path = data_dir / FILE
        self._lock = threading.Lock()
        self._items: tuple[Tombstone, ...] = ()
        if self._path.exists():
            lines = self._path.read_bytes().splitlines()
            parsed = []
            damaged = []
            for i, line in enumerate(lines):
                try:
                    parsed.append(_parse(line))
                except (orjson.JSONDecodeError, KeyError, ValueError, TypeError, AttributeError):
                    # A torn last line (crash while appending) was never acknowledged.
                    if i != len(lines) - 1:
                        damaged.append(i + 1)
            if damaged:
                (quarantine or Quarantine(data_dir)).copy(
                    self._path,
                    "deletes",
                    f"unreadable lines {', '.join(map(str, damaged[:10]))} of {len(lines)}",
                    f"{len(damaged)} deletes: the traces or spans they deleted may show again "
                    "(delete them again)",
                )
            self._items = tuple(parsed)
            if len(parsed) != len(lines):
                # Cut back to the readable lines: the next append must not join a torn one.
                self._rewrite(self._items)

    @property
    def items(self) -> tuple[Tombstone, ...]:
        return self._items

    def add(self, tombstone: Tombstone) -> None:
        """Record a delete durably; it applies to queries once this returns."""
        with self._lock:
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, _line(tombstone))
                os.fsync(fd)
            finally:
                os.close(fd)
            self._items = (*self._items, tombstone)

    def drop(self, done: Iterable[Tombstone]) -> None:
        """Forget tombstones whose rows are gone everywhere."""
        gone = set(done)
        with self._lock:
            keep = tuple(t for t in self._items if t not in gone)
            if len(keep) == len(self._items):
                return
            self._rewrite(keep)
            self._items = keep

    def _rewrite(self, keep: tuple[Tombstone, ...]) -> None:
        write_durably(self._path, b"".join(_line(t) for t in keep))

    def tables(self, tenant: str | None) -> tuple[pa.Table, pa.Table]:
        """(whole traces, single spans) deleted, as Arrow tables for the query engine."""
        items = [t for t in self._items if tenant is None or t.tenant == tenant]
        traces = [t for t in items if t.span_id is None]
        spans = [t for t in items if t.span_id is not None]
        return (
            pa.table(
                {
                    "tenant": pa.array([t.tenant for t in traces], pa.string()),
                    "trace_id": pa.array([t.trace_id for t in traces], pa.binary()),
                    "seq": pa.array([t.seq for t in traces], pa.int64()),
                }
            ),
            pa.table(
                {
                    "tenant": pa.array([t.tenant for t in spans], pa.string()),
                    "trace_id": pa.array([t.trace_id for t in spans], pa.binary()),
                    "span_id": pa.array([t.span_id for t in spans], pa.binary()),
                    "seq": pa.array([t.seq for t in spans], pa.int64()),
                }
            ),
        )


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    # Hot rows keep repeating strings dictionary-encoded; compare on their values.
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def keep_mask(table: pa.Table, tombstones: Iterable[Tombstone]) -> pa.Array | None:
    """Which rows of a span table survive the tombstones (None: all of them)."""
    drop: pa.Array | None = None
    tenants = _plain(table.column("tenant"))
    for t in tombstones:
        hit = pc.and_(
            pc.and_(
                pc.equal(tenants, t.tenant),
                pc.equal(table.column("trace_id"), pa.scalar(t.trace_id, pa.binary())),
            ),
            pc.less_equal(table.column("ingest_seq"), t.seq),
        )
        if t.span_id is not None:
            hit = pc.and_(hit, pc.equal(table.column("span_id"), pa.scalar(t.span_id, pa.binary())))
        drop = hit if drop is None else pc.or_(drop, hit)
    if drop is None:
        return None
    return pc.invert(pc.fill_null(drop, False))
