"""oteleport-compatible fetch, for export and replay: ``POST /api/{signal}/fetch``.

Body ``{"startTimeUnixNano", "endTimeUnixNano"?, "limit"?, "cursor"?}``; the answer is
OTLP/JSON (``resourceSpans`` / ``resourceLogs`` / ``resourceMetrics``) plus ``nextCursor``.
Items come oldest first; paging through returns every item stored before the first page
exactly once (the cursor pins the ingest point), whatever arrives meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otterscope.api.json_body import json_object
from otterscope.api.paging import begin
from otterscope.api.responses import json_response
from otterscope.api.state import ALL_METHODS, api_endpoint, app_state, principal
from otterscope.errors import BadRequest, MethodNotAllowed
from otterscope.query import params as p
from otterscope.query.metric_shapes import metrics_to_otlp_json
from otterscope.query.model import FetchQuery
from otterscope.query.shapes import logs_to_otlp_json, spans_to_otlp_json
from otterscope.store.base import Row

_FIELDS = {"startTimeUnixNano", "endTimeUnixNano", "limit", "cursor"}

_ENCODERS: dict[str, Callable[[Iterable[Row]], dict[str, Any]]] = {
    "traces": spans_to_otlp_json,
    "logs": logs_to_otlp_json,
    "metrics": metrics_to_otlp_json,
}


def _key(signal: str, row: Row) -> tuple[Any, ...]:
    if signal == "traces":
        return (row["start_time_unix_nano"], row["trace_id"], row["span_id"])
    if signal == "logs":
        return (row["timestamp_unix_nano"], row["ingest_seq"])
    return (row["time_unix_nano"], row["ingest_seq"])


def _time(name: str, value: Any) -> int:
    # The fields are nanoseconds whatever their size (OTLP/JSON writes 64-bit integers as
    # strings; both forms are taken); RFC 3339 is accepted too, for people.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadRequest(f"{name} must be a string or integer of unix nanoseconds")
    text = str(value).strip()
    if text.isdigit():
        ns = int(text) if len(text) <= 19 else 2**63
        if ns >= 2**63:
            raise BadRequest(f"{name} is beyond the year 2262")
        return ns
    if text.startswith("-") and text[1:].isdigit():
        raise BadRequest(f"{name} must not be negative")
    return p.parse_time(name, text)


async def _body(request: Request) -> dict[str, Any]:
    return await json_object(request, _FIELDS, '{"startTimeUnixNano": "...", ...}')


def endpoint(signal: str) -> Callable[[Request], Any]:
    @api_endpoint
    async def fetch(request: Request) -> Response:
        if request.method != "POST":
            # Answered here, not left to routing: GET would else reach /api/traces/{id}.
            raise MethodNotAllowed(
                f"{request.method} is not allowed on {request.url.path}", allow=("POST",)
            )
        who = principal(request, "read")
        state = app_state(request)
        p.check_known(request.query_params, set(), attributes=False)
        doc = await _body(request)
        if doc.get("startTimeUnixNano") is None:
            raise BadRequest("startTimeUnixNano is required")
        start = _time("startTimeUnixNano", doc["startTimeUnixNano"])
        end_raw = doc.get("endTimeUnixNano")
        end = _time("endTimeUnixNano", end_raw) if end_raw is not None else time.time_ns()
        if start > end:
            raise BadRequest("startTimeUnixNano must not be after endTimeUnixNano")
        limit = doc.get("limit", 100)
        if isinstance(limit, bool) or not isinstance(limit, int | str):
            raise BadRequest("limit must be an integer from 1 to 1000")
        limit = p.parse_limit(str(limit))
        cursor = doc.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise BadRequest("cursor must be a string")
        # The window binds the cursor as given (an open end is pinned into the cursor).
        bound = [("startTimeUnixNano", str(doc["startTimeUnixNano"]))]
        if end_raw is not None:
            bound.append(("endTimeUnixNano", str(end_raw)))
        paging = begin(state.cursors, who, f"fetch.{signal}", bound, cursor)
        window = paging.window(start, end)
        query = FetchQuery(
            signal=signal,
            start_ns=window[0],
            end_ns=window[1],
            limit=limit,
            pin_seq=paging.pin,
            after=_after(signal, paging.after),
        )
        page = await run_in_threadpool(state.store.fetch, who.tenant, query)
        body = await run_in_threadpool(_ENCODERS[signal], page.items)
        last = _key(signal, page.items[-1]) if page.items else None
        body["nextCursor"] = paging.next_cursor(page.pin, window, page.more, last)
        return json_response(body)

    return fetch


def _after(
    signal: str, after: tuple[Any, ...] | None
) -> tuple[int, bytes, bytes] | tuple[int, int] | None:
    if after is None:
        return None
    if signal == "traces":
        return (int(after[0]), bytes(after[1]), bytes(after[2]))
    return (int(after[0]), int(after[1]))


ROUTES = [
    Route(f"/api/{signal}/fetch", endpoint(signal), methods=ALL_METHODS)
    for signal in ("traces", "metrics", "logs")
]
