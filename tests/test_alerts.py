"""Alert rules, incidents and webhooks, end to end: spans and metrics sent over OTLP, a real
local HTTP receiver (one that fails at first, too), a restart while an incident fires."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.payloads import attr, new_span_id, new_trace_id, now_ns, post, span

SECRET = "s3cret-s3cret-s3cret"


class Receiver:
    """A webhook receiver: records every POST; answers ``fail_first`` of them with 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.path, dict(self.headers), raw))
                failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for p, _, raw in self.requests if p == path]

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"{len(self.requests)} of {count} deliveries"
            time.sleep(0.1)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def alerting_server(make_server: Any, tmp_path: Path) -> RunningServer:
    config = tmp_path / "alerts.yaml"
    # Evaluations come from POST /api/alerts/evaluate only; deliveries from the thread too.
    config.write_text("alerts:\n  evaluation_interval: 1h\n  webhook_allowed_hosts: [127.0.0.1]\n")
    server: RunningServer = make_server(args=["--config", str(config)])
    return server


def send_spans(srv: RunningServer, service: str, total: int, errors: int) -> None:
    t = now_ns()
    spans = [
        span(
            new_trace_id(),
            new_span_id(),
            "GET /pay",
            t - 10**9,
            20 * 10**6,
            status=2 if i < errors else 0,
        )
        for i in range(total)
    ]
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [attr("service.name", service)]},
                "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}],
            }
        ]
    }
    post(srv.url, "traces", body)


