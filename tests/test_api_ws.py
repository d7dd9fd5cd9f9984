"""The live feed ``GET /api/ws`` (SPEC §3, §5 "Live"), over real sockets against real servers.

Messages after commit, per tenant, filtered by signal and service; auth by header or by the
browser subprotocol; Origin checks; client errors; and the slow consumer, which is closed
with 1013 while ingest and the other subscribers go on.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from otterscope.live.hub import LiveHub
from otterscope.live.messages import MAX_BYTES, Item, pack
from otterscope.otlp.rows import Batch
from otterscope.otlp.schema import LOGS
from tests.conftest import RunningServer, start_server

T1 = "t1-" + secrets.token_hex(12)
T2 = "t2-" + secrets.token_hex(12)
INGEST_ONLY = "ingest-" + secrets.token_hex(12)
APP_ORIGIN = "http://app.example"
Message = dict[str, Any]


# -- servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def anon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("ws-anon"))
    yield running
    if running.proc is not None:
        running.kill()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = {
        "auth": {
            "tokens": [
                {"token": T1, "tenant": "t1", "scopes": ["ingest", "read"]},
                {"token": T2, "tenant": "t2", "scopes": ["ingest", "read"]},
                {"token": INGEST_ONLY, "tenant": "t1", "scopes": ["ingest"]},
            ]
        },
        "cors": {"origins": [APP_ORIGIN]},
    }
    running = start_server(tmp_path_factory.mktemp("ws-secured"), config)
    yield running
    if running.proc is not None:
        running.kill()


# -- helpers -----------------------------------------------------------------------------------


def ws_url(server: RunningServer, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.http_port}/api/ws{query}"


def open_ws(server: RunningServer, token: str | None = None, **kwargs: Any) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return connect(
        ws_url(server), additional_headers=headers, max_size=None, open_timeout=10, **kwargs
    )


def bearer_protocol(token: str) -> str:
    return "otterscope.bearer." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def recv(ws: ClientConnection, timeout: float = 10.0) -> Message:
    doc: Message = orjson.loads(ws.recv(timeout=timeout))
    return doc


def subscribe(ws: ClientConnection, **filt: Any) -> Message:
    """Send a subscribe and wait for its reply: from then on only the new filter applies."""
    ws.send(orjson.dumps({"type": "subscribe", **filt}).decode())
    while True:
        msg = recv(ws)
        if msg["type"] in ("subscribed", "error"):
            return msg


def collect_until(
    ws: ClientConnection, done: Callable[[Message], bool], timeout: float = 15.0
) -> list[Message]:
    """Every message up to and including the first for which ``done`` is true."""
    deadline = time.monotonic() + timeout
    seen: list[Message] = []
    while True:
        msg = recv(ws, max(0.1, deadline - time.monotonic()))
        seen.append(msg)
        if done(msg):
            return seen


def spans_in(msg: Message) -> list[Message]:
    return list(msg["details"]["spans"]) if msg["type"] == "spanAdded" else []


def has_span(trace_id: str) -> Callable[[Message], bool]:
    return lambda msg: any(s["traceId"] == trace_id for s in spans_in(msg))


def resource(service: str) -> dict[str, Any]:
    return {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}


def span_body(service: str, trace_id: str, spans: int = 1, blob: str = "") -> bytes:
    now = time.time_ns()
    attrs = [{"key": "blob", "value": {"stringValue": blob}}] if blob else []
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": resource(service),
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": trace_id,
                                    "spanId": secrets.token_hex(8),
                                    "name": f"op-{i}",
                                    "startTimeUnixNano": str(now - 1000),
                                    "endTimeUnixNano": str(now),
                                    "attributes": attrs,
                                }
                                for i in range(spans)
                            ]
                        }
                    ],
                }
            ]
        }
    )


def log_body(service: str, text: str, trace_id: str = "") -> bytes:
    record: dict[str, Any] = {
        "timeUnixNano": str(time.time_ns()),
        "severityNumber": 17,
        "severityText": "ERROR",
        "body": {"stringValue": text},
        "attributes": [{"key": "order.id", "value": {"intValue": "1234"}}],
    }
    if trace_id:
        record["traceId"] = trace_id
    return orjson.dumps(
        {"resourceLogs": [{"resource": resource(service), "scopeLogs": [{"logRecords": [record]}]}]}
    )


def metric_body(service: str, name: str, points: int) -> bytes:
    now = time.time_ns()
    return orjson.dumps(
        {
            "resourceMetrics": [
                {
                    "resource": resource(service),
                    "scopeMetrics": [
                        {
                            "metrics": [
                                {
                                    "name": name,
                                    "sum": {
                                        "aggregationTemporality": 2,
                                        "isMonotonic": True,
                                        "dataPoints": [
                                            {
                                                "asInt": str(i),
                                                "timeUnixNano": str(now + i),
                                                "attributes": [
                                                    {"key": "n", "value": {"intValue": str(i)}}
                                                ],
                                            }
                                            for i in range(points)
                                        ],
                                    },
                                },
                                {
                                    "name": name + ".gauge",
                                    "gauge": {
                                        "dataPoints": [{"asDouble": 1.5, "timeUnixNano": now}]
                                    },
                                },
                            ]
                        }
                    ],
                }
            ]
        }
    )


def post(
    server: RunningServer, signal: str, body: bytes, token: str | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    r = httpx.post(f"{server.url}/v1/{signal}", content=body, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r


def new_trace_id() -> str:
    return uuid.uuid4().hex


# -- messages ----------------------------------------------------------------------------------


def test_span_from_the_sdk_arrives_as_span_added(anon: RunningServer) -> None:
    service = f"sdk-{uuid.uuid4().hex[:8]}"
    with open_ws(anon) as ws:
        assert subscribe(ws)["type"] == "subscribed"
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{anon.url}/v1/traces"))
        )
        with provider.get_tracer("ws-test").start_as_current_span(
            "GET /cart", kind=SpanKind.SERVER, attributes={"user.id": 42}
        ) as span:
            ctx = span.get_span_context()
        provider.shutdown()
        trace_id, span_id = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
        msg = collect_until(ws, has_span(trace_id))[-1]
    assert set(msg) == {"type", "details"}
    assert set(msg["details"]) == {"newSpans", "spans"}
    assert [trace_id, span_id] in msg["details"]["newSpans"]
    assert len(msg["details"]["newSpans"]) == len(msg["details"]["spans"])
    live = next(s for s in msg["details"]["spans"] if s["spanId"] == span_id)
    assert live["service"] == service
    assert live["name"] == "GET /cart"
    assert live["kind"] == "SPAN_KIND_SERVER"
    assert live["attributes"] == {"user.id": 42}
    # The very shape the query API answers.
    stored = httpx.get(f"{anon.url}/api/traces/{trace_id}").json()["spans"]
    assert live == next(s for s in stored if s["spanId"] == span_id)


def test_log_added(anon: RunningServer) -> None:
    service = f"logs-{uuid.uuid4().hex[:8]}"
    trace_id = new_trace_id()
    with open_ws(anon) as ws:
        subscribe(ws)
        post(anon, "logs", log_body(service, "payment failed", trace_id))
        msgs = collect_until(
            ws,
            lambda m: (
                m["type"] == "logAdded"
                and any(r["service"] == service for r in m["details"]["newLogs"])
            ),
        )
    record = next(r for r in msgs[-1]["details"]["newLogs"] if r["service"] == service)
    assert set(msgs[-1]["details"]) == {"newLogs"}
    assert record["body"] == "payment failed"
    assert record["severityNumber"] == 17
    assert record["severityText"] == "ERROR"
    assert record["traceId"] == trace_id
    assert record["attributes"] == {"order.id": 1234}
    assert record["timeUnixNano"].isdigit()


def test_metric_added(anon: RunningServer) -> None:
    service = f"metrics-{uuid.uuid4().hex[:8]}"
    with open_ws(anon) as ws:
        subscribe(ws)
        post(anon, "metrics", metric_body(service, "app.requests", 3))
        msgs = collect_until(
            ws,
            lambda m: (
                m["type"] == "metricAdded"
                and any(e["service"] == service for e in m["details"]["newMetrics"])
            ),
        )
    entries = [e for e in msgs[-1]["details"]["newMetrics"] if e["service"] == service]
    for entry in entries:  # the newest point's time
        assert abs(int(entry.pop("timeUnixNano")) - time.time_ns()) < 60 * 10**9
    assert sorted(entries, key=lambda e: e["name"]) == [
        {"name": "app.requests", "service": service, "type": "sum", "points": 3},
        {"name": "app.requests.gauge", "service": service, "type": "gauge", "points": 1},
    ]


def test_large_commit_is_split_into_several_messages(anon: RunningServer) -> None:
    service = f"big-{uuid.uuid4().hex[:8]}"
    trace_id = new_trace_id()
    with open_ws(anon) as ws:
        subscribe(ws, service=service)
        post(anon, "traces", span_body(service, trace_id, spans=2500))
        got: list[list[str]] = []
        while sum(len(g) for g in got) < 2500:
            msg = recv(ws)
            assert msg["type"] == "spanAdded"
            got.append(msg["details"]["newSpans"])
    assert [len(g) for g in got] == [1000, 1000, 500]
    assert {pair[0] for g in got for pair in g} == {trace_id}
    assert len({pair[1] for g in got for pair in g}) == 2500


# -- subscribe ---------------------------------------------------------------------------------


def test_subscribe_by_signal(anon: RunningServer) -> None:
    service = f"sig-{uuid.uuid4().hex[:8]}"
    with open_ws(anon) as ws:
        reply = subscribe(ws, signals=["logs"])
        assert reply == {"type": "subscribed", "details": {"signals": ["logs"], "service": None}}
        post(anon, "traces", span_body(service, new_trace_id()))
        post(anon, "metrics", metric_body(service, "ignored", 1))
        post(anon, "logs", log_body(service, "only me"))
        msgs = collect_until(
            ws, lambda m: any(r["service"] == service for r in m["details"]["newLogs"])
        )
    assert {m["type"] for m in msgs} == {"logAdded"}


def test_subscribe_by_service(anon: RunningServer) -> None:
    wanted = f"svc-a-{uuid.uuid4().hex[:8]}"
    other = f"svc-b-{uuid.uuid4().hex[:8]}"
    with open_ws(anon) as ws:
        reply = subscribe(ws, signals=["traces", "logs"], service=wanted)
        assert reply["details"] == {"signals": ["traces", "logs"], "service": wanted}
        other_trace, wanted_trace = new_trace_id(), new_trace_id()
        post(anon, "traces", span_body(other, other_trace))
        post(anon, "logs", log_body(other, "not for you"))
        post(anon, "traces", span_body(wanted, wanted_trace))
        msgs = collect_until(ws, has_span(wanted_trace))
        # Back to everything: the other service shows up again.
        subscribe(ws)
        again = new_trace_id()
        post(anon, "traces", span_body(other, again))
        collect_until(ws, has_span(again))
    assert len(msgs) == 1, msgs
    assert {s["service"] for s in spans_in(msgs[0])} == {wanted}


def test_bad_client_messages_get_an_error_and_the_connection_stays(
    anon: RunningServer,
) -> None:
    with open_ws(anon) as ws:
        for bad in (
            "not json",
            "[1, 2]",
            '{"type": "unsubscribe"}',
            '{"type": "subscribe", "signals": ["profiles"]}',
            '{"type": "subscribe", "signals": []}',
            '{"type": "subscribe", "service": 3}',
            '{"type": "subscribe", "sevice": "typo"}',
        ):
            ws.send(bad)
            msg = recv(ws)
            assert msg["type"] == "error", (bad, msg)
            assert set(msg["details"]) == {"message"}
            assert msg["details"]["message"]
        ws.send(b'{"type": "subscribe"}')  # a binary frame
        assert recv(ws)["type"] == "error"
        assert subscribe(ws, signals=["metrics"])["type"] == "subscribed"


# -- auth, tenants, origins --------------------------------------------------------------------


def refused(server: RunningServer, **kwargs: Any) -> tuple[int, Any]:
    token = kwargs.pop("token", None)
    query = kwargs.pop("query", "")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(server, query), additional_headers=headers, open_timeout=10, **kwargs)
    response = info.value.response
    body = orjson.loads(response.body) if response.body else None
    return response.status_code, body


def test_auth_by_header(secured: RunningServer) -> None:
    with open_ws(secured, T1) as ws:
        assert ws.subprotocol is None
        assert subscribe(ws)["type"] == "subscribed"


def test_auth_by_subprotocol_is_echoed(secured: RunningServer) -> None:
    protocol = bearer_protocol(T1)
    with open_ws(secured, subprotocols=[protocol]) as ws:
        assert ws.subprotocol == protocol
        assert subscribe(ws)["type"] == "subscribed"
    # A browser on an allowed origin, with another subprotocol offered too.
    with open_ws(secured, subprotocols=["other", protocol], origin=APP_ORIGIN) as ws:
        assert ws.subprotocol == protocol


def test_refused_without_a_valid_token(secured: RunningServer) -> None:
    status, body = refused(secured)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, body = refused(secured, token="nope")
    assert status == 401
    status, _ = refused(secured, subprotocols=[bearer_protocol("nope")])
    assert status == 401
    status, _ = refused(secured, subprotocols=["otterscope.bearer.!!!"])
    assert status == 401
    status, body = refused(secured, query=f"?token={T1}")
    assert status == 400 and "URL" in body["error"]["message"]


def test_refused_without_read_scope(secured: RunningServer) -> None:
    status, body = refused(secured, token=INGEST_ONLY)
    assert status == 403
    assert "read" in body["error"]["message"]
    status, _ = refused(secured, subprotocols=[bearer_protocol(INGEST_ONLY)])
    assert status == 403


def test_foreign_origin_refused(secured: RunningServer) -> None:
    status, _ = refused(secured, origin="http://evil.example", subprotocols=[bearer_protocol(T1)])
    assert status == 403


def test_tenants_only_see_their_own_rows(secured: RunningServer) -> None:
    svc1 = f"t1-svc-{uuid.uuid4().hex[:8]}"
    svc2 = f"t2-svc-{uuid.uuid4().hex[:8]}"
    with open_ws(secured, T1) as ws1, open_ws(secured, T2) as ws2:
        subscribe(ws1)
        subscribe(ws2)
        t2_trace, t1_trace, t2_marker = new_trace_id(), new_trace_id(), new_trace_id()
        post(secured, "traces", span_body(svc2, t2_trace), T2)
        post(secured, "logs", log_body(svc2, "t2 secret"), T2)
        post(secured, "traces", span_body(svc1, t1_trace), T1)
        post(secured, "traces", span_body(svc2, t2_marker), T2)
        seen1 = collect_until(ws1, has_span(t1_trace))
        seen2 = collect_until(ws2, has_span(t2_marker))
    text1, text2 = orjson.dumps(seen1).decode(), orjson.dumps(seen2).decode()
    assert svc2 not in text1 and "t2 secret" not in text1
    assert svc1 not in text2
    assert any(has_span(t2_trace)(m) for m in seen2)
    assert "t2 secret" in text2


def test_anonymous_mode_echoes_the_subprotocol(anon: RunningServer) -> None:
    protocol = bearer_protocol("anything")
    with open_ws(anon, subprotocols=[protocol]) as ws:
        assert ws.subprotocol == protocol


# -- slow consumers and shutdown ---------------------------------------------------------------


def _raw_subscriber(server: RunningServer) -> socket.socket:
    """A client that completes the handshake and then never reads (tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.http_port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1:{server.http_port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, "connection closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _close_frame(sock: socket.socket, timeout: float = 60.0) -> tuple[int, str]:
    """Read server frames (unmasked, uncompressed) until the close frame."""
    sock.settimeout(timeout)
    buf = b""

    def need(n: int) -> bytes:
        nonlocal buf
        while len(buf) < n:
            chunk = sock.recv(1 << 20)
            assert chunk, "connection ended without a close frame"
            buf += chunk
        out, buf = buf[:n], buf[n:]
        return out

    while True:
        b0, b1 = need(2)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", need(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", need(8))
        payload = need(length)
        if b0 & 0x0F == 0x8:
            return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


def test_slow_consumer_is_closed_with_1013(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start_server(tmp_path_factory.mktemp("ws-slow"), {"live": {"buffer_messages": 8}})
    try:
        slow = _raw_subscriber(server)
        service = f"slow-{uuid.uuid4().hex[:8]}"
        commits, per_commit = 40, 200
        healthy_ids: set[str] = set()
        with open_ws(server, compression=None) as healthy, ThreadPoolExecutor(1) as pool:
            subscribe(healthy, service=service)

            def read_healthy() -> None:
                while len(healthy_ids) < commits * per_commit:
                    for pair in recv(healthy, 30)["details"]["newSpans"]:
                        healthy_ids.add(pair[1])

            reader = pool.submit(read_healthy)
            blob = "x" * 4000  # ~4 kB per span: each commit is a message of ~800 kB
            latencies = []
            for _ in range(commits):
                body = span_body(service, new_trace_id(), spans=per_commit, blob=blob)
                started = time.monotonic()
                post(server, "traces", body)
                latencies.append(time.monotonic() - started)
            reader.result(60)  # the healthy subscriber got every span, and was not closed
            code, reason = _close_frame(slow)
        slow.close()
        assert code == 1013, reason
        assert reason.startswith("too slow"), reason
        assert len(healthy_ids) == commits * per_commit
        # Ingest never waited on the feed.
        assert max(latencies) < 5.0, latencies
        assert server.stop() == 0
    finally:
        if server.proc is not None:
            server.kill()


def test_shutdown_closes_clients_with_1001(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start_server(tmp_path_factory.mktemp("ws-shutdown"))
    try:
        with open_ws(server) as ws:
            subscribe(ws)
            with ThreadPoolExecutor(1) as pool:
                stopped = pool.submit(server.stop)
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        ws.recv(timeout=20)
                assert stopped.result(30) == 0
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1001
    finally:
        if server.proc is not None:
            server.kill()


# -- the hub on its own ------------------------------------------------------------------------


def _log_batch(tenant: str, n: int, service: str = "svc") -> Batch:
    rows = [
        {"tenant": tenant, "time_unix_nano": i, "body": '"x"', "service_name": service}
        for i in range(n)
    ]
    return Batch("logs", pa.Table.from_pylist(rows, schema=LOGS), n, 0, "", 0, 0)


def test_hub_that_falls_behind_closes_its_subscribers_with_1013() -> None:
    async def scenario() -> tuple[int | None, str, list[Message]]:
        loop = asyncio.get_running_loop()
        hub = LiveHub(buffer_messages=4, max_pending_rows=5)
        # Subscribe before the hub thread runs, so that commits pile up past the bound.
        hub._loop = loop
        sub = hub.subscribe("default")
        assert sub is not None
        for _ in range(3):
            hub.on_commit(1, [_log_batch("default", 3)], 0.0)
        hub.start(loop)
        await asyncio.wait_for(sub.closed.wait(), 10)
        late = hub.subscribe("default")
        assert late is not None
        hub.on_commit(2, [_log_batch("other", 2, "other"), _log_batch("default", 2, "late")], 0.0)
        sent: list[Message] = []
        while not any(r["service"] == "late" for m in sent for r in m["details"]["newLogs"]):
            await asyncio.wait_for(late.wake.wait(), 10)
            late.wake.clear()
            sent += [orjson.loads(m) for m in late.outbox]
            late.outbox.clear()
        await hub.stop()
        assert late.close_code == 1001
        return sub.close_code, sub.close_reason, sent

    code, reason, sent = asyncio.run(scenario())
    assert code == 1013
    assert reason.startswith("missed data")
    # A later subscriber is served again, and only with its own tenant's rows.
    services = [r["service"] for m in sent for r in m["details"]["newLogs"]]
    assert {m["type"] for m in sent} == {"logAdded"}
    assert services.count("late") == 2
    assert "other" not in services


def test_messages_stay_under_the_size_cap() -> None:
    items = [Item("svc", b'"' + b"x" * 300_000 + b'"', b'["t","s"]') for _ in range(7)]
    packed = pack("traces", items)
    assert len(packed) > 1
    assert all(len(m.encode()) <= MAX_BYTES for m in packed)
    assert sum(len(orjson.loads(m)["details"]["spans"]) for m in packed) == 7
