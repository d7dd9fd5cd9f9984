"""OTLP/HTTP protobuf ingest benchmark: throughput, ack latency, peak RSS, bytes on disk.

    python bench/ingest.py --signal traces --seconds 20 --senders 8 --batch 500
    python bench/ingest.py --signal traces --rate 20000      # fixed offered load, items/s
    python bench/ingest.py --signal all --seconds 60 --senders 9  # every signal at once

What it does:
1. builds ``--bodies`` distinct request templates of ``--batch`` items each (bench/common.py);
2. starts ``python -m otterscope serve`` on a fresh data dir and waits for /ready;
3. runs ``--senders`` keep-alive connections from this (client) process, asyncio over raw
   sockets: each sends POST /v1/<signal> (application/x-protobuf) and waits for the answer,
   then sends the next (closed loop), or, with ``--rate``, follows a fixed schedule of
   requests (open loop, latency also measured from the scheduled time). Every request gets
   fresh trace/span ids and current timestamps patched into its template;
4. counts only 200 answers as accepted (a 200 means committed), minus partial_success
   rejections; reports p50/p90/p99/max ack latency, 429s (Retry-After is honoured), errors,
   server CPU per thread and peak RSS (VmHWM);
5. stops the server with SIGTERM, measures the data dir, seals the hot segments into
   Parquet with bench/seal.py and reports bytes per item sealed and in total.

``--signal all`` sends traces, logs and metrics at once, each to its own endpoint: the
senders are split across the signals (8 -> 3 traces, 3 logs, 2 metrics), ``--rate`` and
the body pool are per signal, and each signal's throughput and latency are reported
besides the totals, with the server's peak RSS, its decode workers' peak RSS and the
store's hot bytes and Arrow allocation read from ``/metrics`` during the run.

Writes bench/out/ingest-<signal>-<label>.json. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal as signal_mod
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    OUT_DIR,
    Server,
    Template,
    build_templates,
    child_pids,
    code_version,
    cpu_seconds,
    disk_usage,
    fresh_dir,
    machine_cpu_seconds,
    proc_status,
    seal_data_dir,
    smaps_rollup,
    wait_until_quiet,
)

RESPONSES = {
    "traces": "opentelemetry.proto.collector.trace.v1.trace_service_pb2:ExportTraceServiceResponse",
    "logs": "opentelemetry.proto.collector.logs.v1.logs_service_pb2:ExportLogsServiceResponse",
    "metrics": "opentelemetry.proto.collector.metrics.v1.metrics_service_pb2:ExportMetricsServiceResponse",
}
REJECTED_FIELD = {
    "traces": "rejected_spans",
    "logs": "rejected_log_records",
    "metrics": "rejected_data_points",
}


def _response_class(signal: str) -> type:
    import importlib

    mod, _, name = RESPONSES[signal].partition(":")
    return getattr(importlib.import_module(mod), name)  # type: ignore[no-any-return]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


@dataclass
class Sample:
    done: float  # perf_counter at the end of the answer
    latency: float  # send -> answer
    sched_latency: float  # scheduled time -> answer (== latency in closed loop)
    status: int
    items: int  # accepted items (200 only, minus rejected)
    rejected: int


@dataclass
class LoadResult:
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sent: int = 0
    late_sends: int = 0  # open loop: requests sent after their slot because no sender was free
    rendered_live: int = 0  # requests rendered during the run because the pool ran out


class _Schedule:
    """Open-loop slots: one request every ``interval`` seconds from ``start``."""

    def __init__(self, start: float, interval: float) -> None:
        self.start = start
        self.interval = interval
        self.k = 0

    def next(self) -> float:
        t = self.start + self.k * self.interval
        self.k += 1
        return t


async def _run_load(
    templates: list[Template],
    pool: list[bytes],
    signal: str,
    port: int,
    senders: int,
    t_start: float,
    t_end: float,
    rate: float | None,
    honour_retry_after: bool,
    result: LoadResult,
) -> None:
    resp_cls = _response_class(signal)
    rej_field = REJECTED_FIELD[signal]
    head = (
        f"POST /v1/{signal} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-protobuf\r\nUser-Agent: otterscope-bench\r\n"
        "Content-Length: "
    ).encode()
    schedule = _Schedule(t_start, templates[0].items / rate) if rate else None
    counter = {"k": 0}

    async def one(idx: int) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while True:
            now = time.perf_counter()
            if now >= t_end:
                break
            if schedule is not None:
                slot = schedule.next()
                if slot >= t_end:
                    break
                if slot > now:
                    await asyncio.sleep(slot - now)
                elif now - slot > 0.001:
                    result.late_sends += 1
            else:
                slot = None
            k = counter["k"]
            counter["k"] = k + 1
            tmpl = templates[k % len(templates)]
            if k < len(pool):
                body = pool[k]
                pool[k] = b""  # sent once; let it go
            else:
                body = tmpl.render()
                result.rendered_live += 1
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
                assert reader is not None
                t0 = time.perf_counter()
                writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
                result.sent += 1
                await writer.drain()
                status_line = await reader.readline()
                if not status_line:
                    raise ConnectionError("server closed the connection")
                status = int(status_line.split(b" ", 2)[1])
                length = 0
                retry_after = 0.0
                close = False
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.partition(b":")
                    lname = name.strip().lower()
                    if lname == b"content-length":
                        length = int(value.strip())
                    elif lname == b"retry-after":
                        retry_after = float(value.strip() or 0)
                    elif lname == b"connection" and value.strip().lower() == b"close":
                        close = True
                payload = await reader.readexactly(length) if length else b""
                t1 = time.perf_counter()
            except (
                OSError,
                asyncio.IncompleteReadError,
                ConnectionError,
                ValueError,
                IndexError,
            ) as exc:
                result.errors.append(f"{type(exc).__name__}: {exc}")
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(0.05)
                continue
            items = rejected = 0
            if status == 200:
                items = tmpl.items
                if payload:
                    msg = resp_cls.FromString(payload)
                    if msg.HasField("partial_success"):
                        rejected = getattr(msg.partial_success, rej_field)
                        items -= rejected
            elif status != 429:
                result.errors.append(f"HTTP {status}: {payload[:200]!r}")
            result.samples.append(
                Sample(
                    t1, t1 - t0, t1 - (slot if slot is not None else t0), status, items, rejected
                )
            )
            if close:
                assert writer is not None
                writer.close()
                reader = writer = None
            if status in (429, 503) and honour_retry_after:
                await asyncio.sleep(min(retry_after or 1.0, max(0.0, t_end - time.perf_counter())))
        if writer is not None:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(senders)))


# Gauges of the server's own memory in GET /metrics (absent from older code).
MEMORY_GAUGES = (
    "otterscope_hot_bytes",
    "otterscope_arrow_allocated_bytes",
    "otterscope_duckdb_memory_bytes",
)


class _Sampler(threading.Thread):
    """Polls the server's RSS and CPU while the load runs, its children's (decode
    workers') peak RSS, and how its RSS splits (smaps_rollup) when it is highest."""

    def __init__(self, pid: int, url: str = "", period: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.url = url
        self.period = period
        self.stop = threading.Event()
        self.points: list[tuple[float, int, float]] = []  # (t, rss, cpu seconds)
        self.children: dict[int, int] = {}  # pid -> highest VmHWM seen
        self.at_peak: dict[str, int] = {}  # smaps_rollup when VmRSS was highest
        self.gauges: dict[str, list[float]] = {}  # memory gauge -> values read
        self._top = 0

    def run(self) -> None:
        k = 0
        while not self.stop.wait(self.period):
            st = proc_status(self.pid)
            rss = st.get("VmRSS", 0)
            self.points.append((time.perf_counter(), rss, cpu_seconds(self.pid)))
            if rss > self._top:
                self._top = rss
                self.at_peak = smaps_rollup(self.pid)
            for child in child_pids(self.pid):
                hwm = proc_status(child).get("VmHWM", 0)
                self.children[child] = max(self.children.get(child, 0), hwm)
            k += 1
            if self.url and k % 4 == 0:  # /metrics costs the server a little: every 2 s
                for name, value in _gauges(self.url).items():
                    self.gauges.setdefault(name, []).append(value)


def _gauges(url: str) -> dict[str, float]:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in MEMORY_GAUGES:
            out[name] = float(value)
    return out


def _commit_stats(url: str) -> dict[str, float]:
    """Count, sum and buckets of otterscope_commit_duration_seconds from GET /metrics."""
    import urllib.request

    out: dict[str, float] = {}
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("otterscope_commit_duration_seconds_count"):
            out["count"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("otterscope_commit_duration_seconds_sum"):
            out["sum"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("otterscope_commit_duration_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[f"le_{float(le)}"] = float(line.rsplit(" ", 1)[1])
    return out


def _thread_cpu(pid: int) -> dict[int, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def _thread_names(pid: int) -> dict[int, str]:
    """OS thread id -> Python thread name, from ``py-spy dump`` (empty without py-spy)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return {}
    try:
        out = subprocess.run(
            [spy, "dump", "--pid", str(pid), "--nonblocking"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
    except (subprocess.TimeoutExpired, OSError):
        return {}
    names: dict[int, str] = {}
    for line in out.splitlines():
        # Thread 12345 (active): "MainThread"   or   Thread 0x7f.. (idle): "name"
        if line.startswith("Thread "):
            parts = line.split()
            try:
                tid = int(parts[1], 0)
            except ValueError:
                continue
            name = line.split(":", 1)[1].strip().strip('"') if ":" in line else ""
            names[tid] = name
    return names


def _py_spy_cmd(args: argparse.Namespace, pid: int, seconds: float, out: Path) -> list[str]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    cmd = [
        spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(seconds))),
        "--rate",
        str(args.py_spy_rate),
        "--format",
        args.py_spy_format,
        "-o",
        str(out),
        "--threads",
        "--nonblocking",
    ]
    if args.py_spy_native:
        cmd.append("--native")
    if args.py_spy_idle:
        cmd.append("--idle")
    if args.py_spy_gil:
        cmd.append("--gil")
    return cmd


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024
    return f"{n:.1f} GiB"


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--signal",
        choices=["traces", "logs", "metrics", "all"],
        default="traces",
        help="all: every signal at once, the senders split across them",
    )
    p.add_argument("--seconds", type=float, default=20.0, help="measured window (after warm-up)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    p.add_argument("--senders", type=int, default=8, help="concurrent keep-alive connections")
    p.add_argument("--batch", type=int, default=500, help="items per request")
    p.add_argument("--bodies", type=int, default=200, help="distinct pre-built request bodies")
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="fixed offered load in items/s (open loop; with --signal all, of each signal)",
    )
    p.add_argument(
        "--pool-mib",
        type=int,
        default=1536,
        help="memory for bodies rendered before the run (fresh ids each; with --signal all, "
        "split across the signals); past it, bodies are rendered during the run (~0.6 ms of "
        "client CPU each)",
    )
    p.add_argument(
        "--data-dir", type=Path, default=None, help="default /tmp/otterscope-bench/<label>"
    )
    p.add_argument("--label", default=None, help="name of this run (output file, data dir)")
    p.add_argument("--keep", action="store_true", help="keep the data dir afterwards")
    p.add_argument("--no-seal", action="store_true", help="skip sealing and the sealed size")
    p.add_argument("--no-retry-after", action="store_true", help="do not sleep after 429/503")
    p.add_argument("--server-arg", action="append", default=[], help="extra argument for serve")
    p.add_argument("--server-env", action="append", default=[], help="NAME=VALUE for the server")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=900.0,
        help="before loading, wait up to this many seconds for other processes to use less "
        "than --quiet-pct of a core (the machine may be shared); 0 = do not wait",
    )
    p.add_argument("--quiet-pct", type=float, default=15.0)
    p.add_argument(
        "--py-spy", action="store_true", help="py-spy record the server during the window"
    )
    p.add_argument("--py-spy-format", default="raw", choices=["raw", "speedscope", "flamegraph"])
    p.add_argument("--py-spy-rate", type=int, default=100)
    p.add_argument("--py-spy-native", action="store_true")
    p.add_argument("--py-spy-idle", action="store_true")
    p.add_argument("--py-spy-gil", action="store_true")
    args = p.parse_args()

    code = code_version(dict(kv.split("=", 1) for kv in args.server_env))
    label = args.label or (
        f"{args.signal}-{'rate' + str(int(args.rate)) if args.rate else 'max'}-s{args.senders}-b{args.batch}"
    )
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    data_dir = args.data_dir or Path("/tmp/otterscope-bench") / label
    fresh_dir(data_dir)

    signals = ["traces", "logs", "metrics"] if args.signal == "all" else [args.signal]
    if args.senders < len(signals):
        p.error(f"--signal all needs at least {len(signals)} senders")
    senders = _split(args.senders, len(signals))
    templates: dict[str, list[Template]] = {}
    pools: dict[str, list[bytes]] = {}
    body_sizes: dict[str, float] = {}
    for signal in signals:
        print(f"building {args.bodies} {signal} bodies of {args.batch} items ...", flush=True)
        t0 = time.perf_counter()
        tmpls = templates[signal] = build_templates(signal, args.bodies, args.batch)
        build_s = time.perf_counter() - t0
        body_bytes = body_sizes[signal] = sum(len(t.body) for t in tmpls) / len(tmpls)
        items_per_req = tmpls[0].items
        r0 = time.perf_counter()
        for t in tmpls[:50]:
            t.render()
        render_ms = (time.perf_counter() - r0) / 50 * 1000
        print(
            f"  built in {build_s:.1f}s: {items_per_req} items/request, {body_bytes / 1024:.0f} KiB/request "
            f"({body_bytes / items_per_req:.0f} B/item), render {render_ms:.2f} ms/request",
            flush=True,
        )

        # Render request bodies up front (fresh ids, times shifted to now) so that sending
        # costs the client nothing but the socket writes. Sized for the whole run at the
        # offered rate, or at 150k items/s for closed loop (shared by the signals), within
        # --pool-mib.
        guess = args.rate or 150_000.0 / len(signals)
        want = int((args.warmup + args.seconds + 2) * guess / items_per_req) + args.senders
        cap = max(len(tmpls), int(args.pool_mib / len(signals) * 1024 * 1024 / body_bytes))
        n_pool = min(want, cap)
        r0 = time.perf_counter()
        now_ns = time.time_ns() + int(args.warmup * 1e9)
        pools[signal] = [tmpls[k % len(tmpls)].render(now_ns) for k in range(n_pool)]
        print(
            f"  rendered {n_pool} request bodies ({n_pool * body_bytes / 2**20:.0f} MiB) in {time.perf_counter() - r0:.1f}s",
            flush=True,
        )

    env = dict(kv.split("=", 1) for kv in args.server_env)
    server = Server(data_dir / "data", data_dir / "server.log", extra_args=args.server_arg, env=env)
    server.start()
    pid = server.pid
    print(f"server pid {pid} on :{server.http_port}, data in {server.data_dir}", flush=True)
    idle_rss = proc_status(pid).get("VmRSS", 0)

    if args.quiet_wait > 0:
        wait_until_quiet([pid], args.quiet_pct, args.quiet_wait)

    sampler = _Sampler(pid, server.url)
    sampler.start()
    result = LoadResult()
    start = time.perf_counter()
    t_measure = start + args.warmup
    t_end = t_measure + args.seconds
    spy_proc = None
    spy_out = None
    timers: list[threading.Timer] = []
    cpu_marks: dict[str, float] = {}
    thread_marks: dict[str, dict[int, float]] = {}
    commit_marks: dict[str, dict[str, float]] = {}

    def mark_begin() -> None:
        cpu_marks["server0"] = cpu_seconds(pid)
        thread_marks["t0"] = _thread_cpu(pid)
        cpu_marks["client0"] = _self_cpu()
        cpu_marks["wall0"] = time.perf_counter()
        cpu_marks["machine0"] = machine_cpu_seconds()[0]
        commit_marks["c0"] = _commit_stats(server.url)
        nonlocal spy_proc, spy_out
        if args.py_spy:
            ext = {"raw": "txt", "speedscope": "json", "flamegraph": "svg"}[args.py_spy_format]
            spy_out = OUT_DIR / f"profile-{label}.{ext}"
            spy_proc = subprocess.Popen(
                _py_spy_cmd(args, pid, args.seconds, spy_out),
                stdout=subprocess.DEVNULL,
                stderr=open(OUT_DIR / f"profile-{label}.log", "w"),  # noqa: SIM115
            )

    def mark_end() -> None:
        cpu_marks["server1"] = cpu_seconds(pid)
        thread_marks["t1"] = _thread_cpu(pid)
        cpu_marks["client1"] = _self_cpu()
        cpu_marks["wall1"] = time.perf_counter()
        cpu_marks["machine1"] = machine_cpu_seconds()[0]
        commit_marks["c1"] = _commit_stats(server.url)

    timers.append(threading.Timer(max(0.0, t_measure - time.perf_counter()), mark_begin))
    timers.append(threading.Timer(max(0.0, t_end - time.perf_counter()), mark_end))
    for tm in timers:
        tm.start()
    print(
        f"load: {args.senders} senders"
        + (
            " (" + ", ".join(f"{n} {sig}" for sig, n in zip(signals, senders, strict=True)) + ")"
            if len(signals) > 1
            else ""
        )
        + ", "
        + (f"offered {args.rate:,.0f} items/s" if args.rate else "closed loop (max)")
        + f", warm-up {args.warmup:.0f}s, measuring {args.seconds:.0f}s ...",
        flush=True,
    )
    results = {signal: LoadResult() for signal in signals}

    async def load_all() -> None:
        await asyncio.gather(
            *(
                _run_load(
                    templates[signal],
                    pools[signal],
                    signal,
                    server.http_port,
                    n,
                    start,
                    t_end,
                    args.rate,
                    not args.no_retry_after,
                    results[signal],
                )
                for signal, n in zip(signals, senders, strict=True)
            )
        )

    asyncio.run(load_all())
    # The totals over every signal (with one signal: that signal's).
    for r in results.values():
        result.samples.extend(r.samples)
        result.errors.extend(r.errors)
        result.sent += r.sent
        result.late_sends += r.late_sends
        result.rendered_live += r.rendered_live
    finished = time.perf_counter()
    for tm in timers:
        tm.join()
    names = _thread_names(pid)
    if spy_proc is not None:
        try:
            spy_proc.wait(timeout=args.seconds + 30)
        except subprocess.TimeoutExpired:
            spy_proc.send_signal(signal_mod.SIGINT)
            spy_proc.wait(10)
    sampler.stop.set()
    sampler.join()
    st = proc_status(pid)
    peak = st.get("VmHWM", 0)

    # Stop (graceful), then measure and seal.
    hot_rows_hint = sum(s.items for s in result.samples)
    exit_code, stop_s = server.stop()
    disk_after_stop = disk_usage(server.data_dir)
    sealed = None
    if not args.no_seal:
        sealed = seal_data_dir(server.data_dir, env)

    # -- figures ---------------------------------------------------------------------------
    window = [s for s in result.samples if t_measure <= s.done <= t_end]
    dur = t_end - t_measure
    ok = [s for s in window if s.status == 200]
    items = sum(s.items for s in ok)
    lat = [s.latency * 1000 for s in ok]
    sched = [s.sched_latency * 1000 for s in ok]
    n429 = sum(1 for s in result.samples if s.status == 429)
    n503 = sum(1 for s in result.samples if s.status == 503)
    other = sum(1 for s in result.samples if s.status not in (200, 429, 503))
    server_cpu = cpu_marks["server1"] - cpu_marks["server0"]
    client_cpu = cpu_marks["client1"] - cpu_marks["client0"]
    wall = cpu_marks["wall1"] - cpu_marks["wall0"]
    machine_busy = cpu_marks["machine1"] - cpu_marks["machine0"]
    foreign = max(0.0, machine_busy - server_cpu - client_cpu)
    t0c, t1c = thread_marks["t0"], thread_marks["t1"]
    per_thread = sorted(
        ((tid, t1c.get(tid, 0.0) - t0c.get(tid, 0.0)) for tid in t1c), key=lambda x: -x[1]
    )
    threads = [
        {"tid": tid, "name": names.get(tid, "?"), "cpu_pct": round(100 * c / wall, 1)}
        for tid, c in per_thread
        if c / wall >= 0.005
    ]
    rss_series = [(round(t - start, 1), rss) for t, rss, _ in sampler.points]
    c0, c1 = commit_marks.get("c0", {}), commit_marks.get("c1", {})
    commits = c1.get("count", 0.0) - c0.get("count", 0.0)
    commit_info = None
    if commits > 0:
        commit_info = {
            "commits_per_s": round(commits / dur, 1),
            "items_per_commit": round(items / commits, 1),
            "mean_ms": round(1000 * (c1["sum"] - c0["sum"]) / commits, 1),
            "over_250ms": int(commits - (c1.get("le_0.25", 0) - c0.get("le_0.25", 0))),
            "over_1s": int(commits - (c1.get("le_1.0", 0) - c0.get("le_1.0", 0))),
            "busy_pct": round(100 * (c1["sum"] - c0["sum"]) / dur, 1),
        }
    # Per second of the run: accepted items and the slowest answer (commit stalls show here).
    timeline: dict[int, list[float]] = {}
    for smp in result.samples:
        sec = int(smp.done - start)
        row = timeline.setdefault(sec, [0.0, 0.0, 0.0])
        row[0] += smp.items
        row[1] = max(row[1], smp.latency * 1000)
        row[2] += 1
    per_second = [
        {"t": sec, "items": int(v[0]), "answers": int(v[2]), "max_latency_ms": round(v[1], 1)}
        for sec, v in sorted(timeline.items())
    ]
    summary: dict[str, object] = {
        "label": label,
        "signal": args.signal,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "code": code,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "items_per_request": items_per_req,
        "request_bytes": round(sum(body_sizes.values()) / len(body_sizes)),
        "window_seconds": round(dur, 2),
        "accepted_items": items,
        "accepted_items_per_s": round(items / dur, 1),
        "requests_ok": len(ok),
        "requests_per_s": round(len(ok) / dur, 1),
        "latency_ms": {
            "p50": round(percentile(lat, 50), 2),
            "p90": round(percentile(lat, 90), 2),
            "p99": round(percentile(lat, 99), 2),
            "max": round(max(lat), 2) if lat else None,
        },
        "latency_from_schedule_ms": (
            {
                "p50": round(percentile(sched, 50), 2),
                "p99": round(percentile(sched, 99), 2),
                "max": round(max(sched), 2) if sched else None,
            }
            if args.rate
            else None
        ),
        "offered_items_per_s": args.rate,
        "late_sends": result.late_sends,
        "pool_bodies": sum(len(pl) for pl in pools.values()),
        "rendered_live": result.rendered_live,
        "http_429": n429,
        "http_503": n503,
        "other_status": other,
        "errors": len(result.errors),
        "error_examples": sorted(set(result.errors))[:5],
        "rejected_items": sum(s.rejected for s in result.samples),
        "acknowledged_items_total": hot_rows_hint,
        "server_cpu_pct": round(100 * server_cpu / wall, 1),
        "server_threads_cpu": threads,
        "client_cpu_pct": round(100 * client_cpu / wall, 1),
        "machine_busy_pct": round(100 * machine_busy / wall, 1),
        "other_processes_cpu_pct": round(100 * foreign / wall, 1),
        "server_idle_rss": idle_rss,
        "server_peak_rss": peak,
        "server_rss_at_peak": sampler.at_peak,
        "decode_workers_peak_rss": sorted(sampler.children.values(), reverse=True),
        "memory_gauges_max": {k: max(v) for k, v in sampler.gauges.items() if v},
        "rss_series": rss_series,
        "per_second": per_second,
        "commits": commit_info,
        "stop_exit_code": exit_code,
        "stop_seconds": round(stop_s, 2),
        "tail_seconds": round(finished - t_end, 2),
        "disk_bytes_after_stop": disk_after_stop,
        "sealed": sealed,
        "profile": str(spy_out) if spy_out else None,
    }
    if len(signals) > 1:
        summary["signals"] = {
            signal: {
                "senders": n,
                "request_bytes": round(body_sizes[signal]),
                **_load_figures(results[signal].samples, t_measure, t_end),
                "errors": len(results[signal].errors),
            }
            for signal, n in zip(signals, senders, strict=True)
        }
    if sealed:
        rows = sum(v["rows"] for v in sealed["parquet"].values())  # type: ignore[index, union-attr]
        pbytes = sum(v["bytes"] for v in sealed["parquet"].values())  # type: ignore[index, union-attr]
        summary["stored_rows"] = rows
        summary["sealed_bytes_per_item"] = round(pbytes / rows, 1) if rows else None
        summary["total_disk_bytes_per_item"] = (
            round(sealed["total_disk_bytes_after"] / rows, 1) if rows else None  # type: ignore[index]
        )
        summary["hot_bytes_per_item_before_seal"] = (
            round(disk_after_stop / rows, 1) if rows else None
        )

    out = OUT_DIR / f"ingest-{label}.json"
    out.write_text(json.dumps(summary, indent=2))
    _print_summary(summary)
    print(f"JSON: {out}")
    if spy_out:
        print(f"profile: {spy_out}  (summarise: python bench/profile_top.py {spy_out})")
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def _split(senders: int, parts: int) -> list[int]:
    """``senders`` shared by ``parts`` signals, the first ones taking the remainder."""
    return [senders // parts + (1 if i < senders % parts else 0) for i in range(parts)]


def _load_figures(samples: list[Sample], t_measure: float, t_end: float) -> dict[str, object]:
    """Throughput and ack latency of one signal's answers in the measured window."""
    dur = t_end - t_measure
    ok = [s for s in samples if t_measure <= s.done <= t_end and s.status == 200]
    lat = [s.latency * 1000 for s in ok]
    return {
        "accepted_items_per_s": round(sum(s.items for s in ok) / dur, 1),
        "requests_per_s": round(len(ok) / dur, 1),
        "latency_ms": {
            "p50": round(percentile(lat, 50), 2),
            "p99": round(percentile(lat, 99), 2),
            "max": round(max(lat), 2) if lat else None,
        },
        "http_429": sum(1 for s in samples if s.status == 429),
        "http_503": sum(1 for s in samples if s.status == 503),
    }


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _memory_detail(s: dict[str, object]) -> str:
    """Where the peak went, when the run measured it: anonymous vs file-backed RSS, the
    store's hot rows, Arrow's allocations, the decode workers."""
    parts = []
    at_peak = s.get("server_rss_at_peak") or {}
    if at_peak:
        parts.append(
            f"at the highest sample: anonymous {_fmt_bytes(float(at_peak.get('Anonymous', 0)))}"  # type: ignore[union-attr]
        )
    for name, value in (s.get("memory_gauges_max") or {}).items():  # type: ignore[union-attr]
        parts.append(f"max {name.removeprefix('otterscope_')} {_fmt_bytes(float(value))}")
    workers = s.get("decode_workers_peak_rss") or []
    parts.append(
        f"child processes: {len(workers)}"  # type: ignore[arg-type]
        + (f", peak {_fmt_bytes(float(max(workers)))}" if workers else "")  # type: ignore[type-var, arg-type]
    )
    return "\n                " + "; ".join(parts)


def _print_summary(s: dict[str, object]) -> None:
    units = {"traces": "spans", "logs": "records", "metrics": "points", "all": "items"}
    unit = units[str(s["signal"])]
    lat = s["latency_ms"]
    assert isinstance(lat, dict)
    lines = [
        "",
        f"=== otterscope ingest bench: {s['label']} ===",
        f"code            {s['code']['server_code']} at HEAD {s['code']['head']}"  # type: ignore[index]
        + (
            f" + {len(s['code']['dirty'])} changed file(s) in the work tree"
            if s["code"]["dirty"]
            else ""
        )  # type: ignore[index]
        + f"; C spans decoder: {'yes' if s['code']['fast_spans_decoder'] else 'no'}",  # type: ignore[index]
        f"accepted        {s['accepted_items_per_s']:>12,.0f} {unit}/s   "
        f"({s['requests_per_s']} req/s x {s['items_per_request']} {unit}, {s['request_bytes'] / 1024:.0f} KiB/req, "
        f"{s['window_seconds']}s window)",
    ]
    for signal, f in (s.get("signals") or {}).items():  # type: ignore[attr-defined]
        lines.append(
            f"  {signal:<13} {f['accepted_items_per_s']:>12,.0f} {units[signal]}/s   "
            f"({f['senders']} senders; p50 {f['latency_ms']['p50']} ms, p99 {f['latency_ms']['p99']} ms, "
            f"max {f['latency_ms']['max']} ms; 429: {f['http_429']}, 503: {f['http_503']}, "
            f"errors: {f['errors']})"
        )
    if s["offered_items_per_s"]:
        lines.append(
            f"offered         {s['offered_items_per_s']:>12,.0f} {unit}/s   (late sends: {s['late_sends']})"
        )
    lines += [
        f"ack latency     p50 {lat['p50']} ms   p90 {lat['p90']} ms   p99 {lat['p99']} ms   max {lat['max']} ms",
    ]
    if s["latency_from_schedule_ms"]:
        ls = s["latency_from_schedule_ms"]
        assert isinstance(ls, dict)
        lines.append(
            f"  from schedule p50 {ls['p50']} ms   p99 {ls['p99']} ms   max {ls['max']} ms"
        )
    lines += [
        f"answers         429: {s['http_429']}   503: {s['http_503']}   other: {s['other_status']}   "
        f"errors: {s['errors']}   rejected items: {s['rejected_items']}",
        f"server CPU      {s['server_cpu_pct']}% of one core   (client process {s['client_cpu_pct']}%; "
        f"machine {s['machine_busy_pct']}% of {s['machine']['cpus']}00%, other processes {s['other_processes_cpu_pct']}%"  # type: ignore[index]
        + (
            " -- WARNING: the machine was shared, figures are low)"
            if float(s["other_processes_cpu_pct"]) > 20
            else ")"
        ),
        "  threads       "
        + ", ".join(
            f"{t['name']}[{t['tid']}] {t['cpu_pct']}%" for t in s["server_threads_cpu"][:6]
        ),  # type: ignore[index, union-attr]
        (
            "commits         {commits_per_s}/s, {items_per_commit} items each, mean {mean_ms} ms, "
            "{over_250ms} over 250 ms, {over_1s} over 1 s; writer busy {busy_pct}% of the time".format(
                **s["commits"]
            )  # type: ignore[arg-type]
            if s.get("commits")
            else "commits         (no /metrics reading)"
        ),
        "per second      items/1000 (max ms): "
        + " ".join(f"{p['items'] // 1000}({p['max_latency_ms']:.0f})" for p in s["per_second"]),  # type: ignore[attr-defined, union-attr]
        f"server RSS      peak (VmHWM) {_fmt_bytes(float(s['server_peak_rss']))}   idle {_fmt_bytes(float(s['server_idle_rss']))}"
        + (_memory_detail(s) if s.get("signals") else ""),
        f"stop            SIGTERM -> exit {s['stop_exit_code']} in {s['stop_seconds']}s; "
        f"data dir {_fmt_bytes(float(s['disk_bytes_after_stop']))} before sealing",
    ]
    if s.get("sealed"):
        sealed = s["sealed"]
        assert isinstance(sealed, dict)
        lines.append(
            f"disk            {s['stored_rows']:,} rows stored; sealed Parquet {s['sealed_bytes_per_item']} B/{unit[:-1]}, "
            f"whole data dir {s['total_disk_bytes_per_item']} B/{unit[:-1]} after sealing "
            f"(hot segment logs before sealing: {s['hot_bytes_per_item_before_seal']} B/{unit[:-1]}; seal took {sealed['seal_seconds']}s)"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
