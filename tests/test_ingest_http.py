"""Raw OTLP/HTTP requests with httpx: encodings, compression, partial success and limits."""

from __future__ import annotations

import gzip
import os
import secrets
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pyarrow as pa
import pytest
import zstandard
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import RunningServer, start_server

JSON = {"Content-Type": "application/json"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One anonymous loopback server with default limits, shared by this module."""
    running = start_server(tmp_path_factory.mktemp("http"))
    yield running
    if running.proc is not None:
        running.kill()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with tiny attribute limits and a per-trace span cap of 5."""
    running = start_server(
        tmp_path_factory.mktemp("limited"),
        {
            "ingest": {
                "attribute_count_limit": 3,
                "attribute_value_length_limit": 10,
                "max_spans_per_trace": 5,
            }
        },
    )
    yield running
    if running.proc is not None:
        running.kill()


# -- request builders ----------------------------------------------------------------------


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


def span_json(trace_id: str, span_id: str, name: str, **extra: Any) -> dict[str, Any]:
    now = time.time_ns()
    span: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(now - 2_000_000),
        "endTimeUnixNano": str(now),
    }
    span.update(extra)
    return span


def traces_json(spans: list[dict[str, Any]], service: str = "http-test") -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "raw"}, "spans": spans}],
            }
        ]
    }


def traces_proto(spans: list[tuple[bytes, bytes, str]], service: str = "http-test") -> bytes:
    now = time.time_ns()
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key = "service.name"
    kv.value.string_value = service
    ss = rs.scope_spans.add()
    ss.scope.name = "raw-proto"
    for trace_id, span_id, name in spans:
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = span_id
        span.name = name
        span.kind = Span.SPAN_KIND_SERVER
        span.start_time_unix_nano = now - 1_000_000
        span.end_time_unix_nano = now
        attr = span.attributes.add()
        attr.key = "proto.attr"
        attr.value.int_value = 7
    return req.SerializeToString()


def get_trace(server: RunningServer, trace_id: str) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/api/traces/{trace_id.lower()}", headers=server.headers())
    assert r.status_code == 200, r.text
    return dict(r.json())


def post(
    server: RunningServer, signal: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/{signal}", content=body, headers={**server.headers(), **headers}
    )


def metrics_text(server: RunningServer) -> str:
    r = httpx.get(f"{server.url}/metrics", headers=server.headers())
    assert r.status_code == 200, r.text
    return r.text


