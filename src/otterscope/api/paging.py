"""Cursor paging for the API: where a request starts, and the cursor for the next page.

A first page resolves its time window (the default one is relative to now) and pins the
ingest point; both travel in the cursor, so every later page reads the same rows in the
same window, whatever arrived meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from otterscope.api.auth import Principal
from otterscope.query.cursor import CursorCodec, Position, query_digest
from otterscope.query.model import LogQuery, TraceQuery

Q = TypeVar("Q", TraceQuery, LogQuery)


@dataclass(frozen=True, slots=True)
class Paging:
    """One request's place in a paged read."""

    codec: CursorCodec
    tenant: str
    endpoint: str
    digest: bytes
    position: Position | None  # None: the first page

    def window(self, start_ns: int, end_ns: int) -> tuple[int, int]:
        """The window to read: the first page's, once paging has started."""
        if self.position is None:
            return start_ns, end_ns
        return self.position.start_ns, self.position.end_ns

    @property
    def pin(self) -> int | None:
        return self.position.pin if self.position is not None else None

    @property
    def after(self) -> tuple[Any, ...] | None:
        return self.position.after if self.position is not None else None

    def resume(self, query: Q, key: Callable[[tuple[Any, ...]], Any]) -> Q:
        """``query`` as this page reads it: the first page's window and pin, and after the
        last item of the previous page (``key`` types the cursor's values)."""
        start_ns, end_ns = self.window(query.start_ns, query.end_ns)
        after = self.after
        return replace(
            query,
            start_ns=start_ns,
            end_ns=end_ns,
            pin_seq=self.pin,
            after=key(after) if after is not None else None,
        )

    def next_cursor(
        self, pin: int, window: tuple[int, int], more: bool, last: tuple[Any, ...] | None
    ) -> str | None:
        if not more or last is None:
            return None
        return self.codec.encode(
            self.tenant, self.endpoint, self.digest, Position(pin, window[0], window[1], last)
        )


def begin(
    codec: CursorCodec,
    who: Principal,
    endpoint: str,
    params: Iterable[tuple[str, str]],
    cursor: str | None,
) -> Paging:
    """Paging state from the request's parameters (all but ``cursor`` and ``limit`` bind it)."""
    digest = query_digest(params)
    position = codec.decode(cursor, who.tenant, endpoint, digest) if cursor else None
    return Paging(codec, who.tenant, endpoint, digest, position)
