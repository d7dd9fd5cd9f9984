"""The live tail in Chromium against a real server: spans and logs sent by the OpenTelemetry
SDK after the page opened, behind a token (signed in, passed as the WebSocket subprotocol),
pause and resume, the service and signal filters, a tab the server drops as too slow
(1013) and a server restart, after both of which the tab reconnects and says it missed
data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import yaml
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from playwright.sync_api import Locator, Page, WebSocket, expect

from tests.browser.conftest import INGEST_TOKEN, READ_TOKEN, Problems
from tests.browser.data import log_burst_body
from tests.conftest import RunningServer, start_server


class Sender:
    """Spans and logs of one service through the SDK's OTLP/HTTP exporters, flushed at once."""

    def __init__(self, url: str, service: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resource = Resource.create({"service.name": service})
        self.tp = TracerProvider(resource=resource)
        self.tp.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=headers))
        )
        self.lp = LoggerProvider(resource=resource)
        self.lp.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs", headers=headers))
        )

    def log(self, body: str, severity: SeverityNumber = SeverityNumber.INFO) -> None:
        self.lp.get_logger("live.tests").emit(
            severity_number=severity, severity_text=severity.name, body=body
        )
        assert self.lp.force_flush(10_000)

    def trace(self, name: str, log_body: str) -> str:
        """A root span with a child and a log inside; the trace id."""
        tracer = self.tp.get_tracer("live.tests")
        with tracer.start_as_current_span(name) as root:
            with tracer.start_as_current_span(f"{name} child"):
                pass
            self.log(log_body)
        assert self.tp.force_flush(10_000)
        return f"{root.get_span_context().trace_id:032x}"

    def close(self) -> None:
        self.tp.shutdown()
        self.lp.shutdown()


def sign_in(page: Page, url: str, problems: Problems) -> None:
    # The first /api/session goes without a token; Chromium logs the 401.
    problems.allow(r"status of 401")
    page.goto(url)
    page.locator('input[name="token"]').fill(READ_TOKEN)
    page.get_by_role("button", name="Sign in").click()


def status(page: Page) -> Locator:
    return page.get_by_test_id("live-status")


def wait_subscribed(page: Page, signals: str, service: str = "", timeout: float = 5000) -> None:
    """Until the server confirmed this filter (its "subscribed" answer)."""
    expect(status(page)).to_have_attribute("data-state", "open", timeout=timeout)
    expect(status(page)).to_have_attribute("data-subscribed", f"{signals}|{service}")


def test_live_tail_behind_a_token(
    page: Page, token_server: RunningServer, problems: Problems
) -> None:
    sockets: list[WebSocket] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    sign_in(page, f"{token_server.url}/ui/live", problems)
    wait_subscribed(page, "traces,logs")
    assert len(sockets) == 1 and READ_TOKEN not in sockets[0].url
    assert urlparse(sockets[0].url).path == "/api/ws"
    # Until something arrives, the view says how to send data here.
    expect(page.get_by_test_id("send-data-hint")).to_contain_text("/v1/traces")

    alpha = Sender(token_server.url, "live-alpha", INGEST_TOKEN)
    beta = Sender(token_server.url, "live-beta", INGEST_TOKEN)
    try:
        trace_id = alpha.trace("GET /live-cart", "cart loaded live")
        rows = page.get_by_test_id("live-rows")
        expect(
            rows.locator('tr[data-kind="span"]', has_text="GET /live-cart child")
        ).to_be_visible()
        expect(rows.locator('tr[data-kind="log"]', has_text="cart loaded live")).to_be_visible()
        # The new trace, named by its root, one click from the trace view.
        link = page.get_by_test_id("live-traces").locator(f'a[data-trace-id="{trace_id}"]')
        expect(link).to_have_text("live-alpha: GET /live-cart")
        expect(link).to_have_attribute("href", f"/ui/traces/{trace_id}")

        # Pause: arrivals are counted, not shown; resume shows them.
        page.get_by_role("button", name="Pause").click()
        for n in range(3):
            alpha.log(f"while paused {n}")
        expect(page.get_by_test_id("live-waiting")).to_have_text("3 new while paused")
        expect(rows.locator("tr", has_text="while paused")).to_have_count(0)
        page.get_by_role("button", name="Resume").click()
        expect(rows.locator("tr", has_text="while paused")).to_have_count(3)
        # Newest on top.
        expect(rows.locator("tbody tr").first).to_contain_text("while paused 2")

        # Filter by service (offered once it shows up in the feed): the URL says so and the
        # server confirms it.
        beta.log("beta says hello")
        expect(rows.locator("tr", has_text="beta says hello")).to_be_visible()
        page.locator('select[name="service"]').select_option("live-beta")
        assert parse_qs(urlparse(page.url).query)["service"] == ["live-beta"]
        wait_subscribed(page, "traces,logs", "live-beta")
        alpha.log("alpha after the filter")
        beta.log("beta after the filter")
        expect(rows.locator("tr", has_text="beta after the filter")).to_be_visible()
        expect(rows.locator("tr", has_text="alpha after the filter")).to_have_count(0)

        # Logs only: spans of the chosen service no longer arrive.
        page.get_by_role("checkbox", name="Spans").uncheck()
        assert parse_qs(urlparse(page.url).query)["signal"] == ["logs"]
        wait_subscribed(page, "logs", "live-beta")
        beta.trace("GET /beta-only", "beta traced log")
        expect(rows.locator("tr", has_text="beta traced log")).to_be_visible()
        expect(rows.locator('tr[data-kind="span"]', has_text="GET /beta-only")).to_have_count(0)
        # One socket all along: filters change by subscribe messages, not reconnects.
        assert len(sockets) == 1
    finally:
        alpha.close()
        beta.close()


