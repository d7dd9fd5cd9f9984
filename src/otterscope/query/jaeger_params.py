"""Query parameters of Jaeger's query service, parsed as Jaeger parses them.

v1 (``/jaeger/api/traces``): ``start``/``end`` in unix microseconds (default: the last two
days, Jaeger's search lookback), ``minDuration``/``maxDuration`` in Go duration syntax,
``limit`` (default 100), ``tags`` as a JSON object of strings or, as Grafana's Jaeger query
editor writes them, logfmt (``error=true http.method="GET"``), and ``tag=key:value``.
api_v3: the ``query.*`` names in camelCase and in their older snake_case spelling, times in
RFC 3339. Every function raises ``BadRequest`` naming the parameter.

Tags Jaeger derives from OTLP fields rather than attributes are searched on those fields:
``error=true`` and ``otel.status_code`` on the status, ``span.kind`` on the kind.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Mapping
from dataclasses import replace

import orjson

from otterscope.errors import BadRequest
from otterscope.query import params as p
from otterscope.query.jaeger_shapes import SPAN_KINDS
from otterscope.query.model import TraceQuery

SEARCH_LOOKBACK_NS = 2 * 86400 * 10**9
DEPENDENCY_LOOKBACK_MS = 86400 * 1000
DEFAULT_LIMIT = 100
_LOGFMT = re.compile(r'\s*([^\s="]+)(?:=("(?:[^"\\]|\\.)*"|[^\s"]*))?')
_STATUS_TAG = {"ok": 1, "error": 2, "unset": 0}


class NoMatch(Exception):
    """The conditions contradict each other (say ``error=true`` and a status of OK): no
    span can match, and the answer is empty."""


def parse_logfmt(text: str, name: str = "tags") -> dict[str, str]:
    """``key=value key2="quoted value" flag`` -> a dict (a bare key has the value "")."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        m = _LOGFMT.match(text, pos)
        if m is None or m.end() == pos:
            raise BadRequest(
                f"malformed '{name}' parameter: cannot read logfmt at {text[pos:][:40]!r}"
            )
        key, value = m.group(1), m.group(2) or ""
        if value.startswith('"'):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise BadRequest(
                    f"malformed '{name}' parameter: bad quoted value {value[:40]!r}"
                ) from None
            if not isinstance(value, str):
                raise BadRequest(f"malformed '{name}' parameter: bad quoted value")
        out[key] = value
        pos = m.end()
    return out


def parse_tags(
    tags: list[str], tag: list[str], name: str = "tags", logfmt: bool = True
) -> dict[str, str]:
    """Jaeger's ``tag=key:value`` (repeatable) and ``tags`` (JSON, or logfmt when
    ``logfmt``; the parameter is ``name``)."""
    out: dict[str, str] = {}
    for item in tag:
        key, sep, value = item.partition(":")
        if not sep:
            raise BadRequest(
                f"malformed 'tag' parameter, expecting key:value, received: {item[:80]}"
            )
        out[key] = value
    for text in tags:
        if logfmt and not text.lstrip().startswith("{"):
            out.update(parse_logfmt(text, name))
            continue
        try:
            found = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(
                f"malformed '{name}' parameter, cannot unmarshal JSON: {exc}"
            ) from None
        if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
            raise BadRequest(f"malformed '{name}' parameter: a JSON object of strings is needed")
        out.update(found)
    return out


def apply_tags(query: TraceQuery, tags: Mapping[str, str]) -> TraceQuery:
    """The tags as conditions on the query's span; raises ``NoMatch`` for a contradiction."""
    attributes = list(query.attributes)
    status, kind = query.status, query.kind

    def narrowed(current: int | None, new: int) -> int:
        if current is not None and current != new:
            raise NoMatch
        return new

    for key, value in tags.items():
        if key == "error" and value.lower() == "true":
            status = narrowed(status, 2)
        elif key == "otel.status_code" and value.lower() in _STATUS_TAG:
            status = narrowed(status, _STATUS_TAG[value.lower()])
        elif key == "span.kind" and value.lower() in SPAN_KINDS[1:]:
            kind = narrowed(kind, SPAN_KINDS.index(value.lower()))
        else:
            attributes.append((key, value))
    return replace(query, attributes=tuple(attributes), status=status, kind=kind)


