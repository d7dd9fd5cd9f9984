"""OTLP/protobuf export requests -> Arrow tables without a Python object per item.

``spans_batch_from_bytes``, ``logs_batch_from_bytes`` and ``metrics_batch_from_bytes`` give
what ``rows.*_batch(parse_request(body))`` gives (same table, same counts, same reject
message) at a fraction of the cost: the C extension ``_fastotlp`` reads the protobuf wire
format itself and writes every per-item column straight into Arrow buffers (JSON columns
included, attribute limits applied, nullable columns with validity bitmaps, list columns
with offsets); only the few Resource / InstrumentationScope values of a request are
computed here, with rows.py's own helpers, and repeated over their items (a scope's items
are contiguous rows).

A body that upb would refuse (malformed wire format, invalid UTF-8 in a string field, too
deep nesting) is a ``BadRequest``, as on the Python path. A value the table's schema cannot
hold (a span kind, log severity or aggregation temporality outside int8, a
dropped-attributes count beyond uint32), on which the Python path fails while building its
table, is a ``BadRequest`` too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otterscope.errors import BadRequest
from otterscope.otlp import _fastotlp, rows, wire
from otterscope.otlp.anyvalue import LimitCounter, Limits
from otterscope.otlp.schema import LOGS, METRIC_POINTS, SPANS

# Limits beyond these behave exactly like these (counts and lengths are far smaller).
_MAX_LIMIT = 1 << 62


def _span_reject(reason: int, name: str) -> str:
    text = {
        1: "trace_id must be 16 bytes, not all zero",
        2: "span_id must be 8 bytes, not all zero",
        3: "parent_span_id must be empty or 8 bytes",
        4: "timestamp beyond the year 2262",
    }[reason]
    return f"span {name!r}: {text}"


def _log_reject(reason: int, name: str) -> str:
    text = {
        1: "trace_id must be empty or 16 bytes",
        2: "span_id must be empty or 8 bytes",
        3: "timestamp beyond the year 2262",
    }[reason]
    return f"log record: {text}"


def _metric_reject(reason: int, name: str) -> str:
    if reason == 1:
        return "metric without a name"
    if reason == 2:
        return f"metric {name!r} has no data"
    return f"metric {name!r}: timestamp beyond the year 2262"


@dataclass(frozen=True, slots=True)
class _Signal:
    """How one signal goes through ``_fastotlp`` (and, for odd limits, through rows.py)."""

    name: str
    schema: pa.Schema
    request: str
    items: str  # for "the <items> table cannot store"
    decode: Callable[[bytes, int, int], dict[str, Any]]
    reject: Callable[[int, str], str]
    fallback: Callable[[Any, str, Limits], rows.Batch]


_TRACES = _Signal(
    "traces",
    SPANS,
    "ExportTraceServiceRequest",
    "span",
    _fastotlp.decode_spans,
    _span_reject,
    rows.spans_batch,
)
_LOGS = _Signal(
    "logs",
    LOGS,
    "ExportLogsServiceRequest",
    "log record",
    _fastotlp.decode_logs,
    _log_reject,
    rows.logs_batch,
)
_METRICS = _Signal(
    "metrics",
    METRIC_POINTS,
    "ExportMetricsServiceRequest",
    "metric point",
    _fastotlp.decode_metrics,
    _metric_reject,
    rows.metrics_batch,
)

_RS_COLUMNS = rows._RS_COLUMNS
_SCOPE_COLUMNS = rows._SCOPE_COLUMNS


def _reject_message(sig: _Signal, out: dict[str, Any]) -> str:
    count: int = out["rejected"]
    if not count:
        return ""
    first = sig.reject(out["reject_reason"], out["reject_name"])
    more = f" (and {count - 1} more)" if count > 1 else ""
    return f"{count} item(s) rejected: {first}{more}"


# The same few resources and scopes arrive in request after request (one per service
# instance and library): their column values are computed once and remembered by their
# exact bytes. Bounded; cleared whole when full.
_CACHE_SIZE = 4096
# Larger resources are valued afresh each time: caching them could pin a lot of memory.
_CACHE_MAX_KEY_BYTES = 16 * 1024
_Values = tuple[list[Any], int, int]
_resource_cache: dict[tuple[bytes, str, Limits], _Values] = {}
_scope_cache: dict[tuple[bytes, str, Limits], _Values] = {}


def _resource_values(raw: bytes, url: str, limits: Limits, counter: LimitCounter) -> list[Any]:
    return rows._resource_scope_values(Resource.FromString(raw), url, limits, counter)


def _scope_values(raw: bytes, url: str, limits: Limits, counter: LimitCounter) -> list[Any]:
    return rows._scope_values(InstrumentationScope.FromString(raw), url, limits, counter)


def _cached(
    cache: dict[tuple[bytes, str, Limits], _Values],
    raw: bytes,
    url: str,
    limits: Limits,
    counter: LimitCounter,
    compute: Callable[[bytes, str, Limits, LimitCounter], list[Any]],
) -> list[Any]:
    if len(raw) > _CACHE_MAX_KEY_BYTES:
        return compute(raw, url, limits, counter)
    key = (raw, url, limits)
    hit = cache.get(key)
    if hit is None:
        own = LimitCounter()
        hit = (compute(raw, url, limits, own), own.dropped, own.truncated)
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[key] = hit
    # Limits are counted for every request that carries the resource, cached or not.
    counter.dropped += hit[1]
    counter.truncated += hit[2]
    return hit[0]


def _scope_columns(
    sig: _Signal, out: dict[str, Any], limits: Limits, counter: LimitCounter
) -> dict[str, list[Any]]:
    """Resource and scope column values, one per scope message (rows.py's helpers).

    Every Resource and scope is valued, with or without items, as rows.py does: their
    attribute limits count in ``counter`` either way.
    """
    try:
        rvals = [
            _cached(_resource_cache, raw, url, limits, counter, _resource_values)
            for raw, url in out["resources"]
        ]
        svals = [
            _cached(_scope_cache, raw, url, limits, counter, _scope_values)
            for raw, url, _, _ in out["scopes"]
        ]
    except DecodeError as exc:  # not expected: _fastotlp validated these messages
        raise BadRequest(f"body is not a valid OTLP protobuf {sig.request}: {exc}") from None
    cols: dict[str, list[Any]] = {}
    for i, name in enumerate(_RS_COLUMNS):
        cols[name] = [rvals[ridx][i] for _, _, ridx, _ in out["scopes"]]
    for i, name in enumerate(_SCOPE_COLUMNS):
        cols[name] = [v[i] for v in svals]
    return cols


def _scope_index(counts: list[int]) -> pa.Array:
    """Row -> index of its scope: scope i repeated counts[i] times."""
    return pa.array(
        list(itertools.chain.from_iterable(itertools.repeat(i, k) for i, k in enumerate(counts))),
        pa.int32(),
    )


def _column(type_: pa.DataType, n: int, buffers: tuple[Any, Any, Any]) -> pa.Array:
    """One column from _fastotlp's (validity or None, offsets or None, data) buffers."""
    valid, offsets, data = buffers
    validity = None if valid is None else pa.py_buffer(valid)
    if pa.types.is_list(type_):
        value_type = type_.value_type
        child = pa.Array.from_buffers(
            value_type, len(data) // (value_type.bit_width // 8), [None, pa.py_buffer(data)]
        )
        return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(offsets)], children=[child])
    if offsets is not None:
        return pa.Array.from_buffers(
            type_, n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
    return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(data)])


