"""``otterscope.client``, the standard-library push client, against a real otterscope server.

Metrics, spans and logs are recorded, flushed as gzip OTLP/JSON and read back through the
server's API (``/api/metrics/fetch``, ``/api/traces/{id}``, ``/api/logs``); the same
recordings through the OpenTelemetry SDK must be stored identically. A small capturing
HTTP server stands in where the exact requests matter (headers, failures, retries) and
the payloads are parsed with the official protobuf JSON parser (unknown fields refused).
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.json_format import Parse
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter, _Gauge
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from otterscope.client import Telemetry, parse_traceparent
from otterscope.client._encode import severity
from tests.conftest import RunningServer, start_server

SRC = Path(__file__).resolve().parent.parent / "src"
OTEL_VARS = (
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
)


@pytest.fixture(autouse=True)
def no_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One anonymous server for the tests that only need one (each uses its own service)."""
    running = start_server(tmp_path_factory.mktemp("client"))
    yield running
    if running.proc is not None:
        running.kill()


def service() -> str:
    return f"client-{uuid.uuid4().hex[:10]}"


# -- reading back ----------------------------------------------------------------------


def resource_attrs(resource: dict[str, Any]) -> dict[str, Any]:
    return {kv["key"]: next(iter(kv["value"].values())) for kv in resource.get("attributes", [])}


