"""Trace compare, the flame graph, statistics and OTLP/JSON views, and opening a trace from an
OTLP/JSON file, in Chromium against a real server fed by the OpenTelemetry SDK.

Two checkout traces are sent with exact span times: B calls "load cart" 50 ms slower, adds a
"recommend" call and no longer writes the audit record that failed in A.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Problems
from tests.conftest import RunningServer

MS = 1_000_000
SERVICES = ("cmp-web", "cmp-db", "cmp-pricing", "cmp-audit", "cmp-recs")


@dataclass(frozen=True)
class Sent:
    trace_id: str
    spans: dict[str, str]
    """Span name (with a #n suffix for repeats) → span id."""


@dataclass(frozen=True)
class Pair:
    a: Sent
    b: Sent


# (service, name, start ms, end ms, error) under the root; the root is cmp-web "GET /cart".
A_CHILDREN = [
    ("cmp-db", "load cart", 5, 15, False),
    ("cmp-pricing", "price item", 20, 25, False),
    ("cmp-pricing", "price item", 30, 37, False),
    ("cmp-audit", "write audit", 50, 60, True),
]
B_CHILDREN = [
    ("cmp-db", "load cart", 5, 65, False),
    ("cmp-pricing", "price item", 70, 75, False),
    ("cmp-pricing", "price item", 80, 87, False),
    ("cmp-recs", "recommend", 90, 140, False),
]


def _send(
    providers: dict[str, TracerProvider],
    t0: int,
    root_ms: int,
    children: list[tuple[str, str, int, int, bool]],
) -> Sent:
    web = providers["cmp-web"].get_tracer("compare.tests")
    root = web.start_span("GET /cart", kind=SpanKind.SERVER, start_time=t0)
    ctx = trace.set_span_in_context(root)
    ids: dict[str, str] = {"GET /cart": f"{root.get_span_context().span_id:016x}"}
    for service, name, start, end, error in children:
        tracer = providers[service].get_tracer("compare.tests")
        span = tracer.start_span(
            name, context=ctx, kind=SpanKind.CLIENT, start_time=t0 + start * MS
        )
        if error:
            span.set_status(StatusCode.ERROR, "audit store down")
        span.end(end_time=t0 + end * MS)
        key = name if name not in ids else f"{name}#2"
        ids[key] = f"{span.get_span_context().span_id:016x}"
    root.end(end_time=t0 + root_ms * MS)
    return Sent(trace_id=f"{root.get_span_context().trace_id:032x}", spans=ids)


def _wait_for(url: str, trace_id: str, spans: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r = httpx.get(f"{url}/api/traces/{trace_id}")
        if r.status_code == 200 and len(r.json()["spans"]) == spans:
            return
        time.sleep(0.1)
    raise AssertionError(f"trace {trace_id} did not arrive with {spans} spans")


@pytest.fixture(scope="module")
def pair(ui_server: RunningServer) -> Pair:
    providers = {}
    for service in SERVICES:
        tp = TracerProvider(resource=Resource.create({"service.name": service}))
        tp.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{ui_server.url}/v1/traces", timeout=10))
        )
        providers[service] = tp
    t0 = time.time_ns() - 300 * 10**9
    try:
        a = _send(providers, t0, 100, A_CHILDREN)
        b = _send(providers, t0 + 10**9, 150, B_CHILDREN)
    finally:
        for tp in providers.values():
            if not tp.force_flush(10_000):
                raise RuntimeError("the OpenTelemetry SDK could not flush to the server")
            tp.shutdown()
    _wait_for(ui_server.url, a.trace_id, 5)
    _wait_for(ui_server.url, b.trace_id, 5)
    return Pair(a=a, b=b)


def _node(page: Page, label: str) -> Locator:
    return page.get_by_role("treeitem").filter(has_text=label)


def _expect_node(page: Page, label: str, state: str, **columns: str) -> Locator:
    """The diff tree's row for ``label``: its state and the text of the given columns."""
    node = _node(page, label)
    expect(node).to_have_attribute("data-state", state)
    for column, text in columns.items():
        expect(node.locator(f'[data-col="{column}"]')).to_have_text(text)
    return node


def test_compare_shows_added_removed_and_slower_spans(
    page: Page, ui_server: RunningServer, pair: Pair
) -> None:
    page.goto(f"{ui_server.url}/ui/compare/{pair.a.trace_id}/{pair.b.trace_id}")
    expect(page.locator('[data-ready="compare"]')).to_be_attached()
    expect(page.get_by_test_id("compare-card-A")).to_contain_text("cmp-web: GET /cart")
    expect(page.get_by_test_id("compare-card-A")).to_contain_text("5 spans")
    expect(page.get_by_test_id("compare-card-A")).to_contain_text("1 errors")
    expect(page.get_by_test_id("compare-card-B")).to_contain_text(pair.b.trace_id)

    added = _expect_node(page, "cmp-recs: recommend", "added", countA="0", countB="1")
    expect(added).to_contain_text("added")  # the state is written, not only coloured
    # An en dash: B has no such span.
    _expect_node(page, "cmp-audit: write audit", "removed", meanB="\u2013")
    slower = _expect_node(
        page, "cmp-db: load cart", "changed", meanA="10ms", meanB="60ms", delta="+50ms (+500%)"
    )
    same = _expect_node(page, "cmp-pricing: price item", "same", countA="2", countB="2")
    root = _node(page, "cmp-web: GET /cart")
    expect(root).to_have_attribute("aria-level", "1")
    expect(slower).to_have_attribute("aria-level", "2")
    expect(page.get_by_label("Legend")).to_contain_text("only in B")

    # Counting calls only (Jaeger's rule), the slower call is no longer a change.
    page.get_by_label("Changed means").select_option("")
    expect(slower).to_have_attribute("data-state", "same")

    # Only differences hides the unchanged pricing calls.
    page.get_by_label("Only differences").check()
    expect(same).to_have_count(0)
    expect(added).to_have_count(1)

    # Keyboard: the tree takes focus, Left on the root collapses it.
    page.get_by_role("tree").focus()
    page.keyboard.press("ArrowLeft")
    expect(root).to_have_attribute("aria-expanded", "false")
    expect(added).to_have_count(0)
    page.keyboard.press("ArrowRight")
    expect(added).to_have_count(1)

    # The pair's flame graphs side by side; a click in A's selects there (spanA=).
    page.get_by_role("tab", name="Flame graphs").click()
    canvases = page.get_by_test_id("flame-canvas")
    expect(canvases).to_have_count(2)
    box = canvases.first.bounding_box()
    assert box is not None
    canvases.first.click(position={"x": box["width"] * 0.5, "y": 10})
    expect(page).to_have_url(re.compile(f"[?&]spanA={pair.a.spans['GET /cart']}"))
    page.get_by_role("tab", name="Statistics").click()
    expect(page.get_by_test_id("trace-stats")).to_have_count(2)
    page.get_by_role("tab", name="Structure").click()

    page.get_by_role("button", name="Swap A and B").click()
    expect(page).to_have_url(re.compile(f"/ui/compare/{pair.b.trace_id}/{pair.a.trace_id}"))
    expect(_node(page, "cmp-recs: recommend")).to_have_attribute("data-state", "removed")
    expect(_node(page, "cmp-audit: write audit")).to_have_attribute("data-state", "added")
    page.go_back()
    expect(page).to_have_url(re.compile(f"/ui/compare/{pair.a.trace_id}/{pair.b.trace_id}"))
    expect(_node(page, "cmp-recs: recommend")).to_have_attribute("data-state", "added")


def test_compare_shows_a_missing_trace_in_place(
    page: Page, ui_server: RunningServer, pair: Pair, problems: Problems
) -> None:
    problems.allow(r"status of 404")
    missing = "0123456789abcdef0123456789abcdef"
    page.goto(f"{ui_server.url}/ui/compare/{pair.a.trace_id}/{pair.b.trace_id}")
    expect(page.locator('[data-ready="compare"]')).to_be_attached()
    page.get_by_label("Trace B").fill(missing)
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page).to_have_url(re.compile(f"/ui/compare/{pair.a.trace_id}/{missing}$"))
    card = page.get_by_test_id("compare-card-B")
    expect(card.get_by_role("alert")).to_contain_text(f"Trace B ({missing}) was not found")
    expect(card).to_contain_text("HTTP 404")
    expect(page.get_by_test_id("compare-card-A")).to_contain_text("cmp-web: GET /cart")
    expect(page.get_by_test_id("trace-diff")).to_have_count(0)


