"""``/api/alerts``: rules (configs), incidents, acknowledgement and evaluation on demand.

Reading needs ``read``; changing a rule or evaluating needs ``admin`` (a rule's webhooks
send data out of otterscope); acknowledging an incident needs ``read`` (whoever is on call).
"""

from __future__ import annotations

import functools
import time
from dataclasses import replace
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otterscope.alerting.model import (
    CONFIG_FIELDS,
    AlertConfig,
    fill_secrets,
    new_id,
    notifications,
    parse_config,
)
from otterscope.alerting.service import Alerting
from otterscope.alerting.state import AlertState
from otterscope.api.json_body import json_object
from otterscope.api.responses import json_response
from otterscope.api.state import api_endpoint, app_state, principal
from otterscope.errors import BadRequest, Unavailable
from otterscope.query import params as p

_EXAMPLE = '{"name", "metricName", "condition", "threshold", "windowSeconds", ...}'


def _alerting(request: Request) -> Alerting:
    alerting = app_state(request).alerting
    if alerting is None:
        raise Unavailable("alerting is not available")
    return alerting


@api_endpoint
async def list_configs(request: Request) -> Response:
    who = principal(request, "read")
    p.check_known(request.query_params, set(), attributes=False)
    configs = _alerting(request).state.read(
        lambda s: [c.to_api() for c in s.configs.values() if c.tenant == who.tenant]
    )
    return json_response({"configs": sorted(configs, key=lambda c: (c["name"], c["id"]))})


@api_endpoint
async def create_config(request: Request) -> Response:
    who = principal(request, "admin")
    alerting = _alerting(request)
    doc = await json_object(request, CONFIG_FIELDS, _EXAMPLE)
    rule = fill_secrets(parse_config(doc, who.tenant, new_id(), alerting.allowed_hosts, True))
    await run_in_threadpool(alerting.state.change, functools.partial(_put, rule=rule))
    return json_response(rule.to_api(with_secrets=True), status=201)


def _put(state: AlertState, rule: AlertConfig) -> None:
    state.configs[rule.id] = rule


@api_endpoint
async def get_config(request: Request) -> Response:
    who = principal(request, "read")
    p.check_known(request.query_params, set(), attributes=False)
    config_id = request.path_params["id"]
    rule = _alerting(request).state.read(lambda s: s.config(who.tenant, config_id))
    return json_response(rule.to_api())


@api_endpoint
async def replace_config(request: Request) -> Response:
    who = principal(request, "admin")
    alerting = _alerting(request)
    config_id = request.path_params["id"]
    doc = await json_object(request, CONFIG_FIELDS, _EXAMPLE)
    new = parse_config(doc, who.tenant, config_id, alerting.allowed_hosts, True)

    def replace_it(state: AlertState) -> AlertConfig:
        rule = fill_secrets(new, state.config(who.tenant, config_id))
        state.configs[config_id] = rule
        return rule

    rule = await run_in_threadpool(alerting.state.change, replace_it)
    return json_response(rule.to_api(with_secrets=True))


@api_endpoint
async def delete_config(request: Request) -> Response:
    who = principal(request, "admin")
    alerting = _alerting(request)
    config_id = request.path_params["id"]

    def delete_it(state: AlertState) -> None:
        rule = state.config(who.tenant, config_id)
        del state.configs[config_id]
        state.breaching_since.pop(config_id, None)
        # Nothing will evaluate its open incident again: it is resolved now, and notified.
        open_id = state.open_incident.pop(config_id, None)
        if open_id is not None:
            now = time.time_ns()
            incident = state.incidents[open_id]
            state.incidents[open_id] = replace(
                incident,
                state="resolved",
                resolved_ns=now,
                deliveries=incident.deliveries + notifications(rule, open_id, "resolved", now),
            )

    await run_in_threadpool(alerting.state.change, delete_it)
    return Response(status_code=204)


_STATES = ("firing", "resolved")


@api_endpoint
async def list_incidents(request: Request) -> Response:
    who = principal(request, "read")
    q = request.query_params
    p.check_known(q, {"state", "acknowledged", "limit"}, attributes=False)
    wanted = q.get("state")
    if wanted is not None and wanted not in _STATES:
        raise BadRequest("state must be firing or resolved")
    acked: bool | None = None
    if q.get("acknowledged") is not None:
        if q["acknowledged"] not in ("true", "false"):
            raise BadRequest("acknowledged must be true or false")
        acked = q["acknowledged"] == "true"
    limit = p.parse_limit(q.get("limit"))
    found = _alerting(request).state.read(
        lambda s: [
            i
            for i in s.incidents.values()
            if i.tenant == who.tenant
            and wanted in (None, i.state)
            and acked in (None, i.acknowledged)
        ]
    )
    found.sort(key=lambda i: (i.started_ns, i.id), reverse=True)
    return json_response({"incidents": [i.to_api() for i in found[:limit]]})


@api_endpoint
async def acknowledge(request: Request) -> Response:
    who = principal(request, "read")
    alerting = _alerting(request)
    incident_id = request.path_params["id"]
    doc = await json_object(request, {"acknowledgedBy"}, '{"acknowledgedBy": "..."}')
    by = doc.get("acknowledgedBy")
    if not isinstance(by, str) or not by.strip():
        raise BadRequest("acknowledgedBy must be a non-empty string")

    def ack(state: AlertState) -> dict[str, Any]:
        incident = state.incident(who.tenant, incident_id)
        if not incident.acknowledged:
            incident = replace(
                incident,
                acknowledged=True,
                acknowledged_by=by.strip(),
                acknowledged_ns=time.time_ns(),
            )
            state.incidents[incident_id] = incident
        return incident.to_api()

    return json_response(await run_in_threadpool(alerting.state.change, ack))


@api_endpoint
async def evaluate(request: Request) -> Response:
    who = principal(request, "admin")
    p.check_known(request.query_params, set(), attributes=False)
    started = time.perf_counter()
    result = await run_in_threadpool(_alerting(request).evaluate_now, who.tenant)
    return json_response(result.to_api(time.perf_counter() - started))


async def configs(request: Request) -> Response:
    handler = list_configs if request.method in ("GET", "HEAD") else create_config
    return await handler(request)


async def config(request: Request) -> Response:
    handlers = {"PUT": replace_config, "DELETE": delete_config}
    return await handlers.get(request.method, get_config)(request)


ROUTES = [
    Route("/api/alerts/configs", configs, methods=["GET", "POST"]),
    Route("/api/alerts/configs/{id}", config, methods=["GET", "PUT", "DELETE"]),
    Route("/api/alerts/incidents", list_incidents, methods=["GET"]),
    Route("/api/alerts/incidents/{id}/acknowledge", acknowledge, methods=["POST"]),
    Route("/api/alerts/evaluate", evaluate, methods=["POST"]),
]