def fetch_metrics(server: RunningServer, name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(resource attributes, Metric)`` for every stored metric of service ``name``."""
    out = []
    cursor = None
    while True:
        body: dict[str, Any] = {"startTimeUnixNano": "0", "limit": 1000}
        if cursor:
            body["cursor"] = cursor
        r = httpx.post(f"{server.url}/api/metrics/fetch", json=body, headers=server.headers())
        assert r.status_code == 200, r.text
        doc = r.json()
        for rm in doc.get("resourceMetrics", []):
            attrs = resource_attrs(rm["resource"])
            if attrs.get("service.name") == name:
                out += [(attrs, m) for sm in rm["scopeMetrics"] for m in sm["metrics"]]
        cursor = doc["nextCursor"]
        if cursor is None:
            return out


def normalized(metrics: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """Metrics by name, without times: kind, unit, temporality, points sorted by attributes."""
    out: dict[str, Any] = {}
    for _, metric in metrics:
        kind = next(k for k in ("sum", "gauge", "histogram") if k in metric)
        data = metric[kind]
        entry = out.setdefault(
            metric["name"],
            {
                "kind": kind,
                "unit": metric.get("unit", ""),
                "description": metric.get("description", ""),
                "temporality": data.get("aggregationTemporality"),
                "monotonic": data.get("isMonotonic", False) if kind == "sum" else None,
                "points": [],
            },
        )
        for point in data["dataPoints"]:
            p = {k: v for k, v in point.items() if k not in ("startTimeUnixNano", "timeUnixNano")}
            p["attributes"] = sorted(
                (kv["key"], json.dumps(kv["value"])) for kv in point.get("attributes", [])
            )
            entry["points"].append(p)
    for entry in out.values():
        entry["points"].sort(key=lambda p: json.dumps(p, sort_keys=True))
    return out


def get_trace(server: RunningServer, trace_id: str) -> dict[str, dict[str, Any]]:
    r = httpx.get(f"{server.url}/api/traces/{trace_id}", headers=server.headers())
    assert r.status_code == 200, r.text
    return {s["name"]: s for s in r.json()["spans"]}


def official(doc: dict[str, Any], message: Any) -> Any:
    """Parse OTLP/JSON with protobuf's own JSON parser (unknown fields are an error).

    OTLP/JSON writes trace and span ids as hex where the protobuf JSON mapping has base64,
    so those (and only those) are converted first, after checking they are lowercase hex
    of the right size.
    """
    sizes = {"traceId": 32, "spanId": 16, "parentSpanId": 16}

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            if key in sizes and isinstance(value, str):
                assert len(value) == sizes[key] and value == value.lower(), (key, value)
                value = base64.b64encode(bytes.fromhex(value)).decode()
            out[key] = convert(value)
        return out

    Parse(json.dumps(convert(doc)), message)
    return message


# -- a capturing HTTP server -----------------------------------------------------------


class Capture:
    """An HTTP server that records each request and answers with the queued statuses."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.answers: list[tuple[int, bytes, dict[str, str]]] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                capture.requests.append((self.path, dict(self.headers), raw))
                status, body, headers = (
                    capture.answers.pop(0) if capture.answers else (200, b"{}", {})
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(gzip.decompress(raw)) for p, _, raw in self.requests if p == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def capture() -> Iterator[Capture]:
    c = Capture()
    yield c
    c.close()


# -- import isolation ------------------------------------------------------------------


def test_client_imports_with_the_standard_library_only() -> None:
    code = f"""
import sys, sysconfig
sys.path.insert(0, {str(SRC)!r})
try:
    import httpx
except ImportError:
    pass
else:
    raise SystemExit("site-packages are visible: the check would prove nothing")
import otterscope.client, otterscope.client.middleware
stdlib = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
foreign = []
for name, module in sorted(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if name.startswith("otterscope"):
        if not (name == "otterscope" or name.startswith("otterscope.client")):
            foreign.append(name)
    elif path and not path.startswith(stdlib):
        foreign.append(name + " " + path)
print("\\n".join(foreign))
"""
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


# -- the payloads ----------------------------------------------------------------------


def test_payloads_are_gzip_otlp_json_that_the_official_parser_accepts(capture: Capture) -> None:
    t = Telemetry(
        service_name="parsers",
        endpoint=capture.url + "/",
        token="tok",
        headers={"X-Tenant": "a"},
        resource_attributes={"deployment.environment": "test", "k8s.pod.uid": b"\x01"},
    )
    t.counter("requests", 2, {"route": "/a", "ok": True, "ratio": 0.5, "tags": ["x", "y"]})
    t.counter("requests", 3, {"tags": ["x", "y"], "ratio": 0.5, "ok": True, "route": "/a"})
    t.up_down_counter("inflight", -4)
    t.gauge("temperature", float("inf"), {"room": {"floor": 1}})  # not finite: ignored
    t.gauge("temperature", 21.5, {"room": {"floor": 1}})
    t.histogram("latency", 5, unit="ms", description="time")
    t.histogram("latency", 5.5, unit="ms")
    t.histogram("big", 2**70)  # beyond int64 as an attribute-free value: a double sum
    with t.span("parent", kind="server", attributes={"big": 2**64}) as parent:
        parent.add_event("started", {"n": 1})
        with t.span("child", kind="client") as child:
            child.set_status("error", "nope")
            t.log({"structured": [1, "two"]}, severity="ERROR", event_name="e.v")
    t.log("plain")
    assert t.flush(), t.last_error
    assert [p for p, _, _ in capture.requests] == ["/v1/traces", "/v1/metrics", "/v1/logs"]
    for _, headers, _ in capture.requests:
        assert headers["Content-Type"] == "application/json"
        assert headers["Content-Encoding"] == "gzip"
        assert headers["Authorization"] == "Bearer tok"
        assert headers["X-Tenant"] == "a"
    for path, message in (
        ("/v1/traces", ExportTraceServiceRequest()),
        ("/v1/metrics", ExportMetricsServiceRequest()),
        ("/v1/logs", ExportLogsServiceRequest()),
    ):
        (doc,) = capture.bodies(path)
        official(doc, message)  # unknown fields or wrong types raise

    traces = official(capture.bodies("/v1/traces")[0], ExportTraceServiceRequest())
    spans = {s.name: s for s in traces.resource_spans[0].scope_spans[0].spans}
    assert spans["child"].parent_span_id.hex() == parent.span_id
    assert spans["parent"].trace_id.hex() == parent.trace_id
    assert spans["parent"].kind == 2 and spans["child"].kind == 3
    assert spans["child"].status.code == 2 and spans["child"].status.message == "nope"
    assert spans["parent"].flags == 0x101
    # 2**64 does not fit an int64: sent as its decimal text.
    assert spans["parent"].attributes[0].value.string_value == str(2**64)

    metrics = official(capture.bodies("/v1/metrics")[0], ExportMetricsServiceRequest())
    rm = metrics.resource_metrics[0]
    res = {kv.key: kv.value for kv in rm.resource.attributes}
    assert res["service.name"].string_value == "parsers"
    assert res["k8s.pod.uid"].bytes_value == b"\x01"
    assert res["telemetry.sdk.name"].string_value == "otterscope.client"
    assert res["telemetry.sdk.language"].string_value == "python"
    assert uuid.UUID(res["service.instance.id"].string_value).version == 4
    by_name = {m.name: m for m in rm.scope_metrics[0].metrics}
    assert rm.scope_metrics[0].scope.name == "otterscope.client"
    req = by_name["requests"].sum
    assert (req.aggregation_temporality, req.is_monotonic) == (1, True)
    assert [p.as_int for p in req.data_points] == [5]  # same attribute set, any order: merged
    assert by_name["inflight"].sum.data_points[0].as_int == -4
    assert not by_name["inflight"].sum.is_monotonic
    assert by_name["temperature"].gauge.data_points[0].as_double == 21.5
    lat = by_name["latency"]
    assert (lat.unit, lat.description) == ("ms", "time")
    (hp,) = lat.histogram.data_points
    assert (hp.count, hp.sum, hp.min, hp.max) == (2, 10.5, 5, 5.5)
    assert list(hp.bucket_counts)[:4] == [0, 1, 1, 0]  # 5 is in (0, 5], 5.5 in (5, 10]
    assert lat.histogram.aggregation_temporality == 1
    assert by_name["big"].histogram.data_points[0].sum == float(2**70)
    start, end = hp.start_time_unix_nano, hp.time_unix_nano
    assert 0 < start < end

    logs = official(capture.bodies("/v1/logs")[0], ExportLogsServiceRequest())
    first, second = logs.resource_logs[0].scope_logs[0].log_records
    assert (first.severity_number, first.severity_text) == (17, "ERROR")
    assert first.body.kvlist_value.values[0].key == "structured"
    assert first.trace_id.hex() == parent.trace_id and first.span_id.hex() == child.span_id
    assert first.event_name == "e.v"
    assert (second.severity_number, second.severity_text, second.trace_id) == (9, "INFO", b"")

    # The next flush's points start where this one's ended.
    t.counter("requests")
    assert t.flush()
    later = official(capture.bodies("/v1/metrics")[1], ExportMetricsServiceRequest())
    point = later.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0]
    assert point.start_time_unix_nano == end and point.time_unix_nano > end


def test_severity_names() -> None:
    assert severity("warn") == (13, "WARN")
    assert severity("WARNING") == (13, "WARNING")
    assert severity("critical") == (21, "CRITICAL")
    assert severity("info2") == (10, "INFO2")
    assert severity(18) == (18, "ERROR2")
    assert severity(17) == (17, "ERROR")
    assert severity("verbose") == (0, "verbose")
    assert severity(99) == (0, "")


# -- a real server ---------------------------------------------------------------------


def test_metrics_are_stored_with_their_values_temporality_and_resource(
    shared: RunningServer,
) -> None:
    name = service()
    t = Telemetry(service_name=name, endpoint=shared.url, resource_attributes={"team": "core"})
    for route, status in (("/a", 200), ("/a", 200), ("/b", 500)):
        t.counter("http_requests_total", 1, {"route": route, "status": status})
    t.counter("bytes", 1.5)
    t.counter("bytes", 2)
    t.up_down_counter("inflight", 3)
    t.up_down_counter("inflight", -1)
    t.gauge("queue_depth", 7, {"queue": "q"})
    t.gauge("queue_depth", 3, {"queue": "q"})
    for v in (0, 5, 12.5, 99, 10_001):
        t.histogram("http_request_duration_ms", v, {"route": "/a"})
    t.histogram("sizes", 3, boundaries=[1, 2, 5])
    t.histogram("sizes", 2, boundaries=[1, 2, 5])
    assert t.flush(), t.last_error
    assert t.pending() == {"traces": 0, "metrics": 0, "logs": 0}

    stored = fetch_metrics(shared, name)
    resource = stored[0][0]
    assert resource["service.name"] == name
    assert resource["team"] == "core"
    assert resource["telemetry.sdk.name"] == "otterscope.client"
    got = normalized(stored)
    http = got["http_requests_total"]
    assert (http["kind"], http["temporality"], http["monotonic"]) == ("sum", 1, True)
    values = {dict(p["attributes"])["route"]: p["asInt"] for p in http["points"]}
    assert values == {'{"stringValue": "/a"}': "2", '{"stringValue": "/b"}': "1"}
    assert got["bytes"]["points"][0]["asDouble"] == 3.5
    assert got["inflight"]["monotonic"] is False
    assert got["inflight"]["points"][0]["asInt"] == "2"
    assert got["queue_depth"]["kind"] == "gauge"
    assert got["queue_depth"]["points"][0]["asInt"] == "3"
    (hist,) = got["http_request_duration_ms"]["points"]
    assert hist["count"] == "5" and hist["sum"] == 10_117.5
    assert (hist["min"], hist["max"]) == (0, 10_001)
    assert hist["bucketCounts"] == ["1", "1", "0", "1", "0", "0", "1"] + ["0"] * 8 + ["1"]
    assert hist["explicitBounds"] == [0, 5, 10, 25, 50, 75, 100, 250, 500, 750] + [
        1000,
        2500,
        5000,
        7500,
        10000,
    ]
    (sizes,) = got["sizes"]["points"]
    assert sizes["explicitBounds"] == [1, 2, 5]
    assert sizes["bucketCounts"] == ["0", "1", "1", "0"]


def sdk_temporality() -> dict[type, AggregationTemporality]:
    return {
        Counter: AggregationTemporality.DELTA,
        UpDownCounter: AggregationTemporality.DELTA,
        Histogram: AggregationTemporality.DELTA,
        # Else the SDK's shutdown collection sends the last gauge value once more.
        _Gauge: AggregationTemporality.DELTA,
    }


def test_the_sdk_and_the_client_store_the_same_points(shared: RunningServer) -> None:
    sdk_name, client_name = service(), service()
    exporter = OTLPMetricExporter(
        endpoint=f"{shared.url}/v1/metrics", preferred_temporality=sdk_temporality()
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": sdk_name}), metric_readers=[reader]
    )
    meter = provider.get_meter("compare")
    t = Telemetry(service_name=client_name, endpoint=shared.url)

    counter = meter.create_counter("jobs", unit="{job}", description="jobs run")
    updown = meter.create_up_down_counter("inflight")
    gauge = meter.create_gauge("queue.depth", unit="1")
    hist = meter.create_histogram("duration", unit="ms")
    custom = meter.create_histogram("size", explicit_bucket_boundaries_advisory=[1.0, 10.0, 100.0])
    try:
        for round_ in range(2):
            for i in range(10):
                attrs = {"kind": "a" if i % 3 else "b", "round": round_}
                counter.add(i, attrs)
                t.counter("jobs", i, attrs, unit="{job}", description="jobs run")
                updown.add(1 - i % 4, {"pool": "x"})
                t.up_down_counter("inflight", 1 - i % 4, {"pool": "x"})
                gauge.set(i * 1.5, {"queue": "q"})
                t.gauge("queue.depth", i * 1.5, {"queue": "q"}, unit="1")
                hist.record(i * 7.5, attrs)
                t.histogram("duration", i * 7.5, attrs, unit="ms")
                custom.record(i**2)
                t.histogram("size", i**2, boundaries=[1, 10, 100])
            assert provider.force_flush(10_000)
            assert t.flush(), t.last_error
    finally:
        provider.shutdown()

    sdk, client = fetch_metrics(shared, sdk_name), fetch_metrics(shared, client_name)
    assert normalized(sdk) == normalized(client)
    assert set(normalized(client)) == {"jobs", "inflight", "queue.depth", "duration", "size"}
    # Two flushes each: every series has a point per interval, and deltas are not cumulated.
    jobs = normalized(client)["jobs"]["points"]
    assert len(jobs) == 4
    assert sorted(int(p["asInt"]) for p in jobs) == [18, 18, 27, 27]


def test_recordings_inside_a_span_leave_exemplars_that_reach_openmetrics(
    shared: RunningServer, capture: Capture
) -> None:
    name = service()
    spans = []
    for endpoint in (capture.url, shared.url):
        t = Telemetry(service_name=name, endpoint=endpoint)
        t.histogram("took", 3.0, boundaries=[1, 10])  # outside a span: no exemplar
        t.counter("done", 1)
        with t.span("work") as span:
            t.histogram("took", 7.0, boundaries=[1, 10])
            t.histogram("took", 50.0, boundaries=[1, 10])
            t.counter("done", 2)
            t.gauge("level", 1.0)  # gauges carry none
        spans.append(span)
        assert t.flush(), t.last_error
    span = spans[0]
    (doc,) = capture.bodies("/v1/metrics")
    official(doc, ExportMetricsServiceRequest())  # exemplars as the official parser takes them
    metrics = {m["name"]: m for m in doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]}
    (took,) = metrics["took"]["histogram"]["dataPoints"]
    assert [(e["asDouble"], e["traceId"], e["spanId"]) for e in took["exemplars"]] == [
        (7.0, span.trace_id, span.span_id),  # per bucket: (1, 10] and (10, +Inf)
        (50.0, span.trace_id, span.span_id),
    ]
    (done,) = metrics["done"]["sum"]["dataPoints"]
    assert [e["asDouble"] for e in done["exemplars"]] == [2.0]
    assert "exemplars" not in metrics["level"]["gauge"]["dataPoints"][0]

    r = httpx.get(f"{shared.url}/metrics", headers={"Accept": "application/openmetrics-text"})
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    linked = [
        s.exemplar.labels["trace_id"]
        for s in families["took"].samples + families["done"].samples
        if s.labels.get("job") == name and s.exemplar is not None
    ]
    assert len(linked) == 3
    assert set(linked) == {spans[1].trace_id}


