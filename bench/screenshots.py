"""The README's screenshots of the web UI, taken in Debian's Chromium against a real server.

    python bench/screenshots.py            # writes docs/screenshots/*.png

The server gets the browser tests' demo data (three services, an error, logs tied to
spans, sent with the OpenTelemetry SDK) and a 2,000-span trace; each view is opened by its
URL, as a user's link would, and shot once it says it is ready.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import OUT_DIR, Server, fresh_dir
from playwright.sync_api import Page, sync_playwright
from tests.browser.data import send_big_trace, send_demo

SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
VIEWPORT = {"width": 1400, "height": 860}


def shoot(page: Page, url: str, ready: str, name: str, then: str | None = None) -> None:
    page.goto(url)
    page.wait_for_selector(ready, state="attached", timeout=30_000)
    if then:
        page.click(then)
    page.wait_for_load_state("networkidle")
    time.sleep(0.3)  # let charts finish their first frame
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    print(f"  {name}.png  {url}")


def main() -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("bench/screenshots.py: Debian's chromium is not installed: apt-get install chromium")
        return 2
    base = fresh_dir(OUT_DIR / "screenshots")
    server = Server(base / "data", base / "server.log")
    server.start()
    try:
        demo = send_demo(server.url, traces=6)
        big = send_big_trace(server.url, 2000, time.time_ns() - 60 * 10**9)
        failing = next(t for t in demo.traces if t.error_span_id)
        SHOTS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium, headless=True, chromium_sandbox=os.geteuid() != 0
            )
            for scheme in ("light", "dark"):
                page = browser.new_page(viewport=VIEWPORT, color_scheme=scheme)
                suffix = "" if scheme == "light" else "-dark"
                ui = f"{server.url}/ui"
                trace = f"{ui}/traces/{failing.trace_id}?span={failing.error_span_id}"
                shoot(page, f"{ui}/traces?lookback=1h", '[data-ready="search"]', "search" + suffix)
                shoot(page, trace, '[data-ready="trace"]', "trace" + suffix)
                if scheme == "dark":
                    page.close()
                    continue
                shoot(page, f"{ui}/traces/{big}", '[data-ready="trace"]', "trace-2000-spans")
                shoot(page, f"{trace}&view=flamegraph", '[data-ready="trace"]', "flamegraph")
                shoot(page, f"{trace}&view=stats", '[data-ready="trace"]', "stats")
                a, b = demo.traces[0].trace_id, failing.trace_id
                shoot(page, f"{ui}/compare/{a}/{b}", '[data-ready="compare"]', "compare")
                shoot(page, f"{ui}/logs?lookback=1h", '[data-ready="logs"]', "logs")
                page.close()
            browser.close()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
