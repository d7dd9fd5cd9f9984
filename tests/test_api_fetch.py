"""oteleport-compatible fetch (``POST /api/{signal}/fetch``) over real sockets."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from tests.conftest import RunningServer
from tests.payloads import (
    SECOND,
    gauge_body,
    log,
    logs_body,
    new_span_id,
    new_trace_id,
    now_ns,
    post,
    span,
    traces_body,
)


def fetch_all(
    url: str, signal: str, body: dict[str, Any], during: Any = None
) -> tuple[list[dict[str, Any]], int]:
    """Every page's OTLP/JSON; ``during()`` runs after each page (data arriving meanwhile)."""
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        req = dict(body)
        if cursor:
            req["cursor"] = cursor
        r = httpx.post(f"{url}/api/{signal}/fetch", json=req, timeout=30)
        assert r.status_code == 200, r.text
        doc = r.json()
        cursor = doc.pop("nextCursor")
        pages.append(doc)
        if during is not None:
            during()
        if cursor is None:
            return pages, len(pages)


def spans_of(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        s
        for page in pages
        for rs in page.get("resourceSpans", [])
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    ]


def test_fetch_traces_pages_oldest_first_exactly_once_while_data_arrives(
    server: RunningServer,
) -> None:
    t0 = now_ns() - 900 * SECOND
    sent = []
    for batch in range(5):
        spans = [
            span(new_trace_id(), new_span_id(), f"op{i}", t0 + batch * 10**6 + i * 7)
            for i in range(40)
        ]
        sent += spans
        post(server.url, "traces", traces_body(f"svc{batch % 2}", spans))

    def more() -> None:
        late = [span(new_trace_id(), new_span_id(), "late", t0 + 3) for _ in range(5)]
        post(server.url, "traces", traces_body("svc0", late))

    pages, count = fetch_all(
        server.url, "traces", {"startTimeUnixNano": str(t0), "limit": 30}, during=more
    )
    assert count == 7
    got = spans_of(pages)
    keys = [(s["traceId"], s["spanId"]) for s in got]
    assert len(keys) == len(set(keys)) == 200
    assert set(keys) == {(s["traceId"], s["spanId"]) for s in sent}
    starts = [int(s["startTimeUnixNano"]) for s in got]
    assert starts == sorted(starts)


def test_fetch_answers_duplicates_once(server: RunningServer) -> None:
    t0 = now_ns() - 60 * SECOND
    spans = [span(new_trace_id(), new_span_id(), "dup", t0 + i) for i in range(10)]
    for _ in range(3):  # a resumed replay sends the same spans again
        post(server.url, "traces", traces_body("svc", spans))
    pages, _ = fetch_all(server.url, "traces", {"startTimeUnixNano": str(t0), "limit": 4})
    got = [(s["traceId"], s["spanId"]) for s in spans_of(pages)]
    assert sorted(got) == sorted((s["traceId"], s["spanId"]) for s in spans)


