"""Jaeger API benchmark: what a Jaeger UI or Grafana's Jaeger data source asks, on the data
``bench/query.py`` loaded (10 million spans).

    python bench/jaeger.py --data-dir bench/out/query-data [--label L]

The data dir is one ``bench/query.py`` left (its ``bench-query.json`` names the window, the
services, attribute values and sampled trace ids; the store is ``<data-dir>/data``). A
server is started on it with the retention ``bench/query.py`` uses, so the data is kept.
Each query runs ``--warmup`` times, then ``--runs`` times, with other parameters on every
run, over HTTP; p50 / p90 / max. Searches ask for 20 traces (the Jaeger UI's default) over
the whole window. Writes bench/out/jaeger-<label>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT_DIR, Server, code_version
from query import ATTR_KEYS, MARKER, MIN_DURATIONS, SERVER_ENV, _pct


def _rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def plan(marker: dict[str, Any], rng: random.Random, n: int) -> dict[str, list[tuple]]:
    """n (label, path, params) per query."""
    p, lo, hi = marker["params"], marker["window_start_ns"], marker["window_end_ns"]
    us = {"start": str(lo // 1000), "end": str(hi // 1000), "limit": "20"}
    v3 = {"query.start_time_min": _rfc3339(lo), "query.start_time_max": _rfc3339(hi)}
    by_key: dict[str, list[str]] = {}
    for k, v, _ in p["attributes"]:
        by_key.setdefault(k, []).append(v)
    out: dict[str, list[tuple]] = {}
    ids = rng.sample(marker["trace_ids"], min(n, len(marker["trace_ids"])))
    out["v1 trace by id"] = [(t, f"/jaeger/api/traces/{t}", {}) for t in ids]
    out["v3 trace by id"] = [(t, f"/jaeger/api/v3/traces/{t}", {}) for t in ids]
    out["v1 service + minDuration"] = []
    out["v1 one tag"] = []
    out["v3 trace-summaries"] = []
    out["v1 operations"] = []
    for i in range(n):
        svc, dur = p["services"][i % len(p["services"])], rng.choice(MIN_DURATIONS)
        q = {"service": svc, "minDuration": dur, **us}
        out["v1 service + minDuration"].append((f"{svc} >= {dur}", "/jaeger/api/traces", q))
        key = ATTR_KEYS[i % len(ATTR_KEYS)]
        value = rng.choice(by_key[key])
        q = {"tags": json.dumps({key: value}), **us}
        out["v1 one tag"].append((f"{key}={value}", "/jaeger/api/traces", q))
        q = {"query.service_name": svc, "query.duration_min": dur, "query.num_traces": "20", **v3}
        out["v3 trace-summaries"].append((f"{svc} >= {dur}", "/jaeger/api/v3/trace-summaries", q))
        out["v1 operations"].append((svc, f"/jaeger/api/services/{svc}/operations", {}))
    out["v1 services"] = [("", "/jaeger/api/services", {})] * n
    deps = {"endTs": str(hi // 10**6), "lookback": str((hi - lo) // 10**6)}
    out["v1 dependencies"] = [("whole window", "/jaeger/api/dependencies", deps)] * n
    return out


def found(body: dict[str, Any]) -> int:
    if "result" in body:
        return len(body["result"].get("resourceSpans", []))
    return len(body.get("data") or body.get("summaries") or [])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--label", default="jaeger")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    marker = json.loads((args.data_dir / MARKER).read_text())
    server = Server(args.data_dir / "data", args.data_dir / "server-jaeger.log", env=SERVER_ENV)
    server.start(timeout=300)
    results: dict[str, Any] = {}
    try:
        with httpx.Client(timeout=120) as client:
            runs = plan(marker, random.Random(args.seed), args.warmup + args.runs)
            for query, items in runs.items():
                times, counts, failed = [], [], 0
                for i, (_, path, params) in enumerate(items):
                    t0 = time.perf_counter()
                    r = client.get(server.url + path, params=params)
                    ms = (time.perf_counter() - t0) * 1000
                    if i < args.warmup:
                        continue
                    times.append(ms)
                    counts.append(found(r.json()) if r.status_code == 200 else 0)
                    failed += r.status_code != 200
                results[query] = {
                    "p50_ms": round(_pct(times, 50), 1),
                    "p90_ms": round(_pct(times, 90), 1),
                    "max_ms": round(max(times), 1),
                    "results_p50": _pct(counts, 50),
                    "failed": failed,
                }
                r50, r90 = results[query]["p50_ms"], results[query]["p90_ms"]
                print(f"  {query:<26} p50 {r50:>8} p90 {r90:>8} ms  failed {failed}", flush=True)
    finally:
        server.stop()
    out = {"label": args.label, "code": code_version(SERVER_ENV), "queries": results}
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / f"jaeger-{args.label}.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
