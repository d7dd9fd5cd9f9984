"""Membership filters of a sealed span file: which trace ids, and which attribute
(key, value text) pairs of its attribute index, it may hold.

A trace by id used to open every span file of the tenant (footer and row-group Bloom
filters, ~0.4 ms each), and a search by attribute the index of every file of its window
(~2 ms each, also for a value no span has). Each file now has two Bloom filters kept in
memory: a lookup reads only the files that may hold what it asks for. A false positive
only costs that read; a file without a usable filter is read as before, so a filter can
never drop a span.

The filters are written beside the attribute index and the trace summaries, under the same
id (``attr-index/…/seg-N.<id>.flt``): by sealing from the rows in hand, and by maintenance
for files sealed before filters were kept (from the kept summaries, which list every trace
id of the file, and from the index). A rewrite (deletes) writes new ones under its new id;
retention and rewrites remove the old ones with the index.

The hash is DuckDB's ``hash()``, which DuckDB does not promise to keep across versions. So
the file records the hashes of fixed probes, and a filter is used only when the DuckDB of
this process hashes the probes alike (else the file is read as before, and maintenance
writes the filters again).
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from otterscope.durable import write_durably
from otterscope.store.embedded import filter_sql

# Version 2 adds a CRC-32 of the bits: a flipped bit would otherwise hide a file's spans.
MAGIC = b"otterscope-filters 2\n"
MAX_PROBES = 16
# The longest head ``current`` reads (a head holds a few numbers per service).
_HEAD_LIMIT = 1 << 20
# Bits per entry and probes: 8 and 5 give ~2% false positives (trace ids), 6 and 4 ~5%
# (index entries, many more per file: user ids, paths).
TRACE_BITS, TRACE_PROBES = 8, 5
ATTR_BITS, ATTR_PROBES = 6, 4
_PROBE_ID = b"otterscope-probe"
_PROBE_PAIR = ("otterscope", "probe")
_MASK = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Bloom:
    bits: bytes
    m: int  # bits
    k: int  # probes

    def may_hold(self, h: int) -> bool:
        """Whether an entry hashed to ``h`` may be in the set (False: certainly not)."""
        low, step = h & 0xFFFFFFFF, (h >> 32) | 1
        for i in range(self.k):
            p = (low + i * step) % self.m
            if not (self.bits[p >> 3] >> (p & 7)) & 1:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Filters:
    traces: Bloom
    attributes: Bloom | None  # None: the file has no attribute index
    # Per service name, the longest span duration (ns) of the file: a search for a service's
    # spans of at least some duration skips a file that has none (rewrites only drop rows,
    # so this stays an upper bound). None: not known.
    durations: dict[str, int] | None = None

    def may_meet(self, service: str, min_duration_ns: int | None) -> bool:
        """Whether the file may hold a span of ``service`` lasting ``min_duration_ns``."""
        if self.durations is None:
            return True
        longest = self.durations.get(service)
        return longest is not None and longest >= (min_duration_ns or 0)

    @property
    def nbytes(self) -> int:
        return len(self.traces.bits) + (len(self.attributes.bits) if self.attributes else 0)


def filter_path(index: Path) -> Path:
    """Where the filters written with the index at ``index`` live (same name and id)."""
    return index.with_suffix(".flt")


def _bloom(
    con: duckdb.DuckDBPyConnection,
    statement: str,
    n: int,
    per: int,
    k: int,
    keys: list[str] | None = None,
) -> Bloom:
    m = max(64, n * per)
    params: dict[str, object] = {"m": m, "k": k}
    if keys is not None:
        params["keys"] = keys
    found = con.sql(statement, params=params).to_arrow_table()
    bits = bytearray((m + 7) // 8)
    for b, v in zip(found.column("b").to_pylist(), found.column("v").to_pylist(), strict=True):
        bits[b] = v
    return Bloom(bytes(bits), m, k)


def durations_of(service: pa.ChunkedArray, duration: pa.ChunkedArray) -> dict[str, int]:
    """The longest ``duration`` per ``service`` name (rows of a span file)."""
    rows = pa.table({"s": pc.cast(service, pa.string()), "d": duration})
    longest = rows.group_by("s").aggregate([("d", "max")])
    return {
        str(name): int(top)
        for name, top in zip(
            longest.column("s").to_pylist(), longest.column("d_max").to_pylist(), strict=True
        )
        if name is not None and top is not None
    }


def build(
    trace_ids: pa.Array | pa.ChunkedArray,
    index: pa.Table | None,
    keys: list[str] | None,
    durations: dict[str, int],
) -> Filters:
    """The filters of a file holding the distinct ``trace_ids``, whose attribute index is
    ``index`` (columns k, v; ``keys``: its key names by number), if any, and whose longest
    span per service is ``durations``."""
    con = duckdb.connect(config={"threads": 1})
    try:
        con.register(filter_sql.FILTER_IDS, pa.table({"trace_id": trace_ids}))
        traces = _bloom(con, filter_sql.trace_bits(), len(trace_ids), TRACE_BITS, TRACE_PROBES)
        attributes = None
        if index is not None and keys is not None:
            con.register(filter_sql.FILTER_ATTRS, index.select(["k", "v"]))
            attributes = _bloom(
                con, filter_sql.attribute_bits(), index.num_rows, ATTR_BITS, ATTR_PROBES, keys
            )
    finally:
        con.close()
    return Filters(traces, attributes, durations)


@functools.cache
def probes() -> tuple[int, int]:
    """This process's DuckDB's hashes of the probes."""
    con = duckdb.connect(config={"threads": 1})
    try:
        (a,) = con.execute(filter_sql.trace_hashes(1), [_PROBE_ID]).fetchall()[0]
        (b,) = con.execute(filter_sql.attribute_hashes(1), list(_PROBE_PAIR)).fetchall()[0]
    finally:
        con.close()
    return int(a), int(b)


def write(filters: Filters, path: Path, ident: str) -> None:
    """Write ``filters`` durably to ``path``, naming the data file's id and the probes."""
    blooms = [filters.traces] + ([filters.attributes] if filters.attributes else [])
    head = {
        "id": ident,
        "probes": list(probes()),
        "blooms": [[b.m, b.k, len(b.bits)] for b in blooms],
        "crc": zlib.crc32(b"".join(b.bits for b in blooms)),
        "durations": filters.durations,
    }
    write_durably(path, MAGIC + orjson.dumps(head) + b"\n" + b"".join(b.bits for b in blooms))


