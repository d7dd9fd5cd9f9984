"""``POST /api/query``'s work: export the tenant's data, run the SQL in a sandbox process.

Each query gets its own process (``query.sql_child``) and a directory under the data dir
holding the tenant's export; both are gone when the answer is. The server's DuckDB never
sees user SQL, so the query can neither change its settings nor hold its locks, and a
runaway query is killed without touching ingest.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from otterscope.durable import out_of_space
from otterscope.errors import BadRequest, OtterscopeError, QueryTimeout, Unavailable
from otterscope.store.base import Store

# The child answers on its own within the timeout; this much more before it is killed.
KILL_GRACE_S = 5.0


@dataclass(frozen=True, slots=True)
class SqlLimits:
    timeout_s: float
    max_rows: int
    memory_limit: str


def run_sql(
    store: Store, tenant: str, query: str, limits: SqlLimits, workspace: Path
) -> dict[str, Any]:
    """The answer of the sandbox: columns, types, rows, truncated."""
    directory = workspace / uuid.uuid4().hex
    try:
        try:
            spec = store.export_for_sql(tenant, directory)
        except OSError as exc:
            if not out_of_space(exc):
                raise
            raise Unavailable(
                "the disk of the data directory is full: SQL queries need room for a copy of "
                "your recent data; free space and retry"
            ) from None
        request = {
            "views": spec.views,
            "tables": spec.tables,
            "files": spec.files,
            "query": query,
            "timeout_s": limits.timeout_s,
            "max_rows": limits.max_rows,
            "memory_limit": limits.memory_limit,
        }
        try:
            done = subprocess.run(
                [sys.executable, "-m", "otterscope.query.sql_child"],
                input=orjson.dumps(request),
                capture_output=True,
                timeout=limits.timeout_s + KILL_GRACE_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise QueryTimeout(f"the query took longer than {limits.timeout_s:g}s") from None
    finally:
        if directory.exists():
            shutil.rmtree(directory)
    if done.returncode != 0 or not done.stdout:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise OtterscopeError(
            f"the SQL sandbox failed (exit {done.returncode}): {' '.join(tail) or 'no output'}"
        )
    answer: dict[str, Any] = orjson.loads(done.stdout)
    error = answer.get("error")
    if error:
        if error["code"] == "query_timeout":
            raise QueryTimeout(error["message"])
        raise BadRequest(error["message"])
    return answer
