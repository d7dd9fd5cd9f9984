"""Stored rows -> API shapes and back to OTLP, through a real embedded store."""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    EntityRef,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import (
    LogRecord,
    LogsData,
    ResourceLogs,
    ScopeLogs,
    SeverityNumber,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import (
    ResourceSpans,
    ScopeSpans,
    Span,
    Status,
    TracesData,
)

from otterscope.otlp.anyvalue import Limits
from otterscope.otlp.rows import logs_batch, spans_batch
from otterscope.query.model import LogQuery
from otterscope.query.shapes import (
    log_to_api,
    logs_to_otlp,
    logs_to_otlp_json,
    span_to_api,
    spans_to_otlp,
    spans_to_otlp_json,
)
from otterscope.store.embedded.store import EmbeddedStore

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
OTHER_TRACE = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
ROOT = bytes.fromhex("b7ad6b7169203331")
CHILD = bytes.fromhex("00f067aa0ba902b7")
DB = bytes.fromhex("1234567890abcdef")
BIG = 2**60
T0 = 1_700_000_000_000_000_000


# -- building OTLP ------------------------------------------------------------------------


def s(v: str) -> AnyValue:
    return AnyValue(string_value=v)


def i(v: int) -> AnyValue:
    return AnyValue(int_value=v)


def d(v: float) -> AnyValue:
    return AnyValue(double_value=v)


def b(v: bool) -> AnyValue:
    return AnyValue(bool_value=v)


def arr(*vs: AnyValue) -> AnyValue:
    return AnyValue(array_value=ArrayValue(values=list(vs)))


def kvl(**vs: AnyValue) -> AnyValue:
    return AnyValue(kvlist_value=KeyValueList(values=kvs(**vs)))


def kvs(**vs: AnyValue) -> list[KeyValue]:
    return [KeyValue(key=k.replace("_", "."), value=v) for k, v in vs.items()]


def rich_attrs() -> list[KeyValue]:
    """Every AnyValue type, nested ones included."""
    return kvs(
        str_=s("hello"),
        bool_=b(True),
        int_=i(42),
        big_=i(BIG),
        neg_=i(-(2**63)),
        dbl_=d(1.5),
        whole_=d(3.0),
        nan_=d(math.nan),
        inf_=d(math.inf),
        ninf_=d(-math.inf),
        bytes_=AnyValue(bytes_value=b"\x00\xffbin"),
        array_=arr(s("a"), i(1), d(2.5), b(False), arr(i(BIG)), kvl(k=s("v"))),
        kvlist_=kvl(x=i(1), nested=kvl(y=arr(d(math.inf), AnyValue(bytes_value=b"\x01")))),
        empty_array=AnyValue(array_value=ArrayValue()),
        empty_kvlist=AnyValue(kvlist_value=KeyValueList()),
        empty_value=AnyValue(),
    )


RICH_API: dict[str, Any] = {
    "str.": "hello",
    "bool.": True,
    "int.": 42,
    "big.": str(BIG),
    "neg.": str(-(2**63)),
    "dbl.": 1.5,
    "whole.": 3.0,
    "nan.": "NaN",
    "inf.": "Infinity",
    "ninf.": "-Infinity",
    "bytes.": base64.b64encode(b"\x00\xffbin").decode(),
    "array.": ["a", 1, 2.5, False, [str(BIG)], {"k": "v"}],
    "kvlist.": {"x": 1, "nested": {"y": ["Infinity", "AQ=="]}},
    "empty.array": [],
    "empty.kvlist": {},
    "empty.value": None,
}


def trace_request() -> ExportTraceServiceRequest:
    resource = Resource(
        attributes=[*kvs(service_name=s("checkout")), *rich_attrs()],
        dropped_attributes_count=3,
        entity_refs=[
            EntityRef(
                schema_url="https://opentelemetry.io/schemas/1.30.0",
                type="service",
                id_keys=["service.name", "service.instance.id"],
                description_keys=["service.version"],
            )
        ],
    )
    root = Span(
        trace_id=TRACE,
        span_id=ROOT,
        trace_state="vendor=a,other=b",
        flags=0x301,
        name="GET /cart",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=T0,
        end_time_unix_nano=T0 + 12_345_678,
        attributes=rich_attrs(),
        dropped_attributes_count=2,
        events=[
            Span.Event(
                time_unix_nano=T0 + 1000,
                name="exception",
                attributes=rich_attrs(),
                dropped_attributes_count=1,
            ),
            Span.Event(time_unix_nano=T0 + 2000, name="bare"),
        ],
        dropped_events_count=4,
        links=[
            Span.Link(
                trace_id=OTHER_TRACE,
                span_id=DB,
                trace_state="k=v",
                attributes=kvs(why=s("batch"), n=i(BIG)),
                dropped_attributes_count=5,
                flags=0x101,
            )
        ],
        dropped_links_count=6,
        status=Status(code=Status.STATUS_CODE_ERROR, message="boom"),
    )
    child = Span(
        trace_id=TRACE,
        span_id=CHILD,
        parent_span_id=ROOT,
        name="charge",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=T0 + 100,
        end_time_unix_nano=T0 + 100,
        status=Status(code=Status.STATUS_CODE_OK),
    )
    internal = Span(
        trace_id=TRACE,
        span_id=bytes.fromhex("0000000000000001"),
        parent_span_id=CHILD,
        name="compute",
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=T0 + 200,
        end_time_unix_nano=T0 + 1_200,
        status=Status(),
    )
    db = Span(
        trace_id=TRACE,
        span_id=DB,
        parent_span_id=CHILD,
        name="SELECT",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=T0 + 300,
        end_time_unix_nano=T0 + 800,
        attributes=kvs(db_system=s("postgresql")),
        status=Status(),
    )
    producer = Span(
        trace_id=TRACE,
        span_id=bytes.fromhex("0000000000000002"),
        parent_span_id=ROOT,
        name="publish",
        kind=Span.SPAN_KIND_PRODUCER,
        start_time_unix_nano=T0 + 400,
        end_time_unix_nano=T0 + 500,
        status=Status(),
    )
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=resource,
                schema_url="https://opentelemetry.io/schemas/1.26.0",
                scope_spans=[
                    ScopeSpans(
                        scope=InstrumentationScope(
                            name="io.otel.http",
                            version="1.2.3",
                            attributes=kvs(lib=s("http"), level=i(7)),
                            dropped_attributes_count=8,
                        ),
                        schema_url="https://opentelemetry.io/schemas/1.27.0",
                        spans=[root, child],
                    ),
                    ScopeSpans(
                        scope=InstrumentationScope(name="manual"),
                        spans=[internal, producer],
                    ),
                ],
            ),
            ResourceSpans(
                resource=Resource(attributes=kvs(service_name=s("db"))),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name="sql"), spans=[db])],
            ),
        ]
    )


