"""Trace search against a brute-force reference: order, paging and the growing candidate
set, with traces whose matching spans start long after the trace itself."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from otterscope.query.model import TraceQuery, TraceSummary
from otterscope.store.embedded import reader
from otterscope.store.embedded.store import EmbeddedStore
from tests.test_store_embedded import MINUTE, MS, SEC, T0, resource, span, write_spans

HOURISH = 60 * MINUTE


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "data")
    yield s
    s.close()


def build(
    store: EmbeddedStore, seed: int, traces: int
) -> dict[bytes, list[tuple[int, int, str, int]]]:
    """Random traces: (start, end, name, status) per span; some children start late."""
    rng = random.Random(seed)
    made: dict[bytes, list[tuple[int, int, str, int]]] = {}
    batch = []
    for t in range(traces):
        tid = rng.randbytes(16)
        start = T0 + rng.randrange(0, 30 * MINUTE)
        spans = [(start, start + rng.randrange(1, 500) * MS, "root", 0)]
        root_id = rng.randbytes(8)
        batch.append(span(tid, root_id, "root", start, spans[0][1] - start))
        for _ in range(rng.randrange(0, 4)):
            s = start + rng.randrange(0, 20 * MINUTE)  # a late child: far after the root
            e = s + rng.randrange(1, 200) * MS
            name = rng.choice(["db", "cache", "call"])
            status = rng.choice([0, 0, 2])
            spans.append((s, e, name, status))
            batch.append(span(tid, rng.randbytes(8), name, s, e - s, parent=root_id, status=status))
        made[tid] = spans
        if len(batch) > 300 or t == traces - 1:
            write_spans(store, [(resource("svc"), batch)])
            batch = []
    return made


def reference(
    made: dict[bytes, list[tuple[int, int, str, int]]], name: str | None, min_ms: int
) -> list[bytes]:
    hits = []
    for tid, spans in made.items():
        if any((name is None or n == name) and e - s >= min_ms * MS for s, e, n, _ in spans):
            hits.append((-min(s for s, _, _, _ in spans), tid))
    return [tid for _, tid in sorted(hits)]


def page_through(store: EmbeddedStore, query: TraceQuery) -> list[TraceSummary]:
    out: list[TraceSummary] = []
    after = None
    pin = None
    while True:
        page = store.search_traces("default", replace(query, pin_seq=pin, after=after))
        out += page.items
        pin = page.pin
        if not page.more:
            return out
        after = (page.items[-1].start_ns, page.items[-1].trace_id)


@pytest.mark.parametrize("first_scan", [4096, 4])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(
    ("name", "min_ms", "limit"), [(None, 0, 7), ("db", 0, 5), ("call", 150, 3), ("cache", 0, 1000)]
)
def test_search_matches_brute_force_across_pages(
    store: EmbeddedStore,
    seed: int,
    name: str | None,
    min_ms: int,
    limit: int,
    first_scan: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A tiny first scan makes every search take the longer prefixes and the rescans.
    monkeypatch.setattr(reader, "FIRST_SCAN", first_scan)
    made = build(store, seed, 150)
    query = TraceQuery(
        start_ns=T0 - MINUTE,
        end_ns=T0 + HOURISH,
        limit=limit,
        operation=name,
        min_duration_ns=min_ms * MS if min_ms else None,
    )
    want = reference(made, name, min_ms)
    found = page_through(store, query)
    assert [t.trace_id for t in found] == want
    for t in found:
        spans = made[t.trace_id]
        assert t.start_ns == min(s for s, _, _, _ in spans)
        assert t.end_ns == max(e for _, e, _, _ in spans)
        assert t.span_count == len(spans)
        assert t.error_count == sum(1 for *_, st in spans if st == 2)
    # The same answers once sealed into Parquet.
    store.seal_now()
    assert [t.trace_id for t in page_through(store, query)] == want


def test_first_page_is_right_when_matches_are_rare_and_late(store: EmbeddedStore) -> None:
    # Many recent non-matching spans push the few matching ones beyond the first candidates.
    made = build(store, 7, 300)
    rare = bytes(range(16))
    write_spans(
        store,
        [
            (
                resource("svc"),
                [
                    span(rare, b"\x01" * 8, "root", T0 - 30 * SEC, SEC),
                    span(rare, b"\x02" * 8, "needle", T0 + 25 * MINUTE, MS, parent=b"\x01" * 8),
                ],
            )
        ],
    )
    page = store.search_traces(
        "default", TraceQuery(start_ns=T0 - MINUTE, end_ns=T0 + HOURISH, operation="needle")
    )
    assert [t.trace_id for t in page.items] == [rare]
    assert page.items[0].start_ns == T0 - 30 * SEC
    assert page.items[0].span_count == 2
    assert len(made) == 300


def test_resource_attribute_conditions_hot_sealed_and_reopened(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "data")
    ids = {}
    try:
        for n, env in enumerate(["prod", "staging", "prod", "dev"]):
            tid = bytes([n + 1]) * 16
            ids.setdefault(env, []).append(tid)
            write_spans(
                store,
                [
                    (
                        resource(f"svc{n}", **{"deployment.environment": env, "host.cpus": n}),
                        [span(tid, b"\x01" * 8, "op", T0 + n * SEC, MS)],
                    )
                ],
            )

        def found(key: str, value: str) -> list[bytes]:
            q = TraceQuery(start_ns=T0 - MINUTE, end_ns=T0 + MINUTE, attributes=((key, value),))
            return sorted(t.trace_id for t in store.search_traces("default", q).items)

        expect = {
            ("deployment.environment", "prod"): sorted(ids["prod"]),
            ("deployment.environment", "qa"): [],
            ("host.cpus", "3"): ids["dev"],
            ("service.name", "svc1"): ids["staging"],
        }
        for (key, value), want in expect.items():
            assert found(key, value) == want
        store.seal_now()
        for (key, value), want in expect.items():
            assert found(key, value) == want
    finally:
        store.close()
    again = EmbeddedStore(tmp_path / "data")  # the per-file resource sets are read lazily
    try:
        for (key, value), want in expect.items():
            q = TraceQuery(start_ns=T0 - MINUTE, end_ns=T0 + MINUTE, attributes=((key, value),))
            assert sorted(t.trace_id for t in again.search_traces("default", q).items) == want
    finally:
        again.close()


def test_exact_operation_and_span_kind_hot_and_sealed(store: EmbeddedStore) -> None:
    """Jaeger's search names one operation exactly and may ask for a kind (``span.kind``);
    the native API's operation is a case-insensitive substring. Both, hot and sealed, also
    with an attribute condition (which sealed files answer from the attribute index)."""
    cart, items = bytes([1]) * 16, bytes([2]) * 16
    client = span(items, b"\x02" * 8, "GET /cart/items", T0 + SEC, MS, attrs={"k": "v"})
    client.kind = client.SPAN_KIND_CLIENT
    write_spans(
        store,
        [
            (
                resource("svc"),
                [span(cart, b"\x01" * 8, "GET /cart", T0, MS, attrs={"k": "v"}), client],
            )
        ],
    )
    base = TraceQuery(start_ns=T0 - MINUTE, end_ns=T0 + MINUTE, operation="get /CART")

    def found(**changes: object) -> list[bytes]:
        q = replace(base, **changes)  # type: ignore[arg-type]
        return sorted(t.trace_id for t in store.search_traces("default", q).items)

    cases = [
        ({}, [cart, items]),
        ({"operation_exact": True}, []),  # exact: the case counts
        ({"operation": "GET /cart", "operation_exact": True}, [cart]),
        ({"kind": 3}, [items]),
        ({"operation": None, "kind": 2}, [cart]),
        ({"operation": "GET /cart/items", "operation_exact": True, "kind": 2}, []),
    ]
    for sealed in (False, True):
        for changes, want in cases:
            assert found(**changes) == want, (sealed, changes)
            assert found(**changes, attributes=(("k", "v"),)) == want, (sealed, changes)
        store.seal_now()