def test_flame_graph_selects_and_zooms(page: Page, ui_server: RunningServer, pair: Pair) -> None:
    page.goto(f"{ui_server.url}/ui/traces/{pair.a.trace_id}?view=flamegraph")
    canvas = page.get_by_test_id("flame-canvas")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box is not None
    # Canvas pixels really are device pixels: the backing store follows devicePixelRatio.
    dpr = page.evaluate("window.devicePixelRatio")
    size = canvas.evaluate("c => [c.width, c.height]")
    assert size[0] == round(box["width"] * dpr)
    # The trace spans 0..100 ms; "load cart" (5..15 ms) is on the second 20-px row.
    canvas.hover(position={"x": box["width"] * 0.10, "y": 30})
    tooltip = page.get_by_test_id("flame-tooltip")
    expect(tooltip).to_contain_text("load cart")
    expect(tooltip).to_contain_text("cmp-db")
    expect(tooltip).to_contain_text("Duration 10ms")
    expect(tooltip).to_contain_text("Self time 10ms")
    canvas.click(position={"x": box["width"] * 0.10, "y": 30})
    expect(page).to_have_url(re.compile(f"[?&]span={pair.a.spans['load cart']}"))

    # The root's self time: 100 ms minus its children's 10 + 5 + 7 + 10 ms.
    canvas.hover(position={"x": box["width"] * 0.45, "y": 10})
    expect(tooltip).to_contain_text("Self time 68ms")
    canvas.hover(position={"x": box["width"] * 0.55, "y": 30})
    expect(tooltip).to_contain_text("write audit")
    expect(tooltip).to_contain_text("Error")

    # Zoom into the audit span: it fills the width and the breadcrumb leads back.
    canvas.dblclick(position={"x": box["width"] * 0.55, "y": 30})
    crumbs = page.get_by_role("navigation", name="Flame graph zoom")
    expect(crumbs).to_contain_text("cmp-audit: write audit")
    canvas.hover(position={"x": box["width"] * 0.02, "y": 30})
    expect(tooltip).to_contain_text("write audit")
    # Ancestors span the width above the zoomed span.
    canvas.hover(position={"x": box["width"] * 0.98, "y": 10})
    expect(tooltip).to_contain_text("GET /cart")
    crumbs.get_by_role("button", name="Whole trace").click()
    expect(crumbs.get_by_role("button", name="Whole trace")).to_be_disabled()
    canvas.hover(position={"x": box["width"] * 0.02, "y": 30})
    expect(tooltip).to_have_count(0)

    # Keyboard: Up selects the parent of the selected span.
    canvas.focus()
    page.keyboard.press("ArrowUp")
    expect(page).to_have_url(re.compile(f"[?&]span={pair.a.spans['GET /cart']}"))
    page.keyboard.press("ArrowDown")
    expect(page).to_have_url(re.compile(f"[?&]span={pair.a.spans['load cart']}"))


