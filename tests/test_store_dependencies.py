"""The embedded store's calls between services: the per-hour cache of settled hours stays
true when late spans arrive, when they are sealed, and when a delete applies."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from otterscope.otlp.anyvalue import Limits
from otterscope.otlp.rows import spans_batch
from otterscope.store.embedded.hourly import percentile
from otterscope.store.embedded.store import EmbeddedStore

HOUR = 3_600_000_000_000
# Two hours ago, on the hour: settled as soon as it is sealed.
H = time.time_ns() // HOUR * HOUR - 2 * HOUR
TENANT = "t"


def call(n: int, at: int, callee: bool = True, error: bool = False) -> list[tuple[str, Span]]:
    """frontend CLIENT -> cart SERVER (or no callee: a postgres leaf)."""
    trace_id = (n + 1000).to_bytes(16, "big")
    client = Span(
        trace_id=trace_id,
        span_id=(2 * n + 1).to_bytes(8, "big"),
        name="call",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=at,
        end_time_unix_nano=at + 5_000_000,
        attributes=[KeyValue(key="db.system", value=AnyValue(string_value="postgresql"))],
    )
    if error:
        client.status.code = 2
    out = [("frontend", client)]
    if callee:
        out.append(
            (
                "cart",
                Span(
                    trace_id=trace_id,
                    span_id=(2 * n + 2).to_bytes(8, "big"),
                    parent_span_id=client.span_id,
                    name="serve",
                    kind=Span.SPAN_KIND_SERVER,
                    start_time_unix_nano=at + 1_000_000,
                    end_time_unix_nano=at + 4_000_000,
                ),
            )
        )
    return out


def write(store: EmbeddedStore, spans: list[tuple[str, Span]]) -> None:
    req = ExportTraceServiceRequest()
    for service, span in spans:
        rs = ResourceSpans(
            resource=Resource(
                attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))]
            ),
            scope_spans=[ScopeSpans(spans=[span])],
        )
        req.resource_spans.append(rs)
    store.write([spans_batch(req, TENANT, Limits())])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "data")
    yield s
    s.close()


def edges(store: EmbeddedStore) -> dict[tuple[str, str], tuple[int, int]]:
    rows = store.dependencies(TENANT, H, H + HOUR - 1)
    return {(r["source"], r["target"]): (r["calls"], r["errors"]) for r in rows}


def test_settled_hours_are_cached_and_late_spans_still_count(store: EmbeddedStore) -> None:
    write(store, [s for n in range(10) for s in call(n, H + n * 60_000_000_000, error=n == 0)])
    write(store, call(100, H + 30 * 60_000_000_000, callee=False))
    assert edges(store) == {("frontend", "cart"): (10, 1), ("frontend", "postgresql"): (1, 0)}
    store.seal_now()
    assert store.warm_dependencies(10) == 1  # the hour is settled now; computed once
    assert store.warm_dependencies(10) == 0
    assert edges(store) == {("frontend", "cart"): (10, 1), ("frontend", "postgresql"): (1, 0)}

    # A late callee arrives for the leaf: hot again, so the hour is computed live.
    late = call(100, H + 30 * 60_000_000_000)
    write(store, [late[1]])
    assert edges(store) == {("frontend", "cart"): (11, 1)}
    store.seal_now()  # sealed into a new file of that hour: a new cache key
    assert edges(store) == {("frontend", "cart"): (11, 1)}

    # A delete hides a call at once, cache or not.
    store.delete(TENANT, (3 + 1000).to_bytes(16, "big"))
    assert edges(store) == {("frontend", "cart"): (10, 1)}


def test_a_window_counts_whole_minutes_of_cached_hours(store: EmbeddedStore) -> None:
    write(store, [s for n in range(10) for s in call(n, H + n * 60_000_000_000)])
    store.seal_now()
    store.warm_dependencies(10)
    minute = 60_000_000_000
    rows = store.dependencies(TENANT, H + 2 * minute, H + 4 * minute + 1)
    assert [(r["source"], r["target"], r["calls"]) for r in rows] == [("frontend", "cart", 3)]
    p99 = rows[0]["p99_ns"]
    assert 5_000_000 * 0.95 < p99 < 5_000_000 * 1.05  # the client span's 5 ms


def test_percentile_of_a_duration_histogram() -> None:
    assert percentile({}, 0.99) is None
    assert percentile({80: 1}, 0.5) == pytest.approx(2 ** (80.5 / 8))
    assert percentile({80: 99, 160: 1}, 0.99) == pytest.approx(2 ** (80.5 / 8))
    assert percentile({80: 98, 160: 2}, 0.99) == pytest.approx(2 ** (160.5 / 8))


def test_service_activity_of_cached_hours_follows_late_spans(store: EmbeddedStore) -> None:
    write(store, [s for n in range(10) for s in call(n, H + n * 60_000_000_000, error=n == 0)])
    store.seal_now()
    window = (H - HOUR, H + 2 * HOUR - 1)  # hour H is whole inside: cached

    def spans() -> dict[str, tuple[int, int]]:
        rows = store.service_activity(TENANT, *window)["traces"]
        return {r["service_name"]: (r["items"], r["errors"]) for r in rows}

    assert spans() == {"frontend": (10, 1), "cart": (10, 0)}
    assert spans() == {"frontend": (10, 1), "cart": (10, 0)}  # from the cache
    write(store, call(50, H + 59 * 60_000_000_000, callee=False))
    assert spans() == {"frontend": (11, 1), "cart": (10, 0)}  # hot: computed
    store.seal_now()
    assert spans() == {"frontend": (11, 1), "cart": (10, 0)}  # a new file: a new key
    (frontend,) = [
        r
        for r in store.service_activity(TENANT, *window)["traces"]
        if r["service_name"] == "frontend"
    ]
    assert frontend["first_ns"] == H
    assert frontend["last_ns"] == H + 59 * 60_000_000_000
    assert 5_000_000 * 0.95 < frontend["p99_ns"] < 5_000_000 * 1.05
