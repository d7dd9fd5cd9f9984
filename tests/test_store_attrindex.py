"""The attribute index of sealed span files never changes what a search finds.

Every search is run twice on the same real store: as it is (files answered by their
attribute index where it can) and with every file's index ignored, which is the plain scan
that files sealed before the index existed still get. Random attributes of every type,
rare, frequent and missing values, span and resource attributes, duplicates, deletes, hot
and sealed rows.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otterscope.query.model import TraceQuery, TraceSummary
from otterscope.store.embedded import attrindex, trace_search
from otterscope.store.embedded.store import EmbeddedStore
from tests.test_store_embedded import MINUTE, MS, SEC, T0, resource, span, write_spans

KEYS = ["user.id", "code", "a/b", "x~y", "flag", "http.status_code"]
VALUES = st.one_of(
    st.sampled_from(["u1", "u2", "500", "200", "true", "", 'é"\\', "1.5", "[1]"]),
    st.integers(-3, 3),
    st.sampled_from([500, 200, 2**60, -(2**40)]),
    st.booleans(),
    st.sampled_from([1.5, 500.0, -0.25]),
    st.dictionaries(st.sampled_from(["p", "q"]), st.integers(0, 2), max_size=2),
)
ATTRS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4)


def text_of(value: Any) -> str:
    """The text a search value for ``value`` is written as (what a user would type)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def results(store: EmbeddedStore, q: TraceQuery) -> list[TraceSummary]:
    return store.search_traces("default", q).items


def pages(store: EmbeddedStore, q: TraceQuery, plain: bool = False) -> list[list[TraceSummary]]:
    """Every page of a search, as a cursor would walk them (with ``plain``, each a plain
    scan: ``scanned``)."""
    out: list[list[TraceSummary]] = []
    while len(out) < 50:
        found = store.search_traces("default", q) if not plain else None
        if found is None:
            real, kept = store._attr_indexes.get, store._attr_indexes.filters
            store._attr_indexes.get = lambda path: None  # type: ignore[method-assign]
            store._attr_indexes.filters = lambda path: None  # type: ignore[method-assign]
            try:
                found = store.search_traces("default", q)
            finally:
                store._attr_indexes.get = real  # type: ignore[method-assign]
                store._attr_indexes.filters = kept  # type: ignore[method-assign]
        out.append(found.items)
        if not found.more:
            return out
        last = found.items[-1]
        q = replace(q, pin_seq=found.pin, after=(last.start_ns, last.trace_id))
    raise AssertionError("more than 50 pages")


def scanned(store: EmbeddedStore, q: TraceQuery) -> list[TraceSummary]:
    """The same search with every file's attribute index and filters ignored: a plain
    scan of every file of the window (nothing is certain without the index, so no file is
    left out by counting)."""
    real, kept = store._attr_indexes.get, store._attr_indexes.filters
    store._attr_indexes.get = lambda path: None  # type: ignore[method-assign]
    store._attr_indexes.filters = lambda path: None  # type: ignore[method-assign]
    try:
        return results(store, q)
    finally:
        store._attr_indexes.get = real  # type: ignore[method-assign]
        store._attr_indexes.filters = kept  # type: ignore[method-assign]


