"""The per-hour cache of services and calls on disk: a restarted store or server reads the
hours back instead of computing them, answers exactly what a cold computation answers,
computes an hour again when its files change (late spans, deletes, new files), and takes a
damaged or stale cache file for what it is without failing."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

from otterscope.store.base import Row
from otterscope.store.embedded.hour_files import FOLDER
from otterscope.store.embedded.store import EmbeddedOptions, EmbeddedStore
from tests.conftest import RunningServer
from tests.test_store_dependencies import HOUR, TENANT, H, call, write

MINUTE = 60_000_000_000
# Two settled hours and the empty hour after them, whole in the window.
WINDOW = (H - HOUR, H + 2 * HOUR - 1)


def answer(store: EmbeddedStore) -> tuple[dict[str, list[Row]], list[Row]]:
    """What the services list and the service map are built from."""
    return store.service_activity(TENANT, *WINDOW), store.dependencies(TENANT, *WINDOW)


def counts(store: EmbeddedStore) -> tuple[int, int]:
    """(hours computed by a statement, hours read back from a file) since it opened."""
    return store._hour_cache.computed, store._hour_cache.loaded


def cache_files(data: Path, tenant: str = TENANT) -> dict[str, Path]:
    return {p.name: p for p in sorted((data / FOLDER / f"tenant={tenant}").glob("*.json"))}


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    """A data dir with spans in two settled hours (hour H-1: calls with errors and a
    database leaf; hour H: calls), sealed, and their services and calls cached on disk."""
    data = tmp_path / "data"
    store = EmbeddedStore(data)
    write(store, [s for n in range(6) for s in call(n, H - HOUR + n * MINUTE, error=n == 1)])
    write(store, call(50, H - HOUR + 30 * MINUTE, callee=False))
    write(store, [s for n in range(10, 14) for s in call(n, H + n * MINUTE)])
    store.seal_now()
    answer(store)
    # Calls of H-1 and H, the spans' activity in H-1 and H: nothing was cached before.
    assert counts(store) == (4, 0)
    store.close()
    yield data


def reopened(data: Path, **options: Any) -> EmbeddedStore:
    return EmbeddedStore(data, EmbeddedOptions(**options))


def test_a_restart_reads_the_hours_instead_of_computing_them(data: Path, tmp_path: Path) -> None:
    assert sorted(cache_files(data)) == sorted(
        f"{hour}.{kind}.json"
        for hour in (_hour(H - HOUR), _hour(H))
        for kind in ("calls", "traces")
    )
    store = reopened(data)
    try:
        persisted = answer(store)
        assert counts(store) == (0, 4)
        store.warm_service_cache(calls=10, activity=10)  # nothing left to compute
        assert counts(store) == (0, 4)
    finally:
        store.close()

    cold_dir = tmp_path / "cold"
    shutil.copytree(data, cold_dir, ignore=shutil.ignore_patterns("cache"))
    cold = reopened(cold_dir)
    try:
        assert answer(cold) == persisted  # the same figures, p99 included, as computed
        assert counts(cold) == (4, 0)
    finally:
        cold.close()
    services, calls = persisted
    assert {(r["service_name"], r["items"], r["errors"]) for r in services["traces"]} == {
        ("cart", 10, 0),
        ("frontend", 11, 1),
    }
    assert [(r["source"], r["target"], r["calls"], r["errors"]) for r in calls] == [
        ("frontend", "cart", 10, 1),
        ("frontend", "postgresql", 1, 0),
    ]


def test_late_spans_deletes_and_new_files_compute_an_hour_again(data: Path) -> None:
    before_late = cache_files(data)[f"{_hour(H)}.calls.json"].read_bytes()
    store = reopened(data)
    try:
        # A late span of hour H, hot: H and H-1 (whose callees may be in H) are computed
        # live, nothing is read from or written to their files meanwhile.
        write(store, call(60, H + 40 * MINUTE))
        assert _edges(store) == {("frontend", "cart"): (11, 1), ("frontend", "postgresql"): (1, 0)}
        assert counts(store) == (0, 0)
        store.seal_now()  # a new file of hour H: new keys for the calls of H and H-1
        assert _edges(store) == {("frontend", "cart"): (11, 1), ("frontend", "postgresql"): (1, 0)}
        assert counts(store) == (2, 0)
    finally:
        store.close()

    # A file written for the files before the late span is stale: ignored, not quarantined.
    cache_files(data)[f"{_hour(H)}.calls.json"].write_bytes(before_late)
    store = reopened(data)
    try:
        assert _edges(store) == {("frontend", "cart"): (11, 1), ("frontend", "postgresql"): (1, 0)}
        assert counts(store) == (1, 1)
        assert not (data / "quarantine").exists()

        # A delete: pending, no hour comes from the cache; applied, the file is rewritten
        # (another size and time), so the hour is computed again.
        assert store.delete(TENANT, (1 + 1000).to_bytes(16, "big")) == 2
        assert _edges(store) == {("frontend", "cart"): (10, 0), ("frontend", "postgresql"): (1, 0)}
        assert counts(store) == (1, 1)
        store.maintain(time.time_ns(), retention=False)  # also computes the hours ahead
        assert _edges(store) == {("frontend", "cart"): (10, 0), ("frontend", "postgresql"): (1, 0)}
        assert store._hour_cache.computed > 1
    finally:
        store.close()

    store = reopened(data)
    try:
        assert _edges(store) == {("frontend", "cart"): (10, 0), ("frontend", "postgresql"): (1, 0)}
        services = store.service_activity(TENANT, *WINDOW)["traces"]
        assert {(r["service_name"], r["items"], r["errors"]) for r in services} == {
            ("cart", 10, 0),
            ("frontend", 11, 0),
        }
        assert counts(store) == (0, 4)
    finally:
        store.close()


def test_retention_deletes_the_files_of_hours_no_longer_stored(data: Path) -> None:
    store = reopened(data, retention_s=(("traces", 2 * 3600.0), ("logs", 1e9), ("metrics", 1e9)))
    try:
        # A write a crash interrupted.
        leftover = data / FOLDER / f"tenant={TENANT}" / f"{_hour(H)}.calls.json.tmp"
        leftover.write_bytes(b'{"format"')
        # Half an hour into H+2: hour H-1 ended 2.5 hours before, H 1.5 hours before, so
        # H-1's files are deleted, and its cache files with them. (Not the clock: a run
        # that crosses the hour after H was computed would take hour H too.)
        store.maintain(H + 2 * HOUR + HOUR // 2)
        assert sorted(cache_files(data)) == [f"{_hour(H)}.calls.json", f"{_hour(H)}.traces.json"]
        assert not leftover.exists()
        services, _ = answer(store)
        assert {(r["service_name"], r["items"]) for r in services["traces"]} == {
            ("cart", 4),
            ("frontend", 4),
        }
    finally:
        store.close()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda body: body[: len(body) // 2], id="truncated"),
        pytest.param(lambda body: b"\x00\x01garbage" * 10, id="garbage"),
        pytest.param(lambda body: b"", id="empty"),
        pytest.param(lambda body: body.replace(b'"rows":[[', b'"rows":[["x",'), id="wrong-shape"),
    ],
)
def test_a_damaged_cache_file_is_quarantined_and_computed_again(
    data: Path, damage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = reopened(data)
    try:
        expected = answer(store)
    finally:
        store.close()
    damaged = cache_files(data)[f"{_hour(H - HOUR)}.calls.json"]
    bad = damage(damaged.read_bytes())
    damaged.write_bytes(bad)
    store = reopened(data)
    try:
        with caplog.at_level(logging.ERROR, logger="otterscope.quarantine"):
            assert answer(store) == expected
        assert counts(store) == (1, 3)
        assert "quarantined cache/services" in caplog.text
        assert store.quarantine.counter.value(kind="service_cache") == 1
        assert (data / "quarantine" / damaged.relative_to(data)).read_bytes() == bad
    finally:
        store.close()
    store = reopened(data)  # written again, whole
    try:
        assert answer(store) == expected
        assert counts(store) == (0, 4)
    finally:
        store.close()


def test_a_restarted_server_answers_its_first_map_from_the_cache_files(
    make_server: Any, tmp_path: Path
) -> None:
    """Over HTTP: the cache files the first server wrote are read by the second (neither
    rewritten nor replaced: nothing was computed again); a damaged one is quarantined and
    the map is the same."""
    data = tmp_path / "srv"
    env = {"OTTERSCOPE_STORAGE__SEAL_ROWS": "8"}
    first: RunningServer = make_server(data_dir=data, env=env)
    req = ExportTraceServiceRequest()
    spans = [s for n in range(8) for s in call(n, H - HOUR + n * MINUTE, error=n == 2)]
    spans += [s for n in range(8, 12) for s in call(n, H + n * MINUTE)]
    for service, span in spans:
        req.resource_spans.append(
            ResourceSpans(
                resource=Resource(
                    attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))]
                ),
                scope_spans=[ScopeSpans(spans=[span])],
            )
        )
    r = httpx.post(
        f"{first.url}/v1/traces",
        content=req.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert r.status_code == 200, r.text
    window = {"start": str(WINDOW[0]), "end": str(WINDOW[1])}

    def cached() -> dict[str, Path]:
        return cache_files(data, "default")  # the tenant of an anonymous server

    # The maintenance thread seals the full segment and computes the settled hours ahead.
    deadline = time.monotonic() + 30
    while len(cached()) < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sorted(cached()) == sorted(
        f"{hour}.{kind}.json"
        for hour in (_hour(H - HOUR), _hour(H))
        for kind in ("calls", "traces")
    )
    the_map = _get(first, "/api/service-map", window)
    services = _get(first, "/api/services", window)
    assert {e["data"]["source"] + ">" + e["data"]["target"] for e in the_map["edges"]} == {
        "frontend>cart"
    }
    assert first.stop() == 0
    stamps = {name: _stamp(p) for name, p in cached().items()}

    second: RunningServer = make_server(data_dir=data, env=env)
    assert _get(second, "/api/service-map", window) == the_map
    assert _get(second, "/api/services", window) == services
    time.sleep(6)  # a maintenance pass: it finds every hour cached
    assert {name: _stamp(p) for name, p in cached().items()} == stamps
    assert second.stop() == 0

    cached()[f"{_hour(H)}.calls.json"].write_bytes(b'{"format": 1, "rows": [')
    third: RunningServer = make_server(data_dir=data, env=env)
    assert _get(third, "/api/service-map", window) == the_map
    assert third.stop() == 0
    assert "quarantined cache/services/" in third.log()
    assert (data / "quarantine" / FOLDER / "tenant=default" / f"{_hour(H)}.calls.json").exists()
    rewritten = cached()[f"{_hour(H)}.calls.json"]
    assert _stamp(rewritten) != stamps[rewritten.name]
    assert rewritten.read_bytes().startswith(b'{"format":1')


def _get(server: RunningServer, path: str, params: dict[str, str]) -> Any:
    r = httpx.get(f"{server.url}{path}", params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _stamp(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


def _hour(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H", time.gmtime(ns // 1_000_000_000))


def _edges(store: EmbeddedStore) -> dict[tuple[str, str], tuple[int, int]]:
    return {
        (r["source"], r["target"]): (r["calls"], r["errors"])
        for r in store.dependencies(TENANT, *WINDOW)
    }
