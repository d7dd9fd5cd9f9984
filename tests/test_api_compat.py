"""Endpoints of the tools users migrate from (otel-worker, the storage engine), deletes,
operations and attribute autocomplete, over real sockets."""

from __future__ import annotations

import time
from typing import Any

import duckdb
import httpx
import pytest

from tests.conftest import RunningServer
from tests.payloads import SECOND, new_span_id, new_trace_id, now_ns, post, span, traces_body


def send_trace(
    url: str, t0: int, service: str = "shop", headers: dict[str, str] | None = None
) -> tuple[str, list[str]]:
    tid = new_trace_id()
    root, child = new_span_id(), new_span_id()
    spans = [
        span(tid, root, "GET /cart", t0, 20 * 10**6, attributes={"http.status_code": 200}),
        span(
            tid,
            child,
            "SELECT cart",
            t0 + 10**6,
            5 * 10**6,
            parent=root,
            kind=3,
            attributes={"db.system": "postgresql"},
        ),
    ]
    post(url, "traces", traces_body(service, spans), headers)
    return tid, [root, child]


def test_otel_worker_trace_list_is_newest_first_with_spans(server: RunningServer) -> None:
    t0 = now_ns() - 600 * SECOND
    ids = [send_trace(server.url, t0 + i * SECOND)[0] for i in range(5)]
    r = httpx.get(f"{server.url}/v1/traces")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [t["traceId"] for t in body] == ids[::-1]
    assert all(len(t["spans"]) == 2 for t in body)
    assert body[0]["spans"][0]["name"] == "GET /cart"
    assert body[0]["spans"][0]["kind"] == "SPAN_KIND_SERVER"
    r = httpx.get(f"{server.url}/v1/traces", params={"limit": 2})
    assert [t["traceId"] for t in r.json()] == ids[:2:-1][:2]
    # time: only traces that ended by then.
    r = httpx.get(f"{server.url}/v1/traces", params={"time": str(t0 + 2 * SECOND + 30 * 10**6)})
    assert [t["traceId"] for t in r.json()] == [ids[2], ids[1], ids[0]]


