"""Shared pieces of the benchmarks: a server subprocess, /proc readings, realistic bodies.

Nothing here is a test: the scripts that use it print figures.

Bodies are built once (protobuf construction is slow) as *templates*: serialized
``Export*ServiceRequest`` bytes plus the byte offsets of every trace id, span id and
timestamp inside them. ``Template.render()`` patches fresh random ids and current
timestamps into a copy of the bytes (a few hundred slice assignments, ~0.1-0.3 ms for 500
spans), so every request the load generator sends carries new traces at the current time:
no duplicate spans, no per-trace cap trips, and realistic compression on disk.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
PYTHON = os.environ.get("OTTERSCOPE_BENCH_PYTHON", sys.executable)

# --------------------------------------------------------------------------------------
# Server subprocess and /proc readings
# --------------------------------------------------------------------------------------


def code_version(server_env: dict[str, str] | None = None) -> dict[str, object]:
    """Which code is measured: HEAD, files changed in the work tree, the decoders present.

    Read-only git (``--no-optional-locks``: not even the index is refreshed).
    """
    repo = BENCH_DIR.parent

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", "--no-optional-locks", *args],
                cwd=repo,
                capture_output=True,
                text=True,
                timeout=20,
            ).stdout.rstrip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    dirty = [
        line[3:]
        for line in git("status", "--porcelain", "--untracked-files=all").splitlines()
        if not line[3:].startswith("bench/")
    ]
    info: dict[str, object] = {"head": git("rev-parse", "--short", "HEAD"), "dirty": dirty}
    # Ask the interpreter the server will run (same environment) whether ingest uses the
    # C spans decoder: PYTHONPATH may point the server at another copy of the code.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTTERSCOPE_")}
    env.update(server_env or {})
    probe = (
        "import importlib.util, inspect, otterscope.ingest.service as s; "
        "d = importlib.util.find_spec('otterscope.ingest.decode'); "
        "text = inspect.getsource(s) + (open(d.origin).read() if d else ''); "
        "print(s.__file__); print('otlp.fast' in text)"
    )
    try:
        out = subprocess.run(
            [PYTHON, "-c", probe], env=env, capture_output=True, text=True, timeout=60
        )
        lines = out.stdout.split()
        info["server_code"] = str(Path(lines[0]).parents[2]) if lines else "?"
        info["fast_spans_decoder"] = bool(lines) and lines[-1] == "True"
    except (OSError, subprocess.TimeoutExpired):
        info["fast_spans_decoder"] = False
    return info


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM / VmPeak / Threads of a process, in bytes (Threads as a count)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM", "VmPeak", "VmSize"):
                    out[key] = int(rest.split()[0]) * 1024
                elif key == "Threads":
                    out[key] = int(rest.split()[0])
    except FileNotFoundError:
        pass
    return out


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (the server's decode workers, the SQL sandbox)."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def smaps_rollup(pid: int) -> dict[str, int]:
    """Rss split by kind (anonymous, file-backed, shared memory) from smaps_rollup, bytes."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Anonymous", "Shared_Clean", "Private_Clean", "Swap"):
                    out[key] = int(rest.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return out


def peak_rss(pid: int) -> int:
    """The kernel's high-water mark of resident memory (VmHWM), in bytes."""
    return proc_status(pid).get("VmHWM", 0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (threads with the same name are summed)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return (total - idle) / ticks, total / ticks


def foreign_cpu_pct(own_pids: list[int], seconds: float = 2.0) -> float:
    """CPU used by processes other than ``own_pids`` over ``seconds``, in % of one core."""
    b0, _ = machine_cpu_seconds()
    o0 = sum(cpu_seconds(p) for p in own_pids) + _self_tree_cpu()
    time.sleep(seconds)
    b1, _ = machine_cpu_seconds()
    o1 = sum(cpu_seconds(p) for p in own_pids) + _self_tree_cpu()
    return max(0.0, 100 * ((b1 - b0) - (o1 - o0)) / seconds)


def _self_tree_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def wait_until_quiet(own_pids: list[int], max_foreign_pct: float, timeout: float) -> float:
    """Wait (up to ``timeout`` s) until other processes use < ``max_foreign_pct`` of a core.

    The benchmark machine is shared (tests of other work may be running): figures taken
    while something else burns CPU are not the server's. Returns the last reading.
    """
    deadline = time.monotonic() + timeout
    reading = foreign_cpu_pct(own_pids)
    while reading > max_foreign_pct and time.monotonic() < deadline:
        print(
            f"  machine busy: other processes use {reading:.0f}% of a core; waiting ...", flush=True
        )
        reading = foreign_cpu_pct(own_pids, 5.0)
    return reading


def disk_usage(path: Path) -> int:
    """Bytes the files under ``path`` take on disk (allocated blocks, like ``du``)."""
    total = 0
    if not path.exists():
        return 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            total += st.st_blocks * 512
    return total


def apparent_size(path: Path) -> int:
    """Sum of file sizes under ``path`` (what ``du --apparent-size`` says)."""
    total = 0
    if not path.exists():
        return 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


@dataclass
class Server:
    """``python -m otterscope serve`` on free loopback ports, with its own data dir."""

    data_dir: Path
    log_path: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    http_port: int = 0
    grpc_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> None:
        self.http_port = self.http_port or free_port()
        self.grpc_port = self.grpc_port or free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTTERSCOPE_")}
        env.update(self.env)
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "otterscope",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--http-port",
                str(self.http_port),
                "--grpc-port",
                str(self.grpc_port),
                *self.extra_args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def status(self) -> dict[str, int]:
        return proc_status(self.pid)

    def stop(self, timeout: float = 60.0) -> tuple[int, float]:
        """SIGTERM and wait (the graceful path). Returns (exit code, seconds it took)."""
        assert self.proc is not None
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self.proc = None
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


def seal_data_dir(
    data_dir: Path, server_env: dict[str, str] | None = None
) -> dict[str, object] | None:
    """Seal every hot segment of a stopped server's data dir into Parquet (bench/seal.py).

    Runs with the server's environment, so a server pointed at another copy of the code
    (PYTHONPATH) is sealed by that same code. None (and the error printed) if it failed.
    """
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith("OTTERSCOPE_")}
    env.update(server_env or {})
    out = subprocess.run(
        [PYTHON, str(BENCH_DIR / "seal.py"), str(data_dir)], capture_output=True, text=True, env=env
    )
    if out.returncode != 0:
        print(f"sealing failed:\n{out.stderr[-3000:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# --------------------------------------------------------------------------------------
# Templates: serialized bodies whose ids and times are patched per request
# --------------------------------------------------------------------------------------

_Q = struct.Struct("<Q")


@dataclass
class Template:
    """A serialized request with the offsets of its ids and timestamps."""

    signal: str
    body: bytes
    items: int
    # id slots: per length, a flat list of (offset, slot) and the number of slots
    id16: list[tuple[int, int]]
    n16: int
    id8: list[tuple[int, int]]
    n8: int
    # timestamps (fixed64) shifted by "now - built_at" on every render
    times: list[tuple[int, int]]  # (offset, original value)
    built_at_ns: int

    def render(self, now_ns: int | None = None) -> bytes:
        buf = bytearray(self.body)
        if self.n16:
            r = os.urandom(16 * self.n16)
            for off, slot in self.id16:
                s = slot * 16
                buf[off : off + 16] = r[s : s + 16]
        if self.n8:
            r = os.urandom(8 * self.n8)
            for off, slot in self.id8:
                s = slot * 8
                buf[off : off + 8] = r[s : s + 8]
        if self.times:
            delta = (now_ns if now_ns is not None else time.time_ns()) - self.built_at_ns
            pack = _Q.pack_into
            for off, orig in self.times:
                pack(buf, off, orig + delta)
        return bytes(buf)


def _scan(
    body: bytes, prefixes: bytes, width: int, wanted: dict[bytes, int]
) -> list[tuple[int, int]]:
    """Offsets of the ``width``-byte values in ``wanted`` that follow one of ``prefixes``.

    Protobuf puts a tag byte (fixed64 fields) or a length byte (ids: 0x10 or 0x08) right
    before these values, so scanning after those bytes finds them all cheaply.
    """
    out: list[tuple[int, int]] = []
    find = body.find
    for p in prefixes:
        pb = bytes([p])
        i = find(pb)
        while i >= 0:
            v = body[i + 1 : i + 1 + width]
            slot = wanted.get(v)
            if slot is not None:
                out.append((i + 1, slot))
            i = find(pb, i + 1)
    return sorted(out)


# Tag bytes of the fixed64 time fields: Span start/end (7, 8), Event/LogRecord/… time (1),
# NumberDataPoint and HistogramDataPoint start/time (2, 3), LogRecord observed time (11).
_TIME_TAGS = bytes([0x09, 0x11, 0x19, 0x39, 0x41, 0x59])


def _template(
    signal: str,
    body: bytes,
    items: int,
    ids16: list[bytes],
    ids8: list[bytes],
    times: list[int],
    built_at_ns: int,
) -> Template:
    id16 = _scan(body, b"\x10", 16, {v: i for i, v in enumerate(ids16)})
    if len({slot for _, slot in id16}) != len(ids16):
        raise AssertionError("a trace id was not found in the serialized body")
    id8 = _scan(body, b"\x08", 8, {v: i for i, v in enumerate(ids8)})
    if len({slot for _, slot in id8}) != len(ids8):
        raise AssertionError("a span id was not found in the serialized body")
    uniq = sorted(set(times))
    found = _scan(body, _TIME_TAGS, 8, {_Q.pack(t): i for i, t in enumerate(uniq)})
    if len({slot for _, slot in found}) != len(uniq):
        raise AssertionError("a timestamp was not found in the serialized body")
    tpos = [(off, uniq[slot]) for off, slot in found]
    return Template(signal, body, items, id16, len(ids16), id8, len(ids8), tpos, built_at_ns)


# --------------------------------------------------------------------------------------
# A small, realistic world: services, hosts, routes, users
# --------------------------------------------------------------------------------------

LANG = {
    "frontend": ("nodejs", "1.26.0"),
    "checkout": ("go", "1.31.0"),
    "cart": ("dotnet", "1.9.0"),
    "payment": ("nodejs", "1.26.0"),
    "product-catalog": ("go", "1.31.0"),
    "recommendation": ("python", "1.27.0"),
    "shipping": ("rust", "0.24.0"),
    "user": ("java", "1.42.1"),
}
VERSIONS = {
    s: f"{random.Random(s).randint(1, 4)}.{random.Random(s + 'm').randint(0, 30)}.{random.Random(s + 'p').randint(0, 9)}"
    for s in LANG
}
SCOPES = {
    "nodejs": ("@opentelemetry/instrumentation-http", "0.53.0"),
    "go": ("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", "0.56.0"),
    "dotnet": ("OpenTelemetry.Instrumentation.AspNetCore", "1.9.0"),
    "python": ("opentelemetry.instrumentation.flask", "0.48b0"),
    "rust": ("tracing-opentelemetry", "0.25.0"),
    "java": ("io.opentelemetry.spring-webmvc-6.0", "2.8.0-alpha"),
}
HOSTS_PER_SERVICE = 3

# frontend route -> (backend service, backend route, db table, second backend)
ENDPOINTS = [
    (
        "GET",
        "/api/products/{id}",
        "product-catalog",
        "/products/{id}",
        "products",
        "recommendation",
    ),
    ("GET", "/api/products", "product-catalog", "/products", "products", "recommendation"),
    ("GET", "/api/cart", "cart", "/cart/{userId}", "cart_items", "product-catalog"),
    ("POST", "/api/cart/items", "cart", "/cart/{userId}/items", "cart_items", "product-catalog"),
    ("POST", "/api/checkout", "checkout", "/checkout", "orders", "payment"),
    ("GET", "/api/shipping/quote", "shipping", "/quote", "shipping_rates", "cart"),
    ("GET", "/api/users/me", "user", "/users/{id}", "users", "cart"),
    (
        "GET",
        "/api/recommendations",
        "recommendation",
        "/recommendations",
        "product_views",
        "product-catalog",
    ),
]
ENDPOINT_WEIGHTS = [30, 14, 16, 9, 5, 6, 12, 8]
PRODUCT_IDS = [
    "".join(random.Random(i).choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=10))
    for i in range(400)
]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
]