def read(path: Path, ident: str) -> Filters | None:
    """The filters at ``path`` when they are whole, of the data file ``ident`` and hashed
    as this process hashes; None otherwise (the file is read as before)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(MAGIC):
        return None
    end = data.find(b"\n", len(MAGIC))
    try:
        head = orjson.loads(data[len(MAGIC) : end])
        if head["id"] != ident or tuple(head["probes"]) != probes():
            return None
        if zlib.crc32(data[end + 1 :]) != int(head["crc"]):
            return None
        durations = head["durations"]
        if not isinstance(durations, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in durations.values()
        ):
            return None
        blooms = []
        at = end + 1
        for m, k, size in head["blooms"]:
            bits = data[at : at + int(size)]
            if len(bits) != int(size) or int(size) * 8 < int(m) or int(m) <= 0:
                return None
            if not 1 <= int(k) <= MAX_PROBES:
                return None
            blooms.append(Bloom(bits, int(m), int(k)))
            at += int(size)
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None
    if at != len(data) or not 1 <= len(blooms) <= 2:
        return None
    return Filters(blooms[0], blooms[1] if len(blooms) == 2 else None, durations)


def current(path: Path, ident: str) -> bool:
    """Whether ``path`` holds filters of the data file ``ident`` hashed as this process
    hashes, judged by its head alone (maintenance asks this of every file on every pass,
    and filters past the cache's budget are not kept in memory)."""
    try:
        with open(path, "rb") as f:
            # Line by line: the head's length grows with the services of the file.
            magic, head = f.readline(len(MAGIC)), f.readline(_HEAD_LIMIT)
    except OSError:
        return False
    if magic != MAGIC or not head.endswith(b"\n"):
        return False
    try:
        found = orjson.loads(head)
        return bool(
            found["id"] == ident
            and tuple(found["probes"]) == probes()
            and "durations" in found  # written before it was kept: written again
        )
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return False


def trace_hashes(con: duckdb.DuckDBPyConnection, ids: list[bytes]) -> list[int]:
    """The hashes of ``ids`` as the filters hash them."""
    if not ids:
        return []
    with con.cursor() as cur:
        return [
            int(h) & _MASK
            for h in cur.execute(filter_sql.trace_hashes(len(ids)), ids).fetchall()[0]
        ]


def attribute_hashes(con: duckdb.DuckDBPyConnection, pairs: list[tuple[str, str]]) -> list[int]:
    """The hashes of (key, value text) ``pairs`` as the filters hash them."""
    if not pairs:
        return []
    flat = [x for pair in pairs for x in pair]
    with con.cursor() as cur:
        return [
            int(h) & _MASK
            for h in cur.execute(filter_sql.attribute_hashes(len(pairs)), flat).fetchall()[0]
        ]
