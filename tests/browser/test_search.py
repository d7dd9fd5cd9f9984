"""The trace search page in Chromium against a real server fed by the OpenTelemetry SDK:
the form's every kind of condition, the scatter plot, the table, paging, compare, lookup by
id, history and deep links, the empty state and the API's own validation messages."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.browser.conftest import Problems
from tests.browser.data import many_traces_bodies, post_traces
from tests.browser.search_data import Sent, send_shop_traces
from tests.conftest import RunningServer

ROWS = '[data-testid="trace-results"] tbody tr[data-trace-id]'


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """The folder's fresh profile per test, in a zone that is not UTC (+05:30, no DST), so
    local wall-clock times and the UTC ones in URLs really differ."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, timezone_id="Asia/Kolkata")
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def shop(ui_server: RunningServer) -> list[Sent]:
    return send_shop_traces(ui_server.url)


def ids(sent: list[Sent], **match: object) -> set[str]:
    return {s.trace_id for s in sent if all(getattr(s, k) == v for k, v in match.items())}


def shown(page: Page) -> list[str]:
    found: list[str] = page.locator(ROWS).evaluate_all("rows => rows.map(r => r.dataset.traceId)")
    return found


def wait_shown(page: Page, expected: set[str], timeout: float = 10.0) -> list[str]:
    """The table's trace ids once they are exactly ``expected`` (results arrive async)."""
    deadline = time.monotonic() + timeout
    while True:
        page.locator('[data-ready="search"]').wait_for(state="attached")
        rows = shown(page)
        if set(rows) == expected and len(rows) == len(expected):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"rows {sorted(rows)} != expected {sorted(expected)}")
        page.wait_for_timeout(100)


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def open_search(page: Page, server: RunningServer, query: str = "") -> None:
    page.goto(f"{server.url}/ui/traces{'?' + query if query else ''}")
    expect(page.locator('[data-ready="search"]')).to_be_attached()
    # The service list has arrived too, so nothing in flight is cut off by what follows.
    expect(form(page).locator('option[value="shop-frontend"]')).to_be_attached()


def form(page: Page) -> Locator:
    return page.get_by_role("form", name="Trace search")


def pick_service(page: Page, name: str) -> None:
    select = form(page).get_by_label("Service")
    expect(select.locator(f'option[value="{name}"]')).to_be_attached()
    select.select_option(name)


def submit(page: Page) -> None:
    form(page).get_by_role("button", name="Find traces").click()


def test_search_by_service_and_operation_picked_from_the_list(
    page: Page, ui_server: RunningServer, shop: list[Sent]
) -> None:
    open_search(page, ui_server)
    pick_service(page, "shop-frontend")
    operation = form(page).get_by_role("combobox", name="Operation")
    operation.click()
    expect(page.get_by_role("option", name="GET /checkout")).to_be_visible()
    # The operations are refilled for the service picked (and the old choice cleared).
    pick_service(page, "shop-inventory")
    operation.click()
    operation.press_sequentially("res")
    option = page.get_by_role("option", name="reserve stock")
    expect(option).to_be_visible()
    expect(page.get_by_role("option", name="GET /checkout")).to_have_count(0)
    option.click()
    expect(operation).to_have_value("reserve stock")
    submit(page)
    wait_shown(page, ids(shop, service="shop-inventory"))
    q = query_of(page)
    assert q["service"] == ["shop-inventory"] and q["operation"] == ["reserve stock"]


def test_search_by_an_attribute_picked_by_autocomplete(
    page: Page, ui_server: RunningServer, shop: list[Sent]
) -> None:
    open_search(page, ui_server)
    form(page).get_by_role("button", name="+ Add attribute filter").click()
    key = form(page).get_by_role("combobox", name="Attribute 1 key")
    key.click()
    key.press_sequentially("payment.me")
    # Picked with the keyboard, as the combobox pattern has it.
    expect(page.get_by_role("option", name="payment.method")).to_be_visible()
    key.press("ArrowDown")
    expect(page.get_by_role("option", name="payment.method")).to_have_attribute(
        "aria-selected", "true"
    )
    key.press("Enter")
    expect(key).to_have_value("payment.method")
    expect(page.get_by_role("listbox")).to_have_count(0)
    value = form(page).get_by_role("combobox", name="Attribute 1 value")
    value.click()
    page.get_by_role("option", name="paypal", exact=True).click()
    expect(value).to_have_value("paypal")
    submit(page)
    wait_shown(page, ids(shop, method="paypal"))
    assert query_of(page)["attr.payment.method"] == ["paypal"]
    # A row can be removed again.
    form(page).get_by_role("button", name="Remove attribute filter 1").click()
    expect(form(page).locator('[data-testid="attr-row"]')).to_have_count(0)


