"""Slow clients are cut off on both ports; a connection cap holds (raw sockets).

One server with short deadlines: headers within 2 s, a body within 3 s, 6 connections.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import RunningServer, free_port
from tests.payloads import new_span_id, new_trace_id, now_ns, span, traces_body

HEADER_S = 2.0
BODY_S = 3.0
MAX_CONNECTIONS = 6
SLACK_S = 1.5  # scheduling on a busy machine


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("slow-clients")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTTERSCOPE_")}
    env.update(
        OTTERSCOPE_SERVER__HEADER_TIMEOUT=f"{HEADER_S}s",
        OTTERSCOPE_SERVER__BODY_TIMEOUT=f"{BODY_S}s",
        OTTERSCOPE_SERVER__MAX_CONNECTIONS=str(MAX_CONNECTIONS),
    )
    running = RunningServer(
        data_dir=base / "data",
        http_port=free_port(),
        grpc_port=free_port(),
        env=env,
        args=[],
        log_path=base / "server.log",
    )
    running.start()
    yield running
    if running.proc is not None:
        running.kill()


def dial(server: RunningServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.http_port), timeout=10)


def trickle(
    sock: socket.socket, data: bytes, every_s: float, limit_s: float
) -> tuple[bytes, float]:
    """Send ``data`` a byte at a time; stop when the server closes. (answer, seconds taken)."""
    start = time.monotonic()
    answer = b""
    sock.settimeout(every_s)
    for i in range(len(data)):
        try:
            sock.sendall(data[i : i + 1])
        except (BrokenPipeError, ConnectionResetError):
            break
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            chunk = None
        except ConnectionResetError:
            break
        if chunk == b"":
            break
        if chunk:
            answer += chunk
        if time.monotonic() - start > limit_s:
            raise AssertionError(f"still open after {limit_s} s, sent {i + 1} of {len(data)}")
    else:
        raise AssertionError("the whole request went through: the test proves nothing")
    return answer, time.monotonic() - start


def wait_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    start = time.monotonic()
    sock.settimeout(limit_s)
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except TimeoutError:
        raise AssertionError(f"still open after {limit_s} s") from None
    except ConnectionResetError:
        pass
    return answer, time.monotonic() - start


def request(path: str, body: bytes = b"", method: str = "GET") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body or method == "POST":
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"X-Padding: " + b"p" * 60 + b"\r\n\r\n" + body


def span_body() -> bytes:
    return json.dumps(
        traces_body("slow", [span(new_trace_id(), new_span_id(), "s", now_ns())])
    ).encode()


def test_headers_sent_byte_by_byte_are_cut_off(slow: RunningServer) -> None:
    with dial(slow) as sock:
        answer, took = trickle(sock, request("/health"), 0.1, HEADER_S + SLACK_S)
    assert took >= HEADER_S - 0.2, took
    assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_a_connection_that_sends_nothing_is_closed(slow: RunningServer) -> None:
    with dial(slow) as sock:
        answer, took = wait_closed(sock, HEADER_S + SLACK_S)
    assert took >= HEADER_S - 0.2, took
    assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_a_trickling_body_is_cut_off_quietly(slow: RunningServer) -> None:
    body = span_body()
    data = request("/v1/traces", body, "POST")
    headers_end = data.index(b"\r\n\r\n") + 4
    with dial(slow) as sock:
        sock.sendall(data[:headers_end])
        # A byte every 0.2 s: never idle long, but the body as a whole is far too slow.
        answer, took = trickle(sock, data[headers_end:], 0.2, BODY_S + SLACK_S)
    assert took >= BODY_S - 0.2, took
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    # The server is fine, and says nothing alarming about it.
    assert httpx.get(f"{slow.url}/ready", timeout=10).status_code == 200
    assert "Traceback" not in slow.log(), slow.log()


def test_clients_within_the_deadlines_are_served(slow: RunningServer) -> None:
    body = span_body()
    data = request("/v1/traces", body, "POST")
    headers_end = data.index(b"\r\n\r\n") + 4
    with dial(slow) as sock:
        # Headers over about 1 s, the body over about 1.5 s: slow, but within both.
        step = 1.0 / headers_end
        for i in range(headers_end):
            sock.sendall(data[i : i + 1])
            time.sleep(step)
        rest = data[headers_end:]
        for part in range(3):
            sock.sendall(rest[part * len(rest) // 3 : (part + 1) * len(rest) // 3])
            time.sleep(0.5)
        sock.settimeout(10)
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        # Keep-alive: idle longer than the header deadline (within the keep-alive 5 s),
        # then a second request on the same connection.
        time.sleep(HEADER_S + 0.5)
        sock.sendall(request("/ready"))
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 "), answer


def test_a_websocket_outlives_both_deadlines(slow: RunningServer) -> None:
    with connect(f"ws://127.0.0.1:{slow.http_port}/api/ws", open_timeout=10) as ws:
        time.sleep(BODY_S + 1)
        ws.send(json.dumps({"type": "subscribe"}))
        deadline = time.monotonic() + 10
        while True:
            msg = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg["type"] in ("subscribed", "error"):
                break
        assert msg["type"] == "subscribed", msg


def test_connections_past_the_cap_are_refused(slow: RunningServer) -> None:
    held = [dial(slow) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.3)  # accepted by the server, not only queued by the kernel
        with dial(slow) as extra:
            answer, _ = wait_closed(extra, 1.0)
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert b"\r\nretry-after: 1\r\n" in answer.lower(), answer
        assert "connection(s) refused" in slow.log(), slow.log()
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert httpx.get(f"{slow.url}/ready", timeout=10).status_code == 200


@pytest.mark.parametrize("sent", [b"", b"PRI * HTTP/2.0\r\n"], ids=["nothing", "half-preface"])
def test_a_grpc_connection_that_never_finishes_its_preface_is_closed(
    slow: RunningServer, sent: bytes
) -> None:
    """The gRPC port has the same header deadline (grpc's own default is 120 s)."""
    with socket.create_connection(("127.0.0.1", slow.grpc_port), timeout=10) as sock:
        sock.sendall(sent)
        # The server's SETTINGS frame may come first; then the close.
        _, took = wait_closed(sock, HEADER_S + SLACK_S)
    assert took >= HEADER_S - 0.2, took
