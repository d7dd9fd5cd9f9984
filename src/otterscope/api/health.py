"""``/health``, ``/ready`` and ``/metrics``."""

from __future__ import annotations

import itertools
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from otterscope import __version__
from otterscope.api.responses import json_response
from otterscope.api.state import AppState, api_endpoint, app_state, principal
from otterscope.errors import Forbidden, Unauthorized
from otterscope.metrics.exposition import render
from otterscope.selfmetrics import alert_gauges


def _status(state: AppState) -> str:
    if state.writer.draining:
        return "draining"
    if not state.ready:
        return "starting"
    # Queries still work, but nothing can be written: monitoring must see it.
    return "disk_full" if state.store.disk_full is not None else "ok"


@api_endpoint
async def health(request: Request) -> Response:
    """Whether the server is up for anyone; the caller's own ingest figures for a read
    token; the server-wide figures (queue, disk, store, ingest sequence) for admin only,
    so one tenant never learns another's volumes."""
    state = app_state(request)
    status = _status(state)
    try:
        who = principal(request, "read")
    except (Unauthorized, Forbidden):
        # Without a token only the minimal answer: whether the server is up. A token
        # without 'read' gets the same, never less than no token at all.
        return json_response({"status": status})
    m = state.metrics
    body: dict[str, Any] = {
        "status": status,
        "version": __version__,
        "uptimeSeconds": round(time.time() - state.started_at, 3),
        "tenant": who.tenant,
        "ingest": {
            "receivedItems": {
                s: int(
                    sum(
                        m.received_items.value(tenant=who.tenant, signal=s, transport=t)
                        for t in ("http", "grpc")
                    )
                )
                for s in ("traces", "logs", "metrics")
            },
            "rejectedItems": int(m.rejected_items.total(who.tenant)),
        },
    }
    if "admin" not in who.scopes:
        return json_response(body)
    stats = await run_in_threadpool(state.store.stats)
    body["ingest"].update(
        queueItems=state.writer.queued_items,
        queueBytes=state.budget.used,
        budgetBytes=state.budget.total,
        lastCommitSeconds=state.writer.last_commit_seconds,
    )
    body["store"] = {
        "diskBytes": stats.disk_bytes,
        "hotRows": stats.hot_rows,
        "sealedFiles": stats.sealed_files,
        "lastIngestSeq": stats.last_seq,
        "diskFull": state.store.disk_full,
    }
    return json_response(body)


async def ready(request: Request) -> Response:
    state = app_state(request)
    status = _status(state)
    if status == "ok":
        return json_response({"status": "ready"})
    reason = status
    if status == "disk_full":
        reason = f"the disk of the data directory is full: {state.store.disk_full}"
    return json_response({"status": "not ready", "reason": reason}, status=503)


@api_endpoint
async def metrics(request: Request) -> Response:
    """The tenant's accumulated OTLP metrics, then otterscope's own: the tenant's figures,
    and the server-wide ones for an admin token."""
    who = principal(request, "read")
    state = app_state(request)
    openmetrics = wants_openmetrics(request.headers.get("accept", ""))
    chunks: list[bytes] = []
    if state.metrics_state is not None:
        # Fold in what was committed since the last scrape: every acknowledged point shows.
        await run_in_threadpool(state.metrics_state.refresh)
        accumulator = state.metrics_state.accumulator
        stale = int(state.settings["metrics.stale_after"] * 1e9)
        promote = tuple(state.settings["metrics.promote_resource_attributes"])

        def exposition() -> list[bytes]:
            # Off the event loop (100,000 series take about a second), and encoded in
            # pieces: the whole text is never held as one string besides its bytes.
            with accumulator.reading() as series:
                mine = [s for s in series if s.tenant == who.tenant]
                lines = render(mine, time.time_ns(), stale, openmetrics, promote)
                out = []
                while piece := list(itertools.islice(lines, 4096)):
                    out.append(("\n".join(piece) + "\n").encode())
                return out

        chunks = await run_in_threadpool(exposition)
    chunks.append(state.metrics.render(who.tenant, "admin" in who.scopes, openmetrics).encode())
    if state.alerting is not None:
        chunks.append(alert_gauges(state.alerting.state.firing_by_rule(who.tenant)).encode())
    if openmetrics:
        chunks.append(b"# EOF\n")
    return StreamingResponse(
        iter(chunks),
        media_type=OPENMETRICS if openmetrics else PROMETHEUS_TEXT,
        headers={"Vary": "Accept"},
    )


OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def wants_openmetrics(accept: str) -> bool:
    """Whether an Accept header prefers OpenMetrics over the Prometheus text format (as a
    Prometheus scrape's does); a tie goes to OpenMetrics, which the client named."""
    best = {"openmetrics": 0.0, "text": 0.0}
    for part in accept.split(","):
        media, *options = (x.strip() for x in part.split(";"))
        q = 1.0
        for option in options:
            key, _, value = option.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media == "application/openmetrics-text":
            best["openmetrics"] = max(best["openmetrics"], q)
        elif media in ("text/plain", "text/*", "*/*"):
            best["text"] = max(best["text"], q)
    return best["openmetrics"] > 0 and best["openmetrics"] >= best["text"]


ROUTES = [
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
