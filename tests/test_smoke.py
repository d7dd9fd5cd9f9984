"""The first thing a user does: start, send a span over OTLP/JSON, read it back."""

from __future__ import annotations

import time

import httpx

from tests.conftest import RunningServer


def test_span_round_trip_over_http_json(server: RunningServer) -> None:
    now = time.time_ns()
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "EEE19B7EC3C1B174",
                                "name": "hello",
                                "startTimeUnixNano": str(now - 1_000_000),
                                "endTimeUnixNano": now,
                                "kind": 2,
                            }
                        ]
                    }
                ],
            }
        ]
    }
    r = httpx.post(f"{server.url}/v1/traces", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {}
    r = httpx.get(f"{server.url}/api/traces/5b8efff798038103d269b633813fc60c")
    assert r.status_code == 200
    spans = r.json()["spans"]
    assert [s["name"] for s in spans] == ["hello"]
    assert spans[0]["kind"] == "SPAN_KIND_SERVER"
    assert spans[0]["service"] == "svc"
    assert server.stop() == 0