def _host(service: str, i: int) -> str:
    h = random.Random(f"{service}{i}")
    return f"{service}-{h.randint(0x10000000, 0xFFFFFFFF):08x}-{''.join(h.choices('bcdfghjklmnpqrstvwxz2456789', k=5))}"


def _kv(key: str, value: object) -> KeyValue:
    kv = KeyValue(key=key)
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    else:
        kv.value.string_value = str(value)
    return kv


def _resource_attrs(service: str, host_index: int) -> list[KeyValue]:
    lang, sdk = LANG[service]
    host = _host(service, host_index)
    return [
        _kv("service.name", service),
        _kv("service.version", VERSIONS[service]),
        _kv("service.namespace", "shop"),
        _kv("service.instance.id", f"{host}-{random.Random(host).randint(1, 1 << 30):x}"),
        _kv("deployment.environment.name", "production"),
        _kv("host.name", host),
        _kv("host.arch", "amd64"),
        _kv("os.type", "linux"),
        _kv("process.pid", random.Random(host).randint(1, 65535)),
        _kv("k8s.namespace.name", "shop"),
        _kv("k8s.pod.name", host),
        _kv("telemetry.sdk.name", "opentelemetry"),
        _kv("telemetry.sdk.language", lang),
        _kv("telemetry.sdk.version", sdk),
    ]


