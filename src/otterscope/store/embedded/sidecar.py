"""Writing a small Parquet file that sealing keeps beside a span file (its attribute index,
its trace summaries): whole or not at all, and durable before the data file names it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from otterscope.durable import fsync_path


def write(
    table: pa.Table, path: Path, meta: dict[bytes, bytes], row_group: int, **options: Any
) -> None:
    """Write ``table`` with the key-value metadata ``meta`` to ``path`` durably: to a
    temporary name, fsync'ed, then renamed over ``path`` and the folder fsync'ed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with pq.ParquetWriter(
        tmp, table.schema, compression="zstd", compression_level=3, store_schema=False, **options
    ) as writer:
        writer.write_table(table, row_group_size=row_group)
        writer.add_key_value_metadata(meta)
    fsync_path(tmp)
    tmp.replace(path)
    fsync_path(path.parent)
