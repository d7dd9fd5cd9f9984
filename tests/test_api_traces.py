"""GET /api/traces summaries over a real server: which span names a trace."""

from __future__ import annotations

import httpx

from tests.conftest import RunningServer
from tests.payloads import new_trace_id, now_ns, post, span, traces_body


def _summary(server: RunningServer, trace_id: str) -> dict[str, object]:
    r = httpx.get(f"{server.url}/api/traces", params={"service": "worker"}, timeout=30)
    assert r.status_code == 200, r.text
    found = [t for t in r.json()["traces"] if t["traceId"] == trace_id]
    assert len(found) == 1
    return dict(found[0])


def test_a_frozen_clock_trace_without_its_root_is_named_by_its_topmost_span(
    server: RunningServer,
) -> None:
    # A Cloudflare Worker's clock stands still inside a request: every span of the
    # invocation has the same start and end. The caller's span never arrives.
    trace_id = new_trace_id()
    t = now_ns()
    missing_parent = "f" * 16
    handler, compute, kv = "9" * 16, "5" * 16, "1" * 16  # children sort before parents
    spans = [
        span(trace_id, kv, "kv get", t, 0, parent=compute, kind=3),
        span(trace_id, compute, "compute", t, 0, parent=handler, kind=1),
        span(trace_id, handler, "fetchHandler GET", t, 0, parent=missing_parent),
    ]
    post(server.url, "traces", traces_body("worker", spans))
    summary = _summary(server, trace_id)
    assert summary["rootSpanMissing"] is True
    assert (summary["rootService"], summary["rootName"]) == ("worker", "fetchHandler GET")
    assert summary["spanCount"] == 3


def test_the_root_span_names_the_trace_even_when_a_child_ties_with_it(
    server: RunningServer,
) -> None:
    trace_id = new_trace_id()
    t = now_ns()
    root, child = "8" * 16, "2" * 16
    spans = [
        span(trace_id, child, "compute", t, 10**6, parent=root, kind=1),
        span(trace_id, root, "fetchHandler GET", t, 10**6),
    ]
    post(server.url, "traces", traces_body("worker", spans))
    summary = _summary(server, trace_id)
    assert summary["rootSpanMissing"] is False
    assert summary["rootName"] == "fetchHandler GET"


def test_among_several_topmost_spans_the_earliest_names_the_trace(
    server: RunningServer,
) -> None:
    trace_id = new_trace_id()
    t = now_ns()
    a, b, c = "3" * 16, "4" * 16, "2" * 16
    spans = [
        span(trace_id, c, "child of late", t - 5 * 10**6, 10**6, parent=b),
        span(trace_id, b, "late top", t, 10**6, parent="e" * 16),
        span(trace_id, a, "early top", t - 10**6, 10**6, parent="d" * 16),
    ]
    post(server.url, "traces", traces_body("worker", spans))
    summary = _summary(server, trace_id)
    # The clock-skewed child starts first, but its parent is in the trace.
    assert summary["rootSpanMissing"] is True
    assert summary["rootName"] == "early top"
