"""``otterscope export``, ``import`` and ``replay``: moving stored signals as OTLP/JSON.

The file format is the OpenTelemetry Collector file exporter's: one
``Export{Trace,Logs,Metrics}ServiceRequest`` as OTLP/JSON per line. ``export`` and ``replay``
page through the server's fetch API (``POST /api/{signal}/fetch``, oldest first; the first
page's cursor pins the point in the ingest sequence, so the pages hold every item stored
before the first one exactly once). ``import`` and ``replay`` POST each request to an
OTLP/HTTP endpoint as ``application/json``, retrying 429/503 (honouring ``Retry-After``),
each with an ``Idempotency-Key`` that is a digest of the signal and the body: otterscope
stores a request it has already committed only once, so a retried import or a resumed
replay adds nothing twice (other receivers ignore the header).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gzip
import hashlib
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from otterscope.cli.client import (
    SIGNALS,
    TOP_KEYS,
    ApiClient,
    CliError,
    Target,
    describe_response,
    fetch_pages,
    otlp_http_client,
    partial_rejections,
    post_with_retries,
    refusal,
)
from otterscope.cli.output import Progress, counted, note, print_json

UNITS = {"traces": "spans", "logs": "log records", "metrics": "data points"}
_POINT_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")


def count_items(signal: str, doc: dict[str, Any]) -> int:
    """Spans, log records or data points in one OTLP/JSON request."""
    n = 0
    for resource in doc.get(TOP_KEYS[signal]) or []:
        if signal == "traces":
            n += sum(len(s.get("spans") or []) for s in resource.get("scopeSpans") or [])
        elif signal == "logs":
            n += sum(len(s.get("logRecords") or []) for s in resource.get("scopeLogs") or [])
        else:
            for scope in resource.get("scopeMetrics") or []:
                for metric in scope.get("metrics") or []:
                    for kind in _POINT_KINDS:
                        n += len((metric.get(kind) or {}).get("dataPoints") or [])
    return n


def _window(args: argparse.Namespace) -> tuple[int, int]:
    end = args.end if args.end is not None else time.time_ns()
    start = args.start if args.start is not None else 0
    if start > end:
        raise CliError("--start must not be after --end", status=2)
    return start, end


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def request_key(signal: str, body: bytes) -> str:
    """An ``Idempotency-Key`` for a request: the same request, the same key."""
    return "otterscope-" + hashlib.sha256(signal.encode() + b"\n" + body).hexdigest()


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def replayed(response: httpx.Response) -> bool:
    """Whether otterscope had already stored this request (and stored nothing now)."""
    value: str = response.headers.get("Idempotency-Replayed", "")
    return value.lower() == "true"


# -- export ------------------------------------------------------------------------------------


def _open_output(dest: str, stack: contextlib.ExitStack) -> IO[str]:
    binary: Any = stack.enter_context(open(dest + ".part", "wb"))  # noqa: SIM115
    if dest.endswith(".gz"):
        binary = stack.enter_context(gzip.GzipFile(fileobj=binary, mode="wb"))
    return stack.enter_context(io.TextIOWrapper(binary, encoding="utf-8", newline="\n"))


def cmd_export(args: argparse.Namespace) -> int:
    signal, unit = args.signal, UNITS[args.signal]
    start, end = _window(args)
    dest = args.output if args.output and args.output != "-" else None
    progress = Progress(f"export {signal}", unit)
    items = pages = 0
    try:
        with contextlib.ExitStack() as stack:
            out = _open_output(dest, stack) if dest else sys.stdout
            client = stack.enter_context(ApiClient(Target.from_args(args)))
            for page, _ in fetch_pages(client, signal, start, end, args.page_size, None):
                n = count_items(signal, page)
                if n == 0:
                    continue
                out.write(_dumps(page) + "\n")
                items, pages = items + n, pages + 1
                progress.update(items, pages)
            out.flush()
    except (CliError, KeyboardInterrupt) as exc:
        progress.clear()
        if dest:
            why = exc.message if isinstance(exc, CliError) else "interrupted"
            raise CliError(
                f"{why} (the {counted(items, unit)} exported before that are in {dest}.part)"
            ) from None
        raise
    if dest:
        os.replace(dest + ".part", dest)
    progress.clear()
    note(
        f"exported {counted(items, unit)} in {counted(pages, 'requests')} to {dest or 'stdout'} "
        f"({progress.elapsed():.1f} s, {progress.rate(items):,.0f} {unit}/s)"
    )
    return 0


# -- import ------------------------------------------------------------------------------------


@dataclass
class Request:
    where: str  # file:line (and [index] inside a JSON array)
    doc: Any = None
    raw: bytes | None = None  # the line as read, sent as is
    error: str | None = None


def _open(path: str, stack: contextlib.ExitStack) -> IO[bytes]:
    try:
        stream: Any = (
            sys.stdin.buffer if path == "-" else stack.enter_context(open(path, "rb"))  # noqa: SIM115
        )
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None
    if stream.peek(2)[:2] == b"\x1f\x8b":
        stream = stack.enter_context(gzip.GzipFile(fileobj=stream, mode="rb"))
    result: IO[bytes] = stream
    return result


def read_requests(path: str) -> Iterator[Request]:
    """The requests of one file: JSON lines, a JSON array, or pretty-printed documents."""
    name = "stdin" if path == "-" else path
    with contextlib.ExitStack() as stack:
        stream = _open(path, stack)
        try:
            first = True
            for lineno, line in enumerate(stream, 1):
                text = line.strip()
                if not text:
                    continue
                try:
                    value = json.loads(text)
                except ValueError as exc:
                    if first and text[:1] in (b"{", b"["):
                        # Not one document per line: read the rest as a sequence of documents.
                        yield from _sequence(name, text + b"\n" + stream.read(), lineno)
                        return
                    yield Request(f"{name}:{lineno}", error=f"not JSON ({exc})")
                    continue
                finally:
                    first = False
                if isinstance(value, list):
                    yield from (Request(f"{name}:{lineno}[{i}]", v) for i, v in enumerate(value))
                else:
                    yield Request(f"{name}:{lineno}", value, text)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise CliError(f"{name}: {exc}") from None


def _sequence(name: str, data: bytes, first_line: int) -> Iterator[Request]:
    text = data.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return
        line = first_line + text.count("\n", 0, pos)
        try:
            value, pos = decoder.raw_decode(text, pos)
        except ValueError as exc:
            yield Request(f"{name}:{line}", error=f"not JSON ({exc})")
            return
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            suffix = f"[{i}]" if isinstance(value, list) else ""
            yield Request(f"{name}:{line}{suffix}", item)


def detect_signal(doc: Any) -> str:
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object (an Export*ServiceRequest)")
    found = [s for s in SIGNALS if TOP_KEYS[s] in doc]
    if len(found) != 1:
        keys = ", ".join(TOP_KEYS.values())
        raise ValueError(f"holds {'none' if not found else 'more than one'} of {keys}")
    return found[0]


def cmd_import(args: argparse.Namespace) -> int:
    target = Target.from_args(args)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "otterscope-cli",
        **target.headers(),
    }
    items = dict.fromkeys(SIGNALS, 0)
    requests = skipped = rejected = already = 0
    refused: list[str] = []
    progress = Progress("import", "items")
    # Identical requests in one import are each stored (the n-th one's key carries n), and
    # importing again finds every key stored already.
    seen: collections.Counter[str] = collections.Counter()

    def retrying(why: str, wait: float) -> None:
        progress.retry(why, wait, sum(items.values()), requests)

    with otlp_http_client(target.verify) as http:
        for path in args.files:
            for req in read_requests(path):
                try:
                    if req.error:
                        raise ValueError(req.error)
                    signal = detect_signal(req.doc)
                except ValueError as exc:
                    progress.clear()
                    note(f"otterscope: {req.where}: {exc}")
                    refused.append(req.where)
                    continue
                if args.signal and signal != args.signal:
                    skipped += 1
                    continue
                body = req.raw if req.raw is not None else _dumps(req.doc).encode()
                url = f"{target.url}/v1/{signal}"
                try:
                    key = request_key(signal, body)
                    seen[key] += 1
                    key += f"-{seen[key]}" if seen[key] > 1 else ""
                    response = post_with_retries(
                        http, url, body, keyed(headers, key), on_retry=retrying
                    )
                except CliError as exc:
                    progress.clear()
                    raise CliError(f"{req.where}: {exc.message}") from None
                if response.status_code >= 300:
                    progress.clear()
                    note(f"otterscope: {req.where}: refused: {refusal(response, '', target.token)}")
                    refused.append(req.where)
                    continue
                lost, why = partial_rejections(response)
                if lost:
                    progress.clear()
                    note(
                        f"otterscope: warning: {req.where}: {counted(lost, 'items')} rejected: {why}"
                    )
                rejected += lost
                requests += 1
                already += replayed(response)
                items[signal] += count_items(signal, req.doc)
                progress.update(sum(items.values()), requests)
    progress.clear()
    summary = {
        "requests": requests,
        "spans": items["traces"],
        "logRecords": items["logs"],
        "dataPoints": items["metrics"],
        "rejectedItems": rejected,
        "skipped": skipped,
        "refused": refused,
        "alreadyStored": already,
    }
    if args.json:
        print_json(summary)
    counts = ", ".join(counted(items[s], UNITS[s]) for s in SIGNALS if items[s]) or "nothing"
    extra = f"; {counted(skipped, 'requests')} of other signals skipped" if skipped else ""
    extra += f"; {counted(rejected, 'items')} rejected by the server" if rejected else ""
    extra += f"; {counted(already, 'requests')} already stored, not stored again" if already else ""
    note(
        f"imported {counted(requests, 'requests')} ({counts}) in {progress.elapsed():.1f} s{extra}"
    )
    if refused:
        first = refused[0]
        raise CliError(f"{counted(len(refused), 'requests')} refused, the first at {first}")
    return 0


# -- replay ------------------------------------------------------------------------------------


def endpoint_url(to: str, signal: str) -> str:
    text = to.strip()
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise CliError(f"--to {to!r}: {exc}", status=2) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise CliError(f"--to {to!r}: expected an http(s) URL", status=2)
    if url.path in ("", "/"):
        return text.rstrip("/") + f"/v1/{signal}"
    return text


def header_arg(value: str) -> tuple[str, str]:
    """``argparse`` type for ``--header 'Key: value'``."""
    key, sep, val = value.partition(":")
    if not sep:
        key, sep, val = value.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not Key:Value")
    return key.strip(), val.strip()


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _load(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"--resume: no state file {path} (run without --resume to start)") from None
    except (OSError, ValueError) as exc:
        raise CliError(f"--resume: cannot read {path}: {exc}") from None
    if not isinstance(state, dict) or state.get("version") != 1:
        raise CliError(f"--resume: {path} is not an otterscope replay state file")
    return state


def _state(args: argparse.Namespace, source: str, to: str, path: Path) -> dict[str, Any]:
    if args.resume:
        state = _load(path)
        for key, mine in (("signal", args.signal), ("source", source), ("to", to)):
            if state.get(key) != mine:
                raise CliError(
                    f"--resume: {path} is the state of a replay of {state.get('signal')} from "
                    f"{state.get('source')} to {state.get('to')}, not this one"
                )
        for flag, key in (("start", "startTimeUnixNano"), ("end", "endTimeUnixNano")):
            given = getattr(args, flag)
            if given is not None and str(given) != state[key]:
                raise CliError(f"--resume: --{flag} differs from the replay being resumed")
        return state
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if (
            isinstance(old, dict)
            and old.get("done") is False
            and (old.get("pages") or old.get("pending"))
        ):
            raise CliError(
                f"{path} holds an unfinished replay ({old.get('pages')} pages sent): "
                "continue it with --resume, or delete the file to start over"
            )
    start, end = _window(args)
    state = {
        "version": 1,
        "signal": args.signal,
        "source": source,
        "to": to,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "pageSize": args.page_size,
        "cursor": None,
        "pending": None,
        "pages": 0,
        "items": 0,
        "rejectedItems": 0,
        "done": False,
    }
    _save(path, state)
    return state


def _pages(
    client: ApiClient, signal: str, page_size: int, state: dict[str, Any]
) -> Iterator[tuple[bytes, int, str | None]]:
    """``(body, items, next cursor)`` of each page to send: first the one an interruption
    left unconfirmed, exactly as it was sent, then the next ones from the source."""
    start, end = int(state["startTimeUnixNano"]), int(state["endTimeUnixNano"])
    cursor = state["cursor"]
    pending = state.get("pending")
    if pending:
        yield pending["body"].encode(), pending["items"], pending["nextCursor"]
        cursor = pending["nextCursor"]
        if cursor is None:
            return
    for page, after in fetch_pages(client, signal, start, end, page_size, cursor):
        yield _dumps(page).encode(), count_items(signal, page), after


def cmd_replay(args: argparse.Namespace) -> int:
    signal, unit = args.signal, UNITS[args.signal]
    source = Target.from_args(args)
    to = endpoint_url(args.to, signal)
    path = Path(args.state or f".otterscope-replay-{signal}.json")
    state = _state(args, source.url, to, path)
    if state["done"]:
        note(f"nothing left to replay: {path} says all {counted(state['items'], unit)} were sent")
        return 0
    headers = {"Content-Type": "application/json", "User-Agent": "otterscope-cli"}
    headers.update(dict(args.header or ()))
    progress = Progress(f"replay {signal}", unit)
    sent_now = pages_now = 0

    def retrying(why: str, wait: float) -> None:
        progress.retry(why, wait, sent_now, pages_now)

    try:
        with ApiClient(source) as client, otlp_http_client() as http:
            for body, n, cursor in _pages(client, signal, args.page_size, state):
                if n:
                    # Saved before it is sent: a page whose answer an interruption cut off is
                    # sent again on --resume as it was, so under the same key (a digest).
                    state["pending"] = {"body": body.decode(), "items": n, "nextCursor": cursor}
                    _save(path, state)
                    response = post_with_retries(
                        http, to, body, keyed(headers, request_key(signal, body)), on_retry=retrying
                    )
                    if response.status_code >= 300:
                        raise CliError(
                            f"{to} refused page {state['pages'] + 1}: "
                            f"{describe_response(response)}; nothing after it was sent, "
                            f"continue with --resume (state in {path})"
                        )
                    lost, why = partial_rejections(response)
                    if lost:
                        progress.clear()
                        note(
                            f"otterscope: warning: page {state['pages'] + 1}: {lost} rejected: {why}"
                        )
                    state["rejectedItems"] += lost
                state["cursor"], state["done"] = cursor, cursor is None
                state["pending"] = None
                state["pages"] += 1
                state["items"] += n
                _save(path, state)
                sent_now, pages_now = sent_now + n, pages_now + 1
                progress.update(sent_now, pages_now)
                if args.max_pages and pages_now >= args.max_pages and cursor:
                    break
    except KeyboardInterrupt:
        progress.clear()
        raise CliError(
            f"interrupted after {state['pages']} pages; state in {path}: continue with --resume",
            status=130,
        ) from None
    except CliError as exc:
        progress.clear()
        if "--resume" in exc.message:
            raise
        raise CliError(f"{exc.message}; state in {path}: continue with --resume") from None
    progress.clear()
    if args.json:
        print_json(
            {k: state[k] for k in ("signal", "to", "pages", "items", "rejectedItems", "done")}
        )
    what = (
        f"replayed {counted(sent_now, unit)} in {counted(pages_now, 'pages')} to {to} "
        f"({progress.elapsed():.1f} s)"
    )
    if state["done"]:
        note(f"{what}; done, {counted(state['items'], unit)} in all")
    else:
        note(f"{what}; stopped by --max-pages: continue with --resume (state in {path})")
    return 0
