"""The live hub: committed batches in, per-tenant JSON messages out to subscribers.

Three threads of control meet here, each with one job:

- the writer thread calls ``on_commit`` after every commit. It only appends references to
  the committed tables to a bounded queue and wakes the hub: no copying, no JSON, no
  waiting, and nothing at all while nobody subscribes. When the queue is full the oldest
  entries are dropped and every subscriber is closed with 1013 (it missed data);
- the hub's own thread (``otterscope-live``) builds the messages, once per (tenant, signal,
  service filter), and hands them to the event loop with ``call_soon_threadsafe``;
- the event loop puts them in each subscriber's bounded outbox. A subscriber whose outbox
  is full is closed with 1013 rather than buffered further, so a slow client costs neither
  ingest nor the other subscribers anything.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from otterscope.live import messages
from otterscope.otlp.rows import Batch

log = logging.getLogger("otterscope.live")

# Rows of committed tables waiting for the hub thread. The tables are the writer's own
# (referenced, not copied), so this bounds the memory the feed can hold on to.
MAX_PENDING_ROWS = 200_000
# How long a closing handshake may wait for a client that does not read.
SLOW_CLOSE_WAIT_S = 30.0
SHUTDOWN_CLOSE_WAIT_S = 1.0

_T = TypeVar("_T")

GOING_AWAY = 1001
TRY_AGAIN_LATER = 1013


@dataclass(frozen=True, slots=True)
class Filter:
    signals: frozenset[str]
    service: str | None


ALL = Filter(frozenset(messages.SIGNALS), None)


class Subscriber:
    """One WebSocket client. Everything but ``filter`` is touched on the event loop only."""

    def __init__(self, tenant: str, limit: int) -> None:
        self.tenant = tenant
        # Replaced as a whole, so the hub thread always reads a consistent filter.
        self.filter = ALL
        self.limit = limit
        self.outbox: collections.deque[str] = collections.deque()
        self.wake = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.close_wait = SLOW_CLOSE_WAIT_S

    def send(self, message: str) -> None:
        if self.close_code is not None:
            return
        if len(self.outbox) >= self.limit:
            self.close(
                TRY_AGAIN_LATER,
                f"too slow: {self.limit} messages waiting (live.buffer_messages); reconnect",
            )
            return
        self.outbox.append(message)
        self.wake.set()

    def offer(self, built_for: Filter, batch: list[str]) -> None:
        # Built under a filter since replaced: the client has been told ("subscribed") that
        # only the new filter applies, so these must not reach it.
        if self.filter is not built_for:
            return
        for message in batch:
            self.send(message)

    def close(self, code: int, reason: str, wait: float = SLOW_CLOSE_WAIT_S) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason, self.close_wait = code, reason, wait
            self.outbox.clear()
            self.closed.set()


_Pending = tuple[str, tuple[pa.Table, ...], int]  # signal, committed tables, rows
_Delivery = tuple[Subscriber, Filter, list[str]]


class LiveHub:
    def __init__(
        self, buffer_messages: int = 256, max_pending_rows: int = MAX_PENDING_ROWS
    ) -> None:
        self.buffer_messages = buffer_messages
        self._max_rows = max_pending_rows
        # Replaced, never mutated, on the event loop; the other threads read a snapshot.
        self._subs: tuple[Subscriber, ...] = ()
        self._cond = threading.Condition()
        self._pending: collections.deque[_Pending] = collections.deque()
        self._pending_rows = 0
        self._missed = False
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="otterscope-live", daemon=True)

    # -- writer thread -------------------------------------------------------------------

    def on_commit(self, _seq: int, batches: list[Batch], _seconds: float) -> None:
        """A ``Writer`` commit listener: queue references, wake the hub, return."""
        if not self._subs:
            return
        tables: dict[str, list[pa.Table]] = {}
        for batch in batches:
            if batch.table.num_rows:
                tables.setdefault(batch.signal, []).append(batch.table)
        if not tables:
            return
        with self._cond:
            for signal, parts in tables.items():
                rows = sum(t.num_rows for t in parts)
                self._pending.append((signal, tuple(parts), rows))
                self._pending_rows += rows
            while len(self._pending) > 1 and self._pending_rows > self._max_rows:
                self._pending_rows -= self._pending.popleft()[2]
                self._missed = True
            self._cond.notify()

    # -- event loop ----------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread.start()

    def subscribe(self, tenant: str) -> Subscriber | None:
        """A new subscriber (all signals, all services); None once the hub is stopping."""
        if self._stopping or self._loop is None:
            return None
        sub = Subscriber(tenant, self.buffer_messages)
        self._subs = (*self._subs, sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs = tuple(s for s in self._subs if s is not sub)

    async def stop(self, timeout: float = 2.0) -> None:
        """Close every subscriber with 1001 (going away) and stop the hub thread."""
        with self._cond:
            self._stopping = True
            self._pending.clear()
            self._cond.notify()
        for sub in self._subs:
            sub.close(GOING_AWAY, "server is shutting down", SHUTDOWN_CLOSE_WAIT_S)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._subs and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, max(0.0, deadline - loop.time()))

    def _deliver(self, deliveries: list[_Delivery]) -> None:
        for sub, built_for, batch in deliveries:
            sub.offer(built_for, batch)

    def _close_all(self, subs: tuple[Subscriber, ...]) -> None:
        for sub in subs:
            sub.close(TRY_AGAIN_LATER, "missed data: the live feed fell behind ingest; reconnect")

    # -- hub thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._missed and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                taken = list(self._pending)
                self._pending.clear()
                self._pending_rows = 0
                missed, self._missed = self._missed, False
            if missed:
                self._post(self._close_all, self._subs)
            for entry in taken:
                try:
                    deliveries = self._build(entry, self._subs)
                except Exception:
                    # Nothing may end this thread: the feed would fall silent for good.
                    log.exception("building live messages failed; those rows are skipped")
                    continue
                if deliveries:
                    self._post(self._deliver, deliveries)

    def _post(self, fn: Callable[[_T], None], arg: _T) -> None:
        loop = self._loop
        if loop is None:
            return
        # A closed loop: the server is gone, and so are the subscribers.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(fn, arg)

    def _build(self, entry: _Pending, subs: tuple[Subscriber, ...]) -> list[_Delivery]:
        signal, tables, _ = entry
        # One look at each filter: the messages are tagged with the filter they were built
        # for, and ``Subscriber.offer`` drops them if it has changed since.
        targets = [
            (s, f) for s in subs if signal in (f := s.filter).signals and not s.closed.is_set()
        ]
        wanted: dict[str, set[str | None]] = {}
        for sub, f in targets:
            wanted.setdefault(sub.tenant, set()).add(f.service)
        built: dict[tuple[str, str | None], list[str]] = {}
        for tenant, services in wanted.items():
            found: list[messages.Item] = []
            for table in tables:
                part = _rows_of(table, tenant, services)
                if part.num_rows:
                    found += messages.items(signal, part)
            if not found:
                continue
            for service in services:
                chosen = found if service is None else [i for i in found if i.service == service]
                if chosen:
                    built[(tenant, service)] = messages.pack(signal, chosen)
        return [
            (sub, f, built[(sub.tenant, f.service)])
            for sub, f in targets
            if (sub.tenant, f.service) in built
        ]


def _rows_of(table: pa.Table, tenant: str, services: set[str | None]) -> pa.Table:
    """The rows of ``tenant`` (and, when nobody wants every service, of those services)."""
    tenants = table.column("tenant")
    # unique(), not count_distinct(): a large request's rows arrive dictionary-encoded.
    if len(pc.unique(tenants)) != 1 or tenants[0].as_py() != tenant:
        table = table.filter(pc.equal(tenants, tenant))
    if None not in services and table.num_rows:
        table = table.filter(
            pc.is_in(
                table.column("service_name"), pa.array(sorted(s for s in services if s is not None))
            )
        )
    return table