def test_search_by_status_error(page: Page, ui_server: RunningServer, shop: list[Sent]) -> None:
    open_search(page, ui_server)
    pick_service(page, "shop-payments")
    form(page).get_by_label("Status").select_option("error")
    submit(page)
    wait_shown(page, ids(shop, error=True))
    assert query_of(page)["status"] == ["error"]
    errors = page.locator(f"{ROWS} td:nth-child(5)").all_inner_texts()
    assert errors and all(int(e) > 0 for e in errors)


def test_search_by_span_and_trace_duration(
    page: Page, ui_server: RunningServer, shop: list[Sent]
) -> None:
    frontend = [s for s in shop if s.service == "shop-frontend"]
    open_search(page, ui_server)
    pick_service(page, "shop-frontend")
    form(page).get_by_label("Minimum trace duration").fill("85ms")
    submit(page)
    wait_shown(page, {s.trace_id for s in frontend if s.duration_ms >= 85})
    form(page).get_by_label("Minimum trace duration").fill("")
    form(page).get_by_label("Minimum span duration").fill("0.105s")
    form(page).get_by_label("Maximum span duration").fill("115")
    submit(page)
    wait_shown(page, {s.trace_id for s in frontend if 105 <= s.duration_ms <= 115})
    q = query_of(page)
    assert q["minDuration"] == ["0.105s"] and q["maxDuration"] == ["115"]
    assert "minTraceDuration" not in q


def test_scatter_dot_shows_the_trace_and_a_click_opens_it(
    page: Page, ui_server: RunningServer, shop: list[Sent]
) -> None:
    (longest,) = [s for s in shop if s.duration_ms == 2000]
    open_search(page, ui_server, "service=shop-inventory&minTraceDuration=1900ms")
    wait_shown(page, {longest.trace_id})
    over = page.locator('[data-testid="scatter"] .u-over')
    box = over.bounding_box()
    assert box is not None
    # One dot: in the middle of the x range, somewhere up the y axis. Sweep that column.
    tip = page.get_by_role("tooltip")
    x = box["x"] + box["width"] / 2
    # Steps well under the 10 px hit radius, so the pointer is still on the dot when the
    # tooltip (drawn a frame later) is seen.
    for step in range(int(box["height"]) // 2 + 1):
        page.mouse.move(x, box["y"] + step * 2)
        if tip.is_visible():
            break
    expect(tip).to_contain_text("shop-inventory: reserve stock")
    expect(tip).to_contain_text("2s")
    expect(tip).to_contain_text("1 spans")
    page.mouse.down()
    page.mouse.up()
    expect(page).to_have_url(re.compile(f"/ui/traces/{longest.trace_id}$"))
    expect(page.locator('[data-ready="trace"]')).to_be_attached()


def test_a_drag_on_the_plot_narrows_start_and_end(
    page: Page, ui_server: RunningServer, shop: list[Sent]
) -> None:
    frontend = ids(shop, service="shop-frontend")
    open_search(page, ui_server, "service=shop-frontend&lookback=6h")
    wait_shown(page, frontend)
    box = page.locator('[data-testid="scatter"] .u-over').bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.7, y, steps=5)
    page.mouse.up()
    expect(page).to_have_url(re.compile(r"start="))
    q = query_of(page)
    assert "lookback" not in q and q["service"] == ["shop-frontend"]
    start = time.mktime(time.strptime(q["start"][0][:19], "%Y-%m-%dT%H:%M:%S"))
    end = time.mktime(time.strptime(q["end"][0][:19], "%Y-%m-%dT%H:%M:%S"))
    assert 60 < end - start < 600  # 40 % of the ~460 s the dots span, not the 6 h window
    expect(form(page).get_by_label("Time range")).to_have_value("custom")
    expect(form(page).get_by_label("From", exact=True)).not_to_have_value("")
    r = httpx.get(
        f"{ui_server.url}/api/traces",
        params={"service": "shop-frontend", "start": q["start"][0], "end": q["end"][0]},
    )
    narrowed = {t["traceId"] for t in r.json()["traces"]}
    assert narrowed and narrowed < frontend
    wait_shown(page, narrowed)


