"""What routes reach: the running server's parts, and the per-request helpers."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps

from starlette.requests import Request
from starlette.responses import Response

from otterscope.alerting.service import Alerting
from otterscope.api.auth import Authenticator, Principal
from otterscope.api.errors import error_response
from otterscope.config import Settings
from otterscope.errors import OtterscopeError
from otterscope.ingest.budget import MemoryBudget
from otterscope.ingest.writer import Writer
from otterscope.live.hub import LiveHub
from otterscope.metrics.state import MetricsState
from otterscope.query.cursor import CursorCodec
from otterscope.selfmetrics import SelfMetrics
from otterscope.store.base import Store


@dataclass
class AppState:
    settings: Settings
    store: Store
    writer: Writer
    budget: MemoryBudget
    auth: Authenticator
    metrics: SelfMetrics
    cursors: CursorCodec
    started_at: float = field(default_factory=time.time)
    ready: bool = False
    metrics_state: MetricsState | None = None  # accumulated OTLP metrics for /metrics
    live: LiveHub | None = None  # the live feed; GET /api/ws answers 503 without it
    alerting: Alerting | None = None  # rules, incidents, webhooks; /api/alerts 503 without it


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.otterscope
    return state


def principal(request: Request, scope: str) -> Principal:
    who = app_state(request).auth.authenticate(request.headers, request.query_params)
    who.require(scope)
    return who


Endpoint = Callable[[Request], Awaitable[Response]]

# Routes that answer every method themselves (405 with Allow where one is not theirs).
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def api_endpoint(fn: Endpoint) -> Endpoint:
    """Turn any ``OtterscopeError`` raised by a route into the JSON error shape."""

    @wraps(fn)
    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except OtterscopeError as exc:
            return error_response(exc)

    return wrapped
