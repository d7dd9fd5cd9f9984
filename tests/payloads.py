"""OTLP/JSON request bodies for tests that talk to a real server."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

SECOND = 10**9


def now_ns() -> int:
    return time.time_ns()


def new_trace_id() -> str:
    return os.urandom(16).hex()


def new_span_id() -> str:
    return os.urandom(8).hex()


def attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        v: dict[str, Any] = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    else:
        v = {"stringValue": str(value)}
    return {"key": key, "value": v}


def span(
    trace_id: str,
    span_id: str,
    name: str,
    start_ns: int,
    duration_ns: int = 10**6,
    parent: str = "",
    kind: int = 2,
    status: int = 0,
    attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + duration_ns),
        "attributes": [attr(k, v) for k, v in (attributes or {}).items()],
        "status": {"code": status},
    }


def traces_body(service: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [attr("service.name", service)]},
                "scopeSpans": [{"scope": {"name": "tests", "version": "1"}, "spans": spans}],
            }
        ]
    }


def log(
    body: str, time_ns: int, severity: int = 9, attributes: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "timeUnixNano": str(time_ns),
        "observedTimeUnixNano": str(time_ns),
        "severityNumber": severity,
        "severityText": "INFO",
        "body": {"stringValue": body},
        "attributes": [attr(k, v) for k, v in (attributes or {}).items()],
    }


def logs_body(service: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": [attr("service.name", service)]},
                "scopeLogs": [{"scope": {"name": "tests"}, "logRecords": records}],
            }
        ]
    }


def gauge_body(service: str, name: str, points: list[tuple[int, float]]) -> dict[str, Any]:
    return {
        "resourceMetrics": [
            {
                "resource": {"attributes": [attr("service.name", service)]},
                "scopeMetrics": [
                    {
                        "scope": {"name": "tests"},
                        "metrics": [
                            {
                                "name": name,
                                "unit": "1",
                                "gauge": {
                                    "dataPoints": [
                                        {"timeUnixNano": str(t), "asDouble": v} for t, v in points
                                    ]
                                },
                            }
                        ],
                    }
                ],
            }
        ]
    }


def post(
    url: str, signal: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    r = httpx.post(f"{url}/v1/{signal}", json=body, headers=headers or {}, timeout=30)
    assert r.status_code == 200, r.text