def test_an_absolute_range_in_the_users_zone_becomes_start_and_end(
    page: Page, ui_server: RunningServer, shop: list[Sent]
) -> None:
    open_search(page, ui_server, "service=shop-frontend")
    form(page).get_by_label("Time range").select_option("custom")
    # Typed as the user's wall-clock time (this browser's zone), sent as RFC 3339 UTC.
    lo, hi = page.evaluate(
        """() => { const local = ms => { const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
             return d.toISOString().slice(0, 19); };
           const now = Date.now(); return [local(now - 20 * 60000), local(now + 60000)]; }"""
    )
    form(page).get_by_label("From", exact=True).fill(lo)
    form(page).get_by_label("To", exact=True).fill(hi)
    submit(page)
    expect(page).to_have_url(re.compile("end="))
    q = query_of(page)
    expected = page.evaluate(
        "([a, b]) => [new Date(a).toISOString(), new Date(b).toISOString()]", [lo, hi]
    )
    assert [q["start"][0], q["end"][0]] == expected
    assert q["start"][0] != f"{lo}.000Z"  # 5 h 30 min apart: the typed time was local
    assert "lookback" not in q
    wait_shown(page, ids(shop, service="shop-frontend"))
    # With the UTC preference the same fields are read as UTC wall-clock time.
    page.get_by_role("banner").get_by_label("Time").select_option("utc")
    before = page.evaluate("new Date(Date.now() - 20 * 60000).toISOString().slice(0, 19)")
    form(page).get_by_label("From", exact=True).fill(before)
    submit(page)
    expect(page).to_have_url(re.compile(re.escape(f"start={before}.000Z".replace(":", "%3A"))))
    wait_shown(page, ids(shop, service="shop-frontend"))
    # A window that ends before the traces began (20 min ago) finds none of them.
    form(page).get_by_label("From", exact=True).fill(before[:11] + "00:00:00")
    form(page).get_by_label("To", exact=True).fill(before)
    submit(page)
    expect(page.get_by_test_id("no-match")).to_be_visible()


def test_sort_by_duration(page: Page, ui_server: RunningServer, shop: list[Sent]) -> None:
    duration = {s.trace_id: s.duration_ms for s in shop}
    open_search(page, ui_server, "service=shop-frontend")
    wait_shown(page, ids(shop, service="shop-frontend"))
    header = page.get_by_role("button", name="Duration")
    header.click()
    expect(page).to_have_url(re.compile(r"sort=-duration"))
    rows = [duration[t] for t in shown(page)]
    assert rows == sorted(rows, reverse=True)
    expect(page.get_by_role("columnheader", name="Duration")).to_have_attribute(
        "aria-sort", "descending"
    )
    header.click()
    expect(page).to_have_url(re.compile(r"sort=duration"))
    rows = [duration[t] for t in shown(page)]
    assert rows == sorted(rows)


def test_load_more_by_cursor(page: Page, ui_server: RunningServer, shop: list[Sent]) -> None:
    frontend = ids(shop, service="shop-frontend")
    open_search(page, ui_server, "service=shop-frontend&limit=5")
    expect(page.locator(ROWS)).to_have_count(5)
    more = page.get_by_role("button", name="Load more")
    more.click()
    expect(page.locator(ROWS)).to_have_count(10)
    more.click()
    expect(page.locator(ROWS)).to_have_count(12)
    expect(more).to_have_count(0)
    rows = shown(page)
    assert len(rows) == len(set(rows)) and set(rows) == frontend
    # The same search again starts over from its first page.
    submit(page)
    expect(page.locator(ROWS)).to_have_count(5)
    expect(more).to_be_visible()