def _lognormal_ns(rng: random.Random, median_ms: float, sigma: float = 0.8) -> int:
    return max(1000, int(rng.lognormvariate(0.0, sigma) * median_ms * 1e6))


def _status_code(rng: random.Random) -> int:
    x = rng.random()
    if x < 0.90:
        return 200
    if x < 0.93:
        return 201
    if x < 0.955:
        return 304
    if x < 0.975:
        return 404
    if x < 0.985:
        return 400
    if x < 0.99:
        return 401
    if x < 0.997:
        return 500
    return 503


def _route_path(route: str, rng: random.Random, user: int) -> str:
    return route.replace("{id}", rng.choice(PRODUCT_IDS)).replace("{userId}", str(user))


# --------------------------------------------------------------------------------------
# Traces
# --------------------------------------------------------------------------------------


class _TraceBuilder:
    def __init__(self, rng: random.Random, base_ns: int) -> None:
        self.rng = rng
        self.base_ns = base_ns
        # (service, host index) -> list of spans
        self.by_resource: dict[tuple[str, int], list[Span]] = {}
        self.trace_ids: list[bytes] = []
        self.span_ids: list[bytes] = []
        self.times: list[int] = []

    def _new_span_id(self) -> bytes:
        sid = os.urandom(8)
        self.span_ids.append(sid)
        return sid

    def _span(
        self,
        service: str,
        host: int,
        trace_id: bytes,
        parent: bytes,
        name: str,
        kind: int,
        start: int,
        duration: int,
        attrs: list[KeyValue],
        error: str = "",
    ) -> Span:
        sp = Span(
            trace_id=trace_id,
            span_id=self._new_span_id(),
            parent_span_id=parent,
            name=name,
            kind=kind,  # type: ignore[arg-type]
            start_time_unix_nano=start,
            end_time_unix_nano=start + duration,
            flags=0x100 | (0x200 if parent else 0) | 1,
        )
        sp.attributes.extend(attrs)
        if error:
            sp.status.code = Status.STATUS_CODE_ERROR
            sp.status.message = error
            ev = sp.events.add()
            ev.time_unix_nano = start + duration - 1000
            ev.name = "exception"
            ev.attributes.extend(
                [
                    _kv("exception.type", "TimeoutError" if "timeout" in error else "RuntimeError"),
                    _kv("exception.message", error),
                ]
            )
            self.times.append(ev.time_unix_nano)
        self.times += [start, start + duration]
        self.by_resource.setdefault((service, host), []).append(sp)
        return sp

    def trace(self) -> None:
        rng = self.rng
        tid = os.urandom(16)
        self.trace_ids.append(tid)
        ep = rng.choices(ENDPOINTS, ENDPOINT_WEIGHTS)[0]
        method, route, backend, broute, table, second = ep
        user = rng.randint(1, 20000)
        status = _status_code(rng)
        fe_host = rng.randrange(HOSTS_PER_SERVICE)
        be_host = rng.randrange(HOSTS_PER_SERVICE)
        s2_host = rng.randrange(HOSTS_PER_SERVICE)
        t0 = self.base_ns + rng.randint(0, 5_000_000_000)
        total = _lognormal_ns(rng, 40)
        path = _route_path(route, rng, user)
        bpath = _route_path(broute, rng, user)
        err = "upstream request timeout" if status >= 500 else ""
        peer_ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        # 0: frontend SERVER
        root = self._span(
            "frontend",
            fe_host,
            tid,
            b"",
            f"{method} {route}",
            Span.SPAN_KIND_SERVER,
            t0,
            total,
            [
                _kv("http.request.method", method),
                _kv("http.route", route),
                _kv("http.response.status_code", status),
                _kv("url.path", path),
                _kv("url.scheme", "https"),
                _kv("user.id", f"u{user}"),
                _kv("client.address", peer_ip),
                _kv("user_agent.original", rng.choice(USER_AGENTS)),
                _kv("server.address", "shop.example.com"),
                _kv("server.port", 443),
                _kv("network.protocol.version", "1.1" if rng.random() < 0.3 else "2"),
            ],
            err,
        )
        # 1: frontend CLIENT -> backend
        c1_start = t0 + total // 20
        c1_dur = total * 6 // 10
        c1 = self._span(
            "frontend",
            fe_host,
            tid,
            root.span_id,
            method,
            Span.SPAN_KIND_CLIENT,
            c1_start,
            c1_dur,
            [
                _kv("http.request.method", method),
                _kv("url.full", f"http://{backend}:8080{bpath}"),
                _kv("http.response.status_code", status),
                _kv("server.address", backend),
                _kv("server.port", 8080),
                _kv("network.peer.address", f"10.0.{rng.randint(0, 9)}.{rng.randint(2, 250)}"),
                _kv("user.id", f"u{user}"),
                _kv("http.request.resend_count", 0),
                _kv("thread.id", rng.randint(1, 64)),
                _kv("thread.name", "main"),
            ],
            err,
        )
        # 2: backend SERVER
        b_start = c1_start + 300_000
        b_dur = c1_dur - 600_000 if c1_dur > 1_000_000 else c1_dur // 2
        bs = self._span(
            backend,
            be_host,
            tid,
            c1.span_id,
            f"{method} {broute}",
            Span.SPAN_KIND_SERVER,
            b_start,
            b_dur,
            [
                _kv("http.request.method", method),
                _kv("http.route", broute),
                _kv("http.response.status_code", status),
                _kv("url.path", bpath),
                _kv("url.scheme", "http"),
                _kv("user.id", f"u{user}"),
                _kv("client.address", f"10.0.{rng.randint(0, 9)}.{rng.randint(2, 250)}"),
                _kv("server.address", backend),
                _kv("server.port", 8080),
                _kv("network.protocol.version", "1.1"),
            ],
            err,
        )
        # 3: backend INTERNAL
        i_start = b_start + b_dur // 20
        i_dur = b_dur * 8 // 10
        cls = backend.title().replace("-", "") + "Service"
        fn = rng.choice(["load", "list", "update", "validate", "compute"])
        internal = self._span(
            backend,
            be_host,
            tid,
            bs.span_id,
            f"{cls}.{fn}",
            Span.SPAN_KIND_INTERNAL,
            i_start,
            i_dur,
            [
                _kv("code.function", fn),
                _kv("code.namespace", f"shop.{backend.replace('-', '_')}.{cls}"),
                _kv("code.filepath", f"src/{backend}/{fn}.py"),
                _kv("code.lineno", rng.randint(20, 900)),
                _kv("user.id", f"u{user}"),
                _kv("thread.id", rng.randint(1, 64)),
                _kv("thread.name", f"worker-{rng.randint(1, 16)}"),
                _kv("app.items", rng.randint(0, 40)),
                _kv("app.cache.enabled", True),
                _kv("app.region", rng.choice(["eu-west-1", "us-east-1", "ap-south-1"])),
            ],
        )
        # 4: DB CLIENT
        op = "SELECT" if method == "GET" else rng.choice(["INSERT", "UPDATE"])
        d_start = i_start + i_dur // 10
        d_dur = _lognormal_ns(rng, 3)
        stmt = {
            "SELECT": f"SELECT * FROM {table} WHERE id = $1 AND tenant_id = $2 LIMIT $3",
            "INSERT": f"INSERT INTO {table} (id, user_id, payload, created_at) VALUES ($1, $2, $3, now())",
            "UPDATE": f"UPDATE {table} SET payload = $1, updated_at = now() WHERE id = $2",
        }[op]
        self._span(
            backend,
            be_host,
            tid,
            internal.span_id,
            f"{op} shop.{table}",
            Span.SPAN_KIND_CLIENT,
            d_start,
            d_dur,
            [
                _kv("db.system", "postgresql"),
                _kv("db.namespace", "shop"),
                _kv("db.operation.name", op),
                _kv("db.collection.name", table),
                _kv("db.query.text", stmt),
                _kv("server.address", "postgres-primary.shop.svc"),
                _kv("server.port", 5432),
                _kv("db.user", "shop_app"),
                _kv("db.response.returned_rows", rng.randint(0, 50)),
                _kv("thread.id", rng.randint(1, 64)),
            ],
        )
        # 5: cache CLIENT
        r_start = i_start + 100_000
        hit = rng.random() < 0.8
        self._span(
            backend,
            be_host,
            tid,
            internal.span_id,
            "GET",
            Span.SPAN_KIND_CLIENT,
            r_start,
            _lognormal_ns(rng, 0.4),
            [
                _kv("db.system", "redis"),
                _kv("db.operation.name", "GET"),
                _kv("db.query.text", f"GET {table}:{user}"),
                _kv("db.namespace", "0"),
                _kv("server.address", "redis-master.shop.svc"),
                _kv("server.port", 6379),
                _kv("network.peer.address", f"10.0.3.{rng.randint(2, 250)}"),
                _kv("app.cache.hit", hit),
                _kv("user.id", f"u{user}"),
                _kv("thread.id", rng.randint(1, 64)),
            ],
        )
        # 6: frontend CLIENT -> second service
        c2_start = c1_start + c1_dur + 200_000
        c2_dur = max(500_000, total - (c2_start - t0) - 500_000)
        s2_path = "/" + second.replace("-", "") + "/batch"
        c2 = self._span(
            "frontend",
            fe_host,
            tid,
            root.span_id,
            "POST",
            Span.SPAN_KIND_CLIENT,
            c2_start,
            c2_dur,
            [
                _kv("http.request.method", "POST"),
                _kv("url.full", f"http://{second}:8080{s2_path}"),
                _kv("http.response.status_code", 200),
                _kv("server.address", second),
                _kv("server.port", 8080),
                _kv("network.peer.address", f"10.0.{rng.randint(0, 9)}.{rng.randint(2, 250)}"),
                _kv("user.id", f"u{user}"),
                _kv("http.request.body.size", rng.randint(80, 4000)),
                _kv("http.response.body.size", rng.randint(200, 60000)),
                _kv("thread.id", rng.randint(1, 64)),
            ],
        )
        # 7: second SERVER
        s_start = c2_start + 200_000
        s_dur = max(200_000, c2_dur - 400_000)
        s2 = self._span(
            second,
            s2_host,
            tid,
            c2.span_id,
            f"POST {s2_path}",
            Span.SPAN_KIND_SERVER,
            s_start,
            s_dur,
            [
                _kv("http.request.method", "POST"),
                _kv("http.route", s2_path),
                _kv("http.response.status_code", 200),
                _kv("url.path", s2_path),
                _kv("url.scheme", "http"),
                _kv("user.id", f"u{user}"),
                _kv("client.address", f"10.0.{rng.randint(0, 9)}.{rng.randint(2, 250)}"),
                _kv("server.address", second),
                _kv("server.port", 8080),
                _kv("http.request.body.size", rng.randint(80, 4000)),
            ],
        )
        # 8: second INTERNAL
        m_start = s_start + s_dur // 10
        m_dur = s_dur * 7 // 10
        mi = self._span(
            second,
            s2_host,
            tid,
            s2.span_id,
            "batch.process",
            Span.SPAN_KIND_INTERNAL,
            m_start,
            m_dur,
            [
                _kv("code.function", "process"),
                _kv("code.namespace", f"shop.{second.replace('-', '_')}.batch"),
                _kv("code.lineno", rng.randint(20, 900)),
                _kv("app.batch.size", rng.randint(1, 20)),
                _kv("user.id", f"u{user}"),
                _kv("thread.id", rng.randint(1, 64)),
                _kv("thread.name", f"worker-{rng.randint(1, 16)}"),
                _kv("app.model.version", "v" + str(rng.randint(10, 14))),
                _kv("app.score", round(rng.random(), 4)),
                _kv("app.fallback", rng.random() < 0.05),
            ],
        )
        # 9: second DB CLIENT
        self._span(
            second,
            s2_host,
            tid,
            mi.span_id,
            "SELECT shop.product_views",
            Span.SPAN_KIND_CLIENT,
            m_start + 50_000,
            _lognormal_ns(rng, 2),
            [
                _kv("db.system", "postgresql"),
                _kv("db.namespace", "shop"),
                _kv("db.operation.name", "SELECT"),
                _kv("db.collection.name", "product_views"),
                _kv(
                    "db.query.text",
                    "SELECT product_id, count(*) FROM product_views WHERE user_id = $1 GROUP BY 1 ORDER BY 2 DESC LIMIT 20",
                ),
                _kv("server.address", "postgres-replica.shop.svc"),
                _kv("server.port", 5432),
                _kv("db.user", "shop_ro"),
                _kv("db.response.returned_rows", rng.randint(0, 20)),
                _kv("thread.id", rng.randint(1, 64)),
            ],
        )

    def request(self) -> ExportTraceServiceRequest:
        req = ExportTraceServiceRequest()
        for (service, host), spans in sorted(self.by_resource.items()):
            rs = req.resource_spans.add()
            rs.resource.attributes.extend(_resource_attrs(service, host))
            rs.schema_url = "https://opentelemetry.io/schemas/1.26.0"
            ss = rs.scope_spans.add()
            name, version = SCOPES[LANG[service][0]]
            ss.scope.name = name
            ss.scope.version = version
            ss.spans.extend(spans)
        return req