def test_spans_nest_and_keep_attributes_events_and_status(shared: RunningServer) -> None:
    name = service()
    t = Telemetry(service_name=name, endpoint=shared.url)
    with t.span("checkout", kind="server", attributes={"user.id": 42, "vip": True}) as root:
        assert t.current_span() is root
        root.add_event("cart.loaded", {"items": 3})
        with t.span("SELECT carts", kind="client") as db:
            db.set_attribute("db.system", "postgresql")
            db.set_status("ok")
            db.set_status("error", "ignored: OK is final")
        with t.span("publish", kind="producer") as pub:
            pub.set_attributes({"ratio": 0.25, "tags": ["a", "b"]})
            pub.update_name("publish order")
        root.set_status("error", "upstream timeout")
    assert t.current_span() is None
    assert t.flush(), t.last_error

    spans = get_trace(shared, root.trace_id)
    assert set(spans) == {"checkout", "SELECT carts", "publish order"}
    top, child, producer = spans["checkout"], spans["SELECT carts"], spans["publish order"]
    assert top["parentSpanId"] == ""
    assert child["parentSpanId"] == producer["parentSpanId"] == root.span_id
    assert (top["kind"], child["kind"], producer["kind"]) == (
        "SPAN_KIND_SERVER",
        "SPAN_KIND_CLIENT",
        "SPAN_KIND_PRODUCER",
    )
    assert top["status"] == {"code": "STATUS_CODE_ERROR", "message": "upstream timeout"}
    assert child["status"]["code"] == "STATUS_CODE_OK"
    assert top["attributes"] == {"user.id": 42, "vip": True}
    assert producer["attributes"] == {"ratio": 0.25, "tags": ["a", "b"]}
    assert [(e["name"], e["attributes"]) for e in top["events"]] == [("cart.loaded", {"items": 3})]
    assert top["service"] == name
    assert top["scope"]["name"] == "otterscope.client"
    assert int(top["startTimeUnixNano"]) <= int(child["startTimeUnixNano"])
    assert int(child["endTimeUnixNano"]) <= int(top["endTimeUnixNano"])


