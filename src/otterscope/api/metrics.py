"""``GET /api/metrics`` and ``GET /api/metrics/query``.

The catalog is read from the accumulated state (brought up to date first), so it lists what
``/metrics`` exposes, RED metrics from spans included, whether or not the series are stale.
A query reads the stored points (or spans) of the window; ``metrics.query`` does the
arithmetic.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otterscope.api.responses import json_response
from otterscope.api.state import api_endpoint, app_state, principal
from otterscope.errors import BadRequest, Unavailable
from otterscope.metrics import query as mq
from otterscope.metrics.accumulator import GAUGE, HISTOGRAM, SUM, SUMMARY, Accumulator, Series
from otterscope.metrics.exposition import label_names, prometheus_name
from otterscope.metrics.servicegraph import RESOURCE as SERVICE_GRAPH_RESOURCE
from otterscope.query import params as p

_TYPES = {GAUGE: "gauge", HISTOGRAM: "histogram", SUMMARY: "summary"}


def _type(s: Series) -> str:
    if s.kind == SUM:
        return "counter" if s.monotonic else "updowncounter"
    return _TYPES.get(s.kind, "gauge")


@api_endpoint
async def catalog(request: Request) -> Response:
    who = principal(request, "read")
    p.check_known(request.query_params, set(), attributes=False)
    state = app_state(request)
    if state.metrics_state is None:
        raise Unavailable("metrics are not available")
    await run_in_threadpool(state.metrics_state.refresh)
    promote = tuple(state.settings["metrics.promote_resource_attributes"])
    metrics = await run_in_threadpool(
        _catalog, state.metrics_state.accumulator, who.tenant, promote
    )
    return json_response({"metrics": metrics})


def _catalog(
    accumulator: Accumulator, tenant: str, promote: tuple[str, ...]
) -> list[dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    with accumulator.reading() as series:
        for s in series:
            # The service graph's series are for Prometheus (/metrics) only: the query API
            # computes from stored points and spans, and has none for them.
            if s.tenant != tenant or s.resource == SERVICE_GRAPH_RESOURCE:
                continue
            entry = found.setdefault(
                (s.name, _type(s)),
                {
                    "name": s.name,
                    "prometheusName": prometheus_name(s.name, s.unit, s.kind, s.monotonic),
                    "type": _type(s),
                    "unit": s.unit,
                    "description": s.description,
                    "labels": set(),
                },
            )
            entry["labels"].update(label_names(s, promote))
    return [{**entry, "labels": sorted(entry["labels"])} for _, entry in sorted(found.items())]


_QUERY_PARAMS = {"name", "agg", "groupBy", "step", "start", "end"}
DEFAULT_QUERY_WINDOW_NS = 3600 * 1_000_000_000


def parse_step(value: str) -> int:
    """A Go duration (``30s``, ``5m``) or plain seconds, as Prometheus takes it."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return p.parse_duration("step", text)
    if not (seconds > 0 and math.isfinite(seconds)) or seconds > 10**9:
        raise BadRequest("step must be a positive number of seconds or a duration like 30s")
    return int(seconds * 1e9)


def metric_query(request: Request) -> mq.MetricQuery:
    q = request.query_params
    p.check_known({k: v for k, v in q.items() if not k.startswith("label.")}, _QUERY_PARAMS)
    name = q.get("name", "").strip()
    if not name:
        raise BadRequest("name is required (an OTLP metric name or its Prometheus name)")
    agg = q.get("agg") or "sum"
    if agg not in mq.AGGREGATIONS:
        raise BadRequest(f"agg must be one of {', '.join(mq.AGGREGATIONS)}")
    labels = []
    for key, value in q.multi_items():
        if key.startswith("label."):
            if not key[6:]:
                raise BadRequest("label.<key>: the label key is empty")
            labels.append((key[6:], value))
    group_by = tuple(g.strip() for v in q.getlist("groupBy") for g in v.split(",") if g.strip())
    start, end = p.time_window(q, DEFAULT_QUERY_WINDOW_NS)
    step = parse_step(q["step"]) if q.get("step") else mq.default_step(start, end)
    mq.check_steps(start, end, step)
    return mq.MetricQuery(name, agg, start, end, step, tuple(labels), group_by)


@api_endpoint
async def query(request: Request) -> Response:
    who = principal(request, "read")
    parsed = metric_query(request)
    state = app_state(request)
    if state.metrics_state is None:
        raise Unavailable("metrics are not available")
    await run_in_threadpool(state.metrics_state.refresh)
    accumulator = state.metrics_state.accumulator
    series = await run_in_threadpool(
        mq.run,
        state.store,
        accumulator.metric_names(who.tenant),
        who.tenant,
        parsed,
        accumulator.excluded,
    )
    return json_response({"series": series})


ROUTES = [
    Route("/api/metrics", catalog, methods=["GET"]),
    Route("/api/metrics/query", query, methods=["GET"]),
]
