"""The attribute index of a sealed span file: which rows carry a rare attribute value.

Written by sealing into the Parquet file's own footer (key-value metadata), so it lives and
dies with its file: retention, quarantine and rewrites need no extra step, and a file
sealed before the index existed simply has none (its searches scan, as before).

Per file, for every top-level span attribute key and every text a value of it has (the
text ``json_extract_string`` gives, the very test a search applies), either the file rows
that carry it (at most ``max(MIN_RARE, rows // RARE_DIVISOR)`` of them) or a mark that it
is frequent there. A key that is not listed is carried by no span of the file. So for a
condition ``key = value`` a file is answered exactly: rows listed, nothing (not there), or
"scan this file" (frequent). Rows are file row numbers (DuckDB's ``file_row_number``), in
the order sealing wrote them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from otterscope.store.embedded import sql

INDEX_META = b"otterscope.attr_index.v1"
KEYS_META = b"otterscope.attr_index_keys.v1"
RARE_DIVISOR = 1000
MIN_RARE = 64
# Files whose spans use more keys than this get no index: the extraction reads every key of
# every row, so its cost grows with the number of keys.
MAX_KEYS = 256
_INDEX_ROW_GROUP = 4096
# Parsed indexes kept in memory (bytes of the footer entries), newest use last.
CACHE_BYTES = 64 << 20


def build(attributes: pa.ChunkedArray | pa.Array, order: pa.Array) -> dict[bytes, bytes]:
    """The index's footer entries for span attributes written in ``order`` (sort indices):
    empty when the file should have none."""
    n = len(attributes)
    if n == 0:
        return {}
    rows = pc.cast(pc.sort_indices(order), pa.uint32())  # original row -> file row
    text = pc.cast(attributes, pa.string())
    con = duckdb.connect(config={"threads": 1})
    try:
        con.register("attrs", pa.table({"a": text, "r": rows}))
        keys = [str(k) for (k,) in con.execute(sql.attribute_index_keys()).fetchall()]
        if len(keys) > MAX_KEYS:
            return {}
        paths = [sql.json_path(k) for k in keys]
        limit = max(MIN_RARE, n // RARE_DIVISOR)
        index = con.sql(sql.attribute_index(), params=[paths, limit]).to_arrow_table()
    finally:
        con.close()
    sink = pa.BufferOutputStream()
    pq.write_table(
        index,
        sink,
        compression="zstd",
        compression_level=3,
        row_group_size=_INDEX_ROW_GROUP,
        use_dictionary=False,
    )
    return {KEYS_META: orjson.dumps(keys), INDEX_META: sink.getvalue().to_pybytes()}


@dataclass(frozen=True, slots=True)
class FileIndex:
    keys: dict[str, int]
    blob: bytes

    def rows(self, key: str, value: str) -> pa.Array | None:
        """File rows whose span attribute ``key`` has the text ``value``; None when the
        value is frequent in the file (scan it)."""
        k = self.keys.get(key)
        if k is None:
            return pa.array([], pa.uint32())
        found = pq.read_table(
            pa.BufferReader(self.blob),
            filters=[("k", "=", k), ("v", "=", value)],
            columns=["rows"],
        ).column(0)
        if len(found) == 0:
            return pa.array([], pa.uint32())
        if found.null_count:
            return None
        return pc.list_flatten(found).combine_chunks()


class IndexCache:
    """Footer indexes of sealed files, read once and kept up to ``CACHE_BYTES``."""

    def __init__(self, limit: int = CACHE_BYTES) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._bytes = 0
        self._items: OrderedDict[str, FileIndex | None] = OrderedDict()

    def get(self, path: Path) -> FileIndex | None:
        # A rewrite (deletes) replaces a file under the same name with other row numbers.
        st = path.stat()
        name = f"{path}\0{st.st_mtime_ns}\0{st.st_size}"
        with self._lock:
            if name in self._items:
                self._items.move_to_end(name)
                return self._items[name]
        meta = pq.read_metadata(path).metadata or {}
        blob, keys = meta.get(INDEX_META), meta.get(KEYS_META)
        found = None
        if blob is not None and keys is not None:
            found = FileIndex({k: i for i, k in enumerate(orjson.loads(keys))}, blob)
        with self._lock:
            if name not in self._items:
                self._items[name] = found
                self._bytes += len(blob or b"")
            while self._bytes > self._limit and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old.blob) if old is not None else 0
        return found
