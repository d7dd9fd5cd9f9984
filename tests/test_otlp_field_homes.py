"""Every field of the OTLP protos has a home, and the home really keeps it (SPEC §2).

Two halves:

- static: walking the descriptors of the three export requests reaches every field of every
  message; each one must be listed in ``FIELD_HOMES[signal]`` (or ``NOT_APPLICABLE``) and
  name a column of the signal's Arrow schema, and no listed entry may be stale;
- behavioural: a request that sets every field (one request per combination of ``oneof``
  branches, generated from the descriptors) is decoded by ``otterscope.otlp.rows``, and for
  each field the same request with only that field changed must give a different value in
  the field's home column. A field that is listed but silently dropped fails here.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otterscope.otlp import rows
from otterscope.otlp.anyvalue import Limits
from otterscope.otlp.schema import FIELD_HOMES, NOT_APPLICABLE, SCHEMAS

REQUESTS: dict[str, type[Message]] = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}
Decoder = Callable[[Message, str, Limits], rows.Batch]
# Every way a request becomes a batch: rows.py for all, plus the C fast path for protobuf
# bodies of every signal when it is there (it must keep exactly what rows.py keeps).
DECODERS: dict[str, dict[str, Decoder]] = {
    "traces": {"rows": rows.spans_batch},  # type: ignore[dict-item]
    "logs": {"rows": rows.logs_batch},  # type: ignore[dict-item]
    "metrics": {"rows": rows.metrics_batch},  # type: ignore[dict-item]
}
try:
    from otterscope.otlp.fast import (
        logs_batch_from_bytes,
        metrics_batch_from_bytes,
        spans_batch_from_bytes,
    )
except ImportError:  # pragma: no cover - the fast path is optional
    pass
else:

    def _from_bytes(decode: Callable[[bytes, str, Limits], rows.Batch]) -> Decoder:
        def fast(req: Message, tenant: str, limits: Limits) -> rows.Batch:
            return decode(req.SerializeToString(), tenant, limits)

        return fast

    DECODERS["traces"]["fast"] = _from_bytes(spans_batch_from_bytes)
    DECODERS["logs"]["fast"] = _from_bytes(logs_batch_from_bytes)
    DECODERS["metrics"]["fast"] = _from_bytes(metrics_batch_from_bytes)


# Enough variants for every oneof branch, and every pair of nested branches that matters
# (metric kind x number value type: 5 and 2 are coprime, so 10 variants cover all pairs).
VARIANTS = range(14)


def _key(field: Any) -> str:
    return f"{field.containing_type.name}.{field.name}"


def _walk(root: Any) -> dict[str, Any]:
    """Every field of every message reachable from ``root``, by ``Message.field``."""
    out: dict[str, Any] = {}
    seen: set[str] = set()
    stack = [root]
    while stack:
        desc = stack.pop()
        if desc.full_name in seen:
            continue
        seen.add(desc.full_name)
        for field in desc.fields:
            out[_key(field)] = field
            if field.message_type is not None:
                stack.append(field.message_type)
    return out


def _proto_fields(signal: str) -> dict[str, Any]:
    """The fields of one signal, without the top-level Export*Request wrapper's own."""
    root = REQUESTS[signal].DESCRIPTOR
    return {k: f for k, f in _walk(root).items() if f.containing_type is not root}


# -- static ----------------------------------------------------------------------------------


@pytest.mark.parametrize("signal", sorted(REQUESTS))
def test_every_proto_field_has_a_home(signal: str) -> None:
    homeless = sorted(
        k for k in _proto_fields(signal) if k not in FIELD_HOMES[signal] and k not in NOT_APPLICABLE
    )
    assert not homeless, f"OTLP {signal} fields with no home in FIELD_HOMES: {homeless}"


@pytest.mark.parametrize("signal", sorted(REQUESTS))
def test_every_home_is_a_column(signal: str) -> None:
    names = set(SCHEMAS[signal].names)
    bad = {k: c for k, c in FIELD_HOMES[signal].items() if c not in names}
    assert not bad, f"FIELD_HOMES[{signal!r}] names columns missing from the schema: {bad}"


@pytest.mark.parametrize("signal", sorted(REQUESTS))
def test_no_stale_field_homes(signal: str) -> None:
    stale = sorted(set(FIELD_HOMES[signal]) - set(_proto_fields(signal)))
    assert not stale, f"FIELD_HOMES[{signal!r}] lists fields the protos do not have: {stale}"