def test_an_exception_in_a_span_is_recorded_and_reraised(shared: RunningServer) -> None:
    t = Telemetry(service_name=service(), endpoint=shared.url)

    class PaymentError(Exception):
        pass

    with pytest.raises(PaymentError, match="card declined"), t.span("pay") as span:
        with t.span("inner"):
            pass
        raise PaymentError("card declined")
    with pytest.raises(KeyError), t.span("lookup") as other:
        dict[str, int]()["missing"]
    assert t.errors == 0  # the user's exceptions are not telemetry errors
    assert t.flush(), t.last_error

    pay = get_trace(shared, span.trace_id)["pay"]
    assert pay["status"]["code"] == "STATUS_CODE_ERROR"
    assert "card declined" in pay["status"]["message"]
    (event,) = pay["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"].endswith("PaymentError")
    assert event["attributes"]["exception.message"] == "card declined"
    assert 'raise PaymentError("card declined")' in event["attributes"]["exception.stacktrace"]
    lookup = get_trace(shared, other.trace_id)["lookup"]
    assert lookup["events"][0]["attributes"]["exception.type"] == "KeyError"


def test_traceparent_extraction_and_injection_round_trip(shared: RunningServer) -> None:
    caller_trace, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    incoming = f"00-{caller_trace}-{caller_span}-01"
    upstream = Telemetry(service_name=service(), endpoint=shared.url)
    downstream = Telemetry(service_name=service(), endpoint=shared.url)
    with upstream.span("handle", kind="server", traceparent=incoming, tracestate="v=1") as s:
        assert (s.trace_id, s.parent.span_id if s.parent else None) == (caller_trace, caller_span)
        headers = s.inject({"accept": "*/*"})
        with upstream.span("call downstream", kind="client") as call:
            outgoing = call.inject({})
    assert headers == {
        "accept": "*/*",
        "traceparent": f"00-{caller_trace}-{s.span_id}-01",
        "tracestate": "v=1",
    }
    with downstream.span(
        "serve",
        kind="server",
        traceparent=outgoing["traceparent"],
        tracestate=outgoing.get("tracestate"),
    ) as served:
        pass
    assert upstream.flush() and downstream.flush()

    spans = get_trace(shared, caller_trace)
    assert spans["handle"]["parentSpanId"] == caller_span
    assert spans["handle"]["traceState"] == "v=1"
    assert spans["call downstream"]["parentSpanId"] == s.span_id
    assert spans["serve"]["parentSpanId"] == call.span_id
    assert spans["serve"]["spanId"] == served.span_id
    # A remote parent is flagged as such (OTLP SpanFlags: has-is-remote | is-remote | sampled).
    assert spans["serve"]["flags"] == 0x301
    assert spans["call downstream"]["flags"] == 0x101

    # The caller's sampled flag is carried, not decided here.
    unsampled = f"00-{caller_trace}-{caller_span}-00"
    with upstream.span("quiet", traceparent=unsampled) as quiet:
        assert quiet.traceparent.endswith("-00")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "00-" + "0" * 32 + "-b7ad6b7169203331-01",  # all-zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01",  # all-zero span id
        "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",  # upper case
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # version ff
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",  # v00 is exact
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",  # short span id
    ],
)
def test_an_invalid_traceparent_starts_a_new_trace(header: str | None) -> None:
    t = Telemetry(service_name="x")
    assert parse_traceparent(header) is None
    with t.span("root", traceparent=header) as span:
        assert span.parent is None
        assert span.trace_id != "0af7651916cd43dd8448eb211c80319c"