def log_request() -> ExportLogsServiceRequest:
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(
                    attributes=[*kvs(service_name=s("checkout")), *rich_attrs()],
                    dropped_attributes_count=1,
                    entity_refs=[EntityRef(type="host", id_keys=["host.id"])],
                ),
                schema_url="https://opentelemetry.io/schemas/1.26.0",
                scope_logs=[
                    ScopeLogs(
                        scope=InstrumentationScope(
                            name="app.logger",
                            version="0.9",
                            attributes=kvs(lib=s("logging")),
                            dropped_attributes_count=2,
                        ),
                        schema_url="https://opentelemetry.io/schemas/1.27.0",
                        log_records=[
                            LogRecord(
                                time_unix_nano=T0 + 3,
                                observed_time_unix_nano=T0 + 4,
                                severity_number=SeverityNumber.SEVERITY_NUMBER_ERROR,
                                severity_text="ERROR",
                                body=kvl(msg=s("payment failed"), code=i(BIG), ratio=d(math.nan)),
                                attributes=rich_attrs(),
                                dropped_attributes_count=9,
                                flags=1,
                                trace_id=TRACE,
                                span_id=ROOT,
                                event_name="payment.failed",
                            ),
                            LogRecord(
                                time_unix_nano=T0 + 2,
                                severity_number=SeverityNumber.SEVERITY_NUMBER_INFO,
                                severity_text="INFO",
                                body=s("plain text"),
                            ),
                        ],
                    ),
                    ScopeLogs(
                        scope=InstrumentationScope(name="raw"),
                        log_records=[
                            # No time: filed under the observed time; no body at all.
                            LogRecord(observed_time_unix_nano=T0 + 1),
                            LogRecord(time_unix_nano=T0, body=AnyValue(bytes_value=b"\xde\xad")),
                            LogRecord(time_unix_nano=T0 - 1, body=AnyValue()),
                        ],
                    ),
                ],
            ),
            # No service.name: stored under unknown_service.
            ResourceLogs(
                resource=Resource(attributes=kvs(host_name=s("h1"))),
                scope_logs=[
                    ScopeLogs(
                        scope=InstrumentationScope(name="other"),
                        log_records=[LogRecord(time_unix_nano=T0 + 5, body=arr(i(1), d(math.inf)))],
                    )
                ],
            ),
        ]
    )


