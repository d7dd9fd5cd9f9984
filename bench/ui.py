"""UI benchmark (SPEC §8, UI figures): the web UI in Debian's Chromium against a real server.

    python bench/ui.py                     # load data, measure, print a table
    python bench/ui.py --runs 5 --sizes 1000,10000,50000

What the UI provides for this script (the contract between the two):
- ``[data-ready="trace"]``: attached to the document once a trace page
  (``/ui/traces/{traceId}``) shows a usable timeline (header, the first rows drawn and
  scrollable), not before.
- ``[data-ready="search"]``: attached once the trace search page
  (``/ui/traces?<parameters>``) shows its results.
- ``[data-testid="timeline-scroll"]``: the element whose ``scrollTop`` scrolls the trace
  timeline (the virtualized span rows).
- ``[data-testid="trace-results"]``: the results table (its ``aria-rowcount``, or else its
  body rows, counted).

Figures, each the median (and max) of ``--runs`` navigations in a fresh browser profile
(cold cache, as a first visit):
- usable: time from the start of navigation (the page's ``performance.timeOrigin``) until
  the ready selector is in the document, recorded in the page by a MutationObserver; and
  when the last ``/api/`` response the page fetched had arrived (Resource Timing), which
  splits that time between the server and the UI.
- longest task while loading, and while scrolling the 50,000-span timeline from top to
  bottom in rAF-paced steps and back (PerformanceObserver ``longtask``: main-thread tasks
  over 50 ms), and the longest gap between animation frames while scrolling.
- JS heap used (CDP ``Performance.getMetrics`` after a forced GC) once the view is usable.
- the floor under the trace view: fetching ``/api/traces/{id}`` and ``JSON.parse`` in a
  page, with no rendering (size, times, heap holding the parsed trace).

SPEC §8 targets are shown beside the figures; nothing here passes or fails. Data: a server
(bench/common.py) gets 1,000 small traces and one trace of each ``--sizes`` as OTLP/HTTP
protobuf (tests/browser/data.py). Writes bench/out/ui.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import OUT_DIR, Server, code_version, fresh_dir
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from tests.browser.data import many_traces_bodies, post_traces, send_big_trace

TRACE_READY = '[data-ready="trace"]'
SEARCH_READY = '[data-ready="search"]'
TIMELINE_SCROLL = '[data-testid="timeline-scroll"]'
RESULT_TABLE = '[data-testid="trace-results"]'
RESULT_ROWS = f"{RESULT_TABLE} tbody tr"

# Runs in every page before its own scripts (through CDP, so the page's CSP does not apply):
# when each ready selector first appears, and every long task.
OBSERVE = """
(() => {
  const ready = {};
  window.__bench = { ready, longtasks: [] };
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries())
        window.__bench.longtasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: "longtask", buffered: true });
  } catch (e) { window.__bench.longtaskError = String(e); }
  const check = () => {
    for (const sel of SELECTORS)
      if (!(sel in ready) && document.querySelector(sel)) ready[sel] = performance.now();
  };
  new MutationObserver(check).observe(document, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["data-ready"],
  });
})();
""".replace("SELECTORS", json.dumps([TRACE_READY, SEARCH_READY]))

# When the last /api/ answer the page fetched had fully arrived (Resource Timing): splits
# "usable" into the server's part and the UI's.
API_DONE = """
Math.max(0, ...performance.getEntriesByType("resource")
  .filter((e) => new URL(e.name).pathname.startsWith("/api/"))
  .map((e) => e.responseEnd))
