"""Opaque paging cursors: encrypted, authenticated, bound to one tenant and one query.

A cursor carries the ingest sequence number its first page was read at (the pin: later
pages see only rows numbered up to it, so new arrivals never shift or repeat items) and the
sort key of the last item returned (the keyset position). Both are sealed with AES-256-GCM;
the associated data is the tenant, the endpoint and a digest of the query's parameters, so
a cursor that was modified, made by another key, or presented with another tenant or other
parameters fails authentication and is refused with a 400.

The key comes from ``storage.cursor_encryption_key`` or, when that is not set, from a random
key generated once into the data dir, so cursors survive restarts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from otterscope.durable import fsync_path
from otterscope.errors import BadRequest, ConfigError
from otterscope.quarantine import Quarantine

KEY_FILE = "cursor.key"
_VERSION = b"\x01"
_NONCE = 12


@dataclass(frozen=True, slots=True)
class Position:
    """Where a paged read stands: the pinned ingest point, the window, the last key."""

    pin: int
    start_ns: int
    end_ns: int
    after: tuple[Any, ...]


def _key_from_text(text: str) -> bytes:
    # Any secret of enough entropy will do; it is stretched to 32 bytes by SHA-256.
    if len(text) < 16:
        raise ConfigError("storage.cursor_encryption_key must be at least 16 characters")
    return hashlib.sha256(text.encode()).digest()


def load_key(configured: str | None, data_dir: Path, quarantine: Quarantine | None = None) -> bytes:
    """The configured key, else the data dir's own (created on first use, mode 0600). A
    damaged one is quarantined and replaced: only the cursors already handed out fail."""
    if configured:
        return _key_from_text(configured)
    path = data_dir / KEY_FILE
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        return _new_key(path)
    if len(key) != 32:
        (quarantine or Quarantine(data_dir)).move(
            path,
            "cursor_key",
            f"holds {len(key)} bytes, not 32; a new key is made",
            "the paging cursors already handed out (their next page is a 400: search again)",
        )
        return _new_key(path)
    return key


def _new_key(path: Path) -> bytes:
    key = secrets.token_bytes(32)
    tmp = path.with_name(KEY_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)
    fsync_path(path.parent)
    return key


def query_digest(params: Iterable[tuple[str, str]], ignore: Iterable[str] = ()) -> bytes:
    """A digest of the parameters that define a query (not ``cursor`` nor ``limit``)."""
    skip = {"cursor", "limit", *ignore}
    items = sorted((k, v) for k, v in params if k not in skip)
    return hashlib.sha256(orjson.dumps(items)).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encode_value(value: Any) -> Any:
    # Keys hold ints and ids; bytes are tagged so they come back as bytes.
    if isinstance(value, bytes):
        return {"b": value.hex()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        return bytes.fromhex(value["b"])
    return value


class CursorCodec:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def _context(self, tenant: str, endpoint: str, digest: bytes) -> bytes:
        return b"\0".join([_VERSION, tenant.encode(), endpoint.encode(), digest])

    def encode(self, tenant: str, endpoint: str, digest: bytes, position: Position) -> str:
        payload = orjson.dumps(
            [
                position.pin,
                position.start_ns,
                position.end_ns,
                [_encode_value(v) for v in position.after],
            ]
        )
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, payload, self._context(tenant, endpoint, digest))
        return _b64(_VERSION + nonce + sealed)

    def decode(self, token: str, tenant: str, endpoint: str, digest: bytes) -> Position:
        refused = BadRequest(
            "cursor is not valid for this query: it was changed, or belongs to other "
            "parameters, another endpoint or another tenant; start again without it"
        )
        try:
            raw = _unb64(token.strip())
        except (binascii.Error, ValueError):
            raise refused from None
        if len(raw) < 1 + _NONCE + 16 or raw[:1] != _VERSION:
            raise refused
        try:
            payload = self._aead.decrypt(
                raw[1 : 1 + _NONCE], raw[1 + _NONCE :], self._context(tenant, endpoint, digest)
            )
        except InvalidTag:
            raise refused from None
        pin, start_ns, end_ns, after = orjson.loads(payload)
        return Position(
            int(pin), int(start_ns), int(end_ns), tuple(_decode_value(v) for v in after)
        )
