"""Idempotency keys over real sockets: a request resent with its key is stored once.

Imports and replays through the real CLI into real ``otterscope serve`` processes; the
counts are read back through the API, ``/health`` and ``/metrics``. Crashes are SIGKILL.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import pyarrow.parquet as pq
import yaml
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs, ScopeLogs

from otterscope.otlp.anyvalue import Limits
from otterscope.otlp.rows import logs_batch
from otterscope.store.embedded.idempotency import CommittedKey, KeyIndex
from otterscope.store.embedded.store import EmbeddedOptions, EmbeddedStore
from tests.conftest import RunningServer
from tests.test_cli_commands import (
    LOG_COUNT,
    NOW,
    POINT_COUNT,
    SPAN_COUNT,
    StandIn,
    cli,
    items,
    logs_request,
    metrics_request,
    ok,
    post_otlp,
    received,
    traces_request,
)
from tests.test_durability import logs_request as protobuf_logs
from tests.test_store_embedded import T0, log, resource

MakeServer = Callable[..., RunningServer]
KEY = "Idempotency-Key"


def export_file(path: Path, *extra: dict[str, Any]) -> Path:
    docs = (traces_request(), logs_request(), metrics_request(), *extra)
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    return path


def exposition(server: RunningServer) -> str:
    r = httpx.get(f"{server.url}/metrics", headers=server.headers(), timeout=30)
    assert r.status_code == 200, r.text
    return r.text


def sample(text: str, name: str) -> float:
    """The value of the one sample of ``name`` (any labels) in a Prometheus exposition."""
    found = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if re.match(rf"{re.escape(name)}(\{{|\s)", line)
    ]
    assert len(found) == 1, (name, found)
    return found[0]


def stored_counts(server: RunningServer) -> dict[str, int]:
    return {signal: len(items(server, signal)) for signal in ("traces", "logs", "metrics")}


def test_importing_the_same_file_twice_stores_it_once(
    make_server: MakeServer, tmp_path: Path
) -> None:
    target = make_server()
    # The same request twice in one file is two requests: both stored, by one import.
    path = export_file(tmp_path / "all.jsonl", logs_request())
    first = json.loads(ok(cli("import", str(path), "--json", server=target)))
    assert first["alreadyStored"] == 0 and first["requests"] == 4
    counts = {"traces": SPAN_COUNT, "logs": 2 * LOG_COUNT, "metrics": POINT_COUNT}
    assert received(target) == counts
    once = exposition(target)
    delta_count = sample(once, "latency_milliseconds_count")  # a delta histogram
    assert delta_count == 3

    again = cli("import", str(path), "--json", server=target)
    summary = json.loads(ok(again))
    assert summary["alreadyStored"] == 4 and summary["requests"] == 4
    assert "4 requests already stored, not stored again" in again.stderr
    assert received(target) == counts
    assert stored_counts(target) == counts
    twice = exposition(target)
    assert sample(twice, "latency_milliseconds_count") == delta_count
    assert sample(twice, "latency_milliseconds_sum") == sample(once, "latency_milliseconds_sum")
    assert (
        'otterscope_received_requests_total{outcome="replayed",signal="logs",transport="http"} 2'
        in twice
    )


def post_logs(
    server: RunningServer, body: bytes, key: str, token: str | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/x-protobuf", KEY: key}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    r = httpx.post(f"{server.url}/v1/logs", content=body, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r


def log_count(server: RunningServer, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(
        f"{server.url}/api/logs",
        params={"start": "0", "limit": "1000"},
        headers=headers,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return len(r.json()["logs"])


def replayed(r: httpx.Response) -> bool:
    return r.headers.get("Idempotency-Replayed") == "true"


def test_a_key_survives_sealing_and_restarts_and_is_per_tenant(
    make_server: MakeServer, tmp_path: Path
) -> None:
    a, b = "a-" + secrets.token_hex(8), "b-" + secrets.token_hex(8)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "storage": {"seal_interval": "1s"},
                "auth": {"tokens": [{"token": a, "tenant": "a"}, {"token": b, "tenant": "b"}]},
            }
        )
    )
    first = make_server(args=["--config", str(config)])
    body = protobuf_logs(20).body
    key = "k-" + secrets.token_hex(8)
    assert not replayed(post_logs(first, body, key, a))
    r = post_logs(first, body, key, a)
    assert replayed(r) and r.content == b""  # an empty ExportLogsServiceResponse
    # The segment holding the key is sealed and its logs deleted: the key outlives them.
    deadline = time.monotonic() + 30
    while list(first.data_dir.glob("hot/*.arrows")) or not list(
        first.data_dir.glob("parquet/logs/tenant=a/hour=*/*.parquet")
    ):
        assert time.monotonic() < deadline, "the segment was never sealed"
        time.sleep(0.2)
    assert (first.data_dir / "idempotency-keys.jsonl").exists()
    assert replayed(post_logs(first, body, key, a))
    # Another tenant's same key is its own.
    assert not replayed(post_logs(first, body, key, b))
    assert replayed(post_logs(first, body, key, b))
    assert log_count(first, a) == log_count(first, b) == 20
    assert first.stop() == 0

    second = make_server(args=["--config", str(config)], data_dir=first.data_dir)
    assert replayed(post_logs(second, body, key, a))
    # A key committed in the hot segment only (no seal before the crash) survives kill -9.
    hot_body = protobuf_logs(7).body
    assert not replayed(post_logs(second, hot_body, "hot-key", a))
    second.kill()

    third = make_server(args=["--config", str(config)], data_dir=first.data_dir)
    assert replayed(post_logs(third, hot_body, "hot-key", a))
    assert replayed(post_logs(third, body, key, a))
    assert log_count(third, a) == 27 and log_count(third, b) == 20


def test_concurrent_requests_with_one_key_store_once(make_server: MakeServer) -> None:
    server = make_server()
    body = protobuf_logs(30).body
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post_logs(server, body, "same"), range(8)))
    assert sum(not replayed(r) for r in answers) == 1
    assert log_count(server) == 30


def test_grpc_metadata_key(make_server: MakeServer) -> None:
    server = make_server()
    body = protobuf_logs(5).body
    with grpc.insecure_channel(server.grpc_target) as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            request_serializer=None,
            response_deserializer=ExportLogsServiceResponse.FromString,
        )
        trailers = []
        for _ in range(2):
            _, call = export.with_call(body, metadata=(("idempotency-key", "g1"),), timeout=10)
            trailers.append(dict(call.trailing_metadata() or ()))
    assert "idempotency-replayed" not in trailers[0]
    assert trailers[1]["idempotency-replayed"] == "true"
    assert log_count(server) == 5


def test_a_bad_key_is_a_400(server: RunningServer) -> None:
    for bad in ("x" * 257, "two words", "é"):
        r = httpx.post(
            f"{server.url}/v1/logs",
            json=logs_request(),
            headers={KEY: bad.encode()},
            timeout=10,
        )
        assert r.status_code == 400, r.text
        assert KEY.lower() in r.json()["message"]
    assert log_count(server) == 0


def test_kill_9_mid_import_then_reimport_gives_exact_counts(
    make_server: MakeServer, tmp_path: Path
) -> None:
    # Many small requests, each with items of its own, so the kill lands mid-import.
    path = tmp_path / "big.jsonl"
    requests = 400
    with path.open("w") as f:
        for i in range(requests):
            doc: dict[str, Any] = logs_request()
            for record in doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"]:
                record["attributes"] = [{"key": "request", "value": {"intValue": str(i)}}]
            f.write(json.dumps(doc) + "\n")
            if i % 4 == 0:
                metrics = metrics_request()
                metrics["resourceMetrics"][0]["resource"]["attributes"].append(
                    {"key": "request", "value": {"intValue": str(i)}}
                )
                f.write(json.dumps(metrics) + "\n")
    metric_requests = requests // 4
    server = make_server()
    importer = subprocess.Popen(
        [sys.executable, "-m", "otterscope", "import", str(path), "--url", server.url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTTERSCOPE_")},
    )
    try:
        deadline = time.monotonic() + 60
        while received(server)["logs"] < 20 * LOG_COUNT:
            assert time.monotonic() < deadline, "the import never got going"
            time.sleep(0.02)
        server.kill()
    finally:
        importer.kill()
        importer.wait(10)
    restarted = make_server(data_dir=server.data_dir)
    stored_before = log_count_all(restarted)
    assert 0 < stored_before < requests * LOG_COUNT
    summary = json.loads(ok(cli("import", str(path), "--json", server=restarted)))
    assert summary["alreadyStored"] >= stored_before // LOG_COUNT
    assert log_count_all(restarted) == requests * LOG_COUNT
    text = exposition(restarted)
    assert sample(text, "latency_milliseconds_count") == 3 * (metric_requests)
    restarted.stop()
    again = make_server(data_dir=server.data_dir)
    assert log_count_all(again) == requests * LOG_COUNT
    assert sample(exposition(again), "latency_milliseconds_count") == 3 * metric_requests


def log_count_all(server: RunningServer) -> int:
    return len(items(server, "logs"))


def test_a_resumed_replay_after_a_crash_sends_nothing_twice(
    make_server: MakeServer, tmp_path: Path
) -> None:
    source = make_server()
    ok(cli("import", str(export_file(tmp_path / "all.jsonl")), server=source))
    target = make_server()
    state = tmp_path / "state.json"
    base = f"replay --to {target.url} --signal logs --state {state} --page-size 3".split()
    ok(cli(*base, "--max-pages", "1", server=source))
    after_first = tmp_path / "after-first.json"
    shutil.copy(state, after_first)
    ok(cli(*base, "--resume", "--max-pages", "1", server=source))
    assert received(target)["logs"] == 6
    # A crash after page 2 was acknowledged, before the state was saved: the state still
    # says one page was sent, so page 2 goes again on --resume.
    shutil.copy(after_first, state)
    ok(cli(*base, "--resume", server=source))
    assert received(target)["logs"] == LOG_COUNT
    assert items(target, "logs") == items(source, "logs")


# -- the store: a key and its rows are one record ----------------------------------------------


def keyed_logs(store: EmbeddedStore, key: str, n: int, tenant: str = "default") -> None:
    req = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=resource("api"),
                scope_logs=[ScopeLogs(log_records=[log(T0 + i, f"r{i}") for i in range(n)])],
            )
        ]
    )
    store.write([logs_batch(req, tenant, Limits())], [(tenant, "logs", key)])


def stored_logs(store: EmbeddedStore) -> int:
    return store.stats().hot_rows["logs"] + sum(
        pq.read_metadata(p).num_rows for p in store.layout.root.glob("parquet/logs/**/*.parquet")
    )


def test_a_torn_record_loses_the_key_with_its_rows(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    keyed_logs(store, "first", 3)
    keyed_logs(store, "second", 4)
    assert store.key_committed("default", "logs", "second")
    store.close()
    (log_file,) = tmp_path.glob("hot/*.logs.arrows")
    os.truncate(log_file, log_file.stat().st_size - 20)  # the last commit, torn by a crash
    store = EmbeddedStore(tmp_path)
    try:
        assert store.key_committed("default", "logs", "first")
        assert not store.key_committed("default", "logs", "second")
        assert stored_logs(store) == 3
        assert not store.key_committed("other", "logs", "first")
        assert not store.key_committed("default", "traces", "first")
    finally:
        store.close()


def test_keys_outlive_sealing(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    keyed_logs(store, "sealed", 2)
    store.seal_now()
    assert not list(tmp_path.glob("hot/*.arrows"))  # the log that held the key is gone
    store.close()
    store = EmbeddedStore(tmp_path)
    try:
        assert store.key_committed("default", "logs", "sealed")
        assert stored_logs(store) == 2
    finally:
        store.close()


def test_keys_expire_and_the_file_is_compacted(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, EmbeddedOptions(idempotency_ttl_s=0.5))
    try:
        keyed_logs(store, "short-lived", 1)
        assert store.key_committed("default", "logs", "short-lived")
        time.sleep(0.6)
        assert not store.key_committed("default", "logs", "short-lived")
    finally:
        store.close()
    index = KeyIndex(tmp_path, ttl_s=60, max_keys=10_000)
    old, new = time.time() - 120, time.time()
    index.persist([CommittedKey("t", "logs", f"old-{i}", old) for i in range(1500)])
    index.persist([CommittedKey("t", "logs", "new", new)])
    index.load()
    index.compact(time.time())
    assert index.path.read_text().count("\n") == 1
    again = KeyIndex(tmp_path, ttl_s=60, max_keys=10_000)
    again.load()
    assert again.committed("t", "logs", "new", time.time())
    assert not again.committed("t", "logs", "old-1", time.time())
    bounded = KeyIndex(tmp_path, ttl_s=60, max_keys=1)
    bounded.add([CommittedKey("t", "logs", "a", new), CommittedKey("t", "logs", "b", new)])
    assert len(bounded) == 1 and bounded.committed("t", "logs", "b", new)


class HangingProxy(StandIn):
    """Forwards OTLP posts to a real server; while ``hang`` is set it forwards the request
    and then never answers, as if the sender crashed before it heard the answer."""

    def __init__(self, target: RunningServer) -> None:
        self.target = target
        self.hang = threading.Event()
        self.forwarded = threading.Event()
        self.release = threading.Event()
        super().__init__(self.answer)

    def answer(self, handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
        r = httpx.post(self.target.url + handler.path, content=body, headers=headers, timeout=30)
        if self.hang.is_set():
            self.forwarded.set()
            self.release.wait(60)
            return
        handler.send_response(r.status_code)
        for name in ("Content-Type", "Idempotency-Replayed"):
            if name in r.headers:
                handler.send_header(name, r.headers[name])
        handler.send_header("Content-Length", str(len(r.content)))
        handler.end_headers()
        handler.wfile.write(r.content)

    def close(self) -> None:
        self.release.set()
        super().close()


def test_a_replay_killed_before_the_first_answer_resumes_exactly(
    make_server: MakeServer, tmp_path: Path
) -> None:
    source = make_server()
    ok(cli("import", str(export_file(tmp_path / "all.jsonl")), server=source))
    before = items(source, "logs")
    target = make_server()
    proxy = HangingProxy(target)
    try:
        state = tmp_path / "state.json"
        base = f"replay --to {proxy.url} --signal logs --state {state} --page-size 3".split()
        proxy.hang.set()
        replay = subprocess.Popen(
            [sys.executable, "-m", "otterscope", *base, "--url", source.url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("OTTERSCOPE_")},
        )
        try:
            assert proxy.forwarded.wait(60), "the first page never reached the target"
        finally:
            replay.kill()
            replay.wait(10)
        assert received(target)["logs"] == 3  # stored, but the replay never heard it
        # Meanwhile the source gets a record inside the window, older than every other: a
        # first page fetched afresh would hold it and differ from the one sent.
        early = logs_request()
        early["resourceLogs"][0]["scopeLogs"][0]["logRecords"] = [
            {"timeUnixNano": str(NOW - 10**9), "body": {"stringValue": "late arrival"}}
        ]
        post_otlp(source, "logs", early)
        proxy.hang.clear()
        proxy.release.set()
        ok(cli(*base, "--resume", server=source))
    finally:
        proxy.close()
    assert received(target)["logs"] == LOG_COUNT
    assert items(target, "logs") == before


def test_a_torn_last_line_of_the_keys_file_does_not_swallow_the_next_key(tmp_path: Path) -> None:
    """A crash while appending leaves a line without its end; the next append must not join
    its first key onto it (that key would be unreadable after the next restart)."""
    now = time.time()
    index = KeyIndex(tmp_path, ttl_s=60, max_keys=10_000)
    index.persist([CommittedKey("t", "logs", "before", now)])
    with open(index.path, "ab") as f:
        f.write(b'{"tenant":"t","signal":"logs","ke')  # torn by a crash
    after_crash = KeyIndex(tmp_path, ttl_s=60, max_keys=10_000)
    after_crash.load()
    after_crash.persist([CommittedKey("t", "logs", "after", now)])
    restarted = KeyIndex(tmp_path, ttl_s=60, max_keys=10_000)
    restarted.load()
    assert restarted.committed("t", "logs", "before", now)
    assert restarted.committed("t", "logs", "after", now)
