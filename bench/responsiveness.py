"""Does one huge request freeze the server? /health and small senders while big ones decode.

    python bench/responsiveness.py --seconds 30

What it does:
1. starts ``python -m otterscope serve`` on a fresh data dir (bench/common.py);
2. in a separate process (so its CPU and GIL do not slow the probes), sends the largest
   allowed requests in a loop, two at a time: an OTLP/JSON traces body just under
   ``ingest.max_body_bytes`` (16 MiB) with ~300,000 attributes over HTTP, and a protobuf
   traces body just under 16 MiB with ~200,000 resources (one span each) over gRPC;
3. meanwhile, from this process, measures the latency of ``GET /health``, of a small
   OTLP/HTTP protobuf export (one span) and of a small OTLP/gRPC export (one span), each
   probe every 50 ms, first ``--baseline`` seconds with nothing else running, then while
   the big requests run;
4. prints p50 / p99 / max per probe and phase, and how many big requests were answered.

Writes bench/out/responsiveness-<label>.json. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT_DIR, Server, code_version, fresh_dir, wait_until_quiet

MiB = 1024 * 1024
TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _identity(data: bytes) -> bytes:
    return data


def json_body(limit: int) -> bytes:
    """One resource, spans of 100 string attributes each, as many as fit under ``limit``."""
    attrs = ",".join(
        f'{{"key":"attribute.{i:03d}","value":{{"stringValue":"value {i:03d}"}}}}'
        for i in range(100)
    )
    now = time.time_ns()
    spans: list[str] = []
    size = 200
    n = 0
    while True:
        span = (
            f'{{"traceId":"{os.urandom(16).hex()}","spanId":"{os.urandom(8).hex()}",'
            f'"name":"span {n}","kind":2,"startTimeUnixNano":"{now}",'
            f'"endTimeUnixNano":"{now + 1000}","attributes":[{attrs}]}}'
        )
        if size + len(span) + 1 > limit:
            break
        spans.append(span)
        size += len(span) + 1
        n += 1
    return (
        '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":'
        '{"stringValue":"big-json"}}]},"scopeSpans":[{"scope":{"name":"bench"},"spans":['
        + ",".join(spans)
        + "]}]}]}"
    ).encode()


def one_span(service: str, trace_id: bytes, span_id: bytes) -> bytes:
    """A serialized ExportTraceServiceRequest: one resource, one span, now."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    now = time.time_ns()
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key = "service.name"
    kv.value.string_value = service
    span = rs.scope_spans.add().spans.add()
    span.trace_id = trace_id
    span.span_id = span_id
    span.name = "op"
    span.start_time_unix_nano = now
    span.end_time_unix_nano = now + 1000
    return bytes(req.SerializeToString())


def protobuf_body(limit: int) -> bytes:
    """ResourceSpans with their own service name and one span each, up to ``limit`` bytes."""
    one = one_span("svc-000000", b"\x01" * 16, b"\x02" * 8)
    parts: list[bytes] = []
    size = 0
    i = 0
    while size + len(one) <= limit:
        # Distinct resources (no cache hits) and distinct ids, same length every time.
        entry = (
            one.replace(b"svc-000000", f"svc-{i:06d}".encode())
            .replace(b"\x01" * 16, os.urandom(16))
            .replace(b"\x02" * 8, os.urandom(8))
        )
        parts.append(entry)
        size += len(entry)
        i += 1
    return b"".join(parts)