def _build_table(
    sig: _Signal, out: dict[str, Any], tenant: str, per_scope: dict[str, list[Any]]
) -> pa.Table:
    n: int = out["n"]
    # Scopes without rows are left out: their values are never stored, so never checked.
    counts = [scope[3] for scope in out["scopes"]]
    used = [i for i, k in enumerate(counts) if k]
    index = _scope_index([counts[i] for i in used])
    columns: dict[str, tuple[Any, Any, Any]] = out["columns"]
    arrays: list[pa.Array] = []
    for field in sig.schema:
        name = field.name
        if name == "tenant":
            arrays.append(pa.repeat(pa.scalar(tenant, field.type), n))
        elif name == "ingest_seq":
            arrays.append(pa.nulls(n, field.type))
        elif name in columns:
            arrays.append(_column(field.type, n, columns[name]))
        else:
            # One small array per scope, spread over its rows by a take: no per-row Python.
            values = per_scope[name]
            scoped = rows.column_array(sig.items, field, [values[i] for i in used])
            arrays.append(scoped.take(index))
    return pa.Table.from_arrays(arrays, schema=sig.schema)


def _batch_from_bytes(sig: _Signal, body: bytes, tenant: str, limits: Limits) -> rows.Batch:
    if limits.attribute_value_length < 0:
        # Negative lengths cut strings from the end in Python; not worth a C twin.
        message = wire.parse_request(sig.name, body, "protobuf")
        return sig.fallback(message, tenant, limits)
    count = min(max(limits.attribute_count, 0), _MAX_LIMIT)
    length = min(limits.attribute_value_length, _MAX_LIMIT)
    try:
        out = sig.decode(body, count, length)
    except OverflowError as exc:
        raise rows.unstorable(sig.items, exc) from None
    except ValueError as exc:
        raise BadRequest(f"body is not a valid OTLP protobuf {sig.request}: {exc}") from None
    counter = LimitCounter(dropped=out["dropped"], truncated=out["truncated"])
    per_scope = _scope_columns(sig, out, limits, counter)
    try:
        table = _build_table(sig, out, tenant, per_scope)
    except (pa.ArrowInvalid, OverflowError) as exc:
        raise rows.unstorable(sig.items, exc) from None
    return rows.Batch(
        sig.name,
        table,
        out["n"],
        out["rejected"],
        _reject_message(sig, out),
        counter.dropped,
        counter.truncated,
    )


def spans_batch_from_bytes(body: bytes, tenant: str, limits: Limits) -> rows.Batch:
    """``rows.spans_batch`` for a serialized ExportTraceServiceRequest."""
    return _batch_from_bytes(_TRACES, body, tenant, limits)


def logs_batch_from_bytes(body: bytes, tenant: str, limits: Limits) -> rows.Batch:
    """``rows.logs_batch`` for a serialized ExportLogsServiceRequest."""
    return _batch_from_bytes(_LOGS, body, tenant, limits)


def metrics_batch_from_bytes(body: bytes, tenant: str, limits: Limits) -> rows.Batch:
    """``rows.metrics_batch`` for a serialized ExportMetricsServiceRequest."""
    return _batch_from_bytes(_METRICS, body, tenant, limits)