def test_a_future_traceparent_version_is_read() -> None:
    ctx = parse_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03-more")
    assert ctx is not None
    assert (ctx.trace_id, ctx.span_id, ctx.trace_flags) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        3,
    )


def test_logs_carry_severity_attributes_and_the_current_span(shared: RunningServer) -> None:
    name = service()
    t = Telemetry(service_name=name, endpoint=shared.url)
    marker = uuid.uuid4().hex[:8]
    with t.span("work") as span:
        t.log(f"cache miss {marker}", severity="WARN", attributes={"key": "k", "n": 2})
    t.log(f"outside {marker}", severity="debug")
    assert t.flush(), t.last_error

    r = httpx.get(f"{shared.url}/api/logs", params={"service": name})
    assert r.status_code == 200, r.text
    logs = {rec["body"]: rec for rec in r.json()["logs"]}
    warn, debug = logs[f"cache miss {marker}"], logs[f"outside {marker}"]
    assert (warn["severityNumber"], warn["severityText"]) == (13, "WARN")
    assert warn["attributes"] == {"key": "k", "n": 2}
    assert (warn["traceId"], warn["spanId"]) == (span.trace_id, span.span_id)
    assert (debug["severityNumber"], debug["severityText"]) == (5, "DEBUG")
    assert debug["traceId"] == "" and debug["spanId"] == ""
    assert warn["resource"]["service.name"] == name
    r = httpx.get(f"{shared.url}/api/logs", params={"service": name, "severity": "WARN"})
    assert [rec["severityText"] for rec in r.json()["logs"]] == ["WARN"]