def test_otel_worker_trace_spans_and_span(server: RunningServer) -> None:
    tid, (root, child) = send_trace(server.url, now_ns() - 60 * SECOND)
    r = httpx.get(f"{server.url}/v1/traces/{tid}")
    assert r.status_code == 200
    assert r.json()["traceId"] == tid
    assert {s["spanId"] for s in r.json()["spans"]} == {root, child}
    r = httpx.get(f"{server.url}/v1/traces/{tid}/spans")
    assert [s["spanId"] for s in r.json()] == [root, child]
    r = httpx.get(f"{server.url}/v1/traces/{tid}/spans/{child}")
    assert r.status_code == 200
    assert r.json()["parentSpanId"] == root
    assert r.json()["attributes"] == {"db.system": "postgresql"}
    missing = new_trace_id()
    assert httpx.get(f"{server.url}/v1/traces/{missing}").status_code == 404
    assert httpx.get(f"{server.url}/v1/traces/{missing}/spans").status_code == 404
    r = httpx.get(f"{server.url}/v1/traces/{tid}/spans/{new_span_id()}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert httpx.get(f"{server.url}/v1/traces/nothex").status_code == 400
    assert httpx.get(f"{server.url}/v1/traces/{tid}/spans/xyz").status_code == 400


def test_v1_traces_still_takes_otlp_and_refuses_other_methods(server: RunningServer) -> None:
    r = httpx.put(f"{server.url}/v1/traces", content=b"")
    assert r.status_code == 405
    assert "GET" in r.headers["allow"] and "POST" in r.headers["allow"]


def test_storage_engine_spans_are_most_recent_first(server: RunningServer) -> None:
    t0 = now_ns() - 60 * SECOND
    for i in range(4):
        send_trace(server.url, t0 + i * SECOND)
    r = httpx.get(f"{server.url}/spans", params={"limit": 3})
    assert r.status_code == 200
    starts = [int(s["startTimeUnixNano"]) for s in r.json()]
    assert len(starts) == 3
    assert starts == sorted(starts, reverse=True)
    assert starts[0] == t0 + 3 * SECOND + 10**6
    assert httpx.get(f"{server.url}/spans", params={"limit": 0}).status_code == 400


def deleted_everywhere(srv: RunningServer, tid: str, span_id: str | None = None) -> None:
    spans = httpx.get(f"{srv.url}/v1/traces/{tid}/spans")
    remaining = [] if spans.status_code == 404 else [s["spanId"] for s in spans.json()]
    if span_id is None:
        assert remaining == []
        assert httpx.get(f"{srv.url}/api/traces/{tid}").status_code == 404
        listed = {t["traceId"] for t in httpx.get(f"{srv.url}/api/traces").json()["traces"]}
        assert tid not in listed
    else:
        assert span_id not in remaining and remaining


def test_delete_a_trace_and_a_span_hot_sealed_and_after_restart(make_server: Any) -> None:
    srv: RunningServer = make_server(env={"OTTERSCOPE_STORAGE__SEAL_ROWS": "4"})
    t0 = now_ns() - 120 * SECOND
    sealed, sealed_spans = send_trace(srv.url, t0)
    other, other_spans = send_trace(srv.url, t0 + SECOND)
    for i in range(4):  # enough rows that the first traces are sealed into Parquet
        send_trace(srv.url, t0 + (2 + i) * SECOND)
    hot, _ = send_trace(srv.url, t0 + 10 * SECOND)
    assert httpx.delete(f"{srv.url}/v1/traces/{sealed}").status_code == 204
    assert httpx.delete(f"{srv.url}/v1/traces/{hot}").status_code == 204
    r = httpx.delete(f"{srv.url}/v1/traces/{other}/spans/{other_spans[1]}")
    assert r.status_code == 204
    for s in (srv,):
        deleted_everywhere(s, sealed)
        deleted_everywhere(s, hot)
        deleted_everywhere(s, other, other_spans[1])
    # Deleting what is not there is fine (idempotent).
    assert httpx.delete(f"{srv.url}/v1/traces/{sealed}").status_code == 204
    # The rows really leave the Parquet files once maintenance has rewritten them.
    files = str(srv.data_dir / "parquet" / "traces" / "**" / "*.parquet")
    deadline = time.monotonic() + 30
    while True:
        ids = {
            r[0].hex()
            for r in duckdb.sql(f"SELECT DISTINCT trace_id FROM read_parquet('{files}')").fetchall()
        }
        if sealed not in ids or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sealed not in ids and other in ids
    assert srv.stop() == 0
    srv.start()
    deleted_everywhere(srv, sealed)
    deleted_everywhere(srv, hot)
    deleted_everywhere(srv, other, other_spans[1])
    # A span sent again after its delete is new data, and shows.
    send_trace_again = span(sealed, sealed_spans[0], "again", t0 + 50 * SECOND)
    post(srv.url, "traces", traces_body("shop", [send_trace_again]))
    assert [s["name"] for s in httpx.get(f"{srv.url}/v1/traces/{sealed}/spans").json()] == ["again"]


def test_delete_needs_the_admin_scope(tmp_path: Any) -> None:
    from tests.conftest import start_server

    tokens = [
        {"token": "reader-token-000001", "tenant": "t", "scopes": ["ingest", "read"]},
        {"token": "admin-token-0000001", "tenant": "t", "scopes": ["read", "admin"]},
    ]
    srv = start_server(tmp_path, {"auth": {"tokens": tokens}})
    try:
        reader = {"Authorization": "Bearer reader-token-000001"}
        admin = {"Authorization": "Bearer admin-token-0000001"}
        tid, _ = send_trace(srv.url, now_ns() - 60 * SECOND, headers=reader)
        r = httpx.delete(f"{srv.url}/v1/traces/{tid}", headers=reader)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden"
        assert httpx.get(f"{srv.url}/v1/traces/{tid}", headers=reader).status_code == 200
        assert httpx.delete(f"{srv.url}/v1/traces/{tid}", headers=admin).status_code == 204
        assert httpx.get(f"{srv.url}/v1/traces/{tid}", headers=reader).status_code == 404
        assert httpx.delete(f"{srv.url}/v1/traces/{tid}").status_code == 401
    finally:
        srv.stop()


def test_operations_of_a_service(server: RunningServer) -> None:
    send_trace(server.url, now_ns() - 60 * SECOND)
    send_trace(server.url, now_ns() - 50 * SECOND)
    r = httpx.get(f"{server.url}/api/services/shop/operations")
    assert r.status_code == 200
    assert r.json() == {
        "operations": [
            {"name": "GET /cart", "spanKind": "SPAN_KIND_SERVER", "spanCount": 2},
            {"name": "SELECT cart", "spanKind": "SPAN_KIND_CLIENT", "spanCount": 2},
        ]
    }
    assert httpx.get(f"{server.url}/api/services/nobody/operations").json() == {"operations": []}
    assert httpx.get(f"{server.url}/api/services/shop/operations?x=1").status_code == 400


def test_attribute_keys_and_values_for_autocomplete(server: RunningServer) -> None:
    t0 = now_ns() - 60 * SECOND
    send_trace(server.url, t0)
    extra = span(new_trace_id(), new_span_id(), "x", t0, attributes={"http.status_code": 500})
    post(server.url, "traces", traces_body("shop", [extra]))
    r = httpx.get(f"{server.url}/api/attributes", params={"signal": "traces"})
    assert r.status_code == 200
    # Span and resource attributes, the most used first.
    assert r.json()["keys"] == ["service.name", "http.status_code", "db.system"]
    r = httpx.get(f"{server.url}/api/attributes", params={"prefix": "http."})
    assert r.json() == {"keys": ["http.status_code"]}
    r = httpx.get(f"{server.url}/api/attributes/http.status_code/values")
    assert r.json() == {"values": [200, 500]}  # typed: integers stay integers
    r = httpx.get(f"{server.url}/api/attributes/http.status_code/values", params={"prefix": "5"})
    assert r.json() == {"values": [500]}
    r = httpx.get(f"{server.url}/api/attributes/service.name/values")
    assert r.json() == {"values": ["shop"]}
    r = httpx.get(f"{server.url}/api/attributes", params={"signal": "logs"})
    assert r.json() == {"keys": []}


@pytest.mark.parametrize(
    "path",
    [
        "/api/attributes?signal=spans",
        "/api/attributes?limit=0",
        "/api/attributes/k/values?start=never",
        "/v1/traces?limit=1001",
        "/v1/traces?time=later",
        "/spans?colour=red",
    ],
)
def test_bad_parameters_are_400(server: RunningServer, path: str) -> None:
    r = httpx.get(f"{server.url}{path}")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_request"