def trace_template(rng: random.Random, spans: int, base_ns: int) -> Template:
    b = _TraceBuilder(rng, base_ns)
    n_traces = max(1, spans // 10)
    for _ in range(n_traces):
        b.trace()
    req = b.request()
    body = req.SerializeToString()
    return _template("traces", body, n_traces * 10, b.trace_ids, b.span_ids, b.times, base_ns)


# --------------------------------------------------------------------------------------
# Logs
# --------------------------------------------------------------------------------------

_SEVERITIES = [
    (SeverityNumber.SEVERITY_NUMBER_DEBUG, "DEBUG", 10),
    (SeverityNumber.SEVERITY_NUMBER_INFO, "INFO", 70),
    (SeverityNumber.SEVERITY_NUMBER_WARN, "WARN", 12),
    (SeverityNumber.SEVERITY_NUMBER_ERROR, "ERROR", 8),
]

_STACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/shop/{svc}/handlers.py", line {l1}, in handle\n'
    "    result = await self.repo.fetch(request.user_id)\n"
    '  File "/app/shop/{svc}/repo.py", line {l2}, in fetch\n'
    "    rows = await self.pool.fetch(QUERY, user_id)\n"
    '  File "/usr/lib/python3.12/site-packages/asyncpg/pool.py", line 1029, in fetch\n'
    "    return await con.fetch(query, *args, timeout=timeout)\n"
    "asyncpg.exceptions.QueryCanceledError: canceling statement due to statement timeout"
)