def micros(name: str, value: str | None, default_ns: int) -> int:
    """A unix time in microseconds (Jaeger's v1 unit) -> nanoseconds.

    A number too small to be microseconds of a time after 1973 is read by its size as
    seconds or milliseconds: Grafana's Jaeger data source sends the bounds of a trace by id
    in milliseconds, which Jaeger itself would read as a time in January 1970.
    """
    if not value:
        return default_ns
    text = value.strip()
    ns = p.unix_by_size(int(text)) if re.fullmatch(r"\d{1,17}", text) else 2**63
    if ns >= 2**63:
        raise BadRequest(
            f"unable to parse param '{name}': {value[:40]!r} is not unix microseconds before 2262"
        )
    return ns


def millis(name: str, value: str | None, default_ms: int) -> int:
    """A count of milliseconds (Jaeger's dependencies ``endTs`` and ``lookback``)."""
    if not value:
        return default_ms
    if not re.fullmatch(r"\d{1,15}", value.strip()) or int(value) * 10**6 >= 2**63:
        raise BadRequest(
            f"unable to parse param '{name}': {value[:40]!r} is not milliseconds (up to 2262)"
        )
    return int(value)


def limit(value: str | None, name: str = "limit") -> int:
    """Jaeger takes any count; more than the API's 1000 are capped so a search stays bounded."""
    if not value:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"\d{1,9}", value.strip()) or int(value) == 0:
        raise BadRequest(
            f"unable to parse param '{name}': {value[:40]!r} is not a positive integer"
        )
    return min(int(value), p.MAX_LIMIT)


def durations(
    q: Mapping[str, str], low: tuple[str, ...], high: tuple[str, ...]
) -> tuple[int | None, int | None]:
    """The span duration bounds (Go syntax), under the first name of each given."""
    found: list[int | None] = []
    for names in (low, high):
        value, name = first(q, *names)
        found.append(p.parse_duration(name, value, plain_ms=False) if value else None)
    lo, hi = found
    if lo and hi and hi < lo:
        raise BadRequest(f"'{high[0]}' should be greater than '{low[0]}'")
    return lo, hi


def first(q: Mapping[str, str], *names: str) -> tuple[str, str]:
    """The value of the first of ``names`` that is set (api_v3's camelCase name before its
    snake_case one), and that name; ("", the first name) when none is."""
    for name in names:
        if q.get(name):
            return q[name], name
    return "", names[0]


def search_window(q: Mapping[str, str]) -> tuple[int, int]:
    end = micros("end", q.get("end"), time.time_ns())
    start = micros("start", q.get("start"), max(0, end - SEARCH_LOOKBACK_NS))
    if start > end:
        raise BadRequest("'start' must not be after 'end'")
    return start, end


def rfc3339(name: str, value: str) -> int:
    try:
        ns = p.rfc3339_ns(value.strip())
    except ValueError as exc:
        raise BadRequest(f"malformed parameter {name}: {value[:40]!r}: {exc}") from None
    if not 0 <= ns < 2**63:
        raise BadRequest(f"malformed parameter {name}: {value[:40]!r} is outside 1970 to 2262")
    return ns


def trace_id(value: str) -> bytes:
    """A trace id as Jaeger takes it: up to 32 hex digits (left-padded with zeros), or the
    16 (or 8) id bytes in standard or URL-safe base64, with or without padding."""
    text = value.strip()
    if re.fullmatch(r"[0-9a-fA-F]{1,32}", text):
        return bytes.fromhex(text.lower().rjust(32, "0"))
    if len(text) <= 24 and re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", text):
        bare = text.replace("-", "+").replace("_", "/").rstrip("=")
        try:
            raw = base64.b64decode(bare + "=" * (-len(bare) % 4), validate=True)
        except ValueError:
            raw = b""
        if len(raw) in (8, 16):
            return raw.rjust(16, b"\x00")
    raise BadRequest(f"malformed parameter trace_id: {value[:64]!r} is not a trace id")
