"""``POST /api/query``: read-only SQL over the caller's own data, in a sandbox process."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otterscope.api.json_body import json_object
from otterscope.api.state import api_endpoint, app_state, principal
from otterscope.errors import BadRequest, Overloaded
from otterscope.query.sql_runner import SqlLimits, run_sql

WORKSPACE = "sql-sandbox"


def workspace(data_dir: Path) -> Path:
    """Where exports for the sandbox go; emptied at start-up (a crash may leave some)."""
    return data_dir / WORKSPACE


def clear_workspace(data_dir: Path) -> None:
    if workspace(data_dir).exists():
        shutil.rmtree(workspace(data_dir))


@dataclass
class Running:
    """SQL queries running now (changed on the event loop only)."""

    count: int = 0


def _running(request: Request) -> Running:
    shared = request.app.state
    if not hasattr(shared, "sql_running"):
        shared.sql_running = Running()
    found: Running = shared.sql_running
    return found


@api_endpoint
async def query(request: Request) -> Response:
    who = principal(request, "admin")
    doc = await json_object(request, {"query"}, '{"query": "SELECT ..."}')
    text = doc.get("query")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest('"query" must be a non-empty string of SQL')
    state = app_state(request)
    s = state.settings
    limits = SqlLimits(
        s["sql.timeout"], s["sql.max_rows"], s["sql.memory_limit"], s["sql.max_bytes"]
    )
    now = _running(request)
    if now.count >= s["sql.max_concurrent"]:
        # Each one is a process with its own memory: more at once would multiply it.
        raise Overloaded(
            f"{now.count} SQL queries are running, the most sql.max_concurrent allows; "
            "retry shortly",
            retry_after=1.0,
        )
    now.count += 1
    try:
        answer = await run_in_threadpool(
            run_sql, state.store, who.tenant, text, limits, workspace(s.data_dir)
        )
    finally:
        now.count -= 1
    return Response(answer, media_type="application/json")


ROUTES = [Route("/api/query", query, methods=["POST"])]
