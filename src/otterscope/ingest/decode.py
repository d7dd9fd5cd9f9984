"""Request bytes -> columnar batch, and where that work runs: off the event loop.

``decode`` picks the decoder (the C one for protobuf, wire.parse_request + rows.py for
OTLP/JSON). ``DecodePool`` runs it for any body larger than a few tens of KiB in a bounded
pool of worker processes, so the event loop that serves HTTP, gRPC and WebSockets never
spends more than a few milliseconds on one request.

Why processes and not threads: the C decoder builds its Python objects as it goes and holds
the GIL for the whole call (a 16 MiB body: hundreds of milliseconds in one piece), and the
OTLP/JSON path spends most of its time in single C calls that hold the GIL too (orjson,
protobuf's parser, pyarrow building arrays from lists). A thread would stall the loop just
the same. A worker sends the table back as Arrow IPC bytes, which the server maps without a
copy. A worker that dies (killed, crashed) fails only the requests it held (503) and the
pool is started afresh.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool

import pyarrow as pa

from otterscope.errors import Unavailable
from otterscope.otlp import rows, wire
from otterscope.otlp.anyvalue import Limits
from otterscope.otlp.fast import (
    logs_batch_from_bytes,
    metrics_batch_from_bytes,
    spans_batch_from_bytes,
)
from otterscope.otlp.wire import Format

_PROTOBUF = {
    "traces": spans_batch_from_bytes,
    "logs": logs_batch_from_bytes,
    "metrics": metrics_batch_from_bytes,
}
_BUILDERS = {
    "traces": rows.spans_batch,
    "logs": rows.logs_batch,
    "metrics": rows.metrics_batch,
}

# Bodies up to these sizes decode on the event loop: a few milliseconds at most (measured
# on 2 busy vCPUs: 10 ms for 64 KiB of OTLP/JSON with 100 attributes per span, 3.6 ms for
# 256 KiB of protobuf with a distinct resource per span), little more than a round trip to
# a worker would cost them.
INLINE_BYTES: dict[Format, int] = {"json": 32 * 1024, "protobuf": 256 * 1024}

_Shipped = tuple[bytes, int, int, str, int, int]


def decode(signal: str, body: bytes, fmt: Format, tenant: str, limits: Limits) -> rows.Batch:
    """The batch of one request; ``BadRequest`` for a body that is not valid OTLP."""
    if fmt == "protobuf":
        # The C decoder: bytes straight to column buffers, same result as rows.py.
        return _PROTOBUF[signal](body, tenant, limits)
    message = wire.parse_request(signal, body, fmt)
    return _BUILDERS[signal](message, tenant, limits)  # type: ignore[operator,no-any-return]


def _decode_shipped(
    signal: str,
    body: bytes,
    fmt: Format,
    tenant: str,
    limits: Limits,
    prepare: Callable[[pa.Table], pa.Table] | None,
) -> _Shipped:
    """In a worker: ``decode``, then the store's ``prepare`` (the table in the form it
    commits), with the table as Arrow IPC bytes."""
    batch = decode(signal, body, fmt, tenant, limits)
    table = prepare(batch.table) if prepare is not None else batch.table
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as out:
        out.write_table(table)
    return (
        sink.getvalue().to_pybytes(),
        batch.accepted,
        batch.rejected,
        batch.reject_message,
        batch.dropped_attributes,
        batch.truncated_attributes,
    )


def _init_worker() -> None:
    # Below the server's own threads: on a machine with few cores, decoding a huge body
    # must not take the CPU the event loop and the writer need to answer everyone else.
    os.nice(10)
    # Ctrl-C in a terminal reaches the whole process group: the server decides when its
    # workers stop, not the keyboard.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        # A server killed with -9 cannot stop its workers: they leave when it is gone.
        sentinel = parent.sentinel

        def watch() -> None:
            multiprocessing.connection.wait([sentinel])
            os._exit(0)

        threading.Thread(target=watch, name="otterscope-parent-watch", daemon=True).start()


class DecodePool:
    """At most ``workers`` decodes run at once, in worker processes started on first use.

    ``workers`` 0 decodes every body on the event loop (no worker processes). ``prepare``
    (a module-level function: it is sent to the workers by name) turns a decoded table into
    the form the store commits; done in the worker, it is work the single writer thread no
    longer does while every other sender waits for its group commit.
    """

    def __init__(
        self,
        workers: int,
        retry_after: float,
        prepare: Callable[[pa.Table], pa.Table] | None = None,
    ) -> None:
        self.workers = workers
        self._retry_after = retry_after
        self._prepare = prepare
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                # Not fork: the server has gRPC's and the writer's threads, which a forked
                # child would inherit in whatever state they were.
                self._executor = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
                )
            return self._executor

    async def decode(
        self, signal: str, body: bytes, fmt: Format, tenant: str, limits: Limits
    ) -> rows.Batch:
        if not self.workers or len(body) <= INLINE_BYTES[fmt]:
            return decode(signal, body, fmt, tenant, limits)
        pool = self._pool()
        try:
            shipped = await asyncio.wrap_future(
                pool.submit(_decode_shipped, signal, body, fmt, tenant, limits, self._prepare)
            )
        except BrokenProcessPool:
            with self._lock:
                if self._executor is pool:
                    self._executor = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise Unavailable(
                "a decoder process stopped while decoding this request; retry",
                retry_after=self._retry_after,
            ) from None
        ipc, accepted, rejected, message, dropped, truncated = shipped
        table = pa.ipc.open_stream(pa.py_buffer(ipc)).read_all()
        return rows.Batch(signal, table, accepted, rejected, message, dropped, truncated)

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
