"""The group-commit writer: the one thread that writes to the store.

Receivers only know ``submit``: it queues a decoded batch and returns a future that
completes once the batch is committed (durable). The writer thread takes everything queued
at that moment, up to ``max_items``, and commits it in one transaction, so many concurrent
requests share one fsync. The per-trace span cap is enforced here, because only the writer
sees batches in commit order.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import logging
import operator
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from otterscope.errors import OtterscopeError, StoreError, Unavailable
from otterscope.otlp.rows import Batch
from otterscope.store.base import KeyIdent, Store

log = logging.getLogger("otterscope.ingest")

# How many recent traces the per-trace cap remembers; older ones start counting afresh.
TRACE_MEMORY = 100_000
_SLICE = 8192


@dataclass(frozen=True, slots=True)
class Commit:
    seq: int
    rejected: int  # spans turned away by the per-trace cap
    message: str


@dataclass(slots=True)
class _Pending:
    batch: Batch
    future: concurrent.futures.Future[Commit]
    key: KeyIdent | None = None


CommitListener = Callable[[int, list[Batch], float], None]


class Writer:
    def __init__(
        self,
        store: Store,
        *,
        max_items: int,
        max_spans_per_trace: int,
        retry_after: float,
    ) -> None:
        self._store = store
        self._max_items = max_items
        self._cap = max_spans_per_trace
        self._retry_after = retry_after
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queued_items = 0
        self._cond = threading.Condition()
        self._draining = False
        # Keyed by tenant + NUL + trace id: bytes, unlike (tenant, id) tuples, give the
        # garbage collector nothing to track when a commit brings 200,000 traces.
        self._trace_counts: collections.OrderedDict[bytes, int] = collections.OrderedDict()
        self._listeners: list[CommitListener] = []
        self.last_commit_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="otterscope-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add_listener(self, listener: CommitListener) -> None:
        """Called on the writer thread after each commit, before its senders are answered:
        keep it short."""
        self._listeners.append(listener)

    @property
    def queued_items(self) -> int:
        return self._queued_items

    @property
    def draining(self) -> bool:
        return self._draining

    def submit(
        self, batch: Batch, key: KeyIdent | None = None
    ) -> concurrent.futures.Future[Commit]:
        """Queue a batch; ``key`` (an idempotency key) is committed with its rows."""
        future: concurrent.futures.Future[Commit] = concurrent.futures.Future()
        with self._cond:
            if self._draining:
                raise Unavailable("server is shutting down", retry_after=self._retry_after)
            self._queue.append(_Pending(batch, future, key))
            self._queued_items += batch.accepted
            self._cond.notify()
        return future

    def drain(self, timeout: float) -> bool:
        """Refuse new batches, commit the queued ones, stop. True when all were committed."""
        with self._cond:
            self._draining = True
            self._cond.notify()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _take(self) -> list[_Pending] | None:
        with self._cond:
            while not self._queue:
                if self._draining:
                    return None
                self._cond.wait()
            taken = [self._queue.popleft()]
            items = taken[0].batch.accepted
            while self._queue and items + self._queue[0].batch.accepted <= self._max_items:
                nxt = self._queue.popleft()
                items += nxt.batch.accepted
                taken.append(nxt)
            self._queued_items -= items
        # A request that gave up waiting (client deadline, shutdown) cancelled its future:
        # its batch is not committed, as nobody would be told.
        return [p for p in taken if p.future.set_running_or_notify_cancel()]

    def _run(self) -> None:
        while (taken := self._take()) is not None:
            if not taken:
                continue
            try:
                self._commit(taken)
            except Exception as exc:
                # Nothing may end this thread: every later request would wait forever.
                log.exception("group commit failed unexpectedly")
                for p in taken:
                    if not p.future.done():
                        p.future.set_exception(OtterscopeError(f"commit failed: {exc}"))

    def _commit(self, taken: list[_Pending]) -> None:
        # A key committed already (its first sender gave up while its commit ran, and a
        # retry came in) stores nothing: its rows are durable, so the answer can go now.
        for p in taken:
            if p.key is not None and self._store.key_committed(*p.key):
                p.future.set_result(Commit(self._store.last_seq(), 0, ""))
        taken = [p for p in taken if not p.future.done()]
        # The same key twice in one group (a sender gave up while its batch waited in the
        # queue, and its retry joined it): the first is written, the others share its fate
        # and store nothing.
        first: dict[KeyIdent, _Pending] = {}
        repeats: list[_Pending] = []
        for p in taken:
            if p.key is not None and p.key in first:
                repeats.append(p)
            elif p.key is not None:
                first[p.key] = p
        if repeats:
            repeated = {id(p) for p in repeats}
            taken = [p for p in taken if id(p) not in repeated]
        try:
            self._commit_group(taken)
        finally:
            for p in repeats:
                assert p.key is not None
                _share_outcome(first[p.key], p)

    def _commit_group(self, taken: list[_Pending]) -> None:
        if not taken:
            return
        staged: dict[bytes, int] = {}
        capped = [self._apply_cap(p.batch, staged) for p in taken]
        batches = [b for b, _, _ in capped]
        started = time.perf_counter()
        try:
            seq = self._store.write(batches, [p.key for p in taken if p.key is not None])
        except StoreError as exc:
            log.error("commit failed: %s", exc)
            err = Unavailable(f"store cannot commit: {exc.message}", retry_after=self._retry_after)
            for p in taken:
                p.future.set_exception(err)
            return
        except Exception as exc:
            log.exception("commit failed unexpectedly")
            for p in taken:
                p.future.set_exception(OtterscopeError(f"commit failed: {exc}"))
            return
        self.last_commit_seconds = time.perf_counter() - started
        # Only spans that were really stored count towards the per-trace cap.
        memory = self._trace_counts
        # Re-inserted, so the traces of this commit are the most recent ones (C-level maps
        # a slice at a time: a commit may hold 200,000 traces).
        keys = list(staged)
        if len(keys) >= TRACE_MEMORY:
            # This commit alone fills the memory: what was remembered before is forgotten
            # anyway, so start from its newest traces instead of re-inserting every one.
            memory.clear()
            keys = keys[-TRACE_MEMORY:]
        for i in range(0, len(keys), _SLICE):
            part = keys[i : i + _SLICE]
            collections.deque(map(memory.pop, part, itertools.repeat(None)), maxlen=0)
            memory.update(zip(part, map(staged.__getitem__, part), strict=True))
        for _ in range(len(memory) - TRACE_MEMORY):
            memory.popitem(last=False)
        # Listeners first (they only take references), so what follows a commit is set in
        # motion before its senders are answered.
        for listener in self._listeners:
            try:
                listener(seq, batches, self.last_commit_seconds)
            except Exception:
                log.exception("commit listener failed")
        for p, (_, rejected, message) in zip(taken, capped, strict=True):
            p.future.set_result(Commit(seq, rejected, message))

    def _apply_cap(self, batch: Batch, staged: dict[bytes, int]) -> tuple[Batch, int, str]:
        """Turn away spans beyond the per-trace cap; new totals go to ``staged``."""
        if batch.signal != "traces" or not batch.table.num_rows:
            return batch, 0, ""
        table = batch.table
        tenant = table.column("tenant")[0].as_py()
        counts = pc.value_counts(table.column("trace_id"))
        # One request may hold 200,000 traces: the lookups run as C-level map()s rather
        # than a Python loop (which held back every other commit for a quarter of a
        # second), a slice at a time (each map holds the GIL, and so the event loop, until
        # it is done).
        prefix = tenant.encode() + b"\0"
        memory = self._trace_counts
        keys: list[bytes] = []
        seen: list[int] = []
        totals: list[int] = []
        for i in range(0, len(counts), _SLICE):
            part = list(map(prefix.__add__, counts.field("values").slice(i, _SLICE).to_pylist()))
            prior = list(map(staged.get, part, map(memory.get, part, itertools.repeat(0))))
            added = counts.field("counts").slice(i, _SLICE).to_pylist()
            keys += part
            seen += prior
            totals += map(operator.add, prior, added)
        if max(totals, default=0) <= self._cap:
            staged.update(zip(keys, totals, strict=True))
            return batch, 0, ""
        over: dict[bytes, int] = {}
        for key, before, total in zip(keys, seen, totals, strict=True):
            if total > self._cap:
                over[key[len(prefix) :]] = max(self._cap - before, 0)
                total = max(before, self._cap)
            staged[key] = total
        if not over:
            return batch, 0, ""
        keep = []
        allowance = dict(over)
        for tid in table.column("trace_id").to_pylist():
            if tid in allowance:
                ok = allowance[tid] > 0
                allowance[tid] -= 1
                keep.append(ok)
            else:
                keep.append(True)
        kept = table.filter(pa.array(keep))
        rejected = table.num_rows - kept.num_rows
        message = (
            f"{rejected} span(s) rejected: trace has more than {self._cap} spans "
            "(ingest.max_spans_per_trace)"
        )
        capped = Batch(
            batch.signal,
            kept,
            kept.num_rows,
            batch.rejected + rejected,
            batch.reject_message,
            batch.dropped_attributes,
            batch.truncated_attributes,
        )
        return capped, rejected, message


def _share_outcome(original: _Pending, repeat: _Pending) -> None:
    """``repeat`` is answered as ``original`` was: committed (storing nothing itself) or
    refused with the same error."""
    if not original.future.done():
        repeat.future.set_exception(OtterscopeError("commit failed: its first copy was not"))
        return
    exc = original.future.exception()
    if exc is not None:
        repeat.future.set_exception(exc)
    else:
        repeat.future.set_result(Commit(original.future.result().seq, 0, ""))