def big_senders(url: str, grpc_target: str, limit: int, go: Any, stop: Any, out: Any) -> None:
    """Runs in its own process: two loops of the largest requests, one per transport,
    from when ``go`` is set until ``stop`` is."""
    import grpc
    import httpx

    jbody = json_body(limit)
    pbody = protobuf_body(limit)
    out.put({"json_bytes": len(jbody), "protobuf_bytes": len(pbody)})
    results: dict[str, list[tuple[int | str, float]]] = {"http_json": [], "grpc_protobuf": []}

    def http_loop() -> None:
        with httpx.Client(timeout=120) as client:
            while not stop.is_set():
                t = time.perf_counter()
                r = client.post(
                    f"{url}/v1/traces", content=jbody, headers={"Content-Type": "application/json"}
                )
                results["http_json"].append((r.status_code, time.perf_counter() - t))

    def grpc_loop() -> None:
        with grpc.insecure_channel(
            grpc_target, options=[("grpc.max_send_message_length", 64 * MiB)]
        ) as channel:
            call = channel.unary_unary(
                TRACE_EXPORT, request_serializer=_identity, response_deserializer=_identity
            )
            while not stop.is_set():
                t = time.perf_counter()
                try:
                    call(pbody, timeout=120)
                    code: int | str = "OK"
                except grpc.RpcError as exc:
                    code = exc.code().name
                results["grpc_protobuf"].append((code, time.perf_counter() - t))

    go.wait()
    threads = [threading.Thread(target=f) for f in (http_loop, grpc_loop)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out.put(results)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p99_ms": round(percentile(values, 99) * 1000, 1),
        "max_ms": round(max(values, default=float("nan")) * 1000, 1),
    }


class Probes:
    """Three probes, each on its own thread: /health, a small HTTP and a small gRPC export."""

    def __init__(self, server: Server, period: float) -> None:
        self.server = server
        self.period = period
        self.samples: dict[str, list[tuple[float, float, int | str]]] = {
            "health": [],
            "small_http": [],
            "small_grpc": [],
        }
        self.small = one_span("small", os.urandom(16), os.urandom(8))
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._loop, args=(name,), daemon=True) for name in self.samples
        ]

    def start(self) -> None:
        for th in self.threads:
            th.start()

    def finish(self) -> None:
        self.stop.set()
        for th in self.threads:
            th.join(180)

    def _loop(self, name: str) -> None:
        import grpc
        import httpx

        http = httpx.Client(timeout=120)
        channel = grpc.insecure_channel(f"127.0.0.1:{self.server.grpc_port}")
        call = channel.unary_unary(
            TRACE_EXPORT, request_serializer=_identity, response_deserializer=_identity
        )
        try:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                outcome: int | str
                if name == "health":
                    outcome = http.get(f"{self.server.url}/health").status_code
                elif name == "small_http":
                    outcome = http.post(
                        f"{self.server.url}/v1/traces",
                        content=self.small,
                        headers={"Content-Type": "application/x-protobuf"},
                    ).status_code
                else:
                    try:
                        call(self.small, timeout=120)
                        outcome = "OK"
                    except grpc.RpcError as exc:
                        outcome = exc.code().name
                took = time.perf_counter() - t0
                self.samples[name].append((time.monotonic(), took, outcome))
                time.sleep(max(0.0, self.period - took))
        finally:
            http.close()
            channel.close()

    def between(self, start: float, end: float) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, rows in self.samples.items():
            picked = [r for r in rows if start <= r[0] - r[1] < end]
            outcomes: dict[str, int] = {}
            for r in picked:
                outcomes[str(r[2])] = outcomes.get(str(r[2]), 0) + 1
            out[name] = {**summary([r[1] for r in picked]), "outcomes": outcomes}
        return out