def test_statistics_match_the_sent_spans(page: Page, ui_server: RunningServer, pair: Pair) -> None:
    page.goto(f"{ui_server.url}/ui/traces/{pair.a.trace_id}?view=stats")
    table = page.get_by_test_id("trace-stats")
    expect(table).to_be_visible()

    def row(text: str) -> Locator:
        return table.get_by_test_id("stats-row").filter(has_text=text)

    def cells(text: str) -> dict[str, str]:
        r = row(text)
        expect(r).to_have_count(1)
        found: dict[str, str] = r.evaluate(
            "tr => Object.fromEntries([...tr.querySelectorAll('td[data-col]')]"
            ".map(td => [td.dataset.col, td.textContent]))"
        )
        return found

    pricing = cells("cmp-pricing")
    assert pricing["count"] == "2"
    assert pricing["totalUs"] == "12ms"
    assert pricing["avgUs"] == "6ms"
    assert pricing["minUs"] == "5ms"
    assert pricing["maxUs"] == "7ms"
    assert pricing["errorCount"] == "0"
    assert cells("cmp-audit")["errorCount"] == "1"
    web = cells("cmp-web")
    assert web["totalUs"] == "100ms"
    assert web["selfUs"] == "68ms"
    assert web["selfPercent"] == "68.0%"

    # Largest total first (ties by name); a click on Spans sorts by count, the busiest first.
    names = table.get_by_test_id("stats-row").locator("td:first-child")
    expect(names).to_have_text(["cmp-web", "cmp-pricing", "cmp-audit", "cmp-db"])
    table.get_by_role("button", name="Spans").click()
    expect(names.first).to_have_text("cmp-pricing")
    table.get_by_role("button", name="Spans").click()
    expect(names.last).to_have_text("cmp-pricing")

    table.get_by_label("Service and operation").check()
    op = row("price item")
    expect(op).to_contain_text("cmp-pricing")
    expect(op.locator('[data-col="count"]')).to_have_text("2")


