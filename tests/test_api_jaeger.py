"""The Jaeger query API under /jaeger, over a real server: v1 (the Jaeger UI's and Grafana's
calls) and api_v3.

The expected answers are written out from Jaeger's own definitions: the UI model
(internal/uimodel/model.go and converter/v1/json fixtures/ui_01.json), the v1 handler and
its query parser (the envelope, error shape, parameters), and api_v3's http_gateway with its
snapshots (GetServices.json, GetOperations.json, GetTrace.json, FindTraces.json,
FindTraceSummaries.json).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, start_server
from tests.payloads import SECOND, attr, new_span_id, new_trace_id, now_ns, post, span

T1, T2, INGEST_ONLY = "jaeger-t1-token", "jaeger-t2-token", "jaeger-ingest-token"
MS = 10**6


def body(resource: dict[str, Any], spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [attr(k, v) for k, v in resource.items()]},
                "scopeSpans": [{"scope": {"name": "tests", "version": "1"}, "spans": spans}],
            }
        ]
    }


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = {
        "auth": {
            "tokens": [
                {"token": T1, "tenant": "t1", "scopes": ["ingest", "read"]},
                {"token": T2, "tenant": "t2", "scopes": ["ingest", "read"]},
                {"token": INGEST_ONLY, "tenant": "t1", "scopes": ["ingest"]},
            ]
        }
    }
    running = start_server(tmp_path_factory.mktemp("jaeger"), config)
    running.token = T1
    yield running
    if running.proc is not None:
        running.kill()


@pytest.fixture(scope="module")
def data(live: RunningServer) -> dict[str, Any]:
    """Trace A: frontend GET /cart (error, rich attributes, an event) calls backend; the
    backend span links to trace B. Trace B: one backend span, with a 64-bit trace id.
    Trace C: the other tenant's."""
    t0 = (now_ns() - 60 * SECOND) // 1000 * 1000  # whole microseconds: exact in Jaeger's unit
    a, b = new_trace_id(), "0" * 16 + new_trace_id()[:16]
    root, call, price, tick = (new_span_id() for _ in range(4))
    rich = [
        attr("http.method", "GET"),
        attr("http.status_code", 500),
        attr("ratio", 0.5),
        attr("ok", True),
        {"key": "big", "value": {"intValue": str(2**60)}},
        {"key": "raw", "value": {"bytesValue": base64.b64encode(b"\x00\x01").decode()}},
        {"key": "list", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
    ]
    root_span = span(a, root, "GET /cart", t0, 50 * MS, kind=2, status=2)
    root_span.update(
        attributes=rich,
        status={"code": 2, "message": "boom"},
        traceState="k=v",
        flags=0x101,
        events=[
            {"timeUnixNano": str(t0 + MS), "name": "retry", "attributes": [attr("attempt", 2)]}
        ],
    )
    call_span = span(a, call, "call backend", t0 + 5 * MS, 20 * MS, parent=root, kind=3)
    price_span = span(a, price, "POST /price", t0 + 6 * MS, 15 * MS, parent=call, kind=2)
    price_span.update(
        links=[{"traceId": b, "spanId": tick, "attributes": [attr("why", "batch")]}],
        droppedAttributesCount=2,
    )
    tick_span = span(b, tick, "cron tick", t0 + SECOND, 200 * MS, kind=1, status=1)
    headers = {"Authorization": f"Bearer {T1}"}
    post(live.url, "traces", body({"service.name": "frontend"}, [root_span, call_span]), headers)
    backend = {"service.name": "backend", "host.name": "b1"}
    post(live.url, "traces", body(backend, [price_span, tick_span]), headers)
    other = span(new_trace_id(), new_span_id(), "GET /cart", t0, 5 * MS)
    post(
        live.url,
        "traces",
        body({"service.name": "other"}, [other]),
        {"Authorization": f"Bearer {T2}"},
    )
    return {"t0": t0, "a": a, "b": b, "root": root, "call": call, "price": price, "tick": tick}


def get(live: RunningServer, path: str, token: str | None = T1, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{live.url}/jaeger{path}", params=params, headers=headers, timeout=30)


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    return r.json()


def v1_error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    found = r.json()
    msg = found["errors"][0]["msg"]
    assert found == {
        "data": None,
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": [{"code": status, "msg": msg}],
    }
    return str(msg)


def v3_error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    found = r.json()
    assert found == {"error": {"httpCode": status, "message": found["error"]["message"]}}
    return str(found["error"]["message"])


def kv(key: str, type_: str, value: Any) -> dict[str, Any]:
    return {"key": key, "type": type_, "value": value}


def trace_a(d: dict[str, Any]) -> dict[str, Any]:
    """Trace A in Jaeger's UI model, as Jaeger's OTLP translator and uimodel make it."""
    t0, a = d["t0"] // 1000, d["a"]
    scope = [kv("otel.scope.name", "string", "tests"), kv("otel.scope.version", "string", "1")]
    return {
        "traceID": a,
        "spans": [
            {
                "traceID": a,
                "spanID": d["root"],
                "flags": 1,
                "operationName": "GET /cart",
                "references": [],
                "startTime": t0,
                "duration": 50_000,
                "tags": [
                    *scope,
                    kv("http.method", "string", "GET"),
                    kv("http.status_code", "int64", 500),
                    kv("ratio", "float64", 0.5),
                    kv("ok", "bool", True),
                    kv("big", "int64", str(2**60)),  # beyond 2^53: a string, as Jaeger
                    kv("raw", "binary", "AAE="),
                    kv("list", "string", '["a"]'),
                    kv("span.kind", "string", "server"),
                    kv("otel.status_code", "string", "ERROR"),
                    kv("error", "bool", True),
                    kv("otel.status_description", "string", "boom"),
                    kv("w3c.tracestate", "string", "k=v"),
                ],
                "logs": [
                    {
                        "timestamp": t0 + 1000,
                        "fields": [kv("event", "string", "retry"), kv("attempt", "int64", 2)],
                    }
                ],
                "processID": "p1",
                "warnings": None,
            },
            {
                "traceID": a,
                "spanID": d["call"],
                "operationName": "call backend",
                "references": [{"refType": "CHILD_OF", "traceID": a, "spanID": d["root"]}],
                "startTime": t0 + 5000,
                "duration": 20_000,
                "tags": [*scope, kv("span.kind", "string", "client")],
                "logs": [],
                "processID": "p1",
                "warnings": None,
            },
            {
                "traceID": a,
                "spanID": d["price"],
                "operationName": "POST /price",
                "references": [
                    {"refType": "CHILD_OF", "traceID": a, "spanID": d["call"]},
                    # a link: FOLLOWS_FROM, its 64-bit trace id in 16 digits as Jaeger prints it
                    {"refType": "FOLLOWS_FROM", "traceID": d["b"][16:], "spanID": d["tick"]},
                ],
                "startTime": t0 + 6000,
                "duration": 15_000,
                "tags": [*scope, kv("span.kind", "string", "server")],
                "logs": [],
                "processID": "p2",
                "warnings": ["2 attributes dropped or truncated"],
            },
        ],
        "processes": {
            "p1": {"serviceName": "frontend", "tags": []},
            "p2": {"serviceName": "backend", "tags": [kv("host.name", "string", "b1")]},
        },
        "warnings": None,
    }


def envelope(data: Any, total: int = 0, errors: Any = None) -> dict[str, Any]:
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}


def trace_ids(r: httpx.Response) -> list[str]:
    return [t["traceID"] for t in ok(r)["data"]]


# -- v1: dropdowns -------------------------------------------------------------------------


def test_services_are_the_tenants_own(live: RunningServer, data: dict[str, Any]) -> None:
    assert ok(get(live, "/api/services")) == envelope(["backend", "frontend"], total=2)
    assert ok(get(live, "/api/services", token=T2)) == envelope(["other"], total=1)


def test_operations_of_a_service(live: RunningServer, data: dict[str, Any]) -> None:
    found = ok(get(live, "/api/services/frontend/operations"))
    assert found == envelope(["GET /cart", "call backend"], total=2)
    assert ok(get(live, "/api/services/nobody/operations")) == envelope([], total=0)
    by_kind = ok(get(live, "/api/operations", service="frontend"))
    assert by_kind == envelope(
        [
            {"name": "GET /cart", "spanKind": "server"},
            {"name": "call backend", "spanKind": "client"},
        ],
        total=2,
    )
    clients = ok(get(live, "/api/operations", service="frontend", spanKind="client"))
    assert clients == envelope([{"name": "call backend", "spanKind": "client"}], total=1)
    msg = v1_error(get(live, "/api/operations"), 400)
    assert msg == "parameter 'service' is required"


# -- v1: search ----------------------------------------------------------------------------


def test_search_answers_whole_traces_in_the_ui_model(
    live: RunningServer, data: dict[str, Any]
) -> None:
    assert ok(get(live, "/api/traces", service="frontend")) == envelope([trace_a(data)])


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"service": "frontend", "operation": "GET /cart"}, ["a"]),
        ({"service": "frontend", "operation": "GET"}, []),  # Jaeger's operation is exact
        ({"service": "backend"}, ["b", "a"]),  # newest first
        ({"service": "backend", "limit": "1"}, ["b"]),
        ({"service": "frontend", "tags": '{"http.method":"GET"}'}, ["a"]),
        ({"service": "frontend", "tags": "http.method=GET error=true"}, ["a"]),  # logfmt
        ({"service": "frontend", "tags": 'http.method="GET" ratio=0.5'}, ["a"]),
        ({"service": "frontend", "tag": "http.status_code:500"}, ["a"]),
        ({"service": "frontend", "tags": '{"http.method":"POST"}'}, []),
        ({"service": "backend", "tags": '{"error":"true"}'}, []),
        ({"service": "backend", "tags": '{"otel.status_code":"OK"}'}, ["b"]),
        ({"service": "backend", "tags": "otel.status_code=OK error=true"}, []),
        ({"service": "backend", "tags": "host.name=b1 span.kind=server"}, ["a"]),
        ({"service": "backend", "tags": "span.kind=internal"}, ["b"]),
        ({"service": "backend", "minDuration": "100ms"}, ["b"]),
        ({"service": "backend", "maxDuration": "100ms"}, ["a"]),
        ({"service": "backend", "minDuration": "1.2s"}, []),
        ({"service": "backend", "minDuration": "15ms", "maxDuration": "15ms"}, ["a"]),
    ],
)
def test_search_parameters(
    live: RunningServer, data: dict[str, Any], params: dict[str, str], expected: list[str]
) -> None:
    ids = trace_ids(get(live, "/api/traces", **params))
    assert ids == [data[x] if x == "a" else data["b"][16:] for x in expected]