# -- failures --------------------------------------------------------------------------


def test_flush_without_an_endpoint_is_a_no_op() -> None:
    t = Telemetry(service_name="nowhere")
    assert t.endpoint is None
    t.counter("c")
    t.log("x")
    with t.span("s"):
        pass
    assert t.flush() is True
    assert t.pending() == {"traces": 0, "metrics": 0, "logs": 0}
    assert (t.errors, t.last_error) == (0, None)


def test_a_down_server_keeps_the_data_for_a_later_flush(make_server: Any) -> None:
    server: RunningServer = make_server(start=False)
    name = service()
    t = Telemetry(service_name=name, endpoint=server.url, timeout=2)
    t.counter("runs", 2)
    t.histogram("took", 12)
    with t.span("first") as first:
        t.log("first run")
    assert t.flush() is False
    assert t.errors == 3  # one failed POST per signal
    assert t.last_error is not None and f"{server.url}/v1/logs" in t.last_error
    assert t.pending() == {"traces": 1, "metrics": 2, "logs": 1}
    t.counter("runs", 5)
    t.histogram("took", 1)
    with t.span("second"):
        pass

    server.start()
    assert t.flush() is True, t.last_error
    assert t.pending() == {"traces": 0, "metrics": 0, "logs": 0}
    assert t.dropped == 0
    got = normalized(fetch_metrics(server, name))
    # The failed interval merged with the next one: one delta over the whole time.
    assert got["runs"]["points"][0]["asInt"] == "7"
    assert got["took"]["points"][0]["count"] == "2"
    assert set(get_trace(server, first.trace_id)) == {"first"}
    r = httpx.get(f"{server.url}/api/logs", params={"service": name})
    assert [rec["body"] for rec in r.json()["logs"]] == ["first run"]
    (stored,) = fetch_metrics(server, name)[:1]
    point = stored[1]["sum"]["dataPoints"][0]
    assert int(point["startTimeUnixNano"]) < first.start_ns  # the first interval's start


