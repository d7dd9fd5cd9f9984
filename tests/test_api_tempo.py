"""Tempo's HTTP API under /tempo, over a real server, as Grafana's Tempo data source calls
it. Answers are decoded with Tempo's own message definitions (tests/upstream/tempo.proto,
compiled by tests/tempo_proto.py): protobuf answers with ``ParseFromString``, JSON ones
with protobuf's ``json_format`` refusing unknown fields, as Grafana's ``jsonpb`` does.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.protobuf import json_format

from tests.conftest import RunningServer, start_server
from tests.payloads import SECOND, attr, new_span_id, new_trace_id, now_ns, post, span
from tests.tempo_proto import messages

T1, T2, INGEST_ONLY = "tempo-t1-token", "tempo-t2-token", "tempo-ingest-token"
MS = 10**6
PROTOBUF = {"Accept": "application/protobuf"}


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
def pb(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return messages(tmp_path_factory.mktemp("tempopb"))


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
    running = start_server(tmp_path_factory.mktemp("tempo"), config)
    running.token = T1
    yield running
    if running.proc is not None:
        running.kill()


@pytest.fixture(scope="module")
def data(live: RunningServer) -> dict[str, Any]:
    """Trace A: frontend GET /cart (error) calls backend POST /price. Trace B: one backend
    cron span, ten minutes later. Trace C: the other tenant's."""
    t0 = now_ns() - 30 * 60 * SECOND
    a, b = new_trace_id(), new_trace_id()
    root, call, price, tick = (new_span_id() for _ in range(4))
    root_span = span(a, root, "GET /cart", t0, 50 * MS, kind=2, status=2)
    root_span["attributes"] = [attr("http.method", "GET"), attr("http.status_code", 500)]
    call_span = span(a, call, "call backend", t0 + 5 * MS, 20 * MS, parent=root, kind=3)
    price_span = span(a, price, "POST /price", t0 + 6 * MS, 15 * MS, parent=call, kind=2)
    price_span["attributes"] = [attr("ratio", 0.5), attr("cached", True)]
    tick_span = span(b, tick, "cron tick", t0 + 600 * SECOND, 200 * MS, kind=1, status=1)
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


