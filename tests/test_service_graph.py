"""Service graph metrics on ``/metrics`` (Tempo's metrics-generator names and labels), from
spans sent over OTLP to a real server: client/server pairs, failures, both histograms,
virtual nodes, tenants, the wait for a late server span, the cardinality bound, restarts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import RunningServer, start_server
from tests.payloads import new_span_id, new_trace_id, post, span, traces_body
from tests.test_metrics_exposition import scrape

CLIENT, SERVER, PRODUCER, CONSUMER = 3, 2, 4, 5
TOKENS = [
    {"token": "graph-alpha-token-1", "tenant": "alpha", "scopes": ["ingest", "read"]},
    {"token": "graph-beta-token-22", "tenant": "beta", "scopes": ["ingest", "read"]},
]
ALPHA = {"Authorization": "Bearer graph-alpha-token-1"}
BETA = {"Authorization": "Bearer graph-beta-token-22"}
BUCKETS = ("0.1", "0.2", "0.4", "0.8", "1.6", "3.2", "6.4", "12.8", "+Inf")


def edge(client: str, server: str, connection_type: str = "") -> str:
    return f'client="{client}",connection_type="{connection_type}",server="{server}"'


def call(
    url: str,
    client: str,
    server: str,
    client_ms: int,
    server_ms: int,
    headers: dict[str, str],
    client_status: int = 0,
    server_status: int = 0,
) -> None:
    """One request: the caller's CLIENT span and the callee's SERVER span, sent by each."""
    trace, parent = new_trace_id(), new_span_id()
    t0 = time.time_ns()
    post(
        url,
        "traces",
        traces_body(
            client,
            [span(trace, parent, "GET", t0, client_ms * 10**6, kind=CLIENT, status=client_status)],
        ),
        headers,
    )
    child = span(
        trace,
        new_span_id(),
        "GET /x",
        t0 + 10**5,
        server_ms * 10**6,
        parent=parent,
        kind=SERVER,
        status=server_status,
    )
    post(url, "traces", traces_body(server, [child]), headers)


def lone_client(
    url: str, service: str, attributes: dict[str, Any], headers: dict[str, str], ms: int = 5
) -> None:
    t0 = time.time_ns()
    only = span(
        new_trace_id(), new_span_id(), "q", t0, ms * 10**6, kind=CLIENT, attributes=attributes
    )
    post(url, "traces", traces_body(service, [only]), headers)


def graph_server(tmp_path: Path, **metrics: Any) -> RunningServer:
    return start_server(
        tmp_path,
        {"auth": {"tokens": TOKENS}, "metrics": {"service_graph_wait": "0s", **metrics}},
    )


def test_pairs_failures_histograms_and_tenants(tmp_path: Path) -> None:
    srv = graph_server(tmp_path)
    try:
        call(srv.url, "frontend", "cart", 300, 50, ALPHA)
        call(srv.url, "frontend", "cart", 1000, 700, ALPHA, server_status=2)
        call(srv.url, "frontend", "cart", 20, 10, ALPHA, client_status=2)
        call(srv.url, "web", "api", 5, 4, BETA)
        got = scrape(srv, ALPHA)
        e = edge("frontend", "cart")
        assert got[f"traces_service_graph_request_total{{{e}}}"] == 3
        assert got[f"traces_service_graph_request_failed_total{{{e}}}"] == 2
        server = [
            got[f'traces_service_graph_request_server_seconds_bucket{{{e},le="{b}"}}']
            for b in BUCKETS
        ]
        client = [
            got[f'traces_service_graph_request_client_seconds_bucket{{{e},le="{b}"}}']
            for b in BUCKETS
        ]
        # server spans: 10 ms, 50 ms, 700 ms; client spans: 20 ms, 300 ms, 1000 ms
        assert server == [2, 2, 2, 3, 3, 3, 3, 3, 3]
        assert client == [1, 1, 2, 2, 3, 3, 3, 3, 3]
        assert abs(got[f"traces_service_graph_request_server_seconds_sum{{{e}}}"] - 0.76) < 1e-9
        assert abs(got[f"traces_service_graph_request_client_seconds_sum{{{e}}}"] - 1.32) < 1e-9
        assert got[f"traces_service_graph_request_client_seconds_count{{{e}}}"] == 3
        # No job label, no target_info of their own: the series belong to the edge.
        assert not any("unknown_service" in k for k in got)
        assert not any("service_graph" in k and "job=" in k for k in got)
        # Tenants: beta sees only its edge, alpha never sees it.
        assert f"traces_service_graph_request_total{{{edge('web', 'api')}}}" not in got
        beta = scrape(srv, BETA)
        assert beta[f"traces_service_graph_request_total{{{edge('web', 'api')}}}"] == 1
        assert f"traces_service_graph_request_total{{{e}}}" not in beta
        assert not any(k.startswith("traces_service_graph_request_failed") for k in beta)
        # For Prometheus only: the metrics API (computed from stored data) does not list them.
        listed = httpx.get(f"{srv.url}/api/metrics", headers=ALPHA, timeout=30).json()
        assert not any("service_graph" in m["name"] for m in listed["metrics"])
        assert any(m["name"] == "traces.span.metrics.calls" for m in listed["metrics"])
        # Counted once: scraping again folds nothing twice.
        assert scrape(srv, ALPHA)[f"traces_service_graph_request_total{{{e}}}"] == 3
    finally:
        srv.stop()


def test_virtual_nodes_database_peer_service_user_and_messaging(tmp_path: Path) -> None:
    srv = graph_server(tmp_path)
    try:
        lone_client(srv.url, "orders", {"db.system": "postgresql", "db.name": "shop"}, ALPHA)
        lone_client(
            srv.url,
            "orders",
            {"db.system": "redis", "server.address": "cache.internal"},
            ALPHA,
        )
        lone_client(srv.url, "orders", {"peer.service": "payments-gw"}, ALPHA, ms=150)
        lone_client(srv.url, "orders", {"http.url": "http://nowhere"}, ALPHA)  # no callee name
        root = span(new_trace_id(), new_span_id(), "GET /", time.time_ns(), kind=SERVER)
        post(srv.url, "traces", traces_body("frontend", [root]), ALPHA)
        trace, producer = new_trace_id(), new_span_id()
        t0 = time.time_ns()
        post(
            srv.url,
            "traces",
            traces_body("orders", [span(trace, producer, "publish", t0, kind=PRODUCER)]),
            ALPHA,
        )
        consumer = span(trace, new_span_id(), "process", t0 + 10**6, parent=producer, kind=CONSUMER)
        post(srv.url, "traces", traces_body("mailer", [consumer]), ALPHA)
        got = scrape(srv, ALPHA)
        total = "traces_service_graph_request_total"
        assert got[f"{total}{{{edge('orders', 'shop', 'database')}}}"] == 1
        assert got[f"{total}{{{edge('orders', 'cache.internal', 'database')}}}"] == 1
        assert got[f"{total}{{{edge('orders', 'payments-gw', 'virtual_node')}}}"] == 1
        assert got[f"{total}{{{edge('user', 'frontend', 'virtual_node')}}}"] == 1
        assert got[f"{total}{{{edge('orders', 'mailer', 'messaging_system')}}}"] == 1
        graph = {k for k in got if k.startswith(total)}
        assert len(graph) == 5, graph  # the client span naming no callee is no request
        # A database call's server side is the client span's duration; a virtual server's 0.
        db = edge("orders", "shop", "database")
        assert got[f"traces_service_graph_request_server_seconds_sum{{{db}}}"] == 0.005
        peer = edge("orders", "payments-gw", "virtual_node")
        assert got[f'traces_service_graph_request_client_seconds_bucket{{{peer},le="0.1"}}'] == 0
        assert got[f'traces_service_graph_request_client_seconds_bucket{{{peer},le="0.2"}}'] == 1
    finally:
        srv.stop()


def test_a_late_server_span_pairs_within_the_wait(tmp_path: Path) -> None:
    """With a wait, a client span whose server span comes a little later is one request to
    that service, never also one to a virtual node."""
    srv = graph_server(tmp_path, service_graph_wait="2s")
    try:
        trace, parent = new_trace_id(), new_span_id()
        t0 = time.time_ns()
        client = span(trace, parent, "GET", t0, kind=CLIENT, attributes={"peer.service": "cart"})
        post(srv.url, "traces", traces_body("frontend", [client]), ALPHA)
        assert not any("service_graph" in k for k in scrape(srv, ALPHA))
        time.sleep(1)
        child = span(trace, new_span_id(), "GET /x", t0, parent=parent, kind=SERVER)
        post(srv.url, "traces", traces_body("cart", [child]), ALPHA)
        scrape(srv, ALPHA)
        deadline = time.monotonic() + 15
        got: dict[str, float] = {}
        while time.monotonic() < deadline:
            got = {k: v for k, v in scrape(srv, ALPHA).items() if "request_total" in k}
            if got:
                break
            time.sleep(0.5)
        time.sleep(2.5)
        got = {k: v for k, v in scrape(srv, ALPHA).items() if "request_total" in k}
        assert got == {f"traces_service_graph_request_total{{{edge('frontend', 'cart')}}}": 1}
    finally:
        srv.stop()


def test_edges_are_bounded_and_survive_a_restart(tmp_path: Path) -> None:
    srv = graph_server(tmp_path, max_series_per_metric=3)
    try:
        for i in range(5):
            call(srv.url, f"caller-{i}", "db-api", 5, 4, ALPHA)
        got = scrape(srv, ALPHA)
        total = {k: v for k, v in got.items() if k.startswith("traces_service_graph_request_total")}
        assert len(total) == 4, total  # three edges and the overflow series
        assert total['traces_service_graph_request_total{otel_metric_overflow="true"}'] == 2
        assert sum(total.values()) == 5
        srv.stop()
        srv.start()
        call(srv.url, "caller-0", "db-api", 5, 4, ALPHA)
        again = scrape(srv, ALPHA)
        assert again[f"traces_service_graph_request_total{{{edge('caller-0', 'db-api')}}}"] == 2
        assert (
            sum(v for k, v in again.items() if k.startswith("traces_service_graph_request_total"))
            == 6
        )
    finally:
        srv.stop()
