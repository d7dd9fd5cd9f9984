"""OTLP wire formats: request bodies -> protobuf messages, and the answers back.

OTLP/JSON differs from protobuf's canonical JSON mapping in one way that matters: trace and
span ids are hex, not base64. Ids are rewritten in place before protobuf's own JSON parser
runs, which then handles the rest of the rules (lowerCamelCase or original names, enums as
integers or names, 64-bit integers as strings or numbers, unknown fields ignored).

Because unknown fields are ignored, a body of another signal would decode as an empty or
garbled request of this one; it is told apart (by its top-level key in JSON, by the wire
types of its first item's fields in protobuf) and refused with the path it belongs on.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from typing import Any, Literal

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otterscope.errors import BadRequest

Signal = Literal["traces", "metrics", "logs"]
Format = Literal["protobuf", "json"]
SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")

REQUESTS: dict[str, type[Message]] = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}
RESPONSES: dict[str, type[Message]] = {
    "traces": ExportTraceServiceResponse,
    "metrics": ExportMetricsServiceResponse,
    "logs": ExportLogsServiceResponse,
}
_REJECTED_FIELD = {
    "traces": "rejected_spans",
    "metrics": "rejected_data_points",
    "logs": "rejected_log_records",
}

_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _ids_to_base64(obj: dict[str, Any], where: str) -> None:
    for key in _ID_KEYS:
        value = obj.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise BadRequest(f"{where}.{key} must be a hex string")
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise BadRequest(f"{where}.{key} is not valid hex: {value[:40]!r}") from None
        obj[key] = base64.b64encode(raw).decode()


def _items(obj: Any, *keys: str) -> list[Any]:
    """Children under the first of ``keys`` present (camelCase or snake_case)."""
    if not isinstance(obj, dict):
        return []
    for key in keys:
        value = obj.get(key)
        if isinstance(value, list):
            return value
        if value is not None:
            raise BadRequest(f"{key} must be an array")
    return []


def _fix_trace_ids(doc: dict[str, Any]) -> None:
    for rs in _items(doc, "resourceSpans", "resource_spans"):
        for ss in _items(rs, "scopeSpans", "scope_spans"):
            for span in _items(ss, "spans"):
                if not isinstance(span, dict):
                    raise BadRequest("spans must hold objects")
                _ids_to_base64(span, "span")
                for link in _items(span, "links"):
                    if isinstance(link, dict):
                        _ids_to_base64(link, "span.link")


def _fix_log_ids(doc: dict[str, Any]) -> None:
    for rl in _items(doc, "resourceLogs", "resource_logs"):
        for sl in _items(rl, "scopeLogs", "scope_logs"):
            for rec in _items(sl, "logRecords", "log_records"):
                if not isinstance(rec, dict):
                    raise BadRequest("logRecords must hold objects")
                _ids_to_base64(rec, "logRecord")


_POINT_HOLDERS = ("gauge", "sum", "histogram", "exponentialHistogram", "exponential_histogram")


def _fix_metric_ids(doc: dict[str, Any]) -> None:
    for rm in _items(doc, "resourceMetrics", "resource_metrics"):
        for sm in _items(rm, "scopeMetrics", "scope_metrics"):
            for metric in _items(sm, "metrics"):
                if not isinstance(metric, dict):
                    raise BadRequest("metrics must hold objects")
                for holder in _POINT_HOLDERS:
                    data = metric.get(holder)
                    for dp in _items(data, "dataPoints", "data_points"):
                        for ex in _items(dp, "exemplars"):
                            if isinstance(ex, dict):
                                _ids_to_base64(ex, "exemplar")


_FIXERS = {"traces": _fix_trace_ids, "logs": _fix_log_ids, "metrics": _fix_metric_ids}

# The top-level key of each export request, in both spellings OTLP/JSON allows.
_TOP_KEYS: dict[str, tuple[str, str]] = {
    "traces": ("resourceSpans", "resource_spans"),
    "metrics": ("resourceMetrics", "resource_metrics"),
    "logs": ("resourceLogs", "resource_logs"),
    "profiles": ("resourceProfiles", "resource_profiles"),
}


def misdirected(signal: str, other: str, evidence: str) -> BadRequest:
    """A body of signal ``other`` posted to ``signal``'s path: say where it belongs."""
    if other == "profiles":
        return BadRequest(
            f"this is an OTLP profiles export ({evidence}), posted to /v1/{signal}; "
            "otterscope stores traces, metrics and logs, not profiles"
        )
    return BadRequest(
        f"this is an OTLP {other} export ({evidence}), posted to /v1/{signal}: "
        f"send it to /v1/{other}"
    )


def _check_json_signal(signal: str, doc: dict[str, Any]) -> None:
    """Unknown fields are ignored by the OTLP rules, so another signal's body would parse
    as an empty request and be answered 200 with nothing stored: refuse it instead."""
    if any(key in doc for key in _TOP_KEYS[signal]):
        return
    for other, keys in _TOP_KEYS.items():
        found = [key for key in keys if key in doc]
        if other != signal and found:
            raise misdirected(signal, other, f"its top-level key is {found[0]!r}")


