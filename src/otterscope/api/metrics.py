"""``GET /api/metrics``: the metrics a tenant has, with their Prometheus names and labels.

Read from the accumulated state (brought up to date first), so it lists what ``/metrics``
exposes, RED metrics from spans included, whether or not the series are stale.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otterscope.api.responses import json_response
from otterscope.api.state import api_endpoint, app_state, principal
from otterscope.errors import Unavailable
from otterscope.metrics.accumulator import GAUGE, HISTOGRAM, SUM, SUMMARY, Series
from otterscope.metrics.exposition import label_names, prometheus_name
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
    _, series = state.metrics_state.accumulator.snapshot()
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for s in series:
        if s.tenant != who.tenant:
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
        entry["labels"].update(label_names(s, orjson.loads(s.resource)))
    metrics = [{**entry, "labels": sorted(entry["labels"])} for _, entry in sorted(found.items())]
    return json_response({"metrics": metrics})


ROUTES = [Route("/api/metrics", catalog, methods=["GET"])]
