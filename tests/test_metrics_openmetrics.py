"""``GET /metrics`` in the OpenMetrics format when ``Accept`` asks: checked with the
``prometheus_client`` OpenMetrics parser (strict), with exemplars that survive restarts."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from otterscope.api.health import wants_openmetrics
from tests.conftest import RunningServer
from tests.payloads import attr, post

OM = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
TRACE, SPAN = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
OTHER_TRACE = "0af7651916cd43dd8448eb211c80319c"


def exemplar(value: float, trace: str, at: int, **labels: str) -> dict[str, Any]:
    return {
        "timeUnixNano": str(at),
        "asDouble": value,
        "traceId": trace,
        "spanId": SPAN,
        "filteredAttributes": [attr(k, v) for k, v in labels.items()],
    }


def payload() -> dict[str, Any]:
    now = time.time_ns()
    start = now - 5 * 10**9
    counter = {
        "name": "orders",
        "sum": {
            "aggregationTemporality": 1,
            "isMonotonic": True,
            "dataPoints": [
                {
                    "startTimeUnixNano": str(start),
                    "timeUnixNano": str(now),
                    "asInt": "3",
                    "exemplars": [exemplar(1, TRACE, now - 10**9, user="u-1")],
                }
            ],
        },
    }
    histogram = {
        "name": "checkout.duration",
        "unit": "s",
        "histogram": {
            "aggregationTemporality": 1,
            "dataPoints": [
                {
                    "startTimeUnixNano": str(start),
                    "timeUnixNano": str(now),
                    "count": "3",
                    "sum": 2.75,
                    "bucketCounts": ["1", "1", "1"],
                    "explicitBounds": [0.5, 1.0],
                    "exemplars": [
                        exemplar(0.25, TRACE, now - 2 * 10**9),
                        exemplar(2.0, OTHER_TRACE, now - 10**9),
                    ],
                }
            ],
        },
    }
    gauge = {
        "name": "queue.depth",
        "gauge": {"dataPoints": [{"timeUnixNano": str(now), "asDouble": 4.5}]},
    }
    summary = {
        "name": "rpc.latency",
        "summary": {
            "dataPoints": [
                {
                    "startTimeUnixNano": str(start),
                    "timeUnixNano": str(now),
                    "count": "2",
                    "sum": 3.0,
                    "quantileValues": [{"quantile": 0.5, "value": 1.0}],
                }
            ]
        },
    }
    resource = [attr("service.name", "shop"), attr("deployment.environment", "prod")]
    return {
        "resourceMetrics": [
            {
                "resource": {"attributes": resource},
                "scopeMetrics": [{"metrics": [counter, histogram, gauge, summary]}],
            }
        ]
    }


def families(srv: RunningServer) -> dict[str, Any]:
    r = httpx.get(f"{srv.url}/metrics", headers={"Accept": OM})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == (
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )
    assert r.text.endswith("\n# EOF\n")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def only(samples: list[Sample], name: str, **labels: str) -> Sample:
    (found,) = [
        s
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return found


def test_openmetrics_families_created_and_exemplars(make_server: Any) -> None:
    srv: RunningServer = make_server()
    post(srv.url, "metrics", payload())
    got = families(srv)

    orders = got["orders"]  # a counter family is named without _total
    assert orders.type == "counter"
    total = only(orders.samples, "orders_total", job="shop")
    assert total.value == 3
    assert total.exemplar is not None
    assert total.exemplar.labels == {"trace_id": TRACE, "span_id": SPAN, "user": "u-1"}
    assert total.exemplar.value == 1
    created = only(orders.samples, "orders_created", job="shop")
    assert abs(created.value - time.time()) < 120

    duration = got["checkout_duration_seconds"]
    assert duration.type == "histogram"
    buckets = {s.labels["le"]: s for s in duration.samples if s.name.endswith("_bucket")}
    assert [b.value for b in buckets.values()] == [1, 2, 3]
    # Each exemplar sits on the bucket its value falls in.
    assert buckets["0.5"].exemplar is not None
    assert buckets["0.5"].exemplar.labels["trace_id"] == TRACE
    assert buckets["1"].exemplar is None
    assert buckets["+Inf"].exemplar is not None
    assert buckets["+Inf"].exemplar.labels["trace_id"] == OTHER_TRACE
    assert {s.name for s in duration.samples} >= {
        "checkout_duration_seconds_count",
        "checkout_duration_seconds_sum",
        "checkout_duration_seconds_created",
    }

    assert got["queue_depth"].type == "gauge"
    assert got["rpc_latency"].type == "summary"
    assert only(got["rpc_latency"].samples, "rpc_latency", quantile="0.5").value == 1.0
    info = got["target"]
    assert info.type == "info"
    assert only(info.samples, "target_info", job="shop").labels["deployment_environment"] == "prod"
    # otterscope's own counters follow the same rules.
    received = got["otterscope_received_items"]
    assert received.type == "counter"
    assert {s.name for s in received.samples} >= {
        "otterscope_received_items_total",
        "otterscope_received_items_created",
    }

    # Without asking, the Prometheus text format: no exemplars, no _created, no # EOF.
    plain = httpx.get(f"{srv.url}/metrics").text
    assert "# EOF" not in plain and "_created" not in plain and "trace_id" not in plain

    # Exemplars are part of the accumulated state: kept by the snapshot at a clean stop,
    # and folded again from the stored points after a kill.
    assert srv.stop() == 0
    srv.start()
    assert only(families(srv)["orders"].samples, "orders_total").exemplar is not None
    srv.kill()
    srv.start()
    again = families(srv)["checkout_duration_seconds"].samples
    assert only(again, "checkout_duration_seconds_bucket", le="+Inf").exemplar is not None


def test_a_newer_exemplar_replaces_the_one_in_its_bucket(server: RunningServer) -> None:
    post(server.url, "metrics", payload())
    later = payload()
    point = later["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][1]["histogram"]
    newer = exemplar(0.3, OTHER_TRACE, time.time_ns())
    point["dataPoints"][0]["exemplars"] = [newer]
    post(server.url, "metrics", later)
    samples = families(server)["checkout_duration_seconds"].samples
    first = only(samples, "checkout_duration_seconds_bucket", le="0.5")
    assert first.value == 2
    assert first.exemplar is not None
    assert first.exemplar.labels["trace_id"] == OTHER_TRACE
    assert first.exemplar.value == 0.3


@pytest.mark.parametrize(
    ("accept", "openmetrics"),
    [
        (OM, True),  # what a Prometheus scrape sends
        ("application/openmetrics-text", True),
        ("text/plain;version=0.0.4", False),
        ("", False),
        ("*/*", False),
        ("application/openmetrics-text;q=0.2,text/plain", False),
        ("text/plain;q=0.5,application/openmetrics-text;q=0.9", True),
        ("application/openmetrics-text;q=0", False),
        ("application/openmetrics-text;q=junk", False),
    ],
)
def test_negotiation(accept: str, openmetrics: bool) -> None:
    assert wants_openmetrics(accept) is openmetrics
