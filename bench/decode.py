"""Decoding cost per item: upb parse only, the Python path, and the C fast path, per signal.

Realistic requests of 1000 items each:

- traces: ids, parent, kind, status, timestamps, 10 attributes of mixed types (and an event
  on every tenth span);
- logs: severity, trace/span ids on 80 % of the records, 6 attributes of mixed types, text
  bodies (access lines, business events, warnings, errors) of 40-120 characters;
- metrics: a mix of cumulative sums (30 %), gauges (30 %, double and int) and histograms
  (40 %, 10 explicit bounds, 11 bucket counts, sum/min/max), 5 attributes per point, 50
  points per metric.

Run:

    python bench/decode.py [--signal traces|logs|metrics|all] [--items 1000]
                           [--requests 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import NamedTuple

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otterscope.otlp import rows
from otterscope.otlp.anyvalue import Limits
from otterscope.otlp.fast import (
    logs_batch_from_bytes,
    metrics_batch_from_bytes,
    spans_batch_from_bytes,
)

_ROUTES = ["/api/users", "/api/orders/{id}", "/healthz", "/api/cart", "/login"]
_METHODS = ["GET", "POST", "PUT", "DELETE"]
_T0 = 1_700_000_000_000_000_000


def _resource(attrs: object, service: str) -> None:
    for key, value in (
        ("service.name", service),
        ("service.version", "1.4.2"),
        ("host.name", "web-7f9c"),
        ("telemetry.sdk.language", "python"),
    ):
        attrs.add(key=key).value.string_value = value  # type: ignore[attr-defined]


def make_traces(n_items: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    _resource(rs.resource.attributes, "checkout")
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.flask"
    ss.scope.version = "0.48b0"
    trace_id = rnd.randbytes(16)
    for i in range(n_items):
        if i % 20 == 0:
            trace_id = rnd.randbytes(16)
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = rnd.randbytes(8)
        if i % 20:
            span.parent_span_id = rnd.randbytes(8)
        route = rnd.choice(_ROUTES)
        method = rnd.choice(_METHODS)
        span.name = f"{method} {route}"
        span.kind = 2
        start = _T0 + i * 1_000_000
        span.start_time_unix_nano = start
        span.end_time_unix_nano = start + rnd.randrange(10_000, 50_000_000)
        span.status.code = 1 if rnd.random() < 0.95 else 2
        attrs = span.attributes
        attrs.add(key="http.request.method").value.string_value = method
        attrs.add(key="http.route").value.string_value = route
        attrs.add(key="url.full").value.string_value = f"https://shop.example.com{route}?q={i}"
        attrs.add(key="http.response.status_code").value.int_value = rnd.choice([200, 201, 404])
        attrs.add(key="server.port").value.int_value = 8443
        attrs.add(key="network.protocol.version").value.string_value = "1.1"
        attrs.add(key="user_agent.original").value.string_value = "Mozilla/5.0 (X11; Linux)"
        attrs.add(key="http.server.duration_ratio").value.double_value = rnd.random()
        attrs.add(key="feature.enabled").value.bool_value = rnd.random() < 0.5
        attrs.add(key="app.cart.items").value.int_value = rnd.randrange(0, 30)
        if i % 10 == 0:
            ev = span.events.add(time_unix_nano=start + 5000, name="exception")
            ev.attributes.add(key="exception.type").value.string_value = "ValueError"
            ev.attributes.add(key="exception.message").value.string_value = "bad input"
    return req.SerializeToString()


_SEVERITIES = [(5, "DEBUG", 0.10), (9, "INFO", 0.70), (13, "WARN", 0.12), (17, "ERROR", 0.08)]


def _log_body(rnd: random.Random, severity: str, i: int) -> str:
    route = rnd.choice(_ROUTES).replace("{id}", str(rnd.randrange(10_000)))
    user = rnd.randrange(20_000)
    if severity == "ERROR":
        return (
            f"connection to db-{rnd.randrange(3)}.internal:5432 failed after "
            f"{rnd.randrange(1, 30)} retries: timeout while reading response (request {i})"
        )
    if severity == "WARN":
        return f"slow request {rnd.choice(_METHODS)} {route} took {rnd.randrange(500, 5000)} ms"
    if severity == "DEBUG":
        return f"cache miss for key user:{user}:profile, loading from store"
    if rnd.random() < 0.5:
        return (
            f'10.0.{rnd.randrange(256)}.{rnd.randrange(256)} - - "{rnd.choice(_METHODS)} '
            f'{route} HTTP/1.1" {rnd.choice([200, 200, 200, 201, 404])} {rnd.randrange(100, 9000)}'
        )
    return f"order {rnd.randrange(10**6)} placed by user {user}: {rnd.randrange(1, 9)} items"


def make_logs(n_items: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    _resource(rl.resource.attributes, "checkout")
    sl = rl.scope_logs.add()
    sl.scope.name = "checkout.orders"
    weights = [w for _, _, w in _SEVERITIES]
    for i in range(n_items):
        number, text, _ = rnd.choices(_SEVERITIES, weights)[0]
        t = _T0 + i * 1_000_000
        rec = sl.log_records.add(
            time_unix_nano=t,
            observed_time_unix_nano=t + 20_000,
            severity_number=number,  # type: ignore[arg-type]
            severity_text=text,
        )
        if rnd.random() < 0.8:
            rec.trace_id = rnd.randbytes(16)
            rec.span_id = rnd.randbytes(8)
            rec.flags = 1
        rec.body.string_value = _log_body(rnd, text, i)
        attrs = rec.attributes
        attrs.add(key="code.function").value.string_value = rnd.choice(
            ["place_order", "load_user", "checkout", "charge_card"]
        )
        attrs.add(key="code.lineno").value.int_value = rnd.randrange(10, 900)
        attrs.add(key="thread.name").value.string_value = f"worker-{rnd.randrange(16)}"
        attrs.add(key="user.id").value.string_value = f"u{rnd.randrange(20_000)}"
        attrs.add(key="http.route").value.string_value = rnd.choice(_ROUTES)
        attrs.add(key="retry").value.bool_value = rnd.random() < 0.05
    return req.SerializeToString()


# 4 histograms, 3 sums, 3 gauges in every 10 metrics
_KINDS = ["histogram", "sum", "gauge"] * 3 + ["histogram"]
_BOUNDS = [5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 1000.0, 2500.0]


def _point_attrs(attrs: object, rnd: random.Random, j: int) -> None:
    add = attrs.add  # type: ignore[attr-defined]
    add(key="http.request.method").value.string_value = _METHODS[j % 4]
    add(key="http.route").value.string_value = _ROUTES[j % 5]
    add(key="http.response.status_code").value.int_value = [200, 201, 404, 500][j % 4]
    add(key="server.address").value.string_value = "shop.example.com"
    add(key="network.protocol.version").value.string_value = "1.1"


def make_metrics(n_items: int, seed: int, per_metric: int = 50) -> bytes:
    rnd = random.Random(seed)
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    _resource(rm.resource.attributes, "checkout")
    sm = rm.scope_metrics.add()
    sm.scope.name = "opentelemetry.instrumentation.flask"
    done = 0
    k = 0
    while done < n_items:
        n = min(per_metric, n_items - done)
        kind = _KINDS[k % len(_KINDS)]
        m = sm.metrics.add(name=f"app.{kind}.{k}", description=f"a {kind}", unit="ms")
        for j in range(n):
            if kind == "histogram":
                m.histogram.aggregation_temporality = 2  # type: ignore[assignment]
                dp = m.histogram.data_points.add(start_time_unix_nano=_T0, time_unix_nano=_T0 + 1)
                counts = [rnd.randrange(0, 200) for _ in range(len(_BOUNDS) + 1)]
                dp.bucket_counts.extend(counts)
                dp.explicit_bounds.extend(_BOUNDS)
                dp.count = sum(counts)
                dp.sum = rnd.random() * 1e5
                dp.min = rnd.random()
                dp.max = 2500 + rnd.random() * 1000
            elif kind == "sum":
                m.sum.aggregation_temporality = 2  # type: ignore[assignment]
                m.sum.is_monotonic = True
                dp = m.sum.data_points.add(start_time_unix_nano=_T0, time_unix_nano=_T0 + 1)
                dp.as_int = rnd.randrange(10**9)
            else:
                dp = m.gauge.data_points.add(time_unix_nano=_T0 + 1)
                if j % 2:
                    dp.as_double = rnd.random() * 100
                else:
                    dp.as_int = rnd.randrange(10**6)
            _point_attrs(dp.attributes, rnd, j)
        done += n
        k += 1
    return req.SerializeToString()


class Signal(NamedTuple):
    unit: str
    make: Callable[[int, int], bytes]
    request: type[Message]
    python_path: Callable[..., object]
    fast_path: Callable[[bytes, str, Limits], object]


SIGNALS = {
    "traces": Signal(
        "span", make_traces, ExportTraceServiceRequest, rows.spans_batch, spans_batch_from_bytes
    ),
    "logs": Signal(
        "record", make_logs, ExportLogsServiceRequest, rows.logs_batch, logs_batch_from_bytes
    ),
    "metrics": Signal(
        "point",
        make_metrics,
        ExportMetricsServiceRequest,
        rows.metrics_batch,
        metrics_batch_from_bytes,
    ),
}


def _best(fn: Callable[[bytes], object], bodies: list[bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for body in bodies:
            fn(body)
        best = min(best, time.perf_counter() - t0)
    return best


def bench(signal: str, items: int, requests: int, repeat: int) -> dict[str, float]:
    unit, make, request_type, slow, fast = SIGNALS[signal]
    bodies = [make(items, seed) for seed in range(requests)]
    limits = Limits()
    total = items * requests

    def upb(body: bytes) -> object:
        return request_type.FromString(body)

    def python_path(body: bytes) -> object:
        return slow(request_type.FromString(body), "t", limits)

    def fast_path(body: bytes) -> object:
        return fast(body, "t", limits)

    size = sum(map(len, bodies)) / len(bodies)
    print(
        f"{signal}: {requests} requests x {items} {unit}s, {size / 1024:.0f} KiB per request "
        f"({size / items:.0f} B/{unit})"
    )
    results: dict[str, float] = {}
    for label, fn in (
        ("upb parse only", upb),
        ("python path (parse + rows)", python_path),
        ("fast path (C)", fast_path),
    ):
        secs = _best(fn, bodies, repeat)
        results[label] = secs / total * 1e9
        print(
            f"  {label:28s} {secs / total * 1e9:9.0f} ns/{unit:6s} {total / secs:12,.0f} {unit}s/s"
        )
    speedup = results["python path (parse + rows)"] / results["fast path (C)"]
    print(f"  fast path speed-up over the python path: {speedup:.1f}x")
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--signal", default="all", choices=["all", *SIGNALS])
    ap.add_argument("--items", type=int, default=1000, help="items per request")
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    for signal in SIGNALS if args.signal == "all" else [args.signal]:
        bench(signal, args.items, args.requests, args.repeat)


if __name__ == "__main__":
    main()