"""

FETCH_TRACE = """
async (url) => {
  const t0 = performance.now();
  const text = await (await fetch(url)).text();
  const t1 = performance.now();
  window.__trace = JSON.parse(text);
  const t2 = performance.now();
  return { fetch_ms: t1 - t0, parse_ms: t2 - t1, mib: text.length / 2 ** 20 };
}
"""

# Scrolls the timeline top to bottom in ``steps`` frames, then back in a quarter of them;
# returns the longest frame gap. Long tasks are read from __bench afterwards.
SCROLL = """
async ([selector, steps]) => {
  const el = document.querySelector(selector);
  if (!el) return { error: "no " + selector };
  const frame = () => new Promise((r) => requestAnimationFrame(() => r(performance.now())));
  const start = await frame();
  let last = start, worstGap = 0;
  const max = el.scrollHeight - el.clientHeight;
  const path = [];
  for (let i = 1; i <= steps; i++) path.push((max * i) / steps);
  for (let i = 1; i <= steps / 4; i++) path.push(max - (max * i * 4) / steps);
  for (const top of path) {
    el.scrollTop = top;
    const now = await frame();
    worstGap = Math.max(worstGap, now - last);
    last = now;
  }
  return { start, end: last, worstGap, scrollHeight: el.scrollHeight, steps: path.length };
}
"""


def ready_ms(page: Page, selector: str) -> float:
    return float(page.evaluate("(s) => window.__bench.ready[s]", selector))


def longest_task(page: Page, after: float = 0.0, before: float = float("inf")) -> float:
    tasks = page.evaluate("window.__bench.longtasks")
    return max((t["duration"] for t in tasks if after <= t["start"] < before), default=0.0)


def heap_mib(page: Page) -> float:
    cdp = page.context.new_cdp_session(page)
    cdp.send("HeapProfiler.collectGarbage")
    cdp.send("Performance.enable")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    cdp.detach()
    return float(metrics["JSHeapUsedSize"]) / 2**20


def measure(
    browser: Browser, url: str, selector: str, timeout_s: float, scroll_steps: int = 0
) -> dict[str, Any]:
    """One navigation in a fresh profile; the figures or an ``error``."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(OBSERVE)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(e.message))
    try:
        page.goto(url, wait_until="commit")
        try:
            page.wait_for_selector(selector, state="attached", timeout=timeout_s * 1000)
        except PlaywrightTimeout:
            return {"error": f"{selector} not there after {timeout_s:.0f} s", "errors": errors}
        usable = ready_ms(page, selector)
        out: dict[str, Any] = {
            "usable_ms": usable,
            "api_done_ms": page.evaluate(API_DONE),
            "load_longtask_ms": longest_task(page, 0.0, usable),
            "longtask_error": page.evaluate("window.__bench.longtaskError || null"),
        }
        if selector == SEARCH_READY:
            # The table renders only the rows in view; aria-rowcount counts them all (+ header).
            total = page.locator(RESULT_TABLE).get_attribute("aria-rowcount")
            out["rows"] = int(total) - 1 if total else page.locator(RESULT_ROWS).count()
        if scroll_steps:
            page.wait_for_timeout(500)  # let work queued after "ready" finish first
            scrolled = page.evaluate(SCROLL, [TIMELINE_SCROLL, scroll_steps])
            if "error" in scrolled:
                out["scroll_error"] = scrolled["error"]
            else:
                out["scroll_longtask_ms"] = longest_task(page, scrolled["start"], scrolled["end"])
                out["scroll_worst_frame_ms"] = scrolled["worstGap"]
                out["scroll_height_px"] = scrolled["scrollHeight"]
        out["heap_mib"] = heap_mib(page)
        out["errors"] = errors
        return out
    finally:
        context.close()


def fetch_in_page(browser: Browser, base_url: str, trace_id: str) -> dict[str, Any]:
    """The floor under any trace view: fetching and parsing the trace's JSON in the page."""
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{base_url}/ui/", wait_until="load")
        out: dict[str, Any] = page.evaluate(FETCH_TRACE, f"/api/traces/{trace_id}")
        out["heap_mib"] = heap_mib(page)
        return out
    finally:
        context.close()


def load(server: Server, traces: int, sizes: list[int]) -> tuple[dict[int, str], int, int]:
    """1,000 (``traces``) small traces over the last 50 min, and one trace per size."""
    now = time.time_ns()
    start = now - 3000 * 10**9
    with httpx.Client() as client:
        for _, body in many_traces_bodies(traces, 8, start, 2900 * 10**9):
            post_traces(client, server.url, body)
    big = {n: send_big_trace(server.url, n, now - 120 * 10**9) for n in sizes}
    return big, start // 10**6 - 60_000, now // 10**6 + 60_000