# -- normalising for comparison -------------------------------------------------------------


def _key(msg: Any) -> bytes:
    return bytes(msg.SerializeToString(deterministic=True))


def canon_traces(data: TracesData) -> TracesData:
    out = TracesData()
    for rs in sorted(data.resource_spans, key=lambda r: _key(r.resource) + r.schema_url.encode()):
        new_rs = out.resource_spans.add()
        new_rs.CopyFrom(rs)
        del new_rs.scope_spans[:]
        for ss in sorted(rs.scope_spans, key=lambda x: _key(x.scope) + x.schema_url.encode()):
            new_ss = new_rs.scope_spans.add()
            new_ss.CopyFrom(ss)
            del new_ss.spans[:]
            new_ss.spans.extend(sorted(ss.spans, key=lambda sp: sp.span_id))
    return out


def canon_logs(data: LogsData) -> LogsData:
    out = LogsData()
    for rl in sorted(data.resource_logs, key=lambda r: _key(r.resource) + r.schema_url.encode()):
        new_rl = out.resource_logs.add()
        new_rl.CopyFrom(rl)
        del new_rl.scope_logs[:]
        for sl in sorted(rl.scope_logs, key=lambda x: _key(x.scope) + x.schema_url.encode()):
            new_sl = new_rl.scope_logs.add()
            new_sl.CopyFrom(sl)
            del new_sl.log_records[:]
            new_sl.log_records.extend(sorted(sl.log_records, key=_key))
    return out


def assert_same(a: Any, b: Any) -> None:
    # Compared as JSON dicts for a readable diff (NaN is "NaN" there, so it compares equal),
    # then byte for byte.
    assert MessageToDict(a) == MessageToDict(b)
    assert _key(a) == _key(b)


# -- tests --------------------------------------------------------------------------------


def _stored_trace(tmp_path: Path) -> tuple[ExportTraceServiceRequest, list[dict[str, Any]]]:
    req = trace_request()
    batch = spans_batch(req, "default", Limits())
    assert batch.rejected == 0 and batch.accepted == 5
    store = EmbeddedStore(tmp_path)
    try:
        store.write([batch])
        rows = store.get_trace("default", TRACE)
    finally:
        store.close()
    assert len(rows) == 5
    return req, rows


