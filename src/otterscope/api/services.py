"""``/api/services``, ``/api/services/{name}``, ``/api/service-map`` and its cycles."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otterscope.api.responses import json_response
from otterscope.api.state import api_endpoint, app_state, principal
from otterscope.errors import NotFound
from otterscope.query import params as p
from otterscope.services import catalog, graph
from otterscope.store.base import Store

DEFAULT_WINDOW_NS = 3600 * 1_000_000_000
_WINDOW = {"start", "end"}


def _window(request: Request) -> tuple[int, int]:
    p.check_known(request.query_params, _WINDOW, attributes=False)
    return p.time_window(request.query_params, DEFAULT_WINDOW_NS)


def _services(store: Store, tenant: str, start: int, end: int) -> list[dict[str, Any]]:
    return catalog.services(store.service_activity(tenant, start, end))


def _map(
    store: Store, tenant: str, start: int, end: int
) -> tuple[list[dict[str, Any]], graph.Graph]:
    found = _services(store, tenant, start, end)
    return found, graph.build(found, store.dependencies(tenant, start, end))


@api_endpoint
async def list_services(request: Request) -> Response:
    who = principal(request, "read")
    start, end = _window(request)
    found = await run_in_threadpool(_services, app_state(request).store, who.tenant, start, end)
    return json_response({"services": found})


@api_endpoint
async def one_service(request: Request) -> Response:
    who = principal(request, "read")
    name = request.path_params["name"]
    start, end = _window(request)
    found, the_map = await run_in_threadpool(_map, app_state(request).store, who.tenant, start, end)
    service = next((s for s in found if s["name"] == name), None)
    if service is None:
        raise NotFound(f"no service {name!r} between start and end")
    upstream, downstream = graph.neighbours(the_map, name)
    return json_response({**service, "upstream": upstream, "downstream": downstream})


@api_endpoint
async def service_map(request: Request) -> Response:
    who = principal(request, "read")
    start, end = _window(request)
    _, the_map = await run_in_threadpool(_map, app_state(request).store, who.tenant, start, end)
    return json_response(graph.elements(the_map))


@api_endpoint
async def service_cycles(request: Request) -> Response:
    who = principal(request, "read")
    start, end = _window(request)
    _, the_map = await run_in_threadpool(_map, app_state(request).store, who.tenant, start, end)
    found, truncated = graph.cycles(the_map.edges)
    return json_response({"cycles": found, "truncated": truncated})


ROUTES = [
    Route("/api/services", list_services, methods=["GET"]),
    Route("/api/services/{name}", one_service, methods=["GET"]),
    Route("/api/service-map", service_map, methods=["GET"]),
    Route("/api/service-map/cycles", service_cycles, methods=["GET"]),
]
