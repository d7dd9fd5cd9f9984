"""The attribute index of a sealed span file: which rows carry a rare attribute value.

Per file, for every top-level span attribute key and every text a value of it has (the
text ``json_extract_string`` gives, the very test a search applies), either the file rows
that carry it (at most ``max(MIN_RARE, rows // RARE_DIVISOR)`` of them) or a mark that it
is frequent there. A key that is not listed is carried by no span of the file. So for a
condition ``key = value`` a file is answered exactly: rows listed, nothing (not there), or
"scan this file" (frequent). Rows are file row numbers (DuckDB's ``file_row_number``), in
the order sealing wrote them.

The index is a small Parquet file of its own, ``<data-dir>/attr-index/<the data file's
path under parquet/>.idx``, written (and fsync'ed) by sealing before its data file is put
in place. The data file's footer carries a random id that the index repeats: an index is
used only when the ids agree, so one left over from a crash, a rewrite or a deleted file is
never applied to other rows, and a file without one (sealed before the index existed, or
whose index is missing or unreadable) is scanned as before. Kept out of the data file's
footer on purpose: DuckDB reads every footer of a query's files.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from otterscope.otlp import _fastotlp
from otterscope.store.embedded import filters, sidecar, sql, tracesummary

ID_META = b"otterscope.attr_index_id"
_KEYS_META = b"otterscope.keys"
_FIRST_META = b"otterscope.row_group_first"
RARE_DIVISOR = 1000
MIN_RARE = 64
# Files whose spans use more keys than this get no index: the extraction reads every key of
# every row, so its cost grows with the number of keys.
MAX_KEYS = 256
_INDEX_ROW_GROUP = 4096
# Files whose index is remembered (keys, row group bounds: a few KiB each).
CACHE_FILES = 4096
# Bytes of membership filters remembered (filters.py: ~0.3 bytes per span of the bench);
# past it the least recently used files' are read again when next needed.
FILTER_BYTES = 64 * 1024 * 1024


def build(attributes: pa.ChunkedArray | pa.Array, order: pa.Array) -> pa.Table | None:
    """The index of span attributes written in ``order`` (sort indices), sorted by
    (key number, value text); None when the file should have none."""
    n = len(attributes)
    if n == 0:
        return None
    rows = pc.cast(pc.sort_indices(order), pa.uint32())  # original row -> file row
    limit = max(MIN_RARE, n // RARE_DIVISOR)
    found = _pairs(attributes)
    con = duckdb.connect(config={"threads": 1})
    try:
        if found is None:
            # JSON the one-pass reader does not follow: DuckDB reads every key of every row.
            con.register("attrs", pa.table({"a": pc.cast(attributes, pa.string()), "r": rows}))
            keys = [str(k) for (k,) in con.execute(sql.attribute_index_keys()).fetchall()]
            if len(keys) > MAX_KEYS:
                return None
            paths = [sql.json_path(k) for k in keys]
            index = con.sql(sql.attribute_index(), params=[paths, limit]).to_arrow_table()
        else:
            keys, pairs = found
            con.register("pairs", pairs.set_column(0, "r", pc.take(rows, pairs.column("r"))))
            index = con.sql(sql.attribute_index_of_pairs(), params=[limit]).to_arrow_table()
    finally:
        con.close()
    return index.replace_schema_metadata({_KEYS_META: orjson.dumps(keys)})


def _pairs(attributes: pa.ChunkedArray | pa.Array) -> tuple[list[str], pa.Table] | None:
    """(the keys in order, a table of (r: original row, k: key number, v: value text) for
    every top-level attribute of every row), read in one pass by the C extension; None when
    it cannot follow the JSON or the keys are more than MAX_KEYS (see _fastotlp_index.c).
    Reading the JSON once for every key cost 3.1 µs per span, this 0.4."""
    chunks = attributes.chunks if isinstance(attributes, pa.ChunkedArray) else [attributes]
    parts = []
    base = 0
    for chunk in chunks:
        if not pa.types.is_string(chunk.type):
            return None
        valid, offsets, data = chunk.buffers()
        parts.append((valid, offsets, data or pa.py_buffer(b""), chunk.offset, len(chunk), base))
        base += len(chunk)
    try:
        found = _fastotlp.attribute_pairs(parts, MAX_KEYS)
    except (ValueError, MemoryError, UnicodeDecodeError):
        # What the one-pass reader refuses, DuckDB's extraction still indexes exactly.
        return None
    if found is None:
        return None
    names, r, k, voff, vdata = found
    m = len(r) // 4
    # Key numbers follow the keys' sorted order, as the index's readers expect.
    keys = sorted(names)
    rank = pa.array([keys.index(name) for name in names] or [0], pa.uint16())
    values = pa.Array.from_buffers(
        pa.large_string(), m, [None, pa.py_buffer(voff), pa.py_buffer(vdata)]
    )
    return keys, pa.table(
        {
            "r": pa.Array.from_buffers(pa.uint32(), m, [None, pa.py_buffer(r)]),
            "k": pc.take(rank, pa.Array.from_buffers(pa.uint16(), m, [None, pa.py_buffer(k)])),
            "v": values,
        }
    )


def keys_of(index: pa.Table) -> list[str]:
    """The key names of ``index`` (as ``build`` made it), by key number."""
    return [str(k) for k in orjson.loads((index.schema.metadata or {})[_KEYS_META])]


def index_path(root: Path, data_file: Path, ident: str) -> Path:
    """Where the index ``ident`` of ``data_file`` (under ``root``/parquet) lives. The id is
    in the name, so a rewrite's new index never replaces one a query may still read."""
    rel = data_file.relative_to(root / "parquet")
    return root / "attr-index" / rel.parent / f"{rel.stem}.{ident}.idx"


