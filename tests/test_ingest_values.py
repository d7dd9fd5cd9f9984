"""Values the stored columns cannot hold, sent over real sockets in OTLP/JSON and protobuf.

Every enum of the OTLP protos (span kind, status code, log severity number, the aggregation
temporality of sums, histograms and exponential histograms) is an int32 on the wire and an
int8 column here; dropped counts are uint32 on the wire and may grow past it when limits
drop more. Either way the answer is a 400 with a ``google.rpc.Status`` naming the field, the
same from both encodings, on a keep-alive connection that stays usable.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.rpc.status_pb2 import Status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import RunningServer, start_server

INVALID_ARGUMENT = 3
JSON = {"Content-Type": "application/json"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}
REQUESTS: dict[str, Any] = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}
_ID_KEYS = ("traceId", "spanId")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("values"))
    yield running
    if running.proc is not None:
        running.kill()


# -- requests ------------------------------------------------------------------------------


def _now() -> str:
    return str(time.time_ns())


def span_doc(**extra: Any) -> dict[str, Any]:
    span = {
        "traceId": os.urandom(16).hex(),
        "spanId": os.urandom(8).hex(),
        "name": "values",
        "startTimeUnixNano": _now(),
        "endTimeUnixNano": _now(),
        **extra,
    }
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "values"}}]
                },
                "scopeSpans": [{"spans": [span]}],
            }
        ]
    }


def log_doc(**extra: Any) -> dict[str, Any]:
    record = {"timeUnixNano": _now(), "body": {"stringValue": "hello"}, **extra}
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}


def metric_doc(kind: str, temporality: int) -> dict[str, Any]:
    point: dict[str, Any] = {"timeUnixNano": _now(), "startTimeUnixNano": _now()}
    if kind == "sum":
        point["asInt"] = "3"
    else:
        point["count"] = "1"
    metric = {
        "name": f"values.{kind}",
        kind: {"aggregationTemporality": temporality, "dataPoints": [point]},
    }
    return {"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]}


def _hex_ids_to_base64(obj: Any) -> Any:
    """OTLP/JSON (hex ids) -> protobuf's canonical JSON (base64 bytes)."""
    if isinstance(obj, list):
        return [_hex_ids_to_base64(v) for v in obj]
    if isinstance(obj, dict):
        return {
            k: (
                base64.b64encode(bytes.fromhex(v)).decode()
                if k in _ID_KEYS
                else _hex_ids_to_base64(v)
            )
            for k, v in obj.items()
        }
    return obj


def to_protobuf(signal: str, doc: dict[str, Any]) -> bytes:
    message = REQUESTS[signal]()
    # Unknown fields (and unknown enum names) are ignored, as OTLP/JSON asks.
    json_format.ParseDict(
        _hex_ids_to_base64(copy.deepcopy(doc)), message, ignore_unknown_fields=True
    )
    data: bytes = message.SerializeToString()
    return data


def status_of(response: httpx.Response) -> Status:
    status = Status()
    if response.headers["content-type"].startswith("application/json"):
        doc = response.json()
        status.code = doc["code"]
        status.message = doc["message"]
    else:
        assert response.headers["content-type"] == "application/x-protobuf"
        status.ParseFromString(response.content)
    return status


def local_port(response: httpx.Response) -> int:
    """The client-side port of the connection the response came on."""
    stream = response.extensions["network_stream"]
    port: int = stream.get_extra_info("client_addr")[1]
    return port


# -- every enum field of the protos --------------------------------------------------------


def enum_fields() -> set[str]:
    """Message.field of every enum-typed field reachable from the three export requests."""
    found: set[str] = set()
    seen: set[str] = set()

    def walk(descriptor: Any) -> None:
        if descriptor.full_name in seen:
            return
        seen.add(descriptor.full_name)
        for field in descriptor.fields:
            if field.type == FieldDescriptor.TYPE_ENUM:
                found.add(f"{descriptor.name}.{field.name}")
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                walk(field.message_type)

    for request in REQUESTS.values():
        walk(request.DESCRIPTOR)
    return found


