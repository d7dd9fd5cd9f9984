"""``otterscope.client.middleware`` (ASGI and WSGI) against a real otterscope server.

A Starlette application (through httpx's ASGITransport), hand-written ASGI applications
and a WSGI application served by wsgiref make requests; after a flush the server must hold
one SERVER span per request named after the route template, children of the caller's
``traceparent``, with the application's own spans and logs under them, and the request
counter and duration histogram labelled by method, route and status code.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from otterscope.client import Telemetry
from otterscope.client.middleware import DURATION_BOUNDARIES, ASGIMiddleware, WSGIMiddleware
from tests.conftest import RunningServer, start_server
from tests.test_client import fetch_metrics, get_trace, normalized


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("middleware"))
    yield running
    if running.proc is not None:
        running.kill()


def service() -> str:
    return f"mw-{uuid.uuid4().hex[:10]}"


def traces_by_root(server: RunningServer, name: str) -> list[tuple[str, dict[str, Any]]]:
    """Every trace of service ``name`` as (its SERVER span's name, its spans by name)."""
    r = httpx.get(f"{server.url}/api/traces", params={"service": name})
    assert r.status_code == 200, r.text
    out = []
    for found in r.json()["traces"]:
        spans = get_trace(server, found["traceId"])
        server_spans = [s for s in spans.values() if s["kind"] == "SPAN_KIND_SERVER"]
        assert len(server_spans) == 1, spans
        out.append((server_spans[0]["name"], spans))
    return sorted(out, key=lambda item: item[0])


def server_span(roots: list[tuple[str, dict[str, Any]]], name: str) -> dict[str, Any]:
    (spans,) = [spans for root, spans in roots if root == name]
    return dict(spans[name])


def value(text: str) -> Any:
    """A normalized attribute value (AnyValue JSON text) as plain Python."""
    return next(iter(json.loads(text).values()))


def request_counts(server: RunningServer, name: str) -> dict[tuple[str, str, int], int]:
    """``http.server.requests`` per (method, route, status), summed over the stored points."""
    got = normalized(fetch_metrics(server, name))["http.server.requests"]
    assert (got["kind"], got["temporality"], got["monotonic"]) == ("sum", 1, True)
    assert got["unit"] == "{request}"
    counts: dict[tuple[str, str, int], int] = {}
    for point in got["points"]:
        attrs = {k: value(v) for k, v in point["attributes"]}
        key = (
            attrs["http.request.method"],
            attrs["http.route"],
            int(attrs["http.response.status_code"]),
        )
        counts[key] = counts.get(key, 0) + int(point["asInt"])
    return counts


# -- ASGI ------------------------------------------------------------------------------


def starlette_app(t: Telemetry) -> Starlette:
    async def item(request: Request) -> Response:
        with t.span("load item", attributes={"item.id": request.path_params["id"]}):
            t.log("loading item")
        return JSONResponse({"id": request.path_params["id"]})

    async def boom(request: Request) -> Response:
        raise RuntimeError("kaput")

    async def user(request: Request) -> Response:
        return PlainTextResponse("user")

    async def create(request: Request) -> Response:
        return PlainTextResponse("made", status_code=201)

    return Starlette(
        routes=[
            Route("/items/{id}", item),
            Route("/boom", boom),
            Route("/things", create, methods=["POST"]),
            Mount("/api", routes=[Route("/users/{uid}", user)]),
        ]
    )


async def call(app: Any, requests: list[tuple[str, str, dict[str, str]]]) -> list[int]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        return [
            (await client.request(method, path, headers=headers)).status_code
            for method, path, headers in requests
        ]


def test_starlette_requests_become_server_spans_and_red_metrics(server: RunningServer) -> None:
    name = service()
    t = Telemetry(service_name=name, endpoint=server.url)
    caller_trace, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    statuses = asyncio.run(
        call(
            ASGIMiddleware(starlette_app(t), t),
            [
                ("GET", "/items/1", {}),
                ("GET", "/items/2", {"traceparent": f"00-{caller_trace}-{caller_span}-01"}),
                ("GET", "/api/users/7", {}),
                ("GET", "/nope/123", {}),
                ("GET", "/boom", {}),
                ("GET", "/things", {}),
                ("POST", "/things", {}),
                ("BREW", "/items/3", {}),
            ],
        )
    )
    assert statuses == [200, 200, 200, 404, 500, 405, 201, 405]
    assert t.flush(), t.last_error

    # The caller's trace: the server span is its child, the handler's span is ours.
    spans = get_trace(server, caller_trace)
    assert set(spans) == {"GET /items/{id}", "load item"}
    top = spans["GET /items/{id}"]
    assert top["parentSpanId"] == caller_span
    assert top["kind"] == "SPAN_KIND_SERVER"
    assert top["attributes"] == {
        "http.request.method": "GET",
        "http.route": "/items/{id}",
        "http.response.status_code": 200,
        "url.path": "/items/2",
        "url.scheme": "http",
    }
    assert top["status"]["code"] == "STATUS_CODE_UNSET"
    assert spans["load item"]["parentSpanId"] == top["spanId"]
    r = httpx.get(f"{server.url}/api/logs", params={"service": name, "traceId": caller_trace})
    assert [(x["body"], x["spanId"]) for x in r.json()["logs"]] == [
        ("loading item", spans["load item"]["spanId"])
    ]

    roots = traces_by_root(server, name)
    assert [root for root, _ in roots] == [
        "GET /api/users/{uid}",
        "GET /boom",
        "GET /items/{id}",
        "GET /items/{id}",
        "GET /things",
        "GET unmatched",
        "POST /things",
        "_OTHER /items/{id}",
    ]
    boom = server_span(roots, "GET /boom")
    assert boom["status"]["code"] == "STATUS_CODE_ERROR"
    assert boom["attributes"]["http.response.status_code"] == 500
    assert boom["attributes"]["error.type"] == "RuntimeError"
    (event,) = boom["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.message"] == "kaput"
    assert server_span(roots, "GET unmatched")["attributes"]["url.path"] == "/nope/123"
    brew = server_span(roots, "_OTHER /items/{id}")["attributes"]
    assert brew["http.request.method_original"] == "BREW"
    # 4xx is not an error on a server span.
    assert server_span(roots, "GET /things")["status"]["code"] == "STATUS_CODE_UNSET"

    assert request_counts(server, name) == {
        ("GET", "/items/{id}", 200): 2,
        ("GET", "/api/users/{uid}", 200): 1,
        ("GET", "unmatched", 404): 1,
        ("GET", "/boom", 500): 1,
        ("GET", "/things", 405): 1,
        ("POST", "/things", 201): 1,
        ("_OTHER", "/items/{id}", 405): 1,
    }
    duration = normalized(fetch_metrics(server, name))["http.server.request.duration"]
    assert (duration["kind"], duration["unit"], duration["temporality"]) == ("histogram", "s", 1)
    assert sum(int(p["count"]) for p in duration["points"]) == 8
    for point in duration["points"]:
        assert point["explicitBounds"] == list(DURATION_BOUNDARIES)
        assert 0 <= point["min"] <= point["max"] < 10


def test_a_raw_asgi_app_with_a_resolver_lifespan_and_flush_each_request(
    server: RunningServer,
) -> None:
    name = service()
    t = Telemetry(service_name=name, endpoint=server.url)
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        if scope["type"] == "lifespan":
            return
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def resolver(scope: Any) -> str | None:
        return "/orders/{id}" if re.fullmatch(r"/orders/\d+", scope["path"]) else None

    wrapped = ASGIMiddleware(app, t, flush_each_request=True, route_resolver=resolver)
    asyncio.run(wrapped({"type": "lifespan"}, None, None))  # type: ignore[arg-type]
    assert asyncio.run(call(wrapped, [("DELETE", "/orders/12", {}), ("GET", "/x/1", {})])) == [
        204,
        204,
    ]
    assert seen == ["lifespan", "http", "http"]
    assert t.pending() == {"traces": 0, "metrics": 0, "logs": 0}  # flushed per request
    assert [root for root, _ in traces_by_root(server, name)] == [
        "DELETE /orders/{id}",
        "GET unmatched",
    ]

    # With the raw-path fallback, an unresolved request is named after its path.
    raw = Telemetry(service_name=service(), endpoint=server.url)
    fallback = ASGIMiddleware(app, raw, route_resolver=resolver, raw_path_fallback=True)
    asyncio.run(call(fallback, [("GET", "/x/1", {})]))
    assert raw.flush()
    assert [root for root, _ in traces_by_root(server, raw.service_name)] == ["GET /x/1"]


# -- WSGI ------------------------------------------------------------------------------


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def wsgi_app(t: Telemetry) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path.startswith("/items/"):
            with t.span("load item"):
                t.log("loading item")
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"item"]
        if path == "/stream":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return (chunk for chunk in (b"a", b"b", b"c"))
        if path == "/boom":
            raise ValueError("bad input")
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no"]

    return app