def test_search_window_is_in_microseconds(live: RunningServer, data: dict[str, Any]) -> None:
    t0 = data["t0"] // 1000
    early = {"service": "backend", "start": str(t0), "end": str(t0 + 500_000)}
    assert trace_ids(get(live, "/api/traces", **early)) == [data["a"]]
    late = {"service": "backend", "start": str(t0 + 500_000)}
    assert trace_ids(get(live, "/api/traces", **late)) == [data["b"][16:]]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"minDuration": "100"}, "minDuration"),  # Go durations need a unit
        ({"maxDuration": "1x"}, "maxDuration"),
        ({"minDuration": "2s", "maxDuration": "1s"}, "'maxDuration' should be greater"),
        ({"start": "yesterday"}, "'start'"),
        ({"start": "2000", "end": "1000"}, "'start' must not be after 'end'"),
        ({"limit": "x"}, "'limit'"),
        ({"tags": '{"a":1}'}, "malformed 'tags'"),
        ({"tags": "{nope"}, "malformed 'tags'"),
        ({"tags": 'a="\\x"'}, "malformed 'tags'"),  # logfmt with a bad escape
        ({"tag": "novalue"}, "malformed 'tag'"),
        ({"traceID": "zz"}, "trace_id"),
    ],
)
def test_search_errors(
    live: RunningServer, data: dict[str, Any], params: dict[str, str], says: str
) -> None:
    assert says in v1_error(get(live, "/api/traces", **params), 400)