def test_span_api_shape(tmp_path: Path) -> None:
    _, rows = _stored_trace(tmp_path)
    spans = [span_to_api(r) for r in rows]
    by_id = {sp["spanId"]: sp for sp in spans}
    assert by_id[ROOT.hex()] == {
        "traceId": TRACE.hex(),
        "spanId": ROOT.hex(),
        "parentSpanId": "",
        "traceState": "vendor=a,other=b",
        "flags": 0x301,
        "service": "checkout",
        "name": "GET /cart",
        "kind": "SPAN_KIND_SERVER",
        "startTimeUnixNano": str(T0),
        "endTimeUnixNano": str(T0 + 12_345_678),
        "durationMs": 12.345678,
        "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
        "attributes": RICH_API,
        "resource": {"service.name": "checkout", **RICH_API},
        "scope": {
            "name": "io.otel.http",
            "version": "1.2.3",
            "attributes": {"lib": "http", "level": 7},
        },
        "events": [
            {
                "timeUnixNano": str(T0 + 1000),
                "name": "exception",
                "attributes": RICH_API,
                "droppedAttributesCount": 1,
            },
            {
                "timeUnixNano": str(T0 + 2000),
                "name": "bare",
                "attributes": {},
                "droppedAttributesCount": 0,
            },
        ],
        "links": [
            {
                "traceId": OTHER_TRACE.hex(),
                "spanId": DB.hex(),
                "traceState": "k=v",
                "attributes": {"why": "batch", "n": str(BIG)},
                "droppedAttributesCount": 5,
                "flags": 0x101,
            }
        ],
        "droppedAttributesCount": 2,
        "droppedEventsCount": 4,
        "droppedLinksCount": 6,
    }
    child = by_id[CHILD.hex()]
    assert child["parentSpanId"] == ROOT.hex()
    assert child["kind"] == "SPAN_KIND_CLIENT"
    assert child["status"] == {"code": "STATUS_CODE_OK", "message": ""}
    assert child["durationMs"] == 0.0 and isinstance(child["durationMs"], float)
    assert child["scope"] == {
        "name": "io.otel.http",
        "version": "1.2.3",
        "attributes": {"lib": "http", "level": 7},
    }
    assert by_id["0000000000000001"]["kind"] == "SPAN_KIND_INTERNAL"
    assert by_id["0000000000000001"]["durationMs"] == 0.001
    assert by_id["0000000000000001"]["status"]["code"] == "STATUS_CODE_UNSET"
    assert by_id["0000000000000001"]["scope"] == {"name": "manual", "version": "", "attributes": {}}
    assert by_id["0000000000000002"]["kind"] == "SPAN_KIND_PRODUCER"
    db = by_id[DB.hex()]
    assert db["service"] == "db" and db["resource"] == {"service.name": "db"}
    assert db["attributes"] == {"db.system": "postgresql"}
    assert db["events"] == [] and db["links"] == []


def test_span_kind_names() -> None:
    base = {
        "trace_id": TRACE,
        "span_id": ROOT,
        "start_time_unix_nano": 0,
        "end_time_unix_nano": 0,
    }
    kinds = [span_to_api({**base, "kind": k})["kind"] for k in range(6)]
    assert kinds == [
        "SPAN_KIND_UNSPECIFIED",
        "SPAN_KIND_INTERNAL",
        "SPAN_KIND_SERVER",
        "SPAN_KIND_CLIENT",
        "SPAN_KIND_PRODUCER",
        "SPAN_KIND_CONSUMER",
    ]


def test_spans_round_trip_to_otlp(tmp_path: Path) -> None:
    req, rows = _stored_trace(tmp_path)
    original = TracesData(resource_spans=req.resource_spans)
    rebuilt = spans_to_otlp(rows)
    assert len(rebuilt.resource_spans) == 2
    assert sorted(len(rs.scope_spans) for rs in rebuilt.resource_spans) == [1, 2]
    assert_same(canon_traces(rebuilt), canon_traces(original))


