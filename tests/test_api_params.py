"""Query parameters of the read API: bad input is a 400 in the one JSON error shape."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import RunningServer

BAD = [
    ("/api/traces?limit=0", "limit"),
    ("/api/traces?limit=1001", "limit"),
    ("/api/traces?limit=ten", "limit"),
    ("/api/traces?start=yesterday", "start"),
    ("/api/traces?start=2024-05-01T12:00:00", "time zone"),
    ("/api/traces?minDuration=fast", "minDuration"),
    ("/api/traces?status=broken", "status"),
    ("/api/traces?start=2000&end=1000", "start"),
    ("/api/traces?cursor=abc", "cursor"),
    ("/api/traces?colour=red", "colour"),
    ("/api/traces/xyz", "trace id"),
    ("/api/traces/5b8efff798038103d269b633813fc60c?format=zipkin", "format"),
    ("/api/logs?severity=LOUD", "severity"),
    ("/api/logs?traceId=123", "trace id"),
    ("/api/logs?spanId=zz", "span id"),
    ("/api/logs?cursor=abc", "cursor"),
    ("/api/traces/5b8efff798038103d269b633813fc60c?colour=red", "colour"),
    ("/api/ws", "WebSocket"),
]


@pytest.mark.parametrize(("path", "mentions"), BAD)
def test_bad_parameters_are_400_with_a_clear_message(
    server: RunningServer, path: str, mentions: str
) -> None:
    r = httpx.get(f"{server.url}{path}")
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == "bad_request"
    assert mentions in body["error"]["message"]


def test_unknown_trace_is_404_and_unknown_route_is_404(server: RunningServer) -> None:
    r = httpx.get(f"{server.url}/api/traces/5b8efff798038103d269b633813fc60c")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = httpx.get(f"{server.url}/api/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_sixteen_character_trace_ids_are_left_padded(server: RunningServer) -> None:
    r = httpx.get(f"{server.url}/api/traces/d269b633813fc60c")
    assert r.status_code == 404
    assert "00000000000000000d269b633813fc60c"[1:] in r.json()["error"]["message"]


def test_method_not_allowed_on_the_api_is_405_with_allow(server: RunningServer) -> None:
    r = httpx.post(f"{server.url}/api/traces")
    assert r.status_code == 405
    assert "GET" in r.headers["allow"]
    assert r.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("duration", ["250ms", "1.5s", "2m", "1h30m", "250"])
def test_go_durations_are_accepted_by_the_search(server: RunningServer, duration: str) -> None:
    for name in ("minDuration", "maxDuration", "minTraceDuration", "maxTraceDuration"):
        r = httpx.get(f"{server.url}/api/traces", params={name: duration})
        assert r.status_code == 200, r.text
        assert r.json() == {"traces": [], "nextCursor": None}
