"""The log search view in Chromium against a real server fed by the OpenTelemetry SDK:
filters, the volume chart's counts by severity, a record's details, the link to its trace,
paging by cursor, the empty state and an API error shown in place."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Problems
from tests.browser.data import log_burst_body
from tests.conftest import RunningServer

ORDERS = "logs-ui-orders"
BILLING = "logs-ui-billing"
PAGER = "logs-ui-pager"
PAGED = 25


@dataclass(frozen=True)
class Sent:
    trace_id: str
    span_id: str


@pytest.fixture(scope="module")
def sent(ui_server: RunningServer) -> Sent:
    """Three services' log records, one of them inside a span, sent by the SDK."""
    providers: list[LoggerProvider] = []

    def logger(service: str) -> LoggerProvider:
        lp = LoggerProvider(resource=Resource.create({"service.name": service}))
        lp.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{ui_server.url}/v1/logs"))
        )
        providers.append(lp)
        return lp

    orders = logger(ORDERS).get_logger("shop.orders", "2.1")
    for n in range(3):
        orders.emit(
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            body=f"order placed #{n}",
            attributes={"customer.tier": "gold" if n == 0 else "silver", "order.n": n},
        )
    for n in range(2):
        orders.emit(
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body=f"inventory low for sku-{n}",
        )
    tp = TracerProvider(resource=Resource.create({"service.name": BILLING}))
    tp.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{ui_server.url}/v1/traces"))
    )
    billing = logger(BILLING).get_logger("shop.billing", "0.9")
    with tp.get_tracer("shop.billing").start_as_current_span("Charge") as span:
        billing.emit(
            severity_number=SeverityNumber.ERROR,
            severity_text="ERROR",
            body="payment declined for order 7",
            attributes={"payment.id": "p-7"},
        )
        billing.emit(
            severity_number=SeverityNumber.DEBUG,
            severity_text="DEBUG",
            body={"event": "retry", "attempt": 2},
        )
    ctx = span.get_span_context()
    pager = logger(PAGER).get_logger("pager")
    for n in range(PAGED):
        pager.emit(severity_number=SeverityNumber.INFO, body=f"page record {n:02d}")
    for lp in providers:
        assert lp.force_flush(10_000), "the SDK could not flush the logs"
        lp.shutdown()
    assert tp.force_flush(10_000)
    tp.shutdown()
    return Sent(trace_id=f"{ctx.trace_id:032x}", span_id=f"{ctx.span_id:016x}")


def rows(page: Page) -> Locator:
    return page.locator("tr.log-row")


def open_logs(page: Page, url: str) -> None:
    """Open the view and wait until all it loads has arrived: a page load or a new search
    meanwhile would abort those requests, which the page fixture reports."""
    page.goto(url)
    expect(page.locator('[data-ready="logs"]')).to_be_attached()
    expect(page.locator(f'select[name="service"] option[value="{ORDERS}"]')).to_be_attached()
    expect(page.locator("#log-attr-keys option").first).to_be_attached()
    expect(page.locator(".log-volume, .error-box, .send-hint").first).to_be_attached()


def search_for(page: Page, service: str) -> None:
    page.locator('select[name="service"]').select_option(service)
    page.get_by_role("button", name="Find logs").click()


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def test_search_by_service_and_minimum_severity(
    page: Page, ui_server: RunningServer, sent: Sent
) -> None:
    open_logs(page, f"{ui_server.url}/ui/logs?service={ORDERS}")
    expect(rows(page)).to_have_count(5)
    # Newest first: the WARN records were sent last.
    expect(rows(page).first).to_contain_text("inventory low for sku-1")
    # The SDK leaves the record's time unset (0): the row shows when it was observed.
    expect(rows(page).first.locator("td.log-time")).to_contain_text(time.strftime("%Y-"))
    page.get_by_label("Minimum severity").select_option("WARN")
    page.get_by_role("button", name="Find logs").click()
    expect(rows(page)).to_have_count(2)
    for i in range(2):
        expect(rows(page).nth(i)).to_have_attribute("data-severity", "WARN")
    assert query_of(page)["severity"] == ["WARN"]
    assert query_of(page)["service"] == [ORDERS]
    # Back restores the previous search.
    page.go_back()
    expect(rows(page)).to_have_count(5)


