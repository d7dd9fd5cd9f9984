"""Services, service map and cycles with 10 million spans stored: query time, cold and warm.

    python bench/query.py                 # once: loads 10M spans into bench/out/query-data
    python bench/services.py              # then this, on that data

1. Starts ``python -m otterscope serve`` on the data dir ``bench/query.py`` left (10 million
   spans of a 9-service shop over 6 hours, all sealed).
2. Cold: right after start-up, times one ``/api/service-map`` over the data's last hour and
   one over the whole window (the in-memory per-hour cache is empty; what an earlier server
   wrote to ``<data-dir>/cache/services/`` is read back, the rest computed; the
   maintenance thread fills it a few hours per pass).
3. Waits until the maintenance thread has cached every hour (the whole-window map answers
   in under a second), then times ``/api/services``, ``/api/service-map``,
   ``/api/service-map/cycles`` and ``/api/services/{name}`` ``--runs`` (20) times each, over
   the last hour and over the whole window: p50 and p90.
4. Restart: stops the server (SIGTERM), starts it again and times the same two cold
   ``/api/service-map`` queries: the first map after a restart of a server that had run.
5. Writes bench/out/services.json. Figures, not pass/fail.

``--server-env PYTHONPATH=<a copy of src>`` measures another version on the same data.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DIR, Server, code_version, peak_rss

HOUR_NS = 3_600_000_000_000


def timed(client: httpx.Client, url: str, params: dict[str, str]) -> tuple[float, Any]:
    started = time.perf_counter()
    r = client.get(url, params=params)
    elapsed = time.perf_counter() - started
    r.raise_for_status()
    return elapsed, r.json()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=BENCH_DIR / "out" / "query-data")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--server-env", action="append", default=[], help="NAME=VALUE for the server")
    args = ap.parse_args()
    env = dict(kv.split("=", 1) for kv in args.server_env)
    marker = args.data_dir / "bench-query.json"
    if not marker.exists():
        print(f"no data in {args.data_dir}: run bench/query.py first", file=sys.stderr)
        return 2
    loaded = json.loads(marker.read_text())
    end = loaded["window_end_ns"]
    windows = {
        "last hour": {"start": str(end - HOUR_NS), "end": str(end)},
        "whole 6 h": {"start": str(loaded["window_start_ns"]), "end": str(end)},
    }
    server = Server(args.data_dir / "data", args.data_dir / "services-server.log", env=env)
    server.start()
    results: dict[str, Any] = {"spans": loaded["load"]["spans"], "code": code_version(env)}

    def cold_maps(client: httpx.Client) -> dict[str, float]:
        return {
            label: timed(client, "/api/service-map", window)[0] for label, window in windows.items()
        }

    try:
        with httpx.Client(base_url=server.url, timeout=300) as client:
            results["cold_service_map_s"] = cold_maps(client)
            waited = time.monotonic()
            while timed(client, "/api/service-map", windows["whole 6 h"])[0] > 1.0:
                time.sleep(2)
            results["warm_up_s"] = time.monotonic() - waited
            warm: dict[str, dict[str, Any]] = {}
            for label, window in windows.items():
                _, services = timed(client, "/api/services", window)
                busiest = max(services["services"], key=lambda s: s["spanCount"])["name"]
                for path in (
                    "/api/services",
                    "/api/service-map",
                    "/api/service-map/cycles",
                    f"/api/services/{busiest}",
                ):
                    times = [timed(client, path, window)[0] for _ in range(args.runs)]
                    times.sort()
                    warm[f"{path} ({label})"] = {
                        "p50_ms": round(statistics.median(times) * 1000, 1),
                        "p90_ms": round(times[int(0.9 * (len(times) - 1))] * 1000, 1),
                    }
            _, the_map = timed(client, "/api/service-map", windows["whole 6 h"])
            results["warm"] = warm
            results["map"] = {"nodes": len(the_map["nodes"]), "edges": len(the_map["edges"])}
            results["peak_rss_mib"] = peak_rss(server.pid) // 2**20
        server.stop()
        server.start()
        with httpx.Client(base_url=server.url, timeout=300) as client:
            results["restarted_service_map_s"] = cold_maps(client)
    finally:
        code, _ = server.stop()
        results["exit_code"] = code
    print(f"=== services bench: {results['spans']:,} spans stored ===")
    for label, seconds in results["cold_service_map_s"].items():
        print(f"cold  /api/service-map ({label}): {seconds:.3f}s")
    for label, seconds in results["restarted_service_map_s"].items():
        print(f"after a restart  /api/service-map ({label}): {seconds:.3f}s")
    print(f"warm-up by the maintenance thread: {results['warm_up_s']:.1f}s")
    for name, figures in results["warm"].items():
        print(f"warm  {name}: p50 {figures['p50_ms']} ms, p90 {figures['p90_ms']} ms")
    print(f"map: {results['map']}; peak RSS {results['peak_rss_mib']} MiB; exit {code}")
    out = BENCH_DIR / "out" / "services.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
