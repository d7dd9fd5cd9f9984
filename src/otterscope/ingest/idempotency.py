"""Idempotency keys on ingest: one request's data is stored once however often it is sent.

A sender may name a request with an ``Idempotency-Key`` (HTTP header, or gRPC metadata
``idempotency-key``). Keys are scoped by tenant and signal. A request whose key was
committed (within ``ingest.idempotency_ttl``) is answered as a success with nothing stored
and ``Idempotency-Replayed: true``; a request whose key another request is processing right
now waits for that outcome: the other's commit makes it a replay, the other's failure lets
it try for itself. The store commits a key with its rows (see
``store/embedded/idempotency.py``), so the answer never depends on timing or a restart.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Callable

from otterscope.errors import BadRequest

HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotency-Replayed"
MAX_LENGTH = 256

Ident = tuple[str, str, str]  # tenant, signal, key


def parse_key(value: str | None) -> str | None:
    """The key a request names, or None; 400 for one that cannot be a key."""
    if value is None:
        return None
    key = value.strip()
    if not key or len(key) > MAX_LENGTH or not all(" " < c <= "~" for c in key):
        raise BadRequest(
            f"{HEADER} must be 1 to {MAX_LENGTH} visible ASCII characters "
            "(for example a hex digest of the request body)"
        )
    return key


class KeyGate:
    """Lets one request at a time process a given key; the others wait for its outcome."""

    def __init__(self, committed: Callable[[str, str, str], bool]) -> None:
        self._committed = committed
        self._lock = threading.Lock()
        self._busy: dict[Ident, concurrent.futures.Future[None]] = {}

    @contextlib.asynccontextmanager
    async def claim(self, tenant: str, signal: str, key: str | None) -> AsyncIterator[bool]:
        """Yield True when the key is already committed (answer it, store nothing), else
        False with the key held until the block ends (its commit, or its failure). A
        request without a key holds nothing."""
        if key is None:
            yield False
            return
        ident = (tenant, signal, key)
        while True:
            with self._lock:
                if self._committed(*ident):
                    mine = None
                    break
                other = self._busy.get(ident)
                if other is None:
                    mine = self._busy[ident] = concurrent.futures.Future()
                    break
            # Shielded: a waiter that gives up must not cancel the other request's outcome.
            await asyncio.shield(asyncio.wrap_future(other))
        if mine is None:
            yield True
            return
        try:
            yield False
        finally:
            with self._lock:
                del self._busy[ident]
            mine.set_result(None)
