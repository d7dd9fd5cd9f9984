"""The embedded store's DuckDB databases and their memory settings.

The store keeps two: the queries' (``storage.memory_limit``, ``storage.threads``) and the
maintenance thread's (``storage.maintenance_memory_limit``, one thread), which computes the
services cache of settled hours in the background without taking the queries' memory.
Both read the same Parquet files and register the same hot Arrow tables per statement.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from otterscope.otlp.schema import SCHEMAS
from otterscope.store.embedded import sql

# DuckDB keeps what a query freed for later queries unless the query peaked above this: the
# services cache's hourly statements (~300 MB at 10 million spans) left that much resident
# while sealing needed its own working set, and the server's peak passed 1 GiB.
FLUSH_THRESHOLD = "32MB"


def connect(memory_limit: str, threads: int, spill_dir: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        ":memory:",
        config={
            "memory_limit": memory_limit,
            "threads": threads,
            "enable_external_access": True,
            # Spills of large queries stay in the data dir, not the working directory.
            "temp_directory": str(spill_dir),
            "allocator_flush_threshold": FLUSH_THRESHOLD,
            # Returns freed memory to the system off the query threads.
            "allocator_background_threads": True,
        },
    )
    con.execute("SET parquet_metadata_cache = true")
    for signal in SCHEMAS:
        con.execute(sql.create_empty_table(signal))
    return con
