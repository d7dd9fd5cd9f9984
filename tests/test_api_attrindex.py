"""Search by attribute over HTTP, against sealed files with the attribute index and without.

Spans go in as OTLP/HTTP protobuf; a restart seals them all; ``/api/traces?attr.*`` must
find exactly the traces that carry the value (typed: the integer 500 and the string "500"
alike, span or resource attributes), a user id on 1 span in 400, and nothing for a value
that no span has.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

from otterscope.store.embedded import attrindex
from tests.conftest import RunningServer
from tests.test_store_embedded import MS, resource, span

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def test_attribute_search_over_sealed_indexed_files(
    make_server: Callable[..., RunningServer], tmp_path: Path
) -> None:
    rng = random.Random(5)
    now = time.time_ns() - 600 * 10**9
    sent: dict[bytes, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    groups = []
    for r in range(2):
        res_attrs: dict[str, Any] = {"deployment.environment": ["prod", "dev"][r]}
        spans = []
        for i in range(400):
            tid = rng.randbytes(16)
            attrs: dict[str, Any] = {
                "http.route": rng.choice(["/a", "/b"]),
                "user.id": f"u{rng.randrange(10_000)}",
                "http.status_code": rng.choice([200, 200, 500, "500", "404"]),
            }
            if i == 17:
                attrs["user.id"] = "rare-user"
            spans.append(
                span(tid, rng.randbytes(8), "op", now + (r * 400 + i) * MS, MS, attrs=attrs)
            )
            sent.setdefault(tid, []).append((attrs, res_attrs))
        groups.append(
            ResourceSpans(
                resource=resource(f"svc{r}", **res_attrs), scope_spans=[ScopeSpans(spans=spans)]
            )
        )
    body = ExportTraceServiceRequest(resource_spans=groups).SerializeToString()
    data = tmp_path / "data"
    first = make_server(data_dir=data)
    assert httpx.post(f"{first.url}/v1/traces", content=body, headers=PROTOBUF).status_code == 200
    assert first.stop() == 0
    server = make_server(data_dir=data)  # a restart seals what was hot
    deadline = time.monotonic() + 30
    while sum(httpx.get(f"{server.url}/health").json()["store"]["hotRows"].values()):
        assert time.monotonic() < deadline, "still hot rows"
        time.sleep(0.1)
    files = list((data / "parquet" / "traces").rglob("*.parquet"))
    assert files
    assert all(attrindex.ID_META in (pq.read_metadata(f).metadata or {}) for f in files)
    assert len(list((data / "attr-index").rglob("*.idx"))) == len(files)

    def found(key: str, value: str) -> set[str]:
        r = httpx.get(
            f"{server.url}/api/traces",
            params={
                f"attr.{key}": value,
                "start": str(now - 10**9),
                "end": str(now + 10**10),
                "limit": "1000",
            },
        )
        assert r.status_code == 200, r.text
        return {t["traceId"] for t in r.json()["traces"]}

    def expected(key: str, value: str) -> set[str]:
        return {
            tid.hex()
            for tid, spans in sent.items()
            if any(
                (key in a and str(a[key]) == value) or (key in res and str(res[key]) == value)
                for a, res in spans
            )
        }

    for key, value in [
        ("user.id", "rare-user"),
        ("user.id", "nobody"),
        ("http.status_code", "500"),
        ("http.status_code", "404"),
        ("http.route", "/a"),
        ("deployment.environment", "dev"),
        ("nokey", "x"),
    ]:
        want = expected(key, value)
        assert found(key, value) == want, (key, value)
    assert len(expected("user.id", "rare-user")) == 2
    assert expected("user.id", "nobody") == set()