# Each enum field -> (signal, request with that field set to a value, its name in messages).
ENUM_CASES: dict[str, tuple[str, Callable[[int], dict[str, Any]], str]] = {
    "Span.kind": ("traces", lambda v: span_doc(kind=v), "span kind"),
    "Status.code": ("traces", lambda v: span_doc(status={"code": v}), "span status code"),
    "LogRecord.severity_number": (
        "logs",
        lambda v: log_doc(severityNumber=v),
        "log severity_number",
    ),
    "Sum.aggregation_temporality": (
        "metrics",
        lambda v: metric_doc("sum", v),
        "metric aggregation_temporality",
    ),
    "Histogram.aggregation_temporality": (
        "metrics",
        lambda v: metric_doc("histogram", v),
        "metric aggregation_temporality",
    ),
    "ExponentialHistogram.aggregation_temporality": (
        "metrics",
        lambda v: metric_doc("exponentialHistogram", v),
        "metric aggregation_temporality",
    ),
}


def test_every_enum_field_of_the_protos_is_covered() -> None:
    assert enum_fields() == set(ENUM_CASES)


@pytest.mark.parametrize("value", [128, -129, 10**9, -(2**31)])
@pytest.mark.parametrize("field", sorted(ENUM_CASES))
def test_enum_out_of_range_is_a_400_naming_the_field(
    server: RunningServer, field: str, value: int
) -> None:
    signal, build, name = ENUM_CASES[field]
    doc = build(value)
    url = f"{server.url}/v1/{signal}"
    with httpx.Client(timeout=30) as client:
        r = client.post(url, content=orjson.dumps(doc), headers=JSON)
        assert r.status_code == 400, r.text
        status = status_of(r)
        assert status.code == INVALID_ARGUMENT
        assert f"{name} {value} is out of range" in status.message, status.message
        # The same request in protobuf: the same verdict, word for word.
        p = client.post(url, content=to_protobuf(signal, doc), headers=PROTOBUF)
        assert p.status_code == 400, p.content
        assert status_of(p) == status
        # The keep-alive connection is still the one in use, and still works.
        ok = client.post(url, content=orjson.dumps(build(1)), headers=JSON)
        assert ok.status_code == 200, ok.text
        assert local_port(ok) == local_port(r) == local_port(p)


@pytest.mark.parametrize("field", sorted(ENUM_CASES))
def test_enum_edges_of_the_column_are_stored(server: RunningServer, field: str) -> None:
    signal, build, _ = ENUM_CASES[field]
    for value in (127, -128):
        r = httpx.post(
            f"{server.url}/v1/{signal}", content=orjson.dumps(build(value)), headers=JSON
        )
        assert r.status_code == 200, r.text


# -- dropped counts that limits push past uint32 --------------------------------------------

LONG = "x" * 5000  # beyond the default attribute value length: truncated, counted as dropped
UINT32_MAX = 2**32 - 1


@pytest.mark.parametrize(
    ("signal", "doc", "words"),
    [
        (
            "traces",
            span_doc(
                droppedAttributesCount=UINT32_MAX,
                attributes=[{"key": "long", "value": {"stringValue": LONG}}],
            ),
            "span dropped_attributes_count exceeds the uint32 range",
        ),
        (
            "logs",
            log_doc(
                droppedAttributesCount=UINT32_MAX,
                attributes=[{"key": "long", "value": {"stringValue": LONG}}],
            ),
            "log record dropped_attributes_count exceeds the uint32 range",
        ),
    ],
)
def test_dropped_count_past_uint32_is_a_400(
    server: RunningServer, signal: str, doc: dict[str, Any], words: str
) -> None:
    url = f"{server.url}/v1/{signal}"
    with httpx.Client(timeout=30) as client:
        r = client.post(url, content=orjson.dumps(doc), headers=JSON)
        assert r.status_code == 400, r.text
        assert words in status_of(r).message
        p = client.post(url, content=to_protobuf(signal, doc), headers=PROTOBUF)
        assert p.status_code == 400
        assert status_of(p) == status_of(r)


def test_resource_dropped_count_past_uint32_is_a_400(server: RunningServer) -> None:
    doc = span_doc()
    doc["resourceSpans"][0]["resource"].update(
        droppedAttributesCount=UINT32_MAX,
        attributes=[{"key": "long", "value": {"stringValue": LONG}}],
    )
    url = f"{server.url}/v1/traces"
    with httpx.Client(timeout=30) as client:
        r = client.post(url, content=orjson.dumps(doc), headers=JSON)
        assert r.status_code == 400, r.text
        assert "resource_dropped_attributes_count" in status_of(r).message
        p = client.post(url, content=to_protobuf("traces", doc), headers=PROTOBUF)
        assert p.status_code == 400
        assert status_of(p) == status_of(r)
        assert client.post(url, content=orjson.dumps(span_doc()), headers=JSON).status_code == 200


# -- any number in any numeric field: a 200 or a 400, never a 500 ---------------------------

