"""Query benchmark (SPEC §8): query latency with millions of spans stored.

    python bench/query.py                      # load 10M spans + 2M log records, then query
    python bench/query.py --reuse              # query the data a previous run left

SPEC §8, with 10 million spans stored: trace by id ≤ 50 ms; search by service + duration
≤ 200 ms; search by one attribute ≤ 500 ms (p50 of 20 queries). Logs text search has no
target; it is measured too.

1. Load: a server (bench/common.py) gets ``--spans`` spans and ``--logs`` log records as
   OTLP/HTTP protobuf from ``--senders`` keep-alive connections, built from the realistic
   templates of bench/common.py with fresh ids per request. Timestamps are spread over the
   last ``--hours`` hours in sending order (traces and logs interleaved), as a server that
   ran that long would have received them, so segments seal into several hour partitions.
   A sample of the trace ids sent and the query parameters (services, attribute values
   and body words found in the templates) go to ``<data dir>/bench-query.json``.
2. Phase "live": once every segment but the active one is sealed (as on a running server,
   the active segment's rows stay hot until it fills or ``storage.seal_interval`` passes).
3. Phase "sealed": the server is stopped (SIGTERM) and started again, which seals the rest;
   every row is then in Parquet. ``--reuse`` starts here on a data dir already loaded.
Each query runs ``--warmup`` times, then ``--runs`` times, with different parameters on
every run, over HTTP; p50 / p90 / max. Writes bench/out/query-<label>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    LANG,
    OUT_DIR,
    Server,
    Template,
    build_templates,
    code_version,
    cpu_seconds,
    disk_usage,
    fresh_dir,
    machine_cpu_seconds,
    proc_status,
    wait_until_quiet,
)
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

MARKER = "bench-query.json"
HOUR_NS = 3600 * 10**9
TARGETS_MS = {"trace_by_id": 50, "service_duration": 200, "one_attribute": 500, "logs_text": None}
# A value no span carries (SPEC §8's attribute target includes it), on the same keys.
TARGETS_MS["attribute_absent"] = 500
# Span attributes searched by the one-attribute query: rare (a user) to common (a region).
ATTR_KEYS = ["user.id", "http.response.status_code", "db.collection.name", "http.route"]
ATTR_KEYS += ["app.region", "url.path"]
MIN_DURATIONS = ["10ms", "25ms", "50ms", "100ms", "250ms", "500ms"]
# Bench data must outlive the default 7 days of retention for --reuse to find it.
REJECTED = {
    "traces": (trace_pb.ExportTraceServiceResponse, "rejected_spans"),
    "logs": (logs_pb.ExportLogsServiceResponse, "rejected_log_records"),
}
SERVER_ENV = {"OTTERSCOPE_RETENTION__TRACES": "3650d", "OTTERSCOPE_RETENTION__LOGS": "3650d"}


# -- loading --------------------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    line = await reader.readline()
    if not line:
        raise ConnectionError("server closed the connection")
    status = int(line.split(b" ", 2)[1])
    headers: dict[bytes, bytes] = {}
    while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = h.partition(b":")
        headers[name.strip().lower()] = value.strip()
    n = int(headers.get(b"content-length", b"0"))
    return status, headers, (await reader.readexactly(n) if n else b"")


async def _send_all(port: int, jobs: list[tuple[Template, int]], senders: int, on_ok: Any) -> dict:
    """POST every job's body (rendered with fresh ids, times shifted to its ns), in order."""
    stats: dict[str, Any] = {"http_429": 0, "http_503": 0, "errors": 0, "rejected": 0}
    examples: set[str] = set()
    it = iter(jobs)

    async def sender() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        for tmpl, now_ns in it:
            body = tmpl.render(now_ns)
            head = (
                f"POST /v1/{tmpl.signal} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/x-protobuf\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            for _attempt in range(50):
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    assert reader is not None
                    writer.write(head)
                    writer.write(body)
                    await writer.drain()
                    status, headers, payload = await _read_response(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                    stats["errors"] += 1
                    examples.add(f"{type(exc).__name__}: {exc}")
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    await asyncio.sleep(0.2)
                    continue
                if headers.get(b"connection", b"").lower() == b"close":
                    writer.close()
                    reader = writer = None
                if status in (429, 503):
                    stats[f"http_{status}"] += 1
                    await asyncio.sleep(float(headers.get(b"retry-after", b"1") or 1))
                    continue
                if status != 200:
                    stats["errors"] += 1
                    examples.add(f"HTTP {status}: {payload[:200]!r}")
                    break
                resp, field = REJECTED[tmpl.signal]
                stats["rejected"] += getattr(resp.FromString(payload).partial_success, field)
                on_ok(tmpl, body)
                break
        if writer is not None:
            writer.close()

    await asyncio.gather(*(sender() for _ in range(senders)))
    stats["error_examples"] = sorted(examples)[:5]
    return stats


def _template_params(traces: list[Template], logs: list[Template]) -> dict[str, Any]:
    """Attribute values and body words that occur in the templates (so in the data)."""
    values: dict[str, Counter[str]] = {k: Counter() for k in ATTR_KEYS}
    for t in traces:
        for rs in trace_pb.ExportTraceServiceRequest.FromString(t.body).resource_spans:
            for sp in (s for ss in rs.scope_spans for s in ss.spans):
                for kv in sp.attributes:
                    if kv.key in values and kv.value.WhichOneof("value") != "bool_value":
                        values[kv.key][str(getattr(kv.value, kv.value.WhichOneof("value")))] += 1
    words: Counter[str] = Counter()
    for t in logs:
        for rl in logs_pb.ExportLogsServiceRequest.FromString(t.body).resource_logs:
            for rec in (r for sl in rl.scope_logs for r in sl.log_records):
                words.update(
                    w for w in re.findall(r"[a-z][a-z0-9_]{4,}", rec.body.string_value.lower())
                )
    spans = sum(t.items for t in traces)
    return {
        "services": sorted(LANG),
        # (key, value, share of the spans that carry it in the templates)
        "attributes": [
            [k, v, round(n / spans, 6)] for k, c in values.items() for v, n in c.most_common()
        ],
        "words": [[w, n] for w, n in words.most_common() if n >= 3],
    }


def load(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    print(f"building {args.bodies} trace and {args.bodies // 4} log templates ...", flush=True)
    traces = build_templates("traces", args.bodies, args.batch, seed=1)
    logs = build_templates("logs", max(1, args.bodies // 4), args.batch, seed=2)
    params = _template_params(traces, logs)
    n_t = -(-args.spans // traces[0].items)
    n_l = -(-args.logs // logs[0].items) if args.logs else 0
    window_end = time.time_ns() - 60 * 10**9
    window = int(args.hours * HOUR_NS)
    # Sending order = time order: the k-th of n requests of a signal at k/n of the window.
    order = sorted([(k / n_t, 0, k) for k in range(n_t)] + [(k / n_l, 1, k) for k in range(n_l)])
    jobs = [
        ((traces, logs)[s][k % len((traces, logs)[s])], window_end - window + int(f * window))
        for f, s, k in order
    ]
    rng = random.Random(7)
    sample: list[str] = []
    done = {"traces": 0, "logs": 0, "requests": 0, "seen": 0}
    t0 = time.perf_counter()

    def on_ok(tmpl: Template, body: bytes) -> None:
        done[tmpl.signal] += tmpl.items
        done["requests"] += 1
        if tmpl.signal == "traces":  # reservoir sample: one trace id per accepted request
            done["seen"] += 1
            off, _slot = rng.choice(tmpl.id16)
            tid = body[off : off + 16].hex()
            if len(sample) < args.sample:
                sample.append(tid)
            elif (j := rng.randrange(done["seen"])) < args.sample:
                sample[j] = tid
        if done["requests"] % max(1, len(jobs) // 10) == 0:
            el = time.perf_counter() - t0
            print(
                f"  {done['traces']:>11,} spans {done['logs']:>10,} logs  {el:6.1f}s  "
                f"{done['traces'] / el:,.0f} spans/s  RSS {proc_status(server.pid)['VmRSS'] >> 20} MiB",
                flush=True,
            )

    print(
        f"loading {n_t * traces[0].items:,} spans + {n_l * logs[0].items:,} log records "
        f"({len(jobs):,} requests, {args.senders} senders) over {args.hours:g} h of timestamps ...",
        flush=True,
    )
    stats = asyncio.run(_send_all(server.http_port, jobs, args.senders, on_ok))
    secs = time.perf_counter() - t0
    stats.update(
        seconds=round(secs, 1),
        spans=done["traces"],
        logs=done["logs"],
        spans_per_s=round(done["traces"] / secs),
        items_per_s=round((done["traces"] + done["logs"]) / secs),
        server_peak_rss=proc_status(server.pid).get("VmHWM", 0),
    )
    return {
        "load": stats,
        "window_start_ns": window_end - window,
        "window_end_ns": window_end + 60 * 10**9,
        "trace_ids": sample,
        "params": params,
    }


# -- store state --------------------------------------------------------------------------


def wait_sealed(server: Server, client: httpx.Client, everything: bool, timeout: float) -> dict:
    """Wait until only the active segment is hot (or, ``everything``, nothing is)."""
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    while True:
        h = client.get(f"{server.url}/health").json()
        segs = {p.name.split(".")[0] for p in (server.data_dir / "hot").glob("seg-*.arrows")}
        hot = sum(h["store"]["hotRows"].values())
        if (hot == 0) if everything else (len(segs) <= 1 and h["ingest"]["queueItems"] == 0):
            break
        if time.monotonic() > deadline:
            print(f"  WARNING: still {hot:,} hot rows in {len(segs)} segment(s) after {timeout}s")
            break
        time.sleep(1.0)
    print(f"  sealed as wanted after {time.monotonic() - t0:.1f}s", flush=True)
    return h


def store_state(server: Server, health: dict) -> dict[str, Any]:
    out: dict[str, Any] = {"hot_rows": health["store"]["hotRows"]}
    for signal in ("traces", "logs"):
        files = list((server.data_dir / "parquet" / signal).rglob("*.parquet"))
        out[f"{signal}_sealed_rows"] = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        out[f"{signal}_files"] = len(files)
        out[f"{signal}_hours"] = len({f.parent.name for f in files})
    out["data_dir_bytes"] = disk_usage(server.data_dir)
    return out


# -- queries ------------------------------------------------------------------------------


def plan(marker: dict[str, Any], rng: random.Random, n: int) -> dict[str, list[tuple]]:
    """n (label, path, params) per query, with different parameters on every run."""
    p = marker["params"]
    win = {"start": str(marker["window_start_ns"]), "end": str(marker["window_end_ns"])}
    by_key: dict[str, list[tuple[str, float]]] = {}
    for k, v, share in p["attributes"]:
        by_key.setdefault(k, []).append((v, share))
    words = p["words"]
    out: dict[str, list[tuple]] = {k: [] for k in TARGETS_MS}
    for tid in rng.sample(marker["trace_ids"], min(n, len(marker["trace_ids"]))):
        out["trace_by_id"].append(("by id", f"/api/traces/{tid}", {}))
    for i in range(n):
        svc, dur = p["services"][i % len(p["services"])], rng.choice(MIN_DURATIONS)
        q = {"service": svc, "minDuration": dur, **win}
        out["service_duration"].append((f"{svc} >= {dur}", "/api/traces", q))
        key = ATTR_KEYS[i % len(ATTR_KEYS)]
        value, share = rng.choice(by_key[key])
        q = {f"attr.{key}": value, **win}
        out["one_attribute"].append((f"{key}={value} ({share:.2%})", "/api/traces", q))
        absent = f"absent-{i}"  # not from rng: the other queries keep their parameters
        q = {f"attr.{key}": absent, **win}
        out["attribute_absent"].append((f"{key}={absent}", "/api/traces", q))
        # Every other run a common word ("timeout", "refused" ...), else a rare token (a user).
        word, count = rng.choice(words[:30] if i % 2 == 0 or len(words) <= 30 else words[30:])
        out["logs_text"].append((f"q={word} ({count})", "/api/logs", {"q": word, **win}))
    return out


def run_phase(name: str, server: Server, client: httpx.Client, marker: dict, args: Any) -> dict:
    health = wait_sealed(server, client, name == "sealed", args.seal_timeout)
    state = store_state(server, health)
    print(f"[{name}] querying; store: {state}", flush=True)
    if args.quiet_wait > 0:
        wait_until_quiet([server.pid], args.quiet_pct, args.quiet_wait)
    try:  # reset the kernel's peak-RSS mark: VmHWM is then the peak during the queries
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")
        rss_reset = True
    except OSError:
        rss_reset = False
    cpu0 = (cpu_seconds(server.pid), _self_cpu(), machine_cpu_seconds()[0], time.perf_counter())
    results: dict[str, Any] = {}
    for query, runs in plan(
        marker, random.Random(f"{name}{args.seed}"), args.warmup + args.runs
    ).items():
        times, counts, failed, detail = [], [], 0, []
        for i, (label, path, params) in enumerate(runs):
            t0 = time.perf_counter()
            r = client.get(server.url + path, params=params)
            ms = (time.perf_counter() - t0) * 1000
            # A failed query (503 query_timeout after storage.query_timeout) counts with the
            # time it took and no results.
            body = r.json() if r.status_code == 200 else {}
            found = len(body.get("spans") or body.get("traces") or body.get("logs") or [])
            detail.append({"query": label, "ms": round(ms, 1), "results": found})
            detail[-1].update(status=r.status_code, warmup=i < args.warmup)
            if i >= args.warmup:
                times.append(ms)
                counts.append(found)
                failed += r.status_code != 200
        results[query] = {
            "target_ms": TARGETS_MS[query],
            "p50_ms": round(_pct(times, 50), 1),
            "p90_ms": round(_pct(times, 90), 1),
            "max_ms": round(max(times), 1),
            "results_p50": _pct(counts, 50),
            "results_min": min(counts),
            "results_max": max(counts),
            "failed": failed,
            "runs": detail,
        }
        print(f"  {query}: p50 {_pct(times, 50):.1f} ms, {failed} failed", flush=True)
    cpu1 = (cpu_seconds(server.pid), _self_cpu(), machine_cpu_seconds()[0], time.perf_counter())
    wall = cpu1[3] - cpu0[3]
    st = proc_status(server.pid)
    foreign = (cpu1[2] - cpu0[2]) - (cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1])
    return {
        "store": state,
        "queries": results,
        "server_peak_rss_during_queries": st.get("VmHWM", 0) if rss_reset else None,
        "server_rss_after": st.get("VmRSS", 0),
        "server_cpu_pct": round(100 * (cpu1[0] - cpu0[0]) / wall, 1),
        "other_processes_cpu_pct": round(100 * max(0.0, foreign) / wall, 1),
    }


def _code_stamp(code: dict[str, Any]) -> float:
    """Newest mtime of the server's source files: the work tree may change during a run."""
    root = Path(str(code.get("server_code", ""))) / "otterscope"
    return max((p.stat().st_mtime for p in root.rglob("*.py")), default=0.0)


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))] if s else float("nan")


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _print(summary: dict[str, Any]) -> None:
    ld = summary["load"]
    code = summary["code"]
    print(f"\n=== otterscope query bench: {summary['label']} ===")
    print(
        f"code            {code.get('server_code')} (HEAD {code['head']}, dirty: {code['dirty']})"
    )
    print(
        f"load            {ld['spans']:,} spans + {ld['logs']:,} log records in {ld['seconds']}s: "
        f"{ld['spans_per_s']:,} spans/s ({ld['items_per_s']:,} items/s); 429: {ld['http_429']}, "
        f"503: {ld['http_503']}, errors: {ld['errors']}, rejected: {ld['rejected']}"
        + ("  (loaded by an earlier run)" if summary["reused"] else "")
    )
    print(f"                server peak RSS while loading {ld['server_peak_rss'] / 2**20:.0f} MiB")
    for name, ph in summary["phases"].items():
        st, peak = ph["store"], ph["server_peak_rss_during_queries"] or float("nan")
        print(
            f"\n[{name}] hot rows {sum(st['hot_rows'].values()):,}; sealed "
            f"{st['traces_sealed_rows']:,} spans ({st['traces_files']} files, {st['traces_hours']} "
            f"hours), {st['logs_sealed_rows']:,} logs ({st['logs_files']} files); data dir "
            f"{st['data_dir_bytes'] / 2**30:.2f} GiB; server peak RSS during queries "
            f"{peak / 2**20:.0f} MiB; server CPU {ph['server_cpu_pct']}%, "
            f"other processes {ph['other_processes_cpu_pct']}% of a core"
        )
        print(
            f"  {'query':<18}{'target':>8}{'p50':>9}{'p90':>9}{'max':>9}  failed  "
            "results (p50, min-max)"
        )
        for q, r in ph["queries"].items():
            tgt = f"{r['target_ms']} ms" if r["target_ms"] else "-"
            print(
                f"  {q:<18}{tgt:>8}{r['p50_ms']:>9}{r['p90_ms']:>9}{r['max_ms']:>9}{r['failed']:>8}  "
                f"{r['results_p50']} ({r['results_min']}-{r['results_max']})"
            )


class _LoadOnly(Exception):
    """--load-only: the load is done, skip the queries."""


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--spans", type=int, default=10_000_000)
    ap.add_argument("--logs", type=int, default=2_000_000)
    ap.add_argument("--hours", type=float, default=6.0, help="timestamps over the last N hours")
    ap.add_argument("--data-dir", type=Path, default=OUT_DIR / "query-data")
    ap.add_argument("--reuse", action="store_true", help="query the data already loaded there")
    ap.add_argument(
        "--load-only",
        action="store_true",
        help="load, report the load (its peak RSS among it), stop: no queries",
    )
    ap.add_argument("--senders", type=int, default=8)
    ap.add_argument("--batch", type=int, default=500, help="items per request")
    ap.add_argument("--bodies", type=int, default=200, help="distinct trace templates")
    ap.add_argument("--sample", type=int, default=200, help="trace ids remembered for lookups")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seal-timeout", type=float, default=900.0)
    ap.add_argument("--quiet-wait", type=float, default=300.0, help="wait for a quiet machine")
    ap.add_argument("--quiet-pct", type=float, default=15.0)
    ap.add_argument("--label", default=None)
    ap.add_argument("--server-env", action="append", default=[], help="NAME=VALUE for the server")
    args = ap.parse_args()

    env = {**SERVER_ENV, **dict(kv.split("=", 1) for kv in args.server_env)}
    label = args.label or f"spans{args.spans}"
    code = code_version(env)  # before the run: others may change the work tree meanwhile
    stamp = _code_stamp(code)
    marker_path = args.data_dir / MARKER
    reused = args.reuse and marker_path.exists()
    if not reused:
        fresh_dir(args.data_dir)
    server = Server(args.data_dir / "data", args.data_dir / "server.log", env=env)
    server.start()
    print(f"server pid {server.pid} on :{server.http_port}, data in {server.data_dir}", flush=True)
    phases: dict[str, Any] = {}
    changed = False
    try:
        with httpx.Client(timeout=120.0) as client:
            if reused:
                marker = json.loads(marker_path.read_text())
                print(f"reusing {marker['load']['spans']:,} spans, {marker['load']['logs']:,} logs")
            else:
                if args.quiet_wait > 0:
                    wait_until_quiet([server.pid], args.quiet_pct, args.quiet_wait)
                marker = load(args, server)
                marker_path.write_text(json.dumps(marker))
                if args.load_only:
                    raise _LoadOnly
                phases["live"] = run_phase("live", server, client, marker, args)
                exit_code, secs = server.stop()
                print(f"restart: SIGTERM -> exit {exit_code} in {secs:.1f}s", flush=True)
                changed = _code_stamp(code) != stamp  # the restarted server imports anew
                server.start()
            phases["sealed"] = run_phase("sealed", server, client, marker, args)
    except _LoadOnly:
        pass
    finally:
        if server.proc is not None:
            server.stop()
    code["changed_during_run"] = changed or _code_stamp(code) != stamp
    summary = {
        "label": label,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "code": code,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "reused": reused,
        "load": marker["load"],
        "window_hours": (marker["window_end_ns"] - marker["window_start_ns"]) / HOUR_NS,
        "phases": phases,
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"query-{label}.json"
    out.write_text(json.dumps(summary, indent=2))
    _print(summary)
    if code["changed_during_run"]:
        print(
            "WARNING: the server's source files changed during the run; the figures may mix "
            "two versions (measure a snapshot: --server-env PYTHONPATH=..., bench/README.md)"
        )
    print(f"\nJSON: {out}\ndata dir (reuse with --reuse --data-dir): {args.data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
