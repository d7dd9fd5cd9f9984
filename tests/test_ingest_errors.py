"""Every OTLP answer of SPEC §2, from real requests over HTTP and gRPC.

Each error answer is checked for its status, its headers and its ``google.rpc.Status`` body
in the request's encoding (JSON ``{"code", "message"}`` or protobuf).
"""

from __future__ import annotations

import os
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest
import zstandard
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import RunningServer, start_server

# gRPC codes, as google.rpc.Status carries them.
INVALID_ARGUMENT = 3
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
UNIMPLEMENTED = 12
UNAUTHENTICATED = 16

JSON = {"Content-Type": "application/json"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}
TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"

INGEST_TOKEN = "tok-ingest-" + "a" * 20
READ_TOKEN = "tok-read-" + "b" * 20


@pytest.fixture(scope="module")
def anon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("anon"))
    yield running
    if running.proc is not None:
        running.kill()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Two tokens of tenant t1: one may ingest (and read), the other may only read."""
    running = start_server(
        tmp_path_factory.mktemp("secured"),
        {
            "auth": {
                "tokens": [
                    {"token": INGEST_TOKEN, "tenant": "t1", "scopes": ["ingest", "read"]},
                    {"token": READ_TOKEN, "tenant": "t1", "scopes": ["read"]},
                ]
            }
        },
    )
    running.token = INGEST_TOKEN
    yield running
    if running.proc is not None:
        running.kill()


SMALL_BODY_LIMIT = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def small_body(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("small"), {"ingest": {"max_body_bytes": SMALL_BODY_LIMIT}}
    )
    yield running
    if running.proc is not None:
        running.kill()


TIGHT = 256 * 1024


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A memory budget no bigger than one request body."""
    running = start_server(
        tmp_path_factory.mktemp("tight"),
        {"ingest": {"memory_budget_bytes": TIGHT, "max_body_bytes": TIGHT, "retry_after": "2s"}},
    )
    yield running
    if running.proc is not None:
        running.kill()


# -- helpers -------------------------------------------------------------------------------


def post(
    server: RunningServer,
    body: bytes,
    headers: dict[str, str],
    signal: str = "traces",
    timeout: float = 30,
) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/{signal}", content=body, headers=headers, timeout=timeout)


def rpc_status(response: httpx.Response, fmt: str) -> Status:
    """The ``google.rpc.Status`` body, checked to be in the request's encoding."""
    status = Status()
    if fmt == "json":
        assert response.headers["content-type"].startswith("application/json"), response.headers
        doc = response.json()
        assert set(doc) == {"code", "message"}, doc
        status.code = doc["code"]
        status.message = doc["message"]
    else:
        assert response.headers["content-type"] == "application/x-protobuf", response.headers
        status.ParseFromString(response.content)
    return status


def span_json(trace_id: str, span_id: str, name: str = "s", **extra: Any) -> dict[str, Any]:
    now = time.time_ns()
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "startTimeUnixNano": str(now - 1000),
        "endTimeUnixNano": str(now),
        **extra,
    }


def traces_json(spans: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "err"}}]
                    },
                    "scopeSpans": [{"spans": spans}],
                }
            ]
        }
    )


def one_span_json() -> bytes:
    return traces_json([span_json(secrets.token_hex(16), secrets.token_hex(8))])


def one_span_proto() -> bytes:
    return many_spans_proto(1)


def many_spans_proto(n: int) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key = "service.name"
    kv.value.string_value = "err"
    ss = rs.scope_spans.add()
    trace_id = os.urandom(16)
    now = time.time_ns()
    for i in range(n):
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = os.urandom(8)
        span.name = f"s{i % 10}"
        span.start_time_unix_nano = now - 1000
        span.end_time_unix_nano = now
    return req.SerializeToString()