def test_a_token_server_needs_the_token(make_server: Any) -> None:
    server: RunningServer = make_server(token="s3cret")
    name = service()
    good = Telemetry(service_name=name, endpoint=server.url, token="s3cret")
    good.counter("ok")
    assert good.flush(), good.last_error
    assert normalized(fetch_metrics(server, name))["ok"]["points"][0]["asInt"] == "1"

    bad = Telemetry(service_name=name, endpoint=server.url)
    bad.counter("ok")
    with bad.span("refused"):
        pass
    assert bad.flush() is False
    assert bad.errors == 2
    assert bad.last_error is not None and "401" in bad.last_error
    # Resending cannot help (the token will not change): the data is dropped and counted.
    assert bad.pending() == {"traces": 0, "metrics": 0, "logs": 0}
    assert bad.dropped == 2


def test_otel_environment_variables_are_honoured(
    make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server: RunningServer = make_server(token="s3 cret")
    name = service()
    monkeypatch.setenv("OTEL_SERVICE_NAME", name)
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "service.name=loses,deployment.environment=prod%20eu,team=a%2Cb"
    )
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.url + "/")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20s3%20cret,x-a=1")
    t = Telemetry()
    assert (t.endpoint, t.service_name) == (server.url, name)
    t.counter("from_env")
    assert t.flush(), t.last_error
    ((resource, _),) = fetch_metrics(server, name)
    assert resource["deployment.environment"] == "prod eu"
    assert resource["team"] == "a,b"

    # Explicit arguments win over every variable.
    explicit = Telemetry(
        service_name="explicit",
        endpoint="http://127.0.0.1:1",
        token="other",
        resource_attributes={"team": "b"},
    )
    assert (explicit.endpoint, explicit.service_name) == ("http://127.0.0.1:1", "explicit")
    assert explicit.resource["team"] == "b"
    assert explicit.resource["deployment.environment"] == "prod eu"
    assert explicit._headers["Authorization"] == "Bearer other"
    assert explicit._headers["x-a"] == "1"