def new_id() -> str:
    return os.urandom(12).hex()


def write(index: pa.Table, path: Path, ident: str) -> None:
    """Write ``index`` durably to ``path``."""
    starts = list(range(0, index.num_rows, _INDEX_ROW_GROUP))
    first = [[index.column("k")[i].as_py(), index.column("v")[i].as_py()] for i in starts]
    meta = {
        **(index.schema.metadata or {}),
        ID_META: ident.encode(),
        _FIRST_META: orjson.dumps(first),
    }
    # Sorted values share prefixes and a value's rows ascend: delta encodings store them in
    # 4.9 bytes per span instead of 7.9 (bench/storage.py's spans).
    sidecar.write(
        index,
        path,
        meta,
        _INDEX_ROW_GROUP,
        use_dictionary=False,
        column_encoding={
            "k": "PLAIN",
            "v": "DELTA_BYTE_ARRAY",
            "rows.list.element": "DELTA_BINARY_PACKED",
        },
    )


def summary_path(index: Path) -> Path:
    """Where the trace summaries written with the index at ``index`` live
    (tracesummary.py): the same name and id, another suffix."""
    return index.with_suffix(".sum")


@dataclass(frozen=True, slots=True)
class KeptSummaries:
    """A span file's kept trace summaries: where, and the largest ingest sequence number of
    the file's rows (a query pinned below it cannot use them)."""

    path: Path
    max_seq: int


@dataclass(frozen=True, slots=True)
class _Sidecars:
    index: FileIndex | None
    summaries: KeptSummaries | None
    max_seq: int | None  # the data file's largest ingest number, from its statistics
    ident: str | None  # the id its footer names (None: sealed before any index)
    filters: filters.Filters | None
    rows: int  # the data file's rows
    starts: tuple[int, int] | None  # its spans' first and last start, from its statistics

    @property
    def nbytes(self) -> int:
        return self.filters.nbytes if self.filters else 0


@dataclass(frozen=True, slots=True)
class FileIndex:
    path: Path
    keys: dict[str, int]
    first: list[tuple[int, str]]  # (key number, value) of each row group's first entry
    meta: pq.FileMetaData

    def rows(self, key: str, value: str) -> pa.Array | None:
        """File rows whose span attribute ``key`` has the text ``value``; None when the
        value is frequent in the file (scan it)."""
        none = pa.array([], pa.uint32())
        k = self.keys.get(key)
        if k is None:
            return none
        group = bisect.bisect_right(self.first, (k, value)) - 1
        if group < 0:
            return none
        found = pq.ParquetFile(self.path, metadata=self.meta).read_row_group(group)
        at = pc.and_(pc.equal(found.column("k"), k), pc.equal(found.column("v"), value))
        hit = found.column("rows").filter(at)
        if len(hit) == 0:
            return none
        if hit.null_count:
            return None
        return pc.list_flatten(hit).combine_chunks()