def test_search_by_trace_ids_names_the_missing(live: RunningServer, data: dict[str, Any]) -> None:
    missing = new_trace_id()
    r = get(live, "/api/traces", traceID=[data["a"], missing])
    assert ok(r) == envelope(
        [trace_a(data)], errors=[{"msg": "trace not found", "traceID": missing}]
    )


# -- v1: trace by id, dependencies -----------------------------------------------------------


def test_trace_by_id(live: RunningServer, data: dict[str, Any]) -> None:
    assert ok(get(live, f"/api/traces/{data['a']}")) == envelope([trace_a(data)])
    # the 64-bit id, printed and looked up in 16 digits
    b = ok(get(live, f"/api/traces/{data['b'][16:]}"))["data"][0]
    assert b["traceID"] == data["b"][16:] and b["spans"][0]["spanID"] == data["tick"]
    assert b["spans"][0]["tags"][-2:] == [
        kv("span.kind", "string", "internal"),
        kv("otel.status_code", "string", "OK"),
    ]
    # start/end (µs) bound the spans read
    t0 = data["t0"] // 1000
    part = ok(get(live, f"/api/traces/{data['a']}", start=str(t0 + 1), end=str(t0 + 5000)))
    assert [s["spanID"] for s in part["data"][0]["spans"]] == [data["call"]]
    # Grafana's data source sends these bounds in milliseconds: read by their size
    ms = {"start": str(t0 // 1000 - 1), "end": str(t0 // 1000 + 10)}
    assert ok(get(live, f"/api/traces/{data['a']}", **ms)) == envelope([trace_a(data)])
    assert v1_error(get(live, f"/api/traces/{new_trace_id()}"), 404) == "trace not found"
    assert "trace_id" in v1_error(get(live, "/api/traces/not-an-id"), 400)
    assert "'start'" in v1_error(get(live, f"/api/traces/{data['a']}", start="-1"), 400)


def test_trace_is_the_same_spans_as_the_native_api(
    live: RunningServer, data: dict[str, Any]
) -> None:
    native = httpx.get(f"{live.url}/api/traces/{data['a']}", headers=live.headers()).json()
    jaeger = ok(get(live, f"/api/traces/{data['a']}"))["data"][0]
    assert [s["spanId"] for s in native["spans"]] == [s["spanID"] for s in jaeger["spans"]]
    for n, j in zip(native["spans"], jaeger["spans"], strict=True):
        assert j["operationName"] == n["name"]
        assert j["startTime"] == int(n["startTimeUnixNano"]) // 1000
        assert j["duration"] == round(n["durationMs"] * 1000)
        assert jaeger["processes"][j["processID"]]["serviceName"] == n["service"]


def test_dependencies(live: RunningServer, data: dict[str, Any]) -> None:
    end_ms = time.time_ns() // MS
    found = ok(get(live, "/api/dependencies", endTs=str(end_ms), lookback=str(3600_000)))
    assert found == envelope([{"parent": "frontend", "child": "backend", "callCount": 1}])
    assert ok(get(live, "/api/dependencies", service="backend"))["data"] == found["data"]
    assert ok(get(live, "/api/dependencies", service="nobody"))["data"] == []
    old = ok(get(live, "/api/dependencies", endTs=str(end_ms - 3600_000), lookback="60000"))
    assert old["data"] == []
    assert "'lookback'" in v1_error(get(live, "/api/dependencies", lookback="1h"), 400)


# -- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/services", "/api/traces", "/api/v3/services"])
def test_tokens_as_on_api(live: RunningServer, data: dict[str, Any], path: str) -> None:
    check = v3_error if "/v3/" in path else v1_error
    r = get(live, path, token=None)
    assert "missing token" in check(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "unknown token" in check(get(live, path, token="wrong"), 401)
    assert "'read' scope" in check(get(live, path, token=INGEST_ONLY), 403)


def test_another_tenant_sees_none_of_it(live: RunningServer, data: dict[str, Any]) -> None:
    assert v1_error(get(live, f"/api/traces/{data['a']}", token=T2), 404)
    assert ok(get(live, "/api/traces", token=T2, service="frontend"))["data"] == []
    assert ok(get(live, "/api/dependencies", token=T2))["data"] == []


# -- api_v3 ------------------------------------------------------------------------------------


def test_v3_services_and_operations(live: RunningServer, data: dict[str, Any]) -> None:
    assert ok(get(live, "/api/v3/services")) == {"services": ["backend", "frontend"]}
    ops = ok(get(live, "/api/v3/operations", service="backend"))
    assert ops == {
        "operations": [
            {"name": "POST /price", "spanKind": "server"},
            {"name": "cron tick", "spanKind": "internal"},
        ]
    }
    for name in ("spanKind", "span_kind"):
        one = ok(get(live, "/api/v3/operations", service="backend", **{name: "server"}))
        assert one == {"operations": [{"name": "POST /price", "spanKind": "server"}]}
    # present even when empty: the Jaeger UI's api_v3 client requires the list
    assert ok(get(live, "/api/v3/operations", service="nobody")) == {"operations": []}
    assert v3_error(get(live, "/api/v3/operations"), 400)


def otlp_span_keys(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for rs in result["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]


def test_v3_trace_by_id_is_otlp_json_in_result(live: RunningServer, data: dict[str, Any]) -> None:
    found = ok(get(live, f"/api/v3/traces/{data['a']}"))
    assert list(found) == ["result"]
    native = httpx.get(
        f"{live.url}/api/traces/{data['a']}", params={"format": "otlp"}, headers=live.headers()
    ).json()
    assert found["result"] == native
    # the snapshot's structure: resource, scope, spans with hex ids and numeric enums
    first = found["result"]["resourceSpans"][0]
    assert set(first) >= {"resource", "scopeSpans"} and "scope" in first["scopeSpans"][0]
    spans = {s["spanId"]: s for s in otlp_span_keys(found["result"])}
    root = spans[data["root"]]
    assert root["traceId"] == data["a"] and root["kind"] == 2
    assert root["status"] == {"code": 2, "message": "boom"}
    assert spans[data["price"]]["parentSpanId"] == data["call"]
    assert spans[data["price"]]["links"][0]["traceId"] == data["b"]
    # base64 ids too, and the 64-bit one in 16 digits
    as_b64 = base64.urlsafe_b64encode(bytes.fromhex(data["a"])).decode().rstrip("=")
    assert ok(get(live, f"/api/v3/traces/{as_b64}")) == found
    assert ok(get(live, f"/api/v3/traces/{data['b'][16:]}"))["result"]
    window = {"startTime": "2000-01-01T00:00:00Z", "end_time": "2000-01-02T00:00:00Z"}
    assert v3_error(get(live, f"/api/v3/traces/{data['a']}", **window), 404) == "No traces found"
    assert v3_error(get(live, f"/api/v3/traces/{new_trace_id()}"), 404) == "No traces found"
    assert "trace_id" in v3_error(get(live, "/api/v3/traces/@@"), 400)
    assert "rawTraces" in v3_error(get(live, f"/api/v3/traces/{data['a']}", rawTraces="maybe"), 400)


def window(data: dict[str, Any], camel: bool) -> dict[str, str]:
    lo = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(data["t0"] // SECOND - 60))
    hi = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(data["t0"] // SECOND + 60))
    if camel:
        return {"query.startTimeMin": lo, "query.startTimeMax": hi}
    return {"query.start_time_min": lo, "query.start_time_max": hi}


@pytest.mark.parametrize("camel", [True, False], ids=["camelCase", "snake_case"])
def test_v3_find_traces(live: RunningServer, data: dict[str, Any], camel: bool) -> None:
    def names(params: dict[str, str]) -> dict[str, str]:
        return {
            (
                k
                if camel
                else "query." + "".join("_" + c.lower() if c.isupper() else c for c in k[6:])
            ): v
            for k, v in params.items()
        }

    def found(**params: str) -> set[str]:
        r = get(live, "/api/v3/traces", **window(data, camel), **names(params))
        if r.status_code == 404:
            assert v3_error(r, 404) == "No traces found"
            return set()
        return {s["traceId"] for s in otlp_span_keys(ok(r)["result"])}

    assert found(**{"query.serviceName": "backend"}) == {data["a"], data["b"]}
    assert found(**{"query.serviceName": "frontend", "query.operationName": "GET /cart"}) == {
        data["a"]
    }
    assert found(**{"query.serviceName": "backend", "query.searchDepth": "1"}) == {data["b"]}
    # the Jaeger UI's api_v3 client sends the operation as query.span_name
    span_name = {"query.service_name": "backend", "query.span_name": "cron tick"}
    r = get(live, "/api/v3/traces", **window(data, camel), **span_name)
    assert {s["traceId"] for s in otlp_span_keys(ok(r)["result"])} == {data["b"]}
    assert found(**{"query.serviceName": "backend", "query.durationMin": "100ms"}) == {data["b"]}
    assert found(**{"query.serviceName": "backend", "query.durationMax": "100ms"}) == {data["a"]}
    attrs = {"query.serviceName": "frontend", "query.attributes": '{"http.status_code":"500"}'}
    assert found(**attrs) == {data["a"]}
    assert found(**{"query.serviceName": "nobody"}) == set()


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({}, "query.startTimeMin and query.startTimeMax are required"),
        ({"query.startTimeMin": "2024-01-01", "query.startTimeMax": "x"}, "query.startTimeMin"),
        (
            {
                "query.start_time_min": "2024-01-02T00:00:00Z",
                "query.start_time_max": "2024-01-01T00:00:00Z",
            },
            "must be before",
        ),
        ({"query.filter": "{}"}, "query.filter"),
        ({"query.attributes": "[1]"}, "query.attributes"),
        ({"query.num_traces": "many"}, "query.num_traces"),
        ({"query.searchDepth": "0"}, "query.searchDepth"),
        ({"query.duration_min": "5"}, "query.duration_min"),
    ],
)
def test_v3_search_errors(
    live: RunningServer, data: dict[str, Any], params: dict[str, str], says: str
) -> None:
    has_times = not params or any("time" in k.lower() for k in params)
    full = params if has_times else {**window(data, True), **params}
    for path in ("/api/v3/traces", "/api/v3/trace-summaries"):
        assert says in v3_error(get(live, path, **full), 400)


def test_v3_trace_summaries(live: RunningServer, data: dict[str, Any]) -> None:
    t0 = data["t0"]
    r = get(
        live, "/api/v3/trace-summaries", **window(data, True), **{"query.serviceName": "backend"}
    )
    assert ok(r) == {
        "summaries": [
            {
                "traceId": data["b"],
                "rootServiceName": "backend",
                "rootOperationName": "cron tick",
                "minStartTimeUnixNano": str(t0 + SECOND),
                "maxEndTimeUnixNano": str(t0 + SECOND + 200 * MS),
                "spanCount": 1,
                "services": [{"name": "backend", "spanCount": 1}],
            },
            {
                "traceId": data["a"],
                "rootServiceName": "frontend",
                "rootOperationName": "GET /cart",
                "minStartTimeUnixNano": str(t0),
                "maxEndTimeUnixNano": str(t0 + 50 * MS),
                "spanCount": 3,
                "errorSpanCount": 1,
                "services": [
                    {"name": "backend", "spanCount": 1},
                    {"name": "frontend", "spanCount": 2, "errorSpanCount": 1},
                ],
            },
        ]
    }
    none = get(
        live, "/api/v3/trace-summaries", **window(data, False), **{"query.service_name": "x"}
    )
    assert ok(none) == {"summaries": []}


# -- spans from the OpenTelemetry SDK ----------------------------------------------------------


def test_sdk_spans_read_the_same_through_api_and_jaeger(live: RunningServer) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode

    exporter = OTLPSpanExporter(
        endpoint=f"{live.url}/v1/traces", headers={"Authorization": f"Bearer {T1}"}
    )
    provider = TracerProvider(
        resource=Resource.create({"service.name": "sdk-shop", "deployment.environment": "test"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("sdk-scope", "1.2.3")
    try:
        with tracer.start_as_current_span("enqueue", kind=SpanKind.PRODUCER) as producer:
            pass
        link = Link(producer.get_span_context(), {"link.kind": "batch"})
        with tracer.start_as_current_span(
            "GET /orders", kind=SpanKind.SERVER, attributes={"http.route": "/orders"}, links=[link]
        ) as root:
            root.add_event("order.loaded", {"order.id": 42})
            with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT):
                pass
            root.set_status(Status(StatusCode.ERROR, "boom"))
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")
    native = httpx.get(f"{live.url}/api/traces/{trace_id}", headers=live.headers()).json()
    jaeger = ok(get(live, f"/api/traces/{trace_id}"))["data"][0]
    by_id = {s["spanID"]: s for s in jaeger["spans"]}
    assert set(by_id) == {s["spanId"] for s in native["spans"]}
    # one resource, one process: the service name, and the other resource attributes as tags
    assert list(jaeger["processes"]) == ["p1"]
    process = jaeger["processes"]["p1"]
    assert process["serviceName"] == "sdk-shop"
    resource = {t["key"]: (t["type"], t["value"]) for t in process["tags"]}
    assert "service.name" not in resource
    assert resource["deployment.environment"] == ("string", "test")
    assert resource["telemetry.sdk.language"] == ("string", "python")
    for n in native["spans"]:
        j = by_id[n["spanId"]]
        assert j["operationName"] == n["name"]
        assert (j["startTime"], j["duration"]) == (
            int(n["startTimeUnixNano"]) // 1000,
            (int(n["endTimeUnixNano"]) - int(n["startTimeUnixNano"])) // 1000,
        )
        tags = {t["key"]: t["value"] for t in j["tags"]}
        assert tags["span.kind"] == n["kind"].removeprefix("SPAN_KIND_").lower()
        assert tags["otel.scope.name"] == "sdk-scope" and tags["otel.scope.version"] == "1.2.3"
        assert {k: tags[k] for k in n["attributes"]} == n["attributes"]
        refs = [r for r in j["references"] if r["refType"] == "CHILD_OF"]
        assert [r["spanID"] for r in refs] == ([n["parentSpanId"]] if n["parentSpanId"] else [])
    root_j = by_id[format(root.get_span_context().span_id, "016x")]
    assert root_j["logs"] == [
        {
            "timestamp": root_j["logs"][0]["timestamp"],
            "fields": [kv("event", "string", "order.loaded"), kv("order.id", "int64", 42)],
        }
    ]
    assert {"key": "error", "type": "bool", "value": True} in root_j["tags"]
    producer_id = format(producer.get_span_context().span_id, "016x")
    producer_trace = format(producer.get_span_context().trace_id, "032x")
    assert {"refType": "FOLLOWS_FROM", "traceID": producer_trace, "spanID": producer_id} in root_j[
        "references"
    ]
    # api_v3 holds the very spans of /api/traces/{id}?format=otlp
    v3 = ok(get(live, f"/api/v3/traces/{trace_id}"))["result"]
    assert {s["spanId"] for s in otlp_span_keys(v3)} == set(by_id)


def test_v3_trace_matches_jaegers_get_trace_snapshot(live: RunningServer) -> None:
    """apiv3/snapshots/GetTrace.json, written out: one span (kind 2, name "foobar", status
    code 2) of trace ...01, span ...02, with an empty resource and scope. The snapshot's span
    has no times (they were zero there); this one's are now."""
    start = now_ns()
    trace_id, span_id = "0" * 31 + "1", "0" * 15 + "2"
    sent = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": "foobar",
        "kind": 2,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + MS),
        "status": {"code": 2},
    }
    request = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": [sent]}]}]}
    post(live.url, "traces", request, {"Authorization": f"Bearer {T2}"})
    snapshot = {
        "result": {
            "resourceSpans": [
                {
                    "resource": {},
                    "scopeSpans": [
                        {
                            "scope": {},
                            "spans": [
                                {
                                    "kind": 2,
                                    "name": "foobar",
                                    "spanId": span_id,
                                    "status": {"code": 2},
                                    "traceId": trace_id,
                                    "startTimeUnixNano": str(start),
                                    "endTimeUnixNano": str(start + MS),
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    }
    assert ok(get(live, f"/api/v3/traces/{trace_id}", token=T2)) == snapshot
    # Jaeger prints this 64-bit id in 16 digits in the v1 model
    assert ok(get(live, "/api/traces/1", token=T2))["data"][0]["traceID"] == "0" * 15 + "1"
