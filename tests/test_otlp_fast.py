"""The C span decoder (otlp.fast) against the Python path (upb + rows.spans_batch).

Every test is differential: the same body goes through both, and the batches must agree in
every column (JSON columns after orjson.loads, compared with key order and number types),
in every count, and in the reject message. Where upb refuses a body, the fast path must
refuse it too (BadRequest); where the Python path fails building its table (a value outside
the schema's integer types), the fast path must answer BadRequest.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from otterscope.errors import BadRequest
from otterscope.otlp import _fastotlp, rows
from otterscope.otlp.anyvalue import Limits
from otterscope.otlp.fast import spans_batch_from_bytes
from otterscope.otlp.schema import SPANS

JSON_COLUMNS = {
    "attributes",
    "events",
    "links",
    "resource_attributes",
    "scope_attributes",
    "resource_entity_refs",
}
TID = bytes(range(1, 17))
SID = bytes(range(1, 9))
SMALL = Limits(attribute_count=3, attribute_value_length=4)


# ------------------------------------------------------------------------------------------
# Comparison


def canon(value: Any) -> Any:
    """JSON value -> a form whose equality also checks key order and number types."""
    if isinstance(value, dict):
        return ("obj", [(k, canon(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("arr", [canon(v) for v in value])
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, value)


def assert_tables_equal(expected: pa.Table, actual: pa.Table) -> None:
    assert actual.schema == expected.schema
    assert actual.num_rows == expected.num_rows
    for name in expected.column_names:
        want = expected.column(name).to_pylist()
        got = actual.column(name).to_pylist()
        if name in JSON_COLUMNS:
            want = [canon(orjson.loads(x)) for x in want]
            got = [canon(orjson.loads(x)) for x in got]
        assert got == want, name
    actual.validate(full=True)


def check(body: bytes, limits: Limits | None = None, tenant: str = "acme") -> str:
    """Runs both paths on ``body``; returns what happened ("ok", "decode", "schema")."""
    limits = limits or Limits()
    try:
        message = ExportTraceServiceRequest.FromString(body)
    except DecodeError:
        with pytest.raises(BadRequest):
            spans_batch_from_bytes(body, tenant, limits)
        return "decode"
    try:
        expected = rows.spans_batch(message, tenant, limits)
    except BadRequest as exc:
        # A value the table cannot hold: both paths refuse it in the same words.
        with pytest.raises(BadRequest) as fast:
            spans_batch_from_bytes(body, tenant, limits)
        assert fast.value.message == exc.message
        return "schema"
    actual = spans_batch_from_bytes(body, tenant, limits)
    assert actual.signal == "traces"
    assert actual.accepted == expected.accepted
    assert actual.rejected == expected.rejected
    assert actual.reject_message == expected.reject_message
    assert actual.dropped_attributes == expected.dropped_attributes
    assert actual.truncated_attributes == expected.truncated_attributes
    assert_tables_equal(expected.table, actual.table)
    return "ok"


def check_message(req: ExportTraceServiceRequest, limits: Limits | None = None) -> str:
    return check(req.SerializeToString(), limits)


# ------------------------------------------------------------------------------------------
# Raw wire format, for what the protobuf API cannot write


def varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        low = v & 0x7F
        v >>= 7
        if v:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def tag(num: int, wt: int) -> bytes:
    return varint(num << 3 | wt)


def ld(num: int, payload: bytes) -> bytes:
    return tag(num, 2) + varint(len(payload)) + payload


def vi(num: int, v: int) -> bytes:
    return tag(num, 0) + varint(v)


def f64(num: int, v: int) -> bytes:
    return tag(num, 1) + struct.pack("<Q", v)


def f32(num: int, v: int) -> bytes:
    return tag(num, 5) + struct.pack("<I", v)


def dbl(num: int, v: float) -> bytes:
    return tag(num, 1) + struct.pack("<d", v)


def kv(key: bytes | str, *values: bytes) -> bytes:
    k = key.encode() if isinstance(key, str) else key
    return ld(1, k) + b"".join(ld(2, v) for v in values)


def span_bytes(*fields: bytes, ids: bool = True) -> bytes:
    head = ld(1, TID) + ld(2, SID) + ld(5, b"s") + f64(7, 10) + f64(8, 20) if ids else b""
    return head + b"".join(fields)


def request(*spans: bytes, resource: bytes = b"", scope: bytes = b"") -> bytes:
    ss = ld(1, scope) + b"".join(ld(2, s) for s in spans)
    return ld(1, ld(1, resource) + ld(2, ss))


# ------------------------------------------------------------------------------------------
# Hand-built requests


def set_value(av: AnyValue, value: Any) -> None:
    """Fill an AnyValue from a tagged tuple (see ``any_values``)."""
    kind = value[0]
    if kind == "s":
        av.string_value = value[1]
    elif kind == "b":
        av.bool_value = value[1]
    elif kind == "i":
        av.int_value = value[1]
    elif kind == "d":
        av.double_value = value[1]
    elif kind == "y":
        av.bytes_value = value[1]
    elif kind == "a":
        av.array_value.SetInParent()
        for item in value[1]:
            set_value(av.array_value.values.add(), item)
    elif kind == "k":
        av.kvlist_value.SetInParent()
        for key, item in value[1]:
            entry = av.kvlist_value.values.add(key=key)
            set_value(entry.value, item)
    elif kind == "x":
        av.string_value_strindex = value[1]
    # "n": left empty


def add_attrs(container: Any, attrs: list[tuple[str, Any]]) -> None:
    for key, value in attrs:
        entry = container.add(key=key)
        if value is not None:
            set_value(entry.value, value)


EVERY_TYPE: list[tuple[str, Any]] = [
    ("str", ("s", "héllo wörld ✓ 😀")),
    ("empty", ("s", "")),
    ("esc", ("s", 'quote " backslash \\ nl \n tab \t nul \x00 bell \x07 del \x7f / é')),
    ("true", ("b", True)),
    ("false", ("b", False)),
    ("int", ("i", 42)),
    ("min", ("i", -(2**63))),
    ("max", ("i", 2**63 - 1)),
    ("one", ("d", 1.0)),
    ("tenth", ("d", 0.1)),
    ("neg0", ("d", -0.0)),
    ("big", ("d", 1e300)),
    ("tiny", ("d", 5e-324)),
    ("sub", ("d", 2.2250738585072e-310)),
    ("e16", ("d", 1e16)),
    ("nan", ("d", math.nan)),
    ("inf", ("d", math.inf)),
    ("ninf", ("d", -math.inf)),
    ("bytes", ("y", b"\x00\x01\xfe\xff binary")),
    ("nobytes", ("y", b"")),
    ("arr", ("a", [("s", "a"), ("i", 1), ("d", 2.5), ("b", True), ("y", b"zz"), ("n",)])),
    ("emptyarr", ("a", [])),
    ("nested", ("a", [("a", [("a", [("s", "deep")])]), ("k", [("x", ("i", 1))])])),
    ("kvl", ("k", [("a", ("s", "x")), ("b", ("k", [("c", ("a", [("i", -1)]))])), ("a", ("i", 2))])),
    ("emptykvl", ("k", [])),
    ("none", ("n",)),
    ("strindex", ("x", 7)),
    ('\x00key\n"', ("s", "odd key")),
    ("str", ("i", 9)),  # duplicate key: value replaced, position kept
]


def rich_request() -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
    add_attrs(
        rs.resource.attributes,
        [("service.name", ("s", "checkout")), ("host", ("s", "h" * 10)), ("n", ("i", 3))],
    )
    rs.resource.dropped_attributes_count = 2
    ref = rs.resource.entity_refs.add(schema_url="u", type="service")
    ref.id_keys.extend(["service.name", "service.namespace"])
    ref.description_keys.append("host")
    ss = rs.scope_spans.add(schema_url="scope-url")
    ss.scope.name = "lib"
    ss.scope.version = "1.2.3"
    add_attrs(ss.scope.attributes, [("scope.attr", ("s", "long scope value"))])
    ss.scope.dropped_attributes_count = 1
    for i in range(4):
        span = ss.spans.add(
            trace_id=TID,
            span_id=bytes([i + 1]) * 8,
            parent_span_id=SID if i % 2 else b"",
            trace_state="k=v,x=y" if i else "",
            flags=0x301 if i == 2 else i,
            name=f"span {i} ✓",
            kind=i,
            start_time_unix_nano=1_700_000_000_000_000_000 + i,
            end_time_unix_nano=1_700_000_000_000_000_000 + 1000 * (i - 1),
            dropped_attributes_count=i,
            dropped_events_count=2 * i,
            dropped_links_count=3 * i,
        )
        add_attrs(span.attributes, EVERY_TYPE[i * 7 :] + EVERY_TYPE[: i * 7])
        span.status.code = i % 3
        span.status.message = "" if i % 2 else f"status {i} ünïcode"
        for j in range(i):
            ev = span.events.add(time_unix_nano=(2**64 - 1) if j == 0 else j, name=f"ev{j}")
            add_attrs(ev.attributes, EVERY_TYPE[j : j + 5])
            ev.dropped_attributes_count = j
        for j in range(3 - i):
            lk = span.links.add(
                trace_id=bytes([j + 1]) * 16,
                span_id=bytes([j + 2]) * (8 if j else 3),
                trace_state=f"ts{j}",
                flags=2**32 - 1 if j == 1 else j,
            )
            add_attrs(lk.attributes, EVERY_TYPE[10 + j : 14 + j])
            lk.dropped_attributes_count = 5
    ss.spans.add(name="bad trace id", trace_id=b"\x00" * 16, span_id=SID)
    # a scope with no spans, and an empty scope
    rs.scope_spans.add(schema_url="empty").scope.name = "nothing here"
    rs.scope_spans.add()
    # a second resource without service.name, two scopes
    rs2 = req.resource_spans.add()
    add_attrs(rs2.resource.attributes, [("service.name", ("i", 5)), ("z", ("a", [("s", "q")]))])
    for k in range(2):
        ss2 = rs2.scope_spans.add()
        ss2.scope.name = f"scope{k}"
        for i in range(3):
            ss2.spans.add(
                trace_id=bytes([k + 1]) * 16, span_id=bytes([i + 7]) * 8, name=f"r2-{k}-{i}"
            )
    # a resource with no scopes at all, and an empty one
    add_attrs(req.resource_spans.add().resource.attributes, [("lonely", ("s", "yes"))])
    req.resource_spans.add()
    return req


LIMITS = [
    Limits(),
    Limits(attribute_count=0, attribute_value_length=0),
    Limits(attribute_count=1, attribute_value_length=1),
    Limits(attribute_count=2, attribute_value_length=3),
    Limits(attribute_count=3, attribute_value_length=4),
    Limits(attribute_count=5, attribute_value_length=10),
    Limits(attribute_count=-1, attribute_value_length=2),
    Limits(attribute_count=10**30, attribute_value_length=10**30),
]


@pytest.mark.parametrize(
    "limits", LIMITS, ids=lambda lim: f"{lim.attribute_count}-{lim.attribute_value_length}"
)
def test_rich_request_under_limits(limits: Limits) -> None:
    assert check_message(rich_request(), limits) == "ok"


def test_rich_request_values() -> None:
    batch = spans_batch_from_bytes(rich_request().SerializeToString(), "acme", Limits())
    assert batch.accepted == 10
    assert batch.rejected == 1
    assert batch.reject_message == (
        "1 item(s) rejected: span 'bad trace id': trace_id must be 16 bytes, not all zero"
    )
    first = orjson.loads(batch.table.column("attributes")[0].as_py())
    assert first["one"] == 1.0 and isinstance(first["one"], float)
    assert first["max"] == 2**63 - 1 and first["min"] == -(2**63)
    assert first["nan"] == {"\x00d": "NaN"} and first["ninf"] == {"\x00d": "-Infinity"}
    assert first["bytes"] == {"\x00b": "AAH+/yBiaW5hcnk="}
    assert first["none"] is None and first["strindex"] is None
    assert next(iter(first)) == "str" and first["str"] == 9
    assert batch.table.column("duration_nano").to_pylist()[:4] == [0, 0, 998, 1997]
    services = batch.table.column("service_name").to_pylist()
    assert services == ["checkout"] * 4 + ["unknown_service"] * 6


def test_empty_request() -> None:
    assert check(b"") == "ok"
    batch = spans_batch_from_bytes(b"", "acme", Limits())
    assert batch.table.num_rows == 0
    assert batch.table.schema == SPANS
    assert (batch.accepted, batch.rejected, batch.reject_message) == (0, 0, "")


def test_bytearray_and_memoryview_bodies() -> None:
    body = rich_request().SerializeToString()
    expected = spans_batch_from_bytes(body, "t", Limits()).table
    for other in (bytearray(body), memoryview(body)):
        assert spans_batch_from_bytes(other, "t", Limits()).table.equals(expected)  # type: ignore[arg-type]


def test_rejects_of_every_kind() -> None:
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    good = {"trace_id": TID, "span_id": SID}
    cases: list[dict[str, Any]] = [
        {"trace_id": b""},
        {"trace_id": TID[:15]},
        {"trace_id": TID + b"\x01"},
        {"trace_id": bytes(16)},
        {"span_id": b""},
        {"span_id": SID[:7]},
        {"span_id": bytes(8)},
        {"parent_span_id": b"\x01"},
        {"parent_span_id": bytes(9)},
        {"start_time_unix_nano": 2**63},
        {"end_time_unix_nano": 2**64 - 1},
        {},
        {"parent_span_id": bytes(8), "start_time_unix_nano": 2**63 - 1},
    ]
    for i, case in enumerate(cases):
        span = spans.add(name=f'it\'s #{i} "quoted"', **{**good, **case})
        add_attrs(span.attributes, [("a", ("s", "xxxxxxxx")), ("b", ("i", 1))])
        span.events.add(name="e").attributes.add(key="k").value.string_value = "yyyyyyyy"
        span.links.add(trace_id=b"\x01").attributes.add(key="k").value.bytes_value = b"zzzzzzz"
    assert check_message(req) == "ok"
    assert check_message(req, SMALL) == "ok"
    batch = spans_batch_from_bytes(req.SerializeToString(), "t", SMALL)
    assert (batch.accepted, batch.rejected) == (2, 11)
    assert batch.reject_message.startswith("11 item(s) rejected: span 'it\\'s #0 \"quoted\"'")
    assert batch.reject_message.endswith("(and 10 more)")
    # limits count only for stored spans: 2 spans x (a, event k, link k) truncated
    assert batch.truncated_attributes == 6
    for reason, case in [
        ("span_id must be 8 bytes, not all zero", {"span_id": b""}),
        ("parent_span_id must be empty or 8 bytes", {"parent_span_id": b"1"}),
        ("timestamp beyond the year 2262", {"end_time_unix_nano": 2**63}),
    ]:
        one = ExportTraceServiceRequest()
        one.resource_spans.add().scope_spans.add().spans.add(name="n", **{**good, **case})
        got = spans_batch_from_bytes(one.SerializeToString(), "t", Limits())
        assert got.reject_message == f"1 item(s) rejected: span 'n': {reason}"
        assert check_message(one) == "ok"


def test_attribute_limits_semantics() -> None:
    attrs = [
        ("a", ("s", "1234567")),
        ("b", ("s", "12")),
        ("a", ("s", "abc")),  # duplicate: replaces, never dropped, truncation counted again
        ("c", ("i", 1)),
        ("d", ("y", b"123456")),
        ("b", ("a", [("s", "123456"), ("s", "1")])),
        ("e", ("s", "dropped")),
        ("a", ("k", [("x", ("s", "123456")), ("x", ("s", "1"))])),
        ("f", ("d", 1.5)),
    ]
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(trace_id=TID, span_id=SID)
    add_attrs(span.attributes, attrs)
    span.dropped_attributes_count = 10
    for limits in LIMITS:
        assert check_message(req, limits) == "ok"
    got = spans_batch_from_bytes(req.SerializeToString(), "t", SMALL)
    assert orjson.loads(got.table.column("attributes")[0].as_py()) == {
        "a": {"x": "1"},
        "b": ["1234", "1"],
        "c": 1,
    }
    assert got.table.column("dropped_attributes_count").to_pylist() == [10 + 6]
    assert (got.dropped_attributes, got.truncated_attributes) == (3, 3)


def test_code_point_truncation() -> None:
    text = 'aé😀中\x00"z' * 3
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(trace_id=TID, span_id=SID)
    add_attrs(
        span.attributes,
        [("s", ("s", text)), ("arr", ("a", [("s", text), ("y", text.encode())]))],
    )
    for n in range(len(text) + 2):
        assert check_message(req, Limits(attribute_value_length=n)) == "ok"


def test_many_attributes_use_the_hash_path() -> None:
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(trace_id=TID, span_id=SID)
    keys = [f"k{i % 150}" for i in range(400)]
    add_attrs(span.attributes, [(k, ("i", i)) for i, k in enumerate(keys)])
    kvl = [(f"n{i % 40}", ("i", i)) for i in range(100)]
    span.attributes.add(key="kvl").value.kvlist_value.SetInParent()
    add_attrs(span.attributes[-1].value.kvlist_value.values, kvl)
    for count in (10, 16, 17, 100, 128, 1000):
        assert check_message(req, Limits(attribute_count=count)) == "ok"


def test_large_kvlist_stays_linear() -> None:
    entries = b"".join(ld(1, kv(f"key-{i % 20000}", vi(3, i))) for i in range(30000))
    body = request(span_bytes(ld(9, kv("big", ld(6, entries)))))
    assert check(body) == "ok"


def test_schema_overflows_are_bad_requests() -> None:
    for fields in (
        vi(6, 200),  # kind outside int8
        vi(6, (1 << 64) - 200),  # kind -200
        ld(15, vi(3, 128)),  # status code outside int8
        vi(10, 2**32 - 1) + ld(9, kv("a", ld(1, b"long value"))),  # dropped + truncated
    ):
        body = request(span_bytes(fields))
        assert check(body, SMALL) == "schema"
    # int8 extremes are fine; int32 munging of larger varints matches upb
    for fields in (vi(6, 127), vi(6, (1 << 64) - 128), vi(6, (1 << 32) + 5), vi(10, 2**32 - 1)):
        assert check(request(span_bytes(fields)), SMALL) == "ok"
    # resource / scope counts beyond uint32: the Python path fails building the table
    res = vi(2, 2**32 - 1) + ld(1, kv("k", ld(1, b"long value")))
    assert check(request(span_bytes(), resource=res), SMALL) == "schema"
    # ... but only where it would be stored: not for a resource or scope without spans
    assert check(request(resource=res), SMALL) == "ok"
    scope = vi(4, 2**32 - 1) + ld(3, kv("k", ld(1, b"long value")))
    assert check(request(span_bytes(), scope=scope), SMALL) == "schema"
    assert check(request(span_bytes(ids=False), scope=scope), SMALL) == "ok"
    mixed = ld(1, ld(1, res) + ld(2, b"") + ld(2, ld(2, span_bytes()))) + ld(1, ld(2, ld(1, scope)))
    assert check(mixed, SMALL) == "schema"
    assert check(ld(1, ld(2, ld(2, span_bytes()))) + ld(1, ld(2, ld(1, scope))), SMALL) == "ok"


def test_negative_value_length_falls_back_to_python() -> None:
    assert check_message(rich_request(), Limits(attribute_value_length=-2)) == "ok"


# ------------------------------------------------------------------------------------------
# Wire-format details


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    unknown = (
        vi(99, 2**64 - 1)
        + f64(98, 1)
        + f32(97, 2)
        + ld(96, b"\xff\xfe not utf-8")
        + tag(95, 3)
        + vi(1, 5)
        + tag(94, 3)
        + ld(2, b"x")
        + tag(94, 4)
        + tag(95, 4)
        + tag(2**29 - 1, 0)
        + b"\x00"
    )
    anyv = ld(1, b"v") + unknown
    body = (
        ld(
            1,
            unknown
            + ld(1, unknown + ld(1, kv("k", anyv) + unknown) + ld(3, ld(1, b"u") + unknown))
            + ld(
                2,
                unknown
                + ld(1, ld(1, b"n") + unknown)
                + ld(
                    2,
                    span_bytes(
                        unknown,
                        ld(9, kv("k", anyv) + unknown),
                        ld(
                            9,
                            kv(
                                "a",
                                ld(5, ld(1, anyv) + unknown),
                                ld(6, ld(1, kv("x", anyv)) + unknown),
                            ),
                        ),
                        ld(11, f64(1, 5) + unknown + ld(3, kv("ek", anyv))),
                        ld(13, ld(1, TID) + unknown + ld(4, kv("lk", anyv))),
                        ld(15, unknown + vi(3, 2) + ld(2, b"msg")),
                    ),
                ),
            )
            + unknown,
        )
        + unknown
    )
    assert check(body) == "ok"


def test_wrong_wire_types_are_unknown_fields() -> None:
    # every known field of Span, with the wrong wire type: skipped, as upb does
    wrong = [
        vi(1, 1),
        f32(2, 1),
        vi(3, 1),
        f64(4, 1),
        vi(5, 1),
        ld(6, b"\x01"),
        vi(7, 1),
        f32(8, 1),
        vi(9, 1),
        ld(10, b"\x01"),
        f64(11, 1),
        dbl(12, 1.0),
        vi(13, 1),
        f32(14, 1),
        vi(15, 1),
        vi(16, 1),
        tag(9, 3) + tag(9, 4),
    ]
    body = request(span_bytes(*wrong))
    assert check(body) == "ok"
    # and in AnyValue / KeyValue / Status / Event / Link / ResourceSpans / ScopeSpans
    anyv = vi(1, 3) + ld(2, b"x") + ld(3, b"x") + vi(4, 1) + vi(5, 1) + f32(6, 1) + vi(7, 1)
    body = ld(
        1,
        vi(1, 1)
        + f32(3, 1)
        + ld(
            2,
            vi(1, 2)
            + vi(3, 1)
            + ld(
                2,
                span_bytes(
                    ld(9, vi(1, 1) + kv("k", anyv) + vi(2, 5)),
                    ld(15, ld(3, b"\x01") + vi(2, 1)),
                    ld(11, vi(1, 1) + vi(2, 1) + vi(3, 1) + f32(4, 1)),
                    ld(13, vi(1, 1) + vi(3, 1) + vi(6, 1) + ld(5, b"\x01")),
                ),
            ),
        ),
    )
    assert check(body) == "ok"


def test_merging_of_repeated_singular_fields() -> None:
    span = span_bytes(
        # scalars: last one wins
        ld(5, b"first"),
        ld(5, b"second"),
        vi(6, 1),
        vi(6, 3),
        f64(7, 1),
        f32(16, 9),
        f32(16, 10),
        # status merged
        ld(15, vi(3, 2) + ld(2, b"m1")),
        ld(15, ld(2, b"m2")),
        ld(15, b""),
        # value merges: same oneof case merges arrays/kvlists, another case replaces
        ld(9, kv("arr", ld(5, ld(1, ld(1, b"a"))), ld(5, ld(1, ld(1, b"b"))))),
        ld(9, kv("kvl", ld(6, ld(1, kv("x", ld(3, b"\x01")))), ld(6, ld(1, kv("x", ld(1, b"y")))))),
        ld(9, kv("switch", ld(5, ld(1, ld(1, b"a"))), ld(1, b"s"), ld(5, ld(1, ld(1, b"b"))))),
        ld(9, kv("scalar", ld(1, b"s"), vi(3, 7))),
        ld(9, kv("scalar2", vi(3, 7) + ld(1, b"s"))),
        ld(9, kv("kv-to-arr", ld(6, ld(1, kv("x", b""))), ld(5, b""))),
        ld(9, ld(1, b"k1") + ld(1, b"key") + ld(2, ld(1, b"a")) + ld(2, vi(2, 1))),
        # non-contiguous repeated fields keep their order
        ld(11, ld(2, b"e1")),
        ld(9, kv("after", ld(1, b"z"))),
        ld(11, ld(2, b"e2")),
        ld(13, ld(3, b"l1")),
        ld(11, ld(2, b"e3") + ld(2, b"e3b")),
        ld(13, ld(3, b"l2")),
    )
    res = ld(1, kv("service.name", ld(1, b"a"))) + vi(2, 3)
    res2 = ld(1, kv("service.name", ld(1, b"b"))) + vi(2, 4)
    scope = ld(1, b"n1") + ld(2, b"v1")
    scope2 = ld(1, b"n2")
    body = ld(
        1,
        ld(1, res)
        + ld(3, b"url1")
        + ld(2, ld(1, scope) + ld(2, span) + ld(3, b"s1") + ld(1, scope2) + ld(3, b"s2"))
        + ld(1, res2)
        + ld(3, b"url2"),
    )
    assert check(body, SMALL) == "ok"
    assert check(body) == "ok"
    batch = spans_batch_from_bytes(body, "t", Limits())
    row = batch.table.slice(0, 1).to_pylist()[0]
    assert row["name"] == "second" and row["kind"] == 3 and row["flags"] == 10
    assert (row["status_code"], row["status_message"]) == (2, "m2")
    assert (row["scope_name"], row["scope_version"], row["scope_schema_url"]) == ("n2", "v1", "s2")
    assert row["resource_schema_url"] == "url2"
    assert row["resource_dropped_attributes_count"] == 4
    attrs = orjson.loads(row["attributes"])
    assert attrs["arr"] == ["a", "b"] and attrs["switch"] == ["b"] and attrs["scalar"] == 7
    assert attrs["kvl"] == {"x": "y"} and attrs["key"] is True


def test_status_and_ids_edge_cases() -> None:
    body = request(
        span_bytes(ld(15, b"")),  # present but empty status
        span_bytes(ld(4, b""), ld(4, SID)),  # parent set twice
        span_bytes(ld(4, SID), ld(4, b"")),  # parent cleared by a later empty value
        span_bytes(ld(1, bytes(16))),  # last trace_id is zero: rejected
    )
    assert check(body) == "ok"


def test_malformed_bodies_are_bad_requests() -> None:
    good = request(span_bytes(ld(9, kv("k", ld(1, b"v")))))
    bad = [
        b"\x0a",  # length missing
        b"\x0a\x05abc",  # length past the end
        b"\x0a\x80",  # truncated length varint
        b"\x08" + b"\xff" * 10 + b"\x01",  # varint of 11 bytes
        b"\x08\x80",  # truncated varint
        b"\x09\x00\x00",  # truncated fixed64
        b"\x0d\x00",  # truncated fixed32
        b"\x00\x01",  # field number 0
        b"\x02\x00",  # field number 0, length-delimited
        b"\x0c",  # end-group without start
        b"\x0b\x01",  # group without end (the 0x01 is field 0)
        b"\x0b\x14",  # group closed by another number
        b"\x0b",  # group without end
        b"\x0e",  # wire type 6
        b"\x0f",  # wire type 7
        b"\xf8\xff\xff\xff\x1f\x01",  # tag above uint32
        b"\xf8\xff\xff\xff\x8f\x00\x01",  # tag longer than 5 bytes
        b"\x0a\xff\xff\xff\xff\x07",  # length above int32
        b"\x0a\x80\x80\x80\x80\x80\x00",  # length longer than 5 bytes
        good[:-1],
        good + b"\x0a",
        ld(1, ld(2, ld(2, span_bytes(ld(9, kv("k", ld(1, b"v"))))[:-1]))),
        ld(1, ld(2, ld(2, span_bytes(tag(9, 4))))),  # end-group inside a span
    ]
    for body in bad:
        assert check(body) == "decode", body


def test_invalid_utf8_in_every_string_field() -> None:
    bad = b"ok \xc3\x28"
    for bad_utf8 in (b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xe2\x82"):
        places = [
            ld(1, ld(3, bad_utf8)),  # ResourceSpans.schema_url
            ld(1, ld(1, ld(1, kv(bad_utf8, ld(1, b"v"))))),  # Resource attribute key
            ld(1, ld(1, ld(1, kv("k", ld(1, bad_utf8))))),  # Resource attribute value
            ld(1, ld(1, ld(3, ld(2, bad_utf8)))),  # EntityRef.type
            ld(1, ld(1, ld(3, ld(3, bad_utf8)))),  # EntityRef.id_keys
            ld(1, ld(2, ld(3, bad_utf8))),  # ScopeSpans.schema_url
            ld(1, ld(2, ld(1, ld(1, bad_utf8)))),  # scope name
            ld(1, ld(2, ld(1, ld(2, bad_utf8)))),  # scope version
            ld(1, ld(2, ld(1, ld(3, kv("k", ld(1, bad_utf8)))))),  # scope attribute
            request(span_bytes(ld(3, bad_utf8))),  # trace_state
            request(span_bytes(ld(5, bad_utf8))),  # name
            request(span_bytes(ld(9, kv(bad_utf8, ld(1, b"v"))))),
            request(span_bytes(ld(9, kv("k", ld(1, bad_utf8))))),
            request(span_bytes(ld(9, kv("k", ld(5, ld(1, ld(1, bad_utf8))))))),
            request(span_bytes(ld(9, kv("k", ld(6, ld(1, kv(bad_utf8, b""))))))),
            request(span_bytes(ld(9, kv("k", ld(1, bad_utf8), vi(3, 1))))),  # replaced later
            request(span_bytes(ld(11, ld(2, bad_utf8)))),  # event name
            request(span_bytes(ld(11, ld(3, kv("k", ld(1, bad_utf8)))))),
            request(span_bytes(ld(13, ld(3, bad_utf8)))),  # link trace_state
            request(span_bytes(ld(13, ld(4, kv("k", ld(1, bad_utf8)))))),
            request(span_bytes(ld(15, ld(2, bad_utf8)))),  # status message
            # a rejected span is still parsed whole
            request(span_bytes(ld(9, kv("k", ld(1, bad_utf8))), ids=False)),
            # a dropped attribute too
            request(
                span_bytes(
                    *[ld(9, kv(f"k{i}", ld(1, b"v"))) for i in range(5)],
                    ld(9, kv("k", ld(1, bad_utf8))),
                )
            ),
        ]
        for body in places:
            assert check(body, SMALL) == "decode", body
    # bytes fields and unknown fields may hold anything
    for body in (
        request(span_bytes(ld(9, kv("k", ld(7, bad))))),
        request(span_bytes(ld(1, b"\xff" * 16), ld(2, b"\xfe" * 8), ld(77, bad))),
        request(span_bytes(ld(13, ld(1, bad) + ld(2, bad)))),
        request(span_bytes(ld(9, kv("k", vi(1, 1))))),  # string field with varint wire type
    ):
        assert check(body) == "ok"


def nested_arrays(depth: int, leaf: bytes = ld(1, b"leaf")) -> bytes:
    av = leaf
    for _ in range(depth):
        av = ld(5, ld(1, av))
    return av


def nested_kvlists(depth: int) -> bytes:
    av = ld(1, b"leaf")
    for _ in range(depth):
        av = ld(6, ld(1, kv("k", av)))
    return av


def nested_groups(depth: int) -> bytes:
    return tag(50, 3) * depth + tag(50, 4) * depth


@pytest.mark.parametrize(
    ("where", "base"),
    # nesting level of the first AnyValue in each place (the request is level 0)
    [("span", 5), ("event", 6), ("link", 6), ("resource", 4), ("scope", 5)],
)
def test_nesting_limit_matches_upb(where: str, base: int) -> None:
    def body_for(av: bytes) -> bytes:
        attr = kv("k", av)
        if where == "span":
            return request(span_bytes(ld(9, attr)))
        if where == "event":
            return request(span_bytes(ld(11, ld(3, attr))))
        if where == "link":
            return request(span_bytes(ld(13, ld(4, attr))))
        if where == "resource":
            return request(span_bytes(), resource=ld(1, attr))
        return request(span_bytes(), scope=ld(3, attr))

    # the innermost AnyValue sits at level base + 2 * arrays (or + 3 * kvlists); upb allows
    # 100 levels below the request
    assert_nesting_limit(base, body_for, check)


def assert_nesting_limit(
    base: int, body_for: Callable[[bytes], bytes], check: Callable[[bytes], str]
) -> None:
    """Nested AnyValues around the 100-level limit: accepted up to it, refused beyond."""
    results = {}
    for arrays in range((100 - base) // 2 - 2, (100 - base) // 2 + 3):
        results[base + 2 * arrays] = check(body_for(nested_arrays(arrays)))
    for kvlists in range((100 - base) // 3 - 2, (100 - base) // 3 + 3):
        results[base + 3 * kvlists] = check(body_for(nested_kvlists(kvlists)))
    # unknown groups nest too: g groups inside the innermost AnyValue reach its level + g
    arrays = (100 - base) // 2 - 2
    for groups in range(1, 8):
        leaf = ld(1, b"leaf") + nested_groups(groups)
        results[base + 2 * arrays + groups] = check(body_for(nested_arrays(arrays, leaf)))
    for level, result in results.items():
        assert result == ("ok" if level <= 100 else "decode"), level


def test_groups_follow_upb() -> None:
    # inside an unknown group, field number 0 passes (upb skips it); an end tag must match
    for group_body, result in [
        (b"\x02\x00", "ok"),
        (b"\x00\x05", "ok"),
        (b"\x03\x04", "ok"),
        (b"\x23\x00\x01\x24", "ok"),
        (tag(2**29 - 1, 3) + tag(2**29 - 1, 4), "ok"),
        (b"\x04", "decode"),
        (b"\x24", "decode"),
        (b"\x06", "decode"),
        (b"\x23", "decode"),
        (b"\x0a\x05ab", "decode"),
    ]:
        group = tag(3, 3) + group_body + tag(3, 4)
        assert check(group) == result, group_body
        assert check(request(span_bytes(group))) == result, group_body
        assert check(request(span_bytes(ld(9, kv("k", group + ld(1, b"v")))))) == result


def test_group_nesting_limit_at_top_level() -> None:
    assert check(nested_groups(100)) == "ok"
    assert check(nested_groups(101)) == "decode"
    span = request(span_bytes(nested_groups(97)))
    assert check(span) == "ok"
    assert check(request(span_bytes(nested_groups(98)))) == "decode"


def test_format_double_matches_orjson() -> None:
    """Doubles are written as orjson writes them: JSON columns equal the Python path's text."""
    rnd = random.Random(7)
    values = [0.0, -0.0, 5e-324, 1.7976931348623157e308, 0.1, 1 / 3, 1e16, 1e15, 123.0]
    values += [
        struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(20000)
    ]
    values += [rnd.random() * 10.0 ** rnd.randint(-30, 40) for _ in range(20000)]
    values += [2.0**i for i in range(-1074, 1024)]
    values += [math.nextafter(2.0**i, 0) for i in range(-1073, 1024)]
    for x in values:
        text = _fastotlp._format_double(x)
        if math.isfinite(x):
            assert text == orjson.dumps(x).decode()
            assert orjson.loads(text) == x
    assert _fastotlp._format_double(math.nan) == '{"\\u0000d":"NaN"}'