def _log_body(rng: random.Random, svc: str, sev: str, user: int) -> tuple[str, list[KeyValue]]:
    ep = rng.choices(ENDPOINTS, ENDPOINT_WEIGHTS)[0]
    path = _route_path(ep[1], rng, user)
    extra: list[KeyValue] = []
    if sev == "ERROR":
        kind = rng.random()
        if kind < 0.4:
            body = f"request failed: {ep[0]} {path} -> 500 after {rng.randint(1000, 30000)}ms: upstream request timeout"
        elif kind < 0.7:
            body = f"could not connect to postgres-primary.shop.svc:5432: connection refused (attempt {rng.randint(1, 5)}/5)"
        else:
            body = "unhandled exception while processing request"
            extra = [
                _kv("exception.type", "asyncpg.exceptions.QueryCanceledError"),
                _kv(
                    "exception.stacktrace",
                    _STACK.format(svc=svc, l1=rng.randint(20, 400), l2=rng.randint(20, 400)),
                ),
            ]
    elif sev == "WARN":
        body = rng.choice(
            [
                f"slow request: {ep[0]} {path} took {rng.randint(500, 5000)}ms (threshold 500ms)",
                f"retrying call to {ep[2]} (attempt {rng.randint(2, 4)}) after 503",
                f"cache miss ratio {rng.random():.2f} above 0.25 for {ep[4]}",
                f"user u{user} exceeded rate limit: {rng.randint(100, 400)} req/min",
            ]
        )
    elif sev == "DEBUG":
        body = rng.choice(
            [
                f"cache lookup {ep[4]}:{user} hit={rng.random() < 0.8}",
                f"acquired db connection from pool (in use {rng.randint(1, 20)}/20)",
                f"feature flag checkout.new-flow={rng.random() < 0.5} for u{user}",
            ]
        )
    else:
        body = rng.choice(
            [
                f"{ep[0]} {path} {_status_code(rng)} {rng.lognormvariate(0, 0.8) * 20:.1f}ms",
                f"{ep[0]} {path} {_status_code(rng)} {rng.lognormvariate(0, 0.8) * 20:.1f}ms",
                f"user u{user} added item {rng.choice(PRODUCT_IDS)} quantity={rng.randint(1, 5)} to cart",
                f"order {rng.randint(10**8, 10**9)} placed by u{user}: {rng.randint(1, 9)} items, total {rng.randint(5, 900)}.{rng.randint(0, 99):02d} USD",
                f"payment authorized transaction_id={os.urandom(8).hex()} amount={rng.randint(5, 900)}.{rng.randint(0, 99):02d}",
                f"shipping quote computed for zip {rng.randint(10000, 99999)}: {rng.randint(3, 40)}.{rng.randint(0, 99):02d} USD",
            ]
        )
    return body, extra


