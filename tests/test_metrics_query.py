"""``GET /api/metrics/query`` over a real socket: every aggregation against figures worked out
by hand, cumulative resets, label filters and groups, Prometheus names, RED metrics from
spans, the OpenTelemetry SDK in both temporalities, and the errors."""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from otterscope.client import Telemetry
from otterscope.metrics.query import histogram_quantile
from tests.conftest import RunningServer, start_server
from tests.payloads import attr, post

S = 1_000_000_000
# Steps are aligned to the epoch: a window starting on a whole hour, 20 minutes ago or more.
T0 = (time.time_ns() // (3600 * S) - 1) * 3600 * S


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("metrics-query"))
    yield server
    server.stop()


def unique(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}"


def body(service: str, instance: str, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    resource = [attr("service.name", service), attr("service.instance.id", instance)]
    return {
        "resourceMetrics": [
            {
                "resource": {"attributes": resource},
                "scopeMetrics": [{"scope": {"name": "q"}, "metrics": metrics}],
            }
        ]
    }


def point(at: int, start: int, labels: dict[str, str], **fields: Any) -> dict[str, Any]:
    return {
        "startTimeUnixNano": str(start),
        "timeUnixNano": str(at),
        "attributes": [attr(k, v) for k, v in labels.items()],
        **fields,
    }


def counter(name: str, temporality: int, points: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "sum": {"aggregationTemporality": temporality, "isMonotonic": True, "dataPoints": points},
    }


def query(srv: RunningServer, expect: int = 200, **params: Any) -> Any:
    params.setdefault("start", str(T0))
    params.setdefault("end", str(T0 + 3 * 60 * S - 1))
    params.setdefault("step", "60s")
    r = httpx.get(f"{srv.url}/api/metrics/query", params=params, timeout=30)
    assert r.status_code == expect, r.text
    return r.json()


def points(doc: dict[str, Any], **labels: str) -> list[list[float]]:
    for s in doc["series"]:
        if s["labels"] == labels:
            return [[p[0], pytest.approx(p[1])] for p in s["points"]]
    raise AssertionError(f"no series {labels} in {doc}")


def ms(offset_s: int) -> int:
    return (T0 + offset_s * S) // 1_000_000


def test_delta_counters_from_invocations(srv: RunningServer) -> None:
    name = unique("requests")
    sends = [  # (seconds into the window, instance, route, value)
        (10, "i1", "/a", 2),
        (20, "i2", "/a", 3),
        (30, "i3", "/b", 1),
        (70, "i4", "/a", 4),
        (130, "i5", "/b", 5),
    ]
    for at, inst, route, value in sends:
        t = T0 + at * S
        pts = [point(t, t - S, {"route": route}, asInt=str(value))]
        post(srv.url, "metrics", body("fn", inst, [counter(name, 1, pts)]))
    # One invocation's delivery retried: deltas are summed, never de-duplicated.
    t = T0 + 140 * S
    again = body("fn", "i6", [counter(name, 1, [point(t, t - S, {"route": "/b"}, asInt="1")])])
    post(srv.url, "metrics", again)
    post(srv.url, "metrics", again)

    total = query(srv, name=name, agg="increase")
    assert total["series"] == [{"labels": {}, "points": [[ms(0), 6], [ms(60), 4], [ms(120), 7]]}]
    by_route = query(srv, name=name, agg="increase", groupBy="route")
    assert points(by_route, route="/a") == [[ms(0), 5], [ms(60), 4]]
    assert points(by_route, route="/b") == [[ms(0), 1], [ms(120), 7]]
    rate = query(srv, name=name, agg="rate", **{"label.route": "/b"})
    assert points(rate) == [[ms(0), 1 / 60], [ms(120), 7 / 60]]
    # The per-invocation instance is not part of a delta series: two series (routes) at 0.
    assert points(query(srv, name=name, agg="count")) == [[ms(0), 2], [ms(60), 1], [ms(120), 1]]
    assert points(query(srv, name=name, agg="max")) == [[ms(0), 5], [ms(60), 4], [ms(120), 7]]
    # The Prometheus name answers the same; labels by their Prometheus names too.
    prom = query(srv, name=f"{name.replace('.', '_')}_total", agg="increase", groupBy="job")
    assert points(prom, job="fn") == [[ms(0), 6], [ms(60), 4], [ms(120), 7]]


def test_cumulative_counters_with_a_baseline_and_resets(srv: RunningServer) -> None:
    name = unique("jobs")
    old, fresh, restarted = T0 - 600 * S, T0 + 5 * S, T0 + 65 * S
    a = [  # started before the window: the point before it is the baseline
        point(T0 - 30 * S, old, {}, asInt="100"),
        point(T0 + 10 * S, old, {}, asInt="110"),
        point(T0 + 40 * S, old, {}, asInt="125"),
        point(T0 + 70 * S, restarted, {}, asInt="5"),  # restarted: counts in full
        point(T0 + 100 * S, restarted, {}, asInt="12"),
        point(T0 + 130 * S, restarted, {}, asInt="20"),
    ]
    b = [  # started inside the window: its first point counts in full
        point(T0 + 20 * S, fresh, {}, asInt="3"),
        point(T0 + 80 * S, fresh, {}, asInt="9"),
    ]
    # A reset without a new start time: the value dropped.
    c = [
        point(T0 - 10 * S, old, {}, asInt="50"),
        point(T0 + 15 * S, old, {}, asInt="60"),
        point(T0 + 45 * S, old, {}, asInt="4"),
    ]
    for inst, pts in (("a", a), ("b", b), ("c", c)):
        # Sent in two requests, newest first: the order of arrival does not matter.
        post(srv.url, "metrics", body("worker", inst, [counter(name, 2, pts[len(pts) // 2 :])]))
        post(srv.url, "metrics", body("worker", inst, [counter(name, 2, pts[: len(pts) // 2])]))
    doc = query(srv, name=name, agg="increase", groupBy="service.instance.id")
    assert points(doc, **{"service.instance.id": "a"}) == [[ms(0), 25], [ms(60), 12], [ms(120), 8]]
    assert points(doc, **{"service.instance.id": "b"}) == [[ms(0), 3], [ms(60), 6]]
    assert points(doc, **{"service.instance.id": "c"}) == [[ms(0), 14]]
    assert points(query(srv, name=name, agg="increase")) == [
        [ms(0), 42],
        [ms(60), 18],
        [ms(120), 8],
    ]
    # "instance" is the Prometheus label of service.instance.id.
    one = query(srv, name=name, agg="rate", **{"label.instance": "b"})
    assert points(one) == [[ms(0), 3 / 60], [ms(60), 6 / 60]]


def gauge(name: str, points_: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "gauge": {"dataPoints": points_}}


def test_gauges_take_each_series_latest_value_per_step(srv: RunningServer) -> None:
    name = unique("queue.depth")
    pts = [
        point(T0 + 10 * S, 0, {"host": "a"}, asDouble=5.0),
        point(T0 + 50 * S, 0, {"host": "a"}, asDouble=7.0),
        point(T0 + 20 * S, 0, {"host": "b"}, asDouble=1.0),
        point(T0 + 90 * S, 0, {"host": "b"}, asDouble=2.5),
    ]
    post(srv.url, "metrics", body("svc", "x", [gauge(name, pts)]))
    expected = {"sum": [8, 2.5], "avg": [4, 2.5], "min": [1, 2.5], "max": [7, 2.5], "count": [2, 1]}
    for agg, values in expected.items():
        got = points(query(srv, name=name, agg=agg))
        assert got == [[ms(0), values[0]], [ms(60), values[1]]], agg
    assert points(query(srv, name=name, agg="max", groupBy="host"), host="a") == [[ms(0), 7]]
    err = query(srv, 400, name=name, agg="rate")
    assert err["error"]["code"] == "bad_request"
    assert "gauge" in err["error"]["message"]


def histogram(name: str, temporality: int, points_: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "unit": "ms",
        "histogram": {"aggregationTemporality": temporality, "dataPoints": points_},
    }


def hpoint(at: int, start: int, counts: list[int], total: float, **extra: Any) -> dict[str, Any]:
    return point(
        at,
        start,
        {},
        count=str(sum(counts)),
        sum=total,
        bucketCounts=[str(c) for c in counts],
        explicitBounds=[10.0, 100.0, 1000.0],
        **extra,
    )


@pytest.mark.parametrize("temporality", [1, 2])
def test_histogram_percentiles_counts_and_sums(srv: RunningServer, temporality: int) -> None:
    name = unique("latency")
    if temporality == 1:  # two invocations' deltas in the first step
        pts = [
            hpoint(T0 + 10 * S, T0, [5, 20, 15, 0], 3000.0, min=1.0, max=900.0),
            hpoint(T0 + 20 * S, T0, [15, 40, 5, 0], 2000.0, min=2.0, max=950.0),
        ]
    else:  # a baseline before the window, then what adds up to the same distribution
        pts = [
            hpoint(T0 - 20 * S, T0 - 60 * S, [10, 10, 10, 0], 4000.0),
            hpoint(T0 + 30 * S, T0 - 60 * S, [30, 70, 30, 0], 9000.0),
        ]
    post(srv.url, "metrics", body("api", "x", [histogram(name, temporality, pts)]))
    # 100 observations in the first step, per bucket 20, 60, 20, 0 (bounds 10, 100, 1000).
    expected = {
        "p50": 10 + 90 * 30 / 60,
        "p90": 100 + 900 * 10 / 20,
        "p99": 100 + 900 * 19 / 20,
        "count": 100,
        "increase": 100,
        "rate": 100 / 60,
        "sum": 5000,
        "avg": 50,
    }
    for agg, value in expected.items():
        assert points(query(srv, name=name, agg=agg)) == [[ms(0), value]], agg
    # The Prometheus name of a histogram with unit ms.
    prom = f"{name.replace('.', '_')}_milliseconds"
    assert points(query(srv, name=prom, agg="p50")) == [[ms(0), 55]]
    if temporality == 1:
        assert points(query(srv, name=name, agg="min")) == [[ms(0), 1]]
        assert points(query(srv, name=name, agg="max")) == [[ms(0), 950]]


def test_exponential_histogram_percentiles(srv: RunningServer) -> None:
    name = unique("payload")
    # Scale 0: bucket i holds (2^i, 2^(i+1)]. 10 values in (1,2], 80 in (4,8], 10 in (8,16].
    pts = [
        point(
            T0 + 5 * S,
            T0,
            {},
            count="100",
            sum=600.0,
            scale=0,
            zeroCount="0",
            positive={"offset": 0, "bucketCounts": ["10", "0", "80", "10"]},
        )
    ]
    metric = {
        "name": name,
        "exponentialHistogram": {"aggregationTemporality": 1, "dataPoints": pts},
    }
    post(srv.url, "metrics", body("api", "x", [metric]))
    assert points(query(srv, name=name, agg="p50")) == [[ms(0), 4 + 4 * 40 / 80]]
    assert points(query(srv, name=name, agg="p99")) == [[ms(0), 8 + 8 * 9 / 10]]
    assert points(query(srv, name=name, agg="count")) == [[ms(0), 100]]


def test_red_metrics_from_spans(srv: RunningServer) -> None:
    service = unique("shop")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{srv.url}/v1/traces")))
    tracer = provider.get_tracer("red")
    now = time.time_ns()
    for i in range(10):
        end = now - (i % 2) * S
        span = tracer.start_span("GET /cart", kind=SpanKind.SERVER, start_time=end - 5_000_000)
        if i < 3:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)
    provider.shutdown()
    window = {"start": str(now - 600 * S), "end": str(now + S), "step": "3600s"}
    calls = query(
        srv,
        name="traces_span_metrics_calls_total",
        agg="increase",
        groupBy="status_code",
        **{"label.service_name": service},
        **window,
    )
    by_status = {
        s["labels"]["status_code"]: sum(p[1] for p in s["points"]) for s in calls["series"]
    }
    assert by_status == {"STATUS_CODE_ERROR": 3, "STATUS_CODE_UNSET": 7}
    p99 = query(
        srv,
        name="traces.span.metrics.duration",
        agg="p99",
        groupBy="span_name,span_kind",
        **{"label.service_name": service},
        **window,
    )
    (series,) = p99["series"]
    assert series["labels"] == {"span_name": "GET /cart", "span_kind": "SPAN_KIND_SERVER"}
    # Every span took 5 ms: in the (4, 6] bucket of the spanmetrics defaults.
    assert all(4 < p[1] <= 6 for p in series["points"])


def record_with_the_sdk(srv: RunningServer, service: str, temporality: Any) -> None:
    exporter = OTLPMetricExporter(
        endpoint=f"{srv.url}/v1/metrics",
        preferred_temporality={Counter: temporality, Histogram: temporality},
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": service}), metric_readers=[reader]
    )
    meter = provider.get_meter("q")
    jobs = meter.create_counter("sdk.jobs")
    took = meter.create_histogram("sdk.took", unit="ms")
    for _ in range(3):
        for i in range(20):
            jobs.add(i, {"kind": "even" if i % 2 == 0 else "odd"})
            took.record(i * 10.0)
        assert provider.force_flush(10_000)
    provider.shutdown()


def record_with_the_client(srv: RunningServer, service: str) -> None:
    for _ in range(3):  # three invocations, each its own Telemetry (its own instance)
        t = Telemetry(service_name=service, endpoint=srv.url)
        for i in range(20):
            t.counter("sdk.jobs", i, {"kind": "even" if i % 2 == 0 else "odd"})
            t.histogram("sdk.took", i * 10.0, unit="ms")
        assert t.flush(), t.last_error


def exposed(srv: RunningServer, job: str) -> dict[str, float]:
    """The job's samples on /metrics, without the job and instance labels."""
    out = {}
    for line in httpx.get(f"{srv.url}/metrics").text.splitlines():
        if line.startswith("sdk_") and f'job="{job}"' in line:
            sample, _, value = line.rpartition(" ")
            sample = re.sub(r'(job|instance)="[^"]*",?', "", sample).replace(",}", "}")
            out[sample.replace("{}", "")] = float(value)
    return out


def test_the_sdk_in_both_temporalities_and_the_client_give_the_same_answers(
    srv: RunningServer,
) -> None:
    sources = {
        "delta": lambda name: record_with_the_sdk(srv, name, AggregationTemporality.DELTA),
        "cumulative": lambda name: record_with_the_sdk(
            srv, name, AggregationTemporality.CUMULATIVE
        ),
        "client": lambda name: record_with_the_client(srv, name),
    }
    results, scraped = {}, {}
    for source, record in sources.items():
        service = unique(f"sdk-{source}")
        record(service)
        window = {"start": str(time.time_ns() - 3600 * S), "end": str(time.time_ns())}
        answers = {}
        for name, agg, group in (
            ("sdk.jobs", "increase", "kind"),
            ("sdk.took", "count", ""),
            ("sdk.took", "sum", ""),
            ("sdk.took", "p50", ""),
        ):
            doc = query(
                srv,
                name=name,
                agg=agg,
                groupBy=group,
                step="7200s",
                **{"label.service.name": service},
                **window,
            )
            answers[(name, agg)] = {
                tuple(sorted(s["labels"].items())): sum(p[1] for p in s["points"])
                for s in doc["series"]
            }
        results[source] = answers
        scraped[source] = exposed(srv, service)
    assert results["delta"] == results["cumulative"] == results["client"]
    delta = results["delta"]
    assert delta[("sdk.jobs", "increase")] == {(("kind", "even"),): 270, (("kind", "odd"),): 300}
    assert delta[("sdk.took", "count")] == {(): 60}
    assert delta[("sdk.took", "sum")] == {(): 3 * 1900}
    # What Prometheus scrapes is the same too.
    assert scraped["delta"] == scraped["cumulative"] == scraped["client"]
    assert scraped["client"]['sdk_jobs_total{kind="even"}'] == 270
    assert scraped["client"]['sdk_took_milliseconds_bucket{le="+Inf"}'] == 60


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({}, 400, "name is required"),
        ({"name": "x", "agg": "median"}, 400, "agg must be one of"),
        ({"name": "no.such.metric"}, 404, "no metric named"),
        ({"name": "x", "bogus": "1"}, 400, "unknown parameter"),
        ({"name": "x", "step": "0"}, 400, "step"),
        ({"name": "x", "step": "1ms"}, 400, "more than 11000 points"),
        ({"name": "x", "label.": "v"}, 400, "label key is empty"),
        ({"name": "x", "start": "2030-01-01T00:00:00Z"}, 400, "start must not be after end"),
    ],
)
def test_errors_have_the_one_shape(
    srv: RunningServer, params: dict[str, str], status: int, words: str
) -> None:
    r = httpx.get(f"{srv.url}/api/metrics/query", params=params)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert words in error["message"]
    assert set(error) == {"code", "message"}


def test_percentiles_need_a_histogram(srv: RunningServer) -> None:
    name = unique("hits")
    t = T0 + 5 * S
    post(srv.url, "metrics", body("a", "b", [counter(name, 1, [point(t, t, {}, asInt="1")])]))
    err = query(srv, 400, name=name, agg="p99")
    assert "histogram" in err["error"]["message"]


def test_histogram_quantile_matches_prometheus_rules() -> None:
    assert histogram_quantile(0.5, [1.0, 2.0], [0, 0, 0]) is None
    assert histogram_quantile(0.5, [1.0, 2.0], [10, 0, 0]) == 0.5
    assert histogram_quantile(0.99, [1.0, 2.0], [0, 0, 5]) == 2.0  # +Inf: highest bound
    assert histogram_quantile(0.5, [-1.0, 2.0], [4, 0, 0]) == -1.0
    assert math.isclose(histogram_quantile(0.75, [1.0, 2.0], [2, 2, 0]) or 0, 1.5)


def test_label_filters_on_typed_attribute_values(srv: RunningServer) -> None:
    name = unique("typed")
    typed = [
        ("code", {"intValue": "200"}, "200"),
        ("ratio", {"doubleValue": 0.5}, "0.5"),
        ("whole", {"doubleValue": 2.0}, "2"),
        ("ok", {"boolValue": True}, "true"),
        ("route", {"stringValue": "/a b"}, "/a b"),
        ("quote", {"stringValue": 'say "hi"'}, 'say "hi"'),
    ]
    attributes = [{"key": k, "value": v} for k, v, _ in typed]
    pts = [{"timeUnixNano": str(T0 + 5 * S), "asDouble": 3.0, "attributes": attributes}]
    post(srv.url, "metrics", body("typed-svc", "x", [gauge(name, pts)]))
    for key, _, text in typed:
        got = query(srv, name=name, agg="max", **{f"label.{key}": text})
        assert points(got) == [[ms(0), 3]], key
        assert query(srv, name=name, agg="max", **{f"label.{key}": text + "x"})["series"] == []
    # Resource attributes and Prometheus label names filter the same way.
    assert points(query(srv, name=name, agg="max", **{"label.service.name": "typed-svc"}))
    assert points(query(srv, name=name, agg="max", **{"label.job": "typed-svc"}))
