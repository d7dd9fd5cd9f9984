"""The OpenTelemetry Python SDK's own OTLP exporters (HTTP/protobuf and gRPC) against the server.

Real exporters, real sockets: spans, log records and metric data points are exported with
and without gzip, then read back through the query API (or, for metrics, through the
exporter's result and the ingest counters of ``/health``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
    OTLPLogExporter as GrpcLogExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http._log_exporter import (
    OTLPLogExporter as HttpLogExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.conftest import RunningServer, start_server

# (transport, gzip?)
VARIANTS = [
    pytest.param("http", False, id="http"),
    pytest.param("http", True, id="http-gzip"),
    pytest.param("grpc", False, id="grpc"),
    pytest.param("grpc", True, id="grpc-gzip"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One anonymous loopback server for the whole module (tests use distinct services)."""
    running = start_server(tmp_path_factory.mktemp("sdk"))
    yield running
    if running.proc is not None:
        running.kill()


def _exporter_kwargs(
    server: RunningServer, transport: str, gzip: bool, path: str
) -> dict[str, Any]:
    if transport == "http":
        return {
            "endpoint": f"{server.url}/v1/{path}",
            "timeout": 10,
            "compression": HttpCompression.Gzip if gzip else HttpCompression.NoCompression,
        }
    return {
        "endpoint": server.grpc_target,
        "insecure": True,
        "timeout": 10,
        "compression": grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression,
    }


def span_exporter(server: RunningServer, transport: str, gzip: bool) -> Any:
    cls = HttpSpanExporter if transport == "http" else GrpcSpanExporter
    return cls(**_exporter_kwargs(server, transport, gzip, "traces"))


def log_exporter(server: RunningServer, transport: str, gzip: bool) -> Any:
    cls = HttpLogExporter if transport == "http" else GrpcLogExporter
    return cls(**_exporter_kwargs(server, transport, gzip, "logs"))


def metric_exporter(server: RunningServer, transport: str, gzip: bool) -> Any:
    base = HttpMetricExporter if transport == "http" else GrpcMetricExporter

    class Recording(base):  # type: ignore[misc, valid-type]
        """The real exporter; it only remembers what each export returned."""

        results: list[MetricExportResult]

        def export(self, *args: Any, **kwargs: Any) -> MetricExportResult:
            result: MetricExportResult = super().export(*args, **kwargs)
            self.results.append(result)
            return result

    exporter = Recording(**_exporter_kwargs(server, transport, gzip, "metrics"))
    exporter.results = []
    return exporter


def unique_service() -> str:
    return f"sdk-{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize(("transport", "gzip"), VARIANTS)
