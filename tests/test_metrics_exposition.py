"""Delta-to-cumulative accumulation and ``GET /metrics`` over real sockets, across restarts."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from otterscope.metrics.accumulator import GAUGE, HISTOGRAM, SUM
from otterscope.metrics.exposition import prometheus_name
from tests.conftest import RunningServer, start_server
from tests.payloads import attr, post


def metric_body(
    service: str, instance: str, metrics: list[dict[str, Any]], **resource: str
) -> dict[str, Any]:
    attrs = [attr("service.name", service), attr("service.instance.id", instance)]
    attrs += [attr(k, v) for k, v in resource.items()]
    return {
        "resourceMetrics": [
            {
                "resource": {"attributes": attrs},
                "scopeMetrics": [{"scope": {"name": "fn"}, "metrics": metrics}],
            }
        ]
    }


def delta_counter(name: str, value: int, unit: str = "", **labels: str) -> dict[str, Any]:
    now = time.time_ns()
    return {
        "name": name,
        "unit": unit,
        "sum": {
            "aggregationTemporality": 1,
            "isMonotonic": True,
            "dataPoints": [
                {
                    "startTimeUnixNano": str(now - 10**9),
                    "timeUnixNano": str(now),
                    "asInt": str(value),
                    "attributes": [attr(k, v) for k, v in labels.items()],
                }
            ],
        },
    }


def delta_histogram(name: str, values: list[float], unit: str = "ms") -> dict[str, Any]:
    bounds = [10.0, 100.0]
    counts = [sum(1 for v in values if v <= 10), sum(1 for v in values if 10 < v <= 100)]
    counts.append(len(values) - sum(counts))
    now = time.time_ns()
    return {
        "name": name,
        "unit": unit,
        "histogram": {
            "aggregationTemporality": 1,
            "dataPoints": [
                {
                    "startTimeUnixNano": str(now - 10**9),
                    "timeUnixNano": str(now),
                    "count": str(len(values)),
                    "sum": sum(values),
                    "bucketCounts": [str(c) for c in counts],
                    "explicitBounds": bounds,
                }
            ],
        },
    }


def gauge(name: str, value: float) -> dict[str, Any]:
    return {
        "name": name,
        "gauge": {"dataPoints": [{"timeUnixNano": str(time.time_ns()), "asDouble": value}]},
    }


def scrape(srv: RunningServer, headers: dict[str, str] | None = None) -> dict[str, float]:
    r = httpx.get(f"{srv.url}/metrics", headers=headers or srv.headers())
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_delta_counters_from_invocations_add_up_and_survive_restarts(make_server: Any) -> None:
    srv: RunningServer = make_server()
    for i in range(5):  # five invocations, each its own instance, some sending twice
        body = metric_body("checkout-fn", f"inst-{i}", [delta_counter("invocations", 1)])
        post(srv.url, "metrics", body)
        if i % 2:
            post(srv.url, "metrics", body)  # the same point again: still added
    series = 'invocations_total{job="checkout-fn"}'
    assert scrape(srv)[series] == 7  # appears on the first push, no second push needed
    assert srv.stop() == 0
    srv.start()
    assert scrape(srv)[series] == 7
    post(srv.url, "metrics", metric_body("checkout-fn", "x", [delta_counter("invocations", 2)]))
    assert scrape(srv)[series] == 9
    srv.kill()  # no snapshot at exit: the points after the last one are replayed
    srv.start()
    assert scrape(srv)[series] == 9


def test_histograms_units_labels_and_target_info(server: RunningServer) -> None:
    post(
        server.url,
        "metrics",
        metric_body(
            "api",
            "a",
            [
                delta_histogram("http.server.duration", [5, 50, 500]),
                delta_counter("bytes.sent", 100, unit="By", route="/a"),
                delta_counter("requests_total", 3),
                gauge("queue.depth", 7.5),
            ],
            **{"deployment.environment": "prod"},
        ),
    )
    post(
        server.url,
        "metrics",
        metric_body("api", "b", [delta_histogram("http.server.duration", [1, 2000])]),
    )
    got = scrape(server)
    h = "http_server_duration_milliseconds"
    # Two resources of one job (one has deployment.environment): one series, added up.
    assert got[f'{h}_bucket{{job="api",le="10"}}'] == 2
    assert got[f'{h}_bucket{{job="api",le="100"}}'] == 3
    assert got[f'{h}_bucket{{job="api",le="+Inf"}}'] == 5
    assert got[f'{h}_count{{job="api"}}'] == 5
    assert got[f'{h}_sum{{job="api"}}'] == 2556
    assert got['bytes_sent_bytes_total{job="api",route="/a"}'] == 100
    assert got['requests_total{job="api"}'] == 3  # never requests_total_total
    # A gauge is not a delta: it keeps its instance.
    assert got['queue_depth{instance="a",job="api"}'] == 7.5
    assert got['target_info{deployment_environment="prod",job="api"}'] == 1
    assert "otterscope_received_items_total" in " ".join(got)


def cumulative_counter(name: str, value: int, start: int) -> dict[str, Any]:
    return {
        "name": name,
        "sum": {
            "aggregationTemporality": 2,
            "isMonotonic": True,
            "dataPoints": [
                {
                    "startTimeUnixNano": str(start),
                    "timeUnixNano": str(time.time_ns()),
                    "asInt": str(value),
                }
            ],
        },
    }


def test_cumulative_series_keep_their_instance_and_the_latest_value(
    server: RunningServer,
) -> None:
    start = time.time_ns() - 60 * 10**9
    for value in (3, 10):
        for inst in ("pod-1", "pod-2"):
            body = metric_body("svc", inst, [cumulative_counter("jobs", value, start)])
            post(server.url, "metrics", body)
    # An older point arriving late changes nothing.
    late = cumulative_counter("jobs", 1, start)
    late["sum"]["dataPoints"][0]["timeUnixNano"] = str(start + 1)
    post(server.url, "metrics", metric_body("svc", "pod-1", [late]))
    got = scrape(server)
    assert got['jobs_total{instance="pod-1",job="svc"}'] == 10
    assert got['jobs_total{instance="pod-2",job="svc"}'] == 10
    assert got['target_info{instance="pod-1",job="svc"}'] == 1


def test_tenants_see_only_their_series(tmp_path: Path) -> None:
    tokens = [
        {"token": "metrics-alpha-token-1", "tenant": "alpha", "scopes": ["ingest", "read"]},
        {"token": "metrics-beta-token-22", "tenant": "beta", "scopes": ["ingest", "read"]},
    ]
    srv = start_server(tmp_path, {"auth": {"tokens": tokens}})
    try:
        alpha = {"Authorization": "Bearer metrics-alpha-token-1"}
        beta = {"Authorization": "Bearer metrics-beta-token-22"}
        post(srv.url, "metrics", metric_body("a", "1", [delta_counter("only_a", 1)]), alpha)
        assert 'only_a_total{job="a"}' in scrape(srv, alpha)
        assert not any(k.startswith("only_a") for k in scrape(srv, beta))
    finally:
        srv.stop()


def test_stale_series_are_hidden_but_keep_their_state(make_server: Any) -> None:
    srv: RunningServer = make_server(env={"OTTERSCOPE_METRICS__STALE_AFTER": "2s"})
    post(srv.url, "metrics", metric_body("job", "1", [delta_counter("ticks", 4)]))
    assert scrape(srv)['ticks_total{job="job"}'] == 4
    time.sleep(2.5)
    assert 'ticks_total{job="job"}' not in scrape(srv)
    post(srv.url, "metrics", metric_body("job", "2", [delta_counter("ticks", 1)]))
    assert scrape(srv)['ticks_total{job="job"}'] == 5


@pytest.mark.parametrize(
    ("name", "unit", "kind", "monotonic", "expected"),
    [
        (
            "http.server.request.duration",
            "s",
            HISTOGRAM,
            False,
            "http_server_request_duration_seconds",
        ),
        ("requests", "", SUM, True, "requests_total"),
        ("requests_total", "", SUM, True, "requests_total"),
        ("process.memory", "By", GAUGE, False, "process_memory_bytes"),
        ("latency_seconds", "s", HISTOGRAM, False, "latency_seconds"),
        ("cpu.utilization", "1", GAUGE, False, "cpu_utilization_ratio"),
        ("items", "{item}", SUM, True, "items_total"),
        ("throughput", "By/s", GAUGE, False, "throughput_bytes_per_second"),
        ("2xx.count", "", SUM, False, "_2xx_count"),
        ("a..b--c", "", GAUGE, False, "a_b_c"),
    ],
)
def test_prometheus_names(name: str, unit: str, kind: int, monotonic: bool, expected: str) -> None:
    assert prometheus_name(name, unit, kind, monotonic) == expected
    assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expected)


def test_series_beyond_the_limit_go_to_the_overflow_series(make_server: Any) -> None:
    srv: RunningServer = make_server(env={"OTTERSCOPE_METRICS__MAX_SERIES_PER_METRIC": "3"})
    counters = [delta_counter("hits", i + 1, user=f"u{i}") for i in range(6)]
    post(srv.url, "metrics", metric_body("web", "1", counters))
    post(srv.url, "metrics", metric_body("web", "2", [delta_counter("hits", 100, user="u9")]))
    got = scrape(srv)
    hits = {k: v for k, v in got.items() if k.startswith("hits_total{")}
    overflow = [k for k in hits if 'otel_metric_overflow="true"' in k]
    assert len(hits) == 4 and len(overflow) == 1  # three series, then the overflow one
    assert sum(hits.values()) == sum(range(1, 7)) + 100  # nothing dropped
    assert got['otterscope_metric_overflow_points_total{metric="hits"}'] == 4


def test_red_metrics_from_spans_with_the_spanmetrics_names(make_server: Any) -> None:
    from tests.payloads import new_span_id, new_trace_id, span, traces_body

    srv: RunningServer = make_server()
    t0 = time.time_ns() - 10**9
    spans = [
        span(new_trace_id(), new_span_id(), "GET /cart", t0, ms * 10**6, status=status)
        for ms, status in ((1, 0), (3, 0), (45, 2), (300, 2), (20_000, 0))
    ]
    post(srv.url, "traces", traces_body("shop", spans))
    labels = 'job="shop",service_name="shop",span_kind="SPAN_KIND_SERVER",span_name="GET /cart"'
    calls = "traces_span_metrics_calls_total"
    duration = "traces_span_metrics_duration_milliseconds"

    def check() -> None:
        got = scrape(srv)
        assert got[f'{calls}{{{labels},status_code="STATUS_CODE_ERROR"}}'] == 2
        assert got[f'{calls}{{{labels},status_code="STATUS_CODE_UNSET"}}'] == 3
        unset = f'{labels},status_code="STATUS_CODE_UNSET"'
        assert got[f'{duration}_bucket{{{unset},le="2"}}'] == 1
        assert got[f'{duration}_bucket{{{unset},le="4"}}'] == 2
        assert got[f'{duration}_bucket{{{unset},le="15000"}}'] == 2
        assert got[f'{duration}_bucket{{{unset},le="+Inf"}}'] == 3
        assert got[f"{duration}_sum{{{unset}}}"] == 20_004
        error = f'{labels},status_code="STATUS_CODE_ERROR"'
        assert got[f'{duration}_bucket{{{error},le="50"}}'] == 1
        assert got[f"{duration}_count{{{error}}}"] == 2

    check()
    assert srv.stop() == 0
    srv.start()
    check()  # restored from the snapshot, not counted again
    srv.kill()
    srv.start()
    check()


def test_api_metrics_lists_names_types_units_and_labels(server: RunningServer) -> None:
    from tests.payloads import new_span_id, new_trace_id, span, traces_body

    post(
        server.url,
        "metrics",
        metric_body(
            "api",
            "a",
            [
                delta_histogram("http.server.duration", [5]),
                delta_counter("bytes.sent", 100, unit="By", route="/a"),
                gauge("queue.depth", 7.5),
            ],
        ),
    )
    post(
        server.url,
        "traces",
        traces_body("api", [span(new_trace_id(), new_span_id(), "op", time.time_ns())]),
    )
    r = httpx.get(f"{server.url}/api/metrics")
    assert r.status_code == 200, r.text
    by_name = {m["name"]: m for m in r.json()["metrics"]}
    assert by_name["bytes.sent"] == {
        "name": "bytes.sent",
        "prometheusName": "bytes_sent_bytes_total",
        "type": "counter",
        "unit": "By",
        "description": "",
        "labels": ["job", "route"],
    }
    assert by_name["http.server.duration"]["type"] == "histogram"
    assert by_name["http.server.duration"]["prometheusName"] == "http_server_duration_milliseconds"
    assert by_name["queue.depth"]["labels"] == ["instance", "job"]
    assert (
        by_name["traces.span.metrics.calls"]["prometheusName"] == "traces_span_metrics_calls_total"
    )
    assert by_name["traces.span.metrics.duration"]["labels"] == [
        "job",
        "service_name",
        "span_kind",
        "span_name",
        "status_code",
    ]
    assert httpx.get(f"{server.url}/api/metrics?x=1").status_code == 400


def exp_histogram(scale: int, offset: int, counts: list[int], zero: int = 0) -> dict[str, Any]:
    now = time.time_ns()
    return {
        "name": "payload.size",
        "unit": "By",
        "exponentialHistogram": {
            "aggregationTemporality": 1,
            "dataPoints": [
                {
                    "startTimeUnixNano": str(now - 10**9),
                    "timeUnixNano": str(now),
                    "count": str(sum(counts) + zero),
                    "sum": 10.0,
                    "scale": scale,
                    "zeroCount": str(zero),
                    "positive": {"offset": offset, "bucketCounts": [str(c) for c in counts]},
                }
            ],
        },
    }


def test_exponential_histograms_add_across_scales_and_show_as_classic_buckets(
    make_server: Any,
) -> None:
    srv: RunningServer = make_server()
    # Scale 1: buckets (1, 1.41], (1.41, 2]; scale 0: bucket (2, 4]. Added at scale 0.
    post(srv.url, "metrics", metric_body("up", "1", [exp_histogram(1, 0, [1, 2], zero=1)]))
    post(srv.url, "metrics", metric_body("up", "2", [exp_histogram(0, 1, [3])]))

    def check() -> None:
        got = scrape(srv)
        name = "payload_size_bytes"
        assert got[f'{name}_bucket{{job="up",le="0"}}'] == 1
        assert got[f'{name}_bucket{{job="up",le="2"}}'] == 4
        assert got[f'{name}_bucket{{job="up",le="4"}}'] == 7
        assert got[f'{name}_bucket{{job="up",le="+Inf"}}'] == 7
        assert got[f'{name}_count{{job="up"}}'] == 7
        assert got[f'{name}_sum{{job="up"}}'] == 20

    check()
    assert srv.stop() == 0
    srv.start()
    check()


def test_promoted_resource_attributes_become_labels(make_server: Any, tmp_path: Path) -> None:
    config = tmp_path / "otterscope.yaml"
    config.write_text("metrics:\n  promote_resource_attributes: [deployment.environment, absent]\n")
    srv: RunningServer = make_server(args=["--config", str(config)])
    body = metric_body(
        "api",
        "a",
        [delta_counter("hits", 2, route="/a"), gauge("depth", 1.0)],
        **{"deployment.environment": "prod", "cloud.region": "eu"},
    )
    post(srv.url, "metrics", body)
    got = scrape(srv)
    assert got['hits_total{deployment_environment="prod",job="api",route="/a"}'] == 2
    assert got['depth{deployment_environment="prod",instance="a",job="api"}'] == 1
    # Still on target_info, with the attributes that are not promoted.
    target = 'target_info{cloud_region="eu",deployment_environment="prod",job="api"}'
    assert got[target] == 1
    listed = httpx.get(f"{srv.url}/api/metrics").json()["metrics"]
    hits = next(m for m in listed if m["name"] == "hits")
    assert hits["labels"] == ["deployment_environment", "job", "route"]
