"""The membership filters kept beside span files never drop a span.

A trace by id reads only the files whose trace filter may hold the id; every lookup runs
twice on the same real store, as it is and with every filter ignored (every file read, as
files sealed before the filters existed still are): traces spread over several files,
hours and hot rows, duplicates, deleted traces and spans (pending and rewritten), pinned
lookups, and after a restart. Filters are written again for files that lost them, and
ignored when they name other rows or were hashed by another DuckDB.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otterscope.query.model import TraceQuery
from otterscope.store.base import Row
from otterscope.store.embedded import filters
from otterscope.store.embedded.store import EmbeddedStore
from tests.test_store_embedded import HOUR, MS, SEC, T0, resource, span, write_spans


def lookups(store: EmbeddedStore, ids: list[bytes]) -> list[list[Row]]:
    return [store.get_traces("default", [i]) for i in ids] + [store.get_traces("default", ids)]


def unfiltered(store: EmbeddedStore, ids: list[bytes]) -> list[list[Row]]:
    """The same lookups with every file's filters ignored: every file is read."""
    real = store._attr_indexes.filters
    store._attr_indexes.filters = lambda path: None  # type: ignore[method-assign]
    try:
        return lookups(store, ids)
    finally:
        store._attr_indexes.filters = real  # type: ignore[method-assign]


def tid(n: int) -> bytes:
    return (n + 1).to_bytes(2, "big") * 8


