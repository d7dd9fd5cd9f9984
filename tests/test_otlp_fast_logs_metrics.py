"""The C log and metric decoders (otlp.fast) against the Python path (upb + rows.*_batch).

Every test is differential, as in test_otlp_fast.py for spans: the same body goes through
both paths, and the batches must agree in every count, in the reject message and in every
column. Text columns (JSON ones and ``body_text`` included) must be equal byte for byte,
floats bit for bit (NaN payloads too), nulls where the Python path has nulls. Where upb
refuses a body the fast path must refuse it too (BadRequest); where the Python path fails
building its table (a value outside the schema's integer types), the fast path must answer
BadRequest.
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
from google.protobuf.message import DecodeError, Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from otterscope.errors import BadRequest
from otterscope.otlp import rows
from otterscope.otlp.anyvalue import Limits
from otterscope.otlp.fast import logs_batch_from_bytes, metrics_batch_from_bytes
from otterscope.otlp.schema import LOGS, METRIC_POINTS
from tests.test_otlp_fast import (
    EVERY_TYPE,
    LIMITS,
    SMALL,
    _mutate,
    add_attrs,
    any_values,
    assert_nesting_limit,
    attr_lists,
    dbl,
    f32,
    f64,
    kv,
    ld,
    nested_arrays,
    nested_groups,
    nested_kvlists,
    set_value,
    tag,
    texts,
    varint,
    vi,
)

TID = bytes(range(1, 17))
SID = bytes(range(1, 9))
NAN_PAYLOAD = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_DEAD_BEEF))[0]

SIGNALS: dict[str, tuple[type[Message], Callable[..., rows.Batch], Callable[..., rows.Batch]]] = {
    "logs": (ExportLogsServiceRequest, rows.logs_batch, logs_batch_from_bytes),
    "metrics": (ExportMetricsServiceRequest, rows.metrics_batch, metrics_batch_from_bytes),
}


# ------------------------------------------------------------------------------------------
# Comparison


def _bits(value: Any) -> Any:
    """Floats by their bits (NaN payloads included), recursively through lists."""
    if isinstance(value, float):
        return ("f64", struct.pack("<d", value))
    if isinstance(value, list):
        return [_bits(v) for v in value]
    return value


def assert_tables_equal(expected: pa.Table, actual: pa.Table) -> None:
    assert actual.schema == expected.schema
    assert actual.num_rows == expected.num_rows
    for name in expected.column_names:
        want = expected.column(name).to_pylist()
        got = actual.column(name).to_pylist()
        assert _bits(got) == _bits(want), name
        assert actual.column(name).null_count == expected.column(name).null_count, name
    actual.validate(full=True)


def check(signal: str, body: bytes, limits: Limits | None = None, tenant: str = "acme") -> str:
    """Runs both paths on ``body``; returns what happened ("ok", "decode", "schema")."""
    request_type, slow, fast = SIGNALS[signal]
    limits = limits or Limits()
    try:
        message = request_type.FromString(body)
    except DecodeError:
        with pytest.raises(BadRequest):
            fast(body, tenant, limits)
        return "decode"
    try:
        expected = slow(message, tenant, limits)
    except BadRequest as exc:
        # A value the table cannot hold: both paths refuse it in the same words.
        with pytest.raises(BadRequest) as refused:
            fast(body, tenant, limits)
        assert refused.value.message == exc.message
        return "schema"
    actual = fast(body, tenant, limits)
    assert actual.signal == signal
    assert actual.accepted == expected.accepted
    assert actual.rejected == expected.rejected
    assert actual.reject_message == expected.reject_message
    assert actual.dropped_attributes == expected.dropped_attributes
    assert actual.truncated_attributes == expected.truncated_attributes
    assert_tables_equal(expected.table, actual.table)
    return "ok"


def check_logs(body: bytes | Message, limits: Limits | None = None) -> str:
    return check("logs", body if isinstance(body, bytes) else body.SerializeToString(), limits)


def check_metrics(body: bytes | Message, limits: Limits | None = None) -> str:
    raw = body if isinstance(body, bytes) else body.SerializeToString()
    return check("metrics", raw, limits)


# ------------------------------------------------------------------------------------------
# Raw wire format


def logs_request(*records: bytes, resource: bytes = b"", scope: bytes = b"") -> bytes:
    sl = ld(1, scope) + b"".join(ld(2, r) for r in records)
    return ld(1, ld(1, resource) + ld(2, sl))


def metrics_request(*metrics: bytes, resource: bytes = b"", scope: bytes = b"") -> bytes:
    sm = ld(1, scope) + b"".join(ld(2, m) for m in metrics)
    return ld(1, ld(1, resource) + ld(2, sm))


def metric(kind: int, *points: bytes, name: bytes = b"m", extra: bytes = b"") -> bytes:
    """A Metric of data field ``kind`` (5 gauge, 7 sum, 9 histogram, 10 exp, 11 summary)."""
    return ld(1, name) + ld(kind, b"".join(ld(1, p) for p in points) + extra)


def packed_doubles(num: int, values: list[float]) -> bytes:
    return ld(num, b"".join(struct.pack("<d", v) for v in values))


def packed_fixed64(num: int, values: list[int]) -> bytes:
    return ld(num, b"".join(struct.pack("<Q", v) for v in values))


def packed_varints(num: int, values: list[int]) -> bytes:
    return ld(num, b"".join(varint(v) for v in values))


# ------------------------------------------------------------------------------------------
# Logs: hand-built requests


BODIES: list[Any] = [value for _, value in EVERY_TYPE] + [
    ("i", 2**53),
    ("i", 2**53 + 1),
    ("i", -(2**53)),
    ("i", -(2**53) - 1),
    ("d", NAN_PAYLOAD),
    ("d", 1e-5),
    ("d", 1e-7),
    ("d", 1e22),
    ("k", [("\x00b", ("s", "tag-like key"))]),
    ("k", [("\x00d", ("i", 2**60))]),
    ("k", [("\x00d", ("d", math.nan))]),
    ("k", [("\x00b", ("k", [("\x00d", ("y", b"zz")), ("x", ("i", 2**62))]))]),
    ("k", [("\x00b", ("s", "a")), ("\x00b", ("y", b"b"))]),  # one key after merging
    ("k", [("\x00b", ("s", "a")), ("other", ("s", "b"))]),
    ("k", [("\x00x", ("s", "not a tag"))]),
    ("a", [("k", [("\x00d", ("s", "Infinity"))]), ("i", 2**63 - 1), ("d", -math.inf)]),
    ("s", "x" * 5000),
    ("y", bytes(range(256)) * 20),
    ("s", "multi\nline\tbody \x00 with \x1f controls and ünïcode ✓ 😀"),
]


def rich_logs() -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
    add_attrs(
        rl.resource.attributes,
        [("service.name", ("s", "checkout")), ("host", ("s", "h" * 10)), ("n", ("i", 3))],
    )
    rl.resource.dropped_attributes_count = 2
    ref = rl.resource.entity_refs.add(schema_url="u", type="service")
    ref.id_keys.extend(["service.name"])
    sl = rl.scope_logs.add(schema_url="scope-url")
    sl.scope.name = "lib"
    sl.scope.version = "1.2.3"
    add_attrs(sl.scope.attributes, [("scope.attr", ("s", "long scope value"))])
    for i, body in enumerate(BODIES):
        rec = sl.log_records.add(
            time_unix_nano=0 if i % 5 == 0 else 1_700_000_000_000_000_000 + i,
            observed_time_unix_nano=0 if i % 7 == 0 else 1_700_000_000_000_000_500 + i,
            severity_number=i % 25,
            severity_text=["", "INFO", "WARN", "ERROR ✓"][i % 4],
            flags=[0, 1, 0x301, 2**32 - 1][i % 4],
            trace_id=[TID, b"", TID][i % 3],
            span_id=[SID, b"", b""][i % 3],
            event_name="" if i % 2 else f"event.{i}",
            dropped_attributes_count=i % 3,
        )
        set_value(rec.body, body)
        if body == ("n",):
            rec.body.SetInParent()
        add_attrs(rec.attributes, EVERY_TYPE[i % 9 :] + EVERY_TYPE[: i % 9])
    sl.log_records.add(severity_text="no body at all", time_unix_nano=3)
    sl.log_records.add(trace_id=TID[:5], severity_text="bad trace id")
    sl.log_records.add(span_id=SID + b"\x01", severity_text="bad span id")
    sl.log_records.add(time_unix_nano=2**63, severity_text="too late")
    sl.log_records.add(observed_time_unix_nano=2**64 - 1)
    sl.log_records.add(trace_id=bytes(16), span_id=bytes(8))  # all-zero ids are fine
    # a scope with no records, and an empty scope
    rl.scope_logs.add(schema_url="empty").scope.name = "nothing here"
    rl.scope_logs.add()
    # a second resource without service.name, two scopes
    rl2 = req.resource_logs.add()
    add_attrs(rl2.resource.attributes, [("service.name", ("i", 5)), ("z", ("a", [("s", "q")]))])
    for k in range(2):
        sl2 = rl2.scope_logs.add()
        sl2.scope.name = f"scope{k}"
        for i in range(3):
            rec = sl2.log_records.add(time_unix_nano=i, severity_number=9)
            rec.body.string_value = f"line {k} {i}"
    add_attrs(req.resource_logs.add().resource.attributes, [("lonely", ("s", "yes"))])
    req.resource_logs.add()
    return req


@pytest.mark.parametrize(
    "limits", LIMITS, ids=lambda lim: f"{lim.attribute_count}-{lim.attribute_value_length}"
)
def test_rich_logs_under_limits(limits: Limits) -> None:
    assert check_logs(rich_logs(), limits) == "ok"


def test_rich_logs_values() -> None:
    req = rich_logs()
    batch = logs_batch_from_bytes(req.SerializeToString(), "acme", Limits())
    assert batch.accepted == len(BODIES) + 2 + 6
    assert batch.rejected == 4
    assert batch.reject_message == (
        "4 item(s) rejected: log record: trace_id must be empty or 16 bytes (and 3 more)"
    )
    table = batch.table
    body = table.column("body").to_pylist()
    text = table.column("body_text").to_pylist()
    assert body[0] == '"héllo wörld ✓ 😀"' and text[0] == "héllo wörld ✓ 😀"
    i = BODIES.index(("i", 2**53 + 1))
    assert body[i] == str(2**53 + 1) and text[i] == f'"{2**53 + 1}"'
    i = BODIES.index(("d", math.nan))
    assert body[i] == '{"\\u0000d":"NaN"}' and text[i] == '"NaN"'
    i = BODIES.index(("y", b"\x00\x01\xfe\xff binary"))
    assert body[i] == '{"\\u0000b":"AAH+/yBiaW5hcnk="}' and text[i] == '"AAH+/yBiaW5hcnk="'
    i = BODIES.index(("n",))
    assert body[i] == "null" and text[i] == ""
    i = BODIES.index(("x", 7))
    assert body[i] == "null" and text[i] == ""
    i = BODIES.index(("d", 1e-7))
    assert body[i] == "1e-7" == text[i]
    assert body[len(BODIES)] is None and text[len(BODIES)] == ""
    assert table.column("body").null_count == 2
    stamps = table.column("timestamp_unix_nano").to_pylist()
    assert stamps[5] == 1_700_000_000_000_000_505 and stamps[1] == 1_700_000_000_000_000_001


def test_body_text_follows_to_api_for_tag_like_keys() -> None:
    batch = logs_batch_from_bytes(rich_logs().SerializeToString(), "t", Limits())
    text = batch.table.column("body_text").to_pylist()
    for body, want in [
        (("k", [("\x00b", ("s", "tag-like key"))]), '"tag-like key"'),
        (("k", [("\x00d", ("i", 2**60))]), str(2**60)),  # as stored: not made a string
        (("k", [("\x00d", ("d", math.nan))]), '{"\\u0000d":"NaN"}'),
        (("k", [("\x00x", ("s", "not a tag"))]), '{"\\u0000x":"not a tag"}'),
    ]:
        assert text[BODIES.index(body)] == want, body


def test_empty_logs_request() -> None:
    assert check_logs(b"") == "ok"
    batch = logs_batch_from_bytes(b"", "acme", Limits())
    assert batch.table.num_rows == 0 and batch.table.schema == LOGS
    assert (batch.accepted, batch.rejected, batch.reject_message) == (0, 0, "")


def test_log_rejects_count_no_attributes() -> None:
    req = ExportLogsServiceRequest()
    records = req.resource_logs.add().scope_logs.add().log_records
    for case in [
        {"trace_id": b"\x01"},
        {"span_id": b"\x01" * 9},
        {"time_unix_nano": 2**63},
        {"observed_time_unix_nano": 2**63},
        {},
    ]:
        rec = records.add(**case)
        add_attrs(rec.attributes, [("a", ("s", "xxxxxxxx")), ("b", ("i", 1))])
        rec.body.string_value = "yyyyyyyyy"
    for limits in (Limits(), SMALL):
        assert check_logs(req, limits) == "ok"
    batch = logs_batch_from_bytes(req.SerializeToString(), "t", SMALL)
    assert (batch.accepted, batch.rejected, batch.truncated_attributes) == (1, 4, 1)
    assert batch.table.column("body").to_pylist() == ['"yyyy"']


def test_log_schema_overflows_are_bad_requests() -> None:
    for fields in (
        vi(2, 128),  # severity number outside int8
        vi(2, (1 << 64) - 129),
        vi(7, 2**32 - 1) + ld(6, kv("a", ld(1, b"long value"))),  # dropped + truncated
    ):
        assert check_logs(logs_request(fields), SMALL) == "schema"
    for fields in (vi(2, 127), vi(2, (1 << 64) - 128), vi(2, (1 << 32) + 5), vi(7, 2**32 - 1)):
        assert check_logs(logs_request(fields), SMALL) == "ok"
    # a rejected record is not stored: nothing overflows
    assert check_logs(logs_request(vi(2, 1000) + ld(9, b"x"))) == "ok"


def test_log_bodies_merge_like_upb() -> None:
    records = [
        ld(5, ld(5, ld(1, ld(1, b"a")))) + ld(5, ld(5, ld(1, ld(1, b"b")))),  # arrays merge
        ld(5, ld(1, b"s")) + ld(5, vi(3, 7)),  # later member replaces
        ld(5, vi(3, 7) + ld(1, b"s")),
        ld(5, ld(6, ld(1, kv("x", ld(1, b"1"))))) + ld(5, ld(6, ld(1, kv("x", vi(2, 1))))),
        ld(5, b""),  # present, empty: "null", body_text ""
        ld(5, b"") + ld(5, ld(1, b"later")),
        ld(5, vi(8, 3)),  # string_value_strindex
        ld(5, ld(1, b"first")) + ld(5, vi(8, 3)),
        ld(5, ld(7, b"\xff\x00")) + ld(3, b"sev") + ld(3, b"sev2") + ld(12, b"e1") + ld(12, b""),
        ld(9, TID) + ld(9, b"") + ld(10, b"\x01") + ld(10, SID) + f64(1, 5) + f64(1, 6),
        f32(8, 1) + f32(8, 2) + vi(2, 3) + vi(2, 4) + vi(7, 1) + vi(7, 2) + f64(11, 9),
    ]
    body = logs_request(*records)
    assert check_logs(body) == "ok"
    assert check_logs(body, SMALL) == "ok"


def test_log_wrong_wire_types_are_unknown_fields() -> None:
    wrong = [
        vi(1, 1),
        f32(11, 1),
        f64(2, 1),
        vi(3, 1),
        vi(5, 1),
        vi(6, 1),
        f64(7, 1),
        vi(8, 1),
        vi(9, 1),
        f32(10, 1),
        vi(12, 1),
        ld(4, b"reserved"),
        tag(5, 3) + tag(5, 4),
        ld(99, b"\xff unknown"),
    ]
    assert check_logs(logs_request(b"".join(wrong))) == "ok"


def test_log_invalid_utf8_everywhere() -> None:
    for bad in (b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe2\x82"):
        places = [
            logs_request(ld(3, bad)),  # severity_text
            logs_request(ld(12, bad)),  # event_name
            logs_request(ld(5, ld(1, bad))),  # body
            logs_request(ld(5, ld(5, ld(1, ld(1, bad))))),
            logs_request(ld(5, ld(6, ld(1, kv(bad, ld(1, b"v")))))),
            logs_request(ld(5, ld(1, bad) + vi(3, 1))),  # replaced later: still invalid
            logs_request(ld(6, kv(bad, ld(1, b"v")))),
            logs_request(ld(6, kv("k", ld(1, bad)))),
            logs_request(ld(3, bad) + ld(9, b"x")),  # a rejected record is parsed whole
            logs_request(ld(6, kv("k", ld(1, bad))) + ld(9, b"x")),
            logs_request(resource=ld(1, kv("k", ld(1, bad)))),
            logs_request(scope=ld(1, bad)),
            ld(1, ld(3, bad)),
            ld(1, ld(2, ld(3, bad))),
        ]
        for body in places:
            assert check_logs(body, SMALL) == "decode", body
    assert check_logs(logs_request(ld(5, ld(7, b"\xff")), ld(9, b"\xff" * 16))) == "ok"


@pytest.mark.parametrize(("where", "base"), [("body", 4), ("attribute", 5)])
def test_log_nesting_limit_matches_upb(where: str, base: int) -> None:
    def body_for(av: bytes) -> bytes:
        if where == "body":
            return logs_request(ld(5, av))
        return logs_request(ld(6, kv("k", av)))

    assert_nesting_limit(base, body_for, check_logs)


def test_malformed_log_bodies_are_bad_requests() -> None:
    good = logs_request(ld(6, kv("k", ld(1, b"v"))) + ld(5, ld(1, b"body")))
    for cut in range(1, len(good)):
        assert check_logs(good[:cut]) in ("decode", "ok")
    assert check_logs(good + b"\x0a") == "decode"
    assert check_logs(logs_request(tag(6, 4))) == "decode"
    assert check_logs(logs_request(ld(5, b"\x0a\x05ab"))) == "decode"


def test_code_point_truncation_of_bodies() -> None:
    text = 'aé😀中\x00"z' * 3
    req = ExportLogsServiceRequest()
    sl = req.resource_logs.add().scope_logs.add()
    sl.log_records.add().body.string_value = text
    sl.log_records.add().body.bytes_value = text.encode()
    arr = sl.log_records.add().body.array_value
    set_value(arr.values.add(), ("s", text))
    set_value(arr.values.add(), ("k", [("k", ("s", text))]))
    for n in range(len(text) + 2):
        assert check_logs(req, Limits(attribute_value_length=n)) == "ok"


def test_negative_value_length_falls_back_to_python() -> None:
    assert check_logs(rich_logs(), Limits(attribute_value_length=-2)) == "ok"
    assert check_metrics(rich_metrics(), Limits(attribute_value_length=-2)) == "ok"


# ------------------------------------------------------------------------------------------
# Metrics: hand-built requests


DOUBLES = [0.0, -0.0, 1.5, -2.25e-300, 1e-5, 1e-7, 1e16, 5e-324, math.nan, math.inf, -math.inf]


def _exemplars(dp: Any, i: int) -> None:
    for j in range(i % 4):
        ex = dp.exemplars.add(
            time_unix_nano=[0, 2**64 - 1, 17][j % 3],
            span_id=[SID, b"", b"\x01\x02\x03"][j % 3],
            trace_id=[TID, b"\xff" * 3, b""][j % 3],
        )
        if j % 3 == 0:
            ex.as_int = [-(2**63), 2**63 - 1, 0][i % 3]
        elif j % 3 == 1:
            ex.as_double = DOUBLES[(i + j) % len(DOUBLES)]
        add_attrs(ex.filtered_attributes, EVERY_TYPE[i % 7 : i % 7 + 3])


def rich_metrics() -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
    add_attrs(rm.resource.attributes, [("service.name", ("s", "checkout")), ("n", ("i", 3))])
    sm = rm.scope_metrics.add(schema_url="scope-url")
    sm.scope.name = "meter"
    sm.scope.version = "1.0"
    add_attrs(sm.scope.attributes, [("scope.attr", ("s", "long scope value"))])
    t0 = 1_700_000_000_000_000_000

    g = sm.metrics.add(name="gauge ✓", description="a gauge", unit="1")
    add_attrs(g.metadata, [("meta", ("s", "long metadata value")), ("m2", ("i", 2))])
    for i, value in enumerate(DOUBLES + [None, 7, -(2**63), 2**63 - 1]):
        dp = g.gauge.data_points.add(
            start_time_unix_nano=t0 if i % 2 else 0,
            time_unix_nano=t0 + i,
            flags=[0, 1, 2**32 - 1][i % 3],
        )
        if isinstance(value, float):
            dp.as_double = value
        elif isinstance(value, int):
            dp.as_int = value
        add_attrs(dp.attributes, EVERY_TYPE[i % 11 :] + EVERY_TYPE[: i % 11])
        _exemplars(dp, i)
    for temporality, monotonic in [(0, False), (1, True), (2, False), (7, True)]:
        s = sm.metrics.add(name=f"sum.{temporality}", unit="By")
        s.sum.aggregation_temporality = temporality
        s.sum.is_monotonic = monotonic
        for i in range(3):
            dp = s.sum.data_points.add(time_unix_nano=t0 + i)
            if i:
                dp.as_int = i * 1000
            add_attrs(dp.attributes, [("route", ("s", f"/r{i}")), ("code", ("i", 200 + i))])
            _exemplars(dp, i + temporality)
    h = sm.metrics.add(name="histogram", unit="ms")
    h.histogram.aggregation_temporality = 2
    for i in range(6):
        dp = h.histogram.data_points.add(time_unix_nano=t0 + i, count=i * 10)
        if i % 2:
            dp.sum = DOUBLES[i]
        if i % 3:
            dp.min = -DOUBLES[i + 1]
        if i != 4:
            dp.max = DOUBLES[i + 2]
        if i:
            dp.explicit_bounds.extend(DOUBLES[:i])
            dp.bucket_counts.extend([2**64 - 1, 0, *range(i)])
        add_attrs(dp.attributes, EVERY_TYPE[i : i + 5])
        _exemplars(dp, i)
    e = sm.metrics.add(name="exponential")
    e.exponential_histogram.aggregation_temporality = 1
    for i in range(5):
        dp = e.exponential_histogram.data_points.add(
            time_unix_nano=t0 + i,
            count=2**64 - 1 if i == 3 else i,
            scale=[-10, 0, 20, -(2**31), 2**31 - 1][i],
            zero_count=i * 3,
            zero_threshold=DOUBLES[i + 5],
        )
        if i % 2:
            dp.sum = 0.0
            dp.min = DOUBLES[i]
            dp.max = math.nan
        if i:
            dp.positive.offset = [-5, 0, 2**31 - 1, -(2**31)][i - 1]
            dp.positive.bucket_counts.extend(range(i * 3))
        if i > 2:
            dp.negative.offset = -i
            dp.negative.bucket_counts.extend([2**64 - 1, 1])
        add_attrs(dp.attributes, [("k", ("s", f"v{i}"))])
        _exemplars(dp, i + 1)
    sm2 = rm.scope_metrics.add()
    sm2.scope.name = "second scope"
    q = sm2.metrics.add(name="summary", description="quantiles")
    for i in range(4):
        dp = q.summary.data_points.add(time_unix_nano=t0 + i, count=i, sum=DOUBLES[i + 7])
        for j in range(i):
            dp.quantile_values.add(quantile=j / 4, value=DOUBLES[(i + j + 7) % len(DOUBLES)])
        add_attrs(dp.attributes, EVERY_TYPE[i * 3 : i * 3 + 4])
    # rejects: no name, no data, a timestamp too far out (each once)
    sm2.metrics.add(unit="nameless").gauge.data_points.add(as_int=1)
    add_attrs(sm2.metrics.add(name="no data").metadata, [("k", ("s", "long metadata value"))])
    late = sm2.metrics.add(name="late")
    late.sum.data_points.add(time_unix_nano=2**63)
    late.sum.data_points.add(start_time_unix_nano=2**64 - 1)
    late.sum.data_points.add(time_unix_nano=2**63 - 1, as_double=1.0)
    # data present but without points; a scope with nothing; an empty resource
    sm2.metrics.add(name="empty gauge").gauge.SetInParent()
    rm.scope_metrics.add().scope.name = "nothing"
    rm2 = req.resource_metrics.add()
    add_attrs(rm2.resource.attributes, [("service.name", ("b", True))])
    m = rm2.scope_metrics.add().metrics.add(name="other resource")
    m.gauge.data_points.add(as_double=2.5)
    req.resource_metrics.add()
    return req


@pytest.mark.parametrize(
    "limits", LIMITS, ids=lambda lim: f"{lim.attribute_count}-{lim.attribute_value_length}"
)
def test_rich_metrics_under_limits(limits: Limits) -> None:
    assert check_metrics(rich_metrics(), limits) == "ok"


def test_rich_metrics_values() -> None:
    batch = metrics_batch_from_bytes(rich_metrics().SerializeToString(), "acme", Limits())
    assert batch.rejected == 4
    assert batch.reject_message == "4 item(s) rejected: metric without a name (and 3 more)"
    rows_ = batch.table.to_pylist()
    by_type: dict[int, list[dict[str, Any]]] = {}
    for row in rows_:
        by_type.setdefault(row["metric_type"], []).append(row)
    gauge = by_type[1]
    assert gauge[0]["value_double"] == 0.0 and gauge[0]["value_int"] is None
    assert math.isnan(gauge[8]["value_double"])
    assert gauge[11]["value_double"] is None and gauge[11]["value_int"] is None
    assert gauge[13]["value_int"] == -(2**63) and gauge[0]["count"] is None
    assert gauge[0]["metric_metadata"] == '{"meta":"long metadata value","m2":2}'
    assert all(r["is_monotonic"] is None for r in gauge)
    sums = by_type[2]
    assert [r["is_monotonic"] for r in sums[:4]] == [False, False, False, True]
    assert {r["aggregation_temporality"] for r in sums} == {0, 1, 2, 7}
    hist = by_type[3]
    assert hist[0]["bucket_counts"] == [] and hist[0]["sum"] is None
    assert hist[2]["bucket_counts"] == [2**64 - 1, 0, 0, 1]
    assert hist[4]["max"] is None and hist[4]["min"] == -DOUBLES[5]
    assert hist[0]["scale"] is None and hist[0]["quantile_values"] is None
    exp = by_type[4]
    assert exp[0]["positive_bucket_counts"] == [] and exp[0]["positive_offset"] == 0
    assert exp[3]["negative_bucket_counts"] == [2**64 - 1, 1]
    assert exp[3]["scale"] == -(2**31) and exp[3]["count"] == 2**64 - 1
    assert exp[0]["bucket_counts"] is None and exp[0]["sum"] is None
    summary = by_type[5]
    assert summary[0]["quantile_values"] == "[]" and summary[0]["min"] is None
    assert summary[2]["quantile_values"] == (
        '[{"quantile":0.0,"value":{"\\u0000d":"Infinity"}},'
        '{"quantile":0.25,"value":{"\\u0000d":"-Infinity"}}]'
    )
    ex = orjson.loads(gauge[2]["exemplars"])
    assert ex[0]["asInt"] == 0 and ex[1]["traceId"] == "ffffff" and "asInt" not in ex[1]


def test_empty_metrics_request() -> None:
    assert check_metrics(b"") == "ok"
    batch = metrics_batch_from_bytes(b"", "acme", Limits())
    assert batch.table.num_rows == 0 and batch.table.schema == METRIC_POINTS


def test_packed_and_unpacked_repeated_scalars() -> None:
    bounds = [0.5, math.nan, -math.inf, 1e300]
    counts = [1, 2**64 - 1, 0, 7, 9]
    hist_points = [
        packed_fixed64(6, counts) + packed_doubles(7, bounds),  # packed (the usual)
        b"".join(f64(6, c) for c in counts) + b"".join(dbl(7, b) for b in bounds),
        f64(6, 1) + packed_fixed64(6, [2, 3]) + f64(6, 4) + dbl(7, 1.0) + packed_doubles(7, [2.0]),
        ld(6, b"") + ld(7, b""),  # empty packed: empty lists
        vi(6, 5) + f32(7, 1),  # wrong wire types: unknown fields
    ]
    exp_points = [
        ld(8, vi(1, 3) + packed_varints(2, [1, 2**64 - 1, 300])),
        ld(8, vi(2, 1) + vi(2, 2**63) + packed_varints(2, [5])) + ld(8, vi(2, 9) + vi(1, 1)),
        ld(9, f64(2, 1) + vi(1, 2**32 + 3)) + ld(9, packed_varints(2, [])),
        ld(8, b"") + ld(9, b""),
    ]
    body = metrics_request(metric(9, *hist_points), metric(10, *exp_points))
    assert check_metrics(body) == "ok"
    table = metrics_batch_from_bytes(body, "t", Limits()).table
    assert table.column("bucket_counts").to_pylist()[:4] == [counts, counts, [1, 2, 3, 4], []]
    assert table.column("positive_bucket_counts").to_pylist()[5:7] == [
        [1, 2**64 - 1, 300],
        [1, 2**63, 5, 9],
    ]


def test_malformed_packed_fields_are_bad_requests() -> None:
    for kind, point in (
        (9, ld(6, b"\x01" * 7)),
        (9, ld(7, b"\x01" * 12)),
        (10, ld(8, ld(2, b"\x80"))),  # truncated varint
        (10, ld(9, ld(2, b"\xff" * 10 + b"\x01"))),  # 11-byte varint
    ):
        assert check_metrics(metrics_request(metric(kind, point))) == "decode", point
    # a 10-byte varint whose high bits go past 64 is cut, as upb does
    ok = ld(8, ld(2, b"\xff" * 9 + b"\x03"))
    assert check_metrics(metrics_request(metric(10, ok))) == "ok"


def test_metric_oneofs_and_merging() -> None:
    gauge_point = ld(1, dbl(4, 1.5))
    metrics = [
        # data switches case: only the last case's data survives
        ld(1, b"switch") + ld(5, gauge_point) + ld(7, ld(1, f64(6, 5))),
        ld(1, b"back") + ld(5, gauge_point) + ld(7, gauge_point) + ld(5, ld(1, f64(6, 9))),
        # the same case twice: merged (points appended, scalars last wins)
        ld(1, b"merge") + ld(7, vi(2, 1) + gauge_point + vi(3, 1)) + ld(7, vi(2, 2) + gauge_point),
        ld(1, b"merge2") + ld(7, vi(3, 1)) + ld(7, vi(3, 0) + gauge_point),
        # point value oneof: last wins; temporality on gauge / summary is an unknown field
        ld(1, b"value") + ld(5, ld(1, dbl(4, 1.0) + f64(6, 3)) + ld(1, f64(6, 3) + dbl(4, 2.0))),
        ld(1, b"gauge-temporality") + ld(5, vi(2, 200) + vi(3, 1) + gauge_point),
        ld(1, b"summary-temporality") + ld(11, vi(2, 200) + ld(1, f64(4, 1))),
        # histogram optional fields set twice, sum with the wrong wire type
        ld(1, b"hist") + ld(9, ld(1, dbl(5, 1.0) + dbl(5, 2.0) + vi(11, 1) + dbl(12, 3.0))),
        # exp. histogram buckets merged; scale as sint32 of the low 32 bits
        ld(1, b"exp") + ld(10, ld(1, ld(8, vi(1, 5)) + ld(8, vi(2, 1)) + vi(6, 2**32 + 7))),
        # name and description: last wins; metadata repeated
        ld(1, b"n1") + ld(1, b"n2") + ld(2, b"d") + ld(12, kv("a", ld(1, b"x"))) + ld(5, b""),
    ]
    body = metrics_request(*metrics)
    assert check_metrics(body) == "ok"
    assert check_metrics(body, SMALL) == "ok"


def test_replaced_oneof_cases_are_still_validated() -> None:
    # upb parses a Metric.data member before a later member of another case drops it
    later = ld(7, ld(1, dbl(4, 1.0)))
    for dropped, result in [
        (ld(9, ld(1, ld(9, kv("k", ld(1, b"v"))))), "ok"),
        (ld(9, b"\x6d\x31"), "decode"),  # truncated fixed32
        (ld(9, ld(1, ld(9, kv("k", ld(1, b"\xff"))))), "decode"),  # bad UTF-8 in an attribute
        (ld(10, ld(1, ld(8, ld(2, b"\x80")))), "decode"),  # truncated packed varint
        (ld(9, ld(1, ld(6, b"\x01" * 7))), "decode"),  # packed fixed64 cut short
        (ld(5, ld(1, ld(5, ld(7, kv("k", ld(1, b"\xff")))))), "decode"),  # in an exemplar
        (ld(11, ld(1, ld(6, f32(1, 1)[:-1]))), "decode"),  # in a quantile
        (ld(7, ld(1, ld(7, kv("k", ld(1, b"\xff"))))) + ld(5, b""), "decode"),
    ]:
        body = metrics_request(ld(1, b"m") + dropped + later)
        assert check_metrics(body) == result, dropped


def test_metric_rejects() -> None:
    attrs = ld(7, kv("a", ld(1, b"long value"))) + ld(5, ld(7, kv("e", ld(1, b"long value"))))
    metrics = [
        ld(2, b"nameless") + ld(5, ld(1, attrs)),
        ld(1, b"no data") + ld(12, kv("k", ld(1, b"long value"))),
        ld(1, b'it\'s "late"') + ld(5, ld(1, f64(3, 2**63) + attrs) + ld(1, attrs)),
        ld(1, b"") + ld(1, b"") + ld(11, b""),
    ]
    body = metrics_request(*metrics)
    for limits in (Limits(), SMALL):
        assert check_metrics(body, limits) == "ok"
    batch = metrics_batch_from_bytes(body, "t", SMALL)
    assert (batch.accepted, batch.rejected) == (1, 4)
    # only what is stored counts: one point's attribute and exemplar attribute
    assert batch.truncated_attributes == 2
    for metrics_, message in [
        ([metrics[1]], "metric 'no data' has no data"),
        ([metrics[2]], "metric 'it\\'s \"late\"': timestamp beyond the year 2262"),
    ]:
        got = metrics_batch_from_bytes(metrics_request(*metrics_), "t", Limits())
        assert got.reject_message == f"1 item(s) rejected: {message}"


def test_metric_schema_overflows_are_bad_requests() -> None:
    point = ld(1, dbl(4, 1.0))
    for temporality in (128, (1 << 64) - 129, 2**31):
        body = metrics_request(ld(1, b"m") + ld(7, vi(2, temporality) + point))
        assert check_metrics(body) == "schema"
    for temporality in (127, (1 << 64) - 128, (1 << 32) + 5):
        body = metrics_request(ld(1, b"m") + ld(7, vi(2, temporality) + point))
        assert check_metrics(body) == "ok"
    # no stored point, nothing overflows
    assert check_metrics(metrics_request(ld(1, b"m") + ld(9, vi(2, 1000)))) == "ok"
    late = ld(1, f64(3, 2**63))
    assert check_metrics(metrics_request(ld(1, b"m") + ld(9, vi(2, 1000) + late))) == "ok"


def test_metric_wrong_wire_types_are_unknown_fields() -> None:
    number = vi(2, 1) + vi(3, 1) + vi(4, 1) + vi(6, 1) + f64(7, 1) + f64(8, 1) + vi(5, 1)
    hist = vi(4, 1) + vi(5, 1) + f32(10, 1) + vi(11, 1) + vi(12, 1) + f64(9, 1) + vi(8, 1)
    exp = f64(6, 1) + vi(7, 1) + vi(8, 1) + vi(9, 1) + vi(14, 1) + f64(1, 2) + vi(13, 1)
    summary = vi(5, 1) + vi(6, 1) + f64(7, 1) + f64(8, 1) + ld(6, vi(1, 1) + f32(2, 1))
    metrics = [
        metric(5, number),
        metric(7, number, extra=f64(2, 1) + f64(3, 1)),
        metric(9, hist),
        metric(10, exp + ld(8, f64(1, 1) + f32(2, 1))),
        metric(11, summary),
        vi(1, 1) + ld(1, b"m") + vi(2, 1) + f64(3, 1) + vi(5, 1) + f64(12, 1) + ld(4, b"x"),
        ld(1, b"m2") + tag(7, 3) + tag(7, 4) + ld(5, ld(1, b"")),
    ]
    assert check_metrics(metrics_request(*metrics)) == "ok"


def test_metric_invalid_utf8_everywhere() -> None:
    for bad in (b"\xff", b"\xed\xa0\x80", b"\xe2\x82"):
        bad_attr = kv("k", ld(1, bad))
        places = [
            ld(1, bad) + ld(5, b""),
            ld(1, b"m") + ld(2, bad),
            ld(1, b"m") + ld(3, bad),
            ld(1, b"m") + ld(12, bad_attr),
            ld(5, ld(1, ld(7, bad_attr))),  # nameless: parsed whole all the same
            ld(1, b"m") + ld(5, ld(1, ld(5, ld(7, bad_attr)))),
            ld(1, b"m") + ld(9, ld(1, ld(9, bad_attr))),
            ld(1, b"m") + ld(9, ld(1, ld(8, ld(7, bad_attr)))),
            ld(1, b"m") + ld(10, ld(1, ld(1, bad_attr))),
            ld(1, b"m") + ld(10, ld(1, ld(11, ld(7, bad_attr)))),
            ld(1, b"m") + ld(11, ld(1, ld(7, bad_attr))),
            ld(1, b"m") + ld(5, ld(1, f64(3, 2**63) + ld(7, bad_attr))),  # rejected point
        ]
        for m in places:
            assert check_metrics(metrics_request(m), SMALL) == "decode", m
    # bytes fields hold anything
    ok = ld(1, b"m") + ld(5, ld(1, ld(5, ld(4, b"\xff") + ld(5, b"\xfe" * 16))))
    assert check_metrics(metrics_request(ok)) == "ok"


@pytest.mark.parametrize(
    ("where", "base"),
    [("metadata", 5), ("point", 7), ("exemplar", 8), ("histogram", 7), ("summary", 7)],
)
def test_metric_nesting_limit_matches_upb(where: str, base: int) -> None:
    def body_for(av: bytes) -> bytes:
        attr = kv("k", av)
        if where == "metadata":
            return metrics_request(ld(1, b"m") + ld(12, attr) + ld(5, ld(1, b"")))
        if where == "point":
            return metrics_request(metric(7, ld(7, attr)))
        if where == "exemplar":
            return metrics_request(metric(5, ld(5, ld(7, attr))))
        if where == "histogram":
            return metrics_request(metric(9, ld(9, attr)))
        return metrics_request(metric(11, ld(7, attr)))

    results = {}
    for arrays in range((100 - base) // 2 - 2, (100 - base) // 2 + 3):
        results[base + 2 * arrays] = check_metrics(body_for(nested_arrays(arrays)))
    for kvlists in range((100 - base) // 3 - 2, (100 - base) // 3 + 3):
        results[base + 3 * kvlists] = check_metrics(body_for(nested_kvlists(kvlists)))
    for level, result in results.items():
        assert result == ("ok" if level <= 100 else "decode"), level


def test_unknown_groups_nest_in_points() -> None:
    # a data point is at level 5: 95 more group levels are allowed inside it
    for groups, result in [(95, "ok"), (96, "decode")]:
        body = metrics_request(metric(5, ld(7, kv("k", ld(1, b"v"))) + nested_groups(groups)))
        assert check_metrics(body) == result, groups
    # a log record is at level 3
    for groups, result in [(97, "ok"), (98, "decode")]:
        body = logs_request(ld(6, kv("k", ld(1, b"v"))) + nested_groups(groups))
        assert check_logs(body) == result, groups


# ------------------------------------------------------------------------------------------
# Property tests


ids16 = st.sampled_from([TID, bytes(16), b"", TID[:5]]) | st.binary(max_size=17)
ids8 = st.sampled_from([SID, b"", SID[:3]]) | st.binary(max_size=9)
times = st.sampled_from([0, 1, 2**63 - 1, 2**63, 2**64 - 1]) | st.integers(0, 2**64 - 1)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
doubles = st.floats(allow_nan=True, allow_infinity=True)
limits_st = st.builds(
    Limits,
    attribute_count=st.sampled_from([0, 1, 2, 3, 128]),
    attribute_value_length=st.sampled_from([0, 1, 2, 5, 4096]),
)


@st.composite
def log_requests(draw: st.DrawFn) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    for _ in range(draw(st.integers(0, 2))):
        rl = req.resource_logs.add(schema_url=draw(texts))
        add_attrs(rl.resource.attributes, draw(attr_lists))
        for _ in range(draw(st.integers(0, 2))):
            sl = rl.scope_logs.add(schema_url=draw(texts))
            if draw(st.booleans()):
                sl.scope.name = draw(texts)
                add_attrs(sl.scope.attributes, draw(attr_lists))
            for _ in range(draw(st.integers(0, 4))):
                rec = sl.log_records.add(
                    time_unix_nano=draw(times),
                    observed_time_unix_nano=draw(times),
                    severity_number=draw(st.integers(-3, 30)),
                    severity_text=draw(texts),
                    dropped_attributes_count=draw(st.integers(0, 3) | u32),
                    flags=draw(u32),
                    trace_id=draw(ids16),
                    span_id=draw(ids8),
                    event_name=draw(texts),
                )
                body = draw(st.none() | st.just(("n",)) | any_values)
                if body is not None:
                    rec.body.SetInParent()
                    set_value(rec.body, body)
                add_attrs(rec.attributes, draw(attr_lists))
    return req


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=log_requests(), limits=limits_st)
def test_random_log_requests(req: ExportLogsServiceRequest, limits: Limits) -> None:
    assert check_logs(req, limits) in ("ok", "schema")


def _fill_point(draw: st.DrawFn, dp: Any, kind: str) -> None:
    dp.start_time_unix_nano = draw(times)
    dp.time_unix_nano = draw(times)
    dp.flags = draw(u32)
    add_attrs(dp.attributes, draw(attr_lists))
    if kind != "summary":
        for _ in range(draw(st.integers(0, 2))):
            ex = dp.exemplars.add(
                time_unix_nano=draw(u64), span_id=draw(ids8), trace_id=draw(ids16)
            )
            value = draw(st.none() | st.integers(-(2**63), 2**63 - 1) | doubles)
            if isinstance(value, int):
                ex.as_int = value
            elif isinstance(value, float):
                ex.as_double = value
            add_attrs(ex.filtered_attributes, draw(attr_lists))
    if kind in ("gauge", "sum"):
        value = draw(st.none() | st.integers(-(2**63), 2**63 - 1) | doubles)
        if isinstance(value, int):
            dp.as_int = value
        elif isinstance(value, float):
            dp.as_double = value
        return
    dp.count = draw(u64)
    if kind == "summary":
        dp.sum = draw(doubles)
        for _ in range(draw(st.integers(0, 3))):
            dp.quantile_values.add(quantile=draw(doubles), value=draw(doubles))
        return
    for name in ("sum", "min", "max"):
        if draw(st.booleans()):
            setattr(dp, name, draw(doubles))
    if kind == "histogram":
        dp.bucket_counts.extend(draw(st.lists(u64, max_size=5)))
        dp.explicit_bounds.extend(draw(st.lists(doubles, max_size=5)))
        return
    dp.scale = draw(st.integers(-(2**31), 2**31 - 1))
    dp.zero_count = draw(u64)
    dp.zero_threshold = draw(doubles)
    for buckets in (dp.positive, dp.negative):
        if draw(st.booleans()):
            buckets.offset = draw(st.integers(-(2**31), 2**31 - 1))
            buckets.bucket_counts.extend(draw(st.lists(u64, max_size=4)))


KINDS = ["gauge", "sum", "histogram", "exponential_histogram", "summary"]


@st.composite
def metric_requests(draw: st.DrawFn) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    for _ in range(draw(st.integers(0, 2))):
        rm = req.resource_metrics.add(schema_url=draw(texts))
        add_attrs(rm.resource.attributes, draw(attr_lists))
        for _ in range(draw(st.integers(0, 2))):
            sm = rm.scope_metrics.add(schema_url=draw(texts))
            if draw(st.booleans()):
                sm.scope.name = draw(texts)
            for _ in range(draw(st.integers(0, 3))):
                m = sm.metrics.add(
                    name=draw(st.sampled_from(["", "m", "http.server.duration"]) | texts),
                    description=draw(texts),
                    unit=draw(texts),
                )
                add_attrs(m.metadata, draw(attr_lists))
                kind = draw(st.none() | st.sampled_from(KINDS))
                if kind is None:
                    continue
                data = getattr(m, kind)
                data.SetInParent()
                if kind in ("sum", "histogram", "exponential_histogram"):
                    data.aggregation_temporality = draw(st.integers(-3, 3))
                if kind == "sum":
                    data.is_monotonic = draw(st.booleans())
                for _ in range(draw(st.integers(0, 3))):
                    _fill_point(draw, data.data_points.add(), kind)
    return req


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=metric_requests(), limits=limits_st)
def test_random_metric_requests(req: ExportMetricsServiceRequest, limits: Limits) -> None:
    assert check_metrics(req, limits) in ("ok", "schema")


# ------------------------------------------------------------------------------------------
# Mutation fuzz: never crash, never accept what upb refuses, never differ on what it takes


def _log_seeds() -> list[bytes]:
    seeds = [rich_logs().SerializeToString()]
    rnd = random.Random(5)
    for i in range(5):
        req = ExportLogsServiceRequest()
        rl = req.resource_logs.add()
        add_attrs(rl.resource.attributes, [("service.name", ("s", f"svc{i}"))])
        sl = rl.scope_logs.add()
        sl.scope.name = "s"
        for j in range(3):
            rec = sl.log_records.add(
                time_unix_nano=j,
                severity_number=9,
                severity_text="INFO",
                trace_id=rnd.randbytes(16),
                span_id=rnd.randbytes(8),
            )
            set_value(rec.body, BODIES[(i * 3 + j) % len(BODIES)])
            add_attrs(rec.attributes, EVERY_TYPE[(i * 5 + j) % 20 : (i * 5 + j) % 20 + 6])
        seeds.append(req.SerializeToString())
    return seeds


def _metric_seeds() -> list[bytes]:
    seeds = [rich_metrics().SerializeToString()]
    for kind in range(5):
        req = ExportMetricsServiceRequest()
        sm = req.resource_metrics.add().scope_metrics.add()
        m = sm.metrics.add(name=f"m{kind}")
        data = getattr(m, KINDS[kind])
        for j in range(2):
            dp = data.data_points.add(time_unix_nano=j + 1)
            add_attrs(dp.attributes, EVERY_TYPE[kind * 3 + j : kind * 3 + j + 4])
            if kind < 2:
                dp.as_double = 1.5
            elif kind == 2:
                dp.bucket_counts.extend([1, 2, 3])
                dp.explicit_bounds.extend([0.5, 1.5])
                dp.sum = 2.0
            elif kind == 3:
                dp.positive.bucket_counts.extend([1, 300, 2])
                dp.negative.offset = -3
            else:
                dp.quantile_values.add(quantile=0.5, value=1.0)
            if kind < 4:
                ex = dp.exemplars.add(as_int=3, span_id=SID, trace_id=TID)
                ex.filtered_attributes.add(key="k").value.string_value = "v"
        seeds.append(req.SerializeToString())
    return seeds


@pytest.mark.parametrize("signal", ["logs", "metrics"])
def test_mutation_fuzz(signal: str) -> None:
    rnd = random.Random(20240611)
    seeds = _log_seeds() if signal == "logs" else _metric_seeds()
    outcomes: dict[str, int] = {}
    for i in range(8000):
        body = _mutate(rnd, rnd.choice(seeds))
        result = check(signal, body, SMALL if i % 3 == 0 else Limits())
        outcomes[result] = outcomes.get(result, 0) + 1
    assert outcomes.get("ok", 0) > 400 and outcomes.get("decode", 0) > 1000, outcomes