def commit_seconds(server: Server) -> dict[str, float]:
    """The server's group commits so far: how many, their mean and bucketed duration."""
    import urllib.request

    with urllib.request.urlopen(f"{server.url}/metrics", timeout=60) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("otterscope_commit_duration_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[f"le_{le}"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(
            ("otterscope_commit_duration_seconds_count", "otterscope_commit_duration_seconds_sum")
        ):
            out[line.split(" ", 1)[0].rsplit("_", 1)[1]] = float(line.rsplit(" ", 1)[1])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=30.0, help="how long the big requests run")
    p.add_argument("--baseline", type=float, default=5.0, help="seconds measured before them")
    p.add_argument("--period", type=float, default=0.05, help="seconds between probes")
    p.add_argument("--body-mib", type=float, default=16.0, help="ingest.max_body_bytes, MiB")
    p.add_argument("--label", default="run")
    p.add_argument(
        "--quiet-wait", type=float, default=300.0, help="seconds to wait for a quiet machine"
    )
    p.add_argument(
        "--quiet-pct", type=float, default=30.0, help="quiet: others use less of a core than this"
    )
    p.add_argument("--server-arg", action="append", default=[], help="extra argument for `serve`")
    a = p.parse_args()
    limit = int(a.body_mib * MiB)
    base = fresh_dir(OUT_DIR / f"responsiveness-{a.label}")
    env = {"OTTERSCOPE_INGEST__MAX_BODY_BYTES": str(limit)}
    server = Server(base / "data", base / "server.log", extra_args=a.server_arg, env=env)
    server.start()
    ctx = mp.get_context("spawn")
    go, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    sender = ctx.Process(
        target=big_senders,
        args=(server.url, f"127.0.0.1:{server.grpc_port}", limit - 1024, go, stop, out),
    )
    try:
        sender.start()
        sizes = out.get(timeout=300)
        print(
            f"big bodies: OTLP/JSON {sizes['json_bytes'] / MiB:.1f} MiB over HTTP, "
            f"protobuf {sizes['protobuf_bytes'] / MiB:.1f} MiB over gRPC",
            flush=True,
        )
        # Other processes' CPU (tests of other work on a shared machine) would be counted
        # as the server's slowness: wait for a quiet moment, and say how quiet it was.
        foreign = wait_until_quiet([server.pid, sender.pid], a.quiet_pct, a.quiet_wait)
        print(f"other processes used {foreign:.0f}% of a core before the run", flush=True)
        probes = Probes(server, a.period)
        probes.start()
        load_before = os.getloadavg()
        t_base = time.monotonic()
        time.sleep(a.baseline)
        t_load = time.monotonic()
        go.set()
        time.sleep(a.seconds)
        t_end = time.monotonic()
        load_after = os.getloadavg()
        stop.set()
        big = out.get(timeout=300)
        probes.finish()
        commits = commit_seconds(server)
        sender.join(60)
    finally:
        stop.set()
        if sender.is_alive():
            sender.kill()
        code, _ = server.stop()
    report = {
        "label": a.label,
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "code": code_version(),
        "command": " ".join([sys.executable, *sys.argv]),
        # The machine may be shared: its load average says how much else was running.
        "foreign_cpu_pct_before": foreign,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "sizes": sizes,
        "baseline_seconds": a.baseline,
        "idle": probes.between(t_base, t_load),
        "loaded": probes.between(t_load, t_end),
        "big_requests": {
            k: {
                "answered": len(v),
                "outcomes": {str(c): sum(1 for x, _ in v if x == c) for c in {x for x, _ in v}},
                **summary([d for _, d in v]),
            }
            for k, v in big.items()
        },
        "group_commits": commits,
        "server_exit": code,
    }
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / f"responsiveness-{a.label}.json").write_text(json.dumps(report, indent=2))
    print(f"{'probe':<12} {'phase':<8} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for phase in ("idle", "loaded"):
        for name, s in report[phase].items():  # type: ignore[attr-defined]
            print(
                f"{name:<12} {phase:<8} {s['n']:>5} {s['p50_ms']:>8} {s['p99_ms']:>8} "
                f"{s['max_ms']:>8}  {s['outcomes']}"
            )
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}")
    print(f"group commits (seconds, cumulative buckets): {commits}")
    for name, s in report["big_requests"].items():  # type: ignore[attr-defined]
        print(
            f"big {name}: {s['answered']} answered {s['outcomes']}, "
            f"p50 {s['p50_ms']} ms, max {s['max_ms']} ms"
        )


if __name__ == "__main__":
    main()