def summarize(label: str, spans: int, runs: list[dict[str, Any]], target: str) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]

    def med_max(key: str) -> str:
        vals = [r[key] for r in ok if r.get(key) is not None]
        if not vals:
            return "n/a"
        return f"{statistics.median(vals):.0f} / {max(vals):.0f}"

    return {
        "view": label,
        "spans": spans,
        "runs": f"{len(ok)}/{len(runs)}",
        "usable ms (med / max)": med_max("usable_ms"),
        "API answered ms": med_max("api_done_ms"),
        "longest task loading ms": med_max("load_longtask_ms"),
        "longest task scrolling ms": med_max("scroll_longtask_ms"),
        "worst frame scrolling ms": med_max("scroll_worst_frame_ms"),
        "heap MiB": med_max("heap_mib"),
        "target (SPEC §8)": target,
        "problems": sorted(
            {r["error"] for r in runs if "error" in r}
            | {e for r in runs for e in r.get("errors", [])}
            | {r["scroll_error"] for r in runs if "scroll_error" in r}
        ),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    cols = [c for c in rows[0] if c != "problems"]
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        for p in r["problems"]:
            print(f"  {r['view']} {r['spans']}: {p[:300]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--traces", type=int, default=1000, help="small traces for the search")
    ap.add_argument("--sizes", default="1000,10000,50000", help="spans of the big traces")
    ap.add_argument("--runs", type=int, default=3, help="navigations per view")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for ready")
    ap.add_argument("--scroll-steps", type=int, default=120)
    args = ap.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        print(
            "bench/ui.py: Debian's chromium is not installed: apt-get install chromium",
            file=sys.stderr,
        )
        return 2
    sizes = [int(s) for s in args.sizes.split(",") if s]
    base = fresh_dir(OUT_DIR / "ui")
    server = Server(base / "data", base / "server.log")
    server.start()
    try:
        t0 = time.perf_counter()
        big, start_ms, end_ms = load(server, args.traces, sizes)
        print(
            f"loaded {args.traces} traces and traces of {sizes} spans in {time.perf_counter() - t0:.1f} s"
        )
        rows: list[dict[str, Any]] = []
        raw: dict[str, list[dict[str, Any]]] = {}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium, headless=True, chromium_sandbox=os.geteuid() != 0
            )
            search_url = f"{server.url}/ui/traces?limit=1000&start={start_ms}&end={end_ms}"
            runs = [
                measure(browser, search_url, SEARCH_READY, args.timeout) for _ in range(args.runs)
            ]
            raw["search"] = runs
            rows.append(summarize("search", args.traces, runs, "usable <= 1 s"))
            for n, trace_id in big.items():
                steps = args.scroll_steps if n == max(sizes) else 0
                url = f"{server.url}/ui/traces/{trace_id}"
                runs = [
                    measure(browser, url, TRACE_READY, args.timeout, steps)
                    for _ in range(args.runs)
                ]
                raw[f"trace-{n}"] = runs
                target = {10_000: "usable <= 1 s", 50_000: "usable <= 3 s; tasks <= 200 ms"}.get(
                    n, ""
                )
                rows.append(summarize("trace", n, runs, target))
            print("\nthe trace's JSON fetched and parsed in a page (no rendering):")
            for n, trace_id in big.items():
                f = [fetch_in_page(browser, server.url, trace_id) for _ in range(args.runs)]
                raw[f"fetch-{n}"] = f
                print(
                    f"  {n:>6} spans: {statistics.median(r['mib'] for r in f):6.1f} MiB,"
                    f" fetch {statistics.median(r['fetch_ms'] for r in f):5.0f} ms,"
                    f" JSON.parse {statistics.median(r['parse_ms'] for r in f):5.0f} ms,"
                    f" heap {statistics.median(r['heap_mib'] for r in f):5.0f} MiB (medians)"
                )
            version = browser.version
            browser.close()
    finally:
        server.stop()
    machine = (
        f"{platform.node()}, {os.cpu_count()} cores, {platform.platform()}, Chromium {version}"
    )
    print(f"\n{machine}\n")
    print_table(rows)
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / "ui.json").write_text(
        json.dumps({"machine": machine, "code": code_version(), "rows": rows, "raw": raw}, indent=2)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