def log_template(rng: random.Random, records: int, base_ns: int) -> Template:
    req = ExportLogsServiceRequest()
    trace_ids: list[bytes] = []
    span_ids: list[bytes] = []
    times: list[int] = []
    services = list(LANG)
    # A collector batch: several resources, each with a run of records.
    remaining = records
    while remaining > 0:
        svc = rng.choice(services)
        host = rng.randrange(HOSTS_PER_SERVICE)
        n = min(remaining, rng.randint(20, 120))
        remaining -= n
        rl = req.resource_logs.add()
        rl.resource.attributes.extend(_resource_attrs(svc, host))
        rl.schema_url = "https://opentelemetry.io/schemas/1.26.0"
        sl = rl.scope_logs.add()
        sl.scope.name = f"shop.{svc.replace('-', '_')}"
        for _ in range(n):
            sev_num, sev_text, _w = rng.choices(_SEVERITIES, [w for *_, w in _SEVERITIES])[0]
            user = rng.randint(1, 20000)
            body, extra = _log_body(rng, svc, sev_text, user)
            t = base_ns + rng.randint(0, 5_000_000_000)
            rec = sl.log_records.add(
                time_unix_nano=t,
                observed_time_unix_nano=t + rng.randint(100_000, 50_000_000),
                severity_number=sev_num,
                severity_text=sev_text,
            )
            times += [rec.time_unix_nano, rec.observed_time_unix_nano]
            rec.body.string_value = body
            if rng.random() < 0.8:
                tid, sid = os.urandom(16), os.urandom(8)
                trace_ids.append(tid)
                span_ids.append(sid)
                rec.trace_id = tid
                rec.span_id = sid
                rec.flags = 1
            rec.attributes.extend(
                [
                    _kv(
                        "log.logger",
                        f"shop.{svc.replace('-', '_')}.{rng.choice(['handlers', 'repo', 'service', 'http'])}",
                    ),
                    _kv(
                        "code.function",
                        rng.choice(["handle", "fetch", "process", "authorize", "quote"]),
                    ),
                    _kv("code.lineno", rng.randint(20, 900)),
                    _kv("thread.name", f"worker-{rng.randint(1, 16)}"),
                    _kv("thread.id", rng.randint(1, 64)),
                    _kv("user.id", f"u{user}"),
                    _kv("http.route", rng.choices(ENDPOINTS, ENDPOINT_WEIGHTS)[0][1]),
                    *extra,
                ]
            )
    body = req.SerializeToString()
    return _template("logs", body, records, trace_ids, span_ids, times, base_ns)


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------

