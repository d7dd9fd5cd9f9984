"""``otterscope`` entry point: sub-commands and their flags."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from otterscope import __version__
from otterscope.config import KEYS, load
from otterscope.errors import ConfigError, OtterscopeError

_SERVE_EPILOG = "Every setting (flags > environment > config file > defaults):\n" + "\n".join(
    f"  {k.dotted:<38} {'(file only) ' if k.file_only else ''}env {k.env if not k.file_only else '-'}\n"
    f"  {'':<38} {k.help} Default: {k.default!r}"
    for k in KEYS
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otterscope",
        description="Self-hosted OpenTelemetry backend: receive OTLP traces, metrics and logs, "
        "keep them durably, and query them.",
    )
    parser.add_argument("--version", action="version", version=f"otterscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run the server (OTLP/gRPC, OTLP/HTTP, query API) on the embedded store",
        description="Run otterscope: OTLP/gRPC on --grpc-port, OTLP/HTTP and the API on "
        "--http-port, data kept under --data-dir.",
        epilog=_SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="OTLP/HTTP + API port (default 4318)")
    serve.add_argument("--grpc-port", type=int, help="OTLP/gRPC port (default 4317)")
    serve.add_argument("--data-dir", help="data directory (default ./otterscope-data)")
    serve.add_argument("--config", metavar="FILE", help="YAML config file")
    serve.add_argument("--tls-cert", metavar="PEM", help="TLS certificate (with --tls-key)")
    serve.add_argument("--tls-key", metavar="PEM", help="TLS private key (with --tls-cert)")
    serve.add_argument(
        "--allow-anonymous",
        action="store_true",
        default=None,
        help="allow binding a non-loopback host without any token",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="what otterscope logs (default info: start-up, shutdown and problems); other "
        "libraries log warnings and up, everything with debug",
    )
    _client_commands(sub)
    return parser


# -- client commands (they talk to a running server) ------------------------------------------------

SIGNALS = ("traces", "logs", "metrics")
_CLIENT_EPILOG = """\
The server: --url, else $OTTERSCOPE_URL, else http://127.0.0.1:4318. The token: --token,
else $OTTERSCOPE_TOKEN, else $OTTERSCOPE_AUTH_TOKEN (sent as Authorization: Bearer).
Times (--start/--end): RFC 3339 (2024-05-01T12:00:00Z; without a zone: local time), unix
seconds/ms/us/ns, 'now', or how long ago: 90s, 30m, 1h, 2d, 1w, 1h30m.
Errors: one line on stderr and exit status 1 (2 for usage errors)."""


def _time(value: str) -> int:
    from otterscope.cli.client import time_arg

    return time_arg(value)


def _attr(value: str) -> tuple[str, str]:
    from otterscope.cli.query import attr_arg

    return attr_arg(value)


def _header(value: str) -> tuple[str, str]:
    from otterscope.cli.transfer import header_arg

    return header_arg(value)


def _count(low: int, high: int | None = None) -> Callable[[str], int]:
    """``argparse`` type: an integer from ``low`` (to ``high``)."""

    def parse(value: str) -> int:
        n = int(value) if value.strip().isdigit() else low - 1
        if n < low or (high is not None and n > high):
            bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"{value!r} is not a number {bound}")
        return n

    return parse


def _connection() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("server")
    group.add_argument(
        "--url", help="the otterscope server (default $OTTERSCOPE_URL or http://127.0.0.1:4318)"
    )
    group.add_argument(
        "--token", help="bearer token (default $OTTERSCOPE_TOKEN or $OTTERSCOPE_AUTH_TOKEN)"
    )
    group.add_argument(
        "--cacert", metavar="PEM", help="CA certificate(s) to verify an https server with"
    )
    return common


def _window(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--start", type=_time, metavar="T", help=f"from this time ({default})")
    p.add_argument("--end", type=_time, metavar="T", help="until this time (default now)")


def _attr_flag(p: argparse.ArgumentParser, what: str) -> None:
    help = f"{what} (or its resource) with this attribute, typed; repeatable"
    p.add_argument("--attr", type=_attr, action="append", metavar="KEY=VALUE", help=help)


def _page_size(p: argparse.ArgumentParser) -> None:
    help = "items per request (1-1000, default 1000)"
    p.add_argument("--page-size", type=_count(1, 1000), default=1000, metavar="N", help=help)


def _client_commands(sub: Any) -> None:
    common = [_connection()]

    def command(name: str, help: str, description: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(
            name,
            help=help,
            description=textwrap.fill(description, 92),
            parents=common,
            epilog=_CLIENT_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return parser

    p = command(
        "traces",
        "search traces (a table, newest first)",
        "Search traces: every condition but --min/max-trace-duration applies to one and the "
        "same span. Newest first.",
    )
    p.add_argument("--service", help="a span of this service")
    p.add_argument("--operation", help="a span whose name contains this (case-insensitive)")
    p.add_argument("--status", choices=["ok", "error", "unset"], help="a span with this status")
    p.add_argument(
        "--min-duration", metavar="D", help="a span at least this long (250ms, 1.5s, or ms)"
    )
    p.add_argument("--max-duration", metavar="D", help="a span at most this long")
    p.add_argument("--min-trace-duration", metavar="D", help="the whole trace at least this long")
    p.add_argument("--max-trace-duration", metavar="D", help="the whole trace at most this long")
    _attr_flag(p, "a span")
    _window(p, "default 24 hours before --end")
    p.add_argument(
        "--limit",
        type=_count(1),
        default=20,
        help="traces to list (default 20; more than 1000 are read in pages)",
    )
    p.add_argument(
        "--json", action="store_true", help='print {"traces": [...], "nextCursor"} as JSON'
    )
    p.set_defaults(func=("query", "cmd_traces"))

    p = command(
        "trace",
        "show one trace: its span tree and a waterfall",
        "Show one trace: the span tree (children under their parents; spans whose parent is "
        "missing at the top, marked), each span's service, duration and status, and a text "
        "waterfall scaled to the trace.",
    )
    p.add_argument("trace_id", metavar="TRACE_ID", help="32 (or 16) hex characters")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the native JSON of the trace")
    fmt.add_argument(
        "--otlp",
        action="store_true",
        help="print the trace as OTLP/JSON on one line (an ExportTraceServiceRequest that "
        "otterscope import takes)",
    )
    p.set_defaults(func=("query", "cmd_trace"))

    p = command(
        "logs",
        "search log records (one line each)",
        "Search log records. Prints the newest --limit matches, oldest first: time, severity, "
        "service, body.",
    )
    p.add_argument("--service", help="records of this service")
    p.add_argument(
        "--severity", help="at least this severity: TRACE, DEBUG, INFO, WARN, ERROR, FATAL or 1-24"
    )
    p.add_argument("--q", metavar="TEXT", help="the body contains this text (case-insensitive)")
    p.add_argument("--trace-id", help="records of this trace")
    p.add_argument("--span-id", help="records of this span")
    _attr_flag(p, "a record")
    _window(p, "default 24 hours before --end")
    p.add_argument(
        "--limit",
        type=_count(1),
        default=100,
        help="records to print (default 100; more than 1000 are read in pages)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"logs": [...], "nextCursor"} as JSON (newest first)',
    )
    p.set_defaults(func=("query", "cmd_logs"))

    p = command(
        "metrics",
        "list metrics and their latest values, one metric's points, or its aggregates",
        "Without NAME: every metric with points in the window, one line per series (service "
        "and attributes) with its type, unit, point count and latest value. With NAME: that "
        "metric's series and their most recent points. These two read the raw points through "
        "POST /api/metrics/fetch, so keep the window small. With --agg (or --group-by, "
        "--label, --step): the metric aggregated per step by GET /api/metrics/query, e.g. "
        "`otterscope metrics http.server.request.duration --agg p99 --group-by http.route`.",
    )
    p.add_argument("name", nargs="?", help="the metric's OTLP name")
    _window(p, "default 1 hour before --end")
    p.add_argument(
        "--points",
        type=int,
        default=20,
        metavar="N",
        help="with NAME: the last N points of each series (default 20; 0: all)",
    )
    p.add_argument(
        "--max-points",
        type=_count(1),
        default=200_000,
        metavar="N",
        help="read at most about N points (default 200000)",
    )
    p.add_argument(
        "--agg",
        choices=("sum", "avg", "min", "max", "count", "rate", "increase")
        + ("p50", "p90", "p95", "p99"),
        help="aggregate per step with the query API (default sum when --group-by, --label "
        "or --step is given)",
    )
    p.add_argument("--group-by", metavar="KEYS", help="comma-separated label keys")
    p.add_argument("--label", type=_attr, action="append", metavar="KEY=VALUE", help="repeatable")
    p.add_argument("--step", metavar="DURATION", help="30s, 5m, ... (default: about 120 steps)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=("query", "cmd_metrics"))

    p = command(
        "tail",
        "follow new spans, log records and metrics live",
        "Follow the live feed (the /api/ws WebSocket): one line per span, log record or "
        "metric (a metric line says how many points arrived) as they are committed, until "
        "Ctrl-C (exit 0). A feed closed by the server (e.g. 1013: this client fell behind) "
        "is an error (exit 1).",
    )
    p.add_argument(
        "--signal",
        action="append",
        choices=SIGNALS,
        help="only this signal; repeatable (default all three)",
    )
    p.add_argument("--service", help="only items of this service")
    p.add_argument("--json", action="store_true", help="print each server message as one JSON line")
    p.set_defaults(func=("live", "cmd_tail"))

    p = command(
        "export",
        "write stored signals as OTLP/JSON lines",
        "Page through POST /api/<signal>/fetch, oldest first, and write OTLP/JSON lines: one "
        "Export*ServiceRequest per line (the OpenTelemetry Collector file exporter format). "
        "Everything stored before the export started and inside the window is written once. "
        "Progress on a terminal, and a summary line on stderr at the end.",
    )
    p.add_argument("--signal", required=True, choices=SIGNALS, help="what to send")
    _window(p, "default: the oldest data kept")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write here (gzip when it ends in .gz; written as FILE.part and renamed "
        "when complete); default stdout",
    )
    _page_size(p)
    p.set_defaults(func=("transfer", "cmd_export"))

    p = command(
        "import",
        "send OTLP/JSON files to a server",
        "Read Export*ServiceRequest documents - JSON lines, a JSON array of requests, or "
        "pretty-printed documents; gzip-compressed or not; - for stdin - and POST each to "
        "<url>/v1/<signal> (the signal from its top-level key), retrying 429/503. A refused "
        "request is reported with its file and line, the rest are still sent, and the exit "
        "status is 1.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--signal",
        choices=SIGNALS,
        help="send only requests of this signal (skip the others)",
    )
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(func=("transfer", "cmd_import"))

    p = command(
        "replay",
        "re-send stored signals to an OTLP/HTTP endpoint, resumably",
        "Page through the fetch API of the server (--url), oldest first, and POST each page "
        "as OTLP/JSON to --to. After each acknowledged page the cursor and counts are saved "
        "to the state file, so --resume continues after the last acknowledged page: nothing "
        "is sent twice or missed. 429/503 (honouring Retry-After), 502/504 and connection "
        "failures are retried with backoff.",
    )
    p.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="the OTLP/HTTP endpoint (e.g. http://other:4318/v1/traces); without a "
        "path /v1/<signal> is added",
    )
    p.add_argument(
        "--header",
        type=_header,
        action="append",
        metavar="K:V",
        help="a header for --to (e.g. 'Authorization: Bearer x'); repeatable",
    )
    p.add_argument("--signal", required=True, choices=SIGNALS, help="what to send")
    _window(p, "default: the oldest data kept")
    p.add_argument("--resume", action="store_true", help="continue the replay in the state file")
    p.add_argument(
        "--state", metavar="FILE", help="state file (default .otterscope-replay-<signal>.json here)"
    )
    _page_size(p)
    p.add_argument(
        "--max-pages",
        type=_count(1),
        metavar="N",
        help="stop after N pages (continue later with --resume)",
    )
    p.add_argument("--json", action="store_true", help="print the final counts as JSON")
    p.set_defaults(func=("transfer", "cmd_replay"))


def _run_client(args: argparse.Namespace) -> int:
    module_name, function = args.func
    module = importlib.import_module(f"otterscope.cli.{module_name}")
    result: int = getattr(module, function)(args)
    return result


def _serve(args: argparse.Namespace) -> int:
    from otterscope.server import Server

    level = args.log_level.upper()
    # INFO from libraries is per-request chatter (httpx logs every webhook call).
    logging.basicConfig(
        level="WARNING" if level == "INFO" else level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("otterscope").setLevel(level)
    flags = {
        "server.host": args.host,
        "server.http_port": args.http_port,
        "server.grpc_port": args.grpc_port,
        "server.data_dir": args.data_dir,
        "server.tls_cert": args.tls_cert,
        "server.tls_key": args.tls_key,
        "server.allow_anonymous": args.allow_anonymous,
    }
    settings = load(flags, args.config)
    return asyncio.run(Server(settings).run())


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "serve":
            return _serve(args)
        return _client(args)
    except ConfigError as exc:
        # One line, whatever the message holds (YAML parse errors span several).
        print(f"otterscope: configuration error: {' '.join(exc.message.split())}", file=sys.stderr)
        return 2
    except OtterscopeError as exc:
        print(f"otterscope: {' '.join(exc.message.split())}", file=sys.stderr)
        return 1


def _client(args: argparse.Namespace) -> int:
    from otterscope.cli.client import CliError

    try:
        return _run_client(args)
    except CliError as exc:
        print(f"otterscope: {exc.message}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("otterscope: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:
        print(f"otterscope: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
