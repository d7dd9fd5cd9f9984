"""TraceQL search benchmark (SPEC §8): the store's TraceQL evaluation with 10M spans stored.

    python bench/traceql.py --data-dir /work/wt/benchdata/q10m-base --work /work/wt/benchdata/<you>-tql

Reads a data dir that ``bench/query.py`` loaded (its ``bench-query.json`` names the window
and the services and attribute values in it). The store is opened in this process on a
copy of that data dir (Parquet files and attribute indexes hard-linked — they are never
written in place —, the rest copied), so the original is never touched; the copy is
removed at the end unless ``--keep``. There is no /tempo route yet, so the figures are the
store's: ``EmbeddedStore.search_traceql`` (parse included) without HTTP or JSON shaping.

Queries, ``--runs`` each after ``--warmup``, with different parameters on every run:
- ``service_duration``: ``{ resource.service.name = "<svc>" && duration > <d> }`` (SPEC §8:
  p90 ≤ 300 ms);
- ``attribute``: ``{ span.<key> = "<value>" }`` with values from rare to common;
- ``structural``: ``{ resource.service.name = "frontend" } > { resource.service.name = "<b>" }``
  (``>>`` every other run).
Limit 20 traces, 3 spans per spanset (Grafana's defaults). p50 / p90 / max in ms; writes
bench/out/traceql-<label>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT_DIR, code_version
from query import _pct

from otterscope.query.model import TraceQLSearch
from otterscope.query.traceql.parser import parse
from otterscope.store.embedded.store import EmbeddedStore

TARGETS_MS: dict[str, float | None] = {
    "service_duration": 300,
    "attribute": None,
    "structural": None,
}
DURATIONS = ["10ms", "25ms", "50ms", "100ms", "250ms", "500ms"]
ATTR_KEYS = ["user.id", "http.route", "app.region", "db.collection.name"]


def copy_data(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    linked = ("parquet", "attr-index")
    shutil.copytree(src, dst, ignore=lambda d, names: [n for n in names if n in linked])
    for name in linked:
        if (src / name).exists():
            shutil.copytree(src / name, dst / name, copy_function=_link)


def _link(a: str, b: str) -> None:
    Path(b).hardlink_to(a)


def plan(marker: dict[str, Any], rng: random.Random, n: int) -> dict[str, list[str]]:
    p = marker["params"]
    services = p["services"]
    by_key: dict[str, list[str]] = {}
    for k, v, _share in p["attributes"]:
        by_key.setdefault(k, []).append(v)
    out: dict[str, list[str]] = {k: [] for k in TARGETS_MS}
    for i in range(n):
        svc, d = services[i % len(services)], rng.choice(DURATIONS)
        out["service_duration"].append(f'{{ resource.service.name = "{svc}" && duration > {d} }}')
        key = ATTR_KEYS[i % len(ATTR_KEYS)]
        value = rng.choice(by_key[key])
        out["attribute"].append(f"{{ span.{key} = {json.dumps(value)} }}")
        # The bench's frontend calls most other services (client span > server span).
        callee = rng.choice([s for s in services if s != "frontend"])
        op = ">" if i % 2 == 0 else ">>"
        out["structural"].append(
            f'{{ resource.service.name = "frontend" }} {op} '
            f'{{ resource.service.name = "{callee}" }}'
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True, help="a bench/query.py data dir")
    ap.add_argument("--work", type=Path, required=True, help="where the copy goes")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--label", default="10m")
    ap.add_argument("--keep", action="store_true", help="keep the copy")
    args = ap.parse_args()
    marker = json.loads((args.data_dir / "bench-query.json").read_text())
    copy_data(args.data_dir / "data", args.work)
    store = EmbeddedStore(args.work)
    results: dict[str, Any] = {}
    try:
        rng = random.Random(args.seed)
        for name, queries in plan(marker, rng, args.warmup + args.runs).items():
            times, detail = [], []
            for i, text in enumerate(queries):
                t0 = time.perf_counter()
                found = store.search_traceql(
                    "default",
                    TraceQLSearch(
                        parse(text), marker["window_start_ns"], marker["window_end_ns"], 20, 3
                    ),
                )
                ms = (time.perf_counter() - t0) * 1000
                detail.append({"query": text, "ms": round(ms, 1), "traces": len(found)})
                if i >= args.warmup:
                    times.append(ms)
            results[name] = {
                "p50_ms": round(_pct(times, 50), 1),
                "p90_ms": round(_pct(times, 90), 1),
                "max_ms": round(max(times), 1),
                "target_p90_ms": TARGETS_MS[name],
                "runs": detail,
            }
            r = results[name]
            print(
                f"{name:18} p50 {r['p50_ms']:7.1f} ms  p90 {r['p90_ms']:7.1f} ms  "
                f"max {r['max_ms']:7.1f} ms  (target p90 {TARGETS_MS[name]})",
                flush=True,
            )
    finally:
        store.close()
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)
    OUT_DIR.mkdir(exist_ok=True)
    out = OUT_DIR / f"traceql-{args.label}.json"
    out.write_text(json.dumps({"results": results, "code": code_version()}, indent=1))
    print(f"JSON: {out}")


if __name__ == "__main__":
    main()