def parse_request(signal: str, body: bytes, fmt: Format) -> Message:
    """Decode one export request; a ``BadRequest`` says what was wrong with it."""
    message = REQUESTS[signal]()
    if fmt == "protobuf":
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(
                f"body is not a valid OTLP protobuf {message.DESCRIPTOR.name}: {exc}"
            ) from None
        return message
    try:
        doc = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest(f"body must be a JSON object ({message.DESCRIPTOR.name})")
    _check_json_signal(signal, doc)
    _FIXERS[signal](doc)
    try:
        json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise BadRequest(
            f"body is not a valid OTLP/JSON {message.DESCRIPTOR.name}: {exc}"
        ) from None
    return message


def response_message(signal: str, rejected: int, message: str) -> Message:
    response: Any = RESPONSES[signal]()
    if rejected or message:
        ps = response.partial_success
        setattr(ps, _REJECTED_FIELD[signal], rejected)
        ps.error_message = message
    out: Message = response
    return out


def encode_message(message: Message, fmt: Format) -> bytes:
    if fmt == "protobuf":
        return message.SerializeToString()
    return orjson.dumps(json_format.MessageToDict(message))


def status_body(code: int, message: str, fmt: Format) -> bytes:
    """A ``google.rpc.Status`` (``code`` is a gRPC code) in the request's encoding."""
    return encode_message(Status(code=code, message=message), fmt)


# Field number -> wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32) of the item
# messages: Span, LogRecord and Metric. All three requests nest the same way (field 1 the
# resource level, its field 2 the scope level, its field 2 the items), so only the items
# tell the signals apart.
_ITEM_WIRE_TYPES: dict[str, dict[int, int]] = {
    "traces": {1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 0, 7: 1, 8: 1, 9: 2}
    | {10: 0, 11: 2, 12: 0, 13: 2, 14: 0, 15: 2, 16: 5},
    "logs": {1: 1, 2: 0, 3: 2, 5: 2, 6: 2, 7: 0, 8: 5, 9: 2, 10: 2, 11: 1, 12: 2},
    "metrics": {1: 2, 2: 2, 3: 2, 5: 2, 7: 2, 9: 2, 10: 2, 11: 2, 12: 2},
}
# How many fields (of requests, resources and scopes) to look through for a first item,
# and how many of its own fields tell its signal.
_SNIFF_FIELDS = 256
_ITEM_FIELDS = 64


class _Malformed(Exception):
    pass


def _varint(data: bytes, i: int, end: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while i < end and shift <= 63:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i
    raise _Malformed


def _fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(number, wire type, value start, value end) of each field, lazily: the first item
    is found without walking a large body."""
    i = start
    while i < end:
        key, i = _varint(data, i, end)
        number, wt = key >> 3, key & 7
        s = i
        if wt == 0:
            _, i = _varint(data, i, end)
        elif wt == 1 or wt == 5:
            i += 8 if wt == 1 else 4
        elif wt == 2:
            n, s = _varint(data, i, end)
            i = s + n
        else:
            raise _Malformed
        if i > end:
            raise _Malformed
        yield number, wt, s, i


def _first_item(body: bytes) -> list[tuple[int, int, int, int]] | None:
    try:
        return _find_first_item(body)
    except _Malformed:
        return None  # the decoder says what is wrong with it


def _find_first_item(body: bytes) -> list[tuple[int, int, int, int]] | None:
    # Every field visited counts against one budget, whatever its number: the walk is
    # Python on the event loop, and a body of 16 MiB of fields nobody asked for must not
    # be walked whole (2.5 s). The first item's fields are enough to tell signals apart.
    budget = _SNIFF_FIELDS

    def messages(start: int, end: int, number: int) -> Iterator[tuple[int, int]]:
        """The spans of field ``number``'s messages in body[start:end], within budget."""
        nonlocal budget
        for n, wt, s, e in _fields(body, start, end):
            budget -= 1
            if budget <= 0:
                return
            if n == number and wt == 2:
                yield s, e

    # request → resource (field 1) → scope (field 2) → first item (field 2)
    for s1, e1 in messages(0, len(body), 1):
        for s2, e2 in messages(s1, e1, 2):
            for s3, e3 in messages(s2, e2, 2):
                return list(itertools.islice(_fields(body, s3, e3), _ITEM_FIELDS))
    return None


def _fits(signal: str, item: list[tuple[int, int, int, int]]) -> bool:
    expected = _ITEM_WIRE_TYPES[signal]
    for number, wt, s, e in item:
        if expected.get(number, wt) != wt:
            return False
        # A span's first field is its 16-byte trace id; a metric's is its name.
        if signal == "traces" and number == 1 and e - s != 16:
            return False
    return True


def check_protobuf_signal(signal: str, body: bytes) -> None:
    """Refuse a protobuf export of another signal, told apart by the wire types of its
    first item's fields (a field number never changes its wire type in OTLP). Unknown
    fields are skipped by protobuf, so such a body would otherwise be read as items of
    this signal made of the other's fields. An item that fits several signals, or none,
    leaves the verdict to the decoder."""
    item = _first_item(body)
    if not item:
        return
    fits = [other for other in SIGNALS if _fits(other, item)]
    if len(fits) == 1 and fits[0] != signal:
        raise misdirected(signal, fits[0], "told by the fields of its first item")
