"""The trace summaries kept at sealing never change what a trace search answers.

Every search runs twice on the same real store: as it is (a trace held by one file only
gets the summary sealing kept) and with every kept summary ignored, which summarises each
trace from its spans as files sealed before the summaries existed still are. Traces spread
over several files, hours and hot rows, roots missing or arriving late, duplicates in one
file and across files, deleted traces and spans, errors, and searches pinned before later
files were sealed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otterscope.query.model import TraceQuery, TraceSummary
from otterscope.store.embedded import attrindex
from otterscope.store.embedded.store import EmbeddedStore
from tests.test_store_embedded import HOUR, MINUTE, MS, SEC, T0, resource, span, write_spans

WINDOW = {"start_ns": T0 - HOUR, "end_ns": T0 + 3 * HOUR}


def results(store: EmbeddedStore, q: TraceQuery) -> list[TraceSummary]:
    return store.search_traces("default", q).items


def from_spans(store: EmbeddedStore, q: TraceQuery) -> list[TraceSummary]:
    """The same search with every kept summary ignored: each trace summarised from its
    spans."""
    real = store._attr_indexes.summaries
    store._attr_indexes.summaries = lambda path: None  # type: ignore[method-assign]
    try:
        return results(store, q)
    finally:
        store._attr_indexes.summaries = real  # type: ignore[method-assign]


# (trace, parent: -1 root / -2 a parent that never arrives / k: span k of the trace,
#  hour 0-2, service, error, sent twice)
SPAN = st.tuples(
    st.integers(0, 4),
    st.integers(-2, 3),
    st.integers(0, 2),
    st.integers(0, 2),
    st.booleans(),
    st.booleans(),
)
PARTS = st.lists(st.lists(SPAN, min_size=1, max_size=12), min_size=1, max_size=4)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    parts=PARTS,
    hot=st.lists(SPAN, max_size=6),
    deleted=st.sets(st.integers(0, 4), max_size=2),
    deleted_span=st.one_of(st.none(), st.tuples(st.integers(0, 4), st.integers(0, 3))),
    queries=st.lists(
        st.tuples(
            st.sampled_from([None, "svc0", "svc1", "svc2"]),
            st.sampled_from([None, 2]),
            st.integers(1, 6),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_kept_summaries_answer_as_the_spans_do(
    parts: list[list[tuple[int, int, int, int, bool, bool]]],
    hot: list[tuple[int, int, int, int, bool, bool]],
    deleted: set[int],
    deleted_span: tuple[int, int] | None,
    queries: list[tuple[str | None, int | None, int]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(Path(tmp) / "data")
        try:
            counts = [0] * 5  # spans written per trace: span k of a trace has id (t, k)
            pins = []

            def send(rows: list[tuple[int, int, int, int, bool, bool]]) -> None:
                groups = []
                for tid, parent, hour, svc, error, twice in rows:
                    k = counts[tid]
                    counts[tid] += 1
                    if parent == -1:
                        up = b""
                    elif parent == -2:
                        up = bytes([tid + 1, 0xEE]) + b"\0" * 6
                    else:
                        up = bytes([tid + 1, parent]) + b"\0" * 6
                    made = span(
                        bytes([tid + 1]) * 16,
                        bytes([tid + 1, k]) + b"\0" * 6,
                        f"op{k % 3}",
                        T0 + hour * HOUR + k * SEC,
                        (k + 1) * MS,
                        parent=up,
                        status=2 if error else 0,
                    )
                    groups.append((resource(f"svc{svc}"), [made, made] if twice else [made]))
                write_spans(store, groups)

            for rows in parts:
                # A pin between two writes of one file: a search pinned there must not
                # count the file's later spans.
                send(rows[: len(rows) // 2])
                pins.append(store.last_seq())
                send(rows[len(rows) // 2 :])
                store.seal_now()  # one file per hour of this part
            pins.append(store.last_seq())  # every file within it, the hot rows past it
            send(hot)
            for tid in deleted:
                store.delete("default", bytes([tid + 1]) * 16)
            if deleted_span is not None:
                tid, k = deleted_span
                store.delete("default", bytes([tid + 1]) * 16, bytes([tid + 1, k]) + b"\0" * 6)
            for pin in [None, *pins]:
                for service, errors, limit in queries:
                    q = TraceQuery(
                        **WINDOW,
                        limit=limit,
                        service=service,
                        status=errors,
                        pin_seq=pin,
                    )
                    assert results(store, q) == from_spans(store, q), (pin, service)
            store.maintain(T0, retention=False)  # rewrites files without deleted rows
            q = TraceQuery(**WINDOW, limit=10)
            assert results(store, q) == from_spans(store, q)
        finally:
            store.close()


def test_sealing_keeps_one_summary_per_trace_of_the_file(tmp_path: Path) -> None:
    """What sealing writes beside a span file: per trace, its root, start, duration, span
    and error counts and services, under the file's id, with the file's largest ingest
    number."""
    store = EmbeddedStore(tmp_path / "data")
    try:
        a, b = b"\xaa" * 16, b"\xbb" * 16
        root = span(a, b"\x01" * 8, "GET /", T0, 50 * MS)
        child = span(a, b"\x02" * 8, "db", T0 + MS, 10 * MS, parent=b"\x01" * 8, status=2)
        orphan = span(b, b"\x03" * 8, "late", T0 + SEC, 5 * MS, parent=b"\x09" * 8)
        write_spans(store, [(resource("web"), [root, orphan]), (resource("db"), [child, child])])
        store.seal_now()
        (path,) = (tmp_path / "data" / "parquet" / "traces").rglob("*.parquet")
        kept = store._attr_indexes.summaries(path)
        assert kept is not None and kept.max_seq == store.last_seq()
        rows = {r["trace_id"]: r for r in pq.read_table(kept.path).to_pylist()}
        assert rows[a] == {
            "trace_id": a,
            "root_service": "web",
            "root_name": "GET /",
            "root_missing": False,
            "start_ns": T0,
            "duration_ns": 50 * MS,
            "span_count": 2,
            "error_count": 1,
            "services": '["db","web"]',
        }
        assert rows[b]["root_missing"] is True and rows[b]["root_name"] == "late"
        ident = (pq.read_metadata(path).metadata or {})[attrindex.ID_META].decode()
        assert kept.path.name == f"{path.stem}.{ident}.sum"
    finally:
        store.close()


def test_summaries_are_kept_for_files_sealed_before_they_existed(tmp_path: Path) -> None:
    """A span file sealed with an attribute index but without kept summaries (an older
    release) gets them from maintenance, and a file whose summaries belong to other rows
    (an id its footer does not name) is summarised from its spans, with the same answer."""
    data = tmp_path / "data"
    store = EmbeddedStore(data)
    try:
        spans = [
            span(bytes([i % 4 + 1]) * 16, (i + 1).to_bytes(8, "big"), "op", T0 + i * MS, MS)
            for i in range(40)
        ]
        write_spans(store, [(resource("svc"), spans)])
        store.seal_now()
        q = TraceQuery(start_ns=T0 - MINUTE, end_ns=T0 + MINUTE)
        expected = results(store, q)
        assert len(expected) == 4 and all(t.span_count == 10 for t in expected)
    finally:
        store.close()
    (kept,) = (data / "attr-index").rglob("*.sum")
    other = kept.with_name(kept.name.replace(kept.name.split(".")[1], "0" * 24))
    kept.rename(other)
    store = EmbeddedStore(data)
    try:
        (path,) = (data / "parquet" / "traces").rglob("*.parquet")
        assert store._attr_indexes.summaries(path) is None
        assert results(store, q) == expected
        store.maintain(T0, retention=False)
        assert store._attr_indexes.summaries(path) is not None
        assert kept.exists()
        assert results(store, q) == expected
    finally:
        store.close()
    # A rewrite or a deleted file takes its kept summaries with it.
    store = EmbeddedStore(data)
    try:
        store.delete("default", b"\x01" * 16)
        store.maintain(T0, retention=False)
        left = results(store, q)
        assert len(left) == 3
        assert not kept.exists() and not other.exists()
        assert len(list((data / "attr-index").rglob("*.sum"))) == 1
    finally:
        store.close()


def test_damaged_summaries_are_quarantined_and_written_again(tmp_path: Path) -> None:
    """Kept summaries whose pages are unreadable (the footer intact, so they look usable)
    do not fail searches: the file goes to the quarantine, its traces are summarised from
    their spans, and maintenance writes the summaries again."""
    data = tmp_path / "data"
    store = EmbeddedStore(data)
    try:
        spans = [
            span(bytes([i % 4 + 1]) * 16, (i + 1).to_bytes(8, "big"), "op", T0 + i * MS, MS)
            for i in range(40)
        ]
        write_spans(store, [(resource("svc"), spans)])
        store.seal_now()
        q = TraceQuery(start_ns=T0 - MINUTE, end_ns=T0 + MINUTE)
        expected = results(store, q)
    finally:
        store.close()
    (kept,) = (data / "attr-index").rglob("*.sum")
    body = bytearray(kept.read_bytes())
    body[4:200] = b"\xff" * 196  # the first pages; the footer still reads
    kept.write_bytes(bytes(body))
    store = EmbeddedStore(data)
    try:
        assert results(store, q) == expected
        assert not kept.exists()
        assert [p.name for p in (data / "quarantine").rglob("*.sum*")]
        store.maintain(T0, retention=False)
        assert kept.exists()
        assert results(store, q) == expected
    finally:
        store.close()
