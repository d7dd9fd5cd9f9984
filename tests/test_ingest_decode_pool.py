"""Huge requests decode off the event loop: the server keeps answering everyone else.

Over real sockets: /health is polled while a 16 MiB OTLP/JSON body with 300,000 attributes
decodes (several seconds of work; before, the event loop did it and /health waited for it).
Beside it, the worker processes' answers are checked against decoding in place.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otterscope.errors import BadRequest
from otterscope.ingest.decode import INLINE_BYTES, DecodePool, decode
from otterscope.otlp.anyvalue import Limits
from tests.conftest import RunningServer

MakeServer = Callable[..., RunningServer]
TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LIMITS = Limits(128, 4096)
MiB = 1024 * 1024


def big_json(limit: int, service: str) -> tuple[bytes, list[str]]:
    """OTLP/JSON traces: spans of 100 attributes each, as many as fit under ``limit``."""
    attrs = ",".join(
        f'{{"key":"attribute.{i:03d}","value":{{"stringValue":"value {i:03d}"}}}}'
        for i in range(100)
    )
    now = time.time_ns()
    spans: list[str] = []
    trace_ids: list[str] = []
    size = 300
    while True:
        trace_id = os.urandom(16).hex()
        span = (
            f'{{"traceId":"{trace_id}","spanId":"{os.urandom(8).hex()}","name":"s",'
            f'"startTimeUnixNano":"{now}","endTimeUnixNano":"{now + 1000}",'
            f'"attributes":[{attrs}]}}'
        )
        if size + len(span) + 1 > limit:
            break
        spans.append(span)
        trace_ids.append(trace_id)
        size += len(span) + 1
    body = (
        '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":'
        f'{{"stringValue":"{service}"}}}}]}},"scopeSpans":[{{"spans":[' + ",".join(spans) + "]}]}]}"
    )
    return body.encode(), trace_ids


def many_resources(n: int, service: str) -> tuple[bytes, list[bytes]]:
    """Protobuf traces: ``n`` resources of one span each."""
    req = ExportTraceServiceRequest()
    now = time.time_ns()
    ids = []
    for i in range(n):
        rs = req.resource_spans.add()
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", service
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = "service.instance.id", f"instance-{i}"
        span = rs.scope_spans.add().spans.add()
        span.trace_id = os.urandom(16)
        span.span_id = os.urandom(8)
        span.name = f"op-{i}"
        span.start_time_unix_nano = now
        span.end_time_unix_nano = now + 1000
        ids.append(span.trace_id)
    return req.SerializeToString(), ids


def test_health_answers_while_a_huge_request_decodes(make_server: MakeServer) -> None:
    server = make_server()
    body, trace_ids = big_json(16 * MiB - 4096, "huge-json")
    outcome: dict[str, object] = {}

    def send() -> None:
        started = time.monotonic()
        r = httpx.post(
            f"{server.url}/v1/traces",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=120,
        )
        outcome["status"], outcome["took"] = r.status_code, time.monotonic() - started

    sender = threading.Thread(target=send)
    latencies: list[float] = []
    with httpx.Client(timeout=30) as client:
        sender.start()
        while sender.is_alive():
            started = time.monotonic()
            assert client.get(f"{server.url}/health").status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.05)
        sender.join()
        assert outcome["status"] == 200
        # The request was still being read and decoded for a good while: /health was asked
        # many times meanwhile, and none of them waited for the decoding.
        assert max(latencies) < 1.0, f"/health took {max(latencies):.2f}s during a decode"
        assert len(latencies) >= 10, (outcome, latencies)
        r = client.get(f"{server.url}/api/traces/{trace_ids[-1]}")
        assert r.status_code == 200, r.text
        assert len(r.json()["spans"][0]["attributes"]) == 100


def test_a_large_grpc_request_goes_through_a_worker_and_is_stored(
    make_server: MakeServer,
) -> None:
    server = make_server()
    body, ids = many_resources(5000, "many-resources")
    assert len(body) > INLINE_BYTES["protobuf"]
    with grpc.insecure_channel(server.grpc_target) as channel:
        export = channel.unary_unary(
            TRACE_EXPORT,
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        response = export(body, timeout=60)
    assert not response.HasField("partial_success")
    with httpx.Client(timeout=30) as client:
        for trace_id in (ids[0], ids[-1]):
            r = client.get(f"{server.url}/api/traces/{trace_id.hex()}")
            assert r.status_code == 200, r.text
            (span,) = r.json()["spans"]
            assert span["resource"]["service.name"] == "many-resources"


def _decode_workers(pid: int) -> list[int]:
    """The server's worker processes (spawned children running multiprocessing)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; whoever adopted it reaps it in its own time


def test_workers_leave_with_a_killed_server(make_server: MakeServer) -> None:
    server = make_server()
    body, _ = many_resources(5000, "killed")
    r = httpx.post(
        f"{server.url}/v1/traces",
        content=body,
        headers={"Content-Type": "application/x-protobuf"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert server.proc is not None
    workers = _decode_workers(server.proc.pid)
    assert workers, "a large body should have started a worker process"
    server.kill()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, f"worker processes {workers} outlived the server"
        time.sleep(0.1)


def test_a_worker_gives_what_decoding_in_place_gives() -> None:
    pool = DecodePool(1, retry_after=1.0)
    try:
        pb, _ = many_resources(4000, "svc")
        js, _ = big_json(200 * 1024, "svc")
        for body, fmt in ((pb, "protobuf"), (js, "json")):
            assert len(body) > INLINE_BYTES[fmt]  # type: ignore[index]
            here = decode("traces", body, fmt, "t1", LIMITS)  # type: ignore[arg-type]
            there = asyncio.run(pool.decode("traces", body, fmt, "t1", LIMITS))  # type: ignore[arg-type]
            assert there.table.equals(here.table)
            assert there.table.schema == here.table.schema
            assert (there.accepted, there.rejected, there.reject_message) == (
                here.accepted,
                here.rejected,
                here.reject_message,
            )
            assert (there.dropped_attributes, there.truncated_attributes) == (
                here.dropped_attributes,
                here.truncated_attributes,
            )
        # Bad input raised in a worker is the same 400 as in place.
        bad = b'{"resourceSpans": [' + b" " * (100 * 1024) + b"}"
        with pytest.raises(BadRequest):
            asyncio.run(pool.decode("traces", bad, "json", "t1", LIMITS))
    finally:
        pool.close()