def test_not_applicable_entries_are_real_fields() -> None:
    every = set()
    for signal in REQUESTS:
        every |= set(_proto_fields(signal))
    stale = sorted(set(NOT_APPLICABLE) - every)
    assert not stale, f"NOT_APPLICABLE lists fields the protos do not have: {stale}"
    both = sorted(k for k in NOT_APPLICABLE if any(k in FIELD_HOMES[s] for s in FIELD_HOMES))
    assert not both, f"fields both given a home and called not applicable: {both}"


# -- behavioural -----------------------------------------------------------------------------


def _seed(key: str) -> int:
    return zlib.crc32(key.encode())


def _value(field: Any, alternate: bool) -> Any:
    """A distinctive non-default value for a scalar field; ``alternate`` gives another one."""
    key = _key(field)
    seed = _seed(key)
    bump = 1 if alternate else 0
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return f"{'alt' if alternate else 'val'}:{key}"
    if t == FieldDescriptor.TYPE_BYTES:
        size = 16 if field.name.endswith("trace_id") else 8 if field.name.endswith("span_id") else 5
        start = (seed + bump * 7) % 200 + 1
        return bytes((start + i) % 256 or 1 for i in range(size))
    if t == FieldDescriptor.TYPE_BOOL:
        return not alternate
    if t == FieldDescriptor.TYPE_ENUM:
        values = field.enum_type.values
        assert len(values) >= 3, f"{key}: enum too small to pick two non-default values"
        return values[1 + bump].number
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return 1.25 + seed % 100 + bump
    # Integers of every width and signedness.
    if field.name.endswith("unix_nano"):
        return 1_700_000_000_000_000_000 + seed % 1000 + bump
    return 3 + seed % 100 + bump


def _fill(
    msg: Message, variant: int, mutate: str | None, path: frozenset[str], covered: set[str]
) -> None:
    """Set every applicable field of ``msg``; the field named ``mutate`` is changed.

    Changing means: a scalar gets its alternate value, a message field is left unset. Each
    oneof takes branch ``variant % n``; inside a message type already on the path (AnyValue
    nested in an array or kvlist) only scalar branches are taken, so recursion ends.
    """
    desc: Any = msg.DESCRIPTOR
    recursive = desc.full_name in path
    path = path | {desc.full_name}
    chosen: dict[str, str] = {}
    for oneof in desc.oneofs:
        options = [f for f in oneof.fields if _key(f) not in NOT_APPLICABLE]
        if recursive:
            options = [f for f in options if f.message_type is None] or options
        chosen[oneof.name] = options[variant % len(options)].name
    for field in desc.fields:
        key = _key(field)
        if key in NOT_APPLICABLE:
            continue
        oneof = field.containing_oneof
        if oneof is not None and chosen[oneof.name] != field.name:
            continue
        covered.add(key)
        changed = key == mutate
        if field.message_type is not None:
            if changed:
                continue  # left unset / empty
            if field.is_repeated:
                _fill(getattr(msg, field.name).add(), variant, mutate, path, covered)
            else:
                sub = getattr(msg, field.name)
                sub.SetInParent()
                _fill(sub, variant, mutate, path, covered)
        elif field.is_repeated:
            getattr(msg, field.name).append(_value(field, changed))
        else:
            setattr(msg, field.name, _value(field, changed))


@cache
def _request(signal: str, variant: int, mutate: str | None) -> tuple[Message, frozenset[str]]:
    req = REQUESTS[signal]()
    covered: set[str] = set()
    _fill(req, variant, mutate, frozenset(), covered)
    return req, frozenset(covered)


@cache
def _decoded(signal: str, variant: int, mutate: str | None, decoder: str = "rows") -> rows.Batch:
    req, _ = _request(signal, variant, mutate)
    return DECODERS[signal][decoder](req, "default", Limits())


def _column(
    signal: str, variant: int, mutate: str | None, column: str, decoder: str = "rows"
) -> list[Any]:
    return list(_decoded(signal, variant, mutate, decoder).table.column(column).to_pylist())


_DEFAULTS: tuple[Any, ...] = (None, "", 0, 0.0, False, b"", "[]", "{}", "null", [])


def _is_default(value: Any) -> bool:
    return any(type(value) is type(d) and value == d for d in _DEFAULTS)


def _variants_setting(signal: str, key: str) -> list[int]:
    return [v for v in VARIANTS if key in _request(signal, v, None)[1]]


