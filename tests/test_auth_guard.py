"""Tokens, scopes and tenants (SPEC §3), exposure checks at start-up, and the browser guard
(Host and Origin checks, CORS)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest
import yaml
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import RunningServer, free_port, start_server
from tests.payloads import attr, post, span, traces_body

T1 = "t1-token-" + secrets.token_hex(12)
T2 = "t2-token-" + secrets.token_hex(12)
INGEST_ONLY = "ingest-only-" + secrets.token_hex(12)
READ_ONLY = "read-only-" + secrets.token_hex(12)
APP_ORIGIN = "http://app.example"
EXTRA_HEADER = "Oteleport-Access-Key"
JSON = {"Content-Type": "application/json"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OTTERSCOPE_")}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("auth")
    config = {
        "server": {"allowed_hosts": ["otterscope.internal"]},
        "auth": {
            "extra_header": EXTRA_HEADER,
            "tokens": [
                {"token": T1, "tenant": "t1", "scopes": ["ingest", "read", "admin"]},
                {"token": T2, "tenant": "t2", "scopes": ["ingest", "read"]},
                {"token": INGEST_ONLY, "tenant": "t1", "scopes": ["ingest"]},
                {"token": READ_ONLY, "tenant": "t1", "scopes": ["read"]},
            ],
        },
        "cors": {"origins": [APP_ORIGIN]},
    }
    path = base / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    running = RunningServer(
        data_dir=base / "data",
        http_port=free_port(),
        grpc_port=free_port(),
        env=clean_env(),
        args=["--config", str(path)],
        log_path=base / "server.log",
    )
    running.start()
    yield running
    if running.proc is not None:
        running.kill()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def trace_body(trace_id: str, service: str, name: str = "op") -> bytes:
    now = time.time_ns()
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                    },
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": trace_id,
                                    "spanId": secrets.token_hex(8),
                                    "name": name,
                                    "startTimeUnixNano": str(now - 1000),
                                    "endTimeUnixNano": str(now),
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    )


def log_body(service: str, text: str) -> bytes:
    return orjson.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                    },
                    "scopeLogs": [
                        {
                            "logRecords": [
                                {
                                    "timeUnixNano": str(time.time_ns()),
                                    "severityNumber": 9,
                                    "body": {"stringValue": text},
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    )


def assert_error_shape(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert set(doc) == {"error"}, doc
    assert set(doc["error"]) == {"code", "message"}, doc
    assert doc["error"]["code"] == code
    assert doc["error"]["message"]
    return str(doc["error"]["message"])


# -- how tokens are presented --------------------------------------------------------------


def test_bearer_token(secured: RunningServer) -> None:
    trace_id = secrets.token_hex(16)
    r = httpx.post(
        f"{secured.url}/v1/traces",
        content=trace_body(trace_id, "bearer"),
        headers={**JSON, **bearer(T1)},
    )
    assert r.status_code == 200, r.text
    r = httpx.get(f"{secured.url}/api/traces/{trace_id}", headers=bearer(T1))
    assert r.status_code == 200, r.text
    # The scheme name is case-insensitive.
    r = httpx.get(f"{secured.url}/api/traces/{trace_id}", headers={"Authorization": f"bearer {T1}"})
    assert r.status_code == 200, r.text


def test_extra_header(secured: RunningServer) -> None:
    trace_id = secrets.token_hex(16)
    r = httpx.post(
        f"{secured.url}/v1/traces",
        content=trace_body(trace_id, "extra-header"),
        headers={**JSON, EXTRA_HEADER: T1},
    )
    assert r.status_code == 200, r.text
    r = httpx.get(f"{secured.url}/api/traces/{trace_id}", headers={EXTRA_HEADER: T1})
    assert r.status_code == 200, r.text
    assert r.json()["spans"][0]["service"] == "extra-header"
    # A wrong value in the extra header is an unknown token.
    r = httpx.get(f"{secured.url}/api/traces/{trace_id}", headers={EXTRA_HEADER: "nope"})
    assert_error_shape(r, 401, "unauthorized")
    # Any other header name carries nothing.
    r = httpx.get(f"{secured.url}/api/traces/{trace_id}", headers={"X-Api-Key": T1})
    assert_error_shape(r, 401, "unauthorized")


def test_extra_header_over_grpc(secured: RunningServer) -> None:
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    trace_id = os.urandom(16)
    span.trace_id = trace_id
    span.span_id = os.urandom(8)
    span.name = "grpc-extra"
    span.start_time_unix_nano = time.time_ns()
    span.end_time_unix_nano = span.start_time_unix_nano + 1
    with grpc.insecure_channel(secured.grpc_target) as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        export(req.SerializeToString(), metadata=((EXTRA_HEADER.lower(), T1),), timeout=10)
    r = httpx.get(f"{secured.url}/api/traces/{trace_id.hex()}", headers=bearer(T1))
    assert r.status_code == 200, r.text


def test_missing_and_unknown_token_on_the_api(secured: RunningServer) -> None:
    wrong = "wrong-" + secrets.token_hex(8)
    for headers in ({}, bearer(wrong), {"Authorization": "Basic dXNlcjpwYXNz"}):
        r = httpx.get(f"{secured.url}/api/traces", headers=headers)
        message = assert_error_shape(r, 401, "unauthorized")
        assert r.headers["www-authenticate"].lower().startswith("bearer")
        assert wrong not in message  # a presented token is never echoed


@pytest.mark.parametrize("param", ["token", "access_token", "api_key"])
def test_token_in_url_is_refused(secured: RunningServer, param: str) -> None:
    for path in ("/api/traces", "/api/logs", "/metrics", "/health"):
        r = httpx.get(f"{secured.url}{path}", params={param: T1})
        message = assert_error_shape(r, 400, "bad_request")
        assert param in message
        assert T1 not in message
    # Even together with a valid header: a token in a URL leaks into logs and histories.
    r = httpx.get(f"{secured.url}/api/traces", params={param: T1}, headers=bearer(T1))
    assert_error_shape(r, 400, "bad_request")
    # On the OTLP endpoint the answer is a google.rpc.Status.
    r = httpx.post(
        f"{secured.url}/v1/traces",
        params={param: T1},
        content=trace_body(secrets.token_hex(16), "url"),
        headers=JSON,
    )
    assert r.status_code == 400
    assert param in r.json()["message"]
    assert r.json()["code"] == 3


# -- scopes --------------------------------------------------------------------------------


def test_read_scope_is_needed_for_reading(secured: RunningServer) -> None:
    trace_id = secrets.token_hex(16)
    for path in (f"/api/traces/{trace_id}", "/api/traces", "/api/logs", "/metrics"):
        r = httpx.get(f"{secured.url}{path}", headers=bearer(INGEST_ONLY))
        message = assert_error_shape(r, 403, "forbidden")
        assert "read" in message
        r = httpx.get(f"{secured.url}{path}", headers=bearer(READ_ONLY))
        assert r.status_code in (200, 404), (path, r.text)
    r = httpx.get(f"{secured.url}/metrics", headers=bearer(READ_ONLY))
    assert r.status_code == 200
    assert "otterscope_received_items_total" in r.text
    # Reading is not ingesting.
    r = httpx.post(
        f"{secured.url}/v1/traces",
        content=trace_body(trace_id, "scopes"),
        headers={**JSON, **bearer(READ_ONLY)},
    )
    assert r.status_code == 403
    r = httpx.post(
        f"{secured.url}/v1/traces",
        content=trace_body(trace_id, "scopes"),
        headers={**JSON, **bearer(INGEST_ONLY)},
    )
    assert r.status_code == 200, r.text


def test_health_and_ready(secured: RunningServer) -> None:
    r = httpx.get(f"{secured.url}/ready")
    assert r.status_code == 200
    # Without a token: only whether the server is up.
    r = httpx.get(f"{secured.url}/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    r = httpx.get(f"{secured.url}/health", headers=bearer("unknown"))
    assert r.json() == {"status": "ok"}
    # A token without the read scope gets no more than no token at all.
    r = httpx.get(f"{secured.url}/health", headers=bearer(INGEST_ONLY))
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok"}
    # With read: the tenant's own figures; with admin, the server-wide ones too.
    r = httpx.get(f"{secured.url}/health", headers=bearer(READ_ONLY))
    assert r.status_code == 200
    full = r.json()
    assert full["status"] == "ok"
    assert {"version", "ingest", "tenant"} <= set(full)
    assert "store" not in full
    assert {"traces", "logs", "metrics"} == set(full["ingest"]["receivedItems"])
    r = httpx.get(f"{secured.url}/health", headers=bearer(T1))
    assert {"version", "ingest", "store"} <= set(r.json())


# -- tenants -------------------------------------------------------------------------------


def test_tenant_isolation(secured: RunningServer) -> None:
    trace_id = secrets.token_hex(16)
    service = f"iso-{secrets.token_hex(4)}"
    marker = secrets.token_hex(6)
    for signal, body in (
        ("traces", trace_body(trace_id, service)),
        ("logs", log_body(service, f"hello {marker}")),
    ):
        r = httpx.post(f"{secured.url}/v1/{signal}", content=body, headers={**JSON, **bearer(T1)})
        assert r.status_code == 200, r.text

    # Tenant t1 sees its data ...
    r = httpx.get(f"{secured.url}/api/traces/{trace_id}", headers=bearer(T1))
    assert r.status_code == 200
    r = httpx.get(f"{secured.url}/api/traces", params={"service": service}, headers=bearer(T1))
    assert [t["traceId"] for t in r.json()["traces"]] == [trace_id]
    r = httpx.get(f"{secured.url}/api/logs", params={"q": marker}, headers=bearer(T1))
    assert len(r.json()["logs"]) == 1
    # ... another token of the same tenant too ...
    r = httpx.get(f"{secured.url}/api/traces/{trace_id}", headers=bearer(READ_ONLY))
    assert r.status_code == 200
    # ... tenant t2 does not.
    r = httpx.get(f"{secured.url}/api/traces/{trace_id}", headers=bearer(T2))
    assert_error_shape(r, 404, "not_found")
    r = httpx.get(f"{secured.url}/api/traces", params={"service": service}, headers=bearer(T2))
    assert r.status_code == 200
    assert r.json()["traces"] == []
    r = httpx.get(f"{secured.url}/api/logs", params={"q": marker}, headers=bearer(T2))
    assert r.status_code == 200
    assert r.json()["logs"] == []
    r = httpx.get(f"{secured.url}/api/logs", params={"service": service}, headers=bearer(T2))
    assert r.json()["logs"] == []

    # The same trace id sent by t2 is t2's own trace; neither sees the other's span.
    r = httpx.post(
        f"{secured.url}/v1/traces",
        content=trace_body(trace_id, service, name="t2-span"),
        headers={**JSON, **bearer(T2)},
    )
    assert r.status_code == 200
    r = httpx.get(f"{secured.url}/api/traces/{trace_id}", headers=bearer(T2))
    assert [s["name"] for s in r.json()["spans"]] == ["t2-span"]
    r = httpx.get(f"{secured.url}/api/traces/{trace_id}", headers=bearer(T1))
    assert [s["name"] for s in r.json()["spans"]] == ["op"]


def test_tokens_are_never_logged(secured: RunningServer) -> None:
    # Provoke a few refusals and successes first.
    httpx.get(f"{secured.url}/api/traces", headers=bearer(T1 + "x"))
    httpx.get(f"{secured.url}/api/traces", params={"token": T2})
    httpx.get(f"{secured.url}/api/traces", headers=bearer(T1))
    log = secured.log()
    for token in (T1, T2, INGEST_ONLY, READ_ONLY):
        assert token not in log


# -- exposure at start-up ------------------------------------------------------------------


def test_refuses_non_loopback_host_without_token(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "otterscope",
            "serve",
            "--host",
            "0.0.0.0",
            "--data-dir",
            str(tmp_path / "data"),
            "--http-port",
            str(free_port()),
            "--grpc-port",
            str(free_port()),
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "OTTERSCOPE_AUTH_TOKEN" in result.stderr
    assert "--allow-anonymous" in result.stderr
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_allow_anonymous_on_non_loopback_host(make_server: Any) -> None:
    server: RunningServer = make_server(args=["--host", "0.0.0.0", "--allow-anonymous"])
    trace_id = secrets.token_hex(16)
    r = httpx.post(f"{server.url}/v1/traces", content=trace_body(trace_id, "anon"), headers=JSON)
    assert r.status_code == 200, r.text
    r = httpx.get(f"{server.url}/api/traces/{trace_id}")
    assert r.status_code == 200
    # Anonymous, yet the DNS-rebinding check still holds.
    r = httpx.get(f"{server.url}/api/traces", headers={"Host": "evil.example"})
    assert_error_shape(r, 403, "forbidden")
    assert server.stop() == 0


def test_starts_on_non_loopback_host_with_a_token(make_server: Any) -> None:
    server: RunningServer = make_server(
        args=["--host", "0.0.0.0"], token="s3cret-" + secrets.token_hex(8)
    )
    r = httpx.get(f"{server.url}/api/traces", headers=server.headers())
    assert r.status_code == 200
    r = httpx.get(f"{server.url}/api/traces")
    assert r.status_code == 401


# -- Host and Origin checks, CORS ----------------------------------------------------------


def test_host_header_check(secured: RunningServer) -> None:
    port = secured.http_port
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "10.1.2.3"):
        r = httpx.get(f"{secured.url}/api/traces", headers={**bearer(T1), "Host": host})
        message = assert_error_shape(r, 403, "forbidden")
        assert "Host" in message
        r = httpx.get(f"{secured.url}/ready", headers={"Host": host})
        assert r.status_code == 403
    for host in (
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        "localhost",
        f"otterscope.internal:{port}",
        f"[::1]:{port}",
    ):
        r = httpx.get(f"{secured.url}/api/traces", headers={**bearer(T1), "Host": host})
        assert r.status_code == 200, (host, r.text)


def test_origin_check(secured: RunningServer) -> None:
    for origin in ("http://evil.example", "null", f"http://evil.example:{secured.http_port}"):
        r = httpx.get(f"{secured.url}/api/traces", headers={**bearer(T1), "Origin": origin})
        message = assert_error_shape(r, 403, "forbidden")
        assert "Origin" in message
        assert "access-control-allow-origin" not in r.headers
    # The configured origin is let through, with CORS headers.
    r = httpx.get(f"{secured.url}/api/traces", headers={**bearer(T1), "Origin": APP_ORIGIN})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "origin" in r.headers["vary"].lower()
    # The server's own origin (its UI) is fine too.
    own = f"http://127.0.0.1:{secured.http_port}"
    r = httpx.get(f"{secured.url}/api/traces", headers={**bearer(T1), "Origin": own})
    assert r.status_code == 200, r.text


def test_origin_check_on_otlp_ingest(secured: RunningServer) -> None:
    trace_id = secrets.token_hex(16)
    body = trace_body(trace_id, "browser")
    r = httpx.post(
        f"{secured.url}/v1/traces",
        content=body,
        headers={**JSON, **bearer(T1), "Origin": APP_ORIGIN},
    )
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == APP_ORIGIN
    # A page from elsewhere cannot send, and is told so in OTLP's own error shape.
    for fmt, headers in (("json", JSON), ("protobuf", PROTOBUF)):
        r = httpx.post(
            f"{secured.url}/v1/traces",
            content=body,
            headers={**headers, **bearer(T1), "Origin": "http://evil.example"},
        )
        assert r.status_code == 403
        status = Status()
        if fmt == "json":
            assert r.headers["content-type"].startswith("application/json")
            doc = r.json()
            assert set(doc) == {"code", "message"}, doc
            status.code, status.message = doc["code"], doc["message"]
        else:
            assert r.headers["content-type"] == "application/x-protobuf"
            status.ParseFromString(r.content)
        assert status.code == 7  # PERMISSION_DENIED
        assert "Origin" in status.message


def test_cors_preflight(secured: RunningServer) -> None:
    r = httpx.options(
        f"{secured.url}/v1/traces",
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization, content-encoding",
        },
    )
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert r.headers["access-control-allow-origin"] == APP_ORIGIN
    methods = {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
    assert "POST" in methods
    allowed_headers = {
        h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")
    }
    assert {"content-type", "authorization", "content-encoding"} <= allowed_headers
    assert int(r.headers["access-control-max-age"]) > 0
    # Without a requested header list the usual ones are allowed.
    r = httpx.options(
        f"{secured.url}/v1/logs",
        headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code == 204
    allowed_headers = {
        h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")
    }
    assert {"content-type", "authorization"} <= allowed_headers
    # A preflight from an origin not in the list is refused.
    r = httpx.options(
        f"{secured.url}/v1/traces",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code == 403
    assert "access-control-allow-origin" not in r.headers


def test_a_tenant_sees_only_its_own_self_metrics_and_health(tmp_path: Path) -> None:
    """Tenant B's metric names and volumes never reach tenant A; server-wide figures need
    the admin scope."""
    a_admin, a_read, b_all = (secrets.token_hex(12) for _ in range(3))
    running = start_server(
        tmp_path,
        {
            "auth": {
                "tokens": [
                    {"token": a_admin, "tenant": "a", "scopes": ["ingest", "read", "admin"]},
                    {"token": a_read, "tenant": "a", "scopes": ["read"]},
                    {"token": b_all, "tenant": "b", "scopes": ["ingest", "read"]},
                ]
            },
            "metrics": {"max_series_per_metric": 1},
        },
    )
    try:
        secret = "b_private_" + secrets.token_hex(4)
        now = time.time_ns()
        points = [
            {"timeUnixNano": str(now), "asDouble": 1.0, "attributes": [attr("k", str(i))]}
            for i in range(3)
        ]
        body = {
            "resourceMetrics": [
                {
                    "resource": {"attributes": [attr("service.name", "b-svc")]},
                    "scopeMetrics": [
                        {"metrics": [{"name": secret, "gauge": {"dataPoints": points}}]}
                    ],
                }
            ]
        }
        post(running.url, "metrics", body, bearer(b_all))
        post(running.url, "traces", traces_body("b-svc", [span_for_now()]), bearer(b_all))
        post(running.url, "traces", traces_body("a-svc", [span_for_now()]), bearer(a_admin))

        # B sees its own overflow, named.
        b_scrape = httpx.get(f"{running.url}/metrics", headers=bearer(b_all)).text
        assert f'otterscope_metric_overflow_points_total{{metric="{secret}"}}' in b_scrape
        assert 'tenant="' not in b_scrape
        for token in (a_read, a_admin):
            scrape = httpx.get(f"{running.url}/metrics", headers=bearer(token)).text
            assert secret not in scrape
            spans = [
                ln
                for ln in scrape.splitlines()
                if ln.startswith("otterscope_received_items_total{") and "traces" in ln
            ]
            assert [ln.rsplit(" ", 1)[1] for ln in spans] == ["1"], spans  # A's span only
            samples = [ln for ln in scrape.splitlines() if not ln.startswith("#")]
            assert not [ln for ln in samples if ln.startswith("otterscope_metric_overflow")]
        read_scrape = httpx.get(f"{running.url}/metrics", headers=bearer(a_read)).text
        admin_scrape = httpx.get(f"{running.url}/metrics", headers=bearer(a_admin)).text
        for server_wide in ("otterscope_queue_bytes", "otterscope_store_bytes"):
            assert server_wide not in read_scrape
            assert server_wide in admin_scrape

        health = httpx.get(f"{running.url}/health", headers=bearer(a_read)).json()
        assert health["tenant"] == "a"
        assert health["ingest"]["receivedItems"] == {"traces": 1, "logs": 0, "metrics": 0}
        assert "store" not in health
        assert "queueBytes" not in health["ingest"]
        b_health = httpx.get(f"{running.url}/health", headers=bearer(b_all)).json()
        assert b_health["ingest"]["receivedItems"] == {"traces": 1, "logs": 0, "metrics": 3}
        assert "store" not in b_health
        admin = httpx.get(f"{running.url}/health", headers=bearer(a_admin)).json()
        assert {"diskBytes", "lastIngestSeq"} <= set(admin["store"])
        assert "queueBytes" in admin["ingest"]
    finally:
        running.stop()


def span_for_now() -> dict[str, object]:
    return span(secrets.token_hex(16), secrets.token_hex(8), "op", time.time_ns())