def test_the_environment_is_read_in_a_fresh_process(shared: RunningServer) -> None:
    name = service()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTTERSCOPE_", "PYTHON"))
    }
    env.update(OTEL_SERVICE_NAME=name, OTEL_EXPORTER_OTLP_ENDPOINT=shared.url)
    code = (
        f"import sys; sys.path.insert(0, {str(SRC)!r}); from otterscope.client import Telemetry;"
        "t = Telemetry(); t.counter('invocations'); sys.exit(0 if t.flush() else 1)"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "invocations" in normalized(fetch_metrics(shared, name))


def test_retryable_and_final_answers(capture: Capture) -> None:
    t = Telemetry(service_name="answers", endpoint=capture.url)
    t.counter("c", 1)
    capture.answers.append((503, b'{"code": 14, "message": "draining"}', {"Retry-After": "1"}))
    assert t.flush() is False
    assert t.last_error == f"POST {capture.url}/v1/metrics: HTTP 503: draining"
    assert t.pending()["metrics"] == 1

    capture.answers.append((400, b'{"code": 3, "message": "bad"}', {}))
    assert t.flush() is False
    assert t.pending()["metrics"] == 0 and t.dropped == 1

    # A partial success is delivered (resending cannot help) but counted and told.
    t.log("x")
    t.log("y")
    answer = {"partialSuccess": {"rejectedLogRecords": "1", "errorMessage": "too old"}}
    capture.answers.append((200, json.dumps(answer).encode(), {}))
    assert t.flush() is True
    assert t.rejected == 1 and t.last_error is not None and "too old" in t.last_error

    # Redirects are not followed: the token must not travel elsewhere.
    t.log("z")
    capture.answers.append((307, b"", {"Location": "http://example.invalid/v1/logs"}))
    assert t.flush() is False and "HTTP 307" in (t.last_error or "")
    assert t.errors == 3
    assert [p for p, _, _ in capture.requests] == ["/v1/metrics"] * 2 + ["/v1/logs"] * 2


def test_buffers_are_bounded_and_drop_the_oldest(capture: Capture) -> None:
    t = Telemetry(service_name="bounded", endpoint=capture.url, max_items=3)
    for i in range(5):
        with t.span(f"s{i}"):
            pass
        t.log(f"l{i}")
        t.counter("c", 1, {"i": i})
    assert t.dropped == 6
    assert t.flush()
    spans = capture.bodies("/v1/traces")[0]["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert [s["name"] for s in spans] == ["s2", "s3", "s4"]
    logs = capture.bodies("/v1/logs")[0]["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert [rec["body"]["stringValue"] for rec in logs] == ["l2", "l3", "l4"]
    metric = capture.bodies("/v1/metrics")[0]["resourceMetrics"][0]["scopeMetrics"][0]
    points = metric["metrics"][0]["sum"]["dataPoints"]
    assert [p["attributes"][0]["value"]["intValue"] for p in points] == ["2", "3", "4"]


def test_bad_recordings_never_raise(capture: Capture) -> None:
    t = Telemetry(service_name="careless", endpoint=capture.url)
    t.counter("c", -1)  # a counter only goes up
    t.counter("c", "1")  # type: ignore[arg-type]
    t.counter("c", True)
    t.histogram("h", math.nan)
    t.histogram("h", -2)
    t.histogram("h", 1, boundaries=[5, 1])
    t.gauge("g", math.inf)
    with t.span("s", kind="sideways") as span:  # type: ignore[arg-type]
        span.set_status("maybe")
        for i in range(130):
            span.add_event(f"e{i}")
    t.log("fine", severity="NOTICE")
    assert t.errors == 9
    assert t.last_error is not None and "maybe" in t.last_error
    assert t.pending() == {"traces": 1, "metrics": 0, "logs": 1}
    assert t.flush()
    (doc,) = capture.bodies("/v1/traces")
    sent = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert sent["kind"] == 1
    assert (len(sent["events"]), sent["droppedEventsCount"]) == (128, 2)
    (doc,) = capture.bodies("/v1/logs")
    rec = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert (rec["severityNumber"], rec["severityText"]) == (0, "NOTICE")


def test_recording_and_flushing_from_many_threads_loses_nothing(capture: Capture) -> None:
    t = Telemetry(service_name="threads", endpoint=capture.url)
    stop = threading.Event()

    def record() -> None:
        for _ in range(2000):
            t.counter("n", 1, {"k": "v"})
            t.histogram("h", 1)

    def flush() -> None:
        while not stop.is_set():
            t.flush()

    flusher = threading.Thread(target=flush)
    flusher.start()
    workers = [threading.Thread(target=record) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    flusher.join()
    assert t.flush()
    total = count = 0
    for doc in capture.bodies("/v1/metrics"):
        for metric in doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]:
            for point in metric.get("sum", {}).get("dataPoints", []):
                total += int(point["asInt"])
            for point in metric.get("histogram", {}).get("dataPoints", []):
                count += int(point["count"])
    assert total == count == 16_000
    assert t.errors == 0


def test_flush_at_exit_is_off_by_default_and_can_be_asked_for(capture: Capture) -> None:
    code = f"""
import sys
sys.path.insert(0, {str(SRC)!r})
from otterscope.client import Telemetry
Telemetry(service_name="quiet", endpoint={capture.url!r}).counter("lost")
Telemetry(service_name="loud", endpoint={capture.url!r}, flush_at_exit=True).counter("kept")
"""
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (doc,) = capture.bodies("/v1/metrics")
    assert doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["name"] == "kept"