def get(
    live: RunningServer,
    path: str,
    token: str | None = T1,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> httpx.Response:
    sent = {"Authorization": f"Bearer {token}"} if token else {}
    sent.update(headers or {})
    return httpx.get(f"{live.url}/tempo{path}", params=params, headers=sent, timeout=30)


def strict(pb: dict[str, Any], name: str, r: httpx.Response) -> Any:
    """The JSON answer decoded as Grafana decodes it: unknown fields are an error."""
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    return json_format.Parse(r.text, pb[name](), ignore_unknown_fields=False)


def error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def spans_of(trace: Any) -> dict[str, tuple[str, str, int, int]]:
    """span id hex -> (service, name, start, end) of a decoded tempopb.Trace."""
    out = {}
    for rs in trace.resourceSpans:
        service = next(
            a.value.string_value for a in rs.resource.attributes if a.key == "service.name"
        )
        for ss in rs.scope_spans:
            for s in ss.spans:
                out[s.span_id.hex()] = (
                    service,
                    s.name,
                    s.start_time_unix_nano,
                    s.end_time_unix_nano,
                )
    return out


# -- health check, build info ---------------------------------------------------------------


def test_echo_is_grafanas_health_check(live: RunningServer) -> None:
    r = get(live, "/api/echo")
    assert (r.status_code, r.text) == (200, "echo")


def test_buildinfo(live: RunningServer) -> None:
    r = get(live, "/api/status/buildinfo")
    assert r.status_code == 200
    assert set(r.json()) == {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}


def test_auth(live: RunningServer) -> None:
    r = get(live, "/api/echo", token=None)
    error(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    error(get(live, "/api/search", token="wrong"), 401)
    error(get(live, "/api/search/tags", token=INGEST_ONLY), 403)


# -- trace by id ----------------------------------------------------------------------------


def test_trace_v1_protobuf(live: RunningServer, data: dict[str, Any], pb: dict[str, Any]) -> None:
    r = get(live, f"/api/traces/{data['a']}", headers=PROTOBUF)
    assert r.status_code == 200 and r.headers["content-type"] == "application/protobuf"
    trace = pb["Trace"].FromString(r.content)
    found = spans_of(trace)
    t0 = data["t0"]
    assert found == {
        data["root"]: ("frontend", "GET /cart", t0, t0 + 50 * MS),
        data["call"]: ("frontend", "call backend", t0 + 5 * MS, t0 + 25 * MS),
        data["price"]: ("backend", "POST /price", t0 + 6 * MS, t0 + 21 * MS),
    }
    for rs in trace.resourceSpans:
        for ss in rs.scope_spans:
            assert ss.scope.name == "tests"
            for s in ss.spans:
                assert s.trace_id.hex() == data["a"]
                if s.span_id.hex() == data["root"]:
                    assert s.kind == 2 and s.status.code == 2
                    assert {a.key for a in s.attributes} == {"http.method", "http.status_code"}
                if s.span_id.hex() == data["call"]:
                    assert s.parent_span_id.hex() == data["root"]


def test_trace_v2_protobuf_is_a_complete_response(
    live: RunningServer, data: dict[str, Any], pb: dict[str, Any]
) -> None:
    r = get(live, f"/api/v2/traces/{data['a']}", headers=PROTOBUF)
    assert r.status_code == 200 and r.headers["content-type"] == "application/protobuf"
    found = pb["TraceByIDResponse"].FromString(r.content)
    assert found.status == 0  # COMPLETE
    assert found.HasField("trace")
    assert len(spans_of(found.trace)) == 3


def test_trace_json_by_default_and_when_asked(
    live: RunningServer, data: dict[str, Any], pb: dict[str, Any]
) -> None:
    for headers in ({}, {"Accept": "application/json"}):
        r = get(live, f"/api/traces/{data['a']}", headers=headers)
        assert r.status_code == 200 and list(r.json()) == ["batches"]
        # read back as Tempo's UnmarshalFromJSONV1 does: the old field name, then jsonpb
        text = r.text.replace('"batches":', '"resourceSpans":', 1)
        v1 = json_format.Parse(text, pb["Trace"](), ignore_unknown_fields=False)
        assert len(spans_of(v1)) == 3
        v2 = strict(
            pb, "TraceByIDResponse", get(live, f"/api/v2/traces/{data['a']}", headers=headers)
        )
        assert spans_of(v2.trace) == spans_of(v1)
    raw = get(live, f"/api/v2/traces/{data['a']}").json()["trace"]
    first = raw["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    # Tempo's jsonpb: ids in base64, enums by name, 64-bit numbers as strings
    assert base64.b64decode(first["traceId"]).hex() == data["a"]
    assert first["kind"].startswith("SPAN_KIND_")
    assert isinstance(first["startTimeUnixNano"], str)


def test_trace_window_is_honoured(
    live: RunningServer, data: dict[str, Any], pb: dict[str, Any]
) -> None:
    t0s = data["t0"] // SECOND
    for version in ("", "/v2"):
        path = f"/api{version}/traces/{data['b']}"
        assert get(live, path, start=t0s + 590, end=t0s + 610).status_code == 200
        error(get(live, path, start=t0s - 100, end=t0s + 100), 404)
        error(get(live, path, start=t0s + 10, end=t0s + 5), 400)
        error(get(live, path, start="yesterday", end=t0s), 400)


def test_trace_window_answers_the_whole_trace(live: RunningServer, data: dict[str, Any]) -> None:
    """Tempo answers all of a trace that the window's blocks hold: here a trace whose
    second span starts two seconds after its first is answered whole for a window that
    holds only the second."""
    t1 = (data["t0"] // SECOND + 1200) * SECOND
    trace, first, second = new_trace_id(), new_span_id(), new_span_id()
    spans = [
        span(trace, first, "slow job", t1, 5 * SECOND, kind=2),
        span(trace, second, "late step", t1 + 2 * SECOND, SECOND, parent=first),
    ]
    post(
        live.url,
        "traces",
        body({"service.name": "other"}, spans),
        {"Authorization": f"Bearer {T2}"},
    )
    s1 = t1 // SECOND
    r = get(live, f"/api/traces/{trace}", token=T2, start=s1 + 1, end=s1 + 3)
    assert len(r.json()["batches"][0]["scopeSpans"][0]["spans"]) == 2
    error(get(live, f"/api/traces/{trace}", token=T2, start=s1 + 3, end=s1 + 9), 404)


def test_trace_errors(live: RunningServer, data: dict[str, Any]) -> None:
    error(get(live, f"/api/traces/{new_trace_id()}"), 404)
    error(get(live, f"/api/v2/traces/{new_trace_id()}", headers=PROTOBUF), 404)
    error(get(live, "/api/traces/not-a-trace-id"), 400)
    # tenants are apart
    error(get(live, f"/api/traces/{data['a']}", token=T2), 404)


# -- search ---------------------------------------------------------------------------------


def search(live: RunningServer, pb: dict[str, Any], **params: Any) -> Any:
    return strict(pb, "SearchResponse", get(live, "/api/search", **params))


def window(data: dict[str, Any]) -> dict[str, int]:
    return {"start": data["t0"] // SECOND - 60, "end": int(time.time()) + 60}


def test_search_answers_exactly_searchresponse(
    live: RunningServer, data: dict[str, Any], pb: dict[str, Any]
) -> None:
    found = search(live, pb, q="{}", limit=20, spss=3, **window(data))
    by_id = {t.traceID: t for t in found.traces}
    a = by_id[data["a"].lstrip("0")]
    assert (a.rootServiceName, a.rootTraceName) == ("frontend", "GET /cart")
    assert a.startTimeUnixNano == data["t0"]
    assert a.durationMs == 50
    b = by_id[data["b"].lstrip("0")]
    assert (b.rootServiceName, b.rootTraceName, b.durationMs) == ("backend", "cron tick", 200)
    assert len(by_id) == 2  # not the other tenant's
    # newest first
    assert [t.traceID for t in found.traces] == [data["b"].lstrip("0"), data["a"].lstrip("0")]


def test_search_a_trace_without_its_root(live: RunningServer, pb: dict[str, Any]) -> None:
    trace = new_trace_id()
    orphan = span(trace, new_span_id(), "late child", now_ns() - SECOND, MS, parent=new_span_id())
    post(
        live.url,
        "traces",
        body({"service.name": "other"}, [orphan]),
        {"Authorization": f"Bearer {T2}"},
    )
    r = get(live, "/api/search", token=T2, tags='name="late child"')
    found = strict(pb, "SearchResponse", r)
    assert [(t.traceID, t.rootServiceName, t.rootTraceName) for t in found.traces] == [
        (trace.lstrip("0"), "<root span not yet received>", "")
    ]


def test_search_by_tags_and_durations(
    live: RunningServer, data: dict[str, Any], pb: dict[str, Any]
) -> None:
    def ids(**params: Any) -> set[str]:
        return {t.traceID for t in search(live, pb, **window(data), **params).traces}

    a, b = data["a"].lstrip("0"), data["b"].lstrip("0")
    assert ids(tags="service.name=backend") == {a, b}
    assert ids(tags='service.name=frontend name="GET /cart"') == {a}
    assert ids(tags="http.status_code=500") == {a}
    assert ids(tags="status=error") == {a}
    assert ids(tags="kind=internal") == {b}
    assert ids(tags="error=true kind=internal") == set()
    assert ids(minDuration="100ms") == {b}
    assert ids(maxDuration="30ms") == {a}
    assert ids(tags="service.name=backend", maxDuration="100ms") == {a}
    assert len(search(live, pb, limit=1, **window(data)).traces) == 1
    # without a window: the last day
    assert ids() >= {a, b}
    # a window before both
    t0s = data["t0"] // SECOND
    assert search(live, pb, start=t0s - 7200, end=t0s - 3600).traces == []


def test_search_builder_traceql(
    live: RunningServer, data: dict[str, Any], pb: dict[str, Any]
) -> None:
    """The form Grafana's search builder writes, answered before TraceQL itself is."""

    def ids(q: str) -> set[str]:
        return {t.traceID for t in search(live, pb, q=q, **window(data)).traces}

    a, b = data["a"].lstrip("0"), data["b"].lstrip("0")
    assert ids("{}") == ids("{ }") == {a, b}
    assert ids('{resource.service.name="frontend" && name="GET /cart"}') == {a}
    assert ids('{ resource.service.name = "backend" }') == {a, b}
    assert ids("{ span.http.status_code = 500 }") == {a}
    assert ids('{ .http.method = "GET" }') == {a}
    assert ids("{status=error}") == {a}
    assert ids("{ kind = internal }") == {b}
    assert ids("{duration>100ms}") == {b}
    assert ids("{duration < 30ms}") == {a}
    assert ids("{ duration >= 200ms }") == {b}
    assert ids("{ duration > 200ms }") == set()  # the cron tick took exactly 200ms
    assert ids("{ traceDuration > 100ms }") == {b}
    assert ids("{ traceDuration < 100ms && kind = server }") == {a}
    assert ids("{ status = error && status = ok }") == set()
    assert ids('{ name =~ "GET.*" }') == {a}
    assert ids('{ rootName = "cron tick" }') == {b}
    assert ids("{ kind = server } | count() > 1") == {a}
    found = search(live, pb, q="{ kind = server }", spss=1, **window(data))
    by_id = {t.traceID: t for t in found.traces}
    assert by_id[a].spanSets[0].matched == 2 and len(by_id[a].spanSets[0].spans) == 1
    assert by_id[a].spanSet == by_id[a].spanSets[0]
    error(get(live, "/api/search", q='{ name = "x" && }'), 400)
    error(get(live, "/api/search", q="{ duration > soon }"), 400)


def test_search_errors(live: RunningServer, data: dict[str, Any]) -> None:
    assert "can't specify tags and q" in error(get(live, "/api/search", q="{}", tags="a=b"), 400)
    assert "unsupported TraceQL" in error(get(live, "/api/search", q="{} | rate()"), 400)
    assert "start must be before end" in error(get(live, "/api/search", start=20, end=10), 400)
    error(get(live, "/api/search", limit=0), 400)
    error(get(live, "/api/search", limit="many"), 400)
    error(get(live, "/api/search", spss=-1), 400)
    error(get(live, "/api/search", minDuration="soon"), 400)
    error(get(live, "/api/search", minDuration="2s", maxDuration="1s"), 400)
    error(get(live, "/api/search", tags="status=broken"), 400)
    error(get(live, "/api/search", tags='a="unterminated'), 400)


# -- tags and values ------------------------------------------------------------------------


def test_tags_v1(live: RunningServer, data: dict[str, Any], pb: dict[str, Any]) -> None:
    def names(**params: Any) -> list[str]:
        found = strict(pb, "SearchTagsResponse", get(live, "/api/search/tags", **params))
        return list(found.tagNames)

    everything = names()
    assert {
        "http.method",
        "http.status_code",
        "ratio",
        "cached",
        "service.name",
        "host.name",
    } <= set(everything)
    assert "status" not in everything  # v1 lists intrinsics only when asked for their scope
    assert "http.method" in names(scope="span") and "host.name" not in names(scope="span")
    assert "host.name" in names(scope="resource") and "http.method" not in names(scope="resource")
    assert names(scope="intrinsic")[:5] == ["duration", "name", "status", "statusMessage", "kind"]
    assert names(scope="event") == []
    assert "http.method" not in names(token=T2)
    error(get(live, "/api/search/tags", scope="bogus"), 400)


def test_tags_v2(live: RunningServer, data: dict[str, Any], pb: dict[str, Any]) -> None:
    def scopes(**params: Any) -> dict[str, set[str]]:
        found = strict(pb, "SearchTagsV2Response", get(live, "/api/v2/search/tags", **params))
        return {s.name: set(s.tags) for s in found.scopes}

    found = scopes(**window(data))
    assert set(found) == {"resource", "span", "intrinsic"}
    assert {"service.name", "host.name"} <= found["resource"]
    assert {"http.method", "http.status_code", "ratio", "cached"} <= found["span"]
    assert {"name", "status", "kind", "duration", "rootServiceName"} <= found["intrinsic"]
    assert set(scopes(scope="span")) == {"span"}
    assert set(scopes(scope="intrinsic")) == {"intrinsic"}
    assert set(scopes(scope="none")) == {"resource", "span", "intrinsic"}
    # the window (seconds) and the limit
    assert set(scopes(start=1000, end=2000)) == {"intrinsic"}
    assert all(len(tags) == 1 for name, tags in scopes(limit=1).items() if name != "intrinsic")
    # the other tenant's keys only
    other = get(live, "/api/v2/search/tags", token=T2, scope="span").json()
    assert "http.method" not in str(other)


def test_tag_values(live: RunningServer, data: dict[str, Any], pb: dict[str, Any]) -> None:
    def v2(tag: str, **params: Any) -> list[tuple[str, str]]:
        r = get(live, f"/api/v2/search/tag/{tag}/values", **params)
        return sorted(
            (v.type, v.value) for v in strict(pb, "SearchTagValuesV2Response", r).tagValues
        )

    assert v2("resource.service.name") == [("string", "backend"), ("string", "frontend")]
    assert v2("span.service.name") == []
    assert v2("span.http.status_code") == [("int", "500")]
    assert v2(".http.method", q='{ resource.service.name = "frontend" }') == [("string", "GET")]
    assert v2("span.ratio") == [("float", "0.5")]
    assert v2("span.cached") == [("bool", "true")]
    assert v2("resource.service.name", start=1000, end=2000) == []
    assert len(v2("resource.service.name", limit=1)) == 1
    assert v2("status") == [("keyword", "error"), ("keyword", "ok"), ("keyword", "unset")]
    assert ("keyword", "server") in v2("kind")
    assert v2("name") == sorted(
        ("string", n) for n in ("GET /cart", "call backend", "POST /price", "cron tick")
    )
    assert v2("rootServiceName") == [("string", "backend"), ("string", "frontend")]
    r = get(live, "/api/search/tag/service.name/values")
    v1 = strict(pb, "SearchTagValuesResponse", r)
    assert sorted(v1.tagValues) == ["backend", "frontend"]
    assert get(live, "/api/search/tag/service.name/values", token=T2).json() == {
        "tagValues": ["other"]
    }
    error(get(live, "/api/v2/search/tag/span./values"), 400)


# -- the same spans through every API -------------------------------------------------------


def test_sdk_spans_read_the_same_through_api_jaeger_and_tempo(
    live: RunningServer, pb: dict[str, Any]
) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind

    exporter = OTLPSpanExporter(
        endpoint=f"{live.url}/v1/traces", headers={"Authorization": f"Bearer {T1}"}
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-tempo"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    try:
        with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER) as root:
            with tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT):
                pass
            with tracer.start_as_current_span("reserve stock"):
                pass
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")
    headers = {"Authorization": f"Bearer {T1}"}

    native = httpx.get(f"{live.url}/api/traces/{trace_id}", headers=headers, timeout=30).json()
    from_api = {
        s["spanId"]: (
            s["service"],
            s["name"],
            int(s["startTimeUnixNano"]),
            int(s["endTimeUnixNano"]),
        )
        for s in native["spans"]
    }
    jaeger = httpx.get(
        f"{live.url}/jaeger/api/traces/{trace_id}", headers=headers, timeout=30
    ).json()
    trace = jaeger["data"][0]
    from_jaeger = {
        s["spanID"]: (
            trace["processes"][s["processID"]]["serviceName"],
            s["operationName"],
            s["startTime"],
            s["duration"],
        )
        for s in trace["spans"]
    }
    r = get(live, f"/api/v2/traces/{trace_id}", headers=PROTOBUF)
    from_tempo = spans_of(pb["TraceByIDResponse"].FromString(r.content).trace)

    assert len(from_api) == 3
    assert from_tempo == from_api
    assert from_jaeger == {
        k: (svc, name, start // 1000, (end - start) // 1000)
        for k, (svc, name, start, end) in from_api.items()
    }
    found = search(live, pb, tags="service.name=sdk-tempo")
    assert [t.traceID for t in found.traces] == [trace_id.lstrip("0")]
    assert found.traces[0].rootTraceName == "checkout"
