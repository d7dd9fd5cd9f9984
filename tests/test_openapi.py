"""``/openapi.json``: complete, valid OpenAPI 3.1, true to the real responses, and fuzzed.

One server (tokens required) serves the whole module: first the document is compared with
the app's routes and checked as OpenAPI 3.1, then real data is sent and every GET endpoint's
answer is validated against its documented schema, known server errors are pinned (strict
xfail), and last schemathesis fuzzes every operation against the served document.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import re
from collections.abc import Iterator
from typing import Any, cast

import httpx
import jsonschema_rs
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR
from starlette.routing import Route, WebSocketRoute

from otterscope.api.app import build_app
from otterscope.api.openapi import DOCUMENT
from otterscope.ingest.http import OtlpHttpReceiver
from tests.conftest import RunningServer, start_server
from tests.payloads import (
    SECOND,
    attr,
    gauge_body,
    log,
    logs_body,
    new_span_id,
    new_trace_id,
    now_ns,
    post,
    span,
    traces_body,
)

TOKEN = "openapi-admin-token"
READ_ONLY = "openapi-read-token"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = {
        "auth": {
            "tokens": [
                {"token": TOKEN, "tenant": "default"},
                {"token": READ_ONLY, "tenant": "default", "scopes": ["read"]},
            ]
        }
    }
    running = start_server(tmp_path_factory.mktemp("openapi"), config)
    running.token = TOKEN
    yield running
    if running.proc is not None:
        running.kill()


# -- the document against the routes ---------------------------------------------------------


def _normal(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def asgi_status(app: Any, method: str, path: str) -> int:
    """The status ``app`` answers ``method path`` with (no body, no headers)."""
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode()}
    scope.update(headers=[], query_string=b"", http_version="1.1", scheme="http")
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        asyncio.run(app(scope, receive, send))
    except AttributeError:  # got past the method check, to the store nothing was given
        return 500
    return int(sent[0]["status"])


def served_operations() -> set[tuple[str, str]]:
    """(path, method) of every route the app serves, built as ``server.py`` builds it.

    HEAD (added by Starlette to every GET) is left out. A route registered for every method
    (the OTLP paths) serves only the methods that do not answer 405, which is asked of the
    app itself: a 405 needs no store, a served method fails on the store it was not given.
    """
    app = build_app(cast(Any, None), OtlpHttpReceiver(cast(Any, None), cast(Any, None)))
    served: set[tuple[str, str]] = set()
    for route in cast(Any, app).routes:
        if isinstance(route, WebSocketRoute):
            served.add((_normal(route.path), "get"))
            continue
        assert isinstance(route, Route), route
        methods = set(route.methods or ()) - {"HEAD"}
        for method in methods:
            if len(methods) > 2 and asgi_status(app, method, route.path) == 405:
                continue
            served.add((_normal(route.path), method.lower()))
    return served


def documented_operations() -> set[tuple[str, str]]:
    return {
        (_normal(path), method)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in METHODS
    }


def test_every_route_is_documented() -> None:
    served, documented = served_operations(), documented_operations()
    assert ("/v1/traces", "post") in served and ("/v1/traces", "get") in served
    assert ("/v1/logs", "put") not in served
    assert served - documented == set(), "served but not in /openapi.json"
    assert documented - served == set(), "in /openapi.json but not served"


def test_document_is_valid_openapi_31() -> None:
    OPENAPI_31_VALIDATOR.validate(DOCUMENT)
    for name, schema in DOCUMENT["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name
    loaded = schemathesis.openapi.from_dict(DOCUMENT)
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) == len(documented_operations())
    if importlib.util.find_spec("openapi_spec_validator"):  # not a dependency; used if there
        from openapi_spec_validator import validate

        validate(DOCUMENT)


def test_served_document(live: RunningServer) -> None:
    r = httpx.get(f"{live.url}/openapi.json")  # no token needed
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == DOCUMENT
    bad = httpx.get(f"{live.url}/openapi.json", params={"x": "1"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad_request"


def test_security() -> None:
    assert DOCUMENT["security"] == [{"bearerAuth": []}]
    public = {
        path: item["get"]["security"]
        for path, item in DOCUMENT["paths"].items()
        if "security" in item.get("get", {})
    }
    assert public == {
        "/health": [{}, {"bearerAuth": []}],
        "/ready": [],
        "/openapi.json": [],
        # The UI's files are public: the page signs in against the API itself.
        "/": [],
        "/ui": [],
        "/ui/{path}": [],
    }


# -- real responses against their schemas ----------------------------------------------------


def response_schema(
    path: str, method: str, status: int, media: str = "application/json"
) -> dict[str, Any]:
    """The documented schema of one answer, with the components it refers to."""
    response = DOCUMENT["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = DOCUMENT["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"][media]["schema"]
    return {**schema, "components": DOCUMENT["components"]}


def check(r: httpx.Response, path: str, method: str = "get") -> Any:
    """``r`` must be documented for ``path``/``method``, and its JSON body must validate."""
    responses = DOCUMENT["paths"][path][method]["responses"]
    assert str(r.status_code) in responses, (r.status_code, r.text)
    media = r.headers["content-type"].split(";")[0]
    body = r.json()
    validator = jsonschema_rs.Draft202012Validator(
        response_schema(path, method, r.status_code, media)
    )
    errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, (path, r.status_code, errors, body)
    return body


@pytest.fixture(scope="module")
def data(live: RunningServer) -> dict[str, str]:
    """Spans (rich attributes, events, links), logs and gauge points, all sent over OTLP/JSON."""
    t0 = now_ns() - 60 * SECOND
    trace_id, root, child = new_trace_id(), new_span_id(), new_span_id()
    rich = [
        attr("http.response.status_code", 500),
        attr("ok", True),
        attr("ratio", 0.5),
        {"key": "big", "value": {"intValue": str(2**60)}},
        {"key": "raw", "value": {"bytesValue": base64.b64encode(b"\x00\x01").decode()}},
        {"key": "list", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
        {"key": "map", "value": {"kvlistValue": {"values": [attr("k", 1)]}}},
        {"key": "inf", "value": {"doubleValue": "Infinity"}},
    ]
    spans = [
        span(trace_id, root, "GET /cart", t0, 42 * 10**6, status=2),
        span(trace_id, child, "SELECT", t0 + 10**6, 10**6, parent=root, kind=3),
    ]
    spans[0]["attributes"] = rich
    spans[0]["events"] = [{"timeUnixNano": str(t0), "name": "retry", "attributes": rich}]
    spans[1]["links"] = [{"traceId": new_trace_id(), "spanId": new_span_id(), "attributes": rich}]
    spans[1]["kind"] = 9  # a kind this version does not know: an integer in the answer
    orphan = span(new_trace_id(), new_span_id(), "orphan", t0, parent=new_span_id())
    headers = live.headers()
    post(live.url, "traces", traces_body("checkout", [*spans, orphan]), headers)
    record = log("payment failed", t0, severity=17, attributes={"order.id": 1234})
    record.update(traceId=trace_id, spanId=root)
    kv = log("structured", t0 + 1)
    kv["body"] = {"kvlistValue": {"values": rich}}
    post(live.url, "logs", logs_body("checkout", [record, kv]), headers)
    points = [(t0, 3.0), (t0 + 1, 4.0)]
    post(live.url, "metrics", gauge_body("checkout", "queue.depth", points), headers)
    return {"trace": trace_id, "span": root, "start": str(t0 - SECOND)}


GETS = [
    ("/api/traces", "/api/traces", {"service": "checkout"}),
    ("/api/traces", "/api/traces", {"attr.http.response.status_code": "500", "limit": "1"}),
    ("/api/traces/{traceId}", "/api/traces/{trace}", {}),
    ("/api/traces/{traceId}", "/api/traces/{trace}", {"format": "otlp"}),
    ("/api/services/{service}/operations", "/api/services/checkout/operations", {}),
    ("/api/logs", "/api/logs", {"traceId": "{trace}", "severity": "warn"}),
    ("/api/logs", "/api/logs", {"limit": "1"}),
    ("/api/logs/volume", "/api/logs/volume", {"start": "{start}", "step": "1m"}),
    ("/api/logs/volume", "/api/logs/volume", {"traceId": "{trace}", "severity": "warn"}),
    ("/api/attributes", "/api/attributes", {"signal": "logs"}),
    ("/api/attributes/{key}/values", "/api/attributes/big/values", {}),
    ("/api/attributes/{key}/values", "/api/attributes/raw/values", {}),
    ("/api/attributes/{key}/values", "/api/attributes/map/values", {}),
    ("/v1/traces", "/v1/traces", {}),
    ("/v1/traces/{traceId}", "/v1/traces/{trace}", {}),
    ("/v1/traces/{traceId}/spans", "/v1/traces/{trace}/spans", {}),
    ("/v1/traces/{traceId}/spans/{spanId}", "/v1/traces/{trace}/spans/{span}", {}),
    ("/spans", "/spans", {"limit": "5"}),
    ("/health", "/health", {}),
    ("/ready", "/ready", {}),
    ("/jaeger/api/services", "/jaeger/api/services", {}),
    ("/jaeger/api/services/{service}/operations", "/jaeger/api/services/checkout/operations", {}),
    ("/jaeger/api/operations", "/jaeger/api/operations", {"service": "checkout"}),
    ("/jaeger/api/traces", "/jaeger/api/traces", {"service": "checkout"}),
    ("/jaeger/api/traces/{trace_id}", "/jaeger/api/traces/{trace}", {}),
    ("/jaeger/api/dependencies", "/jaeger/api/dependencies", {}),
    ("/jaeger/api/v3/services", "/jaeger/api/v3/services", {}),
    ("/jaeger/api/v3/operations", "/jaeger/api/v3/operations", {"service": "checkout"}),
    ("/jaeger/api/v3/traces/{trace_id}", "/jaeger/api/v3/traces/{trace}", {}),
    ("/tempo/api/status/buildinfo", "/tempo/api/status/buildinfo", {}),
    ("/tempo/api/traces/{trace_id}", "/tempo/api/traces/{trace}", {}),
    ("/tempo/api/v2/traces/{trace_id}", "/tempo/api/v2/traces/{trace}", {}),
    ("/tempo/api/search", "/tempo/api/search", {"q": "{{}}"}),
    ("/tempo/api/search/tags", "/tempo/api/search/tags", {}),
    ("/tempo/api/v2/search/tags", "/tempo/api/v2/search/tags", {}),
    ("/tempo/api/search/tag/{tag}/values", "/tempo/api/search/tag/service.name/values", {}),
    (
        "/tempo/api/v2/search/tag/{tag}/values",
        "/tempo/api/v2/search/tag/resource.service.name/values",
        {},
    ),
]


@pytest.mark.parametrize(("path", "url", "params"), GETS, ids=[f"{g[1]}{g[2]}" for g in GETS])
def test_get_answers_match_their_schemas(
    live: RunningServer, data: dict[str, str], path: str, url: str, params: dict[str, str]
) -> None:
    url = url.format(**data)
    params = {k: v.format(**data) for k, v in params.items()}
    r = httpx.get(f"{live.url}{url}", params=params, headers=live.headers())
    assert r.status_code == 200, r.text
    body = check(r, path)
    assert body, "every answer here has data"


@pytest.mark.parametrize(
    ("signal", "key"),
    [("traces", "resourceSpans"), ("logs", "resourceLogs"), ("metrics", "resourceMetrics")],
)
def test_fetch_answers_match_their_schemas(
    live: RunningServer, data: dict[str, str], signal: str, key: str
) -> None:
    path = f"/api/{signal}/fetch"
    r = httpx.post(
        f"{live.url}{path}",
        json={"startTimeUnixNano": data["start"], "limit": 1},
        headers=live.headers(),
    )
    body = check(r, path, "post")
    assert body[key] and body["nextCursor"]


def test_other_answers_match_their_schemas(live: RunningServer, data: dict[str, str]) -> None:
    url, trace = live.url, data["trace"]
    text = httpx.get(f"{url}/metrics", headers=live.headers())
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    # minimal health, 401, 403, 404 and 400, each as documented
    assert check(httpx.get(f"{url}/health"), "/health") == {"status": "ok"}
    check(httpx.get(f"{url}/api/logs"), "/api/logs")
    read = {"Authorization": f"Bearer {READ_ONLY}"}
    r = httpx.delete(f"{url}/v1/traces/{new_trace_id()}", headers=read)
    assert r.status_code == 403
    check(r, "/v1/traces/{traceId}", "delete")
    r = httpx.get(f"{url}/v1/traces/{new_trace_id()}", headers=read)
    assert r.status_code == 404
    check(r, "/v1/traces/{traceId}")
    r = httpx.get(f"{url}/api/traces", params={"limit": "0"}, headers=read)
    assert r.status_code == 400
    check(r, "/api/traces")
    r = httpx.get(f"{url}/api/logs/volume", params={"step": "1ms"}, headers=read)
    assert r.status_code == 400
    check(r, "/api/logs/volume")
    # OTLP errors are a google.rpc.Status; a 200 is an Export*ServiceResponse
    r = httpx.post(f"{url}/v1/traces", json={})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    check(r, "/v1/traces", "post")
    as_json = {"Content-Type": "application/json"}
    r = httpx.post(f"{url}/v1/logs", content=b"{", headers={**read, **as_json})
    assert r.status_code == 403
    check(r, "/v1/logs", "post")
    r = httpx.post(f"{url}/v1/logs", content=b"{", headers={**live.headers(), **as_json})
    assert r.status_code == 400
    check(r, "/v1/logs", "post")
    bad = traces_body("x", [span("00" * 16, new_span_id(), "bad", now_ns())])
    r = httpx.post(f"{url}/v1/traces", json=bad, headers=live.headers())
    assert check(r, "/v1/traces", "post")["partialSuccess"]["rejectedSpans"] == "1"
    # deleting what is not there is not an error
    r = httpx.delete(f"{url}/v1/traces/{trace}/spans/{new_span_id()}", headers=live.headers())
    assert r.status_code == 204


# -- inputs that once answered 500 ----------------------------------------------------------
# A time of thousands of digits reached int() unchecked; a unix time beyond int64 was taken
# and then could not be sealed into a cursor. Both are 400s now.


@pytest.mark.parametrize(
    ("method", "path", "params", "body"),
    [
        ("GET", "/api/traces", {"start": "9" * 5000}, None),
        ("POST", "/api/logs/fetch", None, {"startTimeUnixNano": "9" * 5000}),
        ("GET", "/api/logs", {"start": "0", "end": "9" * 23, "limit": "1"}, None),
        ("GET", "/api/traces", {"end": "9223372036854775808"}, None),
    ],
)
def test_out_of_range_times_are_400(
    live: RunningServer,
    data: dict[str, str],
    method: str,
    path: str,
    params: dict[str, str] | None,
    body: dict[str, Any] | None,
) -> None:
    r = httpx.request(method, f"{live.url}{path}", params=params, json=body, headers=live.headers())
    assert r.status_code == 400, r.text
    check(r, path, method.lower())


# -- fuzzing ---------------------------------------------------------------------------------
# schemathesis against the served document: its examples, coverage (boundary values, missing
# and malformed parameters, methods a path does not take) and fuzzing phases, positive and
# negative data, with a fixed seed. Every operation is fuzzed, DELETE included: its ids are
# generated, so it never hits the data the tests above read. /api/ws is left out (a WebSocket
# handshake is not something schemathesis can send); so are the `attr.*` filters, which no
# OpenAPI parameter describes, and /openapi.json itself (schemathesis skips the operation its
# document came from; test_served_document covers it).

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


@pytest.fixture(scope="module")
def api_schema(live: RunningServer) -> Any:
    config = schemathesis.Config.from_dict(
        {
            "seed": 20241121,
            "base-url": live.url,
            "auth": {"openapi": {"bearerAuth": {"bearer": TOKEN}}},
            "generation": {
                "max-examples": 25,
                "deterministic": True,
                "database": "none",
                # auth is the token above; 401s are checked by hand, not generated
                "with-security-parameters": False,
            },
            "phases": {"stateful": {"enabled": False}},
        }
    )
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json", config=config)


@pytest.fixture
def _nodeid_shim(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy schemas read ``Node._nodeid``, which pytest 9.2 renamed."""
    node = cast(Any, request.node)
    if not hasattr(node, "_nodeid"):
        node._nodeid = node.nodeid


@schemathesis.pytest.from_fixture("api_schema").exclude(path="/api/ws").parametrize()
@pytest.mark.usefixtures("_nodeid_shim")
def test_fuzz(case: schemathesis.Case, data: dict[str, str]) -> None:
    """Every answer: no 5xx, a documented status and content type, a body matching its schema."""
    case.call_and_validate(checks=CHECKS)
