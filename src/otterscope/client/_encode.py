"""OTLP/JSON encoding for the push client: values, attributes, resource and the envelopes.

This module owns the OTLP/JSON mapping the client writes (the protobuf JSON mapping as the
OTLP specification narrows it): lowerCamelCase keys, trace and span ids as lowercase hex,
64-bit integers as decimal strings, doubles as JSON numbers (``"NaN"``, ``"Infinity"`` and
``"-Infinity"`` for the non-finite ones), enums as integers, bytes as base64. It also owns
the enum tables (span kinds, status codes, severity numbers) and the attribute rules:

- ``str``, ``bool``, ``int``, ``float`` and ``bytes`` map to their AnyValue; a list or
  tuple to an ``arrayValue``; a mapping to a ``kvlistValue``; an ``int`` outside int64 is
  written as its decimal string; anything else as ``str(value)``;
- an attribute whose value is ``None`` is left out (as the OpenTelemetry SDK does).

Standard library only, no I/O.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "KINDS",
    "SCOPE_NAME",
    "STATUS_CODES",
    "Attributes",
    "any_value",
    "attributes",
    "double",
    "dumps",
    "envelope",
    "severity",
]

Attributes = Mapping[str, Any]
JSON = dict[str, Any]

SCOPE_NAME = "otterscope.client"

# opentelemetry.proto.trace.v1.Span.SpanKind
KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
# opentelemetry.proto.trace.v1.Status.StatusCode
STATUS_CODES = {"unset": 0, "ok": 1, "error": 2}

# The first number of each severity range (opentelemetry.proto.logs.v1.SeverityNumber);
# ``INFO2`` … ``INFO4`` (and so on) are the next ones. Python's logging names map onto them.
_SEVERITY_BASE = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}
_SEVERITY_ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL", "NOTSET": "TRACE"}
_SEVERITY_NAMES = {number: name for name, number in _SEVERITY_BASE.items()}

_INT64 = (-(2**63), 2**63 - 1)


def double(value: float) -> float | str:
    """A double as OTLP/JSON writes it: a number, or a string for NaN and the infinities."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def any_value(value: Any) -> JSON:
    """One Python value as an OTLP/JSON ``AnyValue``."""
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        if _INT64[0] <= value <= _INT64[1]:
            return {"intValue": str(value)}
        return {"stringValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": double(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytesValue": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": attributes(value)}}
    if value is None:
        return {}
    return {"stringValue": str(value)}


def attributes(attrs: Attributes | None) -> list[JSON]:
    """Attributes as OTLP/JSON ``KeyValue`` objects, in the caller's order."""
    if not attrs:
        return []
    return [{"key": str(k), "value": any_value(v)} for k, v in attrs.items() if v is not None]


def severity(name: str | int) -> tuple[int, str]:
    """``(severityNumber, severityText)`` for a severity name or number.

    Names are case-insensitive: TRACE, DEBUG, INFO, WARN, ERROR, FATAL, each optionally
    followed by 2, 3 or 4 (``INFO2``), plus Python's WARNING, CRITICAL and NOTSET. An
    unknown name is sent as text with severity number 0 (unspecified).
    """
    if isinstance(name, int) and not isinstance(name, bool):
        if not 1 <= name <= 24:
            return 0, ""
        step = (name - 1) % 4
        return name, _SEVERITY_NAMES[name - step] + (str(step + 1) if step else "")
    text = str(name).strip()
    upper = text.upper()
    upper = _SEVERITY_ALIASES.get(upper, upper)
    step = 0
    if upper[-1:] in ("2", "3", "4") and upper[:-1] in _SEVERITY_BASE:
        step = int(upper[-1]) - 1
        upper = upper[:-1]
    base_number = _SEVERITY_BASE.get(upper)
    if base_number is None:
        return 0, text
    return base_number + step, text.upper()


def envelope(signal: str, resource: list[JSON], version: str, items: list[JSON]) -> JSON:
    """One ``Export*ServiceRequest`` for ``signal`` with one resource and one scope."""
    outer, inner, key = {
        "traces": ("resourceSpans", "scopeSpans", "spans"),
        "metrics": ("resourceMetrics", "scopeMetrics", "metrics"),
        "logs": ("resourceLogs", "scopeLogs", "logRecords"),
    }[signal]
    scope = {"name": SCOPE_NAME, "version": version}
    return {outer: [{"resource": {"attributes": resource}, inner: [{"scope": scope, key: items}]}]}


def dumps(doc: JSON) -> bytes:
    """Compact JSON; non-finite numbers were made strings by ``double``, so none remain."""
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
