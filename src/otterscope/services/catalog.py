"""Services as the API shows them: discovered from what each signal holds of them.

A service is a ``service.name``; its namespace, version, environment and SDK language come
from its most recent resource (spans first, then logs, then metric points). Counts, first
and last seen are within the queried window; the error rate and p99 come from its spans.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

Row = dict[str, Any]

# Resource attribute -> API field; the first present of each list wins.
_FIELDS = {
    "namespace": ("service.namespace",),
    "version": ("service.version",),
    "environment": ("deployment.environment.name", "deployment.environment"),
    "language": ("telemetry.sdk.language",),
    "sdk": ("telemetry.sdk.name",),
}
_COUNTS = {"traces": "spanCount", "logs": "logCount", "metrics": "metricPointCount"}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None if value is None else str(value)


def services(activity: Mapping[str, Sequence[Row]]) -> list[dict[str, Any]]:
    """One entry per service name, ordered by name, from ``Store.service_activity``."""
    found: dict[str, dict[str, Any]] = {}
    resources: dict[str, str] = {}
    for signal in ("traces", "logs", "metrics"):
        for row in activity.get(signal, ()):
            name = row["service_name"] or "unknown_service"
            entry = found.setdefault(
                name,
                {
                    "name": name,
                    **dict.fromkeys(_FIELDS),
                    "firstSeenUnixNano": None,
                    "lastSeenUnixNano": None,
                    **dict.fromkeys(_COUNTS.values(), 0),
                    "errorCount": 0,
                    "errorRate": 0.0,
                    "p99Ms": None,
                },
            )
            entry[_COUNTS[signal]] += int(row["items"])
            first, last = int(row["first_ns"]), int(row["last_ns"])
            seen_first, seen_last = entry["firstSeenUnixNano"], entry["lastSeenUnixNano"]
            entry["firstSeenUnixNano"] = first if seen_first is None else min(seen_first, first)
            entry["lastSeenUnixNano"] = last if seen_last is None else max(seen_last, last)
            resources.setdefault(name, row["resource"] or "{}")
            if signal == "traces":
                entry["errorCount"] = int(row["errors"])
                entry["errorRate"] = int(row["errors"]) / max(1, int(row["items"]))
                p99 = row["p99_ns"]
                entry["p99Ms"] = None if p99 is None else float(p99) / 1e6
    for name, entry in found.items():
        resource = orjson.loads(resources[name])
        for field, keys in _FIELDS.items():
            entry[field] = next((_text(resource[k]) for k in keys if k in resource), None)
        entry["firstSeenUnixNano"] = str(entry["firstSeenUnixNano"])
        entry["lastSeenUnixNano"] = str(entry["lastSeenUnixNano"])
    return [found[name] for name in sorted(found)]
