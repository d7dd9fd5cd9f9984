"""Prometheus ``GET /metrics`` and the metrics query API with many series: time, size, RSS.

    /work/venv/bin/python bench/metrics.py                  # 100,000 series x 3 rounds
    /work/venv/bin/python bench/metrics.py --series 5000    # a quick check

1. Builds OTLP/HTTP protobuf bodies for ``--series`` distinct series: 80 % delta monotonic
   counters over ``--counter-names`` (8) names, 20 % delta explicit-bucket histograms (the
   OTel default ms bounds: 15 bounds, 16 buckets) over ``--histogram-names`` (2) names;
   labels http.route, http.request.method, http.response.status_code, cloud.region; 8
   services. Each series is sent ``--rounds`` (3) times, each round from another
   service.instance.id (not part of a delta series' identity: the series count must not
   grow), at times spread over the last ``--window-min`` (30) minutes.
2. Starts ``python -m otterscope serve`` on a fresh bench/out/metrics-data with
   ``metrics.max_series_per_metric`` RAISED to the largest per-name count + 1000 (at the
   default 2000 most points would go to overflow series) and ``metrics.snapshot_interval``
   at 1 h (so no periodic snapshot folds the points before the first scrape); loads it.
3. Times ``GET /metrics``: the first scrape (folds every point in), then ``--scrapes`` (10)
   more; checks the series exposed and the totals against what was sent; VmRSS/VmHWM.
4. Times ``GET /api/metrics`` and five ``GET /api/metrics/query`` calls, ``--runs`` (5) each.
5. Stops the server with SIGTERM (exit code checked); writes bench/out/metrics-render.json.
Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import random
import resource
import shutil
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric

DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
BOUNDS = [0.0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000]
COUNTERS = ["http.server.requests", "app.orders.placed", "app.cache.lookups", "db.client.calls"]
COUNTERS += ["messaging.messages.processed", "app.logins", "rpc.client.calls", "app.jobs.runs"]
HISTOGRAMS = ["http.server.duration", "rpc.server.duration", "db.client.duration"]
ROUTES = [f"/api/{r}" for r in ("products", "products/{id}", "cart", "cart/items", "checkout")]
ROUTES += [f"/api/{r}" for r in ("users/me", "users/{id}", "orders", "orders/{id}", "search")]
ROUTES += [f"/api/{r}" for r in ("shipping/quote", "payments", "reviews", "wishlist", "login")]
METHODS = ["GET", "POST", "PUT", "DELETE"]
STATUSES = [200, 201, 204, 301, 400, 401, 404, 500]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "sa-east-1"]
SERVICES = list(c.LANG)
DIMS = [len(SERVICES), len(ROUTES), len(METHODS), len(STATUSES), len(REGIONS)]
COMBOS = len(SERVICES) * len(ROUTES) * len(METHODS) * len(STATUSES) * len(REGIONS)
# A fixed shuffle of the label combinations: a metric's first few thousand series already
# cover every service, route and status, as real traffic does.
PERM = random.Random(7).sample(range(COMBOS), COMBOS)
Series = tuple[int, str, list[KeyValue]]  # service index, metric name, point attributes


def all_series(args: argparse.Namespace) -> list[Series]:
    """Every series, grouped by service (stable), so a body carries one resource."""
    n_hist = round(args.series * args.histogram_pct / 100)
    out: list[Series] = []
    for i in range(args.series):
        names = HISTOGRAMS[: args.histogram_names] if i < n_hist else COUNTERS[: args.counter_names]
        j = i if i < n_hist else i - n_hist
        k, digits = j // len(names), []
        x = PERM[k % COMBOS]
        for d in DIMS:
            digits.append(x % d)
            x //= d
        svc, route, method, status, region = digits
        attrs = [c._kv("http.route", ROUTES[route]), c._kv("http.request.method", METHODS[method])]
        attrs += [c._kv("http.response.status_code", STATUSES[status])]
        attrs += [c._kv("cloud.region", REGIONS[region])]
        if k >= COMBOS:  # more series than label combinations: a shard keeps them distinct
            attrs.append(c._kv("app.shard", k // COMBOS))
        out.append((svc, names[j % len(names)], attrs))
    return sorted(out, key=lambda s: s[0])


def build(
    args: argparse.Namespace, t_end_ns: int
) -> tuple[list[tuple[bytes, int]], dict[str, int]]:
    """Request bodies (bytes, points) in sending order, and what their points add up to."""
    rng = random.Random(42)
    series = all_series(args)
    window_ns = int(args.window_min * 60e9)
    slice_ns = window_ns // args.rounds
    expected = {"counter_total": 0, "counter0_total": 0, "histogram_count": 0}
    expected["max_series_per_name"] = max(Counter(name for _, name, _ in series).values())
    bodies: list[tuple[bytes, int]] = []
    for r, (svc, group) in itertools.product(
        range(args.rounds), [(k, list(g)) for k, g in itertools.groupby(series, lambda s: s[0])]
    ):
        svc_name, lang = SERVICES[svc], c.LANG[SERVICES[svc]][0]
        for lo in range(0, len(group), args.batch):
            req = ExportMetricsServiceRequest()
            rm = req.resource_metrics.add()
            # Each round from another instance, as invocations of a function: a delta
            # series leaves service.instance.id out, so the series count must not grow.
            rm.resource.attributes.extend(
                [c._kv("service.name", svc_name), c._kv("service.namespace", "shop")]
                + [c._kv("service.version", c.VERSIONS[svc_name])]
                + [c._kv("service.instance.id", f"{svc_name}-{r}-{rng.getrandbits(32):08x}")]
                + [c._kv("telemetry.sdk.language", lang)]
            )
            sm = rm.scope_metrics.add()
            sm.scope.name, sm.scope.version = c.SCOPES[lang]
            metrics: dict[str, Metric] = {}
            chunk = group[lo : lo + args.batch]
            for _, name, attrs in chunk:
                hist = name in HISTOGRAMS
                if (m := metrics.get(name)) is None:
                    m = metrics[name] = sm.metrics.add(name=name, unit="ms" if hist else "1")
                    (m.histogram if hist else m.sum).aggregation_temporality = DELTA
                    if not hist:  # touching m.sum on a histogram would switch its oneof
                        m.sum.is_monotonic = True
                # Uniform over the round's slice of the window: every query step has points.
                t = t_end_ns - window_ns + r * slice_ns + int(rng.random() * slice_ns)
                times = {"start_time_unix_nano": t - 60_000_000_000, "time_unix_nano": t}
                if hist:
                    counts = [rng.randint(0, 40) if b < 9 else rng.randint(0, 3) for b in range(16)]
                    hp = m.histogram.data_points.add(count=sum(counts), **times)
                    hp.sum = sum(counts) * rng.uniform(20.0, 300.0)
                    hp.bucket_counts.extend(counts)
                    hp.explicit_bounds.extend(BOUNDS)
                    hp.attributes.extend(attrs)
                    expected["histogram_count"] += sum(counts)
                else:
                    dp = m.sum.data_points.add(as_int=(v := rng.randint(1, 50)), **times)
                    dp.attributes.extend(attrs)
                    expected["counter_total"] += v
                    expected["counter0_total"] += v if name == COUNTERS[0] else 0
            bodies.append((req.SerializeToString(), len(chunk)))
    return bodies, expected


class Client:
    """One keep-alive connection per thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()
        self.retries = 0

    def request(self, path: str, body: bytes | None = None) -> tuple[float, bytes]:
        """(seconds, payload) of a 200 answer (GET, or POST of ``body``); a 429 or 503 is
        retried after its Retry-After, anything else raises."""
        headers = {"Content-Type": "application/x-protobuf"} if body is not None else {}
        while True:
            if (conn := getattr(self.local, "conn", None)) is None:
                conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, 600)
            t0 = time.perf_counter()
            conn.request("GET" if body is None else "POST", path, body, headers)
            resp = conn.getresponse()
            payload = resp.read()
            if resp.status == 200:
                return time.perf_counter() - t0, payload
            if resp.status not in (429, 503):
                raise RuntimeError(f"{path}: HTTP {resp.status}: {payload[:300]!r}")
            self.retries += 1
            time.sleep(float(resp.getheader("Retry-After") or 1))