def test_search_by_text_and_attribute_with_suggestions(
    page: Page, ui_server: RunningServer, sent: Sent
) -> None:
    open_logs(page, f"{ui_server.url}/ui/logs")
    page.get_by_label("Text in body").fill("DECLINED")
    page.get_by_role("button", name="Find logs").click()
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("payment declined for order 7")

    page.get_by_label("Text in body").fill("")
    search_for(page, ORDERS)
    expect(rows(page)).to_have_count(5)
    page.get_by_role("button", name="+ Add attribute filter").click()
    key = page.get_by_label("Attribute 1 key")
    # Keys and values in use are offered (datalists fed by /api/attributes).
    expect(page.locator('#log-attr-keys option[value="customer.tier"]')).to_be_attached()
    key.fill("customer.tier")
    expect(page.locator('#log-attr-values-0 option[value="gold"]')).to_be_attached()
    page.get_by_label("Attribute 1 value").fill("gold")
    page.get_by_role("button", name="Find logs").click()
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("order placed #0")
    assert query_of(page)["attr.customer.tier"] == ["gold"]


def test_volume_chart_counts_by_severity(page: Page, ui_server: RunningServer, sent: Sent) -> None:
    open_logs(page, f"{ui_server.url}/ui/logs?service={ORDERS}")
    legend = page.get_by_test_id("volume-legend")
    expect(legend.locator('[data-severity="INFO"] .count')).to_have_text("3")
    expect(legend.locator('[data-severity="WARN"] .count')).to_have_text("2")
    expect(legend.locator("[data-severity]")).to_have_count(2)
    expect(page.get_by_test_id("volume-total")).to_have_text("5")
    expect(page.get_by_test_id("volume-chart").locator("canvas")).to_be_visible()

    search_for(page, BILLING)
    expect(legend.locator('[data-severity="ERROR"] .count')).to_have_text("1")
    expect(legend.locator('[data-severity="DEBUG"] .count')).to_have_text("1")
    expect(page.get_by_test_id("volume-total")).to_have_text("2")


def test_drag_on_the_chart_narrows_the_time_range(
    page: Page, ui_server: RunningServer, sent: Sent
) -> None:
    open_logs(page, f"{ui_server.url}/ui/logs?service={ORDERS}&lookback=15m")
    expect(rows(page)).to_have_count(5)
    over = page.locator(".log-volume-chart .u-over")
    box = over.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    # From a third of the way in to the right edge: the records (sent just now) stay inside.
    page.mouse.move(box["x"] + box["width"] / 3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, y, steps=5)
    page.mouse.move(box["x"] + box["width"] - 1, y, steps=5)
    page.mouse.up()
    expect(page).to_have_url(re.compile(r"start=\d+.*end=\d+"))
    q = query_of(page)
    assert "lookback" not in q
    start, end = int(q["start"][0]), int(q["end"][0])
    assert 0 < end - start < 15 * 60_000
    expect(page.locator('select[name="lookback"]')).to_have_value("")
    expect(rows(page)).to_have_count(5)


def test_a_row_opens_to_its_details_and_links_to_its_trace(
    page: Page, ui_server: RunningServer, sent: Sent
) -> None:
    open_logs(page, f"{ui_server.url}/ui/logs?service={BILLING}")
    expect(rows(page)).to_have_count(2)
    # The map body is shown as JSON.
    expect(rows(page).first).to_contain_text('{"event":"retry","attempt":2}')
    error_row = rows(page).nth(1)
    expect(error_row).to_have_attribute("aria-expanded", "false")
    error_row.focus()
    page.keyboard.press("Enter")
    expect(error_row).to_have_attribute("aria-expanded", "true")
    details = page.get_by_test_id("log-details")
    expect(details).to_contain_text("payment.id")
    expect(details).to_contain_text("p-7")
    expect(details).to_contain_text(BILLING)  # resource service.name
    expect(details).to_contain_text("shop.billing")  # scope
    expect(details).to_contain_text(sent.span_id)
    page.keyboard.press("Enter")
    expect(details).to_have_count(0)
    error_row.click()
    link = page.get_by_test_id("log-trace-link")
    expect(link).to_have_text(sent.trace_id)
    link.click()
    expect(page).to_have_url(f"{ui_server.url}/ui/traces/{sent.trace_id}?span={sent.span_id}")