def test_pick_two_and_compare(page: Page, ui_server: RunningServer, shop: list[Sent]) -> None:
    open_search(page, ui_server, "service=shop-inventory")
    rows = wait_shown(page, ids(shop, service="shop-inventory"))
    boxes = page.locator(f"{ROWS} input[type=checkbox]")
    compare = page.get_by_role("button", name=re.compile("^Compare"))
    expect(compare).to_be_disabled()
    boxes.nth(0).check()
    boxes.nth(2).check()
    expect(boxes.nth(1)).to_be_disabled()
    compare.click()
    expect(page).to_have_url(re.compile(f"/ui/compare/{rows[0]}/{rows[2]}$"))
    expect(page.locator('[data-ready="compare"]')).to_be_attached()


def test_lookup_by_id(
    page: Page, ui_server: RunningServer, shop: list[Sent], problems: Problems
) -> None:
    # The 16-digit id below, padded, names no stored trace: the trace view's request is a 404.
    problems.allow(r"status of 404")
    open_search(page, ui_server)
    lookup = page.get_by_role("search", name="Open a trace by id")
    field = lookup.get_by_label("Trace id")
    field.fill("not-an-id")
    lookup.get_by_role("button", name="Open trace").click()
    expect(lookup.get_by_role("alert")).to_contain_text("hexadecimal")
    field.fill("abc123")
    lookup.get_by_role("button", name="Open trace").click()
    expect(lookup.get_by_role("alert")).to_contain_text("this has 6")
    assert urlparse(page.url).path == "/ui/traces"
    field.fill(shop[0].trace_id[16:].upper())
    lookup.get_by_role("button", name="Open trace").click()
    expect(page).to_have_url(re.compile(f"/ui/traces/{'0' * 16}{shop[0].trace_id[16:]}$"))
    expect(page.get_by_test_id("trace-not-found")).to_be_visible()
    page.go_back()
    # Leave only once the page has loaded (leaving earlier aborts its requests).
    expect(page.locator('[data-ready="search"]')).to_be_attached()
    expect(form(page).locator('option[value="shop-frontend"]')).to_be_attached()
    field = page.get_by_role("search", name="Open a trace by id").get_by_label("Trace id")
    field.fill(f"  {shop[0].trace_id.upper()} ")
    field.press("Enter")
    expect(page).to_have_url(re.compile(f"/ui/traces/{shop[0].trace_id}$"))
    expect(page.locator('[data-ready="trace"]')).to_be_attached()


def test_back_and_forward_restore_the_form_and_results(
    page: Page, ui_server: RunningServer, shop: list[Sent]
) -> None:
    open_search(page, ui_server)
    pick_service(page, "shop-inventory")
    submit(page)
    wait_shown(page, ids(shop, service="shop-inventory"))
    pick_service(page, "shop-payments")
    form(page).get_by_label("Status").select_option("error")
    submit(page)
    wait_shown(page, ids(shop, error=True))
    page.go_back()
    expect(form(page).get_by_label("Service")).to_have_value("shop-inventory")
    expect(form(page).get_by_label("Status")).to_have_value("")
    wait_shown(page, ids(shop, service="shop-inventory"))
    page.go_forward()
    expect(form(page).get_by_label("Service")).to_have_value("shop-payments")
    expect(form(page).get_by_label("Status")).to_have_value("error")
    wait_shown(page, ids(shop, error=True))


