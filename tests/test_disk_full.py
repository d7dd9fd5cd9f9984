"""A full disk over real sockets: answered at once, reported, and recovered from.

The data dir lives on a small tmpfs mounted by the test (root only; skipped otherwise). A
filler file takes the rest of its space, so the server's next commit fails with ENOSPC.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.conftest import RunningServer
from tests.test_durability import PROTOBUF, Sent, trace_request

MakeServer = Callable[..., RunningServer]
TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
# An SDK's usual export timeout is 10 s; before the fix each answer took 30-58 s.
PROMPT_S = 3.0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
            check=True,
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        pytest.skip("no mount command: a full disk needs a small tmpfs mounted by the test")
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot mount a tmpfs (needs root): {exc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(path: Path) -> None:
    """Write ``path`` until the file system has no room left."""
    chunk = b"\0" * (256 * 1024)
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
    # A few bytes may still fit in the last page: take them too.
    with open(path, "ab", buffering=0) as f:
        for size in (4096, 512, 1):
            while True:
                try:
                    f.write(b"\0" * size)
                except OSError:
                    break


def post(client: httpx.Client, server: RunningServer, sent: Sent) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    r = client.post(f"{server.url}/v1/traces", content=sent.body, headers=PROTOBUF)
    return r, time.monotonic() - started


def grpc_export(server: RunningServer, sent: Sent) -> tuple[grpc.StatusCode, float]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        export = channel.unary_unary(
            TRACE_EXPORT,
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        started = time.monotonic()
        try:
            export(sent.body, timeout=30)
        except grpc.RpcError as exc:
            return exc.code(), time.monotonic() - started
        return grpc.StatusCode.OK, time.monotonic() - started


def grpc_health(server: RunningServer, want: str, timeout: float = 5.0) -> str:
    """The server's grpc.health.v1 status: ``want`` once it has followed the disk (it
    looks every second), else the last status seen."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(server.grpc_target) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        while True:
            reply = check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            seen = str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
            if seen == want or time.monotonic() > deadline:
                return seen
            time.sleep(0.2)


def test_full_disk_is_refused_at_once_reported_and_recovered(
    make_server: MakeServer, small_disk: Path
) -> None:
    server = make_server(data_dir=small_disk / "data")
    acked: list[Sent] = []
    with httpx.Client(timeout=60) as client:
        for _ in range(3):
            sent = trace_request(20)
            r, _ = post(client, server, sent)
            assert r.status_code == 200, r.text
            acked.append(sent)

        filler = small_disk / "filler"
        fill(filler)

        # The first commit that finds no room is refused (and loses nothing acknowledged).
        for _ in range(20):
            sent = trace_request(20, pad=2000)
            r, _ = post(client, server, sent)
            if r.status_code != 200:
                break
            acked.append(sent)
        assert r.status_code == 503, r.text

        # From then on every request is answered at once, not after the 30 s sealing wait.
        for _ in range(6):
            r, took = post(client, server, trace_request(20))
            assert r.status_code == 503, r.text
            assert took < PROMPT_S, f"a 503 took {took:.1f}s"
            assert int(r.headers["retry-after"]) >= 1
        assert "disk of the data directory is full" in r.text, r.text
        for _ in range(2):
            code, took = grpc_export(server, trace_request(20))
            assert code == grpc.StatusCode.UNAVAILABLE
            assert took < PROMPT_S, f"an UNAVAILABLE took {took:.1f}s"

        assert grpc_health(server, "NOT_SERVING") == "NOT_SERVING"
        # A maintenance pass (every 5 s) seals the emptied segment, which fits: the disk is
        # still full, and must still be reported so.
        time.sleep(6)
        health = client.get(f"{server.url}/health").json()
        assert health["status"] == "disk_full", health
        assert "No space left" in health["store"]["diskFull"], health
        r = client.get(f"{server.url}/ready")
        assert r.status_code == 503
        assert "full" in r.json()["reason"], r.json()
        # Queries still answer; SQL, which needs room for a copy, says why it cannot.
        r = client.get(f"{server.url}/api/traces/{acked[0].key}")
        assert r.status_code == 200, r.text
        r = client.post(f"{server.url}/api/query", json={"query": "SELECT count(*) FROM spans"})
        assert r.status_code == 503, r.text
        assert "disk" in r.json()["error"]["message"], r.text

        # Space freed: back to normal by itself (maintenance retries sealing every 5 s).
        os.unlink(filler)
        deadline = time.monotonic() + 30
        while client.get(f"{server.url}/ready").status_code != 200:
            assert time.monotonic() < deadline, client.get(f"{server.url}/health").json()
            time.sleep(0.2)
        assert client.get(f"{server.url}/health").json()["status"] == "ok"
        assert grpc_health(server, "SERVING") == "SERVING"
        sent = trace_request(20)
        r, _ = post(client, server, sent)
        assert r.status_code == 200, r.text
        acked.append(sent)
        code, _ = grpc_export(server, sent := trace_request(20))
        assert code == grpc.StatusCode.OK
        acked.append(sent)

        def stored(trace_id: str) -> set[str]:
            r = client.get(f"{server.url}/api/traces/{trace_id}")
            assert r.status_code == 200, r.text
            return {s["spanId"] for s in r.json()["spans"]}

        for sent in acked:
            assert stored(sent.key) == sent.items

    # And after a restart too: nothing acknowledged was lost on the way.
    assert server.stop() == 0
    server.start()
    with httpx.Client(timeout=60) as client:
        for sent in acked:
            r = client.get(f"{server.url}/api/traces/{sent.key}")
            assert r.status_code == 200, r.text
            assert {s["spanId"] for s in r.json()["spans"]} == sent.items
    assert server.stop() == 0
