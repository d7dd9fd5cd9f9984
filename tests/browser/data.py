"""Data the browser tests and bench/ui.py feed a real server.

Two ways in, both over OTLP/HTTP like real senders:
- ``send_demo``: the OpenTelemetry SDK's own exporters send a few services' traces with
  nested spans across services, errors with exception events, span events, links between
  traces, and log records emitted inside spans (so they carry trace and span ids).
- ``big_trace_bodies`` / ``many_traces_bodies``: OTLP protobuf built directly (the SDK
  would take minutes for 50,000 spans), one trace split over several requests each well
  under the 16 MiB body limit, as a collector's batches would split it.

No pytest here: bench/ui.py imports it too.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber as SeverityNumberPb
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, StatusCode, Tracer

DEMO_SERVICES = ("frontend", "checkout", "payments")
BIG_SERVICES = ("gateway", "orders", "inventory", "pricing", "postgres")
# Spans per request: ~200 bytes each, so a request is ~1 MB, far under the 16 MiB limit.
CHUNK_SPANS = 5_000


@dataclass(frozen=True)
class DemoTrace:
    trace_id: str
    root_span_id: str
    error_span_id: str | None
    logged_span_id: str


@dataclass(frozen=True)
class Demo:
    """What ``send_demo`` sent: hex ids the tests look for in the UI."""

    traces: tuple[DemoTrace, ...]
    services: tuple[str, ...]


def send_demo(base_url: str, token: str | None = None, traces: int = 3) -> Demo:
    """``traces`` checkout traces across three services, with their logs, via the SDK."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    providers: dict[str, tuple[TracerProvider, LoggerProvider]] = {}
    for service in DEMO_SERVICES:
        resource = Resource.create({"service.name": service, "service.version": "1.4.2"})
        tp = TracerProvider(resource=resource)
        tp.add_span_processor(
            SimpleSpanProcessor(
                OTLPSpanExporter(endpoint=f"{base_url}/v1/traces", headers=headers, timeout=10)
            )
        )
        lp = LoggerProvider(resource=resource)
        lp.add_log_record_processor(
            SimpleLogRecordProcessor(
                OTLPLogExporter(endpoint=f"{base_url}/v1/logs", headers=headers, timeout=10)
            )
        )
        providers[service] = (tp, lp)

    def tracer(service: str) -> Tracer:
        return providers[service][0].get_tracer("otterscope.tests", "1.0")

    def log(service: str, severity: SeverityNumber, body: str, **attributes: str) -> None:
        providers[service][1].get_logger("otterscope.tests", "1.0").emit(
            severity_number=severity,
            severity_text=severity.name,
            body=body,
            attributes=attributes,
        )

    made: list[DemoTrace] = []
    previous = None
    try:
        for n in range(traces):
            failing = n % 2 == 1
            links = [Link(previous.get_span_context())] if previous is not None else []
            with tracer("frontend").start_as_current_span(
                "GET /checkout",
                kind=SpanKind.SERVER,
                links=links,
                attributes={"http.request.method": "GET", "http.route": "/checkout", "n": n},
            ) as root:
                log("frontend", SeverityNumber.INFO, f"checkout {n} started", user="u-7")
                with (
                    tracer("frontend").start_as_current_span("POST checkout", kind=SpanKind.CLIENT),
                    tracer("checkout").start_as_current_span(
                        "PlaceOrder", kind=SpanKind.SERVER, attributes={"order.items": 3}
                    ) as place,
                ):
                    place.add_event("cart.loaded", {"items": 3})
                    with tracer("checkout").start_as_current_span(
                        "SELECT orders",
                        kind=SpanKind.CLIENT,
                        attributes={"db.system": "postgresql"},
                    ):
                        pass
                    with tracer("payments").start_as_current_span(
                        "Charge", kind=SpanKind.SERVER, attributes={"amount": 12.5}
                    ) as charge:
                        logged = charge.get_span_context().span_id
                        log(
                            "payments",
                            SeverityNumber.ERROR if failing else SeverityNumber.INFO,
                            f"charge {n} {'declined' if failing else 'accepted'}",
                            **{"payment.id": f"p-{n}"},
                        )
                        if failing:
                            charge.record_exception(ValueError(f"card declined {n}"))
                            charge.set_status(StatusCode.ERROR, "card declined")
                if failing:
                    root.set_status(StatusCode.ERROR)
            ctx = root.get_span_context()
            made.append(
                DemoTrace(
                    trace_id=f"{ctx.trace_id:032x}",
                    root_span_id=f"{ctx.span_id:016x}",
                    error_span_id=f"{logged:016x}" if failing else None,
                    logged_span_id=f"{logged:016x}",
                )
            )
            previous = root
    finally:
        for tp, lp in providers.values():
            # A failed export is logged by the SDK, not raised: flush says whether it worked.
            if not (tp.force_flush(10_000) and lp.force_flush(10_000)):
                raise RuntimeError("the OpenTelemetry SDK could not flush to the server")
            tp.shutdown()
            lp.shutdown()
    return Demo(traces=tuple(made), services=DEMO_SERVICES)


