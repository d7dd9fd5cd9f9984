"""Stored spans and trace summaries in the shapes of Tempo's HTTP API (``tempopb`` in
grafana/tempo ``pkg/tempopb/tempo.proto``), as Tempo marshals them.

- A trace (``/api/traces/{id}``) is a ``tempopb.Trace``: ``repeated ResourceSpans
  resourceSpans = 1``, the OTLP message itself, so its protobuf bytes are exactly those of
  OTLP's ``TracesData`` (field 1, the same ``ResourceSpans``), built by
  ``shapes.spans_to_otlp``. ``TraceByIDResponse`` (``/api/v2/traces/{id}``) wraps it as its
  field 1; the status COMPLETE is proto3's zero and so absent. Writing that one field by
  hand keeps a second copy of OTLP's descriptors (Tempo renames their packages) out of the
  server.
- JSON is protobuf's JSON mapping, as Tempo's ``jsonpb`` writes it: camelCase, ids in
  base64, 64-bit integers as strings, enums by name, zero values left out; a v1 trace
  names its list ``batches`` (Tempo's ``MarshalToJSONV1``).
- Search answers (``SearchResponse``) carry only the fields ``tempo.proto`` defines:
  Grafana decodes them with ``jsonpb``, which rejects an unknown field.

It knows nothing of any store and does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict

from otterscope.query.model import TraceSummary
from otterscope.query.shapes import Row, spans_to_otlp

# Tempo's intrinsic tags (``search.GetVirtualIntrinsicValues``), in its order.
INTRINSICS = (
    "duration",
    "name",
    "status",
    "statusMessage",
    "kind",
    "rootServiceName",
    "rootName",
    "traceDuration",
    "event:name",
    "event:timeSinceStart",
    "link:spanID",
    "link:traceID",
    "instrumentation:name",
    "instrumentation:version",
    "trace:id",
    "span:id",
    "span:parentID",
    "span:status",
    "span:statusMessage",
    "span:duration",
    "span:name",
    "span:kind",
    "trace:rootName",
    "trace:rootService",
    "trace:duration",
)
# TraceQL's status and kind words: the values of those intrinsics, of type "keyword".
STATUS_WORDS = ("error", "ok", "unset")
KIND_WORDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
# Tempo's root service of a trace whose root span has not arrived (its trace name is empty).
ROOT_NOT_YET = "<root span not yet received>"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def trace_proto(rows: Iterable[Row]) -> bytes:
    """A ``tempopb.Trace`` in protobuf."""
    return bytes(spans_to_otlp(rows).SerializeToString())


def trace_json(rows: Iterable[Row], v1: bool = False) -> dict[str, Any]:
    """A ``tempopb.Trace`` in protobuf JSON. v1 names its list ``batches``, as Tempo's
    ``MarshalToJSONV1`` does for clients of the message's old field name."""
    found: dict[str, Any] = MessageToDict(spans_to_otlp(rows))
    if v1:
        return {"batches": found.get("resourceSpans", [])}
    return found


def by_id_response_proto(trace: bytes) -> bytes:
    """A ``TraceByIDResponse`` holding a ``tempopb.Trace`` (its protobuf bytes)."""
    return b"\x0a" + _varint(len(trace)) + trace


def trace_id_text(trace_id: bytes) -> str:
    """A trace id as Tempo's search prints it: hex without leading zeros."""
    return bytes(trace_id).hex().lstrip("0") or "0"


@dataclass(frozen=True, slots=True)
class SpanHit:
    """A span of a spanset: the ``attributes`` are the values its query asked for, by the
    name Tempo gives them (the attribute's name without its scope, or the intrinsic's)."""

    span_id: bytes
    name: str
    start_ns: int
    duration_ns: int
    attributes: tuple[tuple[str, Any], ...] = ()


def _any_value(value: Any) -> dict[str, Any]:
    """An API value (``to_api``) as OTLP/JSON ``AnyValue``."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    return {"stringValue": orjson.dumps(value).decode()}


def _omit_zero(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v not in (0, "", "0", [], None, {})}


def _span(hit: SpanHit) -> dict[str, Any]:
    return _omit_zero(
        {
            "spanID": hit.span_id.hex(),
            "name": hit.name,
            "startTimeUnixNano": str(hit.start_ns),
            "durationNanos": str(hit.duration_ns),
            "attributes": [{"key": k, "value": _any_value(v)} for k, v in hit.attributes],
        }
    )


def spanset(matched: int, spans: Sequence[SpanHit]) -> dict[str, Any]:
    """A ``SpanSet``: ``matched`` spans, of which ``spans`` are shown."""
    return _omit_zero({"spans": [_span(s) for s in spans], "matched": matched})


def trace_metadata(
    summary: TraceSummary, spansets: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """A ``TraceSearchMetadata``; ``spanSet`` (deprecated in Tempo, still filled by it)
    is the first of the spansets."""
    missing = summary.root_span_missing
    return _omit_zero(
        {
            "traceID": trace_id_text(summary.trace_id),
            "rootServiceName": ROOT_NOT_YET if missing else summary.root_service,
            "rootTraceName": "" if missing else summary.root_name,
            "startTimeUnixNano": str(summary.start_ns),
            # uint32 milliseconds, truncated as Tempo does; a bogus far-future end would
            # not fit, and a strict decoder would refuse the whole page
            "durationMs": min(max(0, summary.end_ns - summary.start_ns) // 10**6, 2**32 - 1),
            "spanSet": spansets[0] if spansets else None,
            "spanSets": list(spansets),
        }
    )


def search_response(traces: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A ``SearchResponse``. Its ``metrics`` count blocks and bytes of Tempo's storage,
    which otterscope has none of: all zero, so empty."""
    return {"traces": list(traces), "metrics": {}}


def tag_values_v2(values: Iterable[Any], type_: str | None = None) -> list[dict[str, str]]:
    """``TagValue``s: ``{"type", "value"}`` with the value as text and its TraceQL type
    (string, int, float, bool; ``type_`` for all of them when given, e.g. keyword)."""
    out = []
    for value in values:
        if type_ is not None:
            out.append({"type": type_, "value": str(value)})
        elif isinstance(value, bool):
            out.append({"type": "bool", "value": "true" if value else "false"})
        elif isinstance(value, int):
            out.append({"type": "int", "value": str(value)})
        elif isinstance(value, float):
            out.append({"type": "float", "value": repr(value)})
        elif isinstance(value, str):
            out.append({"type": "string", "value": value})
    return out