def test_spans_otlp_json(tmp_path: Path) -> None:
    _, rows = _stored_trace(tmp_path)
    out = spans_to_otlp_json(rows)
    assert spans_to_otlp_json([]) == {"resourceSpans": []}
    (checkout,) = [
        rs
        for rs in out["resourceSpans"]
        if rs["resource"]["attributes"][0]["value"] == {"stringValue": "checkout"}
    ]
    assert checkout["schemaUrl"] == "https://opentelemetry.io/schemas/1.26.0"
    assert checkout["resource"]["droppedAttributesCount"] == 3
    assert checkout["resource"]["entityRefs"] == [
        {
            "schemaUrl": "https://opentelemetry.io/schemas/1.30.0",
            "type": "service",
            "idKeys": ["service.name", "service.instance.id"],
            "descriptionKeys": ["service.version"],
        }
    ]
    (scope,) = [ss for ss in checkout["scopeSpans"] if ss["scope"]["name"] == "io.otel.http"]
    assert scope["scope"] == {
        "name": "io.otel.http",
        "version": "1.2.3",
        "attributes": [
            {"key": "lib", "value": {"stringValue": "http"}},
            {"key": "level", "value": {"intValue": "7"}},
        ],
        "droppedAttributesCount": 8,
    }
    assert scope["schemaUrl"] == "https://opentelemetry.io/schemas/1.27.0"
    root, child = scope["spans"]
    assert root["traceId"] == TRACE.hex() and root["spanId"] == ROOT.hex()
    assert "parentSpanId" not in root
    assert child["parentSpanId"] == ROOT.hex()
    assert root["kind"] == 2 and child["kind"] == 3
    assert root["status"] == {"code": 2, "message": "boom"}
    assert root["startTimeUnixNano"] == str(T0)
    assert root["flags"] == 0x301 and root["traceState"] == "vendor=a,other=b"
    assert root["droppedEventsCount"] == 4 and root["droppedLinksCount"] == 6
    attrs = {kv["key"]: kv["value"] for kv in root["attributes"]}
    assert attrs["str."] == {"stringValue": "hello"}
    assert attrs["bool."] == {"boolValue": True}
    assert attrs["big."] == {"intValue": str(BIG)}
    assert attrs["dbl."] == {"doubleValue": 1.5}
    assert attrs["whole."] == {"doubleValue": 3.0}
    assert attrs["nan."] == {"doubleValue": "NaN"}
    assert attrs["inf."] == {"doubleValue": "Infinity"}
    assert attrs["ninf."] == {"doubleValue": "-Infinity"}
    assert attrs["bytes."] == {"bytesValue": base64.b64encode(b"\x00\xffbin").decode()}
    assert attrs["array."]["arrayValue"]["values"][4] == {
        "arrayValue": {"values": [{"intValue": str(BIG)}]}
    }
    assert attrs["kvlist."] == {
        "kvlistValue": {
            "values": [
                {"key": "x", "value": {"intValue": "1"}},
                {
                    "key": "nested",
                    "value": {
                        "kvlistValue": {
                            "values": [
                                {
                                    "key": "y",
                                    "value": {
                                        "arrayValue": {
                                            "values": [
                                                {"doubleValue": "Infinity"},
                                                {"bytesValue": "AQ=="},
                                            ]
                                        }
                                    },
                                }
                            ]
                        }
                    },
                },
            ]
        }
    }
    assert attrs["empty.value"] == {}
    assert root["events"][0]["timeUnixNano"] == str(T0 + 1000)
    assert root["events"][0]["droppedAttributesCount"] == 1
    assert root["links"] == [
        {
            "traceId": OTHER_TRACE.hex(),
            "spanId": DB.hex(),
            "traceState": "k=v",
            "attributes": [
                {"key": "why", "value": {"stringValue": "batch"}},
                {"key": "n", "value": {"intValue": str(BIG)}},
            ],
            "droppedAttributesCount": 5,
            "flags": 0x101,
        }
    ]


def _stored_logs(tmp_path: Path) -> tuple[ExportLogsServiceRequest, list[dict[str, Any]]]:
    req = log_request()
    batch = logs_batch(req, "default", Limits())
    assert batch.rejected == 0 and batch.accepted == 6
    store = EmbeddedStore(tmp_path)
    try:
        store.write([batch])
        rows = store.search_logs("default", LogQuery(start_ns=0, end_ns=2**63 - 1)).items
    finally:
        store.close()
    assert len(rows) == 6
    return req, rows


