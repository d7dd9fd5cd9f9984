"""Trace search in Chromium: time from navigation to 1,000 results shown (SPEC §8, ≤ 1 s).

Starts ``otterscope serve``, stores ``--traces`` small traces (5 spans each) spread over the
last 30 minutes, then opens ``/ui/traces?limit=1000`` in Debian's Chromium (Playwright
with the chromium on PATH) ``--runs`` times in fresh pages. Per run: ms from navigation start
until the table holds every row and the scatter plot is drawn, the part of it the
``/api/traces`` response took, and the longest main-thread task; then the time a
re-sort of the table by duration takes. Prints JSON.

    .venv/bin/python bench/ui_search.py [--traces 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser.data import many_traces_bodies, post_traces
from tests.conftest import start_server

# Usable: the count of all results is shown, the table has rows and the plot its canvas.
READY = """n => document.querySelector('[data-ready="search"]') &&
  document.querySelector('[data-testid="result-count"]')?.textContent.startsWith(`${n} traces`) &&
  document.querySelector('[data-testid="trace-results"] tbody tr[data-trace-id]') &&
  document.querySelector('[data-testid="scatter"] canvas')"""

LONG_TASKS = """window.__longest = 0; new PerformanceObserver(list => {
  for (const e of list.getEntries()) window.__longest = Math.max(window.__longest, e.duration);
}).observe({ type: "longtask", buffered: true });"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--traces", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("bench/ui_search.py: install Debian's chromium (apt-get install chromium)")
    server = start_server(Path(tempfile.mkdtemp(prefix="ui-search-")))
    try:
        now = time.time_ns()
        with httpx.Client() as client:
            for _, body in many_traces_bodies(args.traces, 5, now - 1800 * 10**9, 1700 * 10**9):
                post_traces(client, server.url, body)
            t0 = time.perf_counter()
            r = client.get(f"{server.url}/api/traces", params={"limit": 1000, "start": "0"})
            api_ms = (time.perf_counter() - t0) * 1000
            found = len(r.json()["traces"])
        runs = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True)
            for _ in range(args.runs):
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.add_init_script(LONG_TASKS)
                page.goto(f"{server.url}/ui/traces?limit=1000&lookback=1h", wait_until="commit")
                page.wait_for_function(READY, arg=found, timeout=30_000, polling="raf")
                ready = page.evaluate("performance.now()")
                fetched = page.evaluate(
                    """() => performance.getEntriesByType('resource')
                      .filter(e => e.name.includes('/api/traces?')).map(e => e.responseEnd)[0]"""
                )
                sort_ms = page.evaluate(
                    """() => new Promise(done => {
                      const t = performance.now();
                      document.querySelector('button[data-sort="duration"]').click();
                      requestAnimationFrame(() => setTimeout(() => done(performance.now() - t)));
                    })"""
                )
                runs.append(
                    {
                        "ready_ms": round(ready),
                        "api_response_end_ms": round(fetched or 0),
                        "longest_task_ms": round(page.evaluate("window.__longest")),
                        "sort_ms": round(sort_ms),
                    }
                )
                page.close()
            browser.close()
        ready_all = [r["ready_ms"] for r in runs]
        print(
            json.dumps(
                {
                    "traces_shown": found,
                    "api_alone_ms": round(api_ms),
                    "ready_ms_median": statistics.median(ready_all),
                    "ready_ms_max": max(ready_all),
                    "runs": runs,
                },
                indent=2,
            )
        )
    finally:
        server.kill()


if __name__ == "__main__":
    main()