def test_a_deep_link_reproduces_form_and_results(
    page: Page, ui_server: RunningServer, shop: list[Sent]
) -> None:
    link = "service=shop-payments&status=error&attr.payment.method=card&lookback=6h&sort=-duration"
    open_search(page, ui_server, link)
    expect(form(page).get_by_label("Service")).to_have_value("shop-payments")
    expect(form(page).get_by_label("Status")).to_have_value("error")
    expect(form(page).get_by_label("Time range")).to_have_value("6h")
    expect(form(page).get_by_role("combobox", name="Attribute 1 key")).to_have_value(
        "payment.method"
    )
    expect(form(page).get_by_role("combobox", name="Attribute 1 value")).to_have_value("card")
    expected = {s.trace_id for s in shop if s.error and s.method == "card"}
    r = httpx.get(
        f"{ui_server.url}/api/traces",
        params={"service": "shop-payments", "status": "error", "attr.payment.method": "card"},
    )
    assert {t["traceId"] for t in r.json()["traces"]} == expected
    rows = wait_shown(page, expected)
    duration = {s.trace_id: s.duration_ms for s in shop}
    assert [duration[t] for t in rows] == sorted((duration[t] for t in rows), reverse=True)


def test_empty_window_tells_how_to_send_data_here(
    page: Page, ui_server: RunningServer, shop: list[Sent]
) -> None:
    open_search(page, ui_server, "start=2001-01-01T00:00:00Z&end=2001-01-02T00:00:00Z")
    hint = page.locator('[data-testid="send-data-hint"]')
    expect(hint).to_contain_text(f"{ui_server.url}/v1/traces")
    expect(hint).to_contain_text(f"127.0.0.1:{ui_server.grpc_port}")
    expect(page.locator(ROWS)).to_have_count(0)
    expect(form(page).get_by_label("Time range")).to_have_value("custom")


def test_an_invalid_duration_shows_the_apis_message(
    page: Page, ui_server: RunningServer, shop: list[Sent], problems: Problems
) -> None:
    problems.allow(r"status of 400")
    expected = httpx.get(f"{ui_server.url}/api/traces", params={"minDuration": "fast"}).json()
    open_search(page, ui_server)
    field = form(page).get_by_label("Minimum span duration")
    field.fill("fast")
    submit(page)
    alert = page.locator(".results").get_by_role("alert")
    expect(alert).to_contain_text(expected["error"]["message"])
    expect(alert).to_contain_text("HTTP 400")
    expect(field).to_have_attribute("aria-invalid", "true")
    assert query_of(page)["minDuration"] == ["fast"]


def test_a_dropped_otlp_json_file_opens_its_trace(
    page: Page, ui_server: RunningServer, shop: list[Sent], tmp_path: Path
) -> None:
    trace = shop[1]
    body = httpx.get(f"{ui_server.url}/api/traces/{trace.trace_id}?format=otlp").json()
    open_search(page, ui_server)
    dropped = page.evaluate_handle(
        "text => { const dt = new DataTransfer();"
        " dt.items.add(new File([text], 'trace.json')); return dt; }",
        json.dumps(body),
    )
    page.get_by_test_id("dropzone").dispatch_event("drop", {"dataTransfer": dropped})
    expect(page).to_have_url(re.compile(f"/ui/traces/{trace.trace_id}\\?source=file$"))
    expect(page.locator('[data-ready="trace"]')).to_be_attached()
    expect(page.get_by_role("treeitem")).to_have_count(2)


def test_a_long_result_list_renders_the_rows_in_view_and_scrolls_to_the_rest(
    page: Page, ui_server: RunningServer, shop: list[Sent]
) -> None:
    # 150 traces in an hour of their own, three hours back, so nothing else shares the window.
    begin = (time.time_ns() // 10**9 - 3 * 3600) * 10**9
    sent: list[str] = []
    with httpx.Client() as client:
        for batch, body in many_traces_bodies(150, 3, begin, 600 * 10**9):
            post_traces(client, ui_server.url, body)
            sent += batch
    window = f"start={begin // 10**6}&end={(begin + 3600 * 10**9) // 10**6}&limit=200"
    open_search(page, ui_server, window)
    expect(page.get_by_test_id("result-count")).to_have_text("150 traces")
    table = page.get_by_test_id("trace-results")
    expect(table).to_have_attribute("aria-rowcount", "151")
    first = shown(page)
    assert 0 < len(first) < 150
    page.get_by_test_id("results-scroll").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(page.locator(f"{ROWS}[aria-rowindex='151']")).to_be_attached()
    last = shown(page)
    assert 0 < len(last) < 150 and set(first) != set(last)
    # Newest first: the oldest trace sent is the last row.
    assert last[-1] == sent[0]