def _kv(key: str, value: str | int | float | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _resource_spans(service: str, spans: list[Span]) -> ResourceSpans:
    rs = ResourceSpans()
    rs.resource.attributes.extend([_kv("service.name", service), _kv("host.name", "bench-1")])
    ss = rs.scope_spans.add()
    ss.scope.name = "otterscope.bench"
    ss.spans.extend(spans)
    return rs


def big_trace_bodies(
    n_spans: int, start_ns: int, fanout: int = 8, seed: int = 1
) -> tuple[str, list[bytes]]:
    """One trace of ``n_spans`` spans as OTLP protobuf request bodies: (trace id, bodies).

    A tree in breadth-first order (span i's parent is (i-1)//fanout) over 5 s: each parent's
    interval is split among its children, so every child lies inside its parent; ~1 % of
    spans fail, every 50th has an event. Services change by depth, as calls go deeper.
    """
    rng = random.Random(seed)
    trace_id = os.urandom(16)
    span_ids = [os.urandom(8) for _ in range(n_spans)]
    begin = [0] * n_spans
    end = [0] * n_spans
    depth = [0] * n_spans
    begin[0], end[0] = start_ns, start_ns + 5 * 10**9
    for i in range(n_spans):
        first = fanout * i + 1
        if first >= n_spans:
            continue
        slot = (end[i] - begin[i]) // fanout
        for k in range(fanout):
            c = first + k
            if c >= n_spans:
                break
            depth[c] = depth[i] + 1
            begin[c] = begin[i] + k * slot + slot // 10
            end[c] = begin[c] + max(1000, int(slot * rng.uniform(0.3, 0.8)))
    by_service: dict[str, list[Span]] = {}
    bodies: list[bytes] = []

    def flush() -> None:
        req = ExportTraceServiceRequest()
        req.resource_spans.extend(_resource_spans(s, spans) for s, spans in by_service.items())
        bodies.append(req.SerializeToString())
        by_service.clear()

    for i in range(n_spans):
        service = BIG_SERVICES[min(depth[i], len(BIG_SERVICES) - 1)]
        span = Span(
            trace_id=trace_id,
            span_id=span_ids[i],
            parent_span_id=span_ids[(i - 1) // fanout] if i else b"",
            name=f"{service} op-{i % 37}",
            kind=Span.SPAN_KIND_SERVER if i == 0 else Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=begin[i],
            end_time_unix_nano=end[i],
            attributes=[_kv("span.index", i), _kv("depth", depth[i]), _kv("component", service)],
        )
        if rng.random() < 0.01:
            span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="boom"))
        if i % 50 == 0:
            ev = span.events.add()
            ev.name = "checkpoint"
            ev.time_unix_nano = begin[i]
        by_service.setdefault(service, []).append(span)
        if (i + 1) % CHUNK_SPANS == 0:
            flush()
    if by_service:
        flush()
    return trace_id.hex(), bodies


def many_traces_bodies(
    n_traces: int, spans_per_trace: int, start_ns: int, spread_ns: int
) -> Iterator[tuple[list[str], bytes]]:
    """``n_traces`` small traces whose starts spread over ``spread_ns``, batched into bodies."""
    per_body = max(1, CHUNK_SPANS // spans_per_trace)
    for first in range(0, n_traces, per_body):
        ids: list[str] = []
        req = ExportTraceServiceRequest()
        for t in range(first, min(first + per_body, n_traces)):
            tid, bodies = big_trace_bodies(
                spans_per_trace, start_ns + spread_ns * t // n_traces, fanout=3, seed=t
            )
            ids.append(tid)
            for body in bodies:
                req.MergeFromString(body)
        yield ids, req.SerializeToString()


def post_traces(client: httpx.Client, base_url: str, body: bytes, token: str | None = None) -> None:
    """POST one protobuf body to /v1/traces; raise unless every span was accepted."""
    headers = {"Content-Type": "application/x-protobuf"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    r = client.post(f"{base_url}/v1/traces", content=body, headers=headers, timeout=60)
    if r.status_code != 200:
        raise RuntimeError(f"/v1/traces answered {r.status_code}: {r.text[:500]}")
    answer = ExportTraceServiceResponse.FromString(r.content)
    if answer.partial_success.rejected_spans:
        raise RuntimeError(f"spans rejected: {answer.partial_success}")


def send_big_trace(base_url: str, n_spans: int, start_ns: int, token: str | None = None) -> str:
    """Store one trace of ``n_spans`` spans (several requests); its hex id."""
    trace_id, bodies = big_trace_bodies(n_spans, start_ns)
    with httpx.Client() as client:
        for body in bodies:
            post_traces(client, base_url, body, token)
    return trace_id


def log_burst_body(service: str, n: int, prefix: str) -> bytes:
    """One OTLP/protobuf logs request of ``n`` INFO records a nanosecond apart, bodies
    ``<prefix> 0000`` (oldest) to ``<prefix> <n-1>``: far more than the SDK sends at once."""
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service))
    )
    scope = rl.scope_logs.add()
    now = time.time_ns()
    for i in range(n):
        record = scope.log_records.add()
        record.time_unix_nano = now + i
        record.severity_number = SeverityNumberPb.SEVERITY_NUMBER_INFO
        record.body.string_value = f"{prefix} {i:04d}"
    return req.SerializeToString()
