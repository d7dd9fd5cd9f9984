"""A pinned search (a cursor's later pages) sees no row written after its pin, whether hot
rows or sealed files hold them, and every row before it. The searches leave the pin out of
their SQL when every file they read is within it and cut the hot rows instead; these tests
hold both ways."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from otterscope.query.model import LogQuery, TraceQuery
from otterscope.store.embedded.store import EmbeddedStore
from tests.test_store_embedded import (
    MINUTE,
    MS,
    SEC,
    T0,
    log,
    resource,
    span,
    write_logs,
    write_spans,
)

WINDOW = {"start_ns": T0 - MINUTE, "end_ns": T0 + MINUTE}


def _spans(store: EmbeddedStore, first: int, n: int) -> None:
    made = [
        span(bytes([i + 1]) * 16, bytes([i + 1]) * 8, "op", T0 + i * SEC, MS)
        for i in range(first, first + n)
    ]
    write_spans(store, [(resource("svc"), made)])


def _logs(store: EmbeddedStore, first: int, n: int) -> None:
    made = [log(T0 + i * SEC, f"line {i} timeout") for i in range(first, first + n)]
    write_logs(store, [(resource("svc"), made)])


def _traces(store: EmbeddedStore, pin: int | None) -> int:
    return len(store.search_traces("default", TraceQuery(**WINDOW, pin_seq=pin)).items)


def _lines(store: EmbeddedStore, pin: int | None) -> int:
    q = LogQuery(**WINDOW, text="TIMEOUT", pin_seq=pin)
    return len(store.search_logs("default", q).items)


@pytest.mark.parametrize(
    ("write", "count"), [(_spans, _traces), (_logs, _lines)], ids=["traces", "logs"]
)
def test_a_pinned_search_sees_exactly_the_rows_before_its_pin(
    tmp_path: Path,
    write: Callable[[EmbeddedStore, int, int], None],
    count: Callable[[EmbeddedStore, int | None], int],
) -> None:
    store = EmbeddedStore(tmp_path / "data")
    try:
        write(store, 0, 5)
        store.seal_now()
        sealed_pin = store.last_seq()  # every file within it
        write(store, 5, 3)  # hot rows past it
        assert count(store, sealed_pin) == 5
        assert count(store, None) == 8
        hot_pin = store.last_seq()
        write(store, 8, 2)
        assert count(store, hot_pin) == 8  # older hot rows in, newer ones out
        store.seal_now()  # now a file holds rows past both pins
        assert count(store, sealed_pin) == 5
        assert count(store, hot_pin) == 8
        assert count(store, None) == 10
    finally:
        store.close()
