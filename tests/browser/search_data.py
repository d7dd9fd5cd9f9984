"""Traces for the search page tests, sent by the OpenTelemetry SDK's OTLP/HTTP exporter.

Times are explicit so durations, errors and attributes are known exactly: every trace is a
``shop-frontend`` server span ``GET /checkout`` over a ``shop-payments`` span ``charge``
(attribute ``payment.method``), and a few ``shop-inventory`` traces ``reserve stock``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

MS = 1_000_000


@dataclass(frozen=True)
class Sent:
    trace_id: str
    service: str
    name: str
    duration_ms: float
    error: bool
    method: str | None


def _provider(url: str, service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
    return provider


def send_shop_traces(url: str, checkouts: int = 12, reserves: int = 3) -> list[Sent]:
    """Checkouts i = 0.. last (10 + 10 i) ms, every third fails in ``charge``; paypal on odd i."""
    frontend, payments, inventory = (
        _provider(url, s) for s in ("shop-frontend", "shop-payments", "shop-inventory")
    )
    now = time.time_ns()
    sent: list[Sent] = []
    for i in range(checkouts):
        start = now - (600 - i * 40) * 1000 * MS
        duration = 10 + 10 * i
        method = "paypal" if i % 2 else "card"
        error = i % 3 == 0
        root = frontend.get_tracer("t").start_span(
            "GET /checkout", kind=SpanKind.SERVER, start_time=start
        )
        child = payments.get_tracer("t").start_span(
            "charge",
            context=set_span_in_context(root),
            kind=SpanKind.CLIENT,
            start_time=start + 2 * MS,
            attributes={"payment.method": method, "payment.attempt": i},
        )
        if error:
            child.set_status(Status(StatusCode.ERROR, "card declined"))
        child.end(end_time=start + (duration - 2) * MS)
        root.end(end_time=start + duration * MS)
        trace_id = format(root.get_span_context().trace_id, "032x")
        sent.append(Sent(trace_id, "shop-frontend", "GET /checkout", duration, error, method))
    for i in range(reserves):
        start = now - (500 - i * 100) * 1000 * MS
        duration = 1000 + 500 * i
        span = inventory.get_tracer("t").start_span(
            "reserve stock", kind=SpanKind.SERVER, start_time=start
        )
        span.end(end_time=start + duration * MS)
        trace_id = format(span.get_span_context().trace_id, "032x")
        sent.append(Sent(trace_id, "shop-inventory", "reserve stock", duration, False, None))
    for provider in (frontend, payments, inventory):
        provider.shutdown()
    return sent
