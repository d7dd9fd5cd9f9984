"""Parsing of query-string values shared by every endpoint (SPEC §5 conventions).

Every function raises ``BadRequest`` naming the parameter and what was expected.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from otterscope.errors import BadRequest

DEFAULT_WINDOW_NS = 24 * 3600 * 1_000_000_000
MAX_LIMIT = 1000
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_MAX_NS = 2**63 - 1
_GO_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


_FRACTION = re.compile(r"([T ]\d\d:\d\d:\d\d)[.,](\d+)", re.IGNORECASE)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def unix_by_size(n: int) -> int:
    """A unix time whose unit follows from its size (s, ms, us, ns) -> nanoseconds."""
    if n < 10**11:
        return n * 10**9
    if n < 10**14:
        return n * 10**6
    if n < 10**17:
        return n * 10**3
    return n


def rfc3339_ns(text: str, local: bool = False) -> int:
    """RFC 3339 -> unix nanoseconds, keeping every digit of the fraction.

    Without a zone: local time when ``local``, else ``ValueError``; also for non-times.
    """
    fraction = 0
    match = _FRACTION.search(text)
    if match:
        # datetime stops at microseconds, so the fraction is read apart.
        fraction = int(match.group(2)[:9].ljust(9, "0"))
        text = text[: match.end(1)] + text[match.end() :]
    dt = datetime.fromisoformat(text.replace("z", "Z"))
    if dt.tzinfo is None:
        if not local:
            raise ValueError("needs a time zone (e.g. Z or +02:00)")
        dt = dt.astimezone()
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 10**9 + fraction


def parse_time(name: str, value: str) -> int:
    """RFC 3339, or a unix integer whose unit follows from its size -> nanoseconds."""
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        if text.startswith("-"):
            raise BadRequest(f"{name}: time must not be negative")
        # Longer than any int64 (and than what int() takes): out of range, not a crash.
        ns = unix_by_size(int(text)) if len(text) <= 19 else 2**63
        if ns >= 2**63:
            raise BadRequest(f"{name}: {value[:32]!r} is beyond the year 2262")
        return ns
    try:
        ns = rfc3339_ns(text)
    except ValueError as exc:
        if "time zone" in str(exc):
            raise BadRequest(f"{name}: {value!r} needs a time zone (e.g. Z or +02:00)") from None
        raise BadRequest(
            f"{name}: {value!r} is not a time (RFC 3339 like 2024-05-01T12:00:00Z, or unix seconds/ms/us/ns)"
        ) from None
    if not 0 <= ns < 2**63:
        raise BadRequest(f"{name}: {value!r} is outside 1970 to 2262")
    return ns


def parse_duration(name: str, value: str, plain_ms: bool = True) -> int:
    """Go duration syntax (``250ms``, ``1.5s``, ``2m``, ``1h30m``) or, when ``plain_ms``,
    plain milliseconds; without it a bare number other than 0 is refused, as Go's
    ``time.ParseDuration`` (and so Jaeger) refuses it."""
    text = value.strip()
    try:
        ms = float(text)
    except ValueError:
        pass
    else:
        if not plain_ms and ms != 0:
            raise BadRequest(f"{name}: {value!r} is not a duration: it needs a unit (e.g. 100ms)")
        if ms < 0 or ms != ms:
            raise BadRequest(f"{name}: duration must be a non-negative number")
        return _bounded(name, ms * 1_000_000)
    if not text or _GO_DURATION.sub("", text):
        example = "(e.g. 250ms, 1.5s, 2m" + (", or milliseconds)" if plain_ms else ")")
        raise BadRequest(f"{name}: {value!r} is not a duration {example}")
    return _bounded(
        name, sum(float(num) * _GO_UNITS[unit] for num, unit in _GO_DURATION.findall(text))
    )


def _bounded(name: str, ns: float) -> int:
    if ns > _MAX_NS:
        raise BadRequest(f"{name}: duration is longer than about 292 years")
    return int(ns)


def parse_trace_id(value: str) -> bytes:
    text = value.strip().lower()
    if len(text) == 16:
        text = "0" * 16 + text
    if len(text) != 32 or not re.fullmatch(r"[0-9a-f]+", text):
        raise BadRequest(f"trace id {value[:64]!r} must be 32 (or 16) hex characters")
    return bytes.fromhex(text)


def parse_span_id(value: str) -> bytes:
    text = value.strip().lower()
    if len(text) != 16 or not re.fullmatch(r"[0-9a-f]+", text):
        raise BadRequest(f"span id {value[:64]!r} must be 16 hex characters")
    return bytes.fromhex(text)


def parse_limit(value: str | None, default: int = 100) -> int:
    if value is None:
        return default
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"limit: {value!r} is not an integer from 1 to {MAX_LIMIT}") from None
    if not 1 <= n <= MAX_LIMIT:
        raise BadRequest(f"limit must be from 1 to {MAX_LIMIT}, not {n}")
    return n


def time_window(params: Mapping[str, str], default_ns: int = DEFAULT_WINDOW_NS) -> tuple[int, int]:
    end = parse_time("end", params["end"]) if params.get("end") else time.time_ns()
    # Nothing is stored before the epoch: an early `end` with the default window starts at 0,
    # not at a negative time no answer can carry.
    start = (
        parse_time("start", params["start"]) if params.get("start") else max(0, end - default_ns)
    )
    if start > end:
        raise BadRequest("start must not be after end")
    return start, end


def check_known(params: Mapping[str, str], known: set[str], attributes: bool = True) -> None:
    """Refuse a parameter the endpoint does not take (``attr.*`` when ``attributes``)."""
    for key in params:
        if key not in known and not (attributes and key.startswith("attr.")):
            raise BadRequest(f"unknown parameter {key!r}")


def attribute_filters(multi: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """``attr.<key>=<value>`` parameters, in the order given."""
    out = []
    for key, value in multi:
        if key.startswith("attr."):
            name = key[5:]
            if not name:
                raise BadRequest("attr.<key>: the attribute key is empty")
            out.append((name, value))
    return tuple(out)