def api(srv: RunningServer, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
    r = httpx.request(method, f"{srv.url}{path}", timeout=30, **kwargs)
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def evaluate(srv: RunningServer) -> dict[str, Any]:
    result: dict[str, Any] = api(srv, "POST", "/api/alerts/evaluate")
    return result


def rule(receiver: Receiver, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "checkout errors",
        "description": "more than half of checkout's requests fail",
        "serviceId": "checkout",
        "metricName": "error_rate",
        "condition": "gt",
        "threshold": 0.5,
        "windowSeconds": 600,
        "severity": "critical",
        "webhooks": [
            {"url": f"{receiver.url}/generic", "secret": SECRET},
            {"url": f"{receiver.url}/slack", "format": "slack"},
            {"url": f"{receiver.url}/am", "format": "alertmanager"},
        ],
        **overrides,
    }


def test_an_incident_fires_once_survives_a_restart_and_resolves(
    alerting_server: RunningServer, receiver: Receiver
) -> None:
    srv = alerting_server
    created = api(srv, "POST", "/api/alerts/configs", 201, json=rule(receiver))
    rule_id = created["id"]
    assert created["webhooks"][0]["secret"] == SECRET
    assert len(created["webhooks"][1]["secret"]) >= 16  # generated, shown once
    shown = api(srv, "GET", f"/api/alerts/configs/{rule_id}")
    assert all("secret" not in w and w["secretSet"] for w in shown["webhooks"])

    assert evaluate(srv)["fired"] == []  # no spans yet: no value, no incident
    send_spans(srv, "checkout", total=10, errors=8)
    send_spans(srv, "other", total=10, errors=10)  # another service: not this rule's
    result = evaluate(srv)
    assert len(result["fired"]) == 1, result
    (incident_id,) = result["fired"]
    receiver.wait_for(3)

    (_, headers, raw) = next(r for r in receiver.requests if r[0] == "/generic")
    expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["X-Otterscope-Signature"] == expected
    assert headers["Idempotency-Key"] == f"{incident_id}:firing:0"
    assert headers["X-Otterscope-Event"] == "firing"
    (generic,) = receiver.bodies("/generic")
    assert generic["event"] == "firing"
    assert generic["incident"]["value"] == pytest.approx(0.8)
    assert generic["description"] == "more than half of checkout's requests fail"
    (slack,) = receiver.bodies("/slack")
    assert slack["text"].startswith("[FIRING] checkout errors (critical) on checkout")
    (am,) = receiver.bodies("/am")
    assert am["status"] == "firing" and am["version"] == "4"
    assert am["alerts"][0]["labels"] == {
        "alertname": "checkout errors",
        "severity": "critical",
        "service": "checkout",
    }
    assert am["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"

    assert evaluate(srv)["fired"] == []  # still breaching: the same incident
    firing = api(srv, "GET", "/api/alerts/incidents", params={"state": "firing"})["incidents"]
    assert [i["id"] for i in firing] == [incident_id]
    assert {d["status"] for d in firing[0]["deliveries"]} == {"delivered"}

    acked = api(
        srv,
        "POST",
        f"/api/alerts/incidents/{incident_id}/acknowledge",
        json={"acknowledgedBy": "ana"},
    )
    assert acked["acknowledged"] is True and acked["acknowledgedBy"] == "ana"
    assert acked["state"] == "firing"  # a flag, not a state
    assert (
        api(srv, "GET", "/api/alerts/incidents", params={"acknowledged": "false"})["incidents"]
        == []
    )

    assert srv.stop() == 0
    srv.start()
    assert evaluate(srv)["fired"] == []  # the restart did not make it fire again
    time.sleep(1.5)  # a delivery pass of the alerting thread
    assert len(receiver.requests) == 3

    # Raising the threshold past any rate resolves it; resolutions are notified too.
    api(srv, "PUT", f"/api/alerts/configs/{rule_id}", json=rule(receiver, threshold=2))
    assert evaluate(srv)["resolved"] == [incident_id]
    receiver.wait_for(6)
    resolved = api(srv, "GET", "/api/alerts/incidents", params={"state": "resolved"})
    (done,) = resolved["incidents"]
    assert done["resolvedAt"] is not None and done["acknowledged"] is True
    assert {(d["event"], d["status"]) for d in done["deliveries"]} == {
        ("firing", "delivered"),
        ("resolved", "delivered"),
    }
    (am_resolved,) = [b for b in receiver.bodies("/am") if b["status"] == "resolved"]
    assert am_resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    # The replaced rule kept the secret of the webhook it kept.
    (_, headers, raw) = [r for r in receiver.requests if r[0] == "/generic"][-1]
    assert headers["X-Otterscope-Signature"] == (
        "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    )


def test_a_failing_receiver_gets_it_with_retries(alerting_server: RunningServer) -> None:
    flaky = Receiver(fail_first=2)
    try:
        hooks = [{"url": f"{flaky.url}/hook"}]
        api(
            srv := alerting_server,
            "POST",
            "/api/alerts/configs",
            201,
            json=rule(flaky, webhooks=hooks),
        )
        send_spans(srv, "checkout", total=4, errors=4)
        (incident_id,) = evaluate(srv)["fired"]
        flaky.wait_for(3, timeout=30)  # 500, 500 (1 s, 2 s backoff), then 200
        keys = {h["Idempotency-Key"] for _, h, _ in flaky.requests}
        assert keys == {f"{incident_id}:firing:0"}  # the same key on every attempt
        deadline = time.monotonic() + 10
        while True:
            (incident,) = api(srv, "GET", "/api/alerts/incidents")["incidents"]
            (delivery,) = incident["deliveries"]
            if delivery["status"] == "delivered" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    finally:
        flaky.close()


def test_for_seconds_waits_before_firing(
    alerting_server: RunningServer, receiver: Receiver
) -> None:
    srv = alerting_server
    api(srv, "POST", "/api/alerts/configs", 201, json=rule(receiver, forSeconds=2, webhooks=[]))
    send_spans(srv, "checkout", total=2, errors=2)
    assert evaluate(srv)["fired"] == []
    time.sleep(2.2)
    assert len(evaluate(srv)["fired"]) == 1


def test_a_metric_rule(alerting_server: RunningServer) -> None:
    srv = alerting_server
    now = now_ns()
    body = {
        "resourceMetrics": [
            {
                "resource": {"attributes": [attr("service.name", "jobs")]},
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "jobs.failed",
                                "sum": {
                                    "aggregationTemporality": 1,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {
                                            "startTimeUnixNano": str(now - 10**9),
                                            "timeUnixNano": str(now),
                                            "asInt": "7",
                                            "attributes": [attr("queue", "emails")],
                                        }
                                    ],
                                },
                            }
                        ]
                    }
                ],
            }
        ]
    }
    post(srv.url, "metrics", body)
    config = {
        "name": "failed jobs",
        "serviceId": "jobs",
        "metricName": "jobs_failed_total",  # the Prometheus name works too
        "labels": {"queue": "emails"},
        "aggregation": "increase",
        "condition": "gte",
        "threshold": 5,
        "windowSeconds": 300,
        "severity": "warning",
    }
    api(srv, "POST", "/api/alerts/configs", 201, json=config)
    other = {**config, "name": "other queue", "labels": {"queue": "sms"}}
    api(srv, "POST", "/api/alerts/configs", 201, json=other)
    result = evaluate(srv)
    assert result["evaluated"] == 2 and len(result["fired"]) == 1, result
    (incident,) = api(srv, "GET", "/api/alerts/incidents")["incidents"]
    assert incident["name"] == "failed jobs" and incident["value"] == 7


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"condition": "above"}, 400, "condition must be one of"),
        ({"metricName": "jobs", "aggregation": "median"}, 400, "aggregation must be one of"),
        ({"aggregation": "p99"}, 400, "built-in"),
        ({"windowSeconds": 0}, 400, "windowSeconds"),
        ({"threshold": "high"}, 400, "threshold must be a number"),
        ({"severity": "meh"}, 400, "severity"),
        ({"colour": "red"}, 400, "unknown field"),
        ({"webhooks": [{"url": "http://example.com/x"}]}, 400, "webhook_allowed_hosts"),
        ({"webhooks": [{"url": "ftp://127.0.0.1/x"}]}, 400, "http(s)"),
        ({"webhooks": [{"url": "http://127.0.0.1/x", "secret": "short"}]}, 400, "16"),
    ],
)
def test_bad_rules_are_refused(
    alerting_server: RunningServer,
    receiver: Receiver,
    change: dict[str, Any],
    status: int,
    words: str,
) -> None:
    error = api(
        alerting_server, "POST", "/api/alerts/configs", status, json=rule(receiver, **change)
    )
    assert words in error["error"]["message"]