def test_ingest_routes_protobuf_to_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every protobuf body (on the loop or in a decode worker) goes through the C decoder;
    OTLP/JSON through rows.py."""
    from otterscope.ingest import decode

    calls: list[str] = []
    for signal, fn in list(decode._PROTOBUF.items()):

        def spy(body: bytes, tenant: str, limits: Limits, _fn: Any = fn, _s: str = signal) -> Any:
            calls.append(_s)
            return _fn(body, tenant, limits)

        monkeypatch.setitem(decode._PROTOBUF, signal, spy)
    for signal, message in (
        ("traces", ExportTraceServiceRequest()),
        ("logs", ExportLogsServiceRequest()),
        ("metrics", ExportMetricsServiceRequest()),
    ):
        decode.decode(signal, message.SerializeToString(), "protobuf", "t", Limits())
        decode.decode(signal, b"{}", "json", "t", Limits())
    assert calls == ["traces", "logs", "metrics"]


# ------------------------------------------------------------------------------------------
# Property tests


keys = st.sampled_from(["a", "b", "c", "service.name", "é", "", "\x00"]) | st.text(max_size=4)
texts = st.text(st.characters(codec="utf-8"), max_size=12)
scalars = st.one_of(
    st.tuples(st.just("s"), texts),
    st.tuples(st.just("b"), st.booleans()),
    st.tuples(st.just("i"), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just("d"), st.floats(allow_nan=True, allow_infinity=True)),
    st.tuples(st.just("y"), st.binary(max_size=10)),
    st.tuples(st.just("x"), st.integers(-5, 5)),
    st.just(("n",)),
)
any_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.tuples(st.just("a"), st.lists(inner, max_size=4)),
        st.tuples(st.just("k"), st.lists(st.tuples(keys, inner), max_size=4)),
    ),
    max_leaves=12,
)
attr_lists = st.lists(st.tuples(keys, st.none() | any_values), max_size=8)
ids16 = st.sampled_from([TID, bytes(16), b"", TID[:5]]) | st.binary(min_size=16, max_size=16)
ids8 = st.sampled_from([SID, bytes(8), b"", SID[:3]]) | st.binary(min_size=8, max_size=8)
times = st.sampled_from([0, 1, 2**63 - 1, 2**63, 2**64 - 1]) | st.integers(0, 2**64 - 1)
u32 = st.integers(0, 2**32 - 1)


@st.composite
def spans(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "trace_id": draw(ids16),
        "span_id": draw(ids8),
        "parent_span_id": draw(st.sampled_from([b"", SID]) | ids8),
        "trace_state": draw(texts),
        "name": draw(texts),
        "kind": draw(st.integers(-3, 6)),
        "flags": draw(u32),
        "start_time_unix_nano": draw(times),
        "end_time_unix_nano": draw(times),
        "dropped_attributes_count": draw(st.integers(0, 3) | u32),
        "dropped_events_count": draw(u32),
        "dropped_links_count": draw(u32),
        "attributes": draw(attr_lists),
        "status": draw(st.none() | st.tuples(st.integers(0, 2), texts)),
        "events": draw(
            st.lists(st.tuples(times, texts, attr_lists, st.integers(0, 3)), max_size=3)
        ),
        "links": draw(
            st.lists(
                st.tuples(st.binary(max_size=17), st.binary(max_size=9), texts, attr_lists, u32),
                max_size=3,
            )
        ),
    }


@st.composite
def requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 3))):
        rs = req.resource_spans.add(schema_url=draw(texts))
        add_attrs(rs.resource.attributes, draw(attr_lists))
        rs.resource.dropped_attributes_count = draw(st.integers(0, 5))
        for _ in range(draw(st.integers(0, 3))):
            ss = rs.scope_spans.add(schema_url=draw(texts))
            if draw(st.booleans()):
                ss.scope.name = draw(texts)
                ss.scope.version = draw(texts)
                add_attrs(ss.scope.attributes, draw(attr_lists))
            for sp in draw(st.lists(spans(), max_size=4)):
                span = ss.spans.add(
                    **{
                        k: v
                        for k, v in sp.items()
                        if k not in ("attributes", "status", "events", "links")
                    }
                )
                add_attrs(span.attributes, sp["attributes"])
                if sp["status"] is not None:
                    span.status.code, span.status.message = sp["status"]
                for t, name, attrs, dropped in sp["events"]:
                    ev = span.events.add(time_unix_nano=t, name=name)
                    add_attrs(ev.attributes, attrs)
                    ev.dropped_attributes_count = dropped
                for tid, sid, ts, attrs, flags in sp["links"]:
                    lk = span.links.add(trace_id=tid, span_id=sid, trace_state=ts, flags=flags)
                    add_attrs(lk.attributes, attrs)
    return req


limits_st = st.builds(
    Limits,
    attribute_count=st.sampled_from([0, 1, 2, 3, 128]),
    attribute_value_length=st.sampled_from([0, 1, 2, 5, 4096]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=requests(), limits=limits_st)
def test_random_requests(req: ExportTraceServiceRequest, limits: Limits) -> None:
    assert check_message(req, limits) in ("ok", "schema")


@settings(max_examples=100, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from(
            [
                ld(1, ld(1, ld(1, kv("service.name", ld(1, b"x"))))),
                ld(1, ld(2, ld(2, span_bytes()))),
                ld(1, ld(2, ld(2, span_bytes(ld(9, kv("a", ld(1, b"1"))))))),
                ld(1, ld(2, ld(1, ld(1, b"scope")))),
                ld(1, ld(3, b"url")),
                vi(7, 1),
                ld(1, b""),
            ]
        ),
        max_size=6,
    )
)
def test_concatenated_requests_merge_like_upb(pieces: list[bytes]) -> None:
    assert check(b"".join(pieces)) == "ok"


# ------------------------------------------------------------------------------------------
# Mutation fuzz: never crash, never accept what upb refuses, never differ on what it takes


def _seeds() -> list[bytes]:
    seeds = [rich_request().SerializeToString()]
    rnd = random.Random(11)
    for i in range(6):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        add_attrs(rs.resource.attributes, [("service.name", ("s", f"svc{i}"))])
        ss = rs.scope_spans.add()
        ss.scope.name = "s"
        for j in range(3):
            span = ss.spans.add(
                trace_id=rnd.randbytes(16),
                span_id=rnd.randbytes(8),
                name=f"n{j}é",
                start_time_unix_nano=j,
                end_time_unix_nano=2 * j,
            )
            span.status.message = "st"
            add_attrs(span.attributes, EVERY_TYPE[(i * 5 + j) % 20 : (i * 5 + j) % 20 + 6])
            if j == 1:
                span.events.add(name="e").attributes.add(key="k").value.int_value = 1
                span.links.add(trace_id=TID, span_id=SID).attributes.add(key="k")
        seeds.append(req.SerializeToString())
    return seeds


def _mutate(rnd: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rnd.choice([1, 1, 1, 2, 3])):
        op = rnd.randrange(7)
        pos = rnd.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] ^= 1 << rnd.randrange(8)
        elif op == 1 and data:
            data[min(pos, len(data) - 1)] = rnd.choice([0, 1, 0x7F, 0x80, 0xFF, rnd.randrange(256)])
        elif op == 2:
            data[pos:pos] = rnd.randbytes(rnd.randint(1, 4))
        elif op == 3:
            del data[pos : pos + rnd.randint(1, 8)]
        elif op == 4:
            del data[pos:]
        elif op == 5:
            end = min(len(data), pos + rnd.randint(1, 40))
            data[pos:pos] = data[pos:end]
        else:
            data[pos:pos] = rnd.choice(
                [b"\x0b", b"\x0c", b"\x1b", b"\x1c", b"\x02\x00", b"\x80", b"\xc3", b"\xed\xa0\x80"]
            )
    return bytes(data)


def test_mutation_fuzz() -> None:
    rnd = random.Random(20240607)
    seeds = _seeds()
    outcomes: dict[str, int] = {}
    for i in range(8000):
        body = _mutate(rnd, rnd.choice(seeds))
        limits = SMALL if i % 3 == 0 else Limits()
        result = check(body, limits)
        outcomes[result] = outcomes.get(result, 0) + 1
    # the fuzz must exercise both sides
    assert outcomes.get("ok", 0) > 250 and outcomes.get("decode", 0) > 1000, outcomes