def resolve(environ: dict[str, Any]) -> str | None:
    path = environ["PATH_INFO"]
    if re.fullmatch(r"/items/[^/]+", path):
        return "/items/{id}"
    return path if path in ("/stream", "/boom") else None


def test_wsgi_requests_become_server_spans_and_red_metrics(server: RunningServer) -> None:
    name = service()
    t = Telemetry(service_name=name, endpoint=server.url)
    httpd = make_server(
        "127.0.0.1",
        0,
        WSGIMiddleware(wsgi_app(t), t, route_resolver=resolve),
        handler_class=QuietHandler,
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    caller_trace, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        statuses = [
            httpx.get(f"{base}{path}", headers=headers).status_code
            for path, headers in (
                ("/items/9", {"traceparent": f"00-{caller_trace}-{caller_span}-01"}),
                ("/stream", {}),
                ("/boom", {}),
                ("/elsewhere", {}),
            )
        ]
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert statuses == [200, 200, 500, 404]
    assert t.flush(), t.last_error

    spans = get_trace(server, caller_trace)
    top = spans["GET /items/{id}"]
    assert top["parentSpanId"] == caller_span
    assert top["attributes"]["http.route"] == "/items/{id}"
    assert top["attributes"]["http.response.status_code"] == 200
    assert top["attributes"]["url.path"] == "/items/9"
    assert spans["load item"]["parentSpanId"] == top["spanId"]

    roots = traces_by_root(server, name)
    assert [root for root, _ in roots] == [
        "GET /boom",
        "GET /items/{id}",
        "GET /stream",
        "GET unmatched",
    ]
    boom = server_span(roots, "GET /boom")
    assert boom["status"]["code"] == "STATUS_CODE_ERROR"
    assert boom["attributes"]["http.response.status_code"] == 500
    assert boom["attributes"]["error.type"] == "ValueError"
    assert boom["events"][0]["attributes"]["exception.message"] == "bad input"
    assert request_counts(server, name) == {
        ("GET", "/items/{id}", 200): 1,
        ("GET", "/stream", 200): 1,
        ("GET", "/boom", 500): 1,
        ("GET", "unmatched", 404): 1,
    }


def test_wsgi_body_close_ends_the_span_once() -> None:
    ended: list[str] = []
    t = Telemetry(service_name="close")
    original = t._finish

    def finish(span: Any) -> None:
        ended.append(span.name)
        original(span)

    t._finish = finish  # type: ignore[method-assign]

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return iter([b"x", b"y"])

    def start_response(*args: Any) -> Any:
        return None

    wrapped = WSGIMiddleware(app, t, raw_path_fallback=True)
    body = wrapped({"REQUEST_METHOD": "GET", "PATH_INFO": "/p"}, start_response)
    assert ended == []  # the request is not over until the server closes the body
    assert b"".join(body) == b"xy"
    body.close()  # type: ignore[attr-defined]
    body.close()  # type: ignore[attr-defined]
    assert ended == ["GET /p"]
