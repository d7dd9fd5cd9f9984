"""Bounded decompression of request bodies: whole bodies pass, cut or padded ones do not."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator

import pytest
import zstandard

from otterscope.errors import BadRequest, PayloadTooLarge
from otterscope.ingest.body import read_body
from otterscope.ingest.budget import Lease, MemoryBudget

TEXT = b"otterscope keeps every span " * 50


async def _chunks(body: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


def read(body: bytes, encoding: str, limit: int = 1 << 20) -> bytes:
    lease = Lease(MemoryBudget(1 << 30, 1))
    try:
        return asyncio.run(read_body(_chunks(body), encoding, limit, lease))
    finally:
        lease.release()


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("zstd", zstandard.ZstdCompressor().compress),
        ("identity", bytes),
    ],
)
def test_whole_bodies_come_back_exactly(encoding: str, compress: object) -> None:
    assert read(compress(TEXT), encoding) == TEXT  # type: ignore[operator]


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("zstd", zstandard.ZstdCompressor().compress),
    ],
)
def test_a_cut_body_is_a_bad_request_not_an_empty_one(encoding: str, compress: object) -> None:
    whole: bytes = compress(TEXT)  # type: ignore[operator]
    for cut in (12, len(whole) // 2, len(whole) - 1):
        with pytest.raises(BadRequest):
            read(whole[:cut], encoding)


def test_gzip_members_are_all_read_and_trailing_junk_refused() -> None:
    assert read(gzip.compress(b"one ") + gzip.compress(b"two"), "gzip") == b"one two"
    with pytest.raises(BadRequest):
        read(gzip.compress(TEXT) + b"junk", "gzip")
    with pytest.raises(BadRequest):
        read(zlib.compress(TEXT) + b"junk", "deflate")


def test_an_empty_compressed_body_is_an_empty_message() -> None:
    assert read(b"", "gzip") == b""
    assert read(b"", "zstd") == b""


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("zstd", zstandard.ZstdCompressor().compress)],
)
def test_the_limit_applies_after_decompression(encoding: str, compress: object) -> None:
    body: bytes = compress(bytes(100_000))  # type: ignore[operator]
    assert len(body) < 1000
    with pytest.raises(PayloadTooLarge):
        read(body, encoding, limit=50_000)
