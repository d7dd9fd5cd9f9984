"""The trace view in Chromium against a real server fed by the OpenTelemetry SDK: the tree
and bars, selection by mouse and keyboard, span details with typed attributes, events,
links and logs, find, collapse, deep links, and a 50,000-span trace."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Problems
from tests.browser.data import Demo
from tests.conftest import RunningServer

READY = '[data-ready="trace"]'
TREE = '[data-testid="timeline-scroll"]'


def open_trace(page: Page, server: RunningServer, trace_id: str, query: str = "") -> None:
    page.goto(f"{server.url}/ui/traces/{trace_id}{query}")
    expect(page.locator(READY)).to_be_attached()


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
    expect(details.get_by_role("button", name="Copy Span ID")).to_be_visible()
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
    trace_logs = page.get_by_test_id("trace-logs")
    expect(trace_logs).to_contain_text("checkout 1 started")
    expect(trace_logs).to_contain_text("charge 1 declined")
    expect(trace_logs).not_to_contain_text("checkout 0 started")


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
    page.set_default_timeout(30_000)
    open_trace(page, ui_server, big_trace, f"?span={target}")
    expect(page.get_by_test_id("trace-span-count")).to_have_text("50000")
    selected = page.locator(f'[role="treeitem"][data-span-id="{target}"]')
    expect(selected).to_have_attribute("aria-selected", "true")
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
        page.wait_for_timeout(50)
        first_index = int(scroller.evaluate("el => Math.floor(el.scrollTop / 24)"))
        shown = page.get_by_role("treeitem")
        assert shown.count() < 150
        expect(shown.first).to_be_attached()
        assert first_index >= 0
    page.mouse.move(sbox["x"] + 50, sbox["y"] + 50)
    for _ in range(20):
        page.mouse.wheel(0, 2400)
    assert page.get_by_role("treeitem").count() < 150
    # The last rows are reachable and drawn.
    expect(page.get_by_role("treeitem").last).to_be_visible()