@pytest.mark.parametrize("signal", sorted(REQUESTS))
def test_generated_requests_are_complete_and_accepted(signal: str) -> None:
    """The generator sets every field with a home somewhere, and nothing is rejected."""
    covered: set[str] = set()
    for variant in VARIANTS:
        req, fields = _request(signal, variant, None)
        covered |= fields
        batch = _decoded(signal, variant, None)
        assert batch.rejected == 0, batch.reject_message
        assert batch.accepted == batch.table.num_rows >= 1
        assert batch.dropped_attributes == batch.truncated_attributes == 0
        # Every field set is really in the request (nothing lost to the generator itself).
        assert req.ByteSize() > 0
    missing = sorted(set(FIELD_HOMES[signal]) - covered)
    assert not missing, f"the generator never set: {missing}"


CASES = [
    (signal, key, decoder)
    for signal in sorted(FIELD_HOMES)
    for key in sorted(FIELD_HOMES[signal])
    for decoder in DECODERS[signal]
]


@pytest.mark.parametrize(
    ("signal", "key", "decoder"), CASES, ids=[f"{d}:{s}:{k}" for s, k, d in CASES]
)
def test_field_lands_in_its_home(signal: str, key: str, decoder: str) -> None:
    column = FIELD_HOMES[signal][key]
    variants = _variants_setting(signal, key)
    assert variants, f"{key} is never set by the generator"
    non_default = False
    for variant in variants:
        full = _column(signal, variant, None, column, decoder)
        changed = _column(signal, variant, key, column, decoder)
        assert full != changed, (
            f"{signal}: changing {key} (variant {variant}) leaves column {column!r} "
            f"unchanged ({full!r}): the field is dropped or its home is wrong"
        )
        non_default = non_default or any(not _is_default(v) for v in full)
    assert non_default, f"{signal}: column {column!r} only holds defaults when {key} is set"


def test_distinctive_scalars_are_stored_verbatim() -> None:
    """Spot checks that values land unchanged, not merely 'somewhere different'."""
    req, _ = _request("traces", 0, None)
    span = req.resource_spans[0].scope_spans[0].spans[0]  # type: ignore[attr-defined]
    table = _decoded("traces", 0, None).table
    row = table.to_pylist()[0]
    assert row["trace_id"] == span.trace_id
    assert row["span_id"] == span.span_id
    assert row["parent_span_id"] == span.parent_span_id
    assert row["name"] == span.name
    assert row["trace_state"] == span.trace_state
    assert row["start_time_unix_nano"] == span.start_time_unix_nano
    assert row["status_message"] == span.status.message
    assert span.attributes[0].key in row["attributes"]
    assert span.events[0].name in row["events"]
    assert span.links[0].trace_id.hex() in row["links"]

    req, _ = _request("logs", 0, None)
    rec = req.resource_logs[0].scope_logs[0].log_records[0]  # type: ignore[attr-defined]
    row = _decoded("logs", 0, None).table.to_pylist()[0]
    assert row["severity_text"] == rec.severity_text
    assert row["event_name"] == rec.event_name
    assert row["trace_id"] == rec.trace_id
    assert rec.body.string_value and rec.body.string_value in row["body"]

    # A histogram: variant 2 picks Metric.histogram.
    req, _ = _request("metrics", 2, None)
    metric = req.resource_metrics[0].scope_metrics[0].metrics[0]  # type: ignore[attr-defined]
    assert metric.WhichOneof("data") == "histogram"
    dp = metric.histogram.data_points[0]
    row = _decoded("metrics", 2, None).table.to_pylist()[0]
    assert row["bucket_counts"] == list(dp.bucket_counts)
    assert row["explicit_bounds"] == list(dp.explicit_bounds)
    assert row["sum"] == dp.sum and row["min"] == dp.min and row["max"] == dp.max
    assert row["metric_name"] == metric.name


@pytest.mark.parametrize("signal", sorted(REQUESTS))
def test_fast_decoder_matches_rows(signal: str) -> None:
    """The C decoder keeps exactly what rows.py keeps, for every generated request."""
    if "fast" not in DECODERS[signal]:
        pytest.skip(f"no fast {signal} decoder")
    for variant in VARIANTS:
        for mutate in (None, *sorted(FIELD_HOMES[signal])):
            slow = _decoded(signal, variant, mutate)
            fast = _decoded(signal, variant, mutate, "fast")
            where = f"variant {variant}, {mutate or 'full'}"
            assert fast.table.equals(slow.table), where
            assert (fast.accepted, fast.rejected) == (slow.accepted, slow.rejected), where
            assert fast.reject_message == slow.reject_message, where
