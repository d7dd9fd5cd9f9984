"""Plausible sender mistakes, answered over real sockets with a message that says the fix.

A body of one signal on another signal's path, a compressed body without its
Content-Encoding, a request without a usable Content-Type (answered in JSON, readable on a
terminal), and an endpoint configured with a trailing slash.
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
import zstandard
from google.rpc.status_pb2 import Status
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otterscope.errors import BadRequest
from otterscope.otlp import wire
from tests.conftest import RunningServer, start_server

INVALID_ARGUMENT = 3
UNIMPLEMENTED = 12
JSON = {"Content-Type": "application/json"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}
SIGNALS = ("traces", "metrics", "logs")
TOP_KEYS = {"traces": "resourceSpans", "metrics": "resourceMetrics", "logs": "resourceLogs"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("mistakes"))
    yield running
    if running.proc is not None:
        running.kill()


def json_status(response: httpx.Response) -> Status:
    """The ``google.rpc.Status`` of an error answered in JSON."""
    assert response.headers["content-type"].startswith("application/json"), response.headers
    doc = response.json()
    assert set(doc) == {"code", "message"}, doc
    return Status(code=doc["code"], message=doc["message"])


def proto_status(response: httpx.Response) -> Status:
    assert response.headers["content-type"] == "application/x-protobuf", response.headers
    return Status.FromString(response.content)


def json_body(signal: str, trace_id: str | None = None) -> bytes:
    now = str(time.time_ns())
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "mistakes"}}]}
    if signal == "traces":
        span = {
            "traceId": trace_id or os.urandom(16).hex(),
            "spanId": os.urandom(8).hex(),
            "name": "op",
            "kind": 2,
            "startTimeUnixNano": now,
            "endTimeUnixNano": now,
        }
        doc = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]}
    elif signal == "logs":
        record = {"timeUnixNano": now, "severityNumber": 9, "body": {"stringValue": "hi"}}
        doc = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": [record]}]}]}
    else:
        metric = {"name": "requests", "sum": {"aggregationTemporality": 2, "dataPoints": []}}
        metric["sum"]["dataPoints"] = [{"timeUnixNano": now, "asInt": "1"}]
        doc = {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [metric]}]}]}
    return orjson.dumps(doc)


def proto_body(signal: str, metric_kind: str = "sum") -> bytes:
    now = time.time_ns()
    if signal == "traces":
        req = ExportTraceServiceRequest()
        span = req.resource_spans.add().scope_spans.add().spans.add()
        span.trace_id = os.urandom(16)
        span.span_id = os.urandom(8)
        span.name = "op"
        span.kind = 2
        span.start_time_unix_nano = now
        span.end_time_unix_nano = now
        return req.SerializeToString()
    if signal == "logs":
        logs = ExportLogsServiceRequest()
        record = logs.resource_logs.add().scope_logs.add().log_records.add()
        record.time_unix_nano = now
        record.severity_number = 9  # type: ignore[assignment]
        record.body.string_value = "hi"
        return logs.SerializeToString()
    metrics = ExportMetricsServiceRequest()
    metric = metrics.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "http.server.request.count"
    point = getattr(metric, metric_kind).data_points.add()
    point.time_unix_nano = now
    if metric_kind in ("sum", "gauge"):
        point.as_int = 1
    else:
        point.count = 1
    return metrics.SerializeToString()


# -- one signal's body on another signal's path --------------------------------------------


@pytest.mark.parametrize("path", SIGNALS)
@pytest.mark.parametrize("body_signal", SIGNALS)
def test_json_body_of_another_signal_says_where_to_post_it(
    server: RunningServer, path: str, body_signal: str
) -> None:
    r = httpx.post(f"{server.url}/v1/{path}", content=json_body(body_signal), headers=JSON)
    if path == body_signal:
        assert r.status_code == 200, r.text
        assert r.json() == {}
        return
    assert r.status_code == 400, r.text
    status = json_status(r)
    assert status.code == INVALID_ARGUMENT
    assert f"/v1/{body_signal}" in status.message, status.message
    assert TOP_KEYS[body_signal] in status.message


def test_json_body_with_snake_case_key_on_the_wrong_path(server: RunningServer) -> None:
    body = json_body("logs").replace(b'"resourceLogs"', b'"resource_logs"')
    r = httpx.post(f"{server.url}/v1/traces", content=body, headers=JSON)
    assert r.status_code == 400
    assert "send it to /v1/logs" in json_status(r).message


def test_json_profiles_body_is_refused(server: RunningServer) -> None:
    r = httpx.post(f"{server.url}/v1/traces", content=b'{"resourceProfiles": [{}]}', headers=JSON)
    assert r.status_code == 400
    assert "profiles" in json_status(r).message


def test_json_body_without_any_signal_key_is_still_an_empty_export(server: RunningServer) -> None:
    for body in (b"{}", b'{"somethingElse": 1}'):
        r = httpx.post(f"{server.url}/v1/logs", content=body, headers=JSON)
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("path", SIGNALS)
@pytest.mark.parametrize(
    "body_signal", [*SIGNALS, "metrics:gauge", "metrics:histogram", "metrics:summary"]
)
def test_protobuf_body_of_another_signal_says_where_to_post_it(
    server: RunningServer, path: str, body_signal: str
) -> None:
    signal, _, kind = body_signal.partition(":")
    body = proto_body(signal, kind or "sum")
    r = httpx.post(f"{server.url}/v1/{path}", content=body, headers=PROTOBUF)
    if path == signal:
        assert r.status_code == 200, r.content
        return
    assert r.status_code == 400, r.content
    status = proto_status(r)
    assert status.code == INVALID_ARGUMENT
    assert f"send it to /v1/{signal}" in status.message, status.message


# -- a compressed body without its Content-Encoding -----------------------------------------


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_compressed_body_without_content_encoding(
    server: RunningServer, fmt: str, encoding: str
) -> None:
    raw = json_body("traces") if fmt == "json" else proto_body("traces")
    packed = gzip.compress(raw) if encoding == "gzip" else zstandard.compress(raw)
    headers = JSON if fmt == "json" else PROTOBUF
    with httpx.Client(timeout=30) as client:
        r = client.post(f"{server.url}/v1/traces", content=packed, headers=headers)
        assert r.status_code == 400, r.content
        status = json_status(r) if fmt == "json" else proto_status(r)
        assert status.code == INVALID_ARGUMENT
        assert f"looks {encoding}-compressed" in status.message, status.message
        assert f"Content-Encoding: {encoding}" in status.message
        # The same body with the header is fine.
        fixed = {**headers, "Content-Encoding": encoding}
        assert client.post(f"{server.url}/v1/traces", content=packed, headers=fixed).is_success


# -- errors for requests without a usable Content-Type are JSON ------------------------------


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/octet-stream"])
def test_415_without_a_usable_content_type_is_json(
    server: RunningServer, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    with httpx.Client(timeout=30) as client:
        r = client.post(f"{server.url}/v1/logs", content=b"\x0a\x00" * 1000, headers=headers)
        assert r.status_code == 415
        status = json_status(r)
        assert status.code == INVALID_ARGUMENT
        assert "application/x-protobuf" in status.message
        assert "application/json" in status.message
        # The body left unread did not spoil the connection.
        ok = client.post(f"{server.url}/v1/logs", content=json_body("logs"), headers=JSON)
        assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_405_without_a_content_type_is_json(server: RunningServer, method: str) -> None:
    r = httpx.request(method, f"{server.url}/v1/metrics")
    assert r.status_code == 405
    assert "POST" in r.headers["allow"]
    status = json_status(r)
    assert status.code == UNIMPLEMENTED
    assert method in status.message


def test_protobuf_senders_still_get_protobuf_errors(server: RunningServer) -> None:
    for media in ("application/x-protobuf", "application/protobuf"):
        r = httpx.put(f"{server.url}/v1/metrics", headers={"Content-Type": media})
        assert r.status_code == 405
        assert proto_status(r).code == UNIMPLEMENTED


# -- a trailing slash ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
@pytest.mark.parametrize("signal", SIGNALS)
def test_trailing_slash_is_the_same_endpoint(server: RunningServer, signal: str, fmt: str) -> None:
    body, headers = (json_body(signal), JSON) if fmt == "json" else (proto_body(signal), PROTOBUF)
    r = httpx.post(f"{server.url}/v1/{signal}/", content=body, headers=headers)
    assert r.status_code == 200, (r.status_code, r.headers, r.content)
    assert r.headers["content-type"] == headers["Content-Type"]
    # Errors there are the OTLP ones too.
    r = httpx.put(f"{server.url}/v1/{signal}/", headers=headers)
    assert r.status_code == 405
    status = json_status(r) if fmt == "json" else proto_status(r)
    assert status.code == UNIMPLEMENTED


def test_span_sent_to_the_trailing_slash_path_is_stored(server: RunningServer) -> None:
    trace_id = os.urandom(16).hex()
    r = httpx.post(f"{server.url}/v1/traces/", content=json_body("traces", trace_id), headers=JSON)
    assert r.status_code == 200, r.text
    got = httpx.get(f"{server.url}/api/traces/{trace_id}")
    assert got.status_code == 200, got.text
    assert trace_id in got.text


def test_sdk_exporter_with_a_trailing_slash_endpoint(server: RunningServer) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "slash"}))
    exporter = HttpSpanExporter(endpoint=f"{server.url}/v1/traces/", timeout=10)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        with provider.get_tracer("slash").start_as_current_span("op") as span:
            pass
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
    trace_id = format(span.get_span_context().trace_id, "032x")
    got = httpx.get(f"{server.url}/api/traces/{trace_id}")
    assert got.status_code == 200, got.text


# -- the protobuf verdict never refuses a body of the path's own signal ----------------------

u64 = st.integers(min_value=0, max_value=2**64 - 1)
text = st.text(max_size=20)


@st.composite
def own_signal_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """A request whose first item has any subset of its fields set (ids of valid size)."""
    signal = draw(st.sampled_from(SIGNALS))
    if signal == "traces":
        req = ExportTraceServiceRequest()
        span = req.resource_spans.add().scope_spans.add().spans.add()
        span.trace_id = draw(st.sampled_from([b"", os.urandom(16)]))
        span.span_id = draw(st.sampled_from([b"", os.urandom(8)]))
        span.name = draw(text)
        span.kind = draw(st.integers(0, 5))  # type: ignore[assignment]
        span.start_time_unix_nano = draw(u64)
        span.end_time_unix_nano = draw(u64)
        span.flags = draw(st.integers(0, 2**32 - 1))
        span.dropped_attributes_count = draw(st.integers(0, 9))
        if draw(st.booleans()):
            span.status.code = 2  # type: ignore[assignment]
        if draw(st.booleans()):
            span.events.add().name = draw(text)
        return signal, req.SerializeToString()
    if signal == "logs":
        logs = ExportLogsServiceRequest()
        record = logs.resource_logs.add().scope_logs.add().log_records.add()
        record.time_unix_nano = draw(u64)
        record.observed_time_unix_nano = draw(u64)
        record.severity_number = draw(st.integers(0, 24))  # type: ignore[assignment]
        record.severity_text = draw(text)
        if draw(st.booleans()):
            record.body.string_value = draw(text)
        record.flags = draw(st.integers(0, 2**32 - 1))
        record.trace_id = draw(st.sampled_from([b"", os.urandom(16)]))
        record.event_name = draw(text)
        return signal, logs.SerializeToString()
    metrics = ExportMetricsServiceRequest()
    metric = metrics.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = draw(text)
    metric.description = draw(text)
    metric.unit = draw(text)
    kind = draw(st.sampled_from(["gauge", "sum", "histogram", "exponential_histogram", "summary"]))
    getattr(metric, kind).data_points.add().time_unix_nano = draw(u64)
    return signal, metrics.SerializeToString()


@settings(max_examples=300, deadline=None)
@given(case=own_signal_bodies())
def test_protobuf_of_the_paths_own_signal_is_never_refused(case: tuple[str, bytes]) -> None:
    signal, body = case
    wire.check_protobuf_signal(signal, body)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200), signal=st.sampled_from(SIGNALS))
def test_protobuf_verdict_on_any_bytes_is_a_pass_or_a_400(body: bytes, signal: str) -> None:
    try:
        wire.check_protobuf_signal(signal, body)
    except BadRequest as exc:
        assert "send it to /v1/" in exc.message


def test_refused_origin_on_the_trailing_slash_path_is_an_otlp_error(server: RunningServer) -> None:
    headers = {**PROTOBUF, "Origin": "http://elsewhere.example"}
    r = httpx.post(f"{server.url}/v1/logs/", content=proto_body("logs"), headers=headers)
    assert r.status_code == 403
    assert proto_status(r).code == 7  # PERMISSION_DENIED


def test_the_signal_check_looks_at_a_bounded_part_of_the_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check runs on the event loop: 16 MiB of fields it skips (a valid, empty request)
    must not be walked whole. Counted in fields visited, not timed."""
    visited = 0
    real = wire._fields

    def counting(body: bytes, start: int, end: int):  # type: ignore[no-untyped-def]
        nonlocal visited
        for field in real(body, start, end):
            visited += 1
            yield field

    monkeypatch.setattr(wire, "_fields", counting)
    wire.check_protobuf_signal("traces", b"\x10\x00" * (8 * 2**20))
    many_empty = b"\x0a\x00" * 100_000  # empty ResourceSpans
    wire.check_protobuf_signal("logs", many_empty)
    assert visited <= 2 * (wire._SNIFF_FIELDS + wire._ITEM_FIELDS)