def post(client: Client, body: tuple[bytes, int]) -> int:
    """Points accepted: those sent minus partial_success rejections."""
    rejected = ExportMetricsServiceResponse.FromString(client.request("/v1/metrics", body[0])[1])
    return body[1] - rejected.partial_success.rejected_data_points


def memory(pid: int) -> dict[str, int]:
    return {k: v for k, v in c.proc_status(pid).items() if k in ("VmRSS", "VmHWM")}


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def check_exposition(
    text: str, catalog: list[dict[str, Any]], expected: dict[str, int]
) -> dict[str, object]:
    """Series of our metrics in a scrape and what their values add up to, against what was
    sent: every point must be folded in once, whatever instance sent it."""
    ours = [m for m in catalog if m["name"] in COUNTERS + HISTOGRAMS]
    prefixes = tuple(
        m["prometheusName"] + ("_count{" if m["type"] == "histogram" else "{") for m in ours
    )
    series, totals = 0, {"counter": 0, "histogram": 0}
    for line in text.splitlines():
        if line.startswith(prefixes):
            series += 1
            kind = "histogram" if "_count{" in line.split("{", 1)[0] + "{" else "counter"
            totals[kind] += int(float(line.rsplit(" ", 1)[1]))
    match = totals["counter"] == expected["counter_total"]
    match = match and totals["histogram"] == expected["histogram_count"]
    return {"series_exposed": series, **totals, "totals_match": match}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3, help="times each series is sent")
    ap.add_argument("--scrapes", type=int, default=10, help="scrapes after the first")
    ap.add_argument("--runs", type=int, default=5, help="runs of each API call")
    ap.add_argument("--batch", type=int, default=2000, help="points per request")
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--histogram-pct", type=float, default=20.0)
    ap.add_argument("--counter-names", type=int, default=8, choices=range(1, len(COUNTERS) + 1))
    ap.add_argument("--histogram-names", type=int, default=2, choices=range(1, len(HISTOGRAMS) + 1))
    ap.add_argument("--window-min", type=float, default=30.0)
    ap.add_argument("--quiet-wait", type=float, default=60.0, help="s to wait for a quiet machine")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--keep", action="store_true", help="keep bench/out/metrics-data")
    args = ap.parse_args()

    t_end_ns, b0 = time.time_ns(), time.perf_counter()
    bodies, expected = build(args, t_end_ns)
    points, wire = sum(n for _, n in bodies), sum(len(b) for b, _ in bodies)
    print(
        f"built {len(bodies)} bodies: {points:,} points, {mib(wire)}, {time.perf_counter() - b0:.1f}s"
    )
    env = {
        "OTTERSCOPE_METRICS__MAX_SERIES_PER_METRIC": str(expected["max_series_per_name"] + 1000),
        "OTTERSCOPE_METRICS__SNAPSHOT_INTERVAL": "3600",
    }
    env.update(kv.split("=", 1) for kv in args.server_env)
    data_dir = c.fresh_dir(c.OUT_DIR / "metrics-data")
    server = c.Server(data_dir / "data", data_dir / "server.log", env=env)
    server.start()
    pid = server.pid
    print(f"server pid {pid} on :{server.http_port}, data in {server.data_dir}", flush=True)
    quiet = c.wait_until_quiet([pid], 15.0, args.quiet_wait) if args.quiet_wait > 0 else None
    client = Client(server.http_port)
    out: dict[str, Any] = {"args": vars(args), "code": c.code_version(env), "expected": expected}
    busy0 = c.machine_cpu_seconds()[0] - c.cpu_seconds(pid) - own_cpu()
    try:
        l0 = time.perf_counter()
        with ThreadPoolExecutor(args.senders) as pool:
            accepted = sum(pool.map(lambda b: post(client, b), bodies))
        load_s = time.perf_counter() - l0
        out["load"] = {"points": points, "accepted": accepted, "seconds": round(load_s, 2)}
        out["load"] |= {"points_per_s": round(accepted / load_s), "bytes": wire}
        out["load"] |= {"retries": client.retries, "other_cpu_pct_before": quiet}
        out["rss_after_load"] = memory(pid)

        first_s, body = client.request("/metrics")
        times = [client.request("/metrics")[0] for _ in range(args.scrapes)]
        lines = body.decode().splitlines()
        out["scrape"] = {
            "first_s": round(first_s, 3),
            "p50_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3),
            "bytes": len(body),
            "sample_lines": sum(1 for ln in lines if ln and not ln.startswith("#")),
            "overflow": [ln for ln in lines if ln.startswith("otterscope_metric_overflow")],
        }
        out["rss_after_scrapes"] = memory(pid)

        cat = [client.request("/api/metrics") for _ in range(args.runs)]
        catalog = json.loads(cat[-1][1])["metrics"]
        out["catalog"] = {"p50_s": statistics.median(t for t, _ in cat), "metrics": len(catalog)}
        out["check"] = check_exposition("\n".join(lines), catalog, expected)
        # The window the points were spread over, so every step of it has points.
        start_ms = (t_end_ns - int(args.window_min * 60e9)) // 1_000_000
        window = f"&step=60s&start={start_ms}&end={time.time_ns() // 1_000_000}"
        c0, h0 = COUNTERS[0], HISTOGRAMS[0]
        queries = {
            "counter rate by route": f"name={c0}&agg=rate&groupBy=http.route",
            "histogram p99": f"name={h0}&agg=p99",
            "histogram p95 by route": f"name={h0}&agg=p95&groupBy=http.route",
            "counter, 1 service, by status": f"name={c0}&agg=sum&label.service.name=checkout"
            "&groupBy=http.response.status_code",
            "counter increase": f"name={c0}&agg=increase",
        }
        out["queries"] = {}
        for label, query in queries.items():
            runs = [client.request(f"/api/metrics/query?{query}{window}") for _ in range(args.runs)]
            series = json.loads(runs[-1][1])["series"]
            out["queries"][label] = {
                "p50_s": statistics.median(t for t, _ in runs),
                "times_s": [t for t, _ in runs],
                "series": len(series),
                "points": sum(len(s["points"]) for s in series),
                "total": sum(v for s in series for _, v in s["points"]),
            }
        out["rss_after_queries"] = memory(pid)
        # CPU the machine spent outside the server and this client while measuring.
        busy = c.machine_cpu_seconds()[0] - c.cpu_seconds(pid) - own_cpu() - busy0
        out["other_cpu_pct"] = round(max(0.0, 100 * busy / (time.perf_counter() - l0)), 1)
    finally:
        code, stop_s = server.stop()
    out["stop"] = {"exit_code": code, "seconds": round(stop_s, 2)}
    path = c.OUT_DIR / "metrics-render.json"
    path.write_text(json.dumps(out, indent=2, default=str))
    report(out)
    print(f"JSON: {path}")
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0 if code == 0 else 1


