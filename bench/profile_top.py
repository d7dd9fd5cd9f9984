"""Summarise a py-spy raw (collapsed stacks) profile: self time, inclusive time, categories.

    python bench/profile_top.py bench/out/profile-<label>.txt [--top 15] [--thread NAME]

py-spy writes one line per distinct stack: ``frame;frame;...;leaf COUNT`` (with --threads
the first frame is ``thread (tid): name``). Self time is what the leaf frame spends;
inclusive time is every sample whose stack holds the function. Percentages are of all
samples in the file (per thread, they are of that thread's samples too). Categories group
the stacks by the first matching rule below, scanning from the leaf up, so the reader sees
"protobuf parse vs per-span loop vs JSON vs Arrow vs DuckDB vs HTTP vs idle".
"""

from __future__ import annotations

import argparse
import collections
import re
import sys

# (category, regex on one frame); the first rule matching any frame, leaf first, wins.
CATEGORIES: list[tuple[str, str]] = [
    (
        "idle: event loop waiting in epoll",
        r"(^|\.)(select|poll) \((selectors|asyncio/selector_events)",
    ),
    (
        "idle: thread waiting (locks, conditions)",
        r"(^|\.)(wait|_wait_for_tstate_lock|get) \((threading|queue|concurrent)",
    ),
    ("C decoder + its Python wrapper (otlp/fast.py)", r"\(otterscope/otlp/fast"),
    ("protobuf parse (ParseFromString)", r"(^|\.)parse_request \(otterscope/otlp/wire"),
    (
        "attributes -> JSON (anyvalue + orjson)",
        r"(^|\.)(attributes_to_json|to_json|_too_long|_attrs) \(otterscope/otlp/(anyvalue|rows)",
    ),
    ("Arrow table build (pa.array)", r"(^|\.)_table \(otterscope/otlp/rows"),
    (
        "per-item Python loop (rows.py)",
        r"(^|\.)(spans_batch|logs_batch|metrics_batch|_point|_exemplars|_repeat|_body_text|_resource_scope_values|_scope_values) \(otterscope/otlp/rows",
    ),
    ("writer: per-trace cap (_apply_cap)", r"(^|\.)_apply_cap \(otterscope/ingest/writer"),
    ("DuckDB insert+commit (store.write)", r"(^|\.)write \(otterscope/store/embedded/store"),
    (
        "sealing / maintenance",
        r"(^|\.)(maintain|_seal|seal_now|_enforce_retention|_maintain) \(otterscope",
    ),
    ("request body read (ingest/body.py)", r"(^|\.)read_body \(otterscope/ingest/body"),
    ("encode response / budget / metrics", r"otterscope/(otlp/wire|ingest/budget|selfmetrics)"),
    (
        "HTTP: uvicorn/h11/starlette/guard",
        r"\((uvicorn|h11|starlette|otterscope/api/guard|otterscope/ingest/http)/?",
    ),
    ("gRPC server threads", r"\(grpc/"),
    ("asyncio internals", r"\(asyncio/"),
]
_COMPILED = [(name, re.compile(rx)) for name, rx in CATEGORIES]
_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


def _func(frame: str) -> str:
    """``name (file:line)`` -> ``name (file)`` so lines of one function add up."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    return f"{m['func']} ({m['file']})"


def _category(frames: list[str]) -> str:
    for frame in reversed(frames):
        f = frame.strip()
        for name, rx in _COMPILED:
            if rx.search(f):
                return name
    return "other"


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("profile")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--thread", default=None, help="only threads whose name contains this")
    args = p.parse_args()

    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    cats: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    thread_cats: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total = 0
    with open(args.profile) as f:
        for line in f:
            m = _LINE.match(line.rstrip("\n"))
            if not m:
                continue
            count = int(m["count"])
            frames = m["stack"].split(";")
            thread = "?"
            if frames and frames[0].startswith("thread ("):
                thread = frames[0].split(":", 1)[-1].strip() or frames[0]
                frames = frames[1:]
            elif frames and frames[0].startswith("process "):
                frames = frames[1:]
                if frames and frames[0].startswith("thread ("):
                    thread = frames[0].split(":", 1)[-1].strip()
                    frames = frames[1:]
            if args.thread and args.thread not in thread:
                continue
            if not frames:
                continue
            total += count
            threads[thread] += count
            self_t[_func(frames[-1])] += count
            for fn in {_func(fr) for fr in frames}:
                incl[fn] += count
            cat = "gRPC poller thread (idle)" if "_poll_wrapper" in thread else _category(frames)
            cats[cat] += count
            thread_cats[thread][cat] += count
    if not total:
        print("no samples", file=sys.stderr)
        return 1

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    print(
        f"{total} samples in {args.profile}"
        + (f" (threads matching {args.thread!r})" if args.thread else "")
    )
    print("\nsamples per thread:")
    for name, n in threads.most_common():
        print(f"  {pct(n)}  {name}")
    print(f"\ntop {args.top} functions by self time:")
    for fn, n in self_t.most_common(args.top):
        print(f"  {pct(n)}  {fn}")
    print(f"\ntop {args.top} functions by inclusive time:")
    for fn, n in incl.most_common(args.top + 25):
        if fn.startswith(
            (
                "_run_module_as_main",
                "_run_code",
                "<module>",
                "main (",
                "_serve",
                "run (",
                "Runner.run",
                "BaseEventLoop.run_",
                "Thread._bootstrap",
                "Thread.run",
                "_bootstrap",
            )
        ):
            continue
        print(f"  {pct(n)}  {fn}")
    print("\ncategories (leaf-most matching frame):")
    for name, n in cats.most_common():
        print(f"  {pct(n)}  {name}")
    print("\ncategories per thread (% of that thread's samples):")
    for tname, counter in sorted(thread_cats.items(), key=lambda kv: -sum(kv[1].values())):
        tt = sum(counter.values())
        parts = ", ".join(f"{name} {100 * n / tt:.0f}%" for name, n in counter.most_common(6))
        print(f"  {tname}: {parts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