SPANS = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 2), st.booleans()),  # trace, hour, twice
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    parts=st.lists(SPANS, min_size=1, max_size=3),
    hot=SPANS,
    deleted=st.sets(st.integers(0, 40), max_size=3),
    deleted_spans=st.sets(st.integers(1, 200), max_size=3),
    apply=st.booleans(),
)
def test_a_lookup_by_id_finds_what_reading_every_file_finds(
    parts: list[list[tuple[int, int, bool]]],
    hot: list[tuple[int, int, bool]],
    deleted: set[int],
    deleted_spans: set[int],
    apply: bool,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        store = EmbeddedStore(data)
        try:
            n = 0
            spans: dict[int, list[bytes]] = {}
            for i, rows in enumerate([*parts, hot]):
                made = []
                for trace, hour, twice in rows:
                    n += 1
                    one = span(
                        tid(trace), n.to_bytes(8, "big"), "op", T0 + hour * HOUR + n * SEC, MS
                    )
                    made += [one, one] if twice else [one]
                    spans.setdefault(trace, []).append(n.to_bytes(8, "big"))
                write_spans(store, [(resource("svc"), made)])
                if i < len(parts):
                    store.seal_now()
            for trace in deleted:
                store.delete("default", tid(trace))
            everything = [s for found in spans.values() for s in found]
            for number in deleted_spans:
                if number <= len(everything):
                    one = everything[number - 1]
                    owner = next(t for t, found in spans.items() if one in found)
                    store.delete("default", tid(owner), one)
            if apply:
                store.maintain(T0, retention=False)  # rewrites the files that hold them
            ids = [tid(t) for t in range(42)]  # stored ones, and 41 that never was
            # Sealing and rewrites keep filters for every file they write.
            assert all(
                store._attr_indexes.filters(f.path) is not None
                for f in store._files
                if f.signal == "traces"
            )
            found = lookups(store, ids)
            assert found == unfiltered(store, ids)
            assert sum(len(f) for f in found[:-1]) == len(found[-1])
        finally:
            store.close()
        again = EmbeddedStore(data)  # a restart reads the filters back
        try:
            assert lookups(again, ids) == found
        finally:
            again.close()


def test_a_bloom_filter_holds_every_id_it_was_built_from() -> None:
    ids = [os.urandom(16) for _ in range(3000)] + [bytes(16), b"\x01" * 16]
    built = filters.build(pa.array(ids, pa.binary()), None, None, {})
    con = duckdb.connect()
    try:
        assert all(built.traces.may_hold(h) for h in filters.trace_hashes(con, ids))
        others = filters.trace_hashes(con, [os.urandom(16) for _ in range(3000)])
    finally:
        con.close()
    # 8 bits and 5 probes per id: about 2% of other ids pass.
    assert sum(built.traces.may_hold(h) for h in others) < 3000 * 0.05


def _filter_files(data: Path) -> list[Path]:
    return sorted((data / "attr-index").rglob("*.flt"))


def _one_sealed_file(data: Path) -> Path:
    """Seal 50 spans of 50 traces into one file of a store at ``data``, closed; the path
    of that file's filters."""
    store = EmbeddedStore(data)
    try:
        spans = [span(tid(i), b"s" * 8, "op", T0 + i * SEC, MS) for i in range(50)]
        write_spans(store, [(resource("svc"), spans)])
        store.seal_now()
    finally:
        store.close()
    (kept,) = _filter_files(data)
    return kept


def test_a_long_head_is_current(tmp_path: Path) -> None:
    """A file with many services has a head longer than a disk block; maintenance still
    sees its filters as written (else it would write them again on every pass)."""
    made = filters.build(
        pa.array([tid(1)], pa.binary()), None, None, {f"svc-{i:04}": i for i in range(500)}
    )
    path = tmp_path / "seg-1.x.flt"
    filters.write(made, path, "x")
    assert path.read_bytes().index(b"\n", len(filters.MAGIC)) > 4096
    assert filters.current(path, "x")
    assert filters.read(path, "x") == made
    assert not filters.current(path, "y")


def test_filters_are_written_again_and_ignored_when_they_do_not_fit(tmp_path: Path) -> None:
    """Maintenance writes the filters of a file that has none (sealed before they were
    kept); a filter file of other rows (an id the data file does not name) or hashed by a
    DuckDB that hashes the probes otherwise is not used; retention removes them."""
    data = tmp_path / "data"
    kept = _one_sealed_file(data)
    original = kept.read_bytes()
    kept.unlink()

    store = EmbeddedStore(data)
    try:
        (f,) = [f for f in store._files if f.signal == "traces"]
        assert store._attr_indexes.filters(f.path) is None
        assert len(store.get_trace("default", tid(7))) == 1  # read as before
        store.maintain(T0, retention=False)
        assert _filter_files(data) == [kept]
        assert kept.read_bytes() == original  # the same bits as sealing wrote
        assert store._attr_indexes.filters(f.path) is not None
        assert len(store.get_trace("default", tid(7))) == 1
    finally:
        store.close()

    ident = kept.name.split(".")[1]
    assert filters.read(kept, "0" * 24) is None  # other rows
    head_end = original.index(b"\n", len(filters.MAGIC))
    wrong = original.replace(b'"probes":[', b'"probes":[1', 1)
    assert wrong != original
    kept.write_bytes(wrong)
    assert filters.read(kept, ident) is None  # another DuckDB's hash
    kept.write_bytes(original[: head_end + 10])
    assert filters.read(kept, ident) is None  # torn
    flipped = bytearray(original)
    flipped[head_end + 1] ^= 0x01  # one bit of the trace filter
    kept.write_bytes(bytes(flipped))
    assert filters.read(kept, ident) is None  # damaged: it could hide the file's spans
    probes = f",{filters.TRACE_PROBES},".encode()
    assert probes in original[:head_end]
    kept.write_bytes(original.replace(probes, b",99,", 1))
    assert filters.read(kept, ident) is None  # more probes than any filter is built with
    kept.write_bytes(original)
    assert filters.read(kept, ident) is not None

    kept.write_bytes(wrong)  # maintenance writes them again for this DuckDB
    store = EmbeddedStore(data)
    try:
        store.maintain(T0, retention=False)
        assert kept.read_bytes() == original
    finally:
        store.close()

    store = EmbeddedStore(data)
    try:
        store.maintain(T0 + 30 * 24 * HOUR)  # past retention
        assert _filter_files(data) == []
    finally:
        store.close()


def test_maintenance_moves_aside_summaries_it_cannot_read(tmp_path: Path) -> None:
    """Summaries whose footer reads but whose pages do not: maintenance, writing the
    file's filters from them, moves them into the quarantine instead of failing every
    pass, writes them again, and then the filters."""
    data = tmp_path / "data"
    kept = _one_sealed_file(data)
    kept.unlink()
    (summaries,) = sorted((data / "attr-index").rglob("*.sum"))
    body = bytearray(summaries.read_bytes())
    body[4:64] = b"\xff" * 60  # the first pages, not the footer
    summaries.write_bytes(bytes(body))

    store = EmbeddedStore(data)
    try:
        store.maintain(T0, retention=False)
        assert [p.name for p in (data / "quarantine").rglob("*.sum*")]
        store.maintain(T0, retention=False)  # summaries, then filters, again
        store.maintain(T0, retention=False)
        assert _filter_files(data) == [kept]
        assert len(store.get_trace("default", tid(7))) == 1
    finally:
        store.close()


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    parts=st.lists(
        st.lists(  # trace, hour, service, duration in ms
            st.tuples(st.integers(0, 20), st.integers(0, 2), st.integers(0, 3), st.integers(1, 9)),
            min_size=1,
            max_size=25,
        ),
        min_size=1,
        max_size=4,
    ),
    deleted=st.sets(st.integers(0, 20), max_size=3),
    apply=st.booleans(),
    queries=st.lists(
        st.tuples(st.integers(0, 4), st.one_of(st.none(), st.integers(1, 10)), st.integers(1, 8)),
        min_size=1,
        max_size=5,
    ),
)
def test_a_service_and_duration_search_finds_what_reading_every_file_finds(
    parts: list[list[tuple[int, int, int, int]]],
    deleted: set[int],
    apply: bool,
    queries: list[tuple[int, int | None, int]],
) -> None:
    """Files whose longest span of the service is shorter than asked are left out; the
    answers (every page) are those of reading every file. The last part stays hot."""
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(Path(tmp) / "data")
        try:
            n = 0
            for i, rows in enumerate(parts):
                groups = []
                for trace, hour, svc, ms in rows:
                    n += 1
                    one = span(
                        tid(trace), n.to_bytes(8, "big"), "op", T0 + hour * HOUR + n * SEC, ms * MS
                    )
                    groups.append((resource(f"svc{svc}"), [one]))
                write_spans(store, groups)
                if i < len(parts) - 1 or len(parts) == 1:
                    store.seal_now()
            for trace in deleted:
                store.delete("default", tid(trace))
            if apply:
                store.maintain(T0, retention=False)
            for svc, ms, limit in queries:
                q = TraceQuery(
                    T0 - HOUR,
                    T0 + 4 * HOUR,
                    limit=limit,
                    service=f"svc{svc}",
                    min_duration_ns=None if ms is None else ms * MS,
                )
                real = store._attr_indexes.filters
                store._attr_indexes.filters = lambda path: None  # type: ignore[method-assign]
                try:
                    expected = store.search_traces("default", q).items
                finally:
                    store._attr_indexes.filters = real  # type: ignore[method-assign]
                assert store.search_traces("default", q).items == expected
        finally:
            store.close()