def test_json_download_and_reopening_the_file(
    page: Page, ui_server: RunningServer, pair: Pair, tmp_path: Path
) -> None:
    a = pair.a.trace_id
    page.goto(f"{ui_server.url}/ui/traces/{a}?view=json")
    view = page.get_by_test_id("trace-json")
    expect(view).to_contain_text('"resourceSpans"')
    with page.expect_download() as info:
        view.get_by_role("button", name=f"Download trace-{a}.json").click()
    download = info.value
    assert download.suggested_filename == f"trace-{a}.json"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    body = json.loads(saved.read_text())
    assert body == httpx.get(f"{ui_server.url}/api/traces/{a}?format=otlp").json()
    spans = [s for rs in body["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert {s["spanId"] for s in spans} == set(pair.a.spans.values())

    # The downloaded file, chosen on the compare page, becomes trace A: it matches the stored
    # trace A node for node.
    page.goto(f"{ui_server.url}/ui/compare/{pair.b.trace_id}/{a}")
    expect(page.locator('[data-ready="compare"]')).to_be_attached()
    page.get_by_test_id("dropzone-input").set_input_files(saved)
    expect(page).to_have_url(re.compile(f"/ui/compare/{a}/{a}\\?sourceA=file$"))
    card = page.get_by_test_id("compare-card-A")
    expect(card).to_contain_text("from a file")
    expect(page.locator('[data-ready="compare"]')).to_be_attached()
    # Four nodes: the two pricing calls fold into one (service: operation) node.
    expect(page.get_by_role("treeitem")).to_have_count(4)
    expect(page.locator('[role="treeitem"][data-state="same"]')).to_have_count(4)

    # Its link opens the file's trace in the trace view, drawn from the file's spans.
    card.get_by_role("link", name="cmp-web: GET /cart").click()
    expect(page).to_have_url(re.compile(f"/ui/traces/{a}\\?source=file$"))
    expect(page.locator('[data-ready="trace"]')).to_be_attached()
    expect(page.get_by_role("treeitem")).to_have_count(5)
    # Its JSON tab shows the file's spans, without asking the server.
    page.get_by_role("tab", name="OTLP/JSON").click()
    expect(page.get_by_test_id("trace-json")).to_contain_text("Spans opened from a file")
    expect(page.get_by_test_id("trace-json")).to_contain_text(pair.a.spans["write audit"])


def test_a_file_with_several_traces_lists_them_and_a_bad_file_says_why(
    page: Page, ui_server: RunningServer, pair: Pair, tmp_path: Path
) -> None:
    # The Collector file exporter's format: one TracesData per line.
    lines = [
        json.dumps(httpx.get(f"{ui_server.url}/api/traces/{t}?format=otlp").json())
        for t in (pair.a.trace_id, pair.b.trace_id)
    ]
    several = tmp_path / "export.jsonl"
    several.write_text("\n".join(lines) + "\n")
    page.goto(f"{ui_server.url}/ui/compare/{pair.a.trace_id}/{pair.b.trace_id}")
    expect(page.locator('[data-ready="compare"]')).to_be_attached()
    # Dropped, not chosen: the drop event carries the file as a browser's drag would.
    dropped = page.evaluate_handle(
        "text => { const dt = new DataTransfer();"
        " dt.items.add(new File([text], 'export.jsonl')); return dt; }",
        several.read_text(),
    )
    page.get_by_test_id("dropzone").dispatch_event("drop", {"dataTransfer": dropped})
    listed = page.get_by_test_id("dropzone-traces")
    expect(listed).to_contain_text("export.jsonl holds 2 traces")
    expect(listed.get_by_role("link")).to_have_count(2)
    expect(listed).to_contain_text("1 errors")
    listed.get_by_role("link").nth(1).click()
    expect(page).to_have_url(
        re.compile(f"/ui/compare/{pair.b.trace_id}/{pair.b.trace_id}\\?sourceA=file$")
    )
    expect(page.get_by_test_id("compare-card-A")).to_contain_text("from a file")

    bad = tmp_path / "notes.json"
    bad.write_text('{"resourceLogs": []}')
    page.get_by_test_id("dropzone-input").set_input_files(bad)
    error = page.get_by_test_id("dropzone-error")
    expect(error).to_contain_text("notes.json could not be opened")
    expect(error).to_contain_text("not OTLP/JSON trace data")
    garbage = tmp_path / "garbage.json"
    garbage.write_text("hello")
    page.get_by_test_id("dropzone-input").set_input_files(garbage)
    expect(error).to_contain_text("the file is not JSON")
