"""The log volume histogram: its step (given, or chosen for the window), its buckets, and the
store's counts per step and severity class turned into the API's answer.

Buckets are aligned to the epoch (a bucket starts at a multiple of the step), so the same
step always cuts time the same way and a chart's bars stay put as its window moves. Every
bucket from the one holding ``start`` to the one holding ``end`` is answered, empty ones
included, so a chart needs no gap filling.
"""

from __future__ import annotations

from typing import Any

from otterscope.errors import BadRequest
from otterscope.query import params as p
from otterscope.store.base import Row

MS = 1_000_000
SECOND_MS = 1000
DAY_MS = 86_400 * SECOND_MS
# Steps a default is rounded up to, in milliseconds: 1s 2s 5s 10s 15s 30s, 1m 2m 5m 10m 15m
# 30m, 1h 2h 3h 6h 12h, 1d.
NICE_STEPS_MS = tuple(
    n * unit
    for unit, multiples in (
        (SECOND_MS, (1, 2, 5, 10, 15, 30)),
        (60 * SECOND_MS, (1, 2, 5, 10, 15, 30)),
        (3600 * SECOND_MS, (1, 2, 3, 6, 12)),
        (DAY_MS, (1,)),
    )
    for n in multiples
)
DEFAULT_BUCKETS = 60
MAX_BUCKETS = 1000
# The store's severity classes by index (see Store.log_volume), and the order of the
# answer's ``counts``.
CLASSES = ("UNSPECIFIED", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
ORDER = (*CLASSES[1:], CLASSES[0])


def bucket_span(start_ns: int, end_ns: int, step_ns: int) -> tuple[int, int]:
    """(index of the first bucket, number of buckets) of the window."""
    first = start_ns // step_ns
    return first, end_ns // step_ns - first + 1


def default_step_ns(start_ns: int, end_ns: int) -> int:
    """The smallest nice step giving at most about DEFAULT_BUCKETS buckets; past a day,
    whole days."""
    for step_ms in NICE_STEPS_MS:
        if bucket_span(start_ns, end_ns, step_ms * MS)[1] <= DEFAULT_BUCKETS + 1:
            return step_ms * MS
    days = -(-(end_ns - start_ns) // (DEFAULT_BUCKETS * DAY_MS * MS))
    return days * DAY_MS * MS


def parse_step(value: str, start_ns: int, end_ns: int) -> int:
    """``step`` as given (a duration, a whole number of milliseconds) -> nanoseconds, or a
    BadRequest when it is not one or cuts the window into more than MAX_BUCKETS buckets."""
    step_ns = p.parse_duration("step", value)
    if step_ns < MS or step_ns % MS:
        raise BadRequest(f"step: {value!r} must be a whole number of milliseconds, 1ms or more")
    buckets = bucket_span(start_ns, end_ns, step_ns)[1]
    if buckets > MAX_BUCKETS:
        fits = next(
            (s for s in NICE_STEPS_MS if bucket_span(start_ns, end_ns, s * MS)[1] <= MAX_BUCKETS),
            None,
        )
        hint = f"a step of {_duration(fits)} or more" if fits else "a longer step"
        raise BadRequest(
            f"step {value!r} cuts the window into {buckets} buckets, more than "
            f"{MAX_BUCKETS}: use {hint}, or a shorter window"
        )
    return step_ns


def _duration(ms: int) -> str:
    """Milliseconds in the duration syntax the parameter takes (which has no days)."""
    for unit, name in ((3_600_000, "h"), (60_000, "m"), (1000, "s")):
        if ms % unit == 0:
            return f"{ms // unit}{name}"
    return f"{ms}ms"


def volume_to_api(rows: list[Row], start_ns: int, end_ns: int, step_ns: int) -> dict[str, Any]:
    """The store's rows (step, severity class, records) -> every bucket of the window."""
    first, count = bucket_span(start_ns, end_ns, step_ns)
    counts = [dict.fromkeys(ORDER, 0) for _ in range(count)]
    for row in rows:
        bucket = counts[int(row["step"]) - first]
        bucket[CLASSES[int(row["severity_class"])]] += int(row["records"])
    step_ms = step_ns // MS
    buckets = [
        {"timeUnixMs": (first + i) * step_ms, "counts": c, "total": sum(c.values())}
        for i, c in enumerate(counts)
    ]
    return {
        "stepMs": step_ms,
        "startUnixMs": first * step_ms,
        "endUnixMs": end_ns // MS,
        "buckets": buckets,
        "total": sum(b["total"] for b in buckets),
    }
