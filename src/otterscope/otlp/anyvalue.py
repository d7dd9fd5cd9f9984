"""Typed attribute values: OTLP ``AnyValue`` <-> the JSON form kept in storage.

Storage keeps attributes as a JSON object whose values keep their OTLP type: strings, bools,
integers and finite doubles are native JSON (orjson writes ``1.0`` for a double and ``1`` for
an int, so the distinction survives), arrays are lists and kvlists are objects. The few types
JSON cannot say are tagged with a one-key object whose key starts with NUL, which no real
attribute key does: ``{"\\u0000b": base64}`` for bytes and ``{"\\u0000d": "NaN"}`` for
non-finite doubles.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

BYTES_TAG = "\x00b"
DOUBLE_TAG = "\x00d"


@dataclass(frozen=True, slots=True)
class Limits:
    """OpenTelemetry attribute limits, applied to every attribute set at ingest."""

    attribute_count: int = 128
    attribute_value_length: int = 4096


@dataclass(slots=True)
class LimitCounter:
    """How much the limits cut from one request: reported through self-metrics."""

    dropped: int = 0
    truncated: int = 0


def to_json_double(d: float) -> Any:
    """A double as storage JSON: finite ones native, the others tagged."""
    if math.isfinite(d):
        return d
    return {DOUBLE_TAG: "NaN" if math.isnan(d) else ("Infinity" if d > 0 else "-Infinity")}


def to_json(v: AnyValue, max_len: int = 0) -> Any:
    """One ``AnyValue`` as its storage JSON value; strings/bytes cut at ``max_len`` if > 0."""
    kind = v.WhichOneof("value")
    if kind == "string_value":
        s = v.string_value
        return s[:max_len] if max_len and len(s) > max_len else s
    if kind == "int_value":
        return v.int_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "double_value":
        return to_json_double(v.double_value)
    if kind == "array_value":
        return [to_json(x, max_len) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: to_json(kv.value, max_len) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        b = v.bytes_value
        if max_len and len(b) > max_len:
            b = b[:max_len]
        return {BYTES_TAG: base64.b64encode(b).decode()}
    return None


def _too_long(v: AnyValue, max_len: int) -> bool:
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return len(v.string_value) > max_len
    if kind == "bytes_value":
        return len(v.bytes_value) > max_len
    if kind == "array_value":
        return any(_too_long(x, max_len) for x in v.array_value.values)
    if kind == "kvlist_value":
        return any(_too_long(kv.value, max_len) for kv in v.kvlist_value.values)
    return False


def attributes_to_json(
    kvs: Iterable[KeyValue], limits: Limits, counter: LimitCounter
) -> tuple[dict[str, Any], int]:
    """Attributes as a storage dict, with limits applied.

    Returns the dict and how many attributes the limits affected (dropped or truncated),
    which the caller adds to the item's ``dropped_attributes_count``.
    """
    out: dict[str, Any] = {}
    affected = 0
    max_len = limits.attribute_value_length
    cap = limits.attribute_count
    for kv in kvs:
        if len(out) >= cap and kv.key not in out:
            affected += 1
            counter.dropped += 1
            continue
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "string_value":
            s = value.string_value
            if len(s) > max_len:
                s = s[:max_len]
                affected += 1
                counter.truncated += 1
            out[kv.key] = s
        elif kind == "int_value":
            out[kv.key] = value.int_value
        elif kind == "bool_value":
            out[kv.key] = value.bool_value
        else:
            if _too_long(value, max_len):
                affected += 1
                counter.truncated += 1
            out[kv.key] = to_json(value, max_len)
    return out, affected


_NON_FINITE = ("NaN", "Infinity", "-Infinity")


def tagged(value: dict[str, Any]) -> tuple[str, str] | None:
    """(tag, text) when ``value`` is a tagged bytes or non-finite double value.

    A kvlist a sender built to look like a tag but that does not hold a valid one (say
    ``{"\u0000b": "not base64!"}``) stays a kvlist, so it can always be read back.
    """
    if len(value) != 1:
        return None
    ((key, text),) = value.items()
    if not isinstance(text, str):
        return None
    if key == DOUBLE_TAG and text in _NON_FINITE:
        return key, text
    if key == BYTES_TAG:
        try:
            base64.b64decode(text, validate=True)
        except ValueError:
            return None
        return key, text
    return None


def from_json(value: Any, av: AnyValue) -> None:
    """Fill ``av`` from a storage JSON value (the inverse of ``to_json``)."""
    if value is None:
        return
    if isinstance(value, bool):
        av.bool_value = value
    elif isinstance(value, int):
        av.int_value = value
    elif isinstance(value, float):
        av.double_value = value
    elif isinstance(value, str):
        av.string_value = value
    elif isinstance(value, list):
        arr = av.array_value
        arr.SetInParent()
        for item in value:
            from_json(item, arr.values.add())
    elif isinstance(value, dict):
        tag = tagged(value)
        if tag is not None and tag[0] == BYTES_TAG:
            av.bytes_value = base64.b64decode(tag[1], validate=True)
        elif tag is not None:
            av.double_value = float(tag[1].replace("Infinity", "inf"))
        else:
            kvl = av.kvlist_value
            kvl.SetInParent()
            for k, item in value.items():
                kv = kvl.values.add()
                kv.key = k
                from_json(item, kv.value)
    else:
        raise TypeError(f"not a storage attribute value: {type(value).__name__}")


def to_api(value: Any) -> Any:
    """A storage JSON value as the query API shows it (SPEC §5).

    Bytes become base64 strings, integers beyond ±2^53 decimal strings, non-finite doubles
    the strings OTLP/JSON uses.
    """
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return value if -(2**53) <= value <= 2**53 else str(value)
    if isinstance(value, list):
        return [to_api(x) for x in value]
    if isinstance(value, dict):
        # Any one-key object under a tag shows its value (body_text, computed at ingest by
        # both decoders, reads it the same way).
        if len(value) == 1:
            if BYTES_TAG in value:
                return value[BYTES_TAG]
            if DOUBLE_TAG in value:
                return value[DOUBLE_TAG]
        return {k: to_api(x) for k, x in value.items()}
    raise TypeError(f"not a storage attribute value: {type(value).__name__}")