def proc_status(server: RunningServer) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of the server process, in bytes."""
    assert server.proc is not None
    out = {}
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def grpc_export(
    server: RunningServer,
    body: bytes,
    metadata: tuple[tuple[str, str], ...] = (),
) -> ExportTraceServiceResponse:
    with grpc.insecure_channel(server.grpc_target) as channel:
        export = channel.unary_unary(
            TRACE_EXPORT,
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        response: ExportTraceServiceResponse = export(body, metadata=metadata, timeout=30)
        return response


def grpc_error(
    server: RunningServer, body: bytes, metadata: tuple[tuple[str, str], ...] = ()
) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        grpc_export(server, body, metadata)
    return info.value


def status_details(error: grpc.RpcError) -> Status:
    trailers = dict(error.trailing_metadata() or ())
    assert "grpc-status-details-bin" in trailers, trailers
    status = Status()
    status.ParseFromString(trailers["grpc-status-details-bin"])
    return status


# -- 200 controls --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
def test_ok_control(anon: RunningServer, fmt: str) -> None:
    body, headers = (one_span_json(), JSON) if fmt == "json" else (one_span_proto(), PROTOBUF)
    r = post(anon, body, headers)
    assert r.status_code == 200, r.content


# -- 400 -----------------------------------------------------------------------------------


def test_400_bad_protobuf(anon: RunningServer) -> None:
    r = post(anon, b"\xff\xff\xff\xffnot a protobuf", PROTOBUF)
    assert r.status_code == 400
    status = rpc_status(r, "protobuf")
    assert status.code == INVALID_ARGUMENT
    assert "protobuf" in status.message
    assert "ExportTraceServiceRequest" in status.message


@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
def test_400_bad_json(anon: RunningServer, signal: str) -> None:
    r = post(anon, b'{"resourceSpans": [', JSON, signal=signal)
    assert r.status_code == 400
    status = rpc_status(r, "json")
    assert status.code == INVALID_ARGUMENT
    assert "not valid JSON" in status.message


def test_400_json_of_the_wrong_shape(anon: RunningServer) -> None:
    r = post(anon, b'{"resourceSpans": {"not": "a list"}}', JSON)
    assert r.status_code == 400
    status = rpc_status(r, "json")
    assert status.code == INVALID_ARGUMENT
    assert "resourceSpans" in status.message
    r = post(anon, b"[1, 2]", JSON)
    assert r.status_code == 400
    assert "JSON object" in rpc_status(r, "json").message


def test_400_invalid_hex_id(anon: RunningServer) -> None:
    body = traces_json([span_json("zz" * 16, secrets.token_hex(8), "bad-hex")])
    r = post(anon, body, JSON)
    assert r.status_code == 400
    status = rpc_status(r, "json")
    assert status.code == INVALID_ARGUMENT
    assert "traceId" in status.message
    assert "hex" in status.message
    body = traces_json([span_json(secrets.token_hex(16), "123", "odd-hex")])
    r = post(anon, body, JSON)
    assert r.status_code == 400
    assert "spanId" in rpc_status(r, "json").message


def test_400_bad_compressed_data(anon: RunningServer) -> None:
    for encoding in ("gzip", "deflate", "zstd"):
        r = post(anon, b"this is not compressed at all", {**PROTOBUF, "Content-Encoding": encoding})
        assert r.status_code == 400, (encoding, r.content)
        status = rpc_status(r, "protobuf")
        assert status.code == INVALID_ARGUMENT
        assert "compressed" in status.message or "zstd" in status.message
    truncated = zlib.compress(one_span_proto())[:-6]
    r = post(anon, truncated, {**PROTOBUF, "Content-Encoding": "deflate"})
    assert r.status_code == 400
    assert "truncated" in rpc_status(r, "protobuf").message


# -- 401 / 403 -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
@pytest.mark.parametrize("token", [None, "not-a-known-token"])
def test_401_missing_or_unknown_token(secured: RunningServer, fmt: str, token: str | None) -> None:
    body, headers = (one_span_json(), JSON) if fmt == "json" else (one_span_proto(), PROTOBUF)
    if token:
        headers = {**headers, "Authorization": f"Bearer {token}"}
    r = post(secured, body, headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].lower().startswith("bearer")
    status = rpc_status(r, fmt)
    assert status.code == UNAUTHENTICATED
    assert "token" in status.message
    if token:
        assert token not in status.message  # tokens are never echoed


def test_ingest_token_is_accepted(secured: RunningServer) -> None:
    r = post(secured, one_span_json(), {**JSON, **secured.headers()})
    assert r.status_code == 200, r.text
    assert r.json() == {}


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
def test_403_token_without_ingest_scope(secured: RunningServer, fmt: str) -> None:
    body, headers = (one_span_json(), JSON) if fmt == "json" else (one_span_proto(), PROTOBUF)
    r = post(secured, body, {**headers, "Authorization": f"Bearer {READ_TOKEN}"})
    assert r.status_code == 403
    assert "www-authenticate" not in r.headers
    status = rpc_status(r, fmt)
    assert status.code == PERMISSION_DENIED
    assert "ingest" in status.message


# -- 405 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("signal", ["metrics", "logs"])
@pytest.mark.parametrize("method", ["PUT", "DELETE", "GET", "PATCH"])
@pytest.mark.parametrize("fmt", ["json", "protobuf"])
def test_405_with_allow(anon: RunningServer, signal: str, method: str, fmt: str) -> None:
    headers = JSON if fmt == "json" else PROTOBUF
    r = httpx.request(method, f"{anon.url}/v1/{signal}", headers=headers, content=b"{}")
    assert r.status_code == 405
    allowed = {m.strip() for m in r.headers["allow"].split(",")}
    assert "POST" in allowed
    assert method not in allowed
    status = rpc_status(r, fmt)
    assert status.code == UNIMPLEMENTED
    assert method in status.message


# -- 413 -----------------------------------------------------------------------------------


def test_413_plain_body_over_the_limit(small_body: RunningServer) -> None:
    body = traces_json(
        [
            span_json(secrets.token_hex(16), secrets.token_hex(8), "x" * 1000)
            for _ in range(SMALL_BODY_LIMIT // 1000 + 100)
        ]
    )
    assert len(body) > SMALL_BODY_LIMIT
    r = post(small_body, body, JSON)
    assert r.status_code == 413
    status = rpc_status(r, "json")
    assert status.code == RESOURCE_EXHAUSTED
    assert str(SMALL_BODY_LIMIT) in status.message
    # A body just under the limit is fine.
    r = post(small_body, one_span_json(), JSON)
    assert r.status_code == 200


GIB = 1 << 30
ZEROS_1MIB = bytes(1 << 20)
# zlib.crc32 of 1 GiB of zero bytes (computed once: it costs a second to compute).
CRC32_1GIB_ZEROS = 0x5B64C2B0


def gzip_bomb() -> bytes:
    """A valid gzip stream of 1 GiB of zeros, about 1 MB, built without ever holding 1 GiB.

    After a full flush a deflate stream restarts without history, so the compressed block
    for 1 MiB of zeros can simply be repeated 1024 times.
    """
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = raw.compress(ZEROS_1MIB) + raw.flush(zlib.Z_FULL_FLUSH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    final_empty_block = b"\x03\x00"
    trailer = struct.pack("<II", CRC32_1GIB_ZEROS, GIB & 0xFFFFFFFF)
    return header + block * (GIB // len(ZEROS_1MIB)) + final_empty_block + trailer


def zstd_bomb() -> bytes:
    cobj = zstandard.ZstdCompressor(level=1).compressobj()
    parts = [cobj.compress(ZEROS_1MIB) for _ in range(GIB // len(ZEROS_1MIB))]
    parts.append(cobj.flush())
    return b"".join(parts)


def test_gzip_bomb_helper_is_a_real_gzip_stream() -> None:
    bomb = gzip_bomb()
    assert len(bomb) < 2 * 1024 * 1024
    d = zlib.decompressobj(31)
    first = d.decompress(bomb, 4 * 1024 * 1024)
    assert first == bytes(4 * 1024 * 1024)  # really zeros, and far more of them than it weighs


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_413_decompression_bomb_costs_no_memory(small_body: RunningServer, encoding: str) -> None:
    bomb = gzip_bomb() if encoding == "gzip" else zstd_bomb()
    assert len(bomb) < SMALL_BODY_LIMIT  # the compressed size alone is within the limit
    before = proc_status(small_body)
    started = time.monotonic()
    r = post(small_body, bomb, {**PROTOBUF, "Content-Encoding": encoding})
    elapsed = time.monotonic() - started
    assert r.status_code == 413, r.content
    status = rpc_status(r, "protobuf")
    assert status.code == RESOURCE_EXHAUSTED
    assert "after decompression" in status.message
    assert elapsed < 10, elapsed  # stopped at the limit, not after expanding 1 GiB
    after = proc_status(small_body)
    # Peak resident memory grew by far less than the bomb's expanded size.
    assert after["VmHWM"] - before["VmRSS"] < 128 * 1024 * 1024, (before, after)
    assert after["VmHWM"] < GIB // 4, after
    # And the server is still fine.
    assert post(small_body, one_span_json(), JSON).status_code == 200


# -- 415 -----------------------------------------------------------------------------------


def test_415_unsupported_content_type(anon: RunningServer) -> None:
    r = post(anon, b"hello", {"Content-Type": "text/plain"})
    assert r.status_code == 415
    status = rpc_status(r, "json")  # not protobuf: answered in JSON, readable on a terminal
    assert status.code == INVALID_ARGUMENT
    assert "text/plain" in status.message
    assert "application/x-protobuf" in status.message
    assert "application/json" in status.message


def test_415_missing_content_type(anon: RunningServer) -> None:
    r = httpx.post(f"{anon.url}/v1/logs", content=b"\x0a\x00")
    assert r.status_code == 415
    status = rpc_status(r, "json")
    assert "application/x-protobuf" in status.message


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
def test_415_unsupported_content_encoding(anon: RunningServer, fmt: str) -> None:
    body, headers = (one_span_json(), JSON) if fmt == "json" else (one_span_proto(), PROTOBUF)
    r = post(anon, body, {**headers, "Content-Encoding": "br"})
    assert r.status_code == 415
    status = rpc_status(r, fmt)
    assert status.code == INVALID_ARGUMENT
    assert "br" in status.message
    for supported in ("gzip", "deflate", "zstd"):
        assert supported in status.message


# -- 429 -----------------------------------------------------------------------------------


def _budget_request(trace_id: str) -> bytes:
    pad = [{"key": "pad", "value": {"stringValue": "p" * 1400}}]
    return traces_json(
        [span_json(trace_id, secrets.token_hex(8), f"b{i}", attributes=pad) for i in range(100)]
    )


def _queue_bytes(server: RunningServer) -> int:
    return int(httpx.get(f"{server.url}/health").json()["ingest"]["queueBytes"])


def test_429_when_the_memory_budget_is_spent(tight: RunningServer) -> None:
    url = f"{tight.url}/v1/traces"
    # One request alone fits the budget.
    alone = secrets.token_hex(16)
    body = _budget_request(alone)
    assert TIGHT // 2 < len(body) < TIGHT
    r = post(tight, body, JSON)
    assert r.status_code == 200, r.text
    assert _queue_bytes(tight) == 0

    # A slow sender holds part of the budget while the rest of its body is on the way ...
    held = 120_000
    assert held + len(body) > TIGHT
    slow_trace = secrets.token_hex(16)
    slow_body = _budget_request(slow_trace)
    release = threading.Event()

    def slow_chunks() -> Iterator[bytes]:
        yield slow_body[:held]
        release.wait(30)
        yield slow_body[held:]

    trace_ids = [secrets.token_hex(16) for _ in range(8)]
    bodies = [_budget_request(t) for t in trace_ids]
    barrier = threading.Barrier(len(bodies))

    def send(body: bytes) -> httpx.Response:
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            return client.post(url, content=body, headers=JSON)

    with ThreadPoolExecutor(len(bodies) + 1) as pool:
        slow = pool.submit(httpx.post, url, content=slow_chunks(), headers=JSON, timeout=60)
        try:
            deadline = time.monotonic() + 15
            while _queue_bytes(tight) < held:
                assert time.monotonic() < deadline, "the slow request never held its bytes"
                time.sleep(0.02)
            # ... so several large requests sent at once do not fit: 429, retry later.
            responses = list(pool.map(send, bodies))
        finally:
            release.set()
        slow_response = slow.result()

    assert slow_response.status_code == 200, slow_response.text
    assert slow_response.json() == {}
    assert len(httpx.get(f"{tight.url}/api/traces/{slow_trace}").json()["spans"]) == 100
    codes = [r.status_code for r in responses]
    assert codes == [429] * len(bodies), codes
    for r in responses:
        assert r.headers["retry-after"] == "2"
        status = rpc_status(r, "json")
        assert status.code == RESOURCE_EXHAUSTED
        assert "budget" in status.message

    # Nothing refused was stored, and the budget is all given back ...
    for trace_id in trace_ids:
        assert httpx.get(f"{tight.url}/api/traces/{trace_id}").status_code == 404
    assert _queue_bytes(tight) == 0
    # ... so retrying the refused requests, as Retry-After says, succeeds.
    for trace_id, body in zip(trace_ids, bodies, strict=True):
        again = post(tight, body, JSON)
        assert again.status_code == 200, again.text
        assert len(httpx.get(f"{tight.url}/api/traces/{trace_id}").json()["spans"]) == 100


def test_429_storm_acknowledged_requests_are_all_stored(tight: RunningServer) -> None:
    """Many large requests at once: whatever mix of 200 and 429 comes back, every 200 is
    stored whole and nothing else."""
    trace_ids = [secrets.token_hex(16) for _ in range(8)]
    bodies = [_budget_request(t) for t in trace_ids]
    barrier = threading.Barrier(len(bodies))

    def send(body: bytes) -> httpx.Response:
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            return client.post(f"{tight.url}/v1/traces", content=body, headers=JSON)

    with ThreadPoolExecutor(len(bodies)) as pool:
        responses = list(pool.map(send, bodies))
    assert {r.status_code for r in responses} <= {200, 429}, [r.status_code for r in responses]
    for trace_id, r in zip(trace_ids, responses, strict=True):
        got = httpx.get(f"{tight.url}/api/traces/{trace_id}")
        if r.status_code == 200:
            assert r.json() == {}
            assert len(got.json()["spans"]) == 100
        else:
            assert r.headers["retry-after"] == "2"
            assert got.status_code == 404
    assert _queue_bytes(tight) == 0


# -- gRPC ----------------------------------------------------------------------------------


def test_grpc_ok_and_invalid_argument(anon: RunningServer) -> None:
    response = grpc_export(anon, one_span_proto())
    assert not response.HasField("partial_success")
    error = grpc_error(anon, b"\xff\xff\xff\xffgarbage")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "protobuf" in error.details()
    assert status_details(error).code == INVALID_ARGUMENT


def test_grpc_request_larger_than_the_whole_budget(tight: RunningServer) -> None:
    # Within the message size limit, but decoded it needs more than the whole budget:
    # retrying cannot help, so no RetryInfo.
    body = many_spans_proto(2000)
    assert len(body) < TIGHT
    error = grpc_error(tight, body)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = status_details(error)
    assert status.code == RESOURCE_EXHAUSTED
    assert "whole ingest memory budget" in status.message
    assert len(status.details) == 0
    assert _queue_bytes(tight) == 0


def test_grpc_resource_exhausted_with_retry_info(tight: RunningServer) -> None:
    # A slow HTTP sender holds most of the budget ...
    slow_trace = secrets.token_hex(16)
    slow_body = _budget_request(slow_trace)
    held = len(slow_body) - 100
    release = threading.Event()

    def slow_chunks() -> Iterator[bytes]:
        yield slow_body[:held]
        release.wait(30)
        yield slow_body[held:]

    # Decoded, 1000 of these spans take ~190 kB: they fit an empty budget, not what is left.
    body = many_spans_proto(1000)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(
            httpx.post, f"{tight.url}/v1/traces", content=slow_chunks(), headers=JSON, timeout=60
        )
        try:
            deadline = time.monotonic() + 15
            while _queue_bytes(tight) < held:
                assert time.monotonic() < deadline, "the slow request never held its bytes"
                time.sleep(0.02)
            # ... so a gRPC export that would fit an empty budget must wait: RetryInfo.
            error = grpc_error(tight, body)
        finally:
            release.set()
        assert slow.result().status_code == 200
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = status_details(error)
    assert status.code == RESOURCE_EXHAUSTED
    assert "budget" in status.message
    assert len(status.details) == 1
    assert status.details[0].Is(RetryInfo.DESCRIPTOR)
    info = RetryInfo()
    status.details[0].Unpack(info)
    assert info.retry_delay.seconds == 2
    # The budget was given back: the same request now goes through.
    assert _queue_bytes(tight) == 0
    assert not grpc_export(tight, body).HasField("partial_success")


def test_grpc_unauthenticated_and_permission_denied(secured: RunningServer) -> None:
    error = grpc_error(secured, one_span_proto())
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert status_details(error).code == UNAUTHENTICATED
    error = grpc_error(secured, one_span_proto(), (("authorization", "Bearer wrong"),))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    error = grpc_error(secured, one_span_proto(), (("authorization", f"Bearer {READ_TOKEN}"),))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "ingest" in error.details()
    assert status_details(error).code == PERMISSION_DENIED
    response = grpc_export(
        secured, one_span_proto(), (("authorization", f"Bearer {INGEST_TOKEN}"),)
    )
    assert not response.HasField("partial_success")


def test_grpc_health_serving(anon: RunningServer) -> None:
    with grpc.insecure_channel(anon.grpc_target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", TRACE_SERVICE):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