def test_log_api_shape(tmp_path: Path) -> None:
    _, rows = _stored_logs(tmp_path)
    logs = [log_to_api(r) for r in rows]
    # Newest first, by the time each record is filed under.
    assert [lg["timeUnixNano"] for lg in logs] == [
        str(T0 + 5),
        str(T0 + 3),
        str(T0 + 2),
        "0",
        str(T0),
        str(T0 - 1),
    ]
    assert logs[1] == {
        "timeUnixNano": str(T0 + 3),
        "observedTimeUnixNano": str(T0 + 4),
        "service": "checkout",
        "severityNumber": 17,
        "severityText": "ERROR",
        "body": {"msg": "payment failed", "code": str(BIG), "ratio": "NaN"},
        "eventName": "payment.failed",
        "attributes": RICH_API,
        "resource": {"service.name": "checkout", **RICH_API},
        "scope": {"name": "app.logger", "version": "0.9"},
        "traceId": TRACE.hex(),
        "spanId": ROOT.hex(),
        "flags": 1,
    }
    assert logs[0]["service"] == "unknown_service"
    assert logs[0]["body"] == [1, "Infinity"]
    assert logs[0]["resource"] == {"host.name": "h1"}
    assert logs[2]["body"] == "plain text" and logs[2]["observedTimeUnixNano"] == "0"
    assert logs[2]["traceId"] == "" and logs[2]["spanId"] == "" and logs[2]["flags"] == 0
    assert logs[3]["body"] is None and logs[3]["observedTimeUnixNano"] == str(T0 + 1)
    assert logs[3]["scope"] == {"name": "raw", "version": ""}
    assert logs[4]["body"] == base64.b64encode(b"\xde\xad").decode()
    assert logs[5]["body"] is None
    assert logs[5]["eventName"] == "" and logs[5]["severityNumber"] == 0


def test_logs_round_trip_to_otlp(tmp_path: Path) -> None:
    req, rows = _stored_logs(tmp_path)
    original = LogsData(resource_logs=req.resource_logs)
    rebuilt = logs_to_otlp(rows)
    assert len(rebuilt.resource_logs) == 2
    # A body with no value stays a present, empty body; a missing body stays missing.
    records = [r for rl in rebuilt.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    no_time = [r for r in records if r.time_unix_nano == 0]
    assert len(no_time) == 1 and not no_time[0].HasField("body")
    empty = [r for r in records if r.time_unix_nano == T0 - 1]
    assert empty[0].HasField("body") and empty[0].body.WhichOneof("value") is None
    assert_same(canon_logs(rebuilt), canon_logs(original))


def test_logs_otlp_json(tmp_path: Path) -> None:
    _, rows = _stored_logs(tmp_path)
    out = logs_to_otlp_json(rows)
    assert logs_to_otlp_json([]) == {"resourceLogs": []}
    records = {
        rec.get("timeUnixNano", "0"): rec
        for rl in out["resourceLogs"]
        for sl in rl["scopeLogs"]
        for rec in sl["logRecords"]
    }
    err = records[str(T0 + 3)]
    assert err["traceId"] == TRACE.hex() and err["spanId"] == ROOT.hex()
    assert err["severityNumber"] == 17 and err["severityText"] == "ERROR"
    assert err["observedTimeUnixNano"] == str(T0 + 4)
    assert err["eventName"] == "payment.failed" and err["flags"] == 1
    assert err["droppedAttributesCount"] == 9
    assert err["body"] == {
        "kvlistValue": {
            "values": [
                {"key": "msg", "value": {"stringValue": "payment failed"}},
                {"key": "code", "value": {"intValue": str(BIG)}},
                {"key": "ratio", "value": {"doubleValue": "NaN"}},
            ]
        }
    }
    assert records[str(T0)]["body"] == {"bytesValue": base64.b64encode(b"\xde\xad").decode()}
    assert "traceId" not in records[str(T0 + 2)] and "body" not in records["0"]
    checkout = [
        rl
        for rl in out["resourceLogs"]
        if rl.get("schemaUrl") == "https://opentelemetry.io/schemas/1.26.0"
    ]
    assert checkout[0]["resource"]["entityRefs"] == [{"type": "host", "idKeys": ["host.id"]}]


def test_a_kvlist_that_only_looks_like_a_tag_reads_back_as_a_kvlist() -> None:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    from otterscope.otlp.anyvalue import from_json, to_api

    for fake in ({"\x00b": "not base64!"}, {"\x00d": "1.5"}, {"\x00b": 7}):
        av = AnyValue()
        from_json(fake, av)
        assert av.WhichOneof("value") == "kvlist_value"
    assert to_api({"\x00b": "not base64!"}) == "not base64!"
    av = AnyValue()
    from_json({"\x00b": "AAE="}, av)
    assert av.bytes_value == b"\x00\x01"
