"""Query parameters of Tempo's HTTP API, parsed as Tempo parses them (``pkg/api/http.go``
and ``pkg/api/search_tags.go`` in grafana/tempo).

- Search (``/api/search``): ``start``/``end`` in unix seconds (both absent: the default
  window; given, ``end`` must be after ``start``), ``limit`` (default 20, Tempo's), ``spss``
  (spans per spanset, default 3), ``minDuration``/``maxDuration`` in Go duration syntax,
  and either ``q`` (TraceQL) or ``tags`` (logfmt), never both.
- Trace by id: ``start``/``end`` in unix seconds.
- Tags and tag values: ``scope`` (``resource``, ``span``, ``intrinsic``, ``none`` or empty;
  Tempo's other scopes are valid and hold nothing here), ``start``/``end`` in unix seconds,
  ``limit`` (``maxTagValues``), ``q``.

Every function raises ``BadRequest`` with Tempo's wording where it has one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from otterscope.errors import BadRequest
from otterscope.query import jaeger_params as jp
from otterscope.query import params as p
from otterscope.query.model import TraceQuery

DEFAULT_LIMIT = 20
DEFAULT_SPSS = 3
# Without start and end Tempo searches what it holds recently; here that is the last day
# (the API's default window).
DEFAULT_WINDOW_NS = 86400 * 10**9
SCOPES = ("resource", "span", "intrinsic")
# Valid in Tempo (``traceql.AttributeScopeFromString``) but holding no tags here.
EMPTY_SCOPES = ("event", "link", "instrumentation", "trace")
_STATUS = {"error": 2, "ok": 1, "unset": 0}
_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_UINT32 = re.compile(r"\d{1,10}")


def _uint(name: str, value: str, bits: int = 32) -> int:
    if not _UINT32.fullmatch(value.strip()) or int(value) >= 2**bits:
        raise BadRequest(f"invalid {name}: {value[:40]!r} is not an unsigned integer")
    return int(value)


def seconds_window(
    q: Mapping[str, str], default_ns: int = DEFAULT_WINDOW_NS
) -> tuple[int, int] | None:
    """``start``/``end`` in unix seconds -> a nanosecond window, the whole of ``end``'s
    second included; None when neither is given."""
    start = _uint("start", q["start"]) if q.get("start") else 0
    end = _uint("end", q["end"]) if q.get("end") else 0
    if not start and not end:
        return None
    if end and end <= start:
        raise BadRequest(
            f"http parameter start must be before end. received start={start} end={end}"
        )
    end_ns = end * 10**9 + 10**9 - 1 if end else time.time_ns()
    start_ns = start * 10**9 if start else max(0, end_ns - default_ns)
    return start_ns, end_ns


def window_or_default(q: Mapping[str, str]) -> tuple[int, int]:
    found = seconds_window(q)
    if found is not None:
        return found
    now = time.time_ns()
    return max(0, now - DEFAULT_WINDOW_NS), now


@dataclass(frozen=True, slots=True)
class Search:
    """A parsed ``/api/search``: the TraceQL text (None for a tag search) and the
    conditions and bounds of the search as a ``TraceQuery``; ``spss`` for spansets."""

    traceql: str | None
    query: TraceQuery | None  # None: the tags contradict each other, nothing matches
    spss: int


def search(q: Mapping[str, str]) -> Search:
    if q.get("q") is not None and q.get("tags") is not None:
        raise BadRequest("invalid request: can't specify tags and q in the same query")
    start, end = window_or_default(q)
    low, high = jp.durations(q, ("minDuration",), ("maxDuration",))
    limit = _uint("limit", q["limit"]) if q.get("limit") else DEFAULT_LIMIT
    if limit == 0:
        raise BadRequest("invalid limit: must be a positive number")
    spss = _uint("spss", q["spss"]) if q.get("spss") else DEFAULT_SPSS
    query = TraceQuery(
        start_ns=start,
        end_ns=end,
        limit=min(limit, p.MAX_LIMIT),
        min_duration_ns=low,
        max_duration_ns=high,
        operation_exact=True,
    )
    tags = jp.parse_logfmt(q.get("tags") or "", "tags")
    return Search(q.get("q"), narrowed(query, tags), spss)


def narrowed(query: TraceQuery, tags: Mapping[str, str]) -> TraceQuery | None:
    """Tempo's tag search: ``service.name`` is the span's service, ``name`` its name,
    ``status`` and ``kind`` its TraceQL status and kind; Jaeger's derived tags (``error``,
    ``otel.status_code``, ``span.kind``) as in Jaeger; anything else an attribute of the
    span or its resource. None when the tags contradict each other."""
    rest = dict(tags)
    service, name = rest.pop("service.name", None), rest.pop("name", None)
    status, kind = rest.pop("status", None), rest.pop("kind", None)
    if status is not None and status.lower() not in _STATUS:
        raise BadRequest(f"invalid tags: status must be one of {', '.join(_STATUS)}")
    if kind is not None and kind.lower() not in _KINDS:
        raise BadRequest(f"invalid tags: kind must be one of {', '.join(_KINDS)}")
    query = replace(
        query,
        service=service or None,
        operation=name or None,
        status=None if status is None else _STATUS[status.lower()],
        kind=None if kind is None else _KINDS.index(kind.lower()),
    )
    try:
        return jp.apply_tags(query, rest)
    except jp.NoMatch:
        return None


def trace_window(q: Mapping[str, str]) -> tuple[int | None, int | None]:
    """The optional bounds of a trace by id (unix seconds) in nanoseconds."""
    found = seconds_window(q)
    if found is None:
        return None, None
    return (found[0] if q.get("start") else None), (found[1] if q.get("end") else None)


def scope(q: Mapping[str, str]) -> str:
    """The tag scope asked for; "" for all."""
    found = q.get("scope", "")
    if found == "none":
        return ""
    if found and found not in SCOPES + EMPTY_SCOPES:
        raise BadRequest(f"invalid scope: {found}")
    return found


def tag_limit(q: Mapping[str, str]) -> int:
    if not q.get("limit"):
        return p.MAX_LIMIT
    return min(_uint("limit", q["limit"]) or p.MAX_LIMIT, p.MAX_LIMIT)
