"""The UI loads in Chromium from a real server, anonymous and behind a token, without errors."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import INGEST_TOKEN, READ_TOKEN, Problems
from tests.browser.data import Demo
from tests.conftest import RunningServer


def test_ui_opens_anonymously(page: Page, ui_server: RunningServer, demo: Demo) -> None:
    page.goto(f"{ui_server.url}/ui/")
    expect(page).to_have_title("otterscope")
    expect(page.locator('[data-ready="search"]')).to_be_attached()
    assert page.url.startswith(f"{ui_server.url}/ui/")


def test_sign_in_with_a_token(
    page: Page, token_server: RunningServer, token_demo: Demo, problems: Problems
) -> None:
    # Before sign-in the UI asks /api/session without a token; Chromium logs that 401.
    problems.allow(r"status of 401")
    page.goto(f"{token_server.url}/ui/")
    expect(page).to_have_title("otterscope")
    token = page.locator('input[name="token"]')
    token.fill(INGEST_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("lacks the read scope")
    token.fill(READ_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator('[data-ready="search"]')).to_be_attached()
    assert READ_TOKEN not in page.url


def test_failures_in_the_page_fail_the_test(
    page: Page, ui_server: RunningServer, problems: Problems
) -> None:
    """The recorder sees what the teardown check relies on: console errors, page errors and
    failed requests (here provoked and then drained, so this test itself passes)."""
    page.goto(f"{ui_server.url}/ui/")
    expect(page.locator('[data-ready="search"]')).to_be_attached()
    page.evaluate("console.error('deliberate console error')")
    page.evaluate("setTimeout(() => { throw new Error('deliberate page error') }, 0)")
    page.route("**/ui/provoked-failure", lambda route: route.abort())
    page.evaluate("fetch('/ui/provoked-failure').catch(() => {})")
    page.wait_for_timeout(300)
    kinds = {m.split(":", 1)[0] for m in problems.seen}
    assert {"console error", "page error", "request failed"} <= kinds, problems.seen
    problems.seen.clear()
    assert httpx.get(f"{ui_server.url}/ready").status_code == 200


def test_demo_data_arrives_linked(ui_server: RunningServer, demo: Demo) -> None:
    """What the browser tests rely on: spans across services, errors, events, links, and
    logs carrying their span's ids."""
    first, second = demo.traces[0], demo.traces[1]
    r = httpx.get(f"{ui_server.url}/api/traces/{second.trace_id}")
    assert r.status_code == 200, r.text
    spans = {s["spanId"]: s for s in r.json()["spans"]}
    assert {s["service"] for s in spans.values()} == set(demo.services)
    assert len(spans) == 5
    root = spans[second.root_span_id]
    assert root["links"][0]["traceId"] == first.trace_id
    assert second.error_span_id is not None
    failed = spans[second.error_span_id]
    assert failed["status"]["code"] == "STATUS_CODE_ERROR"
    assert [e["name"] for e in failed["events"]] == ["exception"]
    logs = httpx.get(f"{ui_server.url}/api/logs", params={"traceId": second.trace_id}).json()
    assert {(log["spanId"], log["severityText"]) for log in logs["logs"]} == {
        (second.root_span_id, "INFO"),
        (second.logged_span_id, "ERROR"),
    }


def test_big_trace_is_stored_whole(ui_server: RunningServer, big_trace: str) -> None:
    r = httpx.get(f"{ui_server.url}/api/traces/{big_trace}", timeout=60)
    assert r.status_code == 200, r.text[:300]
    spans = r.json()["spans"]
    assert len(spans) == 50_000
    assert sum(1 for s in spans if not s["parentSpanId"]) == 1