def test_filters_know_each_services_longest_span(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = EmbeddedStore(data)
    try:
        write_spans(
            store,
            [
                (resource("a"), [span(tid(1), b"s" * 8, "op", T0, 5 * MS)]),
                (resource("b"), [span(tid(2), b"t" * 8, "op", T0 + SEC, 9 * MS)]),
                (resource("a"), [span(tid(3), b"u" * 8, "op", T0 + 2 * SEC, 7 * MS)]),
            ],
        )
        store.seal_now()
        (f,) = [f for f in store._files if f.signal == "traces"]
        kept = store._attr_indexes.filters(f.path)
        assert kept is not None and kept.durations == {"a": 7 * MS, "b": 9 * MS}
        assert kept.may_meet("a", 7 * MS) and not kept.may_meet("a", 7 * MS + 1)
        assert not kept.may_meet("c", None) and kept.may_meet("b", None)
        q = TraceQuery(T0 - HOUR, T0 + HOUR, service="a", min_duration_ns=8 * MS)
        assert store.search_traces("default", q).items == []
        q = TraceQuery(T0 - HOUR, T0 + HOUR, service="a", min_duration_ns=6 * MS)
        assert [t.trace_id for t in store.search_traces("default", q).items] == [tid(3)]
    finally:
        store.close()