def test_load_more_pages_by_cursor(page: Page, ui_server: RunningServer, sent: Sent) -> None:
    open_logs(page, f"{ui_server.url}/ui/logs?service={PAGER}&limit=10")
    expect(rows(page)).to_have_count(10)
    more = page.get_by_role("button", name="Load more")
    more.click()
    expect(rows(page)).to_have_count(20)
    more.click()
    expect(rows(page)).to_have_count(PAGED)
    expect(more).to_have_count(0)
    bodies = rows(page).locator(".log-body").all_inner_texts()
    assert bodies == [f"page record {n:02d}" for n in reversed(range(PAGED))]


def test_empty_state_and_api_error_in_place(
    page: Page, ui_server: RunningServer, problems: Problems
) -> None:
    open_logs(page, f"{ui_server.url}/ui/logs?service=logs-ui-nobody")
    expect(page.get_by_test_id("send-data-hint")).to_contain_text("/v1/logs")
    # A malformed trace id is a 400 from both /api/logs and /api/logs/volume; Chromium logs
    # each failed response.
    problems.allow(r"status of 400")
    page.get_by_label("Trace ID").fill("not-hex")
    page.get_by_role("button", name="Find logs").click()
    alert = page.get_by_role("alert").filter(has_text="Log search failed")
    expect(alert).to_contain_text("HTTP 400")
    expect(page.get_by_role("alert").filter(has_text="Log volume failed")).to_be_visible()


def test_absolute_range_from_the_form(page: Page, ui_server: RunningServer, sent: Sent) -> None:
    open_logs(page, f"{ui_server.url}/ui/logs?service={ORDERS}")
    page.locator('select[name="lookback"]').select_option("")

    def local(seconds: float) -> str:
        # datetime-local in the browser's zone, which is this machine's.
        return time.strftime("%Y-%m-%dT%H:%M", time.localtime(seconds))

    now = time.time()
    page.get_by_label("From").fill(local(now - 600))
    page.get_by_label("To").fill(local(now + 120))
    page.get_by_role("button", name="Find logs").click()
    expect(page).to_have_url(re.compile(r"start=\d+"))
    q = query_of(page)
    assert "lookback" not in q
    start, end = int(q["start"][0]), int(q["end"][0])
    assert abs(start - (now - 600) * 1000) < 60_000 and abs(end - (now + 120) * 1000) < 60_000
    expect(rows(page)).to_have_count(5)
    # A range before anything was sent finds nothing.
    page.get_by_label("From").fill(local(now - 7200))
    page.get_by_label("To").fill(local(now - 3600))
    page.get_by_role("button", name="Find logs").click()
    expect(page.get_by_test_id("send-data-hint")).to_be_visible()


def send_logs(url: str, service: str, records: list[tuple[SeverityNumber, object]]) -> None:
    """Records of one service through the SDK (no timestamp: each is observed as sent)."""
    lp = LoggerProvider(resource=Resource.create({"service.name": service}))
    lp.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs"))
    )
    logger = lp.get_logger("logs.tests")
    for severity, body in records:
        logger.emit(severity_number=severity, body=body)
    assert lp.force_flush(10_000)
    lp.shutdown()


def test_the_same_search_again_reads_a_window_ending_now(
    page: Page, ui_server: RunningServer, sent: Sent
) -> None:
    service = "logs-ui-rerun"
    send_logs(ui_server.url, service, [(SeverityNumber.INFO, f"rerun {n:02d}") for n in range(15)])
    # Exactly the URL the form writes for these fields, so submitting it changes nothing.
    open_logs(page, f"{ui_server.url}/ui/logs?service={service}&limit=10&lookback=15m")
    expect(rows(page)).to_have_count(10)
    page.get_by_role("button", name="Load more").click()
    expect(rows(page)).to_have_count(15)
    send_logs(ui_server.url, service, [(SeverityNumber.INFO, "rerun fresh")])
    before = page.url
    page.get_by_role("button", name="Find logs").click()
    # A new window ending now: the record sent since is found, paging starts over.
    expect(rows(page).first).to_contain_text("rerun fresh")
    expect(rows(page)).to_have_count(10)
    expect(page.get_by_role("button", name="Load more")).to_be_visible()
    assert page.url == before