_DURATION_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
_STATUSES = [200, 201, 304, 400, 404, 500]


def _series_http(service: str) -> list[list[KeyValue]]:
    out = []
    for method, route, *_ in ENDPOINTS:
        for st in _STATUSES:
            out.append(
                [
                    _kv("http.request.method", method),
                    _kv(
                        "http.route", route if service == "frontend" else route.replace("/api", "")
                    ),
                    _kv("http.response.status_code", st),
                    _kv("url.scheme", "https" if service == "frontend" else "http"),
                    _kv("network.protocol.version", "1.1"),
                ]
            )
    return out


def metric_template(rng: random.Random, points: int, base_ns: int) -> Template:
    """One export: whole resources (one SDK's periodic export each) until ``points``."""
    req = ExportMetricsServiceRequest()
    times: list[int] = []
    n = 0
    services = list(LANG)
    while n < points:
        svc = rng.choice(services)
        host = rng.randrange(HOSTS_PER_SERVICE)
        t = base_ns + rng.randint(0, 5_000_000_000)
        start = base_ns - rng.randint(3600, 86400) * 1_000_000_000
        times.append(t)
        rm = req.resource_metrics.add()
        rm.resource.attributes.extend(_resource_attrs(svc, host))
        rm.schema_url = "https://opentelemetry.io/schemas/1.26.0"
        sm = rm.scope_metrics.add()
        sm.scope.name, sm.scope.version = SCOPES[LANG[svc][0]]
        budget = points - n

        def room(k: int) -> int:
            return max(0, min(k, points - n))  # noqa: B023 - n as it is when called

        # http.server.request.duration: histogram, many series
        series = _series_http(svc)
        rng.shuffle(series)
        k = room(min(len(series), max(8, budget // 3)))
        if k:
            m = sm.metrics.add(
                name="http.server.request.duration",
                unit="s",
                description="Duration of HTTP server requests.",
            )
            m.histogram.aggregation_temporality = (
                AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
            )
            for attrs in series[:k]:
                counts = [
                    rng.randint(0, 4000) if i < 8 else rng.randint(0, 40)
                    for i in range(len(_DURATION_BOUNDS) + 1)
                ]
                dp = m.histogram.data_points.add(
                    start_time_unix_nano=start,
                    time_unix_nano=t,
                    count=sum(counts),
                    sum=sum(counts) * rng.uniform(0.02, 0.2),
                    min=rng.uniform(0.0005, 0.004),
                    max=rng.uniform(0.5, 12.0),
                )
                dp.bucket_counts.extend(counts)
                dp.explicit_bounds.extend(_DURATION_BOUNDS)
                dp.attributes.extend(attrs)
            n += k
        # http.server.requests-ish counter: cumulative monotonic sum, same series
        k = room(min(len(series), max(8, budget // 3)))
        if k:
            m = sm.metrics.add(
                name="app.http.requests", unit="{request}", description="HTTP requests served."
            )
            m.sum.aggregation_temporality = (
                AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
            )
            m.sum.is_monotonic = True
            for attrs in series[:k]:
                dp = m.sum.data_points.add(
                    start_time_unix_nano=start, time_unix_nano=t, as_int=rng.randint(0, 10**7)
                )
                dp.attributes.extend(attrs)
            n += k
        # system.cpu.utilization: gauge per cpu x state
        k = room(16)
        if k:
            m = sm.metrics.add(
                name="system.cpu.utilization", unit="1", description="CPU utilization by state."
            )
            i = 0
            for cpu in range(4):
                for state in ("user", "system", "idle", "iowait"):
                    if i >= k:
                        break
                    dp = m.gauge.data_points.add(time_unix_nano=t, as_double=round(rng.random(), 4))
                    dp.attributes.extend([_kv("cpu.logical_number", cpu), _kv("cpu.mode", state)])
                    i += 1
            n += k
        # process.memory.usage gauge, runtime gc count, db pool usage (up-down sum)
        k = room(1)
        if k:
            m = sm.metrics.add(
                name="process.memory.usage", unit="By", description="Process resident memory."
            )
            m.gauge.data_points.add(time_unix_nano=t, as_int=rng.randint(80, 900) * 1024 * 1024)
            n += 1
        k = room(4)
        if k:
            m = sm.metrics.add(
                name="db.client.connection.count",
                unit="{connection}",
                description="Connections by state.",
            )
            m.sum.aggregation_temporality = (
                AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
            )
            m.sum.is_monotonic = False
            for _i, (pool, state) in enumerate(
                [
                    ("primary", "idle"),
                    ("primary", "used"),
                    ("replica", "idle"),
                    ("replica", "used"),
                ][:k]
            ):
                dp = m.sum.data_points.add(
                    start_time_unix_nano=start, time_unix_nano=t, as_int=rng.randint(0, 20)
                )
                dp.attributes.extend(
                    [
                        _kv("db.client.connection.pool.name", pool),
                        _kv("db.client.connection.state", state),
                    ]
                )
            n += k
        k = room(2)
        if k:
            m = sm.metrics.add(
                name="process.cpu.time", unit="s", description="CPU seconds by mode."
            )
            m.sum.aggregation_temporality = (
                AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
            )
            m.sum.is_monotonic = True
            for mode in ("user", "system")[:k]:
                dp = m.sum.data_points.add(
                    start_time_unix_nano=start, time_unix_nano=t, as_double=rng.uniform(10, 90000)
                )
                dp.attributes.append(_kv("cpu.mode", mode))
            n += k
    body = req.SerializeToString()
    return _template("metrics", body, n, [], [], times, base_ns)


BUILDERS = {"traces": trace_template, "logs": log_template, "metrics": metric_template}


def build_templates(signal: str, count: int, batch: int, seed: int = 42) -> list[Template]:
    """``count`` distinct bodies of ``batch`` items each, timestamps around now."""
    rng = random.Random(seed)
    base = time.time_ns() - 6_000_000_000
    return [BUILDERS[signal](rng, batch, base) for _ in range(count)]


if __name__ == "__main__":
    # Quick look at the generated data: sizes and one decoded item per signal.
    import argparse

    from google.protobuf import json_format

    from otterscope.otlp import rows, wire
    from otterscope.otlp.anyvalue import Limits

    p = argparse.ArgumentParser(description="print the size and a sample of the generated bodies")
    p.add_argument("--signal", default="traces", choices=list(BUILDERS))
    p.add_argument("--batch", type=int, default=500)
    a = p.parse_args()
    t0 = time.perf_counter()
    ts = build_templates(a.signal, 3, a.batch)
    built = time.perf_counter() - t0
    body = ts[0].render()
    msg = wire.parse_request(a.signal, body, "protobuf")
    batch = {"traces": rows.spans_batch, "logs": rows.logs_batch, "metrics": rows.metrics_batch}[
        a.signal
    ](msg, "default", Limits())
    print(
        f"{a.signal}: {ts[0].items} items, {len(body)} bytes ({len(body) / ts[0].items:.0f} B/item), "
        f"{len(ts[0].id16)} trace-id and {len(ts[0].id8)} span-id slots, {len(ts[0].times)} times; "
        f"built 3 in {built:.2f}s; decoded rows={batch.table.num_rows} rejected={batch.rejected}"
    )
    print({k: v[0] for k, v in batch.table.slice(0, 1).to_pydict().items()})
    d = json_format.MessageToDict(msg)
    print(str(d)[:1500])
