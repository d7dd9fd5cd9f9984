"""``POST /api/query``'s work: export the tenant's data, run the SQL in a sandbox process.

Each query gets its own process (``query.sql_child``) and a directory under the data dir
holding the tenant's export and the query's spill files; both are gone when the answer is.
The server's DuckDB never sees user SQL, so the query can neither change its settings nor
hold its locks, and a runaway query is killed without touching ingest. The child's answer
is read with a cap (``sql.max_bytes`` and a little more) and handed on as the bytes it
wrote, never parsed here, so the server holds at most one capped answer per query.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson

from otterscope.durable import out_of_space
from otterscope.errors import BadRequest, OtterscopeError, QueryTimeout, Unavailable
from otterscope.store.base import Store

# The child answers on its own within the timeout; this much more before it is killed.
KILL_GRACE_S = 5.0
# The child's heap beyond DuckDB's own limit and two answers' worth of bytes: the Python
# interpreter, pyarrow, DuckDB outside its buffer manager (measured: about 200 MiB idle).
HEAP_HEADROOM = 512 * 2**20
# The status line and the JSON around the rows, on top of sql.max_bytes.
ANSWER_MARGIN = 64 * 2**10
_STDERR_TAIL = 16 * 2**10


@dataclass(frozen=True, slots=True)
class SqlLimits:
    timeout_s: float
    max_rows: int
    memory_limit: int  # bytes, DuckDB's own memory_limit in the child
    max_bytes: int  # the answer's JSON at most

    @property
    def data_limit(self) -> int:
        """RLIMIT_DATA of the child: DuckDB's limit, the answer twice, the rest."""
        return self.memory_limit + 2 * self.max_bytes + HEAP_HEADROOM


def run_sql(store: Store, tenant: str, query: str, limits: SqlLimits, workspace: Path) -> bytes:
    """The sandbox's answer as JSON bytes: columns, types, rows, truncated."""
    # Absolute: the child runs in this directory, and every path it is given must still hold.
    directory = (workspace / uuid.uuid4().hex).absolute()
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
            "directory": str(directory),
            "query": query,
            "timeout_s": limits.timeout_s,
            "max_rows": limits.max_rows,
            "max_bytes": limits.max_bytes,
            "memory_limit": limits.memory_limit,
            "data_limit": limits.data_limit,
        }
        code, out, err = _run_child(orjson.dumps(request), directory, limits)
    finally:
        if directory.exists():
            shutil.rmtree(directory)
    status, _, body = out.partition(b"\n")
    if code != 0 or not status:
        raise OtterscopeError(f"the SQL sandbox failed ({_exit_text(code)}): {_last_line(err)}")
    error = orjson.loads(status).get("error")
    if error:
        if error["code"] == "query_timeout":
            raise QueryTimeout(error["message"])
        raise BadRequest(error["message"])
    return body


def _run_child(request: bytes, directory: Path, limits: SqlLimits) -> tuple[int, bytes, bytes]:
    """Exit code, stdout (at most the answer cap) and the tail of stderr of one child."""
    deadline = time.monotonic() + limits.timeout_s + KILL_GRACE_S
    proc = subprocess.Popen(
        # -P: the working directory (the export) is not put on the import path.
        [sys.executable, "-P", "-m", "otterscope.query.sql_child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=directory,  # anything relative DuckDB writes lands in the query's directory
    )
    try:
        out, err = collect(proc, request, limits.max_bytes + ANSWER_MARGIN, deadline)
        code = proc.wait(max(0.0, deadline - time.monotonic()))
    except (TimeoutError, subprocess.TimeoutExpired):
        raise QueryTimeout(f"the query took longer than {limits.timeout_s:g}s") from None
    except AnswerTooLarge:
        raise OtterscopeError(
            f"the SQL sandbox answered more than sql.max_bytes ({limits.max_bytes} bytes)"
        ) from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, out, err


class AnswerTooLarge(Exception):
    pass


def collect(
    proc: subprocess.Popen[bytes], request: bytes, cap: int, deadline: float
) -> tuple[bytes, bytes]:
    """Send ``request`` and read stdout (``AnswerTooLarge`` past ``cap`` bytes) and the tail
    of stderr until both close (``TimeoutError`` at ``deadline``); the pipes are closed."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    out = bytearray()
    err = bytearray()
    try:
        try:
            proc.stdin.write(request)  # the child reads all of it before anything else
            proc.stdin.close()
        except BrokenPipeError:
            pass  # it died at once: stderr says why
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ, out)
            selector.register(proc.stderr, selectors.EVENT_READ, err)
            while selector.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                for key, _ in selector.select(left):
                    chunk = os.read(key.fd, 2**16)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    key.data.extend(chunk)
                    del err[:-_STDERR_TAIL]
                    if len(out) > cap:
                        raise AnswerTooLarge
    finally:
        with contextlib.suppress(BrokenPipeError):  # it may have died before reading all
            proc.stdin.close()
        proc.stdout.close()
        proc.stderr.close()
    return bytes(out), bytes(err)


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        # SIGKILL or SIGABRT here is mostly the heap limit (RLIMIT_DATA) or the CPU limit.
        return f"stopped by {name}; the query may need more memory than sql.memory_limit"
    return f"exit {code}"


def _last_line(err: bytes) -> str:
    lines = err.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"
