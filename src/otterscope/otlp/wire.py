"""OTLP wire formats: request bodies -> protobuf messages, and the answers back.

OTLP/JSON differs from protobuf's canonical JSON mapping in one way that matters: trace and
span ids are hex, not base64. Ids are rewritten in place before protobuf's own JSON parser
runs, which then handles the rest of the rules (lowerCamelCase or original names, enums as
integers or names, 64-bit integers as strings or numbers, unknown fields ignored).
"""

from __future__ import annotations

import base64
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
