"""How the client commands print: times, tables, the span tree with its waterfall, progress.

Human output goes to stdout; progress lines and summaries go to stderr, progress only when
stderr is a terminal (so pipes and files never see carriage returns).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

# -- small formatters ------------------------------------------------------------------------


def fmt_time(ns: int | str) -> str:
    """Unix ns as local time with milliseconds: ``2026-05-01 12:00:00.123``."""
    value = int(ns)
    if value <= 0:
        return "-"
    dt = datetime.fromtimestamp(value // 10**9).replace(microsecond=(value % 10**9) // 1000)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def fmt_ms(ms: float) -> str:
    if ms >= 100:
        return f"{ms:,.0f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def counted(n: int, noun: str) -> str:
    """``1 span``, ``2 spans``, ``1 log record``, ``1,200 data points``: ``noun`` is plural."""
    if n != 1:
        return f"{n:,} {noun}"
    return f"1 {noun.removesuffix('s')}"


def one_line(value: Any, limit: int = 0) -> str:
    """A value on one line: strings as they are (newlines escaped), the rest as JSON."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")
    if limit and len(text) > limit:
        text = text[: max(1, limit - 1)] + "…"
    return text


def unicode_ok(stream: TextIO) -> bool:
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
    return encoding.startswith("utf")


def print_json(value: Any, out: TextIO | None = None, indent: int | None = 2) -> None:
    stream = out or sys.stdout
    stream.write(json.dumps(value, indent=indent, ensure_ascii=False) + "\n")


def terminal_width(default: int = 120) -> int:
    return shutil.get_terminal_size((default, 24)).columns


# -- tables ------------------------------------------------------------------------------------


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    right: Sequence[int] = (),
    out: TextIO | None = None,
) -> None:
    """Columns padded to their widest cell; ``right``: indexes of right-aligned columns."""
    stream = out or sys.stdout
    body = [list(r) for r in rows]
    widths = [len(h) for h in headers]
    for row in body:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    for row in [list(headers), *body]:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        stream.write("  ".join(cells).rstrip() + "\n")


# -- the span tree and its waterfall ------------------------------------------------------------------


def _status(span: dict[str, Any]) -> tuple[str, str]:
    status = span.get("status") or {}
    code = str(status.get("code", ""))
    name = {"STATUS_CODE_ERROR": "ERROR", "STATUS_CODE_OK": "OK"}.get(code, "")
    return name, str(status.get("message") or "")


def tree_order(spans: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int, str, bool]]:
    """Spans depth first, children by start time: ``(span, depth, prefix, orphan)``.

    Roots (no parent) come first at the top level; spans whose parent is not in the trace
    (orphans, and members of a parent cycle) are top-level too, marked.
    """
    by_id = {s["spanId"]: s for s in spans}
    children: dict[str, list[dict[str, Any]]] = {}
    tops: list[tuple[dict[str, Any], bool]] = []
    for span in spans:
        parent = span.get("parentSpanId") or ""
        if parent and parent in by_id and parent != span["spanId"]:
            children.setdefault(parent, []).append(span)
        else:
            tops.append((span, bool(parent)))

    def start(s: dict[str, Any]) -> int:
        return int(s.get("startTimeUnixNano") or 0)

    for kids in children.values():
        kids.sort(key=start)
    tops.sort(key=lambda t: (t[1], start(t[0])))
    out: list[tuple[dict[str, Any], int, str, bool]] = []
    seen: set[str] = set()

    def walk(top: dict[str, Any], orphan: bool) -> None:
        # Iterative: traces may be deeper than Python's recursion limit.
        stack: list[tuple[dict[str, Any], int, str, bool, bool]] = [(top, 0, "", True, orphan)]
        while stack:
            span, depth, lead, last, is_orphan = stack.pop()
            if span["spanId"] in seen:
                continue
            seen.add(span["spanId"])
            branch = ("└─ " if last else "├─ ") if depth else ""
            out.append((span, depth, lead + branch, is_orphan))
            kids = children.get(span["spanId"], [])
            below = lead + (("   " if last else "│  ") if depth else "")
            for i in range(len(kids) - 1, -1, -1):
                stack.append((kids[i], depth + 1, below, i == len(kids) - 1, False))

    for span, orphan in tops:
        walk(span, orphan)
    for span in sorted(spans, key=start):  # a parent cycle: nothing above reached them
        if span["spanId"] not in seen:
            walk(span, True)
    return out


