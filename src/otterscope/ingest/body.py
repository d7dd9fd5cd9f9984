"""Request bodies: content negotiation and streamed, bounded decompression.

Decompression is incremental and stops as soon as the output passes the body limit, so a
small compressed bomb costs at most the limit in memory, never its expanded size.
"""

from __future__ import annotations

import asyncio
import io
import zlib
from collections.abc import AsyncIterator
from typing import Protocol

import zstandard

from otterscope.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from otterscope.ingest.budget import Lease
from otterscope.otlp.wire import Format

CONTENT_TYPES: dict[str, Format] = {
    "application/x-protobuf": "protobuf",
    "application/protobuf": "protobuf",
    "application/json": "json",
}
ENCODINGS = ("gzip", "deflate", "zstd", "identity")
_SUPPORTED = (
    "supported content types: application/x-protobuf, application/json; "
    "supported encodings: gzip, deflate, zstd, identity"
)


def negotiate(content_type: str | None, content_encoding: str | None) -> tuple[Format, str]:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    fmt = CONTENT_TYPES.get(media)
    if fmt is None:
        raise UnsupportedMediaType(f"unsupported content type {media or '(none)'!r}; {_SUPPORTED}")
    encoding = (content_encoding or "identity").strip().lower() or "identity"
    if encoding not in ENCODINGS:
        raise UnsupportedMediaType(f"unsupported content encoding {encoding!r}; {_SUPPORTED}")
    return fmt, encoding


class _Decoder(Protocol):
    def feed(self, chunk: bytes, room: int) -> bytes: ...
    def finish(self) -> None: ...


class _Identity:
    def feed(self, chunk: bytes, room: int) -> bytes:
        return chunk

    def finish(self) -> None:
        return None


class _Zlib:
    def __init__(self, wbits: int, members: bool) -> None:
        self._wbits = wbits
        self._members = members  # gzip allows several members back to back
        self._d = zlib.decompressobj(wbits)

    def feed(self, chunk: bytes, room: int) -> bytes:
        data = self._d.unconsumed_tail + chunk
        out: list[bytes] = []
        produced = 0
        try:
            while True:
                # Ask for at most one byte more than fits: enough to detect an overflow.
                piece = self._d.decompress(data, room - produced + 1)
                out.append(piece)
                produced += len(piece)
                if not (self._d.eof and self._d.unused_data) or produced > room:
                    break
                if not self._members:
                    raise BadRequest("body has data after the end of its deflate stream")
                data = self._d.unused_data
                self._d = zlib.decompressobj(self._wbits)
        except zlib.error as exc:
            raise BadRequest(f"body is not valid compressed data: {exc}") from None
        return b"".join(out)

    def pending(self) -> bool:
        return bool(self._d.unconsumed_tail)

    def finish(self) -> None:
        if not self._d.eof:
            raise BadRequest("compressed body is truncated")


class _Zstd:
    """zstd has no output cap per call, so the whole frame is read through a bounded reader."""

    def __init__(self) -> None:
        self._compressed: list[bytes] = []

    def feed(self, chunk: bytes, room: int) -> bytes:
        self._compressed.append(chunk)
        return b""

    def has_data(self) -> bool:
        return bool(self._compressed)

    def finish_bounded(self, limit: int) -> bytes:
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(b"".join(self._compressed)), read_across_frames=True
        )
        try:
            out = reader.read(limit + 1)
            if len(out) <= limit:
                self._check_complete()
        except zstandard.ZstdError as exc:
            raise BadRequest(f"body is not valid zstd data: {exc}") from None
        return out

    def _check_complete(self) -> None:
        """The bounded reader stops quietly at a truncated frame; a second pass (bounded by
        the output just read) tells a whole body from a cut one."""
        data = b"".join(self._compressed)
        while data:
            d = zstandard.ZstdDecompressor().decompressobj()
            d.decompress(data)
            if not d.eof:
                raise BadRequest("compressed body is truncated")
            data = d.unused_data

    def finish(self) -> None:
        return None


def _decoder(encoding: str) -> _Decoder:
    if encoding == "gzip":
        return _Zlib(16 + zlib.MAX_WBITS, members=True)
    if encoding == "deflate":
        return _Zlib(zlib.MAX_WBITS, members=False)
    if encoding == "zstd":
        return _Zstd()
    return _Identity()


# Neither a protobuf message (0x1f has wire type 7; 0x28 starts a field no OTLP request
# has) nor JSON starts with these: such a body was compressed and the header left out.
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"))


def _check_not_compressed(body: bytes) -> None:
    for magic, name in _MAGIC:
        if body.startswith(magic):
            raise BadRequest(
                f"the body looks {name}-compressed (it starts with {magic.hex(' ')}) but the "
                f"request has no Content-Encoding header: send Content-Encoding: {name}"
            )


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds the limit of {limit} bytes after decompression")


async def read_body(chunks: AsyncIterator[bytes], encoding: str, limit: int, lease: Lease) -> bytes:
    """Read and decompress a body, holding its bytes in ``lease``; raise at ``limit``."""
    decoder = _decoder(encoding)
    parts: list[bytes] = []
    size = 0
    compressed = 0
    async for chunk in chunks:
        if not chunk:
            continue
        if encoding != "identity":
            compressed += len(chunk)
            if compressed > limit:
                raise _too_large(limit)
            lease.take(len(chunk))
        out = decoder.feed(chunk, limit - size)
        while True:
            size += len(out)
            if size > limit:
                raise _too_large(limit)
            if out:
                lease.take(len(out))
                parts.append(out)
            if isinstance(decoder, _Zlib) and decoder.pending():
                out = decoder.feed(b"", limit - size)
                continue
            break
    if isinstance(decoder, _Zstd):
        if not decoder.has_data():
            return b""
        # Decompressing (and checking) 16 MiB of zstd takes tens of milliseconds; zstandard
        # releases the GIL meanwhile, so in a thread it does not hold up the event loop.
        out = await asyncio.to_thread(decoder.finish_bounded, limit)
        if len(out) > limit:
            raise _too_large(limit)
        lease.take(len(out))
        return out
    if encoding != "identity" and compressed == 0:
        # An empty compressed body is an empty message, as senders mean it.
        return b""
    decoder.finish()
    body = b"".join(parts)
    if encoding == "identity":
        _check_not_compressed(body)
    return body
