"""The idempotency keys the store has committed: which (tenant, signal, key) already stored.

A key is committed with its rows, in the same group commit and in the same log record: it
travels as custom metadata of the Arrow IPC record batch that holds its signal's rows in the
hot segment's log. A torn tail drops both; an fdatasync'ed record keeps both. So a crash can
never keep a request's rows without its key, or its key without its rows.

A segment's logs are deleted once it is sealed, so sealing first appends the segment's keys
to ``<data-dir>/idempotency-keys.jsonl`` and fsyncs it, before the segment's sealed marker is
written. The maintenance thread rewrites that file without the keys that have expired
(``ingest.idempotency_ttl``) once it holds more dead lines than live ones. In memory the keys
are one index bounded by ``ingest.idempotency_max_keys`` (the oldest are forgotten first).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from otterscope.durable import fsync_path, write_durably

log = logging.getLogger("otterscope.store")

# The custom metadata key of a log record that carries the keys committed with its rows.
METADATA_KEY = b"otterscope.idempotency_keys"
FILE_NAME = "idempotency-keys.jsonl"


@dataclass(frozen=True, slots=True)
class CommittedKey:
    tenant: str
    signal: str
    key: str
    at: float  # Unix seconds of the commit that stored the key's rows


def to_metadata(keys: Sequence[CommittedKey]) -> dict[bytes, bytes]:
    """The custom metadata of a signal's log record for keys committed with its rows."""
    doc = [[k.tenant, k.key, k.at] for k in keys]
    return {METADATA_KEY: json.dumps(doc, separators=(",", ":")).encode()}


def from_metadata(signal: str, metadata: Mapping[bytes, bytes] | None) -> list[CommittedKey]:
    if not metadata or METADATA_KEY not in metadata:
        return []
    return [
        CommittedKey(str(t), signal, str(k), float(at))
        for t, k, at in json.loads(metadata[METADATA_KEY])
    ]


def _line(k: CommittedKey) -> bytes:
    doc = {"tenant": k.tenant, "signal": k.signal, "key": k.key, "at": k.at}
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


class KeyIndex:
    """Committed keys: looked up by the event loop, added by the writer thread after each
    commit, persisted and compacted by the maintenance thread."""

    def __init__(self, data_dir: Path, ttl_s: float, max_keys: int) -> None:
        self.path = data_dir / FILE_NAME
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._keys: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._file_lines = 0

    def load(self) -> None:
        """Read the persisted keys back (start-up, before any write)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        keys = []
        unreadable = 0
        for raw in data.splitlines():
            try:
                doc = json.loads(raw)
                keys.append(CommittedKey(doc["tenant"], doc["signal"], doc["key"], doc["at"]))
            except (ValueError, KeyError, TypeError):
                # Only the last line can be torn (a crash while appending), and the keys it
                # held are still in the unsealed segment's log, read back after this.
                unreadable += 1
        if unreadable or (data and not data.endswith(b"\n")):
            # Left in place, a torn line would swallow the first line appended after it.
            log.warning(
                "%s: %d unreadable line(s) left out; the file is rewritten without them",
                self.path,
                unreadable,
            )
            write_durably(self.path, b"".join(_line(k) for k in keys))
        self._file_lines = len(keys)
        self.add(keys)

    def add(self, keys: Iterable[CommittedKey]) -> None:
        with self._lock:
            index = self._keys
            for k in keys:
                ident = (k.tenant, k.signal, k.key)
                index.pop(ident, None)
                index[ident] = k.at
            while len(index) > self.max_keys:
                index.popitem(last=False)

    def committed(self, tenant: str, signal: str, key: str, now: float) -> bool:
        with self._lock:
            at = self._keys.get((tenant, signal, key))
        return at is not None and now - at < self.ttl_s

    def __len__(self) -> int:
        return len(self._keys)

    def persist(self, keys: Sequence[CommittedKey]) -> None:
        """Append a sealed segment's keys durably: they must outlive its logs."""
        if not keys:
            return
        new = not self.path.exists()
        with open(self.path, "ab") as f:
            size = f.tell()
            try:
                f.write(b"".join(_line(k) for k in keys))
                f.flush()
                os.fsync(f.fileno())
            except OSError:
                # A partial append (a full disk) is cut off, so the retry's lines start on
                # a line of their own.
                f.truncate(size)
                raise
        if new:
            fsync_path(self.path.parent)
        self._file_lines += len(keys)

    def compact(self, now: float) -> None:
        """Forget expired keys; rewrite the file once most of its lines are dead."""
        with self._lock:
            while self._keys:
                ident, at = next(iter(self._keys.items()))
                if now - at < self.ttl_s:
                    break
                del self._keys[ident]
            live = [CommittedKey(t, s, k, at) for (t, s, k), at in self._keys.items()]
        if self._file_lines <= max(2 * len(live), 1000):
            return
        # Keys of hot segments are written too: their rows are durable already, and a
        # repeated line when that segment is sealed is harmless.
        write_durably(self.path, b"".join(_line(k) for k in live))
        self._file_lines = len(live)
