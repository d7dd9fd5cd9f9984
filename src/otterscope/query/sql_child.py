"""The SQL sandbox process: ``python -m otterscope.query.sql_child``.

It reads one request (JSON on stdin: the export of ``Store.export_for_sql``, the query and
its limits), and answers one JSON object on stdout: ``{"columns", "types", "rows",
"truncated"}`` or ``{"error": {"code", "message"}}``. It runs at a lower priority with its
own DuckDB instance: one thread, its own memory limit. Before the user's SQL is even
parsed, the instance registers the tenant's hot rows, creates the three views, allows only
the tenant's Parquet files, turns external access off and locks its configuration, so
nothing the query says can read another file, reach the network, load an extension or
change a setting. A watchdog interrupts the query at the timeout; the parent kills the
process shortly after if it has not answered.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import os
import resource
import sys
import threading
import uuid
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from otterscope.errors import BadRequest
from otterscope.query.sql_guard import check


def _json(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.date | datetime.time | datetime.timedelta | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _setup(request: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        ":memory:",
        config={
            "threads": 1,
            "memory_limit": request["memory_limit"],
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        },
    )
    for name, path in request["tables"].items():
        with pa.memory_map(path) as source:
            con.register(name, pa.ipc.open_stream(source).read_all())
    for statement in request["views"]:
        con.execute(statement)
    # Paths the store made (never user text), as a list literal: SET takes no parameters.
    listed = ", ".join("'" + path.replace("'", "''") + "'" for path in request["files"])
    con.execute(f"SET allowed_paths = [{listed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run(request: dict[str, Any]) -> dict[str, Any]:
    con = _setup(request)
    try:
        check(con, request["query"])
        return _execute(con, request)
    finally:
        # Closed before the interpreter exits: DuckDB torn down at exit may abort.
        con.close()


def _execute(con: duckdb.DuckDBPyConnection, request: dict[str, Any]) -> dict[str, Any]:
    done = threading.Event()

    def watchdog() -> None:
        if not done.wait(request["timeout_s"]):
            con.interrupt()

    timer = threading.Thread(target=watchdog, daemon=True)
    timer.start()
    try:
        cursor = con.execute(request["query"])
        rows = cursor.fetchmany(request["max_rows"] + 1)
        description = cursor.description or []
    except duckdb.InterruptException:
        return {
            "error": {
                "code": "query_timeout",
                "message": f"the query took longer than {request['timeout_s']:g}s",
            }
        }
    finally:
        done.set()
        timer.join()
    return {
        "columns": [d[0] for d in description],
        "types": [str(d[1]) for d in description],
        "rows": [list(r) for r in rows[: request["max_rows"]]],
        "truncated": len(rows) > request["max_rows"],
    }


def main() -> int:
    os.nice(10)  # ingest and the API come first
    request = orjson.loads(sys.stdin.buffer.read())
    cpu = int(request["timeout_s"]) + 10
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    try:
        answer = run(request)
    except BadRequest as exc:
        answer = {"error": {"code": "bad_request", "message": exc.message}}
    except duckdb.Error as exc:
        # The user's SQL was wrong (syntax, names, types, permissions): say what DuckDB said.
        answer = {"error": {"code": "bad_request", "message": str(exc)}}
    sys.stdout.buffer.write(orjson.dumps(answer, default=_json))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