def test_a_long_result_renders_only_the_rows_in_view(
    page: Page, ui_server: RunningServer, sent: Sent
) -> None:
    service = "logs-ui-many"
    r = httpx.post(
        f"{ui_server.url}/v1/logs",
        content=log_burst_body(service, 1000, "many"),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    open_logs(page, f"{ui_server.url}/ui/logs?service={service}&limit=500")
    count = page.locator('[data-ready="logs"]')
    expect(count).to_have_text("500 records (more available)")
    page.get_by_role("button", name="Load more").click()
    expect(count).to_have_text("1000 records")
    # A thousand records loaded, a screenful (and a margin) in the page.
    assert 10 < rows(page).count() < 100
    expect(rows(page).first).to_contain_text("many 0999")

    # The keyboard walks the whole list: End to the oldest, which is rendered on the way.
    rows(page).first.focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator("tr.log-row:focus")).to_contain_text("many 0998")
    page.keyboard.press("End")
    focused = page.locator("tr.log-row:focus")
    expect(focused).to_contain_text("many 0000")
    assert 10 < rows(page).count() < 100
    page.keyboard.press("ArrowUp")
    expect(focused).to_contain_text("many 0001")
    page.keyboard.press("Enter")
    expect(focused).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_test_id("log-details")).to_contain_text("many 0001")
    page.keyboard.press(" ")
    expect(page.get_by_test_id("log-details")).to_have_count(0)

    # Scrolling by mouse wheel renders the rows it reaches.
    page.keyboard.press("Home")
    expect(focused).to_contain_text("many 0999")
    page.get_by_test_id("log-scroll").hover()
    page.mouse.wheel(0, 28 * 300)
    scroll = page.get_by_test_id("log-scroll")
    expect(rows(page).first).not_to_contain_text("many 0999")
    # A few rows below the top of the view, wherever the wheel took it (28 px rows).
    index = int(scroll.evaluate("e => e.scrollTop")) // 28 + 5
    expect(rows(page).filter(has_text=f"many {999 - index:04d}")).to_be_in_viewport()
    assert 10 < rows(page).count() < 100


def test_a_record_looks_the_same_in_the_trace_view_and_on_the_logs_page(
    page: Page, ui_server: RunningServer, sent: Sent
) -> None:
    service = "logs-ui-alike"
    tp = TracerProvider(resource=Resource.create({"service.name": service}))
    tp.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{ui_server.url}/v1/traces"))
    )
    lp = LoggerProvider(resource=Resource.create({"service.name": service}))
    lp.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{ui_server.url}/v1/logs"))
    )
    logger = lp.get_logger("alike")
    # No severity text: the label comes from the number (FATAL, and 0 is unspecified, not
    # debug); a record without a body shows nothing, not the word "null".
    with tp.get_tracer("alike").start_as_current_span("Alike") as span:
        logger.emit(severity_number=SeverityNumber.FATAL, body="disk is gone")
        logger.emit(severity_number=SeverityNumber.UNSPECIFIED, body="no level given")
        logger.emit(severity_number=SeverityNumber.INFO, body=None)
    assert lp.force_flush(10_000) and tp.force_flush(10_000)
    lp.shutdown()
    tp.shutdown()
    trace_id = f"{span.get_span_context().trace_id:032x}"

    open_logs(page, f"{ui_server.url}/ui/logs?traceId={trace_id}")
    expect(rows(page)).to_have_count(3)

    def shown(severity: Locator, body: Locator) -> list[tuple[str, str, str]]:
        return [
            (s.inner_text().strip(), s.evaluate("e => getComputedStyle(e).color"), b.inner_text())
            for s, b in zip(severity.all(), body.all(), strict=True)
        ]

    on_logs_page = shown(rows(page).locator(".severity"), rows(page).locator(".log-body"))
    assert [(label, body) for label, _, body in on_logs_page] == [
        ("INFO", ""),
        ("UNSPECIFIED", "no level given"),
        ("FATAL", "disk is gone"),
    ]
    page.goto(f"{ui_server.url}/ui/traces/{trace_id}")
    expect(page.locator('[data-ready="trace"]')).to_be_visible()
    page.locator("summary", has_text="Logs of this trace").click()
    trace_logs = page.get_by_test_id("trace-logs")
    expect(trace_logs.locator(".tv-log")).to_have_count(3)
    in_trace_view = shown(trace_logs.locator(".tv-sev"), trace_logs.locator(".tv-log-body"))
    assert in_trace_view == on_logs_page