def waterfall_bar(start: int, end: int, t0: int, total: int, width: int, fill: str) -> str:
    first = min(width - 1, int((start - t0) / total * width))
    last = max(first + 1, min(width, math.ceil((end - t0) / total * width)))
    return " " * first + fill * (last - first) + " " * (width - last)


def print_trace(trace: dict[str, Any], out: TextIO | None = None) -> None:
    """The span tree of a native trace, with durations, status and a text waterfall."""
    stream = out or sys.stdout
    spans: list[dict[str, Any]] = trace.get("spans") or []
    if not spans:
        stream.write(f"trace {trace.get('traceId', '?')}: no spans\n")
        return
    fancy = unicode_ok(stream)
    starts = [int(s["startTimeUnixNano"]) for s in spans]
    ends = [max(int(s["endTimeUnixNano"]), int(s["startTimeUnixNano"])) for s in spans]
    t0, t1 = min(starts), max(ends)
    total = max(1, t1 - t0)
    services = sorted({str(s.get("service") or "") for s in spans} - {""})
    stream.write(
        f"trace {trace.get('traceId')}  {len(spans)} span{'s' if len(spans) != 1 else ''}, "
        f"{len(services)} service{'s' if len(services) != 1 else ''} ({', '.join(services)}), "
        f"{fmt_ms(total / 1e6)} ms, started {fmt_time(t0)}\n"
    )
    ordered = tree_order(spans)
    names = []
    for span, _depth, prefix, orphan in ordered:
        if not fancy:
            prefix = prefix.replace("├─", "|-").replace("└─", "`-").replace("│", "|")
        mark = f" [orphan: parent {span.get('parentSpanId')} missing]" if orphan else ""
        names.append(one_line(prefix + str(span.get("name", "")) + mark, 90))
    service_w = min(24, max(len("SERVICE"), *(len(str(s.get("service") or "")) for s in spans)))
    name_w = max(len("SPAN"), *(len(n) for n in names))
    fixed = service_w + name_w + 10 + 6 + 2 * 5 + 2
    width = max(20, min(60, terminal_width() - fixed))
    fill = "█" if fancy else "#"
    rows = []
    for (span, *_), name in zip(ordered, names, strict=True):
        status, message = _status(span)
        start = int(span["startTimeUnixNano"])
        end = max(int(span["endTimeUnixNano"]), start)
        bar = waterfall_bar(start, end, t0, total, width, fill)
        rows.append(
            [
                one_line(span.get("service") or "", service_w),
                name,
                fmt_ms(float(span.get("durationMs", (end - start) / 1e6))),
                status,
                f"|{bar}|" + (f" {one_line(message, 80)}" if message else ""),
            ]
        )
    table(["SERVICE", "SPAN", "MS", "STATUS", "WATERFALL"], rows, right=(2,), out=stream)


# -- progress ------------------------------------------------------------------------------------


class Progress:
    """A progress line on stderr, redrawn at most five times a second; only on a terminal."""

    def __init__(self, label: str, unit: str, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.label = label
        self.unit = unit
        self.started = time.monotonic()
        self._last = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def rate(self, items: int) -> float:
        return items / max(self.elapsed(), 1e-6)

    def update(self, items: int, pages: int, note: str = "", force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        line = (
            f"{self.label}: {counted(items, self.unit)}, {counted(pages, 'pages')}, "
            f"{self.rate(items):,.0f} {self.unit}/s{'  ' + note if note else ''}"
        )
        self.stream.write("\r\x1b[K" + line[: terminal_width(200) - 1])
        self.stream.flush()

    def retry(self, why: str, wait: float, items: int, pages: int) -> None:
        """Say that a request is retried: on the progress line, else as a line of its own."""
        if self.enabled:
            self.update(items, pages, f"(retry in {wait:.1f} s: {why})", force=True)
        else:
            note(f"otterscope: {self.label}: {why}; retrying in {wait:.1f} s")

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def note(message: str) -> None:
    """One line on stderr (a warning or a summary)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
