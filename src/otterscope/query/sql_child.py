"""The SQL sandbox process: ``python -m otterscope.query.sql_child``.

It reads one request (JSON on stdin: the export of ``Store.export_for_sql``, the query and
its limits) and answers on stdout: one line ``{"error": null}`` followed by the answer
(``{"columns", "types", "rows", "truncated"}``, at most ``max_bytes``), or one line
``{"error": {"code", "message"}}``. It runs at a lower priority with its own DuckDB
instance: one thread, its own memory limit, its spill files in its own directory, and the
whole process held to ``data_limit`` bytes of heap (RLIMIT_DATA) so that memory DuckDB does
not count (strings, Python objects) cannot grow without bound. Before the user's SQL is
even parsed, the instance registers the tenant's hot rows, creates the three views, allows
only the tenant's Parquet files, turns external access off and locks its configuration, so
nothing the query says can read another file, reach the network, load an extension or
change a setting. A watchdog interrupts the query at the timeout; the parent kills the
process shortly after if it has not answered. Rows are fetched a few at a time and encoded
one by one (``query.sql_encode``) until the row or byte cap, so an answer is never built
whole first.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from otterscope.errors import BadRequest
from otterscope.query.sql_encode import Column, column, encode_row
from otterscope.query.sql_guard import check, hidden_settings
from otterscope.store.embedded.sandbox_sql import answer

# Rows converted to Python per fetch at most; fewer while rows are large (see _fetch_size).
BATCH_ROWS = 1024
_TAIL = b',"rows":[],"truncated":false}'


def _setup(request: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    memory = int(request["memory_limit"])
    con = duckdb.connect(
        ":memory:",
        config={
            "threads": 1,
            "memory_limit": f"{memory}B",
            # Spills stay in this query's directory under the data dir, and bounded, so a
            # query can neither litter the server's working directory nor fill its disk.
            "temp_directory": str(Path(request["directory"]) / "tmp"),
            "max_temp_directory_size": f"{4 * memory}B",
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
    con.execute("SET TimeZone = 'UTC'")  # TIMESTAMPTZ values are written in UTC
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


class SetupFailed(Exception):
    """The sandbox could not be built: the server's fault, not the query's (a 500)."""


def run(request: dict[str, Any]) -> bytes:
    try:
        con = _setup(request)
    except duckdb.Error as exc:
        raise SetupFailed(_hide_paths(str(exc), request)) from None
    try:
        hidden = hidden_settings(con)
        statement = check(con, request["query"], hidden)
        relation = con.sql(statement)  # binds only: the names and types, nothing runs
        columns = [column(n, t) for n, t in zip(relation.columns, relation.types, strict=True)]
        wrapped = answer(statement, [c.shape for c in columns])
        check(con, wrapped, hidden)  # the wrapping changed nothing the guard cares about
        return _execute(con, request, columns, wrapped)
    finally:
        # Closed before the interpreter exits: DuckDB torn down at exit may abort.
        con.close()


def _fetch_size(rows: int, used: int, budget: int) -> int:
    """Rows to fetch next: about what the bytes left hold at the mean row size so far, so
    that big rows are not all turned into Python objects before the cap stops them."""
    if not rows:
        return 1
    mean = max(1, used // rows)
    return max(1, min(BATCH_ROWS, (budget - used) // mean))


def _execute(
    con: duckdb.DuckDBPyConnection, request: dict[str, Any], columns: list[Column], wrapped: str
) -> bytes:
    head = orjson.dumps(
        {"columns": [c.name for c in columns], "types": [c.type_name for c in columns]}
    )
    budget = int(request["max_bytes"]) - len(head) - len(_TAIL)
    if budget < 0:
        raise BadRequest("the column names and types alone are more than sql.max_bytes")
    max_rows = int(request["max_rows"])
    done = threading.Event()

    def watchdog() -> None:
        if not done.wait(request["timeout_s"]):
            con.interrupt()

    timer = threading.Thread(target=watchdog, daemon=True)
    timer.start()
    rows: list[bytes] = []
    used = 0
    truncated = False
    try:
        cursor = con.execute(wrapped)
        while not truncated:
            batch = cursor.fetchmany(_fetch_size(len(rows), used, budget))
            if not batch:
                break
            for row in batch:
                encoded = encode_row(columns, row)
                cost = len(encoded) + (1 if rows else 0)  # and the comma before it
                if len(rows) == max_rows or used + cost > budget:
                    truncated = True
                    break
                rows.append(encoded)
                used += cost
    finally:
        done.set()
        timer.join()
    flag = b"true" if truncated else b"false"
    return b"".join((head[:-1], b',"rows":[', b",".join(rows), b'],"truncated":', flag, b"}"))


MAX_MESSAGE_CHARS = 4096  # a message quoting a huge value must not outgrow sql.max_bytes


def _error(code: str, message: str) -> bytes:
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + f"… ({len(message):,} characters in all)"
    return orjson.dumps({"error": {"code": code, "message": message}}) + b"\n"


def _hide_paths(message: str, request: dict[str, Any]) -> str:
    """DuckDB's messages may name the query's directory: not the server's business to show."""
    directory = str(request.get("directory", ""))
    if not directory:
        return message
    for path in {directory, os.path.realpath(directory)}:
        message = message.replace(path, "<sandbox>")
    return message


def _memory_error(request: dict[str, Any], said: str) -> bytes:
    limit = int(request["memory_limit"])
    size = f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit / 1e6:g} MB"
    return _error(
        "bad_request",
        f"the query needs more memory than the SQL sandbox has (sql.memory_limit is {size}): "
        f"{said}",
    )


def _answer(request: dict[str, Any]) -> bytes:
    try:
        body = run(request)
    except BadRequest as exc:
        return _error("bad_request", exc.message)
    except duckdb.InterruptException:
        return _error("query_timeout", f"the query took longer than {request['timeout_s']:g}s")
    except duckdb.OutOfMemoryException as exc:
        return _memory_error(request, _hide_paths(str(exc).splitlines()[0], request))
    except MemoryError:
        return _memory_error(request, "out of memory while reading or encoding rows")
    except duckdb.Error as exc:
        # The user's SQL was wrong (syntax, names, types, permissions): say what DuckDB said.
        return _error("bad_request", _hide_paths(str(exc), request))
    return b'{"error":null}\n' + body


def main() -> int:
    os.nice(10)  # ingest and the API come first
    request = orjson.loads(sys.stdin.buffer.read())
    cpu = int(request["timeout_s"]) + 10
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    # Before DuckDB starts: its own limit covers only what its buffer manager holds.
    heap = int(request["data_limit"])
    resource.setrlimit(resource.RLIMIT_DATA, (heap, heap))
    sys.stdout.buffer.write(_answer(request))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