def test_fetch_logs_and_metrics(server: RunningServer) -> None:
    t0 = now_ns() - 60 * SECOND
    post(server.url, "logs", logs_body("svc", [log(f"line {i}", t0 + i // 2) for i in range(25)]))
    post(
        server.url,
        "metrics",
        gauge_body("svc", "queue.depth", [(t0 + i, float(i)) for i in range(25)]),
    )
    pages, count = fetch_all(server.url, "logs", {"startTimeUnixNano": t0, "limit": 10})
    assert count == 3
    bodies = []
    for page in pages:
        msg = ParseDict(page, ExportLogsServiceRequest())
        bodies += [
            r.body.string_value
            for rl in msg.resource_logs
            for sl in rl.scope_logs
            for r in sl.log_records
        ]
    assert sorted(bodies) == sorted(f"line {i}" for i in range(25))
    pages, count = fetch_all(server.url, "metrics", {"startTimeUnixNano": t0, "limit": 10})
    values = []
    for page in pages:
        msg = ParseDict(page, ExportMetricsServiceRequest())
        for rm in msg.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    assert m.name == "queue.depth"
                    values += [p.as_double for p in m.gauge.data_points]
    assert sorted(values) == [float(i) for i in range(25)]


def test_fetch_times_are_nanoseconds_whatever_their_size(server: RunningServer) -> None:
    t0 = 5 * SECOND  # five seconds after 1970: tiny, still nanoseconds
    spans = [span(new_trace_id(), new_span_id(), "early", t0 + i * SECOND) for i in range(3)]
    post(server.url, "traces", traces_body("svc", spans))
    body = {"startTimeUnixNano": 6 * SECOND, "endTimeUnixNano": str(7 * SECOND)}
    pages, _ = fetch_all(server.url, "traces", body)
    assert [int(s["startTimeUnixNano"]) for s in spans_of(pages)] == [6 * SECOND, 7 * SECOND]
    r = httpx.post(
        f"{server.url}/api/traces/fetch", json={"startTimeUnixNano": "1970-01-01T00:00:06Z"}
    )
    assert r.status_code == 200
    for bad in ("-5", str(2**63)):
        r = httpx.post(f"{server.url}/api/traces/fetch", json={"startTimeUnixNano": bad})
        assert r.status_code == 400, r.text


def test_the_end_of_the_window_is_kept(server: RunningServer) -> None:
    t0 = now_ns() - 60 * SECOND
    spans = [span(new_trace_id(), new_span_id(), "w", t0 + i * SECOND) for i in range(10)]
    post(server.url, "traces", traces_body("svc", spans))
    body = {"startTimeUnixNano": str(t0 + 2 * SECOND), "endTimeUnixNano": str(t0 + 5 * SECOND)}
    pages, _ = fetch_all(server.url, "traces", {**body, "limit": 2})
    assert [s["name"] for s in spans_of(pages)] == ["w"] * 4


def test_concurrent_readers_each_get_everything(server: RunningServer) -> None:
    t0 = now_ns() - 60 * SECOND
    spans = [span(new_trace_id(), new_span_id(), "c", t0 + i) for i in range(60)]
    post(server.url, "traces", traces_body("svc", spans))
    results: list[int] = []

    def read() -> None:
        pages, _ = fetch_all(server.url, "traces", {"startTimeUnixNano": str(t0), "limit": 7})
        results.append(len({s["spanId"] for s in spans_of(pages)}))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [60] * 4


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({}, "startTimeUnixNano"),
        ({"startTimeUnixNano": "soon"}, "startTimeUnixNano"),
        ({"startTimeUnixNano": "1", "limit": 0}, "limit"),
        ({"startTimeUnixNano": "1", "limit": 5000}, "limit"),
        ({"startTimeUnixNano": "1", "limit": True}, "limit"),
        ({"startTimeUnixNano": "1", "cursor": 7}, "cursor"),
        ({"startTimeUnixNano": "1", "cursor": "not-a-cursor"}, "cursor"),
        ({"startTimeUnixNano": "9", "endTimeUnixNano": "1"}, "after"),
        ({"startTimeUnixNano": "1", "colour": "red"}, "colour"),
        ([1, 2], "object"),
    ],
)
def test_bad_fetch_bodies_are_400(server: RunningServer, body: Any, mentions: str) -> None:
    r = httpx.post(f"{server.url}/api/traces/fetch", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_request"
    assert mentions in r.json()["error"]["message"]


def test_not_json_is_400_too_big_is_413_and_get_is_405(server: RunningServer) -> None:
    r = httpx.post(f"{server.url}/api/logs/fetch", content=b"{nope")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_request"
    r = httpx.post(f"{server.url}/api/logs/fetch", content=b" " * 70_000)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    for signal in ("logs", "traces", "metrics"):
        r = httpx.get(f"{server.url}/api/{signal}/fetch")
        assert r.status_code == 405, r.text
        assert "POST" in r.headers["allow"]
    r = httpx.post(f"{server.url}/api/logs/fetch?x=1", json={"startTimeUnixNano": "1"})
    assert r.status_code == 400


def test_a_fetch_cursor_is_bound_to_its_signal_and_window(server: RunningServer) -> None:
    t0 = now_ns() - 60 * SECOND
    spans = [span(new_trace_id(), new_span_id(), "b", t0 + i) for i in range(6)]
    post(server.url, "traces", traces_body("svc", spans))
    r = httpx.post(
        f"{server.url}/api/traces/fetch", json={"startTimeUnixNano": str(t0), "limit": 2}
    )
    cursor = r.json()["nextCursor"]
    assert cursor
    for path, start in (("logs", t0), ("traces", t0 + 1)):
        r = httpx.post(
            f"{server.url}/api/{path}/fetch",
            json={"startTimeUnixNano": str(start), "limit": 2, "cursor": cursor},
        )
        assert r.status_code == 400, r.text
