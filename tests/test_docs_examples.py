"""The README's Python examples run as written against a real server and send what they
say: the OTLP/HTTP and OTLP/gRPC SDK snippets of the quick start and the push client's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def python_blocks(title: str) -> list[str]:
    m = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert m, title
    return re.findall(r"^```python\n(.*?)^```", m.group(1), re.M | re.S)


def run_example(code: str, server: RunningServer) -> None:
    code = code.replace("127.0.0.1:4318", f"127.0.0.1:{server.http_port}")
    code = code.replace("127.0.0.1:4317", f"127.0.0.1:{server.grpc_port}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTTERSCOPE_"))}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def traces(server: RunningServer, service: str) -> list[dict[str, object]]:
    r = httpx.get(f"{server.url}/api/traces", params={"service": service}, timeout=10)
    assert r.status_code == 200, r.text
    return list(r.json()["traces"])


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_quick_start_sdk_examples_send_spans(server: RunningServer, transport: str) -> None:
    blocks = python_blocks("Quick start")
    assert len(blocks) == 2, "the quick start has one OTLP/HTTP and one OTLP/gRPC example"
    code = blocks[0] if transport == "http" else blocks[1]
    assert ("proto.grpc" in code) == (transport == "grpc")
    run_example(code, server)
    service = "my-service" if transport == "http" else "my-grpc-service"
    found = traces(server, service)
    assert len(found) == 1, found
    assert found[0]["spanCount"] == (2 if transport == "http" else 1)


def test_push_client_example_sends_a_span_a_log_and_metrics(server: RunningServer) -> None:
    (code,) = python_blocks("Push client (`otterscope.client`)")
    run_example(code + "\nassert ok, (t.errors, t.last_error)\n", server)
    r = httpx.get(f"{server.url}/api/traces/4bf92f3577b34da6a3ce929d0e0e4736", timeout=10)
    assert r.status_code == 200, r.text
    (handle,) = r.json()["spans"]
    assert (handle["name"], handle["parentSpanId"]) == ("handle", "00f067aa0ba902b7")
    assert handle["attributes"]["user.id"] == "42"
    r = httpx.get(f"{server.url}/api/logs", params={"q": "cache miss"}, timeout=10)
    assert [x["service"] for x in r.json()["logs"]] == ["my-fn"]
    names = {m["name"] for m in httpx.get(f"{server.url}/api/metrics").json()["metrics"]}
    assert {"invocations", "work_ms"} <= names
