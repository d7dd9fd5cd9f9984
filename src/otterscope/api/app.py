"""The HTTP application: every route on the one HTTP port, behind the Guard."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from otterscope.api import (
    alerts,
    attributes,
    compat,
    fetch,
    health,
    jaeger,
    jaeger_v3,
    live,
    logs,
    metrics,
    openapi,
    services,
    sql,
    tempo,
    traces,
    ui,
)
from otterscope.api.errors import error_response
from otterscope.api.state import ALL_METHODS, AppState, Endpoint
from otterscope.errors import MethodNotAllowed, NotFound, OtterscopeError
from otterscope.ingest.http import OtlpHttpReceiver

log = logging.getLogger("otterscope.api")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(f"no route for {request.url.path}"))
    if exc.status_code == 405:
        allow = tuple((exc.headers or {}).get("Allow", "").replace(" ", "").split(","))
        return error_response(
            MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}", allow=allow)
        )
    return error_response(OtterscopeError(str(exc.detail)))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(OtterscopeError("internal error; the server log has the details"))


_SLASHED_OTLP = {f"/v1/{signal}/" for signal in ("traces", "metrics", "logs")}


class _OtlpTrailingSlash:
    """``POST /v1/traces/`` is served as ``/v1/traces``: an exporter endpoint configured
    with a trailing slash would otherwise get the router's redirect, which exporters do not
    follow. Rewritten before routing, so each OTLP path stays one route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in _SLASHED_OTLP:
            path = scope["path"][:-1]
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client left, or was cut off for sending too slowly, before its body was in: no
    # one reads this answer, and it is no server error.
    log.debug("client went away during %s %s", request.method, request.url.path)
    return Response(status_code=400)


def _traces_root(receiver: OtlpHttpReceiver) -> Endpoint:
    """``/v1/traces``: OTLP export on POST, otel-worker's trace list on GET."""
    otlp: Endpoint = receiver.endpoint("traces", ("GET",))  # type: ignore[assignment]

    async def dispatch(request: Request) -> Response:
        if request.method in ("GET", "HEAD"):
            return await compat.list_traces(request)
        return await otlp(request)

    return dispatch


def build_app(state: AppState, receiver: OtlpHttpReceiver) -> ASGIApp:
    routes: list[BaseRoute] = [
        Route(f"/v1/{signal}", receiver.endpoint(signal), methods=ALL_METHODS)  # type: ignore[arg-type]
        for signal in ("metrics", "logs")
    ]
    routes.append(Route("/v1/traces", _traces_root(receiver), methods=ALL_METHODS))
    # fetch before traces: /api/traces/fetch is not a trace id.
    routes += health.ROUTES + fetch.ROUTES + traces.ROUTES + logs.ROUTES
    routes += compat.ROUTES + attributes.ROUTES + metrics.ROUTES
    routes += live.ROUTES
    routes += services.ROUTES
    routes += jaeger.ROUTES + jaeger_v3.ROUTES + tempo.ROUTES
    routes += sql.ROUTES
    routes += alerts.ROUTES
    routes += openapi.ROUTES
    routes += ui.ROUTES
    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            Exception: _unexpected,
        },
        middleware=[Middleware(_OtlpTrailingSlash)],
    )
    app.state.otterscope = state
    return app