def metric_value(text: str, name: str, labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def health(server: RunningServer) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/health", headers=server.headers())
    assert r.status_code == 200, r.text
    return dict(r.json())


# -- OTLP/JSON rules -----------------------------------------------------------------------


def test_json_hex_ids_are_case_insensitive(server: RunningServer) -> None:
    trace_id = new_trace_id()
    upper_span, lower_span = new_span_id().upper(), new_span_id()
    body = traces_json(
        [
            span_json(trace_id.upper(), upper_span, "upper", parentSpanId=lower_span.upper()),
            span_json(trace_id.lower(), lower_span, "lower"),
        ]
    )
    r = post(server, "traces", orjson.dumps(body), JSON)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {}
    spans = {s["name"]: s for s in get_trace(server, trace_id)["spans"]}
    assert set(spans) == {"upper", "lower"}
    assert spans["upper"]["spanId"] == upper_span.lower()
    assert spans["upper"]["parentSpanId"] == lower_span
    assert spans["upper"]["traceId"] == trace_id
    assert spans["lower"]["spanId"] == lower_span
    # The trace id is found whatever case it is asked in.
    r = httpx.get(f"{server.url}/api/traces/{trace_id.upper()}")
    assert r.status_code == 200
    assert len(r.json()["spans"]) == 2


def test_json_int64_as_strings_and_numbers_enums_as_integers(server: RunningServer) -> None:
    trace_id = new_trace_id()
    start = time.time_ns() - 5_000_000
    big = 2**53 + 1  # not representable as a double: must survive as an exact integer
    spans = [
        span_json(
            trace_id,
            new_span_id(),
            "as-strings",
            startTimeUnixNano=str(start),
            endTimeUnixNano=str(start + 3_000_000),
            kind=3,
            status={"code": 2, "message": "failed"},
            attributes=[
                {"key": "big", "value": {"intValue": str(big)}},
                {"key": "small", "value": {"intValue": "42"}},
            ],
            droppedAttributesCount=2,
            flags=257,
        ),
        span_json(
            trace_id,
            new_span_id(),
            "as-numbers",
            startTimeUnixNano=start,
            endTimeUnixNano=start + 1_500_000,
            kind=4,
            status={"code": 1},
            attributes=[
                {"key": "small", "value": {"intValue": 42}},
                {"key": "neg", "value": {"intValue": -7}},
                {"key": "dbl", "value": {"doubleValue": 1.5}},
                {"key": "flag", "value": {"boolValue": True}},
                {
                    "key": "arr",
                    "value": {"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "x"}]}},
                },
                {
                    "key": "kv",
                    "value": {
                        "kvlistValue": {"values": [{"key": "a", "value": {"boolValue": False}}]}
                    },
                },
                {"key": "raw", "value": {"bytesValue": "AQID"}},
            ],
        ),
    ]
    r = post(server, "traces", orjson.dumps(traces_json(spans)), JSON)
    assert r.status_code == 200, r.text
    assert r.json() == {}
    got = {s["name"]: s for s in get_trace(server, trace_id)["spans"]}
    s1, s2 = got["as-strings"], got["as-numbers"]
    assert s1["startTimeUnixNano"] == str(start)
    assert s1["endTimeUnixNano"] == str(start + 3_000_000)
    assert s1["durationMs"] == pytest.approx(3.0)
    assert s1["kind"] == "SPAN_KIND_CLIENT"
    assert s1["status"] == {"code": "STATUS_CODE_ERROR", "message": "failed"}
    assert s1["attributes"] == {"big": str(big), "small": 42}
    assert s1["droppedAttributesCount"] == 2
    assert s1["flags"] == 257
    assert s2["startTimeUnixNano"] == str(start)
    assert s2["durationMs"] == pytest.approx(1.5)
    assert s2["kind"] == "SPAN_KIND_PRODUCER"
    assert s2["status"]["code"] == "STATUS_CODE_OK"
    assert s2["attributes"] == {
        "small": 42,
        "neg": -7,
        "dbl": 1.5,
        "flag": True,
        "arr": [1, "x"],
        "kv": {"a": False},
        "raw": "AQID",
    }
    # Typed, not stringified away: the OTLP/JSON view gives the big integer back exactly.
    r = httpx.get(f"{server.url}/api/traces/{trace_id}", params={"format": "otlp"})
    otlp_spans = r.json()["resourceSpans"][0]["scopeSpans"][0]["spans"]
    big_attr = next(a for s in otlp_spans for a in s.get("attributes", []) if a["key"] == "big")
    assert big_attr["value"] == {"intValue": str(big)}


def test_json_unknown_fields_are_ignored(server: RunningServer) -> None:
    trace_id = new_trace_id()
    span = span_json(
        trace_id,
        new_span_id(),
        "with-unknowns",
        someFutureField={"nested": [1, 2, 3]},
        status={"code": 0, "futureStatusThing": True},
        events=[{"timeUnixNano": str(time.time_ns()), "name": "ev", "unknownInEvent": 1}],
    )
    body = traces_json([span])
    body["fromTheFuture"] = "yes"
    body["resourceSpans"][0]["unknownRs"] = 1
    body["resourceSpans"][0]["resource"]["unknownResource"] = []
    body["resourceSpans"][0]["scopeSpans"][0]["scope"]["unknownScope"] = None
    r = post(server, "traces", orjson.dumps(body), JSON)
    assert r.status_code == 200, r.text
    assert r.json() == {}
    spans = get_trace(server, trace_id)["spans"]
    assert [s["name"] for s in spans] == ["with-unknowns"]
    assert [e["name"] for e in spans[0]["events"]] == ["ev"]


def test_json_snake_case_keys(server: RunningServer) -> None:
    trace_id, parent, child = new_trace_id(), new_span_id(), new_span_id()
    now = time.time_ns()
    body = {
        "resource_spans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"string_value": "snake"}}]
                },
                "schema_url": "https://opentelemetry.io/schemas/1.26.0",
                "scope_spans": [
                    {
                        "scope": {"name": "snake-scope", "version": "9"},
                        "spans": [
                            {
                                "trace_id": trace_id,
                                "span_id": child,
                                "parent_span_id": parent,
                                "name": "snake-child",
                                "kind": 2,
                                "start_time_unix_nano": str(now - 1000),
                                "end_time_unix_nano": now,
                                "trace_state": "k=v",
                                "attributes": [
                                    {"key": "n", "value": {"int_value": "5"}},
                                    {"key": "b", "value": {"bool_value": True}},
                                ],
                                "dropped_attributes_count": 1,
                                "links": [{"trace_id": trace_id.upper(), "span_id": parent}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    r = post(server, "traces", orjson.dumps(body), JSON)
    assert r.status_code == 200, r.text
    (span,) = get_trace(server, trace_id)["spans"]
    assert span["name"] == "snake-child"
    assert span["service"] == "snake"
    assert span["parentSpanId"] == parent
    assert span["traceState"] == "k=v"
    assert span["attributes"] == {"n": 5, "b": True}
    assert span["droppedAttributesCount"] == 1
    assert span["scope"]["version"] == "9"
    assert [(lk["traceId"], lk["spanId"]) for lk in span["links"]] == [(trace_id, parent)]


def test_json_charset_parameter_is_accepted(server: RunningServer) -> None:
    trace_id = new_trace_id()
    body = orjson.dumps(traces_json([span_json(trace_id, new_span_id(), "charset")]))
    r = post(server, "traces", body, {"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200, r.text
    assert r.json() == {}
    assert len(get_trace(server, trace_id)["spans"]) == 1


# -- protobuf and compression --------------------------------------------------------------


def test_protobuf_body_and_protobuf_response(server: RunningServer) -> None:
    trace_id, span_id = os.urandom(16), os.urandom(8)
    body = traces_proto([(trace_id, span_id, "proto-span")], service="proto-svc")
    r = post(server, "traces", body, PROTOBUF)
    assert r.status_code == 200, r.content
    assert r.headers["content-type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse()
    response.ParseFromString(r.content)
    assert not response.HasField("partial_success")
    (span,) = get_trace(server, trace_id.hex())["spans"]
    assert span["spanId"] == span_id.hex()
    assert span["service"] == "proto-svc"
    assert span["kind"] == "SPAN_KIND_SERVER"
    assert span["attributes"] == {"proto.attr": 7}


def _zstd_streamed(data: bytes) -> bytes:
    # A streamed frame (no content size in its header), as the Collector's encoder writes.
    cobj = zstandard.ZstdCompressor().compressobj()
    return cobj.compress(data) + cobj.flush()


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
    "zstd-streamed": _zstd_streamed,
}


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
@pytest.mark.parametrize("encoding", list(COMPRESSORS))
def test_compressed_bodies(server: RunningServer, fmt: str, encoding: str) -> None:
    trace_id = new_trace_id()
    span_ids = [new_span_id() for _ in range(50)]
    if fmt == "json":
        raw = orjson.dumps(
            traces_json(
                [
                    span_json(
                        trace_id,
                        sid,
                        f"c-{i}",
                        attributes=[{"key": "pad", "value": {"stringValue": "x" * 200}}],
                    )
                    for i, sid in enumerate(span_ids)
                ]
            )
        )
        headers = dict(JSON)
    else:
        raw = traces_proto(
            [
                (bytes.fromhex(trace_id), bytes.fromhex(sid), f"c-{i}")
                for i, sid in enumerate(span_ids)
            ]
        )
        headers = dict(PROTOBUF)
    compressed = COMPRESSORS[encoding](raw)
    assert len(compressed) < len(raw)
    headers["Content-Encoding"] = encoding.split("-")[0]
    r = post(server, "traces", compressed, headers)
    assert r.status_code == 200, r.content
    if fmt == "json":
        assert r.json() == {}
    else:
        response = ExportTraceServiceResponse()
        response.ParseFromString(r.content)
        assert not response.HasField("partial_success")
    spans = get_trace(server, trace_id)["spans"]
    assert sorted(s["spanId"] for s in spans) == sorted(span_ids)


def test_empty_compressed_and_empty_plain_bodies_are_empty_requests(server: RunningServer) -> None:
    for headers, body in (
        ({**PROTOBUF, "Content-Encoding": "gzip"}, gzip.compress(b"")),
        (PROTOBUF, b""),
        (JSON, b"{}"),
    ):
        r = post(server, "traces", body, headers)
        assert r.status_code == 200, (headers, r.content)


# -- partial success -----------------------------------------------------------------------


def test_partial_success_json_stores_the_valid_spans(server: RunningServer) -> None:
    trace_id = new_trace_id()
    good = [new_span_id(), new_span_id()]
    spans = [
        span_json(trace_id, good[0], "good-1"),
        span_json("abcdef", new_span_id(), "bad-trace-id"),  # 3 bytes, not 16
        span_json(trace_id, "0000000000000000", "zero-span-id"),
        span_json(trace_id, good[1], "good-2"),
    ]
    r = post(server, "traces", orjson.dumps(traces_json(spans)), JSON)
    assert r.status_code == 200, r.text
    ps = r.json()["partialSuccess"]
    assert int(ps["rejectedSpans"]) == 2
    assert "trace_id" in ps["errorMessage"]
    assert "2" in ps["errorMessage"]
    got = get_trace(server, trace_id)["spans"]
    assert sorted(s["spanId"] for s in got) == sorted(good)
    assert {s["name"] for s in got} == {"good-1", "good-2"}


def test_partial_success_protobuf(server: RunningServer) -> None:
    trace_id = os.urandom(16)
    good = os.urandom(8)
    body = traces_proto(
        [
            (trace_id, good, "good"),
            (os.urandom(15), os.urandom(8), "short-trace-id"),
            (bytes(16), os.urandom(8), "zero-trace-id"),
            (trace_id, bytes(8), "zero-span-id"),
        ]
    )
    r = post(server, "traces", body, PROTOBUF)
    assert r.status_code == 200, r.content
    response = ExportTraceServiceResponse()
    response.ParseFromString(r.content)
    assert response.partial_success.rejected_spans == 3
    assert "rejected" in response.partial_success.error_message
    assert [s["spanId"] for s in get_trace(server, trace_id.hex())["spans"]] == [good.hex()]


# -- duplicates ----------------------------------------------------------------------------


def test_duplicate_spans_appear_once(server: RunningServer) -> None:
    trace_id, span_id, other = new_trace_id(), new_span_id(), new_span_id()
    service = f"dup-{secrets.token_hex(4)}"
    span = span_json(trace_id, span_id, "dup")
    body = orjson.dumps(traces_json([span], service))
    for _ in range(2):
        r = post(server, "traces", body, JSON)
        assert r.status_code == 200, r.text
    # And once more inside one request, next to another span of the trace.
    both = orjson.dumps(traces_json([span, span, span_json(trace_id, other, "other")], service))
    r = post(server, "traces", both, JSON)
    assert r.status_code == 200, r.text
    spans = get_trace(server, trace_id)["spans"]
    assert sorted(s["spanId"] for s in spans) == sorted([span_id, other])
    r = httpx.get(f"{server.url}/api/traces", params={"service": service})
    (summary,) = r.json()["traces"]
    assert summary["spanCount"] == 2


# -- limits --------------------------------------------------------------------------------


def test_attribute_limits_truncate_drop_and_count(limited: RunningServer) -> None:
    before = metrics_text(limited)
    trace_id, span_id = new_trace_id(), new_span_id()
    attrs = [
        {"key": "short", "value": {"stringValue": "ok"}},
        {"key": "long", "value": {"stringValue": "0123456789ABCDEFGHIJ"}},
        {"key": "num", "value": {"intValue": "1"}},
        {"key": "extra1", "value": {"stringValue": "dropped"}},
        {"key": "extra2", "value": {"boolValue": True}},
    ]
    span = span_json(trace_id, span_id, "limited", attributes=attrs, droppedAttributesCount=1)
    r = post(limited, "traces", orjson.dumps(traces_json([span])), JSON)
    assert r.status_code == 200, r.text
    (stored,) = get_trace(limited, trace_id)["spans"]
    assert stored["attributes"] == {"short": "ok", "long": "0123456789", "num": 1}
    # 1 sent by the client + 1 truncated + 2 dropped.
    assert stored["droppedAttributesCount"] == 4
    after = metrics_text(limited)
    labels = 'signal="traces"'
    truncated = metric_value(after, "otterscope_attributes_truncated_total", labels) - metric_value(
        before, "otterscope_attributes_truncated_total", labels
    )
    dropped = metric_value(after, "otterscope_attributes_dropped_total", labels) - metric_value(
        before, "otterscope_attributes_dropped_total", labels
    )
    assert (truncated, dropped) == (1, 2)


def test_per_trace_cap_rejects_through_partial_success(limited: RunningServer) -> None:
    trace_id = new_trace_id()
    span_ids = [new_span_id() for _ in range(8)]
    spans = [span_json(trace_id, sid, f"s{i}") for i, sid in enumerate(span_ids)]
    r = post(limited, "traces", orjson.dumps(traces_json(spans)), JSON)
    assert r.status_code == 200, r.text
    ps = r.json()["partialSuccess"]
    assert int(ps["rejectedSpans"]) == 3
    assert "max_spans_per_trace" in ps["errorMessage"]
    stored = get_trace(limited, trace_id)["spans"]
    assert len(stored) == 5
    assert {s["spanId"] for s in stored} <= set(span_ids)


def test_per_trace_cap_counts_across_requests(limited: RunningServer) -> None:
    trace_id = new_trace_id()
    first = [span_json(trace_id, new_span_id(), f"a{i}") for i in range(3)]
    r = post(limited, "traces", orjson.dumps(traces_json(first)), JSON)
    assert r.status_code == 200, r.text
    assert r.json() == {}
    second = [span_json(trace_id, new_span_id(), f"b{i}") for i in range(4)]
    r = post(limited, "traces", orjson.dumps(traces_json(second)), JSON)
    assert r.status_code == 200, r.text
    assert int(r.json()["partialSuccess"]["rejectedSpans"]) == 2
    assert len(get_trace(limited, trace_id)["spans"]) == 5
    # Another trace is not affected.
    other = new_trace_id()
    r = post(
        limited, "traces", orjson.dumps(traces_json([span_json(other, new_span_id(), "x")])), JSON
    )
    assert r.json() == {}


# -- logs and metrics over JSON ------------------------------------------------------------


def test_logs_over_json(server: RunningServer) -> None:
    service = f"logs-{secrets.token_hex(4)}"
    trace_id, span_id = new_trace_id(), new_span_id()
    now = time.time_ns()
    body = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeLogs": [
                    {
                        "scope": {"name": "log-scope", "version": "2"},
                        "logRecords": [
                            {
                                "timeUnixNano": str(now - 1000),
                                "observedTimeUnixNano": now,
                                "severityNumber": 17,
                                "severityText": "ERROR",
                                "body": {"stringValue": "Disk FULL on /var"},
                                "attributes": [{"key": "disk", "value": {"stringValue": "sda"}}],
                                "traceId": trace_id.upper(),
                                "spanId": span_id.upper(),
                                "flags": 1,
                                "eventName": "disk.full",
                                "unknownLogField": 1,
                            },
                            {
                                "time_unix_nano": str(now - 2000),
                                "severity_number": 9,
                                "body": {
                                    "kvlistValue": {
                                        "values": [
                                            {"key": "msg", "value": {"stringValue": "structured"}},
                                            {"key": "n", "value": {"intValue": "3"}},
                                        ]
                                    }
                                },
                            },
                            {
                                # No time: the observed time stands in for it.
                                "observedTimeUnixNano": str(now - 3000),
                                "severityNumber": 5,
                                "body": {"stringValue": "observed only"},
                            },
                        ],
                    }
                ],
            }
        ]
    }
    r = post(server, "logs", orjson.dumps(body), JSON)
    assert r.status_code == 200, r.text
    assert r.json() == {}

    r = httpx.get(f"{server.url}/api/logs", params={"service": service, "q": "disk full"})
    assert r.status_code == 200, r.text
    (rec,) = r.json()["logs"]
    assert rec["body"] == "Disk FULL on /var"
    assert rec["severityNumber"] == 17
    assert rec["severityText"] == "ERROR"
    assert rec["traceId"] == trace_id
    assert rec["spanId"] == span_id
    assert rec["eventName"] == "disk.full"
    assert rec["attributes"] == {"disk": "sda"}
    assert rec["timeUnixNano"] == str(now - 1000)
    assert rec["observedTimeUnixNano"] == str(now)
    assert (rec["scope"]["name"], rec["scope"]["version"]) == ("log-scope", "2")

    r = httpx.get(f"{server.url}/api/logs", params={"service": service})
    logs = r.json()["logs"]
    assert [x["severityNumber"] for x in logs] == [17, 9, 5]  # newest first
    assert logs[1]["body"] == {"msg": "structured", "n": 3}
    r = httpx.get(f"{server.url}/api/logs", params={"service": service, "q": "STRUCTURED"})
    assert [x["severityNumber"] for x in r.json()["logs"]] == [9]
    r = httpx.get(f"{server.url}/api/logs", params={"traceId": trace_id})
    assert [x["body"] for x in r.json()["logs"]] == ["Disk FULL on /var"]

    # Protobuf answer for logs too.
    r = post(server, "logs", b"", PROTOBUF)
    assert r.status_code == 200
    ExportLogsServiceResponse().ParseFromString(r.content)


def _exemplar(trace_id: str, span_id: str, now: int, **value: Any) -> dict[str, Any]:
    return {
        "timeUnixNano": str(now),
        "traceId": trace_id,
        "spanId": span_id,
        "filteredAttributes": [{"key": "user", "value": {"stringValue": "u1"}}],
        **value,
    }


def metrics_request(service: str, trace_id: str, span_id: str) -> dict[str, Any]:
    now = time.time_ns()
    start = now - 60 * 10**9
    attrs = [{"key": "route", "value": {"stringValue": "/a"}}]
    return {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeMetrics": [
                    {
                        "scope": {"name": "metric-scope"},
                        "metrics": [
                            {
                                "name": "queue.depth",
                                "unit": "1",
                                "gauge": {
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": str(now),
                                            "asDouble": 3.5,
                                            "attributes": attrs,
                                            "exemplars": [
                                                _exemplar(
                                                    trace_id.upper(), span_id, now, asDouble=3.5
                                                )
                                            ],
                                        }
                                    ]
                                },
                            },
                            {
                                "name": "requests",
                                "unit": "1",
                                "description": "requests served",
                                "sum": {
                                    "aggregationTemporality": 2,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {
                                            "startTimeUnixNano": str(start),
                                            "timeUnixNano": now,
                                            "asInt": "9007199254740993",
                                            "attributes": attrs,
                                            "exemplars": [
                                                _exemplar(trace_id, span_id, now, asInt="1")
                                            ],
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "latency",
                                "unit": "ms",
                                "histogram": {
                                    "aggregationTemporality": 1,
                                    "dataPoints": [
                                        {
                                            "startTimeUnixNano": str(start),
                                            "timeUnixNano": str(now),
                                            "count": "6",
                                            "sum": 321.5,
                                            "min": 1,
                                            "max": 200,
                                            "bucketCounts": ["1", 2, "3"],
                                            "explicitBounds": [10, 100],
                                            "exemplars": [
                                                _exemplar(trace_id, span_id, now, asDouble=200)
                                            ],
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "payload.size",
                                "unit": "By",
                                "exponential_histogram": {
                                    "aggregation_temporality": 2,
                                    "data_points": [
                                        {
                                            "start_time_unix_nano": str(start),
                                            "time_unix_nano": str(now),
                                            "count": 5,
                                            "sum": 1234.0,
                                            "scale": 3,
                                            "zero_count": "1",
                                            "zero_threshold": 0.001,
                                            "positive": {"offset": 10, "bucket_counts": [1, "2"]},
                                            "negative": {"offset": -2, "bucket_counts": ["1"]},
                                            "exemplars": [
                                                {
                                                    "time_unix_nano": str(now),
                                                    "trace_id": trace_id,
                                                    "span_id": span_id.upper(),
                                                    "as_double": 512,
                                                }
                                            ],
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "rpc.duration.summary",
                                "unit": "s",
                                "summary": {
                                    "dataPoints": [
                                        {
                                            "startTimeUnixNano": str(start),
                                            "timeUnixNano": str(now),
                                            "count": "10",
                                            "sum": 4.2,
                                            "quantileValues": [
                                                {"quantile": 0.5, "value": 0.3},
                                                {"quantile": 0.99, "value": 1.2},
                                            ],
                                            "unknownSummaryField": "ignored",
                                        }
                                    ]
                                },
                            },
                        ],
                    }
                ],
            }
        ]
    }


def stored_metric_points(data_dir: Path) -> list[dict[str, Any]]:
    """Read the stored metric points from a stopped server's data dir without otterscope.

    Hot rows are Arrow IPC streams, sealed ones Parquet files: pyarrow and DuckDB read both.
    """
    con = duckdb.connect()
    parts = []
    for i, seg in enumerate(sorted((data_dir / "hot").glob("seg-*.metrics.arrows"))):
        with pa.ipc.open_stream(str(seg)) as reader:
            con.register(f"s{i}", reader.read_all())
        parts.append(f"SELECT * FROM s{i}")
    parquet = sorted(data_dir.glob("parquet/metrics/**/*.parquet"))
    if parquet:
        listed = ", ".join(f"'{p}'" for p in parquet)
        parts.append(f"SELECT * FROM read_parquet([{listed}])")
    assert parts, "no stored data found"
    cur = con.execute(" UNION ALL BY NAME ".join(parts))
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    con.close()
    return rows


def test_metrics_over_json_all_point_types_with_exemplars(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    own = start_server(tmp_path_factory.mktemp("metrics"))
    try:
        service = f"metrics-{secrets.token_hex(4)}"
        trace_id, span_id = new_trace_id(), new_span_id()
        before = health(own)["ingest"]["receivedItems"]["metrics"]
        r = post(own, "metrics", orjson.dumps(metrics_request(service, trace_id, span_id)), JSON)
        assert r.status_code == 200, r.text
        assert r.json() == {}
        assert health(own)["ingest"]["receivedItems"]["metrics"] == before + 5
        assert health(own)["store"]["hotRows"]["metrics"] == 5

        # A protobuf answer for metrics too.
        r = post(own, "metrics", b"", PROTOBUF)
        assert r.status_code == 200
        ExportMetricsServiceResponse().ParseFromString(r.content)
        assert own.stop() == 0
    finally:
        if own.proc is not None:
            own.kill()

    rows = {r["metric_name"]: r for r in stored_metric_points(own.data_dir)}
    assert set(rows) == {
        "queue.depth",
        "requests",
        "latency",
        "payload.size",
        "rpc.duration.summary",
    }
    assert {n: r["metric_type"] for n, r in rows.items()} == {
        "queue.depth": 1,
        "requests": 2,
        "latency": 3,
        "payload.size": 4,
        "rpc.duration.summary": 5,
    }
    assert rows["queue.depth"]["value_double"] == 3.5
    assert rows["requests"]["value_int"] == 9007199254740993
    assert rows["requests"]["is_monotonic"] is True
    assert rows["requests"]["aggregation_temporality"] == 2
    assert list(rows["latency"]["bucket_counts"]) == [1, 2, 3]
    assert list(rows["latency"]["explicit_bounds"]) == [10.0, 100.0]
    assert rows["latency"]["count"] == 6
    assert rows["payload.size"]["scale"] == 3
    assert rows["payload.size"]["zero_count"] == 1
    assert rows["payload.size"]["positive_offset"] == 10
    assert list(rows["payload.size"]["positive_bucket_counts"]) == [1, 2]
    assert rows["payload.size"]["negative_offset"] == -2
    assert rows["rpc.duration.summary"]["count"] == 10
    quantiles = orjson.loads(rows["rpc.duration.summary"]["quantile_values"])
    assert quantiles == [{"quantile": 0.5, "value": 0.3}, {"quantile": 0.99, "value": 1.2}]
    for name in ("queue.depth", "requests", "latency", "payload.size"):
        (ex,) = orjson.loads(rows[name]["exemplars"])
        assert ex["traceId"] == trace_id, name
        assert ex["spanId"] == span_id, name
    assert orjson.loads(rows["requests"]["exemplars"])[0]["asInt"] == 1
    assert orjson.loads(rows["payload.size"]["exemplars"])[0]["asDouble"] == 512