def test_sdk_spans_arrive(server: RunningServer, transport: str, gzip: bool) -> None:
    service = unique_service()
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "deployment.environment": "test"})
    )
    provider.add_span_processor(SimpleSpanProcessor(span_exporter(server, transport, gzip)))
    tracer = provider.get_tracer("sdk-test-scope", "1.2.3")
    try:
        with tracer.start_as_current_span(
            "GET /orders",
            kind=SpanKind.SERVER,
            attributes={
                "http.route": "/orders",
                "http.status_code": 500,
                "ratio": 0.25,
                "cached": False,
                "tags": ["a", "b"],
            },
        ) as root:
            root.add_event("order.loaded", {"order.id": 42})
            with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT) as child:
                child.set_attribute("db.system", "postgresql")
            root.set_status(Status(StatusCode.ERROR, "boom"))
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()

    trace_id = format(root.get_span_context().trace_id, "032x")
    root_id = format(root.get_span_context().span_id, "016x")
    child_id = format(child.get_span_context().span_id, "016x")

    r = httpx.get(f"{server.url}/api/traces/{trace_id}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["traceId"] == trace_id
    spans = {s["name"]: s for s in body["spans"]}
    assert set(spans) == {"GET /orders", "SELECT orders"}
    root_span, child_span = spans["GET /orders"], spans["SELECT orders"]
    assert root_span["spanId"] == root_id
    assert root_span["parentSpanId"] == ""
    assert child_span["spanId"] == child_id
    assert child_span["parentSpanId"] == root_id
    assert root_span["service"] == service
    assert root_span["kind"] == "SPAN_KIND_SERVER"
    assert child_span["kind"] == "SPAN_KIND_CLIENT"
    assert root_span["status"] == {"code": "STATUS_CODE_ERROR", "message": "boom"}
    assert root_span["attributes"] == {
        "http.route": "/orders",
        "http.status_code": 500,
        "ratio": 0.25,
        "cached": False,
        "tags": ["a", "b"],
    }
    assert child_span["attributes"] == {"db.system": "postgresql"}
    assert root_span["resource"]["service.name"] == service
    assert root_span["resource"]["deployment.environment"] == "test"
    assert root_span["scope"]["name"] == "sdk-test-scope"
    assert root_span["scope"]["version"] == "1.2.3"
    assert [e["name"] for e in root_span["events"]] == ["order.loaded"]
    assert root_span["events"][0]["attributes"] == {"order.id": 42}
    assert int(root_span["endTimeUnixNano"]) >= int(child_span["endTimeUnixNano"])
    assert root_span["durationMs"] >= child_span["durationMs"] >= 0

    # The same trace as OTLP/JSON TracesData.
    r = httpx.get(f"{server.url}/api/traces/{trace_id}", params={"format": "otlp"})
    assert r.status_code == 200, r.text
    otlp = r.json()
    otlp_spans = [s for rs in otlp["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert sorted(s["spanId"] for s in otlp_spans) == sorted([root_id, child_id])
    assert {s["traceId"] for s in otlp_spans} == {trace_id}
    otlp_root = next(s for s in otlp_spans if s["spanId"] == root_id)
    assert otlp_root["name"] == "GET /orders"
    assert otlp_root["kind"] in (2, "SPAN_KIND_SERVER")
    resource_attrs = {
        kv["key"]: kv["value"] for kv in otlp["resourceSpans"][0]["resource"]["attributes"]
    }
    assert resource_attrs["service.name"] == {"stringValue": service}

    # Search: service and attribute conditions on the same span.
    r = httpx.get(
        f"{server.url}/api/traces", params={"service": service, "attr.http.route": "/orders"}
    )
    assert r.status_code == 200, r.text
    found = r.json()["traces"]
    assert [t["traceId"] for t in found] == [trace_id]
    assert found[0]["rootName"] == "GET /orders"
    assert found[0]["rootService"] == service
    assert found[0]["spanCount"] == 2
    assert found[0]["errorCount"] == 1
    # Typed matching: the integer attribute is found by its decimal text.
    r = httpx.get(
        f"{server.url}/api/traces", params={"service": service, "attr.http.status_code": "500"}
    )
    assert [t["traceId"] for t in r.json()["traces"]] == [trace_id]
    # A value no span has finds nothing.
    r = httpx.get(
        f"{server.url}/api/traces", params={"service": service, "attr.http.route": "/nope"}
    )
    assert r.json()["traces"] == []


@pytest.mark.parametrize(("transport", "gzip"), VARIANTS)
def test_sdk_logs_arrive(server: RunningServer, transport: str, gzip: bool) -> None:
    service = unique_service()
    resource = Resource.create({"service.name": service})
    tracer_provider = TracerProvider(resource=resource)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(log_exporter(server, transport, gzip))
    )
    logger = logger_provider.get_logger("sdk-log-scope", "0.1")
    marker = uuid.uuid4().hex[:8]
    try:
        with tracer_provider.get_tracer("t").start_as_current_span("work") as span:
            logger.emit(
                severity_number=SeverityNumber.ERROR,
                severity_text="ERROR",
                body=f"payment FAILED for order {marker}",
                attributes={"order.id": 7, "retry": True},
                event_name="payment.failed",
            )
        logger.emit(
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            body=f"unrelated message {marker}",
        )
        assert logger_provider.force_flush(10_000)
    finally:
        logger_provider.shutdown()
        tracer_provider.shutdown()

    ctx = span.get_span_context()
    r = httpx.get(
        f"{server.url}/api/logs", params={"service": service, "q": f"failed for ORDER {marker}"}
    )
    assert r.status_code == 200, r.text
    logs = r.json()["logs"]
    assert len(logs) == 1, logs
    rec = logs[0]
    assert rec["body"] == f"payment FAILED for order {marker}"
    assert rec["service"] == service
    assert rec["severityNumber"] == 17
    assert rec["severityText"] == "ERROR"
    assert rec["eventName"] == "payment.failed"
    assert rec["attributes"] == {"order.id": 7, "retry": True}
    assert rec["traceId"] == format(ctx.trace_id, "032x")
    assert rec["spanId"] == format(ctx.span_id, "016x")
    assert rec["scope"]["name"] == "sdk-log-scope"
    assert rec["resource"]["service.name"] == service

    # Both records are there for the service, newest first.
    r = httpx.get(f"{server.url}/api/logs", params={"service": service})
    assert sorted(x["severityText"] for x in r.json()["logs"]) == ["ERROR", "INFO"]
    # And a minimum severity leaves the INFO record out.
    r = httpx.get(f"{server.url}/api/logs", params={"service": service, "severity": "WARN"})
    assert [x["severityText"] for x in r.json()["logs"]] == ["ERROR"]


def _received_metric_points(server: RunningServer) -> int:
    r = httpx.get(f"{server.url}/health", headers=server.headers())
    assert r.status_code == 200, r.text
    return int(r.json()["ingest"]["receivedItems"]["metrics"])


@pytest.mark.parametrize(("transport", "gzip"), VARIANTS)
def test_sdk_metrics_arrive(server: RunningServer, transport: str, gzip: bool) -> None:
    before = _received_metric_points(server)
    exporter = metric_exporter(server, transport, gzip)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": unique_service()}),
        metric_readers=[reader],
        views=[
            View(
                instrument_name="payload.size",
                aggregation=ExponentialBucketHistogramAggregation(),
            )
        ],
    )
    meter = provider.get_meter("sdk-metric-scope")
    try:
        counter = meter.create_counter("requests", unit="1")
        counter.add(3, {"route": "/a"})
        counter.add(1, {"route": "/b"})  # a second series: a second data point
        meter.create_up_down_counter("inflight").add(-2)
        meter.create_gauge("queue.depth").set(7, {"queue": "q1"})
        latency = meter.create_histogram("latency", unit="ms")
        for v in (5, 12.5, 250):
            latency.record(v, {"route": "/a"})
        size = meter.create_histogram("payload.size", unit="By")
        for v in (10, 100, 1000, 10_000):
            size.record(v)
        assert provider.force_flush(10_000)
        assert exporter.results == [MetricExportResult.SUCCESS]
        # 2 counter series + up-down counter + gauge + histogram + exponential histogram.
        expected = 6
        # A SUCCESS means committed, and the counters move before the answer is sent.
        assert _received_metric_points(server) == before + expected

        # A second collection (cumulative temporality) exports the same series again.
        counter.add(5, {"route": "/a"})
        assert provider.force_flush(10_000)
        assert exporter.results == [MetricExportResult.SUCCESS] * 2
        assert _received_metric_points(server) == before + 2 * expected
    finally:
        provider.shutdown()
