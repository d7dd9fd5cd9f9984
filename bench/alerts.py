"""Alert evaluation: how long ``POST /api/alerts/evaluate`` takes with 100 rules on current data.

    /work/venv/bin/python bench/alerts.py                                          # the defaults
    /work/venv/bin/python bench/alerts.py --spans 50000 --points 20000 --rules 20  # a quick check

1. Starts ``python -m otterscope serve`` (anonymous, loopback) on a fresh bench/out/alerts-data
   with a config file setting ``alerts.evaluation_interval`` to 1h: the timed evaluations are
   the only ones.
2. Loads ``--spans`` (1M) spans of the bench shop with bench/query.py's ``load()`` (the
   templates of bench/common.py, fresh ids, timestamps spread over the last ``--window-min``
   (10) minutes) and ``--points`` (200k) points of common.py's metric templates over the
   same minutes (after waiting up to ``--quiet-wait`` s for a quiet machine); waits until
   only the active segment is hot, as on a running server.
3. Creates ``--rules`` (100) rules through ``POST /api/alerts/configs``, all over 300 s:
   ``error_rate``, ``p99_latency_ms`` and ``request_rate`` per service (thresholds from the
   shop's ~1 % errors and ~250 ms p99; every 4th service's are set to fire), the rest metric
   rules on the names ``GET /api/metrics`` lists (span RED metrics included), with
   ``rate``/``increase``/``avg``/``max``/``p95``/``p99``, some with ``labels``, most per
   service. Their thresholds come from the value ``GET /api/metrics/query`` gives over the
   window: one in 8 well below it (fires), the rest well beyond it. No webhooks: deliveries
   are not measured.
4. Times ``--runs`` (10) ``POST /api/alerts/evaluate``: p50/p90/max, ``evaluated``, fired,
   ``errors`` (printed), the CPU other processes took meanwhile; server peak RSS during the
   runs and after the load.
5. SIGTERM (exit code checked); writes bench/out/alerts.json. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from itertools import product
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c
import query
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb

# query.py's sender reads partial_success per signal; it never sends metrics itself.
query.REJECTED.setdefault(
    "metrics", (metrics_pb.ExportMetricsServiceResponse, "rejected_data_points")
)
WINDOW_S = 300
FIRE = "set to fire"  # the description of the rules whose thresholds the data breaches
AGGS = {"counter": ["rate", "increase"], "histogram": ["p99", "avg", "p95"]}
AGGS |= {"gauge": ["avg", "max"], "updowncounter": ["avg", "max"], "summary": ["avg"]}
# Label filters that match points of the generated data (others would only find no data).
LABELS: dict[str, list[dict[str, str]]] = {
    "http.server.request.duration": [{"http.request.method": "GET"}],
    "app.http.requests": [{"http.response.status_code": "500"}],
    "system.cpu.utilization": [{"cpu.mode": "idle"}, {"cpu.mode": "user"}],
    "db.client.connection.count": [{"db.client.connection.state": "used"}],
    "process.cpu.time": [{"cpu.mode": "user"}],
    "traces.span.metrics.calls": [{"status.code": "STATUS_CODE_ERROR"}],
    "traces.span.metrics.duration": [{"span.kind": "SPAN_KIND_SERVER"}],
}


def load_metrics(args: argparse.Namespace, server: c.Server, start: int, end: int) -> dict:
    templates = c.build_templates("metrics", max(1, args.bodies // 4), 500, seed=3)
    n = -(-args.points // templates[0].items)
    jobs = [(templates[k % len(templates)], start + k * (end - start) // n) for k in range(n)]
    t0 = time.perf_counter()
    stats = asyncio.run(query._send_all(server.http_port, jobs, args.senders, lambda *_: None))
    return stats | {"points": n * templates[0].items, "seconds": round(time.perf_counter() - t0, 1)}


def sig(x: float) -> float:
    return float(f"{x:.3g}")


def builtin_rules(services: list[str]) -> list[dict[str, Any]]:
    rules = []
    for i, svc in enumerate(services):
        hot = i % 4 == 0  # a few thresholds under the shop's normal figures, so some fire
        for metric, cond, threshold, fires in [
            ("error_rate", "gt", 0.005 if hot else 0.05, hot),
            ("p99_latency_ms", "gt", 100 if hot else 2000, hot),
            ("request_rate", "lt", 0.1, False),  # traffic stopped
        ]:
            rules.append({"name": f"{svc} {metric}", "serviceId": svc, "metricName": metric})
            rules[-1] |= {"condition": cond, "threshold": threshold}
            rules[-1]["description"] = FIRE if fires else "quiet"
    return rules


def metric_rules(
    client: httpx.Client, catalog: list[dict[str, Any]], services: list[str], n: int
) -> tuple[list[dict[str, Any]], int]:
    """``n`` metric rules; thresholds from what the metrics API says the value is now."""
    shapes = [
        (m["name"], agg, labels)
        for m in catalog
        for agg in AGGS.get(m["type"], [])
        for labels in [{}, *LABELS.get(m["name"], [])]
    ]
    combos = list(product(shapes, [*services, None]))
    picked = random.Random(3).sample(combos, min(n, len(combos)))
    rules, no_data = [], 0
    end_ms = time.time_ns() // 1_000_000
    for i, ((name, agg, labels), svc) in enumerate(picked):
        where = labels | ({"service.name": svc} if svc else {})
        params = {"name": name, "agg": agg, "step": f"{WINDOW_S}s"}
        params |= {"start": str(end_ms - WINDOW_S * 1000), "end": str(end_ms)}
        params |= {f"label.{k}": v for k, v in where.items()}
        r = client.get("/api/metrics/query", params=params)
        r.raise_for_status()
        # The window may straddle two steps; the whole-window value lies between the
        # smallest step's value and the sum of them (all values here are >= 0).
        vals = [abs(p[1]) for s in r.json()["series"] for p in s["points"]]
        if not vals:
            cond, thr = "gt", 0.0  # no data never breaches
            no_data += 1
        elif i % 8 == 0:
            cond, thr = "gt", sig(0.5 * min(vals))
        elif i % 3 == 0 and min(vals) > 0:
            cond, thr = "lt", sig(0.3 * min(vals))
        else:
            cond, thr = "gt", sig(3 * sum(vals)) or 1.0
        label_text = "".join(f" {k}={v}" for k, v in labels.items())
        rule = {"name": f"{svc or 'all'} {name} {agg}{label_text}", "metricName": name}
        rule |= {"aggregation": agg, "condition": cond, "threshold": thr, "labels": labels}
        rule["description"] = (
            FIRE if vals and i % 8 == 0 else f"quiet; probed {[sig(v) for v in vals]}"
        )
        rules.append(rule | ({"serviceId": svc} if svc else {}))
    return rules, no_data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--rules", type=int, default=100)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--window-min", type=float, default=10.0)
    ap.add_argument("--bodies", type=int, default=200, help="distinct trace templates")
    ap.add_argument("--senders", type=int, default=8)
    ap.add_argument("--quiet-wait", type=float, default=120.0, help="s to wait for a quiet machine")
    args = ap.parse_args()

    out_dir = c.fresh_dir(c.OUT_DIR / "alerts-data")
    config = out_dir / "otterscope.yaml"
    config.write_text("alerts:\n  evaluation_interval: 1h\n")
    server = c.Server(out_dir / "data", out_dir / "server.log", ["--config", str(config)])
    server.start()
    pid = server.pid
    print(f"server pid {pid} on :{server.http_port}, data in {server.data_dir}", flush=True)
    out: dict[str, Any] = {"args": vars(args), "code": c.code_version()}
    try:
        with httpx.Client(base_url=server.url, timeout=600) as client:
            if args.quiet_wait > 0:  # as query.py: before the load, so the rules' window has data
                c.wait_until_quiet([pid], 15.0, args.quiet_wait)
            # query.py's own options, for spans only, over --window-min
            spans = dict(batch=500, logs=0, sample=0, hours=args.window_min / 60)
            loaded = query.load(argparse.Namespace(**vars(args), **spans), server)
            start, end = loaded["window_start_ns"], loaded["window_end_ns"] - 60 * 10**9
            metrics_load = load_metrics(args, server, start, end)
            out["load"] = {"spans": loaded["load"], "metrics": metrics_load}
            query.wait_sealed(server, client, False, 600)
            out["peak_rss_after_load"] = c.peak_rss(pid)

            found = [s["name"] for s in client.get("/api/services").json()["services"]]
            services = [s for s in c.LANG if s in found] + [s for s in found if s not in c.LANG]
            catalog = client.get("/api/metrics").json()["metrics"]
            builtins = builtin_rules(services)[: min(3 * len(services), args.rules // 2)]
            metrics, no_data = metric_rules(client, catalog, services, args.rules - len(builtins))
            for rule in builtins + metrics:
                r = client.post("/api/alerts/configs", json={"windowSeconds": WINDOW_S, **rule})
                if r.status_code != 201:
                    raise RuntimeError(f"{rule}: HTTP {r.status_code}: {r.text[:300]}")
            fire = sum(r["description"] == FIRE for r in builtins + metrics)
            out["rules"] = {"builtin": len(builtins), "metric": len(metrics), "set_to_fire": fire}
            out["rules"] |= {"no_data": no_data, "metric_names": sorted(m["name"] for m in catalog)}
            print(f"rules: {out['rules']}", flush=True)
            out["rules"]["sent"] = builtins + metrics

            Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM from here: the runs' peak
            out["data_end_age_s"] = round((time.time_ns() - end) / 1e9, 1)
            # CPU the machine spends outside the server and this process while measuring.
            busy0 = c.machine_cpu_seconds()[0] - c.cpu_seconds(pid) - query._self_cpu()
            runs = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                doc = client.post("/api/alerts/evaluate").raise_for_status().json()
                runs.append({"s": round(time.perf_counter() - t0, 4), "server_s": doc["seconds"]})
                runs[-1] |= {"evaluated": doc["evaluated"], "fired": len(doc["fired"])}
                runs[-1] |= {"resolved": len(doc["resolved"]), "errors": doc["errors"]}
                print(f"  evaluate: {runs[-1]}", flush=True)
            out["runs"] = runs
            busy = c.machine_cpu_seconds()[0] - c.cpu_seconds(pid) - query._self_cpu() - busy0
            out["other_cpu_pct"] = round(100 * busy / sum(r["s"] for r in runs), 1)
            out["peak_rss_during_runs"] = c.peak_rss(pid)
            out["rss_after"] = c.proc_status(pid).get("VmRSS", 0)
            firing = client.get("/api/alerts/incidents", params={"state": "firing", "limit": 1000})
            keep = ("name", "condition", "threshold", "value")
            out["incidents_firing"] = [{k: i[k] for k in keep} for i in firing.json()["incidents"]]
            out["alerts_json_bytes"] = (server.data_dir / "alerts.json").stat().st_size
    finally:
        code, stop_s = server.stop()
    out["stop"] = {"exit_code": code, "seconds": round(stop_s, 2)}
    path = c.OUT_DIR / "alerts.json"
    path.write_text(json.dumps(out, indent=2, default=str))
    report(out)
    print(f"JSON: {path}")
    return 0 if code == 0 else 1


def report(o: dict[str, Any]) -> None:
    sp, mt, ru, runs = o["load"]["spans"], o["load"]["metrics"], o["rules"], o["runs"]
    ts, pct = [r["s"] for r in runs], query._pct
    p50, other = pct(ts, 50), o["other_cpu_pct"]
    evaluated = runs[-1]["evaluated"]
    errors = {k: v for r in runs for k, v in r["errors"].items()}
    print(f"\n=== otterscope alerts bench: {ru['builtin'] + ru['metric']} rules ===")
    print(
        f"load      {sp['spans']:,} spans in {sp['seconds']}s, {mt['points']:,} metric points in "
        f"{mt['seconds']}s over the last {o['args']['window_min']:g} min (newest "
        f"{o['data_end_age_s']}s before the runs); 429/503/errors "
        f"{sp['http_429'] + mt['http_429']}/{sp['http_503'] + mt['http_503']}/"
        f"{sp['errors'] + mt['errors']}"
    )
    print(
        f"rules     {ru['builtin']} built-in + {ru['metric']} metric, over {WINDOW_S}s; "
        f"{ru['set_to_fire']} set to fire, {ru['no_data']} without data"
    )
    print(
        f"evaluate  p50 {p50:.3f}s  p90 {pct(ts, 90):.3f}s  max {max(ts):.3f}s  (first "
        f"{ts[0]:.3f}s; server-side p50 {pct([r['server_s'] for r in runs], 50):.3f}s); "
        f"{1000 * p50 / max(1, evaluated):.1f} ms per rule; other processes {other}% of a core"
        + (" -- WARNING: the machine was shared" if other > 20 else "")
    )
    print(
        f"answers   evaluated {evaluated}; fired {runs[0]['fired']} on the first run, "
        f"{sum(r['fired'] for r in runs[1:])} after; resolved {sum(r['resolved'] for r in runs)}; "
        f"{len(o['incidents_firing'])} incidents firing; errors {len(errors)}"
    )
    for rule_id, why in errors.items():
        print(f"  error   {rule_id}: {why}")
    meant = {r["name"] for r in ru["sent"] if r["description"] == FIRE}
    firing = {i["name"] for i in o["incidents_firing"]}
    if meant != firing:
        print(f"  firing, not set to fire: {sorted(firing - meant)}")
        print(f"  set to fire, not firing: {sorted(meant - firing)}")
    print(
        f"RSS       peak {o['peak_rss_after_load'] / 2**20:,.0f} MiB after the load, "
        f"{o['peak_rss_during_runs'] / 2**20:,.0f} MiB during the runs, "
        f"{o['rss_after'] / 2**20:,.0f} MiB after; alerts.json {o['alerts_json_bytes']:,} B"
    )
    print(f"stop      SIGTERM -> exit {o['stop']['exit_code']} in {o['stop']['seconds']}s")


if __name__ == "__main__":
    sys.exit(main())
