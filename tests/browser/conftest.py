"""Browser tests: Debian's Chromium driven by Playwright against a real ``otterscope serve``.

Playwright never downloads a browser here: it launches the ``chromium`` on PATH (Debian's
/usr/bin/chromium, which ``.ci/run`` installs). Without it the whole folder is skipped,
unless ``CI_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure.

Every test's page records console errors, uncaught page errors and failed requests; any of
them fails the test at teardown unless the test declared it expected (``problems.allow``).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from tests.browser.data import Demo, send_big_trace, send_demo
from tests.conftest import RunningServer, start_server

CHROMIUM = shutil.which("chromium")
REQUIRE_BROWSER = os.environ.get("CI_REQUIRE_BROWSER") == "1"

ADMIN_TOKEN = "browser-admin-token-0001"
READ_TOKEN = "browser-read-token-00002"
INGEST_TOKEN = "browser-ingest-token-003"
TENANT = "browsers"


@pytest.fixture(scope="session", autouse=True)
def _chromium_installed() -> None:
    if CHROMIUM is None:
        reason = "Debian's chromium is not installed (apt-get install chromium fonts-liberation)"
        if REQUIRE_BROWSER:
            pytest.fail(f"{reason}, and CI_REQUIRE_BROWSER=1 requires the browser tests")
        pytest.skip(reason)


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in this
# thread while it is open, and every later test calling asyncio.run() would fail.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    assert CHROMIUM is not None
    with sync_playwright() as pw:
        # Chromium's sandbox cannot start as root; elsewhere keep it on.
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, chromium_sandbox=os.geteuid() != 0
        )
        yield chromium
        chromium.close()


@dataclass
class Problems:
    """What went wrong in a page: console errors, page errors, failed requests."""

    seen: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """Expect messages matching ``pattern`` (a regex), e.g. a 401 a sign-in test causes."""
        self.allowed.append(re.compile(pattern))

    def add(self, message: str) -> None:
        self.seen.append(message)

    def unexpected(self) -> list[str]:
        return [m for m in self.seen if not any(p.search(m) for p in self.allowed)]


@pytest.fixture
def problems() -> Problems:
    return Problems()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh profile per test: no sessionStorage or cache shared between tests."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    yield ctx
    ctx.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    # The page fixture's teardown reads it: a failed test leaves a screenshot behind.
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(
    context: BrowserContext, problems: Problems, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Page]:
    pg = context.new_page()
    pg.set_default_timeout(10_000)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            loc = msg.location
            problems.add(
                f"console error: {msg.text} ({loc.get('url', '')}:{loc.get('lineNumber', '')})"
            )

    def on_request_failed(request: Request) -> None:
        # Aborted is not failed: a view cancels its stale fetches on purpose (AbortController)
        # and a navigation cancels what the page it leaves was still loading (the favicon).
        if request.failure == "net::ERR_ABORTED":
            return
        problems.add(f"request failed: {request.method} {request.url}: {request.failure}")

    def on_page_error(error: PlaywrightError) -> None:
        problems.add(f"page error: {error.message}\n{error.stack or ''}")

    pg.on("console", on_console)
    pg.on("pageerror", on_page_error)
    pg.on("requestfailed", on_request_failed)
    yield pg
    # Errors logged by work still running when the test ends are part of the test.
    pg.wait_for_timeout(100)
    if request.node.stash.get(_CALL_FAILED, False):
        shot = tmp_path / "failure.png"
        pg.screenshot(path=shot, full_page=True)
        request.node.add_report_section("teardown", "browser", f"{pg.url}\nscreenshot: {shot}")
    pg.close()
    bad = problems.unexpected()
    if bad:
        pytest.fail("the page reported problems:\n" + "\n".join(bad), pytrace=False)


def _stop(server: RunningServer) -> None:
    if server.proc is not None and server.proc.poll() is None:
        server.kill()


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An anonymous loopback server shared by the folder's tests."""
    running = start_server(tmp_path_factory.mktemp("ui-anon"))
    yield running
    _stop(running)


@pytest.fixture(scope="session")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server that needs a token: admin (all scopes), read-only and ingest-only tokens.

    ``token`` is the admin token; READ_TOKEN and INGEST_TOKEN test what the UI offers them.
    """
    base: Path = tmp_path_factory.mktemp("ui-token")
    config = {
        "auth": {
            "tokens": [
                {"token": ADMIN_TOKEN, "tenant": TENANT, "scopes": ["ingest", "read", "admin"]},
                {"token": READ_TOKEN, "tenant": TENANT, "scopes": ["read"]},
                {"token": INGEST_TOKEN, "tenant": TENANT, "scopes": ["ingest"]},
            ]
        }
    }
    running = start_server(base, config)
    running.token = ADMIN_TOKEN
    yield running
    _stop(running)


@pytest.fixture(scope="session")
def demo(ui_server: RunningServer) -> Demo:
    """Three services' traces and logs in the anonymous server, sent by the OTel SDK."""
    return send_demo(ui_server.url)


@pytest.fixture(scope="session")
def token_demo(token_server: RunningServer) -> Demo:
    """The same data in the token server's tenant, sent with the ingest-only token."""
    return send_demo(token_server.url, token=INGEST_TOKEN)


@pytest.fixture(scope="session")
def big_trace(ui_server: RunningServer) -> str:
    """A 50,000-span trace (ingest.max_spans_per_trace's default) in the anonymous server."""
    return send_big_trace(ui_server.url, 50_000, time.time_ns() - 60 * 10**9)
