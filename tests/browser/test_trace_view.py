"""The trace view in Chromium against a real server fed by the OpenTelemetry SDK: the tree
and bars, selection by mouse and keyboard, span details with typed attributes, events,
links and logs, find, collapse, deep links, and a 50,000-span trace."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Problems
from tests.browser.data import Demo
from tests.conftest import RunningServer

READY = '[data-ready="trace"]'
TREE = '[data-testid="timeline-scroll"]'
# True when span rows cover the scroller's visible box (at least 10 of them inside it).
ROWS_IN_VIEW = """sel => {
  const el = document.querySelector(sel);
  const box = el.getBoundingClientRect();
  let inside = 0;
  for (const row of el.querySelectorAll('[role="treeitem"]')) {
    const r = row.getBoundingClientRect();
    if (r.bottom > box.top && r.top < box.bottom) inside++;
  }
  return inside >= 10;
}"""


def open_trace(
    page: Page, server: RunningServer, trace_id: str, query: str = "", timeout: float = 5_000
) -> None:
    page.goto(f"{server.url}/ui/traces/{trace_id}{query}")
    expect(page.locator(READY)).to_be_attached(timeout=timeout)


def row(page: Page, name: str) -> Locator:
    return page.get_by_role("treeitem").filter(has=page.locator(".tv-name", has_text=name))


def url_query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def test_trace_shows_its_tree_bars_and_header(
    page: Page, ui_server: RunningServer, demo: Demo
) -> None:
    failing = demo.traces[1]
    open_trace(page, ui_server, failing.trace_id)
    items = page.get_by_role("treeitem")
    expect(items).to_have_count(5)
    expect(page.get_by_role("tree")).to_be_visible()
    # Levels follow the call tree: root, client span, server span, then its children.
    expect(row(page, "GET /checkout")).to_have_attribute("aria-level", "1")
    expect(row(page, "PlaceOrder")).to_have_attribute("aria-level", "3")
    expect(row(page, "Charge")).to_have_attribute("aria-level", "4")
    expect(row(page, "GET /checkout")).to_have_attribute("aria-expanded", "true")
    expect(page.locator(f"{TREE} .tv-bar")).to_have_count(5)
    expect(row(page, "Charge")).to_have_class(re.compile(r"\berror\b"))
    # The span event of PlaceOrder is a mark on its bar with the event's name as tooltip.
    expect(row(page, "PlaceOrder").locator(".tv-event")).to_have_attribute("title", "cart.loaded")
    # The critical path runs through the root.
    expect(row(page, "GET /checkout").locator(".tv-crit").first).to_be_attached()
    header = page.get_by_test_id("trace-header")
    expect(header).to_contain_text("frontend")
    expect(header).to_contain_text("GET /checkout")
    expect(page.get_by_test_id("trace-span-count")).to_have_text("5")
    expect(page.get_by_test_id("trace-error-count")).to_have_text("2")
    for service in demo.services:
        expect(header.get_by_role("listitem").filter(has_text=service)).to_have_count(1)
    expect(page.get_by_role("tablist").get_by_role("tab", name="Timeline")).to_have_attribute(
        "aria-selected", "true"
    )


def test_click_selects_and_details_show_typed_attributes_and_events(
    page: Page, ui_server: RunningServer, demo: Demo
) -> None:
    trace = demo.traces[1]
    open_trace(page, ui_server, trace.trace_id)
    row(page, "PlaceOrder").click()
    expect(row(page, "PlaceOrder")).to_have_attribute("aria-selected", "true")
    details = page.get_by_test_id("span-details")
    expect(details).to_contain_text("PlaceOrder")
    order_items = details.locator('tr[data-attr="order.items"]')
    expect(order_items.get_by_test_id("attr-type")).to_have_text("int")
    expect(details.get_by_test_id("span-kind")).to_have_text("server")
    expect(details.get_by_test_id("span-events")).to_contain_text("cart.loaded")
    expect(details.get_by_test_id("span-events").locator('tr[data-attr="items"]')).to_contain_text(
        "int"
    )
    selected = url_query(page)["span"][0]
    assert details.get_attribute("data-span-id") == selected

    row(page, "Charge").click()
    expect(details.locator('tr[data-attr="amount"]').get_by_test_id("attr-type")).to_have_text(
        "double"
    )
    expect(details.get_by_test_id("span-status")).to_contain_text("card declined")
    expect(details.get_by_test_id("span-events")).to_contain_text("exception")
    resource = details.get_by_role("table", name="Resource attributes")
    expect(resource.locator('tr[data-attr="service.name"]')).to_contain_text("payments")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = details.get_by_role("button", name="Copy Span ID")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == trace.logged_span_id
    # Clicking a row is a step in history: back returns to the previous span.
    page.go_back()
    expect(row(page, "PlaceOrder")).to_have_attribute("aria-selected", "true")


def test_keyboard_moves_selection_collapses_and_opens_details(
    page: Page, ui_server: RunningServer, demo: Demo
) -> None:
    trace = demo.traces[0]
    open_trace(page, ui_server, trace.trace_id)
    tree = page.get_by_role("tree")
    tree.focus()
    history = page.evaluate("history.length")
    page.keyboard.press("ArrowDown")
    expect(row(page, "GET /checkout")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(row(page, "PlaceOrder")).to_have_attribute("aria-selected", "true")
    assert url_query(page)["span"][0] == row(page, "PlaceOrder").get_attribute("data-span-id")
    # Moving by keyboard replaces the URL instead of piling up history entries.
    assert page.evaluate("history.length") == history
    page.keyboard.press("ArrowLeft")
    expect(row(page, "PlaceOrder")).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_role("treeitem")).to_have_count(3)
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("treeitem")).to_have_count(5)
    page.keyboard.press("ArrowRight")
    expect(row(page, "SELECT orders")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowLeft")
    expect(row(page, "PlaceOrder")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("span-details")).to_have_count(0)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("span-details")).to_contain_text("PlaceOrder")
    page.keyboard.press("/")
    expect(page.get_by_role("searchbox", name="Find in trace")).to_be_focused()


def test_a_link_jumps_to_the_linked_trace_and_span(
    page: Page, ui_server: RunningServer, demo: Demo
) -> None:
    first, second = demo.traces[0], demo.traces[1]
    open_trace(page, ui_server, second.trace_id, f"?span={second.root_span_id}")
    links = page.get_by_test_id("span-links")
    expect(links).to_contain_text("Links (1)")
    links.get_by_role("link").click()
    expect(page).to_have_url(
        re.compile(rf"/ui/traces/{first.trace_id}\?span={first.root_span_id}$")
    )
    expect(page.locator(READY)).to_be_attached()
    expect(page.get_by_test_id("trace-header")).to_contain_text(first.trace_id)
    expect(row(page, "GET /checkout")).to_have_attribute("aria-selected", "true")
    page.go_back()
    expect(page.get_by_test_id("trace-header")).to_contain_text(second.trace_id)


def test_logs_of_a_span_and_of_the_trace(page: Page, ui_server: RunningServer, demo: Demo) -> None:
    trace = demo.traces[1]
    open_trace(page, ui_server, trace.trace_id)
    row(page, "Charge").click()
    span_logs = page.get_by_test_id("span-logs")
    expect(span_logs).to_contain_text("charge 1 declined")
    # Only this span's records: the root's "checkout started" log is not among them.
    expect(span_logs).not_to_contain_text("checkout 1 started")
    span_logs.locator("summary", has_text="charge 1 declined").click()
    expect(span_logs.locator('tr[data-attr="payment.id"]')).to_contain_text("p-1")
    page.locator("summary", has_text="Logs of this trace").click()
    logs_link = page.get_by_role("link", name="open in Logs")
    assert f"traceId={trace.trace_id}" in (logs_link.get_attribute("href") or "")
    trace_logs = page.get_by_test_id("trace-logs")
    expect(trace_logs).to_contain_text("checkout 1 started")
    expect(trace_logs).to_contain_text("charge 1 declined")
    expect(trace_logs).not_to_contain_text("checkout 0 started")
    # The same records on the Logs page, one click away.
    logs_link.click()
    expect(page).to_have_url(re.compile(rf"/ui/logs\?traceId={trace.trace_id}&start=\d+&end=\d+$"))
    results = page.get_by_test_id("log-results")
    expect(results).to_contain_text("charge 1 declined")
    expect(results).to_contain_text("checkout 1 started")
    expect(results).not_to_contain_text("checkout 0 started")


def test_find_with_next_and_previous(page: Page, ui_server: RunningServer, demo: Demo) -> None:
    open_trace(page, ui_server, demo.traces[0].trace_id)
    page.keyboard.press("/")
    find = page.get_by_role("searchbox", name="Find in trace")
    expect(find).to_be_focused()
    find.fill("frontend")
    count = page.get_by_test_id("find-count")
    expect(count).to_have_text("2 matches")
    find.press("Enter")
    expect(count).to_have_text("1 of 2")
    expect(row(page, "GET /checkout")).to_have_attribute("aria-selected", "true")
    find.press("Enter")
    expect(count).to_have_text("2 of 2")
    expect(row(page, "POST checkout")).to_have_attribute("aria-selected", "true")
    find.press("Shift+Enter")
    expect(count).to_have_text("1 of 2")
    expect(row(page, "GET /checkout")).to_have_attribute("aria-selected", "true")
    # By attribute (key=value) and by span id.
    find.fill("db.system=postgresql")
    expect(count).to_have_text("1 match")
    page.get_by_role("button", name="Next match").click()
    expect(row(page, "SELECT orders")).to_have_attribute("aria-selected", "true")
    find.fill(demo.traces[0].logged_span_id)
    find.press("Enter")
    expect(row(page, "Charge")).to_have_attribute("aria-selected", "true")
    find.fill("no such thing")
    expect(count).to_have_text("no match")


def test_collapse_expand_depth_and_service_filter(
    page: Page, ui_server: RunningServer, demo: Demo
) -> None:
    open_trace(page, ui_server, demo.traces[0].trace_id)
    items = page.get_by_role("treeitem")
    page.get_by_role("button", name="Collapse all").click()
    expect(items).to_have_count(1)
    expect(row(page, "GET /checkout")).to_have_attribute("aria-expanded", "false")
    page.get_by_role("button", name="Expand all").click()
    expect(items).to_have_count(5)
    page.get_by_label("Collapse to depth").select_option("2")
    expect(items).to_have_count(2)
    page.get_by_role("button", name="Expand all").click()
    row(page, "PlaceOrder").locator("[data-toggle]").click()
    expect(items).to_have_count(3)
    row(page, "PlaceOrder").locator("[data-toggle]").click()
    expect(items).to_have_count(5)
    page.locator(".tv-filter summary").click()
    page.get_by_role("checkbox", name="frontend").uncheck()
    expect(items).to_have_count(3)
    expect(row(page, "GET /checkout")).to_have_count(0)


def test_minimap_drag_zooms_the_axis(page: Page, ui_server: RunningServer, demo: Demo) -> None:
    open_trace(page, ui_server, demo.traces[0].trace_id)
    bar = row(page, "GET /checkout").locator(".tv-bar")
    full = bar.bounding_box()
    minimap = page.get_by_test_id("minimap").bounding_box()
    assert full is not None and minimap is not None
    y = minimap["y"] + minimap["height"] / 2
    page.mouse.move(minimap["x"] + minimap["width"] * 0.25, y)
    page.mouse.down()
    page.mouse.move(minimap["x"] + minimap["width"] * 0.5, y, steps=5)
    page.mouse.up()
    expect(page.get_by_role("button", name="Reset zoom")).to_be_visible()
    zoomed = bar.bounding_box()
    assert zoomed is not None and zoomed["width"] > full["width"] * 3
    page.get_by_role("button", name="Reset zoom").click()
    expect(page.get_by_role("button", name="Reset zoom")).to_have_count(0)
    # Ctrl + wheel over the bars zooms too.
    lane = row(page, "GET /checkout").locator(".tv-lane").bounding_box()
    assert lane is not None
    page.mouse.move(lane["x"] + lane["width"] / 2, lane["y"] + 5)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -300)
    page.keyboard.up("Control")
    expect(page.get_by_role("button", name="Reset zoom")).to_be_visible()


def test_unknown_trace_says_so(page: Page, ui_server: RunningServer, problems: Problems) -> None:
    # Chromium logs the 404 answer itself as a console error; the page must not add more.
    problems.allow(r"status of 404")
    page.goto(f"{ui_server.url}/ui/traces/{'ab' * 16}")
    expect(page.get_by_test_id("trace-not-found")).to_contain_text("No trace with this id")


def test_compare_input_opens_the_comparison(
    page: Page, ui_server: RunningServer, demo: Demo
) -> None:
    first, second = demo.traces[0], demo.traces[1]
    open_trace(page, ui_server, first.trace_id)
    page.get_by_label("Compare with trace id").fill(second.trace_id)
    page.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile(rf"/ui/compare/{first.trace_id}/{second.trace_id}$"))


def test_a_50000_span_trace_opens_at_a_deep_linked_span_and_scrolls(
    page: Page, ui_server: RunningServer, big_trace: str
) -> None:
    spans = httpx.get(f"{ui_server.url}/api/traces/{big_trace}", timeout=60).json()["spans"]
    assert len(spans) == 50_000
    target = spans[41_234]["spanId"]
    # Generous: this checks that it works on a busy machine, bench/ measures how fast.
    page.set_default_timeout(60_000)
    open_trace(page, ui_server, big_trace, f"?span={target}", timeout=60_000)
    expect(page.get_by_test_id("trace-span-count")).to_have_text("50000")
    selected = page.locator(f'[role="treeitem"][data-span-id="{target}"]')
    expect(selected).to_have_attribute("aria-selected", "true", timeout=30_000)
    scroller = page.locator(TREE)
    box, sbox = selected.bounding_box(), scroller.bounding_box()
    assert box is not None and sbox is not None
    assert sbox["y"] <= box["y"] and box["y"] + box["height"] <= sbox["y"] + sbox["height"]
    assert page.get_by_role("treeitem").count() < 150
    # Scroll through the whole list: the DOM keeps only a window of rows.
    height = scroller.evaluate("el => el.scrollHeight")
    assert height >= 50_000 * 24
    for fraction in (0.0, 0.3, 0.7, 1.0):
        scroller.evaluate(f"el => {{ el.scrollTop = el.scrollHeight * {fraction}; }}")
        # The rows drawn must be the ones in view: a window that did not follow the scroll
        # leaves the visible part of the list empty.
        page.wait_for_function(ROWS_IN_VIEW, arg=TREE, timeout=30_000)
        assert page.get_by_role("treeitem").count() < 150
    scroller.evaluate("el => { el.scrollTop = 0; }")
    page.wait_for_function(ROWS_IN_VIEW, arg=TREE, timeout=30_000)
    page.mouse.move(sbox["x"] + 50, sbox["y"] + 50)
    for _ in range(20):
        page.mouse.wheel(0, 2400)
    page.wait_for_function(
        f"sel => document.querySelector(sel).scrollTop > 20 * 2400 * 0.9 && ({ROWS_IN_VIEW})(sel)",
        arg=TREE,
        timeout=30_000,
    )
    assert page.get_by_role("treeitem").count() < 150
    # The last row is reachable and drawn inside the scroller.
    scroller.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    page.wait_for_function(ROWS_IN_VIEW, arg=TREE, timeout=30_000)
    last = page.locator('[role="treeitem"]').last
    lbox, sbox = last.bounding_box(), scroller.bounding_box()
    assert lbox is not None and sbox is not None
    assert sbox["y"] <= lbox["y"] and lbox["y"] + lbox["height"] <= sbox["y"] + sbox["height"] + 1


def test_view_tabs_switch_views_in_the_url(
    page: Page, ui_server: RunningServer, demo: Demo
) -> None:
    trace = demo.traces[0]
    open_trace(page, ui_server, trace.trace_id, f"?span={trace.root_span_id}")
    tabs = page.get_by_role("tablist", name="Trace views")
    tabs.get_by_role("tab", name="Flame graph").click()
    expect(page.get_by_test_id("flame")).to_be_visible()
    assert url_query(page)["view"] == ["flamegraph"]
    assert url_query(page)["span"] == [trace.root_span_id]
    tabs.get_by_role("tab", name="Statistics").click()
    expect(page.get_by_test_id("trace-stats")).to_be_visible()
    tabs.get_by_role("tab", name="OTLP/JSON").click()
    expect(page.get_by_test_id("trace-json")).to_contain_text(trace.trace_id)
    page.go_back()
    expect(tabs.get_by_role("tab", name="Statistics")).to_have_attribute("aria-selected", "true")
    page.go_back()
    page.go_back()
    expect(page.get_by_role("tree")).to_be_visible()
    # A deep link to a view opens it directly. (Waiting for the network first: leaving a
    # document while its favicon loads would abort that request, a failure to the fixture.)
    page.wait_for_load_state("networkidle")
    open_trace(page, ui_server, trace.trace_id, "?view=stats")
    expect(page.get_by_test_id("trace-stats")).to_be_visible()


def test_a_trace_from_a_dropped_file(
    page: Page, ui_server: RunningServer, demo: Demo, tmp_path: Path
) -> None:
    trace = demo.traces[1]
    otlp = httpx.get(f"{ui_server.url}/api/traces/{trace.trace_id}?format=otlp")
    assert otlp.status_code == 200
    file = tmp_path / "trace.json"
    file.write_bytes(otlp.content)
    # A reload forgets dropped files: the page says so and offers the drop again.
    page.goto(f"{ui_server.url}/ui/traces/{trace.trace_id}?source=file")
    expect(page.get_by_test_id("dropped-file-gone")).to_be_visible()
    page.get_by_test_id("dropzone-input").set_input_files(str(file))
    expect(page.locator(READY)).to_be_attached()
    assert url_query(page)["source"] == ["file"]
    expect(page.get_by_role("treeitem")).to_have_count(5)
    row(page, "Charge").click()
    expect(page.get_by_test_id("span-details")).to_contain_text("card declined")
    assert url_query(page)["source"] == ["file"]


def _otlp_json_trace(trace_id: str, span_id: str, start_ns: int) -> dict[str, object]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "chatty"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "talk",
                                "kind": 1,
                                "startTimeUnixNano": str(start_ns),
                                "endTimeUnixNano": str(start_ns + 50_000_000),
                                "attributes": [
                                    {"key": "big", "value": {"intValue": "9223372036854775807"}},
                                    {"key": "flag", "value": {"boolValue": True}},
                                    {
                                        "key": "tags",
                                        "value": {
                                            "arrayValue": {
                                                "values": [
                                                    {"stringValue": "a"},
                                                    {"stringValue": "b"},
                                                ]
                                            }
                                        },
                                    },
                                    {
                                        "key": "nested",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [{"key": "k", "value": {"intValue": "1"}}]
                                            }
                                        },
                                    },
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }


def _otlp_json_logs(trace_id: str, span_id: str, start_ns: int, n: int) -> dict[str, object]:
    records = [
        {
            "timeUnixNano": str(start_ns + i * 100_000),
            "severityNumber": 9,
            "severityText": "INFO",
            "body": {"stringValue": f"line {i:03d}"},
            "traceId": trace_id,
            "spanId": span_id,
        }
        for i in range(n)
    ]
    return {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "chatty"}}]
                },
                "scopeLogs": [{"logRecords": records}],
            }
        ]
    }


def test_types_beyond_json_numbers_and_log_paging(page: Page, ui_server: RunningServer) -> None:
    trace_id, span_id = "5a" * 16, "6b" * 8
    start = time.time_ns() - 30 * 10**9
    for path, body in (
        ("/v1/traces", _otlp_json_trace(trace_id, span_id, start)),
        ("/v1/logs", _otlp_json_logs(trace_id, span_id, start, 130)),
    ):
        r = httpx.post(f"{ui_server.url}{path}", json=body, timeout=30)
        assert r.status_code == 200, r.text
    open_trace(page, ui_server, trace_id, f"?span={span_id}")
    details = page.get_by_test_id("span-details")
    types = {"big": "int", "flag": "bool", "tags": "array<string>", "nested": "kvlist"}
    for key, kind in types.items():
        expect(details.locator(f'tr[data-attr="{key}"]').get_by_test_id("attr-type")).to_have_text(
            kind
        )
    expect(details.locator('tr[data-attr="big"]')).to_contain_text("9223372036854775807")
    # 130 records of one span: the first page holds 100, the cursor brings the rest.
    span_logs = page.get_by_test_id("span-logs")
    expect(span_logs.locator(".tv-log")).to_have_count(100)
    span_logs.get_by_role("button", name="More logs").click()
    expect(span_logs.locator(".tv-log")).to_have_count(130)
    expect(span_logs.get_by_role("button", name="More logs")).to_have_count(0)
    expect(span_logs).to_contain_text("line 000")
    expect(span_logs).to_contain_text("line 129")


def _span(span_id: str, parent: str, name: str, start_ns: int, end_ns: int) -> dict[str, object]:
    return {
        "traceId": "7c" * 16,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(end_ns),
    }


def _resource_spans(service: str, spans: list[dict[str, object]]) -> dict[str, object]:
    return {
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}],
    }


def test_missing_root_and_clock_skew_are_flagged(page: Page, ui_server: RunningServer) -> None:
    """The root has not arrived: its child heads the trace with a badge; a child from a host
    whose clock runs 10 s ahead is drawn inside its parent and flagged."""
    ms = 10**6
    t0 = time.time_ns() - 60 * 10**9
    body = {
        "resourceSpans": [
            _resource_spans("edge", [_span("1" * 16, "f" * 16, "handle", t0, t0 + 100 * ms)]),
            _resource_spans(
                "skewed",
                [_span("2" * 16, "1" * 16, "remote call", t0 + 10_000 * ms, t0 + 10_020 * ms)],
            ),
        ]
    }
    r = httpx.post(f"{ui_server.url}/v1/traces", json=body, timeout=30)
    assert r.status_code == 200, r.text
    open_trace(page, ui_server, "7c" * 16)
    header = page.get_by_test_id("trace-header")
    expect(header).to_contain_text("root span missing")
    expect(header).to_contain_text("handle")
    expect(row(page, "handle")).to_contain_text("orphan")
    skewed = row(page, "remote call")
    expect(skewed.locator(".badge", has_text="skew")).to_be_visible()
    # Drawn inside its parent's bar rather than 10 s to the right of it.
    parent_bar = row(page, "handle").locator(".tv-bar").bounding_box()
    child_bar = skewed.locator(".tv-bar").bounding_box()
    assert parent_bar is not None and child_bar is not None
    assert parent_bar["x"] <= child_bar["x"]
    assert child_bar["x"] + child_bar["width"] <= parent_bar["x"] + parent_bar["width"] + 1
    expect(page.get_by_test_id("trace-duration")).to_have_text("100ms")