def test_crud(alerting_server: RunningServer, receiver: Receiver) -> None:
    srv = alerting_server
    created = api(srv, "POST", "/api/alerts/configs", 201, json=rule(receiver, webhooks=[]))
    listed = api(srv, "GET", "/api/alerts/configs")["configs"]
    assert [c["id"] for c in listed] == [created["id"]]
    api(srv, "DELETE", f"/api/alerts/configs/{created['id']}", 204)
    api(srv, "GET", f"/api/alerts/configs/{created['id']}", 404)
    api(srv, "PUT", f"/api/alerts/configs/{created['id']}", 404, json=rule(receiver))
    api(srv, "POST", "/api/alerts/incidents/nope/acknowledge", 404, json={"acknowledgedBy": "x"})
    api(srv, "GET", "/api/alerts/incidents", 400, params={"state": "open"})
    r = httpx.patch(f"{srv.url}/api/alerts/configs")
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_deleting_a_rule_resolves_its_open_incident(
    alerting_server: RunningServer, receiver: Receiver
) -> None:
    srv = alerting_server
    hooks = [{"url": f"{receiver.url}/generic", "secret": SECRET}]
    created = api(srv, "POST", "/api/alerts/configs", 201, json=rule(receiver, webhooks=hooks))
    send_spans(srv, "checkout", total=2, errors=2)
    (incident_id,) = evaluate(srv)["fired"]
    api(srv, "DELETE", f"/api/alerts/configs/{created['id']}", 204)
    (incident,) = api(srv, "GET", "/api/alerts/incidents")["incidents"]
    assert incident["id"] == incident_id and incident["state"] == "resolved"
    receiver.wait_for(2)
    assert [b["event"] for b in receiver.bodies("/generic")] == ["firing", "resolved"]
    after = evaluate(srv)
    assert (after["evaluated"], after["fired"], after["resolved"]) == (0, [], [])