SPAN = st.tuples(
    st.integers(0, 15),  # trace
    st.integers(0, 1),  # resource
    ATTRS,
    st.booleans(),  # sent twice
)
SPANS = st.lists(SPAN, min_size=1, max_size=30)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    sealed=SPANS | st.lists(SPAN, min_size=12, max_size=40),
    hot=SPANS,
    resources=st.lists(ATTRS, min_size=2, max_size=2),
    deleted=st.just(set()) | st.sets(st.integers(0, 15), max_size=2),
    rare_limit=st.sampled_from([0, 1, 64]),
    data=st.data(),
    pairs=st.booleans(),
    parts=st.integers(1, 4),
    first_scan=st.sampled_from([1, 3, 256]),
)
def test_indexed_search_finds_what_a_scan_finds(
    monkeypatch: pytest.MonkeyPatch,
    sealed: list[tuple[int, int, dict[str, Any], bool]],
    hot: list[tuple[int, int, dict[str, Any], bool]],
    resources: list[dict[str, Any]],
    deleted: set[int],
    rare_limit: int,
    data: st.DataObject,
    pairs: bool,
    parts: int,
    first_scan: int,
) -> None:
    # The rare limit decides which values a file lists and which it marks frequent.
    monkeypatch.setattr(attrindex, "MIN_RARE", rare_limit)
    # A small first scan makes the search leave files out once it counted enough certain
    # matches in the later ones (sealed in ``parts`` files, one after the other in time).
    monkeypatch.setattr(trace_search, "FIRST_SCAN", first_scan)
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(Path(tmp) / "data")
        try:
            n = 0
            size = -(-len(sealed) // parts)
            chunks = [("sealed", sealed[i : i + size]) for i in range(0, len(sealed), size)]
            pins = []
            for number, (part, rows) in enumerate([*chunks, ("hot", hot)]):
                groups = []
                for tid, res, attrs, twice in rows:
                    n += 1
                    # Odd traces spread over files; even ones stay in their file, so a
                    # file left out wrongly loses whole traces.
                    made = span(
                        bytes([tid + 1, number if tid % 2 == 0 else 0]) * 8,
                        n.to_bytes(8, "big"),
                        "op",
                        T0 + n * SEC,
                        MS,
                        # A value on most spans, so searches for it have many matches
                        # in every file and leave files out by counting.
                        attrs={**attrs, "tag": "t"} if n % 4 else attrs,
                    )
                    env = resource(f"svc{res}", **resources[res])
                    groups.append((env, [made, made] if twice else [made]))
                if groups:
                    write_spans(store, groups)
                pins.append(store.last_seq())
                if part == "sealed":
                    store.seal_now()
            for tid in deleted:
                store.delete("default", bytes([tid + 1, 0]) * 8)
            store.maintain(T0, retention=False)  # rewrites sealed files without them
            # Mostly values that are stored (as span or resource attributes), some not.
            stored = [(k, v) for _, _, a, _ in sealed + hot for k, v in a.items()]
            stored += [(k, v) for a in resources for k, v in a.items()]
            anything = st.tuples(st.sampled_from([*KEYS, "nokey"]), VALUES)
            pick = st.sampled_from(stored) | anything if stored else anything
            asked = data.draw(st.lists(pick, min_size=1, max_size=6))
            conditions = [(key, text_of(value)) for key, value in asked]
            queries = [(c,) for c in conditions] + [(("tag", "t"),)]
            if pairs:
                queries += [tuple(conditions[i : i + 2]) for i in range(0, len(conditions), 2)]
            for attrs in queries:
                limit = data.draw(st.sampled_from([1, 2, 3, 5, 1000]))
                # Windows that cut a file in two, and pins inside the files.
                start = data.draw(st.sampled_from([T0 - MINUTE, T0 + 5 * SEC]))
                end = data.draw(st.sampled_from([T0 + 10 * MINUTE, T0 + 20 * SEC]))
                pin = data.draw(st.sampled_from([None, *pins]))
                q = TraceQuery(
                    start_ns=start, end_ns=end, limit=limit, attributes=attrs, pin_seq=pin
                )
                # Every page, each after the last: a search that left out a file it needed
                # would end early.
                assert pages(store, q) == pages(store, q, plain=True), (
                    attrs,
                    limit,
                    start,
                    end,
                    pin,
                )
        finally:
            store.close()


def seal_spans(
    store: EmbeddedStore, n: int, traces: int, attrs: Callable[[int], dict[str, Any]]
) -> None:
    """``n`` spans, span i of trace i % ``traces`` with ``attrs(i)``, sealed."""
    spans = [
        span(
            bytes([i % traces + 1]) * 16,
            (i + 1).to_bytes(8, "big"),
            "op",
            T0 + i * MS,
            MS,
            attrs=attrs(i),
        )
        for i in range(n)
    ]
    write_spans(store, [(resource("svc"), spans)])
    store.seal_now()


def test_rare_values_are_listed_and_frequent_ones_marked(tmp_path: Path) -> None:
    """What sealing writes: a rare value's rows, a frequent value as frequent, and no index
    for the files' other signals."""
    store = EmbeddedStore(tmp_path / "data")
    try:
        seal_spans(
            store, 200, 7, lambda i: {"common": "yes", **({"user.id": 42} if i == 77 else {})}
        )
        (path,) = (tmp_path / "data" / "parquet" / "traces").rglob("*.parquet")
        index = store._attr_indexes.get(path)
        assert index is not None
        rows = index.rows("user.id", "42")
        assert rows is not None and len(rows) == 1
        table = pq.read_table(path, columns=["span_id"])
        assert table.column(0)[rows[0].as_py()].as_py() == (78).to_bytes(8, "big")
        assert index.rows("common", "yes") is None  # 200 rows > the rare limit of 64
        assert index.rows("user.id", "43") is not None and len(index.rows("user.id", "43")) == 0
        assert index.rows("nokey", "1") is not None
    finally:
        store.close()


def test_files_without_a_usable_index_are_scanned(tmp_path: Path) -> None:
    """A file sealed before the index existed (none), and one whose index belongs to other
    rows (an id its footer does not name), are searched by scanning, with the same answer."""
    data = tmp_path / "data"
    store = EmbeddedStore(data)
    users = [f"u{i % 5}" for i in range(60)]
    try:
        seal_spans(store, 60, 9, lambda i: {"user.id": users[i], "code": i % 3})
    finally:
        store.close()
    queries = [("user.id", "u3"), ("code", "2"), ("user.id", "nobody")]

    def answers() -> list[list[TraceSummary]]:
        s = EmbeddedStore(data)
        try:
            return [
                s.search_traces(
                    "default", TraceQuery(start_ns=T0 - MINUTE, end_ns=T0 + MINUTE, attributes=(q,))
                ).items
                for q in queries
            ]
        finally:
            s.close()

    indexed = answers()
    assert [len(a) for a in indexed] == [
        len({i % 9 for i in range(60) if users[i] == "u3"}),
        len({i % 9 for i in range(60) if i % 3 == 2}),
        0,
    ]
    (idx,) = (data / "attr-index").rglob("*.idx")
    other = idx.with_name(idx.name.replace(idx.name.split(".")[1], "0" * 24))
    idx.rename(other)  # an index no data file names: as after a crash or a rewrite
    assert answers() == indexed
    other.unlink()  # no index at all: a file sealed before the index existed
    assert answers() == indexed


def test_a_search_that_leaves_older_files_out_still_finds_every_page(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Files sealed one after the other, each with traces of its own, one overlapping the
    one before in time, hot rows after them: paged with small pages (so a search stops
    after a few files once it counted enough matches), pinned inside the files and with
    windows that cut a file, every page is the plain scan's."""
    monkeypatch.setattr(trace_search, "FIRST_SCAN", 1)
    store = EmbeddedStore(tmp_path / "data")
    try:
        pins = []
        n = 0
        for part in range(5):
            spans = []
            for i in range(12 if part == 3 else 6):
                n += 1
                at = T0 + (10 * part + i) * SEC
                if part == 3 and i == 0:
                    at = T0 + 21 * SEC + 500 * MS  # inside the file before
                attrs = {"tag": "t"} if i % 3 != 2 else {"tag": "u"}
                spans.append(
                    span(bytes([n, 1]) * 8, n.to_bytes(8, "big"), "op", at, MS, attrs=attrs)
                )
            write_spans(store, [(resource("svc"), spans)])
            pins.append(store.last_seq())
            if part < 4:
                store.seal_now()
        for limit in (1, 2, 3, 7):
            for pin in (None, pins[1], pins[2] - 2):
                for start in (T0 - MINUTE, T0 + 15 * SEC):
                    for value in ("t", "u"):
                        q = TraceQuery(
                            start_ns=start,
                            end_ns=T0 + 10 * MINUTE,
                            limit=limit,
                            attributes=(("tag", value),),
                            pin_seq=pin,
                        )
                        assert pages(store, q) == pages(store, q, plain=True), (limit, pin, start)
    finally:
        store.close()