@pytest.fixture
def tiny_buffer_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server that drops a WebSocket client as soon as two messages wait for it."""
    running = start_server(tmp_path, {"live": {"buffer_messages": 1}})
    yield running
    if running.proc is not None:
        running.kill()


def test_a_tab_dropped_as_too_slow_reconnects_and_says_it_missed_data(
    page: Page, tiny_buffer_server: RunningServer
) -> None:
    url = tiny_buffer_server.url
    closes: list[str] = []
    page.on("websocket", lambda ws: ws.on("close", lambda w: closes.append(w.url)))
    page.goto(f"{url}/ui/live")
    wait_subscribed(page, "traces,logs")
    expect(page.get_by_test_id("missed-notice")).to_have_count(0)

    r = httpx.post(
        f"{url}/v1/logs",
        # One request: the feed splits it into several messages (at most 1,000 items each),
        # delivered together, so a 1-message buffer overflows.
        content=log_burst_body("live-burst", 2500, "burst"),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    notice = page.get_by_test_id("missed-notice")
    expect(notice).to_contain_text("Missed data from", timeout=15_000)
    expect(notice).to_contain_text("falling behind")
    wait_subscribed(page, "traces,logs", timeout=10_000)
    assert len(closes) == 1
    # The notice links to the missed stretch in the log search.
    href = notice.get_by_role("link", name="logs").get_attribute("href")
    assert href is not None and href.startswith("/ui/logs?start="), href

    # The new connection carries on.
    sender = Sender(url, "live-after")
    try:
        sender.log("after the reconnect")
        expect(
            page.get_by_test_id("live-rows").locator("tr", has_text="after the reconnect")
        ).to_be_visible()
    finally:
        sender.close()
    page.get_by_role("button", name="Dismiss").click()
    expect(notice).to_have_count(0)


def test_a_server_restart_is_survived_and_the_gap_named(
    page: Page, tmp_path: Path, problems: Problems
) -> None:
    running = start_server(tmp_path)
    try:
        page.goto(f"{running.url}/ui/live")
        wait_subscribed(page, "traces,logs")
        assert running.stop() == 0
        # The server said goodbye (1001); the tab says since when it is disconnected.
        expect(status(page)).to_have_attribute("data-state", re.compile("reconnecting|connecting"))
        notice = page.get_by_test_id("missed-notice")
        expect(notice).to_contain_text("Disconnected since")
        # Attempts while the server is down fail in the browser itself, which logs each one
        # (not something a page can silence); the backoff keeps them few. A connection
        # that never opened may have been a refused token, so each is followed by one
        # /api/session check, which fails the same way while the server is down.
        problems.allow(r"WebSocket connection to '.*/api/ws' failed")
        problems.allow(r"/api/session: net::ERR_CONNECTION_REFUSED")
        problems.allow(r"Failed to load resource: net::ERR_CONNECTION_REFUSED")
        page.wait_for_timeout(1500)
        running.start()
        # The next attempt comes within the backoff's delay (a few seconds by now).
        wait_subscribed(page, "traces,logs", timeout=20_000)
        expect(notice).to_contain_text("Missed data from")
        expect(notice).not_to_contain_text("Disconnected since")
        sender = Sender(running.url, "live-restarted")
        try:
            sender.log("after the restart")
            rows = page.get_by_test_id("live-rows")
            expect(rows.locator("tr", has_text="after the restart")).to_be_visible()
        finally:
            sender.close()
    finally:
        if running.proc is not None:
            running.kill()


def test_a_token_the_server_no_longer_accepts_asks_to_sign_in_again(
    page: Page, tmp_path: Path, problems: Problems
) -> None:
    other = "live-other-token-000000001"
    tokens = [{"token": READ_TOKEN, "tenant": "live", "scopes": ["read"]}]
    running = start_server(tmp_path, {"auth": {"tokens": tokens}})
    try:
        sockets: list[WebSocket] = []
        page.on("websocket", lambda ws: sockets.append(ws))
        sign_in(page, f"{running.url}/ui/live", problems)
        wait_subscribed(page, "traces,logs")
        # The server comes back without this token (revoked): its answer to the upgrade is
        # an HTTP 401, which the browser reports as a close that never opened.
        assert running.stop() == 0
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"auth": {"tokens": [{**tokens[0], "token": other}]}}))
        # While it is down, attempts and the session check fail in the browser itself.
        problems.allow(r"WebSocket connection to '.*/api/ws' failed")
        problems.allow(r"/api/session: net::ERR_CONNECTION_REFUSED")
        problems.allow(r"Failed to load resource: net::ERR_CONNECTION_REFUSED")
        running.start()
        expect(page.locator('input[name="token"]')).to_be_visible(timeout=20_000)
        expect(page.get_by_text("The server no longer accepts this token")).to_be_visible()
        # And the tab stopped trying.
        attempts = len(sockets)
        page.wait_for_timeout(3000)
        assert len(sockets) == attempts
    finally:
        if running.proc is not None:
            running.kill()