def report(o: dict[str, Any]) -> None:
    ld, sc, ck, ex, a = o["load"], o["scrape"], o["check"], o["expected"], o["args"]
    rss = " ".join(
        f"{when} {mib(o['rss_after_' + when]['VmRSS'])} (HWM {mib(o['rss_after_' + when]['VmHWM'])});"
        for when in ("load", "scrapes", "queries")
    )
    out = [
        f"\n=== otterscope metrics bench: {a['series']:,} series x {a['rounds']} rounds ===",
        f"load          {ld['points_per_s']:,} points/s ({ld['accepted']:,} of {ld['points']:,} "
        f"accepted in {ld['seconds']}s, {mib(ld['bytes'])}, {ld['retries']} retries)",
        f"GET /metrics  first {sc['first_s']}s, then p50 {sc['p50_s']}s max {sc['max_s']}s; "
        f"{sc['bytes'] / 2**20:.1f} MiB, {sc['sample_lines']:,} sample lines",
        f"  check       {ck['series_exposed']:,} of {a['series']:,} series; counters add up to "
        f"{ck['counter']:,} (sent {ex['counter_total']:,}), histogram counts {ck['histogram']:,} "
        f"(sent {ex['histogram_count']:,}): {'ok' if ck['totals_match'] else 'MISMATCH'}",
        f"  overflow    {sc['overflow'] or 'none'}",
        f"RSS after     {rss}",
        f"/api/metrics  p50 {o['catalog']['p50_s']:.3f}s, {o['catalog']['metrics']} metrics",
    ]
    for label, q in o["queries"].items():
        out.append(
            f"  {label:<30} p50 {q['p50_s']:.3f}s max {max(q['times_s']):.3f}s: "
            f"{q['series']} series, {q['points']} points"
        )
    total = o["queries"]["counter increase"]["total"]
    out.append(f"  increase adds up to {total:,.0f} (sent {ex['counter0_total']:,})")
    warn = " -- WARNING: the machine was shared" if o["other_cpu_pct"] > 20 else ""
    out.append(f"other CPU     {o['other_cpu_pct']}% of a core while measuring{warn}")
    out.append(f"stop          SIGTERM -> exit {o['stop']['exit_code']} in {o['stop']['seconds']}s")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