class IndexCache:
    """What is known of each sealed file, read once per file: its largest ingest number,
    and for span files what is kept beside them: the attribute index (its keys and row
    group bounds) and where the trace summaries are."""

    def __init__(
        self, root: Path, limit: int = CACHE_FILES, filter_bytes: int = FILTER_BYTES
    ) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._limit = limit
        self._filter_limit = filter_bytes
        self._filter_bytes = 0
        self._items: OrderedDict[str, _Sidecars] = OrderedDict()

    def get(self, data_file: Path) -> FileIndex | None:
        """The index of ``data_file``, or None when it has no usable one."""
        return self._sidecars(data_file).index

    def summaries(self, data_file: Path) -> KeptSummaries | None:
        """The kept trace summaries of ``data_file``, or None when it has none usable."""
        return self._sidecars(data_file).summaries

    def filters(self, data_file: Path) -> filters.Filters | None:
        """The membership filters of ``data_file``, or None when it has none usable."""
        return self._sidecars(data_file).filters

    def rows(self, data_file: Path) -> int:
        """The number of rows of ``data_file``."""
        return self._sidecars(data_file).rows

    def starts(self, data_file: Path) -> tuple[int, int] | None:
        """The first and last span start of ``data_file`` (None: its statistics do not
        say, or it holds no spans)."""
        return self._sidecars(data_file).starts

    def filter_bytes(self) -> int:
        """Bytes of membership filters held in memory."""
        with self._lock:
            return self._filter_bytes

    def drop(self, data_file: Path) -> None:
        """Read ``data_file``'s sidecars again next time (one was written after it)."""
        with self._lock:
            for name in [n for n in self._items if n.split("\0", 1)[0] == str(data_file)]:
                self._filter_bytes -= self._items.pop(name).nbytes

    def _sidecars(self, data_file: Path) -> _Sidecars:
        # A rewrite (deletes) replaces a file under the same name with other row numbers.
        st = data_file.stat()
        name = f"{data_file}\0{st.st_ino}\0{st.st_mtime_ns}\0{st.st_size}"
        with self._lock:
            if name in self._items:
                self._items.move_to_end(name)
                return self._items[name]
        found = self._read(data_file)
        with self._lock:
            if name not in self._items:
                self._items[name] = found
                self._filter_bytes += found.nbytes
            while len(self._items) > 1 and (
                len(self._items) > self._limit or self._filter_bytes > self._filter_limit
            ):
                self._filter_bytes -= self._items.popitem(last=False)[1].nbytes
        return found

    def ident(self, data_file: Path) -> str | None:
        """The id ``data_file``'s footer names for what is kept beside it, if any."""
        return self._sidecars(data_file).ident

    def max_seq(self, data_file: Path) -> int | None:
        """The largest ingest number in ``data_file`` (any signal), or None when its
        statistics do not say."""
        return self._sidecars(data_file).max_seq

    def _read(self, data_file: Path) -> _Sidecars:
        meta = pq.read_metadata(data_file)
        top = _max_seq(meta)
        ident = (meta.metadata or {}).get(ID_META)
        if ident is None:
            return _Sidecars(None, None, top, None, None, meta.num_rows, _starts(meta))
        path = index_path(self._root, data_file, ident.decode())
        return _Sidecars(
            _read_index(path, ident),
            _read_summaries(summary_path(path), ident),
            top,
            ident.decode(),
            filters.read(filters.filter_path(path), ident.decode()),
            meta.num_rows,
            _starts(meta),
        )

    def forget(self, data_file: Path, keep: str | None = None) -> None:
        """Remove what is kept beside ``data_file`` but under the id ``keep`` (everything
        when the file is gone; older ones once a rewrite or a repeated seal has put the
        file in place)."""
        mine = index_path(self._root, data_file, "*")
        stem = mine.name.split(".", 1)[0]
        for path in mine.parent.glob(stem + ".*"):
            if keep is None or path.name.split(".")[1] != keep:
                path.unlink(missing_ok=True)


def _max_seq(meta: pq.FileMetaData) -> int | None:
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    if "ingest_seq" not in names:
        return None
    at = names.index("ingest_seq")
    top = 0
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(at).statistics
        if stats is None or not stats.has_min_max:
            return None
        top = max(top, int(stats.max))
    return top


def _starts(meta: pq.FileMetaData) -> tuple[int, int] | None:
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    if "start_time_unix_nano" not in names or meta.num_row_groups == 0:
        return None
    at = names.index("start_time_unix_nano")
    lows, highs = [], []
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(at).statistics
        if stats is None or not stats.has_min_max:
            return None
        lows.append(int(stats.min))
        highs.append(int(stats.max))
    return min(lows), max(highs)


def _read_summaries(path: Path, ident: bytes) -> KeptSummaries | None:
    try:
        kv = pq.read_metadata(path).metadata or {}
        if kv.get(ID_META) != ident:
            return None
        return KeptSummaries(path, int(kv[tracesummary.MAX_SEQ_META]))
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return None  # none, or not a whole one: the traces are summarised from their spans


def _read_index(path: Path, ident: bytes) -> FileIndex | None:
    try:
        meta = pq.read_metadata(path)
        kv = meta.metadata or {}
        if kv.get(ID_META) != ident:
            return None
        keys = orjson.loads(kv[_KEYS_META])
        first = [(int(k), str(v)) for k, v in orjson.loads(kv[_FIRST_META])]
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return None  # no index, or not a whole one: the file is scanned
    return FileIndex(path, {str(k): i for i, k in enumerate(keys)}, first, meta)
