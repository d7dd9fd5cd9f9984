"""Stored metric point rows -> OTLP ``MetricsData`` and OTLP/JSON, and back to the request.

Requests are decoded the way ingest decodes them (``rows.metrics_batch``, and the C decoder
``fast.metrics_batch_from_bytes``), the rows rebuilt with ``metric_shapes`` and compared with
the original request message for message.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import duckdb
import pytest
from google.protobuf.json_format import MessageToDict, ParseDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, EntityRef, InstrumentationScope
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    AGGREGATION_TEMPORALITY_DELTA,
    Exemplar,
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    SummaryDataPoint,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otterscope.errors import BadRequest
from otterscope.otlp.anyvalue import Limits
from otterscope.otlp.fast import metrics_batch_from_bytes
from otterscope.otlp.rows import metrics_batch
from otterscope.query.metric_shapes import metrics_to_otlp, metrics_to_otlp_json
from otterscope.store.embedded.store import EmbeddedStore
from tests.test_otlp_fast import any_values, keys, set_value, texts
from tests.test_otlp_fast_logs_metrics import _bits, limits_st, metric_requests
from tests.test_query_shapes import BIG, T0, TRACE, _key, assert_same, d, i, kvs, rich_attrs, s

SPAN = bytes.fromhex("b7ad6b7169203331")
NAN, INF = math.nan, math.inf

Ex = Exemplar
Hist = HistogramDataPoint
Exp = ExponentialHistogramDataPoint
Buckets = ExponentialHistogramDataPoint.Buckets
Q = SummaryDataPoint.ValueAtQuantile


def n(value: int | float | None = None, t: int = 0, **kw: Any) -> NumberDataPoint:
    """A number point: an int value becomes as_int, a float as_double, None neither."""
    point = NumberDataPoint(time_unix_nano=T0 + t, **kw)
    if isinstance(value, int):
        point.as_int = value
    elif isinstance(value, float):
        point.as_double = value
    return point


def metric_request() -> ExportMetricsServiceRequest:
    exemplars = [
        Ex(
            time_unix_nano=T0 - 1,
            as_int=-(2**63),
            trace_id=TRACE,
            span_id=SPAN,
            filtered_attributes=kvs(user=s("u1"), empty=s(""), none=AnyValue()),
        ),
        Ex(time_unix_nano=T0, as_double=2.5, span_id=SPAN),
        Ex(as_double=NAN, trace_id=TRACE, filtered_attributes=rich_attrs()),
        Ex(as_double=-INF),
        Ex(time_unix_nano=2**64 - 1),  # no value, no ids
    ]
    gauge = Metric(
        name="queue.depth",
        description="items waiting",
        unit="{item}",
        metadata=kvs(source=s("sdk"), version=i(2), none=AnyValue()),
    )
    gauge.gauge.data_points.extend(
        [
            n(1.5, attributes=rich_attrs(), exemplars=exemplars, flags=1),
            n(7, 1, start_time_unix_nano=T0 - 100, attributes=kvs(q=s(""))),
            n(3.0, 2),  # a whole double stays a double
            n(0, 3),  # an int zero stays an int
            n(-0.0, 4),
            n(NAN, 5, exemplars=exemplars[2:]),
            n(INF, 6),
            n(-INF, 7),
            n(None, 8, flags=2**32 - 1),  # no value at all
            n(2**63 - 1, 9),
            n(-(2**63), 10),
            n(5e-324, 11),
        ]
    )
    counter = Metric(name="http.requests", unit="1")
    counter.sum.aggregation_temporality = AGGREGATION_TEMPORALITY_CUMULATIVE
    counter.sum.is_monotonic = True
    counter.sum.data_points.extend(
        [n(BIG, attributes=kvs(route=s("/a")), exemplars=exemplars[:2]), n(BIG + 1, 1)]
    )
    updown = Metric(name="http.requests", unit="By")  # same name, another metric
    updown.sum.aggregation_temporality = AGGREGATION_TEMPORALITY_DELTA
    updown.sum.data_points.extend([n(-2.5), n(-3)])
    odd_sum = Metric(name="odd.sum")  # temporality beyond the enum, no monotonicity
    odd_sum.sum.aggregation_temporality = 7  # type: ignore[assignment]
    odd_sum.sum.data_points.append(n(1))
    hist = Metric(name="http.duration", unit="ms", metadata=kvs(bucket=d(0.5)))
    hist.histogram.aggregation_temporality = AGGREGATION_TEMPORALITY_DELTA
    hist.histogram.data_points.extend(
        [
            Hist(
                start_time_unix_nano=T0 - 10,
                time_unix_nano=T0,
                count=2**64 - 1,
                sum=12.5,
                min=-0.0,
                max=INF,
                bucket_counts=[1, 0, 2**64 - 1],
                explicit_bounds=[-INF, 0.5],
                attributes=rich_attrs(),
                exemplars=exemplars,
                flags=1,
            ),
            Hist(time_unix_nano=T0 + 1, count=3, sum=0.0),  # sum present, min/max absent
            Hist(time_unix_nano=T0 + 2, min=NAN),  # only min; no buckets at all
            Hist(time_unix_nano=T0 + 3, max=-1.0, bucket_counts=[4], explicit_bounds=[]),
        ]
    )
    exp = Metric(name="latency.exp", description="base-2 buckets")
    exp.exponential_histogram.aggregation_temporality = AGGREGATION_TEMPORALITY_CUMULATIVE
    exp.exponential_histogram.data_points.extend(
        [
            Exp(
                time_unix_nano=T0,
                count=10,
                sum=-4.0,
                min=-3.0,
                max=2.0,
                scale=-3,
                zero_count=2,
                zero_threshold=1e-9,
                positive=Buckets(offset=-5, bucket_counts=[1, 2, 3]),
                negative=Buckets(offset=-(2**31), bucket_counts=[2**64 - 1, 0, 1]),
                attributes=kvs(k=s("v")),
                exemplars=exemplars[1:3],
                flags=1,
            ),
            Exp(
                time_unix_nano=T0 + 1,
                scale=2**31 - 1,
                zero_threshold=-0.0,
                positive=Buckets(offset=2**31 - 1),
                negative=Buckets(),
            ),
            Exp(time_unix_nano=T0 + 2, sum=NAN, positive=Buckets(), negative=Buckets(offset=3)),
        ]
    )
    summary = Metric(name="rpc.summary", unit="s")
    summary.summary.data_points.extend(
        [
            SummaryDataPoint(
                start_time_unix_nano=T0 - 5,
                time_unix_nano=T0,
                count=4,
                sum=-0.0,
                quantile_values=[Q(quantile=0.0, value=-1.5), Q(quantile=0.99, value=1e300)],
                attributes=kvs(method=s("Get")),
                flags=1,
            ),
            SummaryDataPoint(time_unix_nano=T0 + 1, sum=NAN),  # no quantiles
        ]
    )
    resource = Resource(
        attributes=[*kvs(service_name=s("checkout")), *rich_attrs()],
        dropped_attributes_count=3,
        entity_refs=[EntityRef(type="service", id_keys=["service.name"])],
    )
    return ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=resource,
                schema_url="https://opentelemetry.io/schemas/1.26.0",
                scope_metrics=[
                    ScopeMetrics(
                        scope=InstrumentationScope(
                            name="io.otel.http",
                            version="1.2.3",
                            attributes=kvs(lib=s("http")),
                            dropped_attributes_count=4,
                        ),
                        schema_url="https://opentelemetry.io/schemas/1.27.0",
                        metrics=[gauge, counter, updown, hist],
                    ),
                    ScopeMetrics(
                        scope=InstrumentationScope(name="manual"),
                        metrics=[exp, summary, odd_sum],
                    ),
                ],
            ),
            ResourceMetrics(
                resource=Resource(attributes=kvs(service_name=s("db"))),
                scope_metrics=[
                    ScopeMetrics(scope=InstrumentationScope(), metrics=[summary, counter])
                ],
            ),
        ]
    )


def original(req: ExportMetricsServiceRequest) -> MetricsData:
    return MetricsData(resource_metrics=req.resource_metrics)


def python_rows(
    req: ExportMetricsServiceRequest, limits: Limits | None = None
) -> list[dict[str, Any]]:
    batch = metrics_batch(req, "default", limits or Limits())
    assert batch.rejected == 0, batch.reject_message
    rows: list[dict[str, Any]] = batch.table.to_pylist()
    return rows


def c_rows(req: ExportMetricsServiceRequest) -> list[dict[str, Any]]:
    batch = metrics_batch_from_bytes(req.SerializeToString(), "default", Limits())
    assert batch.rejected == 0, batch.reject_message
    rows: list[dict[str, Any]] = batch.table.to_pylist()
    return rows


def hex_to_base64(out: dict[str, Any]) -> dict[str, Any]:
    """OTLP/JSON -> the protobuf JSON mapping: exemplar ids from hex back to base64."""
    for rm in out["resourceMetrics"]:
        for sm in rm.get("scopeMetrics", ()):
            for metric in sm.get("metrics", ()):
                for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
                    for point in metric.get(kind, {}).get("dataPoints", ()):
                        for ex in point.get("exemplars", ()):
                            for key in ("traceId", "spanId"):
                                if key in ex:
                                    ex[key] = base64.b64encode(bytes.fromhex(ex[key])).decode()
    return out


def assert_json_round_trip(rows: list[Any]) -> None:
    # Compared as JSON dicts: JSON says "NaN" for every NaN, whatever its payload bits.
    out = metrics_to_otlp_json(rows)
    parsed = ParseDict(hex_to_base64(out), MetricsData())
    assert MessageToDict(parsed) == MessageToDict(metrics_to_otlp(rows))


# -- tests --------------------------------------------------------------------------------


def test_round_trip_through_the_python_decoder() -> None:
    req = metric_request()
    rows = python_rows(req)
    assert len(rows) == 30
    rebuilt = metrics_to_otlp(rows)
    assert_same(rebuilt, original(req))
    # Both value kinds come back as they came in, and optional fields stay absent.
    points = rebuilt.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points
    assert [p.WhichOneof("value") for p in points[:4]] == ["as_double", "as_int"] * 2
    assert points[8].WhichOneof("value") is None
    hist = rebuilt.resource_metrics[0].scope_metrics[0].metrics[3].histogram.data_points
    assert [(p.HasField("sum"), p.HasField("min"), p.HasField("max")) for p in hist] == [
        (True, True, True),
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ]


def test_round_trip_through_the_c_decoder() -> None:
    req = metric_request()
    fast = c_rows(req)
    assert _bits([list(r.values()) for r in fast]) == _bits(
        [list(r.values()) for r in python_rows(req)]
    )
    assert_same(metrics_to_otlp(fast), original(req))


def test_round_trip_through_the_store_and_duckdb(tmp_path: Path) -> None:
    req = metric_request()
    store = EmbeddedStore(tmp_path)
    try:
        store.write([metrics_batch(req, "default", Limits())])
        store.seal_now()
    finally:
        store.close()
    pattern = (tmp_path / "parquet" / "metrics" / "**" / "*.parquet").as_posix()
    cur = duckdb.connect().execute(
        f"SELECT * FROM read_parquet('{pattern}', hive_partitioning = true) ORDER BY ingest_seq"
    )
    names = [col[0] for col in cur.description or ()]
    rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    assert len(rows) == 30
    assert_same(metrics_to_otlp(rows), original(req))


def test_otlp_json() -> None:
    rows = python_rows(metric_request())
    assert metrics_to_otlp_json([]) == {"resourceMetrics": []}
    out = metrics_to_otlp_json(rows)
    scope = out["resourceMetrics"][0]["scopeMetrics"][0]
    gauge, counter, updown, hist = scope["metrics"]
    assert gauge["metadata"] == [
        {"key": "source", "value": {"stringValue": "sdk"}},
        {"key": "version", "value": {"intValue": "2"}},
        {"key": "none", "value": {}},
    ]
    first = gauge["gauge"]["dataPoints"][0]
    assert first["asDouble"] == 1.5 and first["flags"] == 1
    trace_ids = [ex.get("traceId") for ex in first["exemplars"]]
    assert trace_ids == [TRACE.hex(), None, TRACE.hex(), None, None]
    assert [ex.get("spanId") for ex in first["exemplars"]] == [SPAN.hex()] * 2 + [None] * 3
    assert first["exemplars"][0]["asInt"] == str(-(2**63))
    assert first["exemplars"][2]["asDouble"] == "NaN"
    assert first["exemplars"][4] == {"timeUnixNano": str(2**64 - 1)}
    assert [p.get("asDouble", p.get("asInt")) for p in gauge["gauge"]["dataPoints"][5:8]] == [
        "NaN",
        "Infinity",
        "-Infinity",
    ]
    assert counter["sum"]["aggregationTemporality"] == 2 and counter["sum"]["isMonotonic"]
    assert updown["sum"]["aggregationTemporality"] == 1 and "isMonotonic" not in updown["sum"]
    assert hist["histogram"]["dataPoints"][0]["count"] == str(2**64 - 1)
    assert hist["histogram"]["dataPoints"][0]["bucketCounts"] == ["1", "0", str(2**64 - 1)]
    exp, summary, odd = out["resourceMetrics"][0]["scopeMetrics"][1]["metrics"]
    assert exp["exponentialHistogram"]["dataPoints"][0]["negative"] == {
        "offset": -(2**31),
        "bucketCounts": [str(2**64 - 1), "0", "1"],
    }
    assert summary["summary"]["dataPoints"][0]["quantileValues"] == [
        {"value": -1.5},  # a zero quantile is a default: left out
        {"quantile": 0.99, "value": 1e300},
    ]
    assert odd["sum"]["aggregationTemporality"] == 7
    assert_json_round_trip(rows)


def test_rows_regroup_by_first_appearance() -> None:
    rows = python_rows(metric_request())
    # Interleave the rows of every metric: each still comes back whole, in order.
    shuffled = rows[1::2] + rows[0::2]
    rebuilt = metrics_to_otlp(shuffled)
    by_name = {
        (m.name, m.unit): m
        for rm in rebuilt.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    want = {
        (m.name, m.unit): m
        for rm in metric_request().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert by_name.keys() == want.keys()
    assert sum(len(sm.metrics) for rm in rebuilt.resource_metrics for sm in rm.scope_metrics) == 9
    gauge = by_name[("queue.depth", "{item}")].gauge.data_points
    assert [p.time_unix_nano - T0 for p in gauge] == [1, 3, 5, 7, 9, 11, 0, 2, 4, 6, 8, 10]


def test_what_rows_cannot_say() -> None:
    req = ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    q = sm.metrics.add(name="q").summary.data_points.add()
    q.quantile_values.extend([Q(quantile=NAN, value=INF), Q(quantile=0.5, value=-INF)])
    e = sm.metrics.add(name="e").exponential_histogram.data_points.add()  # buckets absent
    sm.metrics.add(name="empty").gauge.SetInParent()  # no points: no rows
    rows = python_rows(req)
    # Non-finite quantiles are tagged like every other stored double, and come back.
    assert rows[0]["quantile_values"] == (
        '[{"quantile":{"\\u0000d":"NaN"},"value":{"\\u0000d":"Infinity"}},'
        '{"quantile":0.5,"value":{"\\u0000d":"-Infinity"}}]'
    )
    rebuilt = metrics_to_otlp(rows)
    (sm2,) = rebuilt.resource_metrics[0].scope_metrics
    assert [m.name for m in sm2.metrics] == ["q", "e"]
    values = sm2.metrics[0].summary.data_points[0].quantile_values
    assert math.isnan(values[0].quantile) and values[1].quantile == 0.5
    assert values[0].value == math.inf and values[1].value == -math.inf
    # Rows written before the tags (null) still read back, as NaN.
    old = dict(rows[0], quantile_values='[{"quantile":null,"value":null}]')
    (q_old,) = metrics_to_otlp([old]).resource_metrics[0].scope_metrics[0].metrics
    assert math.isnan(q_old.summary.data_points[0].quantile_values[0].value)
    point = sm2.metrics[1].exponential_histogram.data_points[0]
    assert point.HasField("positive") and point.HasField("negative")
    assert not e.HasField("positive")


def test_unknown_metric_type() -> None:
    row = python_rows(metric_request())[0]
    with pytest.raises(ValueError, match="unknown metric_type 9"):
        metrics_to_otlp([{**row, "metric_type": 9}])


# -- property tests -----------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """An any_values value that storage keeps exactly (see ``anyvalue``).

    Without profiles-only string indexes, non-canonical NaNs (tagged JSON keeps just "NaN"),
    kvlist keys that repeat or look like a storage tag.
    """
    kind = value[0]
    if kind == "x":
        return ("n",)
    if kind == "d" and math.isnan(value[1]):
        return ("d", NAN)
    if kind == "a":
        return ("a", [_plain(v) for v in value[1]])
    if kind == "k":
        entries: dict[str, Any] = {}
        for k, v in value[1]:
            if not k.startswith("\x00"):
                entries.setdefault(k, _plain(v))
        return ("k", list(entries.items()))
    return value


plain_attrs = st.dictionaries(keys, any_values.map(_plain), max_size=5).map(
    lambda d: list(d.items())
)
doubles = st.floats(allow_nan=True, allow_infinity=True)
json_doubles = doubles.map(lambda x: NAN if math.isnan(x) else x)
finite = st.floats(allow_nan=False, allow_infinity=False)
times = st.integers(0, 2**63 - 1)
u64 = st.integers(0, 2**64 - 1)
KINDS = ["gauge", "sum", "histogram", "exponential_histogram", "summary"]


def fill_attrs(container: Any, attrs: list[tuple[str, Any]]) -> None:
    for key, value in attrs:
        entry = container.add(key=key)
        entry.value.SetInParent()
        set_value(entry.value, value)


def _point(draw: st.DrawFn, dp: Any, kind: str) -> None:
    dp.start_time_unix_nano = draw(times)
    dp.time_unix_nano = draw(times)
    dp.flags = draw(st.integers(0, 2**32 - 1))
    fill_attrs(dp.attributes, draw(plain_attrs))
    if kind != "summary":
        for _ in range(draw(st.integers(0, 2))):
            ex = dp.exemplars.add(
                time_unix_nano=draw(u64),
                span_id=draw(st.binary(max_size=9)),
                trace_id=draw(st.binary(max_size=17)),
            )
            value = draw(st.none() | st.integers(-(2**63), 2**63 - 1) | json_doubles)
            if isinstance(value, int):
                ex.as_int = value
            elif isinstance(value, float):
                ex.as_double = value
            fill_attrs(ex.filtered_attributes, draw(plain_attrs))
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
            dp.quantile_values.add(quantile=draw(finite), value=draw(finite))
        return
    for name in ("sum", "min", "max"):
        if draw(st.booleans()):
            setattr(dp, name, draw(doubles))
    if kind == "histogram":
        dp.bucket_counts.extend(draw(st.lists(u64, max_size=4)))
        dp.explicit_bounds.extend(draw(st.lists(doubles, max_size=4)))
        return
    dp.scale = draw(st.integers(-(2**31), 2**31 - 1))
    dp.zero_count = draw(u64)
    dp.zero_threshold = draw(doubles)
    for buckets in (dp.positive, dp.negative):
        buckets.SetInParent()
        buckets.offset = draw(st.integers(-(2**31), 2**31 - 1))
        buckets.bucket_counts.extend(draw(st.lists(u64, max_size=4)))


@st.composite
def lossless_requests(draw: st.DrawFn) -> ExportMetricsServiceRequest:
    """Requests whose every part storage keeps: distinct resources, scopes and metrics,
    each with something in it, timestamps before 2262, finite quantiles."""
    req = ExportMetricsServiceRequest()
    for r in range(draw(st.integers(1, 2))):
        rm = req.resource_metrics.add(schema_url=f"{r}{draw(texts)}")
        rm.resource.SetInParent()
        fill_attrs(rm.resource.attributes, draw(plain_attrs))
        rm.resource.dropped_attributes_count = draw(st.integers(0, 5))
        for sc in range(draw(st.integers(1, 2))):
            sm = rm.scope_metrics.add(schema_url=f"{sc}{draw(texts)}")
            sm.scope.SetInParent()
            sm.scope.name = draw(texts)
            sm.scope.version = draw(texts)
            fill_attrs(sm.scope.attributes, draw(plain_attrs))
            for k in range(draw(st.integers(1, 3))):
                m = sm.metrics.add(name=f"m{k}{draw(texts)}", description=draw(texts))
                m.unit = draw(texts)
                fill_attrs(m.metadata, draw(plain_attrs))
                kind = draw(st.sampled_from(KINDS))
                data = getattr(m, kind)
                if kind in ("sum", "histogram", "exponential_histogram"):
                    data.aggregation_temporality = draw(st.integers(-3, 3))
                if kind == "sum":
                    data.is_monotonic = draw(st.booleans())
                for _ in range(draw(st.integers(1, 3))):
                    _point(draw, data.data_points.add(), kind)
    return req


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=lossless_requests())
def test_random_lossless_round_trip(req: ExportMetricsServiceRequest) -> None:
    rows = python_rows(req)
    assert_same(metrics_to_otlp(rows), original(req))
    assert_same(metrics_to_otlp(c_rows(req)), original(req))
    assert_json_round_trip(rows)


def _row_keys(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(repr(_bits(list(r.values()))) for r in rows)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=metric_requests(), limits=limits_st)
def test_random_rows_are_a_fixed_point(req: ExportMetricsServiceRequest, limits: Limits) -> None:
    """Any request (rejects, limits, lossy parts and all): rebuilding the rows and decoding
    the result again (with limits that cut nothing more) gives the same rows, and a second
    rebuild the same message."""
    try:
        batch = metrics_batch(req, "default", limits)
    except BadRequest:  # values the schema cannot hold: a 400 at ingest
        return
    rows = batch.table.to_pylist()
    rebuilt = metrics_to_otlp(rows)
    again = metrics_batch(
        ExportMetricsServiceRequest(resource_metrics=rebuilt.resource_metrics), "default", Limits()
    )
    assert again.rejected == 0
    assert _row_keys(again.table.to_pylist()) == _row_keys(rows)
    assert _key(metrics_to_otlp(again.table.to_pylist())) == _key(rebuilt)
    assert_json_round_trip(rows)
