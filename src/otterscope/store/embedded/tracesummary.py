"""The trace summaries kept beside a sealed span file.

A trace search finds the spans that match and then summarises their traces (root, start,
duration, span and error counts, services). Computed from the spans, that reads several
columns of every span in the window, since the traces are spread over all of it. So
sealing also writes, for every trace of a file, the summary of its spans in that file:
``<data-dir>/attr-index/<the data file's path under parquet/>.<id>.sum``, with the same id
as the file's attribute index (``attrindex.py``), so one left over from a crash, a rewrite
or a deleted file is never used for other rows.

A kept summary is the trace's whole summary when the file holds all of the trace's spans
that a query can see: no other file in the query's window and no hot row has any, no
tombstone names the trace, and every file of the window has usable summaries with every
row within the query's pin. The reader
checks exactly that, and summarises every other trace from its spans as before, reading
only the files the kept summaries say hold it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from otterscope.store.embedded import sidecar, summary_sql

MAX_SEQ_META = b"otterscope.max_seq"
_ROW_GROUP = 65_536
# Sorted by start: neighbouring starts are close, so delta encoding stores them in a few
# bytes; the trace id is random whatever the order.
_DELTA = ("start_ns", "duration_ns")
_INPUT = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "service_name",
    "name",
    "start_time_unix_nano",
    "end_time_unix_nano",
    "status_code",
)


def build(rows: pa.Table) -> pa.Table:
    """The summary of every trace in ``rows`` (one tenant's spans being sealed)."""
    con = duckdb.connect(config={"threads": 1})
    try:
        con.register(summary_sql.SEALING, rows.select(columns()))
        ((copies,),) = con.sql(summary_sql.sealing_has_copies()).fetchall()
        return con.sql(summary_sql.sealing_summaries(bool(copies))).to_arrow_table()
    finally:
        con.close()


def write(summaries: pa.Table, path: Path, ident: str, id_meta: bytes, max_seq: int) -> None:
    """Write ``summaries`` durably to ``path``, naming the data file's id and its largest
    ingest sequence number."""
    sidecar.write(
        summaries,
        path,
        {id_meta: ident.encode(), MAX_SEQ_META: b"%d" % max_seq},
        _ROW_GROUP,
        use_dictionary=["root_service", "root_name", "services"],
        column_encoding=dict.fromkeys(_DELTA, "DELTA_BINARY_PACKED"),
    )


def max_seq(rows: pa.Table) -> int:
    return int(pc.max(rows.column("ingest_seq")).as_py() or 0)


def columns() -> list[str]:
    """The span columns the summaries are computed from."""
    return [*_INPUT, "ingest_seq"]
