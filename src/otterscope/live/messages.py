"""The live feed's server messages, built from committed Arrow rows.

Each row is serialized once (``items``); messages are then packed from the serialized
items (``pack``) by joining bytes, so subscribers with different service filters share the
serialization work, and a message never holds more than ``MAX_ITEMS`` items or about
``MAX_BYTES`` bytes: large commits become several messages.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import orjson
import pyarrow as pa

from otterscope.otlp.schema import METRIC_TYPES
from otterscope.query.shapes import log_to_api, span_to_api

SIGNALS = ("traces", "logs", "metrics")
MAX_ITEMS = 1000
# Below 1 MiB, the default largest message of common WebSocket clients (Python websockets).
MAX_BYTES = 1_000_000

_TYPE_NAMES = {number: name for name, number in METRIC_TYPES.items()}
_HEADS = {
    "traces": b'{"type":"spanAdded","details":{"newSpans":[',
    "logs": b'{"type":"logAdded","details":{"newLogs":[',
    "metrics": b'{"type":"metricAdded","details":{"newMetrics":[',
}


@dataclass(frozen=True, slots=True)
class Item:
    service: str
    body: bytes  # the item's JSON
    key: bytes = b""  # spans only: the JSON of [traceIdHex, spanIdHex]


def items(signal: str, table: pa.Table) -> list[Item]:
    """One committed table (rows of one tenant) as serialized feed items."""
    if signal == "metrics":
        return _metric_items(table)
    out = []
    for row in table.to_pylist():
        if signal == "traces":
            span = span_to_api(row)
            key = orjson.dumps([span["traceId"], span["spanId"]])
            out.append(Item(span["service"], orjson.dumps(span), key))
        else:
            record = log_to_api(row)
            out.append(Item(record["service"], orjson.dumps(record)))
    return out


def _metric_items(table: pa.Table) -> list[Item]:
    # One entry per (service, metric name, type): the feed says what moved and when (the
    # newest point's time), not the values.
    counts: collections.Counter[tuple[str, str, int]] = collections.Counter()
    newest: dict[tuple[str, str, int], int] = {}
    for key, time_ns in zip(
        zip(
            table.column("service_name").to_pylist(),
            table.column("metric_name").to_pylist(),
            table.column("metric_type").to_pylist(),
            strict=True,
        ),
        table.column("time_unix_nano").to_pylist(),
        strict=True,
    ):
        counts[key] += 1
        newest[key] = max(newest.get(key, 0), time_ns or 0)
    out = []
    for key, points in counts.items():
        service, name, kind = key
        service = service or ""
        entry = {
            "name": name or "",
            "service": service,
            "type": _TYPE_NAMES.get(kind, str(kind)),
            "points": points,
            "timeUnixNano": str(newest[key]),
        }
        out.append(Item(service, orjson.dumps(entry)))
    return out


def pack(signal: str, chosen: list[Item]) -> list[str]:
    """``chosen`` as the signal's messages, split by ``MAX_ITEMS`` and ``MAX_BYTES``."""
    messages: list[str] = []
    start = 0
    while start < len(chosen):
        end, size = start, 0
        while end < len(chosen) and end - start < MAX_ITEMS:
            cost = len(chosen[end].body) + len(chosen[end].key) + 2
            if end > start and size + cost > MAX_BYTES:
                break
            size += cost
            end += 1
        messages.append(_message(signal, chosen[start:end]))
        start = end
    return messages


def _message(signal: str, part: list[Item]) -> str:
    bodies = b",".join(i.body for i in part)
    if signal == "traces":
        keys = b",".join(i.key for i in part)
        raw = _HEADS[signal] + keys + b'],"spans":[' + bodies + b"]}}"
    else:
        raw = _HEADS[signal] + bodies + b"]}}"
    return raw.decode()
