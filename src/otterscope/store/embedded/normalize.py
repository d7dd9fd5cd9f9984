"""Hot rows keep each distinct resource and scope once.

Decoded batches repeat the resource and scope of every item on every row; for realistic
data that is more than half of a row's bytes, and in the hot DuckDB segment every byte is
written twice (WAL, then checkpoint). So the writer stores a 64-bit content id on each row
and the resource / scope values once per segment. Sealed Parquet files are denormalized
again (a join at seal time), so they stay readable without otterscope.

All per-row work here is Arrow compute; Python only touches each *distinct* value.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

RESOURCE_COLUMNS = (
    "resource_attributes",
    "resource_dropped_attributes_count",
    "resource_entity_refs",
    "resource_schema_url",
)
SCOPE_COLUMNS = (
    "scope_name",
    "scope_version",
    "scope_attributes",
    "scope_dropped_attributes_count",
    "scope_schema_url",
)
_SEPARATOR = "\x1f"


@dataclass(frozen=True, slots=True)
class Split:
    rows: pa.Table  # the signal's columns without resource/scope values, plus the two ids
    resources: pa.Table  # resource_id + RESOURCE_COLUMNS, only ids not seen before
    scopes: pa.Table  # scope_id + SCOPE_COLUMNS, only ids not seen before


def _ids(table: pa.Table, columns: tuple[str, ...], known: set[int]) -> tuple[pa.Array, pa.Table]:
    key = pc.binary_join_element_wise(
        *[pc.cast(table.column(c), pa.string()) for c in columns], _SEPARATOR
    )
    encoded = pc.dictionary_encode(key).combine_chunks()
    digests = [
        int.from_bytes(hashlib.blake2b(v.encode(), digest_size=8).digest(), "little")
        for v in encoded.dictionary.to_pylist()
    ]
    ids = pa.array(digests, pa.uint64())
    per_row = pc.take(ids, encoded.indices)
    new = [i for i, d in enumerate(digests) if d not in known]
    if not new:
        empty = table.select(list(columns)).slice(0, 0)
        return per_row, empty.add_column(0, "id", pa.array([], pa.uint64()))
    # The first row of each new distinct value carries its columns. Usually a batch brings
    # a few new values: a scan each is cheapest; many call for one grouping pass instead.
    if len(new) <= 16:
        first = {i: pc.index(encoded.indices, i).as_py() for i in new}
    else:
        positions = (
            pa.table({"i": encoded.indices, "pos": pa.array(range(len(table)), pa.int64())})
            .group_by("i")
            .aggregate([("pos", "min")])
        )
        first = dict(
            zip(
                positions.column("i").to_pylist(),
                positions.column("pos_min").to_pylist(),
                strict=True,
            )
        )
    take = pa.array([first[i] for i in new], pa.int64())
    known.update(digests[i] for i in new)
    return per_row, table.select(list(columns)).take(take).add_column(
        0, "id", pa.array([digests[i] for i in new], pa.uint64())
    )


def split(table: pa.Table, known_resources: set[int], known_scopes: set[int]) -> Split:
    """Split one signal's table; ``known_*`` (ids already in the segment) are updated."""
    resource_id, resources = _ids(table, RESOURCE_COLUMNS, known_resources)
    scope_id, scopes = _ids(table, SCOPE_COLUMNS, known_scopes)
    rows = table.drop_columns([*RESOURCE_COLUMNS, *SCOPE_COLUMNS])
    rows = rows.append_column("resource_id", resource_id).append_column("scope_id", scope_id)
    return Split(rows, resources, scopes)