EDGES = [0, 1, -1, 127, 128, -129, 2**31, -(2**31) - 1, 2**32, 2**63, 2**64, -(2**63) - 1]
numbers = st.one_of(
    st.sampled_from(EDGES),
    st.sampled_from(EDGES).map(lambda e: e - 1),
    st.integers(min_value=-(2**70), max_value=2**70),
)
as_text = st.booleans()

# Paths from the item (span, log record, exponential histogram point), or from its
# resource ("resource.") or scope ("scope."); a number is an index into a list.
SPAN_NUMBERS = (
    "kind",
    "flags",
    "startTimeUnixNano",
    "endTimeUnixNano",
    "droppedAttributesCount",
    "droppedEventsCount",
    "droppedLinksCount",
    "status.code",
    "events.0.timeUnixNano",
    "events.0.droppedAttributesCount",
    "links.0.flags",
    "links.0.droppedAttributesCount",
    "resource.droppedAttributesCount",
    "scope.droppedAttributesCount",
)
LOG_NUMBERS = (
    "severityNumber",
    "flags",
    "timeUnixNano",
    "observedTimeUnixNano",
    "droppedAttributesCount",
    "body.intValue",
    "attributes.0.value.intValue",
)
POINT_NUMBERS = (
    "count",
    "flags",
    "timeUnixNano",
    "startTimeUnixNano",
    "scale",
    "zeroCount",
    "positive.offset",
    "positive.bucketCounts.0",
    "negative.offset",
    "exemplars.0.asInt",
    "exemplars.0.timeUnixNano",
)


def _set(obj: Any, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for i, part in enumerate(parents):
        child_is_list = (parents + [last])[i + 1].isdigit()
        if part.isdigit():
            while len(obj) <= int(part):
                obj.append({})
            obj = obj[int(part)]
        else:
            obj = obj.setdefault(part, [] if child_is_list else {})
    if last.isdigit():
        while len(obj) <= int(last):
            obj.append(0)
        obj[int(last)] = value
    else:
        obj[last] = value


def _fuzzed(signal: str, field: str, value: int, text: bool) -> dict[str, Any]:
    v: Any = str(value) if text else value
    if signal == "traces":
        doc = span_doc()
        resource = doc["resourceSpans"][0]
        scope = resource["scopeSpans"][0]
        item = scope["spans"][0]
    elif signal == "logs":
        doc = log_doc()
        resource = doc["resourceLogs"][0]
        scope = resource["scopeLogs"][0]
        item = scope["logRecords"][0]
    else:
        doc = metric_doc("exponentialHistogram", 2)
        resource = doc["resourceMetrics"][0]
        scope = resource["scopeMetrics"][0]
        item = scope["metrics"][0]["exponentialHistogram"]["dataPoints"][0]
    if field.startswith("attributes."):
        item["attributes"] = [{"key": "n", "value": {}}]
    target = field.split(".", 1)[0]
    if target == "resource":
        _set(resource, field, v)
    elif target == "scope":
        _set(scope, field, v)
    else:
        _set(item, field, v)
    return doc


cases = st.one_of(
    st.tuples(st.just("traces"), st.sampled_from(SPAN_NUMBERS), numbers, as_text),
    st.tuples(st.just("logs"), st.sampled_from(LOG_NUMBERS), numbers, as_text),
    st.tuples(st.just("metrics"), st.sampled_from(POINT_NUMBERS), numbers, as_text),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=cases)
def test_numbers_anywhere_never_give_a_500(
    server: RunningServer, case: tuple[str, str, int, bool]
) -> None:
    signal, field, value, text = case
    doc = _fuzzed(signal, field, value, text)
    url = f"{server.url}/v1/{signal}"
    # The standard library's encoder: orjson refuses integers beyond 64 bits.
    text_body = json.dumps(doc).encode()
    r = httpx.post(url, content=text_body, headers=JSON, timeout=30)
    assert r.status_code in (200, 400), (case, r.status_code, r.text)
    try:
        # The protobuf twin of the JSON as JSON parsers read it: a number beyond 64 bits is
        # a double (-(2**63) - 1 reads as -(2**63), within int64).
        body = to_protobuf(signal, orjson.loads(text_body))
    except json_format.ParseError:
        assert r.status_code == 400  # protobuf cannot even carry the value
        return
    p = httpx.post(url, content=body, headers=PROTOBUF, timeout=30)
    assert p.status_code == r.status_code, (case, p.content, r.text)
    if r.status_code == 400:
        assert status_of(p) == status_of(r)
